// am_format.h — transcript output formats, OpenAI's response shapes:
// json {"text", "usage"}, text, srt, vtt and verbose_json (task, language,
// duration, text, segments[id, seek, start, end, text, tokens, temperature,
// avg_logprob, compression_ratio, no_speech_prob], usage). usage is OpenAI's
// shape for whisper-1: {"type": "duration", "seconds": N}, N the audio's
// duration rounded up to whole seconds. With word timestamps (OpenAI's
// timestamp_granularities[] "word") verbose_json also has the top-level
// "words" [{word, start, end}] of all segments in order, the word text
// stripped as OpenAI's API gives it, and every segment its "words" [{word,
// start, end, probability}] exactly as the reference's transcribe() result
// (text unstripped, e.g. " dai"); granularities ["word"] alone leave out
// "segments". json, text, srt and vtt never show words. The CLI prints
// exactly the bodies the server sends.
//
// Ownership: rendered strings are malloc'd and owned by the caller.
// Thread-safety: all functions are reentrant.
#ifndef AM_FORMAT_H
#define AM_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "am_transcribe.h"

typedef enum {
    AM_FMT_JSON = 0,
    AM_FMT_TEXT,
    AM_FMT_SRT,
    AM_FMT_VTT,
    AM_FMT_VERBOSE_JSON,
} am_format;

// Extra fields for the JSON forms (all zero, or a NULL pointer: none).
typedef struct {
    int with_performance;     // add the "performance" object. Default 0.
    double processing_time_s; // wall time from request to result (seconds)
    const char *mode;         // "batched" / "sequential" / "cli"
    int with_words;           // verbose_json: the top-level "words" (text stripped; word, start, end) and each
                              // segment's "words" (word, start, end, probability) from am_segment.words
                              // (timestamp_granularities[] "word"). Default 0: no "words" keys at all.
    int without_segments;     // verbose_json: leave "segments" out (timestamp_granularities[] ["word"] alone).
                              // Default 0: segments are included.
    const am_tokenizer *logprobs; // json: add "logprobs" (include[]=logprobs), the sampled text tokens of every
                              // segment in order as am_format_logprobs renders them, token text from this
                              // tokenizer. Default NULL: no "logprobs".
} am_format_extra;

// OpenAI's logprobs entries [{token, logprob, bytes}] for the text tokens
// (ids below end-of-text; timestamps and specials are skipped) of
// tokens (n,) with their log-probabilities logprobs (n,), appended to the cJSON
// array arr: token is the token's bytes as text (invalid UTF-8 replaced),
// bytes the raw bytes. Returns 0 or AM_ENOMEM.
struct cJSON;
int am_format_logprobs(struct cJSON *arr, const am_tokenizer *tok, const int32_t *tokens, const float *logprobs,
                       int n);

// Add OpenAI's "usage" object of tr to the JSON object o: {"type": "duration",
// "seconds": the audio's duration rounded up to whole seconds}. 0 or AM_ENOMEM.
int am_format_usage(struct cJSON *o, const am_transcript *tr);

// "json", "text", "srt", "vtt", "verbose_json" -> format; AM_EINVAL otherwise.
int am_format_parse(const char *name, am_format *out);
const char *am_format_name(am_format f);
// HTTP Content-Type of a format.
const char *am_format_content_type(am_format f);

// Render tr as format f into a malloc'd NUL-terminated string.
int am_format_render(const am_transcript *tr, am_format f, const am_format_extra *extra, char **out, size_t *len);

// "HH:MM:SS,mmm" (srt, marker ',') or "HH:MM:SS.mmm" (vtt, marker '.') into buf (>= 16 bytes);
// milliseconds rounded half-to-even as Python's round().
void am_format_timestamp(double seconds, char marker, char *buf, size_t cap);

#endif // AM_FORMAT_H
