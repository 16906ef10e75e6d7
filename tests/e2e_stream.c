// e2e_stream.c — streaming (stream=true, server-sent events), VAD chunking
// (chunking_strategy), usage, include[]=logprobs, without_timestamps and the
// 400s of the rest of OpenAI's transcription API, against the real server on
// loopback with libcurl.
//
//   - SSE framing: "data: {json}\n\n" events, Content-Type text/event-stream;
//     transcript.text.delta events, then exactly one transcript.text.done last;
//     the deltas concatenate to the done event's text, which equals the text of
//     the same request without streaming (short clip, long file with several
//     windows, VAD chunking); logprobs of the deltas and the done event equal
//     the non-streaming json's.
//   - A client that hangs up mid-stream cancels its work: the server's pending
//     results and decoding windows go back to zero, "cancelled" grows.
//   - VAD chunking on a long file of speech and silences: segments (and words)
//     on the original timeline, inside the speech regions, in order; silence
//     only gives an empty transcript and encodes no window.
//   - usage {"type":"duration","seconds"} in json and verbose_json; logprobs
//     entries match the text tokens; without_timestamps decodes no timestamps.
//   - every 400: stream with verbose_json/srt/vtt or on translations,
//     diarized_json, known_speaker_names[], include[] misuse, bad
//     chunking_strategy, bad stream / without_timestamps values.
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>

#include "am_audio.h"
#include "server.h"

static char g_model[1024], g_vad[1024];
static unsigned char *g_jfk; // the jfk.wav file
static size_t g_jfk_len;
static float *g_jfk_pcm; // its samples
static size_t g_jfk_n;

// ---------------------------------------------------------------- audio

// A WAV image of x (n,), or NULL.
static unsigned char *wav_or_null(const float *x, size_t n, size_t *len) {
    unsigned char *w = NULL;
    return am_audio_wav_encode(x, n, &w, len) ? NULL : w;
}

// jfk.wav repeated with silences: speech at offsets[k] seconds (n_rep times),
// total seconds long. Returns the WAV.
static unsigned char *speech_file(const double *offsets, int n_rep, double total, size_t *len) {
    const size_t n = (size_t)(total * 16000);
    float *x = calloc(n, sizeof *x);
    if (!x) return NULL;
    for (int k = 0; k < n_rep; k++) {
        const size_t at = (size_t)(offsets[k] * 16000);
        for (size_t i = 0; i < g_jfk_n && at + i < n; i++) x[at + i] = g_jfk_pcm[i];
    }
    unsigned char *w = wav_or_null(x, n, len);
    free(x);
    return w;
}

// ---------------------------------------------------------------- requests
typedef struct {
    long status;
    char ctype[128];
    http_body body;
    size_t abort_after; // > 0: hang up once this many body bytes arrived
} reply;

static size_t on_header(char *p, size_t size, size_t n, void *user) {
    reply *r = user;
    if (!strncasecmp(p, "Content-Type:", 13)) {
        const char *v = p + 13;
        while (*v == ' ') v++;
        size_t k = 0;
        while (v[k] && v[k] != '\r' && v[k] != '\n' && k + 1 < sizeof r->ctype) k++;
        memcpy(r->ctype, v, k);
        r->ctype[k] = 0;
    }
    return size * n;
}

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    reply *r = user;
    if (http_body_write(p, size, n, &r->body) != size * n) return 0;
    if (r->abort_after && r->body.len >= r->abort_after) return 0; // hang up
    return size * n;
}

// POST file + fields (name, value pairs; NULL-terminated) to endpoint.
static void post(int port, const char *endpoint, const void *file, size_t size, const char *const *fields, reply *r) {
    http_upload u;
    http_upload_init(&u, port, endpoint, file, size, "audio.wav", fields);
    curl_easy_setopt(u.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(u.h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(u.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(u.h, CURLOPT_HEADERDATA, r);
    curl_easy_perform(u.h);
    curl_easy_getinfo(u.h, CURLINFO_RESPONSE_CODE, &r->status);
    http_upload_free(&u);
}

static void reply_free(reply *r) {
    free(r->body.data);
    memset(r, 0, sizeof *r);
}

static cJSON *json_of(const reply *r) { return r->body.data ? cJSON_Parse(r->body.data) : NULL; }

// ---------------------------------------------------------------- SSE
typedef struct {
    int ok;          // framing as expected
    int n_delta, n_done, n_error;
    char *text;      // concatenated deltas
    cJSON *done;     // the done event
    cJSON *logprobs; // the deltas' logprobs concatenated
} stream;

static void stream_free(stream *s) {
    free(s->text);
    cJSON_Delete(s->done);
    cJSON_Delete(s->logprobs);
    memset(s, 0, sizeof *s);
}

// Parse an SSE body: every event one "data: " line and a blank line; deltas
// before one done event, which comes last.
static void parse_stream(const char *body, stream *s) {
    memset(s, 0, sizeof *s);
    s->ok = 1;
    s->text = calloc(1, 1);
    s->logprobs = cJSON_CreateArray();
    size_t tlen = 0;
    const char *p = body ? body : "";
    while (*p) {
        const char *nl = strstr(p, "\n\n");
        if (strncmp(p, "data: ", 6) || !nl || memchr(p, '\n', (size_t)(nl - p))) {
            s->ok = 0;
            break;
        }
        cJSON *ev = cJSON_ParseWithLength(p + 6, (size_t)(nl - p - 6));
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
        if (!cJSON_IsString(type) || s->n_done) s->ok = 0; // nothing after the done event
        else if (!strcmp(type->valuestring, "transcript.text.delta")) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev, "delta");
            if (!cJSON_IsString(d)) s->ok = 0;
            else {
                const size_t n = strlen(d->valuestring);
                s->text = realloc(s->text, tlen + n + 1);
                memcpy(s->text + tlen, d->valuestring, n + 1);
                tlen += n;
            }
            const cJSON *lp = cJSON_GetObjectItemCaseSensitive(ev, "logprobs");
            for (const cJSON *e = lp ? lp->child : NULL; e; e = e->next)
                cJSON_AddItemToArray(s->logprobs, cJSON_Duplicate(e, 1));
            s->n_delta++;
        } else if (!strcmp(type->valuestring, "transcript.text.done")) {
            s->n_done++;
            s->done = cJSON_Duplicate(ev, 1);
        } else if (!strcmp(type->valuestring, "error")) {
            s->n_error++;
        } else {
            s->ok = 0;
        }
        cJSON_Delete(ev);
        p = nl + 2;
    }
    s->ok &= s->n_done == 1 && s->n_error == 0;
}

static const char *str_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// The text of a non-streaming json response.
static char *plain_text(int port, const void *file, size_t len, const char *const *fields, cJSON **logprobs) {
    reply r = {0};
    post(port, "/v1/audio/transcriptions", file, len, fields, &r);
    cJSON *o = json_of(&r);
    const char *t = str_of(o, "text");
    if (!o && r.status == 200 && r.body.data) { // response_format text: the text and a newline
        t = r.body.data;
        if (r.body.len && t[r.body.len - 1] == '\n') r.body.data[r.body.len - 1] = 0;
    }
    CHECKF(r.status == 200 && t, "request: %ld %s", r.status, r.body.data ? r.body.data : "");
    char *out = strdup(t ? t : "");
    if (logprobs) *logprobs = cJSON_DetachItemFromObjectCaseSensitive(o, "logprobs");
    cJSON_Delete(o);
    reply_free(&r);
    return out;
}

// A streamed request compared with the same request without streaming.
static void check_stream(int port, const char *label, const void *file, size_t len, const char *const *extra,
                         int min_deltas) {
    const char *f_plain[16] = {NULL}, *f_stream[18] = {"stream", "true"};
    int n = 0;
    for (; extra && extra[n]; n++) {
        f_plain[n] = extra[n];
        f_stream[n + 2] = extra[n];
    }
    int logprobs = 0;
    for (int i = 0; i + 1 < n; i += 2) logprobs |= !strcmp(extra[i], "include[]");
    cJSON *lp_plain = NULL;
    char *want = plain_text(port, file, len, f_plain, &lp_plain);
    reply r = {0};
    const double t0 = am_time_s();
    post(port, "/v1/audio/transcriptions", file, len, f_stream, &r);
    stream s;
    parse_stream(r.body.data, &s);
    CHECKF(r.status == 200 && !strcmp(r.ctype, "text/event-stream"), "%s: status %ld, Content-Type %s", label,
           r.status, r.ctype);
    CHECKF(s.ok, "%s: malformed stream (%d deltas, %d done, %d errors): %.300s", label, s.n_delta, s.n_done,
           s.n_error, r.body.data ? r.body.data : "");
    CHECKF(s.n_delta >= min_deltas, "%s: %d deltas, expected >= %d", label, s.n_delta, min_deltas);
    const char *done_text = str_of(s.done, "text");
    CHECKF(done_text && !strcmp(done_text, want), "%s: done text differs from the non-streaming text\n  done: %s\n  "
           "json: %s", label, done_text ? done_text : "(none)", want);
    CHECKF(!strcmp(s.text, want), "%s: deltas do not concatenate to the text\n  deltas: %s\n  json:   %s", label,
           s.text, want);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(s.done, "usage");
    CHECKF(str_of(usage, "type") && !strcmp(str_of(usage, "type"), "duration") &&
               cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(usage, "seconds")),
           "%s: done event without usage", label);
    if (logprobs) {
        const cJSON *done_lp = cJSON_GetObjectItemCaseSensitive(s.done, "logprobs");
        CHECKF(lp_plain && cJSON_Compare(done_lp, lp_plain, 1), "%s: done logprobs differ from the json's", label);
        CHECKF(lp_plain && cJSON_Compare(s.logprobs, lp_plain, 1), "%s: the deltas' logprobs (%d) differ from the "
               "json's (%d)", label, cJSON_GetArraySize(s.logprobs), cJSON_GetArraySize(lp_plain));
    }
    printf("%s: %d deltas, %zu bytes of text, %.2f s\n", label, s.n_delta, strlen(want), am_time_s() - t0);
    stream_free(&s);
    cJSON_Delete(lp_plain);
    free(want);
    reply_free(&r);
}

static void expect_400(int port, const char *endpoint, const char *const *fields, const char *param,
                       const char *label) {
    reply r = {0};
    post(port, endpoint, g_jfk, g_jfk_len, fields, &r);
    cJSON *o = json_of(&r);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const char *got = str_of(e, "param");
    CHECKF(r.status == 400 && e && (param ? got && !strcmp(got, param) : got == NULL), "%s: %ld param %s: %s", label,
           r.status, got ? got : "null", r.body.data ? r.body.data : "");
    cJSON_Delete(o);
    reply_free(&r);
}

static double stat_number(int port, const char *key, const char *sub) {
    char *body = NULL;
    http_get(port, "/stats/batching", &body);
    cJSON *o = cJSON_Parse(body);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (sub) v = cJSON_GetObjectItemCaseSensitive(v, sub);
    const double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(o);
    free(body);
    return x;
}

// ---------------------------------------------------------------- cases
static void case_errors(int port) {
    const char *T = "/v1/audio/transcriptions";
    const struct {
        const char *f[5];
        const char *param, *label;
    } cases[] = {
        {{"stream", "true", "response_format", "verbose_json"}, "stream", "stream + verbose_json"},
        {{"stream", "true", "response_format", "srt"}, "stream", "stream + srt"},
        {{"stream", "true", "response_format", "vtt"}, "stream", "stream + vtt"},
        {{"stream", "maybe"}, "stream", "stream=maybe"},
        {{"response_format", "diarized_json"}, "response_format", "diarized_json"},
        {{"known_speaker_names[]", "alice"}, "known_speaker_names[]", "known_speaker_names[]"},
        {{"include[]", "logprobs", "response_format", "verbose_json"}, "include", "logprobs + verbose_json"},
        {{"include[]", "logprobs", "response_format", "text"}, "include", "logprobs + text"},
        {{"include[]", "tokens"}, "include", "include[]=tokens"},
        {{"chunking_strategy", "sometimes"}, "chunking_strategy", "chunking_strategy=sometimes"},
        {{"chunking_strategy", "{\"type\":\"client_vad\"}"}, "chunking_strategy", "chunking type"},
        {{"chunking_strategy", "{\"type\":\"server_vad\",\"threshold\":2}"}, "chunking_strategy", "threshold 2"},
        {{"chunking_strategy", "{\"type\":\"server_vad\",\"silence_duration_ms\":-5}"}, "chunking_strategy",
         "negative silence"},
        {{"chunking_strategy", "{\"type\":\"server_vad\",\"bogus\":1}"}, "chunking_strategy", "unknown key"},
        {{"chunking_strategy", "{\"type\":\"server_vad\""}, "chunking_strategy", "truncated JSON"},
        {{"without_timestamps", "perhaps"}, "without_timestamps", "without_timestamps=perhaps"},
        {{"chunking_strategy[type]", "client_vad"}, "chunking_strategy", "chunking_strategy[type]=client_vad"},
        {{"chunking_strategy[type]", "server_vad", "chunking_strategy[threshold]", "high"}, "chunking_strategy",
         "chunking_strategy[threshold]=high"},
        {{"chunking_strategy[type]", "server_vad", "chunking_strategy[colour]", "1"}, "chunking_strategy",
         "chunking_strategy[colour]"},
        {{"chunking_strategy[type]", "server_vad", "chunking_strategy", "auto"}, "chunking_strategy",
         "chunking_strategy in both forms"},
    };
    for (size_t i = 0; i < AM_ARRAY_LEN(cases); i++) expect_400(port, T, cases[i].f, cases[i].param, cases[i].label);
    const char *tr[] = {"stream", "true", NULL};
    expect_400(port, "/v1/audio/translations", tr, "stream", "stream on translations");
}

static void case_api(int port) {
    // usage in json and verbose_json
    const char *fmts[] = {"json", "verbose_json"};
    for (int i = 0; i < 2; i++) {
        const char *f[] = {"response_format", fmts[i], "temperature_inc", "0", NULL};
        reply r = {0};
        post(port, "/v1/audio/transcriptions", g_jfk, g_jfk_len, f, &r);
        cJSON *o = json_of(&r);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(u, "seconds");
        CHECKF(r.status == 200 && str_of(u, "type") && !strcmp(str_of(u, "type"), "duration") && cJSON_IsNumber(sec) &&
                   sec->valuedouble == 11,
               "%s: usage: %s", fmts[i], r.body.data ? r.body.data : "");
        cJSON_Delete(o);
        reply_free(&r);
    }
    // logprobs: one entry per text token of the segments; their bytes make the segments' text
    const char *fv[] = {"response_format", "verbose_json", "temperature_inc", "0", NULL};
    const char *fl[] = {"include[]", "logprobs", "temperature_inc", "0", NULL};
    reply rv = {0}, rl = {0};
    post(port, "/v1/audio/transcriptions", g_jfk, g_jfk_len, fv, &rv);
    post(port, "/v1/audio/transcriptions", g_jfk, g_jfk_len, fl, &rl);
    cJSON *v = json_of(&rv), *l = json_of(&rl);
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(l, "logprobs");
    int n_text = 0;
    char segtext[8192] = "";
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(v, "segments");
    for (const cJSON *sg = segs ? segs->child : NULL; sg; sg = sg->next) {
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(sg, "tokens");
        for (const cJSON *t = toks ? toks->child : NULL; t; t = t->next) n_text += t->valueint < 50256;
        strncat(segtext, str_of(sg, "text") ? str_of(sg, "text") : "", sizeof segtext - strlen(segtext) - 1);
    }
    char bytes[8192];
    size_t nb = 0;
    int ok = cJSON_IsArray(lp);
    for (const cJSON *e = lp ? lp->child : NULL; e && ok; e = e->next) {
        const cJSON *lpv = cJSON_GetObjectItemCaseSensitive(e, "logprob");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "bytes");
        ok &= str_of(e, "token") != NULL && cJSON_IsNumber(lpv) && lpv->valuedouble <= 0 && cJSON_IsArray(b);
        for (const cJSON *x = b ? b->child : NULL; x && nb + 1 < sizeof bytes; x = x->next) bytes[nb++] = (char)x->valueint;
    }
    bytes[nb] = 0;
    CHECKF(ok && cJSON_GetArraySize(lp) == n_text, "logprobs: %d entries for %d text tokens", cJSON_GetArraySize(lp),
           n_text);
    CHECKF(!strcmp(bytes, segtext), "logprobs bytes differ from the segments' text\n  %s\n  %s", bytes, segtext);
    CHECKF(!strcmp(str_of(l, "text") ? str_of(l, "text") : "", str_of(v, "text") ? str_of(v, "text") : "?"),
           "logprobs request text differs");
    cJSON_Delete(v), cJSON_Delete(l);
    reply_free(&rv), reply_free(&rl);
    // without_timestamps: no timestamp token, one segment per window
    const char *fw[] = {"response_format", "verbose_json", "without_timestamps", "true", "temperature_inc", "0", NULL};
    reply rw = {0};
    post(port, "/v1/audio/transcriptions", g_jfk, g_jfk_len, fw, &rw);
    cJSON *w = json_of(&rw);
    segs = cJSON_GetObjectItemCaseSensitive(w, "segments");
    int n_ts = 0;
    for (const cJSON *sg = segs ? segs->child : NULL; sg; sg = sg->next) {
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(sg, "tokens");
        for (const cJSON *t = toks ? toks->child : NULL; t; t = t->next) n_ts += t->valueint > 50256;
    }
    CHECKF(rw.status == 200 && cJSON_GetArraySize(segs) == 1 && n_ts == 0,
           "without_timestamps: %d segments, %d timestamp tokens", cJSON_GetArraySize(segs), n_ts);
    cJSON_Delete(w);
    reply_free(&rw);
}

// Speech regions of the long test file (seconds): jfk (11 s) at these offsets.
static const double k_offsets[] = {2.0, 31.0, 57.0, 70.5};
#define LONG_S 95.0

static void case_vad(int port, const unsigned char *file, size_t len) {
    const char *f[] = {"response_format", "verbose_json", "chunking_strategy", "auto", "temperature_inc", "0",
                       "timestamp_granularities[]", "word", "timestamp_granularities[]", "segment", NULL};
    const double enc0 = stat_number(port, "encoder", "windows");
    reply r = {0};
    const double t0 = am_time_s();
    post(port, "/v1/audio/transcriptions", file, len, f, &r);
    const double dt = am_time_s() - t0;
    cJSON *o = json_of(&r);
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(o, "segments");
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(o, "duration");
    CHECKF(r.status == 200 && cJSON_IsArray(segs) && cJSON_IsNumber(dur) && fabs(dur->valuedouble - LONG_S) < 0.01,
           "vad: %ld %.300s", r.status, r.body.data ? r.body.data : "");
    // Every segment's window starts inside speech (seek on the file's timeline; no window
    // in the silences), windows in order, starts at or after their window's start, and the
    // words in order from there on. (Ends are not checked: random weights emit timestamps up
    // to 30 s into a window, past the audio, as the reference does.)
    double prev = -1;
    int n = 0, inside = 1, ordered = 1, words_ok = 1;
    for (const cJSON *sg = segs ? segs->child : NULL; sg; sg = sg->next, n++) {
        const double seek = cJSON_GetObjectItemCaseSensitive(sg, "seek")->valuedouble * 0.01;
        const double st = cJSON_GetObjectItemCaseSensitive(sg, "start")->valuedouble;
        int in = 0;
        for (size_t k = 0; k < AM_ARRAY_LEN(k_offsets); k++)
            in |= seek >= k_offsets[k] - 1.0 && seek <= k_offsets[k] + 11.5;
        if (!in) printf("vad: segment %d's window starts at %.2f s, in a silence\n", n, seek);
        inside &= in;
        ordered &= seek >= prev && st >= seek - 1.0;
        prev = seek;
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(sg, "words");
        double last = seek - 1.0;
        for (const cJSON *w = ws ? ws->child : NULL; w; w = w->next) {
            const double a = cJSON_GetObjectItemCaseSensitive(w, "start")->valuedouble;
            const double b = cJSON_GetObjectItemCaseSensitive(w, "end")->valuedouble;
            words_ok &= a >= last - 1e-9 && a <= b;
            last = b;
        }
    }
    const double windows = stat_number(port, "encoder", "windows") - enc0;
    CHECKF(inside && ordered && words_ok, "vad: segments inside %d, ordered %d, words %d", inside, ordered, words_ok);
    // speech at 2-13, 31-42, 57-68 + 70.5-81.5 (one chunk): three chunks, each at least one window
    CHECKF(windows >= 3, "vad: %.0f windows encoded", windows);
    printf("vad: %d segments, %.0f windows, %.2f s\n", n, windows, dt);
    cJSON_Delete(o);
    reply_free(&r);

    // silence only: an empty transcript without encoding anything
    size_t slen = 0;
    float *zeros = calloc(16000 * 20, sizeof *zeros);
    unsigned char *silence = wav_or_null(zeros, 16000 * 20, &slen);
    free(zeros);
    const double enc1 = stat_number(port, "encoder", "windows");
    reply rs = {0};
    post(port, "/v1/audio/transcriptions", silence, slen, f, &rs);
    cJSON *so = json_of(&rs);
    CHECKF(rs.status == 200 && str_of(so, "text") && !*str_of(so, "text") &&
               cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(so, "segments")) == 0,
           "vad silence: %ld %s", rs.status, rs.body.data ? rs.body.data : "");
    CHECKF(stat_number(port, "encoder", "windows") == enc1, "vad silence: windows were encoded");
    cJSON_Delete(so);
    reply_free(&rs);
    free(silence);
    // OpenAI's server_vad object works too
    const char *fo[] = {"chunking_strategy",
                        "{\"type\":\"server_vad\",\"threshold\":0.6,\"prefix_padding_ms\":100,\"silence_duration_ms\":300}",
                        "temperature_inc", "0", NULL};
    reply ro = {0};
    post(port, "/v1/audio/transcriptions", g_jfk, g_jfk_len, fo, &ro);
    CHECKF(ro.status == 200, "server_vad object: %ld %s", ro.status, ro.body.data ? ro.body.data : "");
    // ... and flattened into form fields as OpenAI's SDKs send a dict: the same transcript
    const char *fb[] = {"chunking_strategy[type]", "server_vad", "chunking_strategy[threshold]", "0.6",
                        "chunking_strategy[prefix_padding_ms]", "100", "chunking_strategy[silence_duration_ms]", "300",
                        "temperature_inc", "0", NULL};
    reply rb = {0};
    post(port, "/v1/audio/transcriptions", g_jfk, g_jfk_len, fb, &rb);
    cJSON *jo = json_of(&ro), *jb = json_of(&rb);
    const char *to = str_of(jo, "text"), *tb = str_of(jb, "text");
    CHECKF(rb.status == 200 && to && tb && !strcmp(to, tb), "chunking_strategy[...] fields: %ld %s (object form: %s)",
           rb.status, tb ? tb : "", to ? to : "");
    cJSON_Delete(jo);
    cJSON_Delete(jb);
    reply_free(&rb);
    reply_free(&ro);
}

// A client that hangs up after the first event: its work is cancelled.
static void case_disconnect(int port, const unsigned char *file, size_t len) {
    const double cancelled0 = stat_number(port, "cancelled", NULL);
    const char *f[] = {"stream", "true", "temperature_inc", "0", NULL};
    reply r = {.abort_after = 8}; // "data: {" arrived: hang up
    post(port, "/v1/audio/transcriptions", file, len, f, &r);
    CHECKF(r.body.len >= 8, "disconnect: no event arrived before the hang-up (%zu bytes)", r.body.len);
    double pending = -1, active = -1;
    for (int i = 0; i < 200; i++) { // up to 20 s
        pending = stat_number(port, "pending_results", NULL);
        active = stat_number(port, "active_sequences", NULL);
        if (pending == 0 && active == 0) break;
        usleep(100 * 1000);
    }
    CHECKF(pending == 0 && active == 0, "disconnect: pending %.0f, active windows %.0f after the hang-up", pending,
           active);
    CHECKF(stat_number(port, "cancelled", NULL) == cancelled0 + 1, "disconnect: cancelled %.0f -> %.0f", cancelled0,
           stat_number(port, "cancelled", NULL));
    reply_free(&r);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const double t0 = am_time_s();
    char wav[1024];
    if (!am_test_find("fixtures/ggml-test-tiny.en.bin", g_model, sizeof g_model) &&
        !am_test_find("ggml-test-tiny.en.bin", g_model, sizeof g_model)) {
        SKIP_CASE("all", "ggml-test-tiny.en.bin not found");
        return am_test_finish("e2e_stream", 0);
    }
    if (!am_test_find("audio/jfk.wav", wav, sizeof wav) && !am_test_find("jfk.wav", wav, sizeof wav)) {
        SKIP_CASE("all", "jfk.wav not found");
        return am_test_finish("e2e_stream", 0);
    }
    // the VAD model ships with the repository (data/)
    snprintf(g_vad, sizeof g_vad, "%s/data/ggml-silero-v6.2.0.bin", AM_SOURCE_DIR);
    g_jfk = am_test_read_file(wav, &g_jfk_len);
    CHECK(g_jfk && am_audio_decode_file(wav, NULL, &g_jfk_pcm, &g_jfk_n) == 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_server srv;
    const char *args[] = {"--vad-model", g_vad, "--timeout", "600", "-q", NULL};
    if (server_start(&srv, g_model, args)) {
        CHECKF(0, "server did not start (log %s)", srv.log);
        return am_test_finish("e2e_stream", 1);
    }
    size_t long_len = 0, rep_len = 0;
    unsigned char *long_file = speech_file(k_offsets, (int)AM_ARRAY_LEN(k_offsets), LONG_S, &long_len);
    const double back_to_back[] = {0, 11, 22, 33, 44, 55, 66, 77, 88, 99, 110};
    unsigned char *rep_file = speech_file(back_to_back, 11, 121.0, &rep_len);

    case_errors(srv.port);
    case_api(srv.port);
    const char *fast[] = {"temperature_inc", "0", NULL};
    const char *fast_lp[] = {"temperature_inc", "0", "include[]", "logprobs", NULL};
    const char *fast_text[] = {"temperature_inc", "0", "response_format", "text", NULL};
    const char *chunked[] = {"temperature_inc", "0", "chunking_strategy", "auto", "include[]", "logprobs", NULL};
    check_stream(srv.port, "stream jfk", g_jfk, g_jfk_len, fast, 1);
    check_stream(srv.port, "stream jfk logprobs", g_jfk, g_jfk_len, fast_lp, 1);
    check_stream(srv.port, "stream jfk text", g_jfk, g_jfk_len, fast_text, 1);
    check_stream(srv.port, "stream long seek loop", long_file, long_len, fast_lp, 2);
    check_stream(srv.port, "stream long vad chunks", long_file, long_len, chunked, 1);
    case_vad(srv.port, long_file, long_len);
    case_disconnect(srv.port, rep_file, rep_len);

    CHECKF(server_stop(&srv, SIGTERM) == 0, "server exit status");
    free(long_file);
    free(rep_file);
    free(g_jfk);
    am_audio_free(g_jfk_pcm);
    curl_global_cleanup();
    printf("e2e_stream: %.1f s\n", am_time_s() - t0);
    return am_test_finish("e2e_stream", 1);
}
