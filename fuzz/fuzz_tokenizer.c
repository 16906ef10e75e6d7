// fuzz_tokenizer.c — libFuzzer target: the byte-level BPE tokenizer
// (am_tokenizer_encode / am_tokenizer_decode / am_tokenizer_decode_alloc,
// src/am_tokenizer.h) with the tiny.en fixture's vocabulary, laid out three
// ways: as stored (English-only, n_vocab 51864) and as a multilingual (51865)
// and a v3 (51866) vocabulary (the same ordinary tokens, the specials and
// language tokens of those layouts).
//
// Each input is used three ways:
//   1. as text: encode it; every id is an ordinary token (< eot) and the ids'
//      bytes concatenate to the input exactly (BPE is lossless, invalid UTF-8
//      included); decoding them (AM_DECODE_TEXT) gives what decoding the input
//      byte by byte gives.
//   2. (each layout) as token ids folded into the vocabulary (little-endian 16-bit values mod
//      n_vocab: text, specials, timestamps): decode_alloc in every
//      am_decode_mode is valid UTF-8, and am_tokenizer_decode agrees with it at
//      the exact capacity and returns AM_EFULL with the longest whole-character
//      prefix at a smaller one (chosen by the input; an exact-size heap block).
//   3. (each layout) as raw 32-bit ids (negative and huge ones too): decoding succeeds when
//      all are in [0, n_vocab), else fails with AM_ERANGE; the token accessors
//      agree with the specials table.
// Also (each layout) the language lookups on the input as a NUL-terminated string.
//
// One-time state (LLVMFuzzerInitialize; libFuzzer calls the target with no
// context argument, so it lives in one static struct): the three tokenizers and
// the id of each single-byte token. Read-only after initialisation.
//
// Corpus: fuzz/corpus/tokenizer (English, punctuation, contractions, numbers,
// CJK, emoji, invalid UTF-8, special-token names); dictionary: fuzz/tokenizer.dict.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "am_tokenizer.h"
#include "fuzz_common.h"

// ---------------------------------------------------------------- one-time state
#define N_LAYOUTS 3

static struct {
    am_tokenizer *toks[N_LAYOUTS]; // n_vocab 51864 (as stored), 51865, 51866
    am_tokenizer *tok;             // toks[0]
    const am_special_tokens *sp;   // of tok
    int32_t byte_id[256];          // the token of each single byte
} g;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char path[4096];
    if (!fz_find_tiny_model(path, sizeof path)) fz_die("ggml-test-tiny.en.bin not found", path);
    am_model *m = am_model_load(path);
    if (!m) fz_die(path, am_last_error());
    for (int k = 0; k < N_LAYOUTS; k++)
        if (!(g.toks[k] = am_tokenizer_create(m->vocab_bytes, m->vocab_len, m->n_file_vocab, m->hp.n_vocab + k)))
            fz_die("am_tokenizer_create", am_last_error());
    am_model_free(m);
    g.tok = g.toks[0];
    g.sp = am_tokenizer_specials(g.tok);
    for (int b = 0; b < 256; b++) {
        const char c = (char)b;
        int32_t *ids = NULL;
        size_t n = 0;
        if (am_tokenizer_encode(g.tok, &c, 1, &ids, &n) || n != 1) fz_die("single-byte token", am_last_error());
        g.byte_id[b] = ids[0];
        free(ids);
    }
    return 0;
}

// ---------------------------------------------------------------- helpers
// Strict UTF-8 (no overlongs, surrogates or values above U+10FFFF).
static int utf8_valid(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        const uint8_t b = s[i];
        size_t k;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) k = 0;
        else if (b >= 0xC2 && b <= 0xDF) k = 1;
        else if (b >= 0xE0 && b <= 0xEF) k = 2, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
        else if (b >= 0xF0 && b <= 0xF4) k = 3, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
        else return 0;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || s[i + j] < lo || s[i + j] > hi) return 0;
            lo = 0x80, hi = 0xBF;
        }
        i += k + 1;
    }
    return 1;
}

static size_t utf8_char_len(uint8_t b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

// decode_alloc, then am_tokenizer_decode at the exact capacity and at a smaller one.
static void decode_checks(const am_tokenizer *t, const int32_t *ids, size_t n, am_decode_mode mode,
                          size_t small_cap) {
    char *full = NULL;
    size_t len = 0;
    int rc = am_tokenizer_decode_alloc(t, ids, n, mode, &full, &len);
    FZ_ASSERT(rc == 0, "decode_alloc mode %d: %s", (int)mode, am_last_error());
    FZ_ASSERT(strlen(full) <= len && full[len] == 0, "decode_alloc length");
    FZ_ASSERT(utf8_valid((const uint8_t *)full, len), "decode mode %d is not valid UTF-8", (int)mode);
    char *out = malloc(len + 1);
    size_t len2 = 0;
    if (out) {
        rc = am_tokenizer_decode(t, ids, n, mode, out, len + 1, &len2);
        FZ_ASSERT(rc == 0 && len2 == len && memcmp(out, full, len + 1) == 0, "decode at the exact capacity");
        free(out);
    }
    const size_t cap = small_cap % (len + 1); // < len + 1: too small
    out = cap ? malloc(cap) : NULL;
    if (cap && !out) goto done;
    rc = am_tokenizer_decode(t, ids, n, mode, out, cap, &len2);
    FZ_ASSERT(rc == AM_EFULL && len2 == len, "decode into %zu bytes: rc %d, len %zu (want %zu)", cap, rc, len2, len);
    if (cap) {
        const size_t k = strnlen(out, cap);
        FZ_ASSERT(k < cap, "truncated output not NUL-terminated");
        FZ_ASSERT(memcmp(out, full, k) == 0, "truncated output is not a prefix");
        FZ_ASSERT(((uint8_t)full[k] & 0xC0) != 0x80, "truncated output splits a character");
        FZ_ASSERT(k + utf8_char_len((uint8_t)full[k]) > cap - 1 || memchr(full, 0, len) != NULL,
                  "truncated output is not the longest prefix (%zu of cap %zu)", k, cap);
    }
    free(out);
done:
    free(full);
}

// ---------------------------------------------------------------- the uses
static void as_text(const uint8_t *data, size_t size) {
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = am_tokenizer_encode(g.tok, (const char *)data, size, &ids, &n);
    FZ_ASSERT(rc == 0, "encode: %s", am_last_error());
    FZ_ASSERT((n == 0) == (size == 0) && n <= size, "%zu ids for %zu bytes", n, size);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        FZ_ASSERT(ids[i] >= 0 && ids[i] < g.sp->eot, "id %d at %zu is not a text token", ids[i], i);
        const char *b = NULL;
        size_t nb = 0;
        FZ_ASSERT(am_tokenizer_token_bytes(g.tok, ids[i], &b, &nb) == 0 && nb > 0, "token %d has no bytes", ids[i]);
        FZ_ASSERT(at + nb <= size && memcmp(b, data + at, nb) == 0, "token %zu (%d) does not match the input", i,
                  ids[i]);
        at += nb;
    }
    FZ_ASSERT(at == size, "ids cover %zu of %zu bytes", at, size);
    int32_t *bytes = malloc((size ? size : 1) * sizeof *bytes);
    if (bytes) {
        for (size_t i = 0; i < size; i++) bytes[i] = g.byte_id[data[i]];
        char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        FZ_ASSERT(am_tokenizer_decode_alloc(g.tok, ids, n, AM_DECODE_TEXT, &a, &la) == 0 &&
                      am_tokenizer_decode_alloc(g.tok, bytes, size, AM_DECODE_TEXT, &b, &lb) == 0,
                  "decode: %s", am_last_error());
        FZ_ASSERT(la == lb && memcmp(a, b, la) == 0, "BPE ids and bytes decode differently");
        free(a);
        free(b);
        free(bytes);
    }
    free(ids);
}

static void as_folded_ids(const am_tokenizer *t, const uint8_t *data, size_t size) {
    const int32_t n_vocab = am_tokenizer_n_vocab(t);
    const size_t n = size / 2;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return;
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)((data[2 * i] | data[2 * i + 1] << 8) % n_vocab);
    const size_t small = size ? data[0] * 131u + data[size - 1] : 0;
    decode_checks(t, ids, n, AM_DECODE_TEXT, small);
    decode_checks(t, ids, n, AM_DECODE_NO_TIMESTAMPS, small + 1);
    decode_checks(t, ids, n, AM_DECODE_ALL, small + 2);
    free(ids);
}

static void as_raw_ids(const am_tokenizer *t, const uint8_t *data, size_t size) {
    const am_special_tokens *sp = am_tokenizer_specials(t);
    const size_t n = size / 4;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return;
    int all_in = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, data + 4 * i, 4);
        ids[i] = (int32_t)u;
        const int32_t id = ids[i];
        const int in = id >= 0 && id < sp->n_vocab;
        all_in &= in;
        const char *b = NULL;
        size_t nb = 0;
        const int rc = am_tokenizer_token_bytes(t, id, &b, &nb);
        FZ_ASSERT(in ? rc == 0 : rc == AM_ERANGE, "token_bytes(%d) = %d", id, rc);
        FZ_ASSERT(am_tokenizer_is_special(t, id) == (in && id >= sp->eot), "is_special(%d)", id);
        const int ts = in && id >= sp->timestamp_begin;
        FZ_ASSERT(am_tokenizer_is_timestamp(t, id) == ts, "is_timestamp(%d)", id);
        const double sec = am_tokenizer_timestamp_seconds(t, id);
        FZ_ASSERT(ts ? sec >= 0.0 && sec <= 30.0 : sec == -1.0, "timestamp_seconds(%d) = %g", id, sec);
        const char *code = am_tokenizer_token_lang(t, id);
        FZ_ASSERT(!code || am_tokenizer_lang_token(t, code) == id, "token_lang(%d) = %s", id, code);
    }
    for (int mode = AM_DECODE_TEXT; mode <= AM_DECODE_ALL; mode++) {
        char *text = NULL;
        size_t len = 0;
        const int rc = am_tokenizer_decode_alloc(t, ids, n, (am_decode_mode)mode, &text, &len);
        FZ_ASSERT(all_in ? rc == 0 : rc == AM_ERANGE && text == NULL, "decode of raw ids: rc %d", rc);
        free(text);
        char small[8];
        const int rc2 = am_tokenizer_decode(t, ids, n, (am_decode_mode)mode, small, sizeof small, &len);
        FZ_ASSERT(all_in ? rc2 == 0 || rc2 == AM_EFULL : rc2 == AM_ERANGE, "decode of raw ids: rc %d", rc2);
    }
    free(ids);
}

static void as_language(const am_tokenizer *t, const uint8_t *data, size_t size) {
    const am_special_tokens *sp = am_tokenizer_specials(t);
    char s[64];
    const size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, n);
    s[n] = 0;
    const int idx = am_tokenizer_lang_index(s);
    FZ_ASSERT(idx >= -1 && idx < AM_TOKENIZER_MAX_LANGUAGES, "lang_index %d", idx);
    if (idx >= 0) FZ_ASSERT(am_tokenizer_lang_code(idx) && am_tokenizer_lang_name(idx), "language %d", idx);
    const int32_t id = am_tokenizer_lang_token(t, s);
    if (idx < 0) FZ_ASSERT(id == AM_EINVAL, "lang_token('%s') = %d for an unknown language", s, id);
    else if (idx >= sp->n_languages) FZ_ASSERT(id == AM_EUNSUPPORTED, "lang_token('%s') = %d", s, id);
    else FZ_ASSERT(id == sp->lang_begin + idx && am_tokenizer_is_special(t, id), "lang_token('%s') = %d", s, id);
    int32_t sot[3];
    const int k = am_tokenizer_sot_sequence(t, s, size & 1, sot);
    if (!sp->is_multilingual) {
        FZ_ASSERT(k == 1 && sot[0] == sp->sot, "sot_sequence English-only: %d", k);
    } else if (id < 0) {
        FZ_ASSERT(k == id, "sot_sequence('%s') = %d", s, k);
    } else {
        const int32_t task = (size & 1) ? sp->translate : sp->transcribe;
        FZ_ASSERT(k == 3 && sot[0] == sp->sot && sot[1] == id && sot[2] == task, "sot_sequence('%s')", s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    as_text(data, size);
    for (int k = 0; k < N_LAYOUTS; k++) {
        as_folded_ids(g.toks[k], data, size);
        as_raw_ids(g.toks[k], data, size);
        as_language(g.toks[k], data, size);
    }
    return 0;
}
