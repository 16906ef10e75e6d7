// am_align.c — word-level timestamps: find_alignment() and
// add_word_timestamps() of openai-whisper 20250625's whisper/timing.py, with
// the tokenizer's split_to_word_tokens() and the _ALIGNMENT_HEADS table.
//
// Every step follows the reference's arithmetic: float32 attention weights
// (softmax, torch.std_mean's double Welford accumulation rounded to float,
// (w - mean) / std in float), a width-7 median filter with reflect padding,
// the float32 mean over heads, dtw_cpu's float32 cost matrix with its
// tie-breaking and backtrace, numpy's float64 jump times and means, and
// Python's string tests (`a in b` is a substring test), str.strip(), and
// numpy's round(x, 2) of the word times.
#include "am_align.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- heads
// The reference's _ALIGNMENT_HEADS (whisper/__init__.py), decoded once from
// its base85 + gzip bool arrays (n_text_layer x n_text_head, row-major) into
// the (layer, head) pairs of the true entries, in the order
// mask.to_sparse().indices() lists them.
static const am_align_head k_h_tiny_en[] = {{1, 0}, {2, 0}, {2, 5}, {3, 0}, {3, 1}, {3, 2}, {3, 3}, {3, 4}};
static const am_align_head k_h_tiny[] = {{2, 2}, {3, 0}, {3, 2}, {3, 3}, {3, 4}, {3, 5}};
static const am_align_head k_h_base_en[] = {{3, 3}, {4, 7}, {5, 1}, {5, 5}, {5, 7}};
static const am_align_head k_h_base[] = {{3, 1}, {4, 2}, {4, 3}, {4, 7}, {5, 1}, {5, 2}, {5, 4}, {5, 6}};
static const am_align_head k_h_small_en[] = {{6, 6},  {7, 0},  {7, 3},   {7, 8},  {8, 2},   {8, 5},   {8, 7},
                                             {9, 0},  {9, 4},  {9, 8},   {9, 10}, {10, 0},  {10, 1},  {10, 2},
                                             {10, 3}, {10, 6}, {10, 11}, {11, 2}, {11, 4}};
static const am_align_head k_h_small[] = {{5, 3}, {5, 9}, {8, 0}, {8, 4}, {8, 7},
                                          {8, 8}, {9, 0}, {9, 7}, {9, 9}, {10, 5}};
static const am_align_head k_h_medium_en[] = {{11, 4},  {14, 1},  {14, 12}, {14, 14}, {15, 4},  {16, 0},
                                              {16, 4},  {16, 9},  {17, 12}, {17, 14}, {18, 7},  {18, 10},
                                              {18, 15}, {20, 0},  {20, 3},  {20, 9},  {20, 14}, {21, 12}};
static const am_align_head k_h_medium[] = {{13, 15}, {15, 4}, {15, 15}, {16, 1}, {20, 0}, {23, 4}};
static const am_align_head k_h_large_v1[] = {{9, 19},  {11, 2},  {11, 4},  {11, 17}, {22, 7},
                                             {22, 11}, {22, 17}, {23, 2},  {23, 15}};
static const am_align_head k_h_large_v2[] = {{10, 12}, {13, 17}, {16, 11}, {16, 12}, {16, 13}, {17, 15},
                                             {17, 16}, {18, 4},  {18, 11}, {18, 19}, {19, 11}, {21, 2},
                                             {21, 3},  {22, 3},  {22, 9},  {22, 12}, {23, 5},  {23, 7},
                                             {23, 13}, {25, 5},  {26, 1},  {26, 12}, {27, 15}};
static const am_align_head k_h_large_v3[] = {{7, 0},  {10, 17}, {12, 18}, {13, 12}, {16, 1},
                                             {17, 14}, {19, 11}, {21, 4},  {24, 1},  {25, 6}};
static const am_align_head k_h_turbo[] = {{2, 4}, {2, 11}, {3, 3}, {3, 6}, {3, 11}, {3, 14}};

// An official checkpoint: its shapes (to recognise a model) and its heads.
typedef struct {
    const char *name;
    int32_t n_vocab;      // 51864 .en, 51865 multilingual, 51866 v3
    int32_t width;        // n_audio_state = n_text_state
    int32_t n_audio_layer, n_text_layer, n_text_head, n_mels;
    int detect;           // 0: never picked from shapes (large-v1 has large-v2's)
    const am_align_head *heads;
    int n_heads;
} checkpoint;

#define CKPT(name, voc, w, al, tl, th, mels, det, h) {name, voc, w, al, tl, th, mels, det, h, (int)AM_ARRAY_LEN(h)}
static const checkpoint k_checkpoints[] = {
    CKPT("tiny.en", 51864, 384, 4, 4, 6, 80, 1, k_h_tiny_en),
    CKPT("tiny", 51865, 384, 4, 4, 6, 80, 1, k_h_tiny),
    CKPT("base.en", 51864, 512, 6, 6, 8, 80, 1, k_h_base_en),
    CKPT("base", 51865, 512, 6, 6, 8, 80, 1, k_h_base),
    CKPT("small.en", 51864, 768, 12, 12, 12, 80, 1, k_h_small_en),
    CKPT("small", 51865, 768, 12, 12, 12, 80, 1, k_h_small),
    CKPT("medium.en", 51864, 1024, 24, 24, 16, 80, 1, k_h_medium_en),
    CKPT("medium", 51865, 1024, 24, 24, 16, 80, 1, k_h_medium),
    CKPT("large-v1", 51865, 1280, 32, 32, 20, 80, 0, k_h_large_v1),
    CKPT("large-v2", 51865, 1280, 32, 32, 20, 80, 1, k_h_large_v2),
    CKPT("large-v3", 51866, 1280, 32, 32, 20, 128, 1, k_h_large_v3),
    CKPT("large-v3-turbo", 51866, 1280, 32, 4, 20, 128, 1, k_h_turbo),
};

// The reference table's other keys.
static const struct {
    const char *alias, *name;
} k_aliases[] = {{"large", "large-v3"}, {"turbo", "large-v3-turbo"}};

static const checkpoint *checkpoint_by_name(const char *name) {
    for (size_t i = 0; i < AM_ARRAY_LEN(k_aliases); i++)
        if (strcmp(name, k_aliases[i].alias) == 0) name = k_aliases[i].name;
    for (size_t i = 0; i < AM_ARRAY_LEN(k_checkpoints); i++)
        if (strcmp(name, k_checkpoints[i].name) == 0) return &k_checkpoints[i];
    return NULL;
}

static const checkpoint *checkpoint_by_shape(const am_hparams *hp) {
    for (size_t i = 0; i < AM_ARRAY_LEN(k_checkpoints); i++) {
        const checkpoint *c = &k_checkpoints[i];
        if (c->detect && hp->n_vocab == c->n_vocab && hp->n_audio_state == c->width && hp->n_text_state == c->width &&
            hp->n_audio_layer == c->n_audio_layer && hp->n_text_layer == c->n_text_layer &&
            hp->n_text_head == c->n_text_head && hp->n_mels == c->n_mels)
            return c;
    }
    return NULL;
}

int am_align_default_heads(const am_model *m, am_align_head *out, int cap, const char **name) {
    if (!m || cap < 0 || (cap > 0 && !out)) return am_set_error(AM_EINVAL, "align: bad arguments to default_heads");
    const checkpoint *c = checkpoint_by_shape(&m->hp);
    if (name) *name = c ? c->name : "default";
    if (c) {
        for (int i = 0; i < c->n_heads && i < cap; i++) out[i] = c->heads[i];
        return c->n_heads;
    }
    // Whisper.__init__: all heads of layers n_text_layer // 2 .. n_text_layer - 1
    const int l0 = m->hp.n_text_layer / 2, n_layer = m->hp.n_text_layer, n_head = m->hp.n_text_head;
    if (n_layer < 1 || n_head < 1) return am_set_error(AM_EINVAL, "align: model has no decoder heads");
    int n = 0;
    for (int l = l0; l < n_layer; l++)
        for (int h = 0; h < n_head; h++, n++)
            if (n < cap) out[n] = (am_align_head){l, h};
    return n;
}

static int head_cmp(const void *pa, const void *pb) {
    const am_align_head *a = pa, *b = pb;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return (a->head > b->head) - (a->head < b->head);
}

// A non-negative decimal integer at *s (surrounding blanks allowed); advances *s.
static int parse_uint(const char **s, int *v) {
    const char *p = *s;
    while (*p == ' ' || *p == '\t') p++;
    if (*p < '0' || *p > '9') return -1;
    long x = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((x = x * 10 + (*p - '0')) > 1000000) return -1;
    while (*p == ' ' || *p == '\t') p++;
    *s = p;
    *v = (int)x;
    return 0;
}

int am_align_parse_heads(const am_model *m, const char *spec, am_align_head *out, int cap) {
    if (!m || !spec || cap < 0 || (cap > 0 && !out))
        return am_set_error(AM_EINVAL, "align: bad arguments to parse_heads");
    const int n_layer = m->hp.n_text_layer, n_head = m->hp.n_text_head;
    const checkpoint *c = checkpoint_by_name(spec);
    if (c) {
        for (int i = 0; i < c->n_heads; i++)
            if (c->heads[i].layer >= n_layer || c->heads[i].head >= n_head)
                return am_set_error(AM_EINVAL,
                                    "alignment heads '%s' are for %d decoder layers x %d heads; the model has %d x %d",
                                    spec, c->n_text_layer, c->n_text_head, n_layer, n_head);
        if (c->n_heads > cap) return am_set_error(AM_EINVAL, "alignment heads '%s': more than %d heads", spec, cap);
        memcpy(out, c->heads, (size_t)c->n_heads * sizeof *out);
        return c->n_heads;
    }
    // "L,H;L,H;..."
    const char *p = spec;
    int n = 0;
    for (;;) {
        int l, h;
        if (parse_uint(&p, &l) || *p++ != ',' || parse_uint(&p, &h) || (*p != ';' && *p != '\0'))
            return am_set_error(AM_EINVAL,
                                "bad alignment heads '%s' (expected a model name such as tiny.en or large-v3, "
                                "or a list \"layer,head;layer,head;...\")",
                                spec);
        if (l >= n_layer || h >= n_head)
            return am_set_error(AM_EINVAL,
                                "alignment head %d,%d is out of range: the model has %d decoder layers x %d heads", l,
                                h, n_layer, n_head);
        if (n >= cap) return am_set_error(AM_EINVAL, "alignment heads '%s': more than %d heads", spec, cap);
        out[n++] = (am_align_head){l, h};
        if (*p++ == '\0') break;
    }
    // the reference holds heads as a (layer, head) mask: sorted, each at most once
    qsort(out, (size_t)n, sizeof *out, head_cmp);
    for (int i = 1; i < n; i++)
        if (head_cmp(&out[i - 1], &out[i]) == 0)
            return am_set_error(AM_EINVAL, "alignment head %d,%d is listed twice", out[i].layer, out[i].head);
    return n;
}

// ---------------------------------------------------------------- Python helpers
// Python's `needle in hay` for strings: a substring test ("" is in every string).
// Both are valid UTF-8 here, where a byte match is a code point match.
static int py_in(const char *needle, size_t len, const char *hay) {
    return len == 0 || memmem(hay, strlen(hay), needle, len) != NULL;
}

double am_align_round2(double x) {
    if (!isfinite(x)) return x;
    // glibc prints the exact binary value rounded half-to-even, as Python's
    // round() does through _Py_dg_dtoa; strtod then rounds back correctly
    char buf[352]; // "%.2f" of +-DBL_MAX: 309 digits, sign, ".00"
    snprintf(buf, sizeof buf, "%.2f", x);
    return strtod(buf, NULL);
}

// round(t, 2) where t is a numpy float64, as in add_word_timestamps (time_offset + timing.start is
// np.float64): np.float64.__round__ is ndarray.round, i.e. rint(t * 100) / 100, which differs from
// Python's float round (am_align_round2) where t * 100 rounds onto a tie: 2.675 -> 2.68, not 2.67.
static double np_round2(double x) { return nearbyint(x * 100.0) / 100.0; }

// numpy's pairwise summation of float64 (np.add.reduce over a contiguous array).
static double np_sum(const double *a, size_t n) {
    if (n < 8) {
        double s = 0.;
        for (size_t i = 0; i < n; i++) s += a[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        size_t i;
        for (int k = 0; k < 8; k++) r[k] = a[k];
        for (i = 8; i < n - n % 8; i += 8)
            for (int k = 0; k < 8; k++) r[k] += a[i + k];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += a[i];
        return s;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_sum(a, n2) + np_sum(a + n2, n - n2);
}

// ---------------------------------------------------------------- find_alignment: weights
// Softmax over the first m positions of each row, float32 results.
// qk (n_rows, n_ctx) -> w (n_rows, m)
static void softmax_rows(const float *qk, int n_rows, int n_ctx, int m, float *w) {
    for (int i = 0; i < n_rows; i++) {
        const float *x = qk + (size_t)i * n_ctx;
        float *y = w + (size_t)i * m;
        float mx = x[0];
        for (int j = 1; j < m; j++) mx = x[j] > mx ? x[j] : mx;
        double sum = 0.;
        for (int j = 0; j < m; j++) sum += (double)(y[j] = expf(x[j] - mx));
        for (int j = 0; j < m; j++) y[j] = (float)((double)y[j] / sum);
    }
}

// torch.std_mean(w, dim=-2, unbiased=False), then w = (w - mean) / std, in
// place: per column, Welford's update in double (torch's WelfordOps, rows in
// order), mean and sqrt(m2 / n) rounded to float. std == 0 gives NaN / inf
// like the reference. w (n_rows, m); acc (2 m,) double scratch.
static void normalize_columns(float *w, int n_rows, int m, double *acc) {
    double *mean = acc, *m2 = acc + m; // (m,), (m,)
    for (int j = 0; j < m; j++) mean[j] = m2[j] = 0.;
    for (int i = 0; i < n_rows; i++) {
        const float *row = w + (size_t)i * m;
        const double nf = (double)(i + 1);
        for (int j = 0; j < m; j++) {
            const double x = row[j], delta = x - mean[j];
            mean[j] += delta / nf;
            m2[j] += delta * (x - mean[j]);
        }
    }
    for (int j = 0; j < m; j++) {
        const float mu = (float)mean[j], sd = (float)sqrt(m2[j] / (double)n_rows);
        for (int i = 0; i < n_rows; i++) {
            float *x = w + (size_t)i * m + j;
            *x = (*x - mu) / sd;
        }
    }
}

#define MEDFILT_WIDTH 7 // find_alignment's medfilt_width

// torch.sort order: ascending, NaN after everything.
static int sorts_before(float a, float b) { return !isnan(a) && (isnan(b) || a < b); }

// median_filter(x, 7) of one row: x (m,) -> y (m,). Reflect padding (the
// mirror image without repeating the edge); rows of <= 3 frames are copied
// unfiltered, as the reference returns them.
static void median_filter_row(const float *x, int m, float *y) {
    const int pad = MEDFILT_WIDTH / 2;
    if (m <= pad) {
        memcpy(y, x, (size_t)m * sizeof *y);
        return;
    }
    for (int j = 0; j < m; j++) {
        float win[MEDFILT_WIDTH];
        for (int k = 0; k < MEDFILT_WIDTH; k++) {
            int p = j - pad + k;
            p = p < 0 ? -p : p >= m ? 2 * (m - 1) - p : p; // m > pad keeps p in [0, m)
            float v = x[p];
            int q = k; // insertion sort
            for (; q > 0 && sorts_before(v, win[q - 1]); q--) win[q] = win[q - 1];
            win[q] = v;
        }
        y[j] = win[pad];
    }
}

// ---------------------------------------------------------------- find_alignment: DTW
// dtw_cpu(-matrix) + backtrace(): matrix (n, m) float32 (the values before
// negation). The path is written to text_idx / time_idx (room for n + m
// entries each) from its start; returns its length, or AM_ENOMEM. An index
// can be -1 where the path runs along row or column 0 of the cost (possible
// with NaN input), as in the reference.
static int dtw(const float *matrix, int n, int m, int *text_idx, int *time_idx) {
    const size_t w = (size_t)m + 1; // row stride of cost / trace
    float *cost = malloc((size_t)(n + 1) * w * sizeof *cost);   // (n+1, m+1)
    signed char *trace = malloc((size_t)(n + 1) * w);          // (n+1, m+1)
    if (!cost || !trace) {
        free(cost);
        free(trace);
        return am_set_error(AM_ENOMEM, "align: out of memory for a DTW of %d x %d", n, m);
    }
    for (size_t k = 0; k < (size_t)(n + 1) * w; k++) cost[k] = INFINITY;
    cost[0] = 0.f;
    for (int j = 1; j <= m; j++)
        for (int i = 1; i <= n; i++) {
            const float c0 = cost[(i - 1) * w + j - 1], c1 = cost[(i - 1) * w + j], c2 = cost[i * w + j - 1];
            float c;
            int t;
            if (c0 < c1 && c0 < c2)
                c = c0, t = 0;
            else if (c1 < c0 && c1 < c2)
                c = c1, t = 1;
            else
                c = c2, t = 2;
            // x is the float64 copy (x.double()) of -matrix; numba adds in double
            const double x = -(double)matrix[(size_t)(i - 1) * m + j - 1];
            cost[i * w + j] = (float)(x + (double)c);
            trace[i * w + j] = (signed char)t;
        }
    for (int j = 0; j <= m; j++) trace[j] = 2;
    for (int i = 0; i <= n; i++) trace[i * w] = 1;
    int len = 0, i = n, j = m;
    while (i > 0 || j > 0) { // at most n + m steps: each moves i or j towards 0
        text_idx[len] = i - 1;
        time_idx[len++] = j - 1;
        const int t = trace[i * w + j];
        if (t == 0)
            i--, j--;
        else if (t == 1)
            i--;
        else
            j--;
    }
    for (int a = 0, b = len - 1; a < b; a++, b--) { // result[::-1]
        int v = text_idx[a];
        text_idx[a] = text_idx[b], text_idx[b] = v;
        v = time_idx[a];
        time_idx[a] = time_idx[b], time_idx[b] = v;
    }
    free(cost);
    free(trace);
    return len;
}

// ---------------------------------------------------------------- split_to_word_tokens
// One word group: its text and the tokens [begin, end) of the split sequence.
typedef struct {
    char *text;
    size_t len;
    int begin, end;
} group;

static void groups_free(group *g, int n) {
    for (int i = 0; g && i < n; i++) free(g[i].text);
    free(g);
}

static size_t utf8_count(const char *s, size_t len) { // code points of valid UTF-8
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

static const char k_fffd[] = "\xef\xbf\xbd"; // U+FFFD

// split_tokens_on_unicode(tokens (n,)): a group ends where the decoded tokens
// hold no U+FFFD, or where the full text has one at the same code point. Tokens
// left over at the end are dropped, as in the reference. *out: (*n_out,) groups.
static int split_on_unicode(const am_tokenizer *tok, const int32_t *tokens, int n, group **out, int *n_out) {
    char *full = NULL, *cur = NULL;
    size_t full_len = 0, *cp = NULL; // cp (n_cp,): byte offset of each code point of full
    group *g = NULL;
    int ng = 0, rc = am_tokenizer_decode_alloc(tok, tokens, (size_t)n, AM_DECODE_ALL, &full, &full_len);
    if (rc) goto fail;
    const size_t n_cp = utf8_count(full, full_len);
    cp = malloc((n_cp + 1) * sizeof *cp);
    g = malloc((size_t)(n + 1) * sizeof *g);
    if (!cp || !g) goto oom;
    for (size_t b = 0, k = 0; b < full_len; b++)
        if (((unsigned char)full[b] & 0xc0) != 0x80) cp[k++] = b;
    size_t offset = 0; // unicode_offset
    int begin = 0;
    for (int t = 0; t < n; t++) {
        size_t len;
        if ((rc = am_tokenizer_decode_alloc(tok, tokens + begin, (size_t)(t + 1 - begin), AM_DECODE_ALL, &cur, &len)))
            goto fail;
        const char *r = memmem(cur, len, k_fffd, 3);
        int ends = !r;
        if (r) { // decoded_full[unicode_offset + decoded.index("\ufffd")] == "\ufffd"
            const size_t at = offset + utf8_count(cur, (size_t)(r - cur));
            // (an index past the end raises IndexError in the reference; here it does not end the word)
            ends = at < n_cp && full_len - cp[at] >= 3 && memcmp(full + cp[at], k_fffd, 3) == 0;
        }
        if (ends) {
            g[ng++] = (group){cur, len, begin, t + 1};
            offset += utf8_count(cur, len);
            begin = t + 1;
        } else {
            free(cur);
        }
        cur = NULL;
    }
    free(full);
    free(cp);
    *out = g;
    *n_out = ng;
    return 0;
oom:
    rc = am_set_error(AM_ENOMEM, "align: word split of %d tokens", n);
fail:
    free(full);
    free(cur);
    free(cp);
    groups_free(g, ng);
    return rc;
}

// string.punctuation
static const char k_punctuation[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

// split_tokens_on_spaces(): unicode groups, each appended to the previous word
// unless it is special, starts with a space or strips to (a substring of)
// punctuation, or is the first.
static int split_on_spaces(const am_tokenizer *tok, const int32_t *tokens, int n, int32_t eot, group **out,
                           int *n_out) {
    group *g;
    int ng, rc = split_on_unicode(tok, tokens, n, &g, &ng);
    if (rc) return rc;
    int nw = 0; // words so far, merged in place at the front of g
    for (int k = 0; k < ng; k++) {
        const char *s = g[k].text;
        const size_t slen = am_str_strip(&s, g[k].len);
        const int special = tokens[g[k].begin] >= eot, with_space = g[k].text[0] == ' ';
        if (special || with_space || py_in(s, slen, k_punctuation) || nw == 0) {
            g[nw++] = g[k];
            continue;
        }
        group *w = &g[nw - 1];
        char *t = realloc(w->text, w->len + g[k].len + 1);
        if (!t) { // g[0, nw) are words, g[nw, k) moved or merged, g[k, ng) not yet seen
            for (int i = k; i < ng; i++) free(g[i].text);
            groups_free(g, nw);
            return am_set_error(AM_ENOMEM, "align: word split");
        }
        memcpy(t + w->len, g[k].text, g[k].len + 1);
        w->text = t;
        w->len += g[k].len;
        w->end = g[k].end; // groups are contiguous
        free(g[k].text);
    }
    *out = g;
    *n_out = nw;
    return 0;
}

static int is_unicode_split_language(const char *lang) {
    static const char *const k_langs[] = {"zh", "ja", "th", "lo", "my", "yue"};
    for (size_t i = 0; lang && i < AM_ARRAY_LEN(k_langs); i++)
        if (strcmp(lang, k_langs[i]) == 0) return 1;
    return 0;
}

// ---------------------------------------------------------------- find_alignment
void am_words_free(am_word *w, int n) {
    for (int i = 0; w && i < n; i++) {
        free(w[i].word);
        free(w[i].tokens);
    }
    free(w);
}

int am_align_find(const am_align_input *in, am_word **words, int *n_words) {
    if (!words || !n_words) return am_set_error(AM_EINVAL, "align: no output");
    *words = NULL;
    *n_words = 0;
    if (!in || !in->tok || in->n_text < 0 || (in->n_text > 0 && !in->text_tokens))
        return am_set_error(AM_EINVAL, "align: bad input");
    if (in->n_text == 0) return 0; // find_alignment: no text, no words
    const int n_text = in->n_text, n_sot = in->n_sot, n_rows = in->n_rows, n_heads = in->n_heads;
    if (!in->qk || !in->probs || n_sot < 0 || n_rows != n_sot + n_text + 2 || n_heads < 1 || in->n_audio_ctx < 1)
        return am_set_error(AM_EINVAL, "align: bad scores: %d heads x %d rows (want %d) x %d positions", n_heads,
                            n_rows, n_sot + n_text + 2, in->n_audio_ctx);
    if (in->num_frames / 2 < 1) return am_set_error(AM_EINVAL, "align: %d frames of audio", in->num_frames);
    const int32_t eot = am_tokenizer_specials(in->tok)->eot;
    for (int i = 0; i < n_text; i++)
        if (in->text_tokens[i] < 0 || in->text_tokens[i] >= eot)
            return am_set_error(AM_EINVAL, "align: token %d is not a text token", (int)in->text_tokens[i]);
    const int m = AM_MIN(in->num_frames / 2, in->n_audio_ctx); // weights[:, :, :num_frames // 2]
    const int n = n_text + 1;                                   // rows of <|notimestamps|> and the text

    float *w = malloc((size_t)n_rows * m * sizeof *w);  // (n_rows, m) one head's weights
    float *mat = calloc((size_t)n * m, sizeof *mat);    // (n, m) sum, then mean over heads
    float *row = malloc((size_t)m * sizeof *row);       // (m,) a filtered row
    double *acc = malloc((size_t)2 * m * sizeof *acc);  // (2, m) column statistics
    int *text_idx = malloc((size_t)(n + m) * sizeof *text_idx), *time_idx = malloc((size_t)(n + m) * sizeof *time_idx);
    double *jump_times = malloc((size_t)(n + m) * sizeof *jump_times);
    int32_t *seq = malloc((size_t)(n_text + 1) * sizeof *seq); // (n_text + 1,) text_tokens + [eot]
    double *probs = malloc((size_t)n_text * sizeof *probs);    // (n_text,) as Python floats
    group *g = NULL;
    am_word *out = NULL;
    int ng = 0, nw = 0, rc = 0;
    if (!w || !mat || !row || !acc || !text_idx || !time_idx || !jump_times || !seq || !probs) goto oom;

    for (int h = 0; h < n_heads; h++) {
        softmax_rows(in->qk + (size_t)h * n_rows * in->n_audio_ctx, n_rows, in->n_audio_ctx, m, w);
        normalize_columns(w, n_rows, m, acc);
        for (int i = 0; i < n; i++) { // only rows [n_sot, n_rows - 1) reach the matrix
            median_filter_row(w + (size_t)(n_sot + i) * m, m, row);
            float *dst = mat + (size_t)i * m;
            for (int j = 0; j < m; j++) dst[j] += row[j]; // float32, heads in order
        }
    }
    for (size_t k = 0; k < (size_t)n * m; k++) mat[k] /= (float)n_heads;

    const int n_path = dtw(mat, n, m, text_idx, time_idx);
    if (n_path < 0) {
        rc = n_path;
        goto fail;
    }
    // jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1); jump_times = time_indices[jumps] / 50
    int n_jumps = 0;
    for (int k = 0; k < n_path; k++)
        if (k == 0 || text_idx[k] != text_idx[k - 1]) jump_times[n_jumps++] = (double)time_idx[k] / 50.0;

    memcpy(seq, in->text_tokens, (size_t)n_text * sizeof *seq);
    seq[n_text] = eot;
    rc = is_unicode_split_language(in->language) ? split_on_unicode(in->tok, seq, n_text + 1, &g, &ng)
                                                 : split_on_spaces(in->tok, seq, n_text + 1, eot, &g, &ng);
    if (rc) goto fail;
    if (ng <= 1) goto done; // only eot: no words

    // word k spans tokens [begin, end) = [word_boundaries[k], word_boundaries[k + 1]); the last group
    // (eot) only closes the previous word
    out = calloc((size_t)ng - 1, sizeof *out); // (ng - 1,) zeroed: a failure frees them all
    if (!out) goto oom;
    for (int i = 0; i < n_text; i++) probs[i] = in->probs[i];
    for (int k = 0; k < ng - 1; k++, nw++) {
        const int b = g[k].begin, e = g[k].end;
        if (e >= n_jumps || e > n_text) {
            rc = am_set_error(AM_EINTERNAL, "align: word boundary %d beyond %d jumps", e, n_jumps);
            goto fail;
        }
        am_word *o = &out[k];
        o->tokens = malloc((size_t)(e - b) * sizeof *o->tokens);
        if (!o->tokens) goto oom;
        memcpy(o->tokens, seq + b, (size_t)(e - b) * sizeof *o->tokens);
        o->n_tokens = e - b;
        o->word = g[k].text;
        g[k].text = NULL;
        o->start = jump_times[b];
        o->end = jump_times[e];
        o->probability = np_sum(probs + b, (size_t)(e - b)) / (double)(e - b);
    }
done:
    *words = out;
    *n_words = nw;
    out = NULL;
    rc = 0;
    goto cleanup;
oom:
    rc = am_set_error(AM_ENOMEM, "align: out of memory for %d tokens x %d frames", n_text, m);
fail:
    am_words_free(out, out ? ng - 1 : 0);
    out = NULL;
cleanup:
    free(w);
    free(mat);
    free(row);
    free(acc);
    free(text_idx);
    free(time_idx);
    free(jump_times);
    free(seq);
    free(probs);
    groups_free(g, ng);
    return rc;
}

float am_align_token_prob(const float *row, int n_text_vocab, int32_t token) {
    if (!row || n_text_vocab < 1 || token < 0 || token >= n_text_vocab) return NAN;
    float mx = row[0];
    for (int i = 1; i < n_text_vocab; i++) mx = row[i] > mx ? row[i] : mx;
    double sum = 0.;
    for (int i = 0; i < n_text_vocab; i++) sum += (double)expf(row[i] - mx);
    return (float)((double)expf(row[token] - mx) / sum);
}

// ---------------------------------------------------------------- add_word_timestamps
// Merge `from` into its neighbour `to`: to's text / tokens become from + to
// (prepend) or to + from (append); `from` is left as word "" with no tokens.
static int merge_into(am_word *from, am_word *to, int prepend) {
    char *text = malloc(strlen(from->word) + strlen(to->word) + 1);
    int32_t *tokens = malloc(((size_t)from->n_tokens + to->n_tokens + 1) * sizeof *tokens);
    if (!text || !tokens) {
        free(text);
        free(tokens);
        return am_set_error(AM_ENOMEM, "align: merging punctuation");
    }
    const am_word *a = prepend ? from : to, *b = prepend ? to : from; // a + b
    strcpy(text, a->word);
    strcat(text, b->word);
    if (a->n_tokens) memcpy(tokens, a->tokens, (size_t)a->n_tokens * sizeof *tokens); // a merged-away word has none
    if (b->n_tokens) memcpy(tokens + a->n_tokens, b->tokens, (size_t)b->n_tokens * sizeof *tokens);
    free(to->word);
    free(to->tokens);
    to->word = text;
    to->tokens = tokens;
    to->n_tokens = a->n_tokens + b->n_tokens;
    from->word[0] = '\0';
    free(from->tokens);
    from->tokens = NULL;
    from->n_tokens = 0;
    return 0;
}

// add_word_timestamps' default prepend_punctuations / append_punctuations and its sentence end marks
static const char k_prepended[] = "\"'\xe2\x80\x9c\xc2\xbf([{-"; // "'“¿([{-
// "'.。,，!！?？:：”)]}、
static const char k_appended[] = "\"'.\xe3\x80\x82,\xef\xbc\x8c!\xef\xbc\x81?\xef\xbc\x9f:\xef\xbc\x9a"
                                 "\xe2\x80\x9d)]}\xe3\x80\x81";
static const char k_sentence_end[] = ".\xe3\x80\x82!\xef\xbc\x81?\xef\xbc\x9f"; // .。!！?？

// merge_punctuations(alignment, prepended, appended) with the default sets.
static int merge_punctuations(am_word *a, int n) {
    for (int i = n - 2, j = n - 1; i >= 0; i--) {
        am_word *prev = &a[i], *next = &a[j];
        const char *s = prev->word;
        const size_t slen = am_str_strip(&s, strlen(prev->word));
        if (prev->word[0] == ' ' && py_in(s, slen, k_prepended)) {
            if (merge_into(prev, next, 1)) return AM_ENOMEM;
        } else {
            j = i;
        }
    }
    for (int i = 0, j = 1; j < n; j++) {
        am_word *prev = &a[i], *next = &a[j];
        const size_t plen = strlen(prev->word);
        if (!(plen && prev->word[plen - 1] == ' ') && py_in(next->word, strlen(next->word), k_appended)) {
            if (merge_into(next, prev, 0)) return AM_ENOMEM;
        } else {
            i = j;
        }
    }
    return 0;
}

static int dbl_cmp(const void *pa, const void *pb) { // ascending, NaN last (a total order for qsort)
    const double a = *(const double *)pa, b = *(const double *)pb;
    if (isnan(a) || isnan(b)) return !!isnan(a) - !!isnan(b);
    return (a > b) - (a < b);
}

// Python's max(a, b) / min(a, b): the first unless the second compares greater / less.
static double py_max(double a, double b) { return b > a ? b : a; }
static double py_min(double a, double b) { return b < a ? b : a; }

int am_align_add_word_timestamps(am_align_segment *segs, int n_segs, am_word *words, int n_words, int32_t eot,
                                 double time_offset, double last_speech_timestamp) {
    double *dur = NULL;
    int rc = 0;
    if (n_segs < 0 || n_words < 0 || (n_segs > 0 && !segs) || (n_words > 0 && !words)) {
        rc = am_set_error(AM_EINVAL, "align: bad segments / words");
        goto cleanup;
    }
    for (int s = 0; s < n_segs; s++) segs[s].words = NULL, segs[s].n_words = 0;
    if (n_segs == 0) goto cleanup;

    // median of the nonzero word durations (np.median: mean of the middle two)
    if (n_words > 0 && !(dur = malloc((size_t)n_words * sizeof *dur))) goto oom;
    int n_dur = 0, any_nan = 0;
    for (int i = 0; i < n_words; i++) {
        const double d = words[i].end - words[i].start;
        if (d != 0) dur[n_dur++] = d, any_nan |= isnan(d);
    }
    double median = 0.0;
    if (n_dur > 0) {
        qsort(dur, (size_t)n_dur, sizeof *dur, dbl_cmp);
        median = any_nan ? NAN : n_dur % 2 ? dur[n_dur / 2] : (dur[n_dur / 2 - 1] + dur[n_dur / 2]) / 2;
    }
    const double median_duration = py_min(0.7, median), max_duration = median_duration * 2;

    // truncate long words at sentence boundaries (`word in ".。!！?？"` is a substring test)
    if (n_dur > 0)
        for (int i = 1; i < n_words; i++) {
            am_word *wi = &words[i];
            if (wi->end - wi->start > max_duration) {
                if (py_in(wi->word, strlen(wi->word), k_sentence_end))
                    wi->end = wi->start + max_duration;
                else if (py_in(words[i - 1].word, strlen(words[i - 1].word), k_sentence_end))
                    wi->start = wi->end - max_duration;
            }
        }
    if ((rc = merge_punctuations(words, n_words))) goto fail;

    int wi = 0; // word_index
    for (int s = 0; s < n_segs; s++) {
        am_align_segment *seg = &segs[s];
        int n_seg_text = 0;
        for (int k = 0; seg->tokens && k < seg->n_tokens; k++) n_seg_text += seg->tokens[k] < eot;
        // the words this segment takes: until their tokens cover its text tokens
        int w_end = wi, n_out = 0;
        for (int saved = 0; w_end < n_words && saved < n_seg_text; w_end++) {
            n_out += words[w_end].word[0] != '\0';
            saved += words[w_end].n_tokens;
        }
        am_word *ws = n_out ? malloc((size_t)n_out * sizeof *ws) : NULL;
        if (n_out && !ws) goto oom;
        for (int k = 0; wi < w_end; wi++) {
            if (words[wi].word[0] == '\0') continue;
            ws[k] = words[wi];
            ws[k].start = np_round2(time_offset + words[wi].start);
            ws[k].end = np_round2(time_offset + words[wi].end);
            words[wi].word = NULL, words[wi].tokens = NULL; // moved
            k++;
        }
        seg->words = ws;
        seg->n_words = n_out;
        if (n_out == 0) continue;

        am_word *w0 = &ws[0], *w1 = n_out > 1 ? &ws[1] : NULL, *wl = &ws[n_out - 1];
        // the first and second word after a pause are not longer than twice the median
        if (w0->end - last_speech_timestamp > median_duration * 4 &&
            (w0->end - w0->start > max_duration || (w1 && w1->end - w0->start > max_duration * 2))) {
            if (w1 && w1->end - w1->start > max_duration) {
                const double boundary = py_max(w1->end / 2, w1->end - max_duration);
                w0->end = w1->start = boundary;
            }
            w0->start = py_max(0, w0->end - max_duration);
        }
        // prefer the segment-level start timestamp if the first word is too long
        if (seg->start < w0->end && seg->start - 0.5 > w0->start)
            w0->start = py_max(0, py_min(w0->end - median_duration, seg->start));
        else
            seg->start = w0->start;
        // prefer the segment-level end timestamp if the last word is too long
        if (seg->end > wl->start && seg->end + 0.5 < wl->end)
            wl->end = py_max(wl->start + median_duration, seg->end);
        else
            seg->end = wl->end;
        last_speech_timestamp = seg->end;
    }
    goto cleanup;
oom:
    rc = am_set_error(AM_ENOMEM, "align: word timestamps of %d words", n_words);
fail:
    for (int s = 0; s < n_segs; s++) {
        am_words_free(segs[s].words, segs[s].n_words);
        segs[s].words = NULL, segs[s].n_words = 0;
    }
cleanup:
    am_words_free(words, n_words); // consumed: moved entries are NULL
    free(dur);
    return rc;
}
