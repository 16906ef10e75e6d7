// am_attn.h — scaled dot-product attention over keys and values stored in a
// layout made for streaming them (the encoder's heads, the decoder's KV caches
// and cross-attention K/V).
//
// One head's keys and values for up to n_max positions (an am_kv_head):
//   K  tiles of AM_ATTN_TILE (16) positions, each (hd, 16) dimension-major:
//      key t, dimension j at k[(t / 16) * hd * 16 + j * 16 + t % 16]
//   V  rows (n_max, hd): value t, dimension j at v[t * hd + j]
// in float32 or IEEE half (AM_TYPE_F32 / AM_TYPE_F16; half values are
// converted exactly on load). Scores of a query against 16 keys are then 16
// lanes of plain multiply-adds, and a head's K and V are each one contiguous
// stream. Storage is rounded up to whole groups of 64 positions (am_attn_kv_elems).
//
// Ownership: callers own the K/V memory and the scratch. Thread-safety: the
// kernels are reentrant; they do not use the thread pool (callers spread
// heads and sequences over it).
#ifndef AM_ATTN_H
#define AM_ATTN_H

#include <stddef.h>
#include <stdint.h>

#define AM_ATTN_TILE 16
#define AM_ATTN_QBLOCK 64 // query rows scored at a time (scratch rows)

typedef struct {
    void *k;  // key tiles (layout above)
    void *v;  // value rows
    int type; // AM_TYPE_F32 or AM_TYPE_F16
    int hd;   // head width
} am_kv_head;

// Elements of K (and, separately, of V) for n positions of width hd.
size_t am_attn_kv_elems(int n, int hd);
// Floats of scratch am_attn needs for n_keys keys.
size_t am_attn_scratch_floats(int n_keys);

// Store positions [pos, pos + n) of a head: key rows k (n, hd) and value rows
// v (n, hd), both `ld` floats apart (rounded to half when the head is f16).
void am_attn_store(const am_kv_head *h, int pos, const float *k, const float *v, int ld, int n);

// out (nq, hd) [ld_o] = softmax(q K^T * scale) V for query rows q (nq, hd)
// [ld_q] over keys [0, n_keys). causal_offset >= 0 masks: query i sees keys
// 0..causal_offset + i; -1 for none. Softmax in float32 with a max-subtracted
// exp (vectorized: float32 partial sums; portable path: am_nn_softmax_rows);
// masked keys weigh 0.
// scratch: am_attn_scratch_floats(n_keys) floats.
void am_attn(float *out, int ld_o, const float *q, int ld_q, int nq, const am_kv_head *h, int n_keys,
             int causal_offset, float scale, float *scratch);

// s (nq, n_keys) [lds] = scale * q K^T: the raw scores am_attn would soften,
// for keys [0, n_keys) without mask (e.g. cross-attention weights kept for
// word alignment). scratch: am_attn_scratch_floats(n_keys) floats.
void am_attn_scores(float *s, int lds, const float *q, int ld_q, int nq, const am_kv_head *h, int n_keys, float scale,
                    float *scratch);

#endif // AM_ATTN_H
