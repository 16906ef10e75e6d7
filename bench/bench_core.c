// bench_core.c — microbenchmark of the core compute: sgemm, batched encoder, multi-sequence decoder.
//
// Usage: bench_core [--model tiny|base|all] [-m FILE] [--quick]
// (--quick: one repetition each and, unless --model says otherwise, the tiny size only.)
//
// By default the models are generated in memory with random weights at the real
// whisper sizes (f16 ggml file written per shared/FORMAT.md, then loaded with
// am_model_load_buffer), so no download is needed; -m FILE benchmarks a real file.
// Every figure is measured in this run: the sgemm reference, encoder ms per 30 s
// window at batch 1 and 8, and decoder ms per single-token step at N = 1, 4, 16,
// 64 sequences, each bound to its own cross K/V (a different window) and placed
// after a 3-token prompt plus 50 generated tokens. Timings are the best of a few
// repetitions; ratios (batch speedups, fraction of sgemm peak) compare figures
// taken minutes apart on the same machine, never against hard-coded numbers.
// Threads: OpenBLAS reads OPENBLAS_NUM_THREADS. Exit 0, or 1 with a message on error.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_common.h"
#include "am_decoder.h"
#include "am_encoder.h"
#include "am_gemm.h"
#include "am_mel.h"
#include "am_model.h"
#include "am_nn.h"

// ---------------------------------------------------------------- settings
enum {
    GEN_N_VOCAB = 51864,      // .en vocabulary incl. specials
    GEN_N_FILE_VOCAB = 50256, // ordinary tokens stored in the file
    GEN_N_AUDIO_CTX = 1500,
    GEN_N_TEXT_CTX = 448,
    GEN_N_MELS = 80,
    ENC_BATCH = 8,      // windows in the batched encoder run
    DEC_MAX_N = 64,     // most sequences stepped together
    DEC_PROMPT = 3,     // sot sequence fed as one prefill
    DEC_GENERATED = 50, // tokens already decoded before the timed steps
    DEC_MAX_STEPS = 64, // timed steps per repetition (then the caches are truncated back)
};

static const int k_dec_n[] = {1, 4, 16, 64};
static const int k_sgemm_nk[] = {384, 512, 768, 1024, 1536};
static const size_t k_dec_mem_budget = (size_t)6 << 30; // cap on N * (cross K/V + self KV)

typedef struct {
    const char *name;
    int d, heads, enc_layers, dec_layers;
} model_size;

static const model_size k_sizes[] = {{"tiny", 384, 6, 4, 4}, {"base", 512, 8, 6, 6}};

typedef struct {
    int sgemm_reps, small_reps;  // M=1500 reps; M=1 / M=16 reps
    int enc_reps_b1, enc_reps_b8;
    int dec_reps, dec_min_steps;
    double dec_target_s;         // keep stepping a repetition until this much time has passed
} plan;

typedef struct {
    double sgemm_peak; // best M=1500 GFLOP/s over the N=K sizes
} machine;

// ---------------------------------------------------------------- helpers
static int fail(const char *what) {
    fprintf(stderr, "bench_core: %s: %s\n", what, am_last_error()[0] ? am_last_error() : "failed");
    return 1;
}

static double mb(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

// xorshift64: fixed seed, same weights every run.
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

// uniform in [center - half, center + half)
static float rng_uniform(uint64_t *s, float center, float half) {
    const float u = (float)(rng_next(s) >> 40) * (1.0f / 16777216.0f); // [0,1)
    return center + half * (2.0f * u - 1.0f);
}

// ---------------------------------------------------------------- model generator
// A writer with buf == NULL only counts bytes (first pass sizes the buffer).
typedef struct {
    uint8_t *buf;
    size_t cap, pos;
    uint64_t rng;
    int overflow;
} writer;

static void w_bytes(writer *w, const void *p, size_t n) {
    if (w->buf) {
        if (n > w->cap - w->pos) {
            w->overflow = 1;
            return;
        }
        memcpy(w->buf + w->pos, p, n);
    }
    w->pos += n;
}

static void w_i32(writer *w, int32_t v) { // the format is little-endian, as is every host this runs on
    w_bytes(w, &v, sizeof v);
}

// One tensor: header, name, then n random values center ± half (f16 or f32).
static void w_tensor(writer *w, const char *name, int type, int n_dims, int ne0, int ne1, int ne2, float center,
                     float half) {
    const int32_t ne[3] = {ne0, ne1, ne2};
    const size_t name_len = strlen(name), esz = type == AM_TYPE_F16 ? 2 : 4;
    size_t n = 1;
    w_i32(w, n_dims);
    w_i32(w, (int32_t)name_len);
    w_i32(w, type);
    for (int i = 0; i < n_dims; i++) {
        w_i32(w, ne[i]);
        n *= (size_t)ne[i];
    }
    w_bytes(w, name, name_len);
    if (w->buf && n * esz > w->cap - w->pos) w->overflow = 1;
    if (!w->buf || w->overflow) {
        w->pos += n * esz;
        return;
    }
    uint8_t *dst = w->buf + w->pos;
    for (size_t i = 0; i < n; i++) {
        const float v = rng_uniform(&w->rng, center, half);
        if (type == AM_TYPE_F16) {
            const uint16_t h = am_fp32_to_fp16(v);
            memcpy(dst + 2 * i, &h, 2);
        } else {
            memcpy(dst + 4 * i, &v, 4);
        }
    }
    w->pos += n * esz;
}

#define WEIGHT_HALF 0.05f
#define W_VEC(w, n, center, ...) \
    (snprintf(nm, sizeof nm, __VA_ARGS__), w_tensor((w), nm, AM_TYPE_F32, 1, (n), 1, 1, (center), WEIGHT_HALF))
#define W_MAT(w, in, out, ...) \
    (snprintf(nm, sizeof nm, __VA_ARGS__), w_tensor((w), nm, AM_TYPE_F16, 2, (in), (out), 1, 0.0f, WEIGHT_HALF))

static void w_attn(writer *w, const char *pfx, int i, const char *kind, int d) {
    char nm[96];
    W_VEC(w, d, 1.0f, "%s.blocks.%d.%s_ln.weight", pfx, i, kind);
    W_VEC(w, d, 0.0f, "%s.blocks.%d.%s_ln.bias", pfx, i, kind);
    W_MAT(w, d, d, "%s.blocks.%d.%s.query.weight", pfx, i, kind);
    W_VEC(w, d, 0.0f, "%s.blocks.%d.%s.query.bias", pfx, i, kind);
    W_MAT(w, d, d, "%s.blocks.%d.%s.key.weight", pfx, i, kind);
    W_MAT(w, d, d, "%s.blocks.%d.%s.value.weight", pfx, i, kind);
    W_VEC(w, d, 0.0f, "%s.blocks.%d.%s.value.bias", pfx, i, kind);
    W_MAT(w, d, d, "%s.blocks.%d.%s.out.weight", pfx, i, kind);
    W_VEC(w, d, 0.0f, "%s.blocks.%d.%s.out.bias", pfx, i, kind);
}

static void w_mlp(writer *w, const char *pfx, int i, int d) {
    char nm[96];
    W_VEC(w, d, 1.0f, "%s.blocks.%d.mlp_ln.weight", pfx, i);
    W_VEC(w, d, 0.0f, "%s.blocks.%d.mlp_ln.bias", pfx, i);
    W_MAT(w, d, 4 * d, "%s.blocks.%d.mlp.0.weight", pfx, i);
    W_VEC(w, 4 * d, 0.0f, "%s.blocks.%d.mlp.0.bias", pfx, i);
    W_MAT(w, 4 * d, d, "%s.blocks.%d.mlp.2.weight", pfx, i);
    W_VEC(w, d, 0.0f, "%s.blocks.%d.mlp.2.bias", pfx, i);
}

// The whole ggml file: magic, hparams, filterbank, vocabulary, tensors.
static void w_model(writer *w, const model_size *s) {
    const int d = s->d;
    const int32_t hp[11] = {GEN_N_VOCAB, GEN_N_AUDIO_CTX, d, s->heads, s->enc_layers, GEN_N_TEXT_CTX,
                            d,           s->heads,        s->dec_layers, GEN_N_MELS, AM_TYPE_F16};
    w_i32(w, 0x67676d6c);
    for (int i = 0; i < 11; i++) w_i32(w, hp[i]);
    w_i32(w, GEN_N_MELS);
    w_i32(w, 201);
    for (int i = 0; i < GEN_N_MELS * 201; i++) {
        const float v = 0.001f * (float)(i % 7);
        w_bytes(w, &v, 4);
    }
    w_i32(w, GEN_N_FILE_VOCAB);
    for (int i = 0; i < GEN_N_FILE_VOCAB; i++) { // the 256 single bytes (byte-level BPE needs them), then made-up tokens
        char tok[16];
        int len = 1;
        if (i < 256) tok[0] = (char)i;
        else len = snprintf(tok, sizeof tok, "t%d", i);
        w_i32(w, len);
        w_bytes(w, tok, (size_t)len);
    }
    char nm[96];
    w_tensor(w, "encoder.conv1.weight", AM_TYPE_F16, 3, 3, GEN_N_MELS, d, 0.0f, WEIGHT_HALF);
    w_tensor(w, "encoder.conv1.bias", AM_TYPE_F32, 2, 1, d, 1, 0.0f, WEIGHT_HALF); // stored [n,1]
    w_tensor(w, "encoder.conv2.weight", AM_TYPE_F16, 3, 3, d, d, 0.0f, WEIGHT_HALF);
    w_tensor(w, "encoder.conv2.bias", AM_TYPE_F32, 2, 1, d, 1, 0.0f, WEIGHT_HALF);
    w_tensor(w, "encoder.positional_embedding", AM_TYPE_F32, 2, d, GEN_N_AUDIO_CTX, 1, 0.0f, 0.5f);
    for (int i = 0; i < s->enc_layers; i++) {
        w_attn(w, "encoder", i, "attn", d);
        w_mlp(w, "encoder", i, d);
    }
    W_VEC(w, d, 1.0f, "encoder.ln_post.weight");
    W_VEC(w, d, 0.0f, "encoder.ln_post.bias");
    W_MAT(w, d, GEN_N_VOCAB, "decoder.token_embedding.weight");
    w_tensor(w, "decoder.positional_embedding", AM_TYPE_F32, 2, d, GEN_N_TEXT_CTX, 1, 0.0f, 0.5f);
    for (int i = 0; i < s->dec_layers; i++) {
        w_attn(w, "decoder", i, "attn", d);
        w_attn(w, "decoder", i, "cross_attn", d);
        w_mlp(w, "decoder", i, d);
    }
    W_VEC(w, d, 1.0f, "decoder.ln.weight");
    W_VEC(w, d, 0.0f, "decoder.ln.bias");
}

// The generated model's ggml file bytes (malloc'd), or NULL with the error set.
static uint8_t *model_bytes(const model_size *s, size_t *size) {
    writer w = {.rng = 0x9e3779b97f4a7c15ull};
    w_model(&w, s); // count
    *size = w.pos;
    if (!(w.buf = malloc(*size))) {
        am_set_error(AM_ENOMEM, "out of memory for a %zu MB model file", *size >> 20);
        return NULL;
    }
    w.cap = *size;
    w.pos = 0;
    w_model(&w, s); // write
    if (w.overflow || w.pos != *size) {
        am_set_error(AM_EINTERNAL, "model writer wrote %zu of %zu bytes", w.pos, *size);
        free(w.buf);
        return NULL;
    }
    return w.buf;
}

static am_model *generate_model(const model_size *s) {
    size_t size;
    uint8_t *buf = model_bytes(s, &size);
    am_model *m = buf ? am_model_load_buffer(buf, size, s->name) : NULL;
    free(buf);
    return m;
}

// Write the generated model as a ggml file (for server benchmarks).
static int write_model(const model_size *s, const char *path) {
    size_t size;
    uint8_t *buf = model_bytes(s, &size);
    if (!buf) return fail(s->name);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(buf, 1, size, f) == size;
    if (f && fclose(f)) ok = 0;
    free(buf);
    if (!ok) {
        fprintf(stderr, "bench_core: cannot write %s\n", path);
        return 1;
    }
    printf("wrote %s (%s size, %.1f MB)\n", path, s->name, size / 1048576.0);
    return 0;
}

// ---------------------------------------------------------------- sgemm
static int bench_sgemm(const plan *p, machine *mc) {
    const int ms[] = {1500, 16, 1};
    printf("sgemm GFLOP/s, y (M,N) = x (M,K) @ W^T, best of %d/%d reps\n", p->sgemm_reps, p->small_reps);
    printf("  %-8s", "M \\ N=K");
    for (size_t j = 0; j < AM_ARRAY_LEN(k_sgemm_nk); j++) printf(" %8d", k_sgemm_nk[j]);
    printf("\n");
    mc->sgemm_peak = 0;
    for (size_t i = 0; i < AM_ARRAY_LEN(ms); i++) {
        printf("  M=%-6d", ms[i]);
        for (size_t j = 0; j < AM_ARRAY_LEN(k_sgemm_nk); j++) {
            const int reps = ms[i] == 1500 ? p->sgemm_reps : p->small_reps;
            const double g = am_gemm_sgemm_gflops(ms[i], k_sgemm_nk[j], k_sgemm_nk[j], reps);
            if (g <= 0) return am_set_error(AM_ENOMEM, "sgemm benchmark M=%d N=K=%d failed", ms[i], k_sgemm_nk[j]);
            if (ms[i] == 1500 && g > mc->sgemm_peak) mc->sgemm_peak = g;
            printf(" %8.1f", g);
        }
        printf("\n");
    }
    printf("  sgemm peak (M=1500): %.1f GFLOP/s\n\n", mc->sgemm_peak);
    return 0;
}

// ---------------------------------------------------------------- encoder
// Best wall time (s) of `reps` runs of B windows.
static int time_encoder(am_encoder *e, const float *mel, int B, float *out, int reps, double *best) {
    *best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = am_time_s();
        const int rc = am_encoder_run(e, mel, B, out);
        const double dt = am_time_s() - t0;
        if (rc) return rc;
        if (dt < *best) *best = dt;
    }
    return 0;
}

// ---------------------------------------------------------------- decoder
typedef struct {
    int n;
    double ms_step, tok_s, gflops;
} dec_result;

// Time single-token steps of seqs[0..n), all at position `base` on entry and on return.
// tok: per sequence a row of `tok_stride` ids; step j feeds tok[i*stride + base + j].
static int time_decoder(const am_model *m, am_decoder *dec, am_seq *const *seqs, const int32_t **ptrs, int *ntok,
                        const int32_t *tok, int tok_stride, int n, int base, const plan *p, float *logits,
                        dec_result *r) {
    double best_ms = 1e30;
    int best_steps = 1;
    for (int rep = -1; rep < p->dec_reps; rep++) { // rep -1: untimed warm-up
        const int min_steps = rep < 0 ? 2 : p->dec_min_steps;
        const double target = rep < 0 ? 0.0 : p->dec_target_s;
        int steps = 0;
        const double t0 = am_time_s();
        double dt = 0;
        while (steps < DEC_MAX_STEPS && (steps < min_steps || dt < target)) {
            for (int i = 0; i < n; i++) {
                ptrs[i] = tok + (size_t)i * tok_stride + base + steps;
                ntok[i] = 1;
            }
            const int rc = am_decoder_step(dec, seqs, ptrs, ntok, n, AM_LOGITS_LAST, logits);
            if (rc) return rc;
            steps++;
            dt = am_time_s() - t0;
        }
        for (int i = 0; i < n; i++)
            if (am_seq_truncate(seqs[i], base)) return am_last_error_code();
        if (rep >= 0 && dt * 1e3 / steps < best_ms) {
            best_ms = dt * 1e3 / steps;
            best_steps = steps;
        }
    }
    double flops = 0; // mean FLOPs of one token over the positions of the best repetition
    for (int j = 0; j < best_steps; j++) flops += am_decoder_flops_per_token(m, base + j);
    flops /= best_steps;
    r->n = n;
    r->ms_step = best_ms;
    r->tok_s = n * 1e3 / best_ms;
    r->gflops = flops * n / (best_ms * 1e-3) * 1e-9;
    return 0;
}

// ---------------------------------------------------------------- per model
typedef struct {
    am_encoder *enc;
    am_decoder *dec;
    float *mel, *enc_out, *logits;
    int32_t *tok;
    am_xkv *xkv[DEC_MAX_N];
    am_seq *seqs[DEC_MAX_N];
} model_bench;

static void model_bench_free(model_bench *b) {
    for (int i = 0; i < DEC_MAX_N; i++) {
        am_seq_free(b->seqs[i]);
        am_xkv_free(b->xkv[i]);
    }
    am_encoder_free(b->enc);
    am_decoder_free(b->dec);
    am_free(b->mel);
    am_free(b->enc_out);
    am_free(b->logits);
    am_free(b->tok);
}

static int bench_model(const am_model *m, const char *label, const plan *p, const machine *mc) {
    const am_hparams *hp = &m->hp;
    const int T = hp->n_audio_ctx, d = hp->n_audio_state, V = hp->n_vocab;
    const size_t mel_win = (size_t)hp->n_mels * AM_MEL_WINDOW_FRAMES, out_win = (size_t)T * d;
    const int tok_stride = DEC_PROMPT + DEC_GENERATED + DEC_MAX_STEPS, base = DEC_PROMPT + DEC_GENERATED;
    const int n_nvals = (int)AM_ARRAY_LEN(k_dec_n);
    model_bench b = {0};
    dec_result dr[AM_ARRAY_LEN(k_dec_n)];
    const int32_t *ptrs[DEC_MAX_N];
    int ntok[DEC_MAX_N];
    int rc = 0;

    printf("== %s: d=%d, heads %d/%d, layers %d+%d, n_vocab %d, n_mels %d, %s file, %.0f MB f32 weights\n", label, d,
           hp->n_audio_head, hp->n_text_head, hp->n_audio_layer, hp->n_text_layer, V, hp->n_mels,
           am_type_name(m->weight_type), mb(am_model_weight_bytes(m)));
    if (base + DEC_MAX_STEPS > hp->n_text_ctx) {
        rc = am_set_error(AM_ERANGE, "n_text_ctx %d too small for the decoder benchmark", hp->n_text_ctx);
        goto done;
    }
    // ---- encoder
    am_encoder_params ep = {.max_batch = ENC_BATCH};
    if (!(b.enc = am_encoder_create(m, &ep)) || !(b.mel = am_alloc(ENC_BATCH * mel_win * sizeof(float))) ||
        !(b.enc_out = am_alloc(ENC_BATCH * out_win * sizeof(float)))) {
        rc = b.enc ? am_set_error(AM_ENOMEM, "out of memory for encoder buffers") : am_last_error_code();
        goto done;
    }
    uint64_t rng = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < ENC_BATCH * mel_win; i++) b.mel[i] = rng_uniform(&rng, 0.0f, 1.0f);
    const double enc_flops = am_encoder_flops_per_window(m);
    double t1, t8;
    if ((rc = am_encoder_run(b.enc, b.mel, 1, b.enc_out)) || // warm-up
        (rc = time_encoder(b.enc, b.mel, 1, b.enc_out, p->enc_reps_b1, &t1)) ||
        (rc = time_encoder(b.enc, b.mel, ENC_BATCH, b.enc_out, p->enc_reps_b8, &t8)))
        goto done;
    const double ms_b1 = t1 * 1e3, ms_b8 = t8 * 1e3 / ENC_BATCH;
    const double g1 = enc_flops / t1 * 1e-9, g8 = enc_flops * ENC_BATCH / t8 * 1e-9;
    printf("encoder (%.1f GFLOP/window, scratch %.0f MB at B=%d)\n", enc_flops * 1e-9,
           mb(am_encoder_scratch_bytes(b.enc)), ENC_BATCH);
    printf("  %-6s %10s %10s %9s %9s\n", "batch", "ms/window", "total ms", "GFLOP/s", "of sgemm");
    printf("  B=%-4d %10.1f %10.1f %9.1f %8.0f%%\n", 1, ms_b1, t1 * 1e3, g1, 100 * g1 / mc->sgemm_peak);
    printf("  B=%-4d %10.1f %10.1f %9.1f %8.0f%%\n", ENC_BATCH, ms_b8, t8 * 1e3, g8, 100 * g8 / mc->sgemm_peak);
    printf("  batch speedup B=%d vs B=1: %.2fx per window\n", ENC_BATCH, ms_b1 / ms_b8);

    // ---- decoder: one window (cross K/V) per sequence, as many as the memory budget allows
    if (!(b.dec = am_decoder_create(m, NULL))) {
        rc = am_last_error_code();
        goto done;
    }
    const size_t per_seq_xkv = am_xkv_bytes(m, AM_TYPE_F32);
    int max_n = 0;
    for (int k = 0; k < n_nvals; k++)
        if (k_dec_n[k] * (per_seq_xkv + (size_t)hp->n_text_layer * 2 * hp->n_text_ctx * d * sizeof(float)) <=
            k_dec_mem_budget)
            max_n = k_dec_n[k];
    if (max_n == 0) {
        rc = am_set_error(AM_ENOMEM, "one sequence needs more than the %zu MB budget", k_dec_mem_budget >> 20);
        goto done;
    }
    if (!(b.logits = am_alloc((size_t)max_n * V * sizeof(float))) ||
        !(b.tok = am_alloc((size_t)max_n * tok_stride * sizeof(int32_t)))) {
        rc = am_set_error(AM_ENOMEM, "out of memory for decoder buffers");
        goto done;
    }
    for (int i = 0; i < max_n; i++) {
        if (!(b.xkv[i] = am_xkv_create(m, AM_TYPE_F32)) || !(b.seqs[i] = am_seq_create(m, 0, AM_TYPE_F32))) {
            rc = am_last_error_code();
            goto done;
        }
    }
    const double t_xkv = am_time_s();
    for (int i = 0; i < max_n; i += ENC_BATCH) // window i takes encoder output i % 8
        if ((rc = am_decoder_set_audio(b.dec, b.xkv + i, b.enc_out, AM_MIN(ENC_BATCH, max_n - i)))) goto done;
    const double ms_xkv = (am_time_s() - t_xkv) * 1e3 / max_n;
    // token rows: sot sequence (sot, language, transcribe), then ordinary text tokens
    const int32_t sot = V == 51864 ? 50257 : 50258;
    for (int i = 0; i < max_n; i++) {
        int32_t *row = b.tok + (size_t)i * tok_stride;
        row[0] = sot;
        row[1] = sot + 1;
        row[2] = sot + 101;
        for (int j = DEC_PROMPT; j < tok_stride; j++) row[j] = (int32_t)(rng_next(&rng) % 50000u) + 100;
    }
    const int prefill[2][2] = {{0, DEC_PROMPT}, {DEC_PROMPT, DEC_GENERATED}}; // {offset, count}
    for (int i = 0; i < max_n; i++) am_seq_reset(b.seqs[i], b.xkv[i]);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < max_n; i++) {
            ptrs[i] = b.tok + (size_t)i * tok_stride + prefill[s][0];
            ntok[i] = prefill[s][1];
        }
        if ((rc = am_decoder_step(b.dec, b.seqs, ptrs, ntok, max_n, AM_LOGITS_LAST, b.logits))) goto done;
    }
    int n_done = 0;
    for (int k = 0; k < n_nvals && k_dec_n[k] <= max_n; k++, n_done++)
        if ((rc = time_decoder(m, b.dec, b.seqs, ptrs, ntok, b.tok, tok_stride, k_dec_n[k], base, p, b.logits,
                               &dr[k])))
            goto done;
    const size_t per_seq = am_seq_bytes(b.seqs[0]) + per_seq_xkv;
    printf("decoder, single-token steps at context %d..%d, AM_LOGITS_LAST (%.2f GFLOP/token)\n", base,
           base + DEC_MAX_STEPS - 1, am_decoder_flops_per_token(m, base) * 1e-9);
    printf("  %-6s %10s %10s %10s %9s %9s\n", "N", "ms/step", "ms/row", "tokens/s", "speedup", "GFLOP/s");
    for (int k = 0; k < n_done; k++)
        printf("  N=%-4d %10.2f %10.3f %10.1f %8.2fx %9.1f\n", dr[k].n, dr[k].ms_step, dr[k].ms_step / dr[k].n,
               dr[k].tok_s, dr[k].tok_s / dr[0].tok_s, dr[k].gflops);
    for (int k = n_done; k < n_nvals; k++) printf("  N=%-4d skipped (state over the %zu MB budget)\n", k_dec_n[k],
                                                  k_dec_mem_budget >> 20);
    printf("  state per sequence: self KV %.1f MB (n_ctx %d) + cross K/V %.1f MB = %.1f MB; N=%d: %.0f MB\n",
           mb(am_seq_bytes(b.seqs[0])), hp->n_text_ctx, mb(per_seq_xkv), mb(per_seq), max_n, mb(per_seq * max_n));
    printf("  cross K/V setup: %.1f ms per window\n", ms_xkv);

    // ---- summary
    printf("%s: enc B1 %.0f ms/win, B%d %.0f ms/win (%.2f speedup, %.0f%% of sgemm); dec", label, ms_b1, ENC_BATCH,
           ms_b8, ms_b1 / ms_b8, 100 * g8 / mc->sgemm_peak);
    for (int k = 0; k < n_done; k++) printf(" N%d %.2f", dr[k].n, dr[k].ms_step);
    printf(" ms/step (N%d %.1fx tok/s vs N1); sgemm %.0f GFLOP/s\n\n", dr[n_done - 1].n,
           dr[n_done - 1].tok_s / dr[0].tok_s, mc->sgemm_peak);
done:
    if (rc) fail(label);
    model_bench_free(&b);
    return rc ? 1 : 0;
}

// ---------------------------------------------------------------- main
static int usage(const char *argv0, int rc) {
    fprintf(rc ? stderr : stdout,
            "usage: %s [--model tiny|base|all] [-m FILE] [--quick] [--write-model PATH]\n"
            "  --model  generated random-weight model(s) at real sizes (default all; tiny with --quick)\n"
            "  -m FILE  benchmark a whisper.cpp ggml model file instead (--model is then ignored)\n"
            "  --quick  fewer repetitions (CI smoke run)\n"
            "  --write-model PATH  write the generated --model (tiny or base) as a ggml file and exit\n"
            "threads: set AMANUENSIS_THREADS (default: all cores)\n",
            argv0);
    return rc;
}

int main(int argc, char **argv) {
    const char *file = NULL, *which = NULL, *out_model = NULL;
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) which = argv[++i];
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) file = argv[++i];
        else if (strcmp(argv[i], "--write-model") == 0 && i + 1 < argc) out_model = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return usage(argv[0], 0);
        else return usage(argv[0], 1);
    }
    if (!which) which = quick ? "tiny" : "all"; // a quick run must fit a CI minute on 2 cores
    if (strcmp(which, "tiny") && strcmp(which, "base") && strcmp(which, "all")) return usage(argv[0], 1);
    if (out_model) {
        for (size_t i = 0; i < AM_ARRAY_LEN(k_sizes); i++)
            if (!strcmp(which, k_sizes[i].name)) return write_model(&k_sizes[i], out_model);
        fprintf(stderr, "bench_core: --write-model needs --model tiny or base\n");
        return 1;
    }
    const plan p = quick ? (plan){2, 10, 1, 1, 1, 2, 0.1} : (plan){5, 50, 3, 2, 3, 4, 0.5};
    printf("bench_core%s: %d threads\n\n", quick ? " --quick" : "", am_nn_threads());
    const double t_start = am_time_s();
    machine mc;
    if (bench_sgemm(&p, &mc)) return fail("sgemm");
    if (file) {
        am_model *m = am_model_load(file);
        if (!m) return fail(file);
        const int rc = bench_model(m, m->name, &p, &mc);
        am_model_free(m);
        if (rc) return 1;
    } else {
        for (size_t i = 0; i < AM_ARRAY_LEN(k_sizes); i++) {
            if (strcmp(which, "all") && strcmp(which, k_sizes[i].name)) continue;
            const double t0 = am_time_s();
            am_model *m = generate_model(&k_sizes[i]);
            if (!m) return fail(k_sizes[i].name);
            printf("(generated %s in %.1f s)\n", k_sizes[i].name, am_time_s() - t0);
            const int rc = bench_model(m, k_sizes[i].name, &p, &mc);
            am_model_free(m);
            if (rc) return 1;
        }
    }
    printf("total %.1f s\n", am_time_s() - t_start);
    return 0;
}
