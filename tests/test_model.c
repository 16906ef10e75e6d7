// test_model.c — the ggml model loader's contract (src/am_model.h).
//
// 1. positive   every fixture that exists loads with the right hparams, name,
//               vocabulary and weight type; every tensor the file holds is
//               compared element by element with an independent decode of the
//               file bytes (the test parses the file itself), pointers are
//               64-byte aligned, values finite; the quantized tiny.en variants
//               dequantize close to the f16 original, and one q8_0 block is
//               decoded by hand.
// 2. truncation the tiny.en fixture cut at every length 0..4096 and at every
//               boundary of its filterbank, vocabulary and first tensors
//               (am_model_load_buffer), and at every tensor header as a real
//               file (am_model_load); the slim variant cut at every header
//               field, name, data edge and token boundary ±1. All AM_EFORMAT,
//               saying "truncated" (or "missing" for a cut between tensors).
// 3. corruption ~2500 single-bit / single-byte mutations over every part of the
//               structure and ~350 absurd field values: each is a clean
//               AM_EFORMAT error, or, where the bytes are free data (tensor
//               data, token bytes, the filterbank, heads/ftype), a model that
//               matches the mutated bytes exactly.
// 4. paths      NULL, nonexistent, directory, device, FIFO, empty/short/foreign files.
//
// "Clean" = NULL, a fresh non-empty am_last_error() naming the problem, and
// AM_EFORMAT (AM_EIO / AM_EINVAL for paths).
//
// Cost. am_model_load_buffer copies into an exact-size heap block, so under
// ASan any read past the end of a truncated file is reported -- but under ASan
// every fresh heap page is expensive (~9 ns/byte in the CI sandbox), so one
// load_buffer of the 17 MB fixture costs ~70 ms however early it fails. Hence:
// bulk mutations of the fixture go through a scratch file and am_model_load
// (mmap: only the pages the parser touches are paid for), and the exact-size
// heap sweeps use a slim variant of the fixture (build_slim: widths 2, one
// head, 1024 tokens, every tensor in the same order with its name and type;
// ~300 KB). About 14 s under ASan+UBSan, 2 s at -O2.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "am_model.h"
#include "am_test.h"

#define GGML_MAGIC 0x67676d6cu
#define MAX_TENSORS 1024

// ---------------------------------------------------------------- reporting
// note() counts one check; failures print (up to a cap, so that a broken loader
// does not print thousands of lines).
static int g_printed;

static void note(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(int ok, const char *fmt, ...) {
    am_test_checks++;
    if (ok) return;
    am_test_failures++;
    if (g_printed++ >= 80) {
        if (g_printed == 81) fprintf(stderr, "FAIL: (further failures not printed)\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

// Deterministic generator (splitmix64) so that every run mutates the same bytes.
static uint64_t g_rng = 0x5eed5eed2024ull;
static uint64_t rnd(void) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static size_t rnd_below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

// ---------------------------------------------------------------- little-endian helpers
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static int32_t get_i32(const uint8_t *p) {
    int32_t v;
    uint32_t u = get_u32(p);
    memcpy(&v, &u, 4);
    return v;
}
static void put_i32(uint8_t *p, int32_t v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(u >> (8 * i));
}

// IEEE half -> float, written independently of am_fp16_to_fp32.
static float g_half[65536];
static void init_half_table(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        const int e = (int)((h >> 10) & 31), f = (int)(h & 1023);
        float v;
        if (e == 0) v = ldexpf((float)f, -24);
        else if (e == 31) v = f ? NAN : INFINITY;
        else v = ldexpf((float)(f | 1024), e - 25);
        g_half[h] = (h & 0x8000) ? -v : v;
    }
}

// ---------------------------------------------------------------- the test's own file parser
typedef struct {
    int32_t type;
    int block, bytes;
    const char *name;
} ttype_info;

static const ttype_info k_ttypes[] = {
    {AM_TYPE_F32, 1, 4, "f32"},      {AM_TYPE_F16, 1, 2, "f16"},      {AM_TYPE_Q4_0, 32, 18, "q4_0"},
    {AM_TYPE_Q4_1, 32, 20, "q4_1"},  {AM_TYPE_Q5_0, 32, 22, "q5_0"},  {AM_TYPE_Q5_1, 32, 24, "q5_1"},
    {AM_TYPE_Q8_0, 32, 34, "q8_0"},
};

static const ttype_info *ttype_find(int32_t t) {
    for (size_t i = 0; i < sizeof k_ttypes / sizeof k_ttypes[0]; i++)
        if (k_ttypes[i].type == t) return &k_ttypes[i];
    return NULL;
}

typedef struct {
    size_t hdr;      // offset of n_dims
    size_t name_off; // offset of the name bytes
    size_t data;     // offset of the data
    size_t n_bytes;
    size_t n_elem;
    int32_t n_dims, name_len, type;
    int32_t ne[4];
    char name[128];
} ftensor;

typedef struct {
    const uint8_t *d;
    size_t size;
    int32_t hp[11];
    size_t fb_off;    // n_mel, n_fft, then the floats
    size_t vocab_off; // the token count
    int32_t n_tokens;
    size_t *tok_off;  // [n_tokens] offset of each token's length field
    size_t vocab_end; // = first tensor header
    ftensor *t;
    int n_t;
} flayout;

static void layout_free(flayout *L) {
    free(L->tok_off);
    free(L->t);
    L->tok_off = NULL;
    L->t = NULL;
}

// Walk the file structure (FORMAT.md) without judging names or shapes.
// Returns 1 when the bytes form a complete, exactly consumed file.
static int layout_parse(flayout *L, const uint8_t *d, size_t size) {
    memset(L, 0, sizeof *L);
    L->d = d;
    L->size = size;
    if (size < 56 || get_u32(d) != GGML_MAGIC) return 0;
    for (int i = 0; i < 11; i++) L->hp[i] = get_i32(d + 4 + 4 * i);
    size_t p = 48;
    L->fb_off = p;
    const int32_t n_mel = get_i32(d + p), n_fft = get_i32(d + p + 4);
    if (n_mel < 1 || n_mel > 1024 || n_fft != 201) return 0;
    p += 8;
    const size_t fb_bytes = (size_t)n_mel * 201 * 4;
    if (fb_bytes > size - p) return 0;
    p += fb_bytes;
    if (size - p < 4) return 0;
    L->vocab_off = p;
    const int32_t n = get_i32(d + p);
    p += 4;
    if (n < 0 || n > 1000000) return 0;
    L->n_tokens = n;
    L->tok_off = malloc(((size_t)n + 1) * sizeof *L->tok_off);
    L->t = malloc(MAX_TENSORS * sizeof *L->t);
    if (!L->tok_off || !L->t) goto fail;
    for (int32_t i = 0; i < n; i++) {
        if (size - p < 4) goto fail;
        const uint32_t len = get_u32(d + p);
        L->tok_off[i] = p;
        p += 4;
        if (len > size - p) goto fail;
        p += len;
    }
    L->vocab_end = p;
    while (p < size) {
        if (L->n_t == MAX_TENSORS || size - p < 12) goto fail;
        ftensor *t = &L->t[L->n_t];
        memset(t, 0, sizeof *t);
        t->hdr = p;
        t->n_dims = get_i32(d + p);
        t->name_len = get_i32(d + p + 4);
        t->type = get_i32(d + p + 8);
        const ttype_info *ti = ttype_find(t->type);
        if (t->n_dims < 1 || t->n_dims > 4 || t->name_len < 1 || t->name_len >= (int32_t)sizeof t->name || !ti)
            goto fail;
        p += 12;
        if (size - p < 4 * (size_t)t->n_dims) goto fail;
        t->n_elem = 1;
        for (int i = 0; i < t->n_dims; i++) {
            t->ne[i] = get_i32(d + p + 4 * (size_t)i);
            if (t->ne[i] < 1 || t->ne[i] > (1 << 24)) goto fail;
            t->n_elem *= (size_t)t->ne[i];
            if (t->n_elem > ((size_t)1 << 36)) goto fail;
        }
        p += 4 * (size_t)t->n_dims;
        if (size - p < (size_t)t->name_len) goto fail;
        t->name_off = p;
        memcpy(t->name, d + p, (size_t)t->name_len);
        t->name[t->name_len] = 0;
        p += (size_t)t->name_len;
        if (t->n_elem % (size_t)ti->block) goto fail;
        t->n_bytes = t->n_elem / (size_t)ti->block * (size_t)ti->bytes;
        if (t->n_bytes > size - p) goto fail;
        t->data = p;
        p += t->n_bytes;
        L->n_t++;
    }
    return 1;
fail:
    layout_free(L);
    return 0;
}

static const ftensor *layout_tensor(const flayout *L, const char *name) {
    for (int i = 0; i < L->n_t; i++)
        if (strcmp(L->t[i].name, name) == 0) return &L->t[i];
    return NULL;
}

// Element i of a tensor of `type` whose raw bytes start at `data`, decoded by
// hand from FORMAT.md. *mag receives the magnitude of the terms that were
// added (for the d*q + m types, whose rounding may legitimately differ by an
// ulp when a compiler contracts to FMA).
static int nibble(const uint8_t *qs, int j) { return j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4); }

static float decode_elem(int32_t type, const uint8_t *data, size_t i, float *mag) {
    *mag = 0;
    switch (type) {
    case AM_TYPE_F32: {
        const uint32_t u = get_u32(data + 4 * i);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case AM_TYPE_F16: return g_half[get_u16(data + 2 * i)];
    default: break;
    }
    const ttype_info *ti = ttype_find(type);
    const uint8_t *blk = data + (i / 32) * (size_t)ti->bytes;
    const int j = (int)(i % 32);
    const float d = g_half[get_u16(blk)];
    switch (type) {
    case AM_TYPE_Q8_0: {
        const int q = blk[2 + j] < 128 ? blk[2 + j] : blk[2 + j] - 256;
        return (float)q * d;
    }
    case AM_TYPE_Q4_0: return (float)(nibble(blk + 2, j) - 8) * d;
    case AM_TYPE_Q4_1: {
        const float m = g_half[get_u16(blk + 2)], qd = (float)nibble(blk + 4, j) * d;
        *mag = fabsf(qd) + fabsf(m);
        return qd + m;
    }
    case AM_TYPE_Q5_0: {
        const uint32_t qh = get_u32(blk + 2);
        const int q = nibble(blk + 6, j) | (int)(((qh >> j) & 1u) << 4);
        return (float)(q - 16) * d;
    }
    case AM_TYPE_Q5_1: {
        const float m = g_half[get_u16(blk + 2)];
        const uint32_t qh = get_u32(blk + 4);
        const int q = nibble(blk + 8, j) | (int)(((qh >> j) & 1u) << 4);
        const float qd = (float)q * d;
        *mag = fabsf(qd) + fabsf(m);
        return qd + m;
    }
    }
    return NAN;
}

// ---------------------------------------------------------------- the model's tensors by name
// A file tensor as the model holds it: a float32 vector/table, or rows of a
// weight matrix in its stored type (a view: q, k and v are thirds of one
// matrix), decoded row by row through am_wmat_dequant for comparison.
typedef struct {
    char name[96];
    const float *p;   // vectors: the values
    am_wmat w;        // matrices: the rows that hold this tensor
    const void *base; // start of the allocation that holds it (64-byte aligned)
    size_t n;
    int used;
} mtensor;

typedef struct {
    mtensor v[MAX_TENSORS];
    int n;
} mlist;

static mtensor *ml_new(mlist *l, const void *base, size_t n, const char *fmt, va_list ap) {
    if (l->n == MAX_TENSORS) return NULL;
    mtensor *t = &l->v[l->n++];
    memset(t, 0, sizeof *t);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    t->base = base;
    t->n = n;
    return t;
}

static void ml_vec(mlist *l, const float *base, size_t off, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void ml_vec(mlist *l, const float *base, size_t off, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mtensor *t = ml_new(l, base, n, fmt, ap);
    va_end(ap);
    if (t) t->p = base ? base + off : NULL;
}

static void ml_mat(mlist *l, const am_wmat *w, int r0, int rows, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void ml_mat(mlist *l, const am_wmat *w, int r0, int rows, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mtensor *t = ml_new(l, w->data, (size_t)rows * w->cols, fmt, ap);
    va_end(ap);
    if (t) t->w = am_wmat_rows(w, r0, rows);
}

// Rows of a tensor as the test walks it (a vector is one row).
static size_t mt_cols(const mtensor *t) { return t->p ? t->n : (size_t)t->w.cols; }
static size_t mt_rows(const mtensor *t) { return t->n / mt_cols(t); }
static const float *mt_row(const mtensor *t, size_t r, float *buf) {
    if (t->p) return t->p;
    am_wmat_dequant(buf, &t->w, (int)r, 1);
    return buf;
}

static void ml_attn(mlist *l, const am_attn_weights *a, const char *side, int i, const char *kind, size_t d) {
    const int di = (int)d;
    ml_vec(l, a->ln_w, 0, d, "%s.blocks.%d.%s_ln.weight", side, i, kind);
    ml_vec(l, a->ln_b, 0, d, "%s.blocks.%d.%s_ln.bias", side, i, kind);
    ml_mat(l, &a->qkv, 0, di, "%s.blocks.%d.%s.query.weight", side, i, kind);
    ml_vec(l, a->qkv_b, 0, d, "%s.blocks.%d.%s.query.bias", side, i, kind);
    ml_mat(l, &a->qkv, di, di, "%s.blocks.%d.%s.key.weight", side, i, kind);
    ml_mat(l, &a->qkv, 2 * di, di, "%s.blocks.%d.%s.value.weight", side, i, kind);
    ml_vec(l, a->qkv_b, 2 * d, d, "%s.blocks.%d.%s.value.bias", side, i, kind);
    ml_mat(l, &a->o, 0, di, "%s.blocks.%d.%s.out.weight", side, i, kind);
    ml_vec(l, a->o_b, 0, d, "%s.blocks.%d.%s.out.bias", side, i, kind);
}

static void ml_mlp(mlist *l, const am_block *b, const char *side, int i, size_t d) {
    ml_vec(l, b->mlp_ln_w, 0, d, "%s.blocks.%d.mlp_ln.weight", side, i);
    ml_vec(l, b->mlp_ln_b, 0, d, "%s.blocks.%d.mlp_ln.bias", side, i);
    ml_mat(l, &b->mlp0, 0, 4 * (int)d, "%s.blocks.%d.mlp.0.weight", side, i);
    ml_vec(l, b->mlp0_b, 0, 4 * d, "%s.blocks.%d.mlp.0.bias", side, i);
    ml_mat(l, &b->mlp2, 0, (int)d, "%s.blocks.%d.mlp.2.weight", side, i);
    ml_vec(l, b->mlp2_b, 0, d, "%s.blocks.%d.mlp.2.bias", side, i);
}

// Every tensor the model exposes, named as in the file (FORMAT.md §6).
static void ml_build(mlist *l, const am_model *m) {
    const am_hparams *hp = &m->hp;
    const size_t da = (size_t)hp->n_audio_state, dt = (size_t)hp->n_text_state;
    l->n = 0;
    ml_mat(l, &m->enc_conv1, 0, (int)da, "encoder.conv1.weight");
    ml_vec(l, m->enc_conv1_b, 0, da, "encoder.conv1.bias");
    ml_mat(l, &m->enc_conv2, 0, (int)da, "encoder.conv2.weight");
    ml_vec(l, m->enc_conv2_b, 0, da, "encoder.conv2.bias");
    ml_vec(l, m->enc_pos, 0, (size_t)hp->n_audio_ctx * da, "encoder.positional_embedding");
    ml_vec(l, m->enc_ln_w, 0, da, "encoder.ln_post.weight");
    ml_vec(l, m->enc_ln_b, 0, da, "encoder.ln_post.bias");
    for (int i = 0; i < hp->n_audio_layer; i++) {
        ml_attn(l, &m->enc_blocks[i].attn, "encoder", i, "attn", da);
        ml_mlp(l, &m->enc_blocks[i], "encoder", i, da);
    }
    ml_mat(l, &m->dec_tok_emb, 0, hp->n_vocab, "decoder.token_embedding.weight");
    ml_vec(l, m->dec_pos, 0, (size_t)hp->n_text_ctx * dt, "decoder.positional_embedding");
    ml_vec(l, m->dec_ln_w, 0, dt, "decoder.ln.weight");
    ml_vec(l, m->dec_ln_b, 0, dt, "decoder.ln.bias");
    for (int i = 0; i < hp->n_text_layer; i++) {
        ml_attn(l, &m->dec_blocks[i].attn, "decoder", i, "attn", dt);
        ml_attn(l, &m->dec_blocks[i].cross, "decoder", i, "cross_attn", dt);
        ml_mlp(l, &m->dec_blocks[i], "decoder", i, dt);
    }
}

static mtensor *ml_find(mlist *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0) return &l->v[i];
    return NULL;
}

static int aligned64(const void *p) { return ((uintptr_t)p & 63) == 0; }

static void hp_array(const am_hparams *hp, int32_t out[11]) {
    const int32_t v[11] = {hp->n_vocab,    hp->n_audio_ctx,  hp->n_audio_state, hp->n_audio_head,
                           hp->n_audio_layer, hp->n_text_ctx, hp->n_text_state, hp->n_text_head,
                           hp->n_text_layer, hp->n_mels,     hp->ftype};
    memcpy(out, v, sizeof v);
}

static mlist g_ml, g_ml2; // large: kept out of the stack

// The model matches the file described by L: hparams, filterbank, every token,
// and every tensor (each file tensor claimed by exactly one model pointer,
// element by element equal to the hand decode). Returns the number of problems.
static int verify_model(const am_model *m, const flayout *L, const char *label, int want_finite) {
    const int before = am_test_failures;
    int32_t hp[11];
    hp_array(&m->hp, hp);
    note(memcmp(hp, L->hp, sizeof hp) == 0, "%s: hparams differ from the file header", label);

    // mel filterbank: a 64-byte aligned copy of the file's floats
    const size_t n_fb = (size_t)m->hp.n_mels * 201;
    note(m->mel_filters && aligned64(m->mel_filters), "%s: mel filterbank missing or misaligned", label);
    if (m->mel_filters) {
        note(memcmp(m->mel_filters, L->d + L->fb_off + 8, n_fb * 4) == 0, "%s: mel filterbank differs from the file",
             label);
        if (want_finite) {
            size_t bad = 0;
            double sum = 0;
            for (size_t i = 0; i < n_fb; i++) {
                bad += !isfinite(m->mel_filters[i]);
                sum += m->mel_filters[i];
            }
            note(bad == 0 && sum > 0, "%s: mel filterbank has %zu non-finite values (sum %g)", label, bad, sum);
        }
    }

    // vocabulary: pointers into the model's own copy of the bytes
    note(m->n_file_vocab == L->n_tokens, "%s: n_file_vocab %d, file has %d tokens", label, m->n_file_vocab,
         L->n_tokens);
    if (m->n_file_vocab == L->n_tokens && m->vocab_bytes && m->vocab_len) {
        size_t vocab_total = 0;
        for (int32_t i = 0; i < L->n_tokens; i++) vocab_total += get_u32(L->d + L->tok_off[i]);
        const uintptr_t lo = (uintptr_t)m->vocab_store, hi = lo + vocab_total;
        int bad = 0;
        for (int32_t i = 0; i < L->n_tokens; i++) {
            const uint32_t len = get_u32(L->d + L->tok_off[i]);
            const uintptr_t b = (uintptr_t)m->vocab_bytes[i];
            if (m->vocab_len[i] != len || b < lo || b > hi || hi - b < len ||
                (len && memcmp(m->vocab_bytes[i], L->d + L->tok_off[i] + 4, len) != 0)) {
                if (!bad) note(0, "%s: token %d differs from the file", label, i);
                bad++;
            }
        }
        note(bad == 0, "%s: %d tokens differ from the file", label, bad);
    }

    // tensors
    mlist *ml = &g_ml;
    ml_build(ml, m);
    note(ml->n == L->n_t, "%s: model exposes %d tensors, file holds %d", label, ml->n, L->n_t);
    size_t file_bytes = 0;
    for (int k = 0; k < L->n_t; k++) file_bytes += L->t[k].n_bytes;
    note(am_model_weight_bytes(m) >= file_bytes && am_model_weight_bytes(m) <= file_bytes + file_bytes / 8 + 65536,
         "%s: weight bytes %zu, file tensors %zu (matrices are kept in their type)", label, am_model_weight_bytes(m),
         file_bytes);
    float *row = NULL;
    for (int k = 0; k < L->n_t; k++) {
        const ftensor *t = &L->t[k];
        mtensor *mt = ml_find(ml, t->name);
        note(mt != NULL, "%s: file tensor '%s' has no model pointer", label, t->name);
        if (!mt) continue;
        note(!mt->used, "%s: file tensor '%s' seen twice", label, t->name);
        mt->used = 1;
        note(mt->base && aligned64(mt->base), "%s: '%s' storage %p not 64-byte aligned", label, t->name, mt->base);
        note(mt->n == t->n_elem, "%s: '%s' has %zu elements in the model, %zu in the file", label, t->name, mt->n,
             t->n_elem);
        if (!mt->base || mt->n != t->n_elem) continue;
        // matrices stay in the file's type (a mixed-type q/k/v group is widened to f32)
        if (!mt->p)
            note(mt->w.type == t->type || mt->w.type == AM_TYPE_F32, "%s: '%s' held as %s, file has %s", label,
                 t->name, am_type_name(mt->w.type), am_type_name(t->type));
        size_t bad = 0, nonfinite = 0, first_bad = 0;
        float got_first = 0;
        const uint8_t *data = L->d + t->data;
        const size_t cols = mt_cols(mt);
        float *grown = realloc(row, cols * sizeof *row);
        if (!grown) break;
        row = grown;
        for (size_t r = 0; r < mt_rows(mt); r++) {
            const float *vals = mt_row(mt, r, row);
            for (size_t j = 0; j < cols; j++) { // bit for bit the file's values
                const size_t i = r * cols + j;
                float mag;
                const float want = decode_elem(t->type, data, i, &mag), got = vals[j];
                const int same = memcmp(&got, &want, 4) == 0 || (isnan(got) && isnan(want));
                if (!same && !bad++) {
                    first_bad = i;
                    got_first = got;
                }
                nonfinite += !isfinite(got);
            }
        }
        float mg;
        const float want_first = decode_elem(t->type, data, first_bad, &mg);
        note(bad == 0, "%s: '%s' (%s): %zu of %zu values differ from the file (first at %zu: %g vs %g)", label,
             t->name, ttype_find(t->type)->name, bad, t->n_elem, first_bad, (double)got_first, (double)want_first);
        if (want_finite) note(nonfinite == 0, "%s: '%s' has %zu non-finite values", label, t->name, nonfinite);
    }
    free(row);
    return am_test_failures - before;
}

// ---------------------------------------------------------------- files
// Fixtures are mapped read-only rather than read: under ASan every fresh heap
// page costs ~10 us in some sandboxes, and the bytes are only read.
static const uint8_t *map_file(const char *path, size_t *size) {
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size > 0) p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return NULL;
    *size = (size_t)st.st_size;
    return p;
}

typedef struct {
    const void *p;
    size_t n;
} piece;

// A scratch file under /tmp made of the given pieces. Returns an fd open for
// reading and writing (path filled in), or -1.
static int scratch_create(char *path, size_t path_size, const piece *pc, int n_pc) {
    snprintf(path, path_size, "/tmp/am_test_model_XXXXXX");
    const int fd = mkstemp(path);
    if (fd < 0) return -1;
    int ok = 1;
    for (int i = 0; ok && i < n_pc; i++) {
        const uint8_t *q = pc[i].p;
        size_t left = pc[i].n;
        while (ok && left) {
            const ssize_t w = write(fd, q, left);
            if (w <= 0) ok = 0;
            else {
                q += w;
                left -= (size_t)w;
            }
        }
    }
    if (!ok) {
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

static int msg_mentions(const char *msg, const char *const *subs) {
    if (!subs || !subs[0]) return 1;
    for (int i = 0; subs[i]; i++)
        if (strstr(msg, subs[i])) return 1;
    return 0;
}

// After a failed load: NULL, AM_EFORMAT, a fresh non-empty message mentioning one of subs.
static int failed_cleanly(const char *label, const char *where, const char *const *subs) {
    const char *msg = am_last_error();
    const int code = am_last_error_code(), mentions = msg_mentions(msg, subs);
    const int ok = code == AM_EFORMAT && msg[0] && mentions;
    note(ok, "%s (%s): code %d (%s), message '%s'%s%s", label, where, code, am_strerror(code), msg,
         mentions ? "" : " -- expected a mention of ", mentions ? "" : subs[0]);
    return ok;
}

// buf[0..n) through am_model_load_buffer must fail cleanly, mentioning `want`.
static void expect_buf(const uint8_t *buf, size_t n, const char *label, const char *where, const char *want) {
    const char *subs[2] = {want, NULL};
    am_set_error(AM_OK, "%s", "");
    am_model *m = am_model_load_buffer(buf, n, "mutant.bin");
    if (m) {
        note(0, "%s (%s): loaded, expected an error", label, where);
        am_model_free(m);
        return;
    }
    failed_cleanly(label, where, subs);
}

// A file made of pieces through am_model_load must fail cleanly, mentioning `want`.
static void expect_pieces(const piece *pc, int n_pc, const char *label, const char *want) {
    char path[64];
    const int fd = scratch_create(path, sizeof path, pc, n_pc);
    note(fd >= 0, "%s: cannot write a scratch file: %s", label, strerror(errno));
    if (fd < 0) return;
    close(fd);
    const char *subs[2] = {want, NULL};
    am_set_error(AM_OK, "%s", "");
    am_model *m = am_model_load(path);
    if (m) {
        note(0, "%s (file): loaded, expected an error", label);
        am_model_free(m);
    } else {
        failed_cleanly(label, "file", subs);
    }
    unlink(path);
}

// ---------------------------------------------------------------- mutation targets
// Where a mutated model is loaded from: a heap buffer through
// am_model_load_buffer (an exact-size copy, so ASan sees any over-read), or a
// scratch copy of the file through am_model_load (mmap: only the pages the
// parser touches cost anything, so the 17 MB fixture stays affordable).
typedef struct {
    const char *name;
    const uint8_t *orig;
    size_t size;
    const flayout *L;
    uint8_t *w; // buffer mode: the working copy
    int fd;     // file mode: the scratch copy
    char path[64];
    size_t mut_off, mut_n; // the mutation in place
    uint8_t mut[32];
} target;

static int tg_open(target *tg, const char *name, const uint8_t *orig, size_t size, const flayout *L, int file_mode) {
    memset(tg, 0, sizeof *tg);
    tg->name = name;
    tg->orig = orig;
    tg->size = size;
    tg->L = L;
    tg->fd = -1;
    if (file_mode) {
        const piece pc = {orig, size};
        tg->fd = scratch_create(tg->path, sizeof tg->path, &pc, 1);
        CHECKF(tg->fd >= 0, "%s: cannot write a scratch file: %s", name, strerror(errno));
        return tg->fd >= 0;
    }
    tg->w = malloc(size);
    CHECK(tg->w != NULL);
    if (tg->w) memcpy(tg->w, orig, size);
    return tg->w != NULL;
}

static void tg_close(target *tg) {
    if (tg->fd >= 0) {
        close(tg->fd);
        unlink(tg->path);
    }
    free(tg->w);
    tg->w = NULL;
    tg->fd = -1;
}

static void tg_write(target *tg, size_t off, const uint8_t *bytes, size_t n) {
    if (tg->w) memcpy(tg->w + off, bytes, n);
    else if (pwrite(tg->fd, bytes, n, (off_t)off) != (ssize_t)n) note(0, "pwrite %s: %s", tg->path, strerror(errno));
}

static void tg_set(target *tg, size_t off, const void *bytes, size_t n) {
    if (n > sizeof tg->mut) abort();
    tg->mut_off = off;
    tg->mut_n = n;
    memcpy(tg->mut, bytes, n);
    tg_write(tg, off, bytes, n);
}

static void tg_restore(target *tg) {
    tg_write(tg, tg->mut_off, tg->orig + tg->mut_off, tg->mut_n);
    tg->mut_n = 0;
}

static void tg_i32(target *tg, size_t off, int32_t v) {
    uint8_t b[4];
    put_i32(b, v);
    tg_set(tg, off, b, 4);
}

// Load the target as mutated: a clean error mentioning one of subs, or, when
// may_load, possibly a model, which must then match the mutated bytes exactly.
// Returns 1 when it loaded.
static int tg_check(target *tg, const char *label, const char *const *subs, int may_load) {
    am_set_error(AM_OK, "%s", "");
    am_model *m = tg->w ? am_model_load_buffer(tg->w, tg->size, "mutant.bin") : am_model_load(tg->path);
    if (!m) {
        failed_cleanly(label, tg->name, subs);
        return 0;
    }
    note(may_load, "%s (%s): loaded, expected an error", label, tg->name);
    uint8_t *bytes = tg->w;
    if (!bytes && (bytes = malloc(tg->size))) {
        memcpy(bytes, tg->orig, tg->size);
        memcpy(bytes + tg->mut_off, tg->mut, tg->mut_n);
    }
    flayout L;
    if (bytes && layout_parse(&L, bytes, tg->size)) {
        verify_model(m, &L, label, 0);
        layout_free(&L);
    } else {
        note(0, "%s (%s): loaded, but the mutated file does not parse", label, tg->name);
    }
    if (bytes != tg->w) free(bytes);
    am_model_free(m);
    return 1;
}

// One field set to v: must fail, mentioning `want`.
static int g_absurd;
static void absurd_i32(target *tg, size_t off, int32_t v, const char *what, const char *want) {
    char label[192];
    const char *subs[2] = {want, NULL};
    snprintf(label, sizeof label, "%s = %d", what, v);
    tg_i32(tg, off, v);
    tg_check(tg, label, subs, 0);
    tg_restore(tg);
    g_absurd++;
}

// ---------------------------------------------------------------- 1. positive
typedef struct {
    const char *file, *name;
    int32_t n_vocab, n_mels, n_text_layer, ftype, n_tokens;
    const char *wtype;
    int multilingual;
    int32_t id_world, id_hello, id_the;
    double rel_rms_bound; // quantized tiny.en: bound on the relative RMS error vs the f16 file
} fixture;

static const fixture k_fixtures[] = {
    {"ggml-test-tiny.en.bin", "ggml-test-tiny.en", 51864, 80, 2, 1, 50256, "f16", 0, 995, 23748, 262, 0},
    {"ggml-test-ml.bin", "ggml-test-ml", 51865, 80, 1, 0, 50257, "f32", 1, 1002, 7751, 264, 0},
    {"ggml-test-v3.bin", "ggml-test-v3", 51866, 128, 2, 1, 50257, "f16", 1, 1002, 7751, 264, 0},
    {"ggml-test-tiny.en-q8_0.bin", "ggml-test-tiny.en-q8_0", 51864, 80, 2, 2007, 50256, "q8_0", 0, 995, 23748, 262,
     0.01},
    {"ggml-test-tiny.en-q5_1.bin", "ggml-test-tiny.en-q5_1", 51864, 80, 2, 2009, 50256, "q5_1", 0, 995, 23748, 262,
     0.05},
    {"ggml-test-tiny.en-q5_0.bin", "ggml-test-tiny.en-q5_0", 51864, 80, 2, 2008, 50256, "q5_0", 0, 995, 23748, 262,
     0.05},
    {"ggml-test-tiny.en-q4_0.bin", "ggml-test-tiny.en-q4_0", 51864, 80, 2, 2002, 50256, "q4_0", 0, 995, 23748, 262,
     0.10},
};

static am_model *g_ref;      // the f16 tiny.en, loaded from its file
static const uint8_t *g_orig; // its bytes (read-only mapping)
static size_t g_size;
static flayout g_L;          // and their layout
static uint8_t *g_slim;      // the slim variant (see build_slim)
static size_t g_slim_size;
static flayout g_S;
static int g_fixtures_run;

static int token_is(const am_model *m, int32_t id, const char *s) {
    const size_t n = strlen(s);
    return id >= 0 && id < m->n_file_vocab && m->vocab_len[id] == n && memcmp(m->vocab_bytes[id], s, n) == 0;
}

// Quantized tiny.en vs the f16 original: quantized tensors close, the rest identical.
static void compare_quantized(const am_model *q, const flayout *L, const fixture *fx) {
    mlist *mq = &g_ml, *mf = &g_ml2;
    ml_build(mq, q);
    ml_build(mf, g_ref);
    double worst = 0, emb = -1, mlp = -1;
    const char *worst_name = "";
    int n_quant = 0, n_plain = 0;
    for (int k = 0; k < L->n_t; k++) {
        const ftensor *t = &L->t[k];
        const mtensor *a = ml_find(mq, t->name), *b = ml_find(mf, t->name);
        const int comparable = a && b && a->n == b->n && a->base && b->base && mt_cols(a) == mt_cols(b);
        note(comparable, "%s: '%s' not comparable with the f16 model", fx->file, t->name);
        if (!comparable) continue;
        const size_t cols = mt_cols(a);
        float *ra = malloc(cols * sizeof *ra), *rb = malloc(cols * sizeof *rb);
        if (!ra || !rb) {
            free(ra);
            free(rb);
            break;
        }
        double se = 0, ss = 0;
        int differ = 0;
        for (size_t r = 0; r < mt_rows(a); r++) {
            const float *va = mt_row(a, r, ra), *vb = mt_row(b, r, rb);
            differ |= memcmp(va, vb, cols * sizeof(float)) != 0;
            for (size_t j = 0; j < cols; j++) {
                const double e = (double)va[j] - (double)vb[j];
                se += e * e;
                ss += (double)vb[j] * (double)vb[j];
            }
        }
        free(ra);
        free(rb);
        if (ttype_find(t->type)->block == 1) {
            n_plain++;
            note(!differ, "%s: unquantized '%s' (%s) differs from the f16 file", fx->file, t->name,
                 ttype_find(t->type)->name);
            continue;
        }
        n_quant++;
        const double rel = ss > 0 ? sqrt(se / ss) : 1;
        note(rel < fx->rel_rms_bound, "%s: '%s' relative RMS error %.4f vs f16 (bound %.2f)", fx->file, t->name, rel,
             fx->rel_rms_bound);
        if (rel > worst) {
            worst = rel;
            worst_name = t->name;
        }
        if (!strcmp(t->name, "decoder.token_embedding.weight")) emb = rel;
        if (!strcmp(t->name, "encoder.blocks.0.mlp.0.weight")) mlp = rel;
    }
    // every 2-D linear weight (and the embedding) is quantized: 6 per encoder, 10 per decoder block, + 1
    const int want_quant = 1 + 6 * q->hp.n_audio_layer + 10 * q->hp.n_text_layer;
    note(n_quant == want_quant, "%s: %d quantized tensors, expected %d", fx->file, n_quant, want_quant);
    note(emb >= 0 && mlp >= 0, "%s: token embedding or mlp.0 not quantized", fx->file);
    printf("  %-28s rel RMS vs f16: token_embedding %.3f%%, enc.0.mlp.0 %.3f%%, worst %.3f%% (%s) of %d "
           "(bound %.0f%%); %d unquantized tensors identical\n",
           fx->file, 100 * emb, 100 * mlp, 100 * worst, worst_name, n_quant, 100 * fx->rel_rms_bound, n_plain);
}

// One q8_0 block decoded by hand from the raw file bytes: the row of " hello"
// in decoder.token_embedding, against m->dec_tok_emb.
static void q8_block_by_hand(const am_model *m, const flayout *L) {
    const ftensor *t = layout_tensor(L, "decoder.token_embedding.weight");
    const int ok = t && t->type == AM_TYPE_Q8_0 && t->ne[0] == m->hp.n_text_state && t->ne[0] % 32 == 0;
    CHECKF(ok, "q8_0 token embedding not found in the file");
    if (!ok) return;
    const size_t row = 23748, e0 = row * (size_t)t->ne[0];
    const uint8_t *blk = L->d + t->data + e0 / 32 * 34; // 34 bytes per 32 elements
    // the scale: an IEEE half, little-endian: sign 1, exponent 5 (bias 15), mantissa 10
    const unsigned h = (unsigned)blk[0] | (unsigned)blk[1] << 8;
    const unsigned ex = (h >> 10) & 31, man = h & 1023;
    CHECKF(ex != 0 && ex != 31, "q8_0 scale 0x%04x is not a normal half", h);
    const float d = (h & 0x8000 ? -1.0f : 1.0f) * ldexpf(1.0f + (float)man / 1024.0f, (int)ex - 15);
    int bad = 0;
    double worst = 0;
    float mine[512], ref[512]; // the row as the model decodes it (n_text_state <= 512 in the fixtures)
    if (t->ne[0] > 512) return;
    am_wmat_dequant(mine, &m->dec_tok_emb, (int)row, 1);
    if (g_ref) am_wmat_dequant(ref, &g_ref->dec_tok_emb, (int)row, 1);
    for (int j = 0; j < 32; j++) {
        const int qv = blk[2 + j] >= 128 ? (int)blk[2 + j] - 256 : (int)blk[2 + j];
        const float x = (float)qv * d;
        bad += mine[j] != x;
        if (g_ref) worst = fmax(worst, fabs((double)x - (double)ref[j]));
    }
    CHECKF(bad == 0, "q8_0 block by hand: %d of 32 values differ from m->dec_tok_emb", bad);
    // round-to-nearest quantization: within half a step of the original (plus the f16 rounding of both)
    if (g_ref) CHECKF(worst <= 0.6 * fabs(d), "q8_0 block: max |q8 - f16| %.3g > 0.6 d (d = %.3g)", worst, d);
    printf("  q8_0 block by hand: token_embedding row %zu block 0: d = %.6g (0x%04x), q = %d %d %d ..., "
           "m->dec_tok_emb matches %d/32, max |q8 - f16| = %.2f d\n",
           row, d, h, (int8_t)blk[2], (int8_t)blk[3], (int8_t)blk[4], 32 - bad, g_ref ? worst / fabs(d) : -1.0);
}

static void check_fixture(const fixture *fx) {
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "fixtures/%s", fx->file);
    if (!am_test_find(rel, path, sizeof path)) {
        SKIP_CASE(fx->file, "not found in the shared dir or tests/data (set AMANUENSIS_TEST_DATA)");
        return;
    }
    size_t size = 0;
    const uint8_t *bytes = map_file(path, &size);
    CHECKF(bytes != NULL, "%s: cannot map", path);
    if (!bytes) return;
    flayout L;
    const int parsed = layout_parse(&L, bytes, size);
    CHECKF(parsed, "%s: the test's own parser rejects the file", path);
    if (!parsed) {
        munmap((void *)bytes, size);
        return;
    }
    const double t0 = am_time_s();
    am_set_error(AM_OK, "%s", "");
    am_model *m = am_model_load(path);
    const double dt = am_time_s() - t0;
    CHECKF(m != NULL, "%s: %s", path, am_last_error());
    if (!m) {
        layout_free(&L);
        munmap((void *)bytes, size);
        return;
    }
    g_fixtures_run++;
    const am_hparams *hp = &m->hp;
    CHECKF(hp->n_vocab == fx->n_vocab && hp->n_audio_ctx == 1500 && hp->n_text_ctx == 448 &&
               hp->n_mels == fx->n_mels && hp->n_text_layer == fx->n_text_layer && hp->ftype == fx->ftype &&
               hp->n_audio_state == hp->n_text_state && hp->n_audio_state % 64 == 0 &&
               hp->n_audio_state / hp->n_audio_head == 64 && hp->n_text_state / hp->n_text_head == 64 &&
               hp->n_audio_layer >= 1,
           "%s: hparams vocab %d actx %d astate %d ahead %d alayer %d tctx %d tstate %d thead %d tlayer %d mels %d "
           "ftype %d",
           fx->file, hp->n_vocab, hp->n_audio_ctx, hp->n_audio_state, hp->n_audio_head, hp->n_audio_layer,
           hp->n_text_ctx, hp->n_text_state, hp->n_text_head, hp->n_text_layer, hp->n_mels, hp->ftype);
    CHECKF(strcmp(m->name, fx->name) == 0, "%s: name '%s', expected '%s'", fx->file, m->name, fx->name);
    CHECKF(strcmp(am_type_name(m->weight_type), fx->wtype) == 0, "%s: weight type %d (%s), expected %s",
           fx->file, m->weight_type, am_type_name(m->weight_type), fx->wtype);
    CHECKF(am_model_is_multilingual(m) == fx->multilingual, "%s: multilingual %d", fx->file,
           am_model_is_multilingual(m));
    CHECKF(m->n_file_vocab == fx->n_tokens, "%s: n_file_vocab %d, expected %d", fx->file, m->n_file_vocab,
           fx->n_tokens);
    CHECKF(token_is(m, 0, "!") && token_is(m, 1, "\"") && token_is(m, 256, " t") && token_is(m, fx->id_the, " the") &&
               token_is(m, fx->id_world, " world") && token_is(m, fx->id_hello, " hello"),
           "%s: known tokens (!, \", \" t\", \" the\" %d, \" world\" %d, \" hello\" %d) not where expected", fx->file,
           fx->id_the, fx->id_world, fx->id_hello);
    if (fx->n_tokens == 50257) CHECKF(m->vocab_len[50256] == 0, "%s: token 50256 should be empty", fx->file);
    const int problems = verify_model(m, &L, fx->file, 1);
    printf("  %-28s loaded in %6.1f ms: %s, %d tensors, %d tokens, %.1f MB f32; every value matches the file%s\n",
           fx->file, 1e3 * dt, am_type_name(m->weight_type), L.n_t, m->n_file_vocab,
           (double)am_model_weight_bytes(m) / (1 << 20), problems ? " -- NOT" : "");
    if (fx->rel_rms_bound > 0) {
        if (g_ref) compare_quantized(m, &L, fx);
        else SKIP_CASE(fx->file, "dequantization vs f16: the f16 tiny.en did not load");
    }
    if (fx->ftype == 2007) q8_block_by_hand(m, &L);
    if (!strcmp(fx->file, "ggml-test-tiny.en.bin")) { // kept as the reference for what follows
        g_ref = m;
        g_orig = bytes;
        g_size = size;
        g_L = L;
        return;
    }
    am_model_free(m);
    layout_free(&L);
    munmap((void *)bytes, size);
}

// am_model_load_buffer copies: the caller's bytes may go away right after.
static void check_buffer_load(void) {
    uint8_t *copy = malloc(g_size);
    CHECK(copy != NULL);
    if (!copy) return;
    memcpy(copy, g_orig, g_size);
    // a long name is cut to fit m->name (63 bytes + NUL) after dropping the directories
    char name[128];
    memset(name, 'x', sizeof name);
    memcpy(name, "/some/dir/", 10);
    snprintf(name + 100, 28, "%s", ".bin");
    am_set_error(AM_OK, "%s", "");
    am_model *m = am_model_load_buffer(copy, g_size, name);
    memset(copy, 0xA5, g_size);
    free(copy); // a pointer kept into the caller's bytes is now a use-after-free for ASan
    CHECKF(m != NULL, "load_buffer: %s", am_last_error());
    if (!m) return;
    const size_t n = strnlen(m->name, sizeof m->name);
    CHECKF(n == sizeof m->name - 1 && strspn(m->name, "x") == n, "load_buffer: long name -> '%.*s'", (int)n, m->name);
    const int problems = verify_model(m, &g_L, "load_buffer", 1);
    am_model_free(m);
    printf("  load_buffer: input copied (source scribbled and freed right after), name cut to %zu bytes; %s\n", n,
           problems ? "MISMATCH" : "every value matches the file");
}

// The slim variant of tiny.en: the same magic, hparams (but widths 2 and one
// head), filterbank, the first 1024 tokens, and every tensor in the file's
// order with its name and type, dims rescaled (d -> 2, 4d -> 8) and the first
// bytes of its data. About 300 KB: a load_buffer costs ~1 ms under ASan where
// one of the 17 MB fixture costs ~70 ms, so truncation and corruption sweeps
// with exact-size heap copies can cover every structural boundary.
#define SLIM_D 2
#define SLIM_TOKENS 1024

static int32_t slim_dim(int32_t v, int32_t d) { return v == d ? SLIM_D : v == 4 * d ? 4 * SLIM_D : v; }

static void build_slim(void) {
    const flayout *L = &g_L;
    const int32_t d = L->hp[2];
    if (L->hp[6] != d || L->hp[9] == d || L->hp[9] == 4 * d || L->n_tokens <= SLIM_TOKENS) {
        CHECKF(0, "tiny.en hparams do not allow a slim variant");
        return;
    }
    const size_t tok_bytes = L->tok_off[SLIM_TOKENS] - L->tok_off[0];
    size_t cap = L->vocab_off + 4 + tok_bytes;
    for (int k = 0; k < L->n_t; k++) cap += L->t[k].data + L->t[k].n_bytes - L->t[k].hdr;
    uint8_t *b = malloc(cap);
    CHECK(b != NULL);
    if (!b) return;
    memcpy(b, L->d, L->vocab_off); // magic, hparams, filterbank
    put_i32(b + 12, SLIM_D);       // n_audio_state
    put_i32(b + 16, 1);            // n_audio_head
    put_i32(b + 28, SLIM_D);       // n_text_state
    put_i32(b + 32, 1);            // n_text_head
    size_t p = L->vocab_off;
    put_i32(b + p, SLIM_TOKENS);
    p += 4;
    memcpy(b + p, L->d + L->tok_off[0], tok_bytes);
    p += tok_bytes;
    for (int k = 0; k < L->n_t; k++) {
        const ftensor *t = &L->t[k];
        const ttype_info *ti = ttype_find(t->type);
        if (ti->block != 1) {
            CHECKF(0, "slim: '%s' is quantized", t->name);
            free(b);
            return;
        }
        put_i32(b + p, t->n_dims);
        put_i32(b + p + 4, t->name_len);
        put_i32(b + p + 8, t->type);
        p += 12;
        size_t n_elem = 1;
        for (int i = 0; i < t->n_dims; i++) {
            const int32_t v = slim_dim(t->ne[i], d);
            put_i32(b + p, v);
            p += 4;
            n_elem *= (size_t)v;
        }
        memcpy(b + p, t->name, (size_t)t->name_len);
        p += (size_t)t->name_len;
        memcpy(b + p, L->d + t->data, n_elem * (size_t)ti->bytes);
        p += n_elem * (size_t)ti->bytes;
    }
    g_slim = b;
    g_slim_size = p;
    const int parsed = layout_parse(&g_S, g_slim, g_slim_size);
    CHECKF(parsed, "slim variant does not parse");
    if (!parsed) return;
    am_set_error(AM_OK, "%s", "");
    am_model *m = am_model_load_buffer(g_slim, g_slim_size, "ggml-test-tiny.en-slim.bin");
    CHECKF(m != NULL, "slim variant: %s", am_last_error());
    if (!m) return;
    CHECK(strcmp(m->name, "ggml-test-tiny.en-slim") == 0 && m->hp.n_audio_state == SLIM_D &&
          m->hp.n_text_head == 1 && m->weight_type == AM_TYPE_F16);
    const int problems = verify_model(m, &g_S, "slim", 1);
    am_model_free(m);
    printf("  slim tiny.en (d = %d, 1 head, %d tokens, %d tensors, %zu bytes) loads from a buffer: %s\n", SLIM_D,
           SLIM_TOKENS, g_S.n_t, g_slim_size, problems ? "MISMATCH" : "every value matches");
}

// ---------------------------------------------------------------- 2. truncation
// Index of the tensor whose header/name/data holds `off`, -1 before the first.
static int tensor_at(const flayout *L, size_t off) {
    int lo = 0, hi = L->n_t - 1, k = -1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        if (L->t[mid].hdr <= off) {
            k = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return k;
}

// What a file cut to k bytes must say: "too small" below the magic, "missing"
// when the cut falls exactly between two tensors, else "truncated".
static const char *truncation_expect(const flayout *L, size_t k) {
    if (k < 4) return "too small";
    if (k == L->vocab_end) return "missing";
    const int t = tensor_at(L, k);
    if (t >= 0 && L->t[t].hdr == k) return "missing";
    return "truncated";
}

typedef struct {
    size_t *v;
    size_t n, cap;
} offsets;

static void off_add(offsets *o, size_t k) {
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 1024;
        size_t *v = realloc(o->v, o->cap * sizeof *v);
        if (!v) abort();
        o->v = v;
    }
    o->v[o->n++] = k;
}

static void off_add_pm1(offsets *o, size_t k) {
    if (k) off_add(o, k - 1);
    off_add(o, k);
    off_add(o, k + 1);
}

static int cmp_size(const void *a, const void *b) {
    const size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

// Every structural boundary ±1 of tensors [t0, t1), the filterbank and vocabulary edges, every
// `tok_step`-th token boundary.
static void boundary_offsets(offsets *o, const flayout *L, int t0, int t1, int32_t tok_step) {
    off_add_pm1(o, L->fb_off + 4);
    off_add_pm1(o, L->fb_off + 8);
    off_add_pm1(o, L->vocab_off);
    off_add_pm1(o, L->vocab_off + 4);
    for (int32_t i = 0; i < L->n_tokens; i += (i < 32 || i >= L->n_tokens - 32) ? 1 : tok_step) {
        off_add(o, L->tok_off[i] + 2);
        off_add_pm1(o, L->tok_off[i] + 4);
    }
    off_add_pm1(o, L->vocab_end);
    for (int k = t0; k < t1 && k < L->n_t; k++) {
        const ftensor *t = &L->t[k];
        off_add_pm1(o, t->hdr);
        off_add(o, t->hdr + 4);
        off_add(o, t->hdr + 8);
        for (int i = 0; i <= t->n_dims; i++) off_add(o, t->hdr + 12 + 4 * (size_t)i);
        off_add_pm1(o, t->name_off + (size_t)t->name_len / 2);
        off_add_pm1(o, t->data);
        off_add(o, t->data + t->n_bytes / 2);
        off_add_pm1(o, t->data + t->n_bytes - 1);
    }
}

// Sort, drop duplicates and offsets outside (lo, size).
static void off_finish(offsets *o, size_t lo, size_t size) {
    qsort(o->v, o->n, sizeof *o->v, cmp_size);
    size_t n = 0, prev = lo;
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i] > prev && o->v[i] < size) prev = o->v[n++] = o->v[i];
    o->n = n;
}

static void section_truncation(void) {
    const double t0 = am_time_s();
    int n_missing = 0;
    char label[96];
    // (a) the fixture through load_buffer: every prefix up to 4096 bytes, then the
    // boundaries of the filterbank, vocabulary and the first tensors (copies up to 1.5 MB)
    for (size_t k = 0; k <= 4096; k++) {
        snprintf(label, sizeof label, "cut to %zu bytes", k);
        expect_buf(g_orig, k, label, "fixture buffer", truncation_expect(&g_L, k));
    }
    offsets o = {0};
    int t_cheap = 0;
    while (t_cheap < g_L.n_t && g_L.t[t_cheap].data + g_L.t[t_cheap].n_bytes < ((size_t)3 << 19)) t_cheap++;
    boundary_offsets(&o, &g_L, 0, t_cheap, 4999);
    off_finish(&o, 4096, g_size);
    const size_t n_fix_buf = o.n;
    for (size_t i = 0; i < o.n; i++) {
        snprintf(label, sizeof label, "cut to %zu of %zu bytes", o.v[i], g_size);
        const char *want = truncation_expect(&g_L, o.v[i]);
        n_missing += !strcmp(want, "missing");
        expect_buf(g_orig, o.v[i], label, "fixture buffer", want);
    }
    // (b) the slim variant through load_buffer: every boundary of every tensor and token, and a spread
    o.n = 0;
    size_t n_slim = 0;
    if (g_slim) {
        boundary_offsets(&o, &g_S, 0, g_S.n_t, 1);
        for (int i = 0; i < 300; i++) off_add(&o, rnd_below(g_slim_size));
        off_add(&o, g_slim_size - 1);
        off_finish(&o, 0, g_slim_size);
        n_slim = o.n;
        for (size_t i = 0; i < o.n; i++) {
            snprintf(label, sizeof label, "cut to %zu of %zu bytes", o.v[i], g_slim_size);
            const char *want = truncation_expect(&g_S, o.v[i]);
            n_missing += !strcmp(want, "missing");
            expect_buf(g_slim, o.v[i], label, "slim buffer", want);
        }
    }
    // (c) the fixture as a real file through am_model_load (mmap), cut shorter and shorter:
    // at each tensor header ±1 and data start, and a spread
    o.n = 0;
    for (int k = 0; k < g_L.n_t; k++) {
        off_add_pm1(&o, g_L.t[k].hdr);
        off_add(&o, g_L.t[k].data);
    }
    for (int i = 0; i < 60; i++) off_add(&o, rnd_below(g_size));
    const size_t small_cuts[] = {0, 1, 3, 4, 5, 47, 48, 55, 56, 4096};
    for (size_t i = 0; i < sizeof small_cuts / sizeof small_cuts[0]; i++) off_add(&o, small_cuts[i]);
    off_add(&o, g_size - 1);
    off_add(&o, g_size - 2);
    qsort(o.v, o.n, sizeof *o.v, cmp_size);
    size_t n_file = 0;
    char path[64];
    const piece pc = {g_orig, g_size};
    const int fd = scratch_create(path, sizeof path, &pc, 1);
    CHECKF(fd >= 0, "cannot write a scratch file: %s", strerror(errno));
    for (size_t i = o.n; fd >= 0 && i-- > 0;) {
        const size_t k = o.v[i];
        if (k >= g_size || (i + 1 < o.n && o.v[i + 1] == k)) continue;
        if (ftruncate(fd, (off_t)k) != 0) {
            CHECKF(0, "ftruncate %s: %s", path, strerror(errno));
            break;
        }
        const char *want = truncation_expect(&g_L, k), *subs[2] = {want, NULL};
        n_missing += !strcmp(want, "missing");
        snprintf(label, sizeof label, "file cut to %zu bytes", k);
        am_set_error(AM_OK, "%s", "");
        am_model *m = am_model_load(path);
        if (m) {
            note(0, "%s: loaded", label);
            am_model_free(m);
        } else {
            failed_cleanly(label, "fixture file", subs);
        }
        n_file++;
    }
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    free(o.v);
    printf("truncation: fixture via load_buffer at every length 0..4096 + %zu boundaries of the filterbank, "
           "vocabulary and first %d tensors; slim via load_buffer at %zu offsets (every header field, name, data "
           "edge and token ±1); fixture file via am_model_load at %zu lengths; %d of them 'missing', all "
           "AM_EFORMAT (%.1f s)\n",
           n_fix_buf, t_cheap, n_slim, n_file, n_missing, am_time_s() - t0);
}

// ---------------------------------------------------------------- 3. corruption
enum {
    RG_MAGIC,
    RG_HP,      // hparams whose every change is detectable
    RG_HP_FREE, // head counts, ftype: another valid value can load
    RG_FB_HDR,
    RG_FB_DATA,
    RG_VCOUNT,
    RG_VLEN,
    RG_VBYTES,
    RG_T_HDR,
    RG_T_NAME,
    RG_T_DATA,
    RG_N
};
static const char *const k_rg_name[RG_N] = {"magic",      "hparams",     "heads/ftype", "fb-header",
                                             "fb-data",    "vocab-count", "token-len",   "token-bytes",
                                             "tensor-hdr", "tensor-name", "tensor-data"};
// Regions holding free data: a change there may load (and must then match).
static int rg_free(int rg) { return rg == RG_HP_FREE || rg == RG_FB_DATA || rg == RG_VBYTES || rg == RG_T_DATA; }

// What the error message must mention for a change in each region.
static const char *const *rg_subs(int rg) {
    static const char *const magic[] = {"magic", NULL};
    static const char *const hp[] = {"hparam", "width", "divisible", "ftype", "filterbank", "tensor", NULL};
    static const char *const fb[] = {"filterbank", NULL};
    static const char *const voc[] = {"vocabulary", "tensor", NULL};
    static const char *const ten[] = {"tensor", NULL};
    static const char *const any[] = {NULL};
    switch (rg) {
    case RG_MAGIC: return magic;
    case RG_HP:
    case RG_HP_FREE: return hp;
    case RG_FB_HDR: return fb;
    case RG_VCOUNT:
    case RG_VLEN: return voc;
    case RG_T_HDR:
    case RG_T_NAME: return ten;
    default: return any;
    }
}

static int region_of(const flayout *L, size_t off) {
    if (off < 4) return RG_MAGIC;
    if (off < 48) {
        const size_t field = (off - 4) / 4; // 3 n_audio_head, 7 n_text_head, 10 ftype
        return (field == 3 || field == 7 || field == 10) ? RG_HP_FREE : RG_HP;
    }
    if (off < L->fb_off + 8) return RG_FB_HDR;
    if (off < L->vocab_off) return RG_FB_DATA;
    if (off < L->vocab_off + 4) return RG_VCOUNT;
    if (off < L->vocab_end) {
        int32_t lo = 0, hi = L->n_tokens - 1, k = 0;
        while (lo <= hi) {
            const int32_t mid = lo + (hi - lo) / 2;
            if (L->tok_off[mid] <= off) {
                k = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return off < L->tok_off[k] + 4 ? RG_VLEN : RG_VBYTES;
    }
    const ftensor *t = &L->t[tensor_at(L, off)];
    return off < t->name_off ? RG_T_HDR : off < t->data ? RG_T_NAME : RG_T_DATA;
}

typedef struct {
    size_t off;
    uint8_t mask;
} mutation;

typedef struct {
    mutation *v;
    size_t n, cap;
} mutations;

// One bit (bit >= 0), else usually a random bit and one time in four a random byte.
static void mut_add(mutations *ms, size_t off, int bit) {
    if (ms->n == ms->cap) {
        ms->cap = ms->cap ? 2 * ms->cap : 4096;
        mutation *v = realloc(ms->v, ms->cap * sizeof *v);
        if (!v) abort();
        ms->v = v;
    }
    uint8_t mask;
    if (bit >= 0) mask = (uint8_t)(1u << bit);
    else if (rnd_below(4) == 0) mask = (uint8_t)(1 + rnd_below(255));
    else mask = (uint8_t)(1u << rnd_below(8));
    ms->v[ms->n++] = (mutation){off, mask};
}

typedef struct {
    int count[RG_N], loaded[RG_N];
    size_t n;
} flip_stats;

static void run_mutations(target *tg, const mutations *ms, flip_stats *st) {
    char label[128];
    for (size_t i = 0; i < ms->n; i++) {
        const mutation mu = ms->v[i];
        const int rg = region_of(tg->L, mu.off);
        const uint8_t b = tg->orig[mu.off] ^ mu.mask;
        snprintf(label, sizeof label, "%s: byte %zu ^= 0x%02x", k_rg_name[rg], mu.off, mu.mask);
        tg_set(tg, mu.off, &b, 1);
        st->count[rg]++;
        st->loaded[rg] += tg_check(tg, label, rg_subs(rg), rg_free(rg));
        tg_restore(tg);
        st->n++;
    }
}

// Every bit of the magic, hparams and filterbank header (`free_fields` 0: all but
// heads/ftype; 1: only those), every bit of the token count, `n_len` token
// lengths, each header byte once of every `hdr_step`-th tensor (from `hdr_phase`)
// and the last, `n_name` name bytes per tensor, and `n_data` changes in free data.
static void plan_mutations(mutations *ms, const flayout *L, int free_fields, int n_len, int hdr_step, int hdr_phase,
                           int n_name, int n_data) {
    for (size_t off = 0; off < L->fb_off + 8; off++) {
        if ((region_of(L, off) == RG_HP_FREE) != free_fields) continue;
        for (int b = 0; b < 8; b++) mut_add(ms, off, b);
    }
    for (int b = 0; b < 32; b++) mut_add(ms, L->vocab_off + (size_t)b / 8, b % 8);
    for (int i = 0; i < n_len; i++) { // the first and last 10 tokens, then random ones
        const int32_t tok = i < 10 ? i : i < 20 ? L->n_tokens - 1 - (i - 10) : (int32_t)rnd_below((size_t)L->n_tokens);
        mut_add(ms, L->tok_off[tok] + (rnd_below(4) ? 0 : rnd_below(4)), -1);
    }
    for (int k = 0; k < L->n_t; k++) {
        const ftensor *t = &L->t[k];
        if (k % hdr_step == hdr_phase || k == L->n_t - 1)
            for (size_t off = t->hdr; off < t->name_off; off++) mut_add(ms, off, -1);
        for (int i = 0; i < n_name; i++) mut_add(ms, t->name_off + rnd_below((size_t)t->name_len), -1);
    }
    for (int i = 0; i < n_data; i++) {
        switch (i % 4) {
        case 0: mut_add(ms, L->fb_off + 8 + rnd_below(L->vocab_off - L->fb_off - 8), -1); break;
        case 1: {
            int32_t tok;
            do tok = (int32_t)rnd_below((size_t)L->n_tokens);
            while (get_u32(L->d + L->tok_off[tok]) == 0);
            mut_add(ms, L->tok_off[tok] + 4 + rnd_below(get_u32(L->d + L->tok_off[tok])), -1);
            break;
        }
        default: {
            const ftensor *t = &L->t[i == 2 ? (size_t)L->n_t - 1 : rnd_below((size_t)L->n_t)];
            mut_add(ms, t->data + rnd_below(t->n_bytes), (int)rnd_below(8));
        }
        }
    }
}

static void section_bitflips(void) {
    const double t0 = am_time_s();
    flip_stats st;
    memset(&st, 0, sizeof st);
    mutations ms = {0};
    target tg;
    // the fixture as a file: every structural byte class, nothing that would load the full model
    plan_mutations(&ms, &g_L, 0, 300, 2, 0, 2, 0);
    const size_t n_fixture = ms.n;
    if (tg_open(&tg, "fixture file", g_orig, g_size, &g_L, 1)) {
        run_mutations(&tg, &ms, &st);
        tg_close(&tg);
    }
    // the slim variant from a buffer: heads/ftype, the other tensors' headers, and free
    // data (cheap to load in full), all through exact-size heap copies
    ms.n = 0;
    if (g_slim) {
        plan_mutations(&ms, &g_S, 1, 120, 4, 1, 1, 60);
        if (tg_open(&tg, "slim buffer", g_slim, g_slim_size, &g_S, 0)) {
            run_mutations(&tg, &ms, &st);
            tg_close(&tg);
        }
    }
    const size_t n_slim = ms.n;
    free(ms.v);
    int n_loaded = 0;
    char detail[512];
    size_t len = 0;
    for (int rg = 0; rg < RG_N && len < sizeof detail; rg++) {
        n_loaded += st.loaded[rg];
        len += (size_t)snprintf(detail + len, sizeof detail - len, " %s %d", k_rg_name[rg], st.count[rg]);
        if (st.loaded[rg] && len < sizeof detail)
            len += (size_t)snprintf(detail + len, sizeof detail - len, " (%d loaded)", st.loaded[rg]);
    }
    printf("bitflips: %zu mutations (%zu fixture file, %zu slim buffer): %zu clean AM_EFORMAT, %d loaded and match "
           "the mutated bytes exactly (%.1f s):%s\n",
           st.n, n_fixture, n_slim, st.n - (size_t)n_loaded, n_loaded, am_time_s() - t0, detail);
}

// ---------------------------------------------------------------- 3b. absurd values
static const char *const k_hp_names[11] = {"n_vocab",       "n_audio_ctx", "n_audio_state", "n_audio_head",
                                           "n_audio_layer", "n_text_ctx",  "n_text_state",  "n_text_head",
                                           "n_text_layer",  "n_mels",      "ftype"};

static void absurd_header(target *tg) {
    const flayout *L = tg->L;
    // magic
    absurd_i32(tg, 0, 0, "magic", "magic");
    absurd_i32(tg, 0, 0x46554747, "magic (GGUF)", "magic");
    absurd_i32(tg, 0, 0x6c6d6767, "magic (byte-swapped)", "magic");
    absurd_i32(tg, 0, 0x67676d6d, "magic (ggmm)", "magic");
    // every hparam to 0, -1, INT32_MAX, 1<<30, INT32_MIN (ftype 0 = f32 is valid: see section_absurd)
    const int32_t bad_vals[] = {0, -1, INT32_MAX, 1 << 30, INT32_MIN};
    for (int i = 0; i < 11; i++)
        for (size_t j = 0; j < sizeof bad_vals / sizeof bad_vals[0]; j++)
            if (!(i == 10 && bad_vals[j] == 0)) absurd_i32(tg, 4 + 4 * (size_t)i, bad_vals[j], k_hp_names[i], k_hp_names[i]);
    absurd_i32(tg, 40, 79, "n_mels", "n_mels");
    absurd_i32(tg, 40, 128, "n_mels (filterbank has 80)", "filterbank");
    absurd_i32(tg, 4, 51865, "n_vocab (embedding has 51864 rows)", "decoder.token_embedding.weight");
    absurd_i32(tg, 4, 51863, "n_vocab", "n_vocab");
    absurd_i32(tg, 8, 1499, "n_audio_ctx", "n_audio_ctx");
    absurd_i32(tg, 12, 2 * L->hp[2], "n_audio_state (!= n_text_state)", "width");
    absurd_i32(tg, 16, 3, "n_audio_head (does not divide the width)", "divisible");
    absurd_i32(tg, 32, 5, "n_text_head (does not divide the width)", "divisible");
    absurd_i32(tg, 20, L->hp[4] + 1, "n_audio_layer (one more than the file has)", "missing");
    absurd_i32(tg, 20, L->hp[4] - 1, "n_audio_layer (one less than the file has)", "unknown tensor");
    absurd_i32(tg, 36, L->hp[8] + 1, "n_text_layer (one more than the file has)", "missing");
    absurd_i32(tg, 36, L->hp[8] - 1, "n_text_layer (one less than the file has)", "unknown tensor");
    absurd_i32(tg, 24, 447, "n_text_ctx (file has 448)", "decoder.positional_embedding");
    const int32_t bad_ftypes[] = {4, 5, 6, 1004, 2005, 11002, 999999};
    for (size_t j = 0; j < sizeof bad_ftypes / sizeof bad_ftypes[0]; j++)
        absurd_i32(tg, 44, bad_ftypes[j], "ftype", "ftype");
    { // both widths doubled (bytes 12..31): consistent hparams, tensors of the wrong shape
        uint8_t b[20];
        const char *subs[] = {"shape", NULL};
        memcpy(b, tg->orig + 12, sizeof b);
        put_i32(b, 2 * L->hp[2]);
        put_i32(b + 16, 2 * L->hp[6]);
        tg_set(tg, 12, b, sizeof b);
        tg_check(tg, "n_audio_state = n_text_state doubled", subs, 0);
        tg_restore(tg);
        g_absurd++;
    }
    // mel filterbank header
    const int32_t bad_mel[] = {79, 0, -1, INT32_MAX, INT32_MIN, 128};
    for (size_t j = 0; j < sizeof bad_mel / sizeof bad_mel[0]; j++)
        absurd_i32(tg, L->fb_off, bad_mel[j], "filterbank n_mel", "filterbank");
    const int32_t bad_fft[] = {200, 202, 0, -1, 400, INT32_MAX, INT32_MIN};
    for (size_t j = 0; j < sizeof bad_fft / sizeof bad_fft[0]; j++)
        absurd_i32(tg, L->fb_off + 4, bad_fft[j], "filterbank n_fft", "filterbank");
    // vocabulary
    const int32_t bad_count[] = {-1, 0, 255, INT32_MIN, INT32_MAX, 1 << 30, 51864 - 1499};
    for (size_t j = 0; j < sizeof bad_count / sizeof bad_count[0]; j++)
        absurd_i32(tg, L->vocab_off, bad_count[j], "vocabulary count", "vocabulary");
    absurd_i32(tg, L->vocab_off, L->n_tokens + 1, "vocabulary count (one token too many)", "tensor");
    absurd_i32(tg, L->vocab_off, L->n_tokens - 1, "vocabulary count (one token too few)", "tensor");
    const int32_t bad_len[] = {-1, 1025, INT32_MIN, 1 << 30, INT32_MAX, 0x10000};
    for (size_t j = 0; j < sizeof bad_len / sizeof bad_len[0]; j++) {
        absurd_i32(tg, L->tok_off[0], bad_len[j], "length of token 0", "vocabulary");
        absurd_i32(tg, L->tok_off[L->n_tokens / 2], bad_len[j], "length of a middle token", "vocabulary");
        absurd_i32(tg, L->tok_off[L->n_tokens - 1], bad_len[j], "length of the last token", "vocabulary");
    }
    absurd_i32(tg, L->tok_off[L->n_tokens - 1], 1024, "length of the last token (eats the tensors)", "tensor");
}

static void absurd_tensors(target *tg) {
    const flayout *L = tg->L;
    char what[160];
    const int32_t bad_ndims[] = {0, 5, -1, INT32_MIN, INT32_MAX};
    const int32_t bad_namelen[] = {0, -1, 256, 100000, INT32_MIN, INT32_MAX};
    const int32_t bad_type[] = {4, 5, 9, 99, -1, INT32_MIN, INT32_MAX};
    const int32_t bad_dim[] = {0, -1, INT32_MIN, INT32_MAX, (1 << 24) + 1};
    const ftensor *emb = layout_tensor(L, "decoder.token_embedding.weight");
    const ftensor *picks[3] = {&L->t[0], emb, &L->t[L->n_t - 1]};
    CHECK(emb != NULL);
    for (int p = 0; p < 3 && emb; p++) { // the first tensor, the token embedding, the last
        const ftensor *t = picks[p];
        for (size_t j = 0; j < sizeof bad_ndims / sizeof bad_ndims[0]; j++) {
            snprintf(what, sizeof what, "'%s' n_dims", t->name);
            absurd_i32(tg, t->hdr, bad_ndims[j], what, "dimensions");
        }
        for (size_t j = 0; j < sizeof bad_namelen / sizeof bad_namelen[0]; j++) {
            snprintf(what, sizeof what, "'%s' name_len", t->name);
            absurd_i32(tg, t->hdr + 4, bad_namelen[j], what, "name length");
        }
        for (size_t j = 0; j < sizeof bad_type / sizeof bad_type[0]; j++) {
            snprintf(what, sizeof what, "'%s' type", t->name);
            absurd_i32(tg, t->hdr + 8, bad_type[j], what, "type");
        }
        for (size_t j = 0; j < sizeof bad_dim / sizeof bad_dim[0]; j++) {
            snprintf(what, sizeof what, "'%s' ne[0]", t->name);
            absurd_i32(tg, t->hdr + 12, bad_dim[j], what, "dimension");
            if (t->n_dims > 1) {
                snprintf(what, sizeof what, "'%s' ne[%d]", t->name, t->n_dims - 1);
                absurd_i32(tg, t->hdr + 12 + 4 * (size_t)(t->n_dims - 1), bad_dim[j], what, "dimension");
            }
        }
        snprintf(what, sizeof what, "'%s' name_len + 1", t->name);
        absurd_i32(tg, t->hdr + 4, t->name_len + 1, what, "tensor");
        snprintf(what, sizeof what, "'%s' name_len - 1", t->name);
        absurd_i32(tg, t->hdr + 4, t->name_len - 1, what, "unknown tensor");
    }
    const ftensor *conv1 = layout_tensor(L, "encoder.conv1.weight");
    const ftensor *mlp0 = layout_tensor(L, "encoder.blocks.0.mlp.0.weight");
    const ftensor *qb1 = layout_tensor(L, "encoder.blocks.1.attn.query.bias");
    const ftensor *lnb = layout_tensor(L, "decoder.ln.bias");
    const ftensor *qw0 = layout_tensor(L, "encoder.blocks.0.attn.query.weight");
    const int have = conv1 && mlp0 && qb1 && lnb && qw0 && emb;
    CHECK(have && conv1->type == AM_TYPE_F16 && qw0->type == AM_TYPE_F16 && lnb->type == AM_TYPE_F32);
    if (!have) return;
    absurd_i32(tg, conv1->hdr + 8, AM_TYPE_Q8_0, "q8_0 type on a row of 3", "block");
    absurd_i32(tg, qw0->hdr + 8, AM_TYPE_F32, "f16 weight relabelled f32 (twice the bytes)", "tensor");
    absurd_i32(tg, qw0->hdr + 8, AM_TYPE_Q8_0, "f16 weight relabelled q8_0", "tensor");
    absurd_i32(tg, lnb->hdr + 8, AM_TYPE_F16, "last tensor relabelled f16 (half its bytes left over)", "tensor");
    absurd_i32(tg, emb->hdr + 16, emb->ne[1] + 1, "token embedding with one row too many", "shape");
    absurd_i32(tg, conv1->hdr + 12, 5, "conv1 kernel 5", "shape");
    const char *shape[] = {"shape", NULL}, *unknown[] = {"unknown tensor", NULL}, *nul[] = {"NUL", NULL},
               *twice[] = {"appears twice", NULL};
    { // transposed shape
        uint8_t b[8];
        put_i32(b, mlp0->ne[1]);
        put_i32(b + 4, mlp0->ne[0]);
        tg_set(tg, mlp0->hdr + 12, b, 8);
        tg_check(tg, "mlp.0.weight with a transposed shape", shape, 0);
        tg_restore(tg);
    }
    { // renamed
        const size_t at = conv1->name_off + strlen("encoder.conv");
        const uint8_t nine = '9', upper = 'E', zero = 0, digit0 = '0';
        tg_set(tg, at, &nine, 1);
        tg_check(tg, "renamed encoder.conv9.weight", unknown, 0);
        tg_restore(tg);
        tg_set(tg, conv1->name_off, &upper, 1);
        tg_check(tg, "renamed Encoder.conv1.weight", unknown, 0);
        tg_restore(tg);
        tg_set(tg, at + 1, &zero, 1);
        tg_check(tg, "a NUL byte inside a tensor name", nul, 0);
        tg_restore(tg);
        // onto an existing tensor of the same shape: a duplicate (and the original name missing)
        tg_set(tg, qb1->name_off + strlen("encoder.blocks."), &digit0, 1);
        tg_check(tg, "encoder.blocks.1.attn.query.bias renamed to blocks.0", twice, 0);
        tg_restore(tg);
    }
    g_absurd += 6;
}

// Tensors removed, duplicated, appended; trailing bytes; a cut right before a header.
static void absurd_layout(void) {
    const flayout *L = &g_L;
    const ftensor *last = &L->t[L->n_t - 1], *t5 = &L->t[5], *t0 = &L->t[0];
    const uint8_t *o = g_orig;
    char what[160];
    snprintf(what, sizeof what, "'%s' spliced out", t5->name);
    const piece no5[] = {{o, t5->hdr}, {o + t5->data + t5->n_bytes, g_size - t5->data - t5->n_bytes}};
    expect_pieces(no5, 2, what, t5->name);
    snprintf(what, sizeof what, "the first tensor '%s' spliced out", t0->name);
    const piece no0[] = {{o, t0->hdr}, {o + t0->data + t0->n_bytes, g_size - t0->data - t0->n_bytes}};
    expect_pieces(no0, 2, what, t0->name);
    const piece twice_last[] = {{o, g_size}, {o + last->hdr, g_size - last->hdr}};
    expect_pieces(twice_last, 2, "the last tensor appended again", "appears twice");
    const piece twice_5[] = {{o, g_size}, {o + t5->hdr, t5->data + t5->n_bytes - t5->hdr}};
    expect_pieces(twice_5, 2, "an earlier tensor appended again", "appears twice");
    const piece hdr_only[] = {{o, g_size}, {o + last->hdr, last->data - last->hdr}};
    expect_pieces(hdr_only, 2, "a duplicate header without data appended", "appears twice");
    uint8_t junk[256];
    memset(junk, 0, sizeof junk);
    const size_t n_zero[] = {1, 3, 4, 11};
    for (size_t j = 0; j < sizeof n_zero / sizeof n_zero[0]; j++) {
        snprintf(what, sizeof what, "%zu trailing zero bytes", n_zero[j]);
        const piece pc[] = {{o, g_size}, {junk, n_zero[j]}};
        expect_pieces(pc, 2, what, "truncated");
    }
    const piece z12[] = {{o, g_size}, {junk, 12}}, z256[] = {{o, g_size}, {junk, 256}};
    expect_pieces(z12, 2, "12 trailing zero bytes", "dimensions");
    expect_pieces(z256, 2, "256 trailing zero bytes", "dimensions");
    memset(junk, 0xff, sizeof junk);
    const piece ff[] = {{o, g_size}, {junk, 64}};
    expect_pieces(ff, 2, "64 trailing 0xff bytes", "dimensions");
    for (size_t j = 0; j < sizeof junk; j++) junk[j] = (uint8_t)rnd();
    const piece rnd_tail[] = {{o, g_size}, {junk, sizeof junk}};
    expect_pieces(rnd_tail, 2, "256 trailing random bytes", "tensor");
    // a well-formed tensor whose name the model does not have
    const uint8_t x = 'X';
    const size_t at = last->name_off + 8; // decoder.ln.bias -> decoder.Xn.bias
    const piece unknown[] = {{o, g_size}, {o + last->hdr, at - last->hdr}, {&x, 1}, {o + at + 1, g_size - at - 1}};
    expect_pieces(unknown, 4, "a well-formed unknown tensor appended", "unknown tensor");
    g_absurd += 14;
    // cut right before a tensor header: that tensor is missing (the buffer path, exact size)
    snprintf(what, sizeof what, "cut before the last tensor '%s'", last->name);
    expect_buf(o, last->hdr, what, "fixture buffer", last->name);
    snprintf(what, sizeof what, "cut before the first tensor '%s'", t0->name);
    expect_buf(o, t0->hdr, what, "fixture buffer", "missing");
    g_absurd += 2;
}

static void section_absurd(void) {
    const double t0 = am_time_s();
    target tg;
    if (tg_open(&tg, "fixture file", g_orig, g_size, &g_L, 1)) {
        absurd_header(&tg);
        absurd_tensors(&tg);
        tg_close(&tg);
    }
    absurd_layout();
    int ftype0 = -1;
    if (g_slim && tg_open(&tg, "slim buffer", g_slim, g_slim_size, &g_S, 0)) {
        // the header checks again on the slim variant, through exact-size heap copies
        absurd_header(&tg);
        // ftype is informational: 0 (f32) over f16 tensors may load (the loader dequantizes each
        // tensor by its own type); if it loads, it must match the file
        const char *any[] = {NULL};
        tg_i32(&tg, 44, 0);
        ftype0 = tg_check(&tg, "ftype = 0 in an f16 file", any, 1);
        tg_restore(&tg);
        g_absurd++;
        tg_close(&tg);
    }
    printf("absurd values: %d cases (magic; each hparam 0/-1/INT32_MAX/2^30/INT32_MIN; n_mels 79; filterbank "
           "n_fft 200; token count/lengths; tensor n_dims/name_len/type/dims; renamed, duplicated, missing, "
           "appended tensors; trailing bytes): all clean AM_EFORMAT; ftype 0 over f16 tensors %s (%.1f s)\n",
           g_absurd, ftype0 == 1 ? "loads as stored" : ftype0 == 0 ? "is rejected" : "not run", am_time_s() - t0);
}

// ---------------------------------------------------------------- 4. paths
static char g_fifo[64];

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL: am_model_load blocked for 20 s (a FIFO opened without O_NONBLOCK?)\n";
    if (write(2, msg, sizeof msg - 1)) {}
    unlink(g_fifo);
    _exit(1);
}

static void expect_path(const char *path, int want_code, const char *want_sub, const char *what) {
    am_set_error(AM_OK, "%s", "");
    am_model *m = am_model_load(path);
    const char *msg = am_last_error();
    CHECKF(!m && am_last_error_code() == want_code && msg[0] && (!want_sub || strstr(msg, want_sub)),
           "%s: %s, code %d (want %d), message '%s' (want a mention of '%s')", what, m ? "loaded" : "failed",
           am_last_error_code(), want_code, msg, want_sub ? want_sub : "");
    am_model_free(m);
}

static void section_paths(void) {
    int n = 0;
    am_set_error(AM_OK, "%s", "");
    CHECKF(am_model_load(NULL) == NULL && am_last_error_code() == AM_EINVAL && am_last_error()[0],
           "NULL path: code %d '%s'", am_last_error_code(), am_last_error());
    expect_path("/nonexistent-dir-am-test/ggml-model.bin", AM_EIO, "/nonexistent-dir-am-test/ggml-model.bin",
                "nonexistent path");
    expect_path("", AM_EIO, NULL, "empty path");
    expect_path("/tmp", AM_EIO, "/tmp", "a directory");
    expect_path("/dev/null", AM_EIO, "/dev/null", "a character device");
    n += 5;
    static const uint8_t riff[] = "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00";
    static const uint8_t gguf[] = "GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    static const uint8_t magic[] = {0x6c, 0x6d, 0x67, 0x67};
    const struct {
        const void *bytes;
        size_t n;
        const char *sub, *what;
    } files[] = {
        {"", 0, "too small", "an empty file"},
        {"ggm", 3, "too small", "a 3-byte file"},
        {magic, 4, "truncated", "the magic alone"},
        {riff, sizeof riff - 1, "magic", "a WAV file"},
        {gguf, sizeof gguf - 1, "magic", "a GGUF file"},
    };
    char path[64];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const piece pc = {files[i].bytes, files[i].n};
        const int fd = scratch_create(path, sizeof path, &pc, 1);
        CHECKF(fd >= 0, "cannot write a scratch file: %s", strerror(errno));
        if (fd < 0) continue;
        close(fd);
        expect_path(path, AM_EFORMAT, files[i].sub, files[i].what);
        unlink(path);
        n++;
    }
    // a FIFO nobody writes to: must not block in open()
    snprintf(g_fifo, sizeof g_fifo, "/tmp/am_test_model_fifo_%ld", (long)getpid());
    unlink(g_fifo);
    if (mkfifo(g_fifo, 0600) == 0) {
        signal(SIGALRM, on_alarm);
        alarm(20);
        expect_path(g_fifo, AM_EIO, "regular file", "a FIFO");
        alarm(0);
        signal(SIGALRM, SIG_DFL);
        unlink(g_fifo);
        n++;
    } else {
        SKIP_CASE("fifo", "mkfifo: %s", strerror(errno));
    }
    // the buffer API
    am_set_error(AM_OK, "%s", "");
    CHECKF(am_model_load_buffer(NULL, 1000, "x") == NULL && am_last_error_code() < 0 && am_last_error()[0],
           "load_buffer(NULL): code %d '%s'", am_last_error_code(), am_last_error());
    am_set_error(AM_OK, "%s", "");
    CHECKF(am_model_load_buffer(magic, 0, NULL) == NULL && am_last_error_code() == AM_EFORMAT && am_last_error()[0],
           "load_buffer(size 0): code %d '%s'", am_last_error_code(), am_last_error());
    am_model_free(NULL);
    n += 3;
    CHECK(!strcmp(am_type_name(AM_TYPE_F32), "f32") && !strcmp(am_type_name(AM_TYPE_F16), "f16") &&
          !strcmp(am_type_name(AM_TYPE_Q4_0), "q4_0") && !strcmp(am_type_name(AM_TYPE_Q4_1), "q4_1") &&
          !strcmp(am_type_name(AM_TYPE_Q5_0), "q5_0") && !strcmp(am_type_name(AM_TYPE_Q5_1), "q5_1") &&
          !strcmp(am_type_name(AM_TYPE_Q8_0), "q8_0"));
    CHECK(!strcmp(am_type_name(4), "unknown") && !strcmp(am_type_name(-1), "unknown") &&
          !strcmp(am_type_name(99), "unknown"));
    printf("paths: %d cases (NULL -> EINVAL; nonexistent, empty path, directory, /dev/null, FIFO -> EIO; empty, "
           "3-byte, magic-only, WAV, GGUF files -> EFORMAT; buffer API)\n",
           n);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); // in order with stderr, and intact if a case aborts
    const double t0 = am_time_s();
    init_half_table();
    for (size_t i = 0; i < sizeof k_fixtures / sizeof k_fixtures[0]; i++) check_fixture(&k_fixtures[i]);
    if (g_ref) {
        check_buffer_load();
        build_slim();
    }
    printf("positive: %d of %zu fixtures loaded and verified value by value (%.1f s)\n", g_fixtures_run,
           sizeof k_fixtures / sizeof k_fixtures[0], am_time_s() - t0);
    if (g_ref) {
        section_truncation();
        section_bitflips();
        section_absurd();
    } else {
        SKIP_CASE("truncation/corruption", "need fixtures/ggml-test-tiny.en.bin");
    }
    section_paths();
    am_model_free(g_ref);
    layout_free(&g_L);
    layout_free(&g_S);
    free(g_slim);
    if (g_orig) munmap((void *)g_orig, g_size);
    printf("test_model: total %.1f s\n", am_time_s() - t0);
    return am_test_finish("test_model", 1);
}
