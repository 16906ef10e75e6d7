// test_gemm.c — am_gemm against a double-precision reference on the exactly
// decoded weights, for every stored type and both paths: the streaming kernel
// (1..AM_GEMM_SMALL_M rows: every row count, so every register-tile shape and
// tail), and the many-row path (a matrix decoded whole, or in panels when it
// does not fit the workspace; rows split or columns split over the pool). With
// and without bias, residual accumulate, fused GELU, odd N and K. Also: the
// workspace limit, and the sgemm benchmark helper. The instruction-set path is
// am_cpu_isa()'s (ctest runs this once per path).
#include <math.h>
#include <stdint.h>

#include "am_common.h"
#include "am_gemm.h"
#include "am_nn.h"
#include "am_test.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float frand(void) { return (float)(rnd() % 2000001) / 1e6f - 1.0f; }

// Random bytes of a (N, K) matrix of `type` with sane scales (values about +-1).
static uint8_t *random_matrix(int type, int N, int K) {
    const size_t row = am_type_bytes(type, (size_t)K), n = (size_t)N * row;
    uint8_t *w = am_alloc(n);
    if (type == AM_TYPE_F32) {
        for (size_t i = 0; i < (size_t)N * K; i++) ((float *)w)[i] = frand();
        return w;
    }
    if (type == AM_TYPE_F16) {
        for (size_t i = 0; i < (size_t)N * K; i++) ((uint16_t *)w)[i] = am_fp32_to_fp16(frand());
        return w;
    }
    const int bb = am_type_block_bytes(type);
    for (size_t b = 0; b < n / bb; b++) {
        uint8_t *p = w + b * bb;
        for (int i = 0; i < bb; i++) p[i] = (uint8_t)rnd();
        const uint16_t d = am_fp32_to_fp16(0.01f + 0.1f * (frand() + 1)), m = am_fp32_to_fp16(-0.5f * (frand() + 1));
        memcpy(p, &d, 2);
        if (type == AM_TYPE_Q4_1 || type == AM_TYPE_Q5_1) memcpy(p + 2, &m, 2);
    }
    return w;
}

static const int k_types[] = {AM_TYPE_F32, AM_TYPE_F16, AM_TYPE_Q8_0, AM_TYPE_Q4_0, AM_TYPE_Q4_1, AM_TYPE_Q5_0,
                              AM_TYPE_Q5_1};

// One product checked against the reference; returns the worst relative error.
static double check_one(const am_wmat *W, const float *Wf, int M, const float *b, int flags, am_gemm_ws *ws) {
    const int N = W->rows, K = W->cols;
    float *x = malloc((size_t)M * K * 4), *y = malloc((size_t)M * N * 4), *y0 = malloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = frand();
    for (size_t i = 0; i < (size_t)M * N; i++) y0[i] = y[i] = frand();
    CHECK(am_gemm(y, x, W, b, M, flags, ws) == 0);
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                s += (double)x[(size_t)m * K + k] * Wf[(size_t)n * K + k];
                mag += fabs((double)x[(size_t)m * K + k] * Wf[(size_t)n * K + k]);
            }
            if (b) s += b[n];
            if (flags & AM_GEMM_ACC) s += y0[(size_t)m * N + n];
            if (flags & AM_GEMM_GELU) { // the GELU kernel itself is tested in test_nn
                float f = (float)s;
                am_nn_gelu(&f, 1);
                s = f;
            }
            const double err = fabs(y[(size_t)m * N + n] - s) / (mag + 1.0);
            if (err > worst) worst = err;
        }
    free(x);
    free(y);
    free(y0);
    return worst;
}

static void test_type(int type) {
    const int N = 173, K = type == AM_TYPE_F32 || type == AM_TYPE_F16 ? 100 : 96; // odd N; K % 16 != 0 for f32/f16
    uint8_t *raw = random_matrix(type, N, K);
    const am_wmat W = {raw, type, N, K, am_type_bytes(type, (size_t)K)};
    float *Wf = malloc((size_t)N * K * 4), *b = malloc((size_t)N * 4);
    am_wmat_dequant(Wf, &W, 0, N);
    for (int n = 0; n < N; n++) b[n] = frand();
    am_gemm_ws *whole = am_gemm_ws_create(K, (size_t)N * K), *panels = am_gemm_ws_create(K, 0);
    CHECK(whole && panels);
    double worst = 0;
    const int many[] = {17, 33, 130, 300};
    for (int M = 1; M <= AM_GEMM_SMALL_M; M++) // every streaming tile shape
        for (int f = 0; f < 3; f++) {
            const int flags = f == 1 ? AM_GEMM_ACC : f == 2 ? AM_GEMM_GELU : 0;
            worst = fmax(worst, check_one(&W, Wf, M, (M % 2) ? b : NULL, flags, panels));
        }
    for (size_t i = 0; i < AM_ARRAY_LEN(many); i++)
        for (int f = 0; f < 3; f++) {
            const int flags = f == 1 ? AM_GEMM_ACC : f == 2 ? AM_GEMM_GELU : 0;
            worst = fmax(worst, check_one(&W, Wf, many[i], b, flags, whole));
            worst = fmax(worst, check_one(&W, Wf, many[i], i % 2 ? NULL : b, flags, panels));
        }
    CHECKF(worst < 1e-6, "%s: worst relative error %.3g", am_type_name(type), worst);
    printf("  %-5s (%d x %d): worst error %.2e of sum |x w| over M = 1..%d, 17..300\n", am_type_name(type), N, K,
           worst, AM_GEMM_SMALL_M);
    am_gemm_ws_free(whole);
    am_gemm_ws_free(panels);
    am_free(raw);
    free(Wf);
    free(b);
}

// A product large enough for the pool: rows split (M >= 128 per thread) and columns split.
static void test_large(void) {
    const int N = 1024, K = 384;
    uint8_t *raw = random_matrix(AM_TYPE_F16, N, K);
    const am_wmat W = {raw, AM_TYPE_F16, N, K, am_type_bytes(AM_TYPE_F16, K)};
    float *Wf = malloc((size_t)N * K * 4);
    am_wmat_dequant(Wf, &W, 0, N);
    am_gemm_ws *ws = am_gemm_ws_create(K, (size_t)N * K);
    const double e1 = check_one(&W, Wf, 600, NULL, 0, ws), e2 = check_one(&W, Wf, 12, NULL, AM_GEMM_ACC, ws);
    CHECKF(e1 < 1e-6 && e2 < 1e-6, "large products: %.3g %.3g", e1, e2);
    // the workspace bounds K
    float x[8], y[8];
    am_gemm_ws *small = am_gemm_ws_create(64, 0);
    CHECK(am_gemm(y, x, &W, NULL, 1, 0, small) == AM_EINVAL && am_last_error()[0]);
    CHECK(am_gemm(y, x, &W, NULL, 0, 0, small) == AM_EINVAL);
    CHECK(am_gemm_ws_create(0, 0) == NULL);
    CHECK(am_gemm_ws_bytes(ws) >= (size_t)N * K * 4);
    CHECK(am_gemm_sgemm_gflops(64, 64, 64, 1) > 0);
    am_gemm_ws_free(small);
    am_gemm_ws_free(ws);
    am_free(raw);
    free(Wf);
}

int main(void) {
    printf("instruction set: %s, %d threads\n", am_isa_name(am_cpu_isa()), am_nn_threads());
    for (size_t i = 0; i < AM_ARRAY_LEN(k_types); i++) test_type(k_types[i]);
    test_large();
    return am_test_finish("test_gemm", 1);
}
