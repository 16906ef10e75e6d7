// am_sched.c — admission queue, audio worker (decode + batched mel), and the
// engine thread that interleaves encoder batches with decoder steps.
#include "am_sched.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_audio.h"
#include "am_mel.h"

// Longest VAD chunk (seconds): one window.
#define AM_SCHED_CHUNK_S 30.0

// ---------------------------------------------------------------- requests
enum {
    RQ_AUDIO_QUEUED,  // waiting for the audio worker
    RQ_AUDIO_BUSY,    // being decoded
    RQ_READY,         // job created, waiting to enter the engine
    RQ_ENGINE,        // in the engine
};

typedef struct sreq {
    uint64_t id;
    int state;
    int priority;
    double submit_t, deadline;
    int cancel;              // 0, or the status to end with (AM_ECANCELED, AM_ETIMEDOUT, AM_ESHUTDOWN)
    void *audio;             // owned copy of the upload until decoded
    size_t audio_size;
    am_transcribe_params params;
    char *language, *prompt; // owned copies behind params
    am_job **jobs;           // (n_jobs,) the file's job, or its VAD chunks' span jobs in timeline order
    int n_jobs;
    int n_added;             // jobs [0, n_added) went into the engine (engine thread)
    int n_finished;          // jobs that left the engine (engine thread)
    int failed, pushed;      // a job failed / the request is on the finished list (engine thread)
    int chunking;            // AM_CHUNK_SEEK or AM_CHUNK_VAD
    am_vad_params vad;
    am_vad_chunk *chunks;    // the audio worker's chunk plan until the span jobs exist
    size_t n_chunks;
    double audio_s;
    size_t held;             // bytes charged to the audio memory budget (upload, then spectrogram)
    size_t mel_bytes;        // the spectrogram's size, once computed (audio worker)
    am_sched_done_fn done;
    am_sched_progress_fn progress;
    long progress_sig;       // what the last progress report covered (engine thread)
    void *user;
    struct sreq *next;       // in the live list
} sreq;

struct am_sched {
    am_sched_params p;
    const am_model *m;
    const am_tokenizer *tok;
    am_decoding *dc;
    am_metrics *metrics;
    am_engine *engine; // engine thread only
    am_vad_model *vad; // for AM_CHUNK_VAD (NULL: none loaded)
    am_align_head heads[AM_ALIGN_MAX_HEADS]; // parsed params.alignment_heads (n_heads 0: the model's defaults)
    int max_seqs;                            // decoder sequences the memory budget holds (0: no limit)
    int chunk_cap;                           // a request's VAD chunks in the engine at once
    int n_heads;
    pthread_mutex_t lock;
    pthread_cond_t audio_cv, engine_cv, idle_cv;
    sreq *live; // every admitted request not yet being completed (newest first)
    int n_live;
    int n_unfinished; // admitted requests whose completion callback has not returned
    uint64_t next_id;
    int stopping, draining;
    pthread_t audio_thread, engine_thread;
    int threads_started;
    size_t held_bytes;   // sum of the live requests' held bytes
    size_t audio_budget; // p.audio_memory_mb in bytes (0: unlimited)
    int active_windows;  // mirrors of the engine's counts (engine thread writes, under the lock)
    int waiting_windows;
};

am_sched_params am_sched_default_params(void) {
    am_sched_params p = {
        .enable_batching = 1,
        .max_batch_size = 8,
        .max_wait_ms = 50,
        .max_windows = 0,
        .window_memory_mb = 4096,
        .max_queue = 64,
        .audio_memory_mb = 2048,
        .max_audio_s = 3 * 3600.0,
        .default_timeout_s = 60.0,
        .kv_type = AM_TYPE_F32,
        .alignment_heads = NULL,
    };
    return p;
}

static int env_bool(const char *v, int def) {
    if (!v || !*v) return def;
    if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) return 0;
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) return 1;
    return def;
}

void am_sched_params_from_env(am_sched_params *p) {
    p->enable_batching = env_bool(getenv("ENABLE_BATCHING"), p->enable_batching);
    const char *v = getenv("BATCH_MAX_SIZE");
    if (v && atoi(v) > 0) p->max_batch_size = atoi(v);
    v = getenv("BATCH_MAX_WAIT_MS");
    if (v && *v && atoi(v) >= 0) p->max_wait_ms = atoi(v);
}

static void free_jobs(sreq *r) {
    for (int i = 0; i < r->n_jobs; i++) am_job_free(r->jobs[i]);
    free(r->jobs);
    r->jobs = NULL;
    r->n_jobs = 0;
}

static void free_req(sreq *r) {
    if (!r) return;
    free(r->audio);
    free(r->language);
    free(r->prompt);
    free(r->chunks);
    free_jobs(r);
    free(r);
}

// Unlink r from the live list. Called with the lock held.
static void unlink_req(am_sched *s, sreq *r) {
    for (sreq **pp = &s->live; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            s->n_live--;
            break;
        }
}

// End a request: metrics, callback, free. Called WITHOUT the lock; r must
// already be unlinked (nobody else can reach it).
static void complete(am_sched *s, sreq *r, int status, const char *msg) {
    am_sched_result res = {0};
    const double now = am_time_s();
    res.status = status;
    res.error = status ? (msg && *msg ? msg : am_strerror(status)) : NULL;
    res.audio_s = r->audio_s;
    res.processing_s = now - r->submit_t;
    double first = 0;
    for (int i = 0; i < r->n_jobs; i++) {
        const double t = am_job_first_encode_time(r->jobs[i]);
        if (t > 0 && (first == 0 || t < first)) first = t;
    }
    res.queue_wait_s = first > 0 ? first - r->submit_t : res.processing_s;
    long tokens = 0;
    if (status == 0) {
        const am_transcript *tr = am_job_transcript(r->jobs[0]);
        tokens = tr ? tr->n_tokens : 0;
        res.job = r->jobs[0];
        r->jobs[0] = NULL; // handed over
    }
    if (s->metrics) {
        if (status == AM_ECANCELED || status == AM_ETIMEDOUT) am_metrics_cancelled(s->metrics, status == AM_ETIMEDOUT);
        am_metrics_request(s->metrics, status == 0, res.queue_wait_s, res.processing_s, r->audio_s, tokens);
    }
    r->done(r->user, &res);
    const size_t held = r->held;
    free_req(r);
    pthread_mutex_lock(&s->lock);
    s->held_bytes -= held;
    if (--s->n_unfinished == 0) pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->lock);
}

// ---------------------------------------------------------------- audio worker
// Service order: higher priority first, then earlier arrival.
static int served_before(const sreq *a, const sreq *b) {
    return a->priority != b->priority ? a->priority > b->priority : a->submit_t < b->submit_t;
}

// Take up to `max` queued requests, most urgent first. Lock held.
static int take_audio(am_sched *s, sreq **out, int max) {
    int n = 0;
    while (n < max) {
        sreq *best = NULL;
        for (sreq *r = s->live; r; r = r->next)
            if (r->state == RQ_AUDIO_QUEUED && !r->cancel && (!best || served_before(r, best))) best = r;
        if (!best) break;
        best->state = RQ_AUDIO_BUSY;
        out[n++] = best;
    }
    return n;
}

// VAD chunking: the speech regions of the clip, merged into chunks (r->chunks).
static int plan_chunks(am_sched *s, sreq *r, const float *pcm, size_t n, char *err) {
    am_vad_segment *segs = NULL;
    size_t n_segs = 0;
    int rc = am_vad_detect(s->vad, pcm, n, &r->vad, &segs, &n_segs);
    if (!rc) rc = am_vad_chunks(segs, n_segs, n, AM_SCHED_CHUNK_S, &r->chunks, &r->n_chunks);
    am_vad_segments_free(segs);
    if (rc) snprintf(err, 256, "voice activity detection: %s", am_last_error());
    return rc;
}

// The request's jobs from its mel: one whole-file job (mel taken over), or a
// span job per chunk (at least one: no speech gives one empty span).
static int create_jobs(am_sched *s, sreq *r, am_mel_result *mel) {
    const int n = r->chunking == AM_CHUNK_VAD ? AM_MAX(1, (int)r->n_chunks) : 1;
    if (!(r->jobs = calloc((size_t)n, sizeof *r->jobs))) return am_set_error(AM_ENOMEM, "out of memory");
    r->n_jobs = n;
    for (int i = 0; i < n; i++) {
        if (r->chunking != AM_CHUNK_VAD) {
            r->jobs[i] = am_job_create(s->dc, mel, &r->params);
        } else if (r->n_chunks == 0) {
            r->jobs[i] = am_job_create_span(s->dc, mel, 0, 0, &r->params);
        } else { // samples -> mel frames (hop 160), at most one window
            const int f0 = (int)AM_MIN(r->chunks[i].start / 160, (int64_t)mel->content_frames);
            const int f1 = (int)AM_MIN((r->chunks[i].end + 159) / 160, (int64_t)mel->content_frames);
            r->jobs[i] = am_job_create_span(s->dc, mel, f0, AM_MIN(f1 - f0, AM_MEL_WINDOW_FRAMES), &r->params);
        }
        if (!r->jobs[i]) {
            free_jobs(r);
            return am_last_error_code() ? am_last_error_code() : AM_EINTERNAL;
        }
        am_job_set_priority(r->jobs[i], r->priority, r->deadline);
        am_job_set_user(r->jobs[i], r);
    }
    free(r->chunks);
    r->chunks = NULL;
    return 0;
}

// PCM of one mel batch: decoded clips are turned into spectrograms (and their
// samples freed) once they hold this much, so a batch of long uploads never
// holds all its samples at once (3 h of audio is 691 MB of float samples).
#define PCM_GROUP_BYTES ((size_t)64 << 20)

// The spectrograms of clips [0, n) that decoded (codes[i] == 0) in one batched
// call, then their jobs; frees every pcm[i]. Failures land in codes/errs.
static void mel_group(am_sched *s, am_mel *mel, sreq **batch, float **pcm, const size_t *n_pcm, int *codes,
                      char (*errs)[256], am_mel_result *out, int n) {
    const float *clips[256];
    size_t lens[256];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!codes[i]) {
            clips[k] = pcm[i];
            lens[k++] = n_pcm[i];
        }
    const int mrc = k ? am_mel_compute_batch(mel, clips, lens, k, out) : 0;
    char mel_err[256];
    snprintf(mel_err, sizeof mel_err, "%s", mrc ? am_last_error() : "");
    for (int i = 0, m_i = 0; i < n; i++) {
        sreq *r = batch[i];
        if (!codes[i]) {
            if (mrc) {
                codes[i] = mrc;
                snprintf(errs[i], sizeof errs[i], "%s", mel_err);
            } else {
                r->mel_bytes = (size_t)out[m_i].n_mels * (size_t)out[m_i].n_frames * sizeof(float);
                if (create_jobs(s, r, &out[m_i])) {
                    codes[i] = am_last_error_code() ? am_last_error_code() : AM_EINTERNAL;
                    snprintf(errs[i], sizeof errs[i], "%s", am_last_error());
                }
                am_mel_free_result(&out[m_i]); // taken over by a whole-file job, else copied by the spans
            }
            m_i++;
        }
        am_audio_free(pcm[i]);
        pcm[i] = NULL;
    }
}

// Charge r's spectrogram instead of its upload to the audio memory budget, or
// refuse it when that takes the total above the budget while other requests
// hold some. Lock held.
static int charge_mel(am_sched *s, sreq *r, char *err) {
    s->held_bytes -= r->held;
    r->held = 0;
    if (s->audio_budget && s->held_bytes > 0 && s->held_bytes + r->mel_bytes > s->audio_budget) {
        snprintf(err, 256,
                 "the server's audio memory is full: this audio needs %.0f MiB, requests in flight hold %.0f of "
                 "%.0f MiB; retry later",
                 r->mel_bytes / 1048576.0, s->held_bytes / 1048576.0, s->audio_budget / 1048576.0);
        return AM_EFULL;
    }
    r->held = r->mel_bytes;
    s->held_bytes += r->held;
    return 0;
}

static void *audio_main(void *arg) {
    am_sched *s = arg;
    const int B = s->p.enable_batching ? s->p.max_batch_size : 1;
    sreq **batch = calloc((size_t)B, sizeof *batch);
    float **pcm = calloc((size_t)B, sizeof *pcm);
    size_t *n_pcm = calloc((size_t)B, sizeof *n_pcm);
    am_mel_result *mels = calloc((size_t)B, sizeof *mels);
    am_mel *mel = am_mel_create(s->m->mel_filters, s->m->hp.n_mels);
    char (*errs)[256] = calloc((size_t)B, sizeof *errs);
    int *codes = calloc((size_t)B, sizeof *codes);
    if (!batch || !pcm || !n_pcm || !mels || !mel || !errs || !codes) {
        fprintf(stderr, "amanuensis: audio worker: out of memory\n");
        goto done;
    }
    am_audio_params ap = am_audio_default_params();
    ap.max_seconds = s->p.max_audio_s;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int n;
        while (!(n = take_audio(s, batch, B)) && !s->stopping) pthread_cond_wait(&s->audio_cv, &s->lock);
        pthread_mutex_unlock(&s->lock);
        if (n == 0) break; // stopping
        // decode every upload; the successful ones get their mel in batched calls of at most PCM_GROUP_BYTES
        int g0 = 0;
        size_t group_bytes = 0;
        for (int i = 0; i < n; i++) {
            sreq *r = batch[i];
            pcm[i] = NULL;
            codes[i] = am_audio_decode_memory(r->audio, r->audio_size, &ap, &pcm[i], &n_pcm[i]);
            if (codes[i]) snprintf(errs[i], sizeof errs[i], "%s", am_last_error());
            free(r->audio);
            r->audio = NULL;
            if (!codes[i] && r->chunking == AM_CHUNK_VAD) codes[i] = plan_chunks(s, r, pcm[i], n_pcm[i], errs[i]);
            if (!codes[i]) {
                r->audio_s = n_pcm[i] / (double)AM_SAMPLE_RATE;
                group_bytes += n_pcm[i] * sizeof(float);
            }
            if (group_bytes >= PCM_GROUP_BYTES || i == n - 1) {
                mel_group(s, mel, batch + g0, pcm + g0, n_pcm + g0, codes + g0, errs + g0, mels, i + 1 - g0);
                g0 = i + 1;
                group_bytes = 0;
            }
        }
        // hand over: failures end here, the rest go to the engine
        pthread_mutex_lock(&s->lock);
        int n_fail = 0;
        for (int i = 0; i < n; i++) {
            sreq *r = batch[i];
            if (!codes[i] && !r->cancel) codes[i] = charge_mel(s, r, errs[i]);
            if (codes[i] || r->cancel) {
                if (!codes[i]) {
                    codes[i] = r->cancel;
                    snprintf(errs[i], sizeof errs[i], "%s", am_strerror(r->cancel));
                }
                unlink_req(s, r);
                batch[n_fail] = r;
                codes[n_fail] = codes[i];
                memcpy(errs[n_fail], errs[i], sizeof errs[i]);
                n_fail++;
            } else {
                r->state = RQ_READY;
            }
        }
        pthread_cond_signal(&s->engine_cv);
        pthread_mutex_unlock(&s->lock);
        for (int i = 0; i < n_fail; i++) complete(s, batch[i], codes[i], errs[i]);
    }
done:
    am_mel_free(mel);
    free(batch);
    free(pcm);
    free(n_pcm);
    free(mels);
    free(errs);
    free(codes);
    return NULL;
}

// ---------------------------------------------------------------- engine thread
// Finished jobs, collected by on_finish during engine calls and completed after.
typedef struct {
    sreq *v[4096];
    int n;
} finished_list;

// A job left the engine: its request is finished when all its jobs are, or
// at once when one failed (the others are removed then).
static void on_finish(am_job *j, void *ctx) {
    finished_list *f = ctx;
    sreq *r = am_job_user(j);
    r->n_finished++;
    if (am_job_state(j) != AM_JOB_DONE) r->failed = 1;
    if (!r->pushed && (r->failed || r->n_finished == r->n_jobs) && f->n < (int)AM_ARRAY_LEN(f->v)) {
        r->pushed = 1;
        f->v[f->n++] = r;
    }
}

static void finish_collected(am_sched *s, finished_list *f) {
    if (!f->n) return;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < f->n; i++) {
        sreq *r = f->v[i];
        unlink_req(s, r);
        if (r->failed) // the other chunks stop
            for (int k = 0; k < r->n_jobs; k++) {
                const int st = am_job_state(r->jobs[k]);
                if (st != AM_JOB_DONE && st != AM_JOB_ERROR) am_engine_remove(s->engine, r->jobs[k]);
            }
    }
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < f->n; i++) {
        sreq *r = f->v[i];
        const char *msg = NULL;
        int err = 0;
        for (int k = 0; k < r->n_jobs && !err; k++)
            if (am_job_state(r->jobs[k]) == AM_JOB_ERROR) err = am_job_error(r->jobs[k], &msg);
        if (r->failed && !err) err = AM_EINTERNAL;
        if (!err && r->chunking == AM_CHUNK_VAD && am_job_join(r->jobs[0], r->jobs + 1, r->n_jobs - 1, r->audio_s)) {
            err = am_last_error_code() ? am_last_error_code() : AM_EINTERNAL;
            msg = am_last_error();
        }
        complete(s, r, err, msg);
    }
    f->n = 0;
}

// ---------------------------------------------------------------- streaming progress
// What a request has made final so far, as a number that grows with it.
static long progress_signature(const sreq *r) {
    long sig = 0;
    for (int i = 0; i < r->n_jobs; i++) {
        if (am_job_state(r->jobs[i]) == AM_JOB_DONE) {
            sig += 1L << 24;
            continue;
        }
        sig += am_job_n_committed(r->jobs[i]);
        break; // text after an unfinished chunk is not final yet
    }
    return sig;
}

typedef struct {
    char *text;
    size_t len, cap;
    int32_t *tokens;
    float *logprobs;
    int n, cap_tokens;
} progress_buf;

static int pb_text(progress_buf *b, const char *t) {
    const size_t n = strlen(t);
    if (b->len + n + 1 > b->cap) {
        const size_t cap = AM_MAX(2 * b->cap, b->len + n + 256);
        char *v = realloc(b->text, cap);
        if (!v) return -1;
        b->text = v;
        b->cap = cap;
    }
    memcpy(b->text + b->len, t, n + 1);
    b->len += n;
    return 0;
}

static int pb_segments(progress_buf *b, const am_segment *segs, int n_segs) {
    for (int i = 0; i < n_segs; i++) {
        const am_segment *sg = &segs[i];
        if (b->n + sg->n_tokens > b->cap_tokens) {
            const int cap = AM_MAX(2 * b->cap_tokens, b->n + sg->n_tokens + 256);
            int32_t *t = realloc(b->tokens, (size_t)cap * sizeof *t);
            if (t) b->tokens = t;
            float *l = realloc(b->logprobs, (size_t)cap * sizeof *l);
            if (l) b->logprobs = l;
            if (!t || !l) return -1;
            b->cap_tokens = cap;
        }
        for (int k = 0; k < sg->n_tokens; k++) {
            b->tokens[b->n] = sg->tokens[k];
            b->logprobs[b->n++] = sg->token_logprobs ? sg->token_logprobs[k] : 0.0f;
        }
    }
    return 0;
}

// Report the text made final so far to a streaming request (engine thread,
// no lock held: only this thread frees requests that are in the engine).
static void report_progress(sreq *r, progress_buf *b) {
    b->len = 0;
    b->n = 0;
    if (pb_text(b, "")) return;
    for (int i = 0; i < r->n_jobs; i++) {
        const am_job *j = r->jobs[i];
        if (am_job_state(j) == AM_JOB_DONE) {
            const am_transcript *tr = am_job_transcript(j);
            if (pb_text(b, tr->text ? tr->text : "") || pb_segments(b, tr->segments, tr->n_segments)) return;
            continue;
        }
        char *t = NULL;
        int n_segs = 0;
        const am_segment *segs = am_job_segments(j, &n_segs);
        const int bad = am_job_text_so_far(j, &t) || pb_text(b, t) || pb_segments(b, segs, n_segs);
        free(t);
        if (bad) return;
        break;
    }
    const am_sched_progress pr = {.text = b->text, .tokens = b->tokens, .logprobs = b->logprobs, .n_tokens = b->n};
    r->progress(r->user, &pr);
}

// Streaming requests in the engine whose final text grew: report each.
static void progress_all(am_sched *s, progress_buf *b) {
    sreq *due[256];
    int n = 0;
    pthread_mutex_lock(&s->lock);
    for (sreq *r = s->live; r && n < (int)AM_ARRAY_LEN(due); r = r->next) {
        if (!r->progress || r->state != RQ_ENGINE || r->cancel || r->pushed) continue;
        const long sig = progress_signature(r);
        if (sig == r->progress_sig) continue;
        r->progress_sig = sig;
        due[n++] = r;
    }
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++) report_progress(due[i], b);
}

// Put more of r's jobs into the engine, keeping at most chunk_cap of them
// there at once (a long file's chunks do not take every window slot from the
// other requests). Returns the number added, or -1 (nothing added) when the
// engine refuses a job, which valid jobs never make it do.
static int feed_jobs(am_sched *s, sreq *r) {
    int k = 0;
    while (r->n_added < r->n_jobs && r->n_added - r->n_finished < s->chunk_cap) {
        if (am_engine_add(s->engine, r->jobs[r->n_added])) return k ? k : -1;
        r->n_added++, k++;
    }
    return k;
}

// Cancellations and deadlines, and admission of ready requests into the
// engine. Lock held; requests to end are moved to `ended` (unlinked).
static int housekeeping(am_sched *s, sreq **ended, int cap, double now) {
    int n = 0;
    int engine_jobs = am_engine_pending(s->engine);
    for (sreq *r = s->live, *next; r; r = next) {
        next = r->next;
        if (!r->cancel && r->deadline > 0 && now >= r->deadline) r->cancel = AM_ETIMEDOUT;
        if (r->cancel && r->state != RQ_AUDIO_BUSY && n < cap) {
            if (r->state == RQ_ENGINE)
                for (int k = 0; k < r->n_jobs; k++) {
                    const int st = am_job_state(r->jobs[k]);
                    if (st != AM_JOB_DONE && st != AM_JOB_ERROR && !am_engine_remove(s->engine, r->jobs[k]))
                        engine_jobs--;
                }
            unlink_req(s, r);
            ended[n++] = r;
        }
    }
    // admission: batched mode admits every ready request (the engine's slot
    // limit bounds the windows in flight); sequential mode one at a time
    for (;;) {
        if (!s->p.enable_batching && engine_jobs > 0) break;
        sreq *best = NULL;
        for (sreq *r = s->live; r; r = r->next)
            if (r->state == RQ_READY && (!best || served_before(r, best))) best = r;
        if (!best) break;
        const int k = feed_jobs(s, best);
        if (k < 0) break;
        best->state = RQ_ENGINE;
        engine_jobs += k;
    }
    // the next chunks of chunked requests as their earlier ones finish
    for (sreq *r = s->live; r; r = r->next)
        if (r->state == RQ_ENGINE && !r->cancel && !r->pushed && r->n_added < r->n_jobs) feed_jobs(s, r);
    return n;
}

// The earliest deadline among live requests (0 = none). Lock held.
static double next_deadline(const am_sched *s) {
    double d = 0;
    for (const sreq *r = s->live; r; r = r->next)
        if (r->deadline > 0 && !r->cancel && (d == 0 || r->deadline < d)) d = r->deadline;
    return d;
}

// Wait for work until `until` (am_time_s clock), at most a second. Lock held.
static void timed_wait(am_sched *s, double until) {
    const double wait = until - am_time_s();
    am_cond_wait_s(&s->engine_cv, &s->lock, wait < 0 ? 0 : wait > 1.0 ? 1.0 : wait);
}

static void *engine_main(void *arg) {
    am_sched *s = arg;
    finished_list *fin = calloc(1, sizeof *fin);
    progress_buf pb = {0};
    sreq *ended[256];
    am_engine_params ep = am_engine_default_params();
    ep.max_batch = s->p.enable_batching ? s->p.max_batch_size : 1;
    ep.max_windows = s->p.enable_batching ? s->p.max_windows : 1;
    ep.kv_type = s->p.kv_type;
    ep.max_seqs = s->p.enable_batching ? s->max_seqs : 0;
    ep.alignment_heads = s->n_heads ? s->heads : NULL;
    ep.n_alignment_heads = s->n_heads;
    ep.on_finish = on_finish;
    ep.ctx = fin;
    if (!fin || !(s->engine = am_engine_create(s->dc, &ep))) {
        fprintf(stderr, "amanuensis: engine: %s\n", am_last_error());
        free(fin);
        return NULL;
    }
    const double max_wait = (s->p.enable_batching ? s->p.max_wait_ms : 0) / 1000.0;
    int last_was_encode = 0;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        const double now = am_time_s();
        int n_end = housekeeping(s, ended, (int)AM_ARRAY_LEN(ended), now);
        const int waiting = am_engine_waiting_windows(s->engine);
        const int active = am_engine_active_windows(s->engine);
        s->active_windows = active;
        s->waiting_windows = waiting;
        const double oldest = am_engine_oldest_wait(s->engine);
        const int free_slots = ep.max_windows - active;
        // hybrid collector: a full batch waits, or the oldest window has waited long enough, or nothing
        // could join it: the engine is idle and no upload is being decoded (a lone request never waits)
        int upstream = 0;
        for (const sreq *r = s->live; r && !upstream; r = r->next)
            upstream = r->state == RQ_AUDIO_QUEUED || r->state == RQ_AUDIO_BUSY;
        const int fire = waiting > 0 && (waiting >= ep.max_batch || now - oldest >= max_wait ||
                                         (active == 0 && !upstream));
        int action = 0; // 1 encode, 2 decode
        if (fire && free_slots > 0 && (active == 0 || !last_was_encode)) action = 1;
        else if (active > 0) action = 2;
        if (!action && !n_end && fin->n == 0) {
            if (s->stopping && s->n_live == 0 && s->n_unfinished == 0) {
                pthread_mutex_unlock(&s->lock);
                break;
            }
            double until = now + 1.0;
            if (waiting > 0 && free_slots > 0) until = oldest + max_wait;
            const double dl = next_deadline(s);
            if (dl > 0 && dl < until) until = dl;
            timed_wait(s, until);
        }
        pthread_mutex_unlock(&s->lock);
        for (int i = 0; i < n_end; i++) complete(s, ended[i], ended[i]->cancel, NULL);
        if (action == 1) {
            const double t0 = am_time_s();
            const int k = am_engine_encode(s->engine, AM_MIN(ep.max_batch, free_slots));
            if (k > 0 && s->metrics) am_metrics_batch(s->metrics, AM_BATCH_ENCODER, k, am_time_s() - t0);
            last_was_encode = 1;
        } else if (action == 2) {
            const double t0 = am_time_s();
            const int k = am_engine_decode_step(s->engine);
            if (k > 0 && s->metrics) am_metrics_batch(s->metrics, AM_BATCH_DECODER, k, am_time_s() - t0);
            last_was_encode = 0;
        }
        if (action) progress_all(s, &pb);
        finish_collected(s, fin);
    }
    am_engine_free(s->engine);
    s->engine = NULL;
    free(pb.text);
    free(pb.tokens);
    free(pb.logprobs);
    free(fin);
    return NULL;
}

// ---------------------------------------------------------------- lifecycle
static void destroy(am_sched *s) {
    am_decoding_free(s->dc);
    am_vad_model_free(s->vad);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->audio_cv);
    pthread_cond_destroy(&s->engine_cv);
    pthread_cond_destroy(&s->idle_cv);
    free(s);
}

am_sched *am_sched_create(const am_model *m, const am_tokenizer *tok, const am_sched_params *p,
                          am_metrics *metrics) {
    am_sched_params def = am_sched_default_params();
    if (!p) p = &def;
    if (!m || !tok || p->max_batch_size < 1 || p->max_batch_size > 256 || p->max_wait_ms < 0 ||
        p->max_windows < 0 || p->max_windows > 4096 || p->max_queue < 1 || p->window_memory_mb < 0 ||
        p->audio_memory_mb < 0 ||
        (p->kv_type != AM_TYPE_F32 && p->kv_type != AM_TYPE_F16)) {
        am_set_error(AM_EINVAL, "invalid scheduler parameters");
        return NULL;
    }
    am_sched *s = calloc(1, sizeof *s);
    if (!s) {
        am_set_error(AM_ENOMEM, "out of memory");
        return NULL;
    }
    s->p = *p;
    s->audio_budget = (size_t)p->audio_memory_mb << 20;
    s->p.alignment_heads = NULL; // borrowed: parsed into s->heads below
    if (p->alignment_heads && *p->alignment_heads) {
        const int n = am_align_parse_heads(m, p->alignment_heads, s->heads, AM_ALIGN_MAX_HEADS);
        if (n <= 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", n < 0 ? am_last_error() : "no heads given");
            am_set_error(AM_EINVAL, "invalid alignment heads '%s': %s", p->alignment_heads, msg);
            free(s);
            return NULL;
        }
        s->n_heads = n;
    }
    if (s->p.max_windows == 0) { // as many windows as the memory budget holds
        const double xkv = (double)am_xkv_bytes(m, p->kv_type), seq = (double)am_seq_bytes_for(m, 0, p->kv_type);
        const double budget = (double)p->window_memory_mb * 1048576.0, n = budget / (xkv + seq);
        s->p.max_windows = n < 1 ? 1 : n > 64 ? 64 : (int)n;
        // the rest of the budget holds the extra sequences of beams and best-of candidates
        const double n_seqs = (budget - s->p.max_windows * xkv) / seq;
        s->max_seqs = n_seqs < s->p.max_windows ? s->p.max_windows : n_seqs > 1e6 ? 1000000 : (int)n_seqs;
    }
    s->p.vad_model = NULL; // borrowed: loaded below
    if (p->vad_model && *p->vad_model && !(s->vad = am_vad_model_load(p->vad_model))) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", am_last_error());
        am_set_error(AM_EINVAL, "VAD model %s: %s", p->vad_model, msg);
        free(s);
        return NULL;
    }
    if (p->vad && !s->vad) {
        am_set_error(AM_EINVAL, "VAD chunking by default (vad on) needs a VAD model");
        free(s);
        return NULL;
    }
    s->chunk_cap = s->p.enable_batching ? AM_MAX(1, s->p.max_windows / 4) : 1;
    s->m = m;
    s->tok = tok;
    s->metrics = metrics;
    s->next_id = 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->audio_cv, NULL);
    pthread_cond_init(&s->engine_cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    if (!(s->dc = am_decoding_create(m, tok))) goto fail;
    if (pthread_create(&s->engine_thread, NULL, engine_main, s)) {
        am_set_error(AM_ENOMEM, "cannot start the engine thread");
        goto fail;
    }
    if (pthread_create(&s->audio_thread, NULL, audio_main, s)) {
        pthread_mutex_lock(&s->lock);
        s->stopping = 1;
        pthread_cond_broadcast(&s->engine_cv);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->engine_thread, NULL);
        am_set_error(AM_ENOMEM, "cannot start the audio thread");
        goto fail;
    }
    s->threads_started = 1;
    return s;
fail:
    destroy(s);
    return NULL;
}

// Mark every live request to end with `status`. Lock held.
static void cancel_all(am_sched *s, int status) {
    for (sreq *r = s->live; r; r = r->next)
        if (!r->cancel) r->cancel = status;
    pthread_cond_broadcast(&s->engine_cv);
    pthread_cond_broadcast(&s->audio_cv);
}

void am_sched_free(am_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->draining = 1;
    s->stopping = 1;
    cancel_all(s, AM_ESHUTDOWN);
    pthread_mutex_unlock(&s->lock);
    if (s->threads_started) {
        pthread_join(s->audio_thread, NULL);
        pthread_join(s->engine_thread, NULL);
    }
    // anything left (e.g. the engine failed to start) ends here
    for (sreq *r = s->live, *next; r; r = next) {
        next = r->next;
        s->n_live--;
        complete(s, r, AM_ESHUTDOWN, NULL);
    }
    s->live = NULL;
    destroy(s);
}

// ---------------------------------------------------------------- API
int am_sched_submit(am_sched *s, const am_sched_request *req, uint64_t *id) {
    if (!s || !req || !req->done || (!req->audio && req->audio_size))
        return am_set_error(AM_EINVAL, "invalid request");
    const am_transcribe_params *tp = &req->params;
    if (tp->language && *tp->language && am_tokenizer_lang_index(tp->language) < 0)
        return am_set_error(AM_EINVAL, "unsupported language '%s'", tp->language);
    const int chunking = req->chunking == AM_CHUNK_DEFAULT ? am_sched_default_chunking(s) : req->chunking;
    am_vad_params vp = req->vad.threshold == 0.0f ? am_vad_default_params() : req->vad;
    vp.max_speech_s = (float)AM_SCHED_CHUNK_S;
    if (chunking != AM_CHUNK_SEEK && chunking != AM_CHUNK_VAD)
        return am_set_error(AM_EINVAL, "invalid chunking %d", req->chunking);
    if (chunking == AM_CHUNK_VAD && !s->vad)
        return am_set_error(AM_EINVAL, "VAD chunking is not available: the server has no VAD model (--vad-model)");
    if (chunking == AM_CHUNK_VAD && am_vad_check_params(&vp)) return am_last_error_code();
    sreq *r = calloc(1, sizeof *r);
    if (!r) return am_set_error(AM_ENOMEM, "out of memory");
    r->audio = malloc(req->audio_size ? req->audio_size : 1);
    r->language = tp->language ? strdup(tp->language) : NULL;
    r->prompt = tp->initial_prompt ? strdup(tp->initial_prompt) : NULL;
    if (!r->audio || (tp->language && !r->language) || (tp->initial_prompt && !r->prompt)) {
        free_req(r);
        return am_set_error(AM_ENOMEM, "out of memory for the upload");
    }
    if (req->audio_size) memcpy(r->audio, req->audio, req->audio_size);
    r->audio_size = req->audio_size;
    r->params = *tp;
    r->params.language = r->language;
    r->params.initial_prompt = r->prompt;
    r->priority = req->priority;
    r->submit_t = am_time_s();
    const double timeout = req->timeout_s > 0 ? req->timeout_s : s->p.default_timeout_s;
    r->deadline = timeout > 0 ? r->submit_t + timeout : 0;
    r->done = req->done;
    r->progress = req->progress;
    r->user = req->user;
    r->chunking = chunking;
    r->vad = vp;
    r->state = RQ_AUDIO_QUEUED;
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (s->draining) rc = am_set_error(AM_ESHUTDOWN, "the server is shutting down");
    else if (s->n_unfinished >= s->p.max_queue)
        rc = am_set_error(AM_EFULL, "too many requests in flight (%d); retry later", s->n_unfinished);
    else if (s->audio_budget && s->held_bytes > 0 && s->held_bytes + req->audio_size > s->audio_budget)
        rc = am_set_error(AM_EFULL, "the server's audio memory is full: requests in flight hold %.0f of %.0f MiB; "
                                    "retry later",
                          s->held_bytes / 1048576.0, s->audio_budget / 1048576.0);
    if (!rc) {
        r->held = req->audio_size;
        s->held_bytes += r->held;
        r->id = s->next_id++;
        r->next = s->live;
        s->live = r;
        s->n_live++;
        s->n_unfinished++;
        if (id) *id = r->id;
        pthread_cond_signal(&s->audio_cv);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc) free_req(r);
    return rc;
}

void am_sched_cancel(am_sched *s, uint64_t id) {
    pthread_mutex_lock(&s->lock);
    for (sreq *r = s->live; r; r = r->next)
        if (r->id == id && !r->cancel) {
            r->cancel = AM_ECANCELED;
            pthread_cond_signal(&s->engine_cv);
            break;
        }
    pthread_mutex_unlock(&s->lock);
}

int am_sched_drain(am_sched *s, double timeout_s) {
    pthread_mutex_lock(&s->lock);
    s->draining = 1;
    const double until = am_time_s() + (timeout_s > 0 ? timeout_s : 0);
    while (s->n_unfinished > 0 && am_time_s() < until) am_cond_wait_s(&s->idle_cv, &s->lock, 0.05);
    const int left = s->n_unfinished;
    if (left) {
        cancel_all(s, AM_ESHUTDOWN);
        // the scheduler threads end them; wait briefly for their callbacks
        const double until2 = am_time_s() + 10.0;
        while (s->n_unfinished > 0 && am_time_s() < until2) am_cond_wait_s(&s->idle_cv, &s->lock, 1.0);
    }
    pthread_mutex_unlock(&s->lock);
    return left;
}

int am_sched_draining(const am_sched *s) { return s->draining; }
int am_sched_has_vad(const am_sched *s) { return s->vad != NULL; }
int am_sched_default_chunking(const am_sched *s) { return s->p.vad && s->vad ? AM_CHUNK_VAD : AM_CHUNK_SEEK; }

void am_sched_state(am_sched *s, am_metrics_state *st) {
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&s->lock);
    st->enabled = s->p.enable_batching;
    st->mode = s->p.enable_batching ? "batched" : "sequential";
    st->max_batch_size = s->p.enable_batching ? s->p.max_batch_size : 1;
    st->max_wait_ms = s->p.enable_batching ? s->p.max_wait_ms : 0;
    st->max_windows = s->p.enable_batching ? s->p.max_windows : 1;
    st->max_queue = s->p.max_queue;
    st->device = "cpu";
    st->model = s->m->name;
    // queued: not yet in the engine, plus the engine's windows waiting for the encoder
    for (const sreq *r = s->live; r; r = r->next) st->queue_depth += r->state != RQ_ENGINE;
    st->queue_depth += s->waiting_windows;
    st->pending_results = s->n_unfinished;
    st->active_sequences = s->active_windows;
    st->draining = s->draining;
    st->audio_memory_bytes = s->held_bytes;
    st->audio_memory_budget = s->audio_budget;
    pthread_mutex_unlock(&s->lock);
}
