// am_encoder.h — Whisper audio encoder over a batch of 30 s windows.
//
// am_encoder_run() takes B log-mel windows (n_mels, 3000) and writes B encoder
// outputs (n_audio_ctx, d), params.max_batch windows per pass (default 1: the
// work is compute-bound, and 1500 rows per product already run at the sgemm
// peak, so larger passes only cost scratch). Every linear layer is one product
// over the pass's rows (am_gemm, weights decoded from their file type); the
// conv stem is one product per window (M = 3000); attention runs per (window,
// head, block of queries) through am_attn. The arithmetic mirrors
// openai-whisper's AudioEncoder in float32.
//
// Ownership: the am_encoder borrows the model (which must outlive it) and owns
// its scratch, allocated once at create time for params.max_batch windows
// (fixed however many windows a call passes).
// Thread-safety: one am_encoder must not be used by two threads at once;
// several encoders may share one model.
#ifndef AM_ENCODER_H
#define AM_ENCODER_H

#include <stddef.h>

#include "am_model.h"

typedef struct {
    int max_batch; // windows per internal pass (scratch grows with it); larger calls are split. Default 1.
} am_encoder_params;

typedef struct am_encoder am_encoder;

am_encoder_params am_encoder_default_params(void);

am_encoder *am_encoder_create(const am_model *m, const am_encoder_params *p);
void am_encoder_free(am_encoder *e);

// mel (B, n_mels, 3000) -> out (B, n_audio_ctx, n_audio_state). Any B >= 1.
int am_encoder_run(am_encoder *e, const float *mel, int B, float *out);

// Bytes of scratch the encoder holds.
size_t am_encoder_scratch_bytes(const am_encoder *e);

// FLOPs of one window's forward pass (multiply-add = 2), for benchmarks.
double am_encoder_flops_per_window(const am_model *m);

#endif // AM_ENCODER_H
