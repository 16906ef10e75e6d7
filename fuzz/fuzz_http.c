// fuzz_http.c — libFuzzer target: whole HTTP requests (request line, headers,
// multipart body) sent over TCP to the real server (am_http_start on
// 127.0.0.1, an ephemeral port) in front of a real scheduler (am_sched_create)
// with the tiny.en fixture and the Silero VAD model loaded, so every endpoint,
// the multipart parser, every form field, chunking_strategy (VAD chunking),
// streaming, transcription and every response format run.
//
// Server settings keep valid audio cheap: at most 1 s of audio, a 3 s request
// deadline, 2 decoding windows, an upload limit of 256 KiB (413 reachable), a
// 1 s idle timeout, one API key "sk-fuzz" (the seeds send it as the openai SDK
// does; requests without it exercise the 401 path), no request log. The tiny.en
// fixture is random and never ends a window early, so a valid request costs
// about 1 s (with temperature_inc=0; with fallback it runs into the deadline).
//
// Mutation: a custom mutator keeps most requests' Content-Length consistent
// with their body (see LLVMFuzzerCustomMutator).
//
// Per input: connect, send the bytes, read the response until the server
// closes, the response is complete (Content-Length, chunked end, or the
// headers of a HEAD) or 5 s pass, then close. The write side is half-closed
// (shutdown(SHUT_WR)) right after sending when the request is incomplete
// (headers unfinished, or a body shorter than its Content-Length / without its
// last chunk), so that the server sees EOF at once instead of waiting, and
// also for one complete request in four (size % 4 == 3). A complete request
// is not half-closed otherwise: the server's disconnect watcher treats a
// half-closed client as gone (POLLRDHUP) and cancels its transcription, so
// SHUT_WR on every input would never let a transcription finish. Closing after
// the first response also tests clients that leave with pipelined requests or
// a stream still open.
//
// AM_FUZZ_TRACE=1 in the environment prints one line per exchange (time,
// framing, the response's status line) on stderr.
//
// Nothing is asserted about the responses (the sanitizers find the bugs),
// except that the server still answers GET /health with 200 every
// HEALTH_EVERY inputs (else abort: a hung or dead server is a finding).
// libFuzzer's per-input leak check is off for this target (run it with
// -detect_leaks=0: allocations of the server's own threads would be blamed on
// whichever input is running); LeakSanitizer still checks at exit, after the
// server has been stopped and freed.
//
// One-time state (LLVMFuzzerInitialize, which libFuzzer requires for a setup
// that cannot be repeated per input; one static struct, written only there and
// by the exit handler): the model, tokenizer, metrics, scheduler and server,
// the port, the input counter for the health check, and a response buffer
// (scratch, rewritten by every exchange; 64 KiB kept off the stack).
//
// Corpus: fuzz/corpus/http (requests as the openai SDK sends them, plus
// malformed ones; fuzz/make-seeds.sh); dictionary: fuzz/http.dict.
#include <arpa/inet.h>
#include <errno.h>
#include <libavutil/log.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "am_http.h"
#include "am_metrics.h"
#include "am_sched.h"
#include "fuzz_common.h"

#define HEALTH_EVERY 64     // inputs between two /health checks
#define READ_TIMEOUT_S 5.0  // longest wait for a response (the server's deadline is 3 s)
#define RESPONSE_KEEP 65536 // bytes of a response kept for parsing (the rest is read and dropped)

// ---------------------------------------------------------------- response buffer
typedef struct {
    char buf[RESPONSE_KEEP + 1];
    size_t kept;  // bytes in buf (NUL-terminated)
    size_t total; // bytes read in all
} response;

// ---------------------------------------------------------------- one-time state
static struct {
    am_model *model;
    am_tokenizer *tok;
    am_metrics *metrics;
    am_sched *sched;
    am_http *http;
    int port;
    unsigned long n_inputs;
    response *resp;
} g;

static void stop_server(void) {
    if (g.http) am_http_stop(g.http, 2.0, NULL);
    am_sched_free(g.sched);
    am_metrics_free(g.metrics);
    am_tokenizer_free(g.tok);
    am_model_free(g.model);
    free(g.resp);
    memset(&g, 0, sizeof g);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN);
    av_log_set_level(AV_LOG_QUIET);
    setenv("AMANUENSIS_THREADS", "1", 0); // the machine is shared; one compute thread is plenty here
    char model[4096], vad[4096];
    if (!(g.resp = malloc(sizeof *g.resp))) fz_die("out of memory", NULL);
    if (!fz_find_tiny_model(model, sizeof model)) fz_die("ggml-test-tiny.en.bin not found", model);
    if (!fz_find_vad_model(vad, sizeof vad)) fz_die("ggml-silero-v6.2.0.bin not found", vad);
    if (!(g.model = am_model_load(model))) fz_die(model, am_last_error());
    g.tok = am_tokenizer_create(g.model->vocab_bytes, g.model->vocab_len, g.model->n_file_vocab,
                                g.model->hp.n_vocab);
    if (!g.tok || !(g.metrics = am_metrics_create())) fz_die("tokenizer/metrics", am_last_error());
    am_sched_params sp = am_sched_default_params();
    sp.max_batch_size = 2;
    sp.max_wait_ms = 5;
    sp.max_windows = 2;
    sp.max_queue = 8;
    sp.max_audio_s = 1.0;
    sp.default_timeout_s = 3.0;
    sp.vad_model = vad;
    if (!(g.sched = am_sched_create(g.model, g.tok, &sp, g.metrics))) fz_die("am_sched_create", am_last_error());
    static const char *const keys[] = {"sk-fuzz"};
    am_http_params hp = am_http_default_params();
    hp.host = "127.0.0.1";
    hp.port = 0;
    hp.max_upload_bytes = 256 << 10;
    hp.request_timeout_s = 3.0;
    hp.idle_timeout_s = 1; // a request left unfinished costs this long
    hp.threads = 2;
    hp.api_keys = keys;
    hp.n_api_keys = 1;
    hp.log_requests = 0;
    if (!(g.http = am_http_start(&hp, g.sched, g.metrics, g.model, g.tok))) fz_die("am_http_start", am_last_error());
    g.port = am_http_port(g.http);
    atexit(stop_server);
    return 0;
}

// ---------------------------------------------------------------- request shape
// Case-insensitive search for a header's value in the header block [p, end).
static const char *header_value(const char *p, const char *end, const char *name) {
    const size_t n = strlen(name);
    for (const char *line = p; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) eol = end;
        if ((size_t)(eol - line) > n && !strncasecmp(line, name, n) && line[n] == ':') return line + n + 1;
        line = eol + 1;
    }
    return NULL;
}

static const char *find(const char *p, size_t n, const char *needle) {
    return memmem(p, n, needle, strlen(needle));
}

// Whether the bytes hold one whole request (so that the server answers without
// waiting for more), as far as a quick look at the framing can tell.
static int request_complete(const char *d, size_t n) {
    const char *h_end = find(d, n, "\r\n\r\n");
    if (!h_end) return 0;
    const char *body = h_end + 4, *end = d + n;
    const size_t have = (size_t)(end - body);
    const char *te = header_value(d, h_end, "Transfer-Encoding");
    if (te) return have >= 5 && !memcmp(end - 5, "0\r\n\r\n", 5);
    const char *cl = header_value(d, h_end, "Content-Length");
    if (!cl) return 1;
    const unsigned long long want = strtoull(cl, NULL, 10);
    return have >= want;
}

// ---------------------------------------------------------------- mutation
// libFuzzer's own mutations, then (seven times in eight) the Content-Length
// header rewritten to the body's actual length: a body one byte shorter than
// its Content-Length makes the server wait for the rest until its idle timeout
// (1 s), so without this most mutations of a request cost a second each. The
// other eighth keeps whatever framing the mutation made (mismatches stay
// reachable). The rewritten bytes are the input libFuzzer runs and saves.
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static size_t fix_content_length(uint8_t *data, size_t size, size_t max_size) {
    const char *d = (const char *)data;
    const char *h_end = find(d, size, "\r\n\r\n");
    if (!h_end || header_value(d, h_end, "Transfer-Encoding")) return size;
    const char *v = header_value(d, h_end, "Content-Length");
    if (!v) return size;
    while (v < h_end && *v == ' ') v++;
    const char *e = v;
    while (e < h_end && *e >= '0' && *e <= '9') e++;
    if (e == v) return size;
    const size_t body = size - (size_t)(h_end + 4 - d);
    char digits[24];
    const size_t nd = (size_t)snprintf(digits, sizeof digits, "%zu", body);
    const size_t old = (size_t)(e - v), at = (size_t)(v - d);
    // the new digits change the header length, not the body's
    if (nd > old && size + (nd - old) > max_size) return size;
    memmove(data + at + nd, data + at + old, size - at - old);
    memcpy(data + at, digits, nd);
    return size + nd - old;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    size = LLVMFuzzerMutate(data, size, max_size);
    return seed % 8 ? fix_content_length(data, size, max_size) : size;
}

// ---------------------------------------------------------------- response shape
// Whether r holds a whole response (1xx interim responses skipped).
static int response_complete(const response *r, int head) {
    const char *p = r->buf, *end = r->buf + r->kept;
    for (;;) {
        const char *h_end = find(p, (size_t)(end - p), "\r\n\r\n");
        if (!h_end) return 0;
        if (end - p > 12 && !strncmp(p, "HTTP/1.1 1", 10)) { // 100 Continue
            p = h_end + 4;
            continue;
        }
        if (head) return 1;
        const char *body = h_end + 4;
        const char *cl = header_value(p, h_end, "Content-Length");
        if (cl) return r->total - (size_t)(body - r->buf) >= strtoull(cl, NULL, 10);
        if (header_value(p, h_end, "Transfer-Encoding")) // (a response longer than the buffer: wait for close)
            return r->total == r->kept && r->kept >= 5 && !memcmp(end - 5, "0\r\n\r\n", 5);
        return 0; // delimited by close
    }
}

// ---------------------------------------------------------------- one exchange
static int connect_server(void) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// Wait for fd to be ready for `events` until the deadline; 1 ready, 0 not.
static int wait_fd(int fd, short events, double deadline) {
    for (;;) {
        const double left = deadline - am_time_s();
        if (left <= 0) return 0;
        struct pollfd p = {.fd = fd, .events = events};
        const int rc = poll(&p, 1, (int)(left * 1000) + 1);
        if (rc > 0) return 1;
        if (rc < 0 && errno != EINTR) return 0;
    }
}

// Send, maybe half-close, read. Returns the response (r) and 0, or -1 when no
// connection could be made.
static int exchange(const uint8_t *data, size_t size, int half_close, response *r) {
    const int fd = connect_server();
    if (fd < 0) return -1;
    const double deadline = am_time_s() + READ_TIMEOUT_S;
    r->kept = r->total = 0;
    r->buf[0] = 0;
    const int head = size >= 5 && !memcmp(data, "HEAD ", 5);
    size_t sent = 0;
    while (sent < size && wait_fd(fd, POLLOUT, deadline)) { // the server may stop reading: never block
        const ssize_t k = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) sent += (size_t)k;
        else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
    }
    if (half_close) shutdown(fd, SHUT_WR);
    while (!response_complete(r, head) && wait_fd(fd, POLLIN, deadline)) {
        char tmp[16384];
        const ssize_t k = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (k == 0) break;
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
            break;
        }
        const size_t keep = AM_MIN((size_t)k, RESPONSE_KEEP - r->kept);
        memcpy(r->buf + r->kept, tmp, keep);
        r->kept += keep;
        r->total += (size_t)k;
        r->buf[r->kept] = 0;
    }
    close(fd);
    return 0;
}

static void health_check(response *r) {
    static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    for (int attempt = 0; attempt < 3; attempt++) {
        if (exchange((const uint8_t *)req, sizeof req - 1, 0, r) == 0 && !strncmp(r->buf, "HTTP/1.1 200", 12))
            return;
        usleep(200 * 1000);
    }
    FZ_ASSERT(0, "the server no longer answers GET /health (last answer: '%.200s')", r->buf);
}

// ---------------------------------------------------------------- one input
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const int complete = request_complete((const char *)data, size);
    const double t0 = am_time_s();
    exchange(data, size, !complete || size % 4 == 3, g.resp);
    if (getenv("AM_FUZZ_TRACE")) { // one line per exchange: time, framing, the response's status line
        const char *eol = strpbrk(g.resp->buf, "\r\n");
        fprintf(stderr, "fuzz_http: %6.0f ms %s%s %zu bytes -> %.*s\n", 1e3 * (am_time_s() - t0),
                complete ? "complete" : "incomplete", complete && size % 4 == 3 ? "+shut" : "", size,
                eol ? (int)(eol - g.resp->buf) : 60, g.resp->buf);
    }
    if (++g.n_inputs % HEALTH_EVERY == 0) health_check(g.resp);
    return 0;
}
