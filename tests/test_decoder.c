// test_decoder.c — the multi-sequence decoder API: sequences joining and
// leaving between steps, prefill vs single steps, splitting a step over the
// row scratch, shared cross K/V, context limits and argument errors.
#include <math.h>

#include "am_decoder.h"
#include "am_model.h"
#include "am_test.h"

static double max_rel(const float *a, const float *b, size_t n) {
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        r = fmax(r, fabs((double)b[i]));
    }
    return r > 0 ? e / r : e;
}

int main(void) {
    char path[1024];
    if (!am_test_find("fixtures/ggml-test-tiny.en.bin", path, sizeof path)) {
        SKIP_CASE("decoder", "tiny.en fixture not found");
        return am_test_finish("test_decoder", 0);
    }
    am_model *m = am_model_load(path);
    CHECK(m != NULL);
    if (!m) return am_test_finish("test_decoder", 0);
    const int T = m->hp.n_audio_ctx, d = m->hp.n_text_state;
    const size_t V = (size_t)m->hp.n_vocab;
    enum { NW = 3 };
    // three different "encoder outputs"
    float *enc = malloc((size_t)NW * T * d * sizeof *enc);
    unsigned seed = 7;
    for (size_t i = 0; i < (size_t)NW * T * d; i++) {
        seed = seed * 1664525u + 1013904223u;
        enc[i] = (float)((seed >> 8) / 16777216.0 - 0.5);
    }
    am_decoder_params small = am_decoder_default_params();
    small.max_rows = 4; // forces steps to be split into groups
    am_decoder *dec = am_decoder_create(m, NULL), *dec_small = am_decoder_create(m, &small);
    am_xkv *xkv[NW];
    for (int i = 0; i < NW; i++) xkv[i] = am_xkv_create(m, AM_TYPE_F32);
    CHECK(dec && dec_small && xkv[0] && xkv[1] && xkv[2]);
    CHECK(am_decoder_set_audio(dec, xkv, enc, NW) == 0);
    const size_t T64 = (size_t)(T + 63) / 64 * 64; // positions are stored in groups of 64
    CHECK(am_xkv_bytes(m, AM_TYPE_F32) == (size_t)m->hp.n_text_layer * 2 * T64 * d * 4);
    CHECK(am_xkv_bytes(m, AM_TYPE_F16) == am_xkv_bytes(m, AM_TYPE_F32) / 2);

    // reference: each sequence alone, one prefill of 6 tokens
    const int32_t prompt[NW][6] = {{50257, 50362, 843, 523, 616, 5891},
                                   {50257, 50362, 11, 12, 13, 14},
                                   {50257, 50362, 1000, 2000, 3000, 4000}};
    float *ref = malloc((size_t)NW * 6 * V * sizeof *ref);
    am_seq *s[NW];
    for (int i = 0; i < NW; i++) {
        s[i] = am_seq_create(m, 0, AM_TYPE_F32);
        CHECK(s[i] != NULL);
        am_seq_reset(s[i], xkv[i]);
        const int32_t *tp = prompt[i];
        int six = 6;
        CHECK(am_decoder_step(dec, &s[i], &tp, &six, 1, AM_LOGITS_ALL, ref + (size_t)i * 6 * V) == 0);
        CHECK(am_seq_pos(s[i]) == 6);
    }
    const size_t C64 = (size_t)(m->hp.n_text_ctx + 63) / 64 * 64;
    CHECK(am_seq_bytes(s[0]) == (size_t)m->hp.n_text_layer * 2 * C64 * d * 4);
    CHECK(am_seq_bytes(s[0]) == am_seq_bytes_for(m, 0, AM_TYPE_F32));
    CHECK(am_seq_bytes_for(m, 0, AM_TYPE_F16) * 2 == am_seq_bytes_for(m, 0, AM_TYPE_F32));

    // mixed step: seq0 prefills 2, seq1 steps 1, seq2 prefills 3 — split over max_rows=4
    float *out = malloc((size_t)NW * 6 * V * sizeof *out);
    for (int i = 0; i < NW; i++) am_seq_reset(s[i], xkv[i]);
    {
        am_seq *ss[NW] = {s[0], s[1], s[2]};
        const int32_t *tp[NW] = {prompt[0], prompt[1], prompt[2]};
        int nt[NW] = {2, 1, 3};
        CHECK(am_decoder_step(dec_small, ss, tp, nt, NW, AM_LOGITS_LAST, out) == 0);
        CHECK(max_rel(out + 0 * V, ref + (0 * 6 + 1) * V, V) < 1e-5);
        CHECK(max_rel(out + 1 * V, ref + (1 * 6 + 0) * V, V) < 1e-5);
        CHECK(max_rel(out + 2 * V, ref + (2 * 6 + 2) * V, V) < 1e-5);
        // continue: seq2 leaves, seq0 and seq1 go on one token each (in swapped order)
        am_seq *s2[2] = {s[1], s[0]};
        const int32_t *tp2[2] = {&prompt[1][1], &prompt[0][2]};
        int one[2] = {1, 1};
        CHECK(am_decoder_step(dec, s2, tp2, one, 2, AM_LOGITS_LAST, out) == 0);
        CHECK(max_rel(out + 0 * V, ref + (1 * 6 + 1) * V, V) < 1e-5);
        CHECK(max_rel(out + 1 * V, ref + (0 * 6 + 2) * V, V) < 1e-5);
        CHECK(am_seq_pos(s[0]) == 3 && am_seq_pos(s[1]) == 2 && am_seq_pos(s[2]) == 3);
    }

    // two sequences sharing one cross K/V (a temperature-fallback retry), and truncate
    {
        am_seq *retry = am_seq_create(m, 0, AM_TYPE_F32);
        am_seq_reset(retry, xkv[2]);
        const int32_t *tp = prompt[2];
        int six = 6;
        CHECK(am_decoder_step(dec, &retry, &tp, &six, 1, AM_LOGITS_LAST, out) == 0);
        CHECK(max_rel(out, ref + (2 * 6 + 5) * V, V) < 1e-5);
        CHECK(am_seq_truncate(retry, 4) == 0 && am_seq_pos(retry) == 4);
        const int32_t *t5 = &prompt[2][4];
        int two = 2;
        CHECK(am_decoder_step(dec, &retry, &t5, &two, 1, AM_LOGITS_LAST, out) == 0);
        CHECK(max_rel(out, ref + (2 * 6 + 5) * V, V) < 1e-5);
        CHECK(am_seq_truncate(retry, 7) == AM_ERANGE);
        am_seq_free(retry); // freed in any order
    }

    // context limit: a 4-token sequence takes 4 tokens, not 5; nothing advances on error
    {
        am_seq *tiny = am_seq_create(m, 4, AM_TYPE_F32);
        CHECK(tiny != NULL);
        am_seq_reset(tiny, xkv[0]);
        const int32_t *tp = prompt[0];
        int five = 5, three = 3, two = 2;
        CHECK(am_decoder_step(dec, &tiny, &tp, &five, 1, AM_LOGITS_LAST, out) == AM_ERANGE);
        CHECK(am_seq_pos(tiny) == 0);
        CHECK(am_decoder_step(dec, &tiny, &tp, &three, 1, AM_LOGITS_LAST, out) == 0);
        CHECK(am_decoder_step(dec, &tiny, &tp, &two, 1, AM_LOGITS_LAST, out) == AM_ERANGE);
        CHECK(strstr(am_last_error(), "context") != NULL);
        am_seq_free(tiny);
        CHECK(am_seq_create(m, m->hp.n_text_ctx + 1, AM_TYPE_F32) == NULL);
        CHECK(am_seq_create(m, -1, AM_TYPE_F32) == NULL);
    }

    // argument errors: unbound sequence, bad token, duplicate, too many rows, NULLs
    {
        am_seq *unbound = am_seq_create(m, 0, AM_TYPE_F32);
        const int32_t ok = 50257, bad = (int32_t)V, neg = -1;
        const int32_t *tp = &ok;
        int one = 1;
        CHECK(am_decoder_step(dec, &unbound, &tp, &one, 1, AM_LOGITS_LAST, out) == AM_EINVAL);
        am_seq_reset(unbound, xkv[0]);
        tp = &bad;
        CHECK(am_decoder_step(dec, &unbound, &tp, &one, 1, AM_LOGITS_LAST, out) == AM_ERANGE);
        tp = &neg;
        CHECK(am_decoder_step(dec, &unbound, &tp, &one, 1, AM_LOGITS_LAST, out) == AM_ERANGE);
        am_seq *dup[2] = {unbound, unbound};
        const int32_t *tps[2] = {&ok, &ok};
        int ones[2] = {1, 1};
        CHECK(am_decoder_step(dec, dup, tps, ones, 2, AM_LOGITS_LAST, out) == AM_EINVAL);
        tp = prompt[0];
        int six = 6, zero = 0;
        CHECK(am_decoder_step(dec_small, &unbound, &tp, &six, 1, AM_LOGITS_LAST, out) == AM_ERANGE);
        CHECK(am_decoder_step(dec, &unbound, &tp, &zero, 1, AM_LOGITS_LAST, out) == AM_EINVAL);
        CHECK(am_decoder_step(dec, NULL, &tp, &one, 1, AM_LOGITS_LAST, out) == AM_EINVAL);
        CHECK(am_decoder_step(dec, NULL, NULL, NULL, 0, AM_LOGITS_LAST, NULL) == 0); // empty step is a no-op
        CHECK(am_seq_pos(unbound) == 0);
        am_seq_free(unbound);
        am_decoder_params bp = {.max_rows = 0};
        CHECK(am_decoder_create(m, &bp) == NULL);
    }

    // batch invariance: a sequence's logits are bit for bit the same whatever
    // shares its step — alone, with 69 other rows (beyond the 16-row tile and the
    // 64-row block of the products; sequences on the same window grouped in
    // cross-attention), and as part of a prefill; am_seq_copy forks a cache so
    // that the copy continues exactly like the original; cross-attention scores
    // are captured for the heads asked
    {
        enum { NB = 70 };
        am_seq *b[NB];
        const int32_t *tp[NB];
        int nt[NB], all[NB];
        for (int i = 0; i < NB; i++) {
            b[i] = am_seq_create(m, 0, AM_TYPE_F32);
            am_seq_reset(b[i], xkv[i % 2 ? 1 : i % 3 ? 0 : 2]);
            tp[i] = prompt[i % NW];
            nt[i] = 1 + i % 3;
            all[i] = i == 0;
        }
        float *alone = malloc((size_t)3 * V * sizeof *alone), *many = malloc((size_t)(NB + 2) * V * sizeof *many);
        am_seq *a = am_seq_create(m, 0, AM_TYPE_F32);
        am_seq_reset(a, xkv[2]); // as b[0]
        const int32_t *ta = prompt[0];
        int one = 1;
        CHECK(am_decoder_step(dec, &a, &ta, &one, 1, AM_LOGITS_LAST, alone) == 0); // row 0 of b[0]'s prefill
        const am_step_options o = {all, NULL};
        CHECK(am_decoder_step_opts(dec, b, tp, nt, NB, &o, many) == 0);
        CHECKF(memcmp(alone, many, (size_t)V * sizeof *many) == 0, "the first row differs in a 70-sequence step");
        // b[3] (1 token) and b[4] (2 tokens) of the big step, each again alone
        for (int k = 3; k <= 4; k++) {
            am_seq *c = am_seq_create(m, 0, AM_TYPE_F32);
            am_seq_reset(c, xkv[k % 2 ? 1 : k % 3 ? 0 : 2]);
            int n = nt[k];
            CHECK(am_decoder_step(dec, &c, &tp[k], &n, 1, AM_LOGITS_LAST, alone) == 0);
            const size_t row = (size_t)(nt[0] + (k - 1)); // rows: b[0] all 1 token, then one per sequence
            CHECKF(memcmp(alone, many + row * V, (size_t)V * sizeof *many) == 0, "sequence %d differs alone", k);
            // fork: a copy of c continues exactly as c does
            am_seq *f = am_seq_create(m, 0, AM_TYPE_F32);
            CHECK(am_seq_copy(f, c, 0) == 0 && am_seq_pos(f) == am_seq_pos(c));
            const int32_t next = 440;
            const int32_t *tn[2] = {&next, &next};
            am_seq *pair[2] = {c, f};
            int ones[2] = {1, 1};
            CHECK(am_decoder_step(dec, pair, tn, ones, 2, AM_LOGITS_LAST, many) == 0);
            CHECKF(memcmp(many, many + V, (size_t)V * sizeof *many) == 0, "a forked cache continues differently");
            am_seq_free(f);
            am_seq_free(c);
        }
        // capture: scores of (layer 0, head 1) and (last layer, head 0) for a 3-token prefill
        {
            am_seq *c = am_seq_create(m, 0, AM_TYPE_F32);
            am_seq_reset(c, xkv[1]);
            const int heads[4] = {0, 1, m->hp.n_text_layer - 1, 0};
            float *qk = malloc((size_t)2 * 3 * T * sizeof *qk);
            const am_xattn_capture cap = {2, heads, qk}, *caps[1] = {&cap};
            const int all1[1] = {1};
            const am_step_options oc = {all1, caps};
            int three = 3;
            for (size_t i = 0; i < (size_t)2 * 3 * T; i++) qk[i] = NAN;
            CHECK(am_decoder_step_opts(dec, &c, &tp[1], &three, 1, &oc, many) == 0);
            int finite = 1;
            for (size_t i = 0; i < (size_t)2 * 3 * T; i++) finite &= isfinite(qk[i]);
            CHECKF(finite, "captured cross-attention scores not all written");
            const int bad_heads[2] = {m->hp.n_text_layer, 0};
            const am_xattn_capture bad = {1, bad_heads, qk}, *bads[1] = {&bad};
            const am_step_options ob = {NULL, bads};
            am_seq_reset(c, xkv[1]);
            CHECK(am_decoder_step_opts(dec, &c, &tp[1], &three, 1, &ob, many) == AM_EINVAL);
            free(qk);
            am_seq_free(c);
        }
        for (int i = 0; i < NB; i++) am_seq_free(b[i]);
        am_seq_free(a);
        free(alone);
        free(many);
    }

    // reduced-precision K/V (--kv-type f16): the same prefills with half-precision
    // cross K/V and caches stay close to the float32 logits; a half-precision
    // sequence may attend a float32 window's cross K/V and vice versa
    {
        am_xkv *x16 = am_xkv_create(m, AM_TYPE_F16);
        am_seq *s16 = am_seq_create(m, 0, AM_TYPE_F16), *s32 = am_seq_create(m, 0, AM_TYPE_F32);
        CHECK(x16 && s16 && s32 && am_seq_bytes(s16) * 2 == am_seq_bytes(s32));
        CHECK(am_decoder_set_audio(dec, &x16, enc, 1) == 0);
        const int32_t *tp = prompt[0];
        int six = 6;
        double worst = 0;
        for (int mode = 0; mode < 3; mode++) { // f16 both, f16 cache + f32 cross, f32 cache + f16 cross
            am_seq *seq = mode == 2 ? s32 : s16;
            am_seq_reset(seq, mode == 1 ? xkv[0] : x16);
            CHECK(am_decoder_step(dec, &seq, &tp, &six, 1, AM_LOGITS_ALL, out) == 0);
            const double e = max_rel(out, ref, 6 * V);
            worst = fmax(worst, e);
            CHECKF(e > 0 && e < 2e-3, "kv f16 mode %d: logits differ by %.3g relative", mode, e);
        }
        printf("kv f16: logits within %.2e (relative to the max) of the float32 path\n", worst);
        CHECK(am_xkv_create(m, AM_TYPE_Q8_0) == NULL && am_seq_create(m, 0, AM_TYPE_Q8_0) == NULL);
        am_seq_free(s16);
        am_seq_free(s32);
        am_xkv_free(x16);
    }

    for (int i = 0; i < NW; i++) {
        am_seq_free(s[i]);
        am_xkv_free(xkv[i]);
    }
    free(enc);
    free(ref);
    free(out);
    am_decoder_free(dec);
    am_decoder_free(dec_small);
    am_model_free(m);
    return am_test_finish("test_decoder", 1);
}
