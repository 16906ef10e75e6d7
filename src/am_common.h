// am_common.h — error codes, logging and small helpers shared by every module.
//
// Ownership: nothing here allocates except am_set_error's thread-local buffer
// (static storage). Thread-safety: all functions are thread-safe; the last error
// message is thread-local.
#ifndef AM_COMMON_H
#define AM_COMMON_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------- error codes
// Every fallible function returns 0 on success or one of these (negative).
// Constructors return NULL and set the thread's last error (am_last_error()).
#define AM_OK 0
#define AM_EINVAL -1    // invalid argument
#define AM_ENOMEM -2    // allocation failed
#define AM_EIO -3       // file could not be opened / read / mapped
#define AM_EFORMAT -4   // malformed model file
#define AM_EAUDIO -5    // audio could not be decoded
#define AM_ERANGE -6    // a size or index out of its allowed range
#define AM_EUNSUPPORTED -7 // valid request for a feature that is not implemented
#define AM_ECANCELED -8 // the caller cancelled the work
#define AM_EFULL -9     // capacity exhausted (queue, slots, context)
#define AM_ETIMEDOUT -10 // deadline passed
#define AM_EINTERNAL -11 // invariant violated (a bug)
#define AM_ESHUTDOWN -12 // the service is draining / shutting down

// Static description of an error code ("invalid argument", ...).
const char *am_strerror(int err);

// Set the calling thread's last error message (printf-style) and return `err`
// so a failure path can read `return am_set_error(AM_EIO, "open %s", path);`.
int am_set_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// The calling thread's last error message ("" when none was set).
const char *am_last_error(void);
// The code passed with the last am_set_error() (AM_OK when none).
int am_last_error_code(void);

// ---------------------------------------------------------------- helpers
// Monotonic clock in seconds.
double am_time_s(void);

// pthread_cond_timedwait for at most `seconds` (relative; <= 0 returns at
// once). The mutex is held on entry and on return, as with the pthread call.
void am_cond_wait_s(pthread_cond_t *cv, pthread_mutex_t *mu, double seconds);

// 64-byte aligned allocation (for SIMD and BLAS); free with am_free() (only).
// Returns NULL on overflow or failure. Memory reads as zero. Blocks of 256 KiB
// and more are mapped lazily (resident only once touched); from 4 MiB on they
// are 2 MiB aligned, with transparent huge pages.
void *am_alloc(size_t n_bytes);
void am_free(void *p);

// Checked size arithmetic: returns 0 and stores a*b (a+b) in *out, or
// AM_ERANGE on overflow.
int am_mul_size(size_t a, size_t b, size_t *out);
int am_add_size(size_t a, size_t b, size_t *out);

// IEEE half -> float (exact).
float am_fp16_to_fp32(uint16_t h);
// float -> IEEE half, round-to-nearest-even.
uint16_t am_fp32_to_fp16(float f);

// ---------------------------------------------------------------- text
// Python's str.strip() on UTF-8: trims Unicode whitespace (str.isspace) from
// both ends; returns the new length and moves *text forward.
size_t am_str_strip(const char **text, size_t len);

// ---------------------------------------------------------------- CPU
// Instruction sets the kernels are written for (each a superset of the one before):
// AVX2 = AVX2 + FMA + F16C; AVX512 = AVX-512 F, BW, DQ and VL.
enum { AM_ISA_SCALAR = 0, AM_ISA_AVX2 = 1, AM_ISA_AVX512 = 2 };

// The best instruction set this CPU supports, decided once per process.
// AMANUENSIS_ISA=scalar|avx2|avx512 lowers it (never raises it): tests run
// every kernel path that way on one machine.
int am_cpu_isa(void);
// "scalar", "avx2", "avx512".
const char *am_isa_name(int isa);

// For the kernels' per-instruction-set functions (x86-64 with GCC or clang):
// AM_X86 when they exist, the target attributes matching AM_ISA_AVX2 and
// AM_ISA_AVX512, and a forced inline for templates specialised by constants.
#if defined(__x86_64__) && defined(__GNUC__)
#define AM_X86 1
#define AM_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define AM_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))
#endif
#define AM_INLINE static inline __attribute__((always_inline))

#define AM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define AM_MAX(a, b) ((a) > (b) ? (a) : (b))
#define AM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif // AM_COMMON_H
