// am_model.h — whisper.cpp ggml model file loader.
//
// am_model_load() memory-maps the file, validates every byte it will ever read
// (magic, hparams ranges, mel filterbank, vocabulary, each tensor's name, shape,
// type and size against the file length) and copies it once into its own
// aligned arena: weight matrices in the type the file stores (f32, f16, q8_0,
// q5_0, q5_1, q4_0, q4_1; kernels decode them on the fly, exactly as the
// reference dequantizes, see am_quant.h), vectors and positional embeddings
// as float32. The mapping is released after loading, so the model costs
// about its file size in memory.
//
// Ownership: the am_model owns all tensors and the vocabulary; free with
// am_model_free(). Thread-safety: an am_model is immutable after load; any
// number of threads may read it concurrently.
#ifndef AM_MODEL_H
#define AM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "am_common.h"
#include "am_quant.h"

// ---------------------------------------------------------------- types
typedef struct {
    int32_t n_vocab;       // total vocabulary incl. special tokens (51864 .en, 51865 multi, 51866 v3)
    int32_t n_audio_ctx;   // encoder positions (1500)
    int32_t n_audio_state; // encoder width d
    int32_t n_audio_head;  // encoder heads
    int32_t n_audio_layer; // encoder blocks
    int32_t n_text_ctx;    // decoder positions (448)
    int32_t n_text_state;  // decoder width
    int32_t n_text_head;   // decoder heads
    int32_t n_text_layer;  // decoder blocks
    int32_t n_mels;        // 80 or 128
    int32_t ftype;         // file type as stored (0 f32, 1 f16, 1000*v + q)
} am_hparams;

// One pre-LN residual attention block. Weight matrices stay in the file's type
// (am_wmat, PyTorch nn.Linear layout (out, in), 64-byte aligned); vectors are
// float32, 64-byte aligned. The query, key and value projections are one
// matrix, so that one product computes all three (for the decoder's
// cross-attention only rows [0, d) are used per token, rows [d, 3d) per window).
typedef struct {
    const float *ln_w, *ln_b; // (d,)
    am_wmat qkv;              // (3d, d): query rows [0,d), key [d,2d), value [2d,3d)
    const float *qkv_b;       // (3d,): query bias, zeros (the key has no bias), value bias
    am_wmat o;                // (d, d)
    const float *o_b;         // (d,)
} am_attn_weights;

typedef struct {
    am_attn_weights attn;             // self-attention
    am_attn_weights cross;            // cross-attention (decoder only)
    const float *mlp_ln_w, *mlp_ln_b; // (d,)
    am_wmat mlp0;                     // (4d, d)
    const float *mlp0_b;              // (4d,)
    am_wmat mlp2;                     // (d, 4d)
    const float *mlp2_b;              // (d,)
} am_block;

typedef struct am_model am_model;

struct am_model {
    am_hparams hp;
    char name[64];                 // file base name without extension ("ggml-base.en")
    int weight_type;               // dominant type of the linear weights in the file (AM_TYPE_*)
    // mel filterbank (n_mels, 201)
    const float *mel_filters;
    // vocabulary as stored in the file: n_file_vocab tokens (ids 0..n_file_vocab-1)
    int32_t n_file_vocab;
    const uint8_t *const *vocab_bytes; // [n_file_vocab] pointers into the model's copy of the bytes
    const uint32_t *vocab_len;         // [n_file_vocab]
    // encoder
    am_wmat enc_conv1;                      // (d, n_mels*3): conv1 weight (d, n_mels, 3) as a matrix
    const float *enc_conv1_b;               // (d,)
    am_wmat enc_conv2;                      // (d, d*3)
    const float *enc_conv2_b;               // (d,)
    const float *enc_pos;                   // (n_audio_ctx, d)
    am_block *enc_blocks;                   // [n_audio_layer]
    const float *enc_ln_w, *enc_ln_b;       // (d,)
    // decoder
    am_wmat dec_tok_emb;                    // (n_vocab, d)  also the output projection
    const float *dec_pos;                   // (n_text_ctx, d)
    am_block *dec_blocks;                   // [n_text_layer]
    const float *dec_ln_w, *dec_ln_b;       // (d,)
    // storage (private to am_model.c)
    uint8_t *arena;                         // every tensor, 64-byte aligned
    size_t arena_bytes;
    uint8_t *vocab_store;                   // the vocabulary bytes
};

// ---------------------------------------------------------------- API
// Load and validate a model file. Returns NULL on error; am_last_error() says why.
am_model *am_model_load(const char *path);

// Load from a memory buffer (copied; used for tests and embedded use).
am_model *am_model_load_buffer(const void *data, size_t size, const char *name);

void am_model_free(am_model *m);

// True when the vocabulary is multilingual (n_vocab >= 51865).
int am_model_is_multilingual(const am_model *m);

// Bytes of tensor data the model holds (its arena).
size_t am_model_weight_bytes(const am_model *m);

#endif // AM_MODEL_H
