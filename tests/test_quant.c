// test_quant.c — weight decoding is exact (src/am_quant.h).
//
// The loader used to dequantize every weight into a float32 arena once; the
// kernels now decode the stored bytes on the fly. This test keeps that old
// arena code (reference_dequant below, the formulas of shared/FORMAT.md
// evaluated one rounding at a time) and proves that am_quant_dequant and
// am_wmat_dequant give the same float32 bits, for every type:
//   f16    all 65536 half values
//   q8_0, q4_0, q4_1, q5_0, q5_1   blocks whose scales and minimums run over
//          every finite half value (normal and subnormal, both signs) and
//          whose quants cover every value at every position, plus random blocks
// The instruction-set path is the one am_cpu_isa() picks; ctest runs this test
// once per path (AMANUENSIS_ISA=scalar|avx2|avx512). Also: f32 -> f16 rounding
// of am_quant_to_f16 equals am_fp32_to_fp16, type sizes, and row views.
#include <math.h>
#include <stdint.h>

#include "am_common.h"
#include "am_quant.h"
#include "am_test.h"

// ---------------------------------------------------------------- the reference (the old arena)
static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void reference_dequant(float *dst, const uint8_t *src, int type, size_t n) {
    if (type == AM_TYPE_F32) {
        memcpy(dst, src, n * 4);
        return;
    }
    if (type == AM_TYPE_F16) {
        for (size_t i = 0; i < n; i++) dst[i] = am_fp16_to_fp32(u16(src + 2 * i));
        return;
    }
    const int bb = am_type_block_bytes(type);
    for (size_t b = 0; b < n / 32; b++, src += bb, dst += 32) {
        const float d = am_fp16_to_fp32(u16(src));
        for (int j = 0; j < 16; j++) {
            switch (type) {
            case AM_TYPE_Q8_0:
                dst[j] = (float)(int8_t)src[2 + j] * d;
                dst[j + 16] = (float)(int8_t)src[18 + j] * d;
                break;
            case AM_TYPE_Q4_0:
                dst[j] = (float)((src[2 + j] & 0x0f) - 8) * d;
                dst[j + 16] = (float)((src[2 + j] >> 4) - 8) * d;
                break;
            case AM_TYPE_Q4_1: {
                const float m = am_fp16_to_fp32(u16(src + 2));
                dst[j] = (float)(src[4 + j] & 0x0f) * d + m;
                dst[j + 16] = (float)(src[4 + j] >> 4) * d + m;
                break;
            }
            case AM_TYPE_Q5_0: {
                const uint32_t qh = u32(src + 2);
                const int lo = (src[6 + j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
                const int hi = (src[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
                dst[j] = (float)(lo - 16) * d;
                dst[j + 16] = (float)(hi - 16) * d;
                break;
            }
            case AM_TYPE_Q5_1: {
                const float m = am_fp16_to_fp32(u16(src + 2));
                const uint32_t qh = u32(src + 4);
                const int lo = (src[8 + j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
                const int hi = (src[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
                dst[j] = (float)lo * d + m;
                dst[j + 16] = (float)hi * d + m;
                break;
            }
            }
        }
    }
}

// ---------------------------------------------------------------- helpers
static uint64_t g_rng = 0x1234567887654321ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

static int is_finite_half(uint16_t h) { return ((h >> 10) & 31) != 31; }

// Count of positions where a and b differ as bits (NaN == NaN of any payload).
static size_t count_diff(const float *a, const float *b, size_t n, size_t *first) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const int same = memcmp(&a[i], &b[i], 4) == 0 || (isnan(a[i]) && isnan(b[i]));
        if (!same && !bad++) *first = i;
    }
    return bad;
}

static const int k_qtypes[] = {AM_TYPE_Q8_0, AM_TYPE_Q4_0, AM_TYPE_Q4_1, AM_TYPE_Q5_0, AM_TYPE_Q5_1};

// ---------------------------------------------------------------- tests
static void test_sizes(void) {
    CHECK(am_type_block(AM_TYPE_F32) == 1 && am_type_block_bytes(AM_TYPE_F32) == 4);
    CHECK(am_type_block(AM_TYPE_F16) == 1 && am_type_block_bytes(AM_TYPE_F16) == 2);
    CHECK(am_type_block_bytes(AM_TYPE_Q4_0) == 18 && am_type_block_bytes(AM_TYPE_Q4_1) == 20);
    CHECK(am_type_block_bytes(AM_TYPE_Q5_0) == 22 && am_type_block_bytes(AM_TYPE_Q5_1) == 24);
    CHECK(am_type_block_bytes(AM_TYPE_Q8_0) == 34 && am_type_block(AM_TYPE_Q8_0) == 32);
    CHECK(am_type_block(4) == 0 && am_type_block(99) == 0 && !strcmp(am_type_name(99), "unknown"));
    CHECK(am_type_bytes(AM_TYPE_Q5_1, 64) == 48 && am_type_bytes(AM_TYPE_F16, 7) == 14);
    for (size_t i = 0; i < AM_ARRAY_LEN(k_qtypes); i++)
        CHECK(am_type_from_name(am_type_name(k_qtypes[i])) == k_qtypes[i]);
    CHECK(am_type_from_name("f16") == AM_TYPE_F16 && am_type_from_name("bf16") == -1 && am_type_from_name(NULL) == -1);
}

static void test_f16(void) {
    // every half value, in runs of odd lengths (vector bodies and tails)
    uint8_t *src = malloc(65536 * 2);
    float *got = malloc(65536 * 4), *want = malloc(65536 * 4);
    for (uint32_t h = 0; h < 65536; h++) {
        src[2 * h] = (uint8_t)h;
        src[2 * h + 1] = (uint8_t)(h >> 8);
    }
    reference_dequant(want, src, AM_TYPE_F16, 65536);
    size_t done = 0, bad = 0, first = 0;
    for (size_t len = 1; done < 65536; len = len * 3 + 1) {
        const size_t n = AM_MIN(len, 65536 - done);
        am_quant_dequant(got + done, src + 2 * done, AM_TYPE_F16, n);
        done += n;
    }
    bad = count_diff(got, want, 65536, &first);
    CHECKF(bad == 0, "f16: %zu of 65536 halves decode differently (first 0x%04zx: %g vs %g)", bad, first,
           (double)got[first], (double)want[first]);
    free(src);
    free(got);
    free(want);
}

static void test_blocks(int type) {
    enum { N_BLOCKS = 65536 + 4096 };
    const int bb = am_type_block_bytes(type);
    const int has_m = type == AM_TYPE_Q4_1 || type == AM_TYPE_Q5_1;
    uint8_t *src = malloc((size_t)N_BLOCKS * bb);
    float *got = malloc((size_t)N_BLOCKS * 32 * 4), *want = malloc((size_t)N_BLOCKS * 32 * 4);
    // blocks 0..65535: scale (and minimum) = every half value that is finite,
    // quants from the block index so that every value appears at every position
    for (int b = 0; b < N_BLOCKS; b++) {
        uint8_t *p = src + (size_t)b * bb;
        for (int i = 0; i < bb; i++) p[i] = (uint8_t)rnd();
        uint16_t d = (uint16_t)(b < 65536 ? (uint32_t)b : rnd()), m = (uint16_t)rnd();
        if (!is_finite_half(d)) d &= 0x83ff; // a subnormal (or zero) instead
        if (!is_finite_half(m)) m &= 0x83ff;
        p[0] = (uint8_t)d;
        p[1] = (uint8_t)(d >> 8);
        if (has_m) {
            p[2] = (uint8_t)m;
            p[3] = (uint8_t)(m >> 8);
        }
        if (b < 256 * 8) { // systematic quants: byte value (b % 256) everywhere, qh all ones or zeros
            const int qs = bb - 16;
            memset(p + qs, b % 256, 16);
            if (type == AM_TYPE_Q8_0) memset(p + 2, b % 256, 32);
            if (type == AM_TYPE_Q5_0 || type == AM_TYPE_Q5_1) memset(p + 2 + 2 * has_m, (b / 256) & 1 ? 0xff : 0, 4);
        }
    }
    reference_dequant(want, src, type, (size_t)N_BLOCKS * 32);
    // decode in runs of 1, 2, 3, ... blocks
    size_t done = 0;
    for (size_t len = 1; done < N_BLOCKS; len++) {
        const size_t n = AM_MIN(len, (size_t)N_BLOCKS - done);
        am_quant_dequant(got + done * 32, src + done * bb, type, n * 32);
        done += n;
    }
    size_t first = 0;
    const size_t bad = count_diff(got, want, (size_t)N_BLOCKS * 32, &first);
    CHECKF(bad == 0, "%s: %zu of %d values decode differently (first at %zu: %g vs %g)", am_type_name(type), bad,
           N_BLOCKS * 32, first, (double)got[first], (double)want[first]);
    // row views: rows 3..9 of a (16, 96) matrix
    am_wmat W = {src, type, 16, 96, am_type_bytes(type, 96)};
    float rows[7 * 96];
    const am_wmat v = am_wmat_rows(&W, 3, 7);
    CHECK(v.rows == 7 && v.cols == 96 && v.data == src + 3 * W.row_bytes);
    am_wmat_dequant(rows, &W, 3, 7);
    CHECKF(count_diff(rows, want + 3 * 96, 7 * 96, &first) == 0, "%s: row view differs", am_type_name(type));
    printf("  %-5s %d blocks (%d scales over every finite half) bit-identical to the reference\n", am_type_name(type),
           N_BLOCKS, 65536);
    free(src);
    free(got);
    free(want);
}

static void test_to_f16(void) {
    enum { N = 1 << 20 };
    float *x = malloc(N * 4);
    uint16_t *got = malloc(N * 2);
    for (int i = 0; i < N; i++) {
        uint32_t u;
        do u = (uint32_t)rnd() << 16 ^ rnd();
        while ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)); // no NaN (payloads may differ)
        if (i % 4 == 1) u = (u & 0x8fffffffu) | 0x38000000u; // near the half range
        if (i % 4 == 2) u = (u & 0x807fffffu) | ((uint32_t)(100 + i % 50) << 23); // subnormal halves and rounding
        memcpy(&x[i], &u, 4);
    }
    am_quant_to_f16(got, x, N);
    int bad = 0, first = 0;
    for (int i = 0; i < N; i++)
        if (got[i] != am_fp32_to_fp16(x[i]) && !bad++) first = i;
    CHECKF(bad == 0, "to_f16: %d of %d differ (first %.9g: 0x%04x vs 0x%04x)", bad, N, (double)x[first], got[first],
           am_fp32_to_fp16(x[first]));
    am_quant_to_f16(got, x, 13); // a tail-only run
    for (int i = 0; i < 13; i++) CHECK(got[i] == am_fp32_to_fp16(x[i]));
    free(x);
    free(got);
}

int main(void) {
    printf("instruction set: %s\n", am_isa_name(am_cpu_isa()));
    test_sizes();
    test_f16();
    for (size_t i = 0; i < AM_ARRAY_LEN(k_qtypes); i++) test_blocks(k_qtypes[i]);
    test_to_f16();
    return am_test_finish("test_quant", 1);
}
