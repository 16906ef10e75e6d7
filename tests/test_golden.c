// test_golden.c — mel, encoder and decoder against the reference (shared/golden).
//
// usage: test_golden [MODEL_FILE]   (e.g. ggml-test-tiny.en.bin; default: every model)
// For each golden case of the model:
//   mel        our mel of the decoded clip vs the reference's first window
//   encoder    our encoder on the reference mel vs the reference encoder output
//   logits     teacher-forced prefix through am_decoder_step, token by token and
//              as one prefill, on the reference encoder output
// and for the model as a whole: all clips in one encoder call and all sequences
// in one decoder step give the same numbers as one at a time.
#include <stdint.h>

#include "am_audio.h"
#include "am_decoder.h"
#include "am_encoder.h"
#include "am_mel.h"
#include "am_model.h"
#include "golden.h"

#define MAX_CASES 32
#define MAX_PREFIX 64

typedef struct {
    const cJSON *json;
    char label[160];
    float *mel, *enc, *logits; // reference arrays
    size_t n_mel, n_enc, n_logits;
    int32_t prefix[MAX_PREFIX];
    int n_prefix;
    float *my_enc;    // our encoder output, one at a time
    float *my_logits; // our prefill logits, one at a time
} gcase;

static int is_resampled(const char *clip) {
    return strstr(clip, "44k") || strstr(clip, ".mp3") || strstr(clip, ".flac");
}

static void check_mel(am_mel *mel, gcase *c, const char *clip, int n_mels) {
    char rel[512], path[1024];
    snprintf(rel, sizeof rel, "audio/%s", clip);
    if (!am_test_find(rel, path, sizeof path)) {
        SKIP_CASE(c->label, "mel: clip %s not found (set AMANUENSIS_TEST_DATA to the shared dir)", clip);
        return;
    }
    float *pcm = NULL;
    size_t n = 0;
    int rc = am_audio_decode_file(path, NULL, &pcm, &n);
    CHECKF(rc == 0, "%s: decode: %s", c->label, am_last_error());
    if (rc) return;
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(c->json, "n_samples");
    const size_t want = cJSON_IsString(ns) ? strtoull(ns->valuestring, NULL, 10) : (size_t)ns->valuedouble;
    CHECKF(n == want, "%s: %zu samples, reference %zu", c->label, n, want);
    am_mel_result r;
    rc = am_mel_compute(mel, pcm, n, &r);
    CHECKF(rc == 0, "%s: mel: %s", c->label, am_last_error());
    if (!rc) {
        float *win = malloc((size_t)n_mels * AM_MEL_WINDOW_FRAMES * sizeof *win);
        am_mel_window(win, &r, 0);
        golden_diff g = golden_compare(win, c->mel, c->n_mel);
        printf("  %-48s mel     max %.2e mean %.2e\n", c->label, g.max_abs, g.mean_abs);
        if (is_resampled(clip)) {
            CHECKF(g.mean_abs <= 1e-3, "%s: mel mean abs %.3e", c->label, g.mean_abs);
        } else {
            CHECKF(g.max_abs <= 1e-3 && g.mean_abs <= 1e-5, "%s: mel max %.3e mean %.3e", c->label, g.max_abs,
                   g.mean_abs);
        }
        free(win);
        am_mel_free_result(&r);
    }
    am_audio_free(pcm);
}

// Teacher-forced logits for one case: (a) one token per step, (b) one prefill.
static void check_logits(const am_model *m, am_decoder *dec, gcase *c) {
    const size_t V = (size_t)m->hp.n_vocab;
    am_xkv *xkv = am_xkv_create(m, AM_TYPE_F32);
    am_seq *seq = am_seq_create(m, 0, AM_TYPE_F32);
    float *step = malloc(V * sizeof *step);
    c->my_logits = malloc((size_t)c->n_prefix * V * sizeof(float));
    CHECK(xkv && seq && step && c->my_logits);
    if (!xkv || !seq || !step || !c->my_logits) goto done;
    CHECK(am_decoder_set_audio(dec, &xkv, c->enc, 1) == 0);
    // (a) token by token
    am_seq_reset(seq, xkv);
    double worst = 0, max_ref = 0;
    for (int t = 0; t < c->n_prefix; t++) {
        const int32_t *tok = &c->prefix[t];
        int one = 1;
        int rc = am_decoder_step(dec, &seq, &tok, &one, 1, AM_LOGITS_LAST, step);
        CHECKF(rc == 0, "%s: step %d: %s", c->label, t, am_last_error());
        golden_diff g = golden_compare(step, c->logits + (size_t)t * V, V);
        if (g.max_abs > worst) worst = g.max_abs;
        if (g.max_ref > max_ref) max_ref = g.max_ref;
    }
    CHECK(am_seq_pos(seq) == c->n_prefix);
    printf("  %-48s logits  step-by-step max %.2e (ref max %.2f)\n", c->label, worst, max_ref);
    CHECKF(worst <= 2e-3 * max_ref, "%s: stepwise logits max err %.3e > 2e-3 x %.3f", c->label, worst, max_ref);
    // (b) one prefill
    am_seq_reset(seq, xkv);
    const int32_t *toks = c->prefix;
    int rc = am_decoder_step(dec, &seq, &toks, &c->n_prefix, 1, AM_LOGITS_ALL, c->my_logits);
    CHECKF(rc == 0, "%s: prefill: %s", c->label, am_last_error());
    golden_diff g = golden_compare(c->my_logits, c->logits, c->n_logits);
    printf("  %-48s logits  prefill      max %.2e\n", c->label, g.max_abs);
    CHECKF(g.max_abs <= 2e-3 * g.max_ref, "%s: prefill logits max err %.3e > 2e-3 x %.3f", c->label, g.max_abs,
           g.max_ref);
done:
    free(step);
    am_seq_free(seq);
    am_xkv_free(xkv);
}

static double rel_diff(const float *a, const float *b, size_t n) {
    golden_diff g = golden_compare(a, b, n);
    return g.max_ref > 0 ? g.max_abs / g.max_ref : g.max_abs;
}

static void check_batched(const am_model *m, am_encoder *enc, am_decoder *dec, gcase *const *cs, int n) {
    const size_t V = (size_t)m->hp.n_vocab;
    const size_t mel_sz = (size_t)m->hp.n_mels * AM_MEL_WINDOW_FRAMES;
    const size_t enc_sz = (size_t)m->hp.n_audio_ctx * m->hp.n_audio_state;
    float *mels = malloc((size_t)n * mel_sz * sizeof(float));
    float *encs = malloc((size_t)n * enc_sz * sizeof(float));
    int total = 0;
    for (int i = 0; i < n; i++) total += cs[i]->n_prefix;
    float *logits = malloc((size_t)total * V * sizeof(float));
    float *last = malloc((size_t)n * V * sizeof(float));
    am_xkv *xkv[MAX_CASES] = {0};
    am_seq *seq[MAX_CASES] = {0};
    for (int i = 0; i < n; i++) {
        memcpy(mels + i * mel_sz, cs[i]->mel, mel_sz * sizeof(float));
        xkv[i] = am_xkv_create(m, AM_TYPE_F32);
        seq[i] = am_seq_create(m, 0, AM_TYPE_F32);
    }
    CHECK(am_encoder_run(enc, mels, n, encs) == 0);
    double worst_enc = 0;
    for (int i = 0; i < n; i++) worst_enc = fmax(worst_enc, rel_diff(encs + i * enc_sz, cs[i]->my_enc, enc_sz));
    printf("  batched encoder (B=%d) vs one at a time: max rel diff %.2e\n", n, worst_enc);
    CHECKF(worst_enc <= 1e-5, "batched encoder differs by %.3e relative", worst_enc);
    // one set_audio over all windows, one prefill step over all sequences
    CHECK(am_decoder_set_audio(dec, xkv, encs, n) == 0);
    const int32_t *toks[MAX_CASES];
    int nt[MAX_CASES];
    for (int i = 0; i < n; i++) {
        am_seq_reset(seq[i], xkv[i]);
        toks[i] = cs[i]->prefix;
        nt[i] = cs[i]->n_prefix;
    }
    CHECK(am_decoder_step(dec, seq, toks, nt, n, AM_LOGITS_ALL, logits) == 0);
    double worst_dec = 0;
    for (int i = 0, r = 0; i < n; r += nt[i], i++)
        worst_dec = fmax(worst_dec, rel_diff(logits + (size_t)r * V, cs[i]->my_logits, (size_t)nt[i] * V));
    printf("  batched prefill (N=%d) vs one at a time:  max rel diff %.2e\n", n, worst_dec);
    CHECKF(worst_dec <= 1e-5, "batched prefill differs by %.3e relative", worst_dec);
    // token-by-token with every sequence in each step; sequences of
    // different lengths leave the batch when their prefix is done
    for (int i = 0; i < n; i++) am_seq_reset(seq[i], xkv[i]);
    double worst_step = 0;
    for (int t = 0;; t++) {
        am_seq *active[MAX_CASES];
        int idx[MAX_CASES], k = 0, one[MAX_CASES];
        const int32_t *tp[MAX_CASES];
        for (int i = 0; i < n; i++)
            if (t < cs[i]->n_prefix) {
                active[k] = seq[i];
                tp[k] = &cs[i]->prefix[t];
                one[k] = 1;
                idx[k++] = i;
            }
        if (!k) break;
        CHECK(am_decoder_step(dec, active, tp, one, k, AM_LOGITS_LAST, last) == 0);
        for (int j = 0; j < k; j++)
            worst_step = fmax(worst_step, rel_diff(last + (size_t)j * V, cs[idx[j]]->my_logits + (size_t)t * V, V));
    }
    printf("  batched steps (N=%d) vs one prefill:      max rel diff %.2e\n", n, worst_step);
    CHECKF(worst_step <= 1e-5, "batched steps differ by %.3e relative", worst_step);
    for (int i = 0; i < n; i++) {
        am_seq_free(seq[i]);
        am_xkv_free(xkv[i]);
    }
    free(mels);
    free(encs);
    free(logits);
    free(last);
}

static int run_model(const char *model_file, cJSON *cases) {
    gcase cs[MAX_CASES];
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        if (strcmp(golden_str(c, "model"), model_file) != 0 || n == MAX_CASES) continue;
        gcase *g = &cs[n];
        memset(g, 0, sizeof *g);
        g->json = c;
        snprintf(g->label, sizeof g->label, "%s/%s", model_file, golden_str(c, "clip"));
        g->mel = golden_array(c, "mel", &g->n_mel);
        g->enc = golden_array(c, "encoder", &g->n_enc);
        g->logits = golden_array(c, "logits", &g->n_logits);
        g->n_prefix = golden_ints(c, "prefix_tokens", g->prefix, MAX_PREFIX);
        if (!g->mel || !g->enc || !g->logits) {
            SKIP_CASE(g->label, "reference arrays not found (set AMANUENSIS_TEST_DATA to the shared dir)");
            free(g->mel);
            free(g->enc);
            free(g->logits);
            continue;
        }
        n++;
    }
    if (!n) return 0;
    char rel[512], path[1024];
    snprintf(rel, sizeof rel, "fixtures/%s", model_file);
    if (!am_test_find(rel, path, sizeof path)) {
        SKIP_CASE(model_file, "model file not found (set AMANUENSIS_TEST_DATA to the shared dir)");
        for (int i = 0; i < n; i++) {
            free(cs[i].mel);
            free(cs[i].enc);
            free(cs[i].logits);
        }
        return 0;
    }
    am_model *m = am_model_load(path);
    CHECKF(m != NULL, "load %s: %s", path, am_last_error());
    if (!m) return 0;
    printf("%s: %d cases, %s weights\n", model_file, n, am_type_name(m->weight_type));
    am_mel *mel = am_mel_create(m->mel_filters, m->hp.n_mels);
    am_encoder_params ep = am_encoder_default_params();
    ep.max_batch = AM_MAX(n, 3);
    am_encoder *enc = am_encoder_create(m, &ep);
    am_decoder *dec = am_decoder_create(m, NULL);
    CHECK(mel && enc && dec);
    const size_t enc_sz = (size_t)m->hp.n_audio_ctx * m->hp.n_audio_state;
    for (int i = 0; i < n && mel && enc && dec; i++) {
        gcase *g = &cs[i];
        CHECK(g->n_mel == (size_t)m->hp.n_mels * AM_MEL_WINDOW_FRAMES && g->n_enc == enc_sz);
        CHECK(g->n_logits == (size_t)g->n_prefix * m->hp.n_vocab);
        check_mel(mel, g, golden_str(g->json, "clip"), m->hp.n_mels);
        g->my_enc = malloc(enc_sz * sizeof(float));
        CHECK(am_encoder_run(enc, g->mel, 1, g->my_enc) == 0);
        golden_diff d = golden_compare(g->my_enc, g->enc, enc_sz);
        printf("  %-48s encoder max %.2e (ref max %.2f)\n", g->label, d.max_abs, d.max_ref);
        CHECKF(d.max_abs <= 1e-3 * d.max_ref, "%s: encoder max err %.3e > 1e-3 x %.3f", g->label, d.max_abs,
               d.max_ref);
        check_logits(m, dec, g);
    }
    if (mel && enc && dec) { // at least three rows: repeat cases when the model has fewer
        gcase *rows[MAX_CASES];
        const int nb = AM_MAX(n, 3);
        for (int i = 0; i < nb; i++) rows[i] = &cs[i % n];
        check_batched(m, enc, dec, rows, nb);
    }
    for (int i = 0; i < n; i++) {
        free(cs[i].mel);
        free(cs[i].enc);
        free(cs[i].logits);
        free(cs[i].my_enc);
        free(cs[i].my_logits);
    }
    am_mel_free(mel);
    am_encoder_free(enc);
    am_decoder_free(dec);
    am_model_free(m);
    return 1;
}

int main(int argc, char **argv) {
    cJSON *root = golden_load();
    if (!root) {
        SKIP_CASE("golden", "golden.json not found");
        return am_test_finish(argv[0], 0);
    }
    cJSON *cases = golden_cases(root);
    // the distinct model names, in file order
    const char *models[MAX_CASES];
    int n_models = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *name = golden_str(c, "model");
        int seen = 0;
        for (int i = 0; i < n_models; i++) seen |= strcmp(models[i], name) == 0;
        if (!seen && n_models < MAX_CASES) models[n_models++] = name;
    }
    int ran = 0;
    for (int i = 0; i < n_models; i++)
        if (argc < 2 || strcmp(argv[1], models[i]) == 0) ran |= run_model(models[i], cases);
    if (argc >= 2 && !ran) SKIP_CASE(argv[1], "no golden case of this model could run");
    cJSON_Delete(root);
    return am_test_finish("test_golden", ran);
}
