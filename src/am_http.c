// am_http.c — libmicrohttpd front end: routing, multipart parsing, auth,
// OpenAI-shaped errors, suspend/resume around the scheduler, disconnect
// watching, metrics and request logging.
//
// Request lifetime. Every request has a context (struct request) created on
// the first access-handler call. It holds one reference for libmicrohttpd
// (dropped in the completed notification) and, once submitted, one for the
// scheduler (dropped at the end of the completion callback); whoever drops
// the last frees it. All shared flags (submitted/done/suspended, the watch
// list, counters, the connection contexts) are guarded by h->mu, and no MHD
// function but MHD_get_connection_info (which takes no lock) is ever called
// with h->mu held.
//
// Suspend / resume protocol (no lost wake-up either way round):
//   handler:  submit; MHD_suspend_connection; lock; if done -> resume it
//             ourselves, else suspended = 1 and join the watch list; unlock
//   callback: lock; store result, done = 1; if suspended -> leave the watch
//             list, suspended = 0, remember to resume; unlock; resume;
//             lock; pending--, unref; unlock
// The resumed connection re-enters the handler, which renders the result.
//
// Disconnects: MHD does not watch suspended sockets, so a watcher thread polls
// their fds every WATCH_INTERVAL_MS (POLLHUP/POLLERR, or POLLRDHUP/POLLIN with
// recv(MSG_PEEK) == 0) and calls am_sched_cancel(id); the scheduler then
// completes with AM_ECANCELED, which resumes the connection so MHD cleans up.
// The watcher only ever uses copied ids, never contexts, outside the lock.
//
// Deadlines (header_timeout_s, upload_timeout_s). libmicrohttpd's connection
// timeout is an idle timeout (every byte resets it), so a client trickling a
// byte a second would hold a connection forever. Every connection has a
// context (struct hconn, MHD's socket context, created and freed in the
// connection notifications) on at most one of two deadline lists (h->mu):
// waiting for request headers (from its accept, or from the end of its
// previous request) and receiving a request body (from its headers). Each list
// has one timeout, so appending keeps it in deadline order. The watcher
// thread pops expired connections every WATCH_INTERVAL_MS and, still under
// h->mu (so the socket cannot have been closed: the close notification takes
// the lock first), writes a 408 on the socket when nothing else was answered
// there and shuts the socket down; libmicrohttpd then sees the end of the
// stream and closes the connection as if the client had gone. The access
// handler moves a connection between the lists (request_new: headers -> body;
// the body complete or an answer queued -> none; on_completed -> headers) and
// refuses to go on with a connection the watcher cut.
#include "am_http.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "am_common.h"
#include "am_format.h"

#define BODY_SLACK (64 * 1024)         // multipart framing + text fields allowed beyond the file limit
#define FIELD_MAX (16 * 1024)          // longest accepted text field
#define PP_BUFFER (64 * 1024)          // MHD post processor buffer
#define CONN_MEMORY_EXTRA (192 * 1024) // MHD per-connection memory beyond max_header_bytes (read buffer, answer)
#define WATCH_INTERVAL_MS 50           // disconnect polling period
#define STATUS_CLIENT_GONE 499         // logged / counted when the client went away first

// EP_CONNECTION: what is answered before a request's URL is known (header
// timeouts, libmicrohttpd's own 4xx for unparseable or oversized headers)
enum { EP_TRANSCRIBE, EP_TRANSLATE, EP_HEALTH, EP_READY, EP_MODELS, EP_STATS, EP_METRICS, EP_OTHER, EP_CONNECTION };
static const char *const ep_label[] = {"transcriptions", "translations", "health", "ready",     "models",
                                       "stats",          "metrics",      "other",  "connection"};

// PH_DEFER: a request answered once fully received (keeps the connection
// alive; answering from the first call would make MHD close it).
enum { PH_DEFER, PH_BODY, PH_WAIT, PH_ANSWERED };
#define DISCARD_MAX (1 << 20) // body bytes ignored on a deferred request before closing

// text form fields we keep
enum {
    F_MODEL,
    F_LANGUAGE,
    F_PROMPT,
    F_FORMAT,
    F_TEMPERATURE,
    F_TEMPERATURE_INC,
    F_PRIORITY,
    F_STREAM,
    F_BEAM_SIZE,
    F_BEST_OF,
    F_PATIENCE,
    F_LENGTH_PENALTY,
    F_WITHOUT_TIMESTAMPS,
    F_CHUNKING,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {
    "model",    "language",  "prompt",  "response_format", "temperature",    "temperature_inc",    "priority",
    "stream",   "beam_size", "best_of", "patience",        "length_penalty", "without_timestamps", "chunking_strategy"};
// what the current multipart part is
enum {
    PART_IGNORE = -1,
    PART_FILE = F_COUNT,
    PART_GRANULARITY,  // timestamp_granularities[] (repeated)
    PART_INCLUDE,      // include[] (repeated)
    PART_CHUNKING_KEY, // chunking_strategy[KEY]: the object as OpenAI's SDKs flatten it into form fields
    PART_UNSUPPORTED,  // fields OpenAI accepts that this server cannot honour: a 400 naming them
};
static const char *const unsupported_fields[] = {"known_speaker_names[]", "known_speaker_names",
                                                 "known_speaker_references[]", "known_speaker_references"};
#define SSE_CHUNK 4096 // bytes per streamed block

typedef struct request request;
typedef struct hconn hconn;

// Where a connection is (conn.state).
enum {
    CONN_HEADERS, // waiting for a request's headers (deadline list DL_HEADERS)
    CONN_BODY,    // receiving a request's body (DL_BODY)
    CONN_BUSY,    // the request is being processed or answered: no deadline
    CONN_CUT,     // shut down by the watcher at a deadline
};
enum { DL_HEADERS, DL_BODY, DL_COUNT };

// One TCP connection (libmicrohttpd's socket context); all fields under h->mu.
struct hconn {
    struct MHD_Connection *mc;
    int fd;
    int state;
    int served;        // requests completed on it (a kept-alive connection is closed without a 408)
    double since;      // when the current state began
    double deadline;   // on a deadline list: when it expires
    int list;          // DL_HEADERS / DL_BODY, or -1
    hconn *prev, *next; // in h->dl[list]
    request *rq;       // the request of CONN_BODY / CONN_BUSY (NULL once it completed)
};

struct am_http {
    am_http_params p;
    char *host;
    char **keys;
    size_t *key_lens;
    am_sched *sched;
    am_metrics *metrics;
    const am_model *model;
    const am_tokenizer *tok;
    struct MHD_Daemon *daemon;
    int port;
    long created;     // unix time at start (the /v1/models "created")
    const char *mode; // "batched" / "sequential"
    pthread_mutex_t mu;
    pthread_cond_t cv;
    request *watch;   // suspended transcription requests (doubly linked)
    int n_suspended;  // in the watch list
    int n_pending;    // submitted, completion callback not finished
    int n_live;       // request contexts alive
    int draining, stopping;
    // the drain grace (params.drain_grace_s): new requests are still served until it is over
    int grace_over;       // set once, never cleared
    double t_drain;       // am_http_begin_drain
    double t_last_upload; // the last transcription request accepted
    int n_uploading;      // accepted requests whose body is still being received
    size_t upload_held;   // bytes of the requests' upload buffers (rq->audio_cap summed)
    pthread_t watcher;
    int watcher_started;
    am_http_counts counts;
    atomic_ulong next_rid;
    unsigned long rid_seed;
    // connections (h->mu)
    hconn *dl_head[DL_COUNT], *dl_tail[DL_COUNT]; // deadline lists, oldest first
    int n_conns;            // open connections
    double t_limit_logged;  // the last "at the connection limit" line
    double log_window;      // libmicrohttpd's messages: rate limit (start of the current second)
    int log_in_window;      // messages printed in it
    long log_suppressed;    // messages not printed since the last one that was
};

struct request {
    am_http *h;
    struct MHD_Connection *conn;
    char method[16];
    char url[160];
    char id[40];
    int ep, phase;
    int refs;         // MHD + scheduler (h->mu)
    hconn *cn;        // its connection (h->mu; NULL once on_completed ran)
    int queued;       // a response of ours was queued (MHD thread)
    atomic_int cut;   // the watcher shut the connection down at the upload deadline (408 written)
    int close_status; // the status recorded when the handler closes the connection without an answer
    int n_parts;      // multipart parts seen
    double t_start;
    // first error found while receiving
    int err_status;
    const char *err_param, *err_code;
    char err_msg[256];
    // body
    struct MHD_PostProcessor *pp;
    size_t body_bytes;
    unsigned char *audio;
    size_t audio_len, audio_cap;
    int have_file;
    char *fields[F_COUNT];
    int gran_word, gran_segment; // timestamp_granularities[] values seen
    int inc_logprobs;            // include[]=logprobs seen
    cJSON *chunking_keys;        // chunking_strategy[KEY] fields seen, as one object (NULL: none)
    int header_priority, has_header_priority;
    // current multipart part
    int part_open, part_kind;
    char part_key[64];
    size_t part_len;
    unsigned char *part_buf;
    size_t part_cap;
    // scheduling (h->mu)
    am_format fmt;
    am_format_extra fx; // words / segments of verbose_json (from the granularities)
    uint64_t sched_id;
    int submitted, done, suspended, responded;
    int uploading;    // counted in h->n_uploading (h->mu)
    int fd;
    request *wprev, *wnext;
    // result (written by the callback before done = 1)
    int res_status;
    char res_msg[256];
    am_job *job;
    // streaming (stream=true): server-sent events produced by the scheduler's
    // callbacks, sent by the content reader (all under h->mu)
    int stream;
    unsigned char *sse;       // events not yet sent: sse[sse_off..sse_len)
    size_t sse_len, sse_cap, sse_off;
    int sse_final;            // the last event is in the buffer
    int sse_status;           // the status logged once the stream ends (200, or the error's)
    int sse_lost;             // an event could not be queued (out of memory)
    size_t text_sent;         // bytes of the (stripped) text sent as deltas (scheduler threads only)
    int tok_sent;             // tokens of the progress snapshots whose log-probabilities were sent (idem)
};

am_http_params am_http_default_params(void) {
    am_http_params p = {
        .host = "127.0.0.1",
        .port = 9050,
        .max_upload_bytes = (size_t)25 << 20,
        .request_timeout_s = 60.0,
        .idle_timeout_s = 30,
        .threads = 2,
        .api_keys = NULL,
        .n_api_keys = 0,
        .log_requests = 1,
        .beam_size = 0,
        .best_of = 0,
        .patience = 1.0,
        .length_penalty = NAN,
        .drain_grace_s = 0,
        .max_connections = 1024,
        .max_connections_per_ip = 0,
        .header_timeout_s = 30,
        .upload_timeout_s = 300,
        .max_header_bytes = (size_t)64 << 10,
        .max_form_parts = 64,
        .upload_memory_bytes = (size_t)2 << 30,
    };
    return p;
}

// ---------------------------------------------------------------- small helpers
static void trim(char *s) {
    size_t n = strlen(s), a = 0;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
    while (s[a] == ' ' || s[a] == '\t') a++;
    if (a) memmove(s, s + a, n - a + 1);
}

static int parse_unit_double(const char *s, double *out) {
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < 0 || v > 1) return -1;
    *out = v;
    return 0;
}

// Any finite number.
static int parse_number(const char *s, double *out) {
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < -1000000 || v > 1000000) return -1;
    *out = (int)v;
    return 0;
}

// "true"/"false" (any case) or 1/0.
static int parse_bool(const char *s, int *out) {
    if (!strcasecmp(s, "true") || !strcmp(s, "1")) *out = 1;
    else if (!strcasecmp(s, "false") || !strcmp(s, "0")) *out = 0;
    else return -1;
    return 0;
}

// OpenAI's server_vad object (parsed JSON, or the chunking_strategy[KEY] form fields gathered into one).
static int parse_chunking_object(const cJSON *o, int *chunking, am_vad_params *vad, char *msg, size_t cap) {
    *vad = am_vad_default_params();
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "server_vad")) {
        snprintf(msg, cap, "chunking_strategy.type must be \"server_vad\"");
        return -1;
    }
    for (const cJSON *it = o->child; it; it = it->next) {
        const char *k = it->string ? it->string : "";
        const double x = it->valuedouble;
        if (!strcmp(k, "type")) continue;
        if (!strcmp(k, "threshold")) {
            if (!cJSON_IsNumber(it) || !((float)x > 0.0f && (float)x < 1.0f)) { // as the VAD stores it
                snprintf(msg, cap, "chunking_strategy.threshold must be a number between 0 and 1 (exclusive)");
                return -1;
            }
            vad->threshold = (float)x;
        } else if (!strcmp(k, "prefix_padding_ms") || !strcmp(k, "silence_duration_ms")) {
            const int pad = !strcmp(k, "prefix_padding_ms");
            const double hi = pad ? 60000 : 3600000;
            if (!cJSON_IsNumber(it) || x != floor(x) || x < 0 || x > hi) {
                snprintf(msg, cap, "chunking_strategy.%s must be an integer between 0 and %.0f", k, hi);
                return -1;
            }
            if (pad) vad->speech_pad_ms = (int)x;
            else vad->min_silence_ms = (int)x;
        } else {
            snprintf(msg, cap, "chunking_strategy: unknown key '%.64s' (expected type, threshold, prefix_padding_ms, "
                               "silence_duration_ms)", k);
            return -1;
        }
    }
    *chunking = AM_CHUNK_VAD;
    return 0;
}

int am_http_parse_chunking(const char *v, int *chunking, am_vad_params *vad, char *msg, size_t cap) {
    *vad = am_vad_default_params();
    if (!strcmp(v, "auto") || !strcmp(v, "none")) {
        *chunking = !strcmp(v, "auto") ? AM_CHUNK_VAD : AM_CHUNK_SEEK;
        return 0;
    }
    cJSON *o = cJSON_ParseWithLength(v, strlen(v));
    int rc = -1;
    if (!cJSON_IsObject(o))
        snprintf(msg, cap, "chunking_strategy must be \"auto\" or a JSON object {\"type\": \"server_vad\", ...}");
    else
        rc = parse_chunking_object(o, chunking, vad, msg, cap);
    cJSON_Delete(o);
    return rc;
}

// Constant-time in the key bytes: every key is compared in full, no early exit.
static int key_ok(const am_http *h, const char *given, size_t glen) {
    unsigned ok = 0;
    for (int k = 0; k < h->p.n_api_keys; k++) {
        const char *key = h->keys[k];
        const size_t klen = h->key_lens[k];
        unsigned diff = glen != klen;
        for (size_t i = 0; i < klen; i++)
            diff |= (unsigned)((unsigned char)key[i] ^ (unsigned char)(i < glen ? given[i] : 0));
        ok |= diff == 0;
    }
    return (int)ok;
}

// ---------------------------------------------------------------- drain grace (h->mu held)
// Whether new transcription requests are served: always before the drain; during
// it, until drain_grace_s has passed with no request arriving and no upload in
// progress (at most AM_HTTP_GRACE_CAP * drain_grace_s after the drain began).
// Once over, the grace stays over.
static int accepting_locked(am_http *h) {
    if (!h->draining) return 1;
    if (h->grace_over) return 0;
    const double g = h->p.drain_grace_s, now = am_time_s();
    const double quiet_since = h->t_last_upload > h->t_drain ? h->t_last_upload : h->t_drain;
    if (now - h->t_drain >= AM_HTTP_GRACE_CAP * g || (h->n_uploading == 0 && now - quiet_since >= g))
        h->grace_over = 1;
    return !h->grace_over;
}

static void uploading_end_locked(am_http *h, request *rq) {
    if (!rq->uploading) return;
    rq->uploading = 0;
    h->n_uploading--;
}

// ---------------------------------------------------------------- connections and deadlines (h->mu held)
static void dl_remove(am_http *h, hconn *c) {
    if (c->list < 0) return;
    const int l = c->list;
    if (c->prev) c->prev->next = c->next;
    else h->dl_head[l] = c->next;
    if (c->next) c->next->prev = c->prev;
    else h->dl_tail[l] = c->prev;
    c->prev = c->next = NULL;
    c->list = -1;
}

// Move c to `state`; onto the end of its deadline list when the state has a
// timeout (one timeout per list: appending keeps the list in deadline order).
static void conn_enter(am_http *h, hconn *c, int state, double now) {
    dl_remove(h, c);
    c->state = state;
    c->since = now;
    const int l = state == CONN_HEADERS ? DL_HEADERS : state == CONN_BODY ? DL_BODY : -1;
    const double t = l == DL_HEADERS ? h->p.header_timeout_s : l == DL_BODY ? h->p.upload_timeout_s : 0;
    if (l < 0 || !(t > 0)) return;
    c->deadline = now + t;
    c->list = l;
    c->next = NULL;
    c->prev = h->dl_tail[l];
    if (c->prev) c->prev->next = c;
    else h->dl_head[l] = c;
    h->dl_tail[l] = c;
}

// A whole HTTP/1.1 error answer in OpenAI's shape written straight on a socket
// (a deadline cut by the watcher, or a close from the handler while a body is
// still arriving, where libmicrohttpd cannot queue one). Best effort, never
// blocks: msg must need no JSON escaping.
static void raw_error(int fd, int status, const char *reason, const char *code, const char *id, const char *msg) {
    char body[512], out[1024];
    const int nb = snprintf(body, sizeof body,
                            "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                            "\"code\":\"%s\"}}",
                            msg, status >= 500 ? "server_error" : "invalid_request_error", code);
    if (fd < 0 || nb < 0 || (size_t)nb >= sizeof body) return;
    const int n = snprintf(out, sizeof out,
                           "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                           "Connection: close\r\n%s%s%s\r\n%s",
                           status, reason, nb, id ? "X-Request-Id: " : "", id ? id : "", id ? "\r\n" : "", body);
    if (n > 0 && (size_t)n < sizeof out && send(fd, out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        // the client went away or stopped reading: the close says enough
    }
}

// Shut down every connection whose deadline passed (h->mu held, so none has
// been closed yet). A 408 goes out first unless the connection was answered
// already (libmicrohttpd's own error), its client is gone, or it is a
// kept-alive connection waiting for its next request. waited[] gets, for each
// 408 written at the header deadline, how long the connection had waited (the
// caller records them once the lock is released); at most cap of them.
static int sweep_locked(am_http *h, double now, double *waited, int cap) {
    int n = 0;
    for (int l = 0; l < DL_COUNT; l++)
        for (hconn *c; n < cap && (c = h->dl_head[l]) && c->deadline <= now;) {
            dl_remove(h, c);
            c->state = CONN_CUT;
            char b;
            const int answered = MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_HTTP_STATUS) != NULL;
            const int gone = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
            if (l == DL_HEADERS) {
                h->counts.header_timeouts++;
                if (!answered && !gone && !c->served) {
                    char msg[160];
                    snprintf(msg, sizeof msg, "the request headers did not arrive within %g s", h->p.header_timeout_s);
                    raw_error(c->fd, 408, "Request Timeout", "header_timeout", NULL, msg);
                    waited[n++] = now - c->since;
                }
            } else {
                h->counts.upload_timeouts++;
                if (!answered && !gone && c->rq) {
                    char msg[160];
                    snprintf(msg, sizeof msg, "the request body did not arrive within %g s", h->p.upload_timeout_s);
                    raw_error(c->fd, 408, "Request Timeout", "upload_timeout", c->rq->id, msg);
                    atomic_store(&c->rq->cut, 1); // on_completed records the 408
                }
            }
            shutdown(c->fd, SHUT_RDWR); // libmicrohttpd reads the end of the stream and closes it
        }
    return n;
}

// ---------------------------------------------------------------- request contexts
static void request_free(request *rq) {
    if (rq->pp) MHD_destroy_post_processor(rq->pp);
    free(rq->audio);
    free(rq->part_buf);
    cJSON_Delete(rq->chunking_keys);
    for (int i = 0; i < F_COUNT; i++) free(rq->fields[i]);
    am_job_free(rq->job);
    free(rq->sse);
    free(rq);
}

// Drop one reference; `pending_done` also ends a scheduler callback. Never
// touches h after the lock is released.
static void request_unref(request *rq, int pending_done) {
    am_http *h = rq->h;
    pthread_mutex_lock(&h->mu);
    if (pending_done) h->n_pending--;
    const int last = --rq->refs == 0;
    if (last) {
        h->n_live--;
        h->upload_held -= rq->audio_cap;
        rq->audio_cap = 0;
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (last) request_free(rq);
}

// NULL when out of memory (*oom = 1) or when the connection was cut at its header deadline (*oom = 0).
static request *request_new(am_http *h, struct MHD_Connection *conn, const char *method, const char *url, int *oom) {
    request *rq = calloc(1, sizeof *rq);
    *oom = rq == NULL;
    if (!rq) return NULL;
    rq->h = h;
    rq->conn = conn;
    rq->refs = 1;
    rq->fd = -1;
    rq->t_start = am_time_s();
    rq->part_kind = PART_IGNORE;
    snprintf(rq->method, sizeof rq->method, "%s", method ? method : "?");
    snprintf(rq->url, sizeof rq->url, "%s", url ? url : "?");
    const unsigned long n = atomic_fetch_add(&h->next_rid, 1);
    snprintf(rq->id, sizeof rq->id, "req_%08lx%08lx", h->rid_seed & 0xffffffffUL, n & 0xffffffffUL);
    const union MHD_ConnectionInfo *si = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    hconn *c = si ? si->socket_context : NULL;
    pthread_mutex_lock(&h->mu);
    if (c && c->state == CONN_CUT) { // the watcher shut it down at the header deadline: the 408 went out
        pthread_mutex_unlock(&h->mu);
        free(rq);
        return NULL;
    }
    h->n_live++;
    if (c) { // its headers are in: the upload deadline runs until the body is
        rq->cn = c;
        c->rq = rq;
        conn_enter(h, c, CONN_BODY, rq->t_start);
    }
    pthread_mutex_unlock(&h->mu);
    return rq;
}

// The request's whole body is in, or an answer is queued: no deadline runs
// any more. Returns 1 when the watcher already cut the connection (the caller
// then returns MHD_NO: libmicrohttpd closes it).
static int conn_busy(request *rq) {
    am_http *h = rq->h;
    pthread_mutex_lock(&h->mu);
    hconn *c = rq->cn;
    if (c && c->state == CONN_BODY) conn_enter(h, c, CONN_BUSY, am_time_s());
    const int cut = c && c->state == CONN_CUT;
    pthread_mutex_unlock(&h->mu);
    return cut;
}

// Record the first error found while receiving (later ones are consequences).
static void set_err(request *rq, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void set_err(request *rq, int status, const char *param, const char *code, const char *fmt, ...) {
    if (rq->err_status) return;
    rq->err_status = status;
    rq->err_param = param;
    rq->err_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->err_msg, sizeof rq->err_msg, fmt, ap);
    va_end(ap);
}

// ---------------------------------------------------------------- responses
static void count_locked(am_http *h, int ep, int status) {
    h->counts.requests++;
    if (status >= 400 && status < 500) h->counts.client_errors++;
    if (status >= 500) h->counts.server_errors++;
    if (status == 200 && (ep == EP_TRANSCRIBE || ep == EP_TRANSLATE)) h->counts.transcriptions_ok++;
}

// Count, time and log an answer given before any request's URL was known
// (endpoint label "connection").
static void record_conn(am_http *h, int status, double lat, const char *note) {
    if (h->metrics) am_metrics_http(h->metrics, ep_label[EP_CONNECTION], status, lat);
    pthread_mutex_lock(&h->mu);
    count_locked(h, EP_CONNECTION, status);
    pthread_mutex_unlock(&h->mu);
    if (h->p.log_requests) fprintf(stderr, "amanuensis: - - %d %.1f ms - (%s)\n", status, 1e3 * lat, note);
}

// Count, time and log one answered request (once).
static void record(request *rq, int status, const char *note) {
    if (rq->responded) return;
    rq->responded = 1;
    am_http *h = rq->h;
    const double lat = am_time_s() - rq->t_start;
    if (h->metrics) am_metrics_http(h->metrics, ep_label[rq->ep], status, lat);
    pthread_mutex_lock(&h->mu);
    count_locked(h, rq->ep, status);
    pthread_mutex_unlock(&h->mu);
    if (h->p.log_requests)
        fprintf(stderr, "amanuensis: %s %s %d %.1f ms %s%s%s%s\n", rq->method, rq->url, status, 1e3 * lat, rq->id,
                note ? " (" : "", note ? note : "", note ? ")" : "");
}

// Queue a response. body is malloc'd and taken over when owned, else static.
static enum MHD_Result respond(request *rq, int status, const char *ctype, char *body, size_t len, int owned,
                               const char *hname, const char *hval, const char *note) {
    rq->phase = PH_ANSWERED;
    rq->queued = 1;
    if (conn_busy(rq)) { // cut at the upload deadline meanwhile: its 408 went out
        if (owned) free(body);
        return MHD_NO;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (owned) free(body);
        record(rq, 500, "cannot create a response");
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (ok == MHD_YES) ok = MHD_add_response_header(r, "X-Request-Id", rq->id);
    if (ok == MHD_YES && hname) ok = MHD_add_response_header(r, hname, hval);
    if (ok == MHD_YES) ok = MHD_queue_response(rq->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    record(rq, status, note);
    return ok;
}

static enum MHD_Result respond_json(request *rq, int status, cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) {
        static char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                            "\"code\":null}}";
        return respond(rq, 500, "application/json", oom, sizeof oom - 1, 0, NULL, NULL, "out of memory");
    }
    return respond(rq, status, "application/json", s, strlen(s), 1, NULL, NULL, NULL);
}

// {"error": {"message", "type", "param", "code"}} with an optional extra header.
static enum MHD_Result respond_error_h(request *rq, int status, const char *hname, const char *hval,
                                       const char *param, const char *code, const char *msg) {
    cJSON *root = cJSON_CreateObject();
    cJSON *e = root ? cJSON_AddObjectToObject(root, "error") : NULL;
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";
    int ok = e && cJSON_AddStringToObject(e, "message", msg) && cJSON_AddStringToObject(e, "type", type) &&
             (param ? cJSON_AddStringToObject(e, "param", param) != NULL : cJSON_AddNullToObject(e, "param") != NULL) &&
             (code ? cJSON_AddStringToObject(e, "code", code) != NULL : cJSON_AddNullToObject(e, "code") != NULL);
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!s) return respond_json(rq, 500, NULL);
    return respond(rq, status, "application/json", s, strlen(s), 1, hname, hval, msg);
}

static enum MHD_Result respond_error(request *rq, int status, const char *param, const char *code, const char *fmt,
                                     ...) __attribute__((format(printf, 5, 6)));
static enum MHD_Result respond_error(request *rq, int status, const char *param, const char *code, const char *fmt,
                                     ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const int retry = status == 429 || status == 503;
    const char *hname = retry ? "Retry-After" : status == 401 ? "WWW-Authenticate" : NULL;
    const char *hval = retry ? "1" : status == 401 ? "Bearer" : NULL;
    return respond_error_h(rq, status, hname, hval, param, code, msg);
}

// ---------------------------------------------------------------- multipart parsing
// Apply the finished current part.
static void part_close(request *rq) {
    if (!rq->part_open) return;
    rq->part_open = 0;
    const int kind = rq->part_kind;
    if (kind < 0 || kind == PART_FILE) return;
    char *v = malloc(rq->part_len + 1);
    if (!v) {
        set_err(rq, 500, NULL, "out_of_memory", "out of memory");
        return;
    }
    if (rq->part_len) memcpy(v, rq->part_buf, rq->part_len);
    v[rq->part_len] = 0;
    if (kind == PART_GRANULARITY) {
        trim(v);
        if (!strcmp(v, "word")) rq->gran_word = 1;
        else if (!strcmp(v, "segment")) rq->gran_segment = 1;
        else if (*v)
            set_err(rq, 400, "timestamp_granularities", "invalid_value",
                    "timestamp_granularities: unknown value (expected \"word\" or \"segment\")");
        free(v);
        return;
    }
    if (kind == PART_INCLUDE) {
        trim(v);
        if (!strcmp(v, "logprobs")) rq->inc_logprobs = 1;
        else if (*v) set_err(rq, 400, "include", "invalid_value", "include[]: unknown value (expected \"logprobs\")");
        free(v);
        return;
    }
    if (kind == PART_CHUNKING_KEY) { // chunking_strategy[KEY]=VALUE: a number where it reads as one
        trim(v);
        char name[sizeof rq->part_key];
        snprintf(name, sizeof name, "%.*s", (int)strlen(rq->part_key) - 19, rq->part_key + 18);
        char *end = NULL;
        const double x = *v ? strtod(v, &end) : 0;
        if (!rq->chunking_keys) rq->chunking_keys = cJSON_CreateObject();
        if (rq->chunking_keys) cJSON_DeleteItemFromObjectCaseSensitive(rq->chunking_keys, name);
        if (!rq->chunking_keys || !(end && !*end && isfinite(x) ? cJSON_AddNumberToObject(rq->chunking_keys, name, x)
                                                                 : cJSON_AddStringToObject(rq->chunking_keys, name, v)))
            set_err(rq, 500, NULL, "out_of_memory", "out of memory");
        free(v);
        return;
    }
    if (kind == PART_UNSUPPORTED) { // param: the static name (part_key changes with the next part)
        const char *name = unsupported_fields[0];
        for (size_t i = 0; i < AM_ARRAY_LEN(unsupported_fields); i++)
            if (!strcmp(rq->part_key, unsupported_fields[i])) name = unsupported_fields[i];
        set_err(rq, 400, name, "unsupported_value", "%s is not supported: this server has no speaker diarization",
                name);
        free(v);
        return;
    }
    if (kind != F_PROMPT) trim(v);
    free(rq->fields[kind]);
    rq->fields[kind] = v;
}

static void part_open(request *rq, const char *key, int is_file) {
    rq->part_open = 1;
    rq->part_len = 0;
    snprintf(rq->part_key, sizeof rq->part_key, "%s", key);
    rq->part_kind = PART_IGNORE;
    if (!strcmp(key, "file")) rq->part_kind = PART_FILE;
    else if (!strcmp(key, "timestamp_granularities[]") || !strcmp(key, "timestamp_granularities"))
        rq->part_kind = PART_GRANULARITY;
    else if (!strcmp(key, "include[]") || !strcmp(key, "include"))
        rq->part_kind = PART_INCLUDE;
    else if (!strncmp(key, "chunking_strategy[", 18) && key[strlen(key) - 1] == ']' && !is_file)
        rq->part_kind = PART_CHUNKING_KEY;
    else if (!is_file)
        for (int i = 0; i < F_COUNT; i++)
            if (!strcmp(key, field_names[i])) rq->part_kind = i;
    for (size_t i = 0; i < AM_ARRAY_LEN(unsupported_fields); i++)
        if (!strcmp(key, unsupported_fields[i])) rq->part_kind = PART_UNSUPPORTED;
    if (rq->part_kind == PART_FILE) { // a second file part replaces the first
        rq->have_file = 1;
        rq->audio_len = 0;
    }
}

// The capacity a buffer of `cap` bytes grows to for `need` bytes: doubling, at most `limit` (or need).
static size_t grown_cap(size_t cap, size_t need, size_t limit) {
    size_t ncap = cap ? cap : 4096;
    while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > limit) ncap = limit > need ? limit : need;
    return ncap;
}

static int grow(void *pp, size_t *cap, size_t need, size_t limit) {
    unsigned char **p = pp;
    if (need <= *cap) return 0;
    const size_t ncap = grown_cap(*cap, need, limit);
    unsigned char *n = realloc(*p, ncap);
    if (!n) return -1;
    *p = n;
    *cap = ncap;
    return 0;
}

// Grow the upload buffer to `need` bytes within params.upload_memory_bytes
// (the other requests' buffers count; a buffer alone may always grow to the
// upload limit). 0, AM_ENOMEM, or AM_EFULL over the budget.
static int grow_audio(request *rq, size_t need) {
    am_http *h = rq->h;
    if (need <= rq->audio_cap) return 0;
    const size_t ncap = grown_cap(rq->audio_cap, need, h->p.max_upload_bytes);
    const size_t delta = ncap - rq->audio_cap, budget = h->p.upload_memory_bytes;
    pthread_mutex_lock(&h->mu);
    const int over = budget && h->upload_held > rq->audio_cap && h->upload_held + delta > budget;
    if (!over) h->upload_held += delta;
    pthread_mutex_unlock(&h->mu);
    if (over) return AM_EFULL;
    unsigned char *n = realloc(rq->audio, ncap);
    pthread_mutex_lock(&h->mu);
    if (n) rq->audio_cap = ncap;
    else h->upload_held -= delta;
    pthread_mutex_unlock(&h->mu);
    if (!n) return AM_ENOMEM;
    rq->audio = n;
    return 0;
}

// Free the upload buffer (and its share of the budget).
static void release_audio(request *rq) {
    am_http *h = rq->h;
    pthread_mutex_lock(&h->mu);
    h->upload_held -= rq->audio_cap;
    rq->audio_cap = 0;
    pthread_mutex_unlock(&h->mu);
    free(rq->audio);
    rq->audio = NULL;
    rq->audio_len = 0;
}

static enum MHD_Result on_post_data(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                    const char *content_type, const char *transfer_encoding, const char *data,
                                    uint64_t off, size_t size) {
    request *rq = cls;
    am_http *h = rq->h;
    (void)kind, (void)content_type, (void)transfer_encoding;
    if (rq->err_status) return MHD_NO;
    if (!key) key = "";
    // a new part: another key, or a value starting over (repeated key)
    if (!rq->part_open || strncmp(rq->part_key, key, sizeof rq->part_key - 1) || (off == 0 && rq->part_len > 0)) {
        part_close(rq);
        if (++rq->n_parts > h->p.max_form_parts) {
            set_err(rq, 400, NULL, "too_many_parts", "the form has more than %d multipart/form-data parts",
                    h->p.max_form_parts);
            return MHD_NO;
        }
        part_open(rq, key, filename != NULL);
    }
    if (off != rq->part_len) {
        set_err(rq, 400, NULL, "invalid_multipart", "malformed multipart/form-data body");
        return MHD_NO;
    }
    if (size == 0) return MHD_YES;
    if (rq->part_kind == PART_FILE) {
        if (rq->audio_len + size > h->p.max_upload_bytes) {
            set_err(rq, 413, "file", "file_too_large", "the uploaded file exceeds the limit of %zu bytes",
                    h->p.max_upload_bytes);
            return MHD_NO;
        }
        const int g = grow_audio(rq, rq->audio_len + size);
        if (g == AM_EFULL) {
            set_err(rq, 429, NULL, "queue_full", "the server is receiving too many uploads; retry later");
            return MHD_NO;
        }
        if (g) {
            set_err(rq, 500, NULL, "out_of_memory", "out of memory for the upload");
            return MHD_NO;
        }
        memcpy(rq->audio + rq->audio_len, data, size);
        rq->audio_len += size;
    } else if (rq->part_kind >= 0) {
        if (rq->part_len + size > FIELD_MAX) {
            set_err(rq, 400, rq->part_kind < F_COUNT                ? field_names[rq->part_kind]
                    : rq->part_kind == PART_INCLUDE       ? "include"
                    : rq->part_kind == PART_CHUNKING_KEY  ? "chunking_strategy"
                                                          : "timestamp_granularities", "invalid_value",
                    "form field '%s' is too long (limit %d bytes)", rq->part_key, FIELD_MAX);
            return MHD_NO;
        }
        if (grow(&rq->part_buf, &rq->part_cap, rq->part_len + size, FIELD_MAX)) {
            set_err(rq, 500, NULL, "out_of_memory", "out of memory");
            return MHD_NO;
        }
        memcpy(rq->part_buf + rq->part_len, data, size);
    }
    rq->part_len += size;
    return MHD_YES;
}

// ---------------------------------------------------------------- watch list (h->mu held)
static void watch_add(am_http *h, request *rq) {
    rq->wprev = NULL;
    rq->wnext = h->watch;
    if (h->watch) h->watch->wprev = rq;
    h->watch = rq;
    h->n_suspended++;
}

static void watch_remove(am_http *h, request *rq) {
    if (rq->wprev) rq->wprev->wnext = rq->wnext;
    else h->watch = rq->wnext;
    if (rq->wnext) rq->wnext->wprev = rq->wprev;
    rq->wprev = rq->wnext = NULL;
    h->n_suspended--;
}

// Take a suspended request off the watch list (h->mu held): 1 when the caller
// must resume its connection (after releasing the lock).
static int unsuspend_locked(am_http *h, request *rq) {
    if (!rq->suspended) return 0;
    watch_remove(h, rq);
    rq->suspended = 0;
    return 1;
}

static void *watcher_main(void *arg) {
    am_http *h = arg;
    struct pollfd *pfd = NULL;
    uint64_t *ids = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        double waited[64]; // connections cut at the header deadline with a 408
        const int n_cut = sweep_locked(h, am_time_s(), waited, (int)AM_ARRAY_LEN(waited));
        size_t n = 0;
        if ((size_t)h->n_suspended > cap) {
            const size_t ncap = (size_t)h->n_suspended * 2;
            struct pollfd *np = realloc(pfd, ncap * sizeof *np);
            if (np) pfd = np;
            uint64_t *ni = np ? realloc(ids, ncap * sizeof *ni) : NULL;
            if (ni) {
                ids = ni;
                cap = ncap;
            }
        }
        for (request *rq = h->watch; rq && n < cap; rq = rq->wnext) {
            if (rq->fd < 0) continue;
            pfd[n].fd = rq->fd;
            pfd[n].events = POLLIN | POLLRDHUP;
            pfd[n].revents = 0;
            ids[n++] = rq->sched_id;
        }
        pthread_mutex_unlock(&h->mu);
        for (int i = 0; i < n_cut; i++) record_conn(h, 408, waited[i], "header timeout");
        if (n > 0 && poll(pfd, (nfds_t)n, 0) > 0) {
            for (size_t i = 0; i < n; i++) {
                const short ev = pfd[i].revents;
                int gone = (ev & (POLLHUP | POLLERR)) != 0;
                if (!gone && (ev & (POLLIN | POLLRDHUP))) {
                    char c;
                    const ssize_t r = recv(pfd[i].fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
                    gone = r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
                }
                if (gone) am_sched_cancel(h->sched, ids[i]);
            }
        }
        pthread_mutex_lock(&h->mu);
        if (h->stopping) break;
        am_cond_wait_s(&h->cv, &h->mu, WATCH_INTERVAL_MS / 1000.0);
    }
    pthread_mutex_unlock(&h->mu);
    free(pfd);
    free(ids);
    return NULL;
}

// ---------------------------------------------------------------- failures
// A failed request's HTTP status, error param, code and message.
typedef struct {
    int status;
    const char *param, *code;
    char msg[512];
} failure;

static void failure_of(const request *rq, failure *e) {
    const char *msg = rq->res_msg;
    e->param = e->code = NULL;
    switch (rq->res_status) {
    case AM_EAUDIO:
        e->status = 400, e->param = "file", e->code = "invalid_audio";
        snprintf(e->msg, sizeof e->msg, "could not decode the audio: %s", msg);
        return;
    case AM_ERANGE: e->status = 400, e->param = "file", e->code = "audio_too_long"; break;
    case AM_EINVAL: e->status = 400, e->code = "invalid_value"; break;
    case AM_ECANCELED: e->status = STATUS_CLIENT_GONE, e->code = "cancelled"; break;
    case AM_EFULL: e->status = 429, e->code = "queue_full"; break; // the audio memory budget, after decoding
    case AM_ETIMEDOUT:
        e->status = 504, e->code = "timeout";
        snprintf(e->msg, sizeof e->msg, "the request did not finish within %g s", rq->h->p.request_timeout_s);
        return;
    case AM_ENOMEM:
        e->status = 500, e->code = "out_of_memory";
        snprintf(e->msg, sizeof e->msg, "the server ran out of memory: %s", msg);
        return;
    case AM_ESHUTDOWN:
        e->status = 503, e->code = "draining";
        snprintf(e->msg, sizeof e->msg, "the server is shutting down: %s", msg);
        return;
    default:
        e->status = 500;
        snprintf(e->msg, sizeof e->msg, "transcription failed: %s", msg);
        return;
    }
    snprintf(e->msg, sizeof e->msg, "%s", msg);
}

// ---------------------------------------------------------------- streaming (server-sent events)
// OpenAI's transcription stream: "data: {json}\n\n" events, transcript.text.delta
// ({"type", "delta"[, "logprobs"]}) as text becomes final, then one
// transcript.text.done ({"type", "text"[, "logprobs"], "usage"}), or an
// {"type": "error", "error": {...}} event when the request fails after the
// 200 went out. Text becomes final when a window's segments are accepted
// (after any temperature fallback), so deltas come window by window (with VAD
// chunking: chunk by chunk, in timeline order). The deltas concatenate to the
// done event's text, which is the non-streaming response's text.

// Append one event (h->mu held). 0 or -1 (out of memory).
static int sse_append_locked(request *rq, const char *json) {
    const size_t n = strlen(json), need = rq->sse_len + n + 9;
    if (rq->sse_off && need > rq->sse_cap) { // drop what was sent
        memmove(rq->sse, rq->sse + rq->sse_off, rq->sse_len - rq->sse_off);
        rq->sse_len -= rq->sse_off;
        rq->sse_off = 0;
    }
    if (grow(&rq->sse, &rq->sse_cap, rq->sse_len + n + 9, SIZE_MAX)) return -1;
    memcpy(rq->sse + rq->sse_len, "data: ", 6);
    memcpy(rq->sse + rq->sse_len + 6, json, n);
    memcpy(rq->sse + rq->sse_len + 6 + n, "\n\n", 2);
    rq->sse_len += n + 8;
    return 0;
}

// Queue events (each a malloc'd JSON string, taken; NULL entries skipped),
// mark the stream final when asked, and wake the connection if it waits.
static void sse_push(request *rq, char **events, int n, int final, int status) {
    am_http *h = rq->h;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < n; i++)
        if (events[i] && sse_append_locked(rq, events[i])) rq->sse_lost = 1; // out of memory: logged as a 500
    if (final) {
        rq->sse_final = 1;
        rq->sse_status = rq->sse_lost ? 500 : status;
    }
    const int resume = unsuspend_locked(h, rq);
    struct MHD_Connection *conn = rq->conn;
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < n; i++) free(events[i]);
    if (resume) MHD_resume_connection(conn);
}

// The part of a stream's text that is final: stripped at the start as the
// response's text is; trailing whitespace and trailing U+FFFD (the bytes of a
// character that may still be completed) held back. *start gets its start.
static size_t stable_text(const char *text, const char **start) {
    const char *t = text ? text : "";
    size_t n = am_str_strip(&t, strlen(t));
    while (n >= 3 && !memcmp(t + n - 3, "\xEF\xBF\xBD", 3)) {
        n -= 3;
        n = am_str_strip(&t, n);
    }
    *start = t;
    return n;
}

// A delta event for text (n bytes) with the log-probabilities of tokens
// [from, n_tokens) when asked. NULL when out of memory.
static char *delta_event(request *rq, const char *text, size_t n, const int32_t *tokens, const float *lps, int from,
                         int n_tokens) {
    char *d = malloc(n + 1), *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!d || !o) goto done;
    memcpy(d, text, n);
    d[n] = 0;
    if (!cJSON_AddStringToObject(o, "type", "transcript.text.delta") || !cJSON_AddStringToObject(o, "delta", d))
        goto done;
    if (rq->inc_logprobs) {
        cJSON *lp = cJSON_AddArrayToObject(o, "logprobs");
        if (!lp || (n_tokens > from && am_format_logprobs(lp, rq->h->tok, tokens + from, lps + from, n_tokens - from)))
            goto done;
    }
    out = cJSON_PrintUnformatted(o);
done:
    free(d);
    cJSON_Delete(o);
    return out;
}

// Scheduler progress (engine thread): the newly final text as a delta.
static void on_progress(void *user, const am_sched_progress *pr) {
    request *rq = user;
    const char *t;
    const size_t n = stable_text(pr->text, &t);
    if (n <= rq->text_sent) return; // nothing new (log-probabilities wait for their text)
    char *ev = delta_event(rq, t + rq->text_sent, n - rq->text_sent, pr->tokens, pr->logprobs, rq->tok_sent,
                           pr->n_tokens);
    if (!ev) return; // out of memory: the text goes out with the next delta or the final one
    rq->text_sent = n;
    rq->tok_sent = pr->n_tokens;
    sse_push(rq, &ev, 1, 0, 0);
}

// The request ended: the last delta and the done event, or an error event.
static void stream_finish(request *rq, const am_sched_result *res) {
    char *ev[2] = {NULL, NULL};
    const am_transcript *tr = res->status == 0 && res->job ? am_job_transcript(res->job) : NULL;
    int status = 200;
    if (tr) {
        // the transcript's tokens with their log-probabilities, in the order the snapshots had them
        int n_tok = 0, k = 0;
        for (int i = 0; i < tr->n_segments; i++) n_tok += tr->segments[i].n_tokens;
        int32_t *toks = malloc((size_t)(n_tok ? n_tok : 1) * sizeof *toks);
        float *lps = malloc((size_t)(n_tok ? n_tok : 1) * sizeof *lps);
        const char *t = tr->text ? tr->text : "";
        const size_t n = am_str_strip(&t, strlen(t));
        char *full = malloc(n + 1);
        cJSON *o = cJSON_CreateObject(), *lp = NULL;
        if (toks && lps && full && o) {
            for (int i = 0; i < tr->n_segments; i++)
                for (int j = 0; j < tr->segments[i].n_tokens; j++, k++) {
                    toks[k] = tr->segments[i].tokens[j];
                    lps[k] = tr->segments[i].token_logprobs ? tr->segments[i].token_logprobs[j] : 0.0f;
                }
            memcpy(full, t, n);
            full[n] = 0;
            if (n > rq->text_sent)
                ev[0] = delta_event(rq, t + rq->text_sent, n - rq->text_sent, toks, lps, rq->tok_sent, n_tok);
            if (cJSON_AddStringToObject(o, "type", "transcript.text.done") && cJSON_AddStringToObject(o, "text", full) &&
                (!rq->inc_logprobs ||
                 ((lp = cJSON_AddArrayToObject(o, "logprobs")) && !am_format_logprobs(lp, rq->h->tok, toks, lps, n_tok))) &&
                !am_format_usage(o, tr))
                ev[1] = cJSON_PrintUnformatted(o);
        }
        if (!ev[1] || (n > rq->text_sent && !ev[0])) status = 500; // out of memory: the client sees a cut stream
        free(toks);
        free(lps);
        free(full);
        cJSON_Delete(o);
    } else {
        failure e;
        failure_of(rq, &e);
        status = e.status;
        cJSON *o = cJSON_CreateObject(), *err = o ? cJSON_AddObjectToObject(o, "error") : NULL;
        if (err && cJSON_AddStringToObject(o, "type", "error") && cJSON_AddStringToObject(err, "message", e.msg) &&
            cJSON_AddStringToObject(err, "type", status >= 500 ? "server_error" : "invalid_request_error") &&
            (e.param ? cJSON_AddStringToObject(err, "param", e.param) : cJSON_AddNullToObject(err, "param")) &&
            (e.code ? cJSON_AddStringToObject(err, "code", e.code) : cJSON_AddNullToObject(err, "code")))
            ev[1] = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    am_job_free(res->job);
    sse_push(rq, ev, 2, 1, status);
}

// MHD's content reader of a stream: the queued events, else wait (suspended)
// for the scheduler to produce more; the end once the final event is out.
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    request *rq = cls;
    am_http *h = rq->h;
    (void)pos;
    pthread_mutex_lock(&h->mu);
    if (rq->sse_len > rq->sse_off) {
        const size_t n = AM_MIN(max, rq->sse_len - rq->sse_off);
        memcpy(buf, rq->sse + rq->sse_off, n);
        rq->sse_off += n;
        pthread_mutex_unlock(&h->mu);
        return (ssize_t)n;
    }
    if (rq->sse_final) {
        const int status = rq->sse_status;
        pthread_mutex_unlock(&h->mu);
        record(rq, status, "stream");
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&h->mu);
    // nothing yet: suspended until sse_push resumes it (same protocol as finish_upload)
    MHD_suspend_connection(rq->conn);
    pthread_mutex_lock(&h->mu);
    const int now = rq->sse_len > rq->sse_off || rq->sse_final;
    if (!now) {
        rq->suspended = 1;
        watch_add(h, rq); // a client that hangs up cancels its work
    }
    pthread_mutex_unlock(&h->mu);
    if (now) MHD_resume_connection(rq->conn);
    return 0;
}

// The request is submitted: answer 200 with the event stream at once.
static enum MHD_Result stream_begin(request *rq) {
    am_http *h = rq->h;
    rq->phase = PH_ANSWERED;
    rq->queued = 1;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&h->mu);
    rq->fd = ci ? ci->connect_fd : -1;
    pthread_mutex_unlock(&h->mu);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_CHUNK, stream_read, rq, NULL);
    enum MHD_Result ok = r ? MHD_YES : MHD_NO;
    if (ok == MHD_YES) ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    if (ok == MHD_YES) ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (ok == MHD_YES) ok = MHD_add_response_header(r, "X-Accel-Buffering", "no"); // nginx: do not buffer
    if (ok == MHD_YES) ok = MHD_add_response_header(r, "X-Request-Id", rq->id);
    if (ok == MHD_YES) ok = MHD_queue_response(rq->conn, 200, r);
    if (r) MHD_destroy_response(r);
    if (ok != MHD_YES) {
        am_sched_cancel(h->sched, rq->sched_id);
        record(rq, 500, "cannot start the stream");
    }
    return ok;
}

// ---------------------------------------------------------------- scheduler completion
static void on_done(void *user, const am_sched_result *res) {
    request *rq = user;
    am_http *h = rq->h;
    if (rq->stream) {
        pthread_mutex_lock(&h->mu);
        rq->res_status = res->status;
        if (res->status)
            snprintf(rq->res_msg, sizeof rq->res_msg, "%s", res->error ? res->error : am_strerror(res->status));
        rq->done = 1;
        pthread_mutex_unlock(&h->mu);
        stream_finish(rq, res);
        request_unref(rq, 1);
        return;
    }
    pthread_mutex_lock(&h->mu);
    rq->res_status = res->status;
    if (res->status) snprintf(rq->res_msg, sizeof rq->res_msg, "%s", res->error ? res->error : am_strerror(res->status));
    rq->job = res->job;
    rq->done = 1;
    const int resume = unsuspend_locked(h, rq);
    struct MHD_Connection *conn = rq->conn;
    pthread_mutex_unlock(&h->mu);
    if (resume) MHD_resume_connection(conn);
    request_unref(rq, 1);
}

// ---------------------------------------------------------------- endpoints
static cJSON *model_object(const am_http *h) {
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddStringToObject(o, "id", h->model->name) && cJSON_AddStringToObject(o, "object", "model") &&
        cJSON_AddNumberToObject(o, "created", (double)h->created) &&
        cJSON_AddStringToObject(o, "owned_by", "amanuensis"))
        return o;
    cJSON_Delete(o);
    return NULL;
}

static enum MHD_Result ep_models(request *rq, const char *id) {
    am_http *h = rq->h;
    if (id) {
        if (strcmp(id, h->model->name))
            return respond_error(rq, 404, "model", "model_not_found", "The model '%s' does not exist", id);
        return respond_json(rq, 200, model_object(h));
    }
    cJSON *root = cJSON_CreateObject(), *m = model_object(h);
    cJSON *data = root ? cJSON_AddArrayToObject(root, "data") : NULL;
    if (!root || !m || !data || !cJSON_AddStringToObject(root, "object", "list")) {
        cJSON_Delete(root);
        cJSON_Delete(m);
        return respond_json(rq, 500, NULL);
    }
    cJSON_AddItemToArray(data, m);
    return respond_json(rq, 200, root);
}

// Readiness for a load balancer, with the free capacity it may weigh.
static enum MHD_Result ep_ready(request *rq) {
    am_http *h = rq->h;
    am_metrics_state st;
    am_sched_state(h->sched, &st);
    pthread_mutex_lock(&h->mu);
    const int draining = h->draining || st.draining;
    pthread_mutex_unlock(&h->mu);
    const int memory_full = st.audio_memory_budget && st.audio_memory_bytes >= st.audio_memory_budget;
    const char *reason = draining                            ? "draining"
                         : st.pending_results >= st.max_queue ? "queue full"
                         : memory_full                        ? "audio memory full"
                                                              : NULL;
    const int free_queue = st.max_queue > st.pending_results ? st.max_queue - st.pending_results : 0;
    const int free_windows = st.max_windows > st.active_sequences ? st.max_windows - st.active_sequences : 0;
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "status", reason ? "unavailable" : "ready") &&
             (!reason || cJSON_AddStringToObject(o, "reason", reason)) &&
             cJSON_AddStringToObject(o, "model", h->model->name) &&
             cJSON_AddNumberToObject(o, "pending_results", st.pending_results) &&
             cJSON_AddNumberToObject(o, "max_queue", st.max_queue) &&
             cJSON_AddNumberToObject(o, "free_queue_slots", free_queue) &&
             cJSON_AddNumberToObject(o, "queue_depth", st.queue_depth) &&
             cJSON_AddNumberToObject(o, "active_windows", st.active_sequences) &&
             cJSON_AddNumberToObject(o, "max_windows", st.max_windows) &&
             cJSON_AddNumberToObject(o, "free_windows", free_windows) &&
             cJSON_AddNumberToObject(o, "audio_memory_mb", st.audio_memory_bytes / 1048576.0) &&
             cJSON_AddNumberToObject(o, "audio_memory_budget_mb", st.audio_memory_budget / 1048576.0) &&
             cJSON_AddBoolToObject(o, "draining", draining);
    if (!ok) {
        cJSON_Delete(o);
        o = NULL; // respond_json answers 500
    }
    return respond_json(rq, reason ? 503 : 200, o);
}

static enum MHD_Result ep_stats(request *rq, int prometheus) {
    am_http *h = rq->h;
    am_metrics_state st;
    am_sched_state(h->sched, &st);
    st.model = h->model->name;
    pthread_mutex_lock(&h->mu);
    st.draining |= h->draining;
    pthread_mutex_unlock(&h->mu);
    char *s = prometheus ? am_metrics_prometheus(h->metrics, &st) : am_metrics_stats_json(h->metrics, &st);
    if (!s) return respond_error(rq, 500, NULL, NULL, "cannot render statistics: %s", am_last_error());
    return respond(rq, 200, prometheus ? "text/plain; version=0.0.4; charset=utf-8" : "application/json", s,
                   strlen(s), 1, NULL, NULL, NULL);
}

// First call of a transcription request: checks that need only the headers.
static enum MHD_Result begin_upload(request *rq) {
    am_http *h = rq->h;
    struct MHD_Connection *c = rq->conn;
    pthread_mutex_lock(&h->mu);
    const int accepting = accepting_locked(h);
    if (accepting) h->t_last_upload = am_time_s(); // keeps a drain grace open
    pthread_mutex_unlock(&h->mu);
    if (!accepting || am_sched_draining(h->sched))
        return respond_error(rq, 503, NULL, "draining", "the server is shutting down; retry on another instance");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long content_length = 0;
    if (cl) {
        char *end;
        errno = 0;
        content_length = strtoull(cl, &end, 10);
        if (end == cl || errno) content_length = 0;
        if (content_length > (unsigned long long)h->p.max_upload_bytes + BODY_SLACK)
            return respond_error(rq, 413, "file", "file_too_large",
                                 "request body of %llu bytes exceeds the upload limit of %zu bytes", content_length,
                                 h->p.max_upload_bytes);
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncasecmp(ct, "multipart/form-data", 19))
        return respond_error(rq, 400, NULL, "invalid_content_type",
                             "Content-Type must be multipart/form-data (got %s)", ct ? ct : "none");
    const char *prio = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Priority");
    if (prio) {
        if (parse_int(prio, &rq->header_priority))
            return respond_error(rq, 400, "priority", "invalid_value", "X-Priority must be an integer");
        rq->has_header_priority = 1;
    }
    if (!(rq->pp = MHD_create_post_processor(c, PP_BUFFER, on_post_data, rq)))
        return respond_error(rq, 400, NULL, "invalid_content_type",
                             "cannot parse multipart/form-data (missing or invalid boundary)");
    if (content_length > 0) { // reserve once; the limit is enforced while copying
        size_t want = content_length < h->p.max_upload_bytes ? (size_t)content_length : h->p.max_upload_bytes;
        if (grow_audio(rq, want) == AM_EFULL)
            return respond_error(rq, 429, NULL, "queue_full", "the server is receiving too many uploads; retry later");
    }
    rq->phase = PH_BODY;
    pthread_mutex_lock(&h->mu);
    rq->uploading = 1;
    h->n_uploading++;
    pthread_mutex_unlock(&h->mu);
    return MHD_YES;
}

static enum MHD_Result receive_body(request *rq, const char *data, size_t n) {
    am_http *h = rq->h;
    rq->body_bytes += n;
    const size_t limit = h->p.max_upload_bytes + BODY_SLACK;
    if (rq->body_bytes > limit)
        set_err(rq, 413, "file", "file_too_large", "the upload exceeds the limit of %zu bytes", h->p.max_upload_bytes);
    // a chunked upload far beyond the limit: stop reading, close the connection (the 413 is written on the
    // socket, as libmicrohttpd cannot queue an answer while a body arrives)
    if (rq->body_bytes / 4 > limit) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        char msg[160];
        snprintf(msg, sizeof msg, "the upload exceeds the limit of %zu bytes", h->p.max_upload_bytes);
        if (ci) raw_error(ci->connect_fd, 413, "Payload Too Large", "file_too_large", rq->id, msg);
        rq->close_status = 413;
        return MHD_NO;
    }
    if (!rq->err_status && rq->pp && MHD_post_process(rq->pp, data, n) != MHD_YES)
        set_err(rq, 400, NULL, "invalid_multipart", "malformed multipart/form-data body");
    if (rq->err_status && rq->audio) release_audio(rq); // nothing more will be used
    return MHD_YES;
}

// The whole body is in: validate, submit, suspend.
static enum MHD_Result finish_upload(request *rq) {
    am_http *h = rq->h;
    pthread_mutex_lock(&h->mu);
    uploading_end_locked(h, rq);
    pthread_mutex_unlock(&h->mu);
    if (conn_busy(rq)) return MHD_NO; // cut at the upload deadline (408 sent)
    if (rq->pp) {
        const int ok = MHD_destroy_post_processor(rq->pp) == MHD_YES;
        rq->pp = NULL;
        if (!ok) set_err(rq, 400, NULL, "invalid_multipart", "malformed or truncated multipart/form-data body");
    }
    if (!rq->err_status) part_close(rq);
    if (rq->err_status)
        return respond_error(rq, rq->err_status, rq->err_param, rq->err_code, "%s", rq->err_msg);
    char **f = rq->fields;
    if (f[F_STREAM] && *f[F_STREAM] && parse_bool(f[F_STREAM], &rq->stream))
        return respond_error(rq, 400, "stream", "invalid_value", "stream must be true or false");
    if (!rq->have_file)
        return respond_error(rq, 400, "file", "missing_required_parameter", "you must provide a 'file' to transcribe");
    if (rq->audio_len == 0) return respond_error(rq, 400, "file", "invalid_value", "the uploaded file is empty");
    rq->fmt = AM_FMT_JSON;
    if (f[F_FORMAT] && !strcmp(f[F_FORMAT], "diarized_json"))
        return respond_error(rq, 400, "response_format", "unsupported_value",
                             "response_format diarized_json is not supported: this server has no speaker diarization");
    if (f[F_FORMAT] && *f[F_FORMAT] && am_format_parse(f[F_FORMAT], &rq->fmt))
        return respond_error(rq, 400, "response_format", "invalid_value",
                             "response_format must be one of json, text, srt, verbose_json, vtt");
    // OpenAI: streaming is for transcriptions in json or text
    if (rq->stream && rq->ep == EP_TRANSLATE)
        return respond_error(rq, 400, "stream", "unsupported_value", "streaming is not supported for translations");
    if (rq->stream && rq->fmt != AM_FMT_JSON && rq->fmt != AM_FMT_TEXT)
        return respond_error(rq, 400, "stream", "unsupported_value",
                             "streaming is not supported for response_format %s (use json or text)",
                             am_format_name(rq->fmt));
    if (rq->inc_logprobs && rq->fmt != AM_FMT_JSON)
        return respond_error(rq, 400, "include", "unsupported_value",
                             "include[]=logprobs requires response_format=json (got %s)", am_format_name(rq->fmt));
    // OpenAI: word timestamps only in verbose_json; ["word"] alone has no segments
    if (rq->gran_word && rq->fmt != AM_FMT_VERBOSE_JSON)
        return respond_error(rq, 400, "timestamp_granularities", "invalid_value",
                             "timestamp_granularities[]=word requires response_format=verbose_json (got %s)",
                             am_format_name(rq->fmt));
    rq->fx.with_words = rq->gran_word;
    rq->fx.without_segments = rq->gran_word && !rq->gran_segment;
    rq->fx.logprobs = rq->inc_logprobs ? h->tok : NULL;
    am_transcribe_params tp = am_transcribe_default_params();
    tp.translate = rq->ep == EP_TRANSLATE;
    tp.word_timestamps = rq->gran_word;
    if (f[F_WITHOUT_TIMESTAMPS] && *f[F_WITHOUT_TIMESTAMPS] &&
        parse_bool(f[F_WITHOUT_TIMESTAMPS], &tp.decode.without_timestamps))
        return respond_error(rq, 400, "without_timestamps", "invalid_value", "without_timestamps must be true or false");
    am_sched_request req = {.chunking = AM_CHUNK_DEFAULT};
    if (rq->chunking_keys && f[F_CHUNKING] && *f[F_CHUNKING])
        return respond_error(rq, 400, "chunking_strategy", "invalid_value",
                             "chunking_strategy is given both as one field and as chunking_strategy[...] fields");
    if (rq->chunking_keys || (f[F_CHUNKING] && *f[F_CHUNKING])) {
        char msg[256];
        const int bad = rq->chunking_keys // chunking_strategy[type]=server_vad&chunking_strategy[threshold]=0.5 ...
                            ? parse_chunking_object(rq->chunking_keys, &req.chunking, &req.vad, msg, sizeof msg)
                            : am_http_parse_chunking(f[F_CHUNKING], &req.chunking, &req.vad, msg, sizeof msg);
        if (bad) return respond_error(rq, 400, "chunking_strategy", "invalid_value", "%s", msg);
        if (req.chunking == AM_CHUNK_VAD && !am_sched_has_vad(h->sched))
            return respond_error(rq, 400, "chunking_strategy", "unsupported_value",
                                 "chunking_strategy needs a VAD model, and this server has none (--vad-model)");
    }
    if (f[F_TEMPERATURE] && *f[F_TEMPERATURE] && parse_unit_double(f[F_TEMPERATURE], &tp.decode.temperature))
        return respond_error(rq, 400, "temperature", "invalid_value", "temperature must be a number between 0 and 1");
    if (f[F_TEMPERATURE_INC] && *f[F_TEMPERATURE_INC] &&
        parse_unit_double(f[F_TEMPERATURE_INC], &tp.decode.temperature_inc))
        return respond_error(rq, 400, "temperature_inc", "invalid_value",
                             "temperature_inc must be a number between 0 and 1");
    const char *lang = f[F_LANGUAGE];
    if (lang && *lang && strcasecmp(lang, "auto")) {
        if (am_tokenizer_lang_index(lang) < 0)
            return respond_error(rq, 400, "language", "invalid_value", "unknown language '%s'", lang);
        if (am_model_is_multilingual(h->model) && am_tokenizer_lang_token(h->tok, lang) < 0)
            return respond_error(rq, 400, "language", "unsupported_value", "language '%s' is not supported by %s",
                                 lang, h->model->name);
        tp.language = lang;
    }
    if (f[F_PROMPT] && *f[F_PROMPT]) tp.initial_prompt = f[F_PROMPT];
    // decoding strategy: the server's defaults, each overridden by its field
    am_decode_params *dp = &tp.decode;
    dp->beam_size = h->p.beam_size;
    dp->best_of = h->p.best_of;
    dp->patience = h->p.patience;
    dp->length_penalty = h->p.length_penalty;
    if (f[F_BEAM_SIZE] && *f[F_BEAM_SIZE] &&
        (parse_int(f[F_BEAM_SIZE], &dp->beam_size) || dp->beam_size < 1 || dp->beam_size > AM_MAX_GROUP))
        return respond_error(rq, 400, "beam_size", "invalid_value", "beam_size must be an integer between 1 and %d",
                             AM_MAX_GROUP);
    if (f[F_BEST_OF] && *f[F_BEST_OF] &&
        (parse_int(f[F_BEST_OF], &dp->best_of) || dp->best_of < 1 || dp->best_of > AM_MAX_GROUP))
        return respond_error(rq, 400, "best_of", "invalid_value", "best_of must be an integer between 1 and %d",
                             AM_MAX_GROUP);
    if (f[F_PATIENCE] && *f[F_PATIENCE]) {
        if (parse_number(f[F_PATIENCE], &dp->patience) || !(dp->patience > 0))
            return respond_error(rq, 400, "patience", "invalid_value", "patience must be a number greater than 0");
        if (dp->beam_size == 0) // as the reference's DecodingOptions: patience without beam_size is an error
            return respond_error(rq, 400, "patience", "invalid_value",
                                 "patience requires beam_size (it applies to beam search only)");
    }
    if (f[F_LENGTH_PENALTY] && *f[F_LENGTH_PENALTY] &&
        parse_unit_double(f[F_LENGTH_PENALTY], &dp->length_penalty))
        return respond_error(rq, 400, "length_penalty", "invalid_value",
                             "length_penalty must be a number between 0 and 1");
    int priority = rq->has_header_priority ? rq->header_priority : 0;
    if (f[F_PRIORITY] && *f[F_PRIORITY] && parse_int(f[F_PRIORITY], &priority))
        return respond_error(rq, 400, "priority", "invalid_value", "priority must be an integer");

    req.audio = rq->audio;
    req.audio_size = rq->audio_len;
    req.params = tp;
    req.priority = priority;
    req.timeout_s = h->p.request_timeout_s;
    req.done = on_done;
    req.progress = rq->stream ? on_progress : NULL;
    req.user = rq;
    pthread_mutex_lock(&h->mu); // the callback may run before submit returns
    const int draining = h->draining && h->grace_over; // accepted during the grace: still submitted
    if (!draining) {
        rq->refs++;
        h->n_pending++;
        rq->submitted = 1;
    }
    pthread_mutex_unlock(&h->mu);
    if (draining) // an upload that began before the drain
        return respond_error(rq, 503, NULL, "draining", "the server is shutting down; retry on another instance");
    const int rc = am_sched_submit(h->sched, &req, &rq->sched_id);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", am_last_error());
        pthread_mutex_lock(&h->mu);
        rq->refs--;
        h->n_pending--;
        rq->submitted = 0;
        pthread_mutex_unlock(&h->mu);
        switch (rc) {
        case AM_EFULL: return respond_error(rq, 429, NULL, "queue_full", "%s", msg);
        case AM_ESHUTDOWN: return respond_error(rq, 503, NULL, "draining", "%s", msg);
        case AM_EINVAL: return respond_error(rq, 400, NULL, "invalid_value", "%s", msg);
        case AM_ERANGE: return respond_error(rq, 400, "file", "audio_too_long", "%s", msg);
        default: return respond_error(rq, 500, NULL, NULL, "cannot queue the request: %s", msg);
        }
    }
    release_audio(rq); // the scheduler has its copy
    if (rq->stream) return stream_begin(rq);
    rq->phase = PH_WAIT;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    MHD_suspend_connection(rq->conn);
    pthread_mutex_lock(&h->mu);
    const int already = rq->done;
    if (!already) {
        rq->fd = ci ? ci->connect_fd : -1;
        rq->suspended = 1;
        watch_add(h, rq); // polled by the watcher when fd >= 0
    }
    pthread_mutex_unlock(&h->mu);
    if (already) MHD_resume_connection(rq->conn);
    return MHD_YES;
}

// The scheduler finished: render the answer.
static enum MHD_Result deliver(request *rq) {
    am_http *h = rq->h;
    pthread_mutex_lock(&h->mu);
    const int done = rq->done;
    pthread_mutex_unlock(&h->mu);
    if (!done) return MHD_YES; // not reached: resumed only when done
    if (rq->res_status) {
        failure e;
        failure_of(rq, &e);
        return respond_error(rq, e.status, e.param, e.code, "%s", e.msg);
    }
    const am_transcript *tr = rq->job ? am_job_transcript(rq->job) : NULL;
    if (!tr) return respond_error(rq, 500, NULL, NULL, "transcription finished without a transcript");
    am_format_extra x = rq->fx;
    x.with_performance = 1;
    x.processing_time_s = am_time_s() - rq->t_start;
    x.mode = h->mode;
    char *body = NULL;
    size_t len = 0;
    if (am_format_render(tr, rq->fmt, &x, &body, &len))
        return respond_error(rq, 500, NULL, NULL, "cannot render the transcript: %s", am_last_error());
    am_job_free(rq->job);
    rq->job = NULL;
    return respond(rq, 200, am_format_content_type(rq->fmt), body, len, 1, NULL, NULL, NULL);
}

// ---------------------------------------------------------------- routing
static int is_get(const char *m) { return !strcmp(m, "GET") || !strcmp(m, "HEAD"); }

// The endpoint of a URL and the methods it allows.
static int endpoint_of(const char *url, const char **allow) {
    const char *a = "GET, HEAD";
    int ep = EP_OTHER;
    if (!strcmp(url, "/health")) ep = EP_HEALTH;
    else if (!strcmp(url, "/ready")) ep = EP_READY;
    else if (!strcmp(url, "/v1/audio/transcriptions")) ep = EP_TRANSCRIBE, a = "POST";
    else if (!strcmp(url, "/v1/audio/translations")) ep = EP_TRANSLATE, a = "POST";
    else if (!strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11)) ep = EP_MODELS;
    else if (!strcmp(url, "/stats/batching")) ep = EP_STATS;
    else if (!strcmp(url, "/metrics")) ep = EP_METRICS;
    if (allow) *allow = ep == EP_OTHER ? NULL : a;
    return ep;
}

static enum MHD_Result route(request *rq, const char *url, const char *method) {
    am_http *h = rq->h;
    const char *allow = NULL;
    rq->ep = endpoint_of(url, &allow);
    // auth: every endpoint but /health when keys are configured (the metrics optionally public)
    const int open = rq->ep == EP_HEALTH || (h->p.public_metrics && (rq->ep == EP_STATS || rq->ep == EP_METRICS));
    if (h->p.n_api_keys > 0 && !open) {
        const char *a = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!a || strncasecmp(a, "Bearer ", 7))
            return respond_error(rq, 401, NULL, "invalid_api_key",
                                 "You didn't provide an API key (Authorization: Bearer <key>)");
        a += 7;
        while (*a == ' ') a++;
        size_t n = strlen(a);
        while (n > 0 && a[n - 1] == ' ') n--;
        if (!key_ok(h, a, n)) return respond_error(rq, 401, NULL, "invalid_api_key", "Incorrect API key provided");
    }
    if (rq->ep == EP_OTHER)
        return respond_error(rq, 404, NULL, "unknown_url", "Invalid URL (%s %s)", method, url);
    const int post = rq->ep == EP_TRANSCRIBE || rq->ep == EP_TRANSLATE;
    if (post ? strcmp(method, "POST") != 0 : !is_get(method)) {
        char msg[256];
        snprintf(msg, sizeof msg, "Method %s is not allowed for %s (allowed: %s)", method, url, allow);
        return respond_error_h(rq, 405, "Allow", allow, NULL, "method_not_allowed", msg);
    }
    switch (rq->ep) {
    case EP_HEALTH: {
        static char ok[] = "{\"status\":\"ok\"}";
        return respond(rq, 200, "application/json", ok, sizeof ok - 1, 0, NULL, NULL, NULL);
    }
    case EP_READY: return ep_ready(rq);
    case EP_MODELS: return ep_models(rq, url[10] == '/' && url[11] ? url + 11 : NULL);
    case EP_STATS: return ep_stats(rq, 0);
    case EP_METRICS: return ep_stats(rq, 1);
    default: return begin_upload(rq);
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
    am_http *h = cls;
    request *rq = *con_cls;
    (void)version;
    if (!rq) {
        // the headers are complete (NULL: cut at the header deadline meanwhile, or out of memory)
        int oom = 0;
        if (!(rq = request_new(h, conn, method, url, &oom))) {
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            if (ci && oom) // no memory for a context: answered from the stack
                raw_error(ci->connect_fd, 500, "Internal Server Error", "out_of_memory", NULL,
                          "the server ran out of memory; retry later");
            return MHD_NO;
        }
        *con_cls = rq;
        rq->ep = endpoint_of(url ? url : "", NULL);
        const union MHD_ConnectionInfo *hs = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
        if (hs && hs->header_size > h->p.max_header_bytes) // answered at once: the connection closes after it
            return respond_error(rq, 431, NULL, "header_too_large",
                                 "the request line and headers (%zu bytes) exceed the limit of %zu bytes",
                                 hs->header_size, h->p.max_header_bytes);
        // uploads are checked now, before their body is read; the rest once received
        if (method && !strcmp(method, "POST") && (rq->ep == EP_TRANSCRIBE || rq->ep == EP_TRANSLATE))
            return route(rq, url, method);
        rq->phase = PH_DEFER;
        return MHD_YES;
    }
    if (atomic_load(&rq->cut)) return MHD_NO; // cut at the upload deadline: its 408 went out
    switch (rq->phase) {
    case PH_DEFER:
        if (*upload_data_size) {
            rq->body_bytes += *upload_data_size;
            *upload_data_size = 0;
            if (rq->body_bytes <= DISCARD_MAX) return MHD_YES;
            rq->close_status = 413; // a body nobody asked for: stop reading it
            return MHD_NO;
        }
        return route(rq, url ? url : "", method ? method : "");
    case PH_BODY:
        if (*upload_data_size) {
            const size_t n = *upload_data_size;
            *upload_data_size = 0;
            return receive_body(rq, upload_data, n);
        }
        return finish_upload(rq);
    case PH_WAIT: return deliver(rq);
    default: *upload_data_size = 0; return MHD_YES;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    request *rq = *con_cls;
    (void)cls, (void)conn;
    if (!rq) return;
    *con_cls = NULL;
    if (rq->pp) {
        MHD_destroy_post_processor(rq->pp);
        rq->pp = NULL;
    }
    am_http *h = rq->h;
    if (!rq->responded) {
        if (!rq->queued && MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS))
            rq->responded = 1; // libmicrohttpd answered it (its log counts it under "connection")
        else if (atomic_load(&rq->cut))
            record(rq, 408, "upload timeout");
        else if (rq->close_status)
            record(rq, rq->close_status, "connection closed");
        else if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED && !rq->queued) {
            // nothing arrived for idle_timeout_s in the middle of a request: say so before the close
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            char msg[160];
            snprintf(msg, sizeof msg, "nothing arrived for %d s", h->p.idle_timeout_s);
            if (ci) raw_error(ci->connect_fd, 408, "Request Timeout", "idle_timeout", rq->id, msg);
            record(rq, 408, "idle timeout");
        } else {
            record(rq, STATUS_CLIENT_GONE,
                   toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "idle timeout" : "client gone");
        }
    }
    pthread_mutex_lock(&h->mu); // defensive: a suspended request only ends after its resume
    uploading_end_locked(h, rq); // a client gone mid-upload
    unsuspend_locked(h, rq);
    hconn *c = rq->cn; // the connection waits for its next request (keep-alive) or closes
    if (c) {
        c->rq = NULL;
        c->served++;
        if (c->state != CONN_CUT) conn_enter(h, c, CONN_HEADERS, am_time_s());
    }
    rq->cn = NULL;
    const int cancel = rq->submitted && !rq->done; // a stream whose client went away
    const uint64_t sid = rq->sched_id;
    pthread_mutex_unlock(&h->mu);
    if (cancel) am_sched_cancel(h->sched, sid);
    request_unref(rq, 0);
}

// ---------------------------------------------------------------- connections
// libmicrohttpd's connection notifications (its polling thread): a context
// per connection, on the header deadline from its accept; freed at its close
// (before libmicrohttpd closes the socket: see sweep_locked).
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    am_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        hconn *c = calloc(1, sizeof *c);
        *socket_context = c;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (c) {
            c->mc = mc;
            c->fd = ci ? ci->connect_fd : -1;
            c->list = -1;
        }
        const double now = am_time_s();
        pthread_mutex_lock(&h->mu);
        const int n = ++h->n_conns;
        if (c && c->fd >= 0) conn_enter(h, c, CONN_HEADERS, now);
        else if (c) c->state = CONN_BUSY; // no socket to cut: libmicrohttpd's idle timeout only
        int log_limit = 0;
        if (n >= h->p.max_connections) {
            h->counts.connection_limit_hits++;
            log_limit = now - h->t_limit_logged >= 10.0;
            if (log_limit) h->t_limit_logged = now;
        }
        pthread_mutex_unlock(&h->mu);
        if (log_limit)
            fprintf(stderr, "amanuensis: %d connections open: at the connection limit (--max-connections); new "
                            "connections wait in the listen backlog\n", n);
        return;
    }
    hconn *c = *socket_context;
    *socket_context = NULL;
    pthread_mutex_lock(&h->mu);
    h->n_conns--;
    if (c) {
        dl_remove(h, c);
        if (c->rq) c->rq->cn = NULL; // not reached: on_completed ran first
    }
    pthread_mutex_unlock(&h->mu);
    free(c);
}

// libmicrohttpd's messages: printed (at most 5 a second; the rest are counted
// and reported with the next one printed), and two of them counted: the
// connections it closes at the per-address limit, and the error answers it
// gives itself ("Error processing request (HTTP response code is N ...)":
// unparseable or oversized request lines and headers), recorded under the
// endpoint "connection" since no request reached the handler's routing.
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    am_http *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r')) msg[--len] = 0;
    const char *at = strstr(msg, "HTTP response code is ");
    const int status = at ? atoi(at + 22) : 0;
    const int refused = strstr(msg, "reached connection limit") != NULL;
    const double now = am_time_s();
    pthread_mutex_lock(&h->mu);
    if (refused) h->counts.connections_refused++;
    if (now - h->log_window >= 1.0) {
        h->log_window = now;
        h->log_in_window = 0;
    }
    const int print = h->log_in_window++ < 5;
    long suppressed = 0;
    if (print) {
        suppressed = h->log_suppressed;
        h->log_suppressed = 0;
    } else {
        h->log_suppressed++;
    }
    pthread_mutex_unlock(&h->mu);
    if (print) {
        if (suppressed) fprintf(stderr, "amanuensis: libmicrohttpd: (%ld messages not shown)\n", suppressed);
        fprintf(stderr, "amanuensis: libmicrohttpd: %s\n", msg);
    }
    if (status >= 400 && status < 600) record_conn(h, status, 0, "answered by libmicrohttpd");
}

// ---------------------------------------------------------------- lifecycle
static void http_free(am_http *h) {
    if (!h) return;
    if (h->keys)
        for (int i = 0; i < h->p.n_api_keys; i++) free(h->keys[i]);
    free(h->keys);
    free(h->key_lens);
    free(h->host);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

am_http *am_http_start(const am_http_params *p, am_sched *s, am_metrics *m, const am_model *model,
                       const am_tokenizer *tok) {
    am_http_params def = am_http_default_params();
    if (!p) p = &def;
    if (!s || !m || !model || !tok || p->port < 0 || p->port > 65535 || p->max_upload_bytes == 0 ||
        p->max_upload_bytes > ((size_t)1 << 40) || p->threads < 1 || p->threads > 256 || p->idle_timeout_s < 0 ||
        p->n_api_keys < 0 || (p->n_api_keys > 0 && !p->api_keys) || !(p->drain_grace_s >= 0) ||
        p->drain_grace_s > 1e6 || p->max_connections < 1 || p->max_connections_per_ip < 0 ||
        !(p->header_timeout_s >= 0) || p->header_timeout_s > 1e6 || !(p->upload_timeout_s >= 0) ||
        p->upload_timeout_s > 1e6 || p->max_header_bytes < 1 || p->max_header_bytes > ((size_t)1 << 30) ||
        p->max_form_parts < 1) {
        am_set_error(AM_EINVAL, "invalid HTTP parameters");
        return NULL;
    }
    if (p->beam_size < 0 || p->beam_size > AM_MAX_GROUP || p->best_of < 0 || p->best_of > AM_MAX_GROUP ||
        !isfinite(p->patience) || !(p->patience > 0) ||
        (!isnan(p->length_penalty) && !(p->length_penalty >= 0 && p->length_penalty <= 1))) {
        am_set_error(AM_EINVAL,
                     "invalid default decoding parameters (beam_size %d and best_of %d: 0..%d, patience %g: > 0, "
                     "length_penalty %g: NAN or 0..1)",
                     p->beam_size, p->best_of, AM_MAX_GROUP, p->patience, p->length_penalty);
        return NULL;
    }
    struct addrinfo *ai = NULL;
    am_http *h = calloc(1, sizeof *h);
    if (!h) {
        am_set_error(AM_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->p = *p;
    h->sched = s;
    h->metrics = m;
    h->model = model;
    h->tok = tok;
    h->created = (long)time(NULL);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    h->rid_seed = (unsigned long)now.tv_nsec * 2654435761UL ^ (unsigned long)now.tv_sec;
    am_metrics_state st;
    am_sched_state(s, &st);
    h->mode = st.mode ? st.mode : "batched";
    h->host = strdup(p->host && *p->host ? p->host : "127.0.0.1");
    h->p.host = h->host;
    if (!h->host) goto oom;
    if (p->n_api_keys > 0) {
        h->keys = calloc((size_t)p->n_api_keys, sizeof *h->keys);
        h->key_lens = calloc((size_t)p->n_api_keys, sizeof *h->key_lens);
        if (!h->keys || !h->key_lens) goto oom;
        for (int i = 0; i < p->n_api_keys; i++) {
            if (!p->api_keys[i] || !*p->api_keys[i]) {
                am_set_error(AM_EINVAL, "empty API key");
                goto fail;
            }
            if (!(h->keys[i] = strdup(p->api_keys[i]))) goto oom;
            h->key_lens[i] = strlen(h->keys[i]);
        }
    }
    h->p.api_keys = NULL; // the copies live in h->keys
    // resolve the bind address
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", p->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC, .ai_flags = AI_PASSIVE};
    const int gai = getaddrinfo(h->host, port_s, &hints, &ai);
    if (gai || !ai) {
        am_set_error(AM_EINVAL, "cannot resolve bind address '%s': %s", h->host, gai_strerror(gai));
        goto fail;
    }
    // poll(), not epoll: libmicrohttpd 0.9.75's edge-triggered epoll loop takes a short read for a drained
    // socket, so a client's FIN that arrived together with its last bytes (a client that sends part of a
    // request and closes) is never read: the connection sat in CLOSE-WAIT, its request unfinished and its
    // slot taken, until a timeout. poll() is level-triggered and has no FD_SETSIZE limit.
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    flags |= MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES ? MHD_USE_POLL : MHD_USE_AUTO;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    struct MHD_OptionItem opts[12];
    int n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, h}; // first: all messages
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)p->idle_timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                        (intptr_t)(p->max_header_bytes + CONN_MEMORY_EXTRA), NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)p->max_connections, NULL};
    if (p->max_connections_per_ip > 0)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)p->max_connections_per_ip,
                                            NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 256, NULL};
    if (p->threads > 1) opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, p->threads, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    h->daemon = MHD_start_daemon(flags, (uint16_t)p->port, NULL, NULL, on_access, h, MHD_OPTION_ARRAY, opts,
                                 MHD_OPTION_END);
    if (!h->daemon) {
        am_set_error(AM_EIO, "cannot listen on %s port %d (in use, or not a local address?)", h->host, p->port);
        goto fail;
    }
    freeaddrinfo(ai);
    ai = NULL;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di && di->port ? di->port : p->port;
    if (pthread_create(&h->watcher, NULL, watcher_main, h)) {
        am_set_error(AM_ENOMEM, "cannot start the disconnect watcher thread");
        MHD_stop_daemon(h->daemon);
        goto fail;
    }
    h->watcher_started = 1;
    return h;
oom:
    am_set_error(AM_ENOMEM, "out of memory");
fail:
    if (ai) freeaddrinfo(ai);
    http_free(h);
    return NULL;
}

int am_http_port(const am_http *h) { return h ? h->port : 0; }

void am_http_begin_drain(am_http *h) {
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    if (!h->draining) {
        h->draining = 1;
        h->t_drain = am_time_s();
        if (!(h->p.drain_grace_s > 0)) h->grace_over = 1;
    }
    pthread_mutex_unlock(&h->mu);
}

int am_http_grace_over(am_http *h) {
    if (!h) return 1;
    pthread_mutex_lock(&h->mu);
    const int over = h->draining && !accepting_locked(h);
    pthread_mutex_unlock(&h->mu);
    return over;
}

void am_http_end_grace(am_http *h) {
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->grace_over = 1;
    pthread_mutex_unlock(&h->mu);
}

void am_http_get_counts(am_http *h, am_http_counts *c) {
    pthread_mutex_lock(&h->mu);
    *c = h->counts;
    pthread_mutex_unlock(&h->mu);
}

// Wait on h->cv until pred(h) or the deadline; h->mu held.
static int wait_until(am_http *h, int (*pred)(const am_http *), double deadline) {
    while (!pred(h) && am_time_s() < deadline) am_cond_wait_s(&h->cv, &h->mu, 0.02);
    return pred(h);
}

static int no_pending(const am_http *h) { return h->n_pending == 0 && h->n_suspended == 0; }
static int no_live(const am_http *h) { return h->n_live == 0; }

void am_http_stop(am_http *h, double timeout_s, am_http_counts *final) {
    if (!h) return;
    const double deadline = am_time_s() + (timeout_s > 0 ? timeout_s : 0);
    pthread_mutex_lock(&h->mu);
    h->draining = 1;
    h->grace_over = 1;
    // cancel what the scheduler still holds; its callbacks resume the connections
    for (int round = 0; round < 200 && !no_pending(h); round++) {
        uint64_t ids[64];
        int n = 0;
        for (request *rq = h->watch; rq && n < 64; rq = rq->wnext) ids[n++] = rq->sched_id;
        pthread_mutex_unlock(&h->mu);
        for (int i = 0; i < n; i++) am_sched_cancel(h->sched, ids[i]);
        pthread_mutex_lock(&h->mu);
        wait_until(h, no_pending, am_time_s() + 0.05);
    }
    const int stuck = !no_pending(h);
    // let resumed requests and other in-flight answers go out
    if (!stuck) wait_until(h, no_live, deadline > am_time_s() + 0.2 ? deadline : am_time_s() + 0.2);
    h->stopping = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->watcher_started) pthread_join(h->watcher, NULL);
    if (final) am_http_get_counts(h, final);
    if (stuck) { // MHD must not be stopped with suspended connections; leave it to process exit
        fprintf(stderr, "amanuensis: %d request(s) never completed in the scheduler; not stopping HTTP cleanly\n",
                h->n_pending);
        return;
    }
    MHD_stop_daemon(h->daemon); // closes idle keep-alive connections (their contexts end first)
    if (final) *final = h->counts;
    http_free(h);
}
