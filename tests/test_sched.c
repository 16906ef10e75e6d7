// test_sched.c — the batching scheduler: concurrent requests give exactly the
// transcript each gives alone (batching on and off), per-request error
// isolation, cancellation, deadlines, the admission limit, priority order and
// draining.
#include <pthread.h>
#include <unistd.h>

#include "am_audio.h"
#include "am_format.h"
#include "am_sched.h"
#include "am_test.h"

#define MAX_REQ 32

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int n_done;
    int order[MAX_REQ]; // completion order (request index)
    struct {
        int status;
        char error[256];
        char *body; // canonical transcript (see canonical())
        double queue_wait_s;
    } r[MAX_REQ];
} collector;

typedef struct {
    collector *c;
    int index;
} slot_ref;

// The transcript as text, language and every segment's seek, times, text,
// tokens and temperature: what must not change with batching. (avg_logprob
// and the other float statistics may differ in the last bits between a
// batched and a single decoder step.)
static char *canonical(const am_transcript *tr) {
    size_t cap = 4096 + strlen(tr->text);
    for (int i = 0; i < tr->n_segments; i++) cap += 256 + strlen(tr->segments[i].text) + 12 * tr->segments[i].n_tokens;
    char *s = malloc(cap);
    size_t n = (size_t)snprintf(s, cap, "%s|%s|%.17g\n", tr->language, tr->text, tr->duration);
    for (int i = 0; i < tr->n_segments; i++) {
        const am_segment *g = &tr->segments[i];
        n += (size_t)snprintf(s + n, cap - n, "%d %d %.17g %.17g %.17g [%s]", g->id, g->seek, g->start, g->end,
                              g->temperature, g->text);
        for (int k = 0; k < g->n_tokens; k++) n += (size_t)snprintf(s + n, cap - n, " %d", g->tokens[k]);
        n += (size_t)snprintf(s + n, cap - n, "\n");
    }
    return s;
}

static void on_done(void *user, const am_sched_result *res) {
    slot_ref *ref = user;
    collector *c = ref->c;
    char *body = NULL;
    if (res->status == 0) {
        body = canonical(am_job_transcript(res->job));
        am_job_free(res->job);
    }
    pthread_mutex_lock(&c->lock);
    c->r[ref->index].status = res->status;
    snprintf(c->r[ref->index].error, sizeof c->r[0].error, "%s", res->error ? res->error : "");
    c->r[ref->index].body = body;
    c->r[ref->index].queue_wait_s = res->queue_wait_s;
    c->order[c->n_done++] = ref->index;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->lock);
}

static void collector_init(collector *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static void collector_free(collector *c) {
    for (int i = 0; i < MAX_REQ; i++) free(c->r[i].body);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cv);
}

static int wait_done(collector *c, int n, double timeout_s) {
    const double until = am_time_s() + timeout_s;
    pthread_mutex_lock(&c->lock);
    while (c->n_done < n && am_time_s() < until) {
        pthread_mutex_unlock(&c->lock);
        usleep(5000);
        pthread_mutex_lock(&c->lock);
    }
    const int done = c->n_done;
    pthread_mutex_unlock(&c->lock);
    return done >= n;
}

typedef struct {
    const char *name;
    void *data;
    size_t size;
    char *ref_body; // transcript rendered from a single-job engine run
} clip;

// Transcribe one clip alone through the engine (the reference for batched runs).
static char *transcribe_alone(const am_model *m, const am_tokenizer *tok, const clip *c,
                              const am_transcribe_params *tp) {
    am_decoding *dc = am_decoding_create(m, tok);
    am_mel *mel = am_mel_create(m->mel_filters, m->hp.n_mels);
    am_engine_params ep = am_engine_default_params();
    ep.max_batch = 1;
    ep.max_windows = 1;
    am_engine *e = am_engine_create(dc, &ep);
    float *pcm = NULL;
    size_t n = 0;
    am_mel_result r;
    char *body = NULL;
    if (am_audio_decode_memory(c->data, c->size, NULL, &pcm, &n) == 0 && am_mel_compute(mel, pcm, n, &r) == 0) {
        am_job *j = am_job_create(dc, &r, tp);
        if (j && am_engine_add(e, j) == 0 && am_engine_run(e, 0) == 0 && am_job_transcript(j))
            body = canonical(am_job_transcript(j));
        am_job_free(j);
    }
    am_audio_free(pcm);
    am_engine_free(e);
    am_mel_free(mel);
    am_decoding_free(dc);
    return body;
}

static am_sched_request make_req(const clip *c, const am_transcribe_params *tp, slot_ref *ref) {
    am_sched_request q = {.audio = c->data, .audio_size = c->size, .params = *tp, .done = on_done, .user = ref};
    return q;
}

// 16 concurrent requests over the clips; each must equal its transcript alone.
static void test_concurrent(const am_model *m, const am_tokenizer *tok, clip *clips, int n_clips, int batching) {
    am_metrics *met = am_metrics_create();
    am_sched_params sp = am_sched_default_params();
    sp.enable_batching = batching;
    sp.max_wait_ms = 20;
    am_sched *s = am_sched_create(m, tok, &sp, met);
    CHECK(s != NULL);
    if (!s) return;
    am_transcribe_params tp = am_transcribe_default_params();
    tp.decode.temperature_inc = 0; // one attempt per window keeps the test fast
    collector c;
    collector_init(&c);
    slot_ref refs[16];
    const int N = 16;
    for (int i = 0; i < N; i++) {
        refs[i] = (slot_ref){&c, i};
        am_sched_request q = make_req(&clips[i % n_clips], &tp, &refs[i]);
        CHECK(am_sched_submit(s, &q, NULL) == 0);
    }
    CHECK(wait_done(&c, N, 600));
    int same = 0;
    for (int i = 0; i < N; i++) {
        const clip *cl = &clips[i % n_clips];
        CHECKF(c.r[i].status == 0, "batching=%d request %d (%s): %s", batching, i, cl->name, c.r[i].error);
        if (c.r[i].body && cl->ref_body) same += strcmp(c.r[i].body, cl->ref_body) == 0;
    }
    CHECKF(same == N, "batching=%d: %d of %d transcripts equal the single-request ones", batching, same, N);
    am_metrics_state st;
    am_sched_state(s, &st);
    char *stats = am_metrics_stats_json(met, &st);
    printf("  batching=%d: %d/%d identical; stats %.300s\n", batching, same, N, stats ? stats : "");
    // avg_batch_size > 1 with batching, exactly 1 without
    const char *k = stats ? strstr(stats, "\"avg_batch_size\":") : NULL;
    const double avg = k ? atof(k + strlen("\"avg_batch_size\":")) : 0;
    if (batching) CHECKF(avg > 1.0, "avg_batch_size %.3f should exceed 1 under concurrent load", avg);
    else CHECKF(avg == 1.0, "avg_batch_size %.3f should be exactly 1 without batching", avg);
    CHECK(st.pending_results == 0 && st.active_sequences == 0);
    free(stats);
    am_sched_free(s);
    am_metrics_free(met);
    collector_free(&c);
}

// Valid clips mixed with undecodable, empty and too-long uploads.
static void test_isolation(const am_model *m, const am_tokenizer *tok, clip *jfk) {
    am_sched_params sp = am_sched_default_params();
    sp.max_audio_s = 5.0; // jfk (11 s) is "too long" for this scheduler...
    am_sched *s_short = am_sched_create(m, tok, &sp, NULL);
    sp = am_sched_default_params();
    am_sched *s = am_sched_create(m, tok, &sp, NULL);
    CHECK(s && s_short);
    if (!s || !s_short) return;
    am_transcribe_params tp = am_transcribe_default_params();
    tp.decode.temperature_inc = 0;
    collector c;
    collector_init(&c);
    slot_ref refs[6];
    char garbage[4096];
    for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (char)(i * 7919 % 251);
    clip bad = {"garbage", garbage, sizeof garbage, NULL}, empty = {"empty", garbage, 0, NULL};
    const clip *which[6] = {jfk, &bad, jfk, &empty, jfk, jfk};
    for (int i = 0; i < 6; i++) {
        refs[i] = (slot_ref){&c, i};
        am_sched_request q = make_req(which[i], &tp, &refs[i]);
        CHECK(am_sched_submit(i == 5 ? s_short : s, &q, NULL) == 0);
    }
    CHECK(wait_done(&c, 6, 300));
    CHECKF(c.r[0].status == 0 && c.r[2].status == 0 && c.r[4].status == 0, "valid requests must succeed");
    CHECKF(c.r[1].status == AM_EAUDIO, "garbage: %d %s", c.r[1].status, c.r[1].error);
    CHECKF(c.r[3].status == AM_EAUDIO, "empty: %d %s", c.r[3].status, c.r[3].error);
    CHECKF(c.r[5].status == AM_ERANGE, "too long: %d %s", c.r[5].status, c.r[5].error);
    CHECK(c.r[0].body && jfk->ref_body && strcmp(c.r[0].body, jfk->ref_body) == 0);
    // a WAV of 100 samples holds no mel frame: an empty transcript, at once
    unsigned char wav[44 + 200] = "RIFF";
    const uint32_t riff = 36 + 200, fmt_len = 16, rate = 16000, byte_rate = 32000, data_len = 200;
    const uint16_t pcm = 1, mono = 1, align = 2, bits = 16;
    memcpy(wav + 4, &riff, 4);
    memcpy(wav + 8, "WAVEfmt ", 8);
    memcpy(wav + 16, &fmt_len, 4);
    memcpy(wav + 20, &pcm, 2);
    memcpy(wav + 22, &mono, 2);
    memcpy(wav + 24, &rate, 4);
    memcpy(wav + 28, &byte_rate, 4);
    memcpy(wav + 32, &align, 2);
    memcpy(wav + 34, &bits, 2);
    memcpy(wav + 36, "data", 4);
    memcpy(wav + 40, &data_len, 4);
    memset(wav + 44, 0, 200);
    clip tiny = {"100 samples", wav, sizeof wav, NULL};
    collector c2;
    collector_init(&c2);
    slot_ref ref2 = {&c2, 0};
    am_sched_request q = make_req(&tiny, &tp, &ref2);
    CHECK(am_sched_submit(s, &q, NULL) == 0);
    CHECK(wait_done(&c2, 1, 30));
    CHECKF(c2.r[0].status == 0 && c2.r[0].body && strstr(c2.r[0].body, "en||"), "100 samples: %d %s",
           c2.r[0].status, c2.r[0].body ? c2.r[0].body : c2.r[0].error);
    collector_free(&c2);
    CHECK(c.r[4].body && jfk->ref_body && strcmp(c.r[4].body, jfk->ref_body) == 0);
    am_sched_free(s);
    am_sched_free(s_short);
    collector_free(&c);
}

// Cancel, deadline, admission limit, draining.
static void test_lifecycle(const am_model *m, const am_tokenizer *tok, clip *jfk) {
    am_metrics *met = am_metrics_create();
    am_sched_params sp = am_sched_default_params();
    sp.max_queue = 3;
    am_sched *s = am_sched_create(m, tok, &sp, met);
    CHECK(s != NULL);
    if (!s) return;
    am_transcribe_params slow = am_transcribe_default_params(); // fallback on: 6 attempts per window
    collector c;
    collector_init(&c);
    slot_ref refs[8];
    for (int i = 0; i < 8; i++) refs[i] = (slot_ref){&c, i};
    uint64_t id0 = 0;
    am_sched_request q0 = make_req(jfk, &slow, &refs[0]);
    am_sched_request q1 = make_req(jfk, &slow, &refs[1]);
    q1.timeout_s = 0.3;
    am_sched_request q2 = make_req(jfk, &slow, &refs[2]);
    CHECK(am_sched_submit(s, &q0, &id0) == 0 && id0 > 0);
    CHECK(am_sched_submit(s, &q1, NULL) == 0);
    CHECK(am_sched_submit(s, &q2, NULL) == 0);
    am_sched_request q3 = make_req(jfk, &slow, &refs[3]);
    CHECK(am_sched_submit(s, &q3, NULL) == AM_EFULL); // admission limit: 3 in flight
    usleep(400 * 1000);
    am_metrics_state st;
    am_sched_state(s, &st);
    CHECK(st.pending_results >= 1);
    am_sched_cancel(s, id0);
    am_sched_cancel(s, 999999); // unknown ids are ignored
    CHECK(wait_done(&c, 3, 300));
    CHECKF(c.r[0].status == AM_ECANCELED, "cancelled: %d", c.r[0].status);
    CHECKF(c.r[1].status == AM_ETIMEDOUT, "timed out: %d", c.r[1].status);
    CHECKF(c.r[2].status == 0, "untouched request: %d %s", c.r[2].status, c.r[2].error);
    am_sched_state(s, &st);
    CHECK(st.active_sequences == 0 && st.pending_results == 0); // slots freed
    char *stats = am_metrics_stats_json(met, &st);
    CHECK(stats && strstr(stats, "\"cancelled\":1") && strstr(stats, "\"timed_out\":1"));
    free(stats);
    // drain: in-flight work finishes, new work is refused
    am_transcribe_params fast = am_transcribe_default_params();
    fast.decode.temperature_inc = 0;
    am_sched_request q4 = make_req(jfk, &fast, &refs[4]);
    CHECK(am_sched_submit(s, &q4, NULL) == 0);
    CHECK(am_sched_drain(s, 120) == 0);
    CHECK(c.n_done == 4 && c.r[4].status == 0);
    CHECK(am_sched_draining(s));
    am_sched_request q5 = make_req(jfk, &fast, &refs[5]);
    CHECK(am_sched_submit(s, &q5, NULL) == AM_ESHUTDOWN);
    am_sched_free(s);
    am_metrics_free(met);
    collector_free(&c);
}

// The audio memory budget (1 MiB): two jfk.wav requests (352 KB uploads, 1.3 MB spectrograms) cannot both
// hold their spectrograms, so exactly one ends with AM_EFULL — at submit (the other's spectrogram already
// held) or after decoding (the other's upload held) — and the other succeeds; a request alone always
// passes; at the end nothing is held.
static void test_audio_budget(const am_model *m, const am_tokenizer *tok, clip *jfk) {
    am_sched_params sp = am_sched_default_params();
    sp.audio_memory_mb = 1;
    am_sched *s = am_sched_create(m, tok, &sp, NULL);
    CHECK(s != NULL);
    if (!s) return;
    am_transcribe_params fast = am_transcribe_default_params();
    fast.decode.temperature_inc = 0;
    collector c;
    collector_init(&c);
    slot_ref refs[3] = {{&c, 0}, {&c, 1}, {&c, 2}};
    am_sched_request q0 = make_req(jfk, &fast, &refs[0]), q1 = make_req(jfk, &fast, &refs[1]);
    const int rc0 = am_sched_submit(s, &q0, NULL), rc1 = am_sched_submit(s, &q1, NULL);
    CHECKF(rc0 == 0, "the first request: %d", rc0);
    CHECKF(rc1 == 0 || rc1 == AM_EFULL, "the second at submit: %d", rc1);
    CHECK(wait_done(&c, rc1 == 0 ? 2 : 1, 300));
    int ok = 0, full = rc1 == AM_EFULL;
    for (int i = 0; i < c.n_done; i++) {
        ok += c.r[c.order[i]].status == 0;
        full += c.r[c.order[i]].status == AM_EFULL;
    }
    CHECKF(ok == 1 && full == 1, "1 MiB budget, two 1.3 MB spectrograms: %d succeeded, %d refused", ok, full);
    am_metrics_state st;
    am_sched_state(s, &st);
    CHECKF(st.audio_memory_bytes == 0 && st.audio_memory_budget == (size_t)1 << 20, "held %zu of %zu",
           st.audio_memory_bytes, st.audio_memory_budget);
    am_sched_request q2 = make_req(jfk, &fast, &refs[2]); // alone again: passes
    CHECK(am_sched_submit(s, &q2, NULL) == 0);
    CHECK(wait_done(&c, c.n_done + 1, 300) && c.r[2].status == 0);
    am_sched_free(s);
    collector_free(&c);
}

// A 16 kHz mono 16-bit WAV of the clip repeated `times` times (malloc'd), or NULL.
static uint8_t *repeated_wav(const clip *c, int times, size_t *size) {
    float *pcm = NULL;
    size_t n = 0;
    if (am_audio_decode_memory(c->data, c->size, NULL, &pcm, &n)) return NULL;
    const uint32_t data_bytes = (uint32_t)(n * times * 2);
    uint8_t *w = malloc(44 + (size_t)data_bytes);
    if (w) {
        const uint32_t riff = 36 + data_bytes, fmt_len = 16, rate = 16000, byte_rate = 32000;
        const uint16_t pcm_fmt = 1, channels = 1, align = 2, bits = 16;
        memcpy(w, "RIFF", 4);
        memcpy(w + 4, &riff, 4);
        memcpy(w + 8, "WAVEfmt ", 8);
        memcpy(w + 16, &fmt_len, 4);
        memcpy(w + 20, &pcm_fmt, 2);
        memcpy(w + 22, &channels, 2);
        memcpy(w + 24, &rate, 4);
        memcpy(w + 28, &byte_rate, 4);
        memcpy(w + 32, &align, 2);
        memcpy(w + 34, &bits, 2);
        memcpy(w + 36, "data", 4);
        memcpy(w + 40, &data_bytes, 4);
        for (size_t i = 0; i < n * times; i++) {
            const float x = pcm[i % n] * 32768.0f;
            const int16_t v = (int16_t)(x > 32767 ? 32767 : x < -32768 ? -32768 : x);
            memcpy(w + 44 + 2 * i, &v, 2);
        }
        *size = 44 + (size_t)data_bytes;
    }
    am_audio_free(pcm);
    return w;
}

// Sequential mode serves by priority: a later high-priority request overtakes.
// The first request is long (the clip 12 times over), so that the others all
// queue behind it however fast the engine is.
static void test_priority(const am_model *m, const am_tokenizer *tok, clip *jfk) {
    am_sched_params sp = am_sched_default_params();
    sp.enable_batching = 0;
    am_sched *s = am_sched_create(m, tok, &sp, NULL);
    CHECK(s != NULL);
    if (!s) return;
    am_transcribe_params tp = am_transcribe_default_params();
    tp.decode.temperature_inc = 0;
    collector c;
    collector_init(&c);
    slot_ref refs[4];
    clip long_clip = {"jfk x12", NULL, 0, NULL};
    long_clip.data = repeated_wav(jfk, 12, &long_clip.size);
    CHECK(long_clip.data != NULL);
    for (int i = 0; i < 4 && long_clip.data; i++) {
        refs[i] = (slot_ref){&c, i};
        am_sched_request q = make_req(i == 0 ? &long_clip : jfk, &tp, &refs[i]);
        q.priority = i == 3 ? 10 : 0;
        CHECK(am_sched_submit(s, &q, NULL) == 0);
        if (i == 0) usleep(300 * 1000); // let the first one start
    }
    CHECK(wait_done(&c, 4, 300));
    int pos3 = -1, pos1 = -1;
    for (int i = 0; i < 4; i++) {
        if (c.order[i] == 3) pos3 = i;
        if (c.order[i] == 1) pos1 = i;
    }
    CHECKF(pos3 >= 0 && pos1 >= 0 && pos3 < pos1, "priority 10 finished at %d, the earlier priority 0 at %d", pos3,
           pos1);
    am_sched_free(s);
    collector_free(&c);
    free(long_clip.data);
}

// ---------------------------------------------------------------- VAD chunking and streaming progress
typedef struct {
    pthread_mutex_t lock;
    char *texts[64]; // progress texts in order
    int n, n_tokens_last, tokens_shrank;
} progress_log;

static void on_progress(void *user, const am_sched_progress *pr) {
    progress_log *l = user;
    pthread_mutex_lock(&l->lock);
    if (l->n < 64) l->texts[l->n++] = strdup(pr->text);
    if (pr->n_tokens < l->n_tokens_last) l->tokens_shrank = 1;
    l->n_tokens_last = pr->n_tokens;
    pthread_mutex_unlock(&l->lock);
}

typedef struct {
    progress_log log;
    collector c;
    slot_ref ref;
} chunk_req;

static void on_done_log(void *user, const am_sched_result *res) {
    chunk_req *q = user;
    on_done(&q->ref, res);
}

// One recording: jfk at `at` seconds (n_at of them) in `total` seconds of silence.
static unsigned char *recording(const float *jfk, size_t n_jfk, const double *at, int n_at, double total,
                                size_t *len) {
    const size_t n = (size_t)(total * 16000);
    float *x = calloc(n, sizeof *x);
    unsigned char *w = NULL;
    for (int k = 0; x && k < n_at; k++)
        for (size_t i = 0, o = (size_t)(at[k] * 16000); i < n_jfk && o + i < n; i++) x[o + i] = jfk[i];
    if (x && am_audio_wav_encode(x, n, &w, len)) w = NULL;
    free(x);
    return w;
}

static void test_chunking(const am_model *m, const am_tokenizer *tok, clip *jfk) {
    char vad[1024];
    snprintf(vad, sizeof vad, "%s/data/ggml-silero-v6.2.0.bin", AM_SOURCE_DIR);
    float *pcm = NULL;
    size_t n_pcm = 0;
    CHECK(am_audio_decode_memory(jfk->data, jfk->size, NULL, &pcm, &n_pcm) == 0);
    const double at[] = {1.0, 40.0, 47.0};
    size_t len = 0, slen = 0;
    unsigned char *rec = recording(pcm, n_pcm, at, 3, 75.0, &len), *sil = recording(pcm, n_pcm, at, 0, 12.0, &slen);
    am_transcribe_params tp = am_transcribe_default_params();
    tp.decode.temperature_inc = 0;
    // without a VAD model: chunking is refused at submit
    am_sched *s = am_sched_create(m, tok, NULL, NULL);
    am_sched_request q0 = {.audio = rec, .audio_size = len, .params = tp, .done = on_done, .chunking = AM_CHUNK_VAD};
    uint64_t id;
    CHECK(s && am_sched_submit(s, &q0, &id) == AM_EINVAL);
    CHECK(s && am_sched_has_vad(s) == 0 && am_sched_default_chunking(s) == AM_CHUNK_SEEK);
    am_sched_free(s);
    am_sched_params sp = am_sched_default_params();
    sp.vad_model = "/nonexistent/vad.bin";
    CHECK(am_sched_create(m, tok, &sp, NULL) == NULL);
    sp.vad_model = vad;
    sp.vad = 1;
    s = am_sched_create(m, tok, &sp, NULL);
    CHECK(s && am_sched_has_vad(s) && am_sched_default_chunking(s) == AM_CHUNK_VAD);
    if (!s) goto done;
    // a chunked request with progress, the silent one, a plain one alongside, and one cancelled
    chunk_req q[5];
    for (int i = 0; i < 5; i++) {
        memset(&q[i], 0, sizeof q[i]);
        pthread_mutex_init(&q[i].log.lock, NULL);
        collector_init(&q[i].c);
        q[i].ref = (slot_ref){&q[i].c, 0};
    }
    am_sched_request r[5] = {
        {.audio = rec, .audio_size = len, .params = tp, .chunking = AM_CHUNK_DEFAULT, .progress = on_progress},
        {.audio = sil, .audio_size = slen, .params = tp, .chunking = AM_CHUNK_VAD, .progress = on_progress},
        {.audio = jfk->data, .audio_size = jfk->size, .params = tp, .chunking = AM_CHUNK_SEEK},
        {.audio = rec, .audio_size = len, .params = tp, .chunking = AM_CHUNK_VAD, .progress = on_progress},
        {.audio = rec, .audio_size = len, .params = tp, .chunking = AM_CHUNK_SEEK, .progress = on_progress},
    };
    uint64_t ids[5];
    for (int i = 0; i < 5; i++) {
        r[i].done = on_done_log;
        r[i].user = &q[i];
        CHECK(am_sched_submit(s, &r[i], &ids[i]) == 0);
    }
    am_sched_cancel(s, ids[3]);
    for (int i = 0; i < 5; i++) CHECKF(wait_done(&q[i].c, 1, 300), "chunking: request %d did not finish", i);
    // 0: segments' windows inside the speech, in order; every progress text a prefix of the next and of the text
    CHECKF(q[0].c.r[0].status == 0, "chunked: %s", q[0].c.r[0].error);
    const char *body = q[0].c.r[0].body ? q[0].c.r[0].body : "";
    const char *bar = strchr(body, '|'), *bar2 = bar ? strchr(bar + 1, '|') : NULL;
    char *text = bar && bar2 ? strndup(bar + 1, (size_t)(bar2 - bar - 1)) : strdup("");
    CHECKF(bar2 && atof(bar2 + 1) == 75.0, "chunked: duration %s", bar2 ? bar2 + 1 : "?");
    int inside = 1, n_seg = 0, prev = -1;
    for (const char *line = strchr(body, '\n'); line && line[1]; line = strchr(line + 1, '\n'), n_seg++) {
        int id_, seek;
        if (sscanf(line + 1, "%d %d", &id_, &seek) != 2) break;
        const double t = seek * 0.01;
        inside &= id_ == n_seg && seek >= prev &&
                  ((t >= 0.5 && t <= 12.5) || (t >= 39.5 && t <= 58.5)); // 1-12 s; 40-58 s (one chunk)
        prev = seek;
    }
    CHECKF(inside && n_seg > 0, "chunked: %d segments, windows inside speech and in order: %d\n%s", n_seg, inside,
           body);
    // progress: a chain of prefixes of the final text, tokens never fewer. The chunks may all finish in
    // one step (then only the result carries the text); the seek loop over 75 s reports after each
    // window but the last.
    for (int k = 0; k < 5; k += 4) {
        const char *b = q[k].c.r[0].body ? q[k].c.r[0].body : "";
        const char *b1 = strchr(b, '|'), *b2 = b1 ? strchr(b1 + 1, '|') : NULL;
        char *final = b1 && b2 ? strndup(b1 + 1, (size_t)(b2 - b1 - 1)) : strdup("");
        int prefixes = !q[k].log.tokens_shrank && (k == 0 || q[k].log.n >= 2);
        for (int i = 0; i < q[k].log.n; i++) {
            prefixes &= !strncmp(q[k].log.texts[i], final, strlen(q[k].log.texts[i]));
            if (i) prefixes &= !strncmp(q[k].log.texts[i], q[k].log.texts[i - 1], strlen(q[k].log.texts[i - 1]));
        }
        CHECKF(prefixes && q[k].c.r[0].status == 0, "%s: %d progress reports, not a chain of prefixes of the text",
               k ? "seek loop" : "chunked", q[k].log.n);
        free(final);
    }
    // 1: silence: empty, nothing decoded (no progress either)
    CHECKF(q[1].c.r[0].status == 0 && q[1].c.r[0].body && strstr(q[1].c.r[0].body, "en||12\n") != NULL,
           "silence: %s %s", q[1].c.r[0].error, q[1].c.r[0].body ? q[1].c.r[0].body : "");
    // 2: the plain request is unaffected by the chunked ones beside it
    CHECKF(q[2].c.r[0].status == 0 && q[2].c.r[0].body && !strcmp(q[2].c.r[0].body, jfk->ref_body),
           "beside chunked requests: %s", q[2].c.r[0].body ? q[2].c.r[0].body : q[2].c.r[0].error);
    // 3: cancelled
    CHECKF(q[3].c.r[0].status == AM_ECANCELED, "cancelled chunked request: status %d", q[3].c.r[0].status);
    free(text);
    for (int i = 0; i < 5; i++) {
        for (int k = 0; k < q[i].log.n; k++) free(q[i].log.texts[k]);
        pthread_mutex_destroy(&q[i].log.lock);
        collector_free(&q[i].c);
    }
    am_sched_free(s);
done:
    am_audio_free(pcm);
    free(rec);
    free(sil);
}

int main(void) {
    char path[1024];
    if (!am_test_find("fixtures/ggml-test-tiny.en.bin", path, sizeof path)) {
        SKIP_CASE("sched", "tiny.en fixture not found");
        return am_test_finish("test_sched", 0);
    }
    am_model *m = am_model_load(path);
    am_tokenizer *tok = m ? am_tokenizer_create(m->vocab_bytes, m->vocab_len, m->n_file_vocab, m->hp.n_vocab) : NULL;
    CHECK(m && tok);
    if (!tok) return am_test_finish("test_sched", 0);
    const char *names[] = {"audio/jfk.wav", "audio/one-two-three-44k.wav", "audio/jfk.mp3", "audio/librivox-0880.wav",
                           "audio/espeak-quick-fox.wav"};
    clip clips[8];
    int n = 0;
    am_transcribe_params tp = am_transcribe_default_params();
    tp.decode.temperature_inc = 0;
    for (size_t i = 0; i < AM_ARRAY_LEN(names); i++) {
        if (!am_test_find(names[i], path, sizeof path)) {
            SKIP_CASE(names[i], "clip not found (set AMANUENSIS_TEST_DATA to the shared dir)");
            continue;
        }
        clips[n].name = names[i];
        clips[n].data = am_test_read_file(path, &clips[n].size);
        clips[n].ref_body = transcribe_alone(m, tok, &clips[n], &tp);
        CHECK(clips[n].ref_body != NULL);
        n++;
    }
    if (n > 0) {
        test_concurrent(m, tok, clips, n, 1);
        test_concurrent(m, tok, clips, n, 0);
        test_isolation(m, tok, &clips[0]);
        test_lifecycle(m, tok, &clips[0]);
        test_audio_budget(m, tok, &clips[0]);
        test_priority(m, tok, &clips[0]);
        test_chunking(m, tok, &clips[0]);
    }
    for (int i = 0; i < n; i++) {
        free(clips[i].data);
        free(clips[i].ref_body);
    }
    am_tokenizer_free(tok);
    am_model_free(m);
    return am_test_finish("test_sched", n > 0);
}
