// fuzz_common.h — helpers shared by the libFuzzer targets in fuzz/ (header-only).
//
// Test data: the tiny.en fixture is AMANUENSIS_TEST_DATA/fixtures/ggml-test-tiny.en.bin
// when that variable names a directory holding it, else <source>/tests/data/
// (the copy that ships with the repository); the VAD model is
// <source>/data/ggml-silero-v6.2.0.bin. AM_SOURCE_DIR is the compile definition
// CMake passes (the checkout the target was built from).
//
// A byte reader (fz_*) turns a fuzz input into typed values the way
// libFuzzer's FuzzedDataProvider does: reads past the end yield zeros, so every
// input maps to some value and a shorter input is a prefix of a longer one.
//
// Ownership: fz_read_file and fz_tokenizer_load return objects the caller
// frees. Thread-safety: everything is reentrant (no state of its own).
#ifndef AM_FUZZ_COMMON_H
#define AM_FUZZ_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "am_common.h"
#include "am_model.h"
#include "am_tokenizer.h"

#ifndef AM_SOURCE_DIR
#define AM_SOURCE_DIR "."
#endif

// ---------------------------------------------------------------- files
static inline int fz_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

// The path of a test file: AMANUENSIS_TEST_DATA/<rel>, else <source>/<fallback>.
// Writes it into out and returns 1 when the file exists, else 0.
static inline int fz_find(const char *rel, const char *fallback, char *out, size_t cap) {
    const char *env = getenv("AMANUENSIS_TEST_DATA");
    if (env && *env) {
        snprintf(out, cap, "%s/%s", env, rel);
        if (fz_exists(out)) return 1;
    }
    snprintf(out, cap, "%s/%s", AM_SOURCE_DIR, fallback);
    return fz_exists(out);
}

static inline int fz_find_tiny_model(char *out, size_t cap) {
    return fz_find("fixtures/ggml-test-tiny.en.bin", "tests/data/ggml-test-tiny.en.bin", out, cap);
}

static inline int fz_find_vad_model(char *out, size_t cap) {
    return fz_find("fixtures/ggml-silero-v6.2.0.bin", "data/ggml-silero-v6.2.0.bin", out, cap);
}

// Initialisation failures end the process: the target cannot run at all.
static inline void fz_die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

// An invariant of the code under test: on failure print the message and
// abort(), which libFuzzer reports as a crash with the input saved.
#define FZ_ASSERT(cond, ...)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz: %s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

// The tokenizer of the tiny.en fixture (its model is loaded and freed again).
static inline am_tokenizer *fz_tokenizer_load(void) {
    char path[4096];
    if (!fz_find_tiny_model(path, sizeof path))
        fz_die("ggml-test-tiny.en.bin not found (set AMANUENSIS_TEST_DATA or keep tests/data)", path);
    am_model *m = am_model_load(path);
    if (!m) fz_die(path, am_last_error());
    am_tokenizer *t = am_tokenizer_create(m->vocab_bytes, m->vocab_len, m->n_file_vocab, m->hp.n_vocab);
    am_model_free(m);
    if (!t) fz_die("am_tokenizer_create", am_last_error());
    return t;
}

// ---------------------------------------------------------------- input reader
typedef struct {
    const uint8_t *p;
    size_t n, pos;
} fz_reader;

static inline size_t fz_left(const fz_reader *r) { return r->n - r->pos; }

static inline uint8_t fz_u8(fz_reader *r) { return r->pos < r->n ? r->p[r->pos++] : 0; }

static inline uint16_t fz_u16(fz_reader *r) {
    uint16_t v = fz_u8(r);
    return (uint16_t)(v | (uint16_t)fz_u8(r) << 8);
}

static inline uint32_t fz_u32(fz_reader *r) {
    uint32_t v = fz_u16(r);
    return v | (uint32_t)fz_u16(r) << 16;
}

static inline uint64_t fz_u64(fz_reader *r) {
    uint64_t v = fz_u32(r);
    return v | (uint64_t)fz_u32(r) << 32;
}

// A double that is often one of the values parsers and printers get wrong.
static inline double fz_double(fz_reader *r) {
    static const double special[] = {0.0, -0.0, 1.0, -1.0, 0.5, 29.99, 30.0, 1e-300, 4.9e-324, -1e-9,
                                     1e12, 1e15, 1e300, -1e300, 1.7976931348623157e308, 9.2e18, 3.6e6,
                                     86400.0 * 365 * 1000};
    const uint8_t k = fz_u8(r);
    if (k < 64) return (double)(int8_t)fz_u8(r) * 0.01 * (k + 1); // small, common
    if (k < 96) return special[k % AM_ARRAY_LEN(special)];
    if (k < 104) return (k & 1) ? INFINITY : -INFINITY;
    if (k < 112) return (k & 1) ? NAN : -NAN;
    uint64_t bits = fz_u64(r);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline float fz_float(fz_reader *r) { return (float)fz_double(r); }

// A malloc'd NUL-terminated string of up to max bytes (length from the input;
// embedded NULs simply end it early). Never NULL unless out of memory.
static inline char *fz_string(fz_reader *r, size_t max) {
    size_t len = fz_u8(r);
    if (len > max) len = max;
    if (len > fz_left(r)) len = fz_left(r);
    char *s = malloc(len + 1);
    if (!s) return NULL;
    if (len) memcpy(s, r->p + r->pos, len);
    s[len] = 0;
    r->pos += len;
    return s;
}

#endif // AM_FUZZ_COMMON_H
