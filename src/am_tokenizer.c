// am_tokenizer.c — Whisper byte-level BPE tokenizer (see am_tokenizer.h).
//
// Layout: every id in [0, n_vocab) owns a byte range of one blob (stored
// tokens copied as-is, special tokens rendered to their names), so decode is a
// plain concatenation followed by a streaming UTF-8 repair. Encode splits with
// PCRE2 and merges with a heap keyed by (rank, position), which picks the same
// pair as tiktoken's "leftmost lowest rank" scan in O(n log n).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "am_tokenizer.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- tables
typedef struct {
    const char *code;
    const char *name;
} lang_entry;

// openai-whisper tokenizer.py LANGUAGES, in its order (the order fixes the ids).
static const lang_entry k_languages[AM_TOKENIZER_MAX_LANGUAGES] = {
    {"en", "english"},     {"zh", "chinese"},    {"de", "german"},         {"es", "spanish"},
    {"ru", "russian"},     {"ko", "korean"},     {"fr", "french"},         {"ja", "japanese"},
    {"pt", "portuguese"},  {"tr", "turkish"},    {"pl", "polish"},         {"ca", "catalan"},
    {"nl", "dutch"},       {"ar", "arabic"},     {"sv", "swedish"},        {"it", "italian"},
    {"id", "indonesian"},  {"hi", "hindi"},      {"fi", "finnish"},        {"vi", "vietnamese"},
    {"he", "hebrew"},      {"uk", "ukrainian"},  {"el", "greek"},          {"ms", "malay"},
    {"cs", "czech"},       {"ro", "romanian"},   {"da", "danish"},         {"hu", "hungarian"},
    {"ta", "tamil"},       {"no", "norwegian"},  {"th", "thai"},           {"ur", "urdu"},
    {"hr", "croatian"},    {"bg", "bulgarian"},  {"lt", "lithuanian"},     {"la", "latin"},
    {"mi", "maori"},       {"ml", "malayalam"},  {"cy", "welsh"},          {"sk", "slovak"},
    {"te", "telugu"},      {"fa", "persian"},    {"lv", "latvian"},        {"bn", "bengali"},
    {"sr", "serbian"},     {"az", "azerbaijani"}, {"sl", "slovenian"},     {"kn", "kannada"},
    {"et", "estonian"},    {"mk", "macedonian"}, {"br", "breton"},         {"eu", "basque"},
    {"is", "icelandic"},   {"hy", "armenian"},   {"ne", "nepali"},         {"mn", "mongolian"},
    {"bs", "bosnian"},     {"kk", "kazakh"},     {"sq", "albanian"},       {"sw", "swahili"},
    {"gl", "galician"},    {"mr", "marathi"},    {"pa", "punjabi"},        {"si", "sinhala"},
    {"km", "khmer"},       {"sn", "shona"},      {"yo", "yoruba"},         {"so", "somali"},
    {"af", "afrikaans"},   {"oc", "occitan"},    {"ka", "georgian"},       {"be", "belarusian"},
    {"tg", "tajik"},       {"sd", "sindhi"},     {"gu", "gujarati"},       {"am", "amharic"},
    {"yi", "yiddish"},     {"lo", "lao"},        {"uz", "uzbek"},          {"fo", "faroese"},
    {"ht", "haitian creole"}, {"ps", "pashto"},  {"tk", "turkmen"},        {"nn", "nynorsk"},
    {"mt", "maltese"},     {"sa", "sanskrit"},   {"lb", "luxembourgish"},  {"my", "myanmar"},
    {"bo", "tibetan"},     {"tl", "tagalog"},    {"mg", "malagasy"},       {"as", "assamese"},
    {"tt", "tatar"},       {"haw", "hawaiian"},  {"ln", "lingala"},        {"ha", "hausa"},
    {"ba", "bashkir"},     {"jw", "javanese"},   {"su", "sundanese"},      {"yue", "cantonese"},
};

// TO_LANGUAGE_CODE's extra aliases (alias name -> code).
static const lang_entry k_aliases[] = {
    {"my", "burmese"},   {"ca", "valencian"},  {"nl", "flemish"},   {"ht", "haitian"},
    {"lb", "letzeburgesch"}, {"ps", "pushto"}, {"pa", "panjabi"},   {"ro", "moldavian"},
    {"ro", "moldovan"},  {"si", "sinhalese"},  {"es", "castilian"}, {"zh", "mandarin"},
};

// Tokenizer.non_speech_tokens inputs. Each symbol is encoded alone and with a
// leading space; a single-token result is suppressed.
static const char *const k_nonspeech_symbols[] = {
    // list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
    "\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^", "_", "`",
    "{", "|", "}", "~", "\xE3\x80\x8C" /* 「 */, "\xE3\x80\x8D" /* 」 */, "\xE3\x80\x8E" /* 『 */,
    "\xE3\x80\x8F" /* 』 */,
    // "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
    "<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"", "((", "))", "(((", ")))", "[[", "]]",
    "{{", "}}", "\xE2\x99\xAA\xE2\x99\xAA", "\xE2\x99\xAA\xE2\x99\xAA\xE2\x99\xAA",
};
// "♩♪♫♬♭♮♯" (U+2669..U+266F): the first token is suppressed even when the
// symbol takes several tokens.
static const char *const k_nonspeech_misc[] = {
    "\xE2\x99\xA9", "\xE2\x99\xAA", "\xE2\x99\xAB", "\xE2\x99\xAC", "\xE2\x99\xAD", "\xE2\x99\xAE", "\xE2\x99\xAF",
};

// The GPT-2 split pattern of tiktoken, with \s spelled out as the Unicode
// White_Space property (what Rust's regex means by \s; PCRE2's UCP \s differs
// on U+180E).
#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char k_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS
                                "]+(?![^" WS "])|[" WS "]+";
#undef WS

// ---------------------------------------------------------------- struct
struct am_tokenizer {
    am_special_tokens sp;
    int32_t n_file_vocab;
    int32_t n_lang_slots; // language ids in the id space (99 for .en, unused there)
    char *blob;           // bytes of every id, specials rendered
    size_t *off;          // [n_vocab + 1]: id i owns blob[off[i], off[i+1])
    int32_t *slots;       // open-addressing table of ids keyed by their bytes, -1 = empty
    size_t slot_mask;
    pcre2_code *re;
    int32_t *non_speech;
    size_t n_non_speech;
    int32_t *suppress;
    size_t n_suppress;
};

// ---------------------------------------------------------------- specials
// Render the name of special id (>= eot) into buf; returns its length.
static int render_special(const am_special_tokens *sp, int32_t n_lang_slots, int32_t id, char buf[32]) {
    const char *name = NULL;
    if (id == sp->eot) name = "endoftext";
    else if (id == sp->sot) name = "startoftranscript";
    else if (id > sp->sot && id <= sp->sot + n_lang_slots) name = k_languages[id - sp->sot - 1].code;
    else if (id == sp->translate) name = "translate";
    else if (id == sp->transcribe) name = "transcribe";
    else if (id == sp->sot_lm) name = "startoflm";
    else if (id == sp->sot_prev) name = "startofprev";
    else if (id == sp->nospeech) name = "nospeech";
    else if (id == sp->notimestamps) name = "notimestamps";
    if (name) return snprintf(buf, 32, "<|%s|>", name);
    // Python: f"<|{i * 0.02:.2f}|>" (int * float in double, then correctly rounded)
    return snprintf(buf, 32, "<|%.2f|>", (double)(id - sp->timestamp_begin) * 0.02);
}

// ---------------------------------------------------------------- hash map
static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull; // FNV-1a
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

// Id whose stored bytes are exactly p[0..n), or -1.
static int32_t lookup(const am_tokenizer *t, const uint8_t *p, size_t n) {
    size_t i = (size_t)hash_bytes(p, n) & t->slot_mask;
    for (;;) {
        int32_t id = t->slots[i];
        if (id < 0) return -1;
        size_t len = t->off[id + 1] - t->off[id];
        if (len == n && memcmp(t->blob + t->off[id], p, n) == 0) return id;
        i = (i + 1) & t->slot_mask;
    }
}

static int build_map(am_tokenizer *t) {
    size_t cap = 1024;
    while (cap < 2 * (size_t)t->n_file_vocab) cap *= 2;
    t->slots = malloc(cap * sizeof *t->slots);
    if (!t->slots) return am_set_error(AM_ENOMEM, "out of memory for the token map");
    memset(t->slots, 0xff, cap * sizeof *t->slots); // all -1
    t->slot_mask = cap - 1;
    for (int32_t id = 0; id < t->n_file_vocab; id++) {
        const uint8_t *p = (const uint8_t *)t->blob + t->off[id];
        size_t n = t->off[id + 1] - t->off[id];
        if (n == 0) continue;             // empty placeholder (multilingual 50256): never encoded
        size_t i = (size_t)hash_bytes(p, n) & t->slot_mask;
        int dup = 0;
        while (t->slots[i] >= 0) {
            int32_t o = t->slots[i];
            if (t->off[o + 1] - t->off[o] == n && memcmp(t->blob + t->off[o], p, n) == 0) {
                dup = 1;                  // duplicate bytes: the lowest id (rank) wins
                break;
            }
            i = (i + 1) & t->slot_mask;
        }
        if (!dup) t->slots[i] = id;
    }
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        if (lookup(t, &c, 1) < 0)
            return am_set_error(AM_EFORMAT, "vocabulary lacks the single-byte token 0x%02x", b);
    }
    return 0;
}

// ---------------------------------------------------------------- BPE
typedef struct {
    int32_t *v;
    size_t n, cap;
} id_vec;

static int vec_push(id_vec *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        int32_t *nv = realloc(v->v, cap * sizeof *nv);
        if (!nv) return am_set_error(AM_ENOMEM, "out of memory in encode");
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = id;
    return 0;
}

typedef struct {
    int32_t rank;
    uint32_t ver;
    size_t pos;
} heap_ent;

typedef struct {
    size_t *next, *prev; // part links by start offset; next of the last part = L
    uint32_t *ver;       // bumped whenever the pair starting at a part changes
    heap_ent *heap;
    size_t cap;          // piece bytes the arrays hold
} bpe_scratch;

static int heap_less(const heap_ent *a, const heap_ent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(heap_ent *h, size_t *n, heap_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static heap_ent heap_pop(heap_ent *h, size_t *n) {
    heap_ent top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

static int scratch_reserve(bpe_scratch *s, size_t n) {
    if (n <= s->cap) return 0;
    size_t heap_n;
    if (am_mul_size(n, 3, &heap_n) || n > SIZE_MAX / sizeof(heap_ent) / 3)
        return am_set_error(AM_ENOMEM, "encode piece too large");
    free(s->next);
    free(s->prev);
    free(s->ver);
    free(s->heap);
    s->next = malloc(n * sizeof *s->next);
    s->prev = malloc(n * sizeof *s->prev);
    s->ver = malloc(n * sizeof *s->ver);
    s->heap = malloc(heap_n * sizeof *s->heap);
    s->cap = 0;
    if (!s->next || !s->prev || !s->ver || !s->heap) return am_set_error(AM_ENOMEM, "out of memory in encode");
    s->cap = n;
    return 0;
}

// Rank of merging the part at `pos` with its successor, or -1.
static int32_t pair_rank(const am_tokenizer *t, const uint8_t *p, size_t L, const size_t *next, size_t pos) {
    size_t a = next[pos];
    if (a >= L) return -1;
    size_t b = next[a];
    return lookup(t, p + pos, b - pos);
}

// tiktoken: a piece that is itself a token is emitted directly; otherwise the
// adjacent pair with the lowest rank (leftmost on ties) merges until none can.
static int bpe_piece(const am_tokenizer *t, const uint8_t *p, size_t L, bpe_scratch *s, id_vec *out) {
    if (L == 0) return 0;
    int32_t whole = lookup(t, p, L);
    if (whole >= 0) return vec_push(out, whole);
    int rc = scratch_reserve(s, L);
    if (rc) return rc;
    size_t hn = 0;
    for (size_t i = 0; i < L; i++) {
        s->next[i] = i + 1;
        s->prev[i] = i - 1; // SIZE_MAX for the first part
        s->ver[i] = 0;
    }
    for (size_t i = 0; i + 1 < L; i++) {
        int32_t r = lookup(t, p + i, 2);
        if (r >= 0) heap_push(s->heap, &hn, (heap_ent){r, 0, i});
    }
    while (hn > 0) {
        heap_ent e = heap_pop(s->heap, &hn);
        if (e.ver != s->ver[e.pos]) continue; // stale
        size_t i = e.pos, j = s->next[i];
        // merge part j into part i
        s->next[i] = s->next[j];
        if (s->next[j] < L) s->prev[s->next[j]] = i;
        s->ver[j]++;
        s->ver[i]++;
        int32_t r = pair_rank(t, p, L, s->next, i);
        if (r >= 0) heap_push(s->heap, &hn, (heap_ent){r, s->ver[i], i});
        if (i > 0) {
            size_t h = s->prev[i];
            s->ver[h]++;
            r = pair_rank(t, p, L, s->next, h);
            if (r >= 0) heap_push(s->heap, &hn, (heap_ent){r, s->ver[h], h});
        }
    }
    for (size_t i = 0; i < L; i = s->next[i]) {
        int32_t id = lookup(t, p + i, s->next[i] - i);
        if (id < 0) return am_set_error(AM_EINTERNAL, "BPE produced a part that is not a token");
        if ((rc = vec_push(out, id))) return rc;
    }
    return 0;
}

// ---------------------------------------------------------------- encode
int am_tokenizer_encode(const am_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!t || !ids || !n || (!text && len > 0)) return am_set_error(AM_EINVAL, "am_tokenizer_encode: bad arguments");
    if (len == 0) return 0;
    id_vec out = {0};
    bpe_scratch s = {0};
    int rc = 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!md) {
        rc = am_set_error(AM_ENOMEM, "out of memory for regex match data");
        goto fail;
    }
    const uint8_t *u = (const uint8_t *)text;
    size_t pos = 0;
    while (pos < len) {
        int m = pcre2_match(t->re, u, len, pos, 0, md, NULL);
        size_t ms, me;
        if (m == PCRE2_ERROR_NOMATCH) {
            ms = me = len; // the rest is bytes the pattern cannot match (invalid UTF-8)
        } else if (m < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(m, msg, sizeof msg);
            // PCRE2_ERROR_NOMEMORY: its heap (backtracking frames) could not grow
            rc = am_set_error(m == PCRE2_ERROR_NOMEMORY ? AM_ENOMEM : AM_EINTERNAL, "regex match failed: %s",
                              (const char *)msg);
            goto fail;
        } else {
            const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            ms = ov[0];
            me = ov[1];
            if (ms < pos || me > len || me < ms) {
                rc = am_set_error(AM_EINTERNAL, "regex match out of bounds");
                goto fail;
            }
            if (me == ms) me = ms = ms + 1 <= len ? ms + 1 : len; // cannot happen; never loop forever
        }
        if (ms > pos && (rc = bpe_piece(t, u + pos, ms - pos, &s, &out))) goto fail; // unmatched bytes
        if (me > ms && (rc = bpe_piece(t, u + ms, me - ms, &s, &out))) goto fail;
        pos = me;
    }
    pcre2_match_data_free(md);
    free(s.next);
    free(s.prev);
    free(s.ver);
    free(s.heap);
    *ids = out.v;
    *n = out.n;
    return 0;
fail:
    pcre2_match_data_free(md);
    free(s.next);
    free(s.prev);
    free(s.ver);
    free(s.heap);
    free(out.v);
    return rc;
}

// ---------------------------------------------------------------- decode
typedef struct {
    char *out;
    size_t cap;
    size_t len;     // bytes of the full text so far
    size_t written; // bytes stored in out (== len until truncated)
    int truncated;  // once set, nothing more is written (out keeps a prefix)
} sink;

static void sink_put(sink *s, const uint8_t *b, size_t n) {
    if (!s->truncated) {
        if (s->len + n < s->cap) {
            memcpy(s->out + s->len, b, n);
            s->written = s->len + n;
        } else {
            s->truncated = 1;
        }
    }
    s->len += n;
}

static const uint8_t k_replacement[3] = {0xEF, 0xBF, 0xBD}; // U+FFFD

// Streaming UTF-8 decoder with CPython's "replace" policy: a maximal prefix of
// a well-formed sequence that breaks off becomes one U+FFFD; a byte that can
// start nothing becomes one U+FFFD.
typedef struct {
    uint8_t buf[4];
    int have, need;
    uint8_t lo, hi; // allowed range of the next continuation byte
} utf8_state;

static void utf8_feed(utf8_state *d, sink *s, uint8_t b) {
    if (d->need) {
        if (b >= d->lo && b <= d->hi) {
            d->buf[d->have++] = b;
            d->lo = 0x80;
            d->hi = 0xBF;
            if (--d->need == 0) {
                sink_put(s, d->buf, (size_t)d->have);
                d->have = 0;
            }
            return;
        }
        sink_put(s, k_replacement, 3);
        d->have = d->need = 0; // b starts afresh
    }
    if (b < 0x80) {
        sink_put(s, &b, 1);
        return;
    }
    d->lo = 0x80;
    d->hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) d->need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        d->need = 2;
        if (b == 0xE0) d->lo = 0xA0;      // no overlongs
        else if (b == 0xED) d->hi = 0x9F; // no surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
        d->need = 3;
        if (b == 0xF0) d->lo = 0x90;
        else if (b == 0xF4) d->hi = 0x8F; // <= U+10FFFF
    } else {
        sink_put(s, k_replacement, 3); // 80..C1, F5..FF
        return;
    }
    d->buf[0] = b;
    d->have = 1;
}

static int check_ids(const am_tokenizer *t, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->sp.n_vocab)
            return am_set_error(AM_ERANGE, "token id %d at %zu outside [0, %d)", (int)ids[i], i, (int)t->sp.n_vocab);
    return 0;
}

static void decode_into(const am_tokenizer *t, const int32_t *ids, size_t n, am_decode_mode mode, sink *s) {
    int32_t limit = mode == AM_DECODE_TEXT ? t->sp.eot
                    : mode == AM_DECODE_NO_TIMESTAMPS ? t->sp.timestamp_begin
                                                      : t->sp.n_vocab;
    utf8_state d = {0};
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id >= limit) continue;
        const uint8_t *p = (const uint8_t *)t->blob + t->off[id];
        size_t len = t->off[id + 1] - t->off[id];
        for (size_t k = 0; k < len; k++) utf8_feed(&d, s, p[k]);
    }
    if (d.have) sink_put(s, k_replacement, 3);
    if (s->cap > 0) s->out[s->written] = 0;
}

static int check_decode_args(const am_tokenizer *t, const int32_t *ids, size_t n, am_decode_mode mode) {
    if (!t || (!ids && n > 0)) return am_set_error(AM_EINVAL, "am_tokenizer_decode: bad arguments");
    if (mode != AM_DECODE_TEXT && mode != AM_DECODE_NO_TIMESTAMPS && mode != AM_DECODE_ALL)
        return am_set_error(AM_EINVAL, "am_tokenizer_decode: bad mode %d", (int)mode);
    return check_ids(t, ids, n);
}

int am_tokenizer_decode(const am_tokenizer *t, const int32_t *ids, size_t n, am_decode_mode mode, char *out,
                        size_t cap, size_t *len) {
    if (len) *len = 0;
    if (!out && cap > 0) return am_set_error(AM_EINVAL, "am_tokenizer_decode: NULL output with capacity");
    if (cap > 0) out[0] = 0;
    int rc = check_decode_args(t, ids, n, mode);
    if (rc) return rc;
    sink s = {out, cap, 0, 0, 0};
    decode_into(t, ids, n, mode, &s);
    if (len) *len = s.len;
    if (s.truncated || s.len >= cap)
        return am_set_error(AM_EFULL, "decode needs %zu bytes, buffer holds %zu", s.len + 1, cap);
    return 0;
}

int am_tokenizer_decode_alloc(const am_tokenizer *t, const int32_t *ids, size_t n, am_decode_mode mode,
                              char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!text) return am_set_error(AM_EINVAL, "am_tokenizer_decode_alloc: NULL result pointer");
    int rc = check_decode_args(t, ids, n, mode);
    if (rc) return rc;
    sink count = {NULL, 0, 0, 0, 0};
    decode_into(t, ids, n, mode, &count);
    char *buf = malloc(count.len + 1);
    if (!buf) return am_set_error(AM_ENOMEM, "out of memory for decoded text");
    sink s = {buf, count.len + 1, 0, 0, 0};
    decode_into(t, ids, n, mode, &s);
    *text = buf;
    if (len) *len = s.len;
    return 0;
}

// ---------------------------------------------------------------- tokens
const am_special_tokens *am_tokenizer_specials(const am_tokenizer *t) { return t ? &t->sp : NULL; }

int32_t am_tokenizer_n_vocab(const am_tokenizer *t) { return t ? t->sp.n_vocab : 0; }

int am_tokenizer_token_bytes(const am_tokenizer *t, int32_t id, const char **bytes, size_t *len) {
    if (!t || !bytes || !len) return am_set_error(AM_EINVAL, "am_tokenizer_token_bytes: bad arguments");
    if (id < 0 || id >= t->sp.n_vocab)
        return am_set_error(AM_ERANGE, "token id %d outside [0, %d)", (int)id, (int)t->sp.n_vocab);
    *bytes = t->blob + t->off[id];
    *len = t->off[id + 1] - t->off[id];
    return 0;
}

int am_tokenizer_is_special(const am_tokenizer *t, int32_t id) {
    return t && id >= t->sp.eot && id < t->sp.n_vocab;
}

int am_tokenizer_is_timestamp(const am_tokenizer *t, int32_t id) {
    return t && id >= t->sp.timestamp_begin && id <= t->sp.timestamp_end;
}

double am_tokenizer_timestamp_seconds(const am_tokenizer *t, int32_t id) {
    if (!am_tokenizer_is_timestamp(t, id)) return -1.0;
    return (double)(id - t->sp.timestamp_begin) * AM_TOKENIZER_TIME_STEP;
}

// ---------------------------------------------------------------- suppression
static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static size_t sort_unique(int32_t *v, size_t n) {
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_i32);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[k - 1]) v[k++] = v[i];
    return k;
}

// Encode `prefix` + s and report the first token and the token count.
static int encode_first(const am_tokenizer *t, const char *prefix, const char *s, int32_t *first, size_t *count) {
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s%s", prefix, s);
    if (n < 0 || (size_t)n >= sizeof buf) return am_set_error(AM_EINTERNAL, "non-speech symbol too long");
    int32_t *ids = NULL;
    size_t cnt = 0;
    int rc = am_tokenizer_encode(t, buf, (size_t)n, &ids, &cnt);
    if (rc) return rc;
    if (cnt == 0) {
        free(ids);
        return am_set_error(AM_EINTERNAL, "encoding \"%s\" gave no tokens", buf);
    }
    *first = ids[0];
    *count = cnt;
    free(ids);
    return 0;
}

static int build_suppress(am_tokenizer *t) {
    enum { n_sym = AM_ARRAY_LEN(k_nonspeech_symbols), n_misc = AM_ARRAY_LEN(k_nonspeech_misc) };
    size_t max = 2 + 2 * (n_sym + n_misc);
    t->non_speech = malloc(max * sizeof *t->non_speech);
    t->suppress = malloc((max + 6) * sizeof *t->suppress);
    if (!t->non_speech || !t->suppress) return am_set_error(AM_ENOMEM, "out of memory for the suppress list");
    size_t k = 0, cnt;
    int rc;
    // hyphens and apostrophes stay allowed inside words, not at a word start
    if ((rc = encode_first(t, "", " -", &t->non_speech[k++], &cnt))) return rc;
    if ((rc = encode_first(t, "", " '", &t->non_speech[k++], &cnt))) return rc;
    for (size_t i = 0; i < n_sym + n_misc; i++) {
        int misc = i >= n_sym;
        const char *sym = misc ? k_nonspeech_misc[i - n_sym] : k_nonspeech_symbols[i];
        for (int sp = 0; sp < 2; sp++) {
            int32_t first;
            if ((rc = encode_first(t, sp ? " " : "", sym, &first, &cnt))) return rc;
            if (cnt == 1 || misc) t->non_speech[k++] = first;
        }
    }
    t->n_non_speech = sort_unique(t->non_speech, k);
    memcpy(t->suppress, t->non_speech, t->n_non_speech * sizeof *t->suppress);
    size_t m = t->n_non_speech;
    const am_special_tokens *sp = &t->sp;
    int32_t extra[6] = {sp->transcribe, sp->translate, sp->sot, sp->sot_prev, sp->sot_lm, sp->nospeech};
    for (int i = 0; i < 6; i++) t->suppress[m++] = extra[i];
    t->n_suppress = sort_unique(t->suppress, m);
    return 0;
}

static int copy_list(const int32_t *v, size_t n, int32_t *out, size_t cap) {
    if (!out && cap > 0) return am_set_error(AM_EINVAL, "NULL output with capacity");
    if (cap > 0) memcpy(out, v, AM_MIN(n, cap) * sizeof *out);
    return (int)n;
}

int am_tokenizer_non_speech_tokens(const am_tokenizer *t, int32_t *out, size_t cap) {
    if (!t) return am_set_error(AM_EINVAL, "am_tokenizer_non_speech_tokens: NULL tokenizer");
    return copy_list(t->non_speech, t->n_non_speech, out, cap);
}

int am_tokenizer_suppress_tokens(const am_tokenizer *t, int32_t *out, size_t cap) {
    if (!t) return am_set_error(AM_EINVAL, "am_tokenizer_suppress_tokens: NULL tokenizer");
    return copy_list(t->suppress, t->n_suppress, out, cap);
}

// ---------------------------------------------------------------- languages
static int ascii_ieq(const char *a, const char *b) {
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
        if (x != y) return 0;
        if (!x) return 1;
    }
}

const char *am_tokenizer_lang_code(int index) {
    return index >= 0 && index < AM_TOKENIZER_MAX_LANGUAGES ? k_languages[index].code : NULL;
}

const char *am_tokenizer_lang_name(int index) {
    return index >= 0 && index < AM_TOKENIZER_MAX_LANGUAGES ? k_languages[index].name : NULL;
}

int am_tokenizer_lang_index(const char *code_or_name) {
    if (!code_or_name) return -1;
    for (int i = 0; i < AM_TOKENIZER_MAX_LANGUAGES; i++)
        if (ascii_ieq(code_or_name, k_languages[i].code)) return i;
    for (int i = 0; i < AM_TOKENIZER_MAX_LANGUAGES; i++)
        if (ascii_ieq(code_or_name, k_languages[i].name)) return i;
    for (size_t i = 0; i < AM_ARRAY_LEN(k_aliases); i++)
        if (ascii_ieq(code_or_name, k_aliases[i].name))
            for (int j = 0; j < AM_TOKENIZER_MAX_LANGUAGES; j++)
                if (strcmp(k_aliases[i].code, k_languages[j].code) == 0) return j;
    return -1;
}

int32_t am_tokenizer_lang_token(const am_tokenizer *t, const char *code_or_name) {
    if (!t) return am_set_error(AM_EINVAL, "am_tokenizer_lang_token: NULL tokenizer");
    int idx = am_tokenizer_lang_index(code_or_name);
    if (idx < 0) return am_set_error(AM_EINVAL, "unsupported language: %s", code_or_name ? code_or_name : "(null)");
    if (idx >= t->sp.n_languages)
        return am_set_error(AM_EUNSUPPORTED, "language %s has no token in this %s vocabulary", k_languages[idx].code,
                            t->sp.is_multilingual ? "multilingual" : "English-only");
    return t->sp.lang_begin + idx;
}

const char *am_tokenizer_token_lang(const am_tokenizer *t, int32_t id) {
    if (!t || t->sp.n_languages <= 0 || id < t->sp.lang_begin || id >= t->sp.lang_begin + t->sp.n_languages)
        return NULL;
    return k_languages[id - t->sp.lang_begin].code;
}

int am_tokenizer_sot_sequence(const am_tokenizer *t, const char *language, int translate, int32_t out[3]) {
    if (!t || !out) return am_set_error(AM_EINVAL, "am_tokenizer_sot_sequence: bad arguments");
    out[0] = t->sp.sot;
    if (!t->sp.is_multilingual) return 1;
    int32_t lang = am_tokenizer_lang_token(t, language ? language : "en");
    if (lang < 0) return lang;
    out[1] = lang;
    out[2] = translate ? t->sp.translate : t->sp.transcribe;
    return 3;
}

// ---------------------------------------------------------------- lifetime
// Special ids from n_vocab as the reference derives them: num_languages =
// n_vocab - 51765 - is_multilingual; specials follow the stored ranks.
static int layout_specials(am_tokenizer *t, int n_file_vocab, int n_vocab) {
    am_special_tokens *sp = &t->sp;
    int ml = n_vocab >= 51865;
    long slots = (long)n_vocab - 51765 - ml;
    if (slots < 1 || slots > AM_TOKENIZER_MAX_LANGUAGES)
        return am_set_error(AM_EFORMAT, "n_vocab %d is not a Whisper vocabulary size", n_vocab);
    int32_t eot = (int32_t)(n_vocab - (2 + slots + 6 + AM_TOKENIZER_N_TIMESTAMPS));
    if (n_file_vocab > eot)
        return am_set_error(AM_EFORMAT, "%d stored tokens overlap the special tokens (eot %d)", n_file_vocab, (int)eot);
    t->n_file_vocab = n_file_vocab;
    t->n_lang_slots = (int32_t)slots;
    sp->n_vocab = n_vocab;
    sp->is_multilingual = ml;
    sp->eot = eot;
    sp->sot = eot + 1;
    sp->lang_begin = ml ? sp->sot + 1 : -1;
    sp->n_languages = ml ? (int32_t)slots : 0;
    sp->translate = sp->sot + 1 + (int32_t)slots;
    sp->transcribe = sp->translate + 1;
    sp->sot_lm = sp->translate + 2;
    sp->sot_prev = sp->translate + 3;
    sp->nospeech = sp->translate + 4;
    sp->notimestamps = sp->translate + 5;
    sp->timestamp_begin = sp->translate + 6;
    sp->timestamp_end = sp->timestamp_begin + AM_TOKENIZER_N_TIMESTAMPS - 1;
    if (sp->timestamp_end != n_vocab - 1) return am_set_error(AM_EINTERNAL, "special token layout mismatch");
    return 0;
}

static int build_blob(am_tokenizer *t, const uint8_t *const *tok_bytes, const uint32_t *tok_len) {
    int32_t nv = t->sp.n_vocab;
    char name[32];
    t->off = malloc(((size_t)nv + 1) * sizeof *t->off);
    if (!t->off) return am_set_error(AM_ENOMEM, "out of memory for the vocabulary");
    size_t total = 0;
    for (int32_t id = 0; id < nv; id++) {
        size_t n = id < t->n_file_vocab ? tok_len[id]
                   : id < t->sp.eot     ? 0
                                        : (size_t)render_special(&t->sp, t->n_lang_slots, id, name);
        if (id < t->n_file_vocab && n > 0 && !tok_bytes[id])
            return am_set_error(AM_EINVAL, "token %d has length %zu but no bytes", (int)id, n);
        t->off[id] = total;
        if (am_add_size(total, n, &total)) return am_set_error(AM_ERANGE, "vocabulary too large");
    }
    t->off[nv] = total;
    t->blob = malloc(total ? total : 1);
    if (!t->blob) return am_set_error(AM_ENOMEM, "out of memory for the vocabulary");
    for (int32_t id = 0; id < nv; id++) {
        size_t n = t->off[id + 1] - t->off[id];
        if (n == 0) continue;
        if (id < t->n_file_vocab) {
            memcpy(t->blob + t->off[id], tok_bytes[id], n);
        } else {
            render_special(&t->sp, t->n_lang_slots, id, name);
            memcpy(t->blob + t->off[id], name, n);
        }
    }
    return 0;
}

static int compile_regex(am_tokenizer *t) {
    int err = 0;
    PCRE2_SIZE at = 0;
    t->re = pcre2_compile((PCRE2_SPTR)k_pattern, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &at, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(err, msg, sizeof msg);
        return am_set_error(err == PCRE2_ERROR_HEAP_FAILED ? AM_ENOMEM : AM_EINTERNAL, "regex compile failed at %zu: %s",
                            (size_t)at, (const char *)msg);
    }
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); // optional speed-up; the interpreter is the fallback
    return 0;
}

am_tokenizer *am_tokenizer_create(const uint8_t *const *tok_bytes, const uint32_t *tok_len, int n_file_vocab,
                                  int n_vocab) {
    am_tokenizer *t = NULL;
    if (!tok_bytes || !tok_len || n_file_vocab < 256) {
        am_set_error(AM_EINVAL, "am_tokenizer_create: need the stored vocabulary (got %d tokens)", n_file_vocab);
        goto fail;
    }
    t = calloc(1, sizeof *t);
    if (!t) {
        am_set_error(AM_ENOMEM, "out of memory for the tokenizer");
        goto fail;
    }
    if (layout_specials(t, n_file_vocab, n_vocab)) goto fail;
    if (build_blob(t, tok_bytes, tok_len)) goto fail;
    if (build_map(t)) goto fail;
    if (compile_regex(t)) goto fail;
    if (build_suppress(t)) goto fail;
    return t;
fail:
    am_tokenizer_free(t);
    return NULL;
}

void am_tokenizer_free(am_tokenizer *t) {
    if (!t) return;
    pcre2_code_free(t->re);
    free(t->blob);
    free(t->off);
    free(t->slots);
    free(t->non_speech);
    free(t->suppress);
    free(t);
}
