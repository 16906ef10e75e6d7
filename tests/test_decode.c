// test_decode.c — window decoding against the reference: greedy traces with
// and without timestamps (decode_window0*), language top-5, and the pieces
// (compression ratio, strip) the fallback depends on.
#include <stdint.h>

#include "am_decode.h"
#include "am_decoder.h"
#include "am_model.h"
#include "am_tokenizer.h"
#include "golden.h"

#define MAX_TOK 512

// Tokens must equal the reference up to its first near-tie step (gap < 1e-4),
// after which a float-level divergence is legitimate.
static void compare_trace(const char *label, const cJSON *trace, const am_wdec_result *r) {
    int32_t want[MAX_TOK];
    const int n_want = golden_ints(trace, "tokens", want, MAX_TOK);
    const cJSON *gap = cJSON_GetObjectItemCaseSensitive(trace, "first_step_gap_below_1e-4");
    const int limit = cJSON_IsNumber(gap) ? gap->valueint : -1;
    int first_diff = -1;
    for (int i = 0; i < AM_MAX(n_want, r->n_tokens) && first_diff < 0; i++)
        if (i >= n_want || i >= r->n_tokens || want[i] != r->tokens[i]) first_diff = i;
    if (limit >= 0) {
        CHECKF(first_diff < 0 || first_diff >= limit, "%s: tokens differ at step %d before the near-tie at %d", label,
               first_diff, limit);
        if (first_diff >= 0) printf("  %s: diverges at step %d after the reference near-tie at %d\n", label, first_diff, limit);
        return;
    }
    CHECKF(first_diff < 0, "%s: tokens differ at step %d (ours %d, ref %d; %d vs %d tokens)", label, first_diff,
           first_diff < r->n_tokens ? r->tokens[first_diff] : -1, first_diff < n_want ? want[first_diff] : -1,
           r->n_tokens, n_want);
    const char *text = golden_str(trace, "text");
    CHECKF(strcmp(text, r->text) == 0, "%s: text differs", label);
    const cJSON *alp = cJSON_GetObjectItemCaseSensitive(trace, "avg_logprob");
    CHECKF(fabs(alp->valuedouble - r->avg_logprob) < 1e-3, "%s: avg_logprob %.6f vs %.6f", label, r->avg_logprob,
           alp->valuedouble);
    const cJSON *nsp = cJSON_GetObjectItemCaseSensitive(trace, "no_speech_prob");
    if (cJSON_IsNumber(nsp))
        CHECKF(fabs(nsp->valuedouble - r->no_speech_prob) < 1e-4 + 1e-3 * nsp->valuedouble,
               "%s: no_speech_prob %.6g vs %.6g", label, r->no_speech_prob, nsp->valuedouble);
}

// Per-token log-probabilities of an accepted attempt: one per token, finite,
// <= 0, and summing (float32 accumulation in token order, then the closing
// <|endoftext|>'s) to sum_logprob: exactly for beams, whose sums the reference
// keeps in float32 and so do we; within float rounding of the terms for
// greedy / sampled candidates, whose sum we accumulate in double.
static void check_logprobs(const char *label, const char *what, const am_wdec_result *r, int exact) {
    if (!r) return;
    CHECKF((r->n_tokens > 0) == (r->token_logprobs != NULL), "%s %s: token_logprobs %p for %d tokens", label, what,
           (void *)r->token_logprobs, r->n_tokens);
    if (r->n_tokens > 0 && !r->token_logprobs) return;
    float acc = 0.0f;
    double mag = fabs(r->eot_logprob);
    int bad = -1;
    for (int i = 0; i < r->n_tokens; i++) {
        const float lp = r->token_logprobs[i];
        if (!isfinite(lp) || lp > 0) bad = bad < 0 ? i : bad;
        acc += lp;
        mag += fabs(lp);
    }
    acc += r->eot_logprob;
    CHECKF(bad < 0, "%s %s: token %d has log-probability %g", label, what, bad, bad >= 0 ? r->token_logprobs[bad] : 0);
    CHECKF(isfinite(r->eot_logprob) && r->eot_logprob <= 0, "%s %s: eot log-probability %g", label, what,
           r->eot_logprob);
    if (exact)
        CHECKF((double)acc == r->sum_logprob, "%s %s: float sum of token logprobs %.9g != sum_logprob %.9g", label,
               what, acc, r->sum_logprob);
    else
        CHECKF(fabs((double)acc - r->sum_logprob) <= 1e-6 * (1.0 + mag) * (1 + r->n_tokens),
               "%s %s: float sum of token logprobs %.9g vs sum_logprob %.9g", label, what, acc, r->sum_logprob);
    CHECKF(r->avg_logprob == r->sum_logprob / (r->n_tokens + 1), "%s %s: avg_logprob", label, what);
}

// Test hook: from decoder step g_eot_from on (when >= 0), <|endoftext|> (g_eot)
// gets every row's largest logit + 2, so that candidates end on it.
static int g_eot_from = -1, g_eot = -1;

// Drive window decodes to completion together: every step advances all
// unfinished windows in one batched decoder call (as the server does).
static int run_windows(am_decoder *dec, am_wdec **w, int n, const am_model *m, float *logits) {
    for (int guard = 0; guard < 10000; guard++) {
        am_seq *seqs[64];
        const int32_t *toks[64];
        int nt[64], idx[64], row0[64], k = 0, n_w = 0;
        for (int i = 0; i < n; i++) {
            const int c = am_wdec_inputs(w[i], seqs + k, toks + k, nt + k);
            if (c == 0) continue;
            row0[n_w] = k;
            idx[n_w++] = i;
            k += c;
        }
        if (k == 0) return 0;
        if (am_decoder_step(dec, seqs, toks, nt, k, AM_LOGITS_LAST, logits)) return -1;
        for (int r = 0; g_eot_from >= 0 && guard >= g_eot_from && r < k; r++) {
            float *row = logits + (size_t)r * m->hp.n_vocab, mx = row[0];
            for (int i = 1; i < m->hp.n_vocab; i++) mx = row[i] > mx ? row[i] : mx;
            row[g_eot] = mx + 2.0f;
        }
        for (int j = 0; j < n_w; j++)
            if (am_wdec_feed(w[idx[j]], logits + (size_t)row0[j] * m->hp.n_vocab) < 0) return -1;
    }
    return -1;
}

#define MAX_CASES 16

// Decode one window with params p on sequences of its own, alone or together
// with `others` (already started windows stepped in the same calls).
static const am_wdec_result *decode_one(am_decoder *dec, const am_model *m, am_wdec *w, am_seq **seqs, am_xkv *xkv,
                                        const am_decode_params *p, am_wdec **others, int n_others, float *logits) {
    am_wdec_window win = {.language = "en", .seed_mix = 7};
    if (am_wdec_start(w, p, &win, seqs, AM_MAX_GROUP, xkv)) return NULL;
    am_wdec *all[8] = {w};
    for (int i = 0; i < n_others && i < 7; i++) all[i + 1] = others[i];
    if (run_windows(dec, all, 1 + n_others, m, logits)) return NULL;
    return am_wdec_result_get(w);
}

static int same_tokens(const am_wdec_result *a, const am_wdec_result *b) {
    return a && b && a->n_tokens == b->n_tokens && !memcmp(a->tokens, b->tokens, (size_t)a->n_tokens * sizeof *a->tokens);
}

// Beam search and best-of beyond the reference traces (test_golden_more has
// those): beam_size 1 is greedy, best_of 1 is plain sampling, results do not
// depend on what else shares the decoder steps, patience waits for more
// finished beams, and bad parameters are refused.
static void test_groups(am_decoder *dec, const am_decoding *dc, const am_model *m, am_xkv *xkv, const char *label) {
    am_seq *seqs[3][AM_MAX_GROUP];
    am_wdec *w[3];
    for (int k = 0; k < 3; k++) {
        w[k] = am_wdec_create(dc);
        for (int i = 0; i < AM_MAX_GROUP; i++) seqs[k][i] = am_seq_create(m, 0, AM_TYPE_F32);
    }
    float *logits = malloc((size_t)3 * AM_MAX_GROUP * m->hp.n_vocab * sizeof *logits);
    am_decode_params p = am_decode_default_params();
    p.temperature_inc = 0;
    p.sample_len = 48;
    // beam_size 1 chooses the greedy tokens
    am_wdec_result greedy = *decode_one(dec, m, w[1], seqs[1], xkv, &p, NULL, 0, logits);
    check_logprobs(label, "greedy", &greedy, 0);
    p.beam_size = 1;
    const am_wdec_result *b1 = decode_one(dec, m, w[0], seqs[0], xkv, &p, NULL, 0, logits);
    CHECKF(same_tokens(b1, &greedy), "%s: beam_size 1 differs from greedy", label);
    check_logprobs(label, "beam 1", b1, 1);
    // the same tokens from the same logits: the same per-token values, to float rounding
    for (int i = 0; b1 && same_tokens(b1, &greedy) && i < greedy.n_tokens; i++)
        CHECKF(fabsf(b1->token_logprobs[i] - greedy.token_logprobs[i]) <= 1e-6f * (1 + fabsf(greedy.token_logprobs[i])),
               "%s: token %d logprob beam 1 %.9g vs greedy %.9g", label, i, b1->token_logprobs[i],
               greedy.token_logprobs[i]);
    // best_of 1 is plain sampling with the same seed
    p.beam_size = 0;
    p.temperature = 0.7;
    const am_wdec_result *s0 = decode_one(dec, m, w[1], seqs[1], xkv, &p, NULL, 0, logits);
    check_logprobs(label, "sampled", s0, 0);
    p.best_of = 1;
    const am_wdec_result *s1 = decode_one(dec, m, w[0], seqs[0], xkv, &p, NULL, 0, logits);
    CHECKF(same_tokens(s0, s1), "%s: best_of 1 differs from plain sampling", label);
    CHECKF(s0 && s1 && s0->n_tokens == s1->n_tokens &&
               !memcmp(s0->token_logprobs, s1->token_logprobs, (size_t)s0->n_tokens * sizeof(float)),
           "%s: best_of 1 token logprobs differ from plain sampling", label);
    // best_of 4 and beam 5: the same result alone and batched with other windows
    p.best_of = 4;
    const am_wdec_result *a = decode_one(dec, m, w[0], seqs[0], xkv, &p, NULL, 0, logits);
    check_logprobs(label, "best_of 4", a, 0);
    am_wdec_result alone = a ? *a : (am_wdec_result){0};
    int32_t alone_tokens[512];
    if (a) memcpy(alone_tokens, a->tokens, (size_t)AM_MIN(a->n_tokens, 512) * sizeof(int32_t));
    alone.tokens = alone_tokens;
    am_decode_params q = am_decode_default_params();
    q.temperature_inc = 0;
    q.sample_len = 48;
    q.beam_size = 5;
    am_wdec_window win = {.language = "en", .seed_mix = 3};
    CHECK(am_wdec_start(w[1], &q, &win, seqs[1], AM_MAX_GROUP, xkv) == 0);
    q.beam_size = 3;
    q.patience = 2.0;
    CHECK(am_wdec_start(w[2], &q, &win, seqs[2], AM_MAX_GROUP, xkv) == 0);
    const am_wdec_result *t = decode_one(dec, m, w[0], seqs[0], xkv, &p, w + 1, 2, logits);
    CHECKF(a && t && same_tokens(&alone, t) && t->avg_logprob == alone.avg_logprob,
           "%s: best_of 4 differs when batched with beam windows", label);
    CHECKF(am_wdec_result_get(w[1]) && am_wdec_result_get(w[2]), "%s: batched beam windows did not finish", label);
    check_logprobs(label, "best_of 4 batched", t, 0);
    check_logprobs(label, "beam 5", am_wdec_result_get(w[1]), 1);
    check_logprobs(label, "beam 3 patience 2", am_wdec_result_get(w[2]), 1);
    printf("  %-60s best_of 4 at T=0.7: %d tokens, avg_logprob %.4f; beam 5: %d tokens\n", label, t ? t->n_tokens : -1,
           t ? t->avg_logprob : 0.0, am_wdec_result_get(w[1]) ? am_wdec_result_get(w[1])->n_tokens : -1);
    // the beam windows alone give what they gave batched
    for (int k = 1; k < 3; k++) {
        const am_wdec_result *r = am_wdec_result_get(w[k]);
        if (!r) continue;
        am_wdec_result before = *r;
        int32_t tok[512];
        memcpy(tok, r->tokens, (size_t)AM_MIN(r->n_tokens, 512) * sizeof(int32_t));
        before.tokens = tok;
        q.beam_size = k == 1 ? 5 : 3;
        q.patience = k == 1 ? 1.0 : 2.0;
        win.seed_mix = 3;
        float lps[512];
        if (r->token_logprobs) memcpy(lps, r->token_logprobs, (size_t)AM_MIN(r->n_tokens, 512) * sizeof(float));
        const am_wdec_result *again = decode_one(dec, m, w[k], seqs[k], xkv, &q, NULL, 0, logits);
        CHECKF(same_tokens(&before, again), "%s: beam %d differs alone and batched", label, q.beam_size);
        CHECKF(same_tokens(&before, again) && again->sum_logprob == before.sum_logprob &&
                   !memcmp(again->token_logprobs, lps, (size_t)AM_MIN(again->n_tokens, 512) * sizeof(float)),
               "%s: beam %d token logprobs differ alone and batched", label, q.beam_size);
    }
    // fallback: the accepted (last) attempt's token logprobs, after a beam attempt and a sampled one
    am_decode_params f = am_decode_default_params();
    f.sample_len = 24;
    f.temperature_inc = 0.5;
    f.logprob_threshold = 0.0; // every attempt falls back while another temperature is left
    f.beam_size = 2;
    f.best_of = 2;
    const am_wdec_result *fr = decode_one(dec, m, w[0], seqs[0], xkv, &f, NULL, 0, logits);
    CHECKF(fr && fr->n_attempts == 3 && fr->temperature == 1.0, "%s: fallback attempts %d", label,
           fr ? fr->n_attempts : -1);
    check_logprobs(label, "fallback", fr, 0);
    // candidates that end on <|endoftext|> (forced from the 6th step): its log-probability is in the sum
    g_eot = am_tokenizer_specials(am_decoding_tokenizer(dc))->eot;
    g_eot_from = 5;
    const char *const kinds[3] = {"greedy + eot", "beam 5 + eot", "best_of 4 + eot"};
    for (int k = 0; k < 3; k++) {
        am_decode_params e = am_decode_default_params();
        e.temperature_inc = 0;
        e.sample_len = 48;
        e.beam_size = k == 1 ? 5 : 0;
        e.best_of = k == 2 ? 4 : 0;
        e.temperature = k == 2 ? 0.7 : 0.0;
        const am_wdec_result *er = decode_one(dec, m, w[0], seqs[0], xkv, &e, NULL, 0, logits);
        CHECKF(er && er->eot_logprob < 0 && er->n_tokens < 48, "%s %s: %d tokens, eot logprob %g", label, kinds[k],
               er ? er->n_tokens : -1, er ? er->eot_logprob : 0.0);
        check_logprobs(label, kinds[k], er, k == 1);
    }
    g_eot_from = -1;
    // parameters the reference refuses
    am_decode_params bad = am_decode_default_params();
    am_wdec_window any = {.language = "en"};
    bad.beam_size = AM_MAX_GROUP + 1;
    CHECK(am_wdec_start(w[0], &bad, &any, seqs[0], AM_MAX_GROUP, xkv) == AM_EINVAL);
    bad = am_decode_default_params();
    bad.best_of = -1;
    CHECK(am_wdec_start(w[0], &bad, &any, seqs[0], AM_MAX_GROUP, xkv) == AM_EINVAL);
    bad = am_decode_default_params();
    bad.length_penalty = 1.5;
    CHECK(am_wdec_start(w[0], &bad, &any, seqs[0], AM_MAX_GROUP, xkv) == AM_EINVAL);
    bad = am_decode_default_params();
    bad.patience = 0;
    CHECK(am_wdec_start(w[0], &bad, &any, seqs[0], AM_MAX_GROUP, xkv) == AM_EINVAL);
    bad = am_decode_default_params();
    bad.beam_size = 5;
    CHECK(am_wdec_start(w[0], &bad, &any, seqs[0], 4, xkv) == AM_EINVAL); // too few sequences
    // a prompt holds whatever the previous windows sampled: decoding without timestamps suppresses neither
    // timestamp nor special tokens, and the reference feeds them back unfiltered; only ids outside the
    // vocabulary are refused
    const am_special_tokens *sp = am_tokenizer_specials(am_decoding_tokenizer(dc));
    const int32_t odd[] = {440, sp->eot + 5, sp->timestamp_begin + 3, 11};
    am_wdec_window pw = {.language = "en", .prompt = odd, .n_prompt = 4};
    am_decode_params plain = am_decode_default_params();
    CHECK(am_wdec_start(w[0], &plain, &pw, seqs[0], AM_MAX_GROUP, xkv) == 0);
    const int32_t outside[] = {440, sp->n_vocab};
    pw.prompt = outside, pw.n_prompt = 2;
    CHECK(am_wdec_start(w[0], &plain, &pw, seqs[0], AM_MAX_GROUP, xkv) == AM_EINVAL);
    for (int k = 0; k < 3; k++) {
        am_wdec_free(w[k]);
        for (int i = 0; i < AM_MAX_GROUP; i++) am_seq_free(seqs[k][i]);
    }
    free(logits);
}

static int run_model(const char *model_file, cJSON *cases) {
    am_tokenizer *tok;
    am_model *m = golden_model(model_file, &tok);
    if (!m) return 0;
    am_decoding *dc = tok ? am_decoding_create(m, tok) : NULL;
    am_decoder *dec = dc ? am_decoder_create(m, NULL) : NULL;
    CHECKF(dec != NULL, "%s: setup: %s", model_file, am_last_error());
    if (!dec) return 0;
    // per case: cross K/V, and two windows (timestamps on / off) decoded side by side
    const cJSON *cs[MAX_CASES];
    am_xkv *xkv[MAX_CASES];
    am_seq *seq[2 * MAX_CASES];
    am_wdec *w[2 * MAX_CASES];
    char label[2 * MAX_CASES][300];
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        if (strcmp(golden_str(c, "model"), model_file) != 0 || n == MAX_CASES) continue;
        snprintf(label[2 * n], sizeof label[0], "%s/%s", model_file, golden_str(c, "clip"));
        snprintf(label[2 * n + 1], sizeof label[0], "%s/%s (no timestamps)", model_file, golden_str(c, "clip"));
        float *enc = golden_array(c, "encoder", NULL);
        if (!enc) {
            SKIP_CASE(label[2 * n], "reference encoder output not found");
            continue;
        }
        cs[n] = c;
        xkv[n] = am_xkv_create(m, AM_TYPE_F32);
        CHECK(am_decoder_set_audio(dec, &xkv[n], enc, 1) == 0);
        free(enc);
        for (int j = 0; j < 2; j++) {
            seq[2 * n + j] = am_seq_create(m, 0, AM_TYPE_F32);
            w[2 * n + j] = am_wdec_create(dc);
        }
        n++;
    }
    float *logits = malloc((size_t)2 * MAX_CASES * m->hp.n_vocab * sizeof *logits);
    am_decode_params p = am_decode_default_params();
    p.temperature_inc = 0; // the reference traces are single greedy decodes
    am_wdec_window win = {.language = "en"};
    for (int i = 0; i < 2 * n; i++) {
        p.without_timestamps = i & 1;
        CHECK(am_wdec_start(w[i], &p, &win, &seq[i], 1, xkv[i / 2]) == 0);
    }
    CHECKF(run_windows(dec, w, 2 * n, m, logits) == 0, "%s: %s", model_file, am_last_error());
    for (int i = 0; i < 2 * n; i++) {
        const am_wdec_result *r = am_wdec_result_get(w[i]);
        CHECK(r != NULL);
        if (!r) continue;
        compare_trace(label[i], cJSON_GetObjectItemCaseSensitive(cs[i / 2], (i & 1) ? "decode_window0_notimestamps" : "decode_window0"), r);
        check_logprobs(label[i], "greedy", r, 0);
        printf("  %-60s %3d tokens, avg_logprob %.4f, no_speech %.2e, cr %.2f\n", label[i], r->n_tokens,
               r->avg_logprob, r->no_speech_prob, r->compression_ratio);
    }
    if (n) test_groups(dec, dc, m, xkv[0], label[0]);
    // language detection (multilingual models), all windows together
    int n_lang = 0;
    for (int i = 0; i < n; i++) {
        if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(cs[i], "language_top5"))) continue;
        am_wdec_window auto_win = {.language = NULL};
        p.without_timestamps = 0;
        p.sample_len = 1; // only the detection matters here
        CHECK(am_wdec_start(w[2 * i], &p, &auto_win, &seq[2 * i], 1, xkv[i]) == 0);
        n_lang++;
    }
    if (n_lang) {
        am_wdec *wl[MAX_CASES];
        for (int i = 0; i < n; i++) wl[i] = w[2 * i];
        CHECK(run_windows(dec, wl, n, m, logits) == 0);
        for (int i = 0; i < n; i++) {
            const cJSON *top5 = cJSON_GetObjectItemCaseSensitive(cs[i], "language_top5");
            am_lang_prob top[AM_LANG_TOP];
            const int nt = am_wdec_language_probs(wl[i], top);
            CHECK(nt == AM_LANG_TOP);
            int k = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, top5) {
                const char *code = cJSON_GetArrayItem(e, 0)->valuestring;
                const double prob = cJSON_GetArrayItem(e, 1)->valuedouble;
                CHECKF(k < nt && strcmp(top[k].code, code) == 0 && fabs(top[k].prob - prob) <= 1e-3,
                       "%s: language #%d ours %s %.5f, ref %s %.5f", label[2 * i], k, k < nt ? top[k].code : "-",
                       k < nt ? top[k].prob : 0, code, prob);
                k++;
            }
            CHECK(strcmp(am_wdec_language(wl[i]), top[0].code) == 0);
            printf("  %-60s language %s %.4f\n", label[2 * i], top[0].code, top[0].prob);
        }
    }
    for (int i = 0; i < n; i++) {
        am_xkv_free(xkv[i]);
        for (int j = 0; j < 2; j++) {
            am_seq_free(seq[2 * i + j]);
            am_wdec_free(w[2 * i + j]);
        }
    }
    free(logits);
    am_decoder_free(dec);
    am_decoding_free(dc);
    am_tokenizer_free(tok);
    am_model_free(m);
    return n > 0;
}

static void test_helpers(void) {
    // zlib.compress ratios, as Python computes them
    const char *rep = "tenure tenure tenure tenure tenure tenure tenure tenure tenure tenure";
    CHECK(am_decode_compression_ratio(rep, strlen(rep)) > 2.4f);
    CHECK(am_decode_compression_ratio("", 0) == 0.0);
    CHECKF(fabs(am_decode_compression_ratio("hello", 5) - 5.0 / 13.0) < 1e-12, "zlib size of 'hello' is 13");
    // Python str.strip() whitespace set, incl. U+3000 and NBSP
    const char *s = " \t\xe3\x80\x80 hi there\xc2\xa0\n";
    size_t n = am_str_strip(&s, strlen(s));
    CHECK(n == 8 && memcmp(s, "hi there", 8) == 0);
    const char *e = "   ";
    CHECK(am_str_strip(&e, 3) == 0);
}

int main(int argc, char **argv) {
    test_helpers();
    cJSON *root = golden_load();
    if (!root) {
        SKIP_CASE("golden", "golden.json not found");
        return am_test_finish("test_decode", 1);
    }
    golden_each_model(argc, argv, golden_cases(root), run_model);
    cJSON_Delete(root);
    return am_test_finish("test_decode", 1);
}
