// am_encoder.c — batched Whisper encoder forward pass (openai-whisper AudioEncoder).
#include "am_encoder.h"

#include <stdlib.h>
#include <string.h>

#include "am_mel.h"
#include "am_nn.h"

struct am_encoder {
    const am_model *m;
    int max_batch;
    size_t scratch_bytes;
    float *cols;   // (3000, max(n_mels,d)*3)  im2col of one window
    float *conv;   // (3000, d)                conv1 output of one window
    float *h;      // (B*T, d)                 layer-norm output, then attention output
    float *q;      // (B*T, d)
    float *k;      // (B*T, d)
    float *v;      // (B*T, d)
    float *mlp;    // (B*T, 4d)
    float *scores; // (threads, T, T)  one attention matrix per thread
};

// ---------------------------------------------------------------- lifecycle
am_encoder_params am_encoder_default_params(void) {
    am_encoder_params p = {.max_batch = 8};
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
    const size_t F = AM_MEL_WINDOW_FRAMES;
    const size_t cin = (size_t)AM_MAX(m->hp.n_mels, m->hp.n_audio_state);
    e->m = m;
    e->max_batch = p->max_batch;
    const size_t n_threads = (size_t)am_nn_threads();
    size_t sizes[] = {F * cin * 3, F * d, B * T * d, B * T * d, B * T * d, B * T * d, B * T * 4 * d, n_threads * T * T};
    float **slots[] = {&e->cols, &e->conv, &e->h, &e->q, &e->k, &e->v, &e->mlp, &e->scores};
    for (size_t i = 0; i < AM_ARRAY_LEN(sizes); i++) {
        if (!(*slots[i] = am_alloc(sizes[i] * sizeof(float)))) goto oom;
        e->scratch_bytes += sizes[i] * sizeof(float);
    }
    return e;
oom:
    am_set_error(AM_ENOMEM, "out of memory creating encoder (batch %d)", p->max_batch);
    am_encoder_free(e);
    return NULL;
}

void am_encoder_free(am_encoder *e) {
    if (!e) return;
    float *bufs[] = {e->cols, e->conv, e->h, e->q, e->k, e->v, e->mlp, e->scores};
    for (size_t i = 0; i < AM_ARRAY_LEN(bufs); i++) am_free(bufs[i]);
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
    // conv1: k3 s1 p1, (n_mels -> d): conv (F, d) = cols (F, nm*3) @ W1 (d, nm*3)^T + b1
    im2col(e->cols, mel, F, nm, F, 1, 1);
    am_nn_linear(e->conv, e->cols, m->enc_conv1_w, m->enc_conv1_b, F, d, nm * 3);
    am_nn_gelu(e->conv, (size_t)F * d);
    // conv2: k3 s2 p1, (d -> d): x (T, d) = cols (T, d*3) @ W2 (d, d*3)^T + b2
    im2col(e->cols, e->conv, F, d, T, 2, 0);
    am_nn_linear(x, e->cols, m->enc_conv2_w, m->enc_conv2_b, T, d, d * 3);
    am_nn_gelu(x, (size_t)T * d);
    am_nn_add(x, m->enc_pos, (size_t)T * d);
}

// ---------------------------------------------------------------- blocks
// Self-attention for B windows: h (B*T, d) = MHA(q, k, v) per window and head,
// the (window, head) pairs spread over the threads.
static void attention_task(void *ctx, int p) {
    am_encoder *e = ctx;
    const int T = e->m->hp.n_audio_ctx, d = e->m->hp.n_audio_state, H = e->m->hp.n_audio_head, hd = d / H;
    const size_t off = (size_t)(p / H) * T * d + (size_t)(p % H) * hd;
    float *scores = e->scores + (size_t)am_nn_thread_index() * T * T; // (T, T)
    am_nn_attention(e->h + off, d, e->q + off, d, e->k + off, e->v + off, d, T, T, hd, -1, scores);
}

static void self_attention(am_encoder *e, int B) { am_nn_parallel(B * e->m->hp.n_audio_head, attention_task, e); }

// x (B*T, d) += attn(ln(x)); x += mlp(ln(x))
static void block_forward(am_encoder *e, const am_block *blk, float *x, int B) {
    const int T = e->m->hp.n_audio_ctx, d = e->m->hp.n_audio_state;
    const int M = B * T;
    const am_attn_weights *a = &blk->attn;
    am_nn_layernorm(e->h, x, a->ln_w, a->ln_b, M, d);
    am_nn_linear(e->q, e->h, a->q_w, a->q_b, M, d, d); // q (M,d) = h @ Wq^T + bq
    am_nn_linear(e->k, e->h, a->k_w, NULL, M, d, d);   // k (M,d) = h @ Wk^T
    am_nn_linear(e->v, e->h, a->v_w, a->v_b, M, d, d); // v (M,d) = h @ Wv^T + bv
    self_attention(e, B);                              // h (M,d) = softmax(q k^T / sqrt(hd)) v
    am_nn_linear_add(x, e->h, a->o_w, a->o_b, M, d, d); // x += h @ Wo^T + bo
    am_nn_layernorm(e->h, x, blk->mlp_ln_w, blk->mlp_ln_b, M, d);
    am_nn_linear(e->mlp, e->h, blk->mlp0_w, blk->mlp0_b, M, 4 * d, d); // (M,4d)
    am_nn_gelu(e->mlp, (size_t)M * 4 * d);
    am_nn_linear_add(x, e->mlp, blk->mlp2_w, blk->mlp2_b, M, d, 4 * d); // x += mlp @ W2^T + b2
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
