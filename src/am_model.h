// am_model.h — whisper.cpp ggml model file loader.
//
// am_model_load() memory-maps the file, validates every byte it will ever read
// (magic, hparams ranges, mel filterbank, vocabulary, each tensor's name, shape,
// type and size against the file length) and converts every tensor to an
// aligned float32 copy (f16 and quantized weights are dequantized exactly, as
// the reference does). The vocabulary bytes stay in the mapping.
//
// Ownership: the am_model owns the mapping and all tensors; free with
// am_model_free(). Thread-safety: an am_model is immutable after load; any
// number of threads may read it concurrently.
#ifndef AM_MODEL_H
#define AM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "am_common.h"

// ---------------------------------------------------------------- types
// ggml tensor element types (values as stored in the file).
enum {
    AM_TYPE_F32 = 0,
    AM_TYPE_F16 = 1,
    AM_TYPE_Q4_0 = 2,
    AM_TYPE_Q4_1 = 3,
    AM_TYPE_Q5_0 = 6,
    AM_TYPE_Q5_1 = 7,
    AM_TYPE_Q8_0 = 8,
};

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

// One pre-LN residual attention block. Weights are row-major [out][in]
// (PyTorch nn.Linear layout); every pointer is 64-byte aligned float32.
typedef struct {
    const float *ln_w, *ln_b;         // (d,)
    const float *q_w, *q_b;           // (d,d), (d,)
    const float *k_w;                 // (d,d)   (no key bias)
    const float *v_w, *v_b;           // (d,d), (d,)
    const float *o_w, *o_b;           // (d,d), (d,)
} am_attn_weights;

typedef struct {
    am_attn_weights attn;             // self-attention
    am_attn_weights cross;            // cross-attention (decoder only)
    const float *mlp_ln_w, *mlp_ln_b; // (d,)
    const float *mlp0_w, *mlp0_b;     // (4d,d), (4d,)
    const float *mlp2_w, *mlp2_b;     // (d,4d), (d,)
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
    const uint8_t *const *vocab_bytes; // [n_file_vocab] pointers into the mapping
    const uint32_t *vocab_len;         // [n_file_vocab]
    // encoder
    const float *enc_conv1_w, *enc_conv1_b; // (d, n_mels, 3), (d,)
    const float *enc_conv2_w, *enc_conv2_b; // (d, d, 3), (d,)
    const float *enc_pos;                   // (n_audio_ctx, d)
    am_block *enc_blocks;                   // [n_audio_layer]
    const float *enc_ln_w, *enc_ln_b;       // (d,)
    // decoder
    const float *dec_tok_emb;               // (n_vocab, d)  also the output projection
    const float *dec_pos;                   // (n_text_ctx, d)
    am_block *dec_blocks;                   // [n_text_layer]
    const float *dec_ln_w, *dec_ln_b;       // (d,)
    // storage (private to am_model.c)
    void *map;
    size_t map_size;
    int map_is_heap; // map came from malloc (am_model_load_buffer)
    float *arena;
    size_t arena_floats;
};

// ---------------------------------------------------------------- API
// Load and validate a model file. Returns NULL on error; am_last_error() says why.
am_model *am_model_load(const char *path);

// Load from a memory buffer (copied; used for tests and embedded use).
am_model *am_model_load_buffer(const void *data, size_t size, const char *name);

void am_model_free(am_model *m);

// True when the vocabulary is multilingual (n_vocab >= 51865).
int am_model_is_multilingual(const am_model *m);

// Bytes of float32 weights held by the model.
size_t am_model_weight_bytes(const am_model *m);

// Human-readable type name of an AM_TYPE_* value ("f16", "q5_1", ...).
const char *am_model_type_name(int type);

#endif // AM_MODEL_H
