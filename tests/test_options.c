// test_options.c — transcription options on the tiny.en fixture and jfk.wav:
// temperature fallback (the random-weight model always falls back), seeded
// sampling, disabled thresholds, without_timestamps, initial prompts,
// languages and tasks on English-only and multilingual models, empty audio,
// cancelling a job in the middle of a batched decode, word timestamps (also
// with explicit alignment heads) and the decoding strategies (beam search,
// patience, length penalty, best-of).
//
// Checks marked [engine] test what the engine computes for word timestamps
// and beams (words for every segment with text, inside the audio, adding up
// to the text; beam search with one beam is greedy decoding).
#include <ctype.h>
#include <stdint.h>

#include "am_audio.h"
#include "am_test.h"
#include "am_transcribe.h"

typedef struct {
    am_model *m;
    am_tokenizer *tok;
    am_decoding *dc;
    am_mel *mel;
    am_mel_result jfk; // kept; jobs get copies
} model_ctx;

static int load_model(model_ctx *c, const char *rel, const char *audio) {
    char path[1024];
    memset(c, 0, sizeof *c);
    if (!am_test_find(rel, path, sizeof path)) return 0;
    c->m = am_model_load(path);
    if (c->m) c->tok = am_tokenizer_create(c->m->vocab_bytes, c->m->vocab_len, c->m->n_file_vocab, c->m->hp.n_vocab);
    if (c->tok) c->dc = am_decoding_create(c->m, c->tok);
    if (c->dc) c->mel = am_mel_create(c->m->mel_filters, c->m->hp.n_mels);
    CHECKF(c->mel != NULL, "%s: setup: %s", rel, am_last_error());
    if (!c->mel) return 0;
    float *pcm = NULL;
    size_t ns = 0;
    CHECKF(am_audio_decode_file(audio, NULL, &pcm, &ns) == 0, "decode %s: %s", audio, am_last_error());
    if (!pcm) return 0;
    const int rc = am_mel_compute(c->mel, pcm, ns, &c->jfk);
    am_audio_free(pcm);
    CHECK(rc == 0);
    return rc == 0;
}

static void free_model(model_ctx *c) {
    am_mel_free_result(&c->jfk);
    am_mel_free(c->mel);
    am_decoding_free(c->dc);
    am_tokenizer_free(c->tok);
    am_model_free(c->m);
}

// A job on a copy of the clip's mel (NULL when am_job_create refuses).
static am_job *make_job(const model_ctx *c, const am_mel_result *src, const am_transcribe_params *p) {
    am_mel_result r = *src;
    const size_t n = (size_t)src->n_mels * src->n_frames;
    r.data = malloc((n ? n : 1) * sizeof *r.data);
    if (n) memcpy(r.data, src->data, n * sizeof *r.data);
    am_job *j = am_job_create(c->dc, &r, p);
    if (!j) am_mel_free_result(&r); // not taken over
    return j;
}

// Run jobs together in one engine to completion.
static void run_jobs(const model_ctx *c, am_job **jobs, int n) {
    am_engine *e = am_engine_create(c->dc, NULL);
    CHECKF(e != NULL, "engine: %s", am_last_error());
    if (!e) return;
    for (int i = 0; i < n; i++)
        if (jobs[i]) CHECK(am_engine_add(e, jobs[i]) == 0);
    CHECKF(am_engine_run(e, 0) == 0, "engine: %s", am_last_error());
    CHECK(am_engine_pending(e) == 0);
    am_engine_free(e);
}

// The random-weight model never samples <|endoftext|>, so every attempt runs
// to the sample length: most cases use SHORT_SAMPLE tokens (still one window
// of jfk.wav) to stay fast under sanitizers; the default-parameter fallback
// and the long prompt run the full 224.
#define SHORT_SAMPLE 32

static am_transcribe_params params(double temperature, double inc) {
    am_transcribe_params p = am_transcribe_default_params();
    p.decode.sample_len = SHORT_SAMPLE;
    p.decode.temperature = temperature;
    p.decode.temperature_inc = inc;
    return p;
}

static int near_eq(double a, double b) { return fabs(a - b) <= 1e-5 * fmax(fabs(a), fabs(b)); }

// 1 when a and b are the same transcript (segments, tokens, values, text);
// otherwise 0 and a description of the first difference in why.
static int same_transcript(const am_transcript *a, const am_transcript *b, char *why, size_t cap) {
    if (!a || !b) return snprintf(why, cap, "missing transcript"), 0;
    if (a->n_segments != b->n_segments) return snprintf(why, cap, "%d vs %d segments", a->n_segments, b->n_segments), 0;
    for (int i = 0; i < a->n_segments; i++) {
        const am_segment *x = &a->segments[i], *y = &b->segments[i];
        if (x->seek != y->seek || x->start != y->start || x->end != y->end)
            return snprintf(why, cap, "segment %d: seek/start/end %d %.3f %.3f vs %d %.3f %.3f", i, x->seek, x->start,
                            x->end, y->seek, y->start, y->end),
                   0;
        if (x->n_tokens != y->n_tokens || memcmp(x->tokens, y->tokens, (size_t)x->n_tokens * sizeof *x->tokens))
            return snprintf(why, cap, "segment %d: tokens differ", i), 0;
        if (strcmp(x->text, y->text)) return snprintf(why, cap, "segment %d: text differs", i), 0;
        // The statistics come from logits whose last bits depend on the row's
        // place in a batched decoder step (BLAS blocks rows), so they agree
        // to ~1e-7 relative across batch compositions, not bit for bit.
        if (x->temperature != y->temperature || !near_eq(x->avg_logprob, y->avg_logprob) ||
            x->compression_ratio != y->compression_ratio || !near_eq(x->no_speech_prob, y->no_speech_prob))
            return snprintf(why, cap,
                            "segment %d: decode statistics differ: temperature %.17g / %.17g, avg_logprob %.17g / "
                            "%.17g, compression_ratio %.17g / %.17g, no_speech_prob %.17g / %.17g",
                            i, x->temperature, y->temperature, x->avg_logprob, y->avg_logprob, x->compression_ratio,
                            y->compression_ratio, x->no_speech_prob, y->no_speech_prob),
                   0;
    }
    if (strcmp(a->text, b->text)) return snprintf(why, cap, "text differs"), 0;
    if (strcmp(a->language, b->language)) return snprintf(why, cap, "language differs"), 0;
    return 1;
}

#define CHECK_SAME(a, b, label)                                          \
    do {                                                                 \
        char why_[512] = "";                                             \
        CHECKF(same_transcript((a), (b), why_, sizeof why_), "%s: %s", (label), why_); \
    } while (0)

static const am_transcript *tr_of(am_job *j) { return j ? am_job_transcript(j) : NULL; }

// ---------------------------------------------------------------- the batch
enum {
    J_DEFAULT,   // default params (sample_len too): fallback 0, 0.2, ... 1.0
    J_GREEDY,    // temperature_inc 0
    J_SEED1,     // temperature 1.0 without fallback, seed 1
    J_SEED1B,    // the same again, in the same batch
    J_SEED2,
    J_SEED3,
    J_SEED4,
    J_T04,       // start at 0.4 with fallback
    J_NAN,       // thresholds disabled (fallback step still 0.2)
    J_NOTS,      // without_timestamps
    J_PROMPT,    // a short initial prompt
    J_LONGPROMPT,// 5000 characters of prompt
    J_FR,        // language "fr" on an English-only model
    J_TRANSLATE, // task translate on an English-only model
    J_ENGLISH,   // language given by name
    N_JOBS
};

static const char *k_prompt = "President Kennedy's inaugural address, January 1961.";

static void check_temperatures(const char *label, const am_transcript *tr, double want) {
    CHECKF(tr->n_segments > 0, "%s: no segments", label);
    for (int i = 0; i < tr->n_segments; i++)
        CHECKF(fabs(tr->segments[i].temperature - want) < 1e-9, "%s: segment %d temperature %.17g, want %g", label, i,
               tr->segments[i].temperature, want);
}

static void test_options(const model_ctx *c, am_job **jobs, char *long_prompt) {
    const am_special_tokens *sp = am_tokenizer_specials(c->tok);
    am_transcribe_params ps[N_JOBS];
    ps[J_DEFAULT] = am_transcribe_default_params();
    ps[J_GREEDY] = params(0, 0);
    ps[J_SEED1] = ps[J_SEED1B] = ps[J_SEED2] = ps[J_SEED3] = ps[J_SEED4] = params(1.0, 0);
    ps[J_SEED1].decode.seed = ps[J_SEED1B].decode.seed = 1;
    ps[J_SEED2].decode.seed = 2;
    ps[J_SEED3].decode.seed = 3;
    ps[J_SEED4].decode.seed = 4;
    ps[J_T04] = params(0.4, 0.2);
    ps[J_NAN] = params(0, 0.2);
    ps[J_NAN].decode.compression_ratio_threshold = NAN;
    ps[J_NAN].decode.logprob_threshold = NAN;
    ps[J_NOTS] = params(0, 0);
    ps[J_NOTS].decode.without_timestamps = 1;
    ps[J_PROMPT] = params(0, 0);
    ps[J_PROMPT].initial_prompt = k_prompt;
    ps[J_LONGPROMPT] = params(0, 0);
    ps[J_LONGPROMPT].decode.sample_len = 0; // 223 prompt tokens + 224 sampled fill the context
    ps[J_LONGPROMPT].initial_prompt = long_prompt;
    ps[J_FR] = params(0, 0);
    ps[J_FR].language = "fr";
    ps[J_TRANSLATE] = params(0, 0);
    ps[J_TRANSLATE].translate = 1;
    ps[J_ENGLISH] = params(0, 0);
    ps[J_ENGLISH].language = "English";
    for (int i = 0; i < N_JOBS; i++) {
        jobs[i] = make_job(c, &c->jfk, &ps[i]);
        CHECKF(jobs[i] != NULL, "job %d: %s", i, am_last_error());
    }
    const double t0 = am_time_s();
    run_jobs(c, jobs, N_JOBS);
    printf("  %d option sets on jfk.wav in one engine: %.2f s\n", N_JOBS, am_time_s() - t0);
    const am_transcript *tr[N_JOBS];
    for (int i = 0; i < N_JOBS; i++) {
        tr[i] = tr_of(jobs[i]);
        CHECKF(tr[i] != NULL, "job %d: no transcript (state %d)", i, jobs[i] ? am_job_state(jobs[i]) : -1);
        if (!tr[i]) return;
    }

    // fallback through 0, 0.2, ..., 1.0: the random model's avg_logprob is far below -1
    check_temperatures("default params", tr[J_DEFAULT], 1.0);
    CHECKF(tr[J_DEFAULT]->n_fallbacks >= 5, "default params: %d fallbacks", tr[J_DEFAULT]->n_fallbacks);
    CHECKF(tr[J_DEFAULT]->n_fallbacks == 5 * tr[J_DEFAULT]->n_windows, "default params: %d fallbacks in %d windows",
           tr[J_DEFAULT]->n_fallbacks, tr[J_DEFAULT]->n_windows);
    for (int i = 0; i < tr[J_DEFAULT]->n_segments; i++)
        CHECKF(tr[J_DEFAULT]->segments[i].avg_logprob < -1.0, "default params: segment %d avg_logprob %.3f", i,
               tr[J_DEFAULT]->segments[i].avg_logprob);
    printf("  fallback: %d windows, %d fallbacks, final temperature %.17g\n", tr[J_DEFAULT]->n_windows,
           tr[J_DEFAULT]->n_fallbacks, tr[J_DEFAULT]->segments[0].temperature);
    // no fallback step: greedy only
    check_temperatures("temperature_inc 0", tr[J_GREEDY], 0.0);
    CHECK(tr[J_GREEDY]->n_fallbacks == 0);
    for (int i = 0; i < tr[J_GREEDY]->n_segments; i++) CHECK(tr[J_GREEDY]->segments[i].temperature == 0.0);
    // 0.4, 0.6, 0.8, 1.0
    check_temperatures("temperature 0.4", tr[J_T04], 1.0);
    CHECKF(tr[J_T04]->n_fallbacks == 3 * tr[J_T04]->n_windows && tr[J_T04]->n_windows >= 1,
           "temperature 0.4: %d fallbacks in %d windows (want 3 per window)", tr[J_T04]->n_fallbacks,
           tr[J_T04]->n_windows);
    // thresholds disabled: the greedy attempt is accepted
    check_temperatures("NAN thresholds", tr[J_NAN], 0.0);
    CHECK(tr[J_NAN]->n_fallbacks == 0);
    CHECK_SAME(tr[J_NAN], tr[J_GREEDY], "NAN thresholds vs temperature_inc 0");

    // seeded sampling: deterministic, and the seed matters
    CHECK_SAME(tr[J_SEED1], tr[J_SEED1B], "seed 1 twice in one batch");
    check_temperatures("seed 1", tr[J_SEED1], 1.0);
    char why[256];
    int differ = 0;
    for (int k = J_SEED2; k <= J_SEED4; k++) differ += !same_transcript(tr[J_SEED1], tr[k], why, sizeof why);
    CHECKF(differ > 0, "seeds 2, 3 and 4 all give seed 1's transcript");
    printf("  seeds 2..4: %d of 3 differ from seed 1\n", differ);

    // without timestamps: one segment per window, no timestamp tokens
    const am_transcript *t = tr[J_NOTS];
    CHECKF(t->n_segments == t->n_windows && t->n_windows == 1, "without_timestamps: %d segments, %d windows",
           t->n_segments, t->n_windows);
    for (int i = 0; i < t->n_segments; i++)
        for (int k = 0; k < t->segments[i].n_tokens; k++)
            CHECKF(t->segments[i].tokens[k] < sp->eot, "without_timestamps: segment %d token %d is %d", i, k,
                   t->segments[i].tokens[k]);
    if (t->n_segments == 1)
        CHECKF(t->segments[0].start == 0.0 && fabs(t->segments[0].end - 11.0) < 1e-9 && t->segments[0].seek == 0,
               "without_timestamps: segment [%.3f, %.3f] seek %d", t->segments[0].start, t->segments[0].end,
               t->segments[0].seek);
    // with timestamps, every greedy segment is a timestamp pair around text
    for (int i = 0; i < tr[J_GREEDY]->n_segments; i++) {
        const am_segment *s = &tr[J_GREEDY]->segments[i];
        if (s->n_tokens == 0) continue; // cleared
        CHECKF(s->tokens[0] >= sp->timestamp_begin, "greedy segment %d does not start with a timestamp", i);
    }

    // initial prompt: not part of the text; changes the decode (very likely)
    for (int k = J_PROMPT; k <= J_LONGPROMPT; k++) {
        const char *pr = k == J_PROMPT ? k_prompt : long_prompt;
        const char *txt = tr[k]->text;
        const size_t n = am_str_strip(&txt, strlen(txt));
        CHECKF(n < 20 || strncmp(txt, pr, 20) != 0, "prompt %d: the text starts with the prompt", k);
        CHECKF(strstr(tr[k]->text, "President Kennedy") == NULL || strstr(tr[J_GREEDY]->text, "President Kennedy"),
               "prompt %d: the prompt leaked into the text", k);
        CHECK(tr[k]->n_segments > 0);
    }
    // the sample length bounds the tokens per window; with the long prompt
    // the context (448) holds <|startofprev|> + 223 prompt tokens + <|startoftranscript|> + 224
    CHECKF(tr[J_LONGPROMPT]->n_tokens > 0 && tr[J_LONGPROMPT]->n_tokens <= 224 * tr[J_LONGPROMPT]->n_windows,
           "long prompt: %d tokens in %d windows", tr[J_LONGPROMPT]->n_tokens, tr[J_LONGPROMPT]->n_windows);
    for (int i = J_GREEDY; i < N_JOBS; i++)
        if (i != J_LONGPROMPT)
            CHECKF(tr[i]->n_tokens <= SHORT_SAMPLE * tr[i]->n_windows, "job %d: %d tokens in %d windows", i,
                   tr[i]->n_tokens, tr[i]->n_windows);
    if (same_transcript(tr[J_PROMPT], tr[J_GREEDY], why, sizeof why))
        printf("  note: the initial prompt did not change the decode\n");

    // English-only model: a language or task is ignored, as the reference does
    CHECK_SAME(tr[J_FR], tr[J_GREEDY], "language fr on tiny.en vs none");
    CHECKF(!strcmp(tr[J_FR]->language, "en"), "language fr on tiny.en: transcript language '%s'", tr[J_FR]->language);
    CHECK_SAME(tr[J_TRANSLATE], tr[J_GREEDY], "translate on tiny.en vs transcribe");
    CHECK(tr[J_TRANSLATE]->translate == 0);
    CHECK_SAME(tr[J_ENGLISH], tr[J_GREEDY], "language English on tiny.en vs none");
    CHECK(!strcmp(tr[J_GREEDY]->language, "en"));
    for (int i = 0; i < N_JOBS; i++) CHECKF(!strcmp(tr[i]->language, "en"), "job %d: language '%s'", i, tr[i]->language);
    for (int i = 0; i < N_JOBS; i++) CHECK(fabs(tr[i]->duration - 11.0) < 1e-9);

    // an unknown language is refused, also on English-only models: the
    // reference's get_tokenizer() raises "Unsupported language" for any model
    am_transcribe_params pk = params(0, 0);
    pk.language = "klingon";
    am_job *jk = make_job(c, &c->jfk, &pk);
    CHECKF(jk == NULL && strstr(am_last_error(), "unsupported language"),
           "language klingon on tiny.en: am_job_create %s (%s)", jk ? "accepted it" : "refused it", am_last_error());
    am_job_free(jk);
}

// The same seed alone in its own engine gives the batched result.
static void test_seed_alone(const model_ctx *c, am_job **batch) {
    am_transcribe_params p = params(1.0, 0);
    p.decode.seed = 1;
    am_job *j = make_job(c, &c->jfk, &p);
    run_jobs(c, &j, 1);
    CHECK_SAME(tr_of(j), tr_of(batch[J_SEED1]), "seed 1 alone vs in the batch");
    am_job_free(j);
}

// Empty and very short audio: done at once, empty transcript.
static void test_empty(const model_ctx *c, const char *label) {
    float zeros[100] = {0};
    am_mel_result r;
    CHECK(am_mel_compute(c->mel, zeros, 100, &r) == 0);
    CHECKF(r.content_frames == 0, "%s: 100 samples give %d content frames", label, r.content_frames);
    am_transcribe_params p = am_transcribe_default_params();
    am_job *j = am_job_create(c->dc, &r, &p);
    CHECKF(j != NULL, "%s: %s", label, am_last_error());
    if (!j) {
        am_mel_free_result(&r);
        return;
    }
    CHECK(am_job_state(j) == AM_JOB_DONE);
    CHECK(am_job_progress(j) == 1.0);
    am_engine *e = am_engine_create(c->dc, NULL);
    CHECK(am_engine_add(e, j) == 0);
    CHECK(am_engine_pending(e) == 0);
    CHECK(am_engine_run(e, 0) == 0);
    const am_transcript *t = am_job_transcript(j);
    CHECKF(t && t->text && t->text[0] == 0 && t->n_segments == 0 && t->duration == 0.0 && t->n_windows == 0,
           "%s: empty audio transcript", label);
    CHECKF(t && t->language[0], "%s: empty audio has no language", label);
    am_engine_free(e);
    am_job_free(j);
}

// Cancel one of three jobs in the middle of a batched decode: the others
// finish exactly as they do alone; a cancelled job can run again elsewhere.
static void test_cancel(const model_ctx *c, am_job **batch) {
    am_transcribe_params pg = params(0, 0), p1 = params(1.0, 0), p2 = params(1.0, 0);
    p1.decode.seed = 1;
    p2.decode.seed = 2;
    am_job *greedy_alone = make_job(c, &c->jfk, &pg);
    run_jobs(c, &greedy_alone, 1);
    am_job *j[3] = {make_job(c, &c->jfk, &pg), make_job(c, &c->jfk, &p1), make_job(c, &c->jfk, &p2)};
    am_engine *e = am_engine_create(c->dc, NULL);
    CHECK(e && j[0] && j[1] && j[2]);
    if (!e || !j[0] || !j[1] || !j[2]) goto out;
    for (int i = 0; i < 3; i++) CHECK(am_engine_add(e, j[i]) == 0);
    CHECK(am_engine_add(e, j[0]) == AM_EINVAL); // already there
    CHECK(am_engine_pending(e) == 3);
    CHECK(am_engine_waiting_windows(e) == 3);
    CHECK(am_engine_encode(e, 0) == 3);
    CHECK(am_engine_active_windows(e) == 3);
    CHECK(am_engine_waiting_windows(e) == 0);
    // a few steps: the prefix, then sampling (a window could end early on
    // eot, so only the first step is sure to have all three)
    CHECK(am_engine_decode_step(e) == 3);
    for (int s = 0; s < 7; s++) CHECK(am_engine_decode_step(e) > 0);
    const int active = am_engine_active_windows(e), pending = am_engine_pending(e);
    CHECKF(am_job_state(j[1]) == AM_JOB_DECODE, "job to cancel is in state %d", am_job_state(j[1]));
    CHECK(am_engine_remove(e, j[1]) == 0);
    CHECK(am_engine_remove(e, j[1]) == AM_EINVAL); // no longer there
    CHECKF(am_engine_active_windows(e) == active - 1, "active windows %d -> %d", active, am_engine_active_windows(e));
    CHECK(am_engine_pending(e) == pending - 1);
    CHECK(am_job_transcript(j[1]) == NULL);
    // the cancelled job can go (its caller owns it); the engine must not touch it
    am_job *cancelled = j[1];
    j[1] = NULL;
    for (int s = 0; s < 4; s++) {
        const int rows = am_engine_decode_step(e);
        CHECKF(rows >= 0 && rows <= 2, "step after cancel: %d rows", rows);
    }
    CHECKF(am_engine_run(e, 0) == 0, "engine after cancel: %s", am_last_error());
    CHECK(am_engine_active_windows(e) == 0 && am_engine_pending(e) == 0);
    CHECK_SAME(tr_of(j[0]), tr_of(greedy_alone), "greedy after a cancel vs alone");
    CHECK_SAME(tr_of(j[2]), tr_of(batch[J_SEED2]), "seed 2 after a cancel vs batched");
    // re-added to another engine, the cancelled job runs to completion
    am_engine *e2 = am_engine_create(c->dc, NULL);
    CHECK(am_engine_add(e2, cancelled) == 0);
    CHECKF(am_engine_run(e2, 0) == 0, "re-added job: %s", am_last_error());
    char why[256];
    CHECK(tr_of(cancelled) != NULL);
    if (tr_of(cancelled) && !same_transcript(tr_of(cancelled), tr_of(batch[J_SEED1]), why, sizeof why))
        printf("  note: a cancelled seeded job, re-added, differs from an uninterrupted run (%s)\n", why);
    am_engine_free(e2);
    am_job_free(cancelled);
out:
    am_engine_free(e);
    for (int i = 0; i < 3; i++) am_job_free(j[i]);
    am_job_free(greedy_alone);
}

// ---------------------------------------------------------------- word timestamps
static int blank(const char *t) {
    const char *p = t ? t : "";
    return am_str_strip(&p, strlen(p)) == 0;
}

// Text made only of words " [A-Za-z0-9]+": the reference's word split and
// punctuation merge then cut it exactly at its spaces.
static int plain_words(const char *t) {
    if (*t != ' ') return 0;
    for (const char *p = t; *p; p++) {
        if (*p == ' ' && !(isalnum((unsigned char)p[1]))) return 0;
        if (*p != ' ' && !isalnum((unsigned char)*p)) return 0;
    }
    return 1;
}

// The words of a transcript made with word_timestamps, as the reference's
// transcribe() leaves them. add_word_timestamps hands each segment words by
// counting tokens after the split into words and the punctuation merge, so a
// word may cross a segment boundary and a segment may even get none (text
// continuing the previous segment's last word, a partial character, merged
// punctuation). What holds in every window (segments of one seek): it has
// words when it has text, and its words spell its text unless a segment was
// cleared (the words go with it) or holds a partial character. In a window
// of plain words (" word word ...") every segment gets exactly its own words.
// Every word lies in the audio (0 <= start <= end; the reference's clamp of
// a long last word to its start + the median word duration may end it up to
// 0.2 s after the last jump time).
static void check_words(const char *label, const am_transcript *t) {
    int n_words = 0, cleared = 0, clean_windows = 0;
    for (int i = 0; i < t->n_segments;) {
        int e = i; // the window: segments [i, e)
        while (e < t->n_segments && t->segments[e].seek == t->segments[i].seek) e++;
        size_t len_text = 0, len_words = 0;
        int any_text = 0, window_words = 0, clean = 1, skip_concat = 0;
        for (int k = i; k < e; k++) {
            const am_segment *s = &t->segments[k];
            len_text += strlen(s->text);
            for (int w = 0; w < s->n_words; w++) len_words += s->words[w].word ? strlen(s->words[w].word) : 0;
            any_text |= !blank(s->text);
            window_words += s->n_words;
            clean &= plain_words(s->text);
            if (blank(s->text)) {
                cleared++;
                skip_concat = 1;
                CHECKF(s->n_words == 0, "[engine] %s: cleared segment %d has %d words", label, k, s->n_words);
            }
            skip_concat |= strstr(s->text, "\xef\xbf\xbd") != NULL;
        }
        if (any_text)
            CHECKF(window_words >= 1, "[engine] %s: the window at seek %d (segments %d..%d) has text but no words",
                   label, t->segments[i].seek, i, e - 1);
        char *text = calloc(len_text + 1, 1), *words = calloc(len_words + 1, 1);
        for (int k = i; k < e; k++) {
            const am_segment *s = &t->segments[k];
            strcat(text, s->text);
            size_t len_mine = 0;
            for (int w = 0; w < s->n_words; w++) len_mine += s->words[w].word ? strlen(s->words[w].word) : 0;
            char *mine = calloc(len_mine + 1, 1); // this segment's words
            for (int w = 0; w < s->n_words; w++, n_words++) {
                const am_word *wd = &s->words[w];
                CHECKF(wd->word && wd->word[0], "[engine] %s: segment %d word %d has no text", label, k, w);
                if (wd->word) strcat(words, wd->word);
                if (wd->word) strcat(mine, wd->word);
                CHECKF(wd->start >= 0 && wd->start <= wd->end && wd->start <= t->duration + 0.01 &&
                           wd->end <= t->duration + 0.25,
                       "[engine] %s: segment %d word %d '%s' [%.17g, %.17g] outside [0, %g] or reversed", label, k, w,
                       wd->word ? wd->word : "", wd->start, wd->end, t->duration);
                CHECKF(wd->probability >= 0 && wd->probability <= 1,
                       "[engine] %s: segment %d word %d probability %.17g", label, k, w, wd->probability);
                CHECKF(wd->n_tokens >= 1 && wd->tokens, "[engine] %s: segment %d word %d has no tokens", label, k, w);
            }
            if (clean)
                CHECKF(!strcmp(mine, s->text), "[engine] %s: segment %d '%.80s' has the words '%.80s'", label, k,
                       s->text, mine);
            free(mine);
        }
        if (any_text && !skip_concat)
            CHECKF(!strcmp(text, words),
                   "[engine] %s: the words of the window at seek %d do not spell its text:\n  words: '%.200s'\n  "
                   "text:  '%.200s'",
                   label, t->segments[i].seek, words, text);
        clean_windows += clean && any_text;
        free(text);
        free(words);
        i = e;
    }
    CHECKF(n_words > 0, "[engine] %s: no words at all", label);
    printf("  %s: %d words in %d segments (%d cleared; %d windows of plain words checked segment by segment)\n",
           label, n_words, t->n_segments, cleared, clean_windows);
}

static void test_words(const model_ctx *c, am_job *const *batch) {
    am_transcribe_params p = params(0, 0);
    p.word_timestamps = 1;
    am_job *j[2] = {make_job(c, &c->jfk, &p), make_job(c, &c->jfk, &p)};
    CHECKF(j[0] && j[1], "word_timestamps job: %s", am_last_error());
    // j[0]: the model's default heads; j[1]: heads given explicitly (the tiny fixture has 2 x 2)
    run_jobs(c, j, 1);
    am_align_head heads[AM_ALIGN_MAX_HEADS];
    const int n_heads = am_align_parse_heads(c->m, "1,0;1,1", heads, AM_ALIGN_MAX_HEADS);
    CHECKF(n_heads == 2, "am_align_parse_heads(\"1,0;1,1\") on tiny.en: %d (%s)", n_heads, am_last_error());
    am_engine_params ep = am_engine_default_params();
    ep.alignment_heads = heads;
    ep.n_alignment_heads = n_heads > 0 ? n_heads : 0;
    am_engine *e = am_engine_create(c->dc, &ep);
    CHECKF(e != NULL, "engine with alignment heads: %s", am_last_error());
    if (e && j[1]) {
        CHECK(am_engine_add(e, j[1]) == 0);
        CHECKF(am_engine_run(e, 0) == 0, "engine with alignment heads: %s", am_last_error());
    }
    am_engine_free(e);
    const am_transcript *t0 = tr_of(j[0]), *t1 = tr_of(j[1]), *g = tr_of(batch[J_GREEDY]);
    CHECK(t0 && t1 && g);
    if (t0) check_words("word timestamps", t0);
    if (t1) check_words("word timestamps, heads 1,0;1,1", t1);
    // the first window decodes as without words (only the seek and times after it may change)
    if (t0 && g && t0->n_segments > 0 && g->n_segments > 0) {
        const am_segment *a = &t0->segments[0], *b = &g->segments[0];
        CHECKF(a->seek == 0 && a->n_tokens == b->n_tokens && !memcmp(a->tokens, b->tokens, (size_t)a->n_tokens * 4),
               "word timestamps: the first segment's tokens differ from the greedy decode's");
    }
    // without word_timestamps there are none
    for (int i = 0; g && i < g->n_segments; i++)
        CHECKF(g->segments[i].n_words == 0 && g->segments[i].words == NULL, "greedy segment %d has words", i);
    am_job_free(j[0]);
    am_job_free(j[1]);
}

// ---------------------------------------------------------------- beams and best-of
static void test_beams(const model_ctx *c, am_job *const *batch) {
    enum { B1, B2, B2_AGAIN, B2_PATIENCE, B16, BEST3, BEST3_AGAIN, B2_WORDS, N };
    am_transcribe_params ps[N];
    for (int i = 0; i < N; i++) ps[i] = params(0, 0);
    ps[B1].decode.beam_size = 1;
    ps[B2].decode.beam_size = ps[B2_AGAIN].decode.beam_size = 2;
    ps[B2_PATIENCE].decode.beam_size = 2;
    ps[B2_PATIENCE].decode.patience = 2.0;
    ps[B2_PATIENCE].decode.length_penalty = 0.5;
    ps[B16].decode.beam_size = AM_MAX_GROUP;
    ps[B16].decode.sample_len = 8;
    ps[BEST3] = ps[BEST3_AGAIN] = params(1.0, 0);
    ps[BEST3].decode.best_of = ps[BEST3_AGAIN].decode.best_of = 3;
    ps[BEST3].decode.seed = ps[BEST3_AGAIN].decode.seed = 1;
    ps[B2_WORDS].decode.beam_size = 2;
    ps[B2_WORDS].word_timestamps = 1;
    am_job *j[N];
    for (int i = 0; i < N; i++) {
        j[i] = make_job(c, &c->jfk, &ps[i]);
        CHECKF(j[i] != NULL, "beam job %d: %s", i, am_last_error());
    }
    const double t0 = am_time_s();
    run_jobs(c, j, N);
    printf("  %d beam / best-of jobs in one engine: %.2f s\n", N, am_time_s() - t0);
    const am_transcript *t[N];
    for (int i = 0; i < N; i++) {
        t[i] = tr_of(j[i]);
        CHECKF(t[i] != NULL, "beam job %d: no transcript (state %d)", i, j[i] ? am_job_state(j[i]) : -1);
    }
    if (t[B1] && t[B2] && t[B2_AGAIN] && t[B2_PATIENCE] && t[B16] && t[BEST3] && t[BEST3_AGAIN] && t[B2_WORDS]) {
        // one beam is greedy decoding: the same tokens (the reference's
        // BeamSearchDecoder keeps the most probable non-eot token, as greedy
        // argmax does; only the logprob sum's precision differs)
        CHECK_SAME(t[B1], tr_of(batch[J_GREEDY]), "[engine] beam_size 1 vs greedy");
        CHECK_SAME(t[B2], t[B2_AGAIN], "beam_size 2 twice in one batch");
        CHECK_SAME(t[BEST3], t[BEST3_AGAIN], "best_of 3 with seed 1 twice in one batch");
        check_temperatures("beam_size 2", t[B2], 0.0);
        check_temperatures("beam_size 2, patience 2, length_penalty 0.5", t[B2_PATIENCE], 0.0);
        check_temperatures("beam_size 16", t[B16], 0.0);
        check_temperatures("best_of 3", t[BEST3], 1.0);
        for (int i = 0; i < N; i++)
            CHECKF(t[i]->n_tokens <= ps[i].decode.sample_len * t[i]->n_windows, "beam job %d: %d tokens in %d windows",
                   i, t[i]->n_tokens, t[i]->n_windows);
        check_words("beam_size 2 with word timestamps", t[B2_WORDS]);
        char why[256];
        if (same_transcript(t[B2], tr_of(batch[J_GREEDY]), why, sizeof why))
            printf("  note: beam_size 2 gives the greedy transcript on this clip\n");
    }
    for (int i = 0; i < N; i++) am_job_free(j[i]);
}

// Multilingual model (shared data only): detection and language checks.
static int test_multilingual(const char *jfk) {
    model_ctx c;
    if (!load_model(&c, "fixtures/ggml-test-ml.bin", jfk)) {
        if (!c.m) SKIP_CASE("multilingual", "ggml-test-ml.bin not found (set AMANUENSIS_TEST_DATA to the shared dir)");
        free_model(&c);
        return 0;
    }
    am_transcribe_params p = params(0, 0);
    am_job *j = make_job(&c, &c.jfk, &p);
    CHECK(j != NULL);
    run_jobs(&c, &j, 1);
    const am_transcript *t = tr_of(j);
    CHECK(t != NULL);
    if (t) {
        CHECKF(t->language[0] && am_tokenizer_lang_index(t->language) >= 0, "detected language '%s'", t->language);
        CHECKF(t->n_lang_top == AM_LANG_TOP, "n_lang_top %d", t->n_lang_top);
        double sum = 0;
        for (int i = 0; i < t->n_lang_top; i++) {
            CHECKF(t->lang_top[i].code && t->lang_top[i].prob >= 0 && t->lang_top[i].prob <= 1, "top %d", i);
            if (i) CHECKF(t->lang_top[i].prob <= t->lang_top[i - 1].prob, "top-5 not sorted at %d", i);
            sum += t->lang_top[i].prob;
        }
        CHECKF(sum <= 1.0 + 1e-6, "top-5 probabilities sum to %.9f", sum);
        CHECKF(t->n_lang_top > 0 && t->lang_top[0].code && !strcmp(t->lang_top[0].code, t->language),
               "detected '%s' but the most probable is '%s'", t->language,
               t->n_lang_top > 0 && t->lang_top[0].code ? t->lang_top[0].code : "?");
        printf("  ml: detected %s (p %.3f), %d segments\n", t->language, t->lang_top[0].prob, t->n_segments);
    }
    am_job_free(j);
    static const char *bad[] = {"klingon", "", "xx"};
    for (size_t i = 0; i < AM_ARRAY_LEN(bad); i++) {
        p.language = bad[i];
        j = make_job(&c, &c.jfk, &p);
        if (!*bad[i]) { // "" means detect
            CHECK(j != NULL);
        } else {
            CHECKF(j == NULL && strstr(am_last_error(), "unsupported language"), "language '%s': %s", bad[i],
                   j ? "accepted" : am_last_error());
        }
        am_job_free(j);
    }
    // "yue" exists only in v3 vocabularies
    p.language = "yue";
    j = make_job(&c, &c.jfk, &p);
    CHECKF(j == NULL, "language yue on a pre-v3 multilingual model was accepted");
    am_job_free(j);
    test_empty(&c, "ml empty audio");
    free_model(&c);
    return 1;
}

int main(void) {
    char jfk[1024];
    if (!am_test_find("audio/jfk.wav", jfk, sizeof jfk)) {
        SKIP_CASE("options", "jfk.wav not found");
        return am_test_finish("test_options", 0);
    }
    model_ctx c;
    int ran = 0;
    if (load_model(&c, "fixtures/ggml-test-tiny.en.bin", jfk)) {
        char *long_prompt = malloc(5001);
        for (int i = 0; i < 5000; i++) long_prompt[i] = "President Kennedy said: ask not what "[i % 37];
        long_prompt[5000] = 0;
        am_job *jobs[N_JOBS] = {0};
        test_options(&c, jobs, long_prompt);
        test_seed_alone(&c, jobs);
        test_empty(&c, "tiny.en empty audio");
        test_cancel(&c, jobs);
        test_words(&c, jobs);
        test_beams(&c, jobs);
        for (int i = 0; i < N_JOBS; i++) am_job_free(jobs[i]);
        free(long_prompt);
        ran = 1;
    } else if (!c.m) {
        SKIP_CASE("tiny.en", "ggml-test-tiny.en.bin not found");
    }
    free_model(&c);
    ran |= test_multilingual(jfk);
    return am_test_finish("test_options", ran);
}
