// am_decoder.h — Whisper text decoder stepping many independent sequences at once.
//
// Three objects:
//   am_xkv     — cross-attention K/V of one encoded 30 s window, computed once
//                (am_decoder_set_audio) and read by every sequence decoding
//                that window (e.g. temperature-fallback retries share it).
//   am_seq     — one decoding sequence: its self-attention KV cache, its
//                position, and the am_xkv it attends to.
//   am_decoder — the step engine and its scratch.
// am_decoder_step() advances N sequences (any mix of windows, requests and
// positions), taking one or several new tokens per sequence (prefill), and
// returns logits. The projection, MLP and vocabulary GEMMs run over all rows
// of all sequences at once; attention runs per (sequence, head).
// Sequences can be created, stepped, reset and freed in any order between calls.
// Keys and values (cross K/V and KV caches) are stored per head in the
// attention layout (am_attn.h), as float32 (the exact path, default) or IEEE
// half (kv_type AM_TYPE_F16: half the memory and traffic, not exact).
// The weights stay in the model's types; a step reads each weight once for
// all its sequences (am_gemm's streaming path).
//
// Ownership: the caller owns am_xkv and am_seq objects; an am_seq borrows its
// am_xkv (keep the xkv alive while a seq bound to it is stepped). Everything
// borrows the model. Thread-safety: one am_decoder per thread; an am_seq or
// am_xkv must not be stepped/written by two threads at once; am_xkv is
// read-only during steps and may be shared by many sequences.
#ifndef AM_DECODER_H
#define AM_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "am_model.h"

typedef struct am_decoder am_decoder;
typedef struct am_xkv am_xkv;
typedef struct am_seq am_seq;

typedef struct {
    int max_rows; // token rows per internal pass (all sequences of a step together); larger steps
                  // are split between sequences. A single sequence may not feed more. Default 512.
} am_decoder_params;

am_decoder_params am_decoder_default_params(void);

am_decoder *am_decoder_create(const am_model *m, const am_decoder_params *p);
void am_decoder_free(am_decoder *d);

// ---------------------------------------------------------------- cross K/V
// kv_type: AM_TYPE_F32 or AM_TYPE_F16 (element type of the stored keys and values).
am_xkv *am_xkv_create(const am_model *m, int kv_type);
void am_xkv_free(am_xkv *x);
// Bytes of one am_xkv: n_text_layer * 2 * n_audio_ctx (rounded up to 64) * d * element size.
size_t am_xkv_bytes(const am_model *m, int kv_type);

// enc (n, n_audio_ctx, d) -> xkv[0..n): K = enc @ Wk^T, V = enc @ Wv^T + bv per layer.
int am_decoder_set_audio(am_decoder *d, am_xkv *const *xkv, const float *enc, int n);

// ---------------------------------------------------------------- sequences
// n_ctx: cache capacity in tokens (1..n_text_ctx; 0 = n_text_ctx); kv_type as for am_xkv.
am_seq *am_seq_create(const am_model *m, int n_ctx, int kv_type);
void am_seq_free(am_seq *s);
// Bind to a window's cross K/V and rewind to position 0 (memory is reused).
void am_seq_reset(am_seq *s, const am_xkv *xkv);
// Tokens already in the cache.
int am_seq_pos(const am_seq *s);
// Drop the cache back to `pos` tokens (0 <= pos <= current position).
int am_seq_truncate(am_seq *s, int pos);
// Make dst a copy of src (same model, K/V type and a capacity >= src's
// position): bound to src's cross K/V, at src's position, with cache positions
// [from, src pos) copied. Positions [0, from) are kept as dst has them: the
// caller asserts they hold the same tokens (e.g. the shared prefix of two
// beams), so a fork copies only where two sequences differ. Returns 0 or
// AM_EINVAL / AM_ERANGE.
int am_seq_copy(am_seq *dst, const am_seq *src, int from);
// Bytes of state this sequence holds (self-attention KV cache).
size_t am_seq_bytes(const am_seq *s);
// Bytes of a sequence's KV cache for n_ctx tokens (0 = n_text_ctx) of kv_type.
size_t am_seq_bytes_for(const am_model *m, int n_ctx, int kv_type);

// ---------------------------------------------------------------- step
enum { AM_LOGITS_LAST = 0, AM_LOGITS_ALL = 1 };

// Advance n sequences: seqs[i] consumes tokens[i][0..n_tokens[i]).
// logits: AM_LOGITS_LAST -> (n, n_vocab), the logits after each sequence's
//         last new token; AM_LOGITS_ALL -> (sum n_tokens, n_vocab), one row
//         per new token, sequences in order.
// Fails (nothing advanced) if a sequence would overflow its context, has no
// bound am_xkv, appears twice, or a token id is out of range.
int am_decoder_step(am_decoder *d, am_seq *const *seqs, const int32_t *const *tokens, const int *n_tokens, int n,
                    int logits_mode, float *logits);

// Per-sequence options of a step (am_decoder_step_opts).
typedef struct {
    int n_heads;
    const int *heads; // (n_heads, 2): (layer, head) pairs of the cross-attention to keep
    float *qk;        // out (n_heads, n_tokens, n_audio_ctx): scale * q.k before softmax, per head and new token
} am_xattn_capture;

typedef struct {
    const int *all_logits;                  // (n,) 1: one logits row per new token of sequence i, 0: the
                                            // last only; NULL = last only for every sequence
    const am_xattn_capture *const *capture; // (n,) cross-attention scores to keep per sequence (entries may
                                            // be NULL); NULL = none
} am_step_options;

// am_decoder_step with per-sequence logits rows and cross-attention capture:
// logits rows come sequence after sequence, n_tokens[i] rows for a sequence
// with all_logits[i], else one.
int am_decoder_step_opts(am_decoder *d, am_seq *const *seqs, const int32_t *const *tokens, const int *n_tokens, int n,
                         const am_step_options *opts, float *logits);

// FLOPs of one decoder step for one token at context length `pos` (benchmarks).
double am_decoder_flops_per_token(const am_model *m, int pos);
// Bytes of weights one step reads (each once, in the model's types): the
// benchmark's memory-traffic figure (plus, per sequence, its cross K/V and
// its KV cache up to its position).
size_t am_decoder_weight_bytes(const am_model *m);

#endif // AM_DECODER_H
