// test_encoder.c — encoder API: batches larger than max_batch are split and
// give the same numbers as one window at a time; argument errors.
#include <math.h>

#include "am_encoder.h"
#include "am_mel.h"
#include "am_model.h"
#include "am_test.h"

int main(void) {
    char path[1024];
    if (!am_test_find("fixtures/ggml-test-tiny.en.bin", path, sizeof path)) {
        SKIP_CASE("encoder", "tiny.en fixture not found");
        return am_test_finish("test_encoder", 0);
    }
    am_model *m = am_model_load(path);
    CHECK(m != NULL);
    if (!m) return am_test_finish("test_encoder", 0);
    const size_t W = (size_t)m->hp.n_mels * AM_MEL_WINDOW_FRAMES;
    const size_t E = (size_t)m->hp.n_audio_ctx * m->hp.n_audio_state;
    enum { B = 3 };
    float *mel = malloc(B * W * sizeof *mel), *out = malloc(B * E * sizeof *out), *one = malloc(E * sizeof *one);
    unsigned seed = 3;
    for (size_t i = 0; i < B * W; i++) {
        seed = seed * 1664525u + 1013904223u;
        mel[i] = (float)((seed >> 8) / 16777216.0 * 2.0 - 1.0);
    }
    am_encoder_params p = am_encoder_default_params();
    CHECK(p.max_batch >= 1);
    p.max_batch = 2; // B=3 is split into 2 + 1
    am_encoder *e = am_encoder_create(m, &p);
    CHECK(e != NULL);
    CHECK(am_encoder_scratch_bytes(e) > 0);
    CHECK(am_encoder_run(e, mel, B, out) == 0);
    for (int b = 0; b < B; b++) {
        CHECK(am_encoder_run(e, mel + b * W, 1, one) == 0);
        double err = 0, ref = 0;
        int finite = 1;
        for (size_t i = 0; i < E; i++) {
            err = fmax(err, fabs((double)out[b * E + i] - one[i]));
            ref = fmax(ref, fabs((double)one[i]));
            finite &= isfinite(out[b * E + i]);
        }
        CHECK(finite);
        CHECKF(err <= 1e-5 * ref, "window %d: batched vs single %.3e (ref %.3f)", b, err, ref);
    }
    // different inputs give different outputs (no row cross-talk or reuse)
    CHECK(memcmp(out, out + E, E * sizeof(float)) != 0);
    CHECK(am_encoder_flops_per_window(m) > 1e9);
    // errors
    CHECK(am_encoder_run(e, NULL, 1, out) == AM_EINVAL);
    CHECK(am_encoder_run(e, mel, 0, out) == AM_EINVAL);
    am_encoder_params bad = {.max_batch = 0};
    CHECK(am_encoder_create(m, &bad) == NULL && am_last_error()[0]);
    CHECK(am_encoder_create(NULL, NULL) == NULL);
    free(mel);
    free(out);
    free(one);
    am_encoder_free(e);
    am_model_free(m);
    return am_test_finish("test_encoder", 1);
}
