// fuzz_format.c — libFuzzer target: transcript rendering (am_format_render,
// src/am_format.h) of a transcript built from the input bytes, in every
// format with every am_format_extra combination.
//
// The input describes an am_transcript (fz_reader, fuzz_common.h): language
// (a real code or any bytes), task, duration, text (or NULL), up to 8 segments
// each with id, seek, start/end (NaN, inf, huge, negative and raw doubles
// included), text (any bytes: invalid UTF-8, control characters, "-->",
// blank lines), tokens (text, special, timestamp and out-of-range ids),
// per-token logprobs (or none), the four statistics and up to 5 words (text
// or NULL, times, probability). Then json and verbose_json are rendered with
// extra NULL and with all 16 combinations of with_performance, with_words,
// without_segments and logprobs (the tiny.en tokenizer), and text, srt and vtt
// once each.
//
// Invariants beyond the sanitizers: rendering succeeds, except that logprobs
// fail cleanly (AM_ERANGE) on a segment with logprobs and a negative token id;
// json/verbose_json parse back as one JSON object holding "text" (and
// "segments" / "words" exactly when asked for); text ends in a newline; srt and
// vtt equal an independent rebuild of the reference's writers (one cue per
// segment whose stripped text is not empty, "-->" in the text replaced as
// Python's str.replace does).
//
// One-time state (LLVMFuzzerInitialize): the tokenizer for logprobs, in a
// static pointer (libFuzzer passes the target no context). Read-only after.
//
// Corpus: fuzz/corpus/format (fuzz/make-seeds.sh writes a few transcripts).
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "am_format.h"
#include "am_tokenizer.h"
#include "fuzz_common.h"

#define MAX_SEGMENTS 8
#define MAX_TOKENS 16
#define MAX_WORDS 5

// ---------------------------------------------------------------- one-time state
static const am_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_tok = fz_tokenizer_load();
    return 0;
}

// ---------------------------------------------------------------- building a transcript
typedef struct {
    am_transcript tr;
    am_segment seg[MAX_SEGMENTS];
    am_word words[MAX_SEGMENTS][MAX_WORDS];
    int32_t tokens[MAX_SEGMENTS][MAX_TOKENS];
    float logprobs[MAX_SEGMENTS][MAX_TOKENS];
    int bad_logprob_token; // a segment with logprobs holds a negative token id
} fixture;

static int32_t make_token(fz_reader *r) {
    const am_special_tokens *sp = am_tokenizer_specials(g_tok);
    const uint8_t k = fz_u8(r);
    if (k < 160) return (int32_t)(fz_u16(r) % sp->eot);
    if (k < 224) return sp->eot + (int32_t)(fz_u16(r) % (sp->n_vocab - sp->eot));
    return (int32_t)fz_u32(r); // anything, negative and huge included
}

static int build(fixture *f, fz_reader *r) {
    memset(f, 0, sizeof *f);
    am_transcript *tr = &f->tr;
    const uint8_t lang = fz_u8(r);
    if (lang < 200) snprintf(tr->language, sizeof tr->language, "%s", am_tokenizer_lang_code(lang % 100));
    else
        for (size_t i = 0; i < sizeof tr->language - 1; i++) tr->language[i] = (char)fz_u8(r);
    tr->translate = fz_u8(r) & 1;
    tr->duration = fz_double(r);
    if (fz_u8(r) & 1) tr->text = fz_string(r, 255);
    tr->segments = f->seg;
    tr->n_segments = fz_u8(r) % (MAX_SEGMENTS + 1);
    for (int i = 0; i < tr->n_segments; i++) {
        am_segment *s = &f->seg[i];
        s->id = (int)fz_u32(r);
        s->seek = (int)fz_u32(r);
        s->start = fz_double(r);
        s->end = fz_double(r);
        if (!(s->text = fz_string(r, 255))) return -1;
        s->n_tokens = fz_u8(r) % (MAX_TOKENS + 1);
        s->tokens = f->tokens[i];
        for (int k = 0; k < s->n_tokens; k++) s->tokens[k] = make_token(r);
        if (s->n_tokens && (fz_u8(r) & 1)) {
            s->token_logprobs = f->logprobs[i];
            for (int k = 0; k < s->n_tokens; k++) {
                s->token_logprobs[k] = fz_float(r);
                f->bad_logprob_token |= s->tokens[k] < 0;
            }
        }
        s->temperature = fz_double(r);
        s->avg_logprob = fz_double(r);
        s->compression_ratio = fz_double(r);
        s->no_speech_prob = fz_double(r);
        s->n_words = fz_u8(r) % (MAX_WORDS + 1);
        s->words = s->n_words || (fz_u8(r) & 1) ? f->words[i] : NULL;
        for (int k = 0; k < s->n_words; k++) {
            am_word *w = &f->words[i][k];
            if (fz_u8(r) % 8 && !(w->word = fz_string(r, 63))) return -1;
            w->start = fz_double(r);
            w->end = fz_double(r);
            w->probability = fz_double(r);
        }
    }
    return 0;
}

static void release(fixture *f) {
    free(f->tr.text);
    for (int i = 0; i < MAX_SEGMENTS; i++) {
        free(f->seg[i].text);
        for (int k = 0; k < MAX_WORDS; k++) free(f->words[i][k].word);
    }
}

// ---------------------------------------------------------------- checks
static void check_json(const fixture *f, const char *out, int verbose, const am_format_extra *x) {
    cJSON *o = cJSON_Parse(out);
    FZ_ASSERT(cJSON_IsObject(o), "%s output does not parse: %.300s", verbose ? "verbose_json" : "json", out);
    FZ_ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "text")), "no text");
    const int want_segments = verbose && !(x && x->without_segments);
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(o, "segments");
    FZ_ASSERT(want_segments ? cJSON_GetArraySize(segs) == f->tr.n_segments : segs == NULL, "segments");
    const int want_words = verbose && x && x->with_words;
    FZ_ASSERT(want_words == (cJSON_GetObjectItemCaseSensitive(o, "words") != NULL), "words");
    cJSON_Delete(o);
}

// The reference's subtitle writers (openai-whisper utils.py WriteSRT/WriteVTT),
// rebuilt independently: for every segment whose stripped text is not empty,
// [number line (srt)] "start --> end" and the text stripped with
// str.replace("-->", "->") (left to right, non-overlapping, so "--->" keeps an
// arrow, as in Python), then a blank line.
static char *reference_subtitles(const fixture *f, int vtt) {
    size_t cap = 16;
    for (int i = 0; i < f->tr.n_segments; i++) cap += strlen(f->seg[i].text) + 200;
    char *out = malloc(cap), *p = out;
    if (!out) return NULL;
    p += sprintf(p, "%s", vtt ? "WEBVTT\n\n" : "");
    int cue = 0;
    for (int i = 0; i < f->tr.n_segments; i++) {
        const am_segment *s = &f->seg[i];
        const char *t = s->text;
        const size_t n = am_str_strip(&t, strlen(t));
        if (!n) continue;
        char a[64], z[64];
        am_format_timestamp(s->start, vtt ? '.' : ',', a, sizeof a);
        am_format_timestamp(s->end, vtt ? '.' : ',', z, sizeof z);
        if (!vtt) p += sprintf(p, "%d\n", ++cue);
        p += sprintf(p, "%s --> %s\n", a, z);
        for (size_t k = 0; k < n;) {
            if (k + 3 <= n && !memcmp(t + k, "-->", 3)) {
                p += sprintf(p, "->");
                k += 3;
            } else {
                *p++ = t[k++];
            }
        }
        p += sprintf(p, "\n\n");
    }
    *p = 0;
    return out;
}

static void check_subtitles(const fixture *f, const char *out, int vtt) {
    char *want = reference_subtitles(f, vtt);
    if (!want) return;
    FZ_ASSERT(!strcmp(out, want), "%s differs from the reference:\n%.600s\nwant:\n%.600s", vtt ? "vtt" : "srt", out,
              want);
    free(want);
}

static void render(const fixture *f, am_format fmt, const am_format_extra *x) {
    char *out = NULL;
    size_t len = 0;
    const int rc = am_format_render(&f->tr, fmt, x, &out, &len);
    if (rc == AM_ERANGE && f->bad_logprob_token && fmt == AM_FMT_JSON && x && x->logprobs) return;
    FZ_ASSERT(rc == 0, "render %s: %d %s", am_format_name(fmt), rc, am_last_error());
    FZ_ASSERT(out && strlen(out) == len, "length");
    switch (fmt) {
    case AM_FMT_JSON: check_json(f, out, 0, x); break;
    case AM_FMT_VERBOSE_JSON: check_json(f, out, 1, x); break;
    case AM_FMT_TEXT: FZ_ASSERT(len > 0 && out[len - 1] == '\n', "text without a final newline"); break;
    case AM_FMT_SRT: check_subtitles(f, out, 0); break;
    case AM_FMT_VTT: check_subtitles(f, out, 1); break;
    }
    free(out);
}

// ---------------------------------------------------------------- one input
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_reader r = {data, size, 0};
    fixture *f = calloc(1, sizeof *f);
    if (!f) return 0;
    if (build(f, &r) == 0) {
        static const char *const modes[] = {NULL, "batched", "sequential", "cli"};
        const double processing = fz_double(&r);
        const char *mode = modes[fz_u8(&r) % 4];
        render(f, AM_FMT_TEXT, NULL);
        render(f, AM_FMT_SRT, NULL);
        render(f, AM_FMT_VTT, NULL);
        render(f, AM_FMT_JSON, NULL);
        render(f, AM_FMT_VERBOSE_JSON, NULL);
        for (int bits = 0; bits < 16; bits++) {
            const am_format_extra x = {.with_performance = bits & 1,
                                       .processing_time_s = processing,
                                       .mode = mode,
                                       .with_words = (bits >> 1) & 1,
                                       .without_segments = (bits >> 2) & 1,
                                       .logprobs = (bits >> 3) & 1 ? g_tok : NULL};
            render(f, AM_FMT_JSON, &x);
            render(f, AM_FMT_VERBOSE_JSON, &x);
        }
    }
    release(f);
    free(f);
    return 0;
}
