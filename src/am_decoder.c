// am_decoder.c — batched multi-sequence Whisper decoder (openai-whisper TextDecoder).
#include "am_decoder.h"

#include <stdlib.h>
#include <string.h>

#include "am_nn.h"

struct am_xkv {
    int n_layer, n_audio_ctx, d;
    float *kv; // (n_layer, 2, n_audio_ctx, d): K then V of each layer
};

struct am_seq {
    int n_ctx, n_layer, d;
    int pos;
    const am_xkv *xkv;
    float *kv; // (n_layer, 2, n_ctx, d): self-attention K then V of each layer
};

struct am_decoder {
    const am_model *m;
    int max_rows;
    int score_cols; // max(n_text_ctx, n_audio_ctx)
    float *x, *h, *q, *k, *v; // (max_rows, d)
    float *mlp;               // (max_rows, 4d)
    float *scores;            // (threads, max_rows, score_cols) one attention matrix per thread
    int *row0;                // (max_rows + 1,) first row of each sequence in a pass
};

// ---------------------------------------------------------------- cross K/V
size_t am_xkv_bytes(const am_model *m) {
    return (size_t)m->hp.n_text_layer * 2 * m->hp.n_audio_ctx * m->hp.n_text_state * sizeof(float);
}

am_xkv *am_xkv_create(const am_model *m) {
    am_xkv *x = calloc(1, sizeof *x);
    if (!x || !(x->kv = am_alloc(am_xkv_bytes(m)))) {
        free(x);
        am_set_error(AM_ENOMEM, "out of memory for cross-attention K/V");
        return NULL;
    }
    x->n_layer = m->hp.n_text_layer;
    x->n_audio_ctx = m->hp.n_audio_ctx;
    x->d = m->hp.n_text_state;
    return x;
}

void am_xkv_free(am_xkv *x) {
    if (!x) return;
    am_free(x->kv);
    free(x);
}

static float *xkv_k(const am_xkv *x, int l) { return x->kv + (size_t)l * 2 * x->n_audio_ctx * x->d; }
static float *xkv_v(const am_xkv *x, int l) { return xkv_k(x, l) + (size_t)x->n_audio_ctx * x->d; }

int am_decoder_set_audio(am_decoder *dec, am_xkv *const *xkv, const float *enc, int n) {
    if (!dec || !xkv || !enc || n < 0) return am_set_error(AM_EINVAL, "invalid set_audio arguments");
    const am_model *m = dec->m;
    const int T = m->hp.n_audio_ctx, d = m->hp.n_text_state;
    for (int i = 0; i < n; i++) {
        const float *e = enc + (size_t)i * T * d; // (T, d)
        for (int l = 0; l < m->hp.n_text_layer; l++) {
            const am_attn_weights *c = &m->dec_blocks[l].cross;
            am_nn_linear(xkv_k(xkv[i], l), e, c->k_w, NULL, T, d, d);   // K (T,d) = enc @ Wk^T
            am_nn_linear(xkv_v(xkv[i], l), e, c->v_w, c->v_b, T, d, d); // V (T,d) = enc @ Wv^T + bv
        }
    }
    return 0;
}

// ---------------------------------------------------------------- sequences
am_seq *am_seq_create(const am_model *m, int n_ctx) {
    if (n_ctx == 0) n_ctx = m->hp.n_text_ctx;
    if (n_ctx < 1 || n_ctx > m->hp.n_text_ctx) {
        am_set_error(AM_EINVAL, "sequence context %d out of range 1..%d", n_ctx, m->hp.n_text_ctx);
        return NULL;
    }
    am_seq *s = calloc(1, sizeof *s);
    const size_t n_floats = (size_t)m->hp.n_text_layer * 2 * n_ctx * m->hp.n_text_state;
    if (!s || !(s->kv = am_alloc(n_floats * sizeof(float)))) {
        free(s);
        am_set_error(AM_ENOMEM, "out of memory for a decoder sequence");
        return NULL;
    }
    s->n_ctx = n_ctx;
    s->n_layer = m->hp.n_text_layer;
    s->d = m->hp.n_text_state;
    return s;
}

void am_seq_free(am_seq *s) {
    if (!s) return;
    am_free(s->kv);
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

size_t am_seq_bytes(const am_seq *s) { return (size_t)s->n_layer * 2 * s->n_ctx * s->d * sizeof(float); }

static float *seq_k(const am_seq *s, int l) { return s->kv + (size_t)l * 2 * s->n_ctx * s->d; }
static float *seq_v(const am_seq *s, int l) { return seq_k(s, l) + (size_t)s->n_ctx * s->d; }

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
    const size_t R = (size_t)p->max_rows, d = (size_t)m->hp.n_text_state;
    dec->m = m;
    dec->max_rows = p->max_rows;
    dec->score_cols = AM_MAX(m->hp.n_text_ctx, m->hp.n_audio_ctx);
    float **slots[] = {&dec->x, &dec->h, &dec->q, &dec->k, &dec->v, &dec->mlp, &dec->scores};
    const size_t n_threads = (size_t)am_nn_threads();
    const size_t sizes[] = {R * d, R * d, R * d, R * d, R * d, R * 4 * d, n_threads * R * (size_t)dec->score_cols};
    for (size_t i = 0; i < AM_ARRAY_LEN(slots); i++)
        if (!(*slots[i] = am_alloc(sizes[i] * sizeof(float)))) goto oom;
    if (!(dec->row0 = am_alloc((R + 1) * sizeof(int)))) goto oom;
    return dec;
oom:
    am_set_error(AM_ENOMEM, "out of memory creating decoder");
    am_decoder_free(dec);
    return NULL;
}

void am_decoder_free(am_decoder *dec) {
    if (!dec) return;
    float *bufs[] = {dec->x, dec->h, dec->q, dec->k, dec->v, dec->mlp, dec->scores};
    for (size_t i = 0; i < AM_ARRAY_LEN(bufs); i++) am_free(bufs[i]);
    am_free(dec->row0);
    free(dec);
}

double am_decoder_flops_per_token(const am_model *m, int pos) {
    const double d = m->hp.n_text_state, T = m->hp.n_audio_ctx;
    const double layer = 2 * d * d * 4 /* self qkvo */ + 2 * d * d * 2 /* cross q,o */ + 2 * d * 4 * d * 2 /* mlp */
                         + 2 * 2 * (pos + 1) * d /* self attention */ + 2 * 2 * T * d /* cross attention */;
    return layer * m->hp.n_text_layer + 2 * d * m->hp.n_vocab;
}

// ---------------------------------------------------------------- forward
// Attention of one (sequence, head) pair of a pass, run on the thread pool.
typedef struct {
    am_decoder *dec;
    am_seq *const *seqs;
    const int *n_tokens;
    int layer, cross;
} attn_ctx;

static void attention_task(void *ctx, int p) {
    const attn_ctx *a = ctx;
    am_decoder *dec = a->dec;
    const int d = dec->m->hp.n_text_state, H = dec->m->hp.n_text_head, hd = d / H, l = a->layer;
    const int i = p / H, h = p % H, nq = a->n_tokens[i];
    const am_seq *s = a->seqs[i];
    const size_t r0 = (size_t)dec->row0[i];
    float *scores = dec->scores + (size_t)am_nn_thread_index() * dec->max_rows * dec->score_cols;
    float *out = dec->h + r0 * d + h * hd;
    const float *q = dec->q + r0 * d + h * hd;
    if (a->cross) // (nq, hd) = attend(q, cross K/V (T, hd)), no mask
        am_nn_attention(out, d, q, d, xkv_k(s->xkv, l) + h * hd, xkv_v(s->xkv, l) + h * hd, d, nq,
                        dec->m->hp.n_audio_ctx, hd, -1, scores);
    else // (nq, hd) = attend(q, cache K/V [0, pos + nq)), causal
        am_nn_attention(out, d, q, d, seq_k(s, l) + h * hd, seq_v(s, l) + h * hd, d, nq, s->pos + nq, hd, s->pos,
                        scores);
}

// One pass over a group of sequences whose rows fit in max_rows.
// x rows are laid out sequence after sequence; seq i owns rows [r0_i, r0_i + n_i).
static void forward_group(am_decoder *dec, am_seq *const *seqs, const int32_t *const *tokens, const int *n_tokens,
                          int n, int logits_mode, float *logits) {
    const am_model *m = dec->m;
    const int d = m->hp.n_text_state, H = m->hp.n_text_head;
    int R = 0;
    // x (R, d) = token_embedding[t] + positional[pos]
    for (int i = 0; i < n; i++) {
        dec->row0[i] = R;
        for (int j = 0; j < n_tokens[i]; j++, R++) {
            const int p = seqs[i]->pos + j;
            const float *te = m->dec_tok_emb + (size_t)tokens[i][j] * d;
            const float *pe = m->dec_pos + (size_t)p * d;
            float *xr = dec->x + (size_t)R * d;
            for (int c = 0; c < d; c++) xr[c] = te[c] + pe[c];
        }
    }
    for (int l = 0; l < m->hp.n_text_layer; l++) {
        const am_block *blk = &m->dec_blocks[l];
        // -- self-attention (causal, KV cache)
        const am_attn_weights *a = &blk->attn;
        am_nn_layernorm(dec->h, dec->x, a->ln_w, a->ln_b, R, d);
        am_nn_linear(dec->q, dec->h, a->q_w, a->q_b, R, d, d); // q (R,d)
        am_nn_linear(dec->k, dec->h, a->k_w, NULL, R, d, d);   // k (R,d)
        am_nn_linear(dec->v, dec->h, a->v_w, a->v_b, R, d, d); // v (R,d)
        for (int i = 0; i < n; i++) { // append the new keys/values to each sequence's cache
            am_seq *s = seqs[i];
            const size_t rows = (size_t)n_tokens[i] * d;
            memcpy(seq_k(s, l) + (size_t)s->pos * d, dec->k + (size_t)dec->row0[i] * d, rows * sizeof(float));
            memcpy(seq_v(s, l) + (size_t)s->pos * d, dec->v + (size_t)dec->row0[i] * d, rows * sizeof(float));
        }
        attn_ctx self = {dec, seqs, n_tokens, l, 0};
        am_nn_parallel(n * H, attention_task, &self); // h rows = attend(q rows, cache K/V [0, pos_i + n_i))
        am_nn_linear_add(dec->x, dec->h, a->o_w, a->o_b, R, d, d); // x += h @ Wo^T + bo
        // -- cross-attention over the window's encoder output
        const am_attn_weights *c = &blk->cross;
        am_nn_layernorm(dec->h, dec->x, c->ln_w, c->ln_b, R, d);
        am_nn_linear(dec->q, dec->h, c->q_w, c->q_b, R, d, d); // q (R,d)
        attn_ctx cross = {dec, seqs, n_tokens, l, 1};
        am_nn_parallel(n * H, attention_task, &cross); // h rows = attend(q rows, cross K/V (T, hd))
        am_nn_linear_add(dec->x, dec->h, c->o_w, c->o_b, R, d, d); // x += h @ Wo^T + bo
        // -- MLP
        am_nn_layernorm(dec->h, dec->x, blk->mlp_ln_w, blk->mlp_ln_b, R, d);
        am_nn_linear(dec->mlp, dec->h, blk->mlp0_w, blk->mlp0_b, R, 4 * d, d); // (R,4d)
        am_nn_gelu(dec->mlp, (size_t)R * 4 * d);
        am_nn_linear_add(dec->x, dec->mlp, blk->mlp2_w, blk->mlp2_b, R, d, 4 * d);
    }
    for (int i = 0; i < n; i++) seqs[i]->pos += n_tokens[i];
    // logits = ln(x) @ token_embedding^T
    int L = R;
    if (logits_mode == AM_LOGITS_LAST) {
        L = 0;
        for (int i = 0, r0 = 0; i < n; r0 += n_tokens[i], i++, L++)
            memmove(dec->x + (size_t)L * d, dec->x + (size_t)(r0 + n_tokens[i] - 1) * d, (size_t)d * sizeof(float));
    }
    am_nn_layernorm(dec->h, dec->x, m->dec_ln_w, m->dec_ln_b, L, d);
    am_nn_linear(logits, dec->h, m->dec_tok_emb, NULL, L, m->hp.n_vocab, d); // (L, n_vocab)
}

static int validate(const am_decoder *dec, am_seq *const *seqs, const int32_t *const *tokens, const int *n_tokens,
                    int n) {
    const am_model *m = dec->m;
    for (int i = 0; i < n; i++) {
        const am_seq *s = seqs[i];
        if (!s || !tokens[i] || n_tokens[i] < 1) return am_set_error(AM_EINVAL, "sequence %d: no tokens", i);
        if (!s->xkv) return am_set_error(AM_EINVAL, "sequence %d has no cross K/V bound", i);
        if (s->n_layer != m->hp.n_text_layer || s->d != m->hp.n_text_state)
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

int am_decoder_step(am_decoder *dec, am_seq *const *seqs, const int32_t *const *tokens, const int *n_tokens, int n,
                    int logits_mode, float *logits) {
    if (!dec || (n > 0 && (!seqs || !tokens || !n_tokens || !logits)) || n < 0)
        return am_set_error(AM_EINVAL, "invalid decoder step arguments");
    int rc = validate(dec, seqs, tokens, n_tokens, n);
    if (rc) return rc;
    const size_t V = (size_t)dec->m->hp.n_vocab;
    // split into groups of sequences whose rows fit in the scratch
    for (int i0 = 0; i0 < n;) {
        int rows = 0, i1 = i0, out_rows = 0;
        while (i1 < n && rows + n_tokens[i1] <= dec->max_rows) rows += n_tokens[i1++];
        forward_group(dec, seqs + i0, tokens + i0, n_tokens + i0, i1 - i0, logits_mode, logits);
        out_rows = logits_mode == AM_LOGITS_ALL ? rows : i1 - i0;
        logits += (size_t)out_rows * V;
        i0 = i1;
    }
    return 0;
}
