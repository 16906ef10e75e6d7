// am_nn.h — the thread pool and the element-wise kernels of the encoder and
// decoder (products are in am_gemm, attention in am_attn).
//
// Layout: every matrix is row-major float32; a tensor comment gives its shape
// as (rows, cols). Kernels take the output first and `const ... *restrict`
// inputs. The loops are compiled with GCC target_clones so they use
// AVX2/AVX-512 at runtime. Large kernels spread over the thread pool.
//
// Ownership: no kernel allocates. Thread-safety: all kernels are reentrant;
// called from inside a parallel region they run on the calling thread.
#ifndef AM_NN_H
#define AM_NN_H

#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------- threads
// Threads the kernels use: a process-wide pool started on first use with one
// thread per core (AMANUENSIS_THREADS overrides). The first call also makes
// OpenBLAS single-threaded: products are split across the pool instead
// (am_gemm), so the two never compete for cores.
int am_nn_threads(void);

// Run fn(ctx, i) for i in [0, n_tasks) on the pool; returns when all are done.
// Called from inside a task, or while another thread runs a loop, it runs the
// tasks inline on the calling thread.
typedef void (*am_task_fn)(void *ctx, int i);
void am_nn_parallel(int n_tasks, am_task_fn fn, void *ctx);
// Index of the calling thread within a parallel loop: 0 for the caller,
// 1..am_nn_threads()-1 for pool workers (for per-thread scratch).
int am_nn_thread_index(void);

// ---------------------------------------------------------------- element-wise
// y (M,d) = LayerNorm(x (M,d)) * w (d,) + b (d,), eps 1e-5; y may alias x.
void am_nn_layernorm(float *y, const float *x, const float *restrict w, const float *restrict b, int M, int d);

// x (n,) = gelu(x), exact erf form: x * 0.5 * (1 + erf(x / sqrt(2))).
void am_nn_gelu(float *x, size_t n);

// x (M,N): each row replaced by softmax(row), computed in float32 with a
// max-subtracted exp and a double-precision sum.
void am_nn_softmax_rows(float *x, int M, int N);

// log(sum(exp(x))) over x (n,), in double; -inf when every x is -inf.
double am_nn_logsumexp(const float *x, int n);

// y (n,) += x (n,)
void am_nn_add(float *restrict y, const float *restrict x, size_t n);

// ---------------------------------------------------------------- scalar kernels
// exp(x) for x <= 0 (softmax arguments), ~1 ulp: x = n*ln2 + r, |r| <= ln2/2,
// e^r by Cephes' expf polynomial, 2^n from the exponent bits; 0 below -87.3.
// Written branch-free so the loops calling it vectorize. The exponent is
// built in unsigned arithmetic: a NaN or positive x gives a defined (NaN or
// meaningless) value, never undefined behaviour.
static inline float am_nn_exp_nonpos(float x) {
    union {
        float f;
        uint32_t i;
    } t, scale;
    const float shift = 12582912.0f; // 1.5 * 2^23: adding it rounds to an integer
    const float xc = x < -87.0f ? -87.0f : x;
    t.f = xc * 1.44269504088896341f + shift;
    const float fn = t.f - shift;
    const float r = (xc - fn * 0.693359375f) + fn * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    scale.i = (t.i - 0x4b400000u + 127u) << 23; // 2^n, n = the integer in t (mod 2^32)
    return x < -87.0f ? 0.0f : p * scale.f;
}

#endif // AM_NN_H
