// am_vad.c — Silero VAD (whisper.cpp's ggml layout): loader, network, segments.
#include "am_vad.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "am_nn.h"
#include "am_quant.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define VAD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VAD_CLONES
#endif

#define VAD_MAGIC 0x67676d6cu
#define VAD_RATE 16000                    // samples per second
#define VAD_MAX_FILE ((size_t)64 << 20)   // a VAD model is < 1 MB; refuse absurd files
#define VAD_MAX_NAME 256

// The one network this module computes (Silero 16 kHz, as whisper.cpp builds it).
#define WIN 512                 // samples per frame
#define REFL 64                 // reflect padding on each side of a frame
#define PADDED (WIN + 2 * REFL) // 640
#define NFFT 256                // STFT kernel length
#define HOP 128                 // STFT stride
#define NT0 4                   // STFT positions per frame: (640 - 256) / 128 + 1
#define NBIN 129                // frequency bins (real and imaginary kernels each)
#define NBASIS (2 * NBIN)       // 258 STFT kernels
#define NBASIS_PAD 272          // NBASIS rounded up to PANEL (16)
#define C0 128                  // encoder widths
#define C1 64
#define C2 64
#define C3 128
#define KS 3                    // encoder kernel size
#define HID 128                 // LSTM hidden size
#define GATES (4 * HID)         // i, f, g, o
#define FB 16                   // frames per block of the batched (frame-independent) stages

// ---------------------------------------------------------------- model
enum {
    T_STFT,
    T_E0W, T_E0B, T_E1W, T_E1B, T_E2W, T_E2B, T_E3W, T_E3B,
    T_WIH, T_WHH, T_BIH, T_BHH,
    T_OUTW, T_OUTB,
    T_COUNT
};

// Every tensor of the file: name and shape in ggml order (ne[0] fastest),
// padded with 1s. Conv weights are (K, IC, OC): PyTorch's (OC, IC, K).
static const struct {
    const char *name;
    int64_t ne[4];
} k_tensors[T_COUNT] = {
    [T_STFT] = {"_model.stft.forward_basis_buffer", {NFFT, 1, NBASIS, 1}},
    [T_E0W] = {"_model.encoder.0.reparam_conv.weight", {KS, NBIN, C0, 1}},
    [T_E0B] = {"_model.encoder.0.reparam_conv.bias", {C0, 1, 1, 1}},
    [T_E1W] = {"_model.encoder.1.reparam_conv.weight", {KS, C0, C1, 1}},
    [T_E1B] = {"_model.encoder.1.reparam_conv.bias", {C1, 1, 1, 1}},
    [T_E2W] = {"_model.encoder.2.reparam_conv.weight", {KS, C1, C2, 1}},
    [T_E2B] = {"_model.encoder.2.reparam_conv.bias", {C2, 1, 1, 1}},
    [T_E3W] = {"_model.encoder.3.reparam_conv.weight", {KS, C2, C3, 1}},
    [T_E3B] = {"_model.encoder.3.reparam_conv.bias", {C3, 1, 1, 1}},
    [T_WIH] = {"_model.decoder.rnn.weight_ih", {HID, GATES, 1, 1}},
    [T_WHH] = {"_model.decoder.rnn.weight_hh", {HID, GATES, 1, 1}},
    [T_BIH] = {"_model.decoder.rnn.bias_ih", {GATES, 1, 1, 1}},
    [T_BHH] = {"_model.decoder.rnn.bias_hh", {GATES, 1, 1, 1}},
    [T_OUTW] = {"_model.decoder.decoder.2.weight", {HID, 1, 1, 1}},
    [T_OUTB] = {"_model.decoder.decoder.2.bias", {1, 1, 1, 1}},
};

// Encoder layer i: input and output channels, stride (whisper.cpp's graph).
static const int k_enc_in[4] = {NBIN, C0, C1, C2};
static const int k_enc_out[4] = {C0, C1, C2, C3};

// Weight matrices W (N, K) (output n, input k) are stored in panels of
// PANEL outputs: P[p][k][j] = W[p * PANEL + j][k], N padded with zero rows to
// a multiple of PANEL, so that a kernel reads PANEL consecutive outputs' weights
// for one input with one vector load.
#define PANEL 16

// A weight matrix in panels.
typedef struct {
    const float *p; // (ceil(N / PANEL), K, PANEL)
    int N, K;
} panels;

struct am_vad_model {
    am_vad_info info;
    // float32, 64-byte aligned, all in `arena`
    panels basis;          // (258, 256): STFT kernels; outputs [0,129) real, [129,258) imaginary
    panels enc_w[4];       // (OC, 3*IC): conv weights tap-major, W[oc][k*IC + ic] = torch w[oc][ic][k]
    const float *enc_b[4]; // (OC,)
    panels w_ih;           // (512, 128): LSTM input weights, gate outputs i, f, g, o
    panels w_hh;           // (512, 128): LSTM hidden weights
    const float *zero_b;   // (272,): zeros, the STFT's bias (it has none; + 0 is exact)
    const float *b_ih;     // (512,)
    const float *b_hh;     // (512,)
    const float *out_w;    // (128,): output 1x1 conv
    float out_b;           // output bias
    float *arena;
};

// ---------------------------------------------------------------- reader
// A bounds-checked cursor: every read checks the remaining length first.
typedef struct {
    const uint8_t *base;
    size_t size, pos;
} reader;

static int rd_bytes(reader *r, void *dst, size_t n, const char *what) {
    if (n > r->size - r->pos) {
        memset(dst, 0, n);
        return am_set_error(AM_EFORMAT,
                            "VAD model file truncated while reading %s (offset %zu, need %zu bytes, %zu left)",
                            what, r->pos, n, r->size - r->pos);
    }
    memcpy(dst, r->base + r->pos, n);
    r->pos += n;
    return 0;
}

static int rd_i32(reader *r, int32_t *v, const char *what) { return rd_bytes(r, v, 4, what); }

// Read an int32 that must equal `want`.
static int rd_expect(reader *r, int32_t want, const char *what) {
    int32_t v;
    if (rd_i32(r, &v, what)) return AM_EFORMAT;
    if (v != want) return am_set_error(AM_EFORMAT, "VAD model %s = %d, expected %d", what, v, want);
    return 0;
}

// ---------------------------------------------------------------- loading
static int parse_header(reader *r, am_vad_info *info) {
    uint32_t magic;
    int32_t len;
    if (rd_bytes(r, &magic, 4, "magic")) return AM_EFORMAT;
    if (magic != VAD_MAGIC)
        return am_set_error(AM_EFORMAT, "not a ggml VAD model file (magic 0x%08x, expected 0x%08x)", magic, VAD_MAGIC);
    if (rd_i32(r, &len, "model type")) return AM_EFORMAT;
    if (len < 1 || len >= (int32_t)sizeof info->type)
        return am_set_error(AM_EFORMAT, "VAD model type length %d out of range [1, %zu]", len, sizeof info->type - 1);
    if (rd_bytes(r, info->type, (size_t)len, "model type")) return AM_EFORMAT;
    info->type[len] = 0;
    for (int i = 0; i < len; i++)
        if (info->type[i] < 0x20 || info->type[i] > 0x7e)
            return am_set_error(AM_EFORMAT, "VAD model type is not printable text");
    for (int i = 0; i < 3; i++) {
        if (rd_i32(r, &info->version[i], "version")) return AM_EFORMAT;
        if (info->version[i] < 0 || info->version[i] > 9999)
            return am_set_error(AM_EFORMAT, "VAD model version part %d = %d out of range", i, info->version[i]);
    }
    if (rd_expect(r, WIN, "window size")) return AM_EFORMAT;
    info->n_window = WIN;
    if (rd_i32(r, &info->n_context, "context size")) return AM_EFORMAT;
    if (info->n_context < 0 || info->n_context > WIN)
        return am_set_error(AM_EFORMAT, "VAD model context size %d out of range [0, %d]", info->n_context, WIN);
    if (rd_expect(r, 4, "encoder layer count")) return AM_EFORMAT;
    for (int i = 0; i < 4; i++) {
        char what[64];
        snprintf(what, sizeof what, "encoder layer %d input channels", i);
        if (rd_expect(r, k_enc_in[i], what)) return AM_EFORMAT;
        snprintf(what, sizeof what, "encoder layer %d output channels", i);
        if (rd_expect(r, k_enc_out[i], what)) return AM_EFORMAT;
        snprintf(what, sizeof what, "encoder layer %d kernel size", i);
        if (rd_expect(r, KS, what)) return AM_EFORMAT;
    }
    if (rd_expect(r, HID, "LSTM input size") || rd_expect(r, HID, "LSTM hidden size") ||
        rd_expect(r, HID, "output conv input size") || rd_expect(r, 1, "output conv output size"))
        return AM_EFORMAT;
    return 0;
}

// Where each tensor's data is in the file.
typedef struct {
    size_t offset; // byte offset of the data
    int type;      // AM_TYPE_F32 or AM_TYPE_F16
    int found;
} tensor_loc;

static int parse_tensors(reader *r, tensor_loc *loc) {
    while (r->pos < r->size) {
        const size_t at = r->pos;
        int32_t n_dims, name_len, ttype;
        if (rd_i32(r, &n_dims, "tensor header") || rd_i32(r, &name_len, "tensor header") ||
            rd_i32(r, &ttype, "tensor header"))
            return AM_EFORMAT;
        if (n_dims < 0 || n_dims > 4)
            return am_set_error(AM_EFORMAT, "VAD tensor at offset %zu has %d dimensions", at, n_dims);
        if (name_len < 1 || name_len >= VAD_MAX_NAME)
            return am_set_error(AM_EFORMAT, "VAD tensor at offset %zu has name length %d", at, name_len);
        if (ttype != AM_TYPE_F32 && ttype != AM_TYPE_F16)
            return am_set_error(AM_EFORMAT, "VAD tensor at offset %zu has type %d (only f32 and f16)", at, ttype);
        int64_t ne[4] = {1, 1, 1, 1};
        for (int i = 0; i < n_dims; i++) {
            int32_t v;
            if (rd_i32(r, &v, "tensor shape")) return AM_EFORMAT;
            if (v < 1 || v > (1 << 20))
                return am_set_error(AM_EFORMAT, "VAD tensor at offset %zu: dimension %d = %d invalid", at, i, v);
            ne[i] = v;
        }
        char name[VAD_MAX_NAME];
        if (rd_bytes(r, name, (size_t)name_len, "tensor name")) return AM_EFORMAT;
        name[name_len] = 0;
        if (memchr(name, 0, (size_t)name_len)) return am_set_error(AM_EFORMAT, "VAD tensor name contains a NUL byte");
        int t = 0;
        while (t < T_COUNT && strcmp(k_tensors[t].name, name)) t++;
        if (t == T_COUNT) return am_set_error(AM_EFORMAT, "unknown tensor '%s' in VAD model file", name);
        if (loc[t].found) return am_set_error(AM_EFORMAT, "VAD tensor '%s' appears twice", name);
        const int64_t *want = k_tensors[t].ne;
        if (memcmp(ne, want, sizeof ne))
            return am_set_error(AM_EFORMAT,
                                "VAD tensor '%s' has shape (%lld,%lld,%lld,%lld), expected (%lld,%lld,%lld,%lld)",
                                name, (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3],
                                (long long)want[0], (long long)want[1], (long long)want[2], (long long)want[3]);
        const size_t n_bytes = am_type_bytes(ttype, (size_t)(ne[0] * ne[1] * ne[2] * ne[3]));
        if (n_bytes > r->size - r->pos)
            return am_set_error(AM_EFORMAT,
                                "VAD model file truncated: tensor '%s' needs %zu bytes at offset %zu, %zu left",
                                name, n_bytes, r->pos, r->size - r->pos);
        loc[t] = (tensor_loc){r->pos, ttype, 1};
        r->pos += n_bytes;
    }
    for (int t = 0; t < T_COUNT; t++)
        if (!loc[t].found)
            return am_set_error(AM_EFORMAT, "VAD tensor '%s' missing from model file", k_tensors[t].name);
    return 0;
}

static size_t n_elem(int t) {
    const int64_t *ne = k_tensors[t].ne;
    return (size_t)(ne[0] * ne[1] * ne[2] * ne[3]);
}

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static int is_lstm(int t) { return t == T_WIH || t == T_WHH; }
static int is_conv(int t) { return t == T_E0W || t == T_E1W || t == T_E2W || t == T_E3W; }
static int is_matrix(int t) { return t == T_STFT || is_conv(t) || is_lstm(t); }

// The matrix view of tensor t: (N, K) with N the outputs (the last ggml dimension).
static void matrix_shape(int t, int *N, int *K) {
    *N = (int)k_tensors[t].ne[is_lstm(t) ? 1 : 2];
    *K = (int)(n_elem(t) / (size_t)*N);
}

// Floats tensor t takes in the arena.
static size_t arena_floats(int t) {
    if (!is_matrix(t)) return round16(n_elem(t));
    int N, K;
    matrix_shape(t, &N, &K);
    return (size_t)(N + PANEL - 1) / PANEL * PANEL * (size_t)K;
}

// Convert every tensor to float32 (exactly) into one arena. Matrices go into
// panels; conv weights are also reordered from (OC, IC, K) to tap-major
// (OC, K, IC), so that the input of one output position is a contiguous run
// of the time-major activations.
static int fill_arena(am_vad_model *m, const reader *r, const tensor_loc *loc) {
    size_t off[T_COUNT], total = 0, most = 0;
    for (int t = 0; t < T_COUNT; t++) {
        off[t] = total;
        total += arena_floats(t);
        most = AM_MAX(most, n_elem(t));
    }
    const size_t zero_off = total;
    total += NBASIS_PAD;
    float *tmp = malloc(2 * most * sizeof *tmp);
    if (!tmp || !(m->arena = am_alloc(total * sizeof(float)))) { // am_alloc zeroes: the panel padding
        free(tmp);
        return am_set_error(AM_ENOMEM, "out of memory for the VAD model");
    }
    float *const row = tmp + most; // (N, K) row-major before the panel layout
    panels *const mats[T_COUNT] = {[T_STFT] = &m->basis, [T_E0W] = &m->enc_w[0], [T_E1W] = &m->enc_w[1],
                                   [T_E2W] = &m->enc_w[2], [T_E3W] = &m->enc_w[3], [T_WIH] = &m->w_ih,
                                   [T_WHH] = &m->w_hh};
    for (int t = 0; t < T_COUNT; t++) {
        float *dst = m->arena + off[t];
        if (loc[t].type == AM_TYPE_F16) m->info.n_f16++;
        am_quant_dequant(tmp, r->base + loc[t].offset, loc[t].type, n_elem(t));
        if (!is_matrix(t)) {
            memcpy(dst, tmp, n_elem(t) * sizeof(float));
            continue;
        }
        int N, K;
        matrix_shape(t, &N, &K);
        const float *w = tmp;
        if (is_conv(t)) { // (OC, IC, KS) -> (OC, KS, IC)
            const int IC = (int)k_tensors[t].ne[1];
            for (int oc = 0; oc < N; oc++)
                for (int ic = 0; ic < IC; ic++)
                    for (int k = 0; k < KS; k++)
                        row[((size_t)oc * KS + k) * IC + ic] = tmp[((size_t)oc * IC + ic) * KS + k];
            w = row;
        }
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++)
                dst[((size_t)(n / PANEL) * K + k) * PANEL + n % PANEL] = w[(size_t)n * K + k];
        *mats[t] = (panels){dst, N, K};
    }
    free(tmp);
    const float *a = m->arena;
    const int b[4] = {T_E0B, T_E1B, T_E2B, T_E3B};
    for (int i = 0; i < 4; i++) m->enc_b[i] = a + off[b[i]];
    m->zero_b = a + zero_off;
    m->b_ih = a + off[T_BIH];
    m->b_hh = a + off[T_BHH];
    m->out_w = a + off[T_OUTW];
    m->out_b = a[off[T_OUTB]];
    return 0;
}

static am_vad_model *load(const uint8_t *data, size_t size) {
    am_vad_model *m = calloc(1, sizeof *m);
    if (!m) {
        am_set_error(AM_ENOMEM, "out of memory");
        return NULL;
    }
    reader r = {data, size, 0};
    tensor_loc loc[T_COUNT] = {{0}};
    if (parse_header(&r, &m->info) || parse_tensors(&r, loc) || fill_arena(m, &r, loc)) goto fail;
    return m;
fail:
    am_vad_model_free(m);
    return NULL;
}

am_vad_model *am_vad_model_load(const char *path) {
    uint8_t *buf = NULL;
    am_vad_model *m = NULL;
    int fd = -1;
    if (!path) {
        am_set_error(AM_EINVAL, "VAD model path is NULL");
        return NULL;
    }
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused as not a regular file)
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        am_set_error(AM_EIO, "cannot open VAD model file '%s': %s", path, strerror(errno));
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        am_set_error(AM_EIO, "VAD model path '%s' is not a regular file", path);
        goto done;
    }
    const size_t size = (size_t)st.st_size;
    if (size > VAD_MAX_FILE) {
        am_set_error(AM_EFORMAT, "VAD model file '%s' is too large (%zu bytes)", path, size);
        goto done;
    }
    // an exact-size copy: a sanitizer sees any read past the end
    if (!(buf = malloc(size ? size : 1))) {
        am_set_error(AM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t got = 0; got < size;) {
        const ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            am_set_error(AM_EIO, "cannot read VAD model file '%s': %s", path, n ? strerror(errno) : "short read");
            goto done;
        }
        got += (size_t)n;
    }
    m = load(buf, size);
done:
    if (fd >= 0) close(fd);
    free(buf);
    return m;
}

am_vad_model *am_vad_model_load_buffer(const void *data, size_t size) {
    if (!data && size) {
        am_set_error(AM_EINVAL, "VAD model buffer is NULL");
        return NULL;
    }
    if (size > VAD_MAX_FILE) {
        am_set_error(AM_EFORMAT, "VAD model buffer is too large (%zu bytes)", size);
        return NULL;
    }
    return load(data, size);
}

void am_vad_model_free(am_vad_model *m) {
    if (!m) return;
    am_free(m->arena);
    free(m);
}

const am_vad_info *am_vad_model_info(const am_vad_model *m) { return m ? &m->info : NULL; }

// ---------------------------------------------------------------- kernels
// x (n,) = x rounded to the nearest IEEE half (ties to even), kept as float:
// ggml's im2col to f16 ahead of every convolution. Branch-free bit arithmetic
// so that the loop vectorizes; equals am_fp16_to_fp32(am_fp32_to_fp16(x)).
VAD_CLONES static void round_f16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        union {
            float f;
            uint32_t u;
        } v = {x[i]}, s;
        const uint32_t sign = v.u & 0x80000000u, a = v.u & 0x7fffffffu;
        // normal half range: drop 13 mantissa bits, nearest even (a carry into the exponent is right)
        const uint32_t normal = (a + 0x0fffu + ((a >> 13) & 1u)) & ~0x1fffu;
        // subnormal half range (|x| < 2^-14): the float addition rounds to a multiple of 2^-24, to even
        s.f = (fabsf(x[i]) + 0.5f) - 0.5f;
        uint32_t r = a < 0x38800000u ? s.u : normal;
        r = a >= 0x477ff000u ? (a > 0x7f800000u ? a | 0x00400000u : 0x7f800000u) : r; // inf / NaN
        v.u = sign | r;
        x[i] = v.f;
    }
}

// One tile of the product below: RB rows x PB panels, the RB x PB * PANEL
// sums held in registers; rows past R repeat row r (computed, not stored).
#define GEMM_TILE(RB, PB)                                                                                        \
    AM_INLINE void tile_##RB##x##PB(float *const *restrict y, const float *const *restrict x, int R, int r,     \
                                    const panels *W, int p0, const float *restrict b, int relu) {                 \
        float acc[RB][PB * PANEL];                                                                               \
        memset(acc, 0, sizeof acc);                                                                              \
        const float *xr[RB];                                                                                     \
        for (int i = 0; i < RB; i++) xr[i] = x[r + i < R ? r + i : r];                                           \
        const int K = W->K;                                                                                      \
        for (int k = 0; k < K; k++)                                                                              \
            for (int i = 0; i < RB; i++) {                                                                       \
                const float a = xr[i][k];                                                                        \
                for (int q = 0; q < PB; q++) {                                                                   \
                    const float *w = W->p + ((size_t)(p0 + q) * K + k) * PANEL;                                  \
                    _Pragma("omp simd") for (int j = 0; j < PANEL; j++) acc[i][q * PANEL + j] += a * w[j];       \
                }                                                                                                \
            }                                                                                                    \
        const float *bo = b + p0 * PANEL;                                                                        \
        for (int i = 0; i < RB && r + i < R; i++) {                                                              \
            float *yo = y[r + i] + p0 * PANEL;                                                                   \
            _Pragma("omp simd") for (int j = 0; j < PB * PANEL; j++) {                                           \
                const float v = acc[i][j] + bo[j];                                                               \
                yo[j] = relu && !(v > 0.0f) ? 0.0f : v;                                                          \
            }                                                                                                    \
        }                                                                                                        \
    }

GEMM_TILE(4, 1) // many rows: 4 rows x 16 outputs (8 ymm / 4 zmm accumulators)
GEMM_TILE(1, 4) // one row (the LSTM's hidden product): 64 outputs at a time

// For each of the R rows: y[r] (N,) = W (N, K) · x[r] (K,) + b (N,), then
// ReLU when relu != 0. Rows are given by pointers (the inputs may overlap:
// strided windows of one activation buffer). Whole panels are stored: y rows
// and b have room for N rounded up to PANEL (the extra outputs are b's extra
// values, unused). Each output is the plain sum over k in order, then + b
// (ggml adds the bias after the product).
VAD_CLONES static void gemm_rows(float *const *restrict y, const float *const *restrict x, int R, const panels *W,
                                 const float *restrict b, int relu) {
    const int n_panels = (W->N + PANEL - 1) / PANEL;
    if (R == 1) {
        int p = 0;
        for (; p + 4 <= n_panels; p += 4) tile_1x4(y, x, R, 0, W, p, b, relu);
        for (; p < n_panels; p++) tile_4x1(y, x, R, 0, W, p, b, relu);
        return;
    }
    for (int p = 0; p < n_panels; p++) // W's panel stays in L1 while the rows stream
        for (int r = 0; r < R; r += 4) tile_4x1(y, x, R, r, W, p, b, relu);
}

// The logistic and tanh from e^-|x| only (am_nn_exp_nonpos: branch-free, so
// the loops over them vectorize, and no overflow for any x). A NaN (a model
// whose values overflow, or a NaN weight) never reaches am_nn_exp_nonpos,
// whose domain is x <= 0 (its 2^n step shifts the NaN's bits: undefined
// behaviour); it comes out as NaN, as expf would leave it.
AM_INLINE float sigmoid_f(float x) {
    const float a = -fabsf(x);
    const float e = am_nn_exp_nonpos(a == a ? a : 0.0f); // e^-|x|
    const float y = (x >= 0 ? 1.0f : e) / (1.0f + e);
    return x == x ? y : x;
}

AM_INLINE float tanh_f(float x) {
    const float a = -2.0f * fabsf(x);
    const float e = am_nn_exp_nonpos(a == a ? a : 0.0f); // e^-2|x|
    const float y = copysignf((1.0f - e) / (1.0f + e), x);
    return x == x ? y : x;
}

// One LSTM cell step (PyTorch's LSTMCell; gate order i, f, g, o) from the
// pre-activations gx + gh (512,): c (128,) and h (128,) updated in place,
// hr (128,) = ReLU(h).
VAD_CLONES static void lstm_cell(float *restrict h, float *restrict c, float *restrict hr, const float *restrict gx,
                                 const float *restrict gh) {
    for (int j = 0; j < HID; j++) {
        const float gi = sigmoid_f(gx[j] + gh[j]);
        const float gf = sigmoid_f(gx[HID + j] + gh[HID + j]);
        const float gg = tanh_f(gx[2 * HID + j] + gh[2 * HID + j]);
        const float go = sigmoid_f(gx[3 * HID + j] + gh[3 * HID + j]);
        c[j] = gf * c[j] + gi * gg;
        h[j] = go * tanh_f(c[j]);
        hr[j] = h[j] > 0.0f ? h[j] : 0.0f;
    }
}

// ---------------------------------------------------------------- network
// Activations of one block of FB frames, time-major with a zero row of
// padding before and after each frame's rows (so a conv window is one
// contiguous run), plus the LSTM state.
typedef struct {
    float *frames;  // (FB, 640): reflect-padded frames, rounded to half
    float *spec;    // (FB*4, 272): STFT outputs (258, and room for a whole last panel)
    float *in0;     // (FB, 1+4+1, 129): magnitudes (rows 1..4), rounded to half
    float *in1;     // (FB, 1+4+1, 128): encoder 0 output, rounded to half
    float *in2;     // (FB, 1+2+1, 64): encoder 1 output, rounded to half
    float *in3;     // (FB, 1+1+1, 64): encoder 2 output, rounded to half
    float *enc;     // (FB, 128): encoder 3 output (float32, as the LSTM reads it)
    float *gx;      // (FB, 512): W_ih x + b_ih per frame
    float *gh;      // (512,): W_hh h + b_hh
    float *h, *c;   // (128,): LSTM hidden and cell state
    float *hr;      // (128,): ReLU(h) rounded to half
    const float *xr[NT0 * FB];
    float *yr[NT0 * FB];
    float *mem;
} scratch;

#define S_FRAMES ((size_t)FB * PADDED)
#define S_SPEC ((size_t)FB * NT0 * NBASIS_PAD)
#define S_IN0 ((size_t)FB * (NT0 + 2) * NBIN)
#define S_IN1 ((size_t)FB * (NT0 + 2) * C0)
#define S_IN2 ((size_t)FB * 4 * C1)
#define S_IN3 ((size_t)FB * 3 * C2)
#define S_ENC ((size_t)FB * C3)
#define S_GX ((size_t)FB * GATES)

static int scratch_init(scratch *s) {
    const size_t sizes[] = {S_FRAMES, S_SPEC, S_IN0, S_IN1, S_IN2, S_IN3, S_ENC, S_GX, GATES, HID, HID, HID};
    float **dst[] = {&s->frames, &s->spec, &s->in0, &s->in1, &s->in2, &s->in3, &s->enc, &s->gx, &s->gh,
                     &s->h, &s->c, &s->hr};
    size_t total = 0;
    for (size_t i = 0; i < AM_ARRAY_LEN(sizes); i++) total += round16(sizes[i]);
    if (!(s->mem = am_alloc(total * sizeof(float)))) return am_set_error(AM_ENOMEM, "out of memory for VAD scratch");
    float *p = s->mem; // am_alloc zeroes: the padding rows and the LSTM state start at zero
    for (size_t i = 0; i < AM_ARRAY_LEN(sizes); i++) {
        *dst[i] = p;
        p += round16(sizes[i]);
    }
    return 0;
}

// frames: nf reflect-padded frames of samples starting at frame f0 (the last
// one zero-filled past n_samples), rounded to half.
static void load_frames(scratch *s, const float *samples, size_t n_samples, size_t f0, int nf) {
    for (int f = 0; f < nf; f++) {
        float *p = s->frames + (size_t)f * PADDED, *w = p + REFL;
        const size_t start = (f0 + (size_t)f) * WIN;
        const size_t n = AM_MIN((size_t)WIN, n_samples - start);
        memcpy(w, samples + start, n * sizeof *w);
        memset(w + n, 0, (WIN - n) * sizeof *w);
        for (int i = 1; i <= REFL; i++) { // reflection without repeating the edge sample
            w[-i] = w[i];
            w[WIN - 1 + i] = w[WIN - 1 - i];
        }
    }
    round_f16(s->frames, (size_t)nf * PADDED);
}

// One convolution stage over nf frames: output position t of frame f reads
// the K = 3 * IC values at in + f * in_fs + t * stride * IC and writes
// out + f * out_fs + out_t0 + t * OC, with ReLU.
static void conv_stage(scratch *s, int nf, int n_out_t, const float *in, size_t in_fs, int stride, int IC, float *out,
                       size_t out_fs, size_t out_t0, const panels *W, const float *b) {
    int R = 0;
    for (int f = 0; f < nf; f++)
        for (int t = 0; t < n_out_t; t++, R++) {
            s->xr[R] = in + (size_t)f * in_fs + (size_t)t * stride * IC;
            s->yr[R] = out + (size_t)f * out_fs + out_t0 + (size_t)t * W->N;
        }
    gemm_rows(s->yr, s->xr, R, W, b, 1);
}

// The frame-independent part for nf frames: STFT magnitudes, the encoder and
// the LSTM's input product.
static void encode_block(const am_vad_model *m, scratch *s, int nf) {
    // STFT: position t of frame f is the 256 samples at t * 128 of the padded frame
    int R = 0;
    for (int f = 0; f < nf; f++)
        for (int t = 0; t < NT0; t++, R++) {
            s->xr[R] = s->frames + (size_t)f * PADDED + (size_t)t * HOP;
            s->yr[R] = s->spec + (size_t)R * NBASIS_PAD;
        }
    gemm_rows(s->yr, s->xr, R, &m->basis, m->zero_b, 0);
    for (int f = 0; f < nf; f++)
        for (int t = 0; t < NT0; t++) {
            const float *re = s->spec + ((size_t)f * NT0 + t) * NBASIS_PAD, *im = re + NBIN;
            float *mag = s->in0 + ((size_t)f * (NT0 + 2) + 1 + t) * NBIN;
            for (int j = 0; j < NBIN; j++) mag[j] = sqrtf(re[j] * re[j] + im[j] * im[j]);
        }
    round_f16(s->in0, (size_t)nf * (NT0 + 2) * NBIN);
    // encoder: k3 p1 convolutions with strides 1, 2, 2, 1 over 4 -> 4 -> 2 -> 1 -> 1 positions
    conv_stage(s, nf, 4, s->in0, (NT0 + 2) * NBIN, 1, NBIN, s->in1, (NT0 + 2) * C0, C0, &m->enc_w[0], m->enc_b[0]);
    round_f16(s->in1, (size_t)nf * (NT0 + 2) * C0);
    conv_stage(s, nf, 2, s->in1, (NT0 + 2) * C0, 2, C0, s->in2, 4 * C1, C1, &m->enc_w[1], m->enc_b[1]);
    round_f16(s->in2, (size_t)nf * 4 * C1);
    conv_stage(s, nf, 1, s->in2, 4 * C1, 2, C1, s->in3, 3 * C2, C2, &m->enc_w[2], m->enc_b[2]);
    round_f16(s->in3, (size_t)nf * 3 * C2);
    conv_stage(s, nf, 1, s->in3, 3 * C2, 1, C2, s->enc, C3, 0, &m->enc_w[3], m->enc_b[3]);
    // LSTM input product: gx = W_ih x + b_ih
    for (int f = 0; f < nf; f++) {
        s->xr[f] = s->enc + (size_t)f * C3;
        s->yr[f] = s->gx + (size_t)f * GATES;
    }
    gemm_rows(s->yr, s->xr, nf, &m->w_ih, m->b_ih, 0);
}

// The sequential part: one LSTM step per frame, then the output layer
// (ReLU, rounded to half, 1x1 conv, sigmoid).
static void lstm_block(const am_vad_model *m, scratch *s, int nf, float *probs) {
    for (int f = 0; f < nf; f++) {
        const float *h = s->h;
        gemm_rows(&s->gh, &h, 1, &m->w_hh, m->b_hh, 0);
        lstm_cell(s->h, s->c, s->hr, s->gx + (size_t)f * GATES, s->gh);
        round_f16(s->hr, HID);
        float dot = 0;
        for (int j = 0; j < HID; j++) dot += s->hr[j] * m->out_w[j];
        probs[f] = sigmoid_f(dot + m->out_b);
    }
}

size_t am_vad_n_frames(size_t n_samples) { return n_samples / WIN + (n_samples % WIN != 0); }

int am_vad_probs(const am_vad_model *m, const float *samples, size_t n_samples, float *probs) {
    if (!m || (n_samples && (!samples || !probs))) return am_set_error(AM_EINVAL, "am_vad_probs: NULL argument");
    const size_t n_frames = am_vad_n_frames(n_samples);
    if (!n_frames) return 0;
    scratch s;
    int rc = scratch_init(&s);
    if (rc) return rc;
    for (size_t f0 = 0; f0 < n_frames; f0 += FB) {
        const int nf = (int)AM_MIN((size_t)FB, n_frames - f0);
        load_frames(&s, samples, n_samples, f0, nf);
        encode_block(m, &s, nf);
        lstm_block(m, &s, nf, probs + f0);
    }
    am_free(s.mem);
    return 0;
}

// ---------------------------------------------------------------- parameters
am_vad_params am_vad_default_params(void) {
    return (am_vad_params){
        .threshold = 0.5f,
        .min_speech_ms = 250,
        .min_silence_ms = 100,
        .max_speech_s = 0.0f,
        .speech_pad_ms = 30,
        .samples_overlap_s = 0.1f,
    };
}

static int check_ms(const char *what, int v, int hi) {
    if (v < 0 || v > hi) return am_set_error(AM_EINVAL, "VAD %s = %d out of range [0, %d]", what, v, hi);
    return 0;
}

int am_vad_check_params(const am_vad_params *p) {
    if (!p) return am_set_error(AM_EINVAL, "VAD parameters are NULL");
    if (!(p->threshold > 0.0f && p->threshold < 1.0f))
        return am_set_error(AM_EINVAL, "VAD threshold = %g out of range (0, 1)", p->threshold);
    if (check_ms("min_speech_ms", p->min_speech_ms, 3600000) ||
        check_ms("min_silence_ms", p->min_silence_ms, 3600000) || check_ms("speech_pad_ms", p->speech_pad_ms, 60000))
        return AM_EINVAL;
    if (!(p->max_speech_s >= 0.0f && (p->max_speech_s <= 86400.0f || p->max_speech_s == INFINITY)))
        return am_set_error(AM_EINVAL, "VAD max_speech_s = %g out of range [0, 86400] (or inf; 0 = no limit)",
                            p->max_speech_s);
    if (!(p->samples_overlap_s >= 0.0f && p->samples_overlap_s <= 10.0f))
        return am_set_error(AM_EINVAL, "VAD samples_overlap_s = %g out of range [0, 10]", p->samples_overlap_s);
    return 0;
}

// ---------------------------------------------------------------- segments
typedef struct {
    int64_t start, end; // samples
} span64;

typedef struct {
    span64 *v;
    size_t n, cap;
} span_list;

static int push(span_list *l, int64_t start, int64_t end) {
    if (l->n == l->cap) {
        const size_t cap = l->cap ? 2 * l->cap : 64;
        span64 *v = realloc(l->v, cap * sizeof *v);
        if (!v) return am_set_error(AM_ENOMEM, "out of memory for VAD segments");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (span64){start, end};
    return 0;
}

// whisper.cpp's samples_to_cs (rounding half up).
static int64_t samples_to_cs(int64_t samples) { return (int64_t)((double)samples / VAD_RATE * 100.0 + 0.5); }

// whisper.cpp's cs_to_samples.
static int64_t cs_to_samples(int64_t cs) { return (int64_t)(cs / 100.0 * VAD_RATE + 0.5); }

// The hysteresis state machine of whisper_vad_segments_from_probs, in
// samples: a segment starts at a frame >= threshold; a run of frames below
// threshold - 0.15 that lasts min_silence ends it (kept when longer than
// min_speech); a segment longer than max_speech is cut at the start of the
// last silence of over 98 ms, or right here when there was none.
static int raw_segments(const float *probs, size_t n_frames, const am_vad_params *p, span_list *out) {
    const float threshold = p->threshold;
    const float neg_threshold = AM_MAX(threshold - 0.15f, 0.01f);
    const int64_t min_silence = (int64_t)VAD_RATE * p->min_silence_ms / 1000;
    const int64_t min_speech = (int64_t)VAD_RATE * p->min_speech_ms / 1000;
    const int64_t pad = (int64_t)VAD_RATE * p->speech_pad_ms / 1000;
    const int64_t audio_len = (int64_t)n_frames * WIN;
    const int64_t min_silence_at_max = (int64_t)VAD_RATE * 98 / 1000;
    const int64_t no_limit = INT64_MAX / 4;
    int64_t max_speech = no_limit;
    if (p->max_speech_s <= 100000.0f) { // whole seconds, less one frame and both paddings; negative = none
        max_speech = (int64_t)VAD_RATE * (int64_t)p->max_speech_s - WIN - 2 * pad;
        if (max_speech < 0) max_speech = no_limit;
    }
    int in_speech = 0, has_current = 0;
    int64_t temp_end = 0, prev_end = 0, next_start = 0, start = 0; // 0 = unset for the first three
    for (size_t i = 0; i < n_frames; i++) {
        const float prob = probs[i];
        const int64_t cur = (int64_t)i * WIN;
        if (prob >= threshold && temp_end) { // back to speech
            temp_end = 0;
            if (next_start < prev_end) next_start = cur;
        }
        if (prob >= threshold && !in_speech) {
            in_speech = has_current = 1;
            start = cur;
            continue;
        }
        if (in_speech && cur - start > max_speech) {
            if (prev_end) { // cut at the last long silence
                if (push(out, start, prev_end)) return AM_ENOMEM;
                has_current = 1;
                if (next_start < prev_end) in_speech = has_current = 0; // still silent
                else start = next_start;
                prev_end = next_start = temp_end = 0;
            } else { // no silence to cut at: cut here
                if (push(out, start, cur)) return AM_ENOMEM;
                prev_end = next_start = temp_end = 0;
                in_speech = has_current = 0;
                continue;
            }
        }
        if (prob < neg_threshold && in_speech) {
            if (!temp_end) temp_end = cur;
            if (cur - temp_end > min_silence_at_max) prev_end = temp_end;
            if (cur - temp_end < min_silence) continue;
            if (temp_end - start > min_speech && push(out, start, temp_end)) return AM_ENOMEM;
            prev_end = next_start = temp_end = 0;
            in_speech = has_current = 0;
        }
    }
    if (has_current && audio_len - start > min_speech && push(out, start, audio_len)) return AM_ENOMEM;
    return 0;
}

int am_vad_segments_from_probs(const float *probs, size_t n_frames, const am_vad_params *p, am_vad_segment **out,
                               size_t *n_out) {
    span_list l = {0};
    am_vad_segment *seg = NULL;
    int rc;
    if (!out || !n_out) return am_set_error(AM_EINVAL, "am_vad_segments_from_probs: NULL output");
    *out = NULL;
    *n_out = 0;
    if (!p || (n_frames && !probs)) return am_set_error(AM_EINVAL, "am_vad_segments_from_probs: NULL argument");
    if ((rc = am_vad_check_params(p))) return rc;
    if ((rc = raw_segments(probs, n_frames, p, &l))) goto fail;
    const int64_t audio_len = (int64_t)n_frames * WIN;
    const int64_t min_speech = (int64_t)VAD_RATE * p->min_speech_ms / 1000;
    const int64_t pad = (int64_t)VAD_RATE * p->speech_pad_ms / 1000;
    const int64_t merge_gap = (int64_t)VAD_RATE * 200 / 1000;
    // merge neighbours less than 200 ms apart, then drop those shorter than min_speech
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (n && l.v[i].start - l.v[n - 1].end < merge_gap) l.v[n - 1].end = l.v[i].end;
        else l.v[n++] = l.v[i];
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (l.v[i].end - l.v[i].start >= min_speech) l.v[kept++] = l.v[i];
    n = kept;
    // padding: the first start and the last end by pad (clamped to the audio); between two
    // segments either both by pad, or, when closer than 2 * pad, each by half the gap
    if (n && !(seg = malloc(n * sizeof *seg))) {
        rc = am_set_error(AM_ENOMEM, "out of memory for VAD segments");
        goto fail;
    }
    span64 *v = l.v;
    for (size_t i = 0; i < n; i++) {
        if (i == 0) v[i].start = v[i].start > pad ? v[i].start - pad : 0;
        if (i + 1 < n) {
            const int64_t gap = v[i + 1].start - v[i].end;
            if (gap < 2 * pad) {
                v[i].end += gap / 2;
                v[i + 1].start = v[i + 1].start > gap / 2 ? v[i + 1].start - gap / 2 : 0;
            } else {
                v[i].end = v[i].end + pad < audio_len ? v[i].end + pad : audio_len;
                v[i + 1].start = v[i + 1].start > pad ? v[i + 1].start - pad : 0;
            }
        } else {
            v[i].end = v[i].end + pad < audio_len ? v[i].end + pad : audio_len;
        }
        seg[i] = (am_vad_segment){samples_to_cs(v[i].start), samples_to_cs(v[i].end)};
    }
    free(l.v);
    *out = seg;
    *n_out = n;
    return 0;
fail:
    free(l.v);
    free(seg);
    return rc;
}

int am_vad_detect(const am_vad_model *m, const float *samples, size_t n_samples, const am_vad_params *p,
                  am_vad_segment **out, size_t *n_out) {
    const am_vad_params def = am_vad_default_params();
    float *probs = NULL;
    int rc;
    if (!out || !n_out) return am_set_error(AM_EINVAL, "am_vad_detect: NULL output");
    *out = NULL;
    *n_out = 0;
    if (!p) p = &def;
    if ((rc = am_vad_check_params(p))) return rc;
    const size_t n_frames = am_vad_n_frames(n_samples);
    if (n_frames && !(probs = malloc(n_frames * sizeof *probs))) return am_set_error(AM_ENOMEM, "out of memory");
    if (!(rc = am_vad_probs(m, samples, n_samples, probs)))
        rc = am_vad_segments_from_probs(probs, n_frames, p, out, n_out);
    free(probs);
    return rc;
}

void am_vad_segments_free(am_vad_segment *segments) { free(segments); }

// ---------------------------------------------------------------- audio spans
int am_vad_spans(am_vad_span *spans, const am_vad_segment *segments, size_t n, size_t n_samples,
                 float samples_overlap_s) {
    if (n && (!spans || !segments)) return am_set_error(AM_EINVAL, "am_vad_spans: NULL argument");
    if (!(samples_overlap_s >= 0.0f && samples_overlap_s <= 10.0f))
        return am_set_error(AM_EINVAL, "VAD samples_overlap_s = %g out of range [0, 10]", samples_overlap_s);
    const int64_t overlap = (int64_t)(samples_overlap_s * (float)VAD_RATE); // float, as whisper.cpp computes it
    const int64_t last = n_samples ? (int64_t)n_samples - 1 : 0;
    for (size_t i = 0; i < n; i++) {
        am_vad_span *s = &spans[i];
        s->start = AM_MIN(cs_to_samples(segments[i].start_cs), last);
        s->end = s->speech_end = AM_MIN(cs_to_samples(segments[i].end_cs), last);
        if (i + 1 < n) s->end = AM_MIN(s->end + overlap, last);
    }
    return 0;
}

// ---------------------------------------------------------------- transcription chunks
int am_vad_chunks(const am_vad_segment *segments, size_t n, size_t n_samples, double max_chunk_s,
                  am_vad_chunk **out, size_t *n_out) {
    if (!out || !n_out || (n && !segments)) return am_set_error(AM_EINVAL, "am_vad_chunks: NULL argument");
    *out = NULL;
    *n_out = 0;
    if (!(max_chunk_s >= 1.0 && max_chunk_s <= 3600.0))
        return am_set_error(AM_EINVAL, "VAD chunk length %g s out of range [1, 3600]", max_chunk_s);
    const int64_t limit = (int64_t)(max_chunk_s * VAD_RATE), total = (int64_t)n_samples;
    // at most one chunk per segment plus the pieces of segments longer than the limit
    size_t cap = n;
    for (size_t i = 0; i < n; i++) {
        const int64_t len = cs_to_samples(segments[i].end_cs) - cs_to_samples(segments[i].start_cs);
        if (len > limit) cap += (size_t)(len / limit) + 1;
    }
    if (cap == 0) return 0;
    am_vad_chunk *c = malloc(cap * sizeof *c);
    if (!c) return am_set_error(AM_ENOMEM, "out of memory");
    size_t k = 0;
    int64_t cur_start = -1, cur_end = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t s = AM_MIN(cs_to_samples(segments[i].start_cs), total);
        const int64_t e = AM_MIN(cs_to_samples(segments[i].end_cs), total);
        if (e <= s) continue;
        if (cur_start >= 0 && e - cur_start > limit) { // close the chunk before this segment
            c[k++] = (am_vad_chunk){cur_start, cur_end};
            cur_start = -1;
        }
        while (e - s > limit) { // a segment longer than a chunk: whole pieces of the limit
            c[k++] = (am_vad_chunk){s, s + limit};
            s += limit;
        }
        if (cur_start < 0) cur_start = AM_MAX(s, cur_end); // never overlap the previous chunk
        cur_end = e;
    }
    if (cur_start >= 0 && cur_end > cur_start) c[k++] = (am_vad_chunk){cur_start, cur_end};
    if (k == 0) {
        free(c);
        return 0;
    }
    *out = c;
    *n_out = k;
    return 0;
}
