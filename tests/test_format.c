// test_format.c — the response formats (json, text, srt, vtt, verbose_json):
// timestamps rounded as Python's round(), subtitle cues, JSON shapes and
// values, escaping and UTF-8 (also a character split across BPE tokens), word
// timestamps in verbose_json (OpenAI's top-level words, the reference's
// segment words, the granularities; ignored by the other formats), on
// hand-made transcripts and on one real transcript of the tiny.en fixture.
#include <cjson/cJSON.h>
#include <stdint.h>

#include "am_audio.h"
#include "am_format.h"
#include "am_test.h"
#include "am_transcribe.h"

#define REPLACEMENT_CHAR "\xef\xbf\xbd" // U+FFFD in UTF-8

// ---------------------------------------------------------------- helpers
// Render tr as f; checks the call and the reported length. NULL on failure.
static char *render(const am_transcript *tr, am_format f, const am_format_extra *x) {
    char *out = NULL;
    size_t len = 12345;
    const int rc = am_format_render(tr, f, x, &out, &len);
    CHECKF(rc == 0, "render %s: %s", am_format_name(f), am_last_error());
    if (rc) return NULL;
    CHECKF(out && len == strlen(out), "render %s: len %zu vs strlen %zu", am_format_name(f), len,
           out ? strlen(out) : 0);
    return out;
}

static cJSON *render_json(const am_transcript *tr, am_format f, const am_format_extra *x) {
    char *s = render(tr, f, x);
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    CHECKF(j != NULL, "%s output does not parse: %.200s", am_format_name(f), s ? s : "(null)");
    free(s);
    return j;
}

// Python's str.strip() of a NUL-terminated string, as a malloc'd copy.
static char *strip_copy(const char *s) {
    const char *t = s;
    const size_t n = am_str_strip(&t, strlen(s));
    char *r = malloc(n + 1);
    memcpy(r, t, n);
    r[n] = 0;
    return r;
}

static int n_keys(const cJSON *o) {
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, o) n++;
    return n;
}

// The key names of o, in order, joined by ','.
static void key_list(const cJSON *o, char *buf, size_t cap) {
    buf[0] = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        if (buf[0]) strncat(buf, ",", cap - strlen(buf) - 1);
        strncat(buf, it->string ? it->string : "?", cap - strlen(buf) - 1);
    }
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jnum(const cJSON *o, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return 0;
    *out = v->valuedouble;
    return 1;
}

// Every field of the verbose_json rendering of tr equals the struct.
static void check_verbose(const char *label, const am_transcript *tr, const cJSON *o, const char *lang_name) {
    char keys[256];
    key_list(o, keys, sizeof keys);
    CHECKF(!strcmp(keys, "task,language,duration,text,segments,usage"), "%s: verbose_json keys '%s'", label, keys);
    const char *task = jstr(o, "task");
    CHECKF(task && !strcmp(task, tr->translate ? "translate" : "transcribe"), "%s: task '%s'", label,
           task ? task : "(none)");
    const char *lang = jstr(o, "language");
    CHECKF(lang && !strcmp(lang, lang_name), "%s: language '%s', want '%s'", label, lang ? lang : "(none)", lang_name);
    double d;
    CHECKF(jnum(o, "duration", &d) && d == tr->duration, "%s: duration", label);
    char *want_text = strip_copy(tr->text);
    const char *text = jstr(o, "text");
    CHECKF(text && !strcmp(text, want_text), "%s: text '%.80s', want '%.80s'", label, text ? text : "(none)",
           want_text);
    free(want_text);
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(o, "segments");
    CHECKF(cJSON_IsArray(segs) && cJSON_GetArraySize(segs) == tr->n_segments, "%s: %d segments, want %d", label,
           cJSON_GetArraySize(segs), tr->n_segments);
    for (int i = 0; cJSON_IsArray(segs) && i < tr->n_segments && i < cJSON_GetArraySize(segs); i++) {
        const am_segment *s = &tr->segments[i];
        const cJSON *j = cJSON_GetArrayItem(segs, i);
        key_list(j, keys, sizeof keys);
        CHECKF(!strcmp(keys, "id,seek,start,end,text,tokens,temperature,avg_logprob,compression_ratio,no_speech_prob"),
               "%s: segment %d keys '%s'", label, i, keys);
        double v = NAN;
        CHECKF(jnum(j, "id", &v) && v == s->id, "%s: segment %d id", label, i);
        CHECKF(jnum(j, "seek", &v) && v == s->seek, "%s: segment %d seek", label, i);
        CHECKF(jnum(j, "start", &v) && v == s->start, "%s: segment %d start %.17g vs %.17g", label, i, v, s->start);
        CHECKF(jnum(j, "end", &v) && v == s->end, "%s: segment %d end %.17g vs %.17g", label, i, v, s->end);
        CHECKF(jnum(j, "temperature", &v) && v == s->temperature, "%s: segment %d temperature", label, i);
        CHECKF(jnum(j, "avg_logprob", &v) && v == s->avg_logprob, "%s: segment %d avg_logprob %.17g vs %.17g", label,
               i, v, s->avg_logprob);
        CHECKF(jnum(j, "compression_ratio", &v) && v == s->compression_ratio, "%s: segment %d compression_ratio", label,
               i);
        CHECKF(jnum(j, "no_speech_prob", &v) && v == s->no_speech_prob, "%s: segment %d no_speech_prob %.17g vs %.17g",
               label, i, v, s->no_speech_prob);
        const char *t = jstr(j, "text");
        CHECKF(t && !strcmp(t, s->text), "%s: segment %d text '%s' vs '%s'", label, i, t ? t : "(none)", s->text);
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(j, "tokens");
        CHECKF(cJSON_IsArray(toks) && cJSON_GetArraySize(toks) == s->n_tokens, "%s: segment %d: %d tokens, want %d",
               label, i, cJSON_GetArraySize(toks), s->n_tokens);
        for (int k = 0; cJSON_IsArray(toks) && k < s->n_tokens && k < cJSON_GetArraySize(toks); k++) {
            const cJSON *tk = cJSON_GetArrayItem(toks, k);
            CHECKF(cJSON_IsNumber(tk) && tk->valuedouble == (double)s->tokens[k], "%s: segment %d token %d", label, i,
                   k);
        }
    }
}

// The bytes between "\n" lines of a subtitle body: checks the srt / vtt
// structure against tr (skipping segments without text) and that every cue
// is "start --> end\ntext".
static void check_subtitle_shape(const char *label, const am_transcript *tr, const char *body, int vtt) {
    const char *p = body;
    if (vtt) {
        CHECKF(!strncmp(p, "WEBVTT\n\n", 8), "%s: vtt header", label);
        p += 8;
    }
    int cue = 0;
    for (int i = 0; i < tr->n_segments; i++) {
        const am_segment *s = &tr->segments[i];
        char *text = strip_copy(s->text);
        if (!*text) {
            free(text);
            continue;
        }
        char a[32], z[32], want[4096];
        am_format_timestamp(s->start, vtt ? '.' : ',', a, sizeof a);
        am_format_timestamp(s->end, vtt ? '.' : ',', z, sizeof z);
        if (vtt) snprintf(want, sizeof want, "%s --> %s\n", a, z);
        else snprintf(want, sizeof want, "%d\n%s --> %s\n", ++cue, a, z);
        const int ok = !strncmp(p, want, strlen(want));
        CHECKF(ok, "%s: segment %d cue header: got '%.60s', want '%s'", label, i, p, want);
        free(text);
        if (!ok) return;
        p += strlen(want);
        const char *end = strstr(p, "\n\n");
        CHECKF(end != NULL, "%s: cue %d not terminated by a blank line", label, i);
        if (!end) return;
        p = end + 2;
    }
    CHECKF(*p == 0, "%s: trailing bytes after the last cue: '%.60s'", label, p);
}

// ---------------------------------------------------------------- timestamps
static void test_timestamps(void) {
    // Expected values are Python's round(seconds * 1000.0) on the same doubles
    // (half-to-even on the exact product): e.g. 0.0005 * 1000.0 == 0.5 -> 0,
    // 0.0015 * 1000.0 == 1.5 -> 2, 1.0005 * 1000.0 == 1000.5 -> 1000,
    // 2.0005 * 1000.0 == 2000.5000000000002 -> 2001.
    static const struct {
        double s;
        const char *want;
    } cases[] = {
        {0.0, "00:00:00,000"},          {0.0005, "00:00:00,000"},      {0.0015, "00:00:00,002"},
        {0.0025, "00:00:00,002"},       {0.0125, "00:00:00,012"},      {0.1235, "00:00:00,124"},
        {1.0005, "00:00:01,000"},       {1.0015, "00:00:01,002"},      {2.0005, "00:00:02,001"},
        {1.2345, "00:00:01,234"},       {0.0001, "00:00:00,000"},      {7.28, "00:00:07,280"},
        {59.9995, "00:01:00,000"},      {3599.9995, "01:00:00,000"},   {3725.5, "01:02:05,500"},
        {3731.0015, "01:02:11,002"},    {86399.9996, "24:00:00,000"},  {360000.0, "100:00:00,000"},
        {-1.0, "00:00:00,000"}, // the reference asserts >= 0; clamped here
    };
    char buf[64];
    for (size_t i = 0; i < AM_ARRAY_LEN(cases); i++) {
        am_format_timestamp(cases[i].s, ',', buf, sizeof buf);
        CHECKF(!strcmp(buf, cases[i].want), "timestamp(%.17g) = '%s', want '%s'", cases[i].s, buf, cases[i].want);
        // vtt: the same digits with '.'
        char want[64];
        snprintf(want, sizeof want, "%s", cases[i].want);
        *strrchr(want, ',') = '.';
        am_format_timestamp(cases[i].s, '.', buf, sizeof buf);
        CHECKF(!strcmp(buf, want), "vtt timestamp(%.17g) = '%s', want '%s'", cases[i].s, buf, want);
    }
    am_format_timestamp(NAN, ',', buf, sizeof buf);
    CHECKF(!strcmp(buf, "00:00:00,000"), "timestamp(NaN) = '%s'", buf);
    // a small buffer is truncated, not overrun
    char small[8];
    memset(small, 'x', sizeof small);
    am_format_timestamp(3725.5, ',', small, sizeof small);
    CHECKF(small[7] == 0 && !strcmp(small, "01:02:0"), "truncated timestamp '%.8s'", small);
}

// ---------------------------------------------------------------- names
static void test_parse(void) {
    static const struct {
        const char *name;
        am_format f;
        const char *type_prefix;
    } names[] = {
        {"json", AM_FMT_JSON, "application/json"},
        {"text", AM_FMT_TEXT, "text/plain"},
        {"srt", AM_FMT_SRT, NULL},
        {"vtt", AM_FMT_VTT, "text/vtt"},
        {"verbose_json", AM_FMT_VERBOSE_JSON, "application/json"},
    };
    for (size_t i = 0; i < AM_ARRAY_LEN(names); i++) {
        am_format f = (am_format)-1;
        CHECKF(am_format_parse(names[i].name, &f) == 0 && f == names[i].f, "parse '%s'", names[i].name);
        CHECKF(!strcmp(am_format_name(names[i].f), names[i].name), "name of %d is '%s'", (int)names[i].f,
               am_format_name(names[i].f));
        const char *ct = am_format_content_type(names[i].f);
        CHECKF(ct != NULL, "content type of %s", names[i].name);
        if (!ct) continue;
        if (names[i].type_prefix)
            CHECKF(!strncmp(ct, names[i].type_prefix, strlen(names[i].type_prefix)), "content type of %s: '%s'",
                   names[i].name, ct);
        else // srt: OpenAI serves it as text/plain; a subrip type is fine too
            CHECKF(!strncmp(ct, "application/x-subrip", 20) || !strncmp(ct, "text/plain", 10),
                   "content type of srt: '%s'", ct);
        if (names[i].f != AM_FMT_JSON && names[i].f != AM_FMT_VERBOSE_JSON)
            CHECKF(strstr(ct, "charset=utf-8") != NULL, "content type of %s lacks the charset: '%s'", names[i].name,
                   ct);
    }
    const char *bad[] = {"xml", "", NULL, "JSON", "json ", "verbose"};
    for (size_t i = 0; i < AM_ARRAY_LEN(bad); i++) {
        am_format f = AM_FMT_SRT;
        const int rc = am_format_parse(bad[i], &f);
        CHECKF(rc == AM_EINVAL, "parse '%s' returned %d", bad[i] ? bad[i] : "(NULL)", rc);
        CHECKF(f == AM_FMT_SRT, "parse '%s' wrote the output", bad[i] ? bad[i] : "(NULL)");
        const char *msg = am_last_error();
        CHECKF(strstr(msg, "json") && strstr(msg, "text") && strstr(msg, "srt") && strstr(msg, "vtt") &&
                   strstr(msg, "verbose_json"),
               "parse error message does not list the formats: '%s'", msg);
    }
    // rendering rejects bad arguments
    am_transcript tr = {.text = "x"};
    char *out = NULL;
    CHECK(am_format_render(NULL, AM_FMT_JSON, NULL, &out, NULL) == AM_EINVAL);
    CHECK(am_format_render(&tr, AM_FMT_JSON, NULL, NULL, NULL) == AM_EINVAL);
    CHECK(am_format_render(&tr, (am_format)99, NULL, &out, NULL) == AM_EINVAL);
    CHECK(out == NULL);
}

// ---------------------------------------------------------------- subtitles
static void test_subtitles(void) {
    static int32_t toks[] = {50363, 15496, 50488};
    am_segment segs[] = {
        {.id = 0, .seek = 0, .start = 0.0, .end = 2.5, .text = " Hello world. ", .tokens = toks, .n_tokens = 3},
        {.id = 1, .seek = 0, .start = 2.5, .end = 2.5, .text = "", .tokens = toks, .n_tokens = 0},
        {.id = 2, .seek = 0, .start = 3.0, .end = 3725.5, .text = "  arrow --> inside x-->y\t", .tokens = toks,
         .n_tokens = 3},
        {.id = 3, .seek = 3000, .start = 3725.5, .end = 3730.0, .text = " \n\t\xc2\xa0 ", .tokens = toks, .n_tokens = 0},
        {.id = 4, .seek = 3000, .start = 3730.0, .end = 3731.0015, .text = " na\xc3\xafve \xe2\x9c\x93 "
                                                                          "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                                                                          "\xf0\x9f\x99\x82\xe3\x80\x80",
         .tokens = toks, .n_tokens = 3},
        {.id = 5, .seek = 3000, .start = 3731.5, .end = 3732.0, .text = " a --->b\nsecond line", .tokens = toks,
         .n_tokens = 3},
    };
    am_transcript tr = {.language = "en", .duration = 3732.0, .text = " whatever", .segments = segs,
                        .n_segments = (int)AM_ARRAY_LEN(segs)};
    // "-->" becomes "->" as the reference's str.replace does (left to right,
    // non-overlapping): "--->" therefore becomes "-->", exactly as in Python.
    const char *want_srt = "1\n00:00:00,000 --> 00:00:02,500\nHello world.\n\n"
                           "2\n00:00:03,000 --> 01:02:05,500\narrow -> inside x->y\n\n"
                           "3\n01:02:10,000 --> 01:02:11,002\nna\xc3\xafve \xe2\x9c\x93 "
                           "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x99\x82\n\n"
                           "4\n01:02:11,500 --> 01:02:12,000\na -->b\nsecond line\n\n";
    const char *want_vtt = "WEBVTT\n\n"
                           "00:00:00.000 --> 00:00:02.500\nHello world.\n\n"
                           "00:00:03.000 --> 01:02:05.500\narrow -> inside x->y\n\n"
                           "01:02:10.000 --> 01:02:11.002\nna\xc3\xafve \xe2\x9c\x93 "
                           "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x99\x82\n\n"
                           "01:02:11.500 --> 01:02:12.000\na -->b\nsecond line\n\n";
    char *srt = render(&tr, AM_FMT_SRT, NULL);
    char *vtt = render(&tr, AM_FMT_VTT, NULL);
    CHECKF(srt && !strcmp(srt, want_srt), "srt:\n%s\nwant:\n%s", srt ? srt : "(null)", want_srt);
    CHECKF(vtt && !strcmp(vtt, want_vtt), "vtt:\n%s\nwant:\n%s", vtt ? vtt : "(null)", want_vtt);
    if (srt) check_subtitle_shape("hand srt", &tr, srt, 0);
    if (vtt) check_subtitle_shape("hand vtt", &tr, vtt, 1);
    free(srt);
    free(vtt);

    // no segments: srt is empty, vtt is only the header
    am_transcript empty = {.language = "en", .text = ""};
    srt = render(&empty, AM_FMT_SRT, NULL);
    vtt = render(&empty, AM_FMT_VTT, NULL);
    CHECKF(srt && !strcmp(srt, ""), "empty srt '%s'", srt ? srt : "(null)");
    CHECKF(vtt && !strcmp(vtt, "WEBVTT\n\n"), "empty vtt '%s'", vtt ? vtt : "(null)");
    free(srt);
    free(vtt);
    // only empty segments: numbering never starts
    am_transcript blanks = {.language = "en", .text = " ", .segments = segs + 1, .n_segments = 1};
    srt = render(&blanks, AM_FMT_SRT, NULL);
    CHECKF(srt && !strcmp(srt, ""), "srt of blank segments '%s'", srt ? srt : "(null)");
    free(srt);
}

// ---------------------------------------------------------------- json / text
static void test_json(void) {
    // every kind of character JSON must escape, and multi-byte UTF-8
    static const char *texts[] = {
        " She said \"hi\" \\ and left.",
        " line one\nline two\r\n\ttabbed",
        " ctl \x01\x02\x1f\x7f end",
        " na\xc3\xafve \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x99\x82",
        " slash / and <html> & 'quote' \\u0041 literal",
        "",
    };
    static int32_t toks0[] = {50363, 1375, 531, 366, 5303, 1, 3467, 290, 1364, 13, 50463};
    static int32_t toks1[] = {50463, 1627, 50513};
    am_segment segs[AM_ARRAY_LEN(texts)];
    for (size_t i = 0; i < AM_ARRAY_LEN(texts); i++) {
        segs[i] = (am_segment){
            .id = (int)i,
            .seek = (int)(i / 2) * 3000,
            .start = 0.5 * i + 0.25,
            .end = 0.5 * i + 0.75,
            .text = (char *)texts[i],
            .tokens = i % 2 ? toks1 : toks0,
            .n_tokens = i == AM_ARRAY_LEN(texts) - 1 ? 0 : (i % 2 ? 3 : 11),
            .temperature = 0.25 * i,
            .avg_logprob = -0.125 * (i + 1),
            .compression_ratio = 1.5 + i,
            .no_speech_prob = 0.0078125 * (i + 1),
        };
    }
    // the full text, with surrounding Unicode whitespace to strip
    const char *full = " \xe3\x80\x80 She said \"hi\" \\ and left.\nline two\ttab \x01 na\xc3\xafve "
                       "\xf0\x9f\x99\x82\xc2\xa0 \n";
    am_transcript tr = {.language = "en", .duration = 11.0, .text = (char *)full, .segments = segs,
                        .n_segments = (int)AM_ARRAY_LEN(texts)};
    char *want_text = strip_copy(full);
    CHECK(!strncmp(want_text, "She said", 8) && !strcmp(want_text + strlen(want_text) - 4, "\xf0\x9f\x99\x82"));

    // json: exactly {"text"}
    cJSON *o = render_json(&tr, AM_FMT_JSON, NULL);
    if (o) {
        CHECKF(n_keys(o) == 2, "json has %d keys", n_keys(o));
        // OpenAI's usage for whisper-1: the duration rounded up to whole seconds
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
        double sec = 0;
        const char *ut = jstr(u, "type");
        CHECKF(ut && !strcmp(ut, "duration") && jnum(u, "seconds", &sec) && sec == ceil(tr.duration) && n_keys(u) == 2,
               "usage: type %s, seconds %g for %g s", ut ? ut : "(none)", sec, tr.duration);
        const char *t = jstr(o, "text");
        CHECKF(t && !strcmp(t, want_text), "json text '%s', want '%s'", t ? t : "(none)", want_text);
    }
    cJSON_Delete(o);
    am_format_extra no_perf = {.with_performance = 0, .processing_time_s = 3.0, .mode = "cli"};
    o = render_json(&tr, AM_FMT_JSON, &no_perf);
    CHECK(o && n_keys(o) == 2);
    cJSON_Delete(o);

    // json with the performance object
    am_format_extra x = {.with_performance = 1, .processing_time_s = 2.75, .mode = "sequential"};
    o = render_json(&tr, AM_FMT_JSON, &x);
    if (o) {
        char keys[128];
        key_list(o, keys, sizeof keys);
        CHECKF(!strcmp(keys, "text,usage,performance"), "json keys '%s'", keys);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "performance");
        key_list(p, keys, sizeof keys);
        CHECKF(!strcmp(keys, "audio_duration_s,processing_time_s,realtime_factor,mode"), "performance keys '%s'", keys);
        double v;
        CHECK(jnum(p, "audio_duration_s", &v) && v == 11.0);
        CHECK(jnum(p, "processing_time_s", &v) && v == 2.75);
        CHECKF(jnum(p, "realtime_factor", &v) && fabs(v - 2.75 / 11.0) < 1e-12, "realtime_factor %g", v);
        const char *mode = jstr(p, "mode");
        CHECK(mode && !strcmp(mode, "sequential"));
    }
    cJSON_Delete(o);

    // text: stripped + "\n"
    char *txt = render(&tr, AM_FMT_TEXT, NULL);
    if (txt) {
        const size_t n = strlen(want_text);
        CHECKF(strlen(txt) == n + 1 && !strncmp(txt, want_text, n) && txt[n] == '\n', "text body '%s'", txt);
    }
    free(txt);

    // verbose_json: every value equals the struct's, and every string survives
    o = render_json(&tr, AM_FMT_VERBOSE_JSON, NULL);
    if (o) check_verbose("hand verbose_json", &tr, o, "english");
    cJSON_Delete(o);
    // ... with performance: the same plus the object at the end
    o = render_json(&tr, AM_FMT_VERBOSE_JSON, &x);
    if (o) {
        cJSON *p = cJSON_DetachItemFromObjectCaseSensitive(o, "performance");
        CHECKF(n_keys(p) == 4, "verbose_json performance has %d keys", n_keys(p));
        cJSON_Delete(p);
        check_verbose("hand verbose_json + performance", &tr, o, "english");
    }
    cJSON_Delete(o);

    // task and full language names
    static const struct {
        const char *code, *name;
    } langs[] = {{"en", "english"}, {"ja", "japanese"}, {"fr", "french"}, {"yue", "cantonese"}, {"haw", "hawaiian"}};
    for (size_t i = 0; i < AM_ARRAY_LEN(langs); i++) {
        am_transcript t2 = tr;
        snprintf(t2.language, sizeof t2.language, "%s", langs[i].code);
        t2.translate = (int)(i % 2);
        o = render_json(&t2, AM_FMT_VERBOSE_JSON, NULL);
        const char *task = jstr(o, "task"), *lang = jstr(o, "language");
        CHECKF(task && !strcmp(task, t2.translate ? "translate" : "transcribe"), "%s: task", langs[i].code);
        CHECKF(lang && !strcmp(lang, langs[i].name), "%s: language '%s', want '%s'", langs[i].code,
               lang ? lang : "(none)", langs[i].name);
        cJSON_Delete(o);
    }

    // the rendered bodies are strict JSON: no raw control characters inside
    char *body = render(&tr, AM_FMT_VERBOSE_JSON, &x);
    if (body) {
        int raw_ctl = 0;
        for (const unsigned char *p = (const unsigned char *)body; *p; p++) raw_ctl |= *p < 0x20;
        CHECKF(!raw_ctl, "verbose_json has a raw control character");
        // multi-byte UTF-8 is kept as bytes, not replaced
        CHECK(strstr(body, "na\xc3\xafve \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x99\x82") != NULL);
        CHECK(strstr(body, REPLACEMENT_CHAR) == NULL);
    }
    free(body);

    // an empty transcript: empty text, no segments
    am_transcript empty = {.language = "en", .text = ""};
    o = render_json(&empty, AM_FMT_VERBOSE_JSON, NULL);
    if (o) {
        check_verbose("empty verbose_json", &empty, o, "english");
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "segments")) == 0);
    }
    cJSON_Delete(o);
    txt = render(&empty, AM_FMT_TEXT, NULL);
    CHECKF(txt && !strcmp(txt, "\n"), "empty text body '%s'", txt ? txt : "(null)");
    free(txt);
    free(want_text);
}

// ---------------------------------------------------------------- words
// A word list entry of a hand-made transcript.
#define W(text, s, e, p) {.word = (char *)(text), .start = (s), .end = (e), .probability = (p)}

// The words of o[key] against the segments' words: top-level (stripped text,
// word/start/end) or one segment's (text as is, word/start/end/probability).
static void check_word_list(const char *label, const cJSON *arr, const am_word *const *want, int n, int top_level) {
    CHECKF(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == n, "%s: %d words, want %d", label,
           cJSON_GetArraySize(arr), n);
    for (int k = 0; cJSON_IsArray(arr) && k < n && k < cJSON_GetArraySize(arr); k++) {
        const am_word *w = want[k];
        const cJSON *j = cJSON_GetArrayItem(arr, k);
        char keys[128];
        key_list(j, keys, sizeof keys);
        CHECKF(!strcmp(keys, top_level ? "word,start,end" : "word,start,end,probability"), "%s: word %d keys '%s'",
               label, k, keys);
        char *text = top_level ? strip_copy(w->word) : strdup(w->word);
        const char *t = jstr(j, "word");
        CHECKF(t && !strcmp(t, text), "%s: word %d '%s', want '%s'", label, k, t ? t : "(none)", text);
        free(text);
        double v = NAN;
        CHECKF(jnum(j, "start", &v) && v == w->start, "%s: word %d start %.17g, want %.17g", label, k, v, w->start);
        CHECKF(jnum(j, "end", &v) && v == w->end, "%s: word %d end %.17g, want %.17g", label, k, v, w->end);
        if (!top_level)
            CHECKF(jnum(j, "probability", &v) && v == w->probability, "%s: word %d probability %.17g, want %.17g",
                   label, k, v, w->probability);
    }
}

static void test_words(void) {
    // the reference's shapes: word text with its leading space, merged
    // punctuation, a word that is only a partial character, no-space scripts
    am_word w0[] = {W(" And", 0.0, 0.32, 0.5), W(" so,", 0.32, 0.78, 0.98828125),
                    W(" \"my", 1428 * 0.02, 28.6, 0.12000000000000001)};
    am_word w1[] = {W(" fellow", 28.6, 29.0, 1.0), W(" Americans.\"", 29.0, 29.5, 5.5045860069493278e-05)};
    am_word w3[] = {W("\xe6\x97\xa5\xe6\x9c\xac", 31.0, 31.5, 0.25), W("\xe8\xaa\x9e\xe3\x80\x82", 31.5, 31.5, 0.75),
                    W(" \t tab\\ \"q\"\n", 31.5, 32.0, 0.5), W("\xc2\xa0nbsp\xe3\x80\x80", 32.0, 32.25, 0.5)};
    static int32_t toks[] = {50363, 400, 50380};
    am_segment segs[] = {
        {.id = 0, .seek = 0, .start = 0.0, .end = 28.6, .text = " And so, \"my", .tokens = toks, .n_tokens = 3,
         .words = w0, .n_words = 3},
        {.id = 1, .seek = 0, .start = 28.6, .end = 29.5, .text = " fellow Americans.\"", .tokens = toks, .n_tokens = 3,
         .words = w1, .n_words = 2},
        // cleared (instantaneous or blank) segments have no words: "words": []
        {.id = 2, .seek = 2950, .start = 29.5, .end = 29.5, .text = "", .tokens = toks, .n_tokens = 0},
        {.id = 3, .seek = 2950, .start = 31.0, .end = 32.25, .text = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x80\x82",
         .tokens = toks, .n_tokens = 3, .words = w3, .n_words = 4},
    };
    const int n_segs = (int)AM_ARRAY_LEN(segs);
    am_transcript tr = {.language = "en", .duration = 33.0, .text = " And so, \"my fellow Americans.\"",
                        .segments = segs, .n_segments = n_segs};
    const am_word *all[16];
    int n_all = 0;
    for (int i = 0; i < n_segs; i++)
        for (int k = 0; k < segs[i].n_words; k++) all[n_all++] = &segs[i].words[k];
    char keys[256];

    // words and segments (granularities ["word", "segment"]): the top-level
    // words, then the segments, each with its own words last
    am_format_extra both = {.with_words = 1};
    cJSON *o = render_json(&tr, AM_FMT_VERBOSE_JSON, &both);
    if (o) {
        key_list(o, keys, sizeof keys);
        CHECKF(!strcmp(keys, "task,language,duration,text,words,segments,usage"), "words + segments: keys '%s'", keys);
        check_word_list("top-level words", cJSON_GetObjectItemCaseSensitive(o, "words"), all, n_all, 1);
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(o, "segments");
        CHECKF(cJSON_GetArraySize(js) == n_segs, "words + segments: %d segments", cJSON_GetArraySize(js));
        for (int i = 0; i < n_segs && i < cJSON_GetArraySize(js); i++) {
            const cJSON *j = cJSON_GetArrayItem(js, i);
            key_list(j, keys, sizeof keys);
            CHECKF(!strcmp(keys, "id,seek,start,end,text,tokens,temperature,avg_logprob,compression_ratio,"
                                 "no_speech_prob,words"),
                   "segment %d keys '%s'", i, keys);
            const am_word *sw[8];
            for (int k = 0; k < segs[i].n_words; k++) sw[k] = &segs[i].words[k];
            char label[64];
            snprintf(label, sizeof label, "segment %d words", i);
            check_word_list(label, cJSON_GetObjectItemCaseSensitive(j, "words"), sw, segs[i].n_words, 0);
        }
        // the segment part is exactly the rendering without words, plus the words
        cJSON *plain = render_json(&tr, AM_FMT_VERBOSE_JSON, NULL);
        cJSON_DeleteItemFromObjectCaseSensitive(o, "words");
        cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "segments"))
            cJSON_DeleteItemFromObjectCaseSensitive(it, "words");
        CHECKF(plain && cJSON_Compare(o, plain, 1), "words + segments, words removed, differs from plain verbose_json");
        cJSON_Delete(plain);
    }
    cJSON_Delete(o);
    // the top-level word text is stripped (OpenAI's API: "And", not " And")
    char *body = render(&tr, AM_FMT_VERBOSE_JSON, &both);
    if (body) {
        CHECKF(strstr(body, "\"words\":[{\"word\":\"And\",\"start\":0,\"end\":0.32}") != NULL,
               "top-level words text: %.200s", body);
        CHECKF(strstr(body, "{\"word\":\" And\",\"start\":0,\"end\":0.32,\"probability\":0.5}") != NULL,
               "segment words text: %.300s", body);
        CHECKF(strstr(body, "\"word\":\"tab\\\\ \\\"q\\\"\"") != NULL, "escaped stripped word: %.600s", body);
        CHECKF(strstr(body, "\"start\":28.560000000000002") != NULL, "word start does not round-trip: %.600s", body);
        CHECKF(strstr(body, "\"words\":[]") != NULL, "the cleared segment has no empty words list: %.600s", body);
        int raw_ctl = 0;
        for (const unsigned char *p = (const unsigned char *)body; *p; p++) raw_ctl |= *p < 0x20;
        CHECKF(!raw_ctl, "verbose_json with words has a raw control character");
    }
    free(body);

    // words only (granularities ["word"]): no segments at all
    am_format_extra only = {.with_words = 1, .without_segments = 1};
    o = render_json(&tr, AM_FMT_VERBOSE_JSON, &only);
    if (o) {
        key_list(o, keys, sizeof keys);
        CHECKF(!strcmp(keys, "task,language,duration,text,words,usage"), "words only: keys '%s'", keys);
        check_word_list("words only", cJSON_GetObjectItemCaseSensitive(o, "words"), all, n_all, 1);
        const char *t = jstr(o, "text");
        CHECKF(t && !strcmp(t, "And so, \"my fellow Americans.\""), "words only: text '%s'", t ? t : "(none)");
    }
    cJSON_Delete(o);
    // ... with performance: the object stays last
    am_format_extra only_perf = {.with_words = 1, .without_segments = 1, .with_performance = 1,
                                 .processing_time_s = 1.5, .mode = "batched"};
    o = render_json(&tr, AM_FMT_VERBOSE_JSON, &only_perf);
    if (o) {
        key_list(o, keys, sizeof keys);
        CHECKF(!strcmp(keys, "task,language,duration,text,words,usage,performance"), "words only + performance: keys '%s'",
               keys);
        double v;
        CHECK(jnum(cJSON_GetObjectItemCaseSensitive(o, "performance"), "processing_time_s", &v) && v == 1.5);
    }
    cJSON_Delete(o);
    am_format_extra both_perf = {.with_words = 1, .with_performance = 1, .processing_time_s = 1.5, .mode = "cli"};
    o = render_json(&tr, AM_FMT_VERBOSE_JSON, &both_perf);
    if (o) {
        key_list(o, keys, sizeof keys);
        CHECKF(!strcmp(keys, "task,language,duration,text,words,segments,usage,performance"),
               "words + segments + performance: keys '%s'", keys);
    }
    cJSON_Delete(o);

    // words not asked for: the transcript's words are not shown
    o = render_json(&tr, AM_FMT_VERBOSE_JSON, NULL);
    if (o) check_verbose("verbose_json of a transcript with words, words not asked for", &tr, o, "english");
    cJSON_Delete(o);
    am_format_extra perf = {.with_performance = 1, .processing_time_s = 1.5, .mode = "cli"};
    o = render_json(&tr, AM_FMT_VERBOSE_JSON, &perf);
    if (o) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "performance");
        check_verbose("verbose_json + performance of a transcript with words", &tr, o, "english");
    }
    cJSON_Delete(o);

    // json, text, srt and vtt ignore words: byte for byte the plain rendering
    for (am_format f = AM_FMT_JSON; f <= AM_FMT_VTT; f++) {
        char *plain = render(&tr, f, NULL), *with = render(&tr, f, &both), *wonly = render(&tr, f, &only);
        CHECKF(plain && with && wonly && !strcmp(plain, with) && !strcmp(plain, wonly),
               "%s with words differs from without:\n%s\n---\n%s", am_format_name(f), plain ? plain : "(null)",
               with ? with : "(null)");
        free(plain);
        free(with);
        free(wonly);
    }

    // no words anywhere: empty lists
    am_transcript empty = {.language = "en", .text = ""};
    o = render_json(&empty, AM_FMT_VERBOSE_JSON, &both);
    if (o) {
        key_list(o, keys, sizeof keys);
        CHECKF(!strcmp(keys, "task,language,duration,text,words,segments,usage"), "empty transcript with words: keys '%s'",
               keys);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "words")) == 0);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "segments")) == 0);
    }
    cJSON_Delete(o);
    am_transcript nowords = tr;
    am_segment plain_segs[AM_ARRAY_LEN(segs)];
    memcpy(plain_segs, segs, sizeof segs);
    for (int i = 0; i < n_segs; i++) plain_segs[i].words = NULL, plain_segs[i].n_words = 0;
    nowords.segments = plain_segs;
    o = render_json(&nowords, AM_FMT_VERBOSE_JSON, &both);
    if (o) {
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "words")) == 0);
        const cJSON *it;
        int empty_lists = 0;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "segments")) {
            const cJSON *ws = cJSON_GetObjectItemCaseSensitive(it, "words");
            empty_lists += cJSON_IsArray(ws) && cJSON_GetArraySize(ws) == 0;
        }
        CHECKF(empty_lists == n_segs, "segments without words: %d of %d have \"words\": []", empty_lists, n_segs);
    }
    cJSON_Delete(o);
}
#undef W

// ---------------------------------------------------------------- numbers
// JSON numbers must read back as the very same doubles, as Python's json
// (shortest repr that round-trips) writes them: the reference's segment end
// 0.0 + 1428 * 0.02 is 28.560000000000002, not 28.56.
static void test_numbers(void) {
    static const double values[] = {
        1428 * 0.02,                // 28.560000000000002
        0.1 * 1.2,                  // 0.12
        0.12000000000000001,        // one ulp above 0.12
        0.6000000000000001,         // 3 * 0.2, a fallback temperature
        1.0000000000000002,         // 0.4 + 3 * 0.2
        -0.30000000000000004,       // 0.1 + 0.2, negated
        -1.2345678901234567,        // 17 significant digits
        5.5045860069493278e-05,     // a no_speech_prob
        1e-300,                     // tiny
        123456789.123456789,        // large
    };
    const int n = (int)AM_ARRAY_LEN(values);
    am_segment segs[AM_ARRAY_LEN(values)];
    for (int i = 0; i < n; i++)
        segs[i] = (am_segment){.id = i, .seek = 0, .start = values[i], .end = values[(i + 1) % n], .text = " x",
                               .temperature = values[(i + 2) % n], .avg_logprob = values[(i + 3) % n],
                               .compression_ratio = values[(i + 4) % n], .no_speech_prob = values[(i + 5) % n]};
    am_transcript tr = {.language = "en", .duration = values[0], .text = " x", .segments = segs, .n_segments = n};
    cJSON *o = render_json(&tr, AM_FMT_VERBOSE_JSON, NULL);
    if (!o) return;
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(o, "segments");
    int bad = 0;
    for (int i = 0; i < n && i < cJSON_GetArraySize(js); i++) {
        const cJSON *j = cJSON_GetArrayItem(js, i);
        static const char *keys[] = {"start", "end", "temperature", "avg_logprob", "compression_ratio",
                                     "no_speech_prob"};
        for (int k = 0; k < 6; k++) {
            double v = NAN;
            const double want = values[(i + k) % n];
            if (jnum(j, keys[k], &v) && v == want) continue;
            if (bad++ < 4)
                CHECKF(0, "verbose_json %s %.17g reads back as %.17g (a JSON number must round-trip exactly)",
                       keys[k], want, v);
        }
    }
    if (bad > 4) CHECKF(0, "... %d values in all do not round-trip", bad);
    double d = NAN;
    CHECKF(jnum(o, "duration", &d) && d == values[0], "duration %.17g reads back as %.17g", values[0], d);
    cJSON_Delete(o);
}

// ---------------------------------------------------------------- real model
typedef struct {
    am_model *m;
    am_tokenizer *tok;
    am_decoding *dc;
    am_mel *mel;
} model_ctx;

static int load_model(model_ctx *c) {
    char path[1024];
    memset(c, 0, sizeof *c);
    if (!am_test_find("fixtures/ggml-test-tiny.en.bin", path, sizeof path)) {
        SKIP_CASE("tiny.en", "ggml-test-tiny.en.bin not found (set AMANUENSIS_TEST_DATA to the shared dir)");
        return 0;
    }
    c->m = am_model_load(path);
    if (c->m) c->tok = am_tokenizer_create(c->m->vocab_bytes, c->m->vocab_len, c->m->n_file_vocab, c->m->hp.n_vocab);
    if (c->tok) c->dc = am_decoding_create(c->m, c->tok);
    if (c->dc) c->mel = am_mel_create(c->m->mel_filters, c->m->hp.n_mels);
    CHECKF(c->mel != NULL, "model setup: %s", am_last_error());
    return c->mel != NULL;
}

static void free_model(model_ctx *c) {
    am_mel_free(c->mel);
    am_decoding_free(c->dc);
    am_tokenizer_free(c->tok);
    am_model_free(c->m);
}

// A character whose UTF-8 bytes span two BPE tokens, decoded whole, survives
// every format.
static void test_split_utf8(const model_ctx *c) {
    static const char *candidates[] = {"\xf0\x9f\x99\x82",              // 🙂
                                       " \xf0\x9f\x8e\x89 party",       // 🎉
                                       " \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", // 日本語
                                       " \xe2\x9c\x93 done"};           // ✓
    for (size_t ci = 0; ci < AM_ARRAY_LEN(candidates); ci++) {
        const char *s = candidates[ci];
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(am_tokenizer_encode(c->tok, s, strlen(s), &ids, &n) == 0);
        // a token that is not valid UTF-8 on its own (decodes to U+FFFD)
        int split = 0;
        for (size_t i = 0; i < n && !split; i++) {
            char *one = NULL;
            if (am_tokenizer_decode_alloc(c->tok, ids + i, 1, AM_DECODE_TEXT, &one, NULL) == 0)
                split = strstr(one, REPLACEMENT_CHAR) != NULL;
            free(one);
        }
        if (!split) {
            free(ids);
            continue;
        }
        // the transcript: one segment of these tokens between timestamps
        const int32_t tb = am_tokenizer_specials(c->tok)->timestamp_begin;
        int32_t *toks = malloc((n + 2) * sizeof *toks);
        toks[0] = tb;
        memcpy(toks + 1, ids, n * sizeof *ids);
        toks[n + 1] = tb + 50;
        char *text = NULL;
        CHECK(am_tokenizer_decode_alloc(c->tok, toks, n + 2, AM_DECODE_TEXT, &text, NULL) == 0);
        CHECKF(text && !strcmp(text, s), "decode of the split tokens: '%s', want '%s'", text ? text : "(null)", s);
        am_segment seg = {.id = 0, .seek = 0, .start = 0.0, .end = 1.0, .text = text, .tokens = toks,
                          .n_tokens = (int)n + 2, .temperature = 0.0, .avg_logprob = -0.5,
                          .compression_ratio = 1.0, .no_speech_prob = 0.01};
        am_transcript tr = {.language = "en", .duration = 1.0, .text = text, .segments = &seg, .n_segments = 1};
        char *want = strip_copy(s);
        for (am_format f = AM_FMT_JSON; f <= AM_FMT_VERBOSE_JSON; f++) {
            char *body = render(&tr, f, NULL);
            if (!body) continue;
            CHECKF(strstr(body, want) != NULL, "%s output lacks '%s': %s", am_format_name(f), want, body);
            CHECKF(strstr(body, REPLACEMENT_CHAR) == NULL, "%s output has U+FFFD: %s", am_format_name(f), body);
            if (f == AM_FMT_JSON || f == AM_FMT_VERBOSE_JSON) {
                cJSON *o = cJSON_Parse(body);
                const char *t = jstr(o, "text");
                CHECKF(t && !strcmp(t, want), "%s text after parse '%s'", am_format_name(f), t ? t : "(none)");
                cJSON_Delete(o);
            }
            free(body);
        }
        printf("  split UTF-8: '%s' is %zu tokens, one of them a partial character\n", want, n);
        free(want);
        free(text);
        free(toks);
        free(ids);
        return;
    }
    SKIP_CASE("split utf-8", "no candidate string has a character split across tokens in this vocabulary");
}

// Found by fuzz/fuzz_format: include[]=logprobs over a segment holding a token
// id outside the vocabulary (here -1, with its logprob) failed with AM_ENOMEM
// "out of memory rendering the transcript"; the error is now the tokenizer's
// AM_ERANGE naming the id, and nothing is returned.
static void test_fuzz_logprobs_bad_id(const model_ctx *c) {
    int32_t toks[] = {50363, 1375, -1, 50463};
    float lps[] = {-0.1f, -0.2f, -0.3f, -0.4f};
    am_segment seg = {.start = 0.0, .end = 2.0, .text = " So", .tokens = toks, .n_tokens = 4, .token_logprobs = lps};
    am_transcript tr = {.language = "en", .duration = 2.0, .text = " So", .segments = &seg, .n_segments = 1};
    const am_format_extra x = {.logprobs = c->tok};
    char *out = (char *)"untouched";
    am_set_error(AM_OK, "%s", "");
    const int rc = am_format_render(&tr, AM_FMT_JSON, &x, &out, NULL);
    CHECKF(rc == AM_ERANGE, "logprobs of token -1: rc %d (%s), want AM_ERANGE", rc, am_last_error());
    CHECKF(strstr(am_last_error(), "-1") != NULL, "the message names the id: '%s'", am_last_error());
    CHECK(out != NULL && !strcmp(out, "untouched"));
    // without logprobs (and in verbose_json, which has none) the same transcript renders
    char *ok = render(&tr, AM_FMT_JSON, NULL);
    free(ok);
    ok = render(&tr, AM_FMT_VERBOSE_JSON, &x);
    free(ok);
}

// One real transcript (jfk.wav, greedy) rendered in every format.
static void test_real(const model_ctx *c) {
    char path[1024];
    if (!am_test_find("audio/jfk.wav", path, sizeof path)) {
        SKIP_CASE("real transcript", "jfk.wav not found");
        return;
    }
    float *pcm = NULL;
    size_t ns = 0;
    am_mel_result r;
    CHECKF(am_audio_decode_file(path, NULL, &pcm, &ns) == 0, "decode jfk.wav: %s", am_last_error());
    if (!pcm) return;
    const int mrc = am_mel_compute(c->mel, pcm, ns, &r);
    am_audio_free(pcm);
    CHECK(mrc == 0);
    if (mrc) return;
    am_transcribe_params p = am_transcribe_default_params();
    p.decode.temperature_inc = 0;
    am_job *job = am_job_create(c->dc, &r, &p);
    am_engine *eng = am_engine_create(c->dc, NULL);
    CHECKF(job && eng, "job/engine: %s", am_last_error());
    if (job && eng) {
        CHECK(am_engine_add(eng, job) == 0);
        CHECKF(am_engine_run(eng, 0) == 0, "engine: %s", am_last_error());
    }
    const am_transcript *tr = job ? am_job_transcript(job) : NULL;
    CHECK(tr != NULL);
    if (tr) {
        CHECK(tr->n_segments > 0);
        CHECK(!strcmp(tr->language, "en"));
        CHECK(fabs(tr->duration - 11.0) < 1e-9);
        cJSON *o = render_json(tr, AM_FMT_VERBOSE_JSON, NULL);
        if (o) check_verbose("jfk verbose_json", tr, o, "english");
        cJSON_Delete(o);
        o = render_json(tr, AM_FMT_JSON, NULL);
        char *want_text = strip_copy(tr->text);
        const char *t = o ? jstr(o, "text") : NULL;
        CHECK(o && n_keys(o) == 2 && t && !strcmp(t, want_text));
        cJSON_Delete(o);
        char *txt = render(tr, AM_FMT_TEXT, NULL);
        CHECK(txt && strlen(txt) == strlen(want_text) + 1 && !strncmp(txt, want_text, strlen(want_text)));
        free(txt);
        free(want_text);
        char *srt = render(tr, AM_FMT_SRT, NULL);
        char *vtt = render(tr, AM_FMT_VTT, NULL);
        if (srt) check_subtitle_shape("jfk srt", tr, srt, 0);
        if (vtt) check_subtitle_shape("jfk vtt", tr, vtt, 1);
        printf("  jfk: %d segments, text '%.60s...'\n", tr->n_segments, tr->text);
        free(srt);
        free(vtt);
    }
    am_engine_free(eng);
    am_job_free(job);
}

int main(void) {
    test_timestamps();
    test_parse();
    test_subtitles();
    test_json();
    test_words();
    test_numbers();
    model_ctx c;
    if (load_model(&c)) {
        test_split_utf8(&c);
        test_fuzz_logprobs_bad_id(&c);
        test_real(&c);
    }
    free_model(&c);
    return am_test_finish("test_format", 1);
}
