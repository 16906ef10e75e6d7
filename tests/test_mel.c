// test_mel.c — mel spectrogram properties beyond the golden comparison:
// per-clip max inside a batch, frame counts, short/empty clips, windows.
#include <math.h>

#include "am_mel.h"
#include "am_model.h"
#include "am_test.h"

static float *tone(size_t n, double freq, double amp, unsigned seed) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)(amp * sin(2 * M_PI * freq * i / 16000.0) + amp * 0.01 * ((seed >> 16) / 32768.0 - 1));
    }
    return x;
}

int main(void) {
    char path[1024];
    if (!am_test_find("fixtures/ggml-test-tiny.en.bin", path, sizeof path)) {
        SKIP_CASE("mel", "tiny.en fixture not found");
        return am_test_finish("test_mel", 0);
    }
    am_model *m = am_model_load(path);
    CHECK(m != NULL);
    if (!m) return am_test_finish("test_mel", 0);
    am_mel *mel = am_mel_create(m->mel_filters, m->hp.n_mels);
    CHECK(mel != NULL);

    // frame count: (n + 480000) / 160, content = n / 160
    const size_t lens[] = {0, 1, 150, 399, 16000, 16159, 160 * 3000, 160 * 3000 + 7};
    for (size_t i = 0; i < AM_ARRAY_LEN(lens); i++) {
        float *x = tone(lens[i], 440, 0.3, (unsigned)i);
        am_mel_result r;
        int rc = am_mel_compute(mel, x, lens[i], &r);
        CHECKF(rc == 0, "n=%zu: %s", lens[i], am_last_error());
        if (!rc) {
            CHECKF(r.n_frames == (int)((lens[i] + 480000) / 160), "n=%zu frames %d", lens[i], r.n_frames);
            CHECK(r.content_frames == r.n_frames - 3000);
            int finite = 1;
            for (size_t k = 0; k < (size_t)r.n_mels * r.n_frames; k++) finite &= isfinite(r.data[k]);
            CHECK(finite);
            am_mel_free_result(&r);
        }
        free(x);
    }

    // per-clip max: a loud and a quiet clip batched == each alone
    const size_t n1 = 16000 * 3, n2 = 16000 * 7;
    float *loud = tone(n1, 440, 0.9, 1), *quiet = tone(n2, 1000, 0.001, 2);
    const float *clips[2] = {loud, quiet};
    const size_t ns[2] = {n1, n2};
    am_mel_result batch[2], alone[2];
    CHECK(am_mel_compute_batch(mel, clips, ns, 2, batch) == 0);
    CHECK(am_mel_compute(mel, loud, n1, &alone[0]) == 0);
    CHECK(am_mel_compute(mel, quiet, n2, &alone[1]) == 0);
    for (int b = 0; b < 2; b++) {
        CHECK(batch[b].n_frames == alone[b].n_frames);
        CHECK(memcmp(batch[b].data, alone[b].data, (size_t)batch[b].n_mels * batch[b].n_frames * 4) == 0);
    }
    // the quiet clip's max is its own: its maximum log-mel value maps near the top
    float mx0 = -1e9f, mx1 = -1e9f;
    for (size_t k = 0; k < (size_t)batch[1].n_mels * batch[1].n_frames; k++) mx1 = fmaxf(mx1, batch[1].data[k]);
    for (size_t k = 0; k < (size_t)batch[0].n_mels * batch[0].n_frames; k++) mx0 = fmaxf(mx0, batch[0].data[k]);
    CHECKF(mx0 > mx1 + 1.0f, "loud max %.3f quiet max %.3f", mx0, mx1);
    // the floor is max - 8 in log10 units, i.e. (max-8+4)/4 after scaling
    // (the loud clip's padding is silence, far below its max, so it is clamped)
    float mn0 = 1e9f;
    for (size_t k = 0; k < (size_t)batch[0].n_mels * batch[0].n_frames; k++) mn0 = fminf(mn0, batch[0].data[k]);
    CHECKF(fabsf((mx0 - mn0) - 2.0f) < 1e-4f, "loud range %.6f, expected 2 (8 decades / 4)", mx0 - mn0);

    // windows: offset inside, and past the end (zero-padded like pad_or_trim)
    const size_t W = (size_t)m->hp.n_mels * AM_MEL_WINDOW_FRAMES;
    float *win = malloc(W * sizeof *win);
    am_mel_window(win, &batch[1], 100);
    CHECK(win[0] == batch[1].data[100]);
    CHECK(win[AM_MEL_WINDOW_FRAMES - 1] == batch[1].data[100 + AM_MEL_WINDOW_FRAMES - 1]);
    am_mel_window(win, &batch[1], batch[1].n_frames - 10);
    CHECK(win[9] == batch[1].data[batch[1].n_frames - 1]);
    int zeros = 1;
    for (int t = 10; t < AM_MEL_WINDOW_FRAMES; t++) zeros &= win[t] == 0.0f;
    CHECK(zeros);

    // errors
    am_mel_result bad;
    CHECK(am_mel_create(NULL, 80) == NULL);
    CHECK(am_mel_compute_batch(mel, NULL, ns, 1, &bad) == AM_EINVAL);
    const float *null_clip[1] = {NULL};
    const size_t one[1] = {5};
    CHECK(am_mel_compute_batch(mel, null_clip, one, 1, &bad) == AM_EINVAL);

    for (int b = 0; b < 2; b++) {
        am_mel_free_result(&batch[b]);
        am_mel_free_result(&alone[b]);
    }
    free(win);
    free(loud);
    free(quiet);
    am_mel_free(mel);
    am_model_free(m);
    return am_test_finish("test_mel", 1);
}
