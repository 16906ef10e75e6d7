// golden.h — access to shared/golden/golden.json for the golden tests (header-only).
#ifndef AM_GOLDEN_H
#define AM_GOLDEN_H

#include <cjson/cJSON.h>
#include <math.h>

#include "am_model.h"
#include "am_test.h"
#include "am_tokenizer.h"

// The fixture models golden.json has cases for.
static const char *const k_golden_models[] = {
    "ggml-test-tiny.en.bin",      "ggml-test-ml.bin",           "ggml-test-v3.bin",          "ggml-test-tiny.en-q8_0.bin",
    "ggml-test-tiny.en-q5_1.bin", "ggml-test-tiny.en-q5_0.bin", "ggml-test-tiny.en-q4_0.bin"};

// Run run(model, cases) for every golden model (or only argv[1] when given);
// returns 1 when any run reported it ran.
static inline int golden_each_model(int argc, char **argv, cJSON *cases, int (*run)(const char *, cJSON *)) {
    int ran = 0;
    for (size_t i = 0; i < sizeof k_golden_models / sizeof k_golden_models[0]; i++)
        if (argc < 2 || strcmp(argv[1], k_golden_models[i]) == 0) ran |= run(k_golden_models[i], cases);
    return ran;
}

// Parsed golden/<name> (NULL if absent: the caller skips).
static inline cJSON *golden_load_file(const char *rel) {
    char path[1024];
    if (!am_test_find(rel, path, sizeof path)) return NULL;
    char *text = am_test_read_file(path, NULL);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

// The golden.json case of (model, clip), or NULL.
static inline const cJSON *golden_find_case(const cJSON *cases, const char *model, const char *clip) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "model"), *k = cJSON_GetObjectItemCaseSensitive(c, "clip");
        if (cJSON_IsString(m) && cJSON_IsString(k) && !strcmp(m->valuestring, model) && !strcmp(k->valuestring, clip))
            return c;
    }
    return NULL;
}

// Parsed golden.json (NULL if absent: the caller skips).
static inline cJSON *golden_load(void) {
    char path[1024];
    if (!am_test_find("golden/golden.json", path, sizeof path)) return NULL;
    char *text = am_test_read_file(path, NULL);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

static inline cJSON *golden_cases(cJSON *root) { return cJSON_GetObjectItemCaseSensitive(root, "cases"); }

static inline const char *golden_str(const cJSON *c, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

// Load the float32 array described by case[key] = {file, shape}; returns
// malloc'd data and its element count, or NULL when the file is absent.
static inline float *golden_array(const cJSON *c, const char *key, size_t *n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(c, key);
    const char *file = golden_str(a, "file");
    char rel[512], path[1024];
    snprintf(rel, sizeof rel, "golden/%s", file);
    if (!*file || !am_test_find(rel, path, sizeof path)) return NULL;
    size_t size;
    float *d = am_test_read_file(path, &size);
    if (d && n) *n = size / sizeof(float);
    return d;
}

// Integer array case[key] (or case[key][sub] when sub != NULL) into out; returns the count.
static inline int golden_ints(const cJSON *c, const char *key, int32_t *out, int cap) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(c, key);
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (n < cap) out[n] = (int32_t)it->valuedouble;
        n++;
    }
    return n;
}

// Load fixtures/<model_file> and its tokenizer. Returns NULL and reports the
// case as skipped when the file is absent; a load failure is a failed check.
static inline am_model *golden_model(const char *model_file, am_tokenizer **tok) {
    char rel[512], path[1024];
    snprintf(rel, sizeof rel, "fixtures/%s", model_file);
    *tok = NULL;
    if (!am_test_find(rel, path, sizeof path)) {
        SKIP_CASE(model_file, "model file not found (set AMANUENSIS_TEST_DATA to the shared dir)");
        return NULL;
    }
    am_model *m = am_model_load(path);
    *tok = m ? am_tokenizer_create(m->vocab_bytes, m->vocab_len, m->n_file_vocab, m->hp.n_vocab) : NULL;
    CHECKF(m && *tok, "%s: %s", model_file, am_last_error());
    if (m && !*tok) {
        am_model_free(m);
        m = NULL;
    }
    return m;
}

typedef struct {
    double max_abs, mean_abs, max_ref;
} golden_diff;

static inline golden_diff golden_compare(const float *got, const float *ref, size_t n) {
    golden_diff g = {0, 0, 0};
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - (double)ref[i]);
        if (e > g.max_abs || isnan(e)) g.max_abs = isnan(e) ? INFINITY : e;
        sum += e;
        if (fabs(ref[i]) > g.max_ref) g.max_ref = fabs(ref[i]);
    }
    g.mean_abs = n ? sum / (double)n : 0;
    return g;
}

#endif // AM_GOLDEN_H
