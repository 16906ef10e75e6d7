// am_gemm.c — y = x W^T for weights in any stored type: streaming kernels for
// few rows, decoded panels + OpenBLAS for many.
#include "am_gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "am_common.h"
#include "am_nn.h"

#ifdef AM_X86
#include <immintrin.h>
#endif

// Rows of W decoded at a time by a many-row product that cannot decode W whole.
#define PANEL_ROWS 128
// Below this many multiply-adds a product runs on the calling thread.
#define PARALLEL_MACS (1 << 16)
#ifndef PREFETCH_GROUPS
#define PREFETCH_GROUPS 2 // groups of 4 rows the streaming path prefetches ahead
#endif
// Column tasks per thread on the streaming path (dynamic balance).
#define TASKS_PER_THREAD 4

struct am_gemm_ws {
    int max_k, n_threads;
    size_t whole_floats; // capacity of `whole`
    size_t panel_floats; // per thread: PANEL_ROWS * max_k
    float *whole;        // (whole_floats,)  a whole decoded W
    float *panel;        // (n_threads, panel_floats)  per-thread decoded rows
};

am_gemm_ws *am_gemm_ws_create(int max_k, size_t whole_floats) {
    if (max_k < 1) {
        am_set_error(AM_EINVAL, "invalid gemm workspace size");
        return NULL;
    }
    am_gemm_ws *ws = calloc(1, sizeof *ws);
    if (!ws) goto oom;
    ws->max_k = max_k;
    ws->n_threads = am_nn_threads();
    ws->whole_floats = whole_floats;
    ws->panel_floats = (size_t)PANEL_ROWS * (size_t)max_k;
    if (!(ws->panel = am_alloc((size_t)ws->n_threads * ws->panel_floats * sizeof(float)))) goto oom;
    if (whole_floats && !(ws->whole = am_alloc(whole_floats * sizeof(float)))) goto oom;
    return ws;
oom:
    am_set_error(AM_ENOMEM, "out of memory for a gemm workspace");
    am_gemm_ws_free(ws);
    return NULL;
}

void am_gemm_ws_free(am_gemm_ws *ws) {
    if (!ws) return;
    am_free(ws->whole);
    am_free(ws->panel);
    free(ws);
}

size_t am_gemm_ws_bytes(const am_gemm_ws *ws) {
    return ((size_t)ws->n_threads * ws->panel_floats + ws->whole_floats) * sizeof(float);
}

// ---------------------------------------------------------------- epilogue
// y (mr, nr) at stride ldy from acc (mr, 4): y = acc + b, or (y + b) + acc with AM_GEMM_ACC.
static void store_tile(float *restrict y, int ldy, const float *restrict acc, int mr, int nr,
                       const float *restrict b, int flags) {
    for (int m = 0; m < mr; m++) {
        float *yr = y + (size_t)m * ldy;
        for (int j = 0; j < nr; j++) {
            const float bj = b ? b[j] : 0.0f;
            const float v = acc[m * 4 + j];
            yr[j] = (flags & AM_GEMM_ACC) ? (b ? (yr[j] + bj) + v : yr[j] + v) : (b ? v + bj : v);
        }
    }
}

// ---------------------------------------------------------------- streaming kernels
// acc (mr, 4) = x (mr, K) @ w[0..4) (K each)^T, rows of x `ldx` apart; the
// rows of w are float32, or IEEE half (f16 = 1) converted as they are loaded.
// (w rows past the matrix edge repeat a valid row; their sums are not stored.)
typedef void (*tile_fn)(float *restrict acc, const float *restrict x, int ldx, int mr, const void *const *w, int K,
                        int f16);

static void tile_portable(float *restrict acc, const float *restrict x, int ldx, int mr, const void *const *w, int K,
                          int f16) {
    for (int m = 0; m < mr; m++) {
        const float *xr = x + (size_t)m * ldx;
        for (int j = 0; j < 4; j++) {
            float s = 0;
            for (int k = 0; k < K; k++)
                s += xr[k] * (f16 ? am_fp16_to_fp32(((const uint16_t *)w[j])[k]) : ((const float *)w[j])[k]);
            acc[m * 4 + j] = s;
        }
    }
}

#ifdef AM_X86
// ---- AVX2: tiles of up to 2 rows of x, 8 lanes
// out[0..8) = horizontal sums of v[0..8), in order.
AM_TARGET_AVX2 static inline __m256 reduce8_avx2(const __m256 *v) {
    const __m256 t0 = _mm256_hadd_ps(v[0], v[1]), t1 = _mm256_hadd_ps(v[2], v[3]);
    const __m256 t2 = _mm256_hadd_ps(v[4], v[5]), t3 = _mm256_hadd_ps(v[6], v[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

AM_TARGET_AVX2 AM_INLINE __m256 wload_avx2(const void *row, int k, const int f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)))
               : _mm256_loadu_ps((const float *)row + k);
}

// (f16 rows only when K is a multiple of 8: the tail below reads float32)
AM_TARGET_AVX2 AM_INLINE void tile_avx2_mr(float *restrict acc, const float *restrict x, int ldx, const int mr,
                                          const void *const *w, int K, const int f16) {
    __m256 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        const __m256 w0 = wload_avx2(w[0], k, f16), w1 = wload_avx2(w[1], k, f16);
        const __m256 w2 = wload_avx2(w[2], k, f16), w3 = wload_avx2(w[3], k, f16);
        for (int m = 0; m < mr; m++) {
            const __m256 xv = _mm256_loadu_ps(x + (size_t)m * ldx + k);
            a[m * 4 + 0] = _mm256_fmadd_ps(xv, w0, a[m * 4 + 0]);
            a[m * 4 + 1] = _mm256_fmadd_ps(xv, w1, a[m * 4 + 1]);
            a[m * 4 + 2] = _mm256_fmadd_ps(xv, w2, a[m * 4 + 2]);
            a[m * 4 + 3] = _mm256_fmadd_ps(xv, w3, a[m * 4 + 3]);
        }
    }
    if (k < K) {
        const int r = K - k;
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 wv[4];
        for (int j = 0; j < 4; j++) wv[j] = _mm256_maskload_ps((const float *)w[j] + k, mask);
        for (int m = 0; m < mr; m++) {
            const __m256 xv = _mm256_maskload_ps(x + (size_t)m * ldx + k, mask);
            for (int j = 0; j < 4; j++) a[m * 4 + j] = _mm256_fmadd_ps(xv, wv[j], a[m * 4 + j]);
        }
    }
    _mm256_storeu_ps(acc, reduce8_avx2(a));
}

AM_TARGET_AVX2 static void tile_avx2(float *restrict acc, const float *restrict x, int ldx, int mr, const void *const *w,
                                     int K, int f16) {
    for (int m0 = 0; m0 < mr; m0 += 2) { // the kernel keeps 8 accumulators: 2 rows x 4
        float *a = acc + m0 * 4;
        const float *xm = x + (size_t)m0 * ldx;
        if (mr - m0 >= 2) f16 ? tile_avx2_mr(a, xm, ldx, 2, w, K, 1) : tile_avx2_mr(a, xm, ldx, 2, w, K, 0);
        else f16 ? tile_avx2_mr(a, xm, ldx, 1, w, K, 1) : tile_avx2_mr(a, xm, ldx, 1, w, K, 0);
    }
}

// ---- AVX-512: tiles of up to 4 rows of x, 16 lanes
// out[0..16) = horizontal sums of v[0..16), in order.
AM_TARGET_AVX512 static inline __m512 reduce16_avx512(const __m512 *v) {
    __m512 s[8], t[4];
    for (int i = 0; i < 8; i++) // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]
        s[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++) { // per 128-bit lane: the lane's sums of v[4i..4i+4)
        const __m512d a = _mm512_castps_pd(s[2 * i]), b = _mm512_castps_pd(s[2 * i + 1]);
        t[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    const __m512 a = _mm512_add_ps(_mm512_shuffle_f32x4(t[0], t[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_f32x4(t[0], t[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 b = _mm512_add_ps(_mm512_shuffle_f32x4(t[2], t[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_f32x4(t[2], t[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

AM_TARGET_AVX512 AM_INLINE __m512 wload_avx512(const void *row, int k, const int f16) {
    return f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + k)))
               : _mm512_loadu_ps((const float *)row + k);
}

AM_TARGET_AVX512 AM_INLINE __m512 wload_masked_avx512(const void *row, int k, __mmask16 mask, const int f16) {
    return f16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)row + k))
               : _mm512_maskz_loadu_ps(mask, (const float *)row + k);
}

AM_TARGET_AVX512 AM_INLINE void tile_avx512_mr(float *restrict acc, const float *restrict x, int ldx, const int mr,
                                              const void *const *w, int K, const int f16) {
    __m512 a[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        const __m512 w0 = wload_avx512(w[0], k, f16), w1 = wload_avx512(w[1], k, f16);
        const __m512 w2 = wload_avx512(w[2], k, f16), w3 = wload_avx512(w[3], k, f16);
        for (int m = 0; m < mr; m++) {
            const __m512 xv = _mm512_loadu_ps(x + (size_t)m * ldx + k);
            a[m * 4 + 0] = _mm512_fmadd_ps(xv, w0, a[m * 4 + 0]);
            a[m * 4 + 1] = _mm512_fmadd_ps(xv, w1, a[m * 4 + 1]);
            a[m * 4 + 2] = _mm512_fmadd_ps(xv, w2, a[m * 4 + 2]);
            a[m * 4 + 3] = _mm512_fmadd_ps(xv, w3, a[m * 4 + 3]);
        }
    }
    if (k < K) {
        const __mmask16 mask = (__mmask16)((1u << (K - k)) - 1);
        __m512 wv[4];
        for (int j = 0; j < 4; j++) wv[j] = wload_masked_avx512(w[j], k, mask, f16);
        for (int m = 0; m < mr; m++) {
            const __m512 xv = _mm512_maskz_loadu_ps(mask, x + (size_t)m * ldx + k);
            for (int j = 0; j < 4; j++) a[m * 4 + j] = _mm512_fmadd_ps(xv, wv[j], a[m * 4 + j]);
        }
    }
    _mm512_storeu_ps(acc, reduce16_avx512(a));
}

AM_TARGET_AVX512 static void tile_avx512(float *restrict acc, const float *restrict x, int ldx, int mr,
                                         const void *const *w, int K, int f16) {
#define TILE(MR) (f16 ? tile_avx512_mr(acc, x, ldx, MR, w, K, 1) : tile_avx512_mr(acc, x, ldx, MR, w, K, 0))
    switch (mr) { // constant row counts: the accumulators live in registers
    case 1: TILE(1); break;
    case 2: TILE(2); break;
    case 3: TILE(3); break;
    default: TILE(4); break;
    }
#undef TILE
}
#endif // AM_X86

// The kernel for this CPU and whether it reads f16 rows of K inputs directly
// (else they are decoded into the per-thread buffer first).
static tile_fn pick_tile(int K, int *f16_direct) {
#ifdef AM_X86
    switch (am_cpu_isa()) {
    case AM_ISA_AVX512: *f16_direct = 1; return tile_avx512;
    case AM_ISA_AVX2: *f16_direct = K % 8 == 0; return tile_avx2;
    }
#endif
    *f16_direct = 0;
    return tile_portable;
}

// ---------------------------------------------------------------- streaming path
typedef struct {
    float *y;
    const float *x, *b;
    const am_wmat *W;
    am_gemm_ws *ws;
    tile_fn tile;
    int f16_direct;      // the kernel reads f16 rows as they are
    int M, flags, chunk; // chunk: columns per task, a multiple of 4
} stream_task;

// Columns [n0, n1) of y for every row: W is read once, 4 rows at a time.
static void stream_columns(const stream_task *t, int n0, int n1) {
    const am_wmat *W = t->W;
    const int N = W->rows, K = W->cols, M = t->M;
    float *buf = t->ws->panel + (size_t)am_nn_thread_index() * t->ws->panel_floats; // (4, K)
    float acc[16];
    const size_t group_bytes = 4 * W->row_bytes;
    // Prefetch into L2 a few groups ahead of the multiply (the hardware
    // prefetchers lose track of four interleaved row streams): the first
    // groups now, then one group per group processed.
    const uint8_t *first = W->data + (size_t)n0 * W->row_bytes;
    const size_t ahead = AM_MIN((size_t)(n1 - n0) * W->row_bytes, PREFETCH_GROUPS * group_bytes);
    for (size_t off = 0; off < ahead; off += 64) __builtin_prefetch(first + off, 0, 2);
    for (int n = n0; n < n1; n += 4) {
        const int nr = AM_MIN(4, n1 - n);
        const void *w[4];
        if (n + 4 * PREFETCH_GROUPS < n1)
            for (size_t off = 0; off < group_bytes; off += 64)
                __builtin_prefetch(W->data + (size_t)(n + 4 * PREFETCH_GROUPS) * W->row_bytes + off, 0, 2);
        const int direct = W->type == AM_TYPE_F32 || (W->type == AM_TYPE_F16 && t->f16_direct);
        if (direct) {
            for (int j = 0; j < 4; j++) w[j] = W->data + (size_t)(n + AM_MIN(j, nr - 1)) * W->row_bytes;
        } else {
            am_wmat_dequant(buf, W, n, nr);
            for (int j = 0; j < 4; j++) w[j] = buf + (size_t)AM_MIN(j, nr - 1) * K;
        }
        const int f16 = direct && W->type == AM_TYPE_F16;
        for (int m0 = 0; m0 < M; m0 += 4) {
            const int mr = AM_MIN(4, M - m0);
            t->tile(acc, t->x + (size_t)m0 * K, K, mr, w, K, f16);
            store_tile(t->y + (size_t)m0 * N + n, N, acc, mr, nr, t->b ? t->b + n : NULL, t->flags);
        }
    }
}

// Columns [n0, n1) of y: the rows of x in blocks that stay in cache, W read once per block.
static void stream_range(const stream_task *t, int n0, int n1) {
    stream_task b = *t;
    for (int m0 = 0; m0 < t->M; m0 += AM_GEMM_STREAM_BLOCK) {
        b.M = AM_MIN(AM_GEMM_STREAM_BLOCK, t->M - m0);
        b.x = t->x + (size_t)m0 * t->W->cols;
        b.y = t->y + (size_t)m0 * t->W->rows;
        stream_columns(&b, n0, n1);
    }
    const int N = t->W->rows, M = t->M;
    if (t->flags & AM_GEMM_GELU)
        for (int m = 0; m < M; m++) am_nn_gelu(t->y + (size_t)m * N + n0, (size_t)(n1 - n0));
}

static void stream_block(void *ctx, int i) {
    const stream_task *t = ctx;
    const int n0 = i * t->chunk, n1 = AM_MIN(t->W->rows, n0 + t->chunk);
    if (n0 < n1) stream_range(t, n0, n1);
}

static void gemm_stream(float *y, const float *x, const am_wmat *W, const float *b, int M, int flags, am_gemm_ws *ws) {
    stream_task t = {y, x, b, W, ws, NULL, 0, M, flags, W->rows};
    t.tile = pick_tile(W->cols, &t.f16_direct);
    const int T = am_nn_threads();
    if (T == 1 || (double)M * W->rows * W->cols < PARALLEL_MACS) {
        stream_range(&t, 0, W->rows);
        return;
    }
    const int n_tasks = T * TASKS_PER_THREAD;
    t.chunk = ((W->rows + n_tasks - 1) / n_tasks + 3) & ~3;
    am_nn_parallel((W->rows + t.chunk - 1) / t.chunk, stream_block, &t);
}

// ---------------------------------------------------------------- many-row path
// y (M, n) at stride ldy = x (M, K) @ Wf (n, K)^T + b, Wf float32.
static void sgemm_block(float *y, int ldy, const float *x, const float *Wf, const float *b, int M, int n, int K,
                        int flags) {
    if (b)
        for (int i = 0; i < M; i++) {
            float *yr = y + (size_t)i * ldy;
            if (flags & AM_GEMM_ACC) am_nn_add(yr, b, (size_t)n);
            else memcpy(yr, b, (size_t)n * sizeof *yr);
        }
    const float beta = (b || (flags & AM_GEMM_ACC)) ? 1.0f : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, n, K, 1.0f, x, K, Wf, K, beta, y, ldy);
    if (flags & AM_GEMM_GELU)
        for (int i = 0; i < M; i++) am_nn_gelu(y + (size_t)i * ldy, (size_t)n);
}

typedef struct {
    float *y;
    const float *x, *Wf, *b; // Wf: the decoded matrix (N, K) (NULL on the panel path)
    const am_wmat *W;
    am_gemm_ws *ws;
    int M, N, K, flags, per; // per: rows of x (by_rows) or columns per task
    int by_rows;
} many_task;

static void many_block(void *ctx, int i) {
    const many_task *t = ctx;
    if (t->by_rows) { // rows [m0, m1) of x against all of Wf
        const int m0 = i * t->per, m1 = AM_MIN(t->M, m0 + t->per);
        if (m0 < m1)
            sgemm_block(t->y + (size_t)m0 * t->N, t->N, t->x + (size_t)m0 * t->K, t->Wf, t->b, m1 - m0, t->N, t->K,
                        t->flags);
        return;
    }
    const int n0 = i * t->per, n1 = AM_MIN(t->N, n0 + t->per);
    if (t->Wf) {
        if (n0 < n1)
            sgemm_block(t->y + n0, t->N, t->x, t->Wf + (size_t)n0 * t->K, t->b ? t->b + n0 : NULL, t->M, n1 - n0,
                        t->K, t->flags);
        return;
    }
    float *panel = t->ws->panel + (size_t)am_nn_thread_index() * t->ws->panel_floats; // (PANEL_ROWS, K)
    for (int n = n0; n < n1; n += PANEL_ROWS) {
        const int p = AM_MIN(PANEL_ROWS, n1 - n);
        am_wmat_dequant(panel, t->W, n, p);
        sgemm_block(t->y + n, t->N, t->x, panel, t->b ? t->b + n : NULL, t->M, p, t->K, t->flags);
    }
}

typedef struct {
    float *dst;
    const am_wmat *W;
    int per;
} decode_task;

static void decode_block(void *ctx, int i) {
    const decode_task *t = ctx;
    const int r0 = i * t->per, r1 = AM_MIN(t->W->rows, r0 + t->per);
    if (r0 < r1) am_wmat_dequant(t->dst + (size_t)r0 * t->W->cols, t->W, r0, r1 - r0);
}

static void gemm_many(float *y, const float *x, const am_wmat *W, const float *b, int M, int flags, am_gemm_ws *ws) {
    const int N = W->rows, K = W->cols, T = am_nn_threads();
    many_task t = {y, x, NULL, b, W, ws, M, N, K, flags, 0, 0};
    if (W->type == AM_TYPE_F32) {
        t.Wf = (const float *)W->data;
    } else if ((size_t)N * K <= ws->whole_floats) {
        decode_task d = {ws->whole, W, (N + T - 1) / T};
        am_nn_parallel(T, decode_block, &d);
        t.Wf = ws->whole;
    }
    const int serial = T == 1 || (double)M * N * K < PARALLEL_MACS;
    if (t.Wf && M >= 128 * T) { // enough rows: each thread a block of rows, all columns
        t.by_rows = 1;
        t.per = (M + T - 1) / T;
    } else { // column blocks (multiples of 16)
        t.per = serial ? N : ((N + T - 1) / T + 15) & ~15;
    }
    const int n_tasks = t.by_rows ? (M + t.per - 1) / t.per : (N + t.per - 1) / t.per;
    if (serial) {
        for (int i = 0; i < n_tasks; i++) many_block(&t, i);
        return;
    }
    am_nn_parallel(n_tasks, many_block, &t);
}

// ---------------------------------------------------------------- API
int am_gemm(float *restrict y, const float *restrict x, const am_wmat *W, const float *restrict b, int M, int flags,
            am_gemm_ws *ws) {
    if (W->cols > ws->max_k)
        return am_set_error(AM_EINVAL, "product with %d inputs exceeds the workspace's %d", W->cols, ws->max_k);
    if (M <= 0) return 0;
    if (M <= AM_GEMM_SMALL_M || (flags & AM_GEMM_ROWWISE)) gemm_stream(y, x, W, b, M, flags, ws);
    else gemm_many(y, x, W, b, M, flags, ws);
    return 0;
}

double am_gemm_sgemm_gflops(int M, int N, int K, int reps) {
    float *a = am_alloc((size_t)M * K * sizeof(float));
    float *w = am_alloc((size_t)N * K * sizeof(float));
    float *c = am_alloc((size_t)M * N * sizeof(float));
    am_gemm_ws *ws = am_gemm_ws_create(K, 0);
    double best = 0;
    if (a && w && c && ws) {
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)((i * 7) % 13) * 0.01f;
        for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (float)((i * 5) % 11) * 0.01f;
        const am_wmat W = {(const uint8_t *)w, AM_TYPE_F32, N, K, (size_t)K * sizeof(float)};
        am_gemm(c, a, &W, NULL, M, 0, ws); // warm-up
        for (int r = 0; r < reps; r++) {
            const double t0 = am_time_s();
            am_gemm(c, a, &W, NULL, M, 0, ws);
            const double g = 2.0 * M * N * K / (am_time_s() - t0) * 1e-9;
            if (g > best) best = g;
        }
    }
    am_gemm_ws_free(ws);
    am_free(a);
    am_free(w);
    am_free(c);
    return best;
}
