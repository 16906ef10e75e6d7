// am_decode.h — decoding one 30 s window as openai-whisper's DecodingTask does,
// as a resumable state machine driven one batched decoder step at a time.
//
// A window decode (am_wdec) asks for the rows to feed next (am_wdec_inputs:
// one per live beam or candidate), the caller runs them through
// am_decoder_step together with other windows' rows, then hands back their
// logits (am_wdec_feed). Beams and candidates are sequences of the same
// window sharing its cross K/V; after each beam update a beam's KV cache is
// forked by handing the source's sequence to its first child and copying, for
// further children, only the positions where their old tokens part from the
// source's (am_seq_copy).
// Inside: optional language detection (one [sot] step), the prompt prefill,
// greedy decoding, beam search (BeamSearchDecoder: beam_size beams, patience,
// finished-candidate bookkeeping, length-penalty ranking) or seeded
// temperature sampling of best_of candidates, with the reference logit filters
// (SuppressBlank, SuppressTokens "-1", ApplyTimestampRules), no_speech_prob at
// the sot position, sum/avg logprob and each sampled token's log-probability
// (kept along each beam's history; token buffers are reserved once per window
// decode, nothing is allocated per step), gzip compression ratio, and the
// temperature fallback loop (a retry reuses the window's cross K/V).
//
// Ownership: am_decoding (per model + tokenizer) is immutable and shared by
// all threads. An am_wdec borrows the am_decoding, the am_seqs and am_xkv given
// to am_wdec_start, and copies the prompt. Thread-safety: one am_wdec is
// driven by one thread at a time.
#ifndef AM_DECODE_H
#define AM_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "am_decoder.h"
#include "am_model.h"
#include "am_tokenizer.h"

// ---------------------------------------------------------------- parameters
typedef struct {
    double temperature;           // first temperature; 0 = greedy. Default 0.
    double temperature_inc;       // fallback step (0.2); 0 disables fallback. Temperatures are
                                  // temperature, +inc, ... up to 1.0.
    double compression_ratio_threshold; // retry when gzip ratio is above (2.4); NAN disables
    double logprob_threshold;     // retry when avg logprob is below (-1.0); NAN disables
    double no_speech_threshold;   // silence when no_speech_prob above (0.6) and logprob low; NAN disables
    int without_timestamps;       // 1: <|notimestamps|> mode. Default 0.
    int suppress_blank;           // SuppressBlank filter. Default 1.
    double max_initial_timestamp; // seconds (1.0); < 0 disables
    int sample_len;               // max tokens sampled; 0 = n_text_ctx / 2 (224)
    uint64_t seed;                // sampling seed (each window mixes in its own index). Default 0.
    int beam_size;                // beams at temperature 0 (the reference's BeamSearchDecoder), 1..AM_MAX_GROUP;
                                  // 0 = greedy. Default 0. Attempts at temperature > 0 sample instead.
    int best_of;                  // candidates sampled at temperature > 0 (the best by ranking is kept),
                                  // 1..AM_MAX_GROUP; 0 = 1. Default 0. Unused at temperature 0.
    double patience;              // beam search: finished candidates collected = round(beam_size * patience)
                                  // (> 0). Default 1.0.
    double length_penalty;        // ranking of candidates: NAN = sum logprob / length (default); else
                                  // sum logprob / ((5 + length) / 6)^length_penalty, 0..1
} am_decode_params;

#define AM_MAX_GROUP 16 // most beams / best-of candidates of one window

am_decode_params am_decode_default_params(void);

// Shared per-model decoding tables (suppress list, blank tokens, specials).
typedef struct am_decoding am_decoding;

am_decoding *am_decoding_create(const am_model *m, const am_tokenizer *tok);
void am_decoding_free(am_decoding *dc);
const am_tokenizer *am_decoding_tokenizer(const am_decoding *dc);
const am_model *am_decoding_model(const am_decoding *dc);

// ---------------------------------------------------------------- results
#define AM_LANG_TOP 5

typedef struct {
    const char *code; // language code (static storage)
    float prob;
} am_lang_prob;

typedef struct {
    int32_t *tokens;       // sampled tokens, up to (excluding) eot; owned by the am_wdec
    int n_tokens;
    float *token_logprobs; // (n_tokens,) log-probability of each sampled token, owned by the am_wdec:
                           // log_softmax at temperature 1 of the filtered logits it was chosen from
                           // (GreedyDecoder's current_logprobs; for beams the per-token logprob on the
                           // chosen beam, as BeamSearchDecoder adds it). NULL when n_tokens is 0.
    float eot_logprob;     // log-probability of the closing <|endoftext|>, which sum_logprob includes
                           // (0 when the attempt stopped at the length limit without one)
    char *text;            // Tokenizer.decode(tokens).strip(); owned by the am_wdec
    double sum_logprob;    // sum of token_logprobs and eot_logprob: float32 accumulation for beams
                           // (exactly), double accumulation of the unrounded values otherwise
    double avg_logprob;    // sum_logprob / (n_tokens + 1)
    double no_speech_prob; // softmax at the sot position, <|nospeech|> entry
    double compression_ratio;
    double temperature;    // of the accepted attempt
    int n_attempts;        // 1 + fallbacks taken
    int n_steps;           // decoder steps consumed by all attempts
} am_wdec_result;

// ---------------------------------------------------------------- window decode
typedef struct am_wdec am_wdec;

typedef struct {
    const char *language;  // code/name; NULL = detect (multilingual) or "en" (English-only)
    int translate;         // task translate instead of transcribe (multilingual only)
    const int32_t *prompt; // previous-text tokens (without <|startofprev|>), any ids < n_vocab; last 223 used
    int n_prompt;
    uint64_t seed_mix;     // mixed into the sampling seed (e.g. window index)
    int detect_only;       // only detect the language (language must be NULL); no tokens sampled
} am_wdec_window;

am_wdec *am_wdec_create(const am_decoding *dc);
void am_wdec_free(am_wdec *w);

// Sequences a window decode with these parameters needs: max(1, beam_size, best_of).
int am_decode_group_size(const am_decode_params *p);
// Check beam_size, best_of, patience and length_penalty; 0 or AM_EINVAL with a message.
int am_decode_check_params(const am_decode_params *p);

// Begin decoding a window whose cross K/V is in xkv, using seqs[0..n_seqs)
// (n_seqs >= am_decode_group_size(p); reset here and on every retry; beams
// and best-of candidates each run in one of them). Returns 0 or AM_EINVAL
// (unknown language, translate on an English-only model, bad parameters).
int am_wdec_start(am_wdec *w, const am_decode_params *p, const am_wdec_window *win, am_seq *const *seqs, int n_seqs,
                  const am_xkv *xkv);

// The rows to feed in the next decoder step: seqs[r] consumes tokens[r][0..n_tokens[r]).
// The arrays need room for AM_MAX_GROUP rows. Returns the number of rows
// (one per live candidate; one while detecting or prefilling), 0 when finished.
int am_wdec_inputs(am_wdec *w, am_seq **seqs, const int32_t **tokens, int *n_tokens);

// Hand back the logits (rows, n_vocab) of the step, one row per row of the
// last am_wdec_inputs (the row after its last fed token); they are modified in
// place. Returns 1 when the window's decode is finished (result ready), 0 when
// it wants another step, or a negative error.
int am_wdec_feed(am_wdec *w, float *logits);

// The result once finished (NULL before).
const am_wdec_result *am_wdec_result_get(const am_wdec *w);

// Language detected for this window ("en"...), or the forced one; and the
// top-5 probabilities when detection ran (n = 0 otherwise).
const char *am_wdec_language(const am_wdec *w);
int am_wdec_language_probs(const am_wdec *w, am_lang_prob top[AM_LANG_TOP]);

// gzip compression ratio of a string, as the reference computes it
// (len(utf8) / len(zlib.compress(utf8))).
double am_decode_compression_ratio(const char *text, size_t len);

#endif // AM_DECODE_H
