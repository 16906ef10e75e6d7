// bench_load.c — HTTP load generator for transcription servers.
//
// Sends multipart uploads with up to `--concurrency` in flight (libcurl multi),
// either `--requests N` of them or as many as start within `--duration S`
// seconds, then prints throughput (requests/s, audio seconds per wall second,
// text tokens per second), latency percentiles, status counts and tokens per
// request. Only loopback/local targets make sense.
//
// Targets (--api):
//   openai      POST URL/v1/audio/transcriptions (amanuensis, OpenAI-compatible
//               servers): fields file, model=whisper-1, response_format.
//   whispercpp  POST URL/inference (whisper.cpp's examples/server): fields file,
//               response_format. Its own options go in as --field (temperature,
//               temperature_inc, no_timestamps, no_language_probabilities, ...).
// `--field name=value` adds a form field to every request (repeatable).
//
// Clips: `--file SPEC` (repeatable) and/or `--files LISTFILE` (one SPEC a line;
// blank lines and lines starting with # are skipped); request i uploads clip
// i mod n (round-robin). SPEC is PATH or PATH:SECONDS. A clip's audio length
// is SECONDS when given, else `--audio-seconds S` when given, else measured by
// decoding the file with the project's decoder (am_audio_decode_file: samples
// at 16 kHz / 16000). Audio seconds per second count the requests that got a
// 200.
//
// Tokens: with `--format verbose_json` every 200 response is parsed and the
// token ids in its `segments[].tokens` arrays are counted. "Text tokens" are
// the ids below `--eot-id` (default 50256, the end-of-text id of English-only
// vocabularies, n_vocab 51864; multilingual vocabularies have it at 50257):
// special tokens (end of text, start of transcript, language, task,
// no-timestamps) and timestamp tokens all have ids at or above it. Counting only
// text tokens makes the figure compare across servers: whisper.cpp's server
// leaves every id >= its end-of-text id out of the arrays itself, amanuensis
// reports the reference's segment tokens (which include timestamp tokens when
// timestamps are on). `tokens_all` counts every id in the arrays.
//
// Batching statistics (--stats, openai api only): GET URL/stats/batching once
// before the first request, every 250 ms during the run and once after the
// last; reported: means over the samples taken during the run of the
// instantaneous figures (queue_depth, active_sequences, pending_results) and of
// the server's running averages (avg_batch_size, avg_wait_time_ms), and from the
// counters' change between the first and last sample the run's own encoder
// windows per batch (and as a fraction of configuration.max_batch_size: the
// batch fill) and decoder rows per step.
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
// With --duration, new requests start until S seconds have passed; the ones in
// flight then are waited for and counted, and the wall time runs to the last.
//
// usage: bench_load --url http://127.0.0.1:9050 --file clip.wav[:SECONDS]... [--files LIST]
//                   [--api openai|whispercpp] [--concurrency 16] [--requests 64 | --duration S]
//                   [--format json] [--field name=value]... [--audio-seconds S] [--eot-id N]
//                   [--stats] [--retries N] [--retry-base-ms MS] [--json]
// Exit status 0 when every request finally got a 200, 1 otherwise, 2 on usage errors.
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "am_audio.h"
#include "am_common.h"

#define MAX_FIELDS 32
#define MAX_RETRIES 20
#define RETRY_CAP_S 10.0
#define MAX_BODY (64u << 20) // response bytes kept for token counting
#define STATS_PERIOD_S 0.25

typedef struct {
    const char *path;
    double seconds;
    int requests;       // finished requests that used it
    int ok;             // ... with a 200
    double latency_sum; // over its finished requests
} clip;

typedef struct {
    char *p;
    size_t len, cap;
    int overflow;
} buffer;

// One logical request (its attempts share it).
typedef struct {
    CURL *h;
    curl_mime *mime;
    int clip;          // index into the clip list
    double start;      // first attempt started
    double retry_at;   // > 0: waiting for this time to send the next attempt
    int attempts;      // attempts started
    long first_status; // HTTP status of the first attempt (0: transport error)
    long final_status; // HTTP status of the last attempt (0: transport error)
    int done;
    buffer body; // the last attempt's response body
} transfer;

// One finished request.
typedef struct {
    double latency, audio_s;
    long status;            // 0: transport error
    int tokens, tokens_all; // -1: not counted
} result;

typedef struct {
    const char *url, *format, *api;
    const char *fields[MAX_FIELDS];
    int n_fields;
    clip *clips;
    int n_clips;
    int concurrency, requests;
    double duration_s;   // > 0: run for this long instead of `requests`
    double audio_s;      // default seconds of audio per clip (0: measure)
    int eot_id;          // text tokens are ids below it
    int stats;           // sample /stats/batching
    int retries;         // extra attempts after a 5xx / transport error
    double retry_base_s; // backoff base (seconds)
    int json;            // one JSON object on stdout instead of the text report
} options;

// What the run counted.
typedef struct {
    int codes[600];                 // final HTTP status of every request
    int transport_errors;           // requests whose final attempt had no HTTP answer
    int first_failures;             // requests whose first attempt failed (5xx or transport)
    int first_5xx, first_transport; // ... split by kind
    int final_failures;             // requests that still failed after their retries (5xx or transport)
    int retries;                    // extra attempts sent
    int retried_ok;                 // requests that failed first and ended with a 200
    int unparsed;                   // 200 verbose_json bodies without countable segments
} tally;

// One /stats/batching reading.
typedef struct {
    int valid;
    double queue_depth, active_sequences, pending_results, avg_batch_size, avg_wait_time_ms;
    double enc_batches, enc_windows, dec_steps, dec_rows, total_requests, max_batch_size;
    double wait_p50, wait_p90, wait_p99;
    char mode[32];
} stats_sample;

// The sampler: one GET at a time, its own easy handle.
typedef struct {
    CURL *h; // non-NULL while a GET is in flight
    buffer body;
    char url[512];
    double next_at;
    int n;                                        // samples taken during the run
    double queue_depth, active, pending, avg_bs, avg_wait; // their sums
    stats_sample first, last;
} sampler;

// ---------------------------------------------------------------- helpers
static size_t collect(char *p, size_t size, size_t n, void *user) {
    buffer *b = user;
    const size_t k = size * n;
    if (b->overflow || b->len + k + 1 > MAX_BODY) {
        b->overflow = 1;
        return k;
    }
    if (b->len + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + k + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->overflow = 1;
            return k;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, k);
    b->len += k;
    b->p[b->len] = 0;
    return k;
}

static void buffer_reset(buffer *b) {
    b->len = 0;
    b->overflow = 0;
    if (b->p) b->p[0] = 0;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// The value at rank floor(n * permille / 1000) of sorted v (n > 0).
static double pct(const double *v, int n, int permille) {
    const long i = (long)n * permille / 1000;
    return v[i < n ? i : n - 1];
}

static int is_failure(CURLcode rc, long code) { return rc != CURLE_OK || code >= 500; }

// Text tokens (< eot) and all tokens in segments[].tokens of a verbose_json
// body; -1 when the body has no segments array.
static int count_tokens(const char *body, int eot_id, int *all) {
    *all = -1;
    cJSON *r = body ? cJSON_Parse(body) : NULL;
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(r, "segments");
    if (!cJSON_IsArray(segs)) {
        cJSON_Delete(r);
        return -1;
    }
    int text = 0, n = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, segs) {
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(s, "tokens"), *t;
        cJSON_ArrayForEach(t, toks) { // absent or not an array: nothing
            if (!cJSON_IsNumber(t)) continue;
            n++;
            text += t->valuedouble >= 0 && t->valuedouble < eot_id;
        }
    }
    cJSON_Delete(r);
    *all = n;
    return text;
}

static double num_at(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsNumber(x) ? x->valuedouble : 0;
}

static stats_sample parse_stats(const char *body) {
    stats_sample s = {0};
    cJSON *r = body ? cJSON_Parse(body) : NULL;
    if (!cJSON_IsObject(r)) {
        cJSON_Delete(r);
        return s;
    }
    s.valid = 1;
    s.queue_depth = num_at(r, "queue_depth", NULL);
    s.active_sequences = num_at(r, "active_sequences", NULL);
    s.pending_results = num_at(r, "pending_results", NULL);
    s.avg_batch_size = num_at(r, "avg_batch_size", NULL);
    s.avg_wait_time_ms = num_at(r, "avg_wait_time_ms", NULL);
    s.total_requests = num_at(r, "total_requests", NULL);
    s.enc_batches = num_at(r, "encoder", "batches");
    s.enc_windows = num_at(r, "encoder", "windows");
    s.dec_steps = num_at(r, "decoder", "steps");
    s.dec_rows = num_at(r, "decoder", "rows");
    s.max_batch_size = num_at(r, "configuration", "max_batch_size");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "distributions"),
                                                      "wait_time_ms");
    s.wait_p50 = num_at(w, "p50", NULL);
    s.wait_p90 = num_at(w, "p90", NULL);
    s.wait_p99 = num_at(w, "p99", NULL);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "mode");
    if (cJSON_IsString(m)) snprintf(s.mode, sizeof s.mode, "%s", m->valuestring);
    cJSON_Delete(r);
    return s;
}

static CURL *stats_handle(sampler *sp) {
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    buffer_reset(&sp->body);
    curl_easy_setopt(h, CURLOPT_URL, sp->url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sp->body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    return h;
}

// One blocking GET (before the first request and after the last).
static stats_sample stats_now(sampler *sp) {
    stats_sample s = {0};
    CURL *h = stats_handle(sp);
    long code = 0;
    if (h && curl_easy_perform(h) == CURLE_OK && curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
        code == 200)
        s = parse_stats(sp->body.p);
    curl_easy_cleanup(h);
    return s;
}

static void stats_add(sampler *sp, const stats_sample *s) {
    if (!s->valid) return;
    sp->n++;
    sp->queue_depth += s->queue_depth;
    sp->active += s->active_sequences;
    sp->pending += s->pending_results;
    sp->avg_bs += s->avg_batch_size;
    sp->avg_wait += s->avg_wait_time_ms;
}

// Start one attempt of t (a fresh easy handle each time: no state carries over).
static int start_attempt(CURLM *multi, transfer *t, const options *o, const char *endpoint) {
    t->h = curl_easy_init();
    t->mime = t->h ? curl_mime_init(t->h) : NULL;
    if (!t->mime) return -1;
    curl_mimepart *part = curl_mime_addpart(t->mime);
    curl_mime_name(part, "file");
    curl_mime_filedata(part, o->clips[t->clip].path);
    if (!strcmp(o->api, "openai")) {
        part = curl_mime_addpart(t->mime);
        curl_mime_name(part, "model");
        curl_mime_data(part, "whisper-1", CURL_ZERO_TERMINATED);
    }
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
    buffer_reset(&t->body);
    curl_easy_setopt(t->h, CURLOPT_URL, endpoint);
    curl_easy_setopt(t->h, CURLOPT_MIMEPOST, t->mime);
    curl_easy_setopt(t->h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(t->h, CURLOPT_WRITEDATA, &t->body);
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
            "usage: bench_load --url URL --file FILE[:SECONDS]... [--files LIST] [--api openai|whispercpp]\n"
            "                  [--concurrency N] [--requests N | --duration S] [--format F]\n"
            "                  [--field name=value]... [--audio-seconds S] [--eot-id N] [--stats]\n"
            "                  [--retries N] [--retry-base-ms MS] [--json]\n"
            "  --file SPEC        a clip, PATH or PATH:SECONDS (repeatable; requests use them round-robin)\n"
            "  --files LIST       clips from a file, one SPEC a line (# comments)\n"
            "  --api A            openai: POST URL/v1/audio/transcriptions (default);\n"
            "                     whispercpp: POST URL/inference (whisper.cpp's server)\n"
            "  --concurrency N    requests in flight (default 16)\n"
            "  --requests N       requests to send (default 64)\n"
            "  --duration S       start requests for S seconds instead (those in flight then finish)\n"
            "  --format F         response_format (default json); verbose_json counts tokens\n"
            "  --field name=value an extra form field (repeatable)\n"
            "  --audio-seconds S  audio length of clips without :SECONDS (default: decode and measure)\n"
            "  --eot-id N         text tokens are ids below N (default 50256, English-only vocabularies;\n"
            "                     multilingual: 50257)\n"
            "  --stats            sample URL/stats/batching every 250 ms (openai api)\n"
            "  --retries N        resend a request that got a 5xx or a transport error up to N times\n"
            "                     (exponential backoff with jitter; default 0)\n"
            "  --retry-base-ms MS the first backoff (default 100; doubles each attempt, at most 10 s)\n"
            "  --json             print one JSON object instead of the text report\n");
    return rc;
}

static int parse_int_arg(const char *v, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    const long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < lo || n > hi) return -1;
    *out = (int)n;
    return 0;
}

static int parse_double_arg(const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    const double x = strtod(v, &end);
    if (end == v || *end || errno || !(x >= lo && x <= hi)) return -1;
    *out = x;
    return 0;
}

// Append a clip from SPEC (PATH or PATH:SECONDS; the copy is owned by the list).
static int add_clip(options *o, const char *spec) {
    clip *c = realloc(o->clips, (size_t)(o->n_clips + 1) * sizeof *c);
    if (!c) return -1;
    o->clips = c;
    char *path = strdup(spec);
    if (!path) return -1;
    double s = -1;
    char *colon = strrchr(path, ':');
    if (colon && colon[1] && !parse_double_arg(colon + 1, 0, 1e7, &s)) *colon = 0;
    else s = -1;
    o->clips[o->n_clips++] = (clip){.path = path, .seconds = s};
    return 0;
}

static int read_clip_list(options *o, const char *list) {
    FILE *f = fopen(list, "r");
    if (!f) {
        fprintf(stderr, "bench_load: cannot open %s\n", list);
        return -1;
    }
    char line[4096];
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = 0;
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p && *p != '#') rc = add_clip(o, p);
    }
    fclose(f);
    return rc;
}

// Fill in every clip's audio seconds (given, --audio-seconds, or decoded).
static int measure_clips(options *o) {
    for (int i = 0; i < o->n_clips; i++) {
        clip *c = &o->clips[i];
        if (c->seconds >= 0) continue;
        if (o->audio_s > 0) {
            c->seconds = o->audio_s;
            continue;
        }
        float *x = NULL;
        size_t n = 0;
        if (am_audio_decode_file(c->path, NULL, &x, &n)) {
            fprintf(stderr, "bench_load: %s: %s (give its length as %s:SECONDS)\n", c->path, am_last_error(),
                    c->path);
            return -1;
        }
        am_audio_free(x);
        c->seconds = (double)n / AM_SAMPLE_RATE;
    }
    return 0;
}

// ---------------------------------------------------------------- report
typedef struct {
    int n;            // requests finished
    int ok;           // with a 200
    double wall, audio_ok; // seconds; audio seconds of the 200s
    double lat_mean;
    double *lat;      // sorted latencies (n)
    int tok_n;        // requests whose tokens were counted
    double tok_mean, tok_all_mean;
    int tok_min, tok_max;
    long tok_total;
} summary;

static summary summarize(const result *rs, int n, double wall, double *lat) {
    summary s = {.n = n, .wall = wall, .lat = lat, .tok_min = -1, .tok_max = -1};
    long all_total = 0;
    for (int i = 0; i < n; i++) {
        const result *r = &rs[i];
        lat[i] = r->latency;
        s.lat_mean += r->latency / n;
        if (r->status != 200) continue;
        s.ok++;
        s.audio_ok += r->audio_s;
        if (r->tokens < 0) continue;
        s.tok_n++;
        s.tok_total += r->tokens;
        all_total += r->tokens_all;
        if (s.tok_min < 0 || r->tokens < s.tok_min) s.tok_min = r->tokens;
        if (r->tokens > s.tok_max) s.tok_max = r->tokens;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    if (s.tok_n) {
        s.tok_mean = (double)s.tok_total / s.tok_n;
        s.tok_all_mean = (double)all_total / s.tok_n;
    }
    return s;
}

static int want_tokens(const options *o) { return !strcmp(o->format, "verbose_json"); }

static void print_text(const options *o, const tally *ty, const summary *s, const sampler *sp) {
    const int n = s->n;
    printf("requests %d, concurrency %d, wall %.2f s: %.2f req/s", n, o->concurrency, s->wall, n / s->wall);
    printf(", %.1f audio s/s", s->audio_ok / s->wall);
    printf("\nlatency p50 %.2f s, p90 %.2f s, p95 %.2f s, p99 %.2f s, max %.2f s (mean %.2f s)\nstatus:",
           pct(s->lat, n, 500), pct(s->lat, n, 900), pct(s->lat, n, 950), pct(s->lat, n, 990), s->lat[n - 1],
           s->lat_mean);
    for (int c = 0; c < 600; c++)
        if (ty->codes[c]) printf(" %d x%d", c, ty->codes[c]);
    if (ty->transport_errors) printf(" transport-errors x%d", ty->transport_errors);
    printf("\nfailures: first attempt %d (5xx %d, transport %d), after %d retr%s %d (retries sent %d, %d recovered)\n",
           ty->first_failures, ty->first_5xx, ty->first_transport, o->retries, o->retries == 1 ? "y" : "ies",
           ty->final_failures, ty->retries, ty->retried_ok);
    if (want_tokens(o)) {
        if (s->tok_n)
            printf("tokens per request: mean %.1f (min %d, max %d; all ids %.1f) over %d requests, %.1f tokens/s "
                   "(text tokens: ids < %d)\n",
                   s->tok_mean, s->tok_min, s->tok_max, s->tok_all_mean, s->tok_n, s->tok_total / s->wall, o->eot_id);
        else printf("tokens per request: none counted\n");
    }
    if (o->stats) {
        if (!sp->n || !sp->first.valid || !sp->last.valid) {
            printf("batching stats: unavailable\n");
            return;
        }
        const double eb = sp->last.enc_batches - sp->first.enc_batches;
        const double ew = sp->last.enc_windows - sp->first.enc_windows;
        const double ds = sp->last.dec_steps - sp->first.dec_steps;
        const double dr = sp->last.dec_rows - sp->first.dec_rows;
        printf("batching stats (%s, %d samples): queue depth %.2f, active sequences %.2f, pending results %.2f; "
               "encoder %.2f windows/batch (fill %.0f%% of %g), decoder %.2f rows/step; avg_batch_size %.2f, "
               "avg_wait_time_ms %.1f (means of samples); wait p50 %.1f ms, p90 %.1f ms\n",
               sp->last.mode, sp->n, sp->queue_depth / sp->n, sp->active / sp->n, sp->pending / sp->n,
               eb > 0 ? ew / eb : 0,
               eb > 0 && sp->last.max_batch_size > 0 ? 100 * ew / eb / sp->last.max_batch_size : 0,
               sp->last.max_batch_size, ds > 0 ? dr / ds : 0, sp->avg_bs / sp->n, sp->avg_wait / sp->n,
               sp->last.wait_p50, sp->last.wait_p90);
    }
}

static int print_json(const options *o, const tally *ty, const summary *s, const sampler *sp) {
    const int n = s->n;
    cJSON *r = cJSON_CreateObject();
    if (!r) return -1;
    cJSON_AddStringToObject(r, "api", o->api);
    cJSON_AddStringToObject(r, "format", o->format);
    cJSON_AddNumberToObject(r, "requests", n);
    cJSON_AddNumberToObject(r, "concurrency", o->concurrency);
    if (o->duration_s > 0) cJSON_AddNumberToObject(r, "duration_s", o->duration_s);
    cJSON_AddNumberToObject(r, "wall_s", s->wall);
    cJSON_AddNumberToObject(r, "requests_per_s", n / s->wall);
    cJSON_AddNumberToObject(r, "audio_s", s->audio_ok);
    cJSON_AddNumberToObject(r, "audio_s_per_s", s->audio_ok / s->wall);
    cJSON_AddNumberToObject(r, "ok", ty->codes[200]);
    cJSON_AddNumberToObject(r, "errors", n - ty->codes[200]);
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
        cJSON_AddNumberToObject(l, "p50", pct(s->lat, n, 500));
        cJSON_AddNumberToObject(l, "p90", pct(s->lat, n, 900));
        cJSON_AddNumberToObject(l, "p95", pct(s->lat, n, 950));
        cJSON_AddNumberToObject(l, "p99", pct(s->lat, n, 990));
        cJSON_AddNumberToObject(l, "max", s->lat[n - 1]);
        cJSON_AddNumberToObject(l, "mean", s->lat_mean);
    }
    if (want_tokens(o)) {
        cJSON *t = cJSON_AddObjectToObject(r, "tokens");
        if (t) {
            cJSON_AddNumberToObject(t, "eot_id", o->eot_id);
            cJSON_AddNumberToObject(t, "counted", s->tok_n);
            cJSON_AddNumberToObject(t, "unparsed", ty->unparsed);
            if (s->tok_n) {
                cJSON_AddNumberToObject(t, "mean", s->tok_mean);
                cJSON_AddNumberToObject(t, "min", s->tok_min);
                cJSON_AddNumberToObject(t, "max", s->tok_max);
                cJSON_AddNumberToObject(t, "total", (double)s->tok_total);
                cJSON_AddNumberToObject(t, "per_s", s->tok_total / s->wall);
                cJSON_AddNumberToObject(t, "all_mean", s->tok_all_mean);
            }
        }
    }
    cJSON *cl = cJSON_AddArrayToObject(r, "clips");
    for (int i = 0; cl && i < o->n_clips; i++) {
        const clip *c = &o->clips[i];
        cJSON *j = cJSON_CreateObject();
        if (!j) break;
        cJSON_AddItemToArray(cl, j);
        cJSON_AddStringToObject(j, "path", c->path);
        cJSON_AddNumberToObject(j, "seconds", c->seconds);
        cJSON_AddNumberToObject(j, "requests", c->requests);
        cJSON_AddNumberToObject(j, "ok", c->ok);
        if (c->requests) cJSON_AddNumberToObject(j, "latency_mean_s", c->latency_sum / c->requests);
    }
    if (o->stats && sp->n && sp->first.valid && sp->last.valid) {
        cJSON *b = cJSON_AddObjectToObject(r, "stats");
        if (b) {
            const double eb = sp->last.enc_batches - sp->first.enc_batches;
            const double ew = sp->last.enc_windows - sp->first.enc_windows;
            const double ds = sp->last.dec_steps - sp->first.dec_steps;
            const double dr = sp->last.dec_rows - sp->first.dec_rows;
            cJSON_AddStringToObject(b, "mode", sp->last.mode);
            cJSON_AddNumberToObject(b, "samples", sp->n);
            cJSON_AddNumberToObject(b, "queue_depth_mean", sp->queue_depth / sp->n);
            cJSON_AddNumberToObject(b, "active_sequences_mean", sp->active / sp->n);
            cJSON_AddNumberToObject(b, "pending_results_mean", sp->pending / sp->n);
            cJSON_AddNumberToObject(b, "avg_batch_size_mean", sp->avg_bs / sp->n);
            cJSON_AddNumberToObject(b, "avg_wait_time_ms_mean", sp->avg_wait / sp->n);
            cJSON_AddNumberToObject(b, "encoder_batches", eb);
            cJSON_AddNumberToObject(b, "encoder_windows", ew);
            cJSON_AddNumberToObject(b, "encoder_windows_per_batch", eb > 0 ? ew / eb : 0);
            cJSON_AddNumberToObject(b, "max_batch_size", sp->last.max_batch_size);
            cJSON_AddNumberToObject(b, "encoder_fill",
                                    eb > 0 && sp->last.max_batch_size > 0 ? ew / eb / sp->last.max_batch_size : 0);
            cJSON_AddNumberToObject(b, "decoder_steps", ds);
            cJSON_AddNumberToObject(b, "decoder_rows", dr);
            cJSON_AddNumberToObject(b, "decoder_rows_per_step", ds > 0 ? dr / ds : 0);
            cJSON_AddNumberToObject(b, "server_requests", sp->last.total_requests - sp->first.total_requests);
            cJSON_AddNumberToObject(b, "wait_time_ms_p50", sp->last.wait_p50);
            cJSON_AddNumberToObject(b, "wait_time_ms_p90", sp->last.wait_p90);
            cJSON_AddNumberToObject(b, "wait_time_ms_p99", sp->last.wait_p99);
        }
    }
    char *out = st && l ? cJSON_PrintUnformatted(r) : NULL;
    cJSON_Delete(r);
    if (!out) return -1;
    puts(out);
    free(out);
    return 0;
}

// ---------------------------------------------------------------- main
int main(int argc, char **argv) {
    options o = {.url = "http://127.0.0.1:9050", .format = "json", .api = "openai", .concurrency = 16,
                 .requests = 64, .eot_id = 50256, .retry_base_s = 0.1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ms;
        if (!strcmp(a, "--url") && v) o.url = argv[++i];
        else if (!strcmp(a, "--file") && v) {
            if (add_clip(&o, argv[++i])) return 1;
        } else if (!strcmp(a, "--files") && v) {
            if (read_clip_list(&o, argv[++i])) return 2;
        } else if (!strcmp(a, "--api") && v) {
            o.api = argv[++i];
            if (strcmp(o.api, "openai") && strcmp(o.api, "whispercpp")) return usage(2);
        } else if (!strcmp(a, "--format") && v) o.format = argv[++i];
        else if (!strcmp(a, "--concurrency") && v) {
            if (parse_int_arg(argv[++i], 1, 100000, &o.concurrency)) return usage(2);
        } else if (!strcmp(a, "--requests") && v) {
            if (parse_int_arg(argv[++i], 1, 100000000, &o.requests)) return usage(2);
        } else if (!strcmp(a, "--duration") && v) {
            if (parse_double_arg(argv[++i], 1e-3, 1e7, &o.duration_s)) return usage(2);
        } else if (!strcmp(a, "--audio-seconds") && v) {
            if (parse_double_arg(argv[++i], 0, 1e7, &o.audio_s)) return usage(2);
        } else if (!strcmp(a, "--eot-id") && v) {
            if (parse_int_arg(argv[++i], 1, 1000000, &o.eot_id)) return usage(2);
        } else if (!strcmp(a, "--field") && v && strchr(v, '=') && o.n_fields < MAX_FIELDS)
            o.fields[o.n_fields++] = argv[++i];
        else if (!strcmp(a, "--stats")) o.stats = 1;
        else if (!strcmp(a, "--retries") && v) {
            if (parse_int_arg(argv[++i], 0, MAX_RETRIES, &o.retries)) return usage(2);
        } else if (!strcmp(a, "--retry-base-ms") && v) {
            if (parse_int_arg(argv[++i], 1, 60000, &ms)) return usage(2);
            o.retry_base_s = ms / 1000.0;
        } else if (!strcmp(a, "--json")) o.json = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(0);
        else return usage(2);
    }
    if (!o.n_clips) return usage(2);
    if (o.stats && strcmp(o.api, "openai")) {
        fprintf(stderr, "bench_load: --stats needs --api openai (/stats/batching)\n");
        return 2;
    }
    if (measure_clips(&o)) return 1;
    char endpoint[512];
    snprintf(endpoint, sizeof endpoint, "%s%s", o.url,
             strcmp(o.api, "openai") ? "/inference" : "/v1/audio/transcriptions");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    // transfers are allocated one by one (libcurl holds pointers to them); the
    // pointer and result arrays grow with --duration
    int cap = o.duration_s > 0 ? 256 : o.requests;
    transfer **ts = calloc((size_t)cap, sizeof *ts);
    result *rs = calloc((size_t)cap, sizeof *rs);
    if (!multi || !ts || !rs) {
        fprintf(stderr, "bench_load: out of memory\n");
        return 1;
    }
    sampler sp = {0};
    snprintf(sp.url, sizeof sp.url, "%s/stats/batching", o.url);
    if (o.stats) sp.first = stats_now(&sp);
    tally ty = {0};
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)clock();
    int started = 0, finished = 0, running = 0;
    const double t0 = am_time_s();
    sp.next_at = t0 + STATS_PERIOD_S;
    for (;;) {
        const double now = am_time_s();
        const int more = o.duration_s > 0 ? now - t0 < o.duration_s : started < o.requests;
        if (!more && finished == started) break;
        // due retries first (they hold their slot while backing off), then new requests
        double next_retry = 0;
        for (int i = 0; i < started; i++) {
            transfer *t = ts[i];
            if (t->done || t->retry_at <= 0) continue;
            if (t->retry_at <= now) {
                if (start_attempt(multi, t, &o, endpoint)) {
                    fprintf(stderr, "bench_load: cannot create a transfer\n");
                    return 1;
                }
                ty.retries++;
            } else if (next_retry == 0 || t->retry_at < next_retry) next_retry = t->retry_at;
        }
        while ((o.duration_s > 0 ? am_time_s() - t0 < o.duration_s : started < o.requests) &&
               started - finished < o.concurrency) {
            if (started == cap) {
                const int nc = cap * 2;
                transfer **nts = realloc(ts, (size_t)nc * sizeof *nts);
                if (nts) ts = nts;
                result *nrs = nts ? realloc(rs, (size_t)nc * sizeof *nrs) : NULL;
                if (nrs) rs = nrs;
                if (!nts || !nrs) {
                    fprintf(stderr, "bench_load: out of memory\n");
                    return 1;
                }
                cap = nc;
            }
            transfer *t = calloc(1, sizeof *t);
            if (!t) {
                fprintf(stderr, "bench_load: out of memory\n");
                return 1;
            }
            t->clip = started % o.n_clips;
            ts[started] = t;
            if (start_attempt(multi, t, &o, endpoint)) {
                fprintf(stderr, "bench_load: cannot create a transfer\n");
                return 1;
            }
            started++;
        }
        if (o.stats && !sp.h && am_time_s() >= sp.next_at) {
            sp.h = stats_handle(&sp);
            if (sp.h) curl_multi_add_handle(multi, sp.h);
            sp.next_at += STATS_PERIOD_S;
            if (sp.next_at < am_time_s()) sp.next_at = am_time_s() + STATS_PERIOD_S;
        }
        curl_multi_perform(multi, &running);
        int left, progressed = 0;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            progressed = 1;
            long code = 0;
            const CURLcode rc = msg->data.result;
            if (rc == CURLE_OK) curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (sp.h && msg->easy_handle == sp.h) { // a /stats/batching sample
                curl_multi_remove_handle(multi, sp.h);
                curl_easy_cleanup(sp.h);
                sp.h = NULL;
                if (code == 200) {
                    const stats_sample s = parse_stats(sp.body.p);
                    stats_add(&sp, &s);
                }
                continue;
            }
            transfer *t;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
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
            clip *c = &o.clips[t->clip];
            result *r = &rs[finished++];
            *r = (result){.latency = am_time_s() - t->start,
                          .audio_s = c->seconds,
                          .status = rc == CURLE_OK ? code : 0,
                          .tokens = -1,
                          .tokens_all = -1};
            c->requests++;
            c->latency_sum += r->latency;
            if (rc != CURLE_OK) ty.transport_errors++;
            else if (code >= 0 && code < 600) ty.codes[code]++;
            if (failed) ty.final_failures++;
            else if (t->attempts > 1 && code == 200) ty.retried_ok++;
            if (r->status == 200) {
                c->ok++;
                if (want_tokens(&o)) {
                    r->tokens = t->body.overflow ? -1 : count_tokens(t->body.p, o.eot_id, &r->tokens_all);
                    if (r->tokens < 0) ty.unparsed++;
                }
            }
            free(t->body.p);
            t->body = (buffer){0};
        }
        if (progressed) continue; // refill the freed slots at once
        // sleep until there is socket activity, at most until the next retry or sample is due
        double wake = am_time_s() + 0.1;
        if (next_retry > 0 && next_retry < wake) wake = next_retry;
        if (o.stats && !sp.h && sp.next_at < wake) wake = sp.next_at;
        if (o.duration_s > 0 && t0 + o.duration_s > am_time_s() && t0 + o.duration_s < wake) wake = t0 + o.duration_s;
        const double d = 1e3 * (wake - am_time_s());
        curl_multi_poll(multi, NULL, 0, d <= 0 ? 0 : (int)d + 1, NULL);
    }
    const double wall = am_time_s() - t0;
    if (sp.h) {
        curl_multi_remove_handle(multi, sp.h);
        curl_easy_cleanup(sp.h);
        sp.h = NULL;
    }
    if (o.stats) sp.last = stats_now(&sp);
    const int n = finished;
    double *lat = calloc((size_t)(n ? n : 1), sizeof *lat);
    if (!lat) {
        fprintf(stderr, "bench_load: out of memory\n");
        return 1;
    }
    int rc = 1;
    if (n == 0) fprintf(stderr, "bench_load: no request finished\n");
    else {
        const summary s = summarize(rs, n, wall, lat);
        if (o.json) {
            if (print_json(&o, &ty, &s, &sp)) fprintf(stderr, "bench_load: out of memory\n");
        } else print_text(&o, &ty, &s, &sp);
        rc = ty.final_failures || ty.transport_errors || ty.codes[200] != n;
    }
    for (int i = 0; i < started; i++) free(ts[i]);
    for (int i = 0; i < o.n_clips; i++) free((char *)o.clips[i].path);
    free(o.clips);
    free(ts);
    free(rs);
    free(lat);
    free(sp.body.p);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return rc;
}
