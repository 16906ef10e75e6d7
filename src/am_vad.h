// am_vad.h — voice activity detection: Silero VAD v6.2 from whisper.cpp's VAD
// ggml file (models/ggml-silero-v6.2.0.bin), computed as whisper.cpp computes
// it, and whisper.cpp's speech segments.
//
// Network (per 512-sample frame at 16 kHz; the LSTM state runs across frames,
// zero at the start of every am_vad_probs call):
//   frame (512,) -> reflect pad 64 each side (640,) -> STFT as a strided conv
//   with the file's basis (258 kernels of 256, hop 128): (4, 258) -> magnitude
//   of (real, imaginary) halves (4, 129) -> conv 129->128 k3 s1 p1, ReLU ->
//   conv 128->64 k3 s2 p1, ReLU -> conv 64->64 k3 s2 p1, ReLU -> conv 64->128
//   k3 s1 p1, ReLU (1, 128) -> LSTM cell (hidden 128; gates i, f, g, o) ->
//   ReLU -> 1x1 conv 128->1 -> sigmoid = speech probability of the frame.
// The last frame of a clip is zero-padded to 512 samples. whisper.cpp (233fe1f)
// feeds each frame alone: the 64-sample context that silero-vad's own runtime
// prepends is stored in the file but not used, and neither is it here.
// Like whisper.cpp's ggml convolutions (im2col in half precision), the input of
// every convolution — the padded frame, the STFT magnitudes, the conv outputs,
// the LSTM output — is rounded to IEEE half before it is multiplied; weights
// stored as f16 are converted exactly; everything else is float32. Summation
// order differs from ggml's (float32 noise, ~1e-6 on a probability).
//
// Segments follow whisper.cpp's whisper_vad_segments_from_probs() exactly
// (threshold / threshold - 0.15 hysteresis, min silence, max speech with the
// split at the last silence of over 98 ms, the 200 ms merge, min speech,
// padding, centiseconds), see am_vad_segments_from_probs().
//
// Ownership: an am_vad_model owns its weights (free with am_vad_model_free);
// segment arrays are malloc'd and owned by the caller (am_vad_segments_free).
// Thread-safety: a model is immutable after loading; any number of threads may
// run am_vad_probs / am_vad_detect on one model at once (each call allocates
// its own scratch, about 300 KB, and runs on the calling thread only).
#ifndef AM_VAD_H
#define AM_VAD_H

#include <stddef.h>
#include <stdint.h>

#include "am_common.h"

// Samples per frame (one probability each) at 16 kHz: 32 ms.
#define AM_VAD_FRAME 512

// ---------------------------------------------------------------- model
typedef struct am_vad_model am_vad_model;

// Facts from the file's header.
typedef struct {
    char type[64];    // model type string ("silero-16k")
    int version[3];   // silero-vad version (6, 2, 0)
    int n_window;     // samples per frame (512)
    int n_context;    // context samples silero-vad prepends (64; unused, as in whisper.cpp)
    int n_f16;        // tensors the file stores as f16 (the rest are f32)
} am_vad_info;

// Load and validate a VAD model file: magic, header, every hyperparameter
// against the one network this module computes (Silero 16 kHz: window 512,
// encoder 129->128->64->64->128 with kernel 3, LSTM 128/128, output 128->1),
// every tensor's name, shape (ggml order; trailing 1s may be omitted), type
// (f32 or f16) and size against the file length; no tensor missing, unknown or
// twice. Returns NULL on error with am_last_error() set: AM_EINVAL (NULL path),
// AM_EIO (cannot open/read, not a regular file), AM_EFORMAT (malformed),
// AM_ENOMEM.
am_vad_model *am_vad_model_load(const char *path);

// Same from `size` bytes at `data` (not retained).
am_vad_model *am_vad_model_load_buffer(const void *data, size_t size);

void am_vad_model_free(am_vad_model *m);

const am_vad_info *am_vad_model_info(const am_vad_model *m);

// ---------------------------------------------------------------- probabilities
// Frames (probabilities) for n_samples: ceil(n_samples / 512).
size_t am_vad_n_frames(size_t n_samples);

// probs (am_vad_n_frames(n_samples),) = speech probability of each 512-sample
// frame of samples (n_samples,) (16 kHz mono float), the LSTM state starting
// at zero. n_samples == 0 writes nothing. Returns 0, AM_EINVAL (NULL argument)
// or AM_ENOMEM.
int am_vad_probs(const am_vad_model *m, const float *samples, size_t n_samples, float *probs);

// ---------------------------------------------------------------- segments
typedef struct {
    float threshold;         // a frame with probability >= threshold is speech; a segment ends only
                             // below threshold - 0.15 (at least 0.01). In (0, 1). Default 0.5.
    int min_speech_ms;       // segments shorter than this are dropped, ms, 0..3600000. Default 250.
    int min_silence_ms;      // silence that ends a segment, ms, 0..3600000. Default 100.
    float max_speech_s;      // segments longer than this are split, seconds, 0..86400 or +inf; only
                             // whole seconds count (whisper.cpp truncates the fraction), less one frame
                             // and twice the padding; a limit below that means none. Default 0 = none.
    int speech_pad_ms;       // each segment grows by this much on both sides (neighbours closer
                             // than twice this meet halfway), ms, 0..60000. Default 30.
    float samples_overlap_s; // am_vad_spans: audio kept past the end of every segment but the last,
                             // seconds, 0..10. Does not change the segments. Default 0.1.
} am_vad_params;

// The defaults documented on each field (whisper.cpp's).
am_vad_params am_vad_default_params(void);

// 0, or AM_EINVAL with a message naming the field and its bounds.
int am_vad_check_params(const am_vad_params *p);

// One speech segment in centiseconds of the clip, as whisper.cpp reports it
// (seconds = cs / 100). Ends may reach past the clip by up to one frame
// (whisper.cpp measures the clip as n_frames * 512 samples).
typedef struct {
    int64_t start_cs, end_cs;
} am_vad_segment;

// Speech segments from probs (n_frames,) exactly as whisper.cpp's
// whisper_vad_segments_from_probs(): *out (*n_out,) malloc'd (NULL when
// *n_out is 0), in order, not overlapping. Returns 0, AM_EINVAL (bad params,
// NULL pointer) or AM_ENOMEM; on error *out = NULL and *n_out = 0.
int am_vad_segments_from_probs(const float *probs, size_t n_frames, const am_vad_params *p, am_vad_segment **out,
                               size_t *n_out);

// am_vad_probs then am_vad_segments_from_probs. `p` may be NULL for the defaults.
int am_vad_detect(const am_vad_model *m, const float *samples, size_t n_samples, const am_vad_params *p,
                  am_vad_segment **out, size_t *n_out);

void am_vad_segments_free(am_vad_segment *segments);

// ---------------------------------------------------------------- audio spans
// The audio whisper.cpp keeps of each segment when it transcribes with VAD
// (whisper_vad): samples [start, end) of the clip with start and end from the
// segment's centiseconds (rounded to samples), clamped to n_samples - 1, and
// for every segment but the last end extended by samples_overlap_s (whole
// samples) and clamped again; speech_end is end before the overlap. A span
// can be empty (end <= start: a segment at the very end of the clip), which
// whisper.cpp skips.
typedef struct {
    int64_t start, end, speech_end;
} am_vad_span;

// spans (n,) for segments (n,) of a clip of n_samples; n == 0 is fine.
// Returns 0 or AM_EINVAL (NULL pointer, overlap outside 0..10 s).
int am_vad_spans(am_vad_span *spans, const am_vad_segment *segments, size_t n, size_t n_samples,
                 float samples_overlap_s);

// ---------------------------------------------------------------- transcription chunks
// Audio to transcribe as independent windows (VAD chunking, as faster-whisper's
// batched pipeline merges segments): consecutive speech segments are merged
// while the chunk spans at most max_chunk_s from its first segment's start to
// its last segment's end; a chunk is that contiguous audio (the silences inside
// it kept, the ones between chunks dropped). A segment longer than max_chunk_s
// is cut into pieces of max_chunk_s (and a shorter rest). Samples at 16 kHz,
// clamped to n_samples; chunks are in order and never overlap.
typedef struct {
    int64_t start, end; // samples [start, end)
} am_vad_chunk;

// *out (*n_out,) malloc'd (NULL when no speech: *n_out 0). max_chunk_s in
// [1, 3600]. Returns 0, AM_EINVAL or AM_ENOMEM.
int am_vad_chunks(const am_vad_segment *segments, size_t n, size_t n_samples, double max_chunk_s,
                  am_vad_chunk **out, size_t *n_out);

#endif // AM_VAD_H
