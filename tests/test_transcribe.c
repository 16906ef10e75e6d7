// test_transcribe.c — long-form transcription against the reference: every
// golden case's `transcribe` trace (temperature 0 only, condition on previous
// text) — segment seek/start/end/text/tokens — with all clips of a model
// running together in one engine (batched encoder calls and decoder steps).
// Then span jobs on the smallest model (test_spans): a span equals a whole-file
// job on a mel holding only its slice, shifted onto the original timeline (also
// its words); joining spans; the empty span; the committed text while decoding;
// per-token log-probabilities of the segments.
#include <stdint.h>

#include "am_audio.h"
#include "am_transcribe.h"
#include "golden.h"

#define MAX_CASES 16
#define MAX_TOK 4096

static void compare(const char *label, const cJSON *trace, const am_transcript *tr) {
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(trace, "segments");
    const cJSON *gap = cJSON_GetObjectItemCaseSensitive(trace, "first_step_gap_below_1e-4");
    // the near-tie index counts sampled tokens over all windows in order
    const int limit = cJSON_IsNumber(gap) ? gap->valueint : -1;
    const int n_ref = cJSON_GetArraySize(segs);
    int k = 0, tokens_before = 0, diverged = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, segs) {
        int32_t want[MAX_TOK];
        const int nw = golden_ints(s, "tokens", want, MAX_TOK);
        if (k >= tr->n_segments) {
            CHECKF(limit >= 0 && tokens_before >= limit, "%s: only %d segments, reference has %d", label,
                   tr->n_segments, n_ref);
            diverged = 1;
            break;
        }
        const am_segment *g = &tr->segments[k];
        const int same = g->seek == cJSON_GetObjectItemCaseSensitive(s, "seek")->valueint &&
                         g->start == cJSON_GetObjectItemCaseSensitive(s, "start")->valuedouble &&
                         g->end == cJSON_GetObjectItemCaseSensitive(s, "end")->valuedouble &&
                         strcmp(g->text, golden_str(s, "text")) == 0 && g->n_tokens == nw &&
                         memcmp(g->tokens, want, (size_t)nw * sizeof *want) == 0;
        if (!same) {
            if (limit >= 0 && tokens_before + nw > limit) {
                printf("  %s: segment %d differs after the reference near-tie at sampled token %d\n", label, k, limit);
                diverged = 1;
                break;
            }
            CHECKF(same, "%s: segment %d differs: ours seek %d [%.3f, %.3f] %d tokens '%.40s', ref seek %d [%.3f, %.3f] %d tokens '%.40s'",
                   label, k, g->seek, g->start, g->end, g->n_tokens, g->text,
                   cJSON_GetObjectItemCaseSensitive(s, "seek")->valueint,
                   cJSON_GetObjectItemCaseSensitive(s, "start")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(s, "end")->valuedouble, nw, golden_str(s, "text"));
            diverged = 1;
            break;
        }
        tokens_before += nw;
        k++;
    }
    if (!diverged) CHECKF(tr->n_segments == n_ref, "%s: %d segments, reference %d", label, tr->n_segments, n_ref);
    printf("  %-48s %d segments, %d windows, language %s, %.2f s\n", label, tr->n_segments, tr->n_windows,
           tr->language, tr->duration);
}

static int run_model(const char *model_file, cJSON *cases) {
    char rel[512], path[1024];
    am_tokenizer *tok;
    am_model *m = golden_model(model_file, &tok);
    if (!m) return 0;
    am_decoding *dc = tok ? am_decoding_create(m, tok) : NULL;
    am_mel *mel = dc ? am_mel_create(m->mel_filters, m->hp.n_mels) : NULL;
    am_engine *eng = mel ? am_engine_create(dc, NULL) : NULL;
    CHECKF(eng != NULL, "%s: setup: %s", model_file, am_last_error());
    am_job *jobs[MAX_CASES];
    const cJSON *traces[MAX_CASES];
    char labels[MAX_CASES][200];
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        if (!eng || strcmp(golden_str(c, "model"), model_file) != 0 || n == MAX_CASES) continue;
        snprintf(labels[n], sizeof labels[0], "%s/%s", model_file, golden_str(c, "clip"));
        snprintf(rel, sizeof rel, "audio/%s", golden_str(c, "clip"));
        if (!am_test_find(rel, path, sizeof path)) {
            SKIP_CASE(labels[n], "clip not found (set AMANUENSIS_TEST_DATA to the shared dir)");
            continue;
        }
        float *pcm = NULL;
        size_t ns = 0;
        am_mel_result r;
        CHECK(am_audio_decode_file(path, NULL, &pcm, &ns) == 0);
        CHECK(am_mel_compute(mel, pcm, ns, &r) == 0);
        am_audio_free(pcm);
        am_transcribe_params p = am_transcribe_default_params();
        p.language = "en";
        p.decode.temperature_inc = 0; // temperature (0.0,) only
        jobs[n] = am_job_create(dc, &r, &p);
        CHECK(jobs[n] != NULL);
        if (!jobs[n]) continue;
        CHECK(am_engine_add(eng, jobs[n]) == 0);
        traces[n] = cJSON_GetObjectItemCaseSensitive(c, "transcribe");
        n++;
    }
    if (n) {
        CHECKF(am_engine_run(eng, 0) == 0, "%s: engine: %s", model_file, am_last_error());
        const am_engine_stats *st = am_engine_get_stats(eng);
        printf("%s: %d clips, %ld encoder calls (%ld windows), %ld decoder steps (%.1f rows/step)\n", model_file, n,
               st->encoder_calls, st->encoder_windows, st->decoder_steps,
               st->decoder_steps ? (double)st->decoder_rows / st->decoder_steps : 0.0);
    }
    for (int i = 0; i < n; i++) {
        const am_transcript *tr = am_job_transcript(jobs[i]);
        CHECKF(tr != NULL, "%s: job state %d", labels[i], am_job_state(jobs[i]));
        if (tr) compare(labels[i], traces[i], tr);
        am_job_free(jobs[i]);
    }
    am_engine_free(eng);
    am_mel_free(mel);
    am_decoding_free(dc);
    am_tokenizer_free(tok);
    am_model_free(m);
    return n > 0;
}

// ---------------------------------------------------------------- span jobs
#define SPAN_MODEL "ggml-test-tiny.en-q4_0.bin"
#define SPAN_CLIP "long-mix-16k.wav"

// What a whole-file job would get for the slice [f0, f0 + n) of mel: the slice
// and the 3000 frames after it (what exists), as am_job_create_span copies them.
static am_mel_result slice_mel(const am_mel_result *mel, int f0, int n) {
    const int n_copy = AM_MIN(n + AM_MEL_WINDOW_FRAMES, mel->n_frames - f0);
    am_mel_result r = {malloc((size_t)mel->n_mels * n_copy * sizeof(float)), mel->n_mels, n_copy, n};
    for (int i = 0; r.data && i < mel->n_mels; i++)
        memcpy(r.data + (size_t)i * n_copy, mel->data + (size_t)i * mel->n_frames + f0, (size_t)n_copy * sizeof(float));
    return r;
}

// (e) every segment's token_logprobs: present, finite and <= 0; NULL without tokens.
static void check_segment_logprobs(const char *label, const am_transcript *tr) {
    for (int i = 0; i < tr->n_segments; i++) {
        const am_segment *g = &tr->segments[i];
        if (g->n_tokens == 0) {
            CHECKF(g->token_logprobs == NULL, "%s: segment %d has no tokens but logprobs", label, i);
            continue;
        }
        CHECKF(g->token_logprobs != NULL, "%s: segment %d has %d tokens and no logprobs", label, i, g->n_tokens);
        for (int k = 0; g->token_logprobs && k < g->n_tokens; k++)
            CHECKF(isfinite(g->token_logprobs[k]) && g->token_logprobs[k] <= 0, "%s: segment %d token %d logprob %g",
                   label, i, k, g->token_logprobs[k]);
    }
}

// (a) span vs whole-file job on its slice: the same segments (tokens, logprobs,
// text, words), seek f0 frames and times f0 * 0.01 s later.
static void compare_shifted(const char *label, const am_transcript *span, const am_transcript *whole, int f0) {
    const double shift = f0 * 0.01;
    CHECKF(span->n_segments == whole->n_segments && span->n_segments > 0, "%s: %d segments vs %d", label,
           span->n_segments, whole->n_segments);
    CHECKF(strcmp(span->text, whole->text) == 0, "%s: text differs", label);
    CHECKF(span->n_windows == whole->n_windows && span->n_tokens == whole->n_tokens &&
               span->n_fallbacks == whole->n_fallbacks && span->duration == whole->duration,
           "%s: statistics differ", label);
    for (int i = 0; i < AM_MIN(span->n_segments, whole->n_segments); i++) {
        const am_segment *a = &span->segments[i], *b = &whole->segments[i];
        CHECKF(a->id == b->id && a->seek == b->seek + f0 && fabs(a->start - (b->start + shift)) < 1e-9 &&
                   fabs(a->end - (b->end + shift)) < 1e-9,
               "%s: segment %d: seek %d [%.3f, %.3f] vs %d [%.3f, %.3f] + %d frames", label, i, a->seek, a->start,
               a->end, b->seek, b->start, b->end, f0);
        CHECKF(strcmp(a->text, b->text) == 0 && a->n_tokens == b->n_tokens &&
                   !memcmp(a->tokens, b->tokens, (size_t)a->n_tokens * sizeof *a->tokens) &&
                   (a->n_tokens == 0 ||
                    !memcmp(a->token_logprobs, b->token_logprobs, (size_t)a->n_tokens * sizeof(float))),
               "%s: segment %d tokens/text/logprobs differ", label, i);
        CHECKF(a->n_words == b->n_words, "%s: segment %d: %d words vs %d", label, i, a->n_words, b->n_words);
        for (int k = 0; k < AM_MIN(a->n_words, b->n_words); k++) // round(x, 2) of shifted values: within 0.01
            CHECKF(strcmp(a->words[k].word, b->words[k].word) == 0 &&
                       fabs(a->words[k].start - (b->words[k].start + shift)) <= 0.0100001 &&
                       fabs(a->words[k].end - (b->words[k].end + shift)) <= 0.0100001 &&
                       a->words[k].probability == b->words[k].probability,
                   "%s: segment %d word %d '%s' [%.2f, %.2f] vs '%s' [%.2f, %.2f] + %.2f s", label, i, k,
                   a->words[k].word, a->words[k].start, a->words[k].end, b->words[k].word, b->words[k].start,
                   b->words[k].end, shift);
    }
}

// (f) words of a span: on the original timeline, within their segments and the
// span's audio. (A segment without words keeps the decoded timestamps, which the
// test models put anywhere in the 30 s window, as the reference does.)
static void check_span_words(const char *label, const am_transcript *tr, int f0, int n) {
    const double t0 = f0 * 0.01, t1 = (f0 + n) * 0.01;
    int n_words = 0;
    for (int i = 0; i < tr->n_segments; i++) {
        const am_segment *g = &tr->segments[i];
        CHECKF(g->seek >= f0 && g->seek < f0 + n && g->start >= t0 - 1e-9,
               "%s: segment %d seek %d [%.2f, %.2f] before or after the span [%.2f, %.2f]", label, i, g->seek,
               g->start, g->end, t0, t1);
        for (int k = 0; k < g->n_words; k++) {
            const am_word *w = &g->words[k];
            CHECKF(w->start >= g->start - 1e-9 && w->end <= g->end + 1e-9 && w->start <= w->end && w->start >= t0 &&
                       w->end <= t1 + 0.02,
                   "%s: segment %d [%.2f, %.2f] word %d '%s' [%.2f, %.2f] (span [%.2f, %.2f])", label, i, g->start,
                   g->end, k, w->word, w->start, w->end, t0, t1);
        }
        n_words += g->n_words;
    }
    CHECKF(n_words > 0, "%s: no words", label);
}

// A job stepped by hand, and what its committed text was after the last call.
typedef struct {
    const char *label;
    am_job *j;
    char *text;     // am_job_text_so_far after the last engine call
    int n_committed, n_changes;
    double progress;
} watched;

// (d) after an engine call: the committed text only grows (each is a prefix of
// the next; the last is the final text), and only when segments were committed.
static void watch(watched *w) {
    char *t = NULL;
    CHECKF(am_job_text_so_far(w->j, &t) == 0 && t, "%s: text so far: %s", w->label, am_last_error());
    if (!t) return;
    const int nc = am_job_n_committed(w->j);
    const double pr = am_job_progress(w->j);
    CHECKF(strncmp(t, w->text, strlen(w->text)) == 0, "%s: committed text '%.40s' does not start with '%.40s'",
           w->label, t, w->text);
    CHECKF(nc >= w->n_committed && (nc != w->n_committed || strcmp(t, w->text) == 0),
           "%s: committed text changed with %d -> %d segments", w->label, w->n_committed, nc);
    CHECKF(pr >= w->progress && pr <= 1.0, "%s: progress %.3f after %.3f", w->label, pr, w->progress);
    w->n_changes += strcmp(t, w->text) != 0;
    free(w->text);
    w->text = t;
    w->n_committed = nc;
    w->progress = pr;
}

static void test_spans(void) {
    char path[1024];
    am_tokenizer *tok;
    am_model *m = golden_model(SPAN_MODEL, &tok);
    if (!m) return;
    if (!am_test_find("audio/" SPAN_CLIP, path, sizeof path)) {
        SKIP_CASE("spans", "clip %s not found", SPAN_CLIP);
        am_tokenizer_free(tok);
        am_model_free(m);
        return;
    }
    am_decoding *dc = am_decoding_create(m, tok);
    am_mel *mc = dc ? am_mel_create(m->mel_filters, m->hp.n_mels) : NULL;
    am_engine *eng = mc ? am_engine_create(dc, NULL) : NULL;
    CHECKF(eng != NULL, "spans: setup: %s", am_last_error());
    float *pcm = NULL;
    size_t ns = 0;
    am_mel_result mel = {0};
    CHECK(eng && am_audio_decode_file(path, NULL, &pcm, &ns) == 0 && am_mel_compute(mc, pcm, ns, &mel) == 0);
    am_audio_free(pcm);
    if (!mel.data) goto done;
    const int C = mel.content_frames;
    CHECKF(C > 4000, "spans: %s has %d frames, want > 4000", SPAN_CLIP, C);
    if (C <= 4000) goto done;
    am_transcribe_params p = am_transcribe_default_params();
    p.decode.temperature_inc = 0; // one attempt per window: quick
    am_transcribe_params pw = p;
    pw.word_timestamps = 1;
    // (a) a span of two windows and the whole-file job on its slice; (f) the same with words;
    // (b) three spans covering the clip, to join
    const int fa = 700, na = 3400, fw = 1250, nw = 2000;
    const int cut[4] = {0, 1500, 3300, C};
    am_mel_result ma = slice_mel(&mel, fa, na), mw = slice_mel(&mel, fw, nw);
    watched jobs[7] = {
        {"span [700, 4100)", am_job_create_span(dc, &mel, fa, na, &p), NULL, 0, 0, 0},
        {"whole slice [700, 4100)", ma.data ? am_job_create(dc, &ma, &p) : NULL, NULL, 0, 0, 0},
        {"span [1250, 3250) words", am_job_create_span(dc, &mel, fw, nw, &pw), NULL, 0, 0, 0},
        {"whole slice [1250, 3250) words", mw.data ? am_job_create(dc, &mw, &pw) : NULL, NULL, 0, 0, 0},
    };
    for (int k = 0; k < 3; k++)
        jobs[4 + k] = (watched){k == 0 ? "part 0" : k == 1 ? "part 1" : "part 2",
                                am_job_create_span(dc, &mel, cut[k], cut[k + 1] - cut[k], &p), NULL, 0, 0, 0};
    am_mel_free_result(&ma); // taken over (empty) unless the job failed
    am_mel_free_result(&mw);
    int ok = 1;
    for (int i = 0; i < 7; i++) {
        CHECKF(jobs[i].j != NULL, "%s: create: %s", jobs[i].label, am_last_error());
        ok &= jobs[i].j != NULL;
        jobs[i].text = calloc(1, 1);
    }
    for (int i = 0; ok && i < 7; i++) CHECK(am_engine_add(eng, jobs[i].j) == 0);
    // (d) step by hand, watching every job's committed text after each call
    for (int guard = 0; ok && am_engine_pending(eng) > 0 && guard < 100000; guard++) {
        if (am_engine_waiting_windows(eng) > 0) CHECK(am_engine_encode(eng, 0) >= 0);
        for (int i = 0; i < 7; i++) watch(&jobs[i]);
        CHECK(am_engine_decode_step(eng) >= 0);
        for (int i = 0; i < 7; i++) watch(&jobs[i]);
    }
    const am_transcript *tr[7] = {0};
    for (int i = 0; ok && i < 7; i++) {
        tr[i] = am_job_transcript(jobs[i].j);
        CHECKF(tr[i] != NULL, "%s: state %d", jobs[i].label, am_job_state(jobs[i].j));
        if (!tr[i]) {
            ok = 0;
            continue;
        }
        CHECKF(strcmp(jobs[i].text, tr[i]->text) == 0, "%s: committed text after completion differs from the final",
               jobs[i].label);
        CHECKF(jobs[i].progress == 1.0, "%s: progress %.3f when done", jobs[i].label, jobs[i].progress);
        check_segment_logprobs(jobs[i].label, tr[i]);
        printf("  %-32s %2d segments, %d windows, %d text changes while decoding\n", jobs[i].label,
               tr[i]->n_segments, tr[i]->n_windows, jobs[i].n_changes);
    }
    if (ok) {
        CHECKF(jobs[0].n_changes >= 2, "span: committed text grew %d times over 2 windows", jobs[0].n_changes);
        compare_shifted("span [700, 4100)", tr[0], tr[1], fa);
        CHECK(tr[0]->duration == na * 0.01 && tr[0]->segments[0].start >= fa * 0.01);
        compare_shifted("span [1250, 3250) words", tr[2], tr[3], fw);
        check_span_words("span [1250, 3250) words", tr[2], fw, nw);
        // (b) join the three parts into the first
        am_job *parts[3] = {jobs[4].j, jobs[5].j, jobs[6].j};
        int want_n = 0, want_windows = 0, want_tokens = 0, want_fallbacks = 0, seeks[256];
        size_t len = 0;
        for (int k = 0; k < 3; k++) len += strlen(tr[4 + k]->text);
        char *want_text = calloc(1, len + 1);
        for (int k = 0; k < 3; k++) {
            strcat(want_text, tr[4 + k]->text);
            for (int i = 0; i < tr[4 + k]->n_segments && want_n < 256; i++) seeks[want_n++] = tr[4 + k]->segments[i].seek;
            want_windows += tr[4 + k]->n_windows;
            want_tokens += tr[4 + k]->n_tokens;
            want_fallbacks += tr[4 + k]->n_fallbacks;
            CHECKF(tr[4 + k]->n_segments > 0 && tr[4 + k]->segments[0].seek == cut[k], "part %d starts at %d", k,
                   tr[4 + k]->n_segments ? tr[4 + k]->segments[0].seek : -1);
        }
        am_job *wrong[2] = {jobs[5].j, jobs[4].j}; // the destination may only come first
        CHECK(am_job_join(jobs[4].j, wrong, 2, 1.0) == AM_EINVAL);
        am_job *twice[2] = {jobs[5].j, jobs[5].j};
        CHECK(am_job_join(jobs[4].j, twice, 2, 1.0) == AM_EINVAL);
        const double dur = C * 0.01;
        CHECKF(am_job_join(jobs[4].j, parts, 3, dur) == 0, "join: %s", am_last_error());
        const am_transcript *jt = am_job_transcript(jobs[4].j);
        CHECKF(jt->n_segments == want_n, "join: %d segments, want %d", jt->n_segments, want_n);
        for (int i = 0; i < AM_MIN(jt->n_segments, want_n); i++)
            CHECKF(jt->segments[i].id == i && jt->segments[i].seek == seeks[i] &&
                       (i == 0 || jt->segments[i].seek >= jt->segments[i - 1].seek),
                   "join: segment %d: id %d seek %d (want %d)", i, jt->segments[i].id, jt->segments[i].seek, seeks[i]);
        CHECKF(strcmp(jt->text, want_text) == 0, "join: text is not the concatenation");
        CHECK(jt->duration == dur && jt->n_windows == want_windows && jt->n_tokens == want_tokens &&
              jt->n_fallbacks == want_fallbacks && strcmp(jt->language, "en") == 0);
        for (int k = 1; k < 3; k++)
            CHECKF(tr[4 + k]->n_segments == 0 && tr[4 + k]->text[0] == 0 && tr[4 + k]->n_windows == 0,
                   "join: part %d not left empty", k);
        check_segment_logprobs("joined", jt);
        char *t = NULL;
        CHECK(am_job_text_so_far(jobs[4].j, &t) == 0 && t && strcmp(t, want_text) == 0);
        CHECK(am_job_n_committed(jobs[4].j) == want_n);
        free(t);
        free(want_text);
        printf("  %-32s %2d segments, %d windows, %.2f s\n", "joined parts", jt->n_segments, jt->n_windows,
               jt->duration);
    }
    // (c) the empty span, and spans outside the mel
    am_job *empty = am_job_create_span(dc, &mel, 900, 0, &p);
    CHECKF(empty && am_job_state(empty) == AM_JOB_DONE && am_job_transcript(empty)->n_segments == 0 &&
               am_job_transcript(empty)->text[0] == 0 && am_job_progress(empty) == 1.0 &&
               strcmp(am_job_transcript(empty)->language, "en") == 0 && am_job_transcript(empty)->duration == 0 &&
               am_job_n_committed(empty) == 0,
           "empty span: %s", am_last_error());
    CHECK(am_job_create_span(dc, &mel, -1, 10, &p) == NULL);
    CHECK(am_job_create_span(dc, &mel, 10, -1, &p) == NULL);
    CHECK(am_job_create_span(dc, &mel, mel.n_frames - 5, 6, &p) == NULL);
    am_job_free(empty);
    for (int i = 0; i < 7; i++) {
        am_job_free(jobs[i].j);
        free(jobs[i].text);
    }
done:
    am_mel_free_result(&mel);
    am_engine_free(eng);
    am_mel_free(mc);
    am_decoding_free(dc);
    am_tokenizer_free(tok);
    am_model_free(m);
}

int main(int argc, char **argv) {
    test_spans();
    cJSON *root = golden_load();
    if (!root) {
        SKIP_CASE("golden", "golden.json not found");
        return am_test_finish("test_transcribe", 0);
    }
    const int ran = golden_each_model(argc, argv, golden_cases(root), run_model);
    cJSON_Delete(root);
    return am_test_finish("test_transcribe", ran);
}
