// am_model.c — whisper.cpp ggml model loader: map, validate, dequantize.
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
} reader;

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

// ---------------------------------------------------------------- types
typedef struct {
    int type;
    const char *name;
    int block;       // elements per block
    int block_bytes; // bytes per block
} type_info;

static const type_info k_types[] = {
    {AM_TYPE_F32, "f32", 1, 4},     {AM_TYPE_F16, "f16", 1, 2},     {AM_TYPE_Q4_0, "q4_0", 32, 18},
    {AM_TYPE_Q4_1, "q4_1", 32, 20}, {AM_TYPE_Q5_0, "q5_0", 32, 22}, {AM_TYPE_Q5_1, "q5_1", 32, 24},
    {AM_TYPE_Q8_0, "q8_0", 32, 34},
};

static const type_info *find_type(int type) {
    for (size_t i = 0; i < AM_ARRAY_LEN(k_types); i++)
        if (k_types[i].type == type) return &k_types[i];
    return NULL;
}

const char *am_model_type_name(int type) {
    const type_info *ti = find_type(type);
    return ti ? ti->name : "unknown";
}

// ---------------------------------------------------------------- dequantization
// Each function converts n elements (a multiple of the block size for
// quantized types) of raw file bytes `src` into float32 `dst`.

static uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void dequant_f32(float *restrict dst, const uint8_t *restrict src, size_t n) { memcpy(dst, src, n * 4); }

static void dequant_f16(float *restrict dst, const uint8_t *restrict src, size_t n, const float *restrict lut) {
    for (size_t i = 0; i < n; i++) dst[i] = lut[load_u16(src + 2 * i)];
}

// q4_0: f16 d, 16 bytes; byte j holds element j (low nibble) and j+16 (high).
static void dequant_q4_0(float *restrict dst, const uint8_t *restrict src, size_t n, const float *restrict lut) {
    for (size_t b = 0; b < n / 32; b++, src += 18, dst += 32) {
        const float d = lut[load_u16(src)];
        const uint8_t *qs = src + 2;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)((qs[j] & 0x0f) - 8) * d;
            dst[j + 16] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

// q4_1: f16 d, f16 m, 16 bytes; x = q*d + m.
static void dequant_q4_1(float *restrict dst, const uint8_t *restrict src, size_t n, const float *restrict lut) {
    for (size_t b = 0; b < n / 32; b++, src += 20, dst += 32) {
        const float d = lut[load_u16(src)], m = lut[load_u16(src + 2)];
        const uint8_t *qs = src + 4;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)(qs[j] & 0x0f) * d + m;
            dst[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

// q5_0: f16 d, uint32 qh (5th bits), 16 bytes; x = (q - 16)*d.
static void dequant_q5_0(float *restrict dst, const uint8_t *restrict src, size_t n, const float *restrict lut) {
    for (size_t b = 0; b < n / 32; b++, src += 22, dst += 32) {
        const float d = lut[load_u16(src)];
        const uint32_t qh = load_u32(src + 2);
        const uint8_t *qs = src + 6;
        for (int j = 0; j < 16; j++) {
            const int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            dst[j] = (float)(lo - 16) * d;
            dst[j + 16] = (float)(hi - 16) * d;
        }
    }
}

// q5_1: f16 d, f16 m, uint32 qh, 16 bytes; x = q*d + m.
static void dequant_q5_1(float *restrict dst, const uint8_t *restrict src, size_t n, const float *restrict lut) {
    for (size_t b = 0; b < n / 32; b++, src += 24, dst += 32) {
        const float d = lut[load_u16(src)], m = lut[load_u16(src + 2)];
        const uint32_t qh = load_u32(src + 4);
        const uint8_t *qs = src + 8;
        for (int j = 0; j < 16; j++) {
            const int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            dst[j] = (float)lo * d + m;
            dst[j + 16] = (float)hi * d + m;
        }
    }
}

// q8_0: f16 d, 32 int8; x = q*d.
static void dequant_q8_0(float *restrict dst, const uint8_t *restrict src, size_t n, const float *restrict lut) {
    for (size_t b = 0; b < n / 32; b++, src += 34, dst += 32) {
        const float d = lut[load_u16(src)];
        const int8_t *qs = (const int8_t *)(src + 2);
        for (int j = 0; j < 32; j++) dst[j] = (float)qs[j] * d;
    }
}

static void dequantize(float *dst, const uint8_t *src, size_t n, int type, const float *lut) {
    switch (type) {
    case AM_TYPE_F32: dequant_f32(dst, src, n); break;
    case AM_TYPE_F16: dequant_f16(dst, src, n, lut); break;
    case AM_TYPE_Q4_0: dequant_q4_0(dst, src, n, lut); break;
    case AM_TYPE_Q4_1: dequant_q4_1(dst, src, n, lut); break;
    case AM_TYPE_Q5_0: dequant_q5_0(dst, src, n, lut); break;
    case AM_TYPE_Q5_1: dequant_q5_1(dst, src, n, lut); break;
    case AM_TYPE_Q8_0: dequant_q8_0(dst, src, n, lut); break;
    }
}

// ---------------------------------------------------------------- expected tensors
// The loader first lists every tensor the hparams imply (name, shape in ggml
// order with size-1 dims dropped, destination slot), then matches the file's
// tensors against that list.
typedef struct {
    char name[80];
    int n_dims;
    int64_t ne[3];
    const float **slot;
    // filled while parsing
    int found;
    int type;
    size_t offset;  // byte offset of the data in the file
    size_t n_elem;
    size_t arena_off; // float offset into the arena
} tensor_spec;

typedef struct {
    tensor_spec *v;
    int n, cap;
} spec_list;

static int spec_add(spec_list *l, const float **slot, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                    const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static int spec_add(spec_list *l, const float **slot, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
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
    s->slot = slot;
    return 0;
}

#define VEC(slot, n, ...) spec_add(&l, (slot), 1, (n), 1, 1, __VA_ARGS__)
#define MAT(slot, in, out, ...) spec_add(&l, (slot), 2, (in), (out), 1, __VA_ARGS__)

static int add_attn(spec_list *lp, am_attn_weights *a, const char *prefix, int i, const char *kind, int d) {
    spec_list l = *lp;
    int rc = 0;
    rc |= VEC(&a->ln_w, d, "%s.blocks.%d.%s_ln.weight", prefix, i, kind);
    rc |= VEC(&a->ln_b, d, "%s.blocks.%d.%s_ln.bias", prefix, i, kind);
    rc |= MAT(&a->q_w, d, d, "%s.blocks.%d.%s.query.weight", prefix, i, kind);
    rc |= VEC(&a->q_b, d, "%s.blocks.%d.%s.query.bias", prefix, i, kind);
    rc |= MAT(&a->k_w, d, d, "%s.blocks.%d.%s.key.weight", prefix, i, kind);
    rc |= MAT(&a->v_w, d, d, "%s.blocks.%d.%s.value.weight", prefix, i, kind);
    rc |= VEC(&a->v_b, d, "%s.blocks.%d.%s.value.bias", prefix, i, kind);
    rc |= MAT(&a->o_w, d, d, "%s.blocks.%d.%s.out.weight", prefix, i, kind);
    rc |= VEC(&a->o_b, d, "%s.blocks.%d.%s.out.bias", prefix, i, kind);
    *lp = l;
    return rc ? AM_ENOMEM : 0;
}

static int add_mlp(spec_list *lp, am_block *b, const char *prefix, int i, int d) {
    spec_list l = *lp;
    int rc = 0;
    rc |= VEC(&b->mlp_ln_w, d, "%s.blocks.%d.mlp_ln.weight", prefix, i);
    rc |= VEC(&b->mlp_ln_b, d, "%s.blocks.%d.mlp_ln.bias", prefix, i);
    rc |= MAT(&b->mlp0_w, d, 4 * d, "%s.blocks.%d.mlp.0.weight", prefix, i);
    rc |= VEC(&b->mlp0_b, 4 * d, "%s.blocks.%d.mlp.0.bias", prefix, i);
    rc |= MAT(&b->mlp2_w, 4 * d, d, "%s.blocks.%d.mlp.2.weight", prefix, i);
    rc |= VEC(&b->mlp2_b, d, "%s.blocks.%d.mlp.2.bias", prefix, i);
    *lp = l;
    return rc ? AM_ENOMEM : 0;
}

static int build_specs(am_model *m, spec_list *out) {
    const am_hparams *hp = &m->hp;
    const int da = hp->n_audio_state, dt = hp->n_text_state;
    spec_list l = {0};
    int rc = 0;
    rc |= spec_add(&l, &m->enc_conv1_w, 3, 3, hp->n_mels, da, "encoder.conv1.weight");
    rc |= VEC(&m->enc_conv1_b, da, "encoder.conv1.bias");
    rc |= spec_add(&l, &m->enc_conv2_w, 3, 3, da, da, "encoder.conv2.weight");
    rc |= VEC(&m->enc_conv2_b, da, "encoder.conv2.bias");
    rc |= MAT(&m->enc_pos, da, hp->n_audio_ctx, "encoder.positional_embedding");
    rc |= VEC(&m->enc_ln_w, da, "encoder.ln_post.weight");
    rc |= VEC(&m->enc_ln_b, da, "encoder.ln_post.bias");
    for (int i = 0; i < hp->n_audio_layer && !rc; i++) {
        rc |= add_attn(&l, &m->enc_blocks[i].attn, "encoder", i, "attn", da);
        rc |= add_mlp(&l, &m->enc_blocks[i], "encoder", i, da);
    }
    rc |= MAT(&m->dec_tok_emb, dt, hp->n_vocab, "decoder.token_embedding.weight");
    rc |= MAT(&m->dec_pos, dt, hp->n_text_ctx, "decoder.positional_embedding");
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
    for (int32_t i = 0; i < n; i++) {
        uint32_t l;
        if (rd_bytes(r, &l, 4, "vocabulary")) return AM_EFORMAT;
        if (l > AM_MAX_TOKEN_BYTES) return am_set_error(AM_EFORMAT, "vocabulary token %d has length %u", i, l);
        if (l > r->size - r->pos) return am_set_error(AM_EFORMAT, "model file truncated in vocabulary token %d", i);
        bytes[i] = r->base + r->pos;
        len[i] = l;
        r->pos += l;
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
        const type_info *ti = find_type(ttype);
        if (!ti) return am_set_error(AM_EFORMAT, "tensor at offset %zu has unknown type %d", r->pos - 12, ttype);
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
        if (ne[0] % ti->block)
            return am_set_error(AM_EFORMAT, "tensor '%s': row of %lld not a multiple of %s block size", name,
                                (long long)ne[0], ti->name);
        size_t n_bytes = n_elem / (size_t)ti->block * (size_t)ti->block_bytes;
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

// Dequantize every tensor into one 64-byte aligned float32 arena.
static int fill_arena(am_model *m, const reader *r, spec_list *specs) {
    size_t total = 0;
    for (int i = 0; i < specs->n; i++) {
        specs->v[i].arena_off = total;
        total += (specs->v[i].n_elem + 15) & ~(size_t)15;
    }
    size_t n_bytes;
    if (am_mul_size(total, sizeof(float), &n_bytes) || !(m->arena = am_alloc(n_bytes)))
        return am_set_error(AM_ENOMEM, "out of memory for %zu MB of weights", n_bytes >> 20);
    m->arena_floats = total;
    float *lut = malloc(65536 * sizeof *lut);
    if (!lut) return am_set_error(AM_ENOMEM, "out of memory");
    for (uint32_t h = 0; h < 65536; h++) lut[h] = am_fp16_to_fp32((uint16_t)h);
    int counts[16] = {0};
    for (int i = 0; i < specs->n; i++) {
        tensor_spec *s = &specs->v[i];
        float *dst = m->arena + s->arena_off;
        dequantize(dst, r->base + s->offset, s->n_elem, s->type, lut);
        *s->slot = dst;
        if (s->n_dims == 2 && s->type < 16) counts[s->type]++;
    }
    free(lut);
    int best = 0;
    for (int t = 0; t < 16; t++)
        if (counts[t] > counts[best]) best = t;
    m->weight_type = best;
    return 0;
}

static int parse(am_model *m, const uint8_t *data, size_t size) {
    reader r = {data, size, 0};
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
    m->map_size = (size_t)st.st_size;
    m->map = mmap(NULL, m->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        am_set_error(AM_EIO, "cannot map model file '%s': %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    set_name(m, path);
    if (parse(m, m->map, m->map_size)) goto fail;
    return m;
fail:
    if (fd >= 0) close(fd);
    am_model_free(m);
    return NULL;
}

am_model *am_model_load_buffer(const void *data, size_t size, const char *name) {
    am_model *m = NULL;
    if (!data || size < 4) {
        am_set_error(AM_EFORMAT, "model buffer is empty or too small (%zu bytes)", size);
        return NULL;
    }
    if (!(m = calloc(1, sizeof *m)) || !(m->map = malloc(size))) {
        am_set_error(AM_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(m->map, data, size);
    m->map_size = size;
    m->map_is_heap = 1;
    set_name(m, name ? name : "buffer");
    if (parse(m, m->map, m->map_size)) goto fail;
    return m;
fail:
    am_model_free(m);
    return NULL;
}

void am_model_free(am_model *m) {
    if (!m) return;
    if (m->map) {
        if (m->map_is_heap) free(m->map);
        else munmap(m->map, m->map_size);
    }
    am_free((void *)m->mel_filters);
    free((void *)m->vocab_bytes);
    free((void *)m->vocab_len);
    free(m->enc_blocks);
    free(m->dec_blocks);
    am_free(m->arena);
    free(m);
}

int am_model_is_multilingual(const am_model *m) { return m->hp.n_vocab >= 51865; }

size_t am_model_weight_bytes(const am_model *m) { return m->arena_floats * sizeof(float); }
