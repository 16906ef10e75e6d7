// am_audio.h — audio input: any container/codec libavformat can demux
// (wav, mp3, flac, ogg/vorbis, ogg/opus, webm, m4a/mp4 aac, ...) decoded from a
// file path or a memory buffer to 16 kHz mono float32 samples.
//
// The result matches openai-whisper's loader, which runs
//   ffmpeg -nostdin -threads 0 -i FILE -f s16le -ac 1 -acodec pcm_s16le -ar 16000 -
// and divides the s16 samples by 32768: the best audio stream is decoded
// (libavcodec applies encoder delay / padding trimming itself), libswresample
// converts to mono (ffmpeg's default downmix matrix), 16000 Hz, signed 16-bit
// (default options, flushed at the end, no timestamp compensation, exactly as the
// ffmpeg CLI's auto-inserted aresample filter), then each sample becomes s/32768.
// Like the CLI, packets that fail to decode are skipped, a read error mid-stream
// ends the stream (a truncated file yields what was decodable), a stream that
// starts at a nonzero timestamp is not padded with silence, and a mid-stream
// change of rate/layout continues seamlessly; an input that yields no samples
// at all is an error.
//
// Safety: only the input itself is read. Demuxers that would open further
// resources (playlists such as hls/concat, mov external references) are refused,
// and file paths are opened literally (no "proto:" URL interpretation).
//
// Ownership: on success *out is a malloc'd array owned by the caller, released
// with am_audio_free(). Nothing else outlives a call; the memory buffer passed
// to am_audio_decode_memory() is only read during the call.
//
// Thread-safety: every function is reentrant and may be called from any number
// of threads concurrently (no globals of ours; libav* is thread-safe since 4.0).
// libav* logs warnings about damaged input to stderr through its own global log
// level, which this module leaves alone: an application that wants quiet calls
// av_log_set_level(AV_LOG_ERROR or AV_LOG_QUIET) once at startup.
#ifndef AM_AUDIO_H
#define AM_AUDIO_H

#include <stddef.h>

#include "am_common.h"

// Sample rate of every decoded output, in Hz.
#define AM_SAMPLE_RATE 16000

// ---------------------------------------------------------------- parameters
typedef struct {
    // Reject audio longer than this many seconds of output, with AM_ERANGE; the
    // check runs while decoding, so a long input fails early. Default 0 = unlimited.
    double max_seconds;
} am_audio_params;

// The defaults documented on each field.
am_audio_params am_audio_default_params(void);

// ---------------------------------------------------------------- decoding
// Decode to 16 kHz mono float32 in [-1, 1). On success returns 0, *out is
// malloc'd (free with am_audio_free) and *n_out > 0 is its sample count. On
// failure returns a negative AM_E* code, leaves *out = NULL, *n_out = 0 and sets
// am_last_error(): AM_EINVAL (NULL argument, bad params), AM_EIO (file cannot be
// opened or read), AM_EAUDIO (not audio, no audio stream, undecodable, decodes
// to nothing: "audio is empty"), AM_ERANGE (longer than max_seconds), AM_ENOMEM.
// `p` may be NULL for the defaults.
int am_audio_decode_file(const char *path, const am_audio_params *p, float **out, size_t *n_out);

// Same, from `size` bytes at `data` (the whole file image: any format the file
// variant accepts). The buffer is not modified and not retained.
int am_audio_decode_memory(const void *data, size_t size, const am_audio_params *p, float **out,
                           size_t *n_out);

// Release samples returned by the decode functions (NULL is fine).
void am_audio_free(float *samples);

// ---------------------------------------------------------------- encoding
// A 16 kHz mono 16-bit PCM WAV file image of samples (n,) (clipped to
// [-1, 1), rounded to the nearest step): *out malloc'd (free()), *len bytes.
// For tests and benchmarks that build recordings. Returns 0, AM_EINVAL (NULL
// argument, more than 2^31 samples) or AM_ENOMEM.
int am_audio_wav_encode(const float *samples, size_t n, unsigned char **out, size_t *len);

#endif // AM_AUDIO_H
