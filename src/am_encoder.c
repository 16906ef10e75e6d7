// am_encoder.c — batched Whisper encoder forward pass (openai-whisper AudioEncoder).
#include "am_encoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "am_attn.h"
#include "am_gemm.h"
#include "am_mel.h"
#include "am_nn.h"

#define ATTN_ROWS 128 // query rows per attention task

struct am_encoder {
    const am_model *m;
    int max_batch;     // windows per pass
    size_t kv_stride;  // floats of one head's K (and of its V) in `kv`
    size_t scores_per_thread;
    size_t scratch_bytes;
    am_gemm_ws *ws;
    // Scratch, P = max_batch * T rows. Buffers whose contents are never live at
    // the same time share memory: `wide` holds the queries, keys and values
    // (P, 3d) until attention has read them, then the MLP's hidden layer
    // (P, 4d); in the conv stem, the im2col rows. `kv` holds conv1's output in the stem.
    float *h;      // (P, d)    layer-norm output, then attention output
    float *wide;   // (P, max(4d, 3 n_mels * 2))  qkv (P, 3d), MLP hidden (P, 4d), stem im2col
    float *kv;     // (max_batch, H, 2, kv_stride)  keys and values per head, am_attn layout; conv1 output (3000, d)
    float *scores; // (threads, scores_per_thread)  attention scratch per thread
};

// ---------------------------------------------------------------- lifecycle
am_encoder_params am_encoder_default_params(void) {
    am_encoder_params p = {.max_batch = 1};
    return p;
}

am_encoder *am_encoder_create(const am_model *m, const am_encoder_params *p) {
    am_encoder_params def = am_encoder_default_params();
    if (!p) p = &def;
    if (!m || p->max_batch < 1 || p->max_batch > 256) {
        am_set_error(AM_EINVAL, "invalid encoder parameters");
        return NULL;
    }
    am_encoder *e = calloc(1, sizeof *e);
    if (!e) goto oom;
    const size_t T = (size_t)m->hp.n_audio_ctx, d = (size_t)m->hp.n_audio_state, B = (size_t)p->max_batch;
    const size_t F = AM_MEL_WINDOW_FRAMES, nm = (size_t)m->hp.n_mels, H = (size_t)m->hp.n_audio_head;
    e->m = m;
    e->max_batch = p->max_batch;
    e->kv_stride = am_attn_kv_elems((int)T, (int)(d / H));
    e->scores_per_thread = am_attn_scratch_floats((int)T);
    const size_t threads = (size_t)am_nn_threads();
    // the stem's im2col (F, 3 nm) and (T, 3d) live in `wide`, conv1's output (F, d) in `kv`
    const size_t wide_cols = AM_MAX(4 * d, (F * 3 * nm + T - 1) / T);
    const size_t sizes[] = {B * T * d, B * T * wide_cols, AM_MAX(B * H * 2 * e->kv_stride, F * d),
                            threads * e->scores_per_thread};
    float **slots[] = {&e->h, &e->wide, &e->kv, &e->scores};
    for (size_t i = 0; i < AM_ARRAY_LEN(sizes); i++) {
        if (!(*slots[i] = am_alloc(sizes[i] * sizeof(float)))) goto oom;
        e->scratch_bytes += sizes[i] * sizeof(float);
    }
    const int max_k = (int)AM_MAX(4 * d, 3 * AM_MAX(d, nm));
    if (!(e->ws = am_gemm_ws_create(max_k, 4 * d * AM_MAX(d, nm)))) goto fail;
    e->scratch_bytes += am_gemm_ws_bytes(e->ws);
    return e;
oom:
    am_set_error(AM_ENOMEM, "out of memory creating encoder (batch %d)", p->max_batch);
fail:
    am_encoder_free(e);
    return NULL;
}

void am_encoder_free(am_encoder *e) {
    if (!e) return;
    float *bufs[] = {e->h, e->wide, e->kv, e->scores};
    for (size_t i = 0; i < AM_ARRAY_LEN(bufs); i++) am_free(bufs[i]);
    am_gemm_ws_free(e->ws);
    free(e);
}

size_t am_encoder_scratch_bytes(const am_encoder *e) { return e->scratch_bytes; }

double am_encoder_flops_per_window(const am_model *m) {
    const double T = m->hp.n_audio_ctx, d = m->hp.n_audio_state, F = AM_MEL_WINDOW_FRAMES;
    const double conv = 2 * F * d * m->hp.n_mels * 3 + 2 * T * d * d * 3;
    const double layer = 2 * T * d * d * 4 + 2 * T * d * 4 * d * 2 + 2 * 2 * T * T * d;
    return conv + layer * m->hp.n_audio_layer;
}

// ---------------------------------------------------------------- conv stem
// cols (n_out, c_in*3): cols[t][c*3+j] = x[t*stride + j - 1][c], zero outside.
// x is (n_in, c_in) time-major; for conv1 the mel is (c_in, n_in) channel-major.
static void im2col(float *restrict cols, const float *restrict x, int n_in, int c_in, int n_out, int stride,
                   int channel_major) {
    for (int t = 0; t < n_out; t++) {
        float *row = cols + (size_t)t * c_in * 3;
        for (int j = 0; j < 3; j++) {
            const int s = t * stride + j - 1;
            const int ok = s >= 0 && s < n_in;
            for (int c = 0; c < c_in; c++) {
                const float val = !ok ? 0.0f : channel_major ? x[(size_t)c * n_in + s] : x[(size_t)s * c_in + c];
                row[c * 3 + j] = val;
            }
        }
    }
}

// mel (n_mels, 3000) -> x (T, d) = gelu(conv2(gelu(conv1(mel)))) + positional
static void conv_stem(am_encoder *e, float *restrict x, const float *restrict mel) {
    const am_model *m = e->m;
    const int F = AM_MEL_WINDOW_FRAMES, T = m->hp.n_audio_ctx, d = m->hp.n_audio_state, nm = m->hp.n_mels;
    float *cols = e->wide, *conv = e->kv;
    // conv1: k3 s1 p1, (n_mels -> d): conv (F, d) = gelu(cols (F, nm*3) @ W1 (d, nm*3)^T + b1)
    im2col(cols, mel, F, nm, F, 1, 1);
    am_gemm(conv, cols, &m->enc_conv1, m->enc_conv1_b, F, AM_GEMM_GELU, e->ws);
    // conv2: k3 s2 p1, (d -> d): x (T, d) = gelu(cols (T, d*3) @ W2 (d, d*3)^T + b2)
    im2col(cols, conv, F, d, T, 2, 0);
    am_gemm(x, cols, &m->enc_conv2, m->enc_conv2_b, T, AM_GEMM_GELU, e->ws);
    am_nn_add(x, m->enc_pos, (size_t)T * d);
}

// ---------------------------------------------------------------- blocks
// Self-attention of B windows: h (B*T, d) = softmax(q k^T / sqrt(hd)) v per
// window and head. Keys and values are first stored per head in the attention
// layout (one task per (window, head)); then each task attends one block of
// query rows of one head, consecutive tasks sharing a head's K/V in cache.
typedef struct {
    am_encoder *e;
    int n_blocks; // query blocks per (window, head)
} attn_ctx;

static am_kv_head enc_head(const am_encoder *e, int wh) {
    const int hd = e->m->hp.n_audio_state / e->m->hp.n_audio_head;
    float *k = e->kv + (size_t)wh * 2 * e->kv_stride;
    am_kv_head h = {k, k + e->kv_stride, AM_TYPE_F32, hd};
    return h;
}

static void store_task(void *ctx, int wh) {
    const am_encoder *e = ctx;
    const int T = e->m->hp.n_audio_ctx, d = e->m->hp.n_audio_state, H = e->m->hp.n_audio_head, hd = d / H;
    const float *rows = e->wide + (size_t)(wh / H) * T * 3 * d + (size_t)(wh % H) * hd; // (T, 3d) of the window
    const am_kv_head h = enc_head(e, wh);
    am_attn_store(&h, 0, rows + d, rows + 2 * d, 3 * d, T);
}

static void attention_task(void *ctx, int i) {
    const attn_ctx *a = ctx;
    const am_encoder *e = a->e;
    const int T = e->m->hp.n_audio_ctx, d = e->m->hp.n_audio_state, H = e->m->hp.n_audio_head, hd = d / H;
    const int wh = i / a->n_blocks, r0 = (i % a->n_blocks) * ATTN_ROWS, nq = AM_MIN(ATTN_ROWS, T - r0);
    const size_t row = (size_t)(wh / H) * T + r0, col = (size_t)(wh % H) * hd;
    const am_kv_head h = enc_head(e, wh);
    float *scratch = e->scores + (size_t)am_nn_thread_index() * e->scores_per_thread;
    am_attn(e->h + row * d + col, d, e->wide + row * 3 * d + col, 3 * d, nq, &h, T, -1, 1.0f / sqrtf((float)hd),
            scratch);
}

static void self_attention(am_encoder *e, int B) {
    const int WH = B * e->m->hp.n_audio_head;
    am_nn_parallel(WH, store_task, e);
    attn_ctx a = {e, (e->m->hp.n_audio_ctx + ATTN_ROWS - 1) / ATTN_ROWS};
    am_nn_parallel(WH * a.n_blocks, attention_task, &a);
}

// x (B*T, d) += attn(ln(x)); x += mlp(ln(x))
static void block_forward(am_encoder *e, const am_block *blk, float *x, int B) {
    const int T = e->m->hp.n_audio_ctx, d = e->m->hp.n_audio_state;
    const int M = B * T;
    const am_attn_weights *a = &blk->attn;
    am_nn_layernorm(e->h, x, a->ln_w, a->ln_b, M, d);
    am_gemm(e->wide, e->h, &a->qkv, a->qkv_b, M, 0, e->ws); // qkv (M,3d) = h @ [Wq;Wk;Wv]^T + [bq;0;bv]
    self_attention(e, B);                                  // h (M,d) = softmax(q k^T / sqrt(hd)) v
    am_gemm(x, e->h, &a->o, a->o_b, M, AM_GEMM_ACC, e->ws); // x += h @ Wo^T + bo
    am_nn_layernorm(e->h, x, blk->mlp_ln_w, blk->mlp_ln_b, M, d);
    am_gemm(e->wide, e->h, &blk->mlp0, blk->mlp0_b, M, AM_GEMM_GELU, e->ws); // (M,4d) = gelu(h @ W0^T + b0)
    am_gemm(x, e->wide, &blk->mlp2, blk->mlp2_b, M, AM_GEMM_ACC, e->ws);    // x += mlp @ W2^T + b2
}

// ---------------------------------------------------------------- forward
static void forward(am_encoder *e, const float *mel, int B, float *out) {
    const am_model *m = e->m;
    const int T = m->hp.n_audio_ctx, d = m->hp.n_audio_state, nm = m->hp.n_mels;
    for (int b = 0; b < B; b++)
        conv_stem(e, out + (size_t)b * T * d, mel + (size_t)b * nm * AM_MEL_WINDOW_FRAMES);
    for (int l = 0; l < m->hp.n_audio_layer; l++) block_forward(e, &m->enc_blocks[l], out, B);
    am_nn_layernorm(out, out, m->enc_ln_w, m->enc_ln_b, B * T, d);
}

int am_encoder_run(am_encoder *e, const float *mel, int B, float *out) {
    if (!e || !mel || !out || B < 1) return am_set_error(AM_EINVAL, "invalid encoder arguments");
    const am_model *m = e->m;
    const size_t mel_stride = (size_t)m->hp.n_mels * AM_MEL_WINDOW_FRAMES;
    const size_t out_stride = (size_t)m->hp.n_audio_ctx * m->hp.n_audio_state;
    for (int b0 = 0; b0 < B; b0 += e->max_batch) {
        const int nb = AM_MIN(e->max_batch, B - b0);
        forward(e, mel + b0 * mel_stride, nb, out + b0 * out_stride);
    }
    return 0;
}
