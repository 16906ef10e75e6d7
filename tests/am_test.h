// am_test.h — minimal test harness shared by tests/test_*.c (header-only).
//
// Conventions: a test program exits 0 when every check passed, 1 when one
// failed, and 77 (ctest SKIP_RETURN_CODE) when it could not run at all for
// want of data; each skipped case prints "SKIP: <case>: <reason>".
//
// Test data: AMANUENSIS_TEST_DATA (default: <source>/../shared) holds the full
// shared material; <source>/tests/data holds the small subset that ships with
// the repository. am_test_find() looks in the first, then the second.
#ifndef AM_TEST_H
#define AM_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef AM_SOURCE_DIR
#define AM_SOURCE_DIR "."
#endif

static int am_test_failures;
static int am_test_checks;
static int am_test_skips;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        am_test_checks++;                                                            \
        if (!(cond)) {                                                               \
            am_test_failures++;                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECKF(cond, ...)                                                            \
    do {                                                                             \
        am_test_checks++;                                                            \
        if (!(cond)) {                                                               \
            am_test_failures++;                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

#define SKIP_CASE(name, ...)                      \
    do {                                          \
        am_test_skips++;                          \
        printf("SKIP: %s: ", (name));             \
        printf(__VA_ARGS__);                      \
        putchar('\n');                            \
    } while (0)

// Print a summary and return the exit code. `ran_any` = at least one case ran.
static inline int am_test_finish(const char *prog, int ran_any) {
    printf("%s: %d checks, %d failed, %d cases skipped\n", prog, am_test_checks, am_test_failures,
           am_test_skips);
    if (am_test_failures) return 1;
    if (!ran_any) return 77;
    return 0;
}

static inline int am_test_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

// The shared data directory (AMANUENSIS_TEST_DATA or <source>/../shared).
static inline const char *am_test_shared_dir(void) {
    const char *env = getenv("AMANUENSIS_TEST_DATA");
    if (env && *env) return env;
    return AM_SOURCE_DIR "/../shared";
}

// Find `rel` (e.g. "fixtures/ggml-test-tiny.en.bin") under the shared dir, then
// under tests/data (flattened: tests/data/<basename>). Writes the path into
// out and returns 1 if found, else 0.
static inline int am_test_find(const char *rel, char *out, size_t out_size) {
    snprintf(out, out_size, "%s/%s", am_test_shared_dir(), rel);
    if (am_test_exists(out)) return 1;
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    snprintf(out, out_size, "%s/tests/data/%s", AM_SOURCE_DIR, base);
    return am_test_exists(out);
}

// Read a whole file; returns malloc'd buffer (NUL-terminated) or NULL.
static inline void *am_test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) { fclose(f); return NULL; }
    char *buf = malloc((size_t)n + 1);
    if (!buf) { fclose(f); return NULL; }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); fclose(f); return NULL; }
    buf[n] = 0;
    fclose(f);
    if (size) *size = (size_t)n;
    return buf;
}

#endif // AM_TEST_H
