// am_align.h — word-level timestamps exactly as openai-whisper's timing.py
// computes them (find_alignment + add_word_timestamps), from the raw
// cross-attention scores of a teacher-forced decoder pass.
//
// The caller (am_transcribe's engine) runs the alignment pass of a window:
// tokens [*sot_sequence, <|notimestamps|>, *text_tokens, <|endoftext|>]
// through the decoder with the window's cross K/V, keeping for every
// alignment head (layer, head) the scaled scores q.k / sqrt(d_head) of every
// row against every audio position (before softmax), and the logits rows.
// This module turns them into words:
//   find_alignment: per head softmax over the first num_frames / 2 audio
//     positions; normalisation over tokens (mean and population std per
//     column); median filter of width 7 along time (reflect padding); mean
//     over heads; rows of <|notimestamps|> and the text tokens; DTW on the
//     negated matrix (float32 cost as the reference's dtw_cpu); token ->
//     word grouping (split_to_word_tokens: on Unicode boundaries for zh, ja,
//     th, lo, my, yue, else on spaces and punctuation); jump times; word
//     probability = mean of its tokens' probabilities (softmax over text tokens).
//   add_word_timestamps: the median/max duration clamps at sentence ends,
//     merge_punctuations with the reference's default prepend/append sets,
//     per-segment word lists with times rounded as Python's round(x, 2),
//     the first/last word clamps against the segment times and the last
//     speech timestamp, and the segment start/end taken from the words.
//
// Alignment heads: am_align_default_heads() gives the reference's per-model
// head lists for the official checkpoints (recognised from the model's
// hyperparameters and vocabulary; large-v1 and large-v2 have identical
// shapes and resolve to large-v2, see am_align_parse_heads for the override)
// and all heads of the last half of the decoder layers for any other model.
//
// Ownership: every result is malloc'd and owned by the caller (free with the
// matching am_align_*_free). Thread-safety: all functions are reentrant; the
// tokenizer and model are only read.
#ifndef AM_ALIGN_H
#define AM_ALIGN_H

#include <stddef.h>
#include <stdint.h>

#include "am_model.h"
#include "am_tokenizer.h"

#define AM_ALIGN_MAX_HEADS 256 // alignment heads a model may list (large models: 32 x 20 = 640 of all heads)

// ---------------------------------------------------------------- heads
typedef struct {
    int layer, head; // decoder block index, head index within it
} am_align_head;

// The reference's heads for model m (official checkpoint table, else all
// heads of layers n_text_layer / 2 ..). Writes at most cap heads to out and
// returns the count (which may exceed cap: call again with more room), or a
// negative error. `name` (optional, may be NULL) receives a static string:
// the checkpoint recognised ("tiny.en", "large-v3", ...) or "default".
int am_align_default_heads(const am_model *m, am_align_head *out, int cap, const char **name);

// Parse an --alignment-heads value for model m: a checkpoint name from the
// reference table ("tiny.en", "tiny", ..., "large-v1", "large-v2",
// "large-v3", "large-v3-turbo"; its heads must fit the model) or an explicit
// list "L,H;L,H;..." (0-based, within the model's n_text_layer x n_text_head).
// Returns the count written to out (<= cap), or AM_EINVAL with a message
// naming the problem.
int am_align_parse_heads(const am_model *m, const char *spec, am_align_head *out, int cap);

// ---------------------------------------------------------------- words
typedef struct {
    char *word;          // text incl. its leading space / merged punctuation (UTF-8, NUL-terminated)
    double start, end;   // seconds on the audio timeline (after add_word_timestamps: rounded to 0.01)
    double probability;  // mean probability of its tokens
    int32_t *tokens;     // its text tokens
    int n_tokens;
} am_word;

void am_words_free(am_word *w, int n);

// Inputs of one window's alignment pass.
typedef struct {
    const am_tokenizer *tok;
    const char *language;       // the transcript's language code ("en", "ja", ...): picks the word split
    const int32_t *text_tokens; // (n_text,) the text tokens of all the window's segments, in order (ids < eot)
    int n_text;
    int n_sot;                  // len(sot_sequence): rows before <|notimestamps|>
    // scores (n_heads, n_rows, n_audio_ctx): scale * q.k of each alignment head,
    // n_rows = n_sot + 1 + n_text + 1 rows of the pass, in token order
    const float *qk;
    int n_heads, n_rows, n_audio_ctx;
    // probs (n_text,): probability of text token i from the softmax over ids
    // [0, eot) of the logits row at position n_sot + i (am_align_token_prob)
    const float *probs;
    int num_frames;             // mel frames of audio in the window (segment_size); positions used = num_frames / 2
} am_align_input;

// find_alignment(): the window's words with start/end relative to the window
// (seconds, not rounded). *words = NULL and *n = 0 when there is no text.
// Returns 0 or a negative error (AM_ENOMEM, AM_EINVAL).
int am_align_find(const am_align_input *in, am_word **words, int *n);

// softmax(row[0 .. n_text_vocab))[token] in float32 (max-subtracted), as
// logits[:, :eot].softmax(-1) then indexing.
float am_align_token_prob(const float *row, int n_text_vocab, int32_t token);

// One segment of the window, as transcribe() holds it before words are added.
typedef struct {
    double start, end;      // in/out: seconds; add_word_timestamps may move them to the words
    const int32_t *tokens;  // the segment's tokens incl. timestamps (those >= eot are ignored)
    int n_tokens;
    am_word *words;         // out: the segment's words (malloc'd; NULL when none)
    int n_words;
} am_align_segment;

// add_word_timestamps(): distribute the window's words (from am_align_find,
// consumed: the array is freed and its strings move into the segments) over
// segs, with time_offset (seconds of the window start) added and the
// reference's clamps and rounding (numpy's round(x, 2), see am_align_round2).
// last_speech_timestamp is transcribe()'s value before this window
// (add_word_timestamps updates its own copy segment by segment; the caller
// applies transcribe()'s update afterwards).
// eot: the tokenizer's <|endoftext|> id.
// words is consumed on every return, errors included; on error no segment
// holds words (earlier segments' start/end may have moved).
// Returns 0 or a negative error.
int am_align_add_word_timestamps(am_align_segment *segs, int n_segs, am_word *words, int n_words, int32_t eot,
                                 double time_offset, double last_speech_timestamp);

// Python's round(x, 2) for a double (correctly rounded, ties to even on the exact binary value).
// Note: add_word_timestamps' own round(time_offset + timing.start, 2) rounds a numpy float64,
// i.e. np.round: rint(x * 100) / 100, which differs from this where x * 100 lands on a tie
// (2.675 -> 2.68 there, 2.67 here); am_align_add_word_timestamps uses numpy's rule.
double am_align_round2(double x);

#endif // AM_ALIGN_H
