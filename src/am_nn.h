// am_nn.h — the neural-network kernels the encoder and decoder are built from.
//
// Layout: every matrix is row-major float32; a tensor comment gives its shape
// as (rows, cols). Linear weights are PyTorch nn.Linear layout W (out, in).
// Kernels take the output first and `const ... *restrict` inputs. GEMMs go to
// OpenBLAS (which dispatches to AVX2/AVX-512 itself); the element-wise loops
// are compiled with GCC target_clones so they also use AVX2/AVX-512 at runtime.
// Large kernels spread over the thread pool (see am_nn_threads).
//
// Ownership: no kernel allocates. Thread-safety: all kernels are reentrant;
// called from inside a parallel region they run on the calling thread.
#ifndef AM_NN_H
#define AM_NN_H

#include <stddef.h>

// ---------------------------------------------------------------- threads
// Threads the kernels use: a process-wide pool started on first use with one
// thread per core (AMANUENSIS_THREADS overrides). The first call also makes
// OpenBLAS single-threaded: GEMMs are split over output columns across the
// pool instead, so the two never compete for cores.
int am_nn_threads(void);

// Run fn(ctx, i) for i in [0, n_tasks) on the pool; returns when all are done.
// Called from inside a task, or while another thread runs a loop, it runs the
// tasks inline on the calling thread.
typedef void (*am_task_fn)(void *ctx, int i);
void am_nn_parallel(int n_tasks, am_task_fn fn, void *ctx);
// Index of the calling thread within a parallel loop: 0 for the caller,
// 1..am_nn_threads()-1 for pool workers (for per-thread scratch).
int am_nn_thread_index(void);

// ---------------------------------------------------------------- dense
// y (M,N) = x (M,K) @ W (N,K)^T + b (N,)     (b may be NULL)
void am_nn_linear(float *restrict y, const float *restrict x, const float *restrict W, const float *restrict b,
                  int M, int N, int K);

// y (M,N) += x (M,K) @ W (N,K)^T + b (N,)    (residual add fused into the GEMM)
void am_nn_linear_add(float *restrict y, const float *restrict x, const float *restrict W,
                      const float *restrict b, int M, int N, int K);

// Measured sgemm GFLOP/s for an (M,K)x(K,N) product (benchmark helper).
double am_nn_sgemm_gflops(int M, int N, int K, int reps);

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

// ---------------------------------------------------------------- attention
// Scaled dot-product attention for one head, rows of q attending to rows of
// k/v. All three are strided views (leading dimension ld*, head width hd):
//   q (nq, hd) ld_q, k (nk, hd) ld_kv, v (nk, hd) ld_kv -> out (nq, hd) ld_o.
// Scores are (q*s)@(k*s)^T with s = hd^-0.25, as the reference computes them.
// causal_offset >= 0 applies a causal mask: query row i sees keys
// 0..causal_offset+i; pass -1 for no mask. `scores` is scratch of nq*nk floats.
void am_nn_attention(float *restrict out, int ld_o, const float *restrict q, int ld_q, const float *restrict k,
                     const float *restrict v, int ld_kv, int nq, int nk, int hd, int causal_offset,
                     float *restrict scores);

#endif // AM_NN_H
