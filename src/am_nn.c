// am_nn.c — dense, element-wise and attention kernels (float32, exact path).
#include "am_nn.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "am_common.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define AM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AM_CLONES
#endif

// ---------------------------------------------------------------- threads
// One process-wide pool of worker threads runs the parallel loops; OpenBLAS
// runs single-threaded inside them (a GEMM is split over output columns), so
// one set of threads owns the cores and BLAS threads never compete with ours.
// Idle workers block on a condition variable (no spinning: spinning workers
// cost more than they save on a small, shared machine).
typedef struct {
    pthread_mutex_t lock;     // guards the fields below
    pthread_cond_t work, done;
    pthread_mutex_t busy;     // held by the thread running a parallel loop
    int n_threads;            // workers + the calling thread
    unsigned long generation; // bumped for every parallel loop
    am_task_fn fn;
    void *ctx;
    int n_tasks;
    int next;                 // next task index to hand out
    int running;              // workers still inside the current loop
    int sleepers;             // workers blocked on `work`
    int caller_sleeping;      // the caller is blocked on `done`
} pool;

static pool g_pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
                      .work = PTHREAD_COND_INITIALIZER,
                      .done = PTHREAD_COND_INITIALIZER,
                      .busy = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static _Thread_local int tl_in_task; // nested parallel loops run inline
static _Thread_local int tl_index;   // 0 for callers, 1.. for pool workers

// Take and run tasks of the current loop until none are left. Called with lock held.
static void run_tasks(pool *p) {
    while (p->next < p->n_tasks) {
        const int i = p->next++;
        pthread_mutex_unlock(&p->lock);
        p->fn(p->ctx, i);
        pthread_mutex_lock(&p->lock);
    }
}

typedef struct {
    pool *p;
    int index;
} worker_arg;

// Iterations a thread spins (reading without the lock) before it blocks: a
// decoder step runs dozens of short parallel loops back to back, and waking
// a blocked thread costs more than the loop itself (~50 us of spinning).
#define SPIN_ITERS 4000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    pool *p = wa.p;
    tl_index = wa.index;
    tl_in_task = 1;
    pthread_mutex_lock(&p->lock);
    unsigned long seen = 0; // workers start before the first loop (generation 1)
    for (;;) {
        if (p->generation == seen) {
            pthread_mutex_unlock(&p->lock);
            for (int i = 0; i < SPIN_ITERS && __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) == seen; i++)
                cpu_relax();
            pthread_mutex_lock(&p->lock);
            while (p->generation == seen) {
                p->sleepers++;
                pthread_cond_wait(&p->work, &p->lock);
                p->sleepers--;
            }
        }
        seen = p->generation;
        run_tasks(p);
        __atomic_store_n(&p->running, p->running - 1, __ATOMIC_RELEASE);
        if (p->running == 0 && p->caller_sleeping) pthread_cond_signal(&p->done);
    }
    return NULL;
}

static void pool_init(void) {
    openblas_set_num_threads(1);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("AMANUENSIS_THREADS");
    if (env && atoi(env) > 0) n = atoi(env);
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    g_pool.n_threads = 1;
    for (long i = 1; i < n; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            *wa = (worker_arg){&g_pool, g_pool.n_threads};
            if (pthread_create(&t, &attr, worker, wa) == 0) g_pool.n_threads++;
            else free(wa);
        }
        pthread_attr_destroy(&attr);
    }
}

int am_nn_threads(void) {
    pthread_once(&pool_once, pool_init);
    return g_pool.n_threads;
}

int am_nn_thread_index(void) { return tl_index; }

void am_nn_parallel(int n_tasks, am_task_fn fn, void *ctx) {
    pool *p = &g_pool;
    if (n_tasks <= 0) return;
    // inline: a single task, a single thread, a nested loop, or the pool busy
    // with another caller's loop
    if (n_tasks == 1 || am_nn_threads() == 1 || tl_in_task || pthread_mutex_trylock(&p->busy) != 0) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    p->next = 0;
    __atomic_store_n(&p->running, p->n_threads - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&p->generation, p->generation + 1, __ATOMIC_RELEASE);
    if (p->sleepers) pthread_cond_broadcast(&p->work);
    tl_in_task = 1;
    run_tasks(p);
    tl_in_task = 0;
    if (p->running > 0) {
        pthread_mutex_unlock(&p->lock);
        for (int i = 0; i < SPIN_ITERS && __atomic_load_n(&p->running, __ATOMIC_ACQUIRE) > 0; i++) cpu_relax();
        pthread_mutex_lock(&p->lock);
        while (p->running > 0) {
            p->caller_sleeping = 1;
            pthread_cond_wait(&p->done, &p->lock);
            p->caller_sleeping = 0;
        }
    }
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->busy);
}

// ---------------------------------------------------------------- dense
// Up to this many rows a GEMM uses gemm_small instead of the BLAS.
#ifndef SMALL_M
#define SMALL_M 8
#endif
// Below this many multiply-adds a GEMM runs on one thread.
#define PARALLEL_MACS (1 << 18)

// Few rows: each row of W is read once from memory and used for up to four
// rows of x while it sits in L1 (the GEMM library would first repack all of
// W, which for a handful of rows costs more than the product itself).
// y[m, n0:n1] = x[m] . W[n] (+ y when accumulate).
AM_CLONES
static void gemm_small(float *restrict y, const float *restrict x, const float *restrict W, int M, int N, int K,
                       int n0, int n1, int accumulate) {
    for (int m0 = 0; m0 < M; m0 += 4) {
        const int mt = AM_MIN(4, M - m0);
        const float *x0 = x + (size_t)m0 * K;
        const float *x1 = x0 + (mt > 1 ? K : 0), *x2 = x0 + (mt > 2 ? 2 * K : 0), *x3 = x0 + (mt > 3 ? 3 * K : 0);
        for (int n = n0; n < n1; n++) {
            const float *w = W + (size_t)n * K;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
            for (int k = 0; k < K; k++) {
                const float wk = w[k];
                s0 += x0[k] * wk;
                s1 += x1[k] * wk;
                s2 += x2[k] * wk;
                s3 += x3[k] * wk;
            }
            const float s[4] = {s0, s1, s2, s3};
            for (int t = 0; t < mt; t++) {
                float *yo = y + (size_t)(m0 + t) * N + n;
                *yo = accumulate ? *yo + s[t] : s[t];
            }
        }
    }
}

static void gemm_cols(float *restrict y, const float *restrict x, const float *restrict W, const float *restrict b,
                      int M, int N, int K, int n0, int n1, float beta) {
    if (b)
        for (int i = 0; i < M; i++) memcpy(y + (size_t)i * N + n0, b + n0, (size_t)(n1 - n0) * sizeof *y);
    if (M > 1 && M <= SMALL_M) {
        gemm_small(y, x, W, M, N, K, n0, n1, b != NULL || beta != 0.0f);
        return;
    }
    if (M == 1) { // one row: a matrix-vector product reads W once (sgemm would first repack all of W)
        // y[n0:n1] (n1-n0,) = W[n0:n1] (n1-n0, K) @ x (K,) [+ y]
        cblas_sgemv(CblasRowMajor, CblasNoTrans, n1 - n0, K, 1.0f, W + (size_t)n0 * K, K, x, 1, b ? 1.0f : beta,
                    y + n0, 1);
        return;
    }
    // y[:, n0:n1] (M, n1-n0) = x (M,K) @ W[n0:n1]^T (K, n1-n0) [+ y]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, n1 - n0, K, 1.0f, x, K, W + (size_t)n0 * K, K,
                b ? 1.0f : beta, y + n0, N);
}

typedef struct {
    float *y;
    const float *x, *W, *b;
    int M, N, K, per;
    float beta;
} gemm_task;

static void gemm_block(void *ctx, int t) {
    const gemm_task *g = ctx;
    const int n0 = AM_MIN(g->N, t * g->per), n1 = AM_MIN(g->N, n0 + g->per);
    if (n1 > n0) gemm_cols(g->y, g->x, g->W, g->b, g->M, g->N, g->K, n0, n1, g->beta);
}

static void gemm(float *restrict y, const float *restrict x, const float *restrict W, const float *restrict b, int M,
                 int N, int K, float beta) {
    const int T = am_nn_threads();
    if (T <= 1 || (double)M * N * K < PARALLEL_MACS || N < 32) {
        gemm_cols(y, x, W, b, M, N, K, 0, N, beta);
        return;
    }
    // split the output columns into T blocks (multiples of 16)
    gemm_task g = {y, x, W, b, M, N, K, ((N + T - 1) / T + 15) & ~15, beta};
    am_nn_parallel(T, gemm_block, &g);
}

void am_nn_linear(float *restrict y, const float *restrict x, const float *restrict W, const float *restrict b,
                  int M, int N, int K) {
    gemm(y, x, W, b, M, N, K, 0.0f);
}

void am_nn_linear_add(float *restrict y, const float *restrict x, const float *restrict W,
                      const float *restrict b, int M, int N, int K) {
    if (b) {
        for (int i = 0; i < M; i++) am_nn_add(y + (size_t)i * N, b, (size_t)N);
    }
    gemm(y, x, W, NULL, M, N, K, 1.0f);
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
// Rows of work below which a loop stays on one thread.
#define PARALLEL_ELEMS (1 << 15)

AM_CLONES
static void layernorm_row(float *y, const float *x, const float *restrict w, const float *restrict b, int d) {
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < d; j++) sum += x[j];
    const double mean = sum / d;
    double var = 0;
#pragma omp simd reduction(+ : var)
    for (int j = 0; j < d; j++) {
        const double t = x[j] - mean;
        var += t * t;
    }
    const float rstd = (float)(1.0 / sqrt(var / d + 1e-5));
    const float fmean = (float)mean;
    for (int j = 0; j < d; j++) y[j] = (x[j] - fmean) * rstd * w[j] + b[j];
}

// Split `n` items into chunks of at least `min_chunk` over the threads.
typedef struct {
    void (*fn)(void *ctx, size_t i0, size_t i1);
    void *ctx;
    size_t n, chunk;
} range_task;

static void range_block(void *ctx, int t) {
    const range_task *r = ctx;
    const size_t i0 = (size_t)t * r->chunk, i1 = AM_MIN(r->n, i0 + r->chunk);
    if (i0 < i1) r->fn(r->ctx, i0, i1);
}

static void parallel_range(size_t n, size_t min_chunk, void (*fn)(void *, size_t, size_t), void *ctx) {
    const size_t T = (size_t)am_nn_threads();
    size_t chunk = (n + T - 1) / T;
    if (chunk < min_chunk) chunk = min_chunk;
    if (chunk >= n) {
        fn(ctx, 0, n);
        return;
    }
    range_task r = {fn, ctx, n, chunk};
    am_nn_parallel((int)((n + chunk - 1) / chunk), range_block, &r);
}

typedef struct {
    float *y;
    const float *x, *w, *b;
    int d;
} ln_task;

static void ln_rows(void *ctx, size_t i0, size_t i1) {
    const ln_task *t = ctx;
    for (size_t i = i0; i < i1; i++) layernorm_row(t->y + i * t->d, t->x + i * t->d, t->w, t->b, t->d);
}

void am_nn_layernorm(float *y, const float *x, const float *restrict w, const float *restrict b, int M, int d) {
    ln_task t = {y, x, w, b, d};
    parallel_range((size_t)M, (size_t)(PARALLEL_ELEMS / d + 1), ln_rows, &t);
}

// exp(x) for x <= 0 (softmax arguments), ~1 ulp: x = n*ln2 + r, |r| <= ln2/2,
// e^r by Cephes' expf polynomial, 2^n from the exponent bits; 0 below -87.3.
// Written branch-free so the loops calling it vectorize.
static inline float exp_nonpos(float x) {
    union {
        float f;
        int32_t i;
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
    scale.i = (t.i - 0x4b400000 + 127) << 23; // 2^n, n = the integer in t
    return x < -87.0f ? 0.0f : p * scale.f;
}

// erfc(z) for z >= 0 with relative error < 1.2e-7 (Numerical Recipes'
// Chebyshev fit, erfcc), branch-free so a loop over it vectorizes.
static inline float erfc_nonneg(float z) {
    const float t = 1.0f / (1.0f + 0.5f * z);
    const float p =
        -1.26551223f +
        t * (1.00002368f +
             t * (0.37409196f +
                  t * (0.09678418f +
                       t * (-0.18628806f +
                            t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
    return t * exp_nonpos(-z * z + p);
}

// gelu(x) = 0.5 x (1 + erf(x/sqrt2)) = 0.5 x erfc(-x/sqrt2): through erfc the
// negative side keeps full relative precision.
AM_CLONES
static void gelu_range(void *ctx, size_t i0, size_t i1) {
    float *x = ctx;
    const float inv_sqrt2 = 0.70710678118654752440f;
    for (size_t i = i0; i < i1; i++) {
        const float y = x[i] * inv_sqrt2;
        const float e = erfc_nonneg(y < 0 ? -y : y);
        x[i] = 0.5f * x[i] * (y < 0 ? e : 2.0f - e);
    }
}

void am_nn_gelu(float *x, size_t n) { parallel_range(n, PARALLEL_ELEMS, gelu_range, x); }

AM_CLONES
static void softmax_row(float *r, int N) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < N; j++) mx = r[j] > mx ? r[j] : mx;
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < N; j++) {
        r[j] = exp_nonpos(r[j] - mx);
        sum += r[j];
    }
    const float inv = (float)(1.0 / sum);
    for (int j = 0; j < N; j++) r[j] *= inv;
}

typedef struct {
    float *x;
    int N;
} softmax_task;

static void softmax_range(void *ctx, size_t i0, size_t i1) {
    const softmax_task *t = ctx;
    for (size_t i = i0; i < i1; i++) softmax_row(t->x + i * t->N, t->N);
}

void am_nn_softmax_rows(float *x, int M, int N) {
    softmax_task t = {x, N};
    parallel_range((size_t)M, (size_t)(PARALLEL_ELEMS / N + 1), softmax_range, &t);
}

AM_CLONES
void am_nn_add(float *restrict y, const float *restrict x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

AM_CLONES
double am_nn_logsumexp(const float *x, int n) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) return -INFINITY;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += exp_nonpos(x[i] - mx);
    return mx + log(s);
}

// ---------------------------------------------------------------- attention
void am_nn_attention(float *restrict out, int ld_o, const float *restrict q, int ld_q, const float *restrict k,
                     const float *restrict v, int ld_kv, int nq, int nk, int hd, int causal_offset,
                     float *restrict scores) {
    // (q*s)@(k*s)^T == s^2 * q@k^T; s^2 = 1/sqrt(hd)
    const float scale = 1.0f / sqrtf((float)hd);
    const int use_blas = nq >= 8 && (long)nq * nk * hd >= 1 << 16;
    if (use_blas) {
        // scores (nq,nk) = q (nq,hd) @ k (nk,hd)^T * scale
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale, q, ld_q, k, ld_kv, 0.0f, scores, nk);
    } else { // few queries: matrix-vector products, no packing
        for (int i = 0; i < nq; i++) // scores[i] (nk,) = k (nk,hd) @ q[i] (hd,) * scale
            cblas_sgemv(CblasRowMajor, CblasNoTrans, nk, hd, scale, k, ld_kv, q + (size_t)i * ld_q, 1, 0.0f,
                        scores + (size_t)i * nk, 1);
    }
    if (causal_offset >= 0) {
        for (int i = 0; i < nq; i++)
            for (int j = causal_offset + i + 1; j < nk; j++) scores[(size_t)i * nk + j] = -INFINITY;
    }
    am_nn_softmax_rows(scores, nq, nk);
    if (use_blas) {
        // out (nq,hd) = scores (nq,nk) @ v (nk,hd)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, scores, nk, v, ld_kv, 0.0f, out,
                    ld_o);
    } else {
        for (int i = 0; i < nq; i++) // out[i] (hd,) = v (nk,hd)^T @ scores[i] (nk,)
            cblas_sgemv(CblasRowMajor, CblasTrans, nk, hd, 1.0f, v, ld_kv, scores + (size_t)i * nk, 1, 0.0f,
                        out + (size_t)i * ld_o, 1);
    }
}
