// am_attn.c — attention kernels over tiled keys and row-major values, float32
// or half storage; portable, AVX2 and AVX-512 paths.
#include "am_attn.h"

#include <math.h>
#include <string.h>

#include "am_common.h"
#include "am_nn.h"
#include "am_quant.h"

#ifdef AM_X86
#include <immintrin.h>
#endif

#define GROUP 64 // positions per group of 4 tiles: the unit the score kernels work in
#define MQ_AVX512 6
#define MQ_AVX2 6

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

// Scores of mq (<= 6) queries against keys [0, n), one tile (16 keys, two
// vectors) at a time: 12 accumulators, each key vector used by every query.
AM_TARGET_AVX2 AM_INLINE void qk_avx2_mq(float *s, int lds, const float *q, int ld_q, const int mq, const void *k,
                                        const int f16, int hd, int n, float scale) {
    const __m256 vs = _mm256_set1_ps(scale);
    for (int t0 = 0; t0 < n; t0 += AM_ATTN_TILE) {
        __m256 acc[MQ_AVX2][2];
        for (int i = 0; i < MQ_AVX2; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        const size_t tile = (size_t)(t0 / AM_ATTN_TILE) * hd * AM_ATTN_TILE;
        for (int j = 0; j < hd; j++) {
            const size_t o = tile + (size_t)j * AM_ATTN_TILE;
            const __m256 k0 = ld8_avx2(k, o, f16), k1 = ld8_avx2(k, o + 8, f16);
            for (int i = 0; i < mq; i++) {
                const __m256 qb = _mm256_broadcast_ss(q + (size_t)i * ld_q + j);
                acc[i][0] = _mm256_fmadd_ps(qb, k0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(qb, k1, acc[i][1]);
            }
        }
        for (int i = 0; i < mq; i++) {
            _mm256_storeu_ps(s + (size_t)i * lds + t0, _mm256_mul_ps(acc[i][0], vs));
            _mm256_storeu_ps(s + (size_t)i * lds + t0 + 8, _mm256_mul_ps(acc[i][1], vs));
        }
    }
}

AM_TARGET_AVX2 static void qk_avx2(float *s, int lds, const float *q, int ld_q, int nq, const am_kv_head *h, int n,
                                   float scale) {
    const int f16 = h->type == AM_TYPE_F16;
    for (int i0 = 0; i0 < nq; i0 += MQ_AVX2) {
        const int mq = AM_MIN(MQ_AVX2, nq - i0);
        float *si = s + (size_t)i0 * lds;
        const float *qi = q + (size_t)i0 * ld_q;
#define QK_AVX2(MQ)                                                                  \
    (f16 ? qk_avx2_mq(si, lds, qi, ld_q, MQ, h->k, 1, h->hd, n, scale)               \
         : qk_avx2_mq(si, lds, qi, ld_q, MQ, h->k, 0, h->hd, n, scale))
        switch (mq) { // constant query counts: the accumulators live in registers
        case 1: QK_AVX2(1); break;
        case 2: QK_AVX2(2); break;
        case 3: QK_AVX2(3); break;
        case 4: QK_AVX2(4); break;
        case 5: QK_AVX2(5); break;
        default: QK_AVX2(6); break;
        }
#undef QK_AVX2
    }
}

// out = p @ V for mq (<= 6) queries, 16 dimensions (two vectors) at a time.
AM_TARGET_AVX2 AM_INLINE void pv_avx2_mq(float *out, int ld_o, const float *p, int ldp, const int mq, const void *v,
                                        const int f16, int hd, int n) {
    for (int c0 = 0; c0 < hd; c0 += 16) {
        __m256 acc[MQ_AVX2][2];
        for (int i = 0; i < MQ_AVX2; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        for (int t = 0; t < n; t++) {
            const __m256 v0 = ld8_avx2(v, (size_t)t * hd + c0, f16), v1 = ld8_avx2(v, (size_t)t * hd + c0 + 8, f16);
            for (int i = 0; i < mq; i++) {
                const __m256 pb = _mm256_broadcast_ss(p + (size_t)i * ldp + t);
                acc[i][0] = _mm256_fmadd_ps(pb, v0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(pb, v1, acc[i][1]);
            }
        }
        for (int i = 0; i < mq; i++) {
            _mm256_storeu_ps(out + (size_t)i * ld_o + c0, acc[i][0]);
            _mm256_storeu_ps(out + (size_t)i * ld_o + c0 + 8, acc[i][1]);
        }
    }
}

// (head widths that are a multiple of 16; others take the portable path)
AM_TARGET_AVX2 static void pv_avx2(float *out, int ld_o, const float *p, int ldp, int nq, const am_kv_head *h, int n) {
    const int f16 = h->type == AM_TYPE_F16;
    for (int i0 = 0; i0 < nq; i0 += MQ_AVX2) {
        const int mq = AM_MIN(MQ_AVX2, nq - i0);
        float *o = out + (size_t)i0 * ld_o;
        const float *pi = p + (size_t)i0 * ldp;
#define PV_AVX2(MQ) (f16 ? pv_avx2_mq(o, ld_o, pi, ldp, MQ, h->v, 1, h->hd, n) : pv_avx2_mq(o, ld_o, pi, ldp, MQ, h->v, 0, h->hd, n))
        switch (mq) {
        case 1: PV_AVX2(1); break;
        case 2: PV_AVX2(2); break;
        case 3: PV_AVX2(3); break;
        case 4: PV_AVX2(4); break;
        case 5: PV_AVX2(5); break;
        default: PV_AVX2(6); break;
        }
#undef PV_AVX2
    }
}

// exp(x) for x <= 0, 8 lanes: x = n ln2 + r (|r| <= ln2/2), e^r by a degree-6
// polynomial (Cephes' expf coefficients, FMA), 2^n from the exponent bits; 0 below -87.3.
AM_TARGET_AVX2 AM_INLINE __m256 exp_nonpos_avx2(__m256 x) {
    const __m256 xc = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_and_ps(y, _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ));
}

// row (n,) = softmax(row): max-subtracted exp, float32 sums in 16 partial lanes.
AM_TARGET_AVX2 static void softmax_avx2(float *row, int n) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(row + i));
    float m = -INFINITY, lanes[8];
    _mm256_storeu_ps(lanes, mx);
    for (int j = 0; j < 8; j++) m = lanes[j] > m ? lanes[j] : m;
    for (; i < n; i++) m = row[i] > m ? row[i] : m;
    const __m256 vm = _mm256_set1_ps(m);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        const __m256 e0 = exp_nonpos_avx2(_mm256_sub_ps(_mm256_loadu_ps(row + i), vm));
        const __m256 e1 = exp_nonpos_avx2(_mm256_sub_ps(_mm256_loadu_ps(row + i + 8), vm));
        _mm256_storeu_ps(row + i, e0);
        _mm256_storeu_ps(row + i + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    _mm256_storeu_ps(lanes, _mm256_add_ps(s0, s1));
    float sum = 0;
    for (int j = 0; j < 8; j++) sum += lanes[j];
    for (; i < n; i++) { // the tail, one lane at a time
        float one[8] = {row[i] - m};
        _mm256_storeu_ps(one, exp_nonpos_avx2(_mm256_loadu_ps(one)));
        sum += row[i] = one[0];
    }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(row + i, _mm256_mul_ps(_mm256_loadu_ps(row + i), inv));
    for (; i < n; i++) row[i] *= 1.0f / sum;
}

// ---------------------------------------------------------------- AVX-512
AM_TARGET_AVX512 AM_INLINE __m512 ld16_avx512(const void *base, size_t i, const int f16) {
    return f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + i)))
               : _mm512_loadu_ps((const float *)base + i);
}

// exp(x) for x <= 0, 16 lanes (as exp_nonpos_avx2; 2^n by scalef).
AM_TARGET_AVX512 AM_INLINE __m512 exp_nonpos_avx512(__m512 x) {
    const __m512 xc = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ);
    return _mm512_maskz_scalef_ps(keep, p, n);
}

// row (n,) = softmax(row): max-subtracted exp, float32 sums in 32 partial lanes.
AM_TARGET_AVX512 static void softmax_avx512(float *row, int n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(row + i));
    const __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
    mx = _mm512_mask_max_ps(mx, tail, mx, _mm512_maskz_loadu_ps(tail, row + i));
    const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (i = 0; i + 32 <= n; i += 32) {
        const __m512 e0 = exp_nonpos_avx512(_mm512_sub_ps(_mm512_loadu_ps(row + i), vm));
        const __m512 e1 = exp_nonpos_avx512(_mm512_sub_ps(_mm512_loadu_ps(row + i + 16), vm));
        _mm512_storeu_ps(row + i, e0);
        _mm512_storeu_ps(row + i + 16, e1);
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
    }
    for (; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = _mm512_maskz_mov_ps(k, exp_nonpos_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + i), vm)));
        _mm512_mask_storeu_ps(row + i, k, e);
        s0 = _mm512_add_ps(s0, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
    for (i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(row + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, row + i), inv));
    }
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
// scratch (nb, round_up(n_keys)) = scale * q K^T on the best path for h.
static void scores_block(float *scratch, int lds, const float *qb, int ld_q, int nb, const am_kv_head *h, int n,
                         float scale, int isa) {
#ifdef AM_X86
    if (isa == AM_ISA_AVX512) qk_avx512(scratch, lds, qb, ld_q, nb, h, n, scale);
    else if (isa == AM_ISA_AVX2) qk_avx2(scratch, lds, qb, ld_q, nb, h, n, scale);
    else
#endif
        qk_portable(scratch, lds, qb, ld_q, nb, h, n, scale);
    (void)isa;
}

static int attn_isa(const am_kv_head *h) {
    return h->hd % 16 ? AM_ISA_SCALAR : am_cpu_isa(); // the vector kernels work in 16-wide columns
}

void am_attn_scores(float *s, int lds, const float *q, int ld_q, int nq, const am_kv_head *h, int n_keys, float scale,
                    float *scratch) {
    const int n = round_up(n_keys, GROUP), isa = attn_isa(h);
    for (int i0 = 0; i0 < nq; i0 += AM_ATTN_QBLOCK) {
        const int nb = AM_MIN(AM_ATTN_QBLOCK, nq - i0);
        scores_block(scratch, n, q + (size_t)i0 * ld_q, ld_q, nb, h, n, scale, isa);
        for (int i = 0; i < nb; i++)
            memcpy(s + (size_t)(i0 + i) * lds, scratch + (size_t)i * n, (size_t)n_keys * sizeof *s);
    }
}

void am_attn(float *out, int ld_o, const float *q, int ld_q, int nq, const am_kv_head *h, int n_keys,
             int causal_offset, float scale, float *scratch) {
    const int n = round_up(n_keys, GROUP), lds = n; // keys scored (the padding is ignored)
    const int isa = attn_isa(h);
    for (int i0 = 0; i0 < nq; i0 += AM_ATTN_QBLOCK) {
        const int nb = AM_MIN(AM_ATTN_QBLOCK, nq - i0);
        const float *qb = q + (size_t)i0 * ld_q;
        float *ob = out + (size_t)i0 * ld_o;
        scores_block(scratch, lds, qb, ld_q, nb, h, n, scale, isa); // scratch (nb, n) = scale * q K^T
        for (int i = 0; i < nb; i++) { // softmax over each query's visible keys; the rest weigh 0
            float *row = scratch + (size_t)i * lds;
            const int seen = causal_offset >= 0 ? AM_MIN(n_keys, causal_offset + i0 + i + 1) : n_keys;
#ifdef AM_X86
            if (isa == AM_ISA_AVX512) softmax_avx512(row, seen);
            else if (isa == AM_ISA_AVX2) softmax_avx2(row, seen);
            else
#endif
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
