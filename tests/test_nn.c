// test_nn.c — the element-wise kernels against naive double-precision
// references (LayerNorm, GELU, softmax with masked entries, logsumexp) and the
// thread pool. Products: test_gemm.c; attention: test_attn.c.
#include <math.h>

#include "am_common.h"
#include "am_nn.h"
#include "am_test.h"

static unsigned rng = 12345;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) / 16777216.0 * 2.0 - 1.0);
}
static void fill(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = frand();
}

static void test_elementwise(void) {
    enum { M = 50, D = 384, G = 100000 };
    float *x = malloc(M * D * 4), *y = malloc(M * D * 4), *w = malloc(D * 4), *b = malloc(D * 4);
    fill(x, M * D);
    fill(w, D);
    fill(b, D);
    for (int i = 0; i < M * D; i++) x[i] = x[i] * 3 + 0.5f;
    am_nn_layernorm(y, x, w, b, M, D);
    double err = 0;
    for (int i = 0; i < M; i++) {
        double mean = 0, var = 0;
        for (int j = 0; j < D; j++) mean += x[i * D + j];
        mean /= D;
        for (int j = 0; j < D; j++) var += (x[i * D + j] - mean) * (x[i * D + j] - mean);
        var /= D;
        for (int j = 0; j < D; j++) {
            const double r = (x[i * D + j] - mean) / sqrt(var + 1e-5) * w[j] + b[j];
            err = fmax(err, fabs(y[i * D + j] - r));
        }
    }
    CHECKF(err < 1e-5, "layernorm err %.2e", err);
    // GELU, exact erf form: relative error against double precision over a wide range
    float *g = malloc(G * 4);
    for (int i = 0; i < G; i++) g[i] = -12.0f + 24.0f * i / G;
    float *g0 = malloc(G * 4);
    memcpy(g0, g, G * 4);
    am_nn_gelu(g, G);
    double rel = 0, abs_err = 0;
    for (int i = 0; i < G; i++) {
        // 0.5 x (1 + erf(x/sqrt2)) written with erfc, which stays accurate for x << 0
        const double r = 0.5 * g0[i] * erfc(-g0[i] / sqrt(2.0));
        if (fabs(r) > 1e-6) rel = fmax(rel, fabs(g[i] - r) / fabs(r)); // float exponent rounding below that
        abs_err = fmax(abs_err, fabs(g[i] - 0.5 * g0[i] * (1 + erf(g0[i] / sqrt(2.0)))));
    }
    CHECKF(rel < 5e-6, "gelu max relative error %.2e", rel);
    CHECKF(abs_err < 1e-6, "gelu max absolute error against the erf form %.2e", abs_err);
    // softmax rows with masked (-inf) entries, and logsumexp
    float s[3][6] = {{1, 2, 3, 4, 5, 6}, {-INFINITY, 0, -INFINITY, 10, -90, -INFINITY}, {-50, -50, -50, -50, -50, -50}};
    float s0[3][6];
    memcpy(s0, s, sizeof s);
    am_nn_softmax_rows(&s[0][0], 3, 6);
    for (int i = 0; i < 3; i++) {
        double z = 0;
        for (int j = 0; j < 6; j++) z += isinf(s0[i][j]) ? 0 : exp(s0[i][j]);
        for (int j = 0; j < 6; j++) {
            const double r = isinf(s0[i][j]) ? 0 : exp(s0[i][j]) / z;
            CHECKF(fabs(s[i][j] - r) <= 1e-6 * fmax(r, 1e-30) + 1e-30, "softmax[%d][%d] %.9g vs %.9g", i, j, s[i][j], r);
        }
        const double lse = am_nn_logsumexp(s0[i], 6);
        CHECKF(fabs(lse - log(z)) < 1e-6 * fmax(1, fabs(log(z))), "logsumexp row %d %.9g vs %.9g", i, lse, log(z));
    }
    const float all_masked[2] = {-INFINITY, -INFINITY};
    CHECK(am_nn_logsumexp(all_masked, 2) == -INFINITY);
    free(x);
    free(y);
    free(w);
    free(b);
    free(g);
    free(g0);
}

// the pool: every task runs exactly once; nested loops run inline
typedef struct {
    int hits[1000];
    int bad_index;
    int nested_total;
} pool_ctx;

static void inner(void *ctx, int i) { __atomic_add_fetch(&((pool_ctx *)ctx)->nested_total, i, __ATOMIC_RELAXED); }

static void outer(void *ctx, int i) {
    pool_ctx *c = ctx;
    __atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
    const int t = am_nn_thread_index();
    if (t < 0 || t >= am_nn_threads()) c->bad_index = 1;
    if (i % 100 == 0) am_nn_parallel(10, inner, c);
}

static void test_pool(void) {
    CHECK(am_nn_threads() >= 1);
    for (int round = 0; round < 50; round++) {
        pool_ctx c;
        memset(&c, 0, sizeof c);
        am_nn_parallel(1000, outer, &c);
        int once = 1;
        for (int i = 0; i < 1000; i++) once &= c.hits[i] == 1;
        CHECK(once && !c.bad_index && c.nested_total == 10 * 45);
    }
    am_nn_parallel(0, outer, NULL); // nothing to do
}

int main(void) {
    test_elementwise();
    test_pool();
    printf("threads: %d\n", am_nn_threads());
    return am_test_finish("test_nn", 1);
}
