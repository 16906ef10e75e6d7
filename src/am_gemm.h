// am_gemm.h — dense products y = x W^T with the weights in their file's type.
//
// am_gemm() computes y (M, N) = x (M, K) @ W (N, K)^T + b for an am_wmat W of
// any stored type (f32, f16, q8_0, q5_0, q5_1, q4_0, q4_1), always with the
// exact float32 weight values (am_quant.h). The path depends on M:
//   few rows (M <= AM_GEMM_SMALL_M: decoder steps) — W is streamed from
//     memory once: each group of 4 rows is decoded into a per-thread buffer
//     that stays in L1 and multiplied with all M rows of x by a
//     register-blocked kernel (AVX-512, AVX2 or portable; am_cpu_isa).
//   many rows (the encoder) — W is decoded to float32, whole or in panels of
//     rows, and multiplied by OpenBLAS sgemm; with AM_GEMM_ROWWISE (the
//     decoder) the streaming path serves any M, so that each row's result is
//     the same whatever else is in the product.
// Either way the work is spread over the thread pool (am_nn_parallel).
// Summation order differs between the paths (as it does between any two GEMM
// libraries); the weight values never do.
//
// Ownership: a workspace (am_gemm_ws) belongs to its caller (an encoder, a
// decoder); am_gemm borrows it. Thread-safety: one workspace serves one
// am_gemm call at a time; everything else is reentrant.
#ifndef AM_GEMM_H
#define AM_GEMM_H

#include <stddef.h>

#include "am_quant.h"

// Products with at most this many rows of x take the streaming path.
#define AM_GEMM_SMALL_M 16

typedef struct am_gemm_ws am_gemm_ws;

// A workspace for products with at most max_k inputs (W->cols). A matrix of
// at most whole_floats elements is decoded whole before a many-row product
// (0: always in per-thread panels). NULL (last error set) when out of memory.
am_gemm_ws *am_gemm_ws_create(int max_k, size_t whole_floats);
void am_gemm_ws_free(am_gemm_ws *ws);
size_t am_gemm_ws_bytes(const am_gemm_ws *ws);

enum {
    AM_GEMM_ACC = 1,  // y += x W^T + b (residual add), computed as (y + b) + x W^T
    AM_GEMM_GELU = 2, // y = gelu(x W^T + b), exact erf form (am_nn_gelu); not with AM_GEMM_ACC
    AM_GEMM_ROWWISE = 4, // every row's result is independent of M and of the other rows (the streaming
                         // path for any M, in blocks of AM_GEMM_STREAM_BLOCK rows): the decoder, so that a
                         // request's logits do not depend on what shares its step
};

// Rows of x the streaming path multiplies per pass over W (AM_GEMM_ROWWISE products with more
// rows read W once per block).
#define AM_GEMM_STREAM_BLOCK 64

// y (M, N) = x (M, K) @ W (N, K)^T + b (N,), with N = W->rows, K = W->cols;
// b may be NULL; flags: AM_GEMM_*. y must not overlap x. Returns 0, or
// AM_EINVAL when K exceeds the workspace's max_k.
int am_gemm(float *restrict y, const float *restrict x, const am_wmat *W, const float *restrict b, int M, int flags,
            am_gemm_ws *ws);

// The machine's sgemm rate in GFLOP/s for a float32 (M, K) x (K, N) product,
// best of `reps`, on all threads (benchmark reference: the limit the encoder
// is measured against).
double am_gemm_sgemm_gflops(int M, int N, int K, int reps);

#endif // AM_GEMM_H
