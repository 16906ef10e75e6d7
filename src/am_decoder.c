// am_decoder.c — batched multi-sequence Whisper decoder (openai-whisper TextDecoder).
#include "am_decoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "am_attn.h"
#include "am_gemm.h"
#include "am_nn.h"

// Keys and values of n_layer layers x n_head heads, each head in the
// attention layout (am_attn.h): layer l, head h at (l * n_head + h) * 2 * head_elems.
typedef struct {
    int n_layer, n_head, hd, type;
    size_t head_elems; // elements of one head's K (and of its V)
    void *mem;
} kv_store;

struct am_xkv {
    kv_store kv; // cross K/V of one window (n_audio_ctx positions)
};

struct am_seq {
    int n_ctx, pos;
    const am_xkv *xkv;
    kv_store kv; // self-attention cache (n_ctx positions)
};

struct am_decoder {
    const am_model *m;
    int max_rows;
    am_gemm_ws *ws;
    float *x, *h, *q;    // (max_rows, d)
    float *qkv;          // (max_rows, 3d)
    float *mlp;          // (max_rows, 4d)
    float *xkv_rows;     // (n_audio_ctx, 2d)  a window's cross K and V before they are stored per head
    float *scores;       // (threads, scores_per_thread)  attention scratch per thread
    size_t scores_per_thread;
    int *row0;           // (max_rows + 1,) first row of each sequence in a pass
    int *xg;             // (max_rows + 1,) first sequence of each cross-attention group in a pass
};

// ---------------------------------------------------------------- K/V storage
static size_t elem_size(int type) { return type == AM_TYPE_F16 ? 2 : 4; }

static int kv_type_ok(int type) { return type == AM_TYPE_F32 || type == AM_TYPE_F16; }

static size_t kv_store_bytes(const am_model *m, int n_pos, int type) {
    const int H = m->hp.n_text_head, hd = m->hp.n_text_state / H;
    return (size_t)m->hp.n_text_layer * H * 2 * am_attn_kv_elems(n_pos, hd) * elem_size(type);
}

static int kv_store_init(kv_store *s, const am_model *m, int n_pos, int type) {
    s->n_layer = m->hp.n_text_layer;
    s->n_head = m->hp.n_text_head;
    s->hd = m->hp.n_text_state / s->n_head;
    s->type = type;
    s->head_elems = am_attn_kv_elems(n_pos, s->hd);
    s->mem = am_alloc(kv_store_bytes(m, n_pos, type));
    return s->mem ? 0 : AM_ENOMEM;
}

static am_kv_head kv_head(const kv_store *s, int layer, int head) {
    const size_t es = elem_size(s->type);
    uint8_t *k = (uint8_t *)s->mem + (size_t)(layer * s->n_head + head) * 2 * s->head_elems * es;
    am_kv_head h = {k, k + s->head_elems * es, s->type, s->hd};
    return h;
}

// ---------------------------------------------------------------- cross K/V
size_t am_xkv_bytes(const am_model *m, int kv_type) { return kv_store_bytes(m, m->hp.n_audio_ctx, kv_type); }

am_xkv *am_xkv_create(const am_model *m, int kv_type) {
    if (!kv_type_ok(kv_type)) {
        am_set_error(AM_EINVAL, "K/V type %s not supported (f32 or f16)", am_type_name(kv_type));
        return NULL;
    }
    am_xkv *x = calloc(1, sizeof *x);
    if (!x || kv_store_init(&x->kv, m, m->hp.n_audio_ctx, kv_type)) {
        free(x);
        am_set_error(AM_ENOMEM, "out of memory for cross-attention K/V");
        return NULL;
    }
    return x;
}

void am_xkv_free(am_xkv *x) {
    if (!x) return;
    am_free(x->kv.mem);
    free(x);
}

typedef struct {
    const am_decoder *dec;
    am_xkv *xkv;
    int layer;
} xkv_store_ctx;

static void xkv_store_task(void *ctx, int h) {
    const xkv_store_ctx *c = ctx;
    const int d = c->dec->m->hp.n_text_state, hd = c->xkv->kv.hd;
    const am_kv_head head = kv_head(&c->xkv->kv, c->layer, h);
    am_attn_store(&head, 0, c->dec->xkv_rows + h * hd, c->dec->xkv_rows + d + h * hd, 2 * d, c->dec->m->hp.n_audio_ctx);
}

int am_decoder_set_audio(am_decoder *dec, am_xkv *const *xkv, const float *enc, int n) {
    if (!dec || !xkv || !enc || n < 0) return am_set_error(AM_EINVAL, "invalid set_audio arguments");
    const am_model *m = dec->m;
    const int T = m->hp.n_audio_ctx, d = m->hp.n_text_state;
    for (int i = 0; i < n; i++) {
        const float *e = enc + (size_t)i * T * d; // (T, d)
        for (int l = 0; l < m->hp.n_text_layer; l++) {
            const am_attn_weights *c = &m->dec_blocks[l].cross;
            const am_wmat kv_w = am_wmat_rows(&c->qkv, d, 2 * d); // [Wk; Wv] (2d, d)
            // rows (T, 2d) = enc @ [Wk; Wv]^T + [0; bv]
            am_gemm(dec->xkv_rows, e, &kv_w, c->qkv_b + d, T, 0, dec->ws);
            xkv_store_ctx sc = {dec, xkv[i], l};
            am_nn_parallel(xkv[i]->kv.n_head, xkv_store_task, &sc);
        }
    }
    return 0;
}

// ---------------------------------------------------------------- sequences
size_t am_seq_bytes_for(const am_model *m, int n_ctx, int kv_type) {
    return kv_store_bytes(m, n_ctx ? n_ctx : m->hp.n_text_ctx, kv_type);
}

am_seq *am_seq_create(const am_model *m, int n_ctx, int kv_type) {
    if (n_ctx == 0) n_ctx = m->hp.n_text_ctx;
    if (n_ctx < 1 || n_ctx > m->hp.n_text_ctx) {
        am_set_error(AM_EINVAL, "sequence context %d out of range 1..%d", n_ctx, m->hp.n_text_ctx);
        return NULL;
    }
    if (!kv_type_ok(kv_type)) {
        am_set_error(AM_EINVAL, "K/V type %s not supported (f32 or f16)", am_type_name(kv_type));
        return NULL;
    }
    am_seq *s = calloc(1, sizeof *s);
    if (!s || kv_store_init(&s->kv, m, n_ctx, kv_type)) {
        free(s);
        am_set_error(AM_ENOMEM, "out of memory for a decoder sequence");
        return NULL;
    }
    s->n_ctx = n_ctx;
    return s;
}

void am_seq_free(am_seq *s) {
    if (!s) return;
    am_free(s->kv.mem);
    free(s);
}

void am_seq_reset(am_seq *s, const am_xkv *xkv) {
    s->xkv = xkv;
    s->pos = 0;
}

int am_seq_pos(const am_seq *s) { return s->pos; }

int am_seq_truncate(am_seq *s, int pos) {
    if (pos < 0 || pos > s->pos) return am_set_error(AM_ERANGE, "truncate to %d outside 0..%d", pos, s->pos);
    s->pos = pos;
    return 0;
}

int am_seq_copy(am_seq *dst, const am_seq *src, int from) {
    if (!dst || !src || dst == src || from < 0) return am_set_error(AM_EINVAL, "invalid sequence copy arguments");
    const kv_store *a = &dst->kv, *b = &src->kv;
    if (a->n_layer != b->n_layer || a->n_head != b->n_head || a->hd != b->hd || a->type != b->type)
        return am_set_error(AM_EINVAL, "sequence copy between different models or K/V types");
    if (src->pos > dst->n_ctx) return am_set_error(AM_ERANGE, "sequence copy of %d positions into %d", src->pos, dst->n_ctx);
    if (from > src->pos) from = src->pos;
    const size_t es = elem_size(b->type), hd = (size_t)b->hd;
    const size_t t0 = (size_t)from / AM_ATTN_TILE, t1 = ((size_t)src->pos + AM_ATTN_TILE - 1) / AM_ATTN_TILE;
    for (int l = 0; l < b->n_layer; l++)
        for (int h = 0; h < b->n_head; h++) {
            const am_kv_head d = kv_head(a, l, h), s = kv_head(b, l, h);
            // keys: the tiles that hold positions [from, pos) (lanes before `from` are the same tokens)
            memcpy((uint8_t *)d.k + t0 * hd * AM_ATTN_TILE * es, (const uint8_t *)s.k + t0 * hd * AM_ATTN_TILE * es,
                   (t1 - t0) * hd * AM_ATTN_TILE * es);
            // values: rows [from, pos)
            memcpy((uint8_t *)d.v + (size_t)from * hd * es, (const uint8_t *)s.v + (size_t)from * hd * es,
                   (size_t)(src->pos - from) * hd * es);
        }
    dst->xkv = src->xkv;
    dst->pos = src->pos;
    return 0;
}

size_t am_seq_bytes(const am_seq *s) {
    return (size_t)s->kv.n_layer * s->kv.n_head * 2 * s->kv.head_elems * elem_size(s->kv.type);
}

// ---------------------------------------------------------------- lifecycle
am_decoder_params am_decoder_default_params(void) {
    am_decoder_params p = {.max_rows = 512};
    return p;
}

am_decoder *am_decoder_create(const am_model *m, const am_decoder_params *p) {
    am_decoder_params def = am_decoder_default_params();
    if (!p) p = &def;
    if (!m || p->max_rows < 1 || p->max_rows > 65536) {
        am_set_error(AM_EINVAL, "invalid decoder parameters");
        return NULL;
    }
    am_decoder *dec = calloc(1, sizeof *dec);
    if (!dec) goto oom;
    const size_t R = (size_t)p->max_rows, d = (size_t)m->hp.n_text_state, T = (size_t)m->hp.n_audio_ctx;
    dec->m = m;
    dec->max_rows = p->max_rows;
    dec->scores_per_thread = am_attn_scratch_floats(AM_MAX(m->hp.n_text_ctx, m->hp.n_audio_ctx));
    const size_t threads = (size_t)am_nn_threads();
    float **slots[] = {&dec->x, &dec->h, &dec->q, &dec->qkv, &dec->mlp, &dec->xkv_rows, &dec->scores};
    const size_t sizes[] = {R * d, R * d, R * d, R * 3 * d, R * 4 * d, T * 2 * d, threads * dec->scores_per_thread};
    for (size_t i = 0; i < AM_ARRAY_LEN(slots); i++)
        if (!(*slots[i] = am_alloc(sizes[i] * sizeof(float)))) goto oom;
    if (!(dec->row0 = am_alloc((R + 1) * sizeof(int))) || !(dec->xg = am_alloc((R + 1) * sizeof(int)))) goto oom;
    if (!(dec->ws = am_gemm_ws_create((int)(4 * d), 4 * d * d))) goto fail;
    return dec;
oom:
    am_set_error(AM_ENOMEM, "out of memory creating decoder");
fail:
    am_decoder_free(dec);
    return NULL;
}

void am_decoder_free(am_decoder *dec) {
    if (!dec) return;
    float *bufs[] = {dec->x, dec->h, dec->q, dec->qkv, dec->mlp, dec->xkv_rows, dec->scores};
    for (size_t i = 0; i < AM_ARRAY_LEN(bufs); i++) am_free(bufs[i]);
    am_free(dec->row0);
    am_free(dec->xg);
    am_gemm_ws_free(dec->ws);
    free(dec);
}

double am_decoder_flops_per_token(const am_model *m, int pos) {
    const double d = m->hp.n_text_state, T = m->hp.n_audio_ctx;
    const double layer = 2 * d * d * 4 /* self qkvo */ + 2 * d * d * 2 /* cross q,o */ + 2 * d * 4 * d * 2 /* mlp */
                         + 2 * 2 * (pos + 1) * d /* self attention */ + 2 * 2 * T * d /* cross attention */;
    return layer * m->hp.n_text_layer + 2 * d * m->hp.n_vocab;
}

size_t am_decoder_weight_bytes(const am_model *m) {
    const int d = m->hp.n_text_state;
    size_t n = (size_t)m->dec_tok_emb.rows * m->dec_tok_emb.row_bytes; // the output projection
    for (int l = 0; l < m->hp.n_text_layer; l++) {
        const am_block *b = &m->dec_blocks[l];
        const am_wmat *w[] = {&b->attn.qkv, &b->attn.o, &b->cross.o, &b->mlp0, &b->mlp2};
        for (size_t i = 0; i < AM_ARRAY_LEN(w); i++) n += (size_t)w[i]->rows * w[i]->row_bytes;
        n += (size_t)d * b->cross.qkv.row_bytes; // the cross-attention query rows
    }
    return n;
}

// ---------------------------------------------------------------- forward
// Self-attention of one (sequence, head) pair of a pass, run on the thread pool.
typedef struct {
    am_decoder *dec;
    am_seq *const *seqs;
    const int *n_tokens;
    const am_xattn_capture *const *capture; // per sequence or NULL
    int layer;
} attn_ctx;

// Keep the raw cross-attention scores of (layer, head) when sequence i asked for them.
static void capture_scores(const attn_ctx *a, int i, int h, const am_kv_head *xh, const float *q, float scale,
                           float *scratch) {
    const am_xattn_capture *c = a->capture ? a->capture[i] : NULL;
    if (!c) return;
    const int d = a->dec->m->hp.n_text_state, T = a->dec->m->hp.n_audio_ctx, nq = a->n_tokens[i];
    for (int k = 0; k < c->n_heads; k++)
        if (c->heads[2 * k] == a->layer && c->heads[2 * k + 1] == h)
            am_attn_scores(c->qk + (size_t)k * nq * T, T, q, d, nq, xh, T, scale, scratch); // (nq, T)
}

static void attention_task(void *ctx, int p) {
    const attn_ctx *a = ctx;
    am_decoder *dec = a->dec;
    const int d = dec->m->hp.n_text_state, H = dec->m->hp.n_text_head, hd = d / H, l = a->layer;
    const int i = p / H, h = p % H, nq = a->n_tokens[i];
    am_seq *s = a->seqs[i];
    const size_t r0 = (size_t)dec->row0[i];
    float *scratch = dec->scores + (size_t)am_nn_thread_index() * dec->scores_per_thread;
    float *out = dec->h + r0 * d + h * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    // append the new keys/values to the cache, then (nq, hd) = attend(q, cache [0, pos + nq)), causal
    const float *rows = dec->qkv + r0 * 3 * d + h * hd;
    const am_kv_head sh = kv_head(&s->kv, l, h);
    am_attn_store(&sh, s->pos, rows + d, rows + 2 * d, 3 * d, nq);
    am_attn(out, d, rows, 3 * d, nq, &sh, s->pos + nq, s->pos, scale, scratch);
}

// Cross-attention of one (group, head) pair: a group is a run of consecutive
// sequences bound to the same window's cross K/V (the beams or candidates of
// one window), whose rows are contiguous: their queries are scored together,
// so the window's keys and values stream once for all of them.
static void cross_task(void *ctx, int p) {
    const attn_ctx *a = ctx;
    am_decoder *dec = a->dec;
    const int d = dec->m->hp.n_text_state, H = dec->m->hp.n_text_head, hd = d / H;
    const int g = p / H, h = p % H, i0 = dec->xg[g], i1 = dec->xg[g + 1];
    const size_t r0 = (size_t)dec->row0[i0];
    const int nq = dec->row0[i1] - dec->row0[i0];
    float *scratch = dec->scores + (size_t)am_nn_thread_index() * dec->scores_per_thread;
    const float scale = 1.0f / sqrtf((float)hd);
    const am_kv_head xh = kv_head(&a->seqs[i0]->xkv->kv, a->layer, h);
    const float *q = dec->q + r0 * d + h * hd;
    if (i1 == i0 + 1) capture_scores(a, i0, h, &xh, q, scale, scratch);
    am_attn(dec->h + r0 * d + h * hd, d, q, d, nq, &xh, dec->m->hp.n_audio_ctx, -1, scale, scratch); // (nq, hd)
}

// One pass over a group of sequences whose rows fit in max_rows.
// x rows are laid out sequence after sequence; seq i owns rows [r0_i, r0_i + n_i).
// Logits rows kept for sequence i: every new token's, or the last one's.
static int kept_rows(int all_mode, const int *all_logits, int i, int n_tokens) {
    return all_mode == AM_LOGITS_ALL || (all_logits && all_logits[i]) ? n_tokens : 1;
}

static void forward_group(am_decoder *dec, am_seq *const *seqs, const int32_t *const *tokens, const int *n_tokens,
                          int n, int all_mode, const int *all_logits, const am_xattn_capture *const *capture,
                          float *logits) {
    const am_model *m = dec->m;
    const int d = m->hp.n_text_state, H = m->hp.n_text_head;
    int R = 0;
    // x (R, d) = token_embedding[t] + positional[pos]
    for (int i = 0; i < n; i++) {
        dec->row0[i] = R;
        for (int j = 0; j < n_tokens[i]; j++, R++) {
            float *xr = dec->x + (size_t)R * d;
            am_wmat_dequant(xr, &m->dec_tok_emb, tokens[i][j], 1);
            am_nn_add(xr, m->dec_pos + (size_t)(seqs[i]->pos + j) * d, (size_t)d);
        }
    }
    dec->row0[n] = R;
    // cross-attention groups: consecutive sequences on the same cross K/V (a
    // sequence whose scores are captured stays alone)
    int n_xg = 0;
    for (int i = 0; i < n; i++) {
        const int cap = capture && capture[i];
        if (i == 0 || cap || seqs[i]->xkv != seqs[i - 1]->xkv || (capture && capture[i - 1])) dec->xg[n_xg++] = i;
    }
    dec->xg[n_xg] = n;
    for (int l = 0; l < m->hp.n_text_layer; l++) {
        const am_block *blk = &m->dec_blocks[l];
        // -- self-attention (causal, KV cache)
        const am_attn_weights *a = &blk->attn;
        am_nn_layernorm(dec->h, dec->x, a->ln_w, a->ln_b, R, d);
        am_gemm(dec->qkv, dec->h, &a->qkv, a->qkv_b, R, AM_GEMM_ROWWISE, dec->ws); // qkv (R,3d)
        attn_ctx self = {dec, seqs, n_tokens, NULL, l};
        am_nn_parallel(n * H, attention_task, &self); // h rows = attend(q rows, cache K/V [0, pos_i + n_i))
        am_gemm(dec->x, dec->h, &a->o, a->o_b, R, AM_GEMM_ACC | AM_GEMM_ROWWISE, dec->ws); // x += h @ Wo^T + bo
        // -- cross-attention over the window's encoder output
        const am_attn_weights *c = &blk->cross;
        const am_wmat cq = am_wmat_rows(&c->qkv, 0, d);
        am_nn_layernorm(dec->h, dec->x, c->ln_w, c->ln_b, R, d);
        am_gemm(dec->q, dec->h, &cq, c->qkv_b, R, AM_GEMM_ROWWISE, dec->ws); // q (R,d)
        attn_ctx cross = {dec, seqs, n_tokens, capture, l};
        am_nn_parallel(n_xg * H, cross_task, &cross); // h rows = attend(q rows, cross K/V (T, hd))
        am_gemm(dec->x, dec->h, &c->o, c->o_b, R, AM_GEMM_ACC | AM_GEMM_ROWWISE, dec->ws); // x += h @ Wo^T + bo
        // -- MLP
        am_nn_layernorm(dec->h, dec->x, blk->mlp_ln_w, blk->mlp_ln_b, R, d);
        am_gemm(dec->mlp, dec->h, &blk->mlp0, blk->mlp0_b, R, AM_GEMM_GELU | AM_GEMM_ROWWISE, dec->ws); // (R,4d)
        am_gemm(dec->x, dec->mlp, &blk->mlp2, blk->mlp2_b, R, AM_GEMM_ACC | AM_GEMM_ROWWISE, dec->ws);
    }
    for (int i = 0; i < n; i++) seqs[i]->pos += n_tokens[i];
    // logits = ln(x) @ token_embedding^T
    // keep every row of the sequences that want them, the last of the others
    int L = 0;
    for (int i = 0, r0 = 0; i < n; r0 += n_tokens[i], i++) {
        const int keep = kept_rows(all_mode, all_logits, i, n_tokens[i]);
        for (int j = n_tokens[i] - keep; j < n_tokens[i]; j++, L++)
            if (L != r0 + j) memmove(dec->x + (size_t)L * d, dec->x + (size_t)(r0 + j) * d, (size_t)d * sizeof(float));
    }
    am_nn_layernorm(dec->h, dec->x, m->dec_ln_w, m->dec_ln_b, L, d);
    am_gemm(logits, dec->h, &m->dec_tok_emb, NULL, L, AM_GEMM_ROWWISE, dec->ws); // (L, n_vocab)
}

static int validate(const am_decoder *dec, am_seq *const *seqs, const int32_t *const *tokens, const int *n_tokens,
                    int n) {
    const am_model *m = dec->m;
    for (int i = 0; i < n; i++) {
        const am_seq *s = seqs[i];
        if (!s || !tokens[i] || n_tokens[i] < 1) return am_set_error(AM_EINVAL, "sequence %d: no tokens", i);
        if (!s->xkv) return am_set_error(AM_EINVAL, "sequence %d has no cross K/V bound", i);
        if (s->kv.n_layer != m->hp.n_text_layer || s->kv.n_head != m->hp.n_text_head ||
            s->kv.hd * s->kv.n_head != m->hp.n_text_state || s->xkv->kv.n_layer != m->hp.n_text_layer ||
            s->xkv->kv.hd != s->kv.hd)
            return am_set_error(AM_EINVAL, "sequence %d belongs to another model", i);
        if (n_tokens[i] > dec->max_rows)
            return am_set_error(AM_ERANGE, "sequence %d feeds %d tokens, more than max_rows %d", i, n_tokens[i],
                                dec->max_rows);
        if (s->pos + n_tokens[i] > s->n_ctx)
            return am_set_error(AM_ERANGE, "sequence %d would exceed its context (%d + %d > %d)", i, s->pos,
                                n_tokens[i], s->n_ctx);
        for (int j = 0; j < n_tokens[i]; j++)
            if (tokens[i][j] < 0 || tokens[i][j] >= m->hp.n_vocab)
                return am_set_error(AM_ERANGE, "sequence %d: token id %d out of range", i, tokens[i][j]);
        for (int k = 0; k < i; k++)
            if (seqs[k] == s) return am_set_error(AM_EINVAL, "sequence %d appears twice in one step", i);
    }
    return 0;
}

// A step whose logits rows are all_mode for every sequence (AM_LOGITS_ALL) or
// as opts says per sequence.
static int step(am_decoder *dec, am_seq *const *seqs, const int32_t *const *tokens, const int *n_tokens, int n,
                int all_mode, const am_step_options *opts, float *logits) {
    if (!dec || (n > 0 && (!seqs || !tokens || !n_tokens || !logits)) || n < 0)
        return am_set_error(AM_EINVAL, "invalid decoder step arguments");
    int rc = validate(dec, seqs, tokens, n_tokens, n);
    if (rc) return rc;
    const int *all = opts ? opts->all_logits : NULL;
    const am_xattn_capture *const *cap = opts ? opts->capture : NULL;
    const int H = dec->m->hp.n_text_head, Ld = dec->m->hp.n_text_layer;
    for (int i = 0; cap && i < n; i++)
        for (int k = 0; cap[i] && k < cap[i]->n_heads; k++)
            if (cap[i]->heads[2 * k] < 0 || cap[i]->heads[2 * k] >= Ld || cap[i]->heads[2 * k + 1] < 0 ||
                cap[i]->heads[2 * k + 1] >= H || !cap[i]->qk)
                return am_set_error(AM_EINVAL, "sequence %d: cross-attention head (%d, %d) outside %d x %d", i,
                                    cap[i]->heads[2 * k], cap[i]->heads[2 * k + 1], Ld, H);
    const size_t V = (size_t)dec->m->hp.n_vocab;
    // split into groups of sequences whose rows fit in the scratch
    for (int i0 = 0; i0 < n;) {
        int rows = 0, i1 = i0, out_rows = 0;
        while (i1 < n && rows + n_tokens[i1] <= dec->max_rows) rows += n_tokens[i1++];
        forward_group(dec, seqs + i0, tokens + i0, n_tokens + i0, i1 - i0, all_mode, all ? all + i0 : NULL,
                      cap ? cap + i0 : NULL, logits);
        for (int i = i0; i < i1; i++) out_rows += kept_rows(all_mode, all, i, n_tokens[i]);
        logits += (size_t)out_rows * V;
        i0 = i1;
    }
    return 0;
}

int am_decoder_step_opts(am_decoder *dec, am_seq *const *seqs, const int32_t *const *tokens, const int *n_tokens,
                         int n, const am_step_options *opts, float *logits) {
    return step(dec, seqs, tokens, n_tokens, n, AM_LOGITS_LAST, opts, logits);
}

int am_decoder_step(am_decoder *dec, am_seq *const *seqs, const int32_t *const *tokens, const int *n_tokens, int n,
                    int logits_mode, float *logits) {
    return step(dec, seqs, tokens, n_tokens, n, logits_mode, NULL, logits);
}
