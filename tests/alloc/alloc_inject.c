// alloc_inject.c — the --wrap'ed allocation functions of tests/alloc/test_alloc
// (see alloc_inject.h). Library prototypes are declared here with plain
// pointer types (ABI-identical to the real ones), so that this file does not
// depend on the libraries' header versions.

#include "alloc_inject.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

// ---------------------------------------------------------------- the real functions
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **out, size_t align, size_t n);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);

// sanitizer interface (present only under ASan)
void __sanitizer_symbolize_pc(void *pc, const char *fmt, char *out, size_t cap) __attribute__((weak));
int __sanitizer_get_ownership(const volatile void *p) __attribute__((weak));

// ---------------------------------------------------------------- injection state
static int g_classes = ALLOC_CLASS_LIBC | ALLOC_CLASS_LIB;
static long g_target;    // 0 = never fail
static int g_sticky;
static long g_count;     // counted calls since arm (atomic)
static long g_fired;     // failures since arm (atomic)
static const char *g_first_failed = "";
static void *g_first_caller;

void alloc_inject_classes(int mask) { __atomic_store_n(&g_classes, mask, __ATOMIC_SEQ_CST); }

void alloc_inject_arm(long n, int sticky) {
    __atomic_store_n(&g_target, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_count, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_fired, 0, __ATOMIC_SEQ_CST);
    g_first_failed = "";
    g_first_caller = NULL;
    g_sticky = sticky;
    __atomic_store_n(&g_target, n, __ATOMIC_SEQ_CST);
}

long alloc_inject_disarm(void) {
    __atomic_store_n(&g_target, 0, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&g_count, __ATOMIC_SEQ_CST);
}

long alloc_inject_count(void) { return __atomic_load_n(&g_count, __ATOMIC_SEQ_CST); }
long alloc_inject_fired(void) { return __atomic_load_n(&g_fired, __ATOMIC_SEQ_CST); }
const char *alloc_inject_first_failed(void) { return g_first_failed; }

// One counted call of class `cls`: 1 when it must fail.
#define should_fail(cls, fn) should_fail_at(cls, fn, __builtin_extract_return_addr(__builtin_return_address(0)))
static int should_fail_at(int cls, const char *fn, void *caller) {
    if (!(__atomic_load_n(&g_classes, __ATOMIC_RELAXED) & cls)) return 0;
    const long k = __atomic_add_fetch(&g_count, 1, __ATOMIC_SEQ_CST);
    const long t = __atomic_load_n(&g_target, __ATOMIC_SEQ_CST);
    if (t > 0 && (k == t || (g_sticky && k > t))) {
        if (__atomic_add_fetch(&g_fired, 1, __ATOMIC_SEQ_CST) == 1) {
            g_first_failed = fn;
            g_first_caller = caller;
        }
        return 1;
    }
    return 0;
}

// ---------------------------------------------------------------- tracking
// Open addressing with linear probing and backward-shift deletion, under a spin lock.
#define TRACK_BITS 20
#define TRACK_CAP ((size_t)1 << TRACK_BITS)

typedef struct {
    void *p;
    unsigned long seq;
    size_t size;
    void *caller;
    const char *fn;
} track_entry;

static track_entry g_track[TRACK_CAP];
static size_t g_track_n;
static int g_track_overflow;
static unsigned long g_seq;
static int g_lock;

static void lock(void) {
    while (__atomic_exchange_n(&g_lock, 1, __ATOMIC_ACQUIRE)) __builtin_ia32_pause();
}
static void unlock(void) { __atomic_store_n(&g_lock, 0, __ATOMIC_RELEASE); }

static size_t slot_of(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x & (TRACK_CAP - 1);
}

static int g_track_on = 1;

void alloc_inject_track(int on) { __atomic_store_n(&g_track_on, on, __ATOMIC_SEQ_CST); }

static void track_add(void *p, size_t size, void *caller, const char *fn) {
    if (!p || !__atomic_load_n(&g_track_on, __ATOMIC_RELAXED)) return;
    lock();
    const unsigned long seq = ++g_seq;
    size_t i = slot_of(p);
    while (g_track[i].p && g_track[i].p != p) i = (i + 1) & (TRACK_CAP - 1);
    if (!g_track[i].p) {
        if (g_track_n + 1 > TRACK_CAP * 3 / 4) { // full enough: stop recording new blocks
            g_track_overflow = 1;
            unlock();
            return;
        }
        g_track_n++;
    }
    g_track[i] = (track_entry){p, seq, size, caller, fn};
    unlock();
}

static void track_remove(void *p) {
    if (!p) return;
    lock();
    size_t i = slot_of(p);
    while (g_track[i].p && g_track[i].p != p) i = (i + 1) & (TRACK_CAP - 1);
    if (g_track[i].p) {
        g_track_n--;
        // backward-shift deletion
        size_t hole = i, j = i;
        for (;;) {
            j = (j + 1) & (TRACK_CAP - 1);
            if (!g_track[j].p) break;
            const size_t home = slot_of(g_track[j].p);
            // move j into the hole when its home is not in (hole, j] cyclically
            const int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
            if (!in_range) {
                g_track[hole] = g_track[j];
                hole = j;
            }
        }
        g_track[hole] = (track_entry){0};
    }
    unlock();
}

unsigned long alloc_inject_seq(void) {
    lock();
    const unsigned long s = g_seq;
    unlock();
    return s;
}

int alloc_inject_sees_library_frees(void) { return __sanitizer_get_ownership != NULL; }

long alloc_inject_live(void) {
    lock();
    const long n = (long)g_track_n;
    unlock();
    return n;
}

static void describe_pc(void *pc, char *out, size_t cap) {
    if (__sanitizer_symbolize_pc) {
        __sanitizer_symbolize_pc(pc, "%F %L", out, cap);
        return;
    }
    Dl_info info;
    if (dladdr(pc, &info) && info.dli_fname)
        snprintf(out, cap, "%s+0x%lx", info.dli_fname, (unsigned long)((uintptr_t)pc - (uintptr_t)info.dli_fbase));
    else snprintf(out, cap, "%p", pc);
}

void alloc_inject_first_caller(char *out, size_t cap) {
    if (!g_first_caller) snprintf(out, cap, "-");
    else describe_pc(g_first_caller, out, cap);
}

long alloc_inject_leaks(unsigned long mark, int print, const char *label) {
    track_entry found[32];
    void *gone[256];
    long n = 0, n_gone = 0;
    lock();
    for (size_t i = 0; i < TRACK_CAP; i++) {
        if (!g_track[i].p || g_track[i].seq <= mark) continue;
        // a block that a library freed (e.g. a response buffer libmicrohttpd frees
        // with the real free): ASan knows it is no longer allocated
        if (__sanitizer_get_ownership && strcmp(g_track[i].fn, "mmap") && !__sanitizer_get_ownership(g_track[i].p)) {
            if (n_gone < (long)(sizeof gone / sizeof gone[0])) gone[n_gone++] = g_track[i].p;
            continue;
        }
        if (n < (long)(sizeof found / sizeof found[0])) found[n] = g_track[i];
        n++;
    }
    unlock();
    for (long k = 0; k < n_gone; k++) track_remove(gone[k]);
    for (long k = 0; k < n && k < print && k < (long)(sizeof found / sizeof found[0]); k++) {
        char where[512];
        describe_pc(found[k].caller, where, sizeof where);
        fprintf(stderr, "  LEAK %s: %zu bytes from %s at %s\n", label, found[k].size, found[k].fn, where);
    }
    if (g_track_overflow) fprintf(stderr, "  (leak tracking overflowed: some blocks were not recorded)\n");
    return n;
}

// ---------------------------------------------------------------- libc allocators
#define CALLER __builtin_extract_return_addr(__builtin_return_address(0))

void *__wrap_malloc(size_t n) {
    if (should_fail(ALLOC_CLASS_LIBC, "malloc")) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_malloc(n);
    track_add(p, n, CALLER, "malloc");
    return p;
}

void *__wrap_calloc(size_t n, size_t size) {
    if (should_fail(ALLOC_CLASS_LIBC, "calloc")) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_calloc(n, size);
    track_add(p, n * size, CALLER, "calloc");
    return p;
}

void *__wrap_realloc(void *old, size_t n) {
    if (should_fail(ALLOC_CLASS_LIBC, "realloc")) {
        errno = ENOMEM;
        return NULL; // old stays valid
    }
    void *p = __real_realloc(old, n);
    if (p || n == 0) track_remove(old);
    track_add(p, n, CALLER, "realloc");
    return p;
}

void __wrap_free(void *p) {
    track_remove(p);
    __real_free(p);
}

char *__wrap_strdup(const char *s) {
    if (should_fail(ALLOC_CLASS_LIBC, "strdup")) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = __real_strdup(s);
    track_add(p, p ? strlen(p) + 1 : 0, CALLER, "strdup");
    return p;
}

char *__wrap_strndup(const char *s, size_t n) {
    if (should_fail(ALLOC_CLASS_LIBC, "strndup")) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = __real_strndup(s, n);
    track_add(p, p ? strlen(p) + 1 : 0, CALLER, "strndup");
    return p;
}

void *__wrap_aligned_alloc(size_t align, size_t n) {
    if (should_fail(ALLOC_CLASS_LIBC, "aligned_alloc")) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_aligned_alloc(align, n);
    track_add(p, n, CALLER, "aligned_alloc");
    return p;
}

int __wrap_posix_memalign(void **out, size_t align, size_t n) {
    if (should_fail(ALLOC_CLASS_LIBC, "posix_memalign")) return ENOMEM;
    const int rc = __real_posix_memalign(out, align, n);
    if (!rc) track_add(*out, n, CALLER, "posix_memalign");
    return rc;
}

// Anonymous mappings are allocations (am_alloc's large blocks outside ASan);
// file mappings are not counted.
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    const int anon = (flags & MAP_ANONYMOUS) != 0;
    if (anon && should_fail(ALLOC_CLASS_LIBC, "mmap")) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = __real_mmap(addr, len, prot, flags, fd, off);
    if (anon && p != MAP_FAILED) track_add(p, len, CALLER, "mmap");
    return p;
}

int __wrap_munmap(void *addr, size_t len) {
    track_remove(addr);
    return __real_munmap(addr, len);
}

// ---------------------------------------------------------------- library entry points
// Each fails the way the library fails when its own allocation fails.
#define WRAP0(ret, name, fail)                                   \
    ret __real_##name(void);                                     \
    ret __wrap_##name(void) {                                    \
        if (should_fail(ALLOC_CLASS_LIB, #name)) return (fail);  \
        return __real_##name();                                  \
    }
#define WRAP1(ret, name, fail, t1)                               \
    ret __real_##name(t1);                                       \
    ret __wrap_##name(t1 a) {                                    \
        if (should_fail(ALLOC_CLASS_LIB, #name)) return (fail);  \
        return __real_##name(a);                                 \
    }
#define WRAP2(ret, name, fail, t1, t2)                           \
    ret __real_##name(t1, t2);                                   \
    ret __wrap_##name(t1 a, t2 b) {                              \
        if (should_fail(ALLOC_CLASS_LIB, #name)) return (fail);  \
        return __real_##name(a, b);                              \
    }
#define WRAP3(ret, name, fail, t1, t2, t3)                       \
    ret __real_##name(t1, t2, t3);                               \
    ret __wrap_##name(t1 a, t2 b, t3 c) {                        \
        if (should_fail(ALLOC_CLASS_LIB, #name)) return (fail);  \
        return __real_##name(a, b, c);                           \
    }
#define WRAP4(ret, name, fail, t1, t2, t3, t4)                   \
    ret __real_##name(t1, t2, t3, t4);                           \
    ret __wrap_##name(t1 a, t2 b, t3 c, t4 d) {                  \
        if (should_fail(ALLOC_CLASS_LIB, #name)) return (fail);  \
        return __real_##name(a, b, c, d);                        \
    }

// cJSON (constructors return NULL when cJSON's malloc fails; Add*ToObject then
// deletes the item it made and returns NULL)
WRAP0(void *, cJSON_CreateObject, NULL)
WRAP0(void *, cJSON_CreateArray, NULL)
WRAP1(void *, cJSON_CreateNumber, NULL, double)
WRAP1(void *, cJSON_CreateString, NULL, const char *)
WRAP3(void *, cJSON_AddNumberToObject, NULL, void *, const char *, double)
WRAP3(void *, cJSON_AddStringToObject, NULL, void *, const char *, const char *)
WRAP3(void *, cJSON_AddRawToObject, NULL, void *, const char *, const char *)
WRAP3(void *, cJSON_AddBoolToObject, NULL, void *, const char *, int)
WRAP2(void *, cJSON_AddNullToObject, NULL, void *, const char *)
WRAP2(void *, cJSON_AddObjectToObject, NULL, void *, const char *)
WRAP2(void *, cJSON_AddArrayToObject, NULL, void *, const char *)
WRAP1(char *, cJSON_PrintUnformatted, NULL, const void *)
WRAP1(char *, cJSON_Print, NULL, const void *)
WRAP2(void *, cJSON_ParseWithLength, NULL, const char *, size_t)

// PCRE2 (8-bit)
void *__real_pcre2_compile_8(const void *pattern, size_t len, uint32_t options, int *err, size_t *at, void *ctx);
void *__wrap_pcre2_compile_8(const void *pattern, size_t len, uint32_t options, int *err, size_t *at, void *ctx) {
    if (should_fail(ALLOC_CLASS_LIB, "pcre2_compile")) {
        if (err) *err = 121; // PCRE2_ERROR_HEAP_FAILED
        if (at) *at = 0;
        return NULL;
    }
    return __real_pcre2_compile_8(pattern, len, options, err, at, ctx);
}
WRAP2(int, pcre2_jit_compile_8, -48 /* PCRE2_ERROR_NOMEMORY */, void *, uint32_t)
WRAP2(void *, pcre2_match_data_create_from_pattern_8, NULL, const void *, void *)
int __real_pcre2_match_8(const void *code, const void *subject, size_t len, size_t start, uint32_t options, void *md,
                         void *ctx);
int __wrap_pcre2_match_8(const void *code, const void *subject, size_t len, size_t start, uint32_t options, void *md,
                         void *ctx) {
    if (should_fail(ALLOC_CLASS_LIB, "pcre2_match")) return -48; // PCRE2_ERROR_NOMEMORY
    return __real_pcre2_match_8(code, subject, len, start, options, md, ctx);
}

// FFTW
WRAP1(void *, fftw_malloc, NULL, size_t)
WRAP4(void *, fftw_plan_dft_r2c_1d, NULL, int, double *, void *, unsigned)

// libav*
WRAP1(void *, av_malloc, NULL, size_t)
WRAP2(void *, av_malloc_array, NULL, size_t, size_t)
WRAP0(void *, av_frame_alloc, NULL)
WRAP0(void *, av_packet_alloc, NULL)
WRAP1(void *, avcodec_alloc_context3, NULL, const void *)
WRAP0(void *, avformat_alloc_context, NULL)
void *__real_avio_alloc_context(void *buf, int size, int write_flag, void *opaque, void *rd, void *wr, void *seek);
void *__wrap_avio_alloc_context(void *buf, int size, int write_flag, void *opaque, void *rd, void *wr, void *seek) {
    if (should_fail(ALLOC_CLASS_LIB, "avio_alloc_context")) return NULL;
    return __real_avio_alloc_context(buf, size, write_flag, opaque, rd, wr, seek);
}
// swr_alloc_set_opts2 with *ps == NULL (our use) fails before touching *ps
int __real_swr_alloc_set_opts2(void **ps, const void *ol, int of, int orate, const void *il, int inf, int irate,
                               int log_offset, void *log_ctx);
int __wrap_swr_alloc_set_opts2(void **ps, const void *ol, int of, int orate, const void *il, int inf, int irate,
                               int log_offset, void *log_ctx) {
    if ((!ps || !*ps) && should_fail(ALLOC_CLASS_LIB, "swr_alloc_set_opts2")) return -ENOMEM; // AVERROR(ENOMEM)
    return __real_swr_alloc_set_opts2(ps, ol, of, orate, il, inf, irate, log_offset, log_ctx);
}

// libmicrohttpd


void *MHD_start_daemon_va(unsigned flags, uint16_t port, void *apc, void *apc_cls, void *dh, void *dh_cls,
                          va_list ap);
void *__wrap_MHD_start_daemon(unsigned flags, uint16_t port, void *apc, void *apc_cls, void *dh, void *dh_cls, ...) {
    if (should_fail(ALLOC_CLASS_LIB, "MHD_start_daemon")) return NULL;
    va_list ap;
    va_start(ap, dh_cls);
    void *d = MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
    va_end(ap);
    return d;
}
WRAP3(void *, MHD_create_response_from_buffer, NULL, size_t, void *, int)
WRAP4(void *, MHD_create_post_processor, NULL, void *, size_t, void *, void *)

// threads
int __real_pthread_create(void *t, const void *attr, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(void *t, const void *attr, void *(*fn)(void *), void *arg) {
    if (should_fail(ALLOC_CLASS_LIB, "pthread_create")) return EAGAIN;
    return __real_pthread_create(t, attr, fn, arg);
}
