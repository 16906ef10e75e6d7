// test_attn.c — attention over the tiled K/V layout (src/am_attn.h) against a
// double-precision reference: float32 and half storage (the reference then
// uses the half-rounded keys and values, so only arithmetic error remains),
// one query and many (more than a scratch block), causal masks at every
// offset, keys stored all at once or appended one position at a time (a KV
// cache) or in odd runs across tile boundaries, head widths 64 (the models),
// 24 and 2 (other kernel paths). ctest runs this once per instruction set.
#include <math.h>
#include <stdint.h>

#include "am_attn.h"
#include "am_common.h"
#include "am_quant.h"
#include "am_test.h"

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) % 2000001) / 1e6f - 1.0f;
}

static float stored(float x, int type) { return type == AM_TYPE_F16 ? am_fp16_to_fp32(am_fp32_to_fp16(x)) : x; }

// out (nq, hd) in double: softmax(q k^T / sqrt(hd)) v with k, v as stored.
static void reference(double *out, const float *q, int ld_q, const float *k, const float *v, int ld, int nq, int nk,
                      int hd, int causal, int type) {
    double *sc = malloc((size_t)nk * sizeof *sc);
    for (int i = 0; i < nq; i++) {
        double mx = -1e300, z = 0;
        const int seen = causal >= 0 ? AM_MIN(nk, causal + i + 1) : nk;
        for (int t = 0; t < seen; t++) {
            double s = 0;
            for (int j = 0; j < hd; j++) s += (double)q[(size_t)i * ld_q + j] * stored(k[(size_t)t * ld + j], type);
            sc[t] = s / sqrt(hd);
            mx = fmax(mx, sc[t]);
        }
        for (int t = 0; t < seen; t++) z += sc[t] = exp(sc[t] - mx);
        for (int j = 0; j < hd; j++) {
            double o = 0;
            for (int t = 0; t < seen; t++) o += sc[t] / z * stored(v[(size_t)t * ld + j], type);
            out[(size_t)i * hd + j] = o;
        }
    }
    free(sc);
}

// store: 0 = all at once, 1 = one position at a time, 2 = runs of 7
static void check(int hd, int nq, int nk, int causal, int type, int store) {
    const int ld = 3 * hd + 5; // rows wider than a head, as inside the models' qkv rows
    float *q = malloc((size_t)nq * ld * 4), *k = malloc((size_t)nk * ld * 4), *v = malloc((size_t)nk * ld * 4);
    float *out = malloc((size_t)nq * ld * 4), *scratch = malloc(am_attn_scratch_floats(nk) * 4);
    double *ref = malloc((size_t)nq * hd * sizeof *ref);
    const size_t es = type == AM_TYPE_F16 ? 2 : 4;
    void *kmem = am_alloc(am_attn_kv_elems(nk, hd) * es), *vmem = am_alloc(am_attn_kv_elems(nk, hd) * es);
    for (size_t i = 0; i < (size_t)nq * ld; i++) q[i] = 3 * frand();
    for (size_t i = 0; i < (size_t)nk * ld; i++) {
        k[i] = 3 * frand();
        v[i] = frand();
    }
    const am_kv_head h = {kmem, vmem, type, hd};
    const int step = store == 0 ? nk : store == 1 ? 1 : 7;
    for (int p = 0; p < nk; p += step) am_attn_store(&h, p, k + (size_t)p * ld, v + (size_t)p * ld, ld, AM_MIN(step, nk - p));
    am_attn(out, ld, q, ld, nq, &h, nk, causal, 1.0f / sqrtf((float)hd), scratch);
    reference(ref, q, ld, k, v, ld, nq, nk, hd, causal, type);
    double err = 0;
    for (int i = 0; i < nq; i++)
        for (int j = 0; j < hd; j++) err = fmax(err, fabs(out[(size_t)i * ld + j] - ref[(size_t)i * hd + j]));
    CHECKF(err < 2e-6, "attention hd=%d nq=%d nk=%d causal=%d %s store=%d: max error %.3g", hd, nq, nk, causal,
           am_type_name(type), store, err);
    free(q);
    free(k);
    free(v);
    free(out);
    free(scratch);
    free(ref);
    am_free(kmem);
    am_free(vmem);
}

int main(void) {
    printf("instruction set: %s\n", am_isa_name(am_cpu_isa()));
    const int hds[] = {64, 24, 2};
    for (int ti = 0; ti < 2; ti++) {
        const int type = ti ? AM_TYPE_F16 : AM_TYPE_F32;
        for (size_t hi = 0; hi < AM_ARRAY_LEN(hds); hi++) {
            const int hd = hds[hi];
            check(hd, 1, 1500, -1, type, 0);   // a decoder step against a window's cross K/V
            check(hd, 7, 1500, -1, type, 2);   // a few queries (a prefill), odd store runs
            check(hd, 1, 37, 36, type, 1);     // one new token against a growing cache
            check(hd, 5, 40, 35, type, 1);     // a prefill of 5 after 35 cached tokens
            check(hd, 70, 70, 0, type, 0);     // causal from position 0, more queries than a scratch block
            check(hd, 130, 300, -1, type, 2);  // the encoder's shape, small
            for (int nk = 1; nk <= 66; nk += 13) check(hd, 3, nk, AM_MAX(nk - 3, 0), type, 1); // tails of tiles and groups
        }
    }
    CHECK(am_attn_kv_elems(1500, 64) == 1536 * 64 && am_attn_kv_elems(1, 64) == 64 * 64);
    CHECK(am_attn_scratch_floats(1500) == (size_t)AM_ATTN_QBLOCK * 1536);
    return am_test_finish("test_attn", 1);
}
