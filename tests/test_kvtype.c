// test_kvtype.c — the reduced-precision K/V mode (--kv-type f16) against the
// reference, as a measurement: the exact path stays float32 and is what the
// golden tests check; this reports how far half-precision cross K/V and KV
// caches move the results.
//
// For every golden case of every model:
//   logits      the teacher-forced prefix (one prefill) with f16 K/V vs the
//               reference logits: max |error| relative to max |logit|, next to
//               the float32 path's
//   window 0    greedy decode of the first window, with and without timestamps:
//               the first step whose token differs from the reference ("-" = none)
//   transcribe  the long-form trace: the first sampled token (counted over all
//               windows) that differs ("-" = none)
// Checks: the f16 logits stay within 1e-2 of the reference scale, the float32
// ones within the golden tolerance, and every decode completes. The
// divergence steps are printed, not asserted (near-ties make them depend on
// the rounding of half precision, which is the point of measuring them).
#include <stdint.h>

#include "am_audio.h"
#include "am_decode.h"
#include "am_decoder.h"
#include "am_transcribe.h"
#include "golden.h"

#define MAX_CASES 16
#define MAX_TOK 4096

// First index where a (na) and b (nb) differ, -1 when equal.
static int first_diff(const int32_t *a, int na, const int32_t *b, int nb) {
    for (int i = 0; i < AM_MAX(na, nb); i++)
        if (i >= na || i >= nb || a[i] != b[i]) return i;
    return -1;
}

static void fmt_step(char *out, size_t n, int step) {
    if (step < 0) snprintf(out, n, "-");
    else snprintf(out, n, "%d", step);
}

// max |logits - ref| / max |ref| of the teacher-forced prefix with K/V of kv_type.
static double prefix_error(const am_model *m, am_decoder *dec, const cJSON *c, const float *enc, int kv_type) {
    int32_t prefix[64];
    const int n = golden_ints(c, "prefix_tokens", prefix, 64);
    size_t n_ref = 0;
    float *ref = golden_array(c, "logits", &n_ref);
    am_xkv *x = am_xkv_create(m, kv_type);
    am_seq *s = am_seq_create(m, 0, kv_type);
    float *got = malloc((size_t)n * m->hp.n_vocab * sizeof *got);
    double err = -1;
    if (ref && x && s && got && n > 0 && n <= 64 && n_ref == (size_t)n * m->hp.n_vocab &&
        am_decoder_set_audio(dec, &x, enc, 1) == 0) {
        am_seq_reset(s, x);
        const int32_t *t = prefix;
        if (am_decoder_step(dec, &s, &t, &n, 1, AM_LOGITS_ALL, got) == 0) {
            golden_diff g = golden_compare(got, ref, n_ref);
            err = g.max_abs / g.max_ref;
        }
    }
    free(ref);
    free(got);
    am_seq_free(s);
    am_xkv_free(x);
    return err;
}

// Greedy window-0 decodes (timestamps on and off) with f16 K/V: first divergence each.
static void window0(const am_model *m, const am_decoding *dc, am_decoder *dec, const cJSON *c, const float *enc,
                    int div[2]) {
    am_xkv *x = am_xkv_create(m, AM_TYPE_F16);
    am_seq *s = am_seq_create(m, 0, AM_TYPE_F16);
    am_wdec *w = am_wdec_create(dc);
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    div[0] = div[1] = -2;
    if (x && s && w && logits && am_decoder_set_audio(dec, &x, enc, 1) == 0) {
        for (int nt = 0; nt < 2; nt++) {
            am_decode_params p = am_decode_default_params();
            p.temperature_inc = 0;
            p.without_timestamps = nt;
            am_wdec_window win = {.language = "en"};
            if (am_wdec_start(w, &p, &win, &s, 1, x)) break;
            int rc = 0;
            for (int guard = 0; guard < 1000 && rc == 0; guard++) {
                const int32_t *toks[AM_MAX_GROUP];
                am_seq *sq[AM_MAX_GROUP];
                int k[AM_MAX_GROUP];
                const int rows = am_wdec_inputs(w, sq, toks, k);
                if (rows == 0) break;
                if (am_decoder_step(dec, sq, toks, k, rows, AM_LOGITS_LAST, logits)) break;
                rc = am_wdec_feed(w, logits);
            }
            const am_wdec_result *r = am_wdec_result_get(w);
            int32_t want[MAX_TOK];
            const cJSON *trace = cJSON_GetObjectItemCaseSensitive(c, nt ? "decode_window0_notimestamps" : "decode_window0");
            const int n_want = golden_ints(trace, "tokens", want, MAX_TOK);
            if (r) div[nt] = first_diff(r->tokens, r->n_tokens, want, n_want);
        }
    }
    free(logits);
    am_wdec_free(w);
    am_seq_free(s);
    am_xkv_free(x);
}

// The long-form traces of all clips of a model in one engine with f16 K/V.
static void transcribe_all(const am_decoding *dc, const am_model *m, const cJSON *const *cs, int n, int *div) {
    am_mel *mel = am_mel_create(m->mel_filters, m->hp.n_mels);
    am_engine_params ep = am_engine_default_params();
    ep.kv_type = AM_TYPE_F16;
    am_engine *eng = mel ? am_engine_create(dc, &ep) : NULL;
    am_job *jobs[MAX_CASES] = {0};
    for (int i = 0; i < n; i++) {
        char rel[512], path[1024];
        div[i] = -2;
        snprintf(rel, sizeof rel, "audio/%s", golden_str(cs[i], "clip"));
        float *pcm = NULL;
        size_t ns = 0;
        am_mel_result r;
        if (!eng || !am_test_find(rel, path, sizeof path) || am_audio_decode_file(path, NULL, &pcm, &ns)) continue;
        const int ok = am_mel_compute(mel, pcm, ns, &r) == 0;
        am_audio_free(pcm);
        if (!ok) continue;
        am_transcribe_params p = am_transcribe_default_params();
        p.language = "en";
        p.decode.temperature_inc = 0;
        if ((jobs[i] = am_job_create(dc, &r, &p))) CHECK(am_engine_add(eng, jobs[i]) == 0);
    }
    if (eng) CHECKF(am_engine_run(eng, 0) == 0, "engine (kv f16): %s", am_last_error());
    for (int i = 0; i < n; i++) {
        const am_transcript *tr = jobs[i] ? am_job_transcript(jobs[i]) : NULL;
        if (!tr) {
            am_job_free(jobs[i]);
            continue;
        }
        int32_t *got = malloc(MAX_TOK * sizeof *got), *want = malloc(MAX_TOK * sizeof *want);
        int ng = 0, nw = 0;
        for (int k = 0; k < tr->n_segments; k++)
            for (int t = 0; t < tr->segments[k].n_tokens && ng < MAX_TOK; t++) got[ng++] = tr->segments[k].tokens[t];
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cs[i], "transcribe"),
                                                               "segments")) nw += golden_ints(s, "tokens", want + nw, MAX_TOK - nw);
        div[i] = first_diff(got, ng, want, AM_MIN(nw, MAX_TOK));
        free(got);
        free(want);
        am_job_free(jobs[i]);
    }
    am_engine_free(eng);
    am_mel_free(mel);
}

static int run_model(const char *model_file, cJSON *cases) {
    am_tokenizer *tok;
    am_model *m = golden_model(model_file, &tok);
    if (!m) return 0;
    am_decoding *dc = am_decoding_create(m, tok);
    am_decoder *dec = am_decoder_create(m, NULL);
    CHECK(dc && dec);
    const cJSON *cs[MAX_CASES];
    int n = 0, w0[MAX_CASES][2], tr[MAX_CASES];
    double e16[MAX_CASES], e32[MAX_CASES];
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        if (!dec || strcmp(golden_str(c, "model"), model_file) != 0 || n == MAX_CASES) continue;
        float *enc = golden_array(c, "encoder", NULL);
        if (!enc) {
            SKIP_CASE(golden_str(c, "clip"), "reference encoder output not found");
            continue;
        }
        cs[n] = c;
        e32[n] = prefix_error(m, dec, c, enc, AM_TYPE_F32);
        e16[n] = prefix_error(m, dec, c, enc, AM_TYPE_F16);
        window0(m, dc, dec, c, enc, w0[n]);
        free(enc);
        n++;
    }
    if (n) transcribe_all(dc, m, cs, n, tr);
    for (int i = 0; i < n; i++) {
        const char *clip = golden_str(cs[i], "clip");
        CHECKF(e32[i] >= 0 && e32[i] <= 2e-3, "%s/%s: f32 logits error %.3g", model_file, clip, e32[i]);
        CHECKF(e16[i] >= 0 && e16[i] <= 1e-2, "%s/%s: f16 logits error %.3g", model_file, clip, e16[i]);
        CHECKF(w0[i][0] >= -1 && w0[i][1] >= -1 && tr[i] >= -1, "%s/%s: an f16 decode did not complete", model_file,
               clip);
        char a[16], b[16], t[16];
        fmt_step(a, sizeof a, w0[i][0]);
        fmt_step(b, sizeof b, w0[i][1]);
        fmt_step(t, sizeof t, tr[i]);
        const cJSON *gap = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cs[i], "transcribe"),
                                                            "first_step_gap_below_1e-4");
        char tie[16];
        fmt_step(tie, sizeof tie, cJSON_IsNumber(gap) ? gap->valueint : -1);
        printf("| %-28s | %-22s | %.2e | %.2e | %5s | %5s | %5s | %5s |\n", model_file, clip, e32[i], e16[i], a, b, t,
               tie);
    }
    am_decoder_free(dec);
    am_decoding_free(dc);
    am_tokenizer_free(tok);
    am_model_free(m);
    return n > 0;
}

int main(int argc, char **argv) {
    cJSON *root = golden_load();
    if (!root) {
        SKIP_CASE("golden", "golden.json not found");
        return am_test_finish("test_kvtype", 0);
    }
    printf("| model | clip | logits err f32 | logits err f16 | window 0 diverges at | no timestamps | "
           "transcribe diverges at | reference near-tie at |\n|---|---|---|---|---|---|---|---|\n");
    const int ran = golden_each_model(argc, argv, golden_cases(root), run_model);
    cJSON_Delete(root);
    return am_test_finish("test_kvtype", ran);
}
