// am_nn.c — the thread pool and the element-wise kernels (float32).
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
    return t * am_nn_exp_nonpos(-z * z + p);
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
        r[j] = am_nn_exp_nonpos(r[j] - mx);
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
    for (int i = 0; i < n; i++) s += am_nn_exp_nonpos(x[i] - mx);
    return mx + log(s);
}
