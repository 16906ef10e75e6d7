// test_align.c — word timestamps (am_align) against openai-whisper 20250625's
// timing.py: DTW and its tie rule, the median filter, the column
// normalisation, Python's round(x, 2) and string tests, the word split with
// the real tokenizer, find_alignment on constructed attention scores,
// merge_punctuations, add_word_timestamps' clamps, and the alignment heads.
//
// The module's stages are static; this program compiles am_align.c into
// itself to test them one by one (its public symbols then come from here, so
// the library's copy is never linked in).
#include "am_align.c"

#include "am_test.h"
#include "golden.h"

// ---------------------------------------------------------------- helpers
static int ran_any;

static am_model *fake_model(int32_t n_vocab, int32_t width, int32_t n_audio_layer, int32_t n_text_layer,
                            int32_t n_text_head, int32_t n_mels) {
    static am_model m; // only hp is read
    memset(&m, 0, sizeof m);
    m.hp = (am_hparams){.n_vocab = n_vocab, .n_audio_ctx = 1500, .n_audio_state = width, .n_audio_head = n_text_head,
                        .n_audio_layer = n_audio_layer, .n_text_ctx = 448, .n_text_state = width,
                        .n_text_head = n_text_head, .n_text_layer = n_text_layer, .n_mels = n_mels};
    return &m;
}

static am_word mk_word(const char *text, int32_t token, double start, double end, double p) {
    am_word w = {strdup(text), start, end, p, malloc(sizeof(int32_t)), 1};
    w.tokens[0] = token;
    return w;
}

static int heads_equal(const am_align_head *a, int n, const am_align_head *b, int nb) {
    if (n != nb) return 0;
    for (int i = 0; i < n; i++)
        if (a[i].layer != b[i].layer || a[i].head != b[i].head) return 0;
    return 1;
}

// ---------------------------------------------------------------- Python semantics
static void test_round2(void) {
    // Python 3: round(x, 2) for each x
    static const struct {
        double x, want;
    } k[] = {
        {2.675, 2.67},        {0.125, 0.12},  {0.375, 0.38},   {7.120000000000001, 7.12}, {1.005, 1.0},
        {0.005, 0.01},        {0.015, 0.01},  {0.025, 0.03},   {-2.675, -2.67},           {12.345, 12.35},
        {30.0 + 0.58, 30.58}, {1e17, 1e17},   {2.5, 2.5},      {0.0, 0.0},                {1.115, 1.11},
    };
    for (size_t i = 0; i < AM_ARRAY_LEN(k); i++)
        CHECKF(am_align_round2(k[i].x) == k[i].want, "round(%.17g, 2) = %.17g, want %.17g", k[i].x,
               am_align_round2(k[i].x), k[i].want);
    CHECK(signbit(am_align_round2(-0.001)) && am_align_round2(-0.001) == 0.0); // -0.0 as Python
    CHECK(isinf(am_align_round2(INFINITY)) && isnan(am_align_round2(NAN)));
}

static void test_py_strings(void) {
    // `x in string.punctuation` is a substring test
    CHECK(py_in(",-", 2, k_punctuation));
    CHECK(py_in("", 0, k_punctuation));
    CHECK(!py_in(",.", 2, k_punctuation));
    CHECK(!py_in("...", 3, k_punctuation));
    CHECK(py_in("!", 1, k_sentence_end) && py_in("\xef\xbc\x81", 3, k_sentence_end) && py_in("", 0, k_sentence_end));
    CHECK(!py_in(" .", 2, k_sentence_end));
    // str.strip(): Unicode whitespace (U+3000, U+00A0, U+2009, \x1f), not U+200B
    const char *in = "\xe3\x80\x80\xc2\xa0 a b\t\x1f\xe2\x80\x89", *s = in;
    size_t n = am_str_strip(&s, strlen(in));
    CHECK(n == 3 && memcmp(s, "a b", 3) == 0);
    in = s = "\xe2\x80\x8bx";
    n = am_str_strip(&s, strlen(in));
    CHECK(n == strlen(in));
    s = "  ";
    n = am_str_strip(&s, 2);
    CHECK(n == 0);
    // numpy's pairwise sum: 8 accumulators from 8 elements on
    double a[9] = {1e16, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(np_sum(a, 7) == 1e16);     // sequential: each 1e16 + 1 rounds back to 1e16 (ties to even)
    CHECK(np_sum(a, 9) == 1e16 + 8); // ((1e16 + 1) + 2) + 4 = 1e16 + 6, then + 1 -> 1e16 + 8
    ran_any = 1;
}

// ---------------------------------------------------------------- find_alignment stages
static void test_median_filter(void) {
    float y[8];
    // reflect padding: [5 1 4 2 3] -> [2 4 1 | 5 1 4 2 3 | 2 4 1]
    const float x5[5] = {5, 1, 4, 2, 3}, want5[5] = {2, 3, 2, 3, 2};
    median_filter_row(x5, 5, y);
    CHECK(memcmp(y, want5, sizeof want5) == 0);
    // 4 frames (> 3): [1 2 3 4] -> [4 3 2 | 1 2 3 4 | 3 2 1]
    const float x4[4] = {1, 2, 3, 4}, want4[4] = {3, 3, 2, 2};
    median_filter_row(x4, 4, y);
    CHECK(memcmp(y, want4, sizeof want4) == 0);
    // 3 frames or fewer: unfiltered
    const float x3[3] = {9, -1, 4};
    median_filter_row(x3, 3, y);
    CHECK(memcmp(y, x3, sizeof x3) == 0);
    // NaN sorts last as in torch.sort: one NaN in a window leaves the median a number, four make it NaN
    const float xn[5] = {NAN, 0, 0, 0, 0};
    median_filter_row(xn, 5, y);
    CHECK(y[0] == 0 && y[4] == 0);
    const float xn4[5] = {NAN, NAN, NAN, NAN, 1};
    median_filter_row(xn4, 5, y);
    CHECK(isnan(y[0]) && isnan(y[3]));
    ran_any = 1;
}

static void test_normalize(void) {
    // columns (population std): [1 2 3] -> mean 2, std sqrt(2/3) -> -1.2247449, 0, 1.2247449;
    // [4 4 4] -> std 0 -> NaN (0 / 0) as the reference; [0 0 6] -> mean 2, std 2.8284271
    float w[9] = {1, 4, 0, 2, 4, 0, 3, 4, 6}; // (3 rows, 3 columns)
    double acc[6];
    normalize_columns(w, 3, 3, acc);
    CHECK(fabsf(w[0] + 1.2247449f) < 1e-6f && w[3] == 0.0f && fabsf(w[6] - 1.2247449f) < 1e-6f);
    CHECK(isnan(w[1]) && isnan(w[4]) && isnan(w[7]));
    CHECK(fabsf(w[2] + 0.70710678f) < 1e-6f && fabsf(w[8] - 1.41421356f) < 1e-6f);
    ran_any = 1;
}

// Run dtw() on matrix (n, m) and compare the path with want (pairs text, time).
static void check_dtw(const char *name, const float *matrix, int n, int m, const int *want, int n_want) {
    int ti[64], tj[64];
    const int len = dtw(matrix, n, m, ti, tj);
    int ok = len == n_want;
    for (int k = 0; ok && k < len; k++) ok = ti[k] == want[2 * k] && tj[k] == want[2 * k + 1];
    CHECKF(ok, "%s: path of %d steps differs", name, len);
    if (!ok)
        for (int k = 0; k < len; k++) fprintf(stderr, "  (%d, %d)\n", ti[k], tj[k]);
}

static void test_dtw(void) {
    // x = -[[1 0] [0 1]]: cost[1,1] = -1, cost[2,1] = -1 (t=1), cost[1,2] = -1 (t=2); at (2,2) c0 = c1 = c2 =
    // -1: no strict minimum, so t = 2 (left), not the diagonal
    const float tie[4] = {1, 0, 0, 1};
    const int want_tie[] = {0, 0, 1, 0, 1, 1};
    check_dtw("tie", tie, 2, 2, want_tie, 3);
    // c0 = c1 = -1 < c2 = 0 at (2,2): still no strict minimum, t = 2 (not up)
    const float tie01[4] = {1, 0, -1, 1};
    check_dtw("tie c0 = c1", tie01, 2, 2, want_tie, 3);
    // a clear staircase
    const float stairs[12] = {5, -1, -1, -1, -1, 5, 5, -1, -1, -1, -1, 5};
    const int want_stairs[] = {0, 0, 1, 1, 1, 2, 2, 3};
    check_dtw("stairs", stairs, 3, 4, want_stairs, 4);
    // the same with zeros off the staircase: zero-cost cells tie the diagonal. Cost (1-based):
    // (2,2) sees c0 = c1 = c2 = -5 and (3,4) c0 = c1 = c2 = -15: both go left (t=2); (3,3) has
    // c1 = -15 < c0 = c2 = -10: up. The backtrace (3,4) (3,3) (2,3) (2,2) (2,1) (1,1) takes the zeros.
    const float stairs0[12] = {5, 0, 0, 0, 0, 5, 5, 0, 0, 0, 0, 5};
    const int want_stairs0[] = {0, 0, 1, 0, 1, 1, 1, 2, 2, 2, 2, 3};
    check_dtw("stairs with zeros", stairs0, 3, 4, want_stairs0, 6);
    // float32 cost: -1e8 - 2 and -1e8 - 1 both round to -1e8, so (2,2) sees a three-way tie (t=2 -> path
    // (0,0) (1,0) (1,1)); in double c1 < c2 < c0 would go up (t=1 -> (0,0) (0,1) (1,1))
    const float f32[4] = {1e8f, 2, 1, 0};
    const int want_f32[] = {0, 0, 1, 0, 1, 1};
    check_dtw("float32 cost", f32, 2, 2, want_f32, 3);
    // one row: straight along the time axis
    const float row[3] = {1, 2, 3};
    const int want_row[] = {0, 0, 0, 1, 0, 2};
    check_dtw("one row", row, 1, 3, want_row, 3);
    // NaN (std == 0 upstream): every comparison fails, t = 2 throughout; the backtrace runs left to
    // column 0, then up along trace[:, 0] = 1 (text indices 0 .. n-1 at time -1)
    const float nan4[4] = {NAN, NAN, NAN, NAN};
    const int want_nan[] = {0, -1, 1, -1, 1, 0, 1, 1};
    check_dtw("NaN", nan4, 2, 2, want_nan, 4);
    ran_any = 1;
}

static void test_token_prob(void) {
    const float row[4] = {1, 2, 3, 100}; // the last id is past n_text_vocab
    CHECK(fabsf(am_align_token_prob(row, 3, 2) - 0.66524096f) < 1e-7f);
    CHECK(fabsf(am_align_token_prob(row, 3, 0) - 0.09003057f) < 1e-7f);
    CHECK(isnan(am_align_token_prob(row, 3, 3)) && isnan(am_align_token_prob(NULL, 3, 0)));
    ran_any = 1;
}

// ---------------------------------------------------------------- word split
// Split ids + [eot] and compare the group texts (NULL-terminated list) and, when given, group sizes.
static void check_split(const am_tokenizer *tok, const char *lang, const int32_t *ids, int n, const char *const *want,
                        const int *want_sizes) {
    const int32_t eot = am_tokenizer_specials(tok)->eot;
    int32_t seq[64];
    memcpy(seq, ids, (size_t)n * sizeof *seq);
    seq[n] = eot;
    group *g = NULL;
    int ng = 0;
    int rc = is_unicode_split_language(lang) ? split_on_unicode(tok, seq, n + 1, &g, &ng)
                                             : split_on_spaces(tok, seq, n + 1, eot, &g, &ng);
    CHECKF(rc == 0, "split: %s", am_last_error());
    int nw = 0;
    while (want[nw]) nw++;
    int ok = rc == 0 && ng == nw;
    for (int k = 0, at = 0; ok && k < ng; k++) {
        ok = strcmp(g[k].text, want[k]) == 0 && g[k].len == strlen(want[k]) && g[k].begin == at;
        if (want_sizes) ok = ok && g[k].end - g[k].begin == want_sizes[k];
        at = g[k].end;
    }
    CHECKF(ok, "split (%s) of %d tokens: %d groups, want %d (first: \"%s\")", lang, n, ng, nw,
           ng > 0 ? g[0].text : "");
    groups_free(g, ng);
}

static void test_split(const am_tokenizer *tok) {
    int32_t *ids = NULL;
    size_t n = 0;
    const char *text = " Hello, world. And so my fellow Americans";
    CHECK(am_tokenizer_encode(tok, text, strlen(text), &ids, &n) == 0);
    const char *const w1[] = {" Hello", ",",      " world",     ".", " And", " so", " my", " fellow",
                              " Americans", "<|endoftext|>", NULL};
    check_split(tok, "en", ids, (int)n, w1, NULL);
    free(ids);

    // words of several tokens: ' "' 'Qu' 'oted' join; '"' is punctuation; ',-' is a substring of
    // string.punctuation (a word of its own) while '?!' and '...' are not (they join the word before)
    const int32_t quoted[] = {366, 4507, 5191, 1, 257, 12095, 13, 644, 12248, 523, 986};
    const char *const w2[] = {" \"Quoted", "\"", " a", ",-", ".", " what?!", " so...", "<|endoftext|>", NULL};
    const int s2[] = {3, 1, 1, 1, 1, 2, 2, 1};
    check_split(tok, "en", quoted, 11, w2, s2);

    // multi-byte characters split across tokens: ' ' + 世 (2 tokens) + 界 (2 tokens); ' 🦜' in 3 tokens
    const int32_t cjk[] = {220, 10310, 244, 45911, 234, 12520, 99, 250};
    const char *const w3[] = {" \xe4\xb8\x96\xe7\x95\x8c", " \xf0\x9f\xa6\x9c", "<|endoftext|>", NULL};
    const int s3[] = {5, 3, 1};
    check_split(tok, "en", cjk, 8, w3, s3);

    // an invalid byte stays U+FFFD and ends its group (the full text has U+FFFD at the same place)
    const int32_t bad[] = {94, 18435};
    const char *const w4[] = {"\xef\xbf\xbd", " Hello", "<|endoftext|>", NULL};
    check_split(tok, "en", bad, 2, w4, NULL);

    // ja: split on Unicode boundaries only: こ ん に ち(2 tokens) は 世(2) 界(2)
    text = "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\xe4\xb8\x96\xe7\x95\x8c";
    CHECK(am_tokenizer_encode(tok, text, strlen(text), &ids, &n) == 0);
    const char *const w5[] = {"\xe3\x81\x93", "\xe3\x82\x93", "\xe3\x81\xab", "\xe3\x81\xa1", "\xe3\x81\xaf",
                              "\xe4\xb8\x96", "\xe7\x95\x8c", "<|endoftext|>", NULL};
    const int s5[] = {1, 1, 1, 2, 1, 2, 2, 1};
    check_split(tok, "ja", ids, (int)n, w5, s5);
    // the same tokens split on spaces: one word
    const char *const w6[] = {text, "<|endoftext|>", NULL};
    check_split(tok, "en", ids, (int)n, w6, NULL);
    free(ids);
    ran_any = 1;
}

// ---------------------------------------------------------------- find_alignment
#define BLOCK 6 // frames per matrix row in the constructed scores

// Scores in which matrix row i (<|notimestamps|>, then the text tokens) attends to frames
// [BLOCK i, BLOCK (i+1)); the sot and eot rows attend evenly; matrix row n_text - 1 has large
// scores past num_frames / 2, which must be cut off. Two heads of different sharpness.
static int run_find(const am_tokenizer *tok, const char *lang, const int32_t *ids, int n_text, const float *probs,
                    am_word **words, int *n_words, int flat) {
    const int n_sot = 1, n_rows = n_sot + n_text + 2, m = BLOCK * (n_text + 1), ctx = m + 10, n_heads = 2;
    float *qk = calloc((size_t)n_heads * n_rows * ctx, sizeof *qk); // (n_heads, n_rows, ctx)
    for (int h = 0; h < n_heads && !flat; h++)
        for (int r = 0; r < n_rows; r++) {
            float *row = qk + ((size_t)h * n_rows + r) * ctx;
            const int i = r - n_sot;
            if (i == n_text - 1) // beyond the cut: would pull this row away from its block
                for (int j = m; j < ctx; j++) row[j] = 50.f;
            if (i >= 0 && i <= n_text)
                for (int j = BLOCK * i; j < BLOCK * (i + 1); j++) row[j] = h ? 4.f : 8.f;
        }
    const am_align_input in = {tok, lang, ids, n_text, n_sot, qk, n_heads, n_rows, ctx, probs, 2 * m + 1};
    const int rc = am_align_find(&in, words, n_words);
    free(qk);
    return rc;
}

static void test_find(const am_tokenizer *tok) {
    // ' Hello' ' "' 'Qu' 'oted' '"' ' world' '.': words ' Hello', ' "Quoted', '"', ' world', '.'
    const int32_t ids[] = {18435, 366, 4507, 5191, 1, 995, 13};
    const float probs[] = {0.5f, 0.1f, 0.2f, 0.6f, 0.9f, 0.3f, 0.7f};
    am_word *w = NULL;
    int n = 0;
    int rc = run_find(tok, "en", ids, 7, probs, &w, &n, 0);
    CHECKF(rc == 0, "find: %s", am_last_error());
    // word k runs from the jump of matrix row word_boundaries[k] to that of row word_boundaries[k+1]
    // (row 0 is <|notimestamps|>): boundaries 0 1 4 5 6 7, row i starts at frame 6 i -> 0.12 i s
    const char *want[] = {" Hello", " \"Quoted", "\"", " world", "."};
    const int wb[] = {0, 1, 4, 5, 6, 7};
    CHECK(n == 5);
    for (int k = 0; k < n && k < 5; k++) {
        CHECKF(strcmp(w[k].word, want[k]) == 0, "word %d '%s'", k, w[k].word);
        CHECKF(w[k].start == BLOCK * wb[k] / 50.0 && w[k].end == BLOCK * wb[k + 1] / 50.0,
               "word %d: %.17g .. %.17g", k, w[k].start, w[k].end);
        CHECK(w[k].n_tokens == wb[k + 1] - wb[k] && w[k].tokens[0] == ids[wb[k]]);
        double mean = 0;
        for (int t = wb[k]; t < wb[k + 1]; t++) mean += (double)probs[t];
        mean /= wb[k + 1] - wb[k];
        CHECKF(fabs(w[k].probability - mean) < 1e-12, "word %d p %.17g want %.17g", k, w[k].probability, mean);
    }
    am_words_free(w, n);

    // ja on the same construction: こ ん に ち(2) は 世(2) 界(2)
    const int32_t ja[] = {46036, 22174, 28618, 2515, 94, 31676, 10310, 244, 45911, 234};
    const float pja[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    rc = run_find(tok, "ja", ja, 10, pja, &w, &n, 0);
    CHECK(rc == 0 && n == 7);
    if (rc == 0 && n == 7)
        CHECK(strcmp(w[3].word, "\xe3\x81\xa1") == 0 && w[3].n_tokens == 2 && w[3].start == BLOCK * 3 / 50.0 &&
              w[3].end == BLOCK * 5 / 50.0 && w[6].end == BLOCK * 10 / 50.0);
    am_words_free(w, n);

    // flat scores: every std is 0, the matrix all NaN; the reference's DTW then jumps at time index -1
    rc = run_find(tok, "en", ids, 7, probs, &w, &n, 1);
    CHECK(rc == 0 && n == 5);
    for (int k = 0; rc == 0 && k < n; k++) CHECK(w[k].start == -1 / 50.0 && w[k].end == -1 / 50.0);
    am_words_free(w, n);

    // edge cases: no text, too few frames, mismatched rows, a special token as text
    am_align_input in = {tok, "en", ids, 0, 1, NULL, 1, 2, 10, NULL, 20};
    w = (am_word *)&in;
    CHECK(am_align_find(&in, &w, &n) == 0 && w == NULL && n == 0);
    const float qk[3 * 4] = {0};
    in = (am_align_input){tok, "en", ids, 1, 1, qk, 1, 4, 3, probs, 1};
    CHECK(am_align_find(&in, &w, &n) == AM_EINVAL && w == NULL);
    in.num_frames = 2;
    in.n_rows = 3;
    CHECK(am_align_find(&in, &w, &n) == AM_EINVAL);
    const int32_t special[1] = {am_tokenizer_specials(tok)->eot};
    in = (am_align_input){tok, "en", special, 1, 1, qk, 1, 4, 3, probs, 6};
    CHECK(am_align_find(&in, &w, &n) == AM_EINVAL);
    // the smallest real call: 1 text token, 1 position
    in = (am_align_input){tok, "en", ids, 1, 1, qk, 1, 4, 3, probs, 2};
    CHECK(am_align_find(&in, &w, &n) == 0 && n == 1 && strcmp(w[0].word, " Hello") == 0);
    am_words_free(w, n);
    ran_any = 1;
}

// ---------------------------------------------------------------- merge_punctuations
static void check_merge(const char *const *in, int n, const char *const *want, const int *want_tokens) {
    am_word w[16];
    for (int i = 0; i < n; i++) w[i] = mk_word(in[i], i, 0, 0, 0);
    CHECK(merge_punctuations(w, n) == 0);
    int ok = 1;
    for (int i = 0; i < n; i++) {
        ok = ok && strcmp(w[i].word, want[i]) == 0 && w[i].n_tokens == want_tokens[2 * i + 1];
        if (ok && w[i].n_tokens) ok = w[i].tokens[0] == want_tokens[2 * i];
        if (!ok) fprintf(stderr, "  word %d: '%s' (%d tokens)\n", i, w[i].word, w[i].n_tokens);
        free(w[i].word);
        free(w[i].tokens);
    }
    CHECKF(ok, "merge_punctuations of '%s' ...", in[0]);
}

static void test_merge(void) {
    // expected values: the reference's merge_punctuations run on the same words
    // (pairs: first token, token count)
    const char *const a[] = {" \"", " Hello", ",", " (", " world", ")", "."};
    const char *const wa[] = {"", " \" Hello,", "", "", " ( world).", "", ""};
    const int ta[] = {0, 0, 0, 3, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0};
    check_merge(a, 7, wa, ta);
    // a merged-away "" is in `appended`: merging it is a no-op and i stays on " Hello"
    const char *const b[] = {" Hello", " \"", "."};
    const char *const wb[] = {" Hello", "", " \"."};
    const int tb[] = {0, 1, 0, 0, 1, 2};
    check_merge(b, 3, wb, tb);
    // Unicode sets; " " strips to "" (in prepended); '?' and '”' append in turn
    const char *const c[] = {" \xe2\x80\x9c", "\xc2\xbf", " Qu\xc3\xa9", "?", "\xe2\x80\x9d", " ", "x", "\xe3\x80\x81"};
    const char *const wc[] = {"",   " \xe2\x80\x9c\xc2\xbf", " Qu\xc3\xa9?\xe2\x80\x9d", "", "", "",
                              " x\xe3\x80\x81", ""};
    const int tc[] = {0, 0, 0, 2, 2, 3, 0, 0, 0, 0, 0, 0, 5, 3, 0, 0};
    check_merge(c, 8, wc, tc);
    ran_any = 1;
}

// ---------------------------------------------------------------- add_word_timestamps
typedef struct {
    const char *word;
    double start, end;
} want_word;

static void check_segment(const am_align_segment *s, double start, double end, const want_word *w, int n) {
    int ok = s->start == start && s->end == end && s->n_words == n;
    for (int i = 0; ok && i < n; i++)
        ok = strcmp(s->words[i].word, w[i].word) == 0 && s->words[i].start == w[i].start &&
             s->words[i].end == w[i].end;
    CHECKF(ok, "segment %.17g..%.17g (want %g..%g), %d words (want %d)", s->start, s->end, start, end, s->n_words, n);
    for (int i = 0; !ok && i < s->n_words; i++)
        fprintf(stderr, "  '%s' %.17g %.17g\n", s->words[i].word, s->words[i].start, s->words[i].end);
}

static void free_segments(am_align_segment *s, int n) {
    for (int i = 0; i < n; i++) am_words_free(s[i].words, s[i].n_words);
}

static void test_add_word_timestamps(void) {
    const int32_t eot = 50256;
    // A. nonzero durations 0.4 0.3 0.3 0.85 0.3 1.0 (" ok" has none): median (0.3 + 0.4) / 2 = 0.35,
    // max 0.7. " The" (0.85) follows "." (a sentence end): start = 1.85 - 0.7 = 1.15; "!" (1.0) is one:
    // end = 2.15 + 0.7 = 2.85. "." appends to " world"; "!" does not append to " end " (ends with a
    // space). Segment 0 takes ' Hello' ' world.' (3 tokens); segment 1 skips the "" left by "." and
    // takes ' The' ' end ' '!' ' ok'; segment 2 has no text tokens. Times + 10.0, rounded; no pause
    // (11.85 - 10.7 <= 4 x 0.35) and no segment-level preference: segments take their words' times.
    am_word *w = malloc(7 * sizeof *w);
    w[0] = mk_word(" Hello", 10, 0.0, 0.4, 0.9);
    w[1] = mk_word(" world", 11, 0.4, 0.7, 0.8);
    w[2] = mk_word(".", 12, 0.7, 1.0, 0.7);
    w[3] = mk_word(" The", 13, 1.0, 1.85, 0.6);
    w[4] = mk_word(" end ", 14, 1.85, 2.15, 0.5);
    w[5] = mk_word("!", 15, 2.15, 3.15, 0.4);
    w[6] = mk_word(" ok", 16, 3.15, 3.15, 0.3);
    const int32_t t0[] = {50364, 10, 11, 12, 50464}, t1[] = {50464, 13, 14, 15, 16, 50564}, t2[] = {50564, 50589};
    am_align_segment s[3] = {{10.0, 12.0, t0, 5, NULL, 0}, {10.9, 14.0, t1, 6, NULL, 0}, {14.0, 14.5, t2, 2, NULL, 0}};
    CHECK(am_align_add_word_timestamps(s, 3, w, 7, eot, 10.0, 9.0) == 0);
    const want_word a0[] = {{" Hello", 10.0, 10.4}, {" world.", 10.4, 10.7}};
    const want_word a1[] = {{" The", 11.15, 11.85}, {" end ", 11.85, 12.15}, {"!", 12.15, 12.85},
                            {" ok", 13.15, 13.15}};
    check_segment(&s[0], 10.0, 10.7, a0, 2);
    check_segment(&s[1], 11.15, 13.15, a1, 4);
    check_segment(&s[2], 14.0, 14.5, NULL, 0);
    CHECK(s[0].n_words == 2 && s[0].words[1].n_tokens == 2 && s[0].words[1].tokens[1] == 12 &&
          s[0].words[1].probability == 0.8);
    free_segments(s, 3);

    // B. after a pause: durations 2 2 0.25 0.25 0.25 -> median 0.25, max 0.5; ' So' ends 2.5 s after the
    // last speech (> 4 x 0.25) and is longer than 0.5; ' long' too: boundary = max(5.0 / 2, 5.0 - 0.5)
    // = 4.5 ends ' So' and starts ' long'; ' So' starts at 4.5 - 0.5 = 4.0. The segment start 4.35 is not
    // 0.5 past the word start: the segment takes 4.0; its end 5.1 is before the last word: takes 5.75.
    w = malloc(5 * sizeof *w);
    w[0] = mk_word(" So", 1, 1.0, 3.0, 0.5);
    w[1] = mk_word(" long", 2, 3.0, 5.0, 0.5);
    w[2] = mk_word(" ago", 3, 5.0, 5.25, 0.5);
    w[3] = mk_word(" now", 4, 5.25, 5.5, 0.5);
    w[4] = mk_word(" yes", 5, 5.5, 5.75, 0.5);
    const int32_t tb[] = {1, 2, 3, 4, 5};
    am_align_segment sb = {4.35, 5.1, tb, 5, NULL, 0};
    CHECK(am_align_add_word_timestamps(&sb, 1, w, 5, eot, 0.0, 0.5) == 0);
    const want_word b[] = {{" So", 4.0, 4.5}, {" long", 4.5, 5.0}, {" ago", 5.0, 5.25}, {" now", 5.25, 5.5},
                           {" yes", 5.5, 5.75}};
    check_segment(&sb, 4.0, 5.75, b, 5);
    free_segments(&sb, 1);

    // C. durations 2 0.3 0.3 2.4 2 -> median 2 -> median_duration 0.7, max 1.4. Segment 0 (1.2 .. 3.5):
    // no pause (2.0 - 0.0 <= 2.8); the segment start 1.2 is inside the first word and 0.5 past its
    // start: ' Well' starts at max(0, min(2.0 - 0.7, 1.2)) = 1.2; the segment end 3.5 is inside the last
    // word and 0.5 before its end: ' bye' ends at max(2.6 + 0.7, 3.5) = 3.5; the segment keeps 1.2 .. 3.5.
    // Segment 1: ' again' ends 7.5 s after that (the updated last speech) and is 2 s long: starts at
    // 11.0 - 1.4 = 9.6, and the segment with it.
    w = malloc(5 * sizeof *w);
    w[0] = mk_word(" Well", 1, 0.0, 2.0, 0.5);
    w[1] = mk_word(" ok", 2, 2.0, 2.3, 0.5);
    w[2] = mk_word(" then", 3, 2.3, 2.6, 0.5);
    w[3] = mk_word(" bye", 4, 2.6, 5.0, 0.5);
    w[4] = mk_word(" again", 5, 9.0, 11.0, 0.5);
    const int32_t tc0[] = {1, 2, 3, 4}, tc1[] = {5};
    am_align_segment sc[2] = {{1.2, 3.5, tc0, 4, NULL, 0}, {9.0, 11.0, tc1, 1, NULL, 0}};
    CHECK(am_align_add_word_timestamps(sc, 2, w, 5, eot, 0.0, 0.0) == 0);
    const want_word c0[] = {{" Well", 1.2, 2.0}, {" ok", 2.0, 2.3}, {" then", 2.3, 2.6}, {" bye", 2.6, 3.5}};
    const want_word c1[] = {{" again", 9.6, 11.0}};
    check_segment(&sc[0], 1.2, 3.5, c0, 4);
    check_segment(&sc[1], 9.6, 11.0, c1, 1);
    free_segments(sc, 2);

    // E. a pause before a word that starts before 0 (last speech -5): durations 1.5 0.3 0.2 -> median
    // 0.3, max 0.6; ' a' starts at max(0, 0.5 - 0.6) = 0 (Python's max(0, x))
    w = malloc(3 * sizeof *w);
    w[0] = mk_word(" a", 1, -1.0, 0.5, 0.5);
    w[1] = mk_word(" b", 2, 0.5, 0.8, 0.5);
    w[2] = mk_word(" c", 3, 0.8, 1.0, 0.5);
    const int32_t te[] = {1, 2, 3};
    am_align_segment se0 = {0.0, 1.0, te, 3, NULL, 0};
    CHECK(am_align_add_word_timestamps(&se0, 1, w, 3, eot, 0.0, -5.0) == 0);
    const want_word e[] = {{" a", 0.0, 0.5}, {" b", 0.5, 0.8}, {" c", 0.8, 1.0}};
    check_segment(&se0, 0.0, 1.0, e, 3);
    free_segments(&se0, 1);

    // rounding: the reference rounds numpy float64s (np.round: rint(x * 100) / 100), not Python floats:
    // 2.675 * 100 is exactly 267.5 -> 2.68 (Python's round gives 2.67); 30 + 2.675 = 32.674999...,
    // times 100 = 3267.4999999999995 -> 32.67; 30 + 0.58 -> 30.58
    w = malloc(2 * sizeof *w);
    w[0] = mk_word(" x", 1, 0.58, 2.675, 0.5);
    w[1] = mk_word(" y", 2, 2.675, 2.675, 0.5);
    const int32_t td[] = {1}, td1[] = {2};
    am_align_segment sd[2] = {{30.0, 33.0, td, 1, NULL, 0}, {32.0, 33.0, td1, 1, NULL, 0}};
    CHECK(am_align_add_word_timestamps(sd, 2, w, 2, eot, 30.0, 30.0) == 0);
    CHECK(sd[0].n_words == 1 && sd[0].words[0].start == 30.58 && sd[0].words[0].end == 32.67);
    CHECK(sd[1].n_words == 1 && sd[1].words[0].start == 32.67);
    free_segments(sd, 2);
    w = malloc(sizeof *w);
    w[0] = mk_word(" z", 1, 1.0, 2.675, 0.5);
    am_align_segment sd2 = {1.0, 3.0, td, 1, NULL, 0};
    CHECK(am_align_add_word_timestamps(&sd2, 1, w, 1, eot, 0.0, 0.0) == 0);
    CHECK(sd2.n_words == 1 && sd2.words[0].end == 2.68 && am_align_round2(2.675) == 2.67);
    free_segments(&sd2, 1);

    // no segments: the words are still consumed (ASan checks the leak); no words: segments get none
    w = malloc(sizeof *w);
    w[0] = mk_word(" x", 1, 0, 1, 1);
    CHECK(am_align_add_word_timestamps(NULL, 0, w, 1, eot, 0, 0) == 0);
    am_align_segment se = {1.0, 2.0, td, 1, (am_word *)&se, 7};
    CHECK(am_align_add_word_timestamps(&se, 1, NULL, 0, eot, 0, 0) == 0 && se.words == NULL && se.n_words == 0);
    CHECK(se.start == 1.0 && se.end == 2.0);
    ran_any = 1;
}

// ---------------------------------------------------------------- heads
static void test_heads(const am_model *fixture) {
    am_align_head h[AM_ALIGN_MAX_HEADS];
    const char *name = NULL;
    // tiny.en: the reference's table
    const am_align_head tiny_en[] = {{1, 0}, {2, 0}, {2, 5}, {3, 0}, {3, 1}, {3, 2}, {3, 3}, {3, 4}};
    am_model *m = fake_model(51864, 384, 4, 4, 6, 80);
    int n = am_align_default_heads(m, h, AM_ALIGN_MAX_HEADS, &name);
    CHECK(heads_equal(h, n, tiny_en, 8) && strcmp(name, "tiny.en") == 0);
    CHECK(am_align_default_heads(m, h, 3, NULL) == 8 && h[2].layer == 2 && h[2].head == 5); // cap < count
    CHECK(am_align_parse_heads(m, "tiny.en", h, AM_ALIGN_MAX_HEADS) == 8);
    CHECK(am_align_parse_heads(m, "tiny", h, AM_ALIGN_MAX_HEADS) == 6 && h[0].layer == 2 && h[0].head == 2);
    CHECK(am_align_parse_heads(m, "large-v3", h, AM_ALIGN_MAX_HEADS) == AM_EINVAL); // does not fit
    CHECK(am_align_parse_heads(m, "tiny.en", h, 7) == AM_EINVAL);
    // large-v3 / large-v3-turbo / large-v2 (large-v1's shapes too)
    const am_align_head v3[] = {{7, 0}, {10, 17}, {12, 18}, {13, 12}, {16, 1},
                                {17, 14}, {19, 11}, {21, 4},  {24, 1},  {25, 6}};
    m = fake_model(51866, 1280, 32, 32, 20, 128);
    n = am_align_default_heads(m, h, AM_ALIGN_MAX_HEADS, &name);
    CHECK(heads_equal(h, n, v3, 10) && strcmp(name, "large-v3") == 0);
    CHECK(am_align_parse_heads(m, "large", h, AM_ALIGN_MAX_HEADS) == 10);
    CHECK(am_align_parse_heads(m, "large-v1", h, AM_ALIGN_MAX_HEADS) == 9 && h[0].layer == 9 && h[0].head == 19);
    m = fake_model(51866, 1280, 32, 4, 20, 128);
    n = am_align_default_heads(m, h, AM_ALIGN_MAX_HEADS, &name);
    CHECK(n == 6 && h[0].layer == 2 && h[0].head == 4 && h[5].layer == 3 && h[5].head == 14 &&
          strcmp(name, "large-v3-turbo") == 0);
    m = fake_model(51865, 1280, 32, 32, 20, 80);
    n = am_align_default_heads(m, h, AM_ALIGN_MAX_HEADS, &name);
    CHECK(n == 23 && h[0].layer == 10 && h[0].head == 12 && h[22].layer == 27 && strcmp(name, "large-v2") == 0);
    // base with a .en vocabulary is base.en; other shapes fall back to the last half of the layers
    m = fake_model(51864, 512, 6, 6, 8, 80);
    n = am_align_default_heads(m, h, AM_ALIGN_MAX_HEADS, &name);
    CHECK(n == 5 && h[0].layer == 3 && h[0].head == 3 && strcmp(name, "base.en") == 0);
    m = fake_model(51864, 512, 6, 5, 8, 80);
    n = am_align_default_heads(m, h, AM_ALIGN_MAX_HEADS, &name);
    CHECK(n == 24 && h[0].layer == 2 && h[0].head == 0 && h[23].layer == 4 && h[23].head == 7 &&
          strcmp(name, "default") == 0);
    CHECK(am_align_default_heads(NULL, h, 1, NULL) == AM_EINVAL);

    if (!fixture) return;
    // the fixture (2 decoder layers x 2 heads): layer 1, heads 0 and 1
    const am_align_head fx[] = {{1, 0}, {1, 1}};
    n = am_align_default_heads(fixture, h, AM_ALIGN_MAX_HEADS, &name);
    CHECK(heads_equal(h, n, fx, 2) && strcmp(name, "default") == 0);
    // explicit lists: sorted into the reference's (layer, head) order
    const am_align_head l1[] = {{0, 1}, {1, 0}};
    n = am_align_parse_heads(fixture, "1,0;0,1", h, AM_ALIGN_MAX_HEADS);
    CHECK(heads_equal(h, n, l1, 2));
    n = am_align_parse_heads(fixture, " 1 , 1 ", h, AM_ALIGN_MAX_HEADS);
    CHECK(n == 1 && h[0].layer == 1 && h[0].head == 1);
    static const char *const bad[] = {"",    "2,0",  "1,2", "1,0;", "1,0;1,0", "a,b", "1;0",
                                      "-1,0", "1,0x", ";",   "1,",   "tiny.en", "99999999999,0"};
    for (size_t i = 0; i < AM_ARRAY_LEN(bad); i++) {
        const int rc = am_align_parse_heads(fixture, bad[i], h, AM_ALIGN_MAX_HEADS);
        CHECKF(rc == AM_EINVAL && *am_last_error(), "parse_heads('%s') = %d", bad[i], rc);
    }
    CHECK(am_align_parse_heads(fixture, "1,0;0,1", h, 1) == AM_EINVAL);
    CHECK(strstr(am_last_error(), "more than 1") != NULL);
}

int main(void) {
    test_round2();
    test_py_strings();
    test_median_filter();
    test_normalize();
    test_dtw();
    test_token_prob();
    test_merge();
    test_add_word_timestamps();
    test_heads(NULL);

    am_tokenizer *tok = NULL;
    am_model *m = golden_model("ggml-test-tiny.en.bin", &tok);
    if (m) {
        test_heads(m);
        test_split(tok);
        test_find(tok);
        am_tokenizer_free(tok);
        am_model_free(m);
    }
    return am_test_finish("test_align", ran_any);
}
