// am_nn.h — the neural-network kernels the encoder and decoder are built from.
//
// Layout: every matrix is row-major float32; a tensor comment gives its shape
// as (rows, cols). Linear weights are PyTorch nn.Linear layout W (out, in).
// Kernels take the output first and `const ... *restrict` inputs. GEMMs go to
// OpenBLAS (which dispatches to AVX2/AVX-512 itself); the element-wise loops
// are compiled with GCC target_clones so they also use AVX2/AVX-512 at runtime.
//
// Ownership: no kernel allocates. Thread-safety: all kernels are reentrant.
#ifndef AM_NN_H
#define AM_NN_H

#include <stddef.h>

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
