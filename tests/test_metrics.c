// test_metrics.c — counters, batch size arithmetic, percentiles, the ring
// buffer, the /stats/batching JSON schema, the Prometheus text format (syntax,
// HELP/TYPE, cumulative histograms, label escaping) and concurrent recording.
#include <cjson/cJSON.h>
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>

#include "am_common.h"
#include "am_metrics.h"
#include "am_test.h"

// ---------------------------------------------------------------- helpers
static am_metrics_state test_state(void) {
    am_metrics_state st = {0};
    st.enabled = 1;
    st.mode = "batched";
    st.max_batch_size = 8;
    st.max_wait_ms = 50;
    st.max_windows = 32;
    st.max_queue = 64;
    st.device = "cpu";
    st.model = "tiny.en";
    st.queue_depth = 3;
    st.pending_results = 5;
    st.active_sequences = 7;
    st.draining = 0;
    return st;
}

static cJSON *stats(am_metrics *m, const am_metrics_state *st) {
    char *s = am_metrics_stats_json(m, st);
    CHECKF(s != NULL, "stats_json: %s", am_last_error());
    if (!s) return NULL;
    cJSON *j = cJSON_Parse(s);
    CHECKF(j != NULL, "stats json does not parse: %s", s);
    free(s);
    return j;
}

// A number at a '/'-separated path ("encoder/avg_batch_size"); NAN when absent.
static double jnum(const cJSON *root, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = root;
    for (char *save = NULL, *tok = strtok_r(buf, "/", &save); tok && cur; tok = strtok_r(NULL, "/", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cJSON_IsNumber(cur) ? cur->valuedouble : NAN;
}

static int near(double a, double b) { return fabs(a - b) <= 1e-9 * AM_MAX(1.0, fabs(b)); }

#define CHECK_NUM(root, path, want)                                                                  \
    do {                                                                                             \
        const double got_ = jnum((root), (path));                                                    \
        CHECKF(near(got_, (want)), "%s = %.17g, want %.17g", (path), got_, (double)(want));          \
    } while (0)

// ---------------------------------------------------------------- prometheus parser
typedef struct {
    char name[128];
    char labels[512];   // the labels as printed, le excluded ("" when none)
    char le[32];        // the le label ("" when none)
    char endpoint[256]; // the endpoint label, unescaped
    int family;         // index into prom_doc.fam
    double value;
} prom_sample;

typedef struct {
    char name[128];
    char type[16];
    int help, typed;
} prom_family;

typedef struct {
    prom_sample *s;
    size_t n, cap;
    prom_family fam[64];
    size_t n_fam;
} prom_doc;

// Copies src into dst[cap], truncating.
static void copy_str(char *dst, size_t cap, const char *src) {
    const size_t n = AM_MIN(strlen(src), cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

static int is_name_start(int c) { return isalpha(c) || c == '_' || c == ':'; }
static int is_name_char(int c) { return isalnum(c) || c == '_' || c == ':'; }

static prom_family *find_family(prom_doc *d, const char *name) {
    for (size_t i = 0; i < d->n_fam; i++)
        if (strcmp(d->fam[i].name, name) == 0) return &d->fam[i];
    return NULL;
}

static prom_family *add_family(prom_doc *d, const char *name) {
    prom_family *f = find_family(d, name);
    if (f) return f;
    if (d->n_fam == AM_ARRAY_LEN(d->fam)) return NULL;
    f = &d->fam[d->n_fam++];
    memset(f, 0, sizeof *f);
    copy_str(f->name, sizeof f->name, name);
    return f;
}

// Does sample `name` belong to family f?
static int belongs(const prom_family *f, const char *name) {
    const size_t n = strlen(f->name);
    if (strcmp(name, f->name) == 0) return strcmp(f->type, "histogram") != 0;
    if (strncmp(name, f->name, n) != 0) return 0;
    const char *suf = name + n;
    if (strcmp(f->type, "histogram") == 0)
        return !strcmp(suf, "_bucket") || !strcmp(suf, "_sum") || !strcmp(suf, "_count");
    if (strcmp(f->type, "summary") == 0) return !strcmp(suf, "_sum") || !strcmp(suf, "_count");
    return 0;
}

// Parses one sample line into *out. Returns 0, or -1 with a message in err.
static int parse_sample(const char *line, prom_sample *out, char *err, size_t err_cap) {
    memset(out, 0, sizeof *out);
    const char *p = line;
    size_t n = 0;
    if (!is_name_start((unsigned char)*p)) return snprintf(err, err_cap, "bad metric name"), -1;
    while (is_name_char((unsigned char)*p) && n + 1 < sizeof out->name) out->name[n++] = *p++;
    if (*p == '{') {
        p++;
        size_t ln = 0;
        while (*p != '}') {
            char key[64];
            size_t kn = 0;
            if (!(isalpha((unsigned char)*p) || *p == '_')) return snprintf(err, err_cap, "bad label name"), -1;
            while ((isalnum((unsigned char)*p) || *p == '_') && kn + 1 < sizeof key) key[kn++] = *p++;
            key[kn] = 0;
            if (*p++ != '=' || *p++ != '"') return snprintf(err, err_cap, "expected =\" after %s", key), -1;
            const char *vstart = p;
            char value[256];
            size_t vn = 0;
            while (*p != '"') {
                if (!*p || *p == '\n') return snprintf(err, err_cap, "unterminated label value"), -1;
                char c = *p++;
                if (c == '\\') {
                    c = *p++;
                    if (c == 'n')
                        c = '\n';
                    else if (c != '\\' && c != '"')
                        return snprintf(err, err_cap, "bad escape \\%c", c), -1;
                }
                if (vn + 1 < sizeof value) value[vn++] = c;
            }
            value[vn] = 0;
            const size_t raw_len = (size_t)(p - vstart);
            p++; // closing quote
            if (strcmp(key, "le") == 0) {
                copy_str(out->le, sizeof out->le, value);
            } else {
                int w = snprintf(out->labels + ln, sizeof out->labels - ln, "%s%s=\"%.*s\"", ln ? "," : "", key,
                                 (int)raw_len, vstart);
                if (w > 0) ln = AM_MIN(ln + (size_t)w, sizeof out->labels - 1);
                if (strcmp(key, "endpoint") == 0) copy_str(out->endpoint, sizeof out->endpoint, value);
            }
            if (*p == ',')
                p++;
            else if (*p != '}')
                return snprintf(err, err_cap, "expected , or }"), -1;
        }
        p++;
    }
    if (*p++ != ' ') return snprintf(err, err_cap, "expected one space before the value"), -1;
    if (!strcmp(p, "+Inf")) {
        out->value = INFINITY;
    } else if (!strcmp(p, "-Inf")) {
        out->value = -INFINITY;
    } else if (!strcmp(p, "NaN")) {
        out->value = NAN;
    } else {
        char *end = NULL;
        out->value = strtod(p, &end);
        if (end == p || *end) return snprintf(err, err_cap, "bad value '%s'", p), -1;
    }
    return 0;
}

// Parses and validates an exposition; failures are CHECKs. Caller frees d->s.
static void prom_parse(const char *text, prom_doc *d) {
    memset(d, 0, sizeof *d);
    CHECKF(text && *text && text[strlen(text) - 1] == '\n', "exposition must end with a newline");
    if (!text) return;
    int current = -1; // family whose samples are being read
    char line[2048], err[128];
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl) break;
        const size_t len = AM_MIN((size_t)(nl - p), sizeof line - 1);
        memcpy(line, p, len);
        line[len] = 0;
        p = nl + 1;
        CHECKF(len > 0, "empty line");
        if (line[0] == '#') {
            char kind[8], name[128], rest[1024];
            const int k = sscanf(line, "# %7s %127s %1023[^\n]", kind, name, rest);
            CHECKF(k == 3 && (!strcmp(kind, "HELP") || !strcmp(kind, "TYPE")), "bad comment: %s", line);
            if (k != 3) continue;
            prom_family *f = add_family(d, name);
            CHECK(f != NULL);
            if (!f) continue;
            if (!strcmp(kind, "HELP")) {
                CHECKF(!f->help, "second HELP for %s", name);
                f->help = 1;
            } else {
                CHECKF(!f->typed, "second TYPE for %s", name);
                CHECKF(!strcmp(rest, "counter") || !strcmp(rest, "gauge") || !strcmp(rest, "histogram") ||
                           !strcmp(rest, "summary") || !strcmp(rest, "untyped"),
                       "bad type %s", rest);
                f->typed = 1;
                copy_str(f->type, sizeof f->type, rest);
                current = (int)(f - d->fam);
            }
            continue;
        }
        prom_sample s;
        const int rc = parse_sample(line, &s, err, sizeof err);
        CHECKF(rc == 0, "%s: %s", err, line);
        if (rc) continue;
        CHECKF(current >= 0 && belongs(&d->fam[current], s.name), "sample outside its family (TYPE first): %s",
               line);
        if (current >= 0 && !strcmp(d->fam[current].type, "counter"))
            CHECKF(strlen(s.name) > 6 && !strcmp(s.name + strlen(s.name) - 6, "_total"), "counter %s", s.name);
        s.family = current;
        for (size_t i = 0; i < d->n; i++) // no series twice
            if (!strcmp(d->s[i].name, s.name) && !strcmp(d->s[i].labels, s.labels) && !strcmp(d->s[i].le, s.le))
                CHECKF(0, "duplicate series: %s", line);
        if (d->n == d->cap) {
            d->cap = d->cap ? 2 * d->cap : 256;
            prom_sample *v = realloc(d->s, d->cap * sizeof *v);
            CHECK(v != NULL);
            if (!v) return;
            d->s = v;
        }
        d->s[d->n++] = s;
    }
    for (size_t i = 0; i < d->n_fam; i++) {
        CHECKF(d->fam[i].help, "no HELP for %s", d->fam[i].name);
        CHECKF(d->fam[i].typed, "no TYPE for %s", d->fam[i].name);
        CHECKF(strncmp(d->fam[i].name, "amanuensis_", 11) == 0, "unprefixed family %s", d->fam[i].name);
    }
}

// Every histogram series: buckets ascending in le, cumulative counts, the last
// le="+Inf" equal to _count, and a _sum.
static void check_histograms(const prom_doc *d) {
    for (size_t i = 0; i < d->n; i++) {
        const prom_sample *s = &d->s[i];
        const size_t nl = strlen(s->name);
        if (nl < 7 || strcmp(s->name + nl - 6, "_count") || s->family < 0 ||
            strcmp(d->fam[s->family].type, "histogram"))
            continue;
        const char *fam = d->fam[s->family].name;
        double prev_le = -INFINITY, prev_count = 0;
        int n_buckets = 0, has_sum = 0, last_inf = 0;
        for (size_t j = 0; j < d->n; j++) {
            const prom_sample *b = &d->s[j];
            if (b->family != s->family || strcmp(b->labels, s->labels)) continue;
            if (!strcmp(b->name + strlen(fam), "_sum")) has_sum = 1;
            if (strcmp(b->name + strlen(fam), "_bucket")) continue;
            CHECKF(b->le[0], "bucket without le in %s", fam);
            const double le = !strcmp(b->le, "+Inf") ? INFINITY : strtod(b->le, NULL);
            CHECKF(le > prev_le, "%s{%s}: le %s not increasing", fam, s->labels, b->le);
            CHECKF(b->value >= prev_count, "%s{%s}: bucket le=%s decreases", fam, s->labels, b->le);
            prev_le = le;
            prev_count = b->value;
            last_inf = isinf(le);
            n_buckets++;
        }
        CHECKF(n_buckets >= 2 && last_inf, "%s{%s}: no le=\"+Inf\" bucket last", fam, s->labels);
        CHECKF(prev_count == s->value, "%s{%s}: +Inf bucket %g != _count %g", fam, s->labels, prev_count, s->value);
        CHECKF(has_sum, "%s{%s}: no _sum", fam, s->labels);
    }
}

// The value of one series (labels as printed, le excluded); NAN when absent.
static double prom_value(const prom_doc *d, const char *name, const char *labels, const char *le) {
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->s[i].name, name) && !strcmp(d->s[i].labels, labels) && !strcmp(d->s[i].le, le ? le : ""))
            return d->s[i].value;
    return NAN;
}

#define CHECK_PROM(doc, name, labels, le, want)                                                             \
    do {                                                                                                    \
        const double got_ = prom_value((doc), (name), (labels), (le));                                      \
        CHECKF(near(got_, (want)), "%s{%s%s%s} = %.17g, want %.17g", (name), (labels), (le) ? " le=" : "", \
               (le) ? (const char *)(le) : "", got_, (double)(want));                                      \
    } while (0)

static int render_prom(am_metrics *m, const am_metrics_state *st, prom_doc *d) {
    char *text = am_metrics_prometheus(m, st);
    CHECKF(text != NULL, "prometheus: %s", am_last_error());
    if (!text) return -1;
    prom_parse(text, d);
    check_histograms(d);
    free(text);
    return 0;
}

// ---------------------------------------------------------------- cases
static void test_counters(void) {
    am_metrics *m = am_metrics_create();
    CHECK(m != NULL);
    if (!m) return;
    const am_metrics_state st = test_state();

    am_metrics_batch(m, AM_BATCH_ENCODER, 8, 0.5);
    am_metrics_batch(m, AM_BATCH_ENCODER, 2, 0.25);
    am_metrics_batch(m, AM_BATCH_DECODER, 16, 0.01);
    am_metrics_batch(m, AM_BATCH_DECODER, 16, 0.02);
    am_metrics_batch(m, AM_BATCH_DECODER, 1, 0.03);
    am_metrics_batch(m, AM_BATCH_DECODER, 0, 1.0);  // ignored: no such batch
    am_metrics_batch(m, 7, 4, 1.0);                 // ignored: no such stage

    am_metrics_request(m, 1, 0.010, 1.0, 30.0, 100);
    am_metrics_request(m, 1, 0.030, 3.0, 12.5, 50);
    am_metrics_request(m, 0, 0.500, 9.0, 99.0, 999); // failure: no wait / audio / tokens
    am_metrics_request(m, 0, 0, 0.1, 0, 0);          // a cancellation
    am_metrics_cancelled(m, 0);
    am_metrics_request(m, 0, 0, 60, 0, 0);           // a timeout
    am_metrics_cancelled(m, 1);

    am_metrics_http(m, "transcriptions", 200, 1.2);
    am_metrics_http(m, "transcriptions", 200, 3.1);
    am_metrics_http(m, "transcriptions", 400, 0.001);
    am_metrics_http(m, "transcriptions", 500, 9.0);
    am_metrics_http(m, "translations", 429, 0.002);
    am_metrics_http(m, "health", 200, 0.0001);
    am_metrics_http(m, "health", 503, 0.0001);       // not a transcription endpoint: not an error here
    am_metrics_http(m, "models", 404, -1);           // negative latency -> 0

    cJSON *j = stats(m, &st);
    if (j) {
        CHECK_NUM(j, "total_batches", 5);
        CHECK_NUM(j, "avg_batch_size", (8.0 + 2 + 16 + 16 + 1) / 5);
        CHECK_NUM(j, "encoder/batches", 2);
        CHECK_NUM(j, "encoder/windows", 10);
        CHECK_NUM(j, "encoder/avg_batch_size", 5);
        CHECK_NUM(j, "decoder/steps", 3);
        CHECK_NUM(j, "decoder/rows", 33);
        CHECK_NUM(j, "decoder/avg_batch_size", 11);
        CHECK_NUM(j, "distributions/batch_size_histogram/encoder/8", 1);
        CHECK_NUM(j, "distributions/batch_size_histogram/encoder/2", 1);
        CHECK_NUM(j, "distributions/batch_size_histogram/decoder/16", 2);
        CHECK_NUM(j, "distributions/batch_size_histogram/decoder/1", 1);
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "distributions"),
                                             "batch_size_histogram"),
            "encoder");
        CHECKF(cJSON_GetArraySize(h) == 2, "encoder histogram has %d sizes, want 2", cJSON_GetArraySize(h));
        CHECK_NUM(j, "total_requests", 5);
        CHECK_NUM(j, "cancelled", 1);
        CHECK_NUM(j, "timed_out", 1);
        CHECK_NUM(j, "total_errors", 3); // the 400, 500 and 429 answers of the transcription endpoints
        CHECK_NUM(j, "avg_wait_time_ms", 20);
        CHECK_NUM(j, "avg_processing_time_s", 2);
        CHECK_NUM(j, "queue_depth", 3);
        CHECK_NUM(j, "pending_results", 5);
        CHECK_NUM(j, "active_sequences", 7);
        CHECK_NUM(j, "configuration/max_batch_size", 8);
        CHECK_NUM(j, "configuration/max_wait_ms", 50);
        CHECK_NUM(j, "configuration/max_windows", 32);
        CHECK_NUM(j, "configuration/max_queue", 64);
        CHECK(jnum(j, "throughput_rps") > 0);
        cJSON_Delete(j);
    }

    prom_doc d;
    if (render_prom(m, &st, &d) == 0) {
        CHECK_PROM(&d, "amanuensis_requests_total", "result=\"ok\"", NULL, 2);
        CHECK_PROM(&d, "amanuensis_requests_total", "result=\"error\"", NULL, 1);
        CHECK_PROM(&d, "amanuensis_requests_total", "result=\"cancelled\"", NULL, 1);
        CHECK_PROM(&d, "amanuensis_requests_total", "result=\"timeout\"", NULL, 1);
        CHECK_PROM(&d, "amanuensis_http_requests_total", "endpoint=\"transcriptions\",code=\"200\"", NULL, 2);
        CHECK_PROM(&d, "amanuensis_http_requests_total", "endpoint=\"transcriptions\",code=\"500\"", NULL, 1);
        CHECK_PROM(&d, "amanuensis_http_requests_total", "endpoint=\"translations\",code=\"429\"", NULL, 1);
        CHECK_PROM(&d, "amanuensis_http_requests_total", "endpoint=\"models\",code=\"404\"", NULL, 1);
        CHECK_PROM(&d, "amanuensis_http_request_duration_seconds_count", "endpoint=\"transcriptions\"", NULL, 4);
        CHECK_PROM(&d, "amanuensis_http_request_duration_seconds_bucket", "endpoint=\"transcriptions\"", "0.005", 1);
        CHECK_PROM(&d, "amanuensis_http_request_duration_seconds_bucket", "endpoint=\"transcriptions\"", "2.5", 2);
        CHECK_PROM(&d, "amanuensis_http_request_duration_seconds_bucket", "endpoint=\"transcriptions\"", "5", 3);
        CHECK_PROM(&d, "amanuensis_http_request_duration_seconds_bucket", "endpoint=\"transcriptions\"", "+Inf", 4);
        CHECK_PROM(&d, "amanuensis_http_request_duration_seconds_sum", "endpoint=\"transcriptions\"", NULL,
                   1.2 + 3.1 + 0.001 + 9.0);
        CHECK_PROM(&d, "amanuensis_http_request_duration_seconds_bucket", "endpoint=\"models\"", "0.005", 1);
        CHECK_PROM(&d, "amanuensis_queue_wait_seconds_count", "", NULL, 2);
        CHECK_PROM(&d, "amanuensis_queue_wait_seconds_bucket", "", "0.01", 1);
        CHECK_PROM(&d, "amanuensis_queue_wait_seconds_bucket", "", "0.025", 1);
        CHECK_PROM(&d, "amanuensis_queue_wait_seconds_bucket", "", "0.05", 2);
        CHECK_PROM(&d, "amanuensis_processing_seconds_sum", "", NULL, 4);
        CHECK_PROM(&d, "amanuensis_audio_seconds_total", "", NULL, 42.5);
        CHECK_PROM(&d, "amanuensis_tokens_total", "", NULL, 150);
        CHECK_PROM(&d, "amanuensis_batches_total", "stage=\"encoder\"", NULL, 2);
        CHECK_PROM(&d, "amanuensis_batches_total", "stage=\"decoder\"", NULL, 3);
        CHECK_PROM(&d, "amanuensis_batch_size_bucket", "stage=\"encoder\"", "1", 0);
        CHECK_PROM(&d, "amanuensis_batch_size_bucket", "stage=\"encoder\"", "2", 1);
        CHECK_PROM(&d, "amanuensis_batch_size_bucket", "stage=\"encoder\"", "8", 2);
        CHECK_PROM(&d, "amanuensis_batch_size_bucket", "stage=\"decoder\"", "1", 1);
        CHECK_PROM(&d, "amanuensis_batch_size_bucket", "stage=\"decoder\"", "8", 1);
        CHECK_PROM(&d, "amanuensis_batch_size_bucket", "stage=\"decoder\"", "16", 3);
        CHECK_PROM(&d, "amanuensis_batch_size_bucket", "stage=\"decoder\"", "+Inf", 3);
        CHECK_PROM(&d, "amanuensis_batch_size_sum", "stage=\"decoder\"", NULL, 33);
        CHECK_PROM(&d, "amanuensis_batch_duration_seconds_sum", "stage=\"encoder\"", NULL, 0.75);
        CHECK_PROM(&d, "amanuensis_batch_duration_seconds_count", "stage=\"decoder\"", NULL, 3);
        CHECK_PROM(&d, "amanuensis_queue_depth", "", NULL, 3);
        CHECK_PROM(&d, "amanuensis_pending_results", "", NULL, 5);
        CHECK_PROM(&d, "amanuensis_active_sequences", "", NULL, 7);
        CHECK_PROM(&d, "amanuensis_max_batch_size", "", NULL, 8);
        CHECK_PROM(&d, "amanuensis_draining", "", NULL, 0);
        CHECK_PROM(&d, "amanuensis_batching_enabled", "", NULL, 1);
        CHECK_PROM(&d, "amanuensis_model_info", "model=\"tiny.en\",device=\"cpu\",mode=\"batched\"", NULL, 1);
        CHECK(prom_value(&d, "amanuensis_uptime_seconds", "", NULL) >= 0);
        static const char *const required[] = {
            "amanuensis_http_requests_total", "amanuensis_http_request_duration_seconds",
            "amanuensis_requests_total", "amanuensis_queue_wait_seconds", "amanuensis_processing_seconds",
            "amanuensis_batch_size", "amanuensis_audio_seconds_total", "amanuensis_tokens_total",
            "amanuensis_queue_depth", "amanuensis_active_sequences", "amanuensis_pending_results",
            "amanuensis_max_batch_size", "amanuensis_draining", "amanuensis_batching_enabled",
            "amanuensis_uptime_seconds"};
        static const char *const types[] = {"counter", "histogram", "counter", "histogram", "histogram",
                                            "histogram", "counter", "counter", "gauge", "gauge", "gauge",
                                            "gauge", "gauge", "gauge", "gauge"};
        for (size_t i = 0; i < AM_ARRAY_LEN(required); i++) {
            const prom_family *f = find_family(&d, required[i]);
            CHECKF(f && !strcmp(f->type, types[i]), "family %s (%s) missing or mistyped", required[i], types[i]);
        }
        free(d.s);
    }
    am_metrics_free(m);
}

// Every key of the /stats/batching document with its type, on a fresh object
// and with no scheduler state.
static void check_schema(const cJSON *j) {
    static const struct {
        const char *key;
        int type; // cJSON_Number / cJSON_String / cJSON_True (bool) / cJSON_Object
    } top[] = {{"enabled", cJSON_True},          {"mode", cJSON_String},
               {"throughput_rps", cJSON_Number}, {"total_requests", cJSON_Number},
               {"total_batches", cJSON_Number},  {"avg_batch_size", cJSON_Number},
               {"avg_wait_time_ms", cJSON_Number}, {"avg_processing_time_s", cJSON_Number},
               {"total_errors", cJSON_Number},   {"queue_depth", cJSON_Number},
               {"pending_results", cJSON_Number}, {"configuration", cJSON_Object},
               {"distributions", cJSON_Object},  {"encoder", cJSON_Object},
               {"decoder", cJSON_Object},        {"active_sequences", cJSON_Number},
               {"cancelled", cJSON_Number},      {"timed_out", cJSON_Number},
               {"draining", cJSON_True}};
    CHECKF(cJSON_IsObject(j), "stats is not an object");
    CHECKF(cJSON_GetArraySize(j) == (int)AM_ARRAY_LEN(top), "stats has %d keys, want %zu", cJSON_GetArraySize(j),
           AM_ARRAY_LEN(top));
    for (size_t i = 0; i < AM_ARRAY_LEN(top); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, top[i].key);
        const int ok = top[i].type == cJSON_True     ? cJSON_IsBool(v)
                       : top[i].type == cJSON_Number ? cJSON_IsNumber(v)
                       : top[i].type == cJSON_String ? cJSON_IsString(v)
                                                     : cJSON_IsObject(v);
        CHECKF(ok, "stats key %s missing or mistyped", top[i].key);
    }
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(j, "mode");
    CHECK(cJSON_IsString(mode) &&
          (!strcmp(mode->valuestring, "batched") || !strcmp(mode->valuestring, "sequential")));

    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(j, "configuration");
    static const char *const conf_num[] = {"max_batch_size", "max_wait_ms", "max_windows", "max_queue"};
    for (size_t i = 0; i < AM_ARRAY_LEN(conf_num); i++)
        CHECKF(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(conf, conf_num[i])), "configuration.%s", conf_num[i]);
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(conf, "device")));
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(conf, "model")));
    CHECK(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(conf, "encoder_enabled")));
    CHECK(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(conf, "decoder_enabled")));
    CHECK(cJSON_GetArraySize(conf) == 8);

    const cJSON *dist = cJSON_GetObjectItemCaseSensitive(j, "distributions");
    CHECK(cJSON_GetArraySize(dist) == 3);
    const cJSON *bsh = cJSON_GetObjectItemCaseSensitive(dist, "batch_size_histogram");
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(bsh, "encoder")));
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(bsh, "decoder")));
    static const char *const pct_objs[] = {"wait_time_ms", "latency_s"};
    static const char *const pcts[] = {"p50", "p90", "p99", "max"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(dist, pct_objs[i]);
        CHECKF(cJSON_IsObject(o) && cJSON_GetArraySize(o) == 4, "distributions.%s", pct_objs[i]);
        for (size_t k = 0; k < 4; k++)
            CHECKF(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, pcts[k])), "%s.%s", pct_objs[i], pcts[k]);
    }
    static const char *const enc_keys[] = {"batches", "windows", "avg_batch_size"};
    static const char *const dec_keys[] = {"steps", "rows", "avg_batch_size"};
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(j, "encoder");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(j, "decoder");
    CHECK(cJSON_GetArraySize(enc) == 3 && cJSON_GetArraySize(dec) == 3);
    for (size_t k = 0; k < 3; k++) {
        CHECKF(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(enc, enc_keys[k])), "encoder.%s", enc_keys[k]);
        CHECKF(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(dec, dec_keys[k])), "decoder.%s", dec_keys[k]);
    }
}

static void test_schema(void) {
    am_metrics *m = am_metrics_create();
    CHECK(m != NULL);
    if (!m) return;
    const am_metrics_state st = test_state();
    cJSON *j = stats(m, &st);
    if (j) {
        check_schema(j);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "enabled")));
        CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "draining")));
        CHECK_NUM(j, "avg_batch_size", 0);
        CHECK_NUM(j, "total_batches", 0);
        CHECK_NUM(j, "distributions/wait_time_ms/p99", 0);
        const cJSON *conf = cJSON_GetObjectItemCaseSensitive(j, "configuration");
        CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(conf, "model")->valuestring, "tiny.en"));
        CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(conf, "device")->valuestring, "cpu"));
        cJSON_Delete(j);
    }
    // Sequential mode, draining, and some traffic.
    am_metrics_state seq = test_state();
    seq.enabled = 0;
    seq.mode = NULL; // derived from enabled
    seq.draining = 1;
    am_metrics_batch(m, AM_BATCH_ENCODER, 1, 0.1);
    am_metrics_request(m, 1, 0.1, 0.2, 1, 1);
    j = stats(m, &seq);
    if (j) {
        check_schema(j);
        CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(j, "mode")->valuestring, "sequential"));
        CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "enabled")));
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "draining")));
        cJSON_Delete(j);
    }
    // No state at all: still a complete document and a valid exposition.
    j = stats(m, NULL);
    if (j) {
        check_schema(j);
        cJSON_Delete(j);
    }
    prom_doc d;
    if (render_prom(m, NULL, &d) == 0) free(d.s);
    am_metrics_free(m);
}

static void test_batch_size_one(void) {
    am_metrics *m = am_metrics_create();
    CHECK(m != NULL);
    if (!m) return;
    for (int i = 0; i < 7; i++) am_metrics_batch(m, AM_BATCH_ENCODER, 1, 0.001 * i);
    for (int i = 0; i < 13; i++) am_metrics_batch(m, AM_BATCH_DECODER, 1, 0.002);
    cJSON *j = stats(m, NULL);
    if (j) {
        CHECKF(jnum(j, "avg_batch_size") == 1.0, "avg_batch_size %.17g", jnum(j, "avg_batch_size"));
        CHECK(jnum(j, "encoder/avg_batch_size") == 1.0);
        CHECK(jnum(j, "decoder/avg_batch_size") == 1.0);
        CHECK_NUM(j, "total_batches", 20);
        CHECK_NUM(j, "distributions/batch_size_histogram/encoder/1", 7);
        CHECK_NUM(j, "distributions/batch_size_histogram/decoder/1", 13);
        cJSON_Delete(j);
    }
    am_metrics_free(m);
}

static void test_percentiles(void) {
    am_metrics *m = am_metrics_create();
    CHECK(m != NULL);
    if (!m) return;
    // 1..100 in a scrambled order (37 is coprime with 100).
    for (int i = 0; i < 100; i++) {
        const int v = (i * 37) % 100 + 1;
        am_metrics_request(m, 1, v * 0.001, v * 0.1, 1, 1);
    }
    cJSON *j = stats(m, NULL);
    if (j) {
        CHECK_NUM(j, "distributions/wait_time_ms/p50", 50);
        CHECK_NUM(j, "distributions/wait_time_ms/p90", 90);
        CHECK_NUM(j, "distributions/wait_time_ms/p99", 99);
        CHECK_NUM(j, "distributions/wait_time_ms/max", 100);
        CHECK_NUM(j, "distributions/latency_s/p50", 5);
        CHECK_NUM(j, "distributions/latency_s/p90", 9);
        CHECK_NUM(j, "distributions/latency_s/p99", 9.9);
        CHECK_NUM(j, "distributions/latency_s/max", 10);
        CHECK_NUM(j, "avg_wait_time_ms", 50.5);
        cJSON_Delete(j);
    }
    prom_doc d;
    if (render_prom(m, NULL, &d) == 0) {
        CHECK_PROM(&d, "amanuensis_recent_queue_wait_seconds", "quantile=\"0.5\"", NULL, 0.05);
        CHECK_PROM(&d, "amanuensis_recent_queue_wait_seconds", "quantile=\"1\"", NULL, 0.1);
        CHECK_PROM(&d, "amanuensis_recent_processing_seconds", "quantile=\"0.99\"", NULL, 9.9);
        free(d.s);
    }
    // One sample: every percentile is that sample.
    am_metrics *one = am_metrics_create();
    CHECK(one != NULL);
    if (one) {
        am_metrics_request(one, 1, 0.25, 2, 1, 1);
        j = stats(one, NULL);
        if (j) {
            CHECK_NUM(j, "distributions/wait_time_ms/p50", 250);
            CHECK_NUM(j, "distributions/wait_time_ms/p99", 250);
            CHECK_NUM(j, "distributions/latency_s/p90", 2);
            cJSON_Delete(j);
        }
        am_metrics_free(one);
    }
    am_metrics_free(m);
}

// 10000 samples through a 4096 ring: percentiles cover the last 4096 only,
// the means and histograms all of them.
static void test_ring_wrap(void) {
    am_metrics *m = am_metrics_create();
    CHECK(m != NULL);
    if (!m) return;
    for (int v = 1; v <= 10000; v++) am_metrics_request(m, 1, v * 0.001, v, 0.5, 2);
    // The last 4096 are 5905..10000; nearest-rank p50 is the 2048th (5905+2047),
    // p90 the 3687th, p99 the 4056th.
    cJSON *j = stats(m, NULL);
    if (j) {
        CHECK_NUM(j, "distributions/wait_time_ms/p50", 7952);
        CHECK_NUM(j, "distributions/wait_time_ms/p90", 9591);
        CHECK_NUM(j, "distributions/wait_time_ms/p99", 9960);
        CHECK_NUM(j, "distributions/wait_time_ms/max", 10000);
        CHECK_NUM(j, "distributions/latency_s/p50", 7952);
        CHECK_NUM(j, "distributions/latency_s/max", 10000);
        CHECK_NUM(j, "avg_wait_time_ms", 5000.5);
        CHECK_NUM(j, "avg_processing_time_s", 5000.5);
        CHECK_NUM(j, "total_requests", 10000);
        cJSON_Delete(j);
    }
    prom_doc d;
    if (render_prom(m, NULL, &d) == 0) {
        CHECK_PROM(&d, "amanuensis_queue_wait_seconds_count", "", NULL, 10000);
        CHECK_PROM(&d, "amanuensis_processing_seconds_bucket", "", "120", 120);
        CHECK_PROM(&d, "amanuensis_audio_seconds_total", "", NULL, 5000);
        CHECK_PROM(&d, "amanuensis_tokens_total", "", NULL, 20000);
        free(d.s);
    }
    am_metrics_free(m);
}

static void test_escaping(void) {
    am_metrics *m = am_metrics_create();
    CHECK(m != NULL);
    if (!m) return;
    const char *weird = "we\"ird\\end\npoint";
    am_metrics_http(m, weird, 200, 0.1);
    am_metrics_http(m, weird, 200, 0.2);
    am_metrics_http(m, NULL, 200, 0.1);
    am_metrics_http(m, "transcriptions", 99, 0.1);  // out of range code
    am_metrics_http(m, "transcriptions", 1000, 0.1);
    am_metrics_state st = test_state();
    st.model = "mo\"del\\x\n";
    char *text = am_metrics_prometheus(m, &st);
    CHECK(text != NULL);
    if (text) {
        CHECKF(strstr(text, "endpoint=\"we\\\"ird\\\\end\\npoint\",code=\"200\"} 2\n") != NULL,
               "escaped endpoint missing:\n%s", text);
        CHECK(strstr(text, "model=\"mo\\\"del\\\\x\\n\"") != NULL);
        prom_doc d;
        prom_parse(text, &d);
        check_histograms(&d);
        int found = 0;
        for (size_t i = 0; i < d.n; i++)
            if (!strcmp(d.s[i].name, "amanuensis_http_requests_total") && !strcmp(d.s[i].endpoint, weird)) {
                found = 1;
                CHECK(d.s[i].value == 2);
            }
        CHECK(found);
        CHECK_PROM(&d, "amanuensis_http_requests_total", "endpoint=\"unknown\",code=\"200\"", NULL, 1);
        CHECK_PROM(&d, "amanuensis_http_requests_total", "endpoint=\"transcriptions\",code=\"0\"", NULL, 2);
        free(d.s);
        free(text);
    }
    am_metrics_free(m);
}

// More endpoint labels than the object keeps: the rest fold into "other".
static void test_endpoint_overflow(void) {
    am_metrics *m = am_metrics_create();
    CHECK(m != NULL);
    if (!m) return;
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "ep%d", i);
        am_metrics_http(m, name, 200, 0.01);
        am_metrics_http(m, name, 200, 0.01);
    }
    am_metrics_http(m, "other", 200, 0.01);
    prom_doc d;
    if (render_prom(m, NULL, &d) == 0) {
        double total = 0, other = 0;
        int series = 0;
        for (size_t i = 0; i < d.n; i++) {
            if (strcmp(d.s[i].name, "amanuensis_http_requests_total")) continue;
            total += d.s[i].value;
            series++;
            if (!strcmp(d.s[i].endpoint, "other")) other = d.s[i].value;
        }
        CHECKF(total == 201, "total %g", total);
        CHECKF(series <= 32, "%d endpoint series", series);
        CHECK(other > 0);
        CHECK_PROM(&d, "amanuensis_http_requests_total", "endpoint=\"ep0\",code=\"200\"", NULL, 2);
        free(d.s);
    }
    am_metrics_free(m);
}

// ---------------------------------------------------------------- concurrency
#define N_THREADS 4
#define N_RECORDS 10000

typedef struct {
    am_metrics *m;
    pthread_barrier_t *start; // every thread starts recording at once
} worker_arg;

static void *worker(void *p) {
    const worker_arg *a = p;
    pthread_barrier_wait(a->start);
    static const char *const eps[] = {"transcriptions", "translations", "health"};
    for (int i = 0; i < N_RECORDS; i++) {
        am_metrics_http(a->m, eps[i % 3], i % 5 == 0 ? 500 : 200, 0.001 * (i % 100));
        am_metrics_request(a->m, i % 10 != 0, 0.001, 0.5, 0.25, 3);
        if (i % 10 == 0) am_metrics_cancelled(a->m, i % 20 == 0);
        am_metrics_batch(a->m, AM_BATCH_ENCODER, 1 + i % 8, 0.01);
        am_metrics_batch(a->m, AM_BATCH_DECODER, 4, 0.001);
    }
    return NULL;
}

typedef struct {
    am_metrics *m;
    pthread_barrier_t *start;
    int renders;
} reader_arg;

static void *reader(void *p) {
    reader_arg *a = p;
    pthread_barrier_wait(a->start);
    const am_metrics_state st = test_state();
    for (int i = 0; i < 50; i++) {
        char *t = am_metrics_prometheus(a->m, &st);
        char *s = am_metrics_stats_json(a->m, &st);
        a->renders += t && s;
        free(t);
        free(s);
    }
    return NULL;
}

static void test_concurrency(void) {
    am_metrics *m = am_metrics_create();
    CHECK(m != NULL);
    if (!m) return;
    pthread_barrier_t start;
    if (pthread_barrier_init(&start, NULL, N_THREADS + 1) != 0) {
        CHECKF(0, "pthread_barrier_init failed");
        am_metrics_free(m);
        return;
    }
    pthread_t th[N_THREADS], rd;
    worker_arg args[N_THREADS];
    reader_arg ra = {m, &start, 0};
    int started = 0, reader_started = pthread_create(&rd, NULL, reader, &ra) == 0;
    CHECK(reader_started);
    for (int t = 0; t < N_THREADS && reader_started; t++) {
        args[t] = (worker_arg){m, &start};
        const int rc = pthread_create(&th[t], NULL, worker, &args[t]);
        CHECK(rc == 0);
        if (rc) break; // the barrier would never open: give up (and hang no one)
        started++;
    }
    if (started < N_THREADS) {
        fprintf(stderr, "test_concurrency: could not start threads\n");
        exit(1);
    }
    for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
    pthread_join(rd, NULL);
    pthread_barrier_destroy(&start);
    CHECK(ra.renders == 50);

    const double n = (double)N_THREADS * N_RECORDS;
    cJSON *j = stats(m, NULL);
    if (j) {
        CHECK_NUM(j, "total_requests", n);
        CHECK_NUM(j, "cancelled", n / 20);
        CHECK_NUM(j, "timed_out", n / 20);
        CHECK_NUM(j, "encoder/batches", n);
        CHECK_NUM(j, "encoder/windows", n / 8 * (1 + 2 + 3 + 4 + 5 + 6 + 7 + 8));
        CHECK_NUM(j, "decoder/steps", n);
        CHECK_NUM(j, "decoder/rows", 4 * n);
        CHECK_NUM(j, "total_batches", 2 * n);
        CHECK_NUM(j, "distributions/batch_size_histogram/decoder/4", n);
        CHECK_NUM(j, "distributions/batch_size_histogram/encoder/3", n / 8);
        // the 500s on transcriptions/translations: i%5==0 and i%3 != 2
        int http_err = 0;
        for (int i = 0; i < N_RECORDS; i++) http_err += i % 5 == 0 && i % 3 != 2;
        CHECK_NUM(j, "total_errors", (double)N_THREADS * http_err);
        cJSON_Delete(j);
    }
    prom_doc d;
    if (render_prom(m, NULL, &d) == 0) {
        CHECK_PROM(&d, "amanuensis_requests_total", "result=\"ok\"", NULL, n * 9 / 10);
        CHECK_PROM(&d, "amanuensis_requests_total", "result=\"error\"", NULL, 0);
        CHECK_PROM(&d, "amanuensis_requests_total", "result=\"cancelled\"", NULL, n / 20);
        CHECK_PROM(&d, "amanuensis_requests_total", "result=\"timeout\"", NULL, n / 20);
        CHECK_PROM(&d, "amanuensis_tokens_total", "", NULL, 3 * n * 9 / 10);
        CHECK_PROM(&d, "amanuensis_audio_seconds_total", "", NULL, 0.25 * n * 9 / 10);
        CHECK_PROM(&d, "amanuensis_queue_wait_seconds_count", "", NULL, n * 9 / 10);
        CHECK_PROM(&d, "amanuensis_batch_size_count", "stage=\"encoder\"", NULL, n);
        double http = 0;
        for (size_t i = 0; i < d.n; i++)
            if (!strcmp(d.s[i].name, "amanuensis_http_requests_total")) http += d.s[i].value;
        CHECKF(http == n, "http total %g", http);
        CHECK_PROM(&d, "amanuensis_http_request_duration_seconds_count", "endpoint=\"health\"", NULL,
                   (double)N_THREADS * (N_RECORDS / 3));
        free(d.s);
    }
    am_metrics_free(m);
}

// Without an HTTP layer, total_errors counts the scheduler's failures.
static void test_errors_library_only(void) {
    am_metrics *m = am_metrics_create();
    am_metrics_request(m, 0, 0, 1, 1, 0);
    am_metrics_request(m, 1, 0, 1, 1, 10);
    am_metrics_cancelled(m, 0);
    am_metrics_request(m, 0, 0, 1, 1, 0);
    char *js = am_metrics_stats_json(m, NULL);
    cJSON *j = js ? cJSON_Parse(js) : NULL;
    CHECK(j != NULL);
    if (j) CHECK_NUM(j, "total_errors", 2);
    cJSON_Delete(j);
    free(js);
    am_metrics_free(m);
}

int main(void) {
    test_errors_library_only();
    test_counters();
    test_schema();
    test_batch_size_one();
    test_percentiles();
    test_ring_wrap();
    test_escaping();
    test_endpoint_overflow();
    test_concurrency();
    am_metrics_free(NULL);
    return am_test_finish("test_metrics", 1);
}
