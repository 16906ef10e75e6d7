// bench_soak.c — a long mixed run against a server it starts, then the books.
//
// Starts `SERVER serve -m MODEL --port 0 --max-queue Q [--vad-model V] --timeout 600` (its stderr goes to
// a log file) and keeps 2 x Q requests in flight (libcurl multi) for --seconds (default $SOAK_SECONDS,
// else 600), each one drawn at random:
//   - a clip (every audio file of --audio-dir: wav, flac, mp3 ...; else tests/data/jfk.wav) in json, text,
//     srt, vtt, verbose_json, verbose_json with word timestamps, include[]=logprobs, stream=true (json or
//     text), chunking_strategy=auto (with a VAD model); most with temperature_inc=0 (the random-weight test
//     model would otherwise run every fallback temperature), some with the full fallback;
//   - a bad upload: garbage bytes, an empty file, no file, a bad field (400);
//   - a client that hangs up: during its upload (headers and part of the body, then close), at a random
//     moment within 2.5 s of its upload's end, or after the first event of a stream (of the longest clip).
// A request answered 429 (the queue holds Q) waits 300-1000 ms before its slot sends the next.
//
// At the end (the last requests answered, the server idle) it checks and prints:
//   - every request got an answer or was dropped by the client on purpose (no transport error, no
//     timeout), with the status its kind allows (no 5xx; a valid request 200 or 429; a bad one 400 or,
//     for garbage audio, 429) and a well-formed body;
//   - /metrics' amanuensis_http_requests_total per status class (2xx, 4xx but 499, 499, 5xx) equals the
//     client's: the responses it read, and its hang-ups as 499 (a hang-up that crossed the answer on the
//     wire is counted in the answer's class and reported as "crossed");
//   - /stats/batching and the scheduler's amanuensis_requests_total{result}: total_requests = ok + error +
//     cancelled + timed out; ok = the 200s read (+ crossed, + jobs that finished in the 50 ms before the
//     server saw their client leave); error = the invalid audio (and 5xx) read; every hang-up after
//     submission ended exactly once (cancelled, crossed or finished); nothing pending, no window active;
//   - RSS at the start, its peak (sampled every second) and at the end; open files at the start and the
//     end (equal);
//   - the server still healthy (/health, /ready), and it exits 0 on SIGTERM.
// Exit status 0 when every check passed, 1 otherwise, 2 on usage errors.
//
// usage: bench_soak [--server build/amanuensis] [--model tests/data/ggml-test-tiny.en.bin]
//                   [--vad-model data/ggml-silero-v6.2.0.bin] [--audio-dir DIR] [--seconds N]
//                   [--max-queue Q] [--concurrency N] [--seed N] [--log PATH] [--server-arg ARG]...
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "am_common.h"
#include "../tests/server.h" // /proc readers, http_get

#define MAX_CLIPS 64
#define MAX_SLOTS 256
#define BODY_CAP (256 * 1024) // response bytes kept per request

// ---------------------------------------------------------------- options
typedef struct {
    const char *server, *model, *vad, *audio_dir, *log;
    const char *extra[32];
    int n_extra;
    double seconds;
    int max_queue, concurrency;
    uint64_t seed;
} options;

static int usage(int rc) {
    fprintf(rc ? stderr : stdout,
            "usage: bench_soak [--server PATH] [--model PATH] [--vad-model PATH] [--audio-dir DIR] [--seconds N]\n"
            "                  [--max-queue Q] [--concurrency N] [--seed N] [--log PATH] [--server-arg ARG]...\n"
            "  --seconds defaults to $SOAK_SECONDS, else 600; --concurrency to 2 x --max-queue (default 4)\n");
    return rc;
}

static int file_exists(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0;
}

// ---------------------------------------------------------------- clips
typedef struct {
    char name[256];
    unsigned char *data;
    size_t len;
} clip;

static clip g_clips[MAX_CLIPS];
static int g_n_clips;

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = n > 0 ? malloc((size_t)n) : NULL;
    if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    if (d) *len = (size_t)n;
    return d;
}

static void add_clip(const char *path) {
    if (g_n_clips >= MAX_CLIPS) return;
    clip *c = &g_clips[g_n_clips];
    if (!(c->data = read_file(path, &c->len))) return;
    const char *base = strrchr(path, '/');
    snprintf(c->name, sizeof c->name, "%.255s", base ? base + 1 : path);
    g_n_clips++;
}

static void load_clips(const char *dir) {
    static const char *const exts[] = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"};
    DIR *d = dir ? opendir(dir) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *dot = strrchr(e->d_name, '.');
        int ok = 0;
        for (size_t i = 0; dot && i < AM_ARRAY_LEN(exts); i++) ok |= !strcmp(dot, exts[i]);
        if (!ok) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        add_clip(p);
    }
    if (d) closedir(d);
}

// ---------------------------------------------------------------- the server process
typedef struct {
    pid_t pid;
    int port;
    char log[512];
} server;

static int soak_server_start(server *s, const options *o) {
    const char *argv[64];
    int n = 0;
    char q[16];
    snprintf(q, sizeof q, "%d", o->max_queue);
    argv[n++] = o->server;
    argv[n++] = "serve";
    argv[n++] = "-m";
    argv[n++] = o->model;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--max-queue";
    argv[n++] = q;
    argv[n++] = "--timeout";
    argv[n++] = "600";
    if (o->vad) {
        argv[n++] = "--vad-model";
        argv[n++] = o->vad;
    }
    for (int i = 0; i < o->n_extra && n < 62; i++) argv[n++] = o->extra[i];
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        if (!freopen(s->log, "w", stderr)) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) { // up to 60 s for the model to load
        usleep(100000);
        size_t len = 0;
        char *t = (char *)read_file(s->log, &len);
        if (t) {
            t = realloc(t, len + 1);
            t[len] = 0;
            const char *at = strstr(t, "listening on http://");
            const char *nl = at ? strchr(at, '\n') : NULL;
            if (at && nl) {
                const char *colon = at + 20;
                for (const char *p = at + 20; p < nl; p++)
                    if (*p == ':') colon = p;
                s->port = atoi(colon + 1);
            }
            free(t);
        }
        if (s->port > 0) return 0;
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1;
        }
    }
    return -1;
}

static int soak_server_stop(server *s) {
    int st = -1;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 600; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) return st;
        usleep(100000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    return -1;
}

// ---------------------------------------------------------------- the books
enum { C_2XX, C_4XX, C_499, C_5XX, C_OTHER, N_CLASSES };
static const char *const class_names[N_CLASSES] = {"2xx", "4xx (not 499)", "499", "5xx", "other"};

static int class_of(long code) {
    if (code >= 200 && code < 300) return C_2XX;
    if (code == 499) return C_499;
    if (code >= 400 && code < 500) return C_4XX;
    if (code >= 500 && code < 600) return C_5XX;
    return C_OTHER;
}

// request kinds
enum {
    K_JSON, K_TEXT, K_SRT, K_VTT, K_VERBOSE, K_WORDS, K_LOGPROBS, K_STREAM, K_STREAM_TEXT, K_VAD,
    K_GARBAGE, K_EMPTY, K_MISSING, K_BAD_FIELD,
    K_DROP_UPLOAD, K_DROP_PROCESSING, K_DROP_STREAM,
    N_KINDS
};
static const char *const kind_names[N_KINDS] = {
    "json", "text", "srt", "vtt", "verbose_json", "verbose_json+words", "json+logprobs", "stream json", "stream text",
    "vad chunks", "garbage bytes", "empty file", "missing file", "bad field", "drop during upload",
    "drop while processed", "drop during stream"};
static const int kind_weight[N_KINDS] = {14, 6, 5, 5, 8, 6, 5, 7, 4, 6, 4, 3, 3, 5, 4, 8, 6};

typedef struct {
    long sent[N_KINDS];         // requests started
    long codes[N_KINDS][600];   // answers read, by status
    long dropped[N_KINDS];      // hung up on purpose with no answer read
    long lost;                  // transport errors / timeouts that were not hang-ups
    long unexpected;            // a status the kind does not allow
    long malformed;             // a 200 whose body is not what the format says
    long seen[N_CLASSES];       // every answer read (transcriptions and the soak's own GETs), by class
    long other_gets;            // the soak's own GETs
    long invalid_audio;         // 400 invalid_audio (the scheduler's audio decoding failed)
} books;

static books g_b;

// ---------------------------------------------------------------- requests
typedef struct {
    char *p;
    size_t n;
} buf;

typedef struct {
    int busy;
    int kind;
    CURL *e;
    curl_mime *mime;
    struct curl_slist *hdr;
    buf body;
    double start, wake_at;          // wake_at: the slot idles until then (after a 429)
    double drop_at, uploaded_at;    // K_DROP_PROCESSING: hang up drop_at seconds after the upload ended
    size_t abort_after;             // streams: hang up after this many bytes
    int aborted;                    // the write callback hung up
} slot;

static uint64_t g_rng;
static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static double rnd01(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    slot *s = user;
    const size_t k = size * n;
    if (s->body.n + k < BODY_CAP) {
        char *q = realloc(s->body.p, s->body.n + k + 1);
        if (q) {
            memcpy(q + s->body.n, p, k);
            s->body.p = q;
            s->body.n += k;
            q[s->body.n] = 0;
        }
    }
    long code = 0;
    if (s->abort_after && s->body.n >= s->abort_after && s->e &&
        curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200 &&
        !(s->body.p && strstr(s->body.p, "transcript.text.done"))) {
        s->aborted = 1;
        return 0; // hang up (a stream that is over already is read to its end)
    }
    return k;
}

static void add_field(curl_mime *m, const char *name, const char *value) {
    curl_mimepart *p = curl_mime_addpart(m);
    curl_mime_name(p, name);
    curl_mime_data(p, value, CURL_ZERO_TERMINATED);
}

static int pick_kind(int have_vad) {
    int total = 0;
    for (int k = 0; k < N_KINDS; k++) total += k == K_VAD && !have_vad ? 0 : kind_weight[k];
    int r = (int)(rnd() % (uint64_t)total);
    for (int k = 0; k < N_KINDS; k++) {
        const int w = k == K_VAD && !have_vad ? 0 : kind_weight[k];
        if (r < w) return k;
        r -= w;
    }
    return K_JSON;
}

// A request dropped during its upload: a raw connection sends the headers and part of the body, then closes.
static void drop_during_upload(int port, const clip *c) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to)) {
        if (fd >= 0) close(fd);
        g_b.lost++;
        return;
    }
    char head[768];
    const int hn = snprintf(head, sizeof head,
                            "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                            "multipart/form-data; boundary=SOAKBOUNDARY\r\nContent-Length: %zu\r\n\r\n"
                            "--SOAKBOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n\r\n",
                            c->len + 64, c->name);
    const size_t part = (size_t)(rnd01() * 0.9 * (double)c->len);
    int ok = send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn;
    for (size_t off = 0; ok && off < part;) {
        const ssize_t w = send(fd, c->data + off, part - off, MSG_NOSIGNAL);
        if (w <= 0) ok = 0;
        else off += (size_t)w;
    }
    close(fd);
    if (ok) g_b.dropped[K_DROP_UPLOAD]++;
    else g_b.lost++;
}

// Start slot s on a new request of the given kind.
static void start_request(CURLM *m, slot *s, int kind, int port, int have_vad) {
    const double wake = s->wake_at;
    memset(s, 0, sizeof *s);
    s->wake_at = wake;
    s->busy = 1;
    s->kind = kind;
    s->start = am_time_s();
    const clip *c = &g_clips[rnd() % (uint64_t)g_n_clips];
    if (kind == K_DROP_STREAM) // the longest clip: its first delta comes windows before the end
        for (int i = 0; i < g_n_clips; i++)
            if (g_clips[i].len > c->len) c = &g_clips[i];
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/audio/transcriptions", port);
    s->e = curl_easy_init();
    s->mime = curl_mime_init(s->e);
    static unsigned char garbage[4096];
    for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (unsigned char)rnd();
    if (kind != K_MISSING) {
        curl_mimepart *p = curl_mime_addpart(s->mime);
        curl_mime_name(p, "file");
        if (kind == K_GARBAGE) curl_mime_data(p, (const char *)garbage, 64 + rnd() % (sizeof garbage - 64));
        else if (kind == K_EMPTY) curl_mime_data(p, "", 0);
        else curl_mime_data(p, (const char *)c->data, c->len);
        curl_mime_filename(p, kind == K_GARBAGE ? "garbage.wav" : c->name);
    }
    add_field(s->mime, "model", "whisper-1");
    if (rnd01() < 0.85) add_field(s->mime, "temperature_inc", "0"); // else the full fallback
    switch (kind) {
    case K_TEXT: add_field(s->mime, "response_format", "text"); break;
    case K_SRT: add_field(s->mime, "response_format", "srt"); break;
    case K_VTT: add_field(s->mime, "response_format", "vtt"); break;
    case K_VERBOSE: add_field(s->mime, "response_format", "verbose_json"); break;
    case K_WORDS:
        add_field(s->mime, "response_format", "verbose_json");
        add_field(s->mime, "timestamp_granularities[]", "word");
        add_field(s->mime, "timestamp_granularities[]", "segment");
        break;
    case K_LOGPROBS: add_field(s->mime, "include[]", "logprobs"); break;
    case K_STREAM:
    case K_DROP_STREAM: add_field(s->mime, "stream", "true"); break;
    case K_STREAM_TEXT:
        add_field(s->mime, "stream", "true");
        add_field(s->mime, "response_format", "text");
        break;
    case K_VAD:
        add_field(s->mime, "chunking_strategy", "auto");
        if (rnd() & 1) add_field(s->mime, "response_format", "verbose_json");
        break;
    case K_BAD_FIELD: {
        static const char *const bad[][2] = {{"response_format", "xml"},     {"temperature", "5"},
                                             {"beam_size", "99"},           {"stream", "maybe"},
                                             {"timestamp_granularities[]", "sentence"},
                                             {"chunking_strategy", "sometimes"}, {"language", "klingon"}};
        const int i = (int)(rnd() % AM_ARRAY_LEN(bad));
        add_field(s->mime, bad[i][0], bad[i][1]);
        break;
    }
    default: break;
    }
    (void)have_vad;
    if (kind == K_DROP_PROCESSING) s->drop_at = 2.5 * rnd01(); // after the upload (seconds; see the main loop)
    if (kind == K_DROP_STREAM) s->abort_after = 8;                                // "data: {": the first event
    s->hdr = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(s->e, CURLOPT_URL, url);
    curl_easy_setopt(s->e, CURLOPT_MIMEPOST, s->mime);
    curl_easy_setopt(s->e, CURLOPT_HTTPHEADER, s->hdr);
    curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(s->e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->e, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->e, CURLOPT_TIMEOUT, 900L);
    curl_multi_add_handle(m, s->e);
    g_b.sent[kind]++;
}

static void release(CURLM *m, slot *s) {
    curl_multi_remove_handle(m, s->e); // closes the connection when the transfer did not finish
    curl_easy_cleanup(s->e);
    curl_mime_free(s->mime);
    curl_slist_free_all(s->hdr);
    free(s->body.p);
    s->e = NULL;
    s->mime = NULL;
    s->hdr = NULL;
    s->body.p = NULL;
    s->busy = 0;
}

// Whether a 200 body is what its kind promises.
static int well_formed(int kind, const char *b) {
    if (!b) return 0;
    switch (kind) {
    case K_TEXT: return b[0] != '{';
    case K_SRT: return !*b || b[0] == '1' || b[0] == '\n';
    case K_VTT: return !strncmp(b, "WEBVTT", 6);
    case K_STREAM:
    case K_STREAM_TEXT:
    case K_DROP_STREAM: return !strncmp(b, "data: ", 6) && strstr(b, "\"transcript.text.done\"") != NULL;
    default: {
        cJSON *o = cJSON_Parse(b);
        int ok = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "text"));
        if (kind == K_VERBOSE || kind == K_WORDS)
            ok &= cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, kind == K_WORDS ? "words" : "segments"));
        if (kind == K_LOGPROBS) ok &= cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "logprobs"));
        cJSON_Delete(o);
        return ok;
    }
    }
}

static int is_bad_kind(int k) { return k == K_GARBAGE || k == K_EMPTY || k == K_MISSING || k == K_BAD_FIELD; }

// A finished (or hung-up) transfer: count it.
static void account(slot *s, CURLcode rc, double now, int hung_up) {
    long code = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &code);
    const int k = s->kind;
    if (hung_up || (rc == CURLE_WRITE_ERROR && s->aborted)) { // on purpose: no answer read
        g_b.dropped[k]++;
        return;
    }
    if (rc != CURLE_OK || code == 0) {
        g_b.lost++;
        fprintf(stderr, "soak: %s request lost after %.1f s: %s\n", kind_names[k], now - s->start,
                curl_easy_strerror(rc));
        return;
    }
    g_b.codes[k][code < 600 ? code : 0]++;
    g_b.seen[class_of(code)]++;
    int ok;
    if (is_bad_kind(k)) ok = code == 400 || (k == K_GARBAGE && code == 429);
    else ok = code == 200 || code == 429;
    if (!ok) {
        g_b.unexpected++;
        fprintf(stderr, "soak: %s request answered %ld: %.300s\n", kind_names[k], code, s->body.p ? s->body.p : "");
    }
    if (code == 400 && s->body.p && strstr(s->body.p, "\"invalid_audio\"")) g_b.invalid_audio++;
    if (code == 200 && !well_formed(k, s->body.p)) {
        g_b.malformed++;
        fprintf(stderr, "soak: %s request: malformed 200 body: %.300s\n", kind_names[k], s->body.p ? s->body.p : "");
    }
}

// ---------------------------------------------------------------- the soak's own GETs (counted)
static long get(int port, const char *path, char **out) {
    const long code = http_get(port, path, out);
    if (code) {
        g_b.seen[class_of(code)]++;
        g_b.other_gets++;
    }
    return code;
}

static double json_num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

// ---------------------------------------------------------------- main
int main(int argc, char **argv) {
    options o = {.max_queue = 4, .seed = 0x5eed5eedULL};
    const char *env_s = getenv("SOAK_SECONDS");
    o.seconds = env_s && *env_s ? atof(env_s) : 600;
    static char default_server[1024];
    snprintf(default_server, sizeof default_server, "%s", argv[0]);
    char *slash = strrchr(default_server, '/');
    if (slash) snprintf(slash + 1, sizeof default_server - (size_t)(slash + 1 - default_server), "amanuensis");
    else snprintf(default_server, sizeof default_server, "./amanuensis");
    o.server = default_server;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(0);
        if (!v) return usage(2);
        if (!strcmp(a, "--server")) o.server = v;
        else if (!strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "--vad-model")) o.vad = v;
        else if (!strcmp(a, "--audio-dir")) o.audio_dir = v;
        else if (!strcmp(a, "--log")) o.log = v;
        else if (!strcmp(a, "--seconds")) o.seconds = atof(v);
        else if (!strcmp(a, "--max-queue")) o.max_queue = atoi(v);
        else if (!strcmp(a, "--concurrency")) o.concurrency = atoi(v);
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--server-arg") && o.n_extra < 32) o.extra[o.n_extra++] = v;
        else return usage(2);
        i++;
    }
    if (!o.model && file_exists("tests/data/ggml-test-tiny.en.bin")) o.model = "tests/data/ggml-test-tiny.en.bin";
    if (!o.vad && file_exists("data/ggml-silero-v6.2.0.bin")) o.vad = "data/ggml-silero-v6.2.0.bin";
    if (!o.concurrency) o.concurrency = 2 * o.max_queue;
    if (!o.model || !file_exists(o.server) || !(o.seconds > 0) || o.max_queue < 1 || o.concurrency < 1 ||
        o.concurrency > MAX_SLOTS) {
        fprintf(stderr, "bench_soak: need a model (--model), the server binary (--server %s), --seconds > 0, "
                        "--max-queue >= 1, --concurrency 1..%d\n",
                o.server, MAX_SLOTS);
        return usage(2);
    }
    // clips: the shared audio when there is some, else jfk.wav
    char dir[1024] = "";
    const char *tdata = getenv("AMANUENSIS_TEST_DATA");
    if (o.audio_dir) snprintf(dir, sizeof dir, "%s", o.audio_dir);
    else if (tdata && *tdata) snprintf(dir, sizeof dir, "%s/audio", tdata);
    else snprintf(dir, sizeof dir, "../shared/audio");
    load_clips(dir);
    if (!g_n_clips && !o.audio_dir) load_clips("/work/shared/audio");
    if (!g_n_clips) add_clip("tests/data/jfk.wav");
    if (!g_n_clips) {
        fprintf(stderr, "bench_soak: no audio clips (--audio-dir, or run from the repository root)\n");
        return 2;
    }
    g_rng = o.seed ? o.seed : 1;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    server srv = {0};
    if (o.log) snprintf(srv.log, sizeof srv.log, "%s", o.log);
    else snprintf(srv.log, sizeof srv.log, "/tmp/amanuensis-soak-%d.log", (int)getpid());
    if (soak_server_start(&srv, &o)) {
        fprintf(stderr, "bench_soak: the server did not start (log %s)\n", srv.log);
        return 1;
    }
    const int port = srv.port;
    printf("soak: server %s pid %d port %d (log %s), %d clips, %.0f s, --max-queue %d, %d in flight, VAD %s, "
           "seed %llu\n",
           o.server, (int)srv.pid, port, srv.log, g_n_clips, o.seconds, o.max_queue, o.concurrency,
           o.vad ? o.vad : "none", (unsigned long long)o.seed);
    fflush(stdout);
    char *b = NULL;
    get(port, "/health", &b);
    free(b);
    usleep(300000);
    const int fd_start = test_fd_count(srv.pid);
    const long rss_start = test_rss_kb(srv.pid);
    long rss_peak = rss_start;
    int fd_peak = fd_start;

    CURLM *m = curl_multi_init();
    slot *slots = calloc((size_t)o.concurrency, sizeof *slots);
    const double t0 = am_time_s(), t_end = t0 + o.seconds;
    double next_sample = t0, next_report = t0 + 30;
    int running = 0;
    for (;;) {
        const double now = am_time_s();
        const int accepting = now < t_end;
        int busy = 0;
        for (int i = 0; i < o.concurrency; i++) {
            slot *s = &slots[i];
            if (!s->busy && accepting && now >= s->wake_at) {
                const int kind = pick_kind(o.vad != NULL);
                if (kind == K_DROP_UPLOAD) {
                    g_b.sent[kind]++;
                    drop_during_upload(port, &g_clips[rnd() % (uint64_t)g_n_clips]);
                    s->wake_at = now + 0.05;
                    continue;
                }
                start_request(m, s, kind, port, o.vad != NULL);
            }
            busy += s->busy;
        }
        if (!accepting && busy == 0) break;
        if (!accepting && now > t_end + 900) {
            fprintf(stderr, "soak: %d requests still in flight 900 s after the end\n", busy);
            break;
        }
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            slot *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            account(s, msg->data.result, am_time_s(), 0);
            long code = 0;
            curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &code);
            release(m, s);
            if (code == 429) s->wake_at = am_time_s() + 0.3 + 0.7 * rnd01();
        }
        // hang-ups due now (what already arrived was read first): drop_at counts from the end of the upload, so
        // that the request is in the scheduler (or answered) when the client leaves
        for (int i = 0; i < o.concurrency; i++) {
            slot *s = &slots[i];
            if (!s->busy || s->kind != K_DROP_PROCESSING) continue;
            if (!s->uploaded_at) {
                curl_off_t up = 0, total = -1;
                curl_easy_getinfo(s->e, CURLINFO_SIZE_UPLOAD_T, &up);
                curl_easy_getinfo(s->e, CURLINFO_CONTENT_LENGTH_UPLOAD_T, &total);
                if (total > 0 && up >= total) s->uploaded_at = am_time_s();
                continue;
            }
            if (am_time_s() < s->uploaded_at + s->drop_at) continue;
            account(s, CURLE_OK, am_time_s(), 1);
            release(m, s);
        }
        if (am_time_s() >= next_sample) {
            const long r = test_rss_kb(srv.pid);
            const int f = test_fd_count(srv.pid);
            if (r > rss_peak) rss_peak = r;
            if (f > fd_peak) fd_peak = f;
            next_sample += 1.0;
        }
        if (am_time_s() >= next_report) {
            long sent = 0;
            for (int k = 0; k < N_KINDS; k++) sent += g_b.sent[k];
            printf("soak: %4.0f s: %ld requests, RSS %ld kB (peak %ld), %d open files\n", am_time_s() - t0, sent,
                   test_rss_kb(srv.pid), rss_peak, test_fd_count(srv.pid));
            fflush(stdout);
            next_report += 30;
        }
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    const double t_load = am_time_s() - t0;
    curl_multi_cleanup(m);
    free(slots);

    // ---- settle: nothing pending, no window active, the connections closed
    int checks_failed = 0;
#define SOAK_CHECK(cond, ...)                          \
    do {                                               \
        const int ok_ = (cond);                        \
        printf("  [%s] ", ok_ ? "ok" : "FAILED");      \
        printf(__VA_ARGS__);                           \
        putchar('\n');                                 \
        checks_failed += !ok_;                         \
    } while (0)
    cJSON *st = NULL;
    int fd_end = -1;
    const double t_settle = am_time_s();
    while (am_time_s() - t_settle < 120) {
        cJSON_Delete(st);
        char *body = NULL;
        get(port, "/stats/batching", &body);
        st = cJSON_Parse(body);
        free(body);
        fd_end = test_fd_count(srv.pid);
        if (json_num(st, "pending_results") == 0 && json_num(st, "active_sequences") == 0 && fd_end == fd_start) break;
        usleep(100000);
    }
    const long rss_end = test_rss_kb(srv.pid);
    char *health = NULL, *ready = NULL;
    const long h_code = get(port, "/health", &health), r_code = get(port, "/ready", &ready);
    free(health);
    free(ready);
    cJSON_Delete(st);
    char *sb = NULL;
    get(port, "/stats/batching", &sb);
    st = cJSON_Parse(sb);
    free(sb);
    char *metrics = NULL;
    http_get(port, "/metrics", &metrics); // not counted: it is not in its own body
    long server[N_CLASSES] = {0}, server_tx[N_CLASSES] = {0};
    double sched_ok = NAN, sched_error = NAN; // amanuensis_requests_total{result="ok" / "error"}
    {
        const char *ok_at = metrics ? strstr(metrics, "\namanuensis_requests_total{result=\"ok\"}") : NULL;
        const char *err_at = metrics ? strstr(metrics, "\namanuensis_requests_total{result=\"error\"}") : NULL;
        if (ok_at) sched_ok = atof(strchr(ok_at, '}') + 1);
        if (err_at) sched_error = atof(strchr(err_at, '}') + 1);
    }
    for (const char *p = metrics; p && (p = strstr(p, "\namanuensis_http_requests_total{")); p++) {
        const char *code = strstr(p, "code=\"");
        const char *nl = strchr(p + 1, '\n');
        if (!code || (nl && code > nl)) continue;
        const char *v = strchr(code, '}');
        const long n = v ? atol(v + 1) : 0;
        const int c = class_of(atoi(code + 6));
        server[c] += n;
        const char *tx = strstr(p, "endpoint=\"transcriptions\"");
        if (tx && tx < code) server_tx[c] += n;
    }
    free(metrics);

    // ---- the report
    long sent = 0, dropped = 0, drops_after_submit = 0;
    printf("\nsoak: %.0f s of load (%.0f s with the last answers), %d clips, %d in flight, --max-queue %d\n", o.seconds,
           t_load, g_n_clips, o.concurrency, o.max_queue);
    printf("  %-22s %7s %7s %7s %7s %7s %8s\n", "kind", "sent", "200", "400", "429", "other", "dropped");
    for (int k = 0; k < N_KINDS; k++) {
        long other = 0;
        for (int c = 0; c < 600; c++)
            if (c != 200 && c != 400 && c != 429) other += g_b.codes[k][c];
        printf("  %-22s %7ld %7ld %7ld %7ld %7ld %8ld\n", kind_names[k], g_b.sent[k], g_b.codes[k][200],
               g_b.codes[k][400], g_b.codes[k][429], other, g_b.dropped[k]);
        sent += g_b.sent[k];
        dropped += g_b.dropped[k];
    }
    drops_after_submit = g_b.dropped[K_DROP_PROCESSING] + g_b.dropped[K_DROP_STREAM];
    long tx_200 = 0, tx_5xx = 0;
    for (int k = 0; k < N_KINDS; k++) {
        tx_200 += g_b.codes[k][200];
        for (int c = 500; c < 600; c++) tx_5xx += g_b.codes[k][c];
    }
    printf("  total %ld requests, %ld answers read, %ld hung up on purpose; %ld GETs of the soak itself\n", sent,
           sent - dropped - g_b.lost, dropped, g_b.other_gets);
    printf("  RSS: %ld kB at the start, %ld kB peak, %ld kB at the end; open files: %d at the start, %d peak, %d at "
           "the end\n",
           rss_start, rss_peak, rss_end, fd_start, fd_peak, fd_end);
    printf("checks:\n");
    SOAK_CHECK(g_b.lost == 0, "every request answered or hung up on purpose (%ld lost)", g_b.lost);
    SOAK_CHECK(g_b.unexpected == 0, "every status allowed for its kind (%ld unexpected)", g_b.unexpected);
    SOAK_CHECK(g_b.malformed == 0, "every 200 body well-formed (%ld malformed)", g_b.malformed);
    // the books: per class the server's count = what the client read, its hang-ups = the 499s; a hang-up
    // whose answer was already on the wire is in the answer's class instead ("crossed")
    long crossed = 0, crossed_2xx = 0;
    int classes_ok = 1;
    for (int c = 0; c < N_CLASSES; c++) {
        if (c == C_499) continue;
        const long d = server[c] - g_b.seen[c];
        if (d < 0 || (c != C_2XX && c != C_4XX && d != 0)) classes_ok = 0;
        if (d > 0) crossed += d;
        if (c == C_2XX && d > 0) crossed_2xx = d;
    }
    const long drops_reaching = dropped; // every hang-up happens after the request's headers went out
    classes_ok &= server[C_499] + crossed == drops_reaching && crossed <= drops_after_submit;
    for (int c = 0; c < N_CLASSES; c++)
        printf("    %-14s server %7ld   client %7ld\n", class_names[c], server[c],
               c == C_499 ? drops_reaching - crossed : g_b.seen[c]);
    SOAK_CHECK(classes_ok, "/metrics request totals per status class equal the client's (%ld hang-up(s) crossed "
                           "their answer)", crossed);
    const double total_requests = json_num(st, "total_requests"), cancelled = json_num(st, "cancelled");
    const double timed_out = json_num(st, "timed_out");
    // what the scheduler finished: the 200s, the invalid audio, the cancelled, the timed out, the 5xx
    // A hang-up after submission ends in the scheduler as cancelled, or as a success when the job finished
    // before the watcher saw the hang-up ("late": the HTTP layer still logs 499), or crossed its answer.
    const double late = sched_ok - (double)(tx_200 + crossed_2xx);
    SOAK_CHECK(late >= 0 && sched_ok + sched_error + cancelled + timed_out == total_requests,
               "/stats/batching total_requests %.0f = %.0f ok (%ld x 200 read + %ld crossed + %.0f finished after "
               "their client left) + %.0f failed + %.0f cancelled + %.0f timed out",
               total_requests, sched_ok, tx_200, crossed_2xx, late, sched_error, cancelled, timed_out);
    SOAK_CHECK(sched_error == (double)(g_b.invalid_audio + tx_5xx),
               "the scheduler's failures %.0f = %ld invalid audio + %ld x 5xx read", sched_error, g_b.invalid_audio,
               tx_5xx);
    SOAK_CHECK(cancelled + (double)crossed + late == (double)drops_after_submit,
               "each of the %ld hang-ups after submission ended once: %.0f cancelled + %ld crossed + %.0f finished "
               "anyway", drops_after_submit, cancelled, crossed, late);
    SOAK_CHECK(json_num(st, "total_errors") == (double)(server_tx[C_4XX] + server_tx[C_499] + server_tx[C_5XX]),
               "/stats/batching total_errors %.0f = the transcription endpoint's error answers in /metrics",
               json_num(st, "total_errors"));
    SOAK_CHECK(json_num(st, "pending_results") == 0 && json_num(st, "active_sequences") == 0,
               "nothing pending (%.0f), no window active (%.0f)", json_num(st, "pending_results"),
               json_num(st, "active_sequences"));
    SOAK_CHECK(fd_end == fd_start, "open files back to the start: %d / %d", fd_end, fd_start);
    SOAK_CHECK(h_code == 200 && r_code == 200, "still healthy: /health %ld, /ready %ld", h_code, r_code);
    cJSON_Delete(st);
    const int rc = soak_server_stop(&srv);
    SOAK_CHECK(rc == 0, "exit status 0 on SIGTERM (%d)", rc);
    printf("soak: %s (server log %s)\n", checks_failed ? "FAILED" : "passed", srv.log);
    curl_global_cleanup();
    for (int i = 0; i < g_n_clips; i++) free(g_clips[i].data);
    return checks_failed ? 1 : 0;
}
