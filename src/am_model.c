// am_model.c — whisper.cpp ggml model loader: map, validate, copy into an aligned arena.
#include "am_model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define AM_GGML_MAGIC 0x67676d6cu
#define AM_MAX_NAME 256
#define AM_MAX_TOKEN_BYTES 1024

// ---------------------------------------------------------------- reader
// A bounds-checked cursor over the file bytes: every read checks the remaining
// length first, so a truncated or corrupt file can never cause an over-read.
typedef struct {
    const uint8_t *base;
    size_t size;
    size_t pos;
    int mapped; // base is a file mapping: pages already copied can be dropped
} reader;

// Drop the mapped pages wholly inside [off, off + n) once they are copied, so
// that loading never holds the file and the arena resident at the same time.
static void release_pages(const reader *r, size_t off, size_t n) {
    if (!r->mapped) return;
    const uintptr_t page = 4096, lo = ((uintptr_t)r->base + off + page - 1) & ~(page - 1);
    const uintptr_t hi = ((uintptr_t)r->base + off + n) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static int rd_bytes(reader *r, void *dst, size_t n, const char *what) {
    if (n > r->size - r->pos) {
        memset(dst, 0, n);
        return am_set_error(AM_EFORMAT, "model file truncated while reading %s (offset %zu, need %zu bytes, %zu left)",
                            what, r->pos, n, r->size - r->pos);
    }
    memcpy(dst, r->base + r->pos, n);
    r->pos += n;
    return 0;
}

static int rd_i32(reader *r, int32_t *v, const char *what) { return rd_bytes(r, v, 4, what); }

// ---------------------------------------------------------------- expected tensors
// The loader first lists every tensor the hparams imply (name, shape in ggml
// order with size-1 dims dropped, where it goes in the model), then matches
// the file's tensors against that list, then lays them out in the arena.
enum {
    SPEC_VEC,      // float32 vector or table: dest is const float **
    SPEC_MAT,      // weight matrix in the file's type: dest is am_wmat *, rows = last dim
    SPEC_QKV,      // part `part` (0 query, 1 key, 2 value) of a fused (3d, d) matrix: dest is am_wmat *
    SPEC_QKV_BIAS, // part 0 or 2 of the fused (3d,) bias: dest is const float **
};

typedef struct {
    char name[80];
    int n_dims;
    int64_t ne[3];
    int kind, part;
    void *dest;
    // filled while parsing
    int found;
    int type;
    size_t offset;    // byte offset of the data in the file
    size_t n_elem;
    size_t arena_off; // byte offset of this tensor (its group for QKV parts) in the arena
} tensor_spec;

typedef struct {
    tensor_spec *v;
    int n, cap;
} spec_list;

static int spec_add(spec_list *l, int kind, int part, void *dest, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                    const char *fmt, ...) __attribute__((format(printf, 9, 10)));

static int spec_add(spec_list *l, int kind, int part, void *dest, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                    const char *fmt, ...) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 128;
        tensor_spec *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return AM_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    tensor_spec *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->n_dims = n_dims;
    s->ne[0] = ne0;
    s->ne[1] = ne1;
    s->ne[2] = ne2;
    s->kind = kind;
    s->part = part;
    s->dest = dest;
    return 0;
}

#define VEC(slot, n, ...) spec_add(&l, SPEC_VEC, 0, (slot), 1, (n), 1, 1, __VA_ARGS__)
#define TABLE(slot, in, out, ...) spec_add(&l, SPEC_VEC, 0, (slot), 2, (in), (out), 1, __VA_ARGS__)
#define MAT(wm, in, out, ...) spec_add(&l, SPEC_MAT, 0, (wm), 2, (in), (out), 1, __VA_ARGS__)
#define QKV(wm, part, d, ...) spec_add(&l, SPEC_QKV, (part), (wm), 2, (d), (d), 1, __VA_ARGS__)
#define QKV_BIAS(slot, part, d, ...) spec_add(&l, SPEC_QKV_BIAS, (part), (slot), 1, (d), 1, 1, __VA_ARGS__)

static int add_attn(spec_list *lp, am_attn_weights *a, const char *prefix, int i, const char *kind, int d) {
    spec_list l = *lp;
    int rc = 0;
    rc |= VEC(&a->ln_w, d, "%s.blocks.%d.%s_ln.weight", prefix, i, kind);
    rc |= VEC(&a->ln_b, d, "%s.blocks.%d.%s_ln.bias", prefix, i, kind);
    rc |= QKV(&a->qkv, 0, d, "%s.blocks.%d.%s.query.weight", prefix, i, kind);
    rc |= QKV_BIAS(&a->qkv_b, 0, d, "%s.blocks.%d.%s.query.bias", prefix, i, kind);
    rc |= QKV(&a->qkv, 1, d, "%s.blocks.%d.%s.key.weight", prefix, i, kind);
    rc |= QKV(&a->qkv, 2, d, "%s.blocks.%d.%s.value.weight", prefix, i, kind);
    rc |= QKV_BIAS(&a->qkv_b, 2, d, "%s.blocks.%d.%s.value.bias", prefix, i, kind);
    rc |= MAT(&a->o, d, d, "%s.blocks.%d.%s.out.weight", prefix, i, kind);
    rc |= VEC(&a->o_b, d, "%s.blocks.%d.%s.out.bias", prefix, i, kind);
    *lp = l;
    return rc ? AM_ENOMEM : 0;
}

static int add_mlp(spec_list *lp, am_block *b, const char *prefix, int i, int d) {
    spec_list l = *lp;
    int rc = 0;
    rc |= VEC(&b->mlp_ln_w, d, "%s.blocks.%d.mlp_ln.weight", prefix, i);
    rc |= VEC(&b->mlp_ln_b, d, "%s.blocks.%d.mlp_ln.bias", prefix, i);
    rc |= MAT(&b->mlp0, d, 4 * d, "%s.blocks.%d.mlp.0.weight", prefix, i);
    rc |= VEC(&b->mlp0_b, 4 * d, "%s.blocks.%d.mlp.0.bias", prefix, i);
    rc |= MAT(&b->mlp2, 4 * d, d, "%s.blocks.%d.mlp.2.weight", prefix, i);
    rc |= VEC(&b->mlp2_b, d, "%s.blocks.%d.mlp.2.bias", prefix, i);
    *lp = l;
    return rc ? AM_ENOMEM : 0;
}

static int build_specs(am_model *m, spec_list *out) {
    const am_hparams *hp = &m->hp;
    const int da = hp->n_audio_state, dt = hp->n_text_state;
    spec_list l = {0};
    int rc = 0;
    rc |= spec_add(&l, SPEC_MAT, 0, &m->enc_conv1, 3, 3, hp->n_mels, da, "encoder.conv1.weight");
    rc |= VEC(&m->enc_conv1_b, da, "encoder.conv1.bias");
    rc |= spec_add(&l, SPEC_MAT, 0, &m->enc_conv2, 3, 3, da, da, "encoder.conv2.weight");
    rc |= VEC(&m->enc_conv2_b, da, "encoder.conv2.bias");
    rc |= TABLE(&m->enc_pos, da, hp->n_audio_ctx, "encoder.positional_embedding");
    rc |= VEC(&m->enc_ln_w, da, "encoder.ln_post.weight");
    rc |= VEC(&m->enc_ln_b, da, "encoder.ln_post.bias");
    for (int i = 0; i < hp->n_audio_layer && !rc; i++) {
        rc |= add_attn(&l, &m->enc_blocks[i].attn, "encoder", i, "attn", da);
        rc |= add_mlp(&l, &m->enc_blocks[i], "encoder", i, da);
    }
    rc |= MAT(&m->dec_tok_emb, dt, hp->n_vocab, "decoder.token_embedding.weight");
    rc |= TABLE(&m->dec_pos, dt, hp->n_text_ctx, "decoder.positional_embedding");
    rc |= VEC(&m->dec_ln_w, dt, "decoder.ln.weight");
    rc |= VEC(&m->dec_ln_b, dt, "decoder.ln.bias");
    for (int i = 0; i < hp->n_text_layer && !rc; i++) {
        rc |= add_attn(&l, &m->dec_blocks[i].attn, "decoder", i, "attn", dt);
        rc |= add_attn(&l, &m->dec_blocks[i].cross, "decoder", i, "cross_attn", dt);
        rc |= add_mlp(&l, &m->dec_blocks[i], "decoder", i, dt);
    }
    if (rc) {
        free(l.v);
        return am_set_error(AM_ENOMEM, "out of memory listing tensors");
    }
    *out = l;
    return 0;
}

// Drop size-1 dimensions so that conv biases stored as (1,d) compare equal to (d,).
static int squeeze(const int64_t *ne, int n_dims, int64_t *outv) {
    int k = 0;
    for (int i = 0; i < n_dims; i++)
        if (ne[i] != 1) outv[k++] = ne[i];
    return k;
}

// ---------------------------------------------------------------- parsing
static int check_range(const char *what, int32_t v, int32_t lo, int32_t hi) {
    if (v < lo || v > hi)
        return am_set_error(AM_EFORMAT, "model hparam %s = %d out of range [%d, %d]", what, v, lo, hi);
    return 0;
}

static int parse_hparams(reader *r, am_hparams *hp) {
    int32_t v[11];
    for (int i = 0; i < 11; i++)
        if (rd_i32(r, &v[i], "hparams")) return AM_EFORMAT;
    hp->n_vocab = v[0];
    hp->n_audio_ctx = v[1];
    hp->n_audio_state = v[2];
    hp->n_audio_head = v[3];
    hp->n_audio_layer = v[4];
    hp->n_text_ctx = v[5];
    hp->n_text_state = v[6];
    hp->n_text_head = v[7];
    hp->n_text_layer = v[8];
    hp->n_mels = v[9];
    hp->ftype = v[10];
    if (check_range("n_vocab", hp->n_vocab, 51864, 51866) || check_range("n_audio_ctx", hp->n_audio_ctx, 1500, 1500) ||
        check_range("n_audio_state", hp->n_audio_state, 1, 8192) ||
        check_range("n_audio_head", hp->n_audio_head, 1, 128) ||
        check_range("n_audio_layer", hp->n_audio_layer, 1, 128) ||
        check_range("n_text_ctx", hp->n_text_ctx, 4, 4096) ||
        check_range("n_text_state", hp->n_text_state, 1, 8192) ||
        check_range("n_text_head", hp->n_text_head, 1, 128) ||
        check_range("n_text_layer", hp->n_text_layer, 1, 128))
        return AM_EFORMAT;
    if (hp->n_mels != 80 && hp->n_mels != 128)
        return am_set_error(AM_EFORMAT, "model hparam n_mels = %d (expected 80 or 128)", hp->n_mels);
    if (hp->n_audio_state != hp->n_text_state)
        return am_set_error(AM_EFORMAT, "encoder width %d differs from decoder width %d", hp->n_audio_state,
                            hp->n_text_state);
    if (hp->n_audio_state % hp->n_audio_head || hp->n_text_state % hp->n_text_head)
        return am_set_error(AM_EFORMAT, "model width not divisible by its head count");
    int q = hp->ftype % 1000;
    if (hp->ftype < 0 || hp->ftype / 1000 > 10 || !(q == 0 || q == 1 || q == 2 || q == 3 || (q >= 7 && q <= 9)))
        return am_set_error(AM_EFORMAT, "model ftype %d unknown", hp->ftype);
    return 0;
}

// The token bytes are copied into one block (vocab_store) so that the file
// mapping can be released after loading.
static int parse_vocab(reader *r, am_model *m) {
    int32_t n;
    if (rd_i32(r, &n, "vocabulary size")) return AM_EFORMAT;
    // The stored vocabulary holds the ordinary tokens only (50256/50257).
    if (n < 256 || n > m->hp.n_vocab - 1500)
        return am_set_error(AM_EFORMAT, "vocabulary size %d out of range for n_vocab %d", n, m->hp.n_vocab);
    const uint8_t **bytes = calloc((size_t)n, sizeof *bytes);
    uint32_t *len = calloc((size_t)n, sizeof *len);
    if (!bytes || !len) {
        free(bytes);
        free(len);
        return am_set_error(AM_ENOMEM, "out of memory for vocabulary");
    }
    m->vocab_bytes = bytes;
    m->vocab_len = len;
    m->n_file_vocab = n;
    const size_t start = r->pos;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) { // validate and measure
        uint32_t l;
        if (rd_bytes(r, &l, 4, "vocabulary")) return AM_EFORMAT;
        if (l > AM_MAX_TOKEN_BYTES) return am_set_error(AM_EFORMAT, "vocabulary token %d has length %u", i, l);
        if (l > r->size - r->pos) return am_set_error(AM_EFORMAT, "model file truncated in vocabulary token %d", i);
        len[i] = l;
        r->pos += l;
        total += l;
    }
    if (!(m->vocab_store = malloc(total + 1))) return am_set_error(AM_ENOMEM, "out of memory for vocabulary");
    size_t src = start + 4, dst = 0;
    for (int32_t i = 0; i < n; src += len[i] + 4, dst += len[i], i++) { // copy
        memcpy(m->vocab_store + dst, r->base + src, len[i]);
        bytes[i] = m->vocab_store + dst;
    }
    return 0;
}

static int parse_tensors(reader *r, spec_list *specs) {
    while (r->pos < r->size) {
        int32_t n_dims, name_len, ttype;
        if (rd_i32(r, &n_dims, "tensor header") || rd_i32(r, &name_len, "tensor header") ||
            rd_i32(r, &ttype, "tensor header"))
            return AM_EFORMAT;
        if (n_dims < 1 || n_dims > 4)
            return am_set_error(AM_EFORMAT, "tensor at offset %zu has %d dimensions", r->pos - 12, n_dims);
        if (name_len < 1 || name_len >= AM_MAX_NAME)
            return am_set_error(AM_EFORMAT, "tensor at offset %zu has name length %d", r->pos - 12, name_len);
        const int block = am_type_block(ttype);
        if (!block) return am_set_error(AM_EFORMAT, "tensor at offset %zu has unknown type %d", r->pos - 12, ttype);
        int64_t ne[4] = {1, 1, 1, 1};
        size_t n_elem = 1;
        for (int i = 0; i < n_dims; i++) {
            int32_t v;
            if (rd_i32(r, &v, "tensor shape")) return AM_EFORMAT;
            if (v < 1 || v > (1 << 24)) return am_set_error(AM_EFORMAT, "tensor dimension %d = %d invalid", i, v);
            ne[i] = v;
            if (am_mul_size(n_elem, (size_t)v, &n_elem) || n_elem > ((size_t)1 << 34))
                return am_set_error(AM_EFORMAT, "tensor too large");
        }
        char name[AM_MAX_NAME];
        if (rd_bytes(r, name, (size_t)name_len, "tensor name")) return AM_EFORMAT;
        name[name_len] = 0;
        if (memchr(name, 0, (size_t)name_len))
            return am_set_error(AM_EFORMAT, "tensor name contains a NUL byte");
        if (ne[0] % block)
            return am_set_error(AM_EFORMAT, "tensor '%s': row of %lld not a multiple of %s block size", name,
                                (long long)ne[0], am_type_name(ttype));
        const size_t n_bytes = am_type_bytes(ttype, n_elem);
        tensor_spec *s = NULL;
        for (int i = 0; i < specs->n; i++)
            if (strcmp(specs->v[i].name, name) == 0) {
                s = &specs->v[i];
                break;
            }
        if (!s) return am_set_error(AM_EFORMAT, "unknown tensor '%s' in model file", name);
        if (s->found) return am_set_error(AM_EFORMAT, "tensor '%s' appears twice", name);
        int64_t got[4], want[3];
        int ng = squeeze(ne, n_dims, got), nw = squeeze(s->ne, s->n_dims, want);
        int same = ng == nw;
        for (int i = 0; same && i < ng; i++) same = got[i] == want[i];
        if (!same)
            return am_set_error(AM_EFORMAT, "tensor '%s' has shape (%lld,%lld,%lld,%lld), expected (%lld,%lld,%lld)",
                                name, (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3],
                                (long long)s->ne[0], (long long)s->ne[1], (long long)s->ne[2]);
        if (n_bytes > r->size - r->pos)
            return am_set_error(AM_EFORMAT, "model file truncated: tensor '%s' needs %zu bytes at offset %zu, file has %zu",
                                name, n_bytes, r->pos, r->size - r->pos);
        s->found = 1;
        s->type = ttype;
        s->offset = r->pos;
        s->n_elem = n_elem;
        r->pos += n_bytes;
    }
    for (int i = 0; i < specs->n; i++)
        if (!specs->v[i].found) return am_set_error(AM_EFORMAT, "tensor '%s' missing from model file", specs->v[i].name);
    return 0;
}

// ---------------------------------------------------------------- arena
static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

// The sibling of a fused-group spec with the same destination and `part`.
static const tensor_spec *sibling(const spec_list *specs, const tensor_spec *s, int part) {
    for (int i = 0; i < specs->n; i++)
        if (specs->v[i].dest == s->dest && specs->v[i].kind == s->kind && specs->v[i].part == part)
            return &specs->v[i];
    return NULL;
}

// The type a fused q/k/v matrix is stored in: the parts' common type, or
// float32 (exact) when the file mixes types within the group.
static int qkv_type(const spec_list *specs, const tensor_spec *s) {
    const int t0 = sibling(specs, s, 0)->type;
    for (int p = 1; p < 3; p++)
        if (sibling(specs, s, p)->type != t0) return AM_TYPE_F32;
    return t0;
}

// Bytes one spec's group occupies in the arena (0 for the later parts of a group).
static size_t spec_arena_bytes(const spec_list *specs, const tensor_spec *s) {
    switch (s->kind) {
    case SPEC_VEC: return round64(s->n_elem * sizeof(float));
    case SPEC_MAT: return round64(am_type_bytes(s->type, s->n_elem));
    case SPEC_QKV: return s->part ? 0 : round64(3 * am_type_bytes(qkv_type(specs, s), s->n_elem));
    default: return s->part ? 0 : round64(3 * s->n_elem * sizeof(float)); // SPEC_QKV_BIAS
    }
}

static am_wmat make_wmat(const uint8_t *data, int type, int rows, int cols) {
    am_wmat w = {data, type, rows, cols, am_type_bytes(type, (size_t)cols)};
    return w;
}

// Copy every tensor into one 64-byte aligned arena: matrices in their file
// type (a q/k/v group as one matrix), vectors as float32.
static int fill_arena(am_model *m, const reader *r, spec_list *specs) {
    size_t total = 0;
    for (int i = 0; i < specs->n; i++) {
        tensor_spec *s = &specs->v[i];
        const size_t n = spec_arena_bytes(specs, s);
        if (n) {
            s->arena_off = total;
            total += n;
        }
    }
    for (int i = 0; i < specs->n; i++) { // later parts of a group share its offset
        tensor_spec *s = &specs->v[i];
        if ((s->kind == SPEC_QKV || s->kind == SPEC_QKV_BIAS) && s->part) s->arena_off = sibling(specs, s, 0)->arena_off;
    }
    if (!(m->arena = am_alloc(total))) return am_set_error(AM_ENOMEM, "out of memory for %zu MB of weights", total >> 20);
    m->arena_bytes = total;
    int counts[16] = {0};
    for (int i = 0; i < specs->n; i++) {
        const tensor_spec *s = &specs->v[i];
        const uint8_t *src = r->base + s->offset;
        uint8_t *dst = m->arena + s->arena_off;
        if (s->n_dims >= 2 && s->type < 16) counts[s->type]++;
        switch (s->kind) {
        case SPEC_VEC:
            am_quant_dequant((float *)dst, src, s->type, s->n_elem);
            *(const float **)s->dest = (const float *)dst;
            break;
        case SPEC_MAT: {
            const int rows = (int)s->ne[s->n_dims - 1];
            memcpy(dst, src, am_type_bytes(s->type, s->n_elem));
            *(am_wmat *)s->dest = make_wmat(dst, s->type, rows, (int)(s->n_elem / (size_t)rows));
            break;
        }
        case SPEC_QKV: {
            const int type = qkv_type(specs, s), d = (int)s->ne[0];
            const size_t part_bytes = am_type_bytes(type, s->n_elem);
            if (type == s->type) memcpy(dst + s->part * part_bytes, src, part_bytes);
            else am_quant_dequant((float *)(dst + s->part * part_bytes), src, s->type, s->n_elem);
            *(am_wmat *)s->dest = make_wmat(dst, type, 3 * d, d);
            break;
        }
        case SPEC_QKV_BIAS: // parts 0 and 2; the key's third stays zero
            am_quant_dequant((float *)dst + (size_t)s->part * s->n_elem, src, s->type, s->n_elem);
            *(const float **)s->dest = (const float *)dst;
            break;
        }
        release_pages(r, s->offset, am_type_bytes(s->type, s->n_elem));
    }
    int best = 0;
    for (int t = 0; t < 16; t++)
        if (counts[t] > counts[best]) best = t;
    m->weight_type = best;
    return 0;
}

static int parse(am_model *m, const uint8_t *data, size_t size, int mapped) {
    reader r = {data, size, 0, mapped};
    spec_list specs = {0};
    int rc;
    uint32_t magic;
    if ((rc = rd_bytes(&r, &magic, 4, "magic"))) goto fail;
    if (magic != AM_GGML_MAGIC) {
        rc = am_set_error(AM_EFORMAT, "not a ggml model file (magic 0x%08x, expected 0x%08x)", magic, AM_GGML_MAGIC);
        goto fail;
    }
    if ((rc = parse_hparams(&r, &m->hp))) goto fail;
    int32_t n_mel, n_fft;
    if ((rc = rd_i32(&r, &n_mel, "mel filters")) || (rc = rd_i32(&r, &n_fft, "mel filters"))) goto fail;
    if (n_mel != m->hp.n_mels || n_fft != 201) {
        rc = am_set_error(AM_EFORMAT, "mel filterbank is %dx%d, expected %dx201", n_mel, n_fft, m->hp.n_mels);
        goto fail;
    }
    size_t fb_bytes = (size_t)n_mel * 201 * 4;
    if (fb_bytes > r.size - r.pos) {
        rc = am_set_error(AM_EFORMAT, "model file truncated in mel filterbank");
        goto fail;
    }
    float *fb = am_alloc(fb_bytes);
    if (!fb) {
        rc = am_set_error(AM_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(fb, r.base + r.pos, fb_bytes);
    r.pos += fb_bytes;
    m->mel_filters = fb;
    if ((rc = parse_vocab(&r, m))) goto fail;
    m->enc_blocks = calloc((size_t)m->hp.n_audio_layer, sizeof *m->enc_blocks);
    m->dec_blocks = calloc((size_t)m->hp.n_text_layer, sizeof *m->dec_blocks);
    if (!m->enc_blocks || !m->dec_blocks) {
        rc = am_set_error(AM_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = build_specs(m, &specs))) goto fail;
    if ((rc = parse_tensors(&r, &specs))) goto fail;
    if ((rc = fill_arena(m, &r, &specs))) goto fail;
    free(specs.v);
    return 0;
fail:
    free(specs.v);
    return rc;
}

// ---------------------------------------------------------------- public API
static void set_name(am_model *m, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(m->name, sizeof m->name, "%s", base);
    char *dot = strrchr(m->name, '.');
    if (dot && strcmp(dot, ".bin") == 0) *dot = 0;
}

am_model *am_model_load(const char *path) {
    am_model *m = NULL;
    int fd = -1;
    if (!path) {
        am_set_error(AM_EINVAL, "model path is NULL");
        return NULL;
    }
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then rejected as not a regular file).
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        am_set_error(AM_EIO, "cannot open model file '%s': %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        am_set_error(AM_EIO, "model path '%s' is not a regular file", path);
        goto fail;
    }
    if (st.st_size < 4) {
        am_set_error(AM_EFORMAT, "model file '%s' is too small (%lld bytes)", path, (long long)st.st_size);
        goto fail;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        am_set_error(AM_ENOMEM, "out of memory");
        goto fail;
    }
    const size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        am_set_error(AM_EIO, "cannot map model file '%s': %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    set_name(m, path);
    const int rc = parse(m, map, size, 1);
    munmap(map, size); // everything the model keeps was copied
    if (rc) goto fail;
    return m;
fail:
    if (fd >= 0) close(fd);
    am_model_free(m);
    return NULL;
}

am_model *am_model_load_buffer(const void *data, size_t size, const char *name) {
    am_model *m = NULL;
    uint8_t *copy = NULL;
    if (!data || size < 4) {
        am_set_error(AM_EFORMAT, "model buffer is empty or too small (%zu bytes)", size);
        return NULL;
    }
    // parsed from an exact-size copy, so that a sanitizer sees any read past the end
    if (!(m = calloc(1, sizeof *m)) || !(copy = malloc(size))) {
        am_set_error(AM_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(copy, data, size);
    set_name(m, name ? name : "buffer");
    if (parse(m, copy, size, 0)) goto fail;
    free(copy);
    return m;
fail:
    free(copy);
    am_model_free(m);
    return NULL;
}

void am_model_free(am_model *m) {
    if (!m) return;
    am_free((void *)m->mel_filters);
    free((void *)m->vocab_bytes);
    free((void *)m->vocab_len);
    free(m->vocab_store);
    free(m->enc_blocks);
    free(m->dec_blocks);
    am_free(m->arena);
    free(m);
}

int am_model_is_multilingual(const am_model *m) { return m->hp.n_vocab >= 51865; }

size_t am_model_weight_bytes(const am_model *m) { return m->arena_bytes; }
