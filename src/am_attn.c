// am_attn.c — attention kernels over tiled keys and row-major values, float32
// or half storage; portable, AVX2 and AVX-512 paths.
#include "am_attn.h"

#include <string.h>

#include "am_common.h"
#include "am_nn.h"
#include "am_quant.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AM_X86 1
#define AM_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define AM_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))
#endif
#define AM_INLINE static inline __attribute__((always_inline))

#define GROUP 64 // positions per group of 4 tiles: the unit the score kernels work in
#define MQ_AVX512 6
#define MQ_AVX2 2

static int round_up(int n, int g) { return (n + g - 1) / g * g; }

size_t am_attn_kv_elems(int n, int hd) { return (size_t)round_up(n, GROUP) * (size_t)hd; }

size_t am_attn_scratch_floats(int n_keys) { return (size_t)AM_ATTN_QBLOCK * (size_t)round_up(n_keys, GROUP); }

// ---------------------------------------------------------------- store
void am_attn_store(const am_kv_head *h, int pos, const float *k, const float *v, int ld, int n) {
    const int hd = h->hd, f16 = h->type == AM_TYPE_F16;
    for (int t = 0; t < n; t++) { // values: one row each
        const size_t off = (size_t)(pos + t) * hd;
        if (f16) am_quant_to_f16((uint16_t *)h->v + off, v + (size_t)t * ld, (size_t)hd);
        else memcpy((float *)h->v + off, v + (size_t)t * ld, (size_t)hd * sizeof(float));
    }
    float tmp[64 * AM_ATTN_TILE]; // (64 dims, 16 lanes): part of one tile, transposed
    for (int t = 0; t < n;) {     // keys: transposed into their tiles
        const int p = pos + t, lane0 = p % AM_ATTN_TILE, cnt = AM_MIN(AM_ATTN_TILE - lane0, n - t);
        for (int j0 = 0; j0 < hd; j0 += 64) {
            const int nj = AM_MIN(64, hd - j0);
            const size_t base = (size_t)(p / AM_ATTN_TILE) * hd * AM_ATTN_TILE + (size_t)j0 * AM_ATTN_TILE;
            if (cnt == AM_ATTN_TILE) { // a whole tile: transpose, then one contiguous store
                for (int l = 0; l < AM_ATTN_TILE; l++)
                    for (int j = 0; j < nj; j++) tmp[j * AM_ATTN_TILE + l] = k[(size_t)(t + l) * ld + j0 + j];
                if (f16) am_quant_to_f16((uint16_t *)h->k + base, tmp, (size_t)nj * AM_ATTN_TILE);
                else memcpy((float *)h->k + base, tmp, (size_t)nj * AM_ATTN_TILE * sizeof(float));
                continue;
            }
            for (int l = 0; l < cnt; l++) // part of a tile (appending to a cache): lane by lane
                for (int j = 0; j < nj; j++) {
                    const float x = k[(size_t)(t + l) * ld + j0 + j];
                    const size_t at = base + (size_t)j * AM_ATTN_TILE + lane0 + l;
                    if (f16) ((uint16_t *)h->k)[at] = am_fp32_to_fp16(x);
                    else ((float *)h->k)[at] = x;
                }
        }
        t += cnt;
    }
}

// ---------------------------------------------------------------- portable
static float kv_at(const void *base, size_t i, int f16) {
    return f16 ? am_fp16_to_fp32(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}

// s (nq, n) [lds] = scale * q (nq, hd) [ld_q] . K[t] for t < n (n a multiple of GROUP)
static void qk_portable(float *s, int lds, const float *q, int ld_q, int nq, const am_kv_head *h, int n, float scale) {
    const int hd = h->hd, f16 = h->type == AM_TYPE_F16;
    for (int i = 0; i < nq; i++)
        for (int t = 0; t < n; t++) {
            const size_t base = (size_t)(t / AM_ATTN_TILE) * hd * AM_ATTN_TILE + t % AM_ATTN_TILE;
            float acc = 0;
            for (int j = 0; j < hd; j++) acc += q[(size_t)i * ld_q + j] * kv_at(h->k, base + (size_t)j * AM_ATTN_TILE, f16);
            s[(size_t)i * lds + t] = acc * scale;
        }
}

// out (nq, hd) [ld_o] = p (nq, n) [ldp] @ V (n, hd)
static void pv_portable(float *out, int ld_o, const float *p, int ldp, int nq, const am_kv_head *h, int n) {
    const int hd = h->hd, f16 = h->type == AM_TYPE_F16;
    for (int i = 0; i < nq; i++) {
        float *o = out + (size_t)i * ld_o;
        for (int c = 0; c < hd; c++) o[c] = 0;
        for (int t = 0; t < n; t++) {
            const float w = p[(size_t)i * ldp + t];
            for (int c = 0; c < hd; c++) o[c] += w * kv_at(h->v, (size_t)t * hd + c, f16);
        }
    }
}

#ifdef AM_X86
// ---------------------------------------------------------------- AVX2
AM_TARGET_AVX2 AM_INLINE __m256 ld8_avx2(const void *base, size_t i, const int f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)))
               : _mm256_loadu_ps((const float *)base + i);
}

// Scores of mq (<= 2) queries against keys [0, n), two tiles (32 keys) at a time.
AM_TARGET_AVX2 AM_INLINE void qk_avx2_mq(float *s, int lds, const float *q, int ld_q, const int mq, const void *k,
                                        const int f16, int hd, int n, float scale) {
    const __m256 vs = _mm256_set1_ps(scale);
    for (int t0 = 0; t0 < n; t0 += 2 * AM_ATTN_TILE) {
        __m256 acc[MQ_AVX2][4];
        for (int i = 0; i < MQ_AVX2; i++)
            for (int c = 0; c < 4; c++) acc[i][c] = _mm256_setzero_ps();
        const size_t tile0 = (size_t)(t0 / AM_ATTN_TILE) * hd * AM_ATTN_TILE, tile1 = tile0 + (size_t)hd * AM_ATTN_TILE;
        for (int j = 0; j < hd; j++) {
            const size_t o = (size_t)j * AM_ATTN_TILE;
            const __m256 k0 = ld8_avx2(k, tile0 + o, f16), k1 = ld8_avx2(k, tile0 + o + 8, f16);
            const __m256 k2 = ld8_avx2(k, tile1 + o, f16), k3 = ld8_avx2(k, tile1 + o + 8, f16);
            for (int i = 0; i < mq; i++) {
                const __m256 qb = _mm256_broadcast_ss(q + (size_t)i * ld_q + j);
                acc[i][0] = _mm256_fmadd_ps(qb, k0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(qb, k1, acc[i][1]);
                acc[i][2] = _mm256_fmadd_ps(qb, k2, acc[i][2]);
                acc[i][3] = _mm256_fmadd_ps(qb, k3, acc[i][3]);
            }
        }
        for (int i = 0; i < mq; i++)
            for (int c = 0; c < 4; c++) _mm256_storeu_ps(s + (size_t)i * lds + t0 + 8 * c, _mm256_mul_ps(acc[i][c], vs));
    }
}

AM_TARGET_AVX2 static void qk_avx2(float *s, int lds, const float *q, int ld_q, int nq, const am_kv_head *h, int n,
                                   float scale) {
    for (int i0 = 0; i0 < nq; i0 += MQ_AVX2) {
        const int mq = AM_MIN(MQ_AVX2, nq - i0);
        float *si = s + (size_t)i0 * lds;
        const float *qi = q + (size_t)i0 * ld_q;
        if (h->type == AM_TYPE_F16) {
            if (mq == 2) qk_avx2_mq(si, lds, qi, ld_q, 2, h->k, 1, h->hd, n, scale);
            else qk_avx2_mq(si, lds, qi, ld_q, 1, h->k, 1, h->hd, n, scale);
        } else {
            if (mq == 2) qk_avx2_mq(si, lds, qi, ld_q, 2, h->k, 0, h->hd, n, scale);
            else qk_avx2_mq(si, lds, qi, ld_q, 1, h->k, 0, h->hd, n, scale);
        }
    }
}

// out = p @ V for mq (<= 2) queries, cw (1 or 4) vectors of 8 dimensions at a time.
AM_TARGET_AVX2 AM_INLINE void pv_avx2_mq(float *out, int ld_o, const float *p, int ldp, const int mq, const void *v,
                                        const int f16, const int cw, int hd, int n) {
    for (int c0 = 0; c0 < hd; c0 += 8 * cw) {
        __m256 acc[MQ_AVX2][4];
        for (int i = 0; i < MQ_AVX2; i++)
            for (int c = 0; c < 4; c++) acc[i][c] = _mm256_setzero_ps();
        for (int t = 0; t < n; t++) {
            __m256 vv[4];
            for (int c = 0; c < cw; c++) vv[c] = ld8_avx2(v, (size_t)t * hd + c0 + 8 * c, f16);
            for (int i = 0; i < mq; i++) {
                const __m256 pb = _mm256_broadcast_ss(p + (size_t)i * ldp + t);
                for (int c = 0; c < cw; c++) acc[i][c] = _mm256_fmadd_ps(pb, vv[c], acc[i][c]);
            }
        }
        for (int i = 0; i < mq; i++)
            for (int c = 0; c < cw; c++) _mm256_storeu_ps(out + (size_t)i * ld_o + c0 + 8 * c, acc[i][c]);
    }
}

AM_TARGET_AVX2 static void pv_avx2(float *out, int ld_o, const float *p, int ldp, int nq, const am_kv_head *h, int n) {
    const int f16 = h->type == AM_TYPE_F16, wide = h->hd % 32 == 0;
    for (int i0 = 0; i0 < nq; i0 += MQ_AVX2) {
        const int mq = AM_MIN(MQ_AVX2, nq - i0);
        float *o = out + (size_t)i0 * ld_o;
        const float *pi = p + (size_t)i0 * ldp;
#define PV_AVX2(MQ, F16, CW) pv_avx2_mq(o, ld_o, pi, ldp, MQ, h->v, F16, CW, h->hd, n)
        if (f16) {
            if (wide) mq == 2 ? PV_AVX2(2, 1, 4) : PV_AVX2(1, 1, 4);
            else mq == 2 ? PV_AVX2(2, 1, 1) : PV_AVX2(1, 1, 1);
        } else {
            if (wide) mq == 2 ? PV_AVX2(2, 0, 4) : PV_AVX2(1, 0, 4);
            else mq == 2 ? PV_AVX2(2, 0, 1) : PV_AVX2(1, 0, 1);
        }
#undef PV_AVX2
    }
}

// ---------------------------------------------------------------- AVX-512
AM_TARGET_AVX512 AM_INLINE __m512 ld16_avx512(const void *base, size_t i, const int f16) {
    return f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + i)))
               : _mm512_loadu_ps((const float *)base + i);
}

// Scores of mq (<= 6) queries against keys [0, n), a group of 4 tiles (64 keys) at a time.
AM_TARGET_AVX512 AM_INLINE void qk_avx512_mq(float *s, int lds, const float *q, int ld_q, const int mq, const void *k,
                                            const int f16, int hd, int n, float scale) {
    const __m512 vs = _mm512_set1_ps(scale);
    for (int t0 = 0; t0 < n; t0 += GROUP) {
        __m512 acc[MQ_AVX512][4];
        for (int i = 0; i < MQ_AVX512; i++)
            for (int c = 0; c < 4; c++) acc[i][c] = _mm512_setzero_ps();
        const size_t g = (size_t)(t0 / AM_ATTN_TILE) * hd * AM_ATTN_TILE, ts = (size_t)hd * AM_ATTN_TILE;
        for (int j = 0; j < hd; j++) {
            const size_t o = g + (size_t)j * AM_ATTN_TILE;
            const __m512 k0 = ld16_avx512(k, o, f16), k1 = ld16_avx512(k, o + ts, f16);
            const __m512 k2 = ld16_avx512(k, o + 2 * ts, f16), k3 = ld16_avx512(k, o + 3 * ts, f16);
            for (int i = 0; i < mq; i++) {
                const __m512 qb = _mm512_set1_ps(q[(size_t)i * ld_q + j]);
                acc[i][0] = _mm512_fmadd_ps(qb, k0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(qb, k1, acc[i][1]);
                acc[i][2] = _mm512_fmadd_ps(qb, k2, acc[i][2]);
                acc[i][3] = _mm512_fmadd_ps(qb, k3, acc[i][3]);
            }
        }
        for (int i = 0; i < mq; i++)
            for (int c = 0; c < 4; c++)
                _mm512_storeu_ps(s + (size_t)i * lds + t0 + AM_ATTN_TILE * c, _mm512_mul_ps(acc[i][c], vs));
    }
}

AM_TARGET_AVX512 static void qk_avx512(float *s, int lds, const float *q, int ld_q, int nq, const am_kv_head *h, int n,
                                       float scale) {
    const int f16 = h->type == AM_TYPE_F16;
    for (int i0 = 0; i0 < nq; i0 += MQ_AVX512) {
        const int mq = AM_MIN(MQ_AVX512, nq - i0);
        float *si = s + (size_t)i0 * lds;
        const float *qi = q + (size_t)i0 * ld_q;
#define QK_AVX512(MQ)                                                                \
    (f16 ? qk_avx512_mq(si, lds, qi, ld_q, MQ, h->k, 1, h->hd, n, scale)             \
         : qk_avx512_mq(si, lds, qi, ld_q, MQ, h->k, 0, h->hd, n, scale))
        switch (mq) { // constant query counts: the accumulators live in registers
        case 1: QK_AVX512(1); break;
        case 2: QK_AVX512(2); break;
        case 3: QK_AVX512(3); break;
        case 4: QK_AVX512(4); break;
        case 5: QK_AVX512(5); break;
        default: QK_AVX512(6); break;
        }
#undef QK_AVX512
    }
}

// out = p @ V for mq (<= 6) queries, cw (1 or 4) vectors of 16 dimensions at a time.
AM_TARGET_AVX512 AM_INLINE void pv_avx512_mq(float *out, int ld_o, const float *p, int ldp, const int mq,
                                            const void *v, const int f16, const int cw, int hd, int n) {
    for (int c0 = 0; c0 < hd; c0 += 16 * cw) {
        __m512 acc[MQ_AVX512][4];
        for (int i = 0; i < MQ_AVX512; i++)
            for (int c = 0; c < 4; c++) acc[i][c] = _mm512_setzero_ps();
        for (int t = 0; t < n; t++) {
            __m512 vv[4];
            for (int c = 0; c < cw; c++) vv[c] = ld16_avx512(v, (size_t)t * hd + c0 + 16 * c, f16);
            for (int i = 0; i < mq; i++) {
                const __m512 pb = _mm512_set1_ps(p[(size_t)i * ldp + t]);
                for (int c = 0; c < cw; c++) acc[i][c] = _mm512_fmadd_ps(pb, vv[c], acc[i][c]);
            }
        }
        for (int i = 0; i < mq; i++)
            for (int c = 0; c < cw; c++) _mm512_storeu_ps(out + (size_t)i * ld_o + c0 + 16 * c, acc[i][c]);
    }
}

AM_TARGET_AVX512 static void pv_avx512(float *out, int ld_o, const float *p, int ldp, int nq, const am_kv_head *h,
                                       int n) {
    const int f16 = h->type == AM_TYPE_F16, wide = h->hd % 64 == 0;
    for (int i0 = 0; i0 < nq; i0 += MQ_AVX512) {
        const int mq = AM_MIN(MQ_AVX512, nq - i0);
        float *o = out + (size_t)i0 * ld_o;
        const float *pi = p + (size_t)i0 * ldp;
#define PV_AVX512(MQ)                                                                              \
    (f16 ? (wide ? pv_avx512_mq(o, ld_o, pi, ldp, MQ, h->v, 1, 4, h->hd, n)                        \
                 : pv_avx512_mq(o, ld_o, pi, ldp, MQ, h->v, 1, 1, h->hd, n))                       \
         : (wide ? pv_avx512_mq(o, ld_o, pi, ldp, MQ, h->v, 0, 4, h->hd, n)                        \
                 : pv_avx512_mq(o, ld_o, pi, ldp, MQ, h->v, 0, 1, h->hd, n)))
        switch (mq) {
        case 1: PV_AVX512(1); break;
        case 2: PV_AVX512(2); break;
        case 3: PV_AVX512(3); break;
        case 4: PV_AVX512(4); break;
        case 5: PV_AVX512(5); break;
        default: PV_AVX512(6); break;
        }
#undef PV_AVX512
    }
}
#endif // AM_X86

// ---------------------------------------------------------------- attention
void am_attn(float *out, int ld_o, const float *q, int ld_q, int nq, const am_kv_head *h, int n_keys,
             int causal_offset, float scale, float *scratch) {
    const int n = round_up(n_keys, GROUP), lds = n; // keys scored (the padding is ignored)
    int isa = am_cpu_isa();
    if ((isa == AM_ISA_AVX512 && h->hd % 16) || (isa == AM_ISA_AVX2 && h->hd % 8)) isa = AM_ISA_SCALAR;
    for (int i0 = 0; i0 < nq; i0 += AM_ATTN_QBLOCK) {
        const int nb = AM_MIN(AM_ATTN_QBLOCK, nq - i0);
        const float *qb = q + (size_t)i0 * ld_q;
        float *ob = out + (size_t)i0 * ld_o;
        // scratch (nb, n) = scale * q K^T
#ifdef AM_X86
        if (isa == AM_ISA_AVX512) qk_avx512(scratch, lds, qb, ld_q, nb, h, n, scale);
        else if (isa == AM_ISA_AVX2) qk_avx2(scratch, lds, qb, ld_q, nb, h, n, scale);
        else
#endif
            qk_portable(scratch, lds, qb, ld_q, nb, h, n, scale);
        for (int i = 0; i < nb; i++) { // softmax over each query's visible keys; the rest weigh 0
            float *row = scratch + (size_t)i * lds;
            const int seen = causal_offset >= 0 ? AM_MIN(n_keys, causal_offset + i0 + i + 1) : n_keys;
            am_nn_softmax_rows(row, 1, seen);
            memset(row + seen, 0, (size_t)(n_keys - seen) * sizeof *row);
        }
        // out (nb, hd) = p V
#ifdef AM_X86
        if (isa == AM_ISA_AVX512) pv_avx512(ob, ld_o, scratch, lds, nb, h, n_keys);
        else if (isa == AM_ISA_AVX2) pv_avx2(ob, ld_o, scratch, lds, nb, h, n_keys);
        else
#endif
            pv_portable(ob, ld_o, scratch, lds, nb, h, n_keys);
    }
}
