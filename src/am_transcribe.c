// am_transcribe.c — transcribe()'s seek loop as jobs, and the engine that
// runs many jobs' windows through batched encoder calls and decoder steps.
#include "am_transcribe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_encoder.h"
#include "am_nn.h"

#define INPUT_STRIDE 2                                 // mel frames per encoder position
#define TIME_PRECISION (INPUT_STRIDE * 160 / 16000.0)  // seconds per timestamp token (0.02)

// ---------------------------------------------------------------- parameters
am_transcribe_params am_transcribe_default_params(void) {
    am_transcribe_params p = {
        .language = NULL,
        .translate = 0,
        .initial_prompt = NULL,
        .condition_on_previous_text = 1,
        .decode = am_decode_default_params(),
    };
    return p;
}

am_engine_params am_engine_default_params(void) {
    am_engine_params p = {.max_batch = 8, .max_windows = 64, .max_rows = 512, .kv_type = AM_TYPE_F32};
    return p;
}

// ---------------------------------------------------------------- jobs
enum { WIN_DECODE = 0, WIN_DETECT = 1 };

struct am_job {
    const am_decoding *dc;
    am_transcribe_params p;
    char language[16]; // "" until known
    am_mel_result mel;
    int state;
    int seek, content_frames; // mel frames of the job's own audio (its mel / span)
    int frame0;       // the job's frame 0 on the original timeline (span jobs; 0 for a whole file):
                      // every reported seek and time is frame0 * 0.01 s later
    int need_detect;  // a separate detection pass is due (short clip, language unknown)
    int window_kind;  // kind of the window being encoded/decoded
    int segment_size; // frames of the current window
    int window_index;
    int32_t *all_tokens;
    int n_all, cap_all, n_initial_prompt, prompt_reset_since;
    // the window's segments before they are committed (word timestamps run in between)
    am_segment *pend;
    int n_pend, cap_pend;
    int single_ts_ending;       // the window's tokens end on a single timestamp
    double last_speech_timestamp; // transcribe()'s, for word timestamps
    int32_t *align_tokens;      // (n_align,) the alignment pass: sot sequence, notimestamps, text, eot
    int n_align, n_align_sot;
    am_transcript tr;
    int cap_segments;
    int err;
    char err_msg[256];
    void *user;
    int window_prev_seek;       // seek before the window being finished
    double window_temperature;  // its accepted temperature
    int priority;
    double deadline;         // 0 = none
    double ready_at;         // when the current window started waiting for the encoder
    double first_encode_at;  // when the first window was encoded
};

static void segment_free(am_segment *s) {
    free(s->text);
    free(s->tokens);
    free(s->token_logprobs);
    am_words_free(s->words, s->n_words);
    memset(s, 0, sizeof *s);
}

static void drop_pending(am_job *j) {
    for (int i = 0; i < j->n_pend; i++) segment_free(&j->pend[i]);
    j->n_pend = 0;
    free(j->align_tokens);
    j->align_tokens = NULL;
    j->n_align = 0;
}

static int push_tokens(am_job *j, const int32_t *t, int n) {
    if (n <= 0) return 0; // (all_tokens may still be NULL: no pointer arithmetic on it)
    if (j->n_all + n > j->cap_all) {
        int cap = AM_MAX(2 * j->cap_all, j->n_all + n + 256);
        int32_t *v = realloc(j->all_tokens, (size_t)cap * sizeof *v);
        if (!v) return am_set_error(AM_ENOMEM, "out of memory");
        j->all_tokens = v;
        j->cap_all = cap;
    }
    memcpy(j->all_tokens + j->n_all, t, (size_t)n * sizeof *t);
    j->n_all += n;
    return 0;
}

am_job *am_job_create(const am_decoding *dc, am_mel_result *mel, const am_transcribe_params *p) {
    am_job *j = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    const am_tokenizer *tok = am_decoding_tokenizer(dc);
    const am_special_tokens *sp = am_tokenizer_specials(tok);
    if (!dc || !mel || !mel->data || !p) {
        am_set_error(AM_EINVAL, "invalid job arguments");
        return NULL;
    }
    if (am_decode_check_params(&p->decode)) return NULL;
    if (!(j = calloc(1, sizeof *j))) goto oom;
    j->dc = dc;
    j->p = *p;
    j->p.initial_prompt = NULL; // not kept: encoded below
    j->p.language = NULL;       // kept in j->language
    // an unknown language is an error for every model (get_tokenizer() checks
    // it first); English-only models then transcribe in English regardless
    if (p->language && *p->language && am_tokenizer_lang_index(p->language) < 0) {
        am_set_error(AM_EINVAL, "unsupported language '%s'", p->language);
        goto fail;
    }
    if (!sp->is_multilingual) {
        snprintf(j->language, sizeof j->language, "en");
    } else if (p->language && *p->language) {
        const int idx = am_tokenizer_lang_index(p->language);
        if (idx < 0 || am_tokenizer_lang_token(tok, p->language) < 0) {
            am_set_error(AM_EINVAL, "unsupported language '%s'", p->language);
            goto fail;
        }
        snprintf(j->language, sizeof j->language, "%s", am_tokenizer_lang_code(idx));
    }
    j->tr.translate = sp->is_multilingual && p->translate;
    j->content_frames = mel->content_frames;
    j->need_detect = !j->language[0] && j->content_frames < AM_MEL_WINDOW_FRAMES && j->content_frames > 0;
    if (p->initial_prompt && *p->initial_prompt) {
        // tokenizer.encode(" " + initial_prompt.strip())
        const char *s = p->initial_prompt;
        size_t len = am_str_strip(&s, strlen(s));
        char *buf = malloc(len + 2);
        if (!buf) goto oom;
        buf[0] = ' ';
        memcpy(buf + 1, s, len);
        int rc = am_tokenizer_encode(tok, buf, len + 1, &ids, &n_ids);
        free(buf);
        if (rc) goto fail;
        if (push_tokens(j, ids, (int)n_ids)) goto fail;
        j->n_initial_prompt = (int)n_ids;
        free(ids);
        ids = NULL;
    }
    j->mel = *mel;
    memset(mel, 0, sizeof *mel);
    j->tr.duration = j->content_frames * 160 / 16000.0;
    j->state = j->content_frames > 0 ? AM_JOB_ENCODE : AM_JOB_DONE;
    j->ready_at = am_time_s();
    if (j->state == AM_JOB_DONE) { // nothing to transcribe: empty transcript
        if (!j->language[0]) snprintf(j->language, sizeof j->language, "en");
        snprintf(j->tr.language, sizeof j->tr.language, "%s", j->language);
        if (!(j->tr.text = calloc(1, 1))) goto oom;
    }
    return j;
oom:
    am_set_error(AM_ENOMEM, "out of memory creating a job");
fail:
    free(ids);
    am_job_free(j);
    return NULL;
}

am_job *am_job_create_span(const am_decoding *dc, const am_mel_result *mel, int first_frame, int n_frames,
                           const am_transcribe_params *p) {
    if (!dc || !mel || !mel->data || mel->n_mels < 1 || !p || first_frame < 0 || n_frames < 0 ||
        first_frame > mel->n_frames - n_frames) {
        am_set_error(AM_EINVAL, "invalid span [%d, +%d) of a mel of %d frames", first_frame, n_frames,
                     mel ? mel->n_frames : 0);
        return NULL;
    }
    // the slice and the 3000 frames after it (what exists): detection and the
    // last window see what they would see in the original mel
    const int n_copy = n_frames ? AM_MIN(n_frames + AM_MEL_WINDOW_FRAMES, mel->n_frames - first_frame) : 0;
    am_mel_result part = {NULL, mel->n_mels, n_copy, n_frames};
    if (!(part.data = malloc((size_t)mel->n_mels * (size_t)(n_copy ? n_copy : 1) * sizeof *part.data))) {
        am_set_error(AM_ENOMEM, "out of memory creating a span job");
        return NULL;
    }
    for (int i = 0; i < mel->n_mels && n_copy; i++)
        memcpy(part.data + (size_t)i * n_copy, mel->data + (size_t)i * mel->n_frames + first_frame,
               (size_t)n_copy * sizeof *part.data);
    am_job *j = am_job_create(dc, &part, p);
    am_mel_free_result(&part); // taken over by the job (then empty) or left to free on failure
    if (!j) return NULL;
    j->frame0 = first_frame;
    j->last_speech_timestamp = (double)(first_frame * 160) / 16000.0;
    return j;
}

void am_job_free(am_job *j) {
    if (!j) return;
    am_mel_free_result(&j->mel);
    free(j->all_tokens);
    drop_pending(j);
    free(j->pend);
    for (int i = 0; i < j->tr.n_segments; i++) segment_free(&j->tr.segments[i]);
    free(j->tr.segments);
    free(j->tr.text);
    free(j);
}

int am_job_state(const am_job *j) { return j->state; }
double am_job_progress(const am_job *j) {
    if (j->state == AM_JOB_DONE || j->content_frames <= 0) return 1.0;
    // while a window's alignment pass is due its seek is tentative (the words may
    // move it back): count the window from its start until it is committed
    const int seek = j->n_pend ? j->window_prev_seek : j->seek;
    return (double)AM_MIN(seek, j->content_frames) / j->content_frames;
}
const am_transcript *am_job_transcript(const am_job *j) { return j->state == AM_JOB_DONE ? &j->tr : NULL; }
int am_job_error(const am_job *j, const char **msg) {
    if (msg) *msg = j->err_msg;
    return j->err;
}
void am_job_set_user(am_job *j, void *user) { j->user = user; }
void am_job_set_priority(am_job *j, int priority, double deadline) {
    j->priority = priority;
    j->deadline = deadline;
}
double am_job_first_encode_time(const am_job *j) { return j->first_encode_at; }
void *am_job_user(const am_job *j) { return j->user; }

int am_job_n_committed(const am_job *j) { return j ? j->tr.n_segments : 0; }
const am_segment *am_job_segments(const am_job *j, int *n) {
    *n = j ? j->tr.n_segments : 0;
    return j ? j->tr.segments : NULL;
}

// 1 when the bytes that Tokenizer.decode renders for ids[0..n) end in a
// well-formed but incomplete UTF-8 sequence (which the decode turns into a
// final U+FFFD that the complete text will not have), else 0.
static int utf8_incomplete_tail(const am_tokenizer *tok, const int32_t *ids, int n) {
    const int32_t tb = am_tokenizer_specials(tok)->timestamp_begin;
    uint8_t tail[4]; // the last bytes, last first
    int m = 0;
    for (int i = n - 1; i >= 0 && m < 4; i--) {
        const char *b;
        size_t len;
        if (ids[i] >= tb || am_tokenizer_token_bytes(tok, ids[i], &b, &len)) continue;
        for (size_t k = len; k > 0 && m < 4; k--) tail[m++] = (uint8_t)b[k - 1];
    }
    int c = 0; // continuation bytes after the last byte that starts a sequence
    while (c < m && tail[c] >= 0x80 && tail[c] <= 0xBF) c++;
    if (c == m) return 0;
    const uint8_t b0 = tail[c];
    int need;
    uint8_t lo = 0x80, hi = 0xBF; // the first continuation byte's range
    if (b0 >= 0xC2 && b0 <= 0xDF) need = 1;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        if (b0 == 0xE0) lo = 0xA0;
        else if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        if (b0 == 0xF0) lo = 0x90;
        else if (b0 == 0xF4) hi = 0x8F;
    } else {
        return 0; // ASCII, or a byte that starts nothing
    }
    if (c >= need) return 0;                                // complete (stray bytes may follow)
    return c == 0 || (tail[c - 1] >= lo && tail[c - 1] <= hi); // else it broke off already
}

int am_job_text_so_far(const am_job *j, char **text) {
    if (!j || !text) return am_set_error(AM_EINVAL, "invalid arguments for the text so far");
    *text = NULL;
    if (j->state == AM_JOB_DONE && j->tr.text) { // the final text (a joined one included)
        const size_t len = strlen(j->tr.text);
        if (!(*text = malloc(len + 1))) return am_set_error(AM_ENOMEM, "out of memory");
        memcpy(*text, j->tr.text, len + 1);
        return 0;
    }
    // job_finish's decode of the tokens committed so far (all_tokens only grows)
    const am_tokenizer *tok = am_decoding_tokenizer(j->dc);
    const int32_t *ids = j->all_tokens ? j->all_tokens + j->n_initial_prompt : NULL;
    const int n = AM_MAX(j->n_all - j->n_initial_prompt, 0);
    size_t len = 0;
    const int rc = am_tokenizer_decode_alloc(tok, ids, (size_t)n, AM_DECODE_NO_TIMESTAMPS, text, &len);
    if (rc) return rc;
    if (len >= 3 && utf8_incomplete_tail(tok, ids, n)) (*text)[len - 3] = 0; // its U+FFFD is not final
    return 0;
}

int am_job_join(am_job *dst, am_job *const *parts, int n, double duration) {
    if (!dst || n < 0 || (n > 0 && !parts) || dst->state != AM_JOB_DONE || !dst->tr.text)
        return am_set_error(AM_EINVAL, "join needs a finished destination job");
    am_transcript *d = &dst->tr;
    size_t len = strlen(d->text);
    int n_seg = d->n_segments;
    for (int i = 0; i < n; i++) {
        const am_job *q = parts[i];
        if (!q || q->state != AM_JOB_DONE || !q->tr.text || (q == dst && i > 0))
            return am_set_error(AM_EINVAL, "join part %d is not a finished job (or the destination out of place)", i);
        for (int k = 0; k < i; k++)
            if (parts[k] == q) return am_set_error(AM_EINVAL, "join part %d given twice", i);
        if (q == dst) continue;
        len += strlen(q->tr.text);
        n_seg += q->tr.n_segments;
    }
    // everything that can fail first: nothing changes on error
    char *text = malloc(len + 1);
    if (!text) return am_set_error(AM_ENOMEM, "out of memory joining transcripts");
    if (n_seg > dst->cap_segments) {
        am_segment *v = realloc(d->segments, (size_t)n_seg * sizeof *v);
        if (!v) {
            free(text);
            return am_set_error(AM_ENOMEM, "out of memory joining transcripts");
        }
        d->segments = v;
        dst->cap_segments = n_seg;
    }
    size_t pos = strlen(d->text);
    memcpy(text, d->text, pos);
    for (int i = 0; i < n; i++) {
        am_job *q = parts[i];
        if (q == dst) continue;
        am_transcript *t = &q->tr;
        const size_t l = strlen(t->text);
        memcpy(text + pos, t->text, l);
        pos += l;
        t->text[0] = 0;
        if (t->n_segments) memcpy(d->segments + d->n_segments, t->segments, (size_t)t->n_segments * sizeof *t->segments);
        d->n_segments += t->n_segments;
        t->n_segments = 0; // moved: the part frees only its (empty) array
        d->n_windows += t->n_windows;
        d->n_fallbacks += t->n_fallbacks;
        d->n_tokens += t->n_tokens;
        t->n_windows = t->n_fallbacks = t->n_tokens = 0;
        t->duration = 0;
    }
    text[pos] = 0;
    free(d->text);
    d->text = text;
    for (int i = 0; i < d->n_segments; i++) d->segments[i].id = i;
    d->duration = duration;
    return 0;
}

static void job_fail(am_job *j, int err, const char *msg) {
    j->state = AM_JOB_ERROR;
    j->err = err ? err : AM_EINTERNAL;
    snprintf(j->err_msg, sizeof j->err_msg, "%s", msg && *msg ? msg : am_strerror(j->err));
}

// The mel window the job wants encoded next: (n_mels, 3000).
static void job_window_mel(am_job *j, float *dst) {
    if (j->need_detect) { // detect_language() looks at pad_or_trim(mel, N_FRAMES) of the padded mel
        j->window_kind = WIN_DETECT;
        am_mel_window(dst, &j->mel, 0);
        return;
    }
    j->window_kind = WIN_DECODE;
    j->segment_size = AM_MIN(AM_MEL_WINDOW_FRAMES, j->content_frames - j->seek);
    am_mel_window_n(dst, &j->mel, j->seek, j->segment_size);
}

static int job_begin_window(am_job *j, am_wdec *w, am_seq *const *seqs, int n_seqs, const am_xkv *xkv) {
    am_wdec_window win = {
        .language = j->language[0] ? j->language : NULL,
        .translate = j->p.translate,
        .prompt = j->all_tokens ? j->all_tokens + j->prompt_reset_since : NULL, // no prompt yet: NULL, not NULL + 0
        .n_prompt = j->n_all - j->prompt_reset_since,
        .seed_mix = (uint64_t)j->window_index++,
        .detect_only = j->window_kind == WIN_DETECT,
    };
    const int rc = am_wdec_start(w, &j->p.decode, &win, seqs, n_seqs, xkv);
    if (rc) return rc;
    j->state = AM_JOB_DECODE;
    return 0;
}

// new_segment(): a segment of the window being finished, pending until commit;
// tokens[0..n) is a slice of r->tokens (their log-probabilities are copied too).
static int add_segment(am_job *j, double start, double end, const int32_t *tokens, int n,
                       const am_wdec_result *r) {
    if (j->n_pend == j->cap_pend) {
        int cap = j->cap_pend ? 2 * j->cap_pend : 16;
        am_segment *v = realloc(j->pend, (size_t)cap * sizeof *v);
        if (!v) return am_set_error(AM_ENOMEM, "out of memory");
        j->pend = v;
        j->cap_pend = cap;
    }
    am_segment *s = &j->pend[j->n_pend];
    memset(s, 0, sizeof *s);
    s->seek = j->seek + j->frame0;
    s->start = start;
    s->end = end;
    s->temperature = r->temperature;
    s->avg_logprob = r->avg_logprob;
    s->compression_ratio = r->compression_ratio;
    s->no_speech_prob = r->no_speech_prob;
    int rc = am_tokenizer_decode_alloc(am_decoding_tokenizer(j->dc), tokens, (size_t)n, AM_DECODE_TEXT, &s->text, NULL);
    if (rc) return rc;
    if (!(s->tokens = malloc((size_t)(n ? n : 1) * sizeof *s->tokens)) ||
        (n > 0 && !(s->token_logprobs = malloc((size_t)n * sizeof *s->token_logprobs)))) {
        segment_free(s);
        return am_set_error(AM_ENOMEM, "out of memory");
    }
    if (n > 0) {
        memcpy(s->tokens, tokens, (size_t)n * sizeof *tokens);
        memcpy(s->token_logprobs, r->token_logprobs + (tokens - r->tokens), (size_t)n * sizeof *s->token_logprobs);
    }
    s->n_tokens = n;
    j->n_pend++;
    return 0;
}

// Move the window's pending segments into the transcript: an instantaneous
// segment or one without text is cleared (text, tokens, their logprobs and words); then the
// tokens join all_tokens and the prompt resets after a hot attempt.
static int commit_segments(am_job *j, double temperature) {
    am_transcript *tr = &j->tr;
    if (tr->n_segments + j->n_pend > j->cap_segments) {
        int cap = AM_MAX(j->cap_segments ? 2 * j->cap_segments : 16, tr->n_segments + j->n_pend);
        am_segment *v = realloc(tr->segments, (size_t)cap * sizeof *v);
        if (!v) return am_set_error(AM_ENOMEM, "out of memory");
        tr->segments = v;
        j->cap_segments = cap;
    }
    int rc = 0;
    for (int i = 0; i < j->n_pend; i++) {
        am_segment *s = &j->pend[i];
        const char *t = s->text;
        if (s->start == s->end || am_str_strip(&t, strlen(t)) == 0) {
            s->text[0] = 0;
            s->n_tokens = 0;
            free(s->token_logprobs);
            s->token_logprobs = NULL;
            am_words_free(s->words, s->n_words);
            s->words = NULL;
            s->n_words = 0;
        }
        s->id = tr->n_segments;
        tr->segments[tr->n_segments++] = *s;
        memset(s, 0, sizeof *s);
        if (!rc) rc = push_tokens(j, tr->segments[tr->n_segments - 1].tokens, tr->segments[tr->n_segments - 1].n_tokens);
    }
    j->n_pend = 0;
    if (!rc && (!j->p.condition_on_previous_text || temperature > 0.5)) j->prompt_reset_since = j->n_all;
    return rc;
}

static int job_finish(am_job *j) {
    snprintf(j->tr.language, sizeof j->tr.language, "%s", j->language);
    const int n = j->n_all - j->n_initial_prompt;
    int rc = am_tokenizer_decode_alloc(am_decoding_tokenizer(j->dc), j->all_tokens + j->n_initial_prompt,
                                       (size_t)(n > 0 ? n : 0), AM_DECODE_NO_TIMESTAMPS, &j->tr.text, NULL);
    if (rc) return rc;
    j->state = AM_JOB_DONE;
    return 0;
}

// The window is over: commit its segments, then the next window or the end.
static int job_next_window(am_job *j, int prev_seek, double temperature) {
    int rc = commit_segments(j, temperature);
    if (rc) return rc;
    // The reference loops forever if a window ends on <|0.00|><|0.00|>; a
    // server must not: such a window advances by its whole size.
    if (j->seek <= prev_seek) j->seek = prev_seek + j->segment_size;
    if (j->seek >= j->content_frames) return job_finish(j);
    j->state = AM_JOB_ENCODE;
    j->ready_at = am_time_s();
    return 0;
}

// Build the window's alignment pass: [*sot_sequence, notimestamps, *text, eot]
// with the text tokens of all pending segments. Returns the token count (0
// when there is no text: nothing to align).
static int job_alignment_tokens(am_job *j) {
    const am_tokenizer *tok = am_decoding_tokenizer(j->dc);
    const am_special_tokens *sp = am_tokenizer_specials(tok);
    int n_text = 0;
    for (int i = 0; i < j->n_pend; i++)
        for (int k = 0; k < j->pend[i].n_tokens; k++) n_text += j->pend[i].tokens[k] < sp->eot;
    if (n_text == 0) return 0;
    int32_t sot[3];
    const int n_sot = am_tokenizer_sot_sequence(tok, j->language, j->p.translate, sot);
    if (n_sot < 0) return n_sot;
    free(j->align_tokens);
    if (!(j->align_tokens = malloc((size_t)(n_sot + n_text + 2) * sizeof(int32_t))))
        return am_set_error(AM_ENOMEM, "out of memory");
    int n = 0;
    for (int k = 0; k < n_sot; k++) j->align_tokens[n++] = sot[k];
    j->align_tokens[n++] = sp->notimestamps;
    for (int i = 0; i < j->n_pend; i++)
        for (int k = 0; k < j->pend[i].n_tokens; k++)
            if (j->pend[i].tokens[k] < sp->eot) j->align_tokens[n++] = j->pend[i].tokens[k];
    j->align_tokens[n++] = sp->eot;
    j->n_align = n;
    j->n_align_sot = n_sot;
    return n;
}

// get_end(): the last word's end, else the last segment's end (segments exist).
static double pending_end(const am_job *j) {
    for (int i = j->n_pend - 1; i >= 0; i--)
        if (j->pend[i].n_words) return j->pend[i].words[j->pend[i].n_words - 1].end;
    return j->pend[j->n_pend - 1].end;
}

// transcribe()'s word-timestamp step for the window: words into the pending
// segments (words from am_align_find, consumed; NULL when there was no text),
// then the seek and last speech timestamp from the words. Times are on the
// original timeline (the pending segments' seek includes frame0).
static int job_apply_words(am_job *j, am_word *words, int n_words) {
    const double time_offset = (double)(j->pend[0].seek * 160) / 16000.0;
    am_align_segment segs[64], *sv = segs;
    if (j->n_pend > 64 && !(sv = malloc((size_t)j->n_pend * sizeof *sv))) {
        am_words_free(words, n_words);
        return am_set_error(AM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < j->n_pend; i++)
        sv[i] = (am_align_segment){j->pend[i].start, j->pend[i].end, j->pend[i].tokens, j->pend[i].n_tokens, NULL, 0};
    const int32_t eot = am_tokenizer_specials(am_decoding_tokenizer(j->dc))->eot;
    int rc = am_align_add_word_timestamps(sv, j->n_pend, words, n_words, eot, time_offset, j->last_speech_timestamp);
    for (int i = 0; i < j->n_pend; i++) {
        j->pend[i].start = sv[i].start;
        j->pend[i].end = sv[i].end;
        j->pend[i].words = sv[i].words;
        j->pend[i].n_words = sv[i].n_words;
    }
    if (sv != segs) free(sv);
    if (rc) return rc;
    if (!j->single_ts_ending) {
        const double last_word_end = pending_end(j);
        if (last_word_end > time_offset) j->seek = (int)nearbyint(last_word_end * 100.0) - j->frame0;
    }
    j->last_speech_timestamp = pending_end(j);
    return 0;
}

// The window's decode finished: segments, seek advance (transcribe.py). Returns
// 1 when the window's alignment pass is due (word timestamps), 0 when the
// window is over, or a negative error.
static int job_end_window(am_job *j, const am_wdec *w) {
    j->tr.n_windows++;
    if (!j->language[0]) {
        snprintf(j->language, sizeof j->language, "%s", am_wdec_language(w));
        j->tr.n_lang_top = am_wdec_language_probs(w, j->tr.lang_top);
    }
    if (j->window_kind == WIN_DETECT) {
        j->need_detect = 0;
        j->state = AM_JOB_ENCODE;
        j->ready_at = am_time_s();
        return 0;
    }
    const am_wdec_result *r = am_wdec_result_get(w);
    const am_decode_params *dp = &j->p.decode;
    const int32_t tb = am_tokenizer_specials(am_decoding_tokenizer(j->dc))->timestamp_begin;
    const int seg = j->segment_size, prev_seek = j->seek;
    j->tr.n_fallbacks += r->n_attempts - 1;
    j->tr.n_tokens += r->n_tokens;
    j->window_prev_seek = prev_seek;
    j->window_temperature = r->temperature;
    int rc = 0;
    // no voice activity: skip the window
    int skip = !isnan(dp->no_speech_threshold) && r->no_speech_prob > dp->no_speech_threshold;
    if (!isnan(dp->logprob_threshold) && r->avg_logprob > dp->logprob_threshold) skip = 0;
    if (skip) {
        j->seek += seg;
        if (j->seek >= j->content_frames) return job_finish(j);
        j->state = AM_JOB_ENCODE;
        j->ready_at = am_time_s();
        return 0;
    }
    const double time_offset = (double)((j->seek + j->frame0) * 160) / 16000.0; // original timeline
    const double segment_duration = (double)(seg * 160) / 16000.0;
    const int32_t *t = r->tokens;
    const int n = r->n_tokens;
    const int single_ts_ending = n >= 2 && t[n - 2] < tb && t[n - 1] >= tb;
    int n_consecutive = 0, seek_advance = seg;
    for (int i = 0; i + 1 < n; i++) n_consecutive += t[i] >= tb && t[i + 1] >= tb;
    if (n_consecutive > 0) {
        // a segment ends after each pair of consecutive timestamps (and at the
        // end when the output ends on a single timestamp)
        int last_slice = 0;
        for (int cur = 1; cur <= n && !rc; cur++) {
            const int boundary = cur < n ? (t[cur - 1] >= tb && t[cur] >= tb) : single_ts_ending;
            if (!boundary) continue;
            const int32_t *sl = t + last_slice;
            const int len = cur - last_slice;
            const double start = time_offset + (double)(sl[0] - tb) * TIME_PRECISION;
            const double end = time_offset + (double)(sl[len - 1] - tb) * TIME_PRECISION;
            rc = add_segment(j, start, end, sl, len, r);
            last_slice = cur;
        }
        if (!single_ts_ending) seek_advance = (t[last_slice - 1] - tb) * INPUT_STRIDE;
    } else {
        double duration = segment_duration;
        int last_ts = -1;
        for (int i = 0; i < n; i++)
            if (t[i] >= tb) last_ts = t[i];
        if (last_ts >= 0 && last_ts != tb) duration = (last_ts - tb) * TIME_PRECISION;
        rc = add_segment(j, time_offset, time_offset + duration, t, n, r);
    }
    if (rc) return rc;
    j->seek += seek_advance;
    j->single_ts_ending = single_ts_ending;
    if (j->p.word_timestamps) {
        const int na = job_alignment_tokens(j);
        if (na < 0) return na;
        if (na > 0) return 1; // the alignment pass runs in the next decoder step
        rc = job_apply_words(j, NULL, 0);
        if (rc) return rc;
    }
    return job_next_window(j, prev_seek, r->temperature);
}

// ---------------------------------------------------------------- engine
typedef struct {
    am_xkv *xkv;
    am_seq *seqs[AM_MAX_GROUP]; // the window's sequences (beams / candidates), created as needed
    int n_seqs;
    am_wdec *wdec;
    am_job *job;  // NULL when free
    int aligning; // the window's alignment pass is due (word timestamps)
    float *qk;    // (n_heads, n_align, n_audio_ctx) the alignment pass's cross-attention scores
} slot;

// A slot's rows in one decoder step.
typedef struct {
    int slot, row0, n_rows; // first step row, rows (sequences) fed
    int logit0;             // first logits row
} step_slot;

struct am_engine {
    const am_decoding *dc;
    const am_model *m;
    am_engine_params p;
    am_encoder *enc;
    am_decoder *dec;
    slot *slots;
    am_job **jobs;
    int n_jobs, cap_jobs;
    int enc_slice;    // windows per encoder pass (the encoder's own batch)
    int max_rows;     // decoder rows per pass (the longest alignment pass it can take)
    float *mel_buf;   // (max_batch, n_mels, 3000)
    float *enc_buf;   // (enc_slice, n_audio_ctx, d)
    float *logits;    // (cap_logits, n_vocab), grown to the largest step
    size_t cap_logits;
    int *heads;       // (n_heads, 2) alignment heads (layer, head)
    int n_heads;
    // per-step scratch (max_windows * AM_MAX_GROUP rows each)
    am_seq **step_seqs;
    const int32_t **step_toks;
    int *step_n, *step_all;
    const am_xattn_capture **step_cap;
    am_xattn_capture *caps; // (max_windows,)
    step_slot *act;         // (max_windows,)
    am_engine_stats stats;
};

am_engine *am_engine_create(const am_decoding *dc, const am_engine_params *p) {
    am_engine_params def = am_engine_default_params();
    if (!p) p = &def;
    if (!dc || p->max_batch < 1 || p->max_windows < 1 || p->max_windows > 4096 || p->max_seqs < 0 ||
        (p->kv_type != AM_TYPE_F32 && p->kv_type != AM_TYPE_F16)) {
        am_set_error(AM_EINVAL, "invalid engine parameters");
        return NULL;
    }
    const am_model *m = am_decoding_model(dc);
    am_align_head *def_heads = NULL;
    am_engine *e = calloc(1, sizeof *e);
    if (!e) goto oom;
    e->dc = dc;
    e->m = m;
    e->p = *p;
    am_encoder_params ep = am_encoder_default_params();
    ep.max_batch = e->enc_slice = AM_MIN(ep.max_batch, p->max_batch);
    am_decoder_params dp = am_decoder_default_params();
    if (p->max_rows > 0) dp.max_rows = p->max_rows;
    e->max_rows = dp.max_rows;
    if (!(e->enc = am_encoder_create(m, &ep)) || !(e->dec = am_decoder_create(m, &dp))) goto fail;
    const size_t W = (size_t)p->max_windows, R = W * AM_MAX_GROUP;
    e->slots = calloc(W, sizeof *e->slots);
    e->mel_buf = am_alloc((size_t)p->max_batch * m->hp.n_mels * AM_MEL_WINDOW_FRAMES * sizeof(float));
    e->enc_buf = am_alloc((size_t)e->enc_slice * m->hp.n_audio_ctx * m->hp.n_audio_state * sizeof(float));
    e->step_seqs = calloc(R, sizeof *e->step_seqs);
    e->step_toks = calloc(R, sizeof *e->step_toks);
    e->step_n = calloc(R, sizeof *e->step_n);
    e->step_all = calloc(R, sizeof *e->step_all);
    e->step_cap = calloc(R, sizeof *e->step_cap);
    e->caps = calloc(W, sizeof *e->caps);
    e->act = calloc(W, sizeof *e->act);
    if (!e->slots || !e->mel_buf || !e->enc_buf || !e->step_seqs || !e->step_toks || !e->step_n || !e->step_all ||
        !e->step_cap || !e->caps || !e->act)
        goto oom;
    // alignment heads: the given ones, else the model's defaults
    const am_align_head *ah = p->alignment_heads;
    int nh = p->n_alignment_heads;
    if (!ah) {
        nh = am_align_default_heads(m, NULL, 0, NULL);
        if (nh < 1 || !(def_heads = malloc((size_t)nh * sizeof *def_heads))) goto oom;
        am_align_default_heads(m, def_heads, nh, NULL);
        ah = def_heads;
    }
    if (nh < 1 || !(e->heads = malloc((size_t)nh * 2 * sizeof *e->heads))) goto oom;
    for (int i = 0; i < nh; i++) {
        if (ah[i].layer < 0 || ah[i].layer >= m->hp.n_text_layer || ah[i].head < 0 || ah[i].head >= m->hp.n_text_head) {
            am_set_error(AM_EINVAL, "alignment head (%d, %d) outside the model's %d x %d", ah[i].layer, ah[i].head,
                         m->hp.n_text_layer, m->hp.n_text_head);
            goto fail;
        }
        e->heads[2 * i] = ah[i].layer;
        e->heads[2 * i + 1] = ah[i].head;
    }
    e->n_heads = nh;
    free(def_heads);
    return e;
oom:
    am_set_error(AM_ENOMEM, "out of memory creating the engine");
fail:
    free(def_heads);
    am_engine_free(e);
    return NULL;
}

void am_engine_free(am_engine *e) {
    if (!e) return;
    for (int i = 0; e->slots && i < e->p.max_windows; i++) {
        slot *s = &e->slots[i];
        am_xkv_free(s->xkv);
        for (int k = 0; k < s->n_seqs; k++) am_seq_free(s->seqs[k]);
        am_wdec_free(s->wdec);
        free(s->qk);
    }
    free(e->slots);
    free(e->jobs);
    am_free(e->mel_buf);
    am_free(e->enc_buf);
    am_free(e->logits);
    free(e->heads);
    free(e->step_seqs);
    free(e->step_toks);
    free(e->step_n);
    free(e->step_all);
    free(e->step_cap);
    free(e->caps);
    free(e->act);
    am_encoder_free(e->enc);
    am_decoder_free(e->dec);
    free(e);
}

const am_engine_stats *am_engine_get_stats(const am_engine *e) { return &e->stats; }

int am_engine_add(am_engine *e, am_job *j) {
    if (!e || !j || j->dc != e->dc) return am_set_error(AM_EINVAL, "invalid job for this engine");
    for (int i = 0; i < e->n_jobs; i++)
        if (e->jobs[i] == j) return am_set_error(AM_EINVAL, "job already in the engine");
    if (j->state == AM_JOB_DONE || j->state == AM_JOB_ERROR) { // nothing to run (e.g. no audio frame)
        if (e->p.on_finish) e->p.on_finish(j, e->p.ctx);
        return 0;
    }
    if (e->n_jobs == e->cap_jobs) {
        int cap = e->cap_jobs ? 2 * e->cap_jobs : 16;
        am_job **v = realloc(e->jobs, (size_t)cap * sizeof *v);
        if (!v) return am_set_error(AM_ENOMEM, "out of memory");
        e->jobs = v;
        e->cap_jobs = cap;
    }
    e->jobs[e->n_jobs++] = j;
    return 0;
}

static void slot_release(slot *s) {
    s->job = NULL;
    s->aligning = 0;
    free(s->qk);
    s->qk = NULL;
}

static void release_slots(am_engine *e, const am_job *j) {
    for (int i = 0; i < e->p.max_windows; i++)
        if (e->slots[i].job == j) slot_release(&e->slots[i]);
}

int am_engine_remove(am_engine *e, am_job *j) {
    for (int i = 0; i < e->n_jobs; i++) {
        if (e->jobs[i] != j) continue;
        release_slots(e, j);
        memmove(e->jobs + i, e->jobs + i + 1, (size_t)(e->n_jobs - i - 1) * sizeof *e->jobs);
        e->n_jobs--;
        if (j->state == AM_JOB_DECODE) { // may be re-added later: the window starts over
            j->state = AM_JOB_ENCODE;
            j->window_index--; // same sampling seed for the restarted window
            if (j->n_pend) {   // removed during its alignment pass: the window is decoded again
                drop_pending(j);
                j->seek = j->window_prev_seek;
                j->tr.n_windows--;
            }
        }
        return 0;
    }
    return am_set_error(AM_EINVAL, "job not in the engine");
}

int am_engine_pending(const am_engine *e) { return e->n_jobs; }

int am_engine_waiting_windows(const am_engine *e) {
    int n = 0;
    for (int i = 0; i < e->n_jobs; i++) n += e->jobs[i]->state == AM_JOB_ENCODE;
    return n;
}

int am_engine_active_windows(const am_engine *e) {
    int n = 0;
    for (int i = 0; i < e->p.max_windows; i++) n += e->slots[i].job != NULL;
    return n;
}

// Drop finished/failed jobs from the list (their slots are already free) and
// report them to on_finish (which must not call back into the engine).
static void prune_jobs(am_engine *e) {
    const int n = e->n_jobs;
    int k = 0;
    for (int i = 0; i < n; i++) {
        am_job *j = e->jobs[i];
        if (j->state == AM_JOB_ENCODE || j->state == AM_JOB_DECODE) e->jobs[k++] = j;
        else if (e->p.on_finish) e->p.on_finish(j, e->p.ctx);
    }
    e->n_jobs = k;
}

// Is a more urgent than b? Priority, then deadline, then waiting time.
static int more_urgent(const am_job *a, const am_job *b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    if (a->deadline != b->deadline) {
        if (a->deadline == 0) return 0;
        if (b->deadline == 0) return 1;
        return a->deadline < b->deadline;
    }
    return a->ready_at < b->ready_at;
}

double am_engine_oldest_wait(const am_engine *e) {
    double oldest = 0;
    for (int i = 0; i < e->n_jobs; i++) {
        const am_job *j = e->jobs[i];
        if (j->state == AM_JOB_ENCODE && (oldest == 0 || j->ready_at < oldest)) oldest = j->ready_at;
    }
    return oldest;
}

// Sequences held by all slots.
static int seqs_held(const am_engine *e) {
    int n = 0;
    for (int i = 0; i < e->p.max_windows; i++) n += e->slots[i].n_seqs;
    return n;
}

// A free slot with at least n_seqs sequences, within the sequence budget:
// a free slot that has enough is taken first; else one grows, after idle
// slots gave back sequences they hold beyond one. A window that needs more
// than the whole budget runs when it would be alone.
static slot *free_slot(am_engine *e, int n_seqs) {
    slot *s = NULL;
    for (int i = 0; i < e->p.max_windows && (!s || s->n_seqs < n_seqs); i++) {
        slot *c = &e->slots[i];
        if (!c->job && (!s || c->n_seqs > s->n_seqs)) s = c;
    }
    if (!s) {
        am_set_error(AM_EFULL, "no free window slot");
        return NULL;
    }
    if (s->n_seqs < n_seqs && e->p.max_seqs > 0 && seqs_held(e) + n_seqs - s->n_seqs > e->p.max_seqs) {
        for (int i = 0; i < e->p.max_windows; i++) { // idle slots keep one sequence
            slot *c = &e->slots[i];
            for (; !c->job && c != s && c->n_seqs > 1; c->n_seqs--) am_seq_free(c->seqs[c->n_seqs - 1]);
        }
        if (seqs_held(e) + n_seqs - s->n_seqs > e->p.max_seqs && am_engine_active_windows(e) > 0) {
            am_set_error(AM_EFULL, "no decoder sequences free for a window of %d", n_seqs);
            return NULL;
        }
    }
    if (!s->xkv && !(s->xkv = am_xkv_create(e->m, e->p.kv_type))) return NULL;
    for (; s->n_seqs < n_seqs; s->n_seqs++)
        if (!(s->seqs[s->n_seqs] = am_seq_create(e->m, 0, e->p.kv_type))) return NULL;
    if (!s->wdec && !(s->wdec = am_wdec_create(e->dc))) return NULL;
    return s;
}

int am_engine_encode(am_engine *e, int max_enc) {
    const am_model *m = e->m;
    const size_t mel_sz = (size_t)m->hp.n_mels * AM_MEL_WINDOW_FRAMES;
    if (max_enc <= 0 || max_enc > e->p.max_batch) max_enc = e->p.max_batch;
    am_job *batch[256];
    slot *slots[256];
    int n = 0;
    while (n < max_enc && n < 256) {
        am_job *best = NULL; // the most urgent window still waiting
        for (int i = 0; i < e->n_jobs; i++) {
            am_job *j = e->jobs[i];
            if (j->state == AM_JOB_ENCODE && (!best || more_urgent(j, best))) best = j;
        }
        if (!best) break;
        slot *s = free_slot(e, am_decode_group_size(&best->p.decode));
        if (!s && am_last_error_code() == AM_ENOMEM) { // its slot could not be made: the job fails, others go on
            job_fail(best, AM_ENOMEM, am_last_error());
            continue;
        }
        if (!s) break; // no slot free now (AM_EFULL): the window waits
        s->job = best;
        slots[n] = s;
        batch[n] = best;
        job_window_mel(best, e->mel_buf + n * mel_sz);
        best->state = AM_JOB_DECODE; // reserved; started below
        n++;
    }
    if (n == 0) {
        prune_jobs(e); // jobs that failed above
        return 0;
    }
    double t0 = am_time_s();
    am_xkv *xkv[256];
    for (int i = 0; i < n; i++) xkv[i] = slots[i]->xkv;
    int rc = 0;
    for (int i0 = 0; i0 < n && !rc; i0 += e->enc_slice) { // the encoder output of a slice becomes its cross K/V
        const int k = AM_MIN(e->enc_slice, n - i0);
        rc = am_encoder_run(e->enc, e->mel_buf + i0 * mel_sz, k, e->enc_buf);
        if (!rc) rc = am_decoder_set_audio(e->dec, xkv + i0, e->enc_buf, k);
    }
    e->stats.encoder_s += am_time_s() - t0;
    e->stats.encoder_calls++;
    e->stats.encoder_windows += n;
    const double now = am_time_s();
    for (int i = 0; i < n; i++) {
        if (batch[i]->first_encode_at == 0) batch[i]->first_encode_at = now;
        int r2 = rc ? rc : job_begin_window(batch[i], slots[i]->wdec, slots[i]->seqs, slots[i]->n_seqs, slots[i]->xkv);
        if (r2) {
            job_fail(batch[i], r2, am_last_error());
            slot_release(slots[i]);
        }
    }
    prune_jobs(e);
    return rc ? rc : n;
}

typedef struct {
    am_engine *e;
    int rc;        // the step's status: nonzero fails every window
    char msg[256]; // its message (feed tasks run on other threads: their last error is not this one)
} feed_ctx;

// The alignment pass of slot s is over: words from its scores and logits rows
// (n_align, n_vocab), then the window ends.
static int finish_alignment(am_engine *e, slot *s, const float *logits) {
    am_job *j = s->job;
    const am_tokenizer *tok = am_decoding_tokenizer(e->dc);
    const int32_t eot = am_tokenizer_specials(tok)->eot;
    const int n_text = j->n_align - j->n_align_sot - 2, V = e->m->hp.n_vocab;
    float *probs = malloc((size_t)n_text * sizeof *probs);
    if (!probs) return am_set_error(AM_ENOMEM, "out of memory");
    // text token i is predicted by the row of the token before it (<|notimestamps|> for the first)
    for (int i = 0; i < n_text; i++)
        probs[i] = am_align_token_prob(logits + (size_t)(j->n_align_sot + i) * V, eot,
                                       j->align_tokens[j->n_align_sot + 1 + i]);
    const am_align_input in = {
        .tok = tok,
        .language = j->language,
        .text_tokens = j->align_tokens + j->n_align_sot + 1,
        .n_text = n_text,
        .n_sot = j->n_align_sot,
        .qk = s->qk,
        .n_heads = e->n_heads,
        .n_rows = j->n_align,
        .n_audio_ctx = e->m->hp.n_audio_ctx,
        .probs = probs,
        .num_frames = j->segment_size,
    };
    am_word *words = NULL;
    int n_words = 0;
    int rc = am_align_find(&in, &words, &n_words);
    free(probs);
    if (!rc) rc = job_apply_words(j, words, n_words);
    free(j->align_tokens);
    j->align_tokens = NULL;
    j->n_align = 0;
    return rc ? rc : job_next_window(j, j->window_prev_seek, j->window_temperature);
}

static void feed_task(void *ctx, int i) {
    const feed_ctx *fc = ctx;
    am_engine *e = fc->e;
    const step_slot *a = &e->act[i];
    slot *s = &e->slots[a->slot];
    am_job *j = s->job;
    int r;
    if (fc->rc) {
        job_fail(j, fc->rc, fc->msg);
        slot_release(s);
        return;
    }
    const float *logits = e->logits + (size_t)a->logit0 * e->m->hp.n_vocab;
    if (s->aligning) r = finish_alignment(e, s, logits);
    else {
        r = am_wdec_feed(s->wdec, (float *)logits);
        if (r == 0) return;
        if (r == 1) r = job_end_window(j, s->wdec);
        if (r == 1) { // the window's alignment pass is due: the slot keeps its cross K/V
            s->aligning = 1;
            return;
        }
    }
    if (r < 0) job_fail(j, r, am_last_error());
    slot_release(s); // the window is over (next window, done, or failed)
}

// Rows of slot s for this step (its window's candidates, or its alignment pass).
static int slot_rows(am_engine *e, slot *s, int row0) {
    if (!s->aligning) return am_wdec_inputs(s->wdec, e->step_seqs + row0, e->step_toks + row0, e->step_n + row0);
    am_job *j = s->job;
    if (j->n_align > e->max_rows)
        return am_set_error(AM_ERANGE, "alignment pass of %d tokens exceeds the decoder's %d rows", j->n_align,
                            e->max_rows);
    const size_t need = (size_t)e->n_heads * j->n_align * e->m->hp.n_audio_ctx;
    free(s->qk);
    if (!(s->qk = malloc(need * sizeof *s->qk))) return am_set_error(AM_ENOMEM, "out of memory for word alignment");
    am_seq_reset(s->seqs[0], s->xkv);
    e->step_seqs[row0] = s->seqs[0];
    e->step_toks[row0] = j->align_tokens;
    e->step_n[row0] = j->n_align;
    e->step_all[row0] = 1;
    am_xattn_capture *c = &e->caps[s - e->slots];
    *c = (am_xattn_capture){e->n_heads, e->heads, s->qk};
    e->step_cap[row0] = c;
    return 1;
}

int am_engine_decode_step(am_engine *e) {
    int k = 0, n_act = 0;
    size_t n_logits = 0;
    for (int i = 0; i < e->p.max_windows; i++) {
        slot *s = &e->slots[i];
        if (!s->job) continue;
        for (int r = 0; r < AM_MAX_GROUP; r++) {
            e->step_all[k + r] = 0;
            e->step_cap[k + r] = NULL;
        }
        const int n = slot_rows(e, s, k);
        if (n < 0) {
            job_fail(s->job, n, am_last_error());
            slot_release(s);
            continue;
        }
        if (n == 0) continue;
        step_slot *a = &e->act[n_act++];
        *a = (step_slot){i, k, n, (int)n_logits};
        for (int r = 0; r < n; r++) n_logits += e->step_all[k + r] ? (size_t)e->step_n[k + r] : 1;
        k += n;
    }
    if (k == 0) {
        prune_jobs(e);
        return 0;
    }
    int rc = 0;
    if (n_logits > e->cap_logits) { // grows to the largest step seen (beams, alignment passes)
        am_free(e->logits);
        const size_t cap = AM_MAX(n_logits, (size_t)e->p.max_windows);
        e->cap_logits = 0;
        if (!(e->logits = am_alloc(cap * e->m->hp.n_vocab * sizeof(float))))
            rc = am_set_error(AM_ENOMEM, "out of memory for logits"); // the step's windows fail (below)
        else e->cap_logits = cap;
    }
    double t0 = am_time_s();
    const am_step_options opts = {e->step_all, e->step_cap};
    if (!rc) rc = am_decoder_step_opts(e->dec, e->step_seqs, e->step_toks, e->step_n, k, &opts, e->logits);
    e->stats.decoder_s += am_time_s() - t0;
    e->stats.decoder_steps++;
    e->stats.decoder_rows += k;
    // token choice, filters, alignment and window bookkeeping per window, in
    // parallel (each window belongs to a different job)
    feed_ctx fc = {.e = e, .rc = rc};
    if (rc) snprintf(fc.msg, sizeof fc.msg, "%s", am_last_error());
    am_nn_parallel(n_act, feed_task, &fc);
    prune_jobs(e);
    return rc ? rc : k;
}

int am_engine_run(am_engine *e, double max_s) {
    const double until = max_s > 0 ? am_time_s() + max_s : 0;
    while (e->n_jobs > 0 && (until == 0 || am_time_s() < until)) {
        int rc = 0;
        if (am_engine_waiting_windows(e) > 0 && am_engine_active_windows(e) < e->p.max_windows)
            rc = am_engine_encode(e, 0);
        if (rc == 0) rc = am_engine_decode_step(e); // also when no window could start (sequence budget)
        if (rc < 0) return rc;
        if (rc == 0 && am_engine_active_windows(e) == 0 && am_engine_waiting_windows(e) > 0)
            return am_set_error(AM_EINTERNAL, "engine made no progress");
    }
    return 0;
}
