// fuzz_vad_model.c — libFuzzer target: the Silero VAD model loader
// (am_vad_model_load_buffer, src/am_vad.h), then one detection with a model
// that loads (as the scheduler uses it).
//
// Invariants beyond the sanitizers: a failure is a NULL with AM_EFORMAT (or
// AM_ENOMEM) and a message; a model that loads reports window 512 and a
// context in [0, 512], and runs am_vad_detect over three frames of a fixed
// signal without error (its weights may be anything, NaN included, so the
// probabilities are not checked).
//
// Corpus: fuzz/corpus/vad_model holds cuts of the model (header and first
// tensors); `make fuzz` adds the whole data/ggml-silero-v6.2.0.bin (885 KB,
// in the repository already) to the scratch corpus. Dictionary:
// fuzz/vad_model.dict (tensor names).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "am_vad.h"
#include "fuzz_common.h"

#define N_SAMPLES (3 * AM_VAD_FRAME - 100) // the last frame is padded

// ---------------------------------------------------------------- one input
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    am_set_error(AM_OK, "%s", "");
    am_vad_model *m = am_vad_model_load_buffer(data, size);
    if (!m) {
        const int code = am_last_error_code();
        FZ_ASSERT(code == AM_EFORMAT || code == AM_ENOMEM, "error code %d: %s", code, am_last_error());
        FZ_ASSERT(am_last_error()[0] != 0, "failure without a message");
        return 0;
    }
    const am_vad_info *info = am_vad_model_info(m);
    FZ_ASSERT(info && info->n_window == AM_VAD_FRAME && info->n_context >= 0 && info->n_context <= AM_VAD_FRAME,
              "info");
    float x[N_SAMPLES];
    for (int i = 0; i < N_SAMPLES; i++) x[i] = 0.5f * sinf(0.07f * (float)i) * (float)(i % 97) / 97.0f;
    am_vad_segment *seg = NULL;
    size_t n_seg = 0;
    const int rc = am_vad_detect(m, x, N_SAMPLES, NULL, &seg, &n_seg);
    FZ_ASSERT(rc == 0, "am_vad_detect: %s", am_last_error());
    for (size_t i = 0; i < n_seg; i++)
        FZ_ASSERT(seg[i].start_cs <= seg[i].end_cs && (i == 0 || seg[i - 1].end_cs <= seg[i].start_cs),
                  "segment %zu out of order", i);
    am_vad_segments_free(seg);
    am_vad_model_free(m);
    return 0;
}
