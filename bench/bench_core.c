// bench_core.c — the core compute against the machine's own limits, measured in one run.
//
// Usage: bench_core [--model tiny|base|all] [-m FILE] [--type T] [--kv-type f32|f16] [--quick] [--json]
//        bench_core --model tiny|base [--type T] [--no-eot] --write-model PATH
//
// Limits, measured in this run:
//   sgemm peak       OpenBLAS float32 GEMM on all threads, M = 1500, N = K = 768..1536
//   read bandwidth   all threads streaming a 256 MiB buffer
// The machine is shared and its speed drifts by tens of percent over seconds,
// so every repetition of a figure is paired with the limit measured right
// before and right after it (their mean): a figure's fraction is the median
// over its repetitions of (its rate / that limit), its time the best
// repetition; the limits printed are the best seen.
// Figures:
//   encoder  ms per 30 s window at batch 1 and 8; its FLOPs (am_encoder_flops_per_window)
//            per second as a fraction of the sgemm peak
//   decoder  ms per single-token step at N = 1, 4, 16, 64 sequences, each with its own
//            window (cross K/V) at context 53..116; the bytes a step must read — the
//            weights once in their type (am_decoder_weight_bytes) plus, per sequence,
//            its cross K/V and its KV cache up to its position — per second as a
//            fraction of the read bandwidth
//   state    memory per window (cross K/V + KV cache) for each kv type
// --json prints the same as one JSON object on stdout (the text goes to stderr).
//
// Models are generated in memory with random weights at the real whisper sizes
// (a ggml file per shared/FORMAT.md, loaded with am_model_load_buffer; --type
// picks the matrices' type, default f16); -m FILE benchmarks a real file.
// --write-model writes the generated model as a file (server benchmarks, peers);
// --no-eot zeroes the end-of-text row of the token embedding, so that greedy
// decoding without timestamps always runs the full token budget (equal work
// between engines). Exit 0, or 1 with a message on error. No timing assertions.
#include <cjson/cJSON.h>
#include <math.h>
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

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define AM_CLONES_BENCH __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AM_CLONES_BENCH
#endif

// ---------------------------------------------------------------- settings
enum {
    GEN_N_VOCAB = 51864,      // .en vocabulary incl. specials
    GEN_N_FILE_VOCAB = 50256, // ordinary tokens stored in the file
    GEN_EOT = 50256,          // end-of-text id of the .en vocabulary
    GEN_N_AUDIO_CTX = 1500,
    GEN_N_TEXT_CTX = 448,
    GEN_N_MELS = 80,
    ENC_MAX_B = 8,      // the batched encoder run
    DEC_MAX_N = 64,     // most sequences stepped together
    DEC_PROMPT = 3,     // sot sequence fed as one prefill
    DEC_GENERATED = 50, // tokens already decoded before the timed steps
    DEC_MAX_STEPS = 64, // timed steps per repetition (then the caches are truncated back)
};

static const int k_enc_b[] = {1, ENC_MAX_B};
static const int k_dec_n[] = {1, 4, 16, 64};
static const size_t k_dec_mem_budget = (size_t)6 << 30; // cap on N * (cross K/V + self KV)
static const size_t k_bw_bytes = (size_t)256 << 20;

typedef struct {
    const char *name;
    int d, heads, enc_layers, dec_layers;
} model_size;

static const model_size k_sizes[] = {{"tiny", 384, 6, 4, 4}, {"base", 512, 8, 6, 6}};

typedef struct {
    int limit_reps;       // tries per limit measurement
    int enc_reps;         // encoder runs per batch size (<= MAX_REPS)
    int dec_reps, dec_min_steps; // (dec_reps <= MAX_REPS)
    double dec_target_s;  // keep stepping a repetition until this much time has passed
} plan;

typedef struct {
    double sgemm; // best GFLOP/s seen
    double bw;    // best GB/s seen
    float *bw_buf;
} limits;

static FILE *g_out; // the text report: stdout, or stderr with --json

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

// ---------------------------------------------------------------- quantization (generator)
// One block of 32 values as ggml's reference quantizers store it (shared/FORMAT.md).
static void put_half(uint8_t *p, float v) {
    const uint16_t h = am_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

static void quantize_block(uint8_t *dst, const float *x, int type) {
    float amax = 0, max = 0, lo = x[0], hi = x[0];
    for (int j = 0; j < 32; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
        lo = fminf(lo, x[j]);
        hi = fmaxf(hi, x[j]);
    }
    uint8_t q[32];
    int levels = 0, has_min = 0;
    float d;
    switch (type) {
    case AM_TYPE_Q8_0: {
        d = amax / 127;
        const float id = d ? 1 / d : 0;
        put_half(dst, d);
        for (int j = 0; j < 32; j++) dst[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
        return;
    }
    case AM_TYPE_Q4_0: levels = 16; d = max / -8; break;
    case AM_TYPE_Q5_0: levels = 32; d = max / -16; break;
    case AM_TYPE_Q4_1: levels = 16; has_min = 1; d = (hi - lo) / 15; break;
    default: levels = 32; has_min = 1; d = (hi - lo) / 31; break; // q5_1
    }
    const float id = d ? 1 / d : 0;
    for (int j = 0; j < 32; j++) {
        const float v = has_min ? (x[j] - lo) * id + 0.5f : x[j] * id + (float)levels / 2 + 0.5f;
        const int qi = (int)v;
        q[j] = (uint8_t)(qi < 0 ? 0 : qi > levels - 1 ? levels - 1 : qi);
    }
    put_half(dst, d);
    uint8_t *p = dst + 2;
    if (has_min) {
        put_half(p, lo);
        p += 2;
    }
    if (levels == 32) {
        uint32_t qh = 0;
        for (int j = 0; j < 32; j++) qh |= (uint32_t)((q[j] >> 4) & 1) << j;
        memcpy(p, &qh, 4);
        p += 4;
    }
    for (int j = 0; j < 16; j++) p[j] = (uint8_t)((q[j] & 0x0f) | (q[j + 16] & 0x0f) << 4);
}

// ---------------------------------------------------------------- model generator
// A writer with buf == NULL only counts bytes (first pass sizes the buffer).
typedef struct {
    uint8_t *buf;
    size_t cap, pos;
    uint64_t rng;
    int overflow;
    int mat_type; // type of the 2-D weight matrices
    int no_eot;   // zero the end-of-text row of the token embedding
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

// One tensor: header, name, then n random values center ± half in `type`;
// zero_row >= 0 zeroes that row (of ne0 values).
static void w_tensor(writer *w, const char *name, int type, int n_dims, int ne0, int ne1, int ne2, float center,
                     float half, int zero_row) {
    const int32_t ne[3] = {ne0, ne1, ne2};
    const size_t name_len = strlen(name);
    size_t n = 1;
    w_i32(w, n_dims);
    w_i32(w, (int32_t)name_len);
    w_i32(w, type);
    for (int i = 0; i < n_dims; i++) {
        w_i32(w, ne[i]);
        n *= (size_t)ne[i];
    }
    w_bytes(w, name, name_len);
    const size_t n_bytes = am_type_bytes(type, n);
    if (w->buf && n_bytes > w->cap - w->pos) w->overflow = 1;
    if (!w->buf || w->overflow) {
        w->pos += n_bytes;
        return;
    }
    uint8_t *dst = w->buf + w->pos;
    float block[32];
    const int bs = am_type_block(type);
    for (size_t i = 0; i < n; i += (size_t)bs) {
        for (int j = 0; j < bs; j++) {
            block[j] = rng_uniform(&w->rng, center, half);
            if (zero_row >= 0 && (i + (size_t)j) / (size_t)ne0 == (size_t)zero_row) block[j] = 0;
        }
        if (type == AM_TYPE_F32) memcpy(dst + 4 * i, block, 4);
        else if (type == AM_TYPE_F16) put_half(dst + 2 * i, block[0]);
        else quantize_block(dst + i / 32 * (size_t)am_type_block_bytes(type), block, type);
    }
    w->pos += n_bytes;
}

#define WEIGHT_HALF 0.05f
#define W_VEC(w, n, center, ...) \
    (snprintf(nm, sizeof nm, __VA_ARGS__), w_tensor((w), nm, AM_TYPE_F32, 1, (n), 1, 1, (center), WEIGHT_HALF, -1))
#define W_MAT(w, in, out, ...) \
    (snprintf(nm, sizeof nm, __VA_ARGS__), w_tensor((w), nm, (w)->mat_type, 2, (in), (out), 1, 0.0f, WEIGHT_HALF, -1))

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

// The ggml file type field for matrices of `type`: 0 f32, 1 f16, else
// 1000 * QNT_VERSION (2) + ggml's file type of that quantization.
static int32_t file_ftype(int type) {
    switch (type) {
    case AM_TYPE_F32: return 0;
    case AM_TYPE_F16: return 1;
    case AM_TYPE_Q4_0: return 2002;
    case AM_TYPE_Q4_1: return 2003;
    case AM_TYPE_Q8_0: return 2007;
    case AM_TYPE_Q5_0: return 2008;
    default: return 2009; // q5_1
    }
}

// The whole ggml file: magic, hparams, filterbank, vocabulary, tensors.
static void w_model(writer *w, const model_size *s) {
    const int d = s->d;
    const int32_t hp[11] = {GEN_N_VOCAB, GEN_N_AUDIO_CTX, d, s->heads, s->enc_layers, GEN_N_TEXT_CTX,
                            d,           s->heads,        s->dec_layers, GEN_N_MELS, file_ftype(w->mat_type)};
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
    // conv weights stay f16 in quantized files, as whisper.cpp's quantizer leaves them
    const int conv_type = w->mat_type == AM_TYPE_F32 ? AM_TYPE_F32 : AM_TYPE_F16;
    w_tensor(w, "encoder.conv1.weight", conv_type, 3, 3, GEN_N_MELS, d, 0.0f, WEIGHT_HALF, -1);
    w_tensor(w, "encoder.conv1.bias", AM_TYPE_F32, 2, 1, d, 1, 0.0f, WEIGHT_HALF, -1); // stored [n,1]
    w_tensor(w, "encoder.conv2.weight", conv_type, 3, 3, d, d, 0.0f, WEIGHT_HALF, -1);
    w_tensor(w, "encoder.conv2.bias", AM_TYPE_F32, 2, 1, d, 1, 0.0f, WEIGHT_HALF, -1);
    w_tensor(w, "encoder.positional_embedding", AM_TYPE_F32, 2, d, GEN_N_AUDIO_CTX, 1, 0.0f, 0.5f, -1);
    for (int i = 0; i < s->enc_layers; i++) {
        w_attn(w, "encoder", i, "attn", d);
        w_mlp(w, "encoder", i, d);
    }
    W_VEC(w, d, 1.0f, "encoder.ln_post.weight");
    W_VEC(w, d, 0.0f, "encoder.ln_post.bias");
    w_tensor(w, "decoder.token_embedding.weight", w->mat_type, 2, d, GEN_N_VOCAB, 1, 0.0f, WEIGHT_HALF,
             w->no_eot ? GEN_EOT : -1);
    w_tensor(w, "decoder.positional_embedding", AM_TYPE_F32, 2, d, GEN_N_TEXT_CTX, 1, 0.0f, 0.5f, -1);
    for (int i = 0; i < s->dec_layers; i++) {
        w_attn(w, "decoder", i, "attn", d);
        w_attn(w, "decoder", i, "cross_attn", d);
        w_mlp(w, "decoder", i, d);
    }
    W_VEC(w, d, 1.0f, "decoder.ln.weight");
    W_VEC(w, d, 0.0f, "decoder.ln.bias");
}

// The generated model's ggml file bytes (malloc'd), or NULL with the error set.
static uint8_t *model_bytes(const model_size *s, int mat_type, int no_eot, size_t *size) {
    writer w = {.rng = 0x9e3779b97f4a7c15ull, .mat_type = mat_type, .no_eot = no_eot};
    w_model(&w, s); // count
    *size = w.pos;
    if (!(w.buf = malloc(*size))) {
        am_set_error(AM_ENOMEM, "out of memory for a %zu MB model file", *size >> 20);
        return NULL;
    }
    w.cap = *size;
    w.pos = 0;
    w.rng = 0x9e3779b97f4a7c15ull;
    w_model(&w, s); // write
    if (w.overflow || w.pos != *size) {
        am_set_error(AM_EINTERNAL, "model writer wrote %zu of %zu bytes", w.pos, *size);
        free(w.buf);
        return NULL;
    }
    return w.buf;
}

static am_model *generate_model(const model_size *s, int mat_type) {
    size_t size;
    uint8_t *buf = model_bytes(s, mat_type, 0, &size);
    am_model *m = buf ? am_model_load_buffer(buf, size, s->name) : NULL;
    free(buf);
    return m;
}

// Write the generated model as a ggml file (for server benchmarks and peers).
static int write_model(const model_size *s, int mat_type, int no_eot, const char *path) {
    size_t size;
    uint8_t *buf = model_bytes(s, mat_type, no_eot, &size);
    if (!buf) return fail(s->name);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(buf, 1, size, f) == size;
    if (f && fclose(f)) ok = 0;
    free(buf);
    if (!ok) {
        fprintf(stderr, "bench_core: cannot write %s\n", path);
        return 1;
    }
    printf("wrote %s (%s size, %s matrices%s, %.1f MB)\n", path, s->name, am_type_name(mat_type),
           no_eot ? ", end-of-text embedding zeroed" : "", size / 1048576.0);
    return 0;
}

// ---------------------------------------------------------------- limits
typedef struct {
    const float *buf;
    size_t n, per;
    double sums[64]; // per task: stored so that the reads cannot be optimized away
} bw_task;

AM_CLONES_BENCH
static void bw_block(void *ctx, int t) {
    bw_task *b = ctx;
    const size_t i0 = (size_t)t * b->per, i1 = AM_MIN(b->n, i0 + b->per);
    float acc[64] = {0}; // 64 independent sums: four 16-lane vectors, no dependency chain
    size_t i = i0;
    for (; i + 64 <= i1; i += 64)
        for (int j = 0; j < 64; j++) acc[j] += b->buf[i + j];
    double s = 0;
    for (int j = 0; j < 64; j++) s += acc[j];
    for (; i < i1; i++) s += b->buf[i];
    b->sums[t] = s;
}

// Read bandwidth in GB/s: every thread sums its share of the buffer (best of reps).
static double measure_bw(limits *lim, int reps) {
    const size_t n = k_bw_bytes / sizeof(float);
    const int T = am_nn_threads();
    bw_task b = {lim->bw_buf, n, (n + (size_t)T - 1) / (size_t)T, {0}};
    double best = 0;
    for (int r = 0; r < reps; r++) {
        const double t0 = am_time_s();
        am_nn_parallel(T, bw_block, &b);
        const double g = (double)k_bw_bytes / (am_time_s() - t0) * 1e-9;
        if (g > best) best = g;
    }
    if (best > lim->bw) lim->bw = best;
    return best;
}

// sgemm peak in GFLOP/s: the best M = 1500 product over N = K = 768, 1024, 1536.
static double measure_sgemm(limits *lim, int reps) {
    const int nk[] = {768, 1024, 1536};
    double best = 0;
    for (size_t i = 0; i < AM_ARRAY_LEN(nk); i++) {
        const double g = am_gemm_sgemm_gflops(1500, nk[i], nk[i], reps);
        if (g > best) best = g;
    }
    if (best > lim->sgemm) lim->sgemm = best;
    return best;
}

// ---------------------------------------------------------------- results
typedef struct {
    double ms;     // per window, best repetition
    double gflops; // at that time
    double frac;   // median over repetitions of GFLOP/s / the sgemm peak measured just before
} enc_result;

typedef struct {
    int n;
    double ms, bytes, gbs; // per step (best repetition); bytes read per step; bytes / time
    double frac;           // median over repetitions of GB/s / the read bandwidth measured just before
} dec_result;

#define MAX_REPS 16

static double median(double *v, int n) {
    for (int i = 1; i < n; i++) // insertion sort: a handful of values
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            const double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A quick limit to pair with one repetition (the best product shape / one pass).
static double pair_sgemm(limits *lim) {
    const double g = am_gemm_sgemm_gflops(1500, 1536, 1536, 2);
    if (g > lim->sgemm) lim->sgemm = g;
    return g;
}

typedef struct {
    char name[64];
    int ran;
    enc_result enc[AM_ARRAY_LEN(k_enc_b)];
    dec_result dec[AM_ARRAY_LEN(k_dec_n)];
    int n_dec;
    double state_mb[2][2]; // [kv f32/f16][cross K/V, KV cache] per window
    double enc_scratch_mb, weights_mb;
} model_result;

// ---------------------------------------------------------------- encoder
static int bench_encoder(const am_model *m, const plan *p, limits *lim, model_result *res) {
    const size_t mel_win = (size_t)m->hp.n_mels * AM_MEL_WINDOW_FRAMES;
    const size_t out_win = (size_t)m->hp.n_audio_ctx * m->hp.n_audio_state;
    am_encoder *e = am_encoder_create(m, NULL); // the engine's configuration
    float *mel = am_alloc(ENC_MAX_B * mel_win * sizeof(float)), *out = am_alloc(ENC_MAX_B * out_win * sizeof(float));
    int rc = 0;
    if (!e || !mel || !out) {
        rc = e ? am_set_error(AM_ENOMEM, "out of memory for encoder buffers") : am_last_error_code();
        goto done;
    }
    uint64_t rng = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < ENC_MAX_B * mel_win; i++) mel[i] = rng_uniform(&rng, 0.0f, 1.0f);
    if ((rc = am_encoder_run(e, mel, 1, out))) goto done; // warm-up
    const double flops = am_encoder_flops_per_window(m);
    for (size_t k = 0; k < AM_ARRAY_LEN(k_enc_b); k++) {
        const int B = k_enc_b[k];
        double best = 1e30, fr[MAX_REPS];
        for (int r = 0; r < p->enc_reps; r++) {
            const double before = pair_sgemm(lim), t0 = am_time_s();
            if ((rc = am_encoder_run(e, mel, B, out))) goto done;
            const double dt = am_time_s() - t0;
            best = fmin(best, dt);
            fr[r] = flops * B / dt * 1e-9 / (0.5 * (before + pair_sgemm(lim)));
        }
        res->enc[k].ms = best * 1e3 / B;
        res->enc[k].gflops = flops * B / best * 1e-9;
        res->enc[k].frac = median(fr, p->enc_reps);
    }
    res->enc_scratch_mb = mb(am_encoder_scratch_bytes(e));
done:
    am_encoder_free(e);
    am_free(mel);
    am_free(out);
    return rc;
}

// ---------------------------------------------------------------- decoder
// Bytes a single-token step reads for one sequence at position pos: its cross
// K/V, and its cache's keys (in groups of 64 positions) and values up to pos.
static double seq_step_bytes(const am_model *m, int kv_type, int pos) {
    const double es = kv_type == AM_TYPE_F16 ? 2 : 4, n = pos + 1, n64 = ceil(n / 64) * 64;
    return (double)am_xkv_bytes(m, kv_type) + m->hp.n_text_layer * (n64 + n) * m->hp.n_text_state * es;
}

// Time single-token steps of seqs[0..n), all at position `base` on entry and on return.
// tok: per sequence a row of `tok_stride` ids; step j feeds tok[i*stride + base + j].
static int time_decoder(const am_model *m, am_decoder *dec, am_seq *const *seqs, const int32_t *tok, int tok_stride,
                        int n, int base, int kv_type, const plan *p, limits *lim, float *logits, dec_result *r) {
    const int32_t *ptrs[DEC_MAX_N];
    int ntok[DEC_MAX_N];
    double best_ms = 1e30, fr[MAX_REPS];
    int best_steps = 1;
    const double weights = (double)am_decoder_weight_bytes(m);
    for (int rep = -1; rep < p->dec_reps; rep++) { // rep -1: untimed warm-up
        const int min_steps = rep < 0 ? 2 : p->dec_min_steps;
        const double target = rep < 0 ? 0.0 : p->dec_target_s;
        const double bw = rep < 0 ? 0 : measure_bw(lim, 1);
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
        if (rep < 0) continue;
        double bytes = 0; // bytes of this repetition's steps
        for (int j = 0; j < steps; j++) bytes += weights + n * seq_step_bytes(m, kv_type, base + j);
        fr[rep] = bytes / dt * 1e-9 / (0.5 * (bw + measure_bw(lim, 1)));
        if (dt * 1e3 / steps < best_ms) {
            best_ms = dt * 1e3 / steps;
            best_steps = steps;
        }
    }
    double bytes = 0; // mean over the positions of the best repetition
    for (int j = 0; j < best_steps; j++) bytes += seq_step_bytes(m, kv_type, base + j);
    r->n = n;
    r->ms = best_ms;
    r->bytes = weights + n * bytes / best_steps;
    r->gbs = r->bytes / (best_ms * 1e-3) * 1e-9;
    r->frac = median(fr, p->dec_reps);
    return 0;
}

typedef struct {
    am_decoder *dec;
    float *enc_out, *logits;
    int32_t *tok;
    am_xkv *xkv[DEC_MAX_N];
    am_seq *seqs[DEC_MAX_N];
} dec_bench;

static int bench_decoder(const am_model *m, int kv_type, const plan *p, limits *lim, model_result *res) {
    const am_hparams *hp = &m->hp;
    const int V = hp->n_vocab, T = hp->n_audio_ctx, d = hp->n_audio_state;
    const int tok_stride = DEC_PROMPT + DEC_GENERATED + DEC_MAX_STEPS, base = DEC_PROMPT + DEC_GENERATED;
    dec_bench b = {0};
    int rc = 0, max_n = 0;
    if (base + DEC_MAX_STEPS > hp->n_text_ctx)
        return am_set_error(AM_ERANGE, "n_text_ctx %d too small for the decoder benchmark", hp->n_text_ctx);
    const size_t per_window = am_xkv_bytes(m, kv_type) + am_seq_bytes_for(m, 0, kv_type);
    for (size_t k = 0; k < AM_ARRAY_LEN(k_dec_n); k++)
        if (k_dec_n[k] * per_window <= k_dec_mem_budget) max_n = k_dec_n[k];
    if (max_n == 0) return am_set_error(AM_ENOMEM, "one sequence needs more than the benchmark's budget");
    if (!(b.dec = am_decoder_create(m, NULL)) || !(b.enc_out = am_alloc((size_t)T * d * sizeof(float))) ||
        !(b.logits = am_alloc((size_t)max_n * V * sizeof(float))) ||
        !(b.tok = am_alloc((size_t)max_n * tok_stride * sizeof(int32_t)))) {
        rc = b.dec ? am_set_error(AM_ENOMEM, "out of memory for decoder buffers") : am_last_error_code();
        goto done;
    }
    uint64_t rng = 0x5851f42d4c957f2dull;
    for (int i = 0; i < max_n; i++) { // every window its own encoder output
        for (size_t j = 0; j < (size_t)T * d; j += 97) b.enc_out[j] = rng_uniform(&rng, 0.0f, 1.0f);
        if (!(b.xkv[i] = am_xkv_create(m, kv_type)) || !(b.seqs[i] = am_seq_create(m, 0, kv_type)) ||
            (rc = am_decoder_set_audio(b.dec, &b.xkv[i], b.enc_out, 1))) {
            rc = rc ? rc : am_last_error_code();
            goto done;
        }
    }
    // token rows: sot sequence (sot, language, transcribe), then ordinary text tokens
    const int32_t sot = V == 51864 ? 50257 : 50258;
    for (int i = 0; i < max_n; i++) {
        int32_t *row = b.tok + (size_t)i * tok_stride;
        row[0] = sot;
        row[1] = sot + 1;
        row[2] = sot + 101;
        for (int j = DEC_PROMPT; j < tok_stride; j++) row[j] = (int32_t)(rng_next(&rng) % 50000u) + 100;
    }
    const int32_t *ptrs[DEC_MAX_N];
    int ntok[DEC_MAX_N];
    const int prefill[2][2] = {{0, DEC_PROMPT}, {DEC_PROMPT, DEC_GENERATED}}; // {offset, count}
    for (int i = 0; i < max_n; i++) am_seq_reset(b.seqs[i], b.xkv[i]);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < max_n; i++) {
            ptrs[i] = b.tok + (size_t)i * tok_stride + prefill[s][0];
            ntok[i] = prefill[s][1];
        }
        if ((rc = am_decoder_step(b.dec, b.seqs, ptrs, ntok, max_n, AM_LOGITS_LAST, b.logits))) goto done;
    }
    for (size_t k = 0; k < AM_ARRAY_LEN(k_dec_n) && k_dec_n[k] <= max_n; k++, res->n_dec++)
        if ((rc = time_decoder(m, b.dec, b.seqs, b.tok, tok_stride, k_dec_n[k], base, kv_type, p, lim, b.logits,
                               &res->dec[k])))
            goto done;
done:
    for (int i = 0; i < DEC_MAX_N; i++) {
        am_seq_free(b.seqs[i]);
        am_xkv_free(b.xkv[i]);
    }
    am_decoder_free(b.dec);
    am_free(b.enc_out);
    am_free(b.logits);
    am_free(b.tok);
    return rc;
}

// ---------------------------------------------------------------- report
static void report_model(const model_result *r, const limits *lim, int kv_type) {
    fprintf(g_out, "== %s (%.0f MB of weights in memory)\n", r->name, r->weights_mb);
    fprintf(g_out, "encoder (scratch %.0f MB)        ms/window   GFLOP/s   of sgemm peak\n", r->enc_scratch_mb);
    for (size_t k = 0; k < AM_ARRAY_LEN(k_enc_b); k++)
        fprintf(g_out, "  batch %-3d                     %9.1f %9.1f %10.0f%%\n", k_enc_b[k], r->enc[k].ms,
                r->enc[k].gflops, 100 * r->enc[k].frac);
    fprintf(g_out, "decoder (kv %s)        ms/step  ms/token  MB read/step   GB/s  of read bandwidth\n",
            am_type_name(kv_type));
    for (int k = 0; k < r->n_dec; k++) {
        const dec_result *d = &r->dec[k];
        fprintf(g_out, "  N=%-3d                 %8.2f %9.3f %12.1f %7.1f %10.0f%%\n", d->n, d->ms, d->ms / d->n,
                d->bytes / 1048576.0, d->gbs, 100 * d->frac);
    }
    for (int kv = 0; kv < 2; kv++)
        fprintf(g_out, "  state per window, kv %s: cross K/V %.1f MB + KV cache %.1f MB = %.1f MB\n",
                kv ? "f16" : "f32", r->state_mb[kv][0], r->state_mb[kv][1], r->state_mb[kv][0] + r->state_mb[kv][1]);
    fprintf(g_out, "\n");
}

static void print_json(const model_result *rs, int n, const limits *lim, int kv_type) {
    cJSON *root = cJSON_CreateObject(), *models = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "threads", am_nn_threads());
    cJSON_AddStringToObject(root, "isa", am_isa_name(am_cpu_isa()));
    cJSON_AddNumberToObject(root, "sgemm_gflops", lim->sgemm);
    cJSON_AddNumberToObject(root, "read_gbs", lim->bw);
    cJSON_AddStringToObject(root, "kv_type", am_type_name(kv_type));
    for (int i = 0; i < n; i++) {
        const model_result *r = &rs[i];
        cJSON *mo = cJSON_CreateObject(), *enc = cJSON_CreateObject(), *dec = cJSON_CreateObject();
        cJSON *state = cJSON_CreateObject();
        char key[16];
        for (size_t k = 0; k < AM_ARRAY_LEN(k_enc_b); k++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "ms", r->enc[k].ms);
            cJSON_AddNumberToObject(e, "frac", r->enc[k].frac);
            snprintf(key, sizeof key, "%d", k_enc_b[k]);
            cJSON_AddItemToObject(enc, key, e);
        }
        for (int k = 0; k < r->n_dec; k++) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddNumberToObject(d, "ms", r->dec[k].ms);
            cJSON_AddNumberToObject(d, "bytes", r->dec[k].bytes);
            cJSON_AddNumberToObject(d, "frac", r->dec[k].frac);
            snprintf(key, sizeof key, "%d", r->dec[k].n);
            cJSON_AddItemToObject(dec, key, d);
        }
        for (int kv = 0; kv < 2; kv++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, "cross_kv_mb", r->state_mb[kv][0]);
            cJSON_AddNumberToObject(s, "kv_cache_mb", r->state_mb[kv][1]);
            cJSON_AddItemToObject(state, kv ? "f16" : "f32", s);
        }
        cJSON_AddItemToObject(mo, "enc", enc);
        cJSON_AddItemToObject(mo, "dec", dec);
        cJSON_AddItemToObject(mo, "state_per_window", state);
        cJSON_AddNumberToObject(mo, "weights_mb", r->weights_mb);
        cJSON_AddItemToObject(models, r->name, mo);
    }
    cJSON_AddItemToObject(root, "models", models);
    char *s = cJSON_PrintUnformatted(root);
    if (s) puts(s);
    free(s);
    cJSON_Delete(root);
}

// ---------------------------------------------------------------- main
static int usage(const char *argv0, int rc) {
    fprintf(rc ? stderr : stdout,
            "usage: %s [--model tiny|base|all] [-m FILE] [--type T] [--kv-type f32|f16] [--quick] [--json]\n"
            "       %s --model tiny|base [--type T] [--no-eot] --write-model PATH\n"
            "  --model    generated random-weight model(s) at real sizes (default all; tiny with --quick)\n"
            "  -m FILE    benchmark a whisper.cpp ggml model file instead (--model is then ignored)\n"
            "  --type T   matrix type of generated models: f16 (default), f32, q8_0, q5_0, q5_1, q4_0, q4_1\n"
            "  --kv-type  cross K/V and KV caches in f32 (default) or f16\n"
            "  --quick    fewer repetitions (CI smoke run)\n"
            "  --json     one JSON object on stdout (the text report goes to stderr)\n"
            "  --write-model PATH  write the generated model as a ggml file and exit\n"
            "  --no-eot   (with --write-model) zero the end-of-text embedding row: full-length greedy decodes\n"
            "threads: AMANUENSIS_THREADS (default: all cores)\n",
            argv0, argv0);
    return rc;
}

int main(int argc, char **argv) {
    const char *file = NULL, *which = NULL, *out_model = NULL;
    int quick = 0, json = 0, mat_type = AM_TYPE_F16, kv_type = AM_TYPE_F32, no_eot = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) quick = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--no-eot")) no_eot = 1;
        else if (!strcmp(a, "--model") && v) which = argv[++i];
        else if (!strcmp(a, "-m") && v) file = argv[++i];
        else if (!strcmp(a, "--write-model") && v) out_model = argv[++i];
        else if (!strcmp(a, "--type") && v && am_type_block(am_type_from_name(v))) mat_type = am_type_from_name(argv[++i]);
        else if (!strcmp(a, "--kv-type") && v && (!strcmp(v, "f32") || !strcmp(v, "f16")))
            kv_type = am_type_from_name(argv[++i]);
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(argv[0], 0);
        else return usage(argv[0], 1);
    }
    if (!which) which = quick ? "tiny" : "all"; // a quick run must fit a CI minute on 2 cores
    if (strcmp(which, "tiny") && strcmp(which, "base") && strcmp(which, "all")) return usage(argv[0], 1);
    if (out_model) {
        for (size_t i = 0; i < AM_ARRAY_LEN(k_sizes); i++)
            if (!strcmp(which, k_sizes[i].name)) return write_model(&k_sizes[i], mat_type, no_eot, out_model);
        fprintf(stderr, "bench_core: --write-model needs --model tiny or base\n");
        return 1;
    }
    g_out = json ? stderr : stdout;
    const plan p = quick ? (plan){2, 1, 1, 2, 0.1} : (plan){5, 5, 9, 4, 0.15};
    limits lim = {0};
    if (!(lim.bw_buf = am_alloc(k_bw_bytes))) return fail("bandwidth buffer");
    for (size_t i = 0; i < k_bw_bytes / sizeof(float); i++) lim.bw_buf[i] = 1.0f; // touch every page
    const double t_start = am_time_s();
    fprintf(g_out, "bench_core%s: %d threads, %s kernels\n", quick ? " --quick" : "", am_nn_threads(),
            am_isa_name(am_cpu_isa()));
    fprintf(g_out, "limits at start: sgemm %.1f GFLOP/s, read bandwidth %.1f GB/s\n\n", measure_sgemm(&lim, p.limit_reps),
            measure_bw(&lim, p.limit_reps));
    model_result res[AM_ARRAY_LEN(k_sizes)] = {0};
    int n_res = 0, rc = 0;
    for (size_t i = 0; i < AM_ARRAY_LEN(k_sizes) && !rc; i++) {
        if (!file && strcmp(which, "all") && strcmp(which, k_sizes[i].name)) continue;
        am_model *m = file ? am_model_load(file) : generate_model(&k_sizes[i], mat_type);
        if (!m) {
            rc = fail(file ? file : k_sizes[i].name);
            break;
        }
        model_result *r = &res[n_res++];
        snprintf(r->name, sizeof r->name, "%s", file ? m->name : k_sizes[i].name);
        r->weights_mb = mb(am_model_weight_bytes(m));
        for (int kv = 0; kv < 2; kv++) {
            const int t = kv ? AM_TYPE_F16 : AM_TYPE_F32;
            r->state_mb[kv][0] = mb(am_xkv_bytes(m, t));
            r->state_mb[kv][1] = mb(am_seq_bytes_for(m, 0, t));
        }
        if (bench_encoder(m, &p, &lim, r) || bench_decoder(m, kv_type, &p, &lim, r)) rc = fail(r->name);
        am_model_free(m);
        if (file) break;
    }
    fprintf(g_out, "limits at end: sgemm %.1f GFLOP/s, read bandwidth %.1f GB/s\n", measure_sgemm(&lim, p.limit_reps),
            measure_bw(&lim, p.limit_reps));
    fprintf(g_out, "best limits of the run (the references below): sgemm %.1f GFLOP/s, read bandwidth %.1f GB/s\n\n",
            lim.sgemm, lim.bw);
    for (int i = 0; i < n_res && !rc; i++) report_model(&res[i], &lim, kv_type);
    if (json && !rc) print_json(res, n_res, &lim, kv_type);
    fprintf(g_out, "total %.1f s\n", am_time_s() - t_start);
    am_free(lim.bw_buf);
    return rc ? 1 : 0;
}
