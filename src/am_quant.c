// am_quant.c — ggml weight types: sizes and exact decoding, portable / AVX2 / AVX-512.
#include "am_quant.h"

#include <string.h>

#include "am_common.h"

#ifdef AM_X86
#include <immintrin.h>
#endif

// ---------------------------------------------------------------- types
typedef struct {
    int type;
    const char *name;
    int block;       // elements per block
    int block_bytes; // bytes per block
} type_info;

static const type_info k_types[] = {
    {AM_TYPE_F32, "f32", 1, 4},     {AM_TYPE_F16, "f16", 1, 2},     {AM_TYPE_Q4_0, "q4_0", 32, 18},
    {AM_TYPE_Q4_1, "q4_1", 32, 20}, {AM_TYPE_Q5_0, "q5_0", 32, 22}, {AM_TYPE_Q5_1, "q5_1", 32, 24},
    {AM_TYPE_Q8_0, "q8_0", 32, 34},
};

static const type_info *find_type(int type) {
    for (size_t i = 0; i < AM_ARRAY_LEN(k_types); i++)
        if (k_types[i].type == type) return &k_types[i];
    return NULL;
}

int am_type_block(int type) {
    const type_info *t = find_type(type);
    return t ? t->block : 0;
}

int am_type_block_bytes(int type) {
    const type_info *t = find_type(type);
    return t ? t->block_bytes : 0;
}

const char *am_type_name(int type) {
    const type_info *t = find_type(type);
    return t ? t->name : "unknown";
}

int am_type_from_name(const char *name) {
    for (size_t i = 0; name && i < AM_ARRAY_LEN(k_types); i++)
        if (!strcmp(k_types[i].name, name)) return k_types[i].type;
    return -1;
}

size_t am_type_bytes(int type, size_t n) {
    const type_info *t = find_type(type);
    return t ? n / (size_t)t->block * (size_t)t->block_bytes : 0;
}

am_wmat am_wmat_rows(const am_wmat *W, int r0, int n) {
    am_wmat v = *W;
    v.data = W->data + (size_t)r0 * W->row_bytes;
    v.rows = n;
    return v;
}

// ---------------------------------------------------------------- portable
static uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

// The 5-bit value of element j (0..31) of a q5 block: nibble | bit j of qh << 4.
static int q5_value(const uint8_t *qs, uint32_t qh, int j) {
    const int nib = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
    return nib | (int)(((qh >> j) & 1u) << 4);
}

static int q4_value(const uint8_t *qs, int j) { return j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4); }

// One 32-element block of a q type (the reference dequantization).
static void block_portable(float *restrict dst, const uint8_t *restrict b, int type) {
    const float d = am_fp16_to_fp32(load_u16(b));
    switch (type) {
    case AM_TYPE_Q8_0:
        for (int j = 0; j < 32; j++) dst[j] = (float)(int8_t)b[2 + j] * d;
        break;
    case AM_TYPE_Q4_0:
        for (int j = 0; j < 32; j++) dst[j] = (float)(q4_value(b + 2, j) - 8) * d;
        break;
    case AM_TYPE_Q4_1: {
        const float m = am_fp16_to_fp32(load_u16(b + 2));
        for (int j = 0; j < 32; j++) dst[j] = (float)q4_value(b + 4, j) * d + m;
        break;
    }
    case AM_TYPE_Q5_0: {
        const uint32_t qh = load_u32(b + 2);
        for (int j = 0; j < 32; j++) dst[j] = (float)(q5_value(b + 6, qh, j) - 16) * d;
        break;
    }
    case AM_TYPE_Q5_1: {
        const float m = am_fp16_to_fp32(load_u16(b + 2));
        const uint32_t qh = load_u32(b + 4);
        for (int j = 0; j < 32; j++) dst[j] = (float)q5_value(b + 8, qh, j) * d + m;
        break;
    }
    }
}

static void dequant_portable(float *restrict dst, const uint8_t *restrict src, int type, size_t n) {
    if (type == AM_TYPE_F16) {
        for (size_t i = 0; i < n; i++) dst[i] = am_fp16_to_fp32(load_u16(src + 2 * i));
        return;
    }
    const size_t bb = (size_t)am_type_block_bytes(type);
    for (size_t i = 0; i < n; i += 32, src += bb) block_portable(dst + i, src, type);
}

static void to_f16_portable(uint16_t *restrict dst, const float *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = am_fp32_to_fp16(src[i]);
}

#ifdef AM_X86
// ---------------------------------------------------------------- AVX2
// The two nibble halves of 16 bytes: elements 0..15 (low) and 16..31 (high).
AM_TARGET_AVX2 static inline void nibbles_avx2(const uint8_t *qs, __m128i *lo, __m128i *hi) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)qs), mask = _mm_set1_epi8(0x0f);
    *lo = _mm_and_si128(raw, mask);
    *hi = _mm_and_si128(_mm_srli_epi16(raw, 4), mask);
}

// 8 int32 lanes: 16 where bit (j0 + lane) of qh is set, else 0.
AM_TARGET_AVX2 static inline __m256i high_bits_avx2(uint32_t qh, int j0) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)((qh >> j0) & 0xff)), bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi32(16));
}

// dst[0..8) = (q + off) * d (+ m when has_m), q = 8 int32 lanes.
AM_TARGET_AVX2 static inline void store8_avx2(float *dst, __m256i q, int off, __m256 d, __m256 m, int has_m) {
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(q, _mm256_set1_epi32(off))), d);
    if (has_m) f = _mm256_add_ps(f, m);
    _mm256_storeu_ps(dst, f);
}

AM_TARGET_AVX2 static void block_avx2(float *restrict dst, const uint8_t *restrict b, int type) {
    uint16_t hd, hm;
    memcpy(&hd, b, 2);
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(hd));
    if (type == AM_TYPE_Q8_0) {
        for (int j = 0; j < 32; j += 8) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + j)));
            store8_avx2(dst + j, q, 0, d, d, 0);
        }
        return;
    }
    const int has_m = type == AM_TYPE_Q4_1 || type == AM_TYPE_Q5_1;
    const int is_q5 = type == AM_TYPE_Q5_0 || type == AM_TYPE_Q5_1;
    memcpy(&hm, b + 2, 2);
    const __m256 m = has_m ? _mm256_set1_ps(_cvtsh_ss(hm)) : d;
    const int off = has_m ? 0 : is_q5 ? -16 : -8;
    uint32_t qh = 0;
    if (is_q5) memcpy(&qh, b + 2 + 2 * has_m, 4);
    const uint8_t *qs = b + 2 + 2 * has_m + 4 * is_q5;
    __m128i half[2];
    nibbles_avx2(qs, &half[0], &half[1]);
    for (int j = 0; j < 32; j += 8) {
        const __m128i bytes = (j & 8) ? _mm_srli_si128(half[j >> 4], 8) : half[j >> 4];
        __m256i q = _mm256_cvtepu8_epi32(bytes);
        if (is_q5) q = _mm256_or_si256(q, high_bits_avx2(qh, j));
        store8_avx2(dst + j, q, off, d, m, has_m);
    }
}

AM_TARGET_AVX2 static void dequant_avx2(float *restrict dst, const uint8_t *restrict src, int type, size_t n) {
    if (type == AM_TYPE_F16) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i))));
        for (; i < n; i++) dst[i] = _cvtsh_ss(load_u16(src + 2 * i));
        return;
    }
    const size_t bb = (size_t)am_type_block_bytes(type);
    for (size_t i = 0; i < n; i += 32, src += bb) block_avx2(dst + i, src, type);
}

AM_TARGET_AVX2 static void to_f16_avx2(uint16_t *restrict dst, const float *restrict src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = am_fp32_to_fp16(src[i]);
}

// ---------------------------------------------------------------- AVX-512
// dst[0..16) = (q + off) * d (+ m when has_m), q = 16 int32 lanes.
AM_TARGET_AVX512 static inline void store16_avx512(float *dst, __m512i q, int off, __m512 d, __m512 m, int has_m) {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(q, _mm512_set1_epi32(off))), d);
    if (has_m) f = _mm512_add_ps(f, m);
    _mm512_storeu_ps(dst, f);
}

AM_TARGET_AVX512 static void block_avx512(float *restrict dst, const uint8_t *restrict b, int type) {
    uint16_t hd, hm;
    memcpy(&hd, b, 2);
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(hd));
    if (type == AM_TYPE_Q8_0) {
        store16_avx512(dst, _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 2))), 0, d, d, 0);
        store16_avx512(dst + 16, _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 18))), 0, d, d, 0);
        return;
    }
    const int has_m = type == AM_TYPE_Q4_1 || type == AM_TYPE_Q5_1;
    const int is_q5 = type == AM_TYPE_Q5_0 || type == AM_TYPE_Q5_1;
    memcpy(&hm, b + 2, 2);
    const __m512 m = has_m ? _mm512_set1_ps(_cvtsh_ss(hm)) : d;
    const int off = has_m ? 0 : is_q5 ? -16 : -8;
    uint32_t qh = 0;
    if (is_q5) memcpy(&qh, b + 2 + 2 * has_m, 4);
    const uint8_t *qs = b + 2 + 2 * has_m + 4 * is_q5;
    __m128i lo, hi;
    nibbles_avx2(qs, &lo, &hi);
    __m512i q0 = _mm512_cvtepu8_epi32(lo), q1 = _mm512_cvtepu8_epi32(hi);
    if (is_q5) { // bit j of qh is the 5th bit of element j
        const __m512i sixteen = _mm512_set1_epi32(16);
        q0 = _mm512_mask_or_epi32(q0, (__mmask16)(qh & 0xffff), q0, sixteen);
        q1 = _mm512_mask_or_epi32(q1, (__mmask16)(qh >> 16), q1, sixteen);
    }
    store16_avx512(dst, q0, off, d, m, has_m);
    store16_avx512(dst + 16, q1, off, d, m, has_m);
}

AM_TARGET_AVX512 static void dequant_avx512(float *restrict dst, const uint8_t *restrict src, int type, size_t n) {
    if (type == AM_TYPE_F16) {
        size_t i = 0;
        for (; i + 16 <= n; i += 16)
            _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + 2 * i))));
        if (i < n) {
            const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
            _mm512_mask_storeu_ps(dst + i, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, src + 2 * i)));
        }
        return;
    }
    const size_t bb = (size_t)am_type_block_bytes(type);
    for (size_t i = 0; i < n; i += 32, src += bb) block_avx512(dst + i, src, type);
}

AM_TARGET_AVX512 static void to_f16_avx512(uint16_t *restrict dst, const float *restrict src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = am_fp32_to_fp16(src[i]);
}
#endif // AM_X86

// ---------------------------------------------------------------- dispatch
void am_quant_dequant(float *restrict dst, const void *restrict src, int type, size_t n) {
    if (type == AM_TYPE_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    if (!am_type_block(type)) return;
#ifdef AM_X86
    switch (am_cpu_isa()) {
    case AM_ISA_AVX512: dequant_avx512(dst, src, type, n); return;
    case AM_ISA_AVX2: dequant_avx2(dst, src, type, n); return;
    }
#endif
    dequant_portable(dst, src, type, n);
}

void am_wmat_dequant(float *restrict dst, const am_wmat *W, int r0, int n) {
    // rows are contiguous: one call for all of them
    am_quant_dequant(dst, W->data + (size_t)r0 * W->row_bytes, W->type, (size_t)n * W->cols);
}

void am_quant_to_f16(uint16_t *restrict dst, const float *restrict src, size_t n) {
#ifdef AM_X86
    switch (am_cpu_isa()) {
    case AM_ISA_AVX512: to_f16_avx512(dst, src, n); return;
    case AM_ISA_AVX2: to_f16_avx2(dst, src, n); return;
    }
#endif
    to_f16_portable(dst, src, n);
}
