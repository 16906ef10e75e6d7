// am_tokenizer.h — Whisper's byte-level BPE tokenizer (openai-whisper
// tokenizer.py on top of tiktoken), special tokens, languages, and the
// non-speech suppress list.
//
// Vocabulary: whisper.cpp model files store the ordinary tokens only (token id
// = index = BPE rank); the special tokens follow from the model's n_vocab
// (see shared/FORMAT.md): <|endoftext|>, <|startoftranscript|>, one slot per
// language, <|translate|>, <|transcribe|>, <|startoflm|>, <|startofprev|>,
// <|nospeech|>, <|notimestamps|>, then 1501 timestamps <|0.00|> .. <|30.00|>.
// Ids between the stored tokens and <|endoftext|> (none in real models) and
// stored tokens with empty bytes (id 50256 of the multilingual vocabulary)
// decode to nothing and are never produced by encode.
//
// Ownership: am_tokenizer_create() copies the token bytes, so the caller's
// arrays may be freed right after it returns. Results of am_tokenizer_encode()
// and am_tokenizer_decode_alloc() are malloc'd and owned by the caller (free()).
// Pointers returned by accessors (specials, token bytes, language names) stay
// valid while the tokenizer (or, for language tables, the program) lives.
//
// Thread-safety: a tokenizer is immutable after create; any number of threads
// may use one concurrently (encode allocates its own PCRE2 match data per call).
// The language-table functions are pure.
#ifndef AM_TOKENIZER_H
#define AM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "am_common.h"

// ---------------------------------------------------------------- types
typedef struct am_tokenizer am_tokenizer;

#define AM_TOKENIZER_N_TIMESTAMPS 1501   // <|0.00|> .. <|30.00|>
#define AM_TOKENIZER_TIME_STEP 0.02      // seconds per timestamp token
#define AM_TOKENIZER_MAX_LANGUAGES 100   // size of the LANGUAGES table (v3 adds "yue")

// Special token ids of one vocabulary (values for .en / multilingual / v3 in
// FORMAT.md). Every id >= eot is special.
typedef struct {
    int32_t n_vocab;         // total incl. specials (51864 .en, 51865 multilingual, 51866 v3)
    int32_t eot;             // <|endoftext|>; also the number of text token ids
    int32_t sot;             // <|startoftranscript|>
    int32_t lang_begin;      // first language token (<|en|> = sot + 1); -1 for English-only models
    int32_t n_languages;     // 0 (.en), 99 (multilingual), 100 (v3)
    int32_t translate;       // <|translate|>
    int32_t transcribe;      // <|transcribe|>
    int32_t sot_lm;          // <|startoflm|>
    int32_t sot_prev;        // <|startofprev|>
    int32_t nospeech;        // <|nospeech|>
    int32_t notimestamps;    // <|notimestamps|>
    int32_t timestamp_begin; // <|0.00|>
    int32_t timestamp_end;   // <|30.00|> (= timestamp_begin + 1500 = n_vocab - 1)
    int is_multilingual;     // n_vocab >= 51865
} am_special_tokens;

// Which tokens am_tokenizer_decode() renders.
typedef enum {
    // Text tokens only (id < eot); every special token is dropped. This is what
    // transcribe.py uses for segment text (tokens < tokenizer.eot).
    AM_DECODE_TEXT = 0,
    // Tokenizer.decode(): drops timestamp tokens (id >= timestamp_begin) and
    // renders the other specials ("<|ja|>", "<|notimestamps|>", ...). This is
    // DecodingResult.text (before .strip()).
    AM_DECODE_NO_TIMESTAMPS = 1,
    // Tokenizer.decode_with_timestamps(): every token, specials rendered,
    // timestamps as "<|1.08|>".
    AM_DECODE_ALL = 2,
} am_decode_mode;

// ---------------------------------------------------------------- lifetime
// Build a tokenizer from the vocabulary stored in a model file:
// tok_bytes[i] / tok_len[i] (i < n_file_vocab) are the raw bytes of token id i
// (copied). n_vocab is the model's total vocabulary including specials. All 256
// single bytes must be tokens (byte-level BPE). Returns NULL and sets the last
// error (AM_EINVAL / AM_EFORMAT / AM_ENOMEM) on failure.
am_tokenizer *am_tokenizer_create(const uint8_t *const *tok_bytes, const uint32_t *tok_len, int n_file_vocab,
                                  int n_vocab);
void am_tokenizer_free(am_tokenizer *t);

// ---------------------------------------------------------------- tokens
// The special token ids (never NULL for a valid tokenizer; NULL for t == NULL).
const am_special_tokens *am_tokenizer_specials(const am_tokenizer *t);
// Total vocabulary size (0 for t == NULL).
int32_t am_tokenizer_n_vocab(const am_tokenizer *t);

// The bytes of one token as the reference's decode_with_timestamps renders
// it: raw bytes for text tokens (not necessarily valid UTF-8 on their own),
// the name ("<|endoftext|>", "<|fr|>", "<|1.08|>") for specials. Returns 0, or
// AM_EINVAL / AM_ERANGE (id outside [0, n_vocab)). *bytes is not NUL-terminated.
int am_tokenizer_token_bytes(const am_tokenizer *t, int32_t id, const char **bytes, size_t *len);

// 1 when id is a special token (eot .. n_vocab-1), else 0 (also for bad ids).
int am_tokenizer_is_special(const am_tokenizer *t, int32_t id);
// 1 when id is a timestamp token, else 0.
int am_tokenizer_is_timestamp(const am_tokenizer *t, int32_t id);
// Seconds of a timestamp token ((id - timestamp_begin) * 0.02), or -1.0.
double am_tokenizer_timestamp_seconds(const am_tokenizer *t, int32_t id);

// ---------------------------------------------------------------- encode
// tiktoken's encode_ordinary(): split `text` (len bytes, UTF-8; need not be
// NUL-terminated) with whisper's GPT-2 regex, then BPE-merge each piece by
// rank. Special-token names in the text are encoded as ordinary text. Invalid
// UTF-8 never fails: bytes the regex cannot match form their own pieces and
// are merged byte-wise. On success *ids is a malloc'd array of *n ids (NULL
// when *n == 0) that the caller free()s. Returns 0 or AM_EINVAL / AM_ENOMEM.
int am_tokenizer_encode(const am_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n);

// ---------------------------------------------------------------- decode
// Concatenate the bytes of the selected tokens (see am_decode_mode), then
// decode them as UTF-8 with invalid sequences replaced by U+FFFD exactly as
// Python's bytes.decode("utf-8", errors="replace") does (one U+FFFD per maximal
// ill-formed subpart). A multi-byte character split across tokens comes out
// whole. Writes the NUL-terminated text to out (cap bytes; out may be NULL
// when cap == 0) and its full length (excluding the NUL) to *len (optional).
// Returns 0; AM_EFULL when cap was too small (out then holds the longest
// prefix of whole characters that fit, NUL-terminated; *len is the size
// needed); AM_ERANGE for an id outside [0, n_vocab); AM_EINVAL for bad args.
int am_tokenizer_decode(const am_tokenizer *t, const int32_t *ids, size_t n, am_decode_mode mode, char *out,
                        size_t cap, size_t *len);
// Same, into a malloc'd NUL-terminated string the caller free()s.
int am_tokenizer_decode_alloc(const am_tokenizer *t, const int32_t *ids, size_t n, am_decode_mode mode,
                              char **text, size_t *len);

// ---------------------------------------------------------------- suppression
// Tokenizer.non_speech_tokens, derived from the vocabulary at create time:
// speaker tags and non-speech annotations ("♪", "[", " (", ...), sorted.
// Copies min(count, cap) ids into out (may be NULL when cap == 0) and returns
// the count, or AM_EINVAL.
int am_tokenizer_non_speech_tokens(const am_tokenizer *t, int32_t *out, size_t cap);
// decoding.py's suppress_tokens="-1" set: non_speech_tokens plus transcribe,
// translate, sot, sot_prev, sot_lm and nospeech; sorted, unique. Same calling
// convention as above.
int am_tokenizer_suppress_tokens(const am_tokenizer *t, int32_t *out, size_t cap);

// ---------------------------------------------------------------- languages
// The reference LANGUAGES table, in its order (index 0 "en" .. 99 "yue").
// Code / full lower-case name ("english") of a table index; NULL when out of range.
const char *am_tokenizer_lang_code(int index);
const char *am_tokenizer_lang_name(int index);
// Table index of a language given as a code ("en"), a name ("english") or a
// reference alias ("castilian", "mandarin", ...), ASCII case-insensitive as
// get_tokenizer() lowercases; -1 when unknown or NULL.
int am_tokenizer_lang_index(const char *code_or_name);
// Token id of a language (code, name or alias). Returns the id, AM_EINVAL when
// the language is unknown, AM_EUNSUPPORTED when this vocabulary has no token for
// it (every language for .en, "yue" before v3).
int32_t am_tokenizer_lang_token(const am_tokenizer *t, const char *code_or_name);
// Code of a language token id ("en" for sot+1), or NULL when id is not one of
// this vocabulary's language tokens.
const char *am_tokenizer_token_lang(const am_tokenizer *t, int32_t id);

// The reference sot_sequence: [sot] for English-only models; [sot, language,
// task] for multilingual ones (language NULL means "en", as get_tokenizer
// defaults it; translate != 0 selects <|translate|>, else <|transcribe|>).
// Writes up to 3 ids into out and returns how many, or a negative error (see
// am_tokenizer_lang_token).
int am_tokenizer_sot_sequence(const am_tokenizer *t, const char *language, int translate, int32_t out[3]);

#endif // AM_TOKENIZER_H
