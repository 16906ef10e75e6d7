// am_decode.c — one window's decode (DecodingTask + decode_with_fallback) as a
// state machine: detect language -> prefill -> sample ... -> result or retry.
#include "am_decode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "am_nn.h"

#define AM_MAX_PROMPT 223 // n_text_ctx/2 - 1 previous-text tokens

// ---------------------------------------------------------------- shared tables
struct am_decoding {
    const am_model *m;
    const am_tokenizer *tok;
    am_special_tokens sp;
    int32_t *suppress; // SuppressTokens("-1") set
    int n_suppress;
    int32_t blank[4]; // encode(" ") + [eot]
    int n_blank;
};

am_decode_params am_decode_default_params(void) {
    am_decode_params p = {
        .temperature = 0.0,
        .temperature_inc = 0.2,
        .compression_ratio_threshold = 2.4,
        .logprob_threshold = -1.0,
        .no_speech_threshold = 0.6,
        .without_timestamps = 0,
        .suppress_blank = 1,
        .max_initial_timestamp = 1.0,
        .sample_len = 0,
        .seed = 0,
    };
    return p;
}

am_decoding *am_decoding_create(const am_model *m, const am_tokenizer *tok) {
    am_decoding *dc = NULL;
    int32_t *space = NULL;
    size_t n_space = 0;
    if (!m || !tok || am_tokenizer_n_vocab(tok) != m->hp.n_vocab) {
        am_set_error(AM_EINVAL, "decoding tables need a model and its tokenizer");
        return NULL;
    }
    if (!(dc = calloc(1, sizeof *dc))) goto oom;
    dc->m = m;
    dc->tok = tok;
    dc->sp = *am_tokenizer_specials(tok);
    int n = am_tokenizer_suppress_tokens(tok, NULL, 0);
    if (n < 0) goto fail;
    if (!(dc->suppress = malloc((size_t)(n ? n : 1) * sizeof *dc->suppress))) goto oom;
    dc->n_suppress = am_tokenizer_suppress_tokens(tok, dc->suppress, (size_t)n);
    if (am_tokenizer_encode(tok, " ", 1, &space, &n_space)) goto fail;
    for (size_t i = 0; i < n_space && dc->n_blank < 3; i++) dc->blank[dc->n_blank++] = space[i];
    dc->blank[dc->n_blank++] = dc->sp.eot;
    free(space);
    return dc;
oom:
    am_set_error(AM_ENOMEM, "out of memory for decoding tables");
fail:
    free(space);
    am_decoding_free(dc);
    return NULL;
}

void am_decoding_free(am_decoding *dc) {
    if (!dc) return;
    free(dc->suppress);
    free(dc);
}

const am_tokenizer *am_decoding_tokenizer(const am_decoding *dc) { return dc->tok; }
const am_model *am_decoding_model(const am_decoding *dc) { return dc->m; }

// ---------------------------------------------------------------- text helpers
double am_decode_compression_ratio(const char *text, size_t len) {
    if (len == 0) return 0.0;
    uLongf cap = compressBound((uLong)len);
    Bytef *buf = malloc(cap);
    if (!buf) return 0.0;
    double r = 0.0;
    if (compress2(buf, &cap, (const Bytef *)text, (uLong)len, Z_DEFAULT_COMPRESSION) == Z_OK)
        r = (double)len / (double)cap;
    free(buf);
    return r;
}

// Length of the UTF-8 whitespace character at s (Python's str.isspace set), or 0.
static size_t space_len(const unsigned char *s, size_t n) {
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20))) return 1;
    if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n >= 3 && s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3; // U+1680
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
        return 3; // U+2000..200A, 2028, 2029, 202F
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3; // U+205F
    if (n >= 3 && s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3; // U+3000
    return 0;
}

size_t am_decode_strip(const char **text, size_t len) {
    const unsigned char *s = (const unsigned char *)*text;
    size_t k;
    while (len && (k = space_len(s, len))) {
        s += k;
        len -= k;
    }
    for (;;) { // trailing: try 1-, 2- and 3-byte characters ending at len
        size_t cut = 0;
        for (size_t w = 1; w <= 3 && w <= len && !cut; w++)
            if (space_len(s + len - w, w) == w) cut = w;
        if (!cut) break;
        len -= cut;
    }
    *text = (const char *)s;
    return len;
}

// ---------------------------------------------------------------- window state
enum { PH_IDLE, PH_DETECT, PH_PREFIX, PH_REST, PH_GEN, PH_DONE };

struct am_wdec {
    const am_decoding *dc;
    am_decode_params p;
    am_seq *seq;
    const am_xkv *xkv;
    char language[16];
    int detect, detect_only, translate;
    int32_t prompt[AM_MAX_PROMPT];
    int n_prompt;
    int32_t initial[AM_MAX_PROMPT + 8]; // [sot_prev + prompt] + sot sequence [+ notimestamps]
    int n_initial, sot_index;
    int32_t *tokens; // (n_text_ctx,) sampled tokens of the current attempt
    int n_sampled, sample_len;
    int phase, attempt;
    double temperature;
    double sum_logprob;
    double no_speech_prob;
    uint64_t rng;
    am_lang_prob top[AM_LANG_TOP];
    int n_top;
    am_wdec_result res;
    int n_steps;
};

am_wdec *am_wdec_create(const am_decoding *dc) {
    am_wdec *w = calloc(1, sizeof *w);
    if (!w || !(w->tokens = malloc((size_t)dc->m->hp.n_text_ctx * sizeof *w->tokens))) {
        free(w);
        am_set_error(AM_ENOMEM, "out of memory for a window decode");
        return NULL;
    }
    w->dc = dc;
    return w;
}

void am_wdec_free(am_wdec *w) {
    if (!w) return;
    free(w->tokens);
    free(w->res.tokens);
    free(w->res.text);
    free(w);
}

am_seq *am_wdec_seq(const am_wdec *w) { return w->seq; }
const am_wdec_result *am_wdec_result_get(const am_wdec *w) { return w->phase == PH_DONE ? &w->res : NULL; }
const char *am_wdec_language(const am_wdec *w) { return w->language; }

int am_wdec_language_probs(const am_wdec *w, am_lang_prob top[AM_LANG_TOP]) {
    memcpy(top, w->top, sizeof w->top);
    return w->n_top;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Temperature of attempt k: np.arange(t0, 1.0 + 1e-6, inc)[k], or < 0 when none.
static double attempt_temperature(const am_decode_params *p, int k) {
    if (k == 0) return p->temperature;
    if (!(p->temperature_inc > 0)) return -1.0;
    const double t = p->temperature + k * p->temperature_inc;
    return t <= 1.0 + 1e-6 ? t : -1.0;
}

// Build the initial tokens for the (possibly detected) language and reset the
// sequence: [sot_prev, prompt...] + sot_sequence [+ notimestamps].
static int begin_attempt(am_wdec *w) {
    const am_special_tokens *sp = &w->dc->sp;
    int n = 0;
    if (w->n_prompt > 0) {
        w->initial[n++] = sp->sot_prev;
        memcpy(w->initial + n, w->prompt, (size_t)w->n_prompt * sizeof(int32_t));
        n += w->n_prompt;
    }
    int32_t sot_seq[3];
    int k = am_tokenizer_sot_sequence(w->dc->tok, w->language, w->translate, sot_seq);
    if (k < 0) return am_set_error(AM_EINVAL, "unsupported language '%s'", w->language);
    w->sot_index = n;
    memcpy(w->initial + n, sot_seq, (size_t)k * sizeof(int32_t));
    n += k;
    if (w->p.without_timestamps) w->initial[n++] = sp->notimestamps;
    w->n_initial = n;
    w->n_sampled = 0;
    w->sum_logprob = 0;
    w->temperature = attempt_temperature(&w->p, w->attempt);
    w->phase = PH_PREFIX;
    am_seq_reset(w->seq, w->xkv);
    return 0;
}

int am_wdec_start(am_wdec *w, const am_decode_params *p, const am_wdec_window *win, am_seq *seq,
                  const am_xkv *xkv) {
    if (!w || !p || !win || !seq || !xkv) return am_set_error(AM_EINVAL, "invalid window decode arguments");
    const am_special_tokens *sp = &w->dc->sp;
    w->p = *p;
    w->seq = seq;
    w->xkv = xkv;
    w->translate = win->translate;
    w->attempt = 0;
    w->n_steps = 0;
    w->n_top = 0;
    w->rng = p->seed ^ (win->seed_mix * 0x9e3779b97f4a7c15ull);
    const int cap = w->dc->m->hp.n_text_ctx / 2;
    w->sample_len = p->sample_len > 0 ? AM_MIN(p->sample_len, w->dc->m->hp.n_text_ctx) : cap;
    w->n_prompt = AM_MIN(win->n_prompt > 0 ? win->n_prompt : 0, AM_MIN(AM_MAX_PROMPT, cap - 1));
    if (w->n_prompt) memcpy(w->prompt, win->prompt + (win->n_prompt - w->n_prompt), (size_t)w->n_prompt * sizeof(int32_t));
    for (int i = 0; i < w->n_prompt; i++)
        if (w->prompt[i] < 0 || (w->prompt[i] >= sp->eot && w->prompt[i] < sp->timestamp_begin) ||
            w->prompt[i] >= sp->n_vocab)
            return am_set_error(AM_EINVAL, "prompt token %d is neither text nor a timestamp", w->prompt[i]);
    free(w->res.tokens);
    free(w->res.text);
    memset(&w->res, 0, sizeof w->res);
    w->detect = 0;
    w->detect_only = 0;
    if (!sp->is_multilingual) {
        snprintf(w->language, sizeof w->language, "en");
    } else if (!win->language || !*win->language) {
        w->detect = 1;
        w->language[0] = 0;
    } else {
        const int idx = am_tokenizer_lang_index(win->language);
        if (idx < 0 || am_tokenizer_lang_token(w->dc->tok, win->language) < 0)
            return am_set_error(AM_EINVAL, "unsupported language '%s'", win->language);
        snprintf(w->language, sizeof w->language, "%s", am_tokenizer_lang_code(idx));
    }
    if (win->detect_only && !w->detect)
        return am_set_error(AM_EINVAL, "language detection needs a multilingual model and no forced language");
    if (w->detect) {
        w->detect_only = win->detect_only;
        w->phase = PH_DETECT;
        am_seq_reset(seq, xkv);
        return 0;
    }
    return begin_attempt(w);
}

int am_wdec_input(am_wdec *w, const int32_t **tokens) {
    switch (w->phase) {
    case PH_DETECT: *tokens = &w->dc->sp.sot; return 1;
    case PH_PREFIX: *tokens = w->initial; return w->sot_index + 1;
    case PH_REST: *tokens = w->initial + w->sot_index + 1; return w->n_initial - w->sot_index - 1;
    case PH_GEN: *tokens = &w->tokens[w->n_sampled - 1]; return 1;
    default: *tokens = NULL; return 0;
    }
}

// ---------------------------------------------------------------- logits
// log(sum(exp(x[i]))) over [a, b), in double; -inf when all are -inf.
static double logsumexp(const float *x, int a, int b) { return am_nn_logsumexp(x + a, b - a); }

static void fill_neg_inf(float *x, int a, int b) {
    for (int i = a; i < b; i++) x[i] = -INFINITY;
}

// The reference logit filters, in order, for the current sampled prefix.
static void apply_filters(am_wdec *w, float *logits) {
    const am_decoding *dc = w->dc;
    const am_special_tokens *sp = &dc->sp;
    const int V = dc->m->hp.n_vocab, tb = sp->timestamp_begin;
    const int32_t *seq = w->tokens;
    const int n = w->n_sampled;
    if (w->p.suppress_blank && n == 0) // SuppressBlank
        for (int i = 0; i < dc->n_blank; i++) logits[dc->blank[i]] = -INFINITY;
    for (int i = 0; i < dc->n_suppress; i++) logits[dc->suppress[i]] = -INFINITY; // SuppressTokens
    if (w->p.without_timestamps) return;
    // ApplyTimestampRules
    logits[sp->notimestamps] = -INFINITY;
    const int last_ts = n >= 1 && seq[n - 1] >= tb;
    const int penult_ts = n < 2 || seq[n - 2] >= tb;
    if (last_ts) {
        if (penult_ts) fill_neg_inf(logits, tb, V); // has to be non-timestamp
        else fill_neg_inf(logits, 0, sp->eot);      // cannot be normal text tokens
    }
    for (int i = n - 1; i >= 0; i--) {
        if (seq[i] >= tb) { // timestamps must not decrease; segments have nonzero length
            const int ts_last = (last_ts && !penult_ts) ? seq[i] : seq[i] + 1;
            fill_neg_inf(logits, tb, AM_MIN(ts_last, V));
            break;
        }
    }
    if (n == 0) {
        fill_neg_inf(logits, 0, tb); // suppress non-timestamp tokens at the beginning
        if (w->p.max_initial_timestamp >= 0) {
            const int precision_idx = (int)nearbyint(w->p.max_initial_timestamp / 0.02);
            fill_neg_inf(logits, AM_MIN(tb + precision_idx + 1, V), V);
        }
    }
    // sample a timestamp when their summed probability beats any single text token
    const double ts_lse = logsumexp(logits, tb, V);
    float max_text = -INFINITY;
    for (int i = 0; i < tb; i++) max_text = logits[i] > max_text ? logits[i] : max_text;
    if (ts_lse > (double)max_text) fill_neg_inf(logits, 0, tb);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

// Categorical(logits / T).sample() with our seeded generator.
static int sample_temperature(am_wdec *w, const float *logits, int V, double T) {
    const int best = argmax(logits, V);
    const double mx = logits[best];
    double total = 0;
    for (int i = 0; i < V; i++) total += exp(((double)logits[i] - mx) / T);
    const double u = (double)(splitmix64(&w->rng) >> 11) * 0x1.0p-53 * total;
    double acc = 0;
    for (int i = 0; i < V; i++) {
        if (logits[i] == -INFINITY) continue;
        acc += exp(((double)logits[i] - mx) / T);
        if (acc > u) return i;
    }
    return best;
}

// ---------------------------------------------------------------- attempts
// Finish the current attempt: build the result, then either accept it or
// start the next temperature. Returns 1 when done, 0 when retrying.
static int finish_attempt(am_wdec *w) {
    const am_decoding *dc = w->dc;
    int n = 0;
    while (n < w->n_sampled && w->tokens[n] != dc->sp.eot) n++;
    am_wdec_result *r = &w->res;
    free(r->tokens);
    free(r->text);
    r->tokens = malloc((size_t)(n ? n : 1) * sizeof *r->tokens);
    if (!r->tokens) return am_set_error(AM_ENOMEM, "out of memory");
    memcpy(r->tokens, w->tokens, (size_t)n * sizeof *r->tokens);
    r->n_tokens = n;
    char *text = NULL;
    size_t len = 0;
    int rc = am_tokenizer_decode_alloc(dc->tok, r->tokens, (size_t)n, AM_DECODE_NO_TIMESTAMPS, &text, &len);
    if (rc) return rc;
    const char *s = text;
    len = am_decode_strip(&s, len);
    memmove(text, s, len);
    text[len] = 0;
    r->text = text;
    r->sum_logprob = w->sum_logprob;
    r->avg_logprob = w->sum_logprob / (n + 1);
    r->no_speech_prob = w->no_speech_prob;
    r->compression_ratio = am_decode_compression_ratio(text, len);
    r->temperature = w->temperature;
    r->n_attempts = w->attempt + 1;
    r->n_steps = w->n_steps;
    // decode_with_fallback
    const am_decode_params *p = &w->p;
    int needs_fallback = 0;
    if (!isnan(p->compression_ratio_threshold) && r->compression_ratio > p->compression_ratio_threshold)
        needs_fallback = 1; // too repetitive
    if (!isnan(p->logprob_threshold) && r->avg_logprob < p->logprob_threshold) needs_fallback = 1;
    if (!isnan(p->no_speech_threshold) && r->no_speech_prob > p->no_speech_threshold &&
        !isnan(p->logprob_threshold) && r->avg_logprob < p->logprob_threshold)
        needs_fallback = 0; // silence
    if (needs_fallback && attempt_temperature(p, w->attempt + 1) >= 0) {
        w->attempt++;
        rc = begin_attempt(w);
        return rc ? rc : 0;
    }
    w->phase = PH_DONE;
    return 1;
}

static int sample(am_wdec *w, float *logits) {
    const am_decoding *dc = w->dc;
    const int V = dc->m->hp.n_vocab;
    apply_filters(w, logits);
    const int tok = w->temperature > 0 ? sample_temperature(w, logits, V, w->temperature) : argmax(logits, V);
    const double lp = (double)logits[tok] - logsumexp(logits, 0, V);
    w->sum_logprob += lp;
    w->tokens[w->n_sampled++] = tok;
    if (tok == dc->sp.eot || w->n_sampled >= w->sample_len || w->n_initial + w->n_sampled > dc->m->hp.n_text_ctx)
        return finish_attempt(w);
    w->phase = PH_GEN;
    return 0;
}

// Language detection on the [sot] logits: softmax over the language tokens.
static void detect_language(am_wdec *w, const float *logits) {
    const am_special_tokens *sp = &w->dc->sp;
    const int a = sp->lang_begin, b = sp->lang_begin + sp->n_languages;
    const double lse = logsumexp(logits, a, b);
    int best = a;
    for (int i = a + 1; i < b; i++)
        if (logits[i] > logits[best]) best = i;
    snprintf(w->language, sizeof w->language, "%s", am_tokenizer_token_lang(w->dc->tok, best));
    // top-5 by probability (ties keep table order)
    w->n_top = 0;
    for (int i = a; i < b; i++) {
        const float pr = (float)exp((double)logits[i] - lse);
        int k = w->n_top < AM_LANG_TOP ? w->n_top++ : AM_LANG_TOP;
        while (k > 0 && w->top[k - 1].prob < pr) {
            if (k < AM_LANG_TOP) w->top[k] = w->top[k - 1];
            k--;
        }
        if (k < AM_LANG_TOP) w->top[k] = (am_lang_prob){am_tokenizer_token_lang(w->dc->tok, i), pr};
    }
}

int am_wdec_feed(am_wdec *w, float *logits) {
    if (!w || !logits) return am_set_error(AM_EINVAL, "invalid feed arguments");
    w->n_steps++;
    switch (w->phase) {
    case PH_DETECT: {
        detect_language(w, logits);
        if (w->detect_only) {
            w->phase = PH_DONE;
            return 1;
        }
        const int rc = begin_attempt(w);
        return rc ? rc : 0;
    }
    case PH_PREFIX: {
        const int V = w->dc->m->hp.n_vocab;
        // no_speech_prob = softmax(logits at sot)[nospeech], unfiltered
        w->no_speech_prob = exp((double)logits[w->dc->sp.nospeech] - logsumexp(logits, 0, V));
        if (w->sot_index == w->n_initial - 1) return sample(w, logits);
        w->phase = PH_REST;
        return 0;
    }
    case PH_REST:
    case PH_GEN: return sample(w, logits);
    default: return am_set_error(AM_EINVAL, "window decode is not running");
    }
}
