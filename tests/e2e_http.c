// e2e_http.c — the real server binary end to end over HTTP (libcurl, 127.0.0.1).
//
// Starts `amanuensis serve -m <tiny.en fixture> --port 0 ...` as a child, reads
// the port from its "listening on" line and covers: every endpoint; each
// response_format; requests shaped exactly as the openai-python SDK sends them
// (curl_mime, and a hand-written httpx-style body, also dribbled in small
// chunked pieces); every error class (400 fields / audio, 401, 404, 405, 413
// by Content-Length and while streaming, 429 + Retry-After, 504, 503 while
// draining); client disconnect -> cancellation; a little multipart fuzzing;
// SIGTERM with a request in flight (it still gets 200, the process exits 0);
// word timestamps (timestamp_granularities[]=word in verbose_json) and the
// decoding fields beam_size / best_of / patience / length_penalty, with their
// server-wide defaults (flags and environment).
//
// Checks marked [engine] test what the engine computes for word timestamps
// (non-empty words inside the audio, a word for every segment with text);
// the rest is the HTTP and format plumbing.
//
// Most transcriptions pass temperature_inc=0 (the random-weight fixture would
// otherwise run every fallback temperature) and run concurrently.
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "am_common.h"
#include "am_format.h"
#include "am_test.h"

#ifndef AM_BINARY_DIR
#define AM_BINARY_DIR "."
#endif

static char g_model[1024], g_wav[1024];
static unsigned char *g_audio;
static size_t g_audio_len;

// ---------------------------------------------------------------- growable buffer
typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void buf_add(buf *b, const void *d, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) abort();
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void buf_str(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

// ---------------------------------------------------------------- the server process
typedef struct {
    pid_t pid;
    int fd;          // its stderr
    int port;
    pthread_t reader;
    pthread_mutex_t mu;
    buf log;
    int exited, status;
} server;

static void *reader_main(void *arg) {
    server *s = arg;
    char tmp[4096];
    for (;;) {
        const ssize_t r = read(s->fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        pthread_mutex_lock(&s->mu);
        buf_add(&s->log, tmp, (size_t)r);
        pthread_mutex_unlock(&s->mu);
        if (getenv("AM_TEST_VERBOSE")) fwrite(tmp, 1, (size_t)r, stderr);
    }
    return NULL;
}

// Wait up to timeout_s for `needle` in the server log; returns 1 when found.
static int log_wait(server *s, const char *needle, double timeout_s) {
    const double until = am_time_s() + timeout_s;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        const int found = s->log.p && strstr(s->log.p, needle) != NULL;
        pthread_mutex_unlock(&s->mu);
        if (found) return 1;
        if (am_time_s() > until) return 0;
        usleep(10000);
    }
}

static int log_count(server *s, const char *needle) {
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (const char *p = s->log.p; p && (p = strstr(p, needle)); p++) n++;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void log_dump(server *s, const char *why) {
    pthread_mutex_lock(&s->mu);
    fprintf(stderr, "---- server log (%s) ----\n%s---- end ----\n", why, s->log.p ? s->log.p : "");
    pthread_mutex_unlock(&s->mu);
}

// Start `amanuensis serve -m fixture --port 0 <args...>`; 0 on success.
static int server_start(server *s, const char *const *args) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    int pfd[2];
    if (pipe(pfd)) return -1;
    const char *argv[32];
    int n = 0;
    argv[n++] = AM_BINARY_DIR "/amanuensis";
    argv[n++] = "serve";
    argv[n++] = "-m";
    argv[n++] = g_model;
    argv[n++] = "--port";
    argv[n++] = "0";
    for (int i = 0; args && args[i] && n < 31; i++) argv[n++] = args[i];
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    s->fd = pfd[0];
    pthread_create(&s->reader, NULL, reader_main, s);
    const char *key = "listening on http://127.0.0.1:";
    if (!log_wait(s, key, 60)) {
        log_dump(s, "no listening line");
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    s->port = atoi(strstr(s->log.p, key) + strlen(key));
    pthread_mutex_unlock(&s->mu);
    return s->port > 0 ? 0 : -1;
}

// Non-blocking check whether it has exited.
static int server_exited(server *s) {
    if (s->exited) return 1;
    int st;
    if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
        s->exited = 1;
        s->status = st;
    }
    return s->exited;
}

// Wait for exit (after a signal, if sig != 0); returns the exit code, or -1
// when it had to be killed / died of a signal.
static int server_stop(server *s, int sig, double timeout_s) {
    if (sig && !server_exited(s)) kill(s->pid, sig);
    const double until = am_time_s() + timeout_s;
    while (!server_exited(s) && am_time_s() < until) usleep(10000);
    int killed = 0;
    if (!server_exited(s)) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &s->status, 0);
        s->exited = killed = 1;
    }
    pthread_join(s->reader, NULL);
    close(s->fd);
    const int rc = !killed && WIFEXITED(s->status) ? WEXITSTATUS(s->status) : -1;
    if (rc != 0) log_dump(s, "abnormal exit");
    free(s->log.p);
    pthread_mutex_destroy(&s->mu);
    return rc;
}

// ---------------------------------------------------------------- HTTP transfers
typedef struct {
    CURL *e;
    buf body, hdr;
    long status;
    int curl_rc;
    struct curl_slist *headers;
    curl_mime *mime;
    const char *raw; // body sent by the read callback
    size_t raw_len, raw_pos, raw_piece;
} xfer;

static size_t on_write(char *d, size_t sz, size_t n, void *u) {
    buf_add(u, d, sz * n);
    return sz * n;
}

static size_t on_read(char *d, size_t sz, size_t n, void *u) {
    xfer *x = u;
    size_t k = AM_MIN(sz * n, x->raw_len - x->raw_pos);
    if (x->raw_piece) k = AM_MIN(k, x->raw_piece);
    memcpy(d, x->raw + x->raw_pos, k);
    x->raw_pos += k;
    return k;
}

static void xfer_init(xfer *x, server *s, const char *path, const char *key) {
    memset(x, 0, sizeof *x);
    x->e = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    curl_easy_setopt(x->e, CURLOPT_URL, url);
    curl_easy_setopt(x->e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->e, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(x->e, CURLOPT_WRITEDATA, &x->body);
    curl_easy_setopt(x->e, CURLOPT_HEADERFUNCTION, on_write);
    curl_easy_setopt(x->e, CURLOPT_HEADERDATA, &x->hdr);
    if (key) {
        char h[256];
        snprintf(h, sizeof h, "Authorization: Bearer %s", key);
        x->headers = curl_slist_append(x->headers, h);
    }
}

static void xfer_header(xfer *x, const char *h) { x->headers = curl_slist_append(x->headers, h); }

// multipart via curl_mime: fields (name, value pairs, NULL-terminated), then
// the file part (when data != NULL) named "file".
static void xfer_form(xfer *x, const char *const *fields, const void *data, size_t len, const char *filename,
                      const char *ctype) {
    x->mime = curl_mime_init(x->e);
    for (int i = 0; fields && fields[i]; i += 2) {
        curl_mimepart *p = curl_mime_addpart(x->mime);
        curl_mime_name(p, fields[i]);
        curl_mime_data(p, fields[i + 1], CURL_ZERO_TERMINATED);
    }
    if (data) {
        curl_mimepart *p = curl_mime_addpart(x->mime);
        curl_mime_name(p, "file");
        curl_mime_data(p, data, len);
        if (filename) curl_mime_filename(p, filename);
        if (ctype) curl_mime_type(p, ctype);
    }
    curl_easy_setopt(x->e, CURLOPT_MIMEPOST, x->mime);
}

// A raw POST body; piece > 0 sends it chunked, at most `piece` bytes per read.
static void xfer_raw(xfer *x, const char *ctype, const char *body, size_t len, size_t piece) {
    char h[512];
    snprintf(h, sizeof h, "Content-Type: %s", ctype);
    xfer_header(x, h);
    x->raw = body;
    x->raw_len = len;
    x->raw_piece = piece;
    curl_easy_setopt(x->e, CURLOPT_POST, 1L);
    curl_easy_setopt(x->e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(x->e, CURLOPT_READDATA, x);
    if (piece) xfer_header(x, "Transfer-Encoding: chunked");
    else curl_easy_setopt(x->e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
}

static void xfer_prepare(xfer *x) {
    if (x->headers) curl_easy_setopt(x->e, CURLOPT_HTTPHEADER, x->headers);
}

static void xfer_finish(xfer *x, CURLcode rc) {
    x->curl_rc = (int)rc;
    curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &x->status);
}

static void xfer_free(xfer *x) {
    if (x->e) curl_easy_cleanup(x->e);
    curl_mime_free(x->mime);
    curl_slist_free_all(x->headers);
    free(x->body.p);
    free(x->hdr.p);
    memset(x, 0, sizeof *x);
}

static void run_all(xfer *xs, int n) {
    CURLM *m = curl_multi_init();
    for (int i = 0; i < n; i++) {
        xfer_prepare(&xs[i]);
        curl_multi_add_handle(m, xs[i].e);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE)
                for (int i = 0; i < n; i++)
                    if (xs[i].e == msg->easy_handle) xfer_finish(&xs[i], msg->data.result);
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < n; i++) curl_multi_remove_handle(m, xs[i].e);
    curl_multi_cleanup(m);
}

static void run_one(xfer *x) { run_all(x, 1); }

// Value of a response header (case-insensitive name), copied into out.
static int header_value(const xfer *x, const char *name, char *out, size_t cap) {
    const size_t n = strlen(name);
    for (const char *p = x->hdr.p; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') v++;
            size_t k = eol ? (size_t)(eol - v) : strlen(v);
            while (k > 0 && (v[k - 1] == '\r' || v[k - 1] == ' ')) k--;
            snprintf(out, cap, "%.*s", (int)k, v);
            return 1;
        }
        p = eol ? eol + 1 : NULL;
    }
    return 0;
}

// error.param / error.type of an OpenAI-shaped error body ("" when null/absent; NULL when not an error doc).
static int error_fields(const xfer *x, char *param, char *type, size_t cap) {
    cJSON *o = cJSON_Parse(x->body.p ? x->body.p : "");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    int ok = cJSON_IsObject(e) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message"));
    if (ok) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "param");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "type");
        snprintf(param, cap, "%s", cJSON_IsString(p) ? p->valuestring : "");
        snprintf(type, cap, "%s", cJSON_IsString(t) ? t->valuestring : "");
        ok = cJSON_HasObjectItem(e, "param") && cJSON_HasObjectItem(e, "code");
    }
    cJSON_Delete(o);
    return ok;
}

// One request expected to fail with `status` and error.param `param` ("" = null).
static void expect_error(xfer *x, const char *label, long status, const char *param) {
    char p[128] = "", t[128] = "";
    CHECKF(x->status == status, "%s: status %ld, want %ld: %s", label, x->status, status, x->body.p ? x->body.p : "");
    CHECKF(error_fields(x, p, t, sizeof p), "%s: not an OpenAI error body: %s", label, x->body.p ? x->body.p : "");
    if (param) CHECKF(!strcmp(p, param), "%s: error.param '%s', want '%s'", label, p, param);
    CHECKF(!strcmp(t, status >= 500 ? "server_error" : "invalid_request_error"), "%s: error.type '%s'", label, t);
}

static long get_json_number(server *s, const char *path, const char *key, const char *api_key) {
    xfer x;
    xfer_init(&x, s, path, api_key);
    run_one(&x);
    long v = -1;
    cJSON *o = cJSON_Parse(x.body.p ? x.body.p : "");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNumber(n)) v = (long)n->valuedouble;
    cJSON_Delete(o);
    xfer_free(&x);
    return v;
}

// ---------------------------------------------------------------- multipart bodies
// An httpx-style body (what openai-python sends): data fields first, the file
// last, a 32-hex-digit boundary. file_first puts the file part first instead.
static void sdk_body(buf *b, const char *boundary, const char *const *fields, const void *audio, size_t len,
                     int file_first) {
    for (int pass = 0; pass < 2; pass++) {
        const int file_now = file_first ? pass == 0 : pass == 1;
        if (file_now) {
            buf_str(b, "--");
            buf_str(b, boundary);
            buf_str(b, "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"jfk.wav\"\r\n"
                       "Content-Type: audio/x-wav\r\n\r\n");
            buf_add(b, audio, len);
            buf_str(b, "\r\n");
        } else {
            for (int i = 0; fields && fields[i]; i += 2) {
                buf_str(b, "--");
                buf_str(b, boundary);
                buf_str(b, "\r\nContent-Disposition: form-data; name=\"");
                buf_str(b, fields[i]);
                buf_str(b, "\"\r\n\r\n");
                buf_str(b, fields[i + 1]);
                buf_str(b, "\r\n");
            }
        }
    }
    buf_str(b, "--");
    buf_str(b, boundary);
    buf_str(b, "--\r\n");
}

// ---------------------------------------------------------------- cases
static const char *const FAST[] = {"temperature_inc", "0", NULL};

static void check_transcript(xfer *x, const char *label, am_format fmt) {
    char ct[128] = "", rid[128] = "";
    CHECKF(x->status == 200, "%s: status %ld: %s", label, x->status, x->body.p ? x->body.p : "");
    header_value(x, "Content-Type", ct, sizeof ct);
    CHECKF(!strcmp(ct, am_format_content_type(fmt)), "%s: content type '%s'", label, ct);
    CHECKF(header_value(x, "X-Request-Id", rid, sizeof rid) && rid[0], "%s: no X-Request-Id", label);
    if (x->status != 200 || !x->body.p) return;
    if (fmt == AM_FMT_JSON || fmt == AM_FMT_VERBOSE_JSON) {
        cJSON *o = cJSON_Parse(x->body.p);
        CHECKF(o != NULL, "%s: body is not JSON", label);
        CHECKF(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "text")), "%s: no text", label);
        const cJSON *perf = cJSON_GetObjectItemCaseSensitive(o, "performance");
        CHECKF(cJSON_IsObject(perf), "%s: no performance object", label);
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(perf, "mode");
        CHECKF(cJSON_IsString(mode) && (!strcmp(mode->valuestring, "batched") || !strcmp(mode->valuestring, "sequential")),
               "%s: performance.mode", label);
        CHECKF(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(perf, "audio_duration_s")) &&
                   cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(perf, "processing_time_s")) &&
                   cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(perf, "realtime_factor")),
               "%s: performance fields", label);
        if (fmt == AM_FMT_VERBOSE_JSON)
            CHECKF(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "segments")), "%s: no segments", label);
        cJSON_Delete(o);
    } else if (fmt == AM_FMT_VTT) {
        CHECKF(!strncmp(x->body.p, "WEBVTT", 6), "%s: not WebVTT", label);
    }
}

static void case_endpoints(server *s) {
    static const struct {
        const char *method, *path;
        long status;
        const char *needle;
    } eps[] = {
        {"GET", "/health", 200, "\"status\":\"ok\""},
        {"GET", "/ready", 200, "\"ready\""},
        {"GET", "/v1/models", 200, "\"object\":\"list\""},
        {"GET", "/v1/models/ggml-test-tiny.en", 200, "\"owned_by\":\"amanuensis\""},
        {"GET", "/v1/models/whisper-9", 404, "\"error\""},
        {"GET", "/stats/batching", 200, "\"total_requests\""},
        {"GET", "/metrics", 200, "amanuensis_"},
        {"GET", "/nope", 404, "\"error\""},
        {"GET", "/v1/audio/transcriptions", 405, "\"error\""},
        {"POST", "/health", 405, "\"error\""},
        {"DELETE", "/v1/models", 405, "\"error\""},
    };
    for (size_t i = 0; i < AM_ARRAY_LEN(eps); i++) {
        xfer x;
        xfer_init(&x, s, eps[i].path, NULL);
        curl_easy_setopt(x.e, CURLOPT_CUSTOMREQUEST, eps[i].method);
        if (!strcmp(eps[i].method, "POST")) curl_easy_setopt(x.e, CURLOPT_POSTFIELDS, "");
        run_one(&x);
        CHECKF(x.status == eps[i].status, "%s %s: status %ld, want %ld", eps[i].method, eps[i].path, x.status,
               eps[i].status);
        CHECKF(x.body.p && strstr(x.body.p, eps[i].needle), "%s %s: body lacks %s: %s", eps[i].method, eps[i].path,
               eps[i].needle, x.body.p ? x.body.p : "");
        char v[128] = "";
        if (eps[i].status == 405) CHECKF(header_value(&x, "Allow", v, sizeof v), "%s: no Allow header", eps[i].path);
        if (eps[i].status >= 400) {
            char p[64], t[64];
            CHECKF(error_fields(&x, p, t, sizeof p), "%s %s: not an OpenAI error", eps[i].method, eps[i].path);
        }
        if (!strcmp(eps[i].path, "/metrics")) {
            header_value(&x, "Content-Type", v, sizeof v);
            CHECKF(!strncmp(v, "text/plain; version=0.0.4", 25), "/metrics content type '%s'", v);
        }
        xfer_free(&x);
    }
    // keep-alive: two GETs on one handle reuse the connection
    xfer x;
    xfer_init(&x, s, "/health", NULL);
    curl_easy_perform(x.e);
    curl_easy_perform(x.e);
    long conns = -1;
    curl_easy_getinfo(x.e, CURLINFO_NUM_CONNECTS, &conns);
    CHECKF(conns == 0, "GET /health did not keep the connection alive (%ld new connections)", conns);
    xfer_free(&x);
}

// Every format, the translation endpoint and the SDK-shaped requests, all at once.
static void case_success(server *s) {
    enum { N_FMT = 5 };
    static const char *const names[N_FMT] = {"json", "text", "srt", "vtt", "verbose_json"};
    static const am_format fmts[N_FMT] = {AM_FMT_JSON, AM_FMT_TEXT, AM_FMT_SRT, AM_FMT_VTT, AM_FMT_VERBOSE_JSON};
    xfer xs[N_FMT + 4];
    int n = 0;
    for (int i = 0; i < N_FMT; i++, n++) {
        xfer_init(&xs[n], s, "/v1/audio/transcriptions", NULL);
        const char *f[] = {"response_format", names[i], "temperature_inc", "0", "language", "en", NULL};
        xfer_form(&xs[n], f, g_audio, g_audio_len, "jfk.wav", "audio/x-wav");
    }
    // translations
    xfer_init(&xs[n], s, "/v1/audio/translations", NULL);
    xfer_form(&xs[n++], (const char *const[]){"model", "whisper-1", "temperature_inc", "0", NULL}, g_audio, g_audio_len,
              "jfk.wav", "audio/x-wav");
    // openai-python via curl_mime: model first, the file last, with filename and type; priority header
    xfer_init(&xs[n], s, "/v1/audio/transcriptions", NULL);
    xfer_header(&xs[n], "User-Agent: OpenAI/Python 1.40.0");
    xfer_header(&xs[n], "X-Priority: 5");
    xfer_form(&xs[n++], (const char *const[]){"model", "whisper-1", "temperature_inc", "0", "temperature", "0", NULL},
              g_audio, g_audio_len, "jfk.wav", "audio/x-wav");
    // hand-written httpx body, fields first
    const char *boundary = "8f3a1c0e9b7d4e2fa6c5b4d3e2f1a0b9";
    const char *f[] = {"model",           "whisper-1", "response_format", "verbose_json", "timestamp_granularities[]",
                       "segment",         "temperature", "0.0",           "temperature_inc", "0",
                       "language",        "en",        "prompt",          "Ask not.",      "priority",
                       "3",               "stream",    "false",           NULL};
    buf raw1 = {0}, raw2 = {0};
    sdk_body(&raw1, boundary, f, g_audio, g_audio_len, 0);
    char ct[128];
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", boundary);
    xfer_init(&xs[n], s, "/v1/audio/transcriptions", NULL);
    xfer_raw(&xs[n++], ct, raw1.p, raw1.n, 0);
    // the same with the file first, sent chunked in 997-byte pieces
    sdk_body(&raw2, boundary, f, g_audio, g_audio_len, 1);
    xfer_init(&xs[n], s, "/v1/audio/transcriptions", NULL);
    xfer_raw(&xs[n++], ct, raw2.p, raw2.n, 997);

    const double t0 = am_time_s();
    run_all(xs, n);
    printf("  %d concurrent transcriptions in %.2f s\n", n, am_time_s() - t0);
    for (int i = 0; i < N_FMT; i++) check_transcript(&xs[i], names[i], fmts[i]);
    check_transcript(&xs[N_FMT], "translations", AM_FMT_JSON);
    check_transcript(&xs[N_FMT + 1], "sdk-mime", AM_FMT_JSON);
    check_transcript(&xs[N_FMT + 2], "sdk-raw", AM_FMT_VERBOSE_JSON);
    check_transcript(&xs[N_FMT + 3], "sdk-raw-chunked", AM_FMT_VERBOSE_JSON);
    if (xs[N_FMT].body.p) {
        cJSON *o = cJSON_Parse(xs[N_FMT].body.p);
        CHECK(o != NULL);
        cJSON_Delete(o);
    }
    for (int i = 0; i < n; i++) xfer_free(&xs[i]);
    free(raw1.p);
    free(raw2.p);
}

static void case_errors(server *s) {
    static const char garbage[] = "this is definitely not audio, just some text bytes pretending to be a wav file";
    static const struct {
        const char *label;
        const char *f[8];
        int file; // 0 none, 1 jfk, 2 garbage, 3 empty
        long status;
        const char *param;
        const char *msg[3]; // in error.message (optional)
    } cases[] = {
        {"missing file", {"model", "whisper-1", NULL}, 0, 400, "file", {NULL}},
        {"bad response_format", {"response_format", "xml", NULL}, 1, 400, "response_format", {NULL}},
        {"temperature 5", {"temperature", "5", NULL}, 1, 400, "temperature", {NULL}},
        {"temperature nan", {"temperature", "nan", NULL}, 1, 400, "temperature", {NULL}},
        {"temperature_inc 2", {"temperature_inc", "2", NULL}, 1, 400, "temperature_inc", {NULL}},
        {"unknown language", {"language", "klingon", NULL}, 1, 400, "language", {NULL}},
        {"word granularity, default json",
         {"timestamp_granularities[]", "segment", "timestamp_granularities[]", "word", NULL}, 1, 400,
         "timestamp_granularities", {"verbose_json"}},
        {"word granularity with json", {"response_format", "json", "timestamp_granularities[]", "word", NULL}, 1, 400,
         "timestamp_granularities", {"verbose_json"}},
        {"word granularity with text", {"response_format", "text", "timestamp_granularities[]", "word", NULL}, 1, 400,
         "timestamp_granularities", {"verbose_json"}},
        {"word granularity with srt", {"response_format", "srt", "timestamp_granularities[]", "word", NULL}, 1, 400,
         "timestamp_granularities", {"verbose_json"}},
        {"word granularity with vtt", {"timestamp_granularities[]", "word", "response_format", "vtt", NULL}, 1, 400,
         "timestamp_granularities", {"verbose_json"}},
        {"bad granularity", {"timestamp_granularities[]", "sentence", NULL}, 1, 400, "timestamp_granularities", {NULL}},
        {"beam_size 0", {"beam_size", "0", NULL}, 1, 400, "beam_size", {"beam_size", "between 1 and 16"}},
        {"beam_size 17", {"beam_size", "17", NULL}, 1, 400, "beam_size", {"beam_size", "between 1 and 16"}},
        {"beam_size abc", {"beam_size", "abc", NULL}, 1, 400, "beam_size", {"beam_size", "between 1 and 16"}},
        {"beam_size 2.5", {"beam_size", "2.5", NULL}, 1, 400, "beam_size", {"integer"}},
        {"best_of 0", {"best_of", "0", NULL}, 1, 400, "best_of", {"best_of", "between 1 and 16"}},
        {"best_of 17", {"best_of", "17", NULL}, 1, 400, "best_of", {"best_of", "between 1 and 16"}},
        {"patience without beam_size", {"patience", "2", NULL}, 1, 400, "patience", {"beam_size"}},
        {"patience 0", {"beam_size", "2", "patience", "0", NULL}, 1, 400, "patience", {"greater than 0"}},
        {"patience -1", {"beam_size", "2", "patience", "-1", NULL}, 1, 400, "patience", {"greater than 0"}},
        {"patience abc", {"beam_size", "2", "patience", "abc", NULL}, 1, 400, "patience", {"greater than 0"}},
        {"length_penalty 1.5", {"length_penalty", "1.5", NULL}, 1, 400, "length_penalty", {"between 0 and 1"}},
        {"length_penalty -0.1", {"length_penalty", "-0.1", NULL}, 1, 400, "length_penalty", {"between 0 and 1"}},
        {"stream yes", {"stream", "yes", NULL}, 1, 400, "stream", {"true or false"}},
        {"bad priority", {"priority", "high", NULL}, 1, 400, "priority", {NULL}},
        {"garbage audio", {"temperature_inc", "0", NULL}, 2, 400, "file", {NULL}},
        {"empty file", {"temperature_inc", "0", NULL}, 3, 400, "file", {NULL}},
    };
    const int n = (int)AM_ARRAY_LEN(cases);
    xfer xs[AM_ARRAY_LEN(cases) + 1];
    for (int i = 0; i < n; i++) {
        xfer_init(&xs[i], s, "/v1/audio/transcriptions", NULL);
        const void *d = cases[i].file == 1 ? (const void *)g_audio : cases[i].file == 2 ? garbage : "";
        const size_t len = cases[i].file == 1 ? g_audio_len : cases[i].file == 2 ? sizeof garbage - 1 : 0;
        xfer_form(&xs[i], cases[i].f, cases[i].file ? d : NULL, len, "x.wav", "audio/wav");
    }
    run_all(xs, n);
    for (int i = 0; i < n; i++) {
        expect_error(&xs[i], cases[i].label, cases[i].status, cases[i].param);
        for (int k = 0; k < 3 && cases[i].msg[k]; k++) {
            cJSON *o = cJSON_Parse(xs[i].body.p ? xs[i].body.p : "");
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "error"), "message");
            CHECKF(cJSON_IsString(m) && strstr(m->valuestring, cases[i].msg[k]), "%s: error message lacks '%s': %s",
                   cases[i].label, cases[i].msg[k], xs[i].body.p ? xs[i].body.p : "");
            cJSON_Delete(o);
        }
        xfer_free(&xs[i]);
    }
    // not multipart
    xfer x;
    xfer_init(&x, s, "/v1/audio/transcriptions", NULL);
    xfer_raw(&x, "application/json", "{\"file\":1}", 10, 0);
    run_one(&x);
    expect_error(&x, "json body", 400, NULL);
    xfer_free(&x);
    // truncated multipart (no closing boundary)
    const char *trunc = "--abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF....";
    xfer_init(&x, s, "/v1/audio/transcriptions", NULL);
    xfer_raw(&x, "multipart/form-data; boundary=abc", trunc, strlen(trunc), 0);
    run_one(&x);
    expect_error(&x, "truncated multipart", 400, NULL);
    xfer_free(&x);
    // over the 1 MB limit: by Content-Length, and streamed chunked (counted while receiving)
    const size_t big = 2u << 20;
    char *junk = malloc(big);
    for (size_t i = 0; i < big; i++) junk[i] = (char)(i * 7919u >> 3);
    xfer_init(&x, s, "/v1/audio/transcriptions", NULL);
    xfer_form(&x, FAST, junk, big, "big.wav", "audio/wav");
    run_one(&x);
    expect_error(&x, "2 MB upload", 413, "file");
    xfer_free(&x);
    buf body = {0};
    sdk_body(&body, "0123456789abcdef0123456789abcdef", FAST, junk, big, 0);
    xfer_init(&x, s, "/v1/audio/transcriptions", NULL);
    xfer_raw(&x, "multipart/form-data; boundary=0123456789abcdef0123456789abcdef", body.p, body.n, 65536);
    run_one(&x);
    expect_error(&x, "2 MB chunked upload", 413, "file");
    xfer_free(&x);
    free(body.p);
    free(junk);
}

// ---------------------------------------------------------------- word timestamps
static int has_space_around(const char *t) {
    const char *p = t;
    return am_str_strip(&p, strlen(t)) != strlen(t);
}

static int is_blank(const char *t) {
    const char *p = t;
    return am_str_strip(&p, strlen(t)) == 0;
}

// Text made only of words " [A-Za-z0-9]+" (the reference cuts it exactly at its spaces).
static int plain_words(const char *t) {
    if (*t != ' ') return 0;
    for (const char *p = t; *p; p++) {
        if (*p == ' ' && !isalnum((unsigned char)p[1])) return 0;
        if (*p != ' ' && !isalnum((unsigned char)*p)) return 0;
    }
    return 1;
}

// One word object: its keys, text and times (0 <= start <= end inside the
// audio; the reference's clamp of a long last word to its start + the median
// word duration may end it up to 0.2 s after the last jump time).
static void check_word(const char *label, int k, const cJSON *w, int top_level, double duration) {
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, w) n++;
    const cJSON *word = cJSON_GetObjectItemCaseSensitive(w, "word");
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(w, "start");
    const cJSON *end = cJSON_GetObjectItemCaseSensitive(w, "end");
    const cJSON *prob = cJSON_GetObjectItemCaseSensitive(w, "probability");
    CHECKF(n == (top_level ? 3 : 4) && cJSON_IsString(word) && cJSON_IsNumber(start) && cJSON_IsNumber(end) &&
               (top_level || cJSON_IsNumber(prob)),
           "%s: word %d is not {word, start, end%s}", label, k, top_level ? "" : ", probability");
    if (!cJSON_IsString(word) || !cJSON_IsNumber(start) || !cJSON_IsNumber(end)) return;
    if (top_level) // OpenAI's words come without the leading space
        CHECKF(!has_space_around(word->valuestring), "%s: top-level word %d '%s' is not stripped", label, k,
               word->valuestring);
    const double a = start->valuedouble, z = end->valuedouble;
    CHECKF(a >= 0 && a <= z && a <= duration + 0.01 && z <= duration + 0.25,
           "[engine] %s: word %d '%s' [%g, %g] outside [0, %g] or reversed", label, k, word->valuestring, a, z,
           duration);
    if (cJSON_IsNumber(prob))
        CHECKF(prob->valuedouble >= 0 && prob->valuedouble <= 1, "[engine] %s: word %d probability %g", label, k,
               prob->valuedouble);
}

// seek of segment i (-1 when absent).
static double seg_seek(const cJSON *segs, int i) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(segs, i), "seek");
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

// A verbose_json body with word timestamps: the top-level "words" (OpenAI's),
// and with_segments: segments each with their "words" (the reference's),
// consistent with the top-level list. The reference hands each segment words
// by counting tokens after the split and the punctuation merge, so a word may
// cross a segment boundary and a segment may get none; per window (segments
// of one seek): words when it has text, and the words spell its text unless
// a segment was cleared or holds a partial character. In a window of plain
// words every segment gets exactly its own words.
static void check_words_body(const char *label, const xfer *x, int with_segments) {
    cJSON *o = cJSON_Parse(x->body.p ? x->body.p : "");
    CHECKF(o != NULL, "%s: body is not JSON", label);
    if (!o) return;
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(o, "duration");
    const double duration = cJSON_IsNumber(dur) ? dur->valuedouble : 0;
    CHECKF(duration > 10.9 && duration < 11.1, "%s: duration %g", label, duration);
    const cJSON *words = cJSON_GetObjectItemCaseSensitive(o, "words");
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(o, "segments");
    CHECKF(cJSON_IsArray(words), "%s: no top-level \"words\" array", label);
    CHECKF(with_segments ? cJSON_IsArray(segs) : segs == NULL, "%s: \"segments\" %s", label,
           with_segments ? "missing" : "present although only words were asked for");
    const int n_words = cJSON_GetArraySize(words);
    CHECKF(n_words > 0, "[engine] %s: the top-level \"words\" array is empty", label);
    for (int k = 0; k < n_words; k++) check_word(label, k, cJSON_GetArrayItem(words, k), 1, duration);
    if (!with_segments || !cJSON_IsArray(segs)) {
        cJSON_Delete(o);
        return;
    }
    const int n_segs = cJSON_GetArraySize(segs);
    int k_top = 0, cleared = 0, clean_windows = 0;
    for (int i = 0; i < n_segs;) {
        const double seek = seg_seek(segs, i);
        int e = i;
        while (e < n_segs && seg_seek(segs, e) == seek) e++;
        buf win_text = {0}, win_words = {0};
        int any_text = 0, window_words = 0, clean = 1, skip_concat = 0;
        for (int k = i; k < e; k++) {
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(segs, k), "text");
            if (!cJSON_IsString(text)) continue;
            clean &= plain_words(text->valuestring);
            any_text |= !is_blank(text->valuestring);
            if (is_blank(text->valuestring)) cleared++, skip_concat = 1;
            skip_concat |= strstr(text->valuestring, "\xef\xbf\xbd") != NULL;
        }
        for (int k = i; k < e; k++) {
            const cJSON *seg = cJSON_GetArrayItem(segs, k);
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(seg, "text");
            const cJSON *sw = cJSON_GetObjectItemCaseSensitive(seg, "words");
            CHECKF(cJSON_IsString(text) && cJSON_IsArray(sw), "%s: segment %d lacks text or \"words\"", label, k);
            if (!cJSON_IsString(text) || !cJSON_IsArray(sw)) continue;
            const int n = cJSON_GetArraySize(sw);
            if (is_blank(text->valuestring))
                CHECKF(n == 0, "[engine] %s: cleared segment %d has %d words", label, k, n);
            buf_str(&win_text, text->valuestring);
            buf mine = {0};
            for (int w = 0; w < n; w++, k_top++) {
                const cJSON *wd = cJSON_GetArrayItem(sw, w);
                check_word(label, k_top, wd, 0, duration);
                const cJSON *ww = cJSON_GetObjectItemCaseSensitive(wd, "word");
                if (!cJSON_IsString(ww)) continue;
                buf_str(&win_words, ww->valuestring);
                buf_str(&mine, ww->valuestring);
                // the top-level list is the segments' words in order, stripped
                const cJSON *t = cJSON_GetArrayItem(words, k_top);
                const cJSON *tw = cJSON_GetObjectItemCaseSensitive(t, "word");
                const cJSON *ts = cJSON_GetObjectItemCaseSensitive(t, "start");
                const cJSON *te = cJSON_GetObjectItemCaseSensitive(t, "end");
                const char *p = ww->valuestring;
                const size_t len = am_str_strip(&p, strlen(p));
                CHECKF(cJSON_IsString(tw) && strlen(tw->valuestring) == len && !strncmp(tw->valuestring, p, len) &&
                           cJSON_IsNumber(ts) && cJSON_IsNumber(te) &&
                           ts->valuedouble == cJSON_GetObjectItemCaseSensitive(wd, "start")->valuedouble &&
                           te->valuedouble == cJSON_GetObjectItemCaseSensitive(wd, "end")->valuedouble,
                       "%s: top-level word %d differs from segment %d word %d", label, k_top, k, w);
            }
            window_words += n;
            if (clean)
                CHECKF(mine.p && !strcmp(mine.p, text->valuestring),
                       "[engine] %s: segment %d '%.80s' has the words '%.80s'", label, k, text->valuestring,
                       mine.p ? mine.p : "");
            free(mine.p);
        }
        if (any_text) {
            CHECKF(window_words >= 1, "[engine] %s: the window at seek %g (segments %d..%d) has text but no words",
                   label, seek, i, e - 1);
            if (!skip_concat)
                CHECKF(win_words.p && win_text.p && !strcmp(win_words.p, win_text.p),
                       "[engine] %s: the words of the window at seek %g do not spell its text:\n  words: '%.200s'\n"
                       "  text:  '%.200s'",
                       label, seek, win_words.p ? win_words.p : "", win_text.p ? win_text.p : "");
        }
        clean_windows += clean && any_text;
        free(win_text.p);
        free(win_words.p);
        i = e;
    }
    CHECKF(k_top == n_words, "%s: %d words in the segments, %d at the top level", label, k_top, n_words);
    printf("  %s: %d words in %d segments (%d cleared; %d windows of plain words checked segment by segment)\n",
           label, n_words, n_segs, cleared, clean_windows);
    cJSON_Delete(o);
}

// Word timestamps and the decoding fields, all requests at once.
static void case_words(server *s) {
    enum { BOTH, WORDS_ONLY, WORD_THEN_SEGMENT, BEAM, BEAM_JSON, BEST_OF, N };
    static const char *const f[N][16] = {
        [BOTH] = {"response_format", "verbose_json", "timestamp_granularities[]", "word", "timestamp_granularities[]",
                  "segment", "temperature_inc", "0", NULL},
        [WORDS_ONLY] = {"response_format", "verbose_json", "timestamp_granularities[]", "word", "temperature_inc", "0",
                        NULL},
        // the order of the granularities does not matter; the field name without [] works too
        [WORD_THEN_SEGMENT] = {"timestamp_granularities", "segment", "timestamp_granularities[]", "word",
                               "response_format", "verbose_json", "temperature_inc", "0", NULL},
        [BEAM] = {"response_format", "verbose_json", "beam_size", "2", "patience", "1.5", "length_penalty", "0.5",
                  "best_of", "2", "temperature_inc", "0", NULL},
        [BEAM_JSON] = {"beam_size", "16", "length_penalty", "0", "temperature_inc", "0", NULL},
        [BEST_OF] = {"response_format", "verbose_json", "best_of", "3", "temperature", "0.5", "temperature_inc", "0",
                     NULL},
    };
    xfer xs[N];
    for (int i = 0; i < N; i++) {
        xfer_init(&xs[i], s, "/v1/audio/transcriptions", NULL);
        xfer_form(&xs[i], f[i], g_audio, g_audio_len, "jfk.wav", "audio/x-wav");
    }
    const double t0 = am_time_s();
    run_all(xs, N);
    printf("  %d word / beam requests in %.2f s\n", N, am_time_s() - t0);
    check_transcript(&xs[BOTH], "words + segments", AM_FMT_VERBOSE_JSON);
    if (xs[BOTH].status == 200) check_words_body("words + segments", &xs[BOTH], 1);
    // no segments: check_transcript would ask for them
    CHECKF(xs[WORDS_ONLY].status == 200, "words only: status %ld: %s", xs[WORDS_ONLY].status,
           xs[WORDS_ONLY].body.p ? xs[WORDS_ONLY].body.p : "");
    if (xs[WORDS_ONLY].status == 200) {
        cJSON *o = cJSON_Parse(xs[WORDS_ONLY].body.p);
        int n = 0;
        char keys[256] = "";
        const cJSON *it;
        cJSON_ArrayForEach(it, o) {
            if (n++) strcat(keys, ",");
            strncat(keys, it->string, 40);
        }
        CHECKF(!strcmp(keys, "task,language,duration,text,words,usage,performance"), "words only: keys '%s'", keys);
        cJSON_Delete(o);
        check_words_body("words only", &xs[WORDS_ONLY], 0);
    }
    check_transcript(&xs[WORD_THEN_SEGMENT], "segment + word", AM_FMT_VERBOSE_JSON);
    if (xs[WORD_THEN_SEGMENT].status == 200) check_words_body("segment + word", &xs[WORD_THEN_SEGMENT], 1);
    // beams and best-of: accepted; without word granularity there are no words
    check_transcript(&xs[BEAM], "beam_size 2", AM_FMT_VERBOSE_JSON);
    check_transcript(&xs[BEAM_JSON], "beam_size 16, json", AM_FMT_JSON);
    check_transcript(&xs[BEST_OF], "best_of 3", AM_FMT_VERBOSE_JSON);
    for (int i = BEAM; i < N; i++) {
        CHECKF(xs[i].body.p && !strstr(xs[i].body.p, "\"words\""), "request %d: words without the word granularity",
               i);
        xfer_free(&xs[i]);
    }
    for (int i = 0; i < BEAM; i++) xfer_free(&xs[i]);
}

// Server-wide decoding defaults (flags and environment) and alignment heads:
// patience is accepted without a request beam_size when the server has one;
// the request's fields still override the defaults and are still checked.
static void case_decode_defaults(void) {
    server s;
    const char *args[] = {"--beam-size", "2", "--best-of", "2", "--alignment-heads", "1,0;1,1", NULL};
    setenv("AMANUENSIS_LENGTH_PENALTY", "0.5", 1);
    setenv("AMANUENSIS_PATIENCE", "1.5", 1);
    const int started = server_start(&s, args);
    unsetenv("AMANUENSIS_LENGTH_PENALTY");
    unsetenv("AMANUENSIS_PATIENCE");
    if (started) {
        CHECKF(0, "defaults server did not start");
        return;
    }
    CHECKF(log_wait(&s, "beam_size 2", 2) && log_wait(&s, "length_penalty 0.5", 1) && log_wait(&s, "patience 1.5", 1) &&
               log_wait(&s, "alignment heads 1,0;1,1", 1),
           "the startup log does not show the request defaults");
    enum { PATIENCE, OVERRIDE, BAD_BEAM, WORDS, N };
    static const char *const f[N][12] = {
        [PATIENCE] = {"patience", "2", "temperature_inc", "0", NULL},
        [OVERRIDE] = {"beam_size", "1", "best_of", "1", "length_penalty", "1", "temperature_inc", "0", NULL},
        [BAD_BEAM] = {"beam_size", "17", "temperature_inc", "0", NULL},
        [WORDS] = {"response_format", "verbose_json", "timestamp_granularities[]", "word", "timestamp_granularities[]",
                   "segment", "temperature_inc", "0", NULL},
    };
    xfer xs[N];
    for (int i = 0; i < N; i++) {
        xfer_init(&xs[i], &s, "/v1/audio/transcriptions", NULL);
        xfer_form(&xs[i], f[i], g_audio, g_audio_len, "jfk.wav", "audio/x-wav");
    }
    run_all(xs, N);
    check_transcript(&xs[PATIENCE], "patience with the server's beam size", AM_FMT_JSON);
    check_transcript(&xs[OVERRIDE], "request overrides the defaults", AM_FMT_JSON);
    expect_error(&xs[BAD_BEAM], "beam_size 17 on a server with a default", 400, "beam_size");
    check_transcript(&xs[WORDS], "words with explicit alignment heads", AM_FMT_VERBOSE_JSON);
    if (xs[WORDS].status == 200) check_words_body("words with explicit alignment heads", &xs[WORDS], 1);
    for (int i = 0; i < N; i++) xfer_free(&xs[i]);
    CHECKF(server_stop(&s, SIGTERM, 30) == 0, "defaults server exit");
}

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

// Random and mutated multipart bodies: never a crash, always a sane status.
static void case_fuzz(server *s) {
    uint64_t seed = 0x9e3779b97f4a7c15ull;
#define RND() xorshift(&seed)
    const char *boundary = "fuzzfuzzfuzz";
    static const char *const ctypes[] = {"multipart/form-data; boundary=fuzzfuzzfuzz",
                                         "multipart/form-data; boundary=\"fuzzfuzzfuzz\"", "multipart/form-data",
                                         "multipart/form-data; boundary=", "multipart/form-data; boundary=x"};
    int bad = 0;
    const int rounds = 200;
    for (int r = 0; r < rounds; r++) {
        buf b = {0};
        unsigned char noise[300];
        for (size_t i = 0; i < sizeof noise; i++) noise[i] = (unsigned char)RND();
        if (r % 4 == 3) { // pure noise, no multipart structure at all
            buf_add(&b, noise, 1 + RND() % sizeof noise);
            goto send;
        }
        sdk_body(&b, boundary, (const char *const[]){"temperature_inc", "0", "response_format", "text", NULL}, noise,
                 sizeof noise, (int)(RND() & 1));
        const int muts = 1 + (int)(RND() % 6);
        for (int k = 0; k < muts && b.n > 0; k++) {
            const size_t at = (size_t)(RND() % b.n);
            switch (RND() % 4) {
            case 0: b.p[at] = (char)RND(); break;                           // flip a byte
            case 1: b.n = at; b.p[b.n] = 0; break;                          // truncate
            case 2: b.p[at] = "\r\n-\"="[RND() % 5]; break;                 // structural byte
            default: memmove(b.p + at, b.p + at + 1, b.n - at - 1); b.n--; // drop a byte
            }
        }
    send:;
        xfer x;
        xfer_init(&x, s, "/v1/audio/transcriptions", NULL);
        xfer_raw(&x, ctypes[RND() % AM_ARRAY_LEN(ctypes)], b.p ? b.p : "", b.n, (RND() & 1) ? 1 + RND() % 64 : 0);
        run_one(&x);
        const int ok = x.status == 200 || x.status == 400 || x.status == 413;
        if (!ok) fprintf(stderr, "fuzz round %d: status %ld (curl %d)\n", r, x.status, x.curl_rc);
        bad += !ok;
        xfer_free(&x);
        free(b.p);
    }
#undef RND
    CHECKF(bad == 0, "%d fuzz requests got an unexpected status", bad);
    xfer x;
    xfer_init(&x, s, "/health", NULL);
    run_one(&x);
    CHECKF(x.status == 200, "server unhealthy after fuzzing (%ld)", x.status);
    xfer_free(&x);
}

// Start a slow transcription (full temperature fallback) on a multi handle and
// drive it until the scheduler holds it. *running: the transfer is still in
// flight (1), finished (0), or never admitted within 5 s (-1).
static CURLM *start_slow_request(server *s, xfer *x, int *running) {
    xfer_init(x, s, "/v1/audio/transcriptions", NULL);
    xfer_form(x, NULL, g_audio, g_audio_len, "jfk.wav", "audio/x-wav");
    xfer_prepare(x);
    CURLM *m = curl_multi_init();
    curl_multi_add_handle(m, x->e);
    int admitted = 0;
    *running = 1;
    const double until = am_time_s() + 5;
    while (*running && !admitted && am_time_s() < until) {
        curl_multi_perform(m, running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
        admitted = get_json_number(s, "/ready", "pending_results", NULL) >= 1;
    }
    if (!admitted) *running = -1;
    return m;
}

// Start a slow request, wait until the scheduler holds it, then drop the client.
static void case_disconnect(server *s) {
    const long before = get_json_number(s, "/stats/batching", "cancelled", NULL);
    xfer x;
    int running = 1;
    CURLM *m = start_slow_request(s, &x, &running);
    CHECKF(running >= 0, "the request never reached the scheduler");
    curl_multi_remove_handle(m, x.e);
    curl_multi_cleanup(m);
    xfer_free(&x); // closes the socket
    long after = before;
    const double until2 = am_time_s() + 5;
    while (after <= before && am_time_s() < until2) {
        usleep(50000);
        after = get_json_number(s, "/stats/batching", "cancelled", NULL);
    }
    CHECKF(after == before + 1, "client disconnect did not cancel the work (cancelled %ld -> %ld)", before, after);
    CHECKF(log_wait(s, " 499 ", 2), "no 499 log line for the dropped client");
}

static void case_auth(void) {
    server s;
    const char *args[] = {"--api-key", "k-one", "--api-key", "k-two", NULL};
    if (server_start(&s, args)) {
        CHECKF(0, "auth server did not start");
        return;
    }
    static const struct {
        const char *path, *key;
        long status;
    } c[] = {
        {"/health", NULL, 200},          {"/ready", NULL, 401},           {"/ready", "k-one", 200},
        {"/v1/models", NULL, 401},       {"/v1/models", "k-on", 401},     {"/v1/models", "k-one!", 401},
        {"/v1/models", "k-two", 200},    {"/stats/batching", NULL, 401},  {"/metrics", NULL, 401},
        {"/metrics", "k-one", 200},      {"/v1/nothing", NULL, 401},      {"/nothing", NULL, 401},
        {"/nothing", "k-two", 404},
    };
    for (size_t i = 0; i < AM_ARRAY_LEN(c); i++) {
        xfer x;
        xfer_init(&x, &s, c[i].path, c[i].key);
        run_one(&x);
        CHECKF(x.status == c[i].status, "auth %s key %s: %ld, want %ld", c[i].path, c[i].key ? c[i].key : "(none)",
               x.status, c[i].status);
        if (c[i].status == 401) expect_error(&x, "auth", 401, NULL);
        xfer_free(&x);
    }
    xfer xs[3];
    const char *keys[3] = {NULL, "wrong", "k-one"};
    for (int i = 0; i < 3; i++) {
        xfer_init(&xs[i], &s, "/v1/audio/transcriptions", keys[i]);
        xfer_form(&xs[i], FAST, g_audio, g_audio_len, "jfk.wav", "audio/x-wav");
    }
    run_all(xs, 3);
    expect_error(&xs[0], "transcription without key", 401, NULL);
    expect_error(&xs[1], "transcription with a wrong key", 401, NULL);
    check_transcript(&xs[2], "transcription with the key", AM_FMT_JSON);
    for (int i = 0; i < 3; i++) xfer_free(&xs[i]);
    CHECKF(server_stop(&s, SIGTERM, 30) == 0, "auth server exit");
    // --public-metrics: the metrics answer without a key, nothing else does
    const char *pub[] = {"--api-key", "k-one", "--public-metrics", "on", NULL};
    if (server_start(&s, pub)) {
        CHECKF(0, "public-metrics server did not start");
        return;
    }
    static const struct {
        const char *path;
        long status;
    } p[] = {{"/metrics", 200}, {"/stats/batching", 200}, {"/health", 200}, {"/ready", 401}, {"/v1/models", 401}};
    for (size_t i = 0; i < AM_ARRAY_LEN(p); i++) {
        xfer x;
        xfer_init(&x, &s, p[i].path, NULL);
        run_one(&x);
        CHECKF(x.status == p[i].status, "public metrics: %s without a key: %ld, want %ld", p[i].path, x.status,
               p[i].status);
        xfer_free(&x);
    }
    CHECKF(server_stop(&s, SIGTERM, 30) == 0, "public-metrics server exit");
}

static void case_queue_full(void) {
    server s;
    const char *args[] = {"--max-queue", "1", NULL};
    if (server_start(&s, args)) {
        CHECKF(0, "queue server did not start");
        return;
    }
    enum { N = 4 };
    xfer xs[N];
    for (int i = 0; i < N; i++) {
        xfer_init(&xs[i], &s, "/v1/audio/transcriptions", NULL);
        xfer_form(&xs[i], FAST, g_audio, g_audio_len, "jfk.wav", "audio/x-wav");
    }
    run_all(xs, N);
    int n200 = 0, n429 = 0, retry = 0;
    for (int i = 0; i < N; i++) {
        char v[32] = "";
        n200 += xs[i].status == 200;
        if (xs[i].status == 429) {
            n429++;
            expect_error(&xs[i], "queue full", 429, NULL);
            retry += header_value(&xs[i], "Retry-After", v, sizeof v) && !strcmp(v, "1");
        }
        xfer_free(&xs[i]);
    }
    CHECKF(n200 >= 1 && n429 >= 1 && n200 + n429 == N, "queue full: %d x 200, %d x 429", n200, n429);
    CHECKF(retry == n429, "429 without Retry-After: 1");
    CHECKF(server_stop(&s, SIGTERM, 30) == 0, "queue server exit");
}

static void case_timeout(void) {
    server s;
    const char *args[] = {"--timeout", "0.001", NULL};
    if (server_start(&s, args)) {
        CHECKF(0, "timeout server did not start");
        return;
    }
    xfer x;
    xfer_init(&x, &s, "/v1/audio/transcriptions", NULL);
    xfer_form(&x, FAST, g_audio, g_audio_len, "jfk.wav", "audio/x-wav");
    run_one(&x);
    expect_error(&x, "timeout", 504, NULL);
    xfer_free(&x);
    CHECKF(server_stop(&s, SIGTERM, 30) == 0, "timeout server exit");
}

// SIGTERM with a request in flight: it still gets 200; a new one gets 503
// (or no connection once the process is gone); exit status 0.
static void case_drain(void) {
    server s;
    if (server_start(&s, NULL)) {
        CHECKF(0, "drain server did not start");
        return;
    }
    xfer x;
    int running = 1;
    CURLM *m = start_slow_request(&s, &x, &running);
    CHECKF(running >= 0, "drain: the request never reached the scheduler");
    kill(s.pid, SIGTERM);
    CHECKF(log_wait(&s, "draining", 5), "drain: no draining log line");
    xfer y, r;
    xfer_init(&y, &s, "/v1/audio/transcriptions", NULL);
    xfer_form(&y, FAST, g_audio, g_audio_len, "jfk.wav", "audio/x-wav");
    xfer_init(&r, &s, "/ready", NULL);
    run_one(&y);
    run_one(&r);
    if (y.status) expect_error(&y, "new request while draining", 503, NULL);
    CHECKF(y.status == 503 || y.curl_rc == CURLE_COULDNT_CONNECT, "drain: new request got %ld (curl %d)", y.status,
           y.curl_rc);
    CHECKF(r.status == 503 || r.curl_rc == CURLE_COULDNT_CONNECT, "drain: /ready got %ld", r.status);
    xfer_free(&y);
    xfer_free(&r);
    while (running) {
        curl_multi_perform(m, &running);
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)))
        if (msg->msg == CURLMSG_DONE) xfer_finish(&x, msg->data.result);
    curl_multi_remove_handle(m, x.e);
    curl_multi_cleanup(m);
    check_transcript(&x, "in-flight request during drain", AM_FMT_JSON);
    xfer_free(&x);
    const int rc = server_stop(&s, 0, 40);
    CHECKF(rc == 0, "drain: exit status %d", rc);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (!am_test_find("fixtures/ggml-test-tiny.en.bin", g_model, sizeof g_model) ||
        !am_test_find("audio/jfk.wav", g_wav, sizeof g_wav) || !am_test_exists(AM_BINARY_DIR "/amanuensis")) {
        SKIP_CASE("e2e_http", "fixture model, jfk.wav or the amanuensis binary missing");
        return am_test_finish("e2e_http", 0);
    }
    if (!(g_audio = am_test_read_file(g_wav, &g_audio_len))) {
        SKIP_CASE("e2e_http", "cannot read %s", g_wav);
        return am_test_finish("e2e_http", 0);
    }
    // the server's configuration comes from flags only
    unsetenv("AMANUENSIS_API_KEYS");
    unsetenv("AMANUENSIS_MAX_UPLOAD_MB");
    unsetenv("ENABLE_BATCHING");
    unsetenv("BATCH_MAX_SIZE");
    unsetenv("BATCH_MAX_WAIT_MS");
    unsetenv("AMANUENSIS_BEAM_SIZE");
    unsetenv("AMANUENSIS_BEST_OF");
    unsetenv("AMANUENSIS_PATIENCE");
    unsetenv("AMANUENSIS_LENGTH_PENALTY");
    unsetenv("AMANUENSIS_ALIGNMENT_HEADS");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const double t0 = am_time_s();
    double t = t0;
#define STEP(name)                                                          \
    do {                                                                    \
        printf("  %-12s %.2f s\n", name, am_time_s() - t);                   \
        fflush(stdout);                                                     \
        t = am_time_s();                                                    \
    } while (0)

    server s;
    const char *args[] = {"--max-upload-mb", "1", NULL};
    if (server_start(&s, args)) {
        CHECKF(0, "server did not start");
    } else {
        case_endpoints(&s);
        STEP("endpoints");
        case_success(&s);
        STEP("success");
        case_errors(&s);
        STEP("errors");
        case_words(&s);
        STEP("words");
        case_fuzz(&s);
        STEP("fuzz");
        case_disconnect(&s);
        STEP("disconnect");
        CHECKF(log_count(&s, "amanuensis: GET /health 200") >= 2, "no per-request log lines");
        CHECKF(server_stop(&s, SIGTERM, 30) == 0, "main server exit");
        STEP("stop");
    }
    case_auth();
    STEP("auth");
    case_queue_full();
    STEP("queue full");
    case_timeout();
    STEP("timeout");
    case_decode_defaults();
    STEP("defaults");
    case_drain();
    STEP("drain");
    printf("e2e_http: %.1f s\n", am_time_s() - t0);
    curl_global_cleanup();
    free(g_audio);
    return am_test_finish("e2e_http", 1);
}
