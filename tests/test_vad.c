// test_vad.c — Silero VAD (src/am_vad.h).
//
// 1. reference  the probabilities equal (to float noise) an independent, naive
//               implementation of whisper.cpp's graph written here from the
//               file bytes (its own parser, ggml element order, double sums,
//               am_fp32_to_fp16 rounding, libm expf/tanhf), on speech, noise,
//               a tone, silence and a partial last frame; a copy of the file
//               with every f16 tensor stored as f32 (exact) gives the same bits.
// 2. golden     every case of golden/vad.json (whisper.cpp's segments for every
//               shared clip under three parameter sets): the same number of
//               segments, every boundary within 0.04 s on 16 kHz PCM clips and
//               0.1 s on clips another decoder resampled or decompressed; the
//               worst boundary error per clip is printed.
// 3. loader     truncation at every length of the header and first tensor
//               headers (the first tensor's data sparsely), at and around every
//               tensor boundary and at random; wrong magic, each
//               hyperparameter, bad tensor headers (dims, name, type, shape),
//               unknown / duplicate / missing tensors, trailing bytes, random
//               byte mutations of the structure; bad paths. Each is a clean
//               error (NULL, AM_EFORMAT / AM_EIO / AM_EINVAL, a message), never
//               a crash (exact-size buffers: the sanitizers see any over-read).
// 4. audio      no samples, 1 / 511 / 512 / 513 samples, silence, a prefix gives
//               the same probabilities as the whole clip, repeated calls agree,
//               two threads on one model agree with one.
// 5. segments   hand-computed cases of whisper.cpp's rules (hysteresis, min
//               silence / speech, the 200 ms merge, max speech with and without
//               a silence to cut at, padding, the threshold floor), spans with
//               overlap, and parameter validation.
// 6. speed      10 minutes of speech (release builds): frames per second, real-time factor.
// 7. cli        `amanuensis vad` prints the golden segments; bad options exit 2.
// 8. fuzz       regressions found by fuzz/fuzz_vad_model (NaN / inf in a model's values).
//
// Without the VAD model (shared/fixtures/ggml-silero-v6.2.0.bin; tests/data
// does not carry it) the model cases are skipped and the program exits 77
// after the model-free sections.
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "am_audio.h"
#include "am_test.h"
#include "am_vad.h"

#ifndef AM_BINARY_DIR
#define AM_BINARY_DIR "."
#endif

#define MODEL_REL "fixtures/ggml-silero-v6.2.0.bin"

static uint8_t *g_file; // the model file's bytes
static size_t g_size;
static am_vad_model *g_model;
static char g_model_path[1024];

// ---------------------------------------------------------------- helpers
static float *decode_clip(const char *clip, size_t *n) {
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "audio/%s", clip);
    if (!am_test_find(rel, path, sizeof path)) return NULL;
    float *pcm = NULL;
    if (am_audio_decode_file(path, NULL, &pcm, n)) {
        fprintf(stderr, "decode %s: %s\n", path, am_last_error());
        return NULL;
    }
    return pcm;
}

// Is `clip` a 16 kHz mono PCM WAV (read by whisper.cpp and libav alike)?
static int is_16k_pcm(const char *clip) {
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "audio/%s", clip);
    if (!am_test_find(rel, path, sizeof path)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t h[12], c[8];
    int ok = 0;
    if (fread(h, 1, 12, f) == 12 && !memcmp(h, "RIFF", 4) && !memcmp(h + 8, "WAVE", 4)) {
        while (fread(c, 1, 8, f) == 8) {
            const uint32_t len = c[4] | c[5] << 8 | c[6] << 16 | (uint32_t)c[7] << 24;
            if (!memcmp(c, "fmt ", 4)) {
                uint8_t fmt[8];
                if (len >= 8 && fread(fmt, 1, 8, f) == 8) {
                    const int tag = fmt[0] | fmt[1] << 8, ch = fmt[2] | fmt[3] << 8;
                    const uint32_t rate = fmt[4] | fmt[5] << 8 | fmt[6] << 16 | (uint32_t)fmt[7] << 24;
                    ok = tag == 1 && ch == 1 && rate == 16000;
                }
                break;
            }
            if (fseek(f, (long)(len + (len & 1)), SEEK_CUR)) break;
        }
    }
    fclose(f);
    return ok;
}

// Load from an exact-size heap copy of data[0..n) (a sanitizer sees any over-read).
static am_vad_model *load_copy(const uint8_t *data, size_t n) {
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) return NULL;
    if (n) memcpy(copy, data, n);
    am_vad_model *m = am_vad_model_load_buffer(copy, n);
    free(copy);
    return m;
}

static int g_printed; // failure lines printed by expect_fail (capped)

// A load that must fail cleanly with `code`.
static void expect_fail(am_vad_model *m, int code, const char *what) {
    const int ok = !m && am_last_error_code() == code && *am_last_error();
    CHECK(ok);
    if (!ok && g_printed++ < 20)
        fprintf(stderr, "  %s: model %p, code %d (want %d), '%s'\n", what, (void *)m, am_last_error_code(), code,
                am_last_error());
    am_vad_model_free(m);
}

static uint32_t g_rng = 12345;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

// ---------------------------------------------------------------- the file's layout (parsed here)
typedef struct {
    char name[96];
    size_t hdr;  // offset of the tensor header
    size_t data; // offset of the data
    size_t bytes;
    int type, n_dims;
    int32_t ne[4];
} file_tensor;

static file_tensor g_t[32];
static int g_nt;
static size_t g_hparams_end; // offset of the first tensor header

static int rd32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int parse_layout(void) {
    size_t o = 4;
    const int len = rd32(g_file + o);
    o += 4 + (size_t)len + 3 * 4 + 2 * 4; // type, version, window, context
    const int n_layers = rd32(g_file + o);
    o += 4 + (size_t)n_layers * 12 + 4 * 4;
    g_hparams_end = o;
    g_nt = 0;
    while (o < g_size && g_nt < 32) {
        file_tensor *t = &g_t[g_nt++];
        t->hdr = o;
        t->n_dims = rd32(g_file + o);
        const int nl = rd32(g_file + o + 4);
        t->type = rd32(g_file + o + 8);
        o += 12;
        size_t n = 1;
        for (int i = 0; i < 4; i++) t->ne[i] = 1;
        for (int i = 0; i < t->n_dims; i++, o += 4) n *= (size_t)(t->ne[i] = rd32(g_file + o));
        snprintf(t->name, sizeof t->name, "%.*s", nl, (const char *)g_file + o);
        o += (size_t)nl;
        t->data = o;
        t->bytes = n * (t->type ? 2 : 4);
        o += t->bytes;
    }
    return o == g_size && g_nt == 15;
}

static const file_tensor *tensor(const char *name) {
    for (int i = 0; i < g_nt; i++)
        if (!strcmp(g_t[i].name, name)) return &g_t[i];
    return NULL;
}

// ---------------------------------------------------------------- 1. reference
// Element i (ggml order) of a tensor of the file, as float.
static float tv(const file_tensor *t, size_t i) {
    if (t->type == 1) {
        uint16_t h;
        memcpy(&h, g_file + t->data + 2 * i, 2);
        return am_fp16_to_fp32(h);
    }
    float f;
    memcpy(&f, g_file + t->data + 4 * i, 4);
    return f;
}

static float h16(float x) { return am_fp16_to_fp32(am_fp32_to_fp16(x)); }

// ggml_conv_1d(w, in, s, 1, 1) + bias, ReLU: in (IC, L) channel-major, w ggml
// (3, IC, OC), out (OC, Lout).
static void ref_conv(float *out, const float *in, int IC, int L, const file_tensor *w, const file_tensor *b, int OC,
                     int s, int *Lout) {
    const int lo = (L + 2 - 3) / s + 1;
    for (int oc = 0; oc < OC; oc++)
        for (int t = 0; t < lo; t++) {
            double sum = 0;
            for (int ic = 0; ic < IC; ic++)
                for (int k = 0; k < 3; k++) {
                    const int pos = t * s + k - 1;
                    if (pos >= 0 && pos < L)
                        sum += (double)tv(w, (size_t)k + 3 * ((size_t)ic + (size_t)IC * oc)) * in[ic * L + pos];
                }
            const float v = (float)sum + tv(b, (size_t)oc);
            out[oc * lo + t] = v > 0 ? v : 0;
        }
    *Lout = lo;
}

// Speech probabilities by whisper.cpp's graph, one frame at a time.
static void ref_probs(const float *samples, size_t n, float *probs) {
    const file_tensor *basis = tensor("_model.stft.forward_basis_buffer");
    const file_tensor *ew[4], *eb[4];
    for (int i = 0; i < 4; i++) {
        char nm[96];
        snprintf(nm, sizeof nm, "_model.encoder.%d.reparam_conv.weight", i);
        ew[i] = tensor(nm);
        snprintf(nm, sizeof nm, "_model.encoder.%d.reparam_conv.bias", i);
        eb[i] = tensor(nm);
    }
    const file_tensor *wih = tensor("_model.decoder.rnn.weight_ih"), *whh = tensor("_model.decoder.rnn.weight_hh");
    const file_tensor *bih = tensor("_model.decoder.rnn.bias_ih"), *bhh = tensor("_model.decoder.rnn.bias_hh");
    const file_tensor *ow = tensor("_model.decoder.decoder.2.weight"), *ob = tensor("_model.decoder.decoder.2.bias");
    float h[128] = {0}, c[128] = {0};
    const size_t n_frames = (n + 511) / 512;
    for (size_t f = 0; f < n_frames; f++) {
        float p[640], mag[129 * 4], a[128 * 4], b[128 * 4], g[512];
        for (int i = 0; i < 512; i++) p[64 + i] = f * 512 + i < n ? samples[f * 512 + i] : 0.0f;
        for (int i = 1; i <= 64; i++) {
            p[64 - i] = p[64 + i];
            p[575 + i] = p[575 - i];
        }
        for (int i = 0; i < 640; i++) p[i] = h16(p[i]);
        for (int t = 0; t < 4; t++) { // STFT: 258 kernels over 256 samples at hop 128, magnitude
            float sp[258];
            for (int j = 0; j < 258; j++) {
                double sum = 0;
                for (int k = 0; k < 256; k++) sum += (double)tv(basis, (size_t)k + 256 * (size_t)j) * p[t * 128 + k];
                sp[j] = (float)sum;
            }
            for (int j = 0; j < 129; j++) mag[j * 4 + t] = h16(sqrtf(sp[j] * sp[j] + sp[129 + j] * sp[129 + j]));
        }
        int L;
        ref_conv(a, mag, 129, 4, ew[0], eb[0], 128, 1, &L);
        for (int i = 0; i < 128 * L; i++) a[i] = h16(a[i]);
        ref_conv(b, a, 128, L, ew[1], eb[1], 64, 2, &L);
        for (int i = 0; i < 64 * L; i++) b[i] = h16(b[i]);
        ref_conv(a, b, 64, L, ew[2], eb[2], 64, 2, &L);
        for (int i = 0; i < 64 * L; i++) a[i] = h16(a[i]);
        ref_conv(b, a, 64, L, ew[3], eb[3], 128, 1, &L); // b: (128, 1), float32 into the LSTM
        for (int r = 0; r < 512; r++) {
            double si = 0, sh = 0;
            for (int k = 0; k < 128; k++) {
                si += (double)tv(wih, (size_t)k + 128 * (size_t)r) * b[k];
                sh += (double)tv(whh, (size_t)k + 128 * (size_t)r) * h[k];
            }
            g[r] = ((float)si + tv(bih, (size_t)r)) + ((float)sh + tv(bhh, (size_t)r));
        }
        double out = 0;
        for (int j = 0; j < 128; j++) {
            const float gi = 1.0f / (1.0f + expf(-g[j])), gf = 1.0f / (1.0f + expf(-g[128 + j]));
            const float gg = tanhf(g[256 + j]), go = 1.0f / (1.0f + expf(-g[384 + j]));
            c[j] = gf * c[j] + gi * gg;
            h[j] = go * tanhf(c[j]);
        }
        for (int j = 0; j < 128; j++) out += (double)tv(ow, (size_t)j) * h16(h[j] > 0 ? h[j] : 0);
        probs[f] = 1.0f / (1.0f + expf(-((float)out + tv(ob, 0))));
    }
}

// Test signals: speech (from jfk.wav), white noise, a tone, silence, speech
// again, ending in a partial frame.
static float *make_signal(const float *speech, size_t n_speech, size_t *n_out) {
    const size_t n = 43 * 512 + 300;
    float *x = calloc(n, sizeof *x);
    for (size_t i = 0; i < n; i++) {
        const size_t s0 = i + 6000, s1 = i - 40 * 512 + 20000;
        if (i < 24 * 512) x[i] = s0 < n_speech ? speech[s0] : 0;                                 // speech
        else if (i < 32 * 512) x[i] = ((float)(rnd() >> 8) / 16777216.0f - 0.5f) * 0.2f;          // noise
        else if (i < 38 * 512) x[i] = 0.3f * sinf(2 * 3.14159265f * 440.0f * (float)i / 16000); // tone
        else if (i >= 40 * 512) x[i] = s1 < n_speech ? speech[s1] : 0;                           // speech
    }
    *n_out = n;
    return x;
}

static void section_reference(const float *jfk, size_t n_jfk) {
    size_t n;
    float *x = make_signal(jfk, n_jfk, &n);

    const size_t nf = am_vad_n_frames(n);
    float *p = malloc(nf * sizeof *p), *r = malloc(nf * sizeof *r), *q = malloc(nf * sizeof *q);
    CHECK(am_vad_probs(g_model, x, n, p) == 0);
    ref_probs(x, n, r);
    // Summation order (double here, float there) moves a value across a half-precision
    // rounding boundary now and then; the LSTM carries that on: ~1e-4 at most.
    double worst = 0, mean = 0, lo = 1, hi = 0;
    for (size_t i = 0; i < nf; i++) {
        worst = fmax(worst, fabs((double)p[i] - r[i]));
        mean += fabs((double)p[i] - r[i]) / (double)nf;
        lo = fmin(lo, p[i]);
        hi = fmax(hi, p[i]);
    }
    CHECKF(worst < 1e-3 && mean < 3e-4, "|prob - reference|: max %.3g, mean %.3g over %zu frames", worst, mean, nf);
    CHECKF(lo < 0.1 && hi > 0.9, "probabilities span [%.3f, %.3f]: the signal has speech and non-speech", lo, hi);
    printf("reference: %zu frames, |prob - naive reference| max %.2g, mean %.2g (probabilities %.4f .. %.4f)\n", nf,
           worst, mean, lo, hi);

    // the same file with every f16 tensor stored as f32: identical results
    size_t n32 = g_size;
    for (int i = 0; i < g_nt; i++)
        if (g_t[i].type == 1) n32 += g_t[i].bytes;
    uint8_t *f32 = malloc(n32);
    size_t o = g_hparams_end;
    memcpy(f32, g_file, o);
    for (int i = 0; i < g_nt; i++) {
        const file_tensor *t = &g_t[i];
        const size_t hdr = t->data - t->hdr;
        memcpy(f32 + o, g_file + t->hdr, hdr);
        const int32_t f32type = 0;
        memcpy(f32 + o + 8, &f32type, 4);
        o += hdr;
        const size_t ne = t->type ? t->bytes / 2 : t->bytes / 4;
        for (size_t k = 0; k < ne; k++, o += 4) {
            const float v = tv(t, k);
            memcpy(f32 + o, &v, 4);
        }
    }
    CHECK(o == n32);
    am_vad_model *m32 = load_copy(f32, n32);
    CHECKF(m32 != NULL, "f32 copy of the model: %s", am_last_error());
    if (m32) {
        CHECK(am_vad_model_info(m32)->n_f16 == 0);
        CHECK(am_vad_probs(m32, x, n, q) == 0);
        CHECK(!memcmp(p, q, nf * sizeof *p));
    }
    am_vad_model_free(m32);
    free(f32);
    free(x);
    free(p);
    free(r);
    free(q);
}

// ---------------------------------------------------------------- 2. golden
// The variant's whisper.cpp flags (e.g. "-vt 0.3 -vsd 300") as parameters.
static int variant_params(const char *flags, am_vad_params *p) {
    *p = am_vad_default_params();
    char buf[256];
    snprintf(buf, sizeof buf, "%s", flags);
    char *save = NULL;
    for (char *k = strtok_r(buf, " ", &save); k; k = strtok_r(NULL, " ", &save)) {
        char *v = strtok_r(NULL, " ", &save);
        if (!v) return -1;
        if (!strcmp(k, "-vt")) p->threshold = strtof(v, NULL);
        else if (!strcmp(k, "-vspd")) p->min_speech_ms = atoi(v);
        else if (!strcmp(k, "-vsd")) p->min_silence_ms = atoi(v);
        else if (!strcmp(k, "-vmsd")) p->max_speech_s = strtof(v, NULL);
        else if (!strcmp(k, "-vp")) p->speech_pad_ms = atoi(v);
        else if (!strcmp(k, "-vo")) p->samples_overlap_s = strtof(v, NULL);
        else return -1;
    }
    return 0;
}

static int section_golden(void) {
    char path[1024];
    if (!am_test_find("golden/vad.json", path, sizeof path)) {
        SKIP_CASE("golden", "golden/vad.json not found");
        return 0;
    }
    char *text = am_test_read_file(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *variants = cJSON_GetObjectItemCaseSensitive(root, "variants");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases"), *c;
    CHECK(cJSON_IsObject(variants) && cJSON_IsArray(cases));
    // the "default" variant is am_vad_default_params
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "defaults");
    const am_vad_params def = am_vad_default_params();
    CHECK(fabs(cJSON_GetObjectItemCaseSensitive(d, "threshold")->valuedouble - def.threshold) < 1e-6);
    CHECK(cJSON_GetObjectItemCaseSensitive(d, "min_speech_duration_ms")->valueint == def.min_speech_ms);
    CHECK(cJSON_GetObjectItemCaseSensitive(d, "min_silence_duration_ms")->valueint == def.min_silence_ms);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "max_speech_duration_s")) && def.max_speech_s == 0);
    CHECK(cJSON_GetObjectItemCaseSensitive(d, "speech_pad_ms")->valueint == def.speech_pad_ms);
    CHECK(fabs(cJSON_GetObjectItemCaseSensitive(d, "samples_overlap_s")->valuedouble - def.samples_overlap_s) < 1e-6);
    int ran = 0, n_cases = 0;
    char clip_done[64][64];
    int n_clips = 0;
    printf("golden (whisper.cpp segments; tolerance 0.04 s for 16 kHz PCM, 0.1 s otherwise):\n");
    cJSON_ArrayForEach(c, cases) {
        const char *clip = cJSON_GetObjectItemCaseSensitive(c, "clip")->valuestring;
        int seen = 0;
        for (int i = 0; i < n_clips; i++) seen |= !strcmp(clip_done[i], clip);
        if (seen || n_clips == 64) continue;
        snprintf(clip_done[n_clips++], sizeof clip_done[0], "%s", clip);
        size_t n = 0;
        float *pcm = decode_clip(clip, &n);
        if (!pcm) {
            SKIP_CASE(clip, "clip not found or not decodable");
            continue;
        }
        const size_t nf = am_vad_n_frames(n);
        float *probs = malloc(nf * sizeof *probs);
        CHECK(am_vad_probs(g_model, pcm, n, probs) == 0);
        const double tol = is_16k_pcm(clip) ? 0.04 : 0.1;
        double worst_clip = 0;
        char line[512];
        int pos = snprintf(line, sizeof line, "  %-22s tol %.2f:", clip, tol);
        const cJSON *c2;
        cJSON_ArrayForEach(c2, cases) { // every variant of this clip
            if (strcmp(cJSON_GetObjectItemCaseSensitive(c2, "clip")->valuestring, clip)) continue;
            const char *variant = cJSON_GetObjectItemCaseSensitive(c2, "variant")->valuestring;
            const cJSON *flags = cJSON_GetObjectItemCaseSensitive(variants, variant);
            am_vad_params p;
            CHECK(cJSON_IsString(flags) && variant_params(flags->valuestring, &p) == 0);
            am_vad_segment *seg = NULL;
            size_t ns = 0;
            CHECK(am_vad_segments_from_probs(probs, nf, &p, &seg, &ns) == 0);
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(c2, "segments");
            const size_t nw = (size_t)cJSON_GetArraySize(want);
            CHECKF(ns == nw, "%s %s: %zu segments, whisper.cpp %zu", clip, variant, ns, nw);
            double worst = ns == nw ? 0 : INFINITY;
            for (size_t i = 0; i < ns && i < nw; i++) {
                const cJSON *w = cJSON_GetArrayItem(want, (int)i);
                const double e0 = fabs(seg[i].start_cs / 100.0 - cJSON_GetArrayItem(w, 0)->valuedouble);
                const double e1 = fabs(seg[i].end_cs / 100.0 - cJSON_GetArrayItem(w, 1)->valuedouble);
                worst = fmax(worst, fmax(e0, e1));
            }
            CHECKF(worst <= tol + 1e-9, "%s %s: boundary off by %.3f s (tolerance %.2f)", clip, variant, worst, tol);
            worst_clip = fmax(worst_clip, worst);
            pos += snprintf(line + pos, sizeof line - (size_t)pos, " %s %zu seg %.3f;", variant, ns, worst);
            am_vad_segments_free(seg);
            n_cases++;
        }
        printf("%s worst %.3f s\n", line, worst_clip);
        free(probs);
        am_audio_free(pcm);
        ran = 1;
    }
    printf("golden: %d cases\n", n_cases);
    cJSON_Delete(root);
    return ran;
}

// ---------------------------------------------------------------- 3. loader
// Overwrite the int32 at offset `off` of a copy of the file, load, expect AM_EFORMAT.
static void corrupt_i32(size_t off, int32_t v, const char *what) {
    uint8_t *b = malloc(g_size);
    memcpy(b, g_file, g_size);
    memcpy(b + off, &v, 4);
    am_vad_model *m = am_vad_model_load_buffer(b, g_size);
    free(b);
    char msg[160];
    snprintf(msg, sizeof msg, "%s = %d at %zu", what, v, off);
    expect_fail(m, AM_EFORMAT, msg);
}

static void section_loader(void) {
    const double t0 = am_time_s();
    const int checks0 = am_test_checks;
    // truncation: every length through the header and the first tensor headers
    const size_t upto = AM_MIN(g_size, g_t[1].data + 64);
    for (size_t n = 0; n < upto; n++)
        if (n < g_t[0].data || n >= g_t[0].data + g_t[0].bytes || n % 97 == 0) // (tensor 0's data: sparsely)
            expect_fail(load_copy(g_file, n), AM_EFORMAT, "truncated");
    // around every tensor boundary, and random lengths
    for (int i = 0; i < g_nt; i++)
        for (int d = -3; d <= 3; d++) {
            const size_t a = g_t[i].hdr + (size_t)d, b = g_t[i].data + g_t[i].bytes + (size_t)d;
            if (a < g_size) expect_fail(load_copy(g_file, a), AM_EFORMAT, "truncated at a tensor");
            if (b < g_size) expect_fail(load_copy(g_file, b), AM_EFORMAT, "truncated at a tensor end");
        }
    for (int i = 0; i < 40; i++) expect_fail(load_copy(g_file, rnd() % g_size), AM_EFORMAT, "truncated");
    // messages: a cut inside a tensor says "truncated", a cut between tensors "missing"
    expect_fail(load_copy(g_file, g_t[3].data + 5), AM_EFORMAT, "cut in data");
    CHECK(strstr(am_last_error(), "truncated") != NULL);
    expect_fail(load_copy(g_file, g_t[g_nt - 1].hdr), AM_EFORMAT, "last tensor missing");
    CHECK(strstr(am_last_error(), "missing") != NULL);
    // the whole file loads
    am_vad_model *m = load_copy(g_file, g_size);
    CHECK(m != NULL);
    am_vad_model_free(m);

    // header fields
    corrupt_i32(0, 0x67676d6d, "magic");
    CHECK(strstr(am_last_error(), "magic") != NULL);
    corrupt_i32(4, 0, "type length");
    corrupt_i32(4, -1, "type length");
    corrupt_i32(4, 1 << 30, "type length");
    const size_t tl = (size_t)rd32(g_file + 4);
    size_t o = 8 + tl;
    corrupt_i32(o, -1, "version major");
    o += 12;
    corrupt_i32(o, 256, "window");
    corrupt_i32(o, 0, "window");
    corrupt_i32(o + 4, -1, "context");
    corrupt_i32(o + 4, 513, "context");
    o += 8;
    corrupt_i32(o, 3, "encoder layers");
    corrupt_i32(o, 5, "encoder layers");
    corrupt_i32(o, -4, "encoder layers");
    for (size_t k = 0; k < 12 + 4; k++) { // each layer's in / out / kernel, then LSTM and output sizes
        const int32_t v = rd32(g_file + o + 4 + 4 * k);
        corrupt_i32(o + 4 + 4 * k, v + 1, "encoder/LSTM/output size");
        corrupt_i32(o + 4 + 4 * k, 0, "encoder/LSTM/output size");
    }
    // printable type
    {
        uint8_t *b = malloc(g_size);
        memcpy(b, g_file, g_size);
        b[8] = 0;
        expect_fail(am_vad_model_load_buffer(b, g_size), AM_EFORMAT, "NUL in type");
        free(b);
    }
    // tensor headers
    for (int i = 0; i < g_nt; i++) {
        const file_tensor *t = &g_t[i];
        corrupt_i32(t->hdr, -1, "n_dims");
        corrupt_i32(t->hdr, 5, "n_dims");
        corrupt_i32(t->hdr + 4, 0, "name length");
        corrupt_i32(t->hdr + 4, -7, "name length");
        corrupt_i32(t->hdr + 4, 100000, "name length");
        corrupt_i32(t->hdr + 8, 2, "type q4_0");
        corrupt_i32(t->hdr + 8, 8, "type q8_0");
        corrupt_i32(t->hdr + 8, -1, "type");
        for (int d = 0; d < t->n_dims; d++) {
            corrupt_i32(t->hdr + 12 + 4 * (size_t)d, 0, "dimension");
            corrupt_i32(t->hdr + 12 + 4 * (size_t)d, -3, "dimension");
            corrupt_i32(t->hdr + 12 + 4 * (size_t)d, t->ne[d] + 1, "dimension (bad shape)");
            corrupt_i32(t->hdr + 12 + 4 * (size_t)d, INT32_MAX, "dimension");
        }
        if (t->n_dims >= 2) { // fewer dimensions: a different shape
            corrupt_i32(t->hdr, t->n_dims - 1, "n_dims (bad shape)");
        }
        // unknown name: change one character
        uint8_t *b = malloc(g_size);
        memcpy(b, g_file, g_size);
        b[t->data - 1] ^= 0x20;
        expect_fail(am_vad_model_load_buffer(b, g_size), AM_EFORMAT, "unknown tensor");
        CHECK(strstr(am_last_error(), "unknown") != NULL);
        free(b);
    }
    {
        uint8_t *b = malloc(g_size);
        memcpy(b, g_file, g_size);
        const file_tensor *t = &g_t[2]; // encoder 1 weight, renamed to encoder 0's -> twice
        memcpy(b + t->data - strlen(t->name), "_model.encoder.0.reparam_conv.weight", strlen(t->name));
        expect_fail(am_vad_model_load_buffer(b, g_size), AM_EFORMAT, "duplicate tensor");
        free(b);
    }
    // a stft basis stored without its size-1 middle dimension: (256, 258) is a different shape
    // (whisper.cpp compares ne[0..2] too); a bias stored as (N, 1) is the same shape
    {
        const file_tensor *t = tensor("_model.encoder.0.reparam_conv.bias");
        uint8_t *b = malloc(g_size + 4);
        const size_t split = t->hdr + 16; // after n_dims, name length, type, ne0
        memcpy(b, g_file, split);
        const int32_t two = 2, one = 1;
        memcpy(b + t->hdr, &two, 4);
        memcpy(b + split, &one, 4);
        memcpy(b + split + 4, g_file + split, g_size - split);
        am_vad_model *mb = am_vad_model_load_buffer(b, g_size + 4);
        CHECKF(mb != NULL, "bias stored as (128, 1): %s", am_last_error());
        am_vad_model_free(mb);
        free(b);
    }
    // trailing bytes: an incomplete tensor header
    {
        uint8_t *b = calloc(1, g_size + 5);
        memcpy(b, g_file, g_size);
        expect_fail(am_vad_model_load_buffer(b, g_size + 5), AM_EFORMAT, "trailing bytes");
        free(b);
    }
    // random single-byte mutations of the structure (header, tensor headers and names):
    // a clean error or, for a byte that is free data (the version, the context), a model
    int structural = 0;
    for (int i = 0; i < 600; i++) {
        const int which = (int)(rnd() % (unsigned)(g_nt + 1));
        size_t lo = 0, hi = g_hparams_end;
        if (which < g_nt) {
            lo = g_t[which].hdr;
            hi = g_t[which].data;
        }
        const size_t at = lo + rnd() % (hi - lo);
        uint8_t *b = malloc(g_size);
        memcpy(b, g_file, g_size);
        b[at] = (uint8_t)(b[at] ^ (1u + rnd() % 255u));
        am_vad_model *mm = am_vad_model_load_buffer(b, g_size);
        if (mm) {
            am_vad_model_free(mm);
        } else {
            structural++;
            CHECK(am_last_error_code() == AM_EFORMAT && *am_last_error());
        }
        free(b);
    }
    CHECK(structural > 400);
    // paths
    expect_fail(am_vad_model_load(NULL), AM_EINVAL, "NULL path");
    expect_fail(am_vad_model_load("/nonexistent/vad.bin"), AM_EIO, "nonexistent");
    expect_fail(am_vad_model_load("/"), AM_EIO, "directory");
    expect_fail(am_vad_model_load("/dev/null"), AM_EIO, "device");
    char tmp[] = "/tmp/test_vad_XXXXXX";
    const int fd = mkstemp(tmp);
    if (fd >= 0) {
        close(fd);
        expect_fail(am_vad_model_load(tmp), AM_EFORMAT, "empty file");
        unlink(tmp);
    }
    expect_fail(am_vad_model_load_buffer(NULL, 10), AM_EINVAL, "NULL buffer");
    expect_fail(am_vad_model_load_buffer(g_file, 0), AM_EFORMAT, "empty buffer");
    printf("loader: %d checks (truncation, corruption, %d of 600 mutations refused, paths) in %.1f s\n",
           am_test_checks - checks0, structural, am_time_s() - t0);
}

// ---------------------------------------------------------------- 4. audio
typedef struct {
    const float *x;
    size_t n;
    float *probs;
    int rc;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    j->rc = am_vad_probs(g_model, j->x, j->n, j->probs);
    return NULL;
}

static void section_audio(const float *jfk, size_t n_jfk) {
    const am_vad_params def = am_vad_default_params();
    am_vad_segment *seg = (am_vad_segment *)1;
    size_t ns = 99;
    // no samples
    CHECK(am_vad_n_frames(0) == 0);
    CHECK(am_vad_probs(g_model, NULL, 0, NULL) == 0);
    CHECK(am_vad_detect(g_model, NULL, 0, NULL, &seg, &ns) == 0 && seg == NULL && ns == 0);
    // very short audio: one or two frames, probabilities in [0, 1], no segment (shorter than min speech)
    const size_t lens[] = {1, 100, 511, 512, 513, 1024, 4000};
    for (size_t i = 0; i < AM_ARRAY_LEN(lens); i++) {
        const size_t n = lens[i], nf = am_vad_n_frames(n);
        CHECK(nf == (n + 511) / 512);
        float p[16];
        CHECK(am_vad_probs(g_model, jfk + 16000, n, p) == 0);
        for (size_t f = 0; f < nf; f++) CHECK(p[f] >= 0 && p[f] <= 1);
        CHECK(am_vad_detect(g_model, jfk + 16000, n, &def, &seg, &ns) == 0 && ns == 0 && seg == NULL);
    }
    // silence: low probabilities, no segments
    const size_t n_sil = 10 * 16000;
    float *sil = calloc(n_sil, sizeof *sil), *ps = malloc(am_vad_n_frames(n_sil) * sizeof *ps);
    CHECK(am_vad_probs(g_model, sil, n_sil, ps) == 0);
    float mx = 0;
    for (size_t f = 0; f < am_vad_n_frames(n_sil); f++) mx = fmaxf(mx, ps[f]);
    CHECKF(mx < 0.1f, "silence: max probability %.3f", mx);
    CHECK(am_vad_detect(g_model, sil, n_sil, NULL, &seg, &ns) == 0 && ns == 0);
    printf("audio: silence max probability %.4f\n", mx);
    free(sil);
    free(ps);
    // arguments
    float p1;
    CHECK(am_vad_probs(NULL, jfk, 512, &p1) == AM_EINVAL);
    CHECK(am_vad_probs(g_model, NULL, 512, &p1) == AM_EINVAL);
    CHECK(am_vad_probs(g_model, jfk, 512, NULL) == AM_EINVAL);
    CHECK(am_vad_detect(g_model, jfk, 512, NULL, NULL, &ns) == AM_EINVAL);
    am_vad_params bad = def;
    bad.threshold = 2;
    CHECK(am_vad_detect(g_model, jfk, 512, &bad, &seg, &ns) == AM_EINVAL && seg == NULL && ns == 0);
    // a prefix (any length) gives the whole clip's first probabilities; repeated calls agree
    const size_t nf = am_vad_n_frames(n_jfk);
    float *all = malloc(nf * sizeof *all), *again = malloc(nf * sizeof *again), *pre = malloc(nf * sizeof *pre);
    CHECK(am_vad_probs(g_model, jfk, n_jfk, all) == 0);
    CHECK(am_vad_probs(g_model, jfk, n_jfk, again) == 0);
    CHECK(!memcmp(all, again, nf * sizeof *all));
    const size_t cuts[] = {512, 512 * 15, 512 * 16, 512 * 17 + 1, 512 * 100, 512 * 111 + 37};
    for (size_t i = 0; i < AM_ARRAY_LEN(cuts); i++) {
        if (cuts[i] > n_jfk) continue;
        CHECK(am_vad_probs(g_model, jfk, cuts[i], pre) == 0);
        CHECKF(!memcmp(pre, all, cuts[i] / 512 * sizeof *pre), "prefix of %zu samples", cuts[i]);
    }
    // two threads on one model
    thread_job jobs[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        jobs[i] = (thread_job){jfk, n_jfk, malloc(nf * sizeof(float)), -1};
        CHECK(pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].rc == 0 && !memcmp(jobs[i].probs, all, nf * sizeof *all));
        free(jobs[i].probs);
    }
    free(all);
    free(again);
    free(pre);
}

// ---------------------------------------------------------------- 5. segments
// Probabilities from a pattern: runs of (count, value).
static size_t pattern(float *p, const float *runs, int n_runs) {
    size_t n = 0;
    for (int i = 0; i < n_runs; i++)
        for (int k = 0; k < (int)runs[2 * i]; k++) p[n++] = runs[2 * i + 1];
    return n;
}

// Segments of probs under p equal want (n_want pairs of centiseconds).
static void expect_segments(const char *name, const float *probs, size_t n, const am_vad_params *p,
                            const int64_t *want, size_t n_want) {
    am_vad_segment *seg = NULL;
    size_t ns = 0;
    const int rc = am_vad_segments_from_probs(probs, n, p, &seg, &ns);
    int same = rc == 0 && ns == n_want;
    for (size_t i = 0; same && i < ns; i++) same = seg[i].start_cs == want[2 * i] && seg[i].end_cs == want[2 * i + 1];
    CHECKF(same, "%s: rc %d, %zu segments", name, rc, ns);
    if (!same)
        for (size_t i = 0; i < ns; i++)
            fprintf(stderr, "    [%lld, %lld]\n", (long long)seg[i].start_cs, (long long)seg[i].end_cs);
    am_vad_segments_free(seg);
}

static void section_segments(void) {
    const am_vad_params def = am_vad_default_params();
    CHECK(def.threshold == 0.5f && def.min_speech_ms == 250 && def.min_silence_ms == 100 && def.max_speech_s == 0 &&
          def.speech_pad_ms == 30 && def.samples_overlap_s == 0.1f && am_vad_check_params(&def) == 0);
    static float p[1024];
    size_t n;
    // all silence: nothing; all speech: the whole clip (pad clamped to both ends)
    n = pattern(p, (const float[]){100, 0.0f}, 1);
    expect_segments("silence", p, n, &def, NULL, 0);
    n = pattern(p, (const float[]){100, 1.0f}, 1);
    expect_segments("all speech", p, n, &def, (const int64_t[]){0, 320}, 1);
    // one segment [5120, 15360) samples: padded by 480 -> [4640, 15840) = 29, 99 cs
    n = pattern(p, (const float[]){10, 0.0f, 20, 0.9f, 70, 0.0f}, 3);
    expect_segments("one segment", p, n, &def, (const int64_t[]){29, 99}, 1);
    // too short (5 frames = 2560 samples < 4000): dropped
    n = pattern(p, (const float[]){10, 0.0f, 5, 0.9f, 70, 0.0f}, 3);
    expect_segments("too short", p, n, &def, NULL, 0);
    // a gap of 5 frames (2560 samples < 200 ms) between two segments: merged
    n = pattern(p, (const float[]){10, 0.0f, 20, 0.9f, 5, 0.0f, 20, 0.9f, 45, 0.0f}, 5);
    expect_segments("merged", p, n, &def, (const int64_t[]){29, 179}, 1);
    // hysteresis: 0.4 (above threshold - 0.15) does not end speech
    n = pattern(p, (const float[]){10, 0.0f, 10, 0.9f, 40, 0.4f, 40, 0.0f}, 4);
    expect_segments("hysteresis", p, n, &def, (const int64_t[]){29, 195}, 1);
    // the floor of the end threshold: threshold 0.1 ends only below 0.01
    am_vad_params q = def;
    q.threshold = 0.1f;
    n = pattern(p, (const float[]){10, 0.0f, 10, 0.9f, 40, 0.02f, 40, 0.005f}, 4);
    expect_segments("threshold floor", p, n, &q, (const int64_t[]){29, 195}, 1);
    // silence too short for min_silence (300 ms = 4800 samples; 9 frames = 4608): one segment
    q = def;
    q.min_silence_ms = 300;
    n = pattern(p, (const float[]){10, 0.0f, 20, 0.9f, 9, 0.0f, 20, 0.9f, 41, 0.0f}, 5);
    expect_segments("min silence", p, n, &q, (const int64_t[]){29, 192}, 1);
    // max speech without silence: cut every 78848 samples, then the 200 ms merge joins the parts again
    q = def;
    q.max_speech_s = 5;
    n = pattern(p, (const float[]){400, 1.0f}, 1);
    expect_segments("max speech, no silence", p, n, &q, (const int64_t[]){0, 1280}, 1);
    // max speech cut at the last silence over 98 ms (min silence 1 s keeps the segment open)
    q.speech_pad_ms = 0;
    q.min_silence_ms = 1000;
    n = pattern(p, (const float[]){100, 1.0f, 10, 0.0f, 90, 1.0f, 100, 0.0f}, 4);
    expect_segments("max speech at silence", p, n, &q, (const int64_t[]){0, 320, 352, 640}, 2);
    // fractional max speech counts whole seconds: 5.9 behaves as 5
    q.max_speech_s = 5.9f;
    expect_segments("max speech 5.9", p, n, &q, (const int64_t[]){0, 320, 352, 640}, 2);
    q.max_speech_s = INFINITY; // no limit: one segment (the silence is shorter than min silence)
    expect_segments("max speech inf", p, n, &q, (const int64_t[]){0, 640}, 1);
    // padding between close segments: each side takes half the gap (3584 samples < 2 * 3200)
    q = def;
    q.speech_pad_ms = 200;
    n = pattern(p, (const float[]){20, 0.9f, 7, 0.0f, 20, 0.9f, 53, 0.0f}, 4);
    expect_segments("half gap padding", p, n, &q, (const int64_t[]){0, 75, 75, 170}, 2);
    // min speech 0 keeps one-frame segments (cut by min silence 0)
    q = def;
    q.min_speech_ms = 0;
    q.min_silence_ms = 0;
    q.speech_pad_ms = 0;
    n = pattern(p, (const float[]){10, 0.0f, 1, 0.9f, 20, 0.0f}, 3);
    expect_segments("one frame", p, n, &q, (const int64_t[]){32, 35}, 1);
    // no frames
    expect_segments("no frames", NULL, 0, &def, NULL, 0);

    // spans: whisper.cpp's cut of the audio (overlap after all but the last, clamped to n - 1)
    const am_vad_segment segs[] = {{32, 227}, {327, 441}, {1090, 1101}};
    am_vad_span sp[3];
    CHECK(am_vad_spans(sp, segs, 3, 176000, 0.1f) == 0);
    CHECK(sp[0].start == 5120 && sp[0].speech_end == 36320 && sp[0].end == 37920);
    CHECK(sp[1].start == 52320 && sp[1].speech_end == 70560 && sp[1].end == 72160);
    CHECK(sp[2].start == 174400 && sp[2].speech_end == 175999 && sp[2].end == 175999);
    CHECK(am_vad_spans(sp, segs, 2, 71000, 0.0f) == 0 && sp[1].end == 70560 && sp[0].end == 36320);
    CHECK(am_vad_spans(sp, segs, 2, 71000, 0.5f) == 0 && sp[0].end == 44320 && sp[1].end == 70560);
    CHECK(am_vad_spans(NULL, NULL, 0, 100, 0.1f) == 0);
    CHECK(am_vad_spans(NULL, segs, 1, 100, 0.1f) == AM_EINVAL);
    CHECK(am_vad_spans(sp, segs, 1, 100, -1.0f) == AM_EINVAL);

    // parameter validation: each field out of bounds is AM_EINVAL naming the field
    const struct {
        const char *field;
        int which;
        double v;
    } cases[] = {
        {"threshold", 0, 0.0},          {"threshold", 0, 1.0},         {"threshold", 0, -0.5},
        {"threshold", 0, NAN},          {"threshold", 0, 1.5},         {"min_speech_ms", 1, -1},
        {"min_speech_ms", 1, 3600001},  {"min_silence_ms", 2, -1},     {"min_silence_ms", 2, 3600001},
        {"max_speech_s", 3, -1},        {"max_speech_s", 3, NAN},      {"max_speech_s", 3, 86401},
        {"max_speech_s", 3, -INFINITY}, {"speech_pad_ms", 4, -1},      {"speech_pad_ms", 4, 60001},
        {"samples_overlap_s", 5, -0.1}, {"samples_overlap_s", 5, 10.5}, {"samples_overlap_s", 5, NAN},
    };
    for (size_t i = 0; i < AM_ARRAY_LEN(cases); i++) {
        am_vad_params b = def;
        const double v = cases[i].v;
        switch (cases[i].which) {
        case 0: b.threshold = (float)v; break;
        case 1: b.min_speech_ms = (int)v; break;
        case 2: b.min_silence_ms = (int)v; break;
        case 3: b.max_speech_s = (float)v; break;
        case 4: b.speech_pad_ms = (int)v; break;
        default: b.samples_overlap_s = (float)v; break;
        }
        const int rc = am_vad_check_params(&b);
        CHECKF(rc == AM_EINVAL && strstr(am_last_error(), cases[i].field), "%s = %g: rc %d '%s'", cases[i].field, v,
               rc, am_last_error());
        am_vad_segment *seg = (am_vad_segment *)1;
        size_t ns = 9;
        CHECK(am_vad_segments_from_probs(p, 10, &b, &seg, &ns) == AM_EINVAL && seg == NULL && ns == 0);
    }
    q = def;
    q.max_speech_s = INFINITY;
    CHECK(am_vad_check_params(&q) == 0);
    q.max_speech_s = 86400;
    q.threshold = 0.999f;
    q.min_speech_ms = q.min_silence_ms = 3600000;
    q.speech_pad_ms = 60000;
    q.samples_overlap_s = 10;
    CHECK(am_vad_check_params(&q) == 0);
    CHECK(am_vad_check_params(NULL) == AM_EINVAL);
    am_vad_segment *seg = NULL;
    size_t ns = 0;
    CHECK(am_vad_segments_from_probs(p, 10, NULL, &seg, &ns) == AM_EINVAL);
    CHECK(am_vad_segments_from_probs(NULL, 10, &def, &seg, &ns) == AM_EINVAL);
    CHECK(am_vad_segments_from_probs(p, 10, &def, NULL, &ns) == AM_EINVAL);
}

// ---------------------------------------------------------------- 6. speed
static void section_speed(const float *clip, size_t n_clip) {
#if defined(__SANITIZE_ADDRESS__) || defined(__OPTIMIZE__) == 0
    (void)clip;
    (void)n_clip;
    SKIP_CASE("speed", "sanitizer or unoptimized build");
#else
    const size_t n = 600 * 16000; // 10 minutes
    float *x = malloc(n * sizeof *x), *p = malloc(am_vad_n_frames(n) * sizeof *p);
    for (size_t i = 0; i < n; i++) x[i] = clip[i % n_clip];
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        const double t0 = am_time_s();
        CHECK(am_vad_probs(g_model, x, n, p) == 0);
        best = fmin(best, am_time_s() - t0);
    }
    const size_t nf = am_vad_n_frames(n);
    printf("speed: 10 min of audio (%zu frames) in %.0f ms on one thread: %.0f frames/s, real-time factor %.5f\n", nf,
           1e3 * best, nf / best, best / 600.0);
    CHECKF(best < 30.0, "10 minutes took %.1f s", best); // a loose bound: the machine is shared
    free(x);
    free(p);
#endif
}

// ---------------------------------------------------------------- 7. cli
static int run_cli(const char *args, char *out, size_t out_size) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/amanuensis vad %s 2>/dev/null", AM_BINARY_DIR, args);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    const size_t n = fread(out, 1, out_size - 1, f);
    out[n] = 0;
    const int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void section_cli(void) {
    char jfk[1024], args[4096], out[1 << 16];
    if (!am_test_exists(AM_BINARY_DIR "/amanuensis") || !am_test_find("audio/jfk.wav", jfk, sizeof jfk)) {
        SKIP_CASE("cli", "%s/amanuensis not built", AM_BINARY_DIR);
        return;
    }
    snprintf(args, sizeof args, "-q -m '%s' --threshold 0.3 --min-silence-ms 300 '%s'", g_model_path, jfk);
    CHECK(run_cli(args, out, sizeof out) == 0);
    cJSON *j = cJSON_Parse(out);
    const cJSON *seg = cJSON_GetObjectItemCaseSensitive(j, "segments");
    const double want[4][2] = {{0.03, 2.3}, {3.23, 4.45}, {5.38, 7.71}, {8.16, 11.01}}; // vad.json
    CHECKF(cJSON_GetArraySize(seg) == 4, "cli output: %s", out);
    for (int i = 0; i < 4 && i < cJSON_GetArraySize(seg); i++)
        for (int k = 0; k < 2; k++)
            CHECK(fabs(cJSON_GetArrayItem(cJSON_GetArrayItem(seg, i), k)->valuedouble - want[i][k]) < 1e-9);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "spans")) == 4);
    cJSON_Delete(j);
    snprintf(args, sizeof args, "-q -m '%s' --threshold 1.5 '%s'", g_model_path, jfk);
    CHECK(run_cli(args, out, sizeof out) == 2);
    snprintf(args, sizeof args, "-q -m '%s' --min-speech-ms 2.5 '%s'", g_model_path, jfk);
    CHECK(run_cli(args, out, sizeof out) == 2);
    snprintf(args, sizeof args, "-q -m '%s' --bogus 1 '%s'", g_model_path, jfk);
    CHECK(run_cli(args, out, sizeof out) == 2);
    snprintf(args, sizeof args, "-q -m '%s'", g_model_path);
    CHECK(run_cli(args, out, sizeof out) == 2);
    snprintf(args, sizeof args, "-q -m /nonexistent.bin '%s'", jfk);
    CHECK(run_cli(args, out, sizeof out) == 1);
    snprintf(args, sizeof args, "-q -m '%s' /nonexistent.wav", g_model_path);
    CHECK(run_cli(args, out, sizeof out) == 1);
}

// ---------------------------------------------------------------- main
// ---------------------------------------------------------------- transcription chunks
static void section_chunks(void) {
    am_vad_chunk *c = NULL;
    size_t n = 7;
    const size_t total = 16000 * 600; // 10 minutes
    // no speech: no chunks
    CHECK(am_vad_chunks(NULL, 0, total, 30.0, &c, &n) == 0 && c == NULL && n == 0);
    // short segments merge while the chunk spans <= 30 s; the silence inside a chunk is kept
    const am_vad_segment a[] = {{100, 500}, {800, 1500}, {2000, 3000}, {3100, 3400}, {5000, 5200}};
    CHECK(am_vad_chunks(a, 5, total, 30.0, &c, &n) == 0);
    CHECKF(n == 2, "%zu chunks", n);
    if (n == 2) {
        CHECK(c[0].start == 16000 && c[0].end == 16000 * 30); // 1 s .. 30 s: spans 29 s
        CHECK(c[1].start == 16000 * 31 && c[1].end == 16000 * 52); // 34 s does not fit the first
    }
    free(c);
    // a segment longer than a chunk is cut into pieces of the limit; clamped to the clip
    const am_vad_segment b[] = {{0, 7500}, {7600, 9000}};
    CHECK(am_vad_chunks(b, 2, 16000 * 85, 30.0, &c, &n) == 0);
    CHECKF(n == 3, "%zu chunks", n);
    if (n == 3) {
        CHECK(c[0].start == 0 && c[0].end == 16000 * 30);
        CHECK(c[1].start == 16000 * 30 && c[1].end == 16000 * 60);
        CHECK(c[2].start == 16000 * 60 && c[2].end == 16000 * 85); // 60..75 then 76..85 merge: 25 s
    }
    free(c);
    // every chunk is at most the limit, in order, not overlapping, whatever the segments
    am_vad_segment r[200];
    int64_t t = 0;
    for (int i = 0; i < 200; i++) {
        t += rnd() % 400;
        const int64_t len = 1 + rnd() % 4000;
        r[i] = (am_vad_segment){t, t + len};
        t += len;
    }
    CHECK(am_vad_chunks(r, 200, (size_t)(t * 160), 30.0, &c, &n) == 0 && n > 0);
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        ok &= c[i].end > c[i].start && c[i].end - c[i].start <= 16000 * 30;
        if (i) ok &= c[i].start >= c[i - 1].end;
    }
    CHECK(ok);
    free(c);
    CHECK(am_vad_chunks(a, 5, total, 0.5, &c, &n) == AM_EINVAL);
    CHECK(am_vad_chunks(NULL, 5, total, 30, &c, &n) == AM_EINVAL);
}

// ---------------------------------------------------------------- fuzz regressions
// Found by fuzz/fuzz_vad_model: a model holding a NaN (here the output bias
// "_model.decoder.decoder.2.bias", 4 bytes 00 00 c0 7f) made sigmoid_f hand
// am_nn_exp_nonpos a NaN, whose 2^n step then left-shifted a negative int
// (undefined behaviour: UBSan aborts under make test-asan). Such a model loads
// (whisper.cpp reads it too) and its probabilities are NaN, as expf gives;
// infinite biases saturate to 1 and 0. Also a NaN in the LSTM bias (tanh_f).
static void section_fuzz_regressions(const float *x, size_t n) {
    const file_tensor *ob = tensor("_model.decoder.decoder.2.bias");
    const file_tensor *bih = tensor("_model.decoder.rnn.bias_ih");
    CHECK(ob && ob->type == 0 && ob->bytes == 4 && bih && bih->type == 0);
    if (!ob || !bih || ob->bytes != 4 || n < 3 * AM_VAD_FRAME) return;
    static const struct {
        uint32_t bits;
        int lstm; // set every LSTM input bias instead of the output bias
        const char *what;
    } cases[] = {{0x7fc00000u, 0, "NaN output bias"}, {0xffc00000u, 0, "-NaN output bias"},
                 {0x7f800000u, 0, "+inf output bias"}, {0xff800000u, 0, "-inf output bias"},
                 {0x7fc00000u, 1, "NaN LSTM bias"}};
    for (size_t k = 0; k < AM_ARRAY_LEN(cases); k++) {
        uint8_t *b = malloc(g_size);
        memcpy(b, g_file, g_size);
        const size_t at = cases[k].lstm ? bih->data : ob->data, count = cases[k].lstm ? bih->bytes / 4 : 1;
        for (size_t i = 0; i < count; i++) memcpy(b + at + 4 * i, &cases[k].bits, 4);
        am_vad_model *m = load_copy(b, g_size);
        free(b);
        CHECKF(m != NULL, "%s: %s", cases[k].what, am_last_error());
        if (!m) continue;
        float probs[3];
        CHECK(am_vad_probs(m, x, 3 * AM_VAD_FRAME, probs) == 0);
        for (int f = 0; f < 3; f++) {
            const int want_nan = cases[k].bits != 0x7f800000u && cases[k].bits != 0xff800000u;
            const float want = cases[k].bits == 0x7f800000u ? 1.0f : 0.0f;
            if (cases[k].lstm) // NaN state; the ReLU after the LSTM maps it to 0
                CHECKF(isnan(probs[f]) || (probs[f] >= 0.0f && probs[f] <= 1.0f), "%s: frame %d probability %g",
                       cases[k].what, f, (double)probs[f]);
            else
                CHECKF(want_nan ? isnan(probs[f]) : probs[f] == want, "%s: frame %d probability %g", cases[k].what, f,
                       (double)probs[f]);
        }
        am_vad_segment *seg = NULL;
        size_t n_seg = 99;
        CHECK(am_vad_detect(m, x, 3 * AM_VAD_FRAME, NULL, &seg, &n_seg) == 0);
        am_vad_segments_free(seg);
        am_vad_model_free(m);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const double t0 = am_time_s();
    section_segments(); // needs no data
    section_chunks();
    int have = am_test_find(MODEL_REL, g_model_path, sizeof g_model_path);
    if (have) {
        g_file = am_test_read_file(g_model_path, &g_size);
        have = g_file && parse_layout() && (g_model = am_vad_model_load(g_model_path)) != NULL;
        CHECKF(have, "%s: %s", g_model_path, g_model ? "unexpected layout" : am_last_error());
    }
    if (!have) {
        SKIP_CASE("model", "%s not found (tests/data does not carry it)", MODEL_REL);
        free(g_file);
        return am_test_finish("test_vad", 0);
    }
    const am_vad_info *info = am_vad_model_info(g_model);
    CHECK(!strcmp(info->type, "silero-16k") && info->version[0] == 6 && info->version[1] == 2 &&
          info->version[2] == 0 && info->n_window == 512 && info->n_context == 64 && info->n_f16 == 6);
    size_t n_jfk = 0;
    float *jfk = decode_clip("jfk.wav", &n_jfk);
    if (jfk) {
        section_reference(jfk, n_jfk);
        section_audio(jfk, n_jfk);
        section_fuzz_regressions(jfk, n_jfk);
    } else {
        SKIP_CASE("reference/audio", "audio/jfk.wav not found");
    }
    const int ran_golden = section_golden();
    section_loader();
    if (jfk) section_speed(jfk, n_jfk);
    section_cli();
    am_audio_free(jfk);
    am_vad_model_free(g_model);
    free(g_file);
    printf("test_vad: %.1f s\n", am_time_s() - t0);
    return am_test_finish("test_vad", jfk != NULL || ran_golden);
}
