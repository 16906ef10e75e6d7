// am_nn.c — dense, element-wise and attention kernels (float32, exact path).
#include "am_nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "am_common.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define AM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AM_CLONES
#endif

// ---------------------------------------------------------------- dense
void am_nn_linear(float *restrict y, const float *restrict x, const float *restrict W, const float *restrict b,
                  int M, int N, int K) {
    if (b) {
        for (int i = 0; i < M; i++) memcpy(y + (size_t)i * N, b, (size_t)N * sizeof *y);
    }
    // y (M,N) = x (M,K) @ W^T (K,N) [+ y]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, W, K, b ? 1.0f : 0.0f, y, N);
}

void am_nn_linear_add(float *restrict y, const float *restrict x, const float *restrict W,
                      const float *restrict b, int M, int N, int K) {
    if (b) {
        for (int i = 0; i < M; i++) am_nn_add(y + (size_t)i * N, b, (size_t)N);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, W, K, 1.0f, y, N);
}

double am_nn_sgemm_gflops(int M, int N, int K, int reps) {
    float *a = am_alloc((size_t)M * K * sizeof(float));
    float *w = am_alloc((size_t)N * K * sizeof(float));
    float *c = am_alloc((size_t)M * N * sizeof(float));
    double best = 0;
    if (a && w && c) {
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)((i * 7) % 13) * 0.01f;
        for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (float)((i * 5) % 11) * 0.01f;
        am_nn_linear(c, a, w, NULL, M, N, K); // warm-up
        for (int r = 0; r < reps; r++) {
            double t0 = am_time_s();
            am_nn_linear(c, a, w, NULL, M, N, K);
            double dt = am_time_s() - t0;
            double g = 2.0 * M * N * K / dt * 1e-9;
            if (g > best) best = g;
        }
    }
    am_free(a);
    am_free(w);
    am_free(c);
    return best;
}

// ---------------------------------------------------------------- element-wise
AM_CLONES
void am_nn_layernorm(float *y, const float *x, const float *restrict w, const float *restrict b, int M, int d) {
    for (int i = 0; i < M; i++) {
        const float *xi = x + (size_t)i * d;
        float *yi = y + (size_t)i * d;
        double sum = 0;
        for (int j = 0; j < d; j++) sum += xi[j];
        const double mean = sum / d;
        double var = 0;
        for (int j = 0; j < d; j++) {
            const double t = xi[j] - mean;
            var += t * t;
        }
        const float rstd = (float)(1.0 / sqrt(var / d + 1e-5));
        const float fmean = (float)mean;
        for (int j = 0; j < d; j++) yi[j] = (xi[j] - fmean) * rstd * w[j] + b[j];
    }
}

void am_nn_gelu(float *x, size_t n) {
    const float inv_sqrt2 = 0.70710678118654752440f;
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * inv_sqrt2));
}

AM_CLONES
void am_nn_softmax_rows(float *x, int M, int N) {
    for (int i = 0; i < M; i++) {
        float *r = x + (size_t)i * N;
        float mx = -INFINITY;
        for (int j = 0; j < N; j++) mx = r[j] > mx ? r[j] : mx;
        double sum = 0;
        for (int j = 0; j < N; j++) {
            r[j] = expf(r[j] - mx);
            sum += r[j];
        }
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < N; j++) r[j] *= inv;
    }
}

AM_CLONES
void am_nn_add(float *restrict y, const float *restrict x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

// ---------------------------------------------------------------- attention
AM_CLONES
static float dot(const float *restrict a, const float *restrict b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

AM_CLONES
static void axpy(float *restrict y, float a, const float *restrict x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

void am_nn_attention(float *restrict out, int ld_o, const float *restrict q, int ld_q, const float *restrict k,
                     const float *restrict v, int ld_kv, int nq, int nk, int hd, int causal_offset,
                     float *restrict scores) {
    // (q*s)@(k*s)^T == s^2 * q@k^T; s^2 = 1/sqrt(hd)
    const float scale = 1.0f / sqrtf((float)hd);
    if (nq * (long)nk * hd >= 1 << 16) {
        // scores (nq,nk) = q (nq,hd) @ k (nk,hd)^T * scale
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale, q, ld_q, k, ld_kv, 0.0f, scores, nk);
    } else {
        for (int i = 0; i < nq; i++)
            for (int j = 0; j < nk; j++)
                scores[(size_t)i * nk + j] = scale * dot(q + (size_t)i * ld_q, k + (size_t)j * ld_kv, hd);
    }
    if (causal_offset >= 0) {
        for (int i = 0; i < nq; i++)
            for (int j = causal_offset + i + 1; j < nk; j++) scores[(size_t)i * nk + j] = -INFINITY;
    }
    am_nn_softmax_rows(scores, nq, nk);
    if (nq * (long)nk * hd >= 1 << 16) {
        // out (nq,hd) = scores (nq,nk) @ v (nk,hd)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, scores, nk, v, ld_kv, 0.0f, out,
                    ld_o);
    } else {
        for (int i = 0; i < nq; i++) {
            float *o = out + (size_t)i * ld_o;
            memset(o, 0, (size_t)hd * sizeof *o);
            const float *w = scores + (size_t)i * nk;
            for (int j = 0; j < nk; j++) axpy(o, w[j], v + (size_t)j * ld_kv, hd);
        }
    }
}
