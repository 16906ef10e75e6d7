// fuzz_model.c — libFuzzer target: the whisper.cpp ggml model loader
// (am_model_load_buffer, src/am_model.h), then what the server does next with
// a model that loads: build the tokenizer from its vocabulary (main.c) and
// use it once.
//
// The loader parses an exact-size heap copy of the input, so ASan sees any
// read past the end. Invariants beyond the sanitizers: a failure is a NULL
// with AM_EFORMAT (or AM_ENOMEM) and a message; a model that loads has hparams
// in the documented ranges, every weight pointer set, and a vocabulary of
// n_file_vocab tokens whose bytes can be read; a tokenizer built from it
// encodes and decodes without error, or fails to build cleanly.
//
// Corpus: fuzz/corpus/model — a minimal valid model (width 1, one layer each,
// zero weights; fuzz/make-seeds.sh writes it) and cuts of the tiny.en fixture;
// dictionary: fuzz/model.dict (tensor names, magic).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "am_model.h"
#include "am_tokenizer.h"
#include "fuzz_common.h"

// ---------------------------------------------------------------- checks
static void check_attn(const am_attn_weights *a) {
    FZ_ASSERT(a->ln_w && a->ln_b && a->qkv.data && a->qkv_b && a->o.data && a->o_b, "attention weight missing");
}

static void check_model(const am_model *m) {
    const am_hparams *hp = &m->hp;
    FZ_ASSERT(hp->n_vocab >= 51864 && hp->n_vocab <= 51866, "n_vocab %d", hp->n_vocab);
    FZ_ASSERT(hp->n_audio_layer >= 1 && hp->n_text_layer >= 1, "layers %d %d", hp->n_audio_layer, hp->n_text_layer);
    FZ_ASSERT(m->mel_filters && m->enc_conv1.data && m->enc_conv1_b && m->enc_conv2.data && m->enc_conv2_b &&
                  m->enc_pos && m->enc_ln_w && m->enc_ln_b && m->dec_tok_emb.data && m->dec_pos && m->dec_ln_w &&
                  m->dec_ln_b,
              "weight missing");
    FZ_ASSERT(m->dec_tok_emb.rows == hp->n_vocab && m->dec_tok_emb.cols == hp->n_text_state, "token embedding %dx%d",
              m->dec_tok_emb.rows, m->dec_tok_emb.cols);
    for (int i = 0; i < hp->n_audio_layer; i++) check_attn(&m->enc_blocks[i].attn);
    for (int i = 0; i < hp->n_text_layer; i++) {
        check_attn(&m->dec_blocks[i].attn);
        check_attn(&m->dec_blocks[i].cross);
    }
    // every byte the model claims to hold is readable (ASan checks the reads)
    volatile uint8_t sink = 0;
    for (int32_t i = 0; i < m->n_file_vocab; i++)
        for (uint32_t k = 0; k < m->vocab_len[i]; k++) sink ^= m->vocab_bytes[i][k];
    const float *tables[] = {m->mel_filters, m->enc_pos, m->dec_pos};
    const size_t sizes[] = {(size_t)hp->n_mels * 201, (size_t)hp->n_audio_ctx * (size_t)hp->n_audio_state,
                            (size_t)hp->n_text_ctx * (size_t)hp->n_text_state};
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < sizes[t]; i += 61) sink ^= (uint8_t)(tables[t][i] != 0);
    (void)sink;
}

// What main.c does with a model: its tokenizer, then one encode/decode.
static void use_tokenizer(const am_model *m) {
    am_tokenizer *t = am_tokenizer_create(m->vocab_bytes, m->vocab_len, m->n_file_vocab, m->hp.n_vocab);
    if (!t) {
        FZ_ASSERT(am_last_error()[0] != 0, "tokenizer failed without a message");
        return;
    }
    static const char text[] = " And so, my fellow Americans: ask not \xE2\x99\xAA 1234 <|endoftext|>";
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = am_tokenizer_encode(t, text, sizeof text - 1, &ids, &n);
    FZ_ASSERT(rc == 0, "encode: %s", am_last_error());
    char *back = NULL;
    size_t len = 0;
    rc = am_tokenizer_decode_alloc(t, ids, n, AM_DECODE_ALL, &back, &len);
    FZ_ASSERT(rc == 0, "decode: %s", am_last_error());
    free(back);
    free(ids);
    am_tokenizer_free(t);
}

// ---------------------------------------------------------------- one input
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    am_set_error(AM_OK, "%s", "");
    am_model *m = am_model_load_buffer(data, size, "fuzz.bin");
    if (!m) {
        const int code = am_last_error_code();
        FZ_ASSERT(code == AM_EFORMAT || code == AM_ENOMEM, "error code %d: %s", code, am_last_error());
        FZ_ASSERT(am_last_error()[0] != 0, "failure without a message");
        return 0;
    }
    check_model(m);
    use_tokenizer(m);
    am_model_free(m);
    return 0;
}
