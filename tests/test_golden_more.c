// test_golden_more.c — beam search and word timestamps against the reference
// (shared/golden/golden-more.json, openai-whisper 20250625):
//   beam       decode_window0_beam5: window 0 on the reference encoder output
//              with beam_size 5 (all cases of a model decoded side by side in
//              batched decoder steps): tokens and text identical
//   beam long  transcribe_beam5: the long-form loop with beam_size 5, all clips
//              of a model in one engine: segments identical
//   words      transcribe_words: transcribe(word_timestamps=True), all clips of
//              a model in one engine (their alignment passes batched): same
//              segments, same words, start/end equal, probabilities within 1e-4
//   mixed      every clip with words and beams at once, twice each, in one
//              engine: each result equals its single-run result
//
// usage: test_golden_more [MODEL_FILE [--no-mixed]]
#include <stdint.h>

#include "am_audio.h"
#include "am_decode.h"
#include "am_decoder.h"
#include "am_transcribe.h"
#include "golden.h"

#define MAX_CASES 16
#define MAX_TOK 4096

static cJSON *g_golden; // golden.json (for the reference encoder outputs)

// ---------------------------------------------------------------- window 0, beam 5
static void beam_window0(const char *model_file, const am_model *m, const am_decoding *dc, cJSON *cases) {
    am_decoder *dec = am_decoder_create(m, NULL);
    const cJSON *cs[MAX_CASES];
    am_xkv *xkv[MAX_CASES] = {0};
    am_seq *seqs[MAX_CASES][5] = {{0}};
    am_wdec *w[MAX_CASES] = {0};
    char label[MAX_CASES][200];
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        if (!dec || strcmp(golden_str(c, "model"), model_file) != 0 || n == MAX_CASES) continue;
        snprintf(label[n], sizeof label[0], "%s/%s beam5", model_file, golden_str(c, "clip"));
        const cJSON *gc = g_golden ? golden_find_case(golden_cases(g_golden), model_file, golden_str(c, "clip")) : NULL;
        float *enc = gc ? golden_array(gc, "encoder", NULL) : NULL;
        if (!enc) {
            SKIP_CASE(label[n], "reference encoder output not found");
            continue;
        }
        cs[n] = c;
        xkv[n] = am_xkv_create(m, AM_TYPE_F32);
        CHECK(am_decoder_set_audio(dec, &xkv[n], enc, 1) == 0);
        free(enc);
        for (int k = 0; k < 5; k++) seqs[n][k] = am_seq_create(m, 0, AM_TYPE_F32);
        w[n] = am_wdec_create(dc);
        am_decode_params p = am_decode_default_params();
        p.temperature_inc = 0; // one decode, as DecodingTask.run
        p.beam_size = 5;
        am_wdec_window win = {.language = "en"};
        CHECKF(am_wdec_start(w[n], &p, &win, seqs[n], 5, xkv[n]) == 0, "%s: %s", label[n], am_last_error());
        n++;
    }
    float *logits = malloc((size_t)MAX_CASES * 5 * m->hp.n_vocab * sizeof *logits);
    int steps = 0, rows = 0;
    for (int guard = 0; n && guard < 2000; guard++) { // every window's beams in one step
        am_seq *sq[MAX_CASES * AM_MAX_GROUP];
        const int32_t *tk[MAX_CASES * AM_MAX_GROUP];
        int nt[MAX_CASES * AM_MAX_GROUP], row0[MAX_CASES], who[MAX_CASES], k = 0, nw = 0;
        for (int i = 0; i < n; i++) {
            const int r = am_wdec_inputs(w[i], sq + k, tk + k, nt + k);
            if (r == 0) continue;
            row0[nw] = k;
            who[nw++] = i;
            k += r;
        }
        if (k == 0) break;
        CHECK(am_decoder_step(dec, sq, tk, nt, k, AM_LOGITS_LAST, logits) == 0);
        steps++;
        rows += k;
        for (int i = 0; i < nw; i++) CHECK(am_wdec_feed(w[who[i]], logits + (size_t)row0[i] * m->hp.n_vocab) >= 0);
    }
    if (n) printf("%s: window 0 beam 5 of %d clips in %d steps (%.1f rows/step)\n", model_file, n, steps,
                  steps ? (double)rows / steps : 0.0);
    for (int i = 0; i < n; i++) {
        const am_wdec_result *r = am_wdec_result_get(w[i]);
        CHECKF(r != NULL, "%s: not finished", label[i]);
        if (!r) continue;
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(cs[i], "decode_window0_beam5");
        int32_t want[MAX_TOK];
        const int nw = golden_ints(ref, "tokens", want, MAX_TOK);
        int diff = -1;
        for (int t = 0; t < AM_MAX(nw, r->n_tokens) && diff < 0; t++)
            if (t >= nw || t >= r->n_tokens || want[t] != r->tokens[t]) diff = t;
        CHECKF(diff < 0, "%s: tokens differ at %d (ours %d tokens, ref %d)", label[i], diff, r->n_tokens, nw);
        CHECKF(strcmp(r->text, golden_str(ref, "text")) == 0, "%s: text differs", label[i]);
        const double alp = cJSON_GetObjectItemCaseSensitive(ref, "avg_logprob")->valuedouble;
        CHECKF(fabs(alp - r->avg_logprob) < 1e-4 * (1 + fabs(alp)), "%s: avg_logprob %.7f vs %.7f", label[i],
               r->avg_logprob, alp);
        const double nsp = cJSON_GetObjectItemCaseSensitive(ref, "no_speech_prob")->valuedouble;
        CHECKF(fabs(nsp - r->no_speech_prob) < 1e-4 + 1e-3 * nsp, "%s: no_speech_prob %.6g vs %.6g", label[i],
               r->no_speech_prob, nsp);
        printf("  %-56s %3d tokens, avg_logprob %.4f\n", label[i], r->n_tokens, r->avg_logprob);
    }
    for (int i = 0; i < n; i++) {
        am_wdec_free(w[i]);
        for (int k = 0; k < 5; k++) am_seq_free(seqs[i][k]);
        am_xkv_free(xkv[i]);
    }
    free(logits);
    am_decoder_free(dec);
}

// ---------------------------------------------------------------- long form
static int words_equal(const cJSON *ref, const am_segment *g, const char *label, int k) {
    const int n_ref = cJSON_GetArraySize(ref);
    if (n_ref != g->n_words) {
        CHECKF(0, "%s: segment %d has %d words, reference %d", label, k, g->n_words, n_ref);
        return 0;
    }
    int i = 0, ok = 1;
    const cJSON *wr;
    cJSON_ArrayForEach(wr, ref) {
        const am_word *w = &g->words[i];
        const double s = cJSON_GetObjectItemCaseSensitive(wr, "start")->valuedouble;
        const double e = cJSON_GetObjectItemCaseSensitive(wr, "end")->valuedouble;
        const double p = cJSON_GetObjectItemCaseSensitive(wr, "probability")->valuedouble;
        const int same = strcmp(w->word, golden_str(wr, "word")) == 0 && w->start == s && w->end == e &&
                         fabs(w->probability - p) <= 1e-4;
        CHECKF(same, "%s: segment %d word %d: ours '%s' [%.2f, %.2f] p %.6f, ref '%s' [%.2f, %.2f] p %.6f", label, k, i,
               w->word, w->start, w->end, w->probability, golden_str(wr, "word"), s, e, p);
        ok &= same;
        i++;
    }
    return ok;
}

static void compare_segments(const char *label, const cJSON *trace, const am_transcript *tr, int with_words) {
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(trace, "segments");
    const int n_ref = cJSON_GetArraySize(segs);
    int k = 0, n_words = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, segs) {
        int32_t want[MAX_TOK];
        const int nw = golden_ints(s, "tokens", want, MAX_TOK);
        if (k >= tr->n_segments) break;
        const am_segment *g = &tr->segments[k];
        const double rs = cJSON_GetObjectItemCaseSensitive(s, "start")->valuedouble;
        const double re = cJSON_GetObjectItemCaseSensitive(s, "end")->valuedouble;
        const int rseek = cJSON_GetObjectItemCaseSensitive(s, "seek")->valueint;
        const int same = g->seek == rseek && g->start == rs && g->end == re && strcmp(g->text, golden_str(s, "text")) == 0 &&
                         g->n_tokens == nw && memcmp(g->tokens, want, (size_t)nw * sizeof *want) == 0;
        CHECKF(same,
               "%s: segment %d differs: ours seek %d [%.17g, %.17g] %d tokens '%.40s', ref seek %d [%.17g, %.17g] %d "
               "tokens '%.40s'",
               label, k, g->seek, g->start, g->end, g->n_tokens, g->text, rseek, rs, re, nw, golden_str(s, "text"));
        if (!same) return;
        if (with_words && !words_equal(cJSON_GetObjectItemCaseSensitive(s, "words"), g, label, k)) return;
        n_words += g->n_words;
        k++;
    }
    CHECKF(tr->n_segments == n_ref, "%s: %d segments, reference %d", label, tr->n_segments, n_ref);
    printf("  %-56s %d segments, %d words, %d windows\n", label, tr->n_segments, n_words, tr->n_windows);
}

// Two transcripts are the same result, bit for bit: segments, tokens,
// statistics, words and their probabilities (the decoder's arithmetic does
// not depend on what shares a step).
static int same_transcript(const am_transcript *a, const am_transcript *b) {
    if (a->n_segments != b->n_segments || strcmp(a->text, b->text)) return 0;
    for (int i = 0; i < a->n_segments; i++) {
        const am_segment *x = &a->segments[i], *y = &b->segments[i];
        if (x->seek != y->seek || x->start != y->start || x->end != y->end || x->n_tokens != y->n_tokens ||
            memcmp(x->tokens, y->tokens, (size_t)x->n_tokens * sizeof *x->tokens) || x->n_words != y->n_words ||
            x->avg_logprob != y->avg_logprob || x->no_speech_prob != y->no_speech_prob ||
            x->compression_ratio != y->compression_ratio || x->temperature != y->temperature)
            return 0;
        for (int k = 0; k < x->n_words; k++)
            if (strcmp(x->words[k].word, y->words[k].word) || x->words[k].start != y->words[k].start ||
                x->words[k].end != y->words[k].end || x->words[k].probability != y->words[k].probability)
                return 0;
    }
    return 1;
}

enum { RUN_BEAM = 1, RUN_WORDS = 2 };

// Run every clip of the model (`copies` times each) through one engine with
// the given features; transcripts go to out[copy * n + i] (caller frees jobs).
static int run_engine(const char *model_file, const am_decoding *dc, const am_model *m, cJSON *cases, int features,
                      int copies, int max_seqs, am_job **jobs, const cJSON **cs, char (*labels)[200]) {
    char rel[512], path[1024];
    am_mel *mel = am_mel_create(m->mel_filters, m->hp.n_mels);
    am_engine_params ep = am_engine_default_params();
    ep.max_seqs = max_seqs;
    am_engine *eng = mel ? am_engine_create(dc, &ep) : NULL;
    CHECKF(eng != NULL, "%s: setup: %s", model_file, am_last_error());
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        if (!eng || strcmp(golden_str(c, "model"), model_file) != 0 || n == MAX_CASES) continue;
        snprintf(rel, sizeof rel, "audio/%s", golden_str(c, "clip"));
        if (!am_test_find(rel, path, sizeof path)) {
            if (copies == 1) SKIP_CASE(golden_str(c, "clip"), "clip not found (set AMANUENSIS_TEST_DATA to the shared dir)");
            continue;
        }
        float *pcm = NULL;
        size_t ns = 0;
        CHECK(am_audio_decode_file(path, NULL, &pcm, &ns) == 0);
        for (int copy = 0; copy < copies; copy++) {
            am_mel_result r;
            CHECK(am_mel_compute(mel, pcm, ns, &r) == 0);
            am_transcribe_params p = am_transcribe_default_params();
            p.language = "en";
            p.decode.temperature_inc = 0; // temperature (0.0,) only
            if (features & RUN_BEAM) p.decode.beam_size = 5;
            p.word_timestamps = (features & RUN_WORDS) != 0;
            am_job *j = am_job_create(dc, &r, &p);
            CHECKF(j != NULL, "%s: %s", golden_str(c, "clip"), am_last_error());
            jobs[copy * MAX_CASES + n] = j;
            if (j) CHECK(am_engine_add(eng, j) == 0);
        }
        am_audio_free(pcm);
        cs[n] = c;
        snprintf(labels[n], sizeof labels[0], "%s/%s%s%s", model_file, golden_str(c, "clip"),
                 features & RUN_BEAM ? " beam5" : "", features & RUN_WORDS ? " words" : "");
        n++;
    }
    if (n) {
        CHECKF(am_engine_run(eng, 0) == 0, "%s: engine: %s", model_file, am_last_error());
        const am_engine_stats *st = am_engine_get_stats(eng);
        printf("%s:%s%s %d clips x %d, %ld decoder steps (%.1f rows/step)%s\n", model_file,
               features & RUN_BEAM ? " beam 5" : "", features & RUN_WORDS ? " words" : "", n, copies,
               st->decoder_steps, st->decoder_steps ? (double)st->decoder_rows / st->decoder_steps : 0.0,
               max_seqs ? " (sequence budget)" : "");
    }
    am_engine_free(eng);
    am_mel_free(mel);
    return n;
}

static void long_form(const char *model_file, const am_decoding *dc, const am_model *m, cJSON *cases, int features,
                      const char *key) {
    am_job *jobs[MAX_CASES] = {0};
    const cJSON *cs[MAX_CASES];
    char labels[MAX_CASES][200];
    const int n = run_engine(model_file, dc, m, cases, features, 1, 0, jobs, cs, labels);
    for (int i = 0; i < n; i++) {
        const am_transcript *tr = jobs[i] ? am_job_transcript(jobs[i]) : NULL;
        CHECKF(tr != NULL, "%s: no transcript", labels[i]);
        if (tr) compare_segments(labels[i], cJSON_GetObjectItemCaseSensitive(cs[i], key), tr, features & RUN_WORDS);
        am_job_free(jobs[i]);
    }
}

// Words and beams together, two copies of every clip in one engine: each
// equals the same request run alone; and so does every clip under a
// sequence budget of 6 (one beam-5 window at a time, others wait).
static void mixed(const char *model_file, const am_decoding *dc, const am_model *m, cJSON *cases) {
    am_job *together[2 * MAX_CASES] = {0}, *alone[MAX_CASES] = {0}, *budget[MAX_CASES] = {0};
    const cJSON *cs[MAX_CASES];
    char labels[MAX_CASES][200];
    const int n = run_engine(model_file, dc, m, cases, RUN_BEAM | RUN_WORDS, 2, 0, together, cs, labels);
    run_engine(model_file, dc, m, cases, RUN_BEAM | RUN_WORDS, 1, 6, budget, cs, labels);
    for (int i = 0; i < n; i++) {
        am_job *one[2 * MAX_CASES] = {0};
        cJSON *only = cJSON_CreateArray();
        cJSON_AddItemReferenceToArray(only, (cJSON *)cs[i]);
        run_engine(model_file, dc, m, only, RUN_BEAM | RUN_WORDS, 1, 0, one, cs + i, labels + i);
        cJSON_Delete(only);
        alone[i] = one[0];
        const am_transcript *a = alone[i] ? am_job_transcript(alone[i]) : NULL;
        for (int copy = 0; copy < 2; copy++) {
            const am_transcript *t = together[copy * MAX_CASES + i] ? am_job_transcript(together[copy * MAX_CASES + i]) : NULL;
            CHECKF(a && t && same_transcript(a, t), "%s (copy %d): batched result differs from the single run",
                   labels[i], copy);
        }
        const am_transcript *b = budget[i] ? am_job_transcript(budget[i]) : NULL;
        CHECKF(a && b && same_transcript(a, b), "%s: result under a sequence budget differs from the single run",
               labels[i]);
        if (i == 0) { // a budget below one window's beams: each window runs when it is alone
            am_job *small[2 * MAX_CASES] = {0};
            cJSON *first = cJSON_CreateArray();
            cJSON_AddItemReferenceToArray(first, (cJSON *)cs[0]);
            run_engine(model_file, dc, m, first, RUN_BEAM | RUN_WORDS, 2, 3, small, cs, labels);
            cJSON_Delete(first);
            for (int copy = 0; copy < 2; copy++) {
                am_job *j = small[copy * MAX_CASES];
                const am_transcript *t = j ? am_job_transcript(j) : NULL;
                CHECKF(a && t && same_transcript(a, t), "%s: result under a budget of 3 sequences differs", labels[0]);
                am_job_free(j);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        am_job_free(alone[i]);
        am_job_free(budget[i]);
        am_job_free(together[i]);
        am_job_free(together[MAX_CASES + i]);
    }
}

static int g_mixed = 1; // run the batched-vs-alone repeat (off with --no-mixed)

static int run_model(const char *model_file, cJSON *cases) {
    am_tokenizer *tok;
    am_model *m = golden_model(model_file, &tok);
    if (!m) return 0;
    am_decoding *dc = tok ? am_decoding_create(m, tok) : NULL;
    CHECKF(dc != NULL, "%s: %s", model_file, am_last_error());
    if (dc) {
        beam_window0(model_file, m, dc, cases);
        long_form(model_file, dc, m, cases, RUN_BEAM, "transcribe_beam5");
        long_form(model_file, dc, m, cases, RUN_WORDS, "transcribe_words");
        if (g_mixed) mixed(model_file, dc, m, cases);
    }
    am_decoding_free(dc);
    am_tokenizer_free(tok);
    am_model_free(m);
    return 1;
}

int main(int argc, char **argv) {
    cJSON *more = golden_load_file("golden/golden-more.json");
    if (!more) {
        SKIP_CASE("golden-more", "golden-more.json not found (set AMANUENSIS_TEST_DATA to the shared dir)");
        return am_test_finish("test_golden_more", 0);
    }
    g_golden = golden_load();
    if (argc > 2 && !strcmp(argv[2], "--no-mixed")) g_mixed = 0;
    const int ran = golden_each_model(argc, argv, golden_cases(more), run_model);
    cJSON_Delete(more);
    cJSON_Delete(g_golden);
    return am_test_finish("test_golden_more", ran);
}
