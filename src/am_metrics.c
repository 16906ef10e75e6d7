// am_metrics.c — service counters, histograms and recent-sample percentiles,
// rendered as Prometheus text (/metrics) and as the /stats/batching JSON
// document.
//
// Recording (am_metrics_http / _request / _batch / _cancelled) is a handful of
// additions under one mutex and allocates only the first time an endpoint
// label is seen. Rendering copies the counters into a private snapshot under
// the lock, then sorts the recent samples and formats without holding it.
//
// What is counted (the contract with the scheduler and the HTTP layer):
//  - am_metrics_request is called once for every request that ended in the
//    scheduler: ok=1 on success, ok=0 on any failure, cancellations and
//    timeouts included. am_metrics_cancelled is called in addition for each
//    cancellation / timeout, so amanuensis_requests_total{result="error"} is
//    failed - cancelled - timed_out (never below 0) and the four results
//    ok / error / cancelled / timeout partition the finished requests.
//  - Queue waits, processing times, audio seconds and tokens are recorded for
//    successful requests only: a failed request has no meaningful queue wait
//    and its audio was not (fully) transcribed.
//  - Durations that are negative or not finite are recorded as 0. HTTP status
//    codes outside 100..599 are counted under code "0". Endpoint labels past
//    the first MAX_ENDPOINTS - 1 distinct ones are counted under "other".
//  - Percentiles (p50/p90/p99/max) cover the last RING_CAP successful requests
//    and use the nearest-rank method: pXX is the smallest sample with at least
//    XX % of the samples at or below it.
//
// The /stats/batching document (exactly these top-level keys, the schema of
// the service this one replaces):
//   {"enabled": bool, "mode": "batched"|"sequential",
//    "throughput_rps": completed requests / uptime seconds,
//    "total_requests": completed + failed (scheduler),
//    "total_batches": encoder batches + decoder steps,
//    "avg_batch_size": (windows encoded + rows stepped) / total_batches (0 when none),
//    "avg_wait_time_ms": mean queue wait of successful requests,
//    "avg_processing_time_s": mean processing time of successful requests,
//    "total_errors": requests that ended without a transcript: the responses
//                    with status >= 400 of the "transcriptions" / "translations"
//                    endpoints when an HTTP layer records them (each request is
//                    answered once, scheduler failures included), else the
//                    scheduler's failures,
//    "queue_depth", "pending_results",
//    "configuration": {"max_batch_size", "max_wait_ms", "device",
//                      "encoder_enabled": bool, "decoder_enabled": bool,
//                      "max_windows", "max_queue", "model"},
//    "distributions": {"batch_size_histogram": {"encoder": {"<size>": n, ...},
//                                               "decoder": {"<size>": n, ...}},
//                      "wait_time_ms": {"p50", "p90", "p99", "max"},
//                      "latency_s": {"p50", "p90", "p99", "max"}},
//    "encoder": {"batches", "windows", "avg_batch_size"},
//    "decoder": {"steps", "rows", "avg_batch_size"},
//    "active_sequences", "cancelled", "timed_out", "draining": bool}
// The batch size histograms list only the sizes seen (sizes above EXACT_MAX
// are counted at EXACT_MAX).
#include "am_metrics.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_common.h"

// ---------------------------------------------------------------- limits
#define RING_CAP 4096     // recent queue waits / latencies kept for percentiles
#define EXACT_MAX 4096    // batch sizes counted exactly in 1..EXACT_MAX
#define MAX_ENDPOINTS 32  // distinct endpoint labels, the overflow "other" included
#define N_CODES 600       // HTTP status codes 100..599 (index 0: anything else)
#define MAX_BOUNDS 16     // histogram bucket bounds at most (+Inf not counted)

// Latency buckets (seconds) and batch size buckets (+Inf is implicit).
static const double k_time_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                       1, 2.5, 5, 10, 30, 60, 120};
static const double k_size_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128};
#define N_TIME_BOUNDS AM_ARRAY_LEN(k_time_bounds)
#define N_SIZE_BOUNDS AM_ARRAY_LEN(k_size_bounds)
_Static_assert(N_TIME_BOUNDS <= MAX_BOUNDS && N_SIZE_BOUNDS <= MAX_BOUNDS, "too many histogram bounds");

static const char k_overflow_endpoint[] = "other";
static const char k_unknown_endpoint[] = "unknown";
static const char *const k_stage_names[2] = {"encoder", "decoder"};

// ---------------------------------------------------------------- state
typedef struct {
    uint64_t counts[MAX_BOUNDS + 1]; // per bucket, not cumulative; the last is above every bound
    uint64_t count;
    double sum;
} hist;

typedef struct {
    double v[RING_CAP];
    uint64_t n; // samples ever pushed; sample k lives at v[k % RING_CAP]
} ring;

typedef struct {
    const char *name; // owned (malloc'd) except for the static overflow / unknown names
    int owned;
    uint64_t codes[N_CODES];
    hist latency;
} endpoint;

typedef struct {
    uint64_t batches, items; // engine calls; windows encoded / rows stepped in them
    double seconds;          // engine time
    hist size;
    uint64_t exact[EXACT_MAX + 1]; // exact[s]: calls of size s
} stage;

// Everything recorded. A render copies the prefix up to the used endpoints.
typedef struct {
    double t0; // creation time (am_time_s)
    uint64_t completed, failed, cancelled, timed_out, tokens;
    double audio_s;
    hist wait, proc;
    stage stages[2];
    ring waits, lats;
    endpoint other; // endpoints past MAX_ENDPOINTS - 1, or whose name could not be copied
    size_t n_endpoints;
    endpoint eps[MAX_ENDPOINTS - 1]; // must stay last (see snapshot)
} counters;

struct am_metrics {
    pthread_mutex_t mu;
    counters c;
};

// ---------------------------------------------------------------- recording helpers
static double clean_duration(double v) { return isfinite(v) && v > 0 ? v : 0; }

static void hist_observe(hist *h, const double *bounds, size_t nb, double v) {
    size_t i = 0;
    while (i < nb && v > bounds[i]) i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

static void ring_push(ring *r, double v) {
    r->v[r->n % RING_CAP] = v;
    r->n++;
}

// The endpoint entry for `name`, created on first sight. Called under the lock.
static endpoint *endpoint_for(counters *c, const char *name) {
    if (!name || !*name) name = k_unknown_endpoint;
    if (strcmp(name, k_overflow_endpoint) == 0) return &c->other;
    for (size_t i = 0; i < c->n_endpoints; i++)
        if (strcmp(c->eps[i].name, name) == 0) return &c->eps[i];
    if (c->n_endpoints == AM_ARRAY_LEN(c->eps)) return &c->other;
    endpoint *e = &c->eps[c->n_endpoints];
    if (name == k_unknown_endpoint) {
        e->name = k_unknown_endpoint;
        e->owned = 0;
    } else {
        char *copy = strdup(name);
        if (!copy) return &c->other; // out of memory: still counted, under "other"
        e->name = copy;
        e->owned = 1;
    }
    c->n_endpoints++;
    return e;
}

// ---------------------------------------------------------------- lifecycle
am_metrics *am_metrics_create(void) {
    am_metrics *m = calloc(1, sizeof *m);
    if (!m) {
        am_set_error(AM_ENOMEM, "metrics: out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        am_set_error(AM_ENOMEM, "metrics: cannot create mutex");
        return NULL;
    }
    m->c.other.name = k_overflow_endpoint;
    m->c.t0 = am_time_s();
    return m;
}

void am_metrics_free(am_metrics *m) {
    if (!m) return;
    for (size_t i = 0; i < m->c.n_endpoints; i++)
        if (m->c.eps[i].owned) free((char *)m->c.eps[i].name);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

// ---------------------------------------------------------------- recording
void am_metrics_http(am_metrics *m, const char *endpoint_name, int status, double latency_s) {
    if (!m) return;
    const double lat = clean_duration(latency_s);
    const int code = status >= 100 && status < N_CODES ? status : 0;
    pthread_mutex_lock(&m->mu);
    endpoint *e = endpoint_for(&m->c, endpoint_name);
    e->codes[code]++;
    hist_observe(&e->latency, k_time_bounds, N_TIME_BOUNDS, lat);
    pthread_mutex_unlock(&m->mu);
}

void am_metrics_request(am_metrics *m, int ok, double queue_wait_s, double processing_s, double audio_s,
                        long tokens) {
    if (!m) return;
    const double wait = clean_duration(queue_wait_s), proc = clean_duration(processing_s);
    const double audio = clean_duration(audio_s);
    const uint64_t toks = tokens > 0 ? (uint64_t)tokens : 0;
    pthread_mutex_lock(&m->mu);
    counters *c = &m->c;
    if (ok) {
        c->completed++;
        c->audio_s += audio;
        c->tokens += toks;
        hist_observe(&c->wait, k_time_bounds, N_TIME_BOUNDS, wait);
        hist_observe(&c->proc, k_time_bounds, N_TIME_BOUNDS, proc);
        ring_push(&c->waits, wait);
        ring_push(&c->lats, proc);
    } else {
        c->failed++;
    }
    pthread_mutex_unlock(&m->mu);
}

void am_metrics_batch(am_metrics *m, int kind, int size, double seconds) {
    if (!m || (kind != AM_BATCH_ENCODER && kind != AM_BATCH_DECODER) || size <= 0) return;
    const double secs = clean_duration(seconds);
    pthread_mutex_lock(&m->mu);
    stage *s = &m->c.stages[kind];
    s->batches++;
    s->items += (uint64_t)size;
    s->seconds += secs;
    hist_observe(&s->size, k_size_bounds, N_SIZE_BOUNDS, (double)size);
    s->exact[size <= EXACT_MAX ? size : EXACT_MAX]++;
    pthread_mutex_unlock(&m->mu);
}

void am_metrics_cancelled(am_metrics *m, int timed_out) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    if (timed_out)
        m->c.timed_out++;
    else
        m->c.cancelled++;
    pthread_mutex_unlock(&m->mu);
}

// ---------------------------------------------------------------- snapshot
typedef struct {
    double p50, p90, p99, max;
} percentiles;

// A private copy of the counters plus what is derived from them.
typedef struct {
    counters c; // only the used endpoints are copied
    double now;
    percentiles wait, lat;
    uint64_t errors;      // failed - cancelled - timed_out, never below 0
    uint64_t http_errors; // status >= 400 on the transcription endpoints
    uint64_t http_total;  // every response of the transcription endpoints
} snapshot;

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Nearest rank: the sample at 1-based rank ceil(n * per_mille / 1000).
static double rank_of(const double *sorted, size_t n, unsigned per_mille) {
    size_t rank = (n * per_mille + 999) / 1000;
    if (rank < 1) rank = 1;
    return sorted[AM_MIN(rank, n) - 1];
}

// Sorts the ring's samples in place (the ring is the snapshot's copy).
static percentiles ring_percentiles(ring *r) {
    percentiles p = {0, 0, 0, 0};
    const size_t n = r->n < RING_CAP ? (size_t)r->n : RING_CAP;
    if (n == 0) return p;
    qsort(r->v, n, sizeof r->v[0], cmp_double);
    p.p50 = rank_of(r->v, n, 500);
    p.p90 = rank_of(r->v, n, 900);
    p.p99 = rank_of(r->v, n, 990);
    p.max = r->v[n - 1];
    return p;
}

static int is_transcription_endpoint(const char *name) {
    return strcmp(name, "transcriptions") == 0 || strcmp(name, "translations") == 0;
}

static snapshot *take_snapshot(am_metrics *m) {
    snapshot *s = malloc(sizeof *s);
    if (!s) {
        am_set_error(AM_ENOMEM, "metrics: out of memory");
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    const size_t used = offsetof(counters, eps) + m->c.n_endpoints * sizeof(endpoint);
    memcpy(&s->c, &m->c, used);
    pthread_mutex_unlock(&m->mu);

    const counters *c = &s->c;
    s->now = am_time_s();
    s->wait = ring_percentiles(&s->c.waits);
    s->lat = ring_percentiles(&s->c.lats);
    const uint64_t aborted = c->cancelled + c->timed_out;
    s->errors = c->failed > aborted ? c->failed - aborted : 0;
    s->http_errors = 0;
    s->http_total = 0;
    for (size_t i = 0; i < c->n_endpoints; i++) {
        if (!is_transcription_endpoint(c->eps[i].name)) continue;
        for (int code = 0; code < N_CODES; code++) {
            s->http_total += c->eps[i].codes[code];
            if (code >= 400) s->http_errors += c->eps[i].codes[code];
        }
    }
    return s;
}

static const am_metrics_state *state_or_default(const am_metrics_state *st) {
    static const am_metrics_state empty = {0};
    return st ? st : &empty;
}

static const char *state_mode(const am_metrics_state *st) {
    if (st->mode && *st->mode) return st->mode;
    return st->enabled ? "batched" : "sequential";
}

static double ratio(double num, double den) { return den > 0 ? num / den : 0; }

// ---------------------------------------------------------------- text buffer
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static int sb_reserve(sbuf *b, size_t extra) {
    if (b->oom) return -1;
    size_t need;
    if (am_add_size(b->len, extra, &need) || am_add_size(need, 1, &need)) {
        b->oom = 1;
        return -1;
    }
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->s, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->s = p;
    b->cap = cap;
    return 0;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (sb_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    const int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        sb_put(b, small, (size_t)n);
        return;
    }
    if (sb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

// ---------------------------------------------------------------- prometheus
// A float as Prometheus reads it: the shortest of %.15g / %.17g that round-trips.
static void fmt_value(double v, char *out, size_t cap) {
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
    } else if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, cap, "%.15g", v);
        if (strtod(out, NULL) != v) snprintf(out, cap, "%.17g", v);
    }
}

// A label value with \ " and newline escaped.
static void sb_label_value(sbuf *b, const char *v) {
    for (const char *p = v; *p; p++) {
        switch (*p) {
        case '\\': sb_put(b, "\\\\", 2); break;
        case '"': sb_put(b, "\\\"", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        default: sb_put(b, p, 1); break;
        }
    }
}

// `n` labels as {k="v",...}; prints nothing for none.
typedef struct {
    const char *key, *value;
} label;

static void sb_labels(sbuf *b, const label *ls, size_t n) {
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        sb_puts(b, shown ? "," : "{");
        sb_puts(b, ls[i].key);
        sb_puts(b, "=\"");
        sb_label_value(b, ls[i].value);
        sb_puts(b, "\"");
        shown++;
    }
    if (shown) sb_puts(b, "}");
}

static void family(sbuf *b, const char *name, const char *type, const char *help) {
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

// One sample line: name[suffix]{labels} value.
static void sample(sbuf *b, const char *name, const char *suffix, const label *ls, size_t n, double v) {
    char num[40];
    fmt_value(v, num, sizeof num);
    sb_puts(b, name);
    sb_puts(b, suffix);
    sb_labels(b, ls, n);
    sb_printf(b, " %s\n", num);
}

static void sample_u64(sbuf *b, const char *name, const char *suffix, const label *ls, size_t n, uint64_t v) {
    sb_puts(b, name);
    sb_puts(b, suffix);
    sb_labels(b, ls, n);
    sb_printf(b, " %" PRIu64 "\n", v);
}

// The _bucket (cumulative, ending with le="+Inf"), _sum and _count lines of one
// histogram; `key`/`value` is an optional extra label (key NULL: none).
static void histogram(sbuf *b, const char *name, const char *key, const char *value, const hist *h,
                      const double *bounds, size_t nb) {
    char le[40];
    label ls[2];
    size_t n = 0;
    if (key) ls[n++] = (label){key, value};
    const size_t n_plain = n; // labels of _sum / _count
    ls[n++] = (label){"le", le};
    uint64_t cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += h->counts[i];
        if (i < nb)
            fmt_value(bounds[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        sample_u64(b, name, "_bucket", ls, n, cum);
    }
    sample(b, name, "_sum", ls, n_plain, h->sum);
    sample_u64(b, name, "_count", ls, n_plain, h->count);
}

static void gauge(sbuf *b, const char *name, const char *help, double v) {
    family(b, name, "gauge", help);
    sample(b, name, "", NULL, 0, v);
}

static void quantile_gauges(sbuf *b, const char *name, const char *help, const percentiles *p) {
    family(b, name, "gauge", help);
    const struct {
        const char *q;
        double v;
    } qs[] = {{"0.5", p->p50}, {"0.9", p->p90}, {"0.99", p->p99}, {"1", p->max}};
    for (size_t i = 0; i < AM_ARRAY_LEN(qs); i++) {
        const label l = {"quantile", qs[i].q};
        sample(b, name, "", &l, 1, qs[i].v);
    }
}

static void render_http(sbuf *b, const snapshot *s) {
    const counters *c = &s->c;
    const size_t n_eps = c->n_endpoints + 1; // the used ones, then "other"
    family(b, "amanuensis_http_requests_total", "counter", "HTTP responses by endpoint and status code.");
    for (size_t i = 0; i < n_eps; i++) {
        const endpoint *e = i < c->n_endpoints ? &c->eps[i] : &c->other;
        for (int code = 0; code < N_CODES; code++) {
            if (!e->codes[code]) continue;
            char code_s[16];
            snprintf(code_s, sizeof code_s, "%d", code);
            const label ls[2] = {{"endpoint", e->name}, {"code", code_s}};
            sample_u64(b, "amanuensis_http_requests_total", "", ls, 2, e->codes[code]);
        }
    }
    family(b, "amanuensis_http_request_duration_seconds", "histogram",
           "HTTP response latency by endpoint, in seconds.");
    for (size_t i = 0; i < n_eps; i++) {
        const endpoint *e = i < c->n_endpoints ? &c->eps[i] : &c->other;
        if (e == &c->other && e->latency.count == 0) continue;
        histogram(b, "amanuensis_http_request_duration_seconds", "endpoint", e->name, &e->latency,
                  k_time_bounds, N_TIME_BOUNDS);
    }
}

static void render_scheduler(sbuf *b, const snapshot *s) {
    const counters *c = &s->c;
    family(b, "amanuensis_requests_total", "counter",
           "Transcription requests finished by the scheduler, by result.");
    const struct {
        const char *result;
        uint64_t n;
    } results[] = {{"ok", c->completed}, {"error", s->errors}, {"cancelled", c->cancelled},
                   {"timeout", c->timed_out}};
    for (size_t i = 0; i < AM_ARRAY_LEN(results); i++) {
        const label l = {"result", results[i].result};
        sample_u64(b, "amanuensis_requests_total", "", &l, 1, results[i].n);
    }

    family(b, "amanuensis_queue_wait_seconds", "histogram",
           "Time from submission to the first encoded window of successful requests, in seconds.");
    histogram(b, "amanuensis_queue_wait_seconds", NULL, NULL, &c->wait, k_time_bounds, N_TIME_BOUNDS);
    family(b, "amanuensis_processing_seconds", "histogram",
           "Time from submission to completion of successful requests, in seconds.");
    histogram(b, "amanuensis_processing_seconds", NULL, NULL, &c->proc, k_time_bounds, N_TIME_BOUNDS);
    quantile_gauges(b, "amanuensis_recent_queue_wait_seconds",
                    "Queue wait percentiles over the last 4096 successful requests, in seconds.", &s->wait);
    quantile_gauges(b, "amanuensis_recent_processing_seconds",
                    "Processing time percentiles over the last 4096 successful requests, in seconds.", &s->lat);

    family(b, "amanuensis_audio_seconds_total", "counter", "Seconds of audio transcribed.");
    sample(b, "amanuensis_audio_seconds_total", "", NULL, 0, c->audio_s);
    family(b, "amanuensis_tokens_total", "counter", "Tokens generated for successful requests.");
    sample_u64(b, "amanuensis_tokens_total", "", NULL, 0, c->tokens);

    family(b, "amanuensis_batches_total", "counter", "Engine calls: encoder batches and decoder steps.");
    for (int k = 0; k < 2; k++) {
        const label l = {"stage", k_stage_names[k]};
        sample_u64(b, "amanuensis_batches_total", "", &l, 1, c->stages[k].batches);
    }
    family(b, "amanuensis_batch_size", "histogram",
           "Windows per encoder batch and sequences per decoder step.");
    for (int k = 0; k < 2; k++)
        histogram(b, "amanuensis_batch_size", "stage", k_stage_names[k], &c->stages[k].size, k_size_bounds,
                  N_SIZE_BOUNDS);
    family(b, "amanuensis_batch_duration_seconds", "summary", "Engine time per encoder batch / decoder step.");
    for (int k = 0; k < 2; k++) {
        const label l = {"stage", k_stage_names[k]};
        sample(b, "amanuensis_batch_duration_seconds", "_sum", &l, 1, c->stages[k].seconds);
        sample_u64(b, "amanuensis_batch_duration_seconds", "_count", &l, 1, c->stages[k].batches);
    }
}

static void render_state(sbuf *b, const snapshot *s, const am_metrics_state *st) {
    gauge(b, "amanuensis_uptime_seconds", "Seconds since the service started.", s->now - s->c.t0);
    family(b, "amanuensis_model_info", "gauge", "The loaded model, device and scheduling mode (always 1).");
    const label info[3] = {{"model", st->model ? st->model : ""},
                           {"device", st->device ? st->device : ""},
                           {"mode", state_mode(st)}};
    sample(b, "amanuensis_model_info", "", info, 3, 1);
    gauge(b, "amanuensis_batching_enabled", "1 when requests are batched together, 0 in sequential mode.",
          st->enabled ? 1 : 0);
    gauge(b, "amanuensis_draining", "1 while the service is shutting down.", st->draining ? 1 : 0);
    gauge(b, "amanuensis_max_batch_size", "Windows per encoder batch at most (BATCH_MAX_SIZE).",
          st->max_batch_size);
    gauge(b, "amanuensis_queue_depth", "Requests waiting for audio decoding or the encoder.", st->queue_depth);
    gauge(b, "amanuensis_pending_results", "Requests admitted and not yet answered.", st->pending_results);
    gauge(b, "amanuensis_active_sequences", "Windows decoding right now.", st->active_sequences);
}

// The common start of both renderings: the state to show and a snapshot.
static snapshot *begin_render(am_metrics *m, const am_metrics_state *st_in, const am_metrics_state **st) {
    if (!m) {
        am_set_error(AM_EINVAL, "metrics: NULL object");
        return NULL;
    }
    *st = state_or_default(st_in);
    return take_snapshot(m);
}

char *am_metrics_prometheus(am_metrics *m, const am_metrics_state *st_in) {
    const am_metrics_state *st;
    snapshot *s = begin_render(m, st_in, &st);
    if (!s) return NULL;
    sbuf b = {0};
    render_state(&b, s, st);
    render_http(&b, s);
    render_scheduler(&b, s);
    free(s);
    if (b.oom || !b.s) {
        free(b.s);
        am_set_error(AM_ENOMEM, "metrics: out of memory rendering /metrics");
        return NULL;
    }
    return b.s;
}

// ---------------------------------------------------------------- json
static void add_percentiles(cJSON *parent, const char *key, const percentiles *p, double scale, int *ok) {
    cJSON *o = cJSON_AddObjectToObject(parent, key);
    *ok &= o != NULL;
    *ok &= cJSON_AddNumberToObject(o, "p50", p->p50 * scale) != NULL;
    *ok &= cJSON_AddNumberToObject(o, "p90", p->p90 * scale) != NULL;
    *ok &= cJSON_AddNumberToObject(o, "p99", p->p99 * scale) != NULL;
    *ok &= cJSON_AddNumberToObject(o, "max", p->max * scale) != NULL;
}

static void add_size_histogram(cJSON *parent, const char *key, const stage *sg, int *ok) {
    cJSON *o = cJSON_AddObjectToObject(parent, key);
    *ok &= o != NULL;
    for (int size = 1; size <= EXACT_MAX && *ok; size++) {
        if (!sg->exact[size]) continue;
        char k[16];
        snprintf(k, sizeof k, "%d", size);
        *ok &= cJSON_AddNumberToObject(o, k, (double)sg->exact[size]) != NULL;
    }
}

static void add_stage(cJSON *parent, const char *key, const char *calls, const char *items, const stage *sg,
                      int *ok) {
    cJSON *o = cJSON_AddObjectToObject(parent, key);
    *ok &= o != NULL;
    *ok &= cJSON_AddNumberToObject(o, calls, (double)sg->batches) != NULL;
    *ok &= cJSON_AddNumberToObject(o, items, (double)sg->items) != NULL;
    *ok &= cJSON_AddNumberToObject(o, "avg_batch_size", ratio((double)sg->items, (double)sg->batches)) != NULL;
}

char *am_metrics_stats_json(am_metrics *m, const am_metrics_state *st_in) {
    const am_metrics_state *st;
    snapshot *s = begin_render(m, st_in, &st);
    if (!s) return NULL;
    const counters *c = &s->c;
    const stage *enc = &c->stages[AM_BATCH_ENCODER], *dec = &c->stages[AM_BATCH_DECODER];
    const double batches = (double)(enc->batches + dec->batches);
    const double items = (double)(enc->items + dec->items);
    const double uptime = s->now - c->t0;

    int ok = 1;
    cJSON *root = cJSON_CreateObject();
    ok &= root != NULL;
    ok &= cJSON_AddBoolToObject(root, "enabled", st->enabled != 0) != NULL;
    ok &= cJSON_AddStringToObject(root, "mode", state_mode(st)) != NULL;
    ok &= cJSON_AddNumberToObject(root, "throughput_rps", ratio((double)c->completed, uptime)) != NULL;
    ok &= cJSON_AddNumberToObject(root, "total_requests", (double)(c->completed + c->failed)) != NULL;
    ok &= cJSON_AddNumberToObject(root, "total_batches", batches) != NULL;
    ok &= cJSON_AddNumberToObject(root, "avg_batch_size", ratio(items, batches)) != NULL;
    ok &= cJSON_AddNumberToObject(root, "avg_wait_time_ms", 1000.0 * ratio(c->wait.sum, (double)c->wait.count)) !=
          NULL;
    ok &= cJSON_AddNumberToObject(root, "avg_processing_time_s", ratio(c->proc.sum, (double)c->proc.count)) != NULL;
    // Requests that ended without a transcript. Behind the HTTP layer every
    // request gets exactly one response, scheduler failures included, so the
    // error responses of the transcription endpoints count each once; without
    // an HTTP layer (library use) the scheduler's failures do.
    const uint64_t total_errors = s->http_total > 0 ? s->http_errors : c->failed;
    ok &= cJSON_AddNumberToObject(root, "total_errors", (double)total_errors) != NULL;
    ok &= cJSON_AddNumberToObject(root, "queue_depth", st->queue_depth) != NULL;
    ok &= cJSON_AddNumberToObject(root, "pending_results", st->pending_results) != NULL;

    cJSON *conf = cJSON_AddObjectToObject(root, "configuration");
    ok &= conf != NULL;
    ok &= cJSON_AddNumberToObject(conf, "max_batch_size", st->max_batch_size) != NULL;
    ok &= cJSON_AddNumberToObject(conf, "max_wait_ms", st->max_wait_ms) != NULL;
    ok &= cJSON_AddStringToObject(conf, "device", st->device ? st->device : "") != NULL;
    ok &= cJSON_AddBoolToObject(conf, "encoder_enabled", st->enabled != 0) != NULL;
    ok &= cJSON_AddBoolToObject(conf, "decoder_enabled", st->enabled != 0) != NULL;
    ok &= cJSON_AddNumberToObject(conf, "max_windows", st->max_windows) != NULL;
    ok &= cJSON_AddNumberToObject(conf, "max_queue", st->max_queue) != NULL;
    ok &= cJSON_AddStringToObject(conf, "model", st->model ? st->model : "") != NULL;

    cJSON *dist = cJSON_AddObjectToObject(root, "distributions");
    ok &= dist != NULL;
    cJSON *bsh = cJSON_AddObjectToObject(dist, "batch_size_histogram");
    ok &= bsh != NULL;
    add_size_histogram(bsh, "encoder", enc, &ok);
    add_size_histogram(bsh, "decoder", dec, &ok);
    add_percentiles(dist, "wait_time_ms", &s->wait, 1000.0, &ok);
    add_percentiles(dist, "latency_s", &s->lat, 1.0, &ok);

    add_stage(root, "encoder", "batches", "windows", enc, &ok);
    add_stage(root, "decoder", "steps", "rows", dec, &ok);
    ok &= cJSON_AddNumberToObject(root, "active_sequences", st->active_sequences) != NULL;
    ok &= cJSON_AddNumberToObject(root, "cancelled", (double)c->cancelled) != NULL;
    ok &= cJSON_AddNumberToObject(root, "timed_out", (double)c->timed_out) != NULL;
    ok &= cJSON_AddBoolToObject(root, "draining", st->draining != 0) != NULL;
    free(s);

    char *out = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!out) am_set_error(AM_ENOMEM, "metrics: out of memory rendering /stats/batching");
    return out;
}
