// am_common.c — error codes, thread-local last error, aligned allocation,
// half-precision conversion.
#include "am_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#if defined(__x86_64__) && defined(__clang__)
#include <cpuid.h>
#endif

// ---------------------------------------------------------------- errors
static _Thread_local char tl_error_msg[512];
static _Thread_local int tl_error_code;

const char *am_strerror(int err) {
    switch (err) {
    case AM_OK: return "success";
    case AM_EINVAL: return "invalid argument";
    case AM_ENOMEM: return "out of memory";
    case AM_EIO: return "I/O error";
    case AM_EFORMAT: return "malformed model file";
    case AM_EAUDIO: return "audio could not be decoded";
    case AM_ERANGE: return "value out of range";
    case AM_EUNSUPPORTED: return "not supported";
    case AM_ECANCELED: return "cancelled";
    case AM_EFULL: return "capacity exhausted";
    case AM_ETIMEDOUT: return "timed out";
    case AM_EINTERNAL: return "internal error";
    case AM_ESHUTDOWN: return "shutting down";
    default: return "unknown error";
    }
}

int am_set_error(int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_error_msg, sizeof tl_error_msg, fmt, ap);
    va_end(ap);
    tl_error_code = err;
    return err;
}

const char *am_last_error(void) { return tl_error_msg; }
int am_last_error_code(void) { return tl_error_code; }

// ---------------------------------------------------------------- helpers
double am_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void am_cond_wait_s(pthread_cond_t *cv, pthread_mutex_t *mu, double seconds) {
    if (!(seconds > 0)) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const long long ns = (long long)ts.tv_nsec + (long long)(seconds * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_cond_timedwait(cv, mu, &ts);
}

// Every block carries a 64-byte header just before it saying how to release it.
// Blocks of LAZY_MIN bytes or more (weights, K/V, scratch) come straight from
// mmap: their pages are zero until touched, so memory that is reserved but
// never used (the rows of a scratch sized for the largest step, the positions
// of a KV cache past the text) costs nothing resident. From HUGE_MIN on they
// are aligned to 2 MiB and marked for transparent huge pages: the kernels
// stream them, and huge pages spare the TLB (and, in a virtual machine, nested
// page walks) thousands of misses per decoder step. Under AddressSanitizer
// every block comes from malloc, so that its bounds are checked.
#define LAZY_MIN ((size_t)256 << 10)
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_PAGE ((size_t)2 << 20)
#define HDR 64
#define HDR_MAGIC 0x616d616c6c6f6331ull

typedef struct {
    uint64_t magic;
    void *base; // what to release: the malloc block, or the mapping
    size_t len; // 0 for a malloc block, else the mapping's length
} blk_hdr;

void *am_alloc(size_t n_bytes) {
    if (n_bytes == 0) n_bytes = 1;
    size_t rounded, total;
    if (am_add_size(n_bytes, 63, &rounded)) return NULL;
    rounded &= ~(size_t)63;
    uint8_t *p;
    blk_hdr h = {HDR_MAGIC, NULL, 0};
#ifndef __SANITIZE_ADDRESS__
    if (rounded >= LAZY_MIN) {
        const size_t align = rounded >= HUGE_MIN ? HUGE_PAGE : 4096;
        if (am_add_size(rounded, 2 * align, &total)) return NULL;
        void *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) return NULL;
        p = (uint8_t *)(((uintptr_t)base + HDR + align - 1) & ~(uintptr_t)(align - 1));
        if (align == HUGE_PAGE) madvise(p, rounded & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
        h.base = base;
        h.len = total;
        memcpy(p - HDR, &h, sizeof h);
        return p;
    }
#endif
    if (am_add_size(rounded, HDR, &total) || !(h.base = aligned_alloc(64, total))) return NULL;
    memset(h.base, 0, total);
    p = (uint8_t *)h.base + HDR;
    memcpy(p - HDR, &h, sizeof h);
    return p;
}

void am_free(void *p) {
    if (!p) return;
    blk_hdr h;
    memcpy(&h, (uint8_t *)p - HDR, sizeof h);
    if (h.magic != HDR_MAGIC) abort(); // not a block of am_alloc: a bug worth stopping at
    if (h.len) munmap(h.base, h.len);
    else free(h.base);
}

int am_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return AM_ERANGE;
    *out = a * b;
    return 0;
}

int am_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return AM_ERANGE;
    *out = a + b;
    return 0;
}

// ---------------------------------------------------------------- text
// Length of the UTF-8 whitespace character at s (Python's str.isspace set), or 0.
static size_t space_len(const unsigned char *s, size_t n) {
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20))) return 1;
    if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n >= 3 && s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3; // U+1680
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
        return 3; // U+2000..200A, 2028, 2029, 202F
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3; // U+205F
    if (n >= 3 && s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3; // U+3000
    return 0;
}

size_t am_str_strip(const char **text, size_t len) {
    const unsigned char *s = (const unsigned char *)*text;
    size_t k;
    while (len && (k = space_len(s, len))) {
        s += k;
        len -= k;
    }
    for (;;) { // trailing: try 1-, 2- and 3-byte characters ending at len
        size_t cut = 0;
        for (size_t w = 1; w <= 3 && w <= len && !cut; w++)
            if (space_len(s + len - w, w) == w) cut = w;
        if (!cut) break;
        len -= cut;
    }
    *text = (const char *)s;
    return len;
}

// ---------------------------------------------------------------- CPU
static int g_isa;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) && defined(__GNUC__)
// F16C. clang before 16 does not know "f16c" in __builtin_cpu_supports (a
// compile error), so there the CPUID bit is read directly (leaf 1, ECX bit 29;
// its operating-system support is that of AVX, which the AVX2 check covers).
static int cpu_has_f16c(void) {
#if defined(__clang__) && __clang_major__ < 16
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
#else
    return __builtin_cpu_supports("f16c");
#endif
}
#endif

static void isa_init(void) {
    int isa = AM_ISA_SCALAR;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
        isa = AM_ISA_AVX2;
    if (isa == AM_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        isa = AM_ISA_AVX512;
#endif
    const char *env = getenv("AMANUENSIS_ISA");
    for (int i = AM_ISA_SCALAR; env && i < isa; i++)
        if (!strcmp(env, am_isa_name(i))) isa = i;
    g_isa = isa;
}

int am_cpu_isa(void) {
    pthread_once(&isa_once, isa_init);
    return g_isa;
}

const char *am_isa_name(int isa) {
    switch (isa) {
    case AM_ISA_AVX2: return "avx2";
    case AM_ISA_AVX512: return "avx512";
    default: return "scalar";
    }
}

// ---------------------------------------------------------------- half precision
float am_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { // subnormal: normalise
            int e = -1;
            do { mant <<= 1; e++; } while (!(mant & 0x400));
            mant &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t am_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) // inf or nan
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); // overflow -> inf
    if (absx < 0x38800000u) { // subnormal half or zero
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; // 14..24
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = absx - 0x38000000u; // rebias exponent 127->15 (<<23 == 112<<23)
    uint32_t m = r >> 13;
    uint32_t rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (m & 1))) m++;
    return (uint16_t)(sign | m);
}
