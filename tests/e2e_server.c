// e2e_server.c — the real server on loopback under concurrent load:
//   * 16 concurrent requests over different clips each return exactly the
//     transcript the CLI gives for that clip alone, with batching on and off;
//     /stats/batching shows avg_batch_size > 1 with batching, exactly 1 without;
//   * isolation: valid clips mixed with an undecodable, an empty and an
//     oversized upload — each bad one gets its own error, the rest succeed;
//   * a client that disconnects mid-request frees its slots (visible in
//     /stats/batching and /metrics).
#include <cjson/cJSON.h>

#include "server.h"

#define N_CONCURRENT 16

typedef struct {
    const char *name;
    char path[1024];
    void *data;
    size_t size;
    char *cli; // canonical transcript from the CLI, alone
} clip;

// text + every segment's seek, start, end, text, tokens, temperature
static char *canonical(const char *verbose_json) {
    cJSON *j = cJSON_Parse(verbose_json);
    if (!j) return NULL;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemReferenceToObject(out, "text", cJSON_GetObjectItem(j, "text"));
    cJSON *segs = cJSON_AddArrayToObject(out, "segments");
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(j, "segments")) {
        cJSON *c = cJSON_CreateObject();
        const char *keys[] = {"seek", "start", "end", "text", "tokens", "temperature"};
        for (size_t k = 0; k < AM_ARRAY_LEN(keys); k++)
            cJSON_AddItemToObject(c, keys[k], cJSON_Duplicate(cJSON_GetObjectItem(s, keys[k]), 1));
        cJSON_AddItemToArray(segs, c);
    }
    char *r = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    cJSON_Delete(j);
    return r;
}

static char *run_cli(const char *model, const char *clip_path) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/amanuensis' transcribe -q -m '%s' --temperature-inc 0 -f verbose_json '%s'",
             AM_BINARY_DIR, model, clip_path);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    http_body b = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) http_body_write(buf, 1, n, &b);
    const int rc = pclose(p);
    char *c = rc == 0 && b.data ? canonical(b.data) : NULL;
    free(b.data);
    return c;
}

static double stats_number(int port, const char *key) {
    char *body = NULL;
    double v = -1;
    if (http_get(port, "/stats/batching", &body) == 200) {
        cJSON *j = cJSON_Parse(body);
        const cJSON *x = cJSON_GetObjectItem(j, key);
        if (cJSON_IsNumber(x)) v = x->valuedouble;
        cJSON_Delete(j);
    }
    free(body);
    return v;
}

static void test_concurrent(const char *model, clip *clips, int n_clips, int batching) {
    const char *args[] = {"--batching", batching ? "on" : "off", "--max-wait-ms", "20", NULL};
    test_server s;
    CHECKF(server_start(&s, model, args) == 0, "server (batching %d) did not start", batching);
    if (!s.port) return;
    http_upload u[N_CONCURRENT];
    const char *fields[] = {"response_format", "verbose_json", "temperature_inc", "0", NULL};
    for (int i = 0; i < N_CONCURRENT; i++) {
        const clip *c = &clips[i % n_clips];
        http_upload_init(&u[i], s.port, "/v1/audio/transcriptions", c->data, c->size, c->name, fields);
    }
    const double t0 = am_time_s();
    http_run_all(u, N_CONCURRENT);
    const double wall = am_time_s() - t0;
    int same = 0;
    for (int i = 0; i < N_CONCURRENT; i++) {
        const clip *c = &clips[i % n_clips];
        CHECKF(u[i].status == 200, "batching %d request %d (%s): status %ld %.200s", batching, i, c->name,
               u[i].status, u[i].body.data ? u[i].body.data : "");
        char *got = u[i].body.data ? canonical(u[i].body.data) : NULL;
        const int eq = got && c->cli && strcmp(got, c->cli) == 0;
        CHECKF(eq, "batching %d request %d (%s): transcript differs from the CLI's", batching, i, c->name);
        same += eq;
        free(got);
        http_upload_free(&u[i]);
    }
    const double avg = stats_number(s.port, "avg_batch_size");
    printf("  batching %s: %d/%d identical to the CLI, %.1f s for %d requests, avg_batch_size %.3f\n",
           batching ? "on " : "off", same, N_CONCURRENT, wall, N_CONCURRENT, avg);
    if (batching) CHECKF(avg > 1.0, "avg_batch_size %.3f should exceed 1 under concurrent load", avg);
    else CHECKF(avg == 1.0, "avg_batch_size %.3f should be exactly 1 with batching off", avg);
    char *metrics = NULL;
    CHECK(http_get(s.port, "/metrics", &metrics) == 200);
    CHECK(metrics && strstr(metrics, "amanuensis_batch_size_bucket"));
    free(metrics);
    CHECKF(server_stop(&s, SIGTERM) == 0, "server did not exit 0 on SIGTERM");
}

static void test_isolation(const char *model, const clip *jfk) {
    const char *args[] = {"--max-upload-mb", "1", NULL};
    test_server s;
    CHECK(server_start(&s, model, args) == 0);
    if (!s.port) return;
    enum { N = 6 };
    char garbage[8192];
    for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (char)((i * 2654435761u) >> 13);
    const size_t big_size = 2 * 1024 * 1024;
    char *big = malloc(big_size);
    memcpy(big, jfk->data, AM_MIN(jfk->size, big_size));
    memset(big + AM_MIN(jfk->size, big_size), 0, big_size - AM_MIN(jfk->size, big_size));
    const char *fields[] = {"temperature_inc", "0", NULL};
    http_upload u[N];
    http_upload_init(&u[0], s.port, "/v1/audio/transcriptions", jfk->data, jfk->size, "a.wav", fields);
    http_upload_init(&u[1], s.port, "/v1/audio/transcriptions", garbage, sizeof garbage, "garbage.mp3", fields);
    http_upload_init(&u[2], s.port, "/v1/audio/transcriptions", jfk->data, jfk->size, "b.wav", fields);
    http_upload_init(&u[3], s.port, "/v1/audio/transcriptions", "", 0, "empty.wav", fields);
    http_upload_init(&u[4], s.port, "/v1/audio/transcriptions", big, big_size, "big.wav", fields);
    http_upload_init(&u[5], s.port, "/v1/audio/transcriptions", jfk->data, jfk->size, "c.wav", fields);
    http_run_all(u, N);
    const long want[N] = {200, 400, 200, 400, 413, 200};
    for (int i = 0; i < N; i++) {
        CHECKF(u[i].status == want[i], "isolation request %d: status %ld, expected %ld (%.200s)", i, u[i].status,
               want[i], u[i].body.data ? u[i].body.data : "");
        if (want[i] != 200) {
            cJSON *j = u[i].body.data ? cJSON_Parse(u[i].body.data) : NULL;
            const cJSON *e = cJSON_GetObjectItem(j, "error");
            CHECKF(cJSON_IsString(cJSON_GetObjectItem(e, "message")) && cJSON_GetObjectItem(e, "type"),
                   "request %d: error body not in OpenAI's shape", i);
            cJSON_Delete(j);
        }
    }
    // the same clip gives the same text (the performance figures differ)
    cJSON *a = u[0].body.data ? cJSON_Parse(u[0].body.data) : NULL, *b = u[2].body.data ? cJSON_Parse(u[2].body.data) : NULL;
    const cJSON *ta = cJSON_GetObjectItem(a, "text"), *tb = cJSON_GetObjectItem(b, "text");
    CHECK(cJSON_IsString(ta) && cJSON_IsString(tb) && strcmp(ta->valuestring, tb->valuestring) == 0);
    cJSON_Delete(a);
    cJSON_Delete(b);
    for (int i = 0; i < N; i++) http_upload_free(&u[i]);
    free(big);
    CHECK(server_stop(&s, SIGTERM) == 0);
}

static void test_disconnect(const char *model, const clip *c) {
    test_server s;
    CHECK(server_start(&s, model, NULL) == 0);
    if (!s.port) return;
    // default fallback (6 attempts per window on random weights): a slow request
    http_upload u;
    http_upload_init(&u, s.port, "/v1/audio/transcriptions", c->data, c->size, c->name, NULL);
    curl_easy_setopt(u.h, CURLOPT_TIMEOUT_MS, 700L); // the client gives up mid-request
    CHECK(curl_easy_perform(u.h) == CURLE_OPERATION_TIMEDOUT);
    http_upload_free(&u);
    double active = -1, pending = -1;
    for (int i = 0; i < 100; i++) { // the server notices within a few poll periods
        active = stats_number(s.port, "active_sequences");
        pending = stats_number(s.port, "pending_results");
        if (active == 0 && pending == 0) break;
        usleep(100 * 1000);
    }
    CHECKF(active == 0 && pending == 0, "after the disconnect: active_sequences %.0f, pending_results %.0f", active,
           pending);
    CHECK(stats_number(s.port, "cancelled") == 1);
    char *metrics = NULL;
    CHECK(http_get(s.port, "/metrics", &metrics) == 200);
    CHECKF(metrics && strstr(metrics, "amanuensis_requests_total{result=\"cancelled\"} 1"),
           "/metrics does not count the cancelled request");
    CHECK(metrics && strstr(metrics, "amanuensis_active_sequences 0"));
    free(metrics);
    CHECK(server_stop(&s, SIGTERM) == 0);
}

int main(void) {
    char model[1024];
    if (!am_test_find("fixtures/ggml-test-tiny.en.bin", model, sizeof model)) {
        SKIP_CASE("e2e_server", "tiny.en fixture not found");
        return am_test_finish("e2e_server", 0);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *names[] = {"jfk.wav", "one-two-three-44k.wav", "jfk.mp3", "jfk-44k-stereo.flac", "librivox-0870.wav",
                           "librivox-0880.wav", "librivox-0890.wav", "librivox-0920.wav", "librivox-0930.wav",
                           "espeak-quick-fox.wav"};
    clip clips[16];
    int n = 0;
    for (size_t i = 0; i < AM_ARRAY_LEN(names); i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "audio/%s", names[i]);
        clip *c = &clips[n];
        if (!am_test_find(rel, c->path, sizeof c->path)) {
            SKIP_CASE(names[i], "clip not found (set AMANUENSIS_TEST_DATA to the shared dir)");
            continue;
        }
        c->name = names[i];
        c->data = am_test_read_file(c->path, &c->size);
        c->cli = run_cli(model, c->path);
        CHECKF(c->cli != NULL, "CLI failed on %s", names[i]);
        n++;
    }
    if (n > 0) {
        test_concurrent(model, clips, n, 1);
        test_concurrent(model, clips, n, 0);
        test_isolation(model, &clips[0]);
        test_disconnect(model, &clips[0]);
    }
    for (int i = 0; i < n; i++) {
        free(clips[i].data);
        free(clips[i].cli);
    }
    curl_global_cleanup();
    return am_test_finish("e2e_server", n > 0);
}
