// am_quant.h — weight storage types of ggml files and their exact decoding.
//
// A model keeps every weight matrix in the type its file stores (f32, f16 or
// one of the 32-element block formats q8_0, q5_0, q5_1, q4_0, q4_1; see
// shared/FORMAT.md). Kernels decode rows on the fly with the functions below,
// which give exactly the float32 values of the reference dequantization:
//   f16        the IEEE half value (exact)
//   q8_0       (float)q * d                     q4_0  (float)(q - 8) * d
//   q5_0       (float)(q - 16) * d              q4_1, q5_1  (float)q * d + m
// (d, m: the block's f16 scale and minimum; products and sums rounded to
// float32 one operation at a time, never fused). Every instruction-set path
// (portable, AVX2, AVX-512; am_cpu_isa) produces the same bits.
//
// Ownership: an am_wmat borrows its bytes (the model owns them).
// Thread-safety: everything here is reentrant; nothing allocates.
#ifndef AM_QUANT_H
#define AM_QUANT_H

#include <stddef.h>
#include <stdint.h>

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

// Elements per block (1 for f32/f16, 32 for the q types) and bytes per block;
// 0 for a type that is not one of the above.
int am_type_block(int type);
int am_type_block_bytes(int type);
// "f32", "f16", "q8_0", ... ("unknown" otherwise).
const char *am_type_name(int type);
// The type named `name` ("f16", ...), or -1.
int am_type_from_name(const char *name);
// Bytes of n elements of `type` (n a multiple of its block size).
size_t am_type_bytes(int type, size_t n);

// ---------------------------------------------------------------- weight matrices
// W (rows, cols) in PyTorch nn.Linear layout (out, in): row r holds output r's
// weights; rows are contiguous, row_bytes = am_type_bytes(type, cols) apart.
// cols is a multiple of the type's block size.
typedef struct {
    const uint8_t *data;
    int type;
    int rows, cols;
    size_t row_bytes;
} am_wmat;

// Rows [r0, r0 + n) of W as a matrix of its own (no copy).
am_wmat am_wmat_rows(const am_wmat *W, int r0, int n);

// dst (n, cols) = rows [r0, r0 + n) of W as float32, exactly.
void am_wmat_dequant(float *restrict dst, const am_wmat *W, int r0, int n);

// ---------------------------------------------------------------- arrays
// dst (n,) = the n elements of `type` at src, as float32, exactly
// (n a multiple of the type's block size).
void am_quant_dequant(float *restrict dst, const void *restrict src, int type, size_t n);

// dst (n,) = src as IEEE half, rounded to nearest even (am_fp32_to_fp16).
void am_quant_to_f16(uint16_t *restrict dst, const float *restrict src, size_t n);

#endif // AM_QUANT_H
