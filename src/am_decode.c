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
        .beam_size = 0,
        .best_of = 0,
        .patience = 1.0,
        .length_penalty = NAN,
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
// The ratio into *ratio: 0, or AM_ENOMEM (no buffer, or zlib out of memory),
// so that a window never goes on with a made-up ratio (it decides fallbacks).
static int compression_ratio(const char *text, size_t len, double *ratio) {
    *ratio = 0.0;
    if (len == 0) return 0;
    uLongf cap = compressBound((uLong)len);
    Bytef *buf = malloc(cap);
    if (!buf) return am_set_error(AM_ENOMEM, "out of memory for the compression ratio");
    const int z = compress2(buf, &cap, (const Bytef *)text, (uLong)len, Z_DEFAULT_COMPRESSION);
    free(buf);
    if (z == Z_MEM_ERROR) return am_set_error(AM_ENOMEM, "zlib: out of memory for the compression ratio");
    if (z == Z_OK) *ratio = (double)len / (double)cap;
    return 0;
}

double am_decode_compression_ratio(const char *text, size_t len) {
    double r;
    return compression_ratio(text, len, &r) ? 0.0 : r;
}

// ---------------------------------------------------------------- window state
enum { PH_IDLE, PH_DETECT, PH_PREFIX, PH_REST, PH_GEN, PH_DONE };

// One candidate of a window's attempt: a beam (beam search), a sampled
// candidate (best_of), or the only sequence (greedy / single sampling).
typedef struct {
    int32_t *tokens; // (n_text_ctx + 1,) sampled tokens
    float *lps;      // (n_text_ctx + 1,) log-probability of each token (a closing <|endoftext|> included)
    int n;
    double sum;      // sum of log probabilities (float32 values for beams, as the reference keeps them)
    int seq;         // index into the window's sequences
    int done;        // sampled candidate that reached <|endoftext|>
} cand;

// A finished beam-search candidate.
typedef struct {
    int32_t *tokens; // (n_text_ctx + 1,) sampled tokens before <|endoftext|>; kept across attempts
    float *lps;      // (n_text_ctx + 1,) their log-probabilities
    int n;
    double sum;      // incl. eot_lp
    float eot_lp;    // log-probability of its <|endoftext|> (0 for a live beam added by finalize)
} finished;

// A beam-search candidate continuation, before ranking.
typedef struct {
    float score; // the beam's sum with this token
    float lp;    // the token's log-probability
    int source, token;
} ext;

struct am_wdec {
    const am_decoding *dc;
    am_decode_params p;
    am_seq *seqs[AM_MAX_GROUP];
    int n_seqs;
    const am_xkv *xkv;
    char language[16];
    int detect, detect_only, translate;
    int32_t prompt[AM_MAX_PROMPT];
    int n_prompt;
    int32_t initial[AM_MAX_PROMPT + 8]; // [sot_prev + prompt] + sot sequence [+ notimestamps]
    int n_initial, sot_index;
    int sample_len;
    int phase, attempt;
    double temperature;
    int beam;                // this attempt is a beam search
    int n_group;             // candidates of this attempt
    cand cur[AM_MAX_GROUP], nxt[AM_MAX_GROUP];
    int n_cur;
    int has_prefix[AM_MAX_GROUP]; // sequence i holds the attempt's initial tokens
    int rows[AM_MAX_GROUP];       // candidates fed in the current step, in row order
    int n_rows;
    int n_updates;           // sampling steps of this attempt
    finished *fin;           // (cap_fin,) beam search's finished candidates (buffers reused)
    int n_fin, cap_fin, max_candidates;
    ext *exts;               // (AM_MAX_GROUP * (AM_MAX_GROUP + 1),) scratch of one beam update
    double no_speech_prob;
    uint64_t rng;
    am_lang_prob top[AM_LANG_TOP];
    int n_top;
    am_wdec_result res;
    int n_steps;
};

int am_decode_group_size(const am_decode_params *p) {
    return AM_MAX(1, AM_MAX(p->beam_size, p->best_of));
}

int am_decode_check_params(const am_decode_params *p) {
    if (p->beam_size < 0 || p->beam_size > AM_MAX_GROUP)
        return am_set_error(AM_EINVAL, "beam_size must be 1..%d (0 = greedy)", AM_MAX_GROUP);
    if (p->best_of < 0 || p->best_of > AM_MAX_GROUP)
        return am_set_error(AM_EINVAL, "best_of must be 1..%d", AM_MAX_GROUP);
    if (!(p->patience > 0) || p->patience > AM_MAX_GROUP)
        return am_set_error(AM_EINVAL, "patience must be in (0, %d]", AM_MAX_GROUP);
    if (!isnan(p->length_penalty) && !(p->length_penalty >= 0 && p->length_penalty <= 1))
        return am_set_error(AM_EINVAL, "length_penalty must be between 0 and 1");
    return 0;
}

am_wdec *am_wdec_create(const am_decoding *dc) {
    am_wdec *w = calloc(1, sizeof *w);
    if (!w) goto oom;
    w->dc = dc;
    const size_t T = (size_t)dc->m->hp.n_text_ctx + 1;
    for (int i = 0; i < AM_MAX_GROUP; i++)
        if (!(w->cur[i].tokens = malloc(T * sizeof(int32_t))) || !(w->nxt[i].tokens = malloc(T * sizeof(int32_t))) ||
            !(w->cur[i].lps = malloc(T * sizeof(float))) || !(w->nxt[i].lps = malloc(T * sizeof(float))))
            goto oom;
    if (!(w->exts = malloc((size_t)AM_MAX_GROUP * (AM_MAX_GROUP + 1) * sizeof *w->exts))) goto oom;
    return w;
oom:
    am_wdec_free(w);
    am_set_error(AM_ENOMEM, "out of memory for a window decode");
    return NULL;
}

void am_wdec_free(am_wdec *w) {
    if (!w) return;
    for (int i = 0; i < AM_MAX_GROUP; i++) {
        free(w->cur[i].tokens);
        free(w->nxt[i].tokens);
        free(w->cur[i].lps);
        free(w->nxt[i].lps);
    }
    for (int i = 0; i < w->cap_fin; i++) {
        free(w->fin[i].tokens);
        free(w->fin[i].lps);
    }
    free(w->fin);
    free(w->exts);
    free(w->res.tokens);
    free(w->res.token_logprobs);
    free(w->res.text);
    free(w);
}

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

// Room for the finished candidates of a beam attempt (max_candidates, and the
// live beams finalize may add), allocated once and kept.
static int reserve_finished(am_wdec *w) {
    const int cap = w->max_candidates + w->p.beam_size;
    if (w->cap_fin >= cap) return 0;
    finished *f = realloc(w->fin, (size_t)cap * sizeof *f);
    if (!f) return am_set_error(AM_ENOMEM, "out of memory");
    w->fin = f;
    const size_t T = (size_t)w->dc->m->hp.n_text_ctx + 1;
    for (; w->cap_fin < cap; w->cap_fin++) {
        f[w->cap_fin].tokens = malloc(T * sizeof(int32_t));
        f[w->cap_fin].lps = malloc(T * sizeof(float));
        if (!f[w->cap_fin].tokens || !f[w->cap_fin].lps) {
            free(f[w->cap_fin].tokens);
            free(f[w->cap_fin].lps);
            return am_set_error(AM_ENOMEM, "out of memory");
        }
    }
    return 0;
}

// Build the initial tokens for the (possibly detected) language and reset the
// first sequence: [sot_prev, prompt...] + sot_sequence [+ notimestamps]. The
// attempt's kind follows decode_with_fallback: beams at temperature 0 when
// beam_size is given, best_of candidates at temperature > 0.
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
    w->temperature = attempt_temperature(&w->p, w->attempt);
    w->beam = w->temperature == 0 && w->p.beam_size > 0;
    w->n_group = w->beam ? w->p.beam_size : (w->temperature > 0 && w->p.best_of > 1 ? w->p.best_of : 1);
    w->max_candidates = w->beam ? (int)nearbyint(w->p.beam_size * w->p.patience) : 0;
    if (w->beam && w->max_candidates < 1) w->max_candidates = 1;
    if (w->beam && reserve_finished(w)) return AM_ENOMEM;
    w->n_fin = 0;
    w->n_cur = 0;
    w->n_updates = 0;
    memset(w->has_prefix, 0, sizeof w->has_prefix);
    w->phase = PH_PREFIX;
    am_seq_reset(w->seqs[0], w->xkv);
    return 0;
}

int am_wdec_start(am_wdec *w, const am_decode_params *p, const am_wdec_window *win, am_seq *const *seqs, int n_seqs,
                  const am_xkv *xkv) {
    if (!w || !p || !win || !seqs || n_seqs < 1 || !xkv) return am_set_error(AM_EINVAL, "invalid window decode arguments");
    int rc = am_decode_check_params(p);
    if (rc) return rc;
    if (n_seqs < am_decode_group_size(p))
        return am_set_error(AM_EINVAL, "%d sequences for a window that needs %d", n_seqs, am_decode_group_size(p));
    const am_special_tokens *sp = &w->dc->sp;
    w->p = *p;
    w->n_seqs = AM_MIN(n_seqs, AM_MAX_GROUP);
    for (int i = 0; i < w->n_seqs; i++) w->seqs[i] = seqs[i];
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
    // any vocabulary id: as the reference, the previous windows' tokens go back unfiltered (decoding without
    // timestamps suppresses neither timestamp nor language tokens, so they can be among them)
    for (int i = 0; i < w->n_prompt; i++)
        if (w->prompt[i] < 0 || w->prompt[i] >= sp->n_vocab)
            return am_set_error(AM_EINVAL, "prompt token %d is outside the vocabulary", w->prompt[i]);
    free(w->res.tokens);
    free(w->res.token_logprobs);
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
        am_seq_reset(w->seqs[0], xkv);
        return 0;
    }
    return begin_attempt(w);
}

int am_wdec_inputs(am_wdec *w, am_seq **seqs, const int32_t **tokens, int *n_tokens) {
    w->n_rows = 0;
    switch (w->phase) {
    case PH_DETECT:
        seqs[0] = w->seqs[0];
        tokens[0] = &w->dc->sp.sot;
        n_tokens[0] = 1;
        return 1;
    case PH_PREFIX:
        seqs[0] = w->seqs[0];
        tokens[0] = w->initial;
        n_tokens[0] = w->sot_index + 1;
        return 1;
    case PH_REST:
        seqs[0] = w->seqs[0];
        tokens[0] = w->initial + w->sot_index + 1;
        n_tokens[0] = w->n_initial - w->sot_index - 1;
        return 1;
    case PH_GEN:
        for (int i = 0; i < w->n_cur; i++) {
            const cand *c = &w->cur[i];
            if (c->done) continue;
            seqs[w->n_rows] = w->seqs[c->seq];
            tokens[w->n_rows] = &c->tokens[c->n - 1];
            n_tokens[w->n_rows] = 1;
            w->rows[w->n_rows++] = i;
        }
        return w->n_rows;
    default: return 0;
    }
}

// ---------------------------------------------------------------- logits
// log(sum(exp(x[i]))) over [a, b), in double; -inf when all are -inf.
static double logsumexp(const float *x, int a, int b) { return am_nn_logsumexp(x + a, b - a); }

static void fill_neg_inf(float *x, int a, int b) {
    for (int i = a; i < b; i++) x[i] = -INFINITY;
}

// The reference logit filters, in order, for a candidate's sampled tokens seq[0..n).
static void apply_filters(const am_wdec *w, float *logits, const int32_t *seq, int n) {
    const am_decoding *dc = w->dc;
    const am_special_tokens *sp = &dc->sp;
    const int V = dc->m->hp.n_vocab, tb = sp->timestamp_begin;
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

// ---------------------------------------------------------------- results
// MaximumLikelihoodRanker: sum_logprob / length, or / ((5 + length) / 6)^alpha.
static double rank_score(const am_decode_params *p, double sum, int length) {
    const double penalty = isnan(p->length_penalty) ? length : pow((5.0 + length) / 6.0, p->length_penalty);
    return sum / penalty;
}

// Fill the result from the chosen tokens (before <|endoftext|>), their
// log-probabilities, the sum and the <|endoftext|>'s log-probability (once per attempt).
static int set_result(am_wdec *w, const int32_t *tokens, const float *lps, int n, double sum, float eot_lp) {
    am_wdec_result *r = &w->res;
    free(r->tokens);
    free(r->token_logprobs);
    free(r->text);
    r->text = NULL;
    r->token_logprobs = NULL;
    r->n_tokens = 0;
    if (!(r->tokens = malloc((size_t)(n ? n : 1) * sizeof *r->tokens))) return am_set_error(AM_ENOMEM, "out of memory");
    if (n > 0) {
        if (!(r->token_logprobs = malloc((size_t)n * sizeof *r->token_logprobs)))
            return am_set_error(AM_ENOMEM, "out of memory");
        memcpy(r->tokens, tokens, (size_t)n * sizeof *r->tokens);
        memcpy(r->token_logprobs, lps, (size_t)n * sizeof *r->token_logprobs);
    }
    r->n_tokens = n;
    r->eot_logprob = eot_lp;
    char *text = NULL;
    size_t len = 0;
    const int rc = am_tokenizer_decode_alloc(w->dc->tok, r->tokens, (size_t)n, AM_DECODE_NO_TIMESTAMPS, &text, &len);
    if (rc) return rc;
    const char *s = text;
    len = am_str_strip(&s, len);
    memmove(text, s, len);
    text[len] = 0;
    r->text = text;
    int rc2;
    r->sum_logprob = sum;
    r->avg_logprob = sum / (n + 1);
    r->no_speech_prob = w->no_speech_prob;
    if ((rc2 = compression_ratio(text, len, &r->compression_ratio))) return rc2;
    r->temperature = w->temperature;
    r->n_attempts = w->attempt + 1;
    r->n_steps = w->n_steps;
    return 0;
}

// Append a finished candidate (room for it was made by reserve_finished).
static void add_finished(am_wdec *w, const int32_t *tokens, const float *lps, int n, double sum, float eot_lp) {
    finished *f = &w->fin[w->n_fin++];
    memcpy(f->tokens, tokens, (size_t)n * sizeof(int32_t));
    memcpy(f->lps, lps, (size_t)n * sizeof(float));
    f->n = n;
    f->sum = sum;
    f->eot_lp = eot_lp;
}

// The attempt's candidates are final: pick one (BeamSearchDecoder.finalize +
// the ranker for beams, the ranker over best_of candidates, else the only
// one) into the result.
static int choose(am_wdec *w) {
    if (w->beam) {
        // not enough finished: add the live beams by their sum, best first
        // (np.argsort(...)[::-1]: ties by the later beam first)
        while (w->n_fin < w->p.beam_size && w->n_cur > 0) {
            int best = -1;
            for (int i = w->n_cur - 1; i >= 0; i--)
                if (!w->cur[i].done && (best < 0 || w->cur[i].sum > w->cur[best].sum)) best = i;
            if (best < 0) break;
            cand *c = &w->cur[best];
            c->done = 1;
            add_finished(w, c->tokens, c->lps, c->n, c->sum, 0.0f);
        }
        if (w->n_fin == 0) return set_result(w, NULL, NULL, 0, 0.0, 0.0f);
        int pick = 0;
        for (int i = 1; i < w->n_fin; i++)
            if (rank_score(&w->p, w->fin[i].sum, w->fin[i].n) > rank_score(&w->p, w->fin[pick].sum, w->fin[pick].n))
                pick = i;
        const finished *f = &w->fin[pick];
        return set_result(w, f->tokens, f->lps, f->n, f->sum, f->eot_lp);
    }
    // sampled candidates: a finished one ends on <|endoftext|>, which is not part of its tokens
    int pick = 0;
    for (int i = 1; i < w->n_cur; i++)
        if (rank_score(&w->p, w->cur[i].sum, w->cur[i].n - w->cur[i].done) >
            rank_score(&w->p, w->cur[pick].sum, w->cur[pick].n - w->cur[pick].done))
            pick = i;
    const cand *c = &w->cur[pick];
    return set_result(w, c->tokens, c->lps, c->n - c->done, c->sum, c->done ? c->lps[c->n - 1] : 0.0f);
}

// Finish the current attempt: choose the result, then either accept it or
// start the next temperature (decode_with_fallback). Returns 1 when done, 0
// when retrying.
static int finish_attempt(am_wdec *w) {
    int rc = choose(w);
    if (rc) return rc;
    const am_wdec_result *r = &w->res;
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

// ---------------------------------------------------------------- forking
// Length of the common prefix of two token lists.
static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

// After an update, w->nxt[0..n) descend from w->cur[src[k]]. Give each one a
// sequence whose cache holds its source's tokens: the first child of a source
// takes the source's sequence; every further child gets a sequence that no
// child kept, copied only from where its old tokens part from the source's.
static int fork_sequences(am_wdec *w, const int *src, int n) {
    int taken[AM_MAX_GROUP] = {0}, owner[AM_MAX_GROUP]; // owner: cur index whose tokens seq i holds, or -1
    for (int i = 0; i < AM_MAX_GROUP; i++) owner[i] = -1;
    for (int i = 0; i < w->n_cur; i++) owner[w->cur[i].seq] = i;
    int need[AM_MAX_GROUP], n_need = 0;
    for (int k = 0; k < n; k++) {
        const int s = w->cur[src[k]].seq;
        if (!taken[s]) {
            taken[s] = 1;
            w->nxt[k].seq = s;
        } else {
            need[n_need++] = k;
        }
    }
    const int pos_base = w->n_initial;
    for (int q = 0; q < n_need; q++) {
        const int k = need[q];
        const cand *from = &w->cur[src[k]];
        int f = -1, best_lcp = -1;
        for (int i = 0; i < w->n_seqs; i++) { // the free sequence sharing the longest prefix with the source
            if (taken[i]) continue;
            int lcp = 0;
            if (w->has_prefix[i])
                lcp = pos_base + (owner[i] >= 0 ? common_prefix(w->cur[owner[i]].tokens, w->cur[owner[i]].n,
                                                                from->tokens, from->n)
                                                : 0);
            if (lcp > best_lcp) {
                best_lcp = lcp;
                f = i;
            }
        }
        if (f < 0) return am_set_error(AM_EINTERNAL, "no free sequence for a forked candidate");
        const int rc = am_seq_copy(w->seqs[f], w->seqs[from->seq], best_lcp);
        if (rc) return rc;
        taken[f] = 1;
        w->has_prefix[f] = 1;
        w->nxt[k].seq = f;
    }
    return 0;
}

// cur <- nxt[0..n) (token buffers are swapped, not copied).
static void swap_generation(am_wdec *w, int n) {
    for (int k = 0; k < n; k++) {
        cand t = w->cur[k];
        w->cur[k] = w->nxt[k];
        w->nxt[k] = t;
    }
    for (int k = n; k < AM_MAX_GROUP; k++) w->cur[k].n = 0;
    w->n_cur = n;
}

// ---------------------------------------------------------------- sampling
static int attempt_over(const am_wdec *w, int longest) {
    return w->n_updates >= w->sample_len || w->n_initial + longest > w->dc->m->hp.n_text_ctx;
}

// Greedy / sampled candidates: each live row picks its next token. The first
// update starts n_group candidates from the one prefill row.
static int update_sampled(am_wdec *w, float *logits) {
    const int V = w->dc->m->hp.n_vocab, eot = w->dc->sp.eot;
    if (w->n_cur == 0) { // first token: every candidate samples from the prefill's row
        apply_filters(w, logits, NULL, 0);
        const double lse = logsumexp(logits, 0, V);
        int src[AM_MAX_GROUP] = {0};
        for (int k = 0; k < w->n_group; k++) {
            const int tok = w->temperature > 0 ? sample_temperature(w, logits, V, w->temperature) : argmax(logits, V);
            cand *c = &w->nxt[k];
            c->tokens[0] = tok;
            c->n = 1;
            c->sum = (double)logits[tok] - lse;
            c->lps[0] = (float)c->sum;
            c->done = tok == eot;
        }
        w->n_cur = 1;
        w->cur[0].seq = 0;
        w->cur[0].n = 0;
        w->has_prefix[0] = 1;
        const int rc = fork_sequences(w, src, w->n_group);
        if (rc) return rc;
        swap_generation(w, w->n_group);
    } else {
        for (int r = 0; r < w->n_rows; r++) {
            cand *c = &w->cur[w->rows[r]];
            float *row = logits + (size_t)r * V;
            apply_filters(w, row, c->tokens, c->n);
            const int tok = w->temperature > 0 ? sample_temperature(w, row, V, w->temperature) : argmax(row, V);
            const double lp = (double)row[tok] - logsumexp(row, 0, V); // log_softmax at temperature 1
            c->sum += lp;
            c->lps[c->n] = (float)lp;
            c->tokens[c->n++] = tok;
            c->done = tok == eot;
        }
    }
    w->n_updates++;
    int all_done = 1, longest = 0;
    for (int i = 0; i < w->n_cur; i++) {
        all_done &= w->cur[i].done;
        longest = AM_MAX(longest, w->cur[i].n);
    }
    return all_done || attempt_over(w, longest);
}

// The k largest entries of x (descending; equal values by lower index), k <= AM_MAX_GROUP + 1.
static void top_k(const float *x, int n, int k, int *idx) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m == k && !(x[i] > x[idx[m - 1]])) continue;
        int j = m < k ? m++ : k - 1;
        while (j > 0 && x[i] > x[idx[j - 1]]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
}

// Stable descending order of beam continuations by score.
static void sort_exts(ext *e, int n) {
    for (int i = 1; i < n; i++) {
        const ext t = e[i];
        int j = i;
        while (j > 0 && e[j - 1].score < t.score) {
            e[j] = e[j - 1];
            j--;
        }
        e[j] = t;
    }
}

// BeamSearchDecoder.update for this window's beams (the first update expands
// the one prefill row). Returns 1 when the attempt is complete.
static int update_beams(am_wdec *w, float *logits) {
    const int V = w->dc->m->hp.n_vocab, eot = w->dc->sp.eot, B = w->p.beam_size;
    const int first = w->n_cur == 0;
    int n_src = first ? 1 : w->n_rows;
    if (first) {
        w->cur[0].seq = 0;
        w->cur[0].n = 0;
        w->cur[0].sum = 0;
        w->cur[0].done = 0;
        w->has_prefix[0] = 1;
        w->n_cur = 1;
        w->rows[0] = 0;
    }
    int n_ext = 0;
    for (int r = 0; r < n_src; r++) { // candidates of every beam: its best beam_size + 1 tokens
        const int b = w->rows[r];
        const cand *c = &w->cur[b];
        float *row = logits + (size_t)r * V;
        apply_filters(w, row, c->tokens, c->n);
        const double lse = logsumexp(row, 0, V);
        int idx[AM_MAX_GROUP + 1];
        top_k(row, V, B + 1, idx);
        for (int j = 0; j < B + 1; j++) {
            const float lp = (float)((double)row[idx[j]] - lse); // log_softmax in float32
            w->exts[n_ext++] = (ext){(float)c->sum + lp, lp, b, idx[j]};
        }
    }
    sort_exts(w->exts, n_ext);
    int src[AM_MAX_GROUP] = {0}, saved = 0, n_new_fin = 0;
    finished newly[AM_MAX_GROUP + 1];
    for (int i = 0; i < n_ext && saved < B; i++) {
        const ext *e = &w->exts[i];
        const cand *c = &w->cur[e->source];
        if (e->token == eot) {
            if (n_new_fin <= AM_MAX_GROUP)
                newly[n_new_fin++] = (finished){c->tokens, c->lps, c->n, e->score, e->lp};
            continue;
        }
        cand *nx = &w->nxt[saved];
        memcpy(nx->tokens, c->tokens, (size_t)c->n * sizeof(int32_t));
        memcpy(nx->lps, c->lps, (size_t)c->n * sizeof(float)); // the history forks with the beam
        nx->tokens[c->n] = e->token;
        nx->lps[c->n] = e->lp;
        nx->n = c->n + 1;
        nx->sum = e->score;
        nx->done = 0;
        src[saved++] = e->source;
    }
    // newly finished, best first, while the candidate list has room
    for (int i = 0; i < n_new_fin && w->n_fin < w->max_candidates; i++)
        add_finished(w, newly[i].tokens, newly[i].lps, newly[i].n, newly[i].sum, newly[i].eot_lp);
    int rc = fork_sequences(w, src, saved);
    if (rc) return rc;
    swap_generation(w, saved);
    w->n_updates++;
    const int longest = saved ? w->cur[0].n : 0;
    return w->n_fin >= w->max_candidates || saved == 0 || attempt_over(w, longest);
}

// One sampling update of the attempt; finishes it when complete.
static int sample(am_wdec *w, float *logits) {
    const int rc = w->beam ? update_beams(w, logits) : update_sampled(w, logits);
    if (rc < 0) return rc;
    if (rc) return finish_attempt(w);
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
