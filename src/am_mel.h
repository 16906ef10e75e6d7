// am_mel.h — log-mel spectrogram exactly as openai-whisper's audio.py computes it.
//
// 16 kHz mono samples -> pad 30 s of zeros -> centred STFT (reflect pad 200,
// periodic Hann 400, hop 160, drop the last frame) -> |X|^2 -> mel filterbank
// -> log10(max(., 1e-10)) -> clamp to (clip max - 8) -> (x + 4) / 4.
// The max is taken per clip: a batch never shares it across clips.
// Arithmetic is done in double precision and stored as float32.
//
// Ownership: am_mel owns its FFT plan and scratch; results are malloc'd and
// owned by the caller (free with am_mel_free_result). Thread-safety: one am_mel
// per thread (creation is safe from any thread); the filterbank is read-only.
#ifndef AM_MEL_H
#define AM_MEL_H

#include <stddef.h>

#define AM_MEL_N_FFT 400
#define AM_MEL_HOP 160
#define AM_MEL_N_BINS 201
#define AM_MEL_WINDOW_FRAMES 3000   // frames in one 30 s window
#define AM_MEL_PAD_SAMPLES 480000   // 30 s of zeros appended before the STFT

typedef struct am_mel am_mel;

// A clip's log-mel spectrogram, (n_mels, n_frames) row-major.
typedef struct {
    float *data;      // (n_mels, n_frames)
    int n_mels;
    int n_frames;     // total frames incl. the 30 s padding (= n_samples/160 + 3000)
    int content_frames; // frames that hold audio (n_frames - 3000)
} am_mel_result;

// filters: (n_mels, 201) row-major (the model's filterbank; copied).
am_mel *am_mel_create(const float *filters, int n_mels);
void am_mel_free(am_mel *m);

// Compute B clips in one call (each with its own max). out[b] receives clip b.
// Returns 0 or a negative AM_E* code (then no result needs freeing).
int am_mel_compute_batch(am_mel *m, const float *const *samples, const size_t *n_samples, int B,
                         am_mel_result *out);

// Single clip convenience wrapper.
int am_mel_compute(am_mel *m, const float *samples, size_t n_samples, am_mel_result *out);

void am_mel_free_result(am_mel_result *r);

// Copy the 30 s window starting at frame `offset` into dst (n_mels, 3000);
// frames past the end of the spectrogram are zero (the reference's pad_or_trim).
void am_mel_window(float *dst, const am_mel_result *mel, int offset);

// Copy n_frames (<= 3000) frames starting at `offset` into dst (n_mels, 3000)
// and zero the rest: transcribe()'s mel[:, seek:seek+size] then pad_or_trim.
void am_mel_window_n(float *dst, const am_mel_result *mel, int offset, int n_frames);

#endif // AM_MEL_H
