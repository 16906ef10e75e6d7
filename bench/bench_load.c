// bench_load.c — HTTP load generator for the transcription server.
//
// Sends `--requests` POST /v1/audio/transcriptions uploads of FILE with up to
// `--concurrency` in flight (libcurl multi), then prints throughput (requests/s,
// audio seconds per second), latency percentiles and status counts. Only
// loopback/local targets make sense; nothing here is specific to amanuensis
// beyond the extension fields (temperature_inc).
//
// Retries (--retries N, default 0): a request that got a 5xx or a transport
// error (connection refused or reset, timeout) is sent again, up to N more
// times, after an exponential backoff with jitter: attempt k (1..N) waits a
// uniformly random time in [base/2, base] * 2^(k-1), capped at 10 s (base
// --retry-base-ms, default 100). A transcription has no side effects, so
// replaying it is safe — this is the client's half of running several
// instances behind a load balancer: a request that was running on an
// instance that died gets a 502 from the balancer and must be retried by the
// client (the OpenAI SDKs do the same by default). 4xx (429 included) are
// results, never retried. The report counts first-attempt failures and final
// failures apart; latency is per request, first attempt to final answer,
// backoff included. (libcurl itself resends, once, a request whose reused
// keep-alive connection was closed before any answer, as HAProxy does to a
// kept-alive client whose instance died; such a request is not counted as a
// failure here.)
//
// usage: bench_load --url http://127.0.0.1:9050 --file clip.wav [--concurrency 16] [--requests 64]
//                   [--format json] [--field name=value]... [--audio-seconds S]
//                   [--retries N] [--retry-base-ms MS] [--json]
// Exit status 0 when every request finally got a 200, 1 otherwise, 2 on usage errors.
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "am_common.h"

#define MAX_FIELDS 16
#define MAX_RETRIES 20
#define RETRY_CAP_S 10.0

// One logical request (its attempts share it).
typedef struct {
    CURL *h;
    curl_mime *mime;
    double start;      // first attempt started
    double retry_at;   // > 0: waiting for this time to send the next attempt
    int attempts;      // attempts started
    long first_status; // HTTP status of the first attempt (0: transport error)
    long final_status; // HTTP status of the last attempt (0: transport error)
    int done;
} transfer;

typedef struct {
    const char *url, *file, *format;
    const char *fields[MAX_FIELDS];
    int n_fields;
    int concurrency, requests;
    double audio_s;  // seconds of audio per request (for the audio-seconds/s figure)
    int retries;     // extra attempts after a 5xx / transport error
    double retry_base_s; // backoff base (seconds)
    int json;        // one JSON object on stdout instead of the text report
} options;

// What the run counted.
typedef struct {
    int codes[600];        // final HTTP status of every request
    int transport_errors;  // requests whose final attempt had no HTTP answer
    int first_failures;    // requests whose first attempt failed (5xx or transport)
    int first_5xx, first_transport; // ... split by kind
    int final_failures;    // requests that still failed after their retries (5xx or transport)
    int retries;           // extra attempts sent
    int retried_ok;        // requests that failed first and ended with a 200
} tally;

static size_t discard(char *p, size_t size, size_t n, void *user) {
    (void)p;
    (void)user;
    return size * n;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int is_failure(CURLcode rc, long code) { return rc != CURLE_OK || code >= 500; }

// Start one attempt of t (a fresh easy handle each time: no state carries over).
static int start_attempt(CURLM *multi, transfer *t, const options *o, const char *endpoint) {
    t->h = curl_easy_init();
    t->mime = t->h ? curl_mime_init(t->h) : NULL;
    if (!t->mime) return -1;
    curl_mimepart *part = curl_mime_addpart(t->mime);
    curl_mime_name(part, "file");
    curl_mime_filedata(part, o->file);
    part = curl_mime_addpart(t->mime);
    curl_mime_name(part, "model");
    curl_mime_data(part, "whisper-1", CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(t->mime);
    curl_mime_name(part, "response_format");
    curl_mime_data(part, o->format, CURL_ZERO_TERMINATED);
    for (int i = 0; i < o->n_fields; i++) {
        char name[128];
        const char *eq = strchr(o->fields[i], '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq - o->fields[i]), o->fields[i]);
        part = curl_mime_addpart(t->mime);
        curl_mime_name(part, name);
        curl_mime_data(part, eq + 1, CURL_ZERO_TERMINATED);
    }
    curl_easy_setopt(t->h, CURLOPT_URL, endpoint);
    curl_easy_setopt(t->h, CURLOPT_MIMEPOST, t->mime);
    curl_easy_setopt(t->h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(t->h, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->h, CURLOPT_TIMEOUT, 600L);
    if (t->attempts == 0) t->start = am_time_s();
    t->attempts++;
    t->retry_at = 0;
    curl_multi_add_handle(multi, t->h);
    return 0;
}

static void end_attempt(CURLM *multi, transfer *t) {
    curl_multi_remove_handle(multi, t->h);
    curl_easy_cleanup(t->h);
    curl_mime_free(t->mime);
    t->h = NULL;
    t->mime = NULL;
}

// Backoff before extra attempt k (1-based): uniform in [base/2, base] * 2^(k-1), capped.
static double backoff_s(const options *o, int k, unsigned *seed) {
    double d = o->retry_base_s;
    for (int i = 1; i < k && d < RETRY_CAP_S; i++) d *= 2;
    if (d > RETRY_CAP_S) d = RETRY_CAP_S;
    const double u = (double)rand_r(seed) / RAND_MAX;
    return d * (0.5 + 0.5 * u);
}

static int usage(int rc) {
    fprintf(rc ? stderr : stdout,
            "usage: bench_load --url URL --file FILE [--concurrency N] [--requests N] [--format F]\n"
            "                  [--field name=value]... [--audio-seconds S]\n"
            "                  [--retries N] [--retry-base-ms MS] [--json]\n"
            "  --retries N        resend a request that got a 5xx or a transport error up to N times\n"
            "                     (exponential backoff with jitter; default 0)\n"
            "  --retry-base-ms MS the first backoff (default 100; doubles each attempt, at most 10 s)\n"
            "  --json             print one JSON object instead of the text report\n");
    return rc;
}

static int parse_int_arg(const char *v, int lo, int hi, int *out) {
    char *end;
    const long n = strtol(v, &end, 10);
    if (end == v || *end || n < lo || n > hi) return -1;
    *out = (int)n;
    return 0;
}

static void print_text(const options *o, const tally *ty, double wall, const double *lat, int n) {
    printf("requests %d, concurrency %d, wall %.2f s: %.2f req/s", n, o->concurrency, wall, n / wall);
    if (o->audio_s > 0) printf(", %.1f audio s/s", n * o->audio_s / wall);
    printf("\nlatency p50 %.2f s, p90 %.2f s, p99 %.2f s, max %.2f s\nstatus:", lat[n / 2], lat[(n * 9) / 10],
           lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], lat[n - 1]);
    for (int c = 0; c < 600; c++)
        if (ty->codes[c]) printf(" %d x%d", c, ty->codes[c]);
    if (ty->transport_errors) printf(" transport-errors x%d", ty->transport_errors);
    printf("\nfailures: first attempt %d (5xx %d, transport %d), after %d retr%s %d (retries sent %d, %d recovered)\n",
           ty->first_failures, ty->first_5xx, ty->first_transport, o->retries, o->retries == 1 ? "y" : "ies",
           ty->final_failures, ty->retries, ty->retried_ok);
}

static int print_json(const options *o, const tally *ty, double wall, const double *lat, int n) {
    cJSON *r = cJSON_CreateObject();
    if (!r) return -1;
    cJSON_AddNumberToObject(r, "requests", n);
    cJSON_AddNumberToObject(r, "concurrency", o->concurrency);
    cJSON_AddNumberToObject(r, "wall_s", wall);
    cJSON_AddNumberToObject(r, "requests_per_s", n / wall);
    if (o->audio_s > 0) cJSON_AddNumberToObject(r, "audio_s_per_s", n * o->audio_s / wall);
    cJSON_AddNumberToObject(r, "ok", ty->codes[200]);
    cJSON_AddNumberToObject(r, "transport_errors", ty->transport_errors);
    cJSON_AddNumberToObject(r, "retries_allowed", o->retries);
    cJSON_AddNumberToObject(r, "first_attempt_failures", ty->first_failures);
    cJSON_AddNumberToObject(r, "first_attempt_5xx", ty->first_5xx);
    cJSON_AddNumberToObject(r, "first_attempt_transport_errors", ty->first_transport);
    cJSON_AddNumberToObject(r, "retries", ty->retries);
    cJSON_AddNumberToObject(r, "recovered_by_retry", ty->retried_ok);
    cJSON_AddNumberToObject(r, "final_failures", ty->final_failures);
    cJSON *st = cJSON_AddObjectToObject(r, "status"); // final HTTP status of each request
    for (int c = 0; st && c < 600; c++) {
        if (!ty->codes[c]) continue;
        char k[8];
        snprintf(k, sizeof k, "%d", c);
        cJSON_AddNumberToObject(st, k, ty->codes[c]);
    }
    cJSON *l = cJSON_AddObjectToObject(r, "latency_s");
    if (l) {
        cJSON_AddNumberToObject(l, "p50", lat[n / 2]);
        cJSON_AddNumberToObject(l, "p90", lat[(n * 9) / 10]);
        cJSON_AddNumberToObject(l, "p99", lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1]);
        cJSON_AddNumberToObject(l, "max", lat[n - 1]);
    }
    char *s = st && l ? cJSON_PrintUnformatted(r) : NULL;
    cJSON_Delete(r);
    if (!s) return -1;
    puts(s);
    free(s);
    return 0;
}

int main(int argc, char **argv) {
    options o = {.url = "http://127.0.0.1:9050", .format = "json", .concurrency = 16, .requests = 64,
                 .retry_base_s = 0.1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ms;
        if (!strcmp(a, "--url") && v) o.url = argv[++i];
        else if (!strcmp(a, "--file") && v) o.file = argv[++i];
        else if (!strcmp(a, "--format") && v) o.format = argv[++i];
        else if (!strcmp(a, "--concurrency") && v) o.concurrency = atoi(argv[++i]);
        else if (!strcmp(a, "--requests") && v) o.requests = atoi(argv[++i]);
        else if (!strcmp(a, "--audio-seconds") && v) o.audio_s = atof(argv[++i]);
        else if (!strcmp(a, "--field") && v && strchr(v, '=') && o.n_fields < MAX_FIELDS) o.fields[o.n_fields++] = argv[++i];
        else if (!strcmp(a, "--retries") && v) {
            if (parse_int_arg(argv[++i], 0, MAX_RETRIES, &o.retries)) return usage(2);
        } else if (!strcmp(a, "--retry-base-ms") && v) {
            if (parse_int_arg(argv[++i], 1, 60000, &ms)) return usage(2);
            o.retry_base_s = ms / 1000.0;
        } else if (!strcmp(a, "--json")) o.json = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(0);
        else return usage(2);
    }
    if (!o.file || o.concurrency < 1 || o.requests < 1) return usage(2);
    char endpoint[512];
    snprintf(endpoint, sizeof endpoint, "%s/v1/audio/transcriptions", o.url);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    transfer *ts = calloc((size_t)o.requests, sizeof *ts);
    double *lat = calloc((size_t)o.requests, sizeof *lat);
    if (!multi || !ts || !lat) {
        fprintf(stderr, "bench_load: out of memory\n");
        return 1;
    }
    tally ty = {0};
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)clock();
    int started = 0, finished = 0, running = 0;
    const double t0 = am_time_s();
    while (finished < o.requests) {
        // due retries first (they hold their slot while backing off), then new requests
        const double now = am_time_s();
        double next_retry = 0;
        for (int i = 0; i < started; i++) {
            transfer *t = &ts[i];
            if (t->done || t->retry_at <= 0) continue;
            if (t->retry_at <= now) {
                if (start_attempt(multi, t, &o, endpoint)) {
                    fprintf(stderr, "bench_load: cannot create a transfer\n");
                    return 1;
                }
                ty.retries++;
            } else if (next_retry == 0 || t->retry_at < next_retry) next_retry = t->retry_at;
        }
        while (started < o.requests && started - finished < o.concurrency) {
            if (start_attempt(multi, &ts[started], &o, endpoint)) {
                fprintf(stderr, "bench_load: cannot create a transfer\n");
                return 1;
            }
            started++;
        }
        curl_multi_perform(multi, &running);
        int left;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            transfer *t;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            long code = 0;
            const CURLcode rc = msg->data.result;
            if (rc == CURLE_OK) curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            end_attempt(multi, t);
            const int failed = is_failure(rc, code);
            if (t->attempts == 1) {
                t->first_status = code;
                if (failed) {
                    ty.first_failures++;
                    if (rc != CURLE_OK) ty.first_transport++;
                    else ty.first_5xx++;
                }
            }
            t->final_status = code;
            if (failed && t->attempts <= o.retries) {
                t->retry_at = am_time_s() + backoff_s(&o, t->attempts, &seed);
                continue;
            }
            t->done = 1;
            lat[finished++] = am_time_s() - t->start;
            if (rc != CURLE_OK) ty.transport_errors++;
            else if (code >= 0 && code < 600) ty.codes[code]++;
            if (failed) ty.final_failures++;
            else if (t->attempts > 1 && code == 200) ty.retried_ok++;
        }
        // sleep until there is socket activity, at most until the next retry is due
        int wait_ms = 100;
        if (next_retry > 0) {
            const double d = 1e3 * (next_retry - am_time_s());
            wait_ms = d < 0 ? 0 : d < wait_ms ? (int)d + 1 : wait_ms;
        }
        curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
    }
    const double wall = am_time_s() - t0;
    qsort(lat, (size_t)o.requests, sizeof *lat, cmp_double);
    const int n = o.requests;
    if (o.json) {
        if (print_json(&o, &ty, wall, lat, n)) fprintf(stderr, "bench_load: out of memory\n");
    } else print_text(&o, &ty, wall, lat, n);
    free(ts);
    free(lat);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return ty.final_failures || ty.transport_errors || ty.codes[200] != n;
}
