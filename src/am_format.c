// am_format.c — json / text / srt / vtt / verbose_json renderings of a transcript.
#include "am_format.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_tokenizer.h"

// ---------------------------------------------------------------- names
static const struct {
    am_format f;
    const char *name, *type;
} k_formats[] = {
    {AM_FMT_JSON, "json", "application/json"},
    {AM_FMT_TEXT, "text", "text/plain; charset=utf-8"},
    {AM_FMT_SRT, "srt", "application/x-subrip; charset=utf-8"},
    {AM_FMT_VTT, "vtt", "text/vtt; charset=utf-8"},
    {AM_FMT_VERBOSE_JSON, "verbose_json", "application/json"},
};

int am_format_parse(const char *name, am_format *out) {
    for (size_t i = 0; name && i < AM_ARRAY_LEN(k_formats); i++)
        if (strcmp(name, k_formats[i].name) == 0) {
            *out = k_formats[i].f;
            return 0;
        }
    return am_set_error(AM_EINVAL, "unknown response_format '%s' (expected json, text, srt, verbose_json or vtt)",
                        name ? name : "(null)");
}

const char *am_format_name(am_format f) {
    for (size_t i = 0; i < AM_ARRAY_LEN(k_formats); i++)
        if (k_formats[i].f == f) return k_formats[i].name;
    return "json";
}

const char *am_format_content_type(am_format f) {
    for (size_t i = 0; i < AM_ARRAY_LEN(k_formats); i++)
        if (k_formats[i].f == f) return k_formats[i].type;
    return "application/json";
}

// ---------------------------------------------------------------- helpers
// A growable string.
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_append(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = AM_MAX(b->cap * 2, b->len + n + 256);
        char *v = realloc(b->s, cap);
        if (!v) {
            b->oom = 1;
            return;
        }
        b->s = v;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_append(b, s, strlen(s)); }

void am_format_timestamp(double seconds, char marker, char *buf, size_t cap) {
    if (!(seconds > 0)) seconds = 0;      // negative and NaN
    if (seconds > 1e12) seconds = 1e12;   // and absurd values stay representable
    long long ms = (long long)nearbyint(seconds * 1000.0);
    const long long h = ms / 3600000;
    ms -= h * 3600000;
    const long long m = ms / 60000;
    ms -= m * 60000;
    const long long s = ms / 1000;
    ms -= s * 1000;
    snprintf(buf, cap, "%02lld:%02lld:%02lld%c%03lld", h % 1000000, m, s, marker, ms);
}

// segment text for subtitles: strip(), and "-->" cannot appear inside a cue
static void sb_cue_text(sbuf *b, const char *text) {
    const char *t = text;
    size_t n = am_str_strip(&t, strlen(text));
    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n && t[i] == '-' && t[i + 1] == '-' && t[i + 2] == '>') {
            sb_puts(b, "->");
            i += 2;
            continue;
        }
        sb_append(b, t + i, 1);
    }
}

// Add a number printed as Python's json module prints it: the shortest
// decimal that reads back as the same double (28.560000000000002 stays so;
// cJSON's own printing would round it to 28.56). Returns 0 or -1 (out of memory).
static int add_number(cJSON *o, const char *key, double v) {
    char buf[64];
    if (!isfinite(v)) return cJSON_AddNullToObject(o, key) ? 0 : -1;
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, sizeof buf, "%.0f", v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
    }
    return cJSON_AddRawToObject(o, key, buf) ? 0 : -1;
}

// cJSON_AddStringToObject as 0 or -1 (out of memory).
static int add_string(cJSON *o, const char *key, const char *v) { return cJSON_AddStringToObject(o, key, v) ? 0 : -1; }

// A new object appended to the array arr, or NULL (out of memory).
static cJSON *add_object(cJSON *arr) {
    cJSON *j = cJSON_CreateObject();
    if (j && !cJSON_AddItemToArray(arr, j)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

// The number v appended to the array arr: 0 or -1 (out of memory).
static int add_array_number(cJSON *arr, double v) {
    cJSON *n = cJSON_CreateNumber(v);
    if (n && cJSON_AddItemToArray(arr, n)) return 0;
    cJSON_Delete(n);
    return -1;
}

static const char *language_name(const char *code) {
    const int idx = am_tokenizer_lang_index(code);
    return idx >= 0 ? am_tokenizer_lang_name(idx) : code;
}

// ---------------------------------------------------------------- renderers
static char *render_subtitles(const am_transcript *tr, int vtt) {
    sbuf b = {0};
    if (vtt) sb_puts(&b, "WEBVTT\n\n");
    int cue = 0;
    for (int i = 0; i < tr->n_segments; i++) {
        const am_segment *s = &tr->segments[i];
        const char *t = s->text;
        if (am_str_strip(&t, strlen(t)) == 0) continue; // cleared (silent / instantaneous) segments
        char a[64], z[64], num[32];
        am_format_timestamp(s->start, vtt ? '.' : ',', a, sizeof a);
        am_format_timestamp(s->end, vtt ? '.' : ',', z, sizeof z);
        if (!vtt) {
            snprintf(num, sizeof num, "%d\n", ++cue);
            sb_puts(&b, num);
        }
        sb_puts(&b, a);
        sb_puts(&b, " --> ");
        sb_puts(&b, z);
        sb_puts(&b, "\n");
        sb_cue_text(&b, s->text);
        sb_puts(&b, "\n\n");
    }
    if (!b.s && !b.oom) sb_puts(&b, "");
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static char *stripped(const char *text) {
    const char *t = text ? text : "";
    const size_t n = am_str_strip(&t, strlen(t));
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, t, n);
        s[n] = 0;
    }
    return s;
}

// The words of segment s appended to arr: the top-level form (OpenAI's: text
// stripped; word, start, end) or the segment form (the reference's: text as
// is; word, start, end, probability). Returns 0 or -1 (out of memory).
static int add_words(cJSON *arr, const am_segment *s, int top_level) {
    for (int k = 0; k < s->n_words && s->words; k++) {
        const am_word *w = &s->words[k];
        cJSON *j = add_object(arr);
        char *text = top_level ? stripped(w->word) : NULL;
        const int rc = !j || (top_level && !text) || add_string(j, "word", top_level ? text : w->word ? w->word : "") ||
                       add_number(j, "start", w->start) || add_number(j, "end", w->end) ||
                       (!top_level && add_number(j, "probability", w->probability));
        free(text);
        if (rc) return -1;
    }
    return 0;
}

int am_format_logprobs(cJSON *arr, const am_tokenizer *tok, const int32_t *tokens, const float *logprobs, int n) {
    if (!arr || !tok || (n > 0 && (!tokens || !logprobs))) return am_set_error(AM_EINVAL, "invalid logprobs arguments");
    const int32_t eot = am_tokenizer_specials(tok)->eot;
    for (int i = 0; i < n; i++) {
        if (tokens[i] >= eot) continue;
        const char *b = NULL;
        size_t nb = 0;
        char *text = NULL;
        if (am_tokenizer_token_bytes(tok, tokens[i], &b, &nb) ||
            am_tokenizer_decode_alloc(tok, &tokens[i], 1, AM_DECODE_TEXT, &text, NULL))
            return am_last_error_code() ? am_last_error_code() : AM_ENOMEM;
        cJSON *o = add_object(arr), *bytes = NULL;
        int ok = o && !add_string(o, "token", text) && !add_number(o, "logprob", logprobs[i]) &&
                 (bytes = cJSON_AddArrayToObject(o, "bytes"));
        free(text);
        for (size_t k = 0; ok && k < nb; k++) ok = !add_array_number(bytes, (unsigned char)b[k]);
        if (!ok) return am_set_error(AM_ENOMEM, "out of memory");
    }
    return 0;
}

int am_format_usage(cJSON *o, const am_transcript *tr) {
    cJSON *usage = cJSON_AddObjectToObject(o, "usage"); // OpenAI's whisper-1 usage: billed whole seconds
    if (!usage || !cJSON_AddStringToObject(usage, "type", "duration") ||
        !cJSON_AddNumberToObject(usage, "seconds", ceil(tr->duration > 0 ? tr->duration - 1e-9 : 0)))
        return am_set_error(AM_ENOMEM, "out of memory");
    return 0;
}

// The JSON forms; NULL on failure with *err AM_ENOMEM, or the error of
// am_format_logprobs (e.g. AM_ERANGE for a token id outside the vocabulary).
static cJSON *render_json(const am_transcript *tr, int verbose, const am_format_extra *x, int *err) {
    *err = AM_ENOMEM;
    cJSON *o = cJSON_CreateObject();
    char *text = stripped(tr->text);
    const int words = verbose && x && x->with_words;
    if (!o || !text) goto fail;
    if (verbose && (add_string(o, "task", tr->translate ? "translate" : "transcribe") ||
                    add_string(o, "language", language_name(tr->language)) || add_number(o, "duration", tr->duration)))
        goto fail;
    if (add_string(o, "text", text)) goto fail;
    if (words) { // OpenAI's top-level words: every segment's, in order
        cJSON *all = cJSON_AddArrayToObject(o, "words");
        if (!all) goto fail;
        for (int i = 0; i < tr->n_segments; i++)
            if (add_words(all, &tr->segments[i], 1)) goto fail;
    }
    if (verbose && !(x && x->without_segments)) {
        cJSON *segs = cJSON_AddArrayToObject(o, "segments");
        if (!segs) goto fail;
        for (int i = 0; i < tr->n_segments; i++) {
            const am_segment *s = &tr->segments[i];
            cJSON *j = add_object(segs), *toks = NULL;
            if (!j || !cJSON_AddNumberToObject(j, "id", s->id) || !cJSON_AddNumberToObject(j, "seek", s->seek) ||
                add_number(j, "start", s->start) || add_number(j, "end", s->end) || add_string(j, "text", s->text) ||
                !(toks = cJSON_AddArrayToObject(j, "tokens")))
                goto fail;
            for (int k = 0; k < s->n_tokens; k++)
                if (add_array_number(toks, s->tokens[k])) goto fail;
            if (add_number(j, "temperature", s->temperature) || add_number(j, "avg_logprob", s->avg_logprob) ||
                add_number(j, "compression_ratio", s->compression_ratio) ||
                add_number(j, "no_speech_prob", s->no_speech_prob))
                goto fail;
            if (words) { // the reference's segment["words"], last as add_word_timestamps adds it
                cJSON *ws = cJSON_AddArrayToObject(j, "words");
                if (!ws || add_words(ws, s, 0)) goto fail;
            }
        }
    }
    if (!verbose && x && x->logprobs) { // include[]=logprobs: the text tokens of every segment
        cJSON *lp = cJSON_AddArrayToObject(o, "logprobs");
        if (!lp) goto fail;
        for (int i = 0; i < tr->n_segments; i++) {
            const am_segment *s = &tr->segments[i];
            int rc;
            if (s->n_tokens && s->token_logprobs &&
                (rc = am_format_logprobs(lp, x->logprobs, s->tokens, s->token_logprobs, s->n_tokens))) {
                *err = rc;
                goto fail;
            }
        }
    }
    if (am_format_usage(o, tr)) goto fail;
    if (x && x->with_performance) {
        cJSON *p = cJSON_AddObjectToObject(o, "performance");
        // processing time per second of audio (lower is faster)
        if (!p || add_number(p, "audio_duration_s", tr->duration) ||
            add_number(p, "processing_time_s", x->processing_time_s) ||
            add_number(p, "realtime_factor", tr->duration > 0 ? x->processing_time_s / tr->duration : 0) ||
            add_string(p, "mode", x->mode ? x->mode : "batched"))
            goto fail;
    }
    free(text);
    return o;
fail:
    free(text);
    cJSON_Delete(o);
    return NULL;
}

int am_format_render(const am_transcript *tr, am_format f, const am_format_extra *extra, char **out, size_t *len) {
    if (!tr || !out) return am_set_error(AM_EINVAL, "invalid format arguments");
    char *s = NULL;
    switch (f) {
    case AM_FMT_JSON:
    case AM_FMT_VERBOSE_JSON: {
        int err;
        cJSON *o = render_json(tr, f == AM_FMT_VERBOSE_JSON, extra, &err);
        if (!o && err != AM_ENOMEM) return err; // its message is set (logprobs of a token id out of range)
        if (o) s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        break;
    }
    case AM_FMT_TEXT: {
        char *t = stripped(tr->text);
        if (t && (s = malloc(strlen(t) + 2))) sprintf(s, "%s\n", t);
        free(t);
        break;
    }
    case AM_FMT_SRT: s = render_subtitles(tr, 0); break;
    case AM_FMT_VTT: s = render_subtitles(tr, 1); break;
    default: return am_set_error(AM_EINVAL, "unknown format %d", (int)f);
    }
    if (!s) return am_set_error(AM_ENOMEM, "out of memory rendering the transcript");
    *out = s;
    if (len) *len = strlen(s);
    return 0;
}
