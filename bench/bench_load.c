// bench_load.c — HTTP load generator for the transcription server.
//
// Sends `--requests` POST /v1/audio/transcriptions uploads of FILE with up to
// `--concurrency` in flight (libcurl multi), then prints throughput (requests/s,
// audio seconds per second), latency percentiles and status counts. Only
// loopback/local targets make sense; nothing here is specific to amanuensis
// beyond the extension fields (temperature_inc).
//
// usage: bench_load --url http://127.0.0.1:9050 --file clip.wav [--concurrency 16] [--requests 64]
//                   [--format json] [--field name=value]... [--audio-seconds S]
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_common.h"

#define MAX_FIELDS 16

typedef struct {
    CURL *h;
    curl_mime *mime;
    double start;
    int index;
} transfer;

typedef struct {
    const char *url, *file, *format;
    const char *fields[MAX_FIELDS];
    int n_fields;
    int concurrency, requests;
    double audio_s; // seconds of audio per request (for the audio-seconds/s figure)
} options;

static size_t discard(char *p, size_t size, size_t n, void *user) {
    (void)p;
    (void)user;
    return size * n;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void start_transfer(CURLM *multi, transfer *t, const options *o, const char *endpoint, int index) {
    t->h = curl_easy_init();
    t->mime = curl_mime_init(t->h);
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
    t->start = am_time_s();
    t->index = index;
    curl_multi_add_handle(multi, t->h);
}

static int usage(int rc) {
    fprintf(rc ? stderr : stdout,
            "usage: bench_load --url URL --file FILE [--concurrency N] [--requests N] [--format F]\n"
            "                  [--field name=value]... [--audio-seconds S]\n");
    return rc;
}

int main(int argc, char **argv) {
    options o = {.url = "http://127.0.0.1:9050", .format = "json", .concurrency = 16, .requests = 64};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--url") && v) o.url = argv[++i];
        else if (!strcmp(a, "--file") && v) o.file = argv[++i];
        else if (!strcmp(a, "--format") && v) o.format = argv[++i];
        else if (!strcmp(a, "--concurrency") && v) o.concurrency = atoi(argv[++i]);
        else if (!strcmp(a, "--requests") && v) o.requests = atoi(argv[++i]);
        else if (!strcmp(a, "--audio-seconds") && v) o.audio_s = atof(argv[++i]);
        else if (!strcmp(a, "--field") && v && strchr(v, '=') && o.n_fields < MAX_FIELDS) o.fields[o.n_fields++] = argv[++i];
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(0);
        else return usage(1);
    }
    if (!o.file || o.concurrency < 1 || o.requests < 1) return usage(1);
    char endpoint[512];
    snprintf(endpoint, sizeof endpoint, "%s/v1/audio/transcriptions", o.url);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    transfer *ts = calloc((size_t)o.requests, sizeof *ts);
    double *lat = calloc((size_t)o.requests, sizeof *lat);
    int codes[600] = {0}, n_failed = 0, started = 0, finished = 0, running = 0;
    const double t0 = am_time_s();
    while (finished < o.requests) {
        while (started < o.requests && started - finished < o.concurrency) {
            start_transfer(multi, &ts[started], &o, endpoint, started);
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
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            lat[finished] = am_time_s() - t->start;
            if (msg->data.result != CURLE_OK) n_failed++;
            else if (code >= 0 && code < 600) codes[code]++;
            curl_multi_remove_handle(multi, t->h);
            curl_easy_cleanup(t->h);
            curl_mime_free(t->mime);
            finished++;
        }
        curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    const double wall = am_time_s() - t0;
    qsort(lat, (size_t)o.requests, sizeof *lat, cmp_double);
    const int n = o.requests;
    printf("requests %d, concurrency %d, wall %.2f s: %.2f req/s", n, o.concurrency, wall, n / wall);
    if (o.audio_s > 0) printf(", %.1f audio s/s", n * o.audio_s / wall);
    printf("\nlatency p50 %.2f s, p90 %.2f s, p99 %.2f s, max %.2f s\nstatus:", lat[n / 2], lat[(n * 9) / 10],
           lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], lat[n - 1]);
    for (int c = 0; c < 600; c++)
        if (codes[c]) printf(" %d x%d", c, codes[c]);
    if (n_failed) printf(" transport-errors x%d", n_failed);
    printf("\n");
    free(ts);
    free(lat);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return n_failed || codes[200] != n;
}
