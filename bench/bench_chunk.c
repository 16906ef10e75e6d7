// bench_chunk.c — one long recording through the server's scheduler, VAD
// chunking against the reference's sequential seek loop, in the same run.
//
// The recording: the given clips one after another, each followed by a
// silence (3..8 s, cycling), repeated until --minutes of audio (default 10).
// It is submitted as one request (the way one upload reaches the server), with
// chunking off (the seek loop: one window after another) and on (speech
// regions merged into <= 30 s chunks, all decoded in parallel through the
// batched engine); repetitions alternate the two. Reported per mode: wall
// seconds (median), windows encoded, tokens sampled, segments, and the ratio
// seek / vad. Temperature fallback is off in both (one decode per window).
//
// usage: bench_chunk -m MODEL --vad-model VAD [--minutes 10] [--reps 3] [--json] CLIP...
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_audio.h"
#include "am_model.h"
#include "am_sched.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, status;
    long tokens, windows, segments;
    char err[256];
} waiter;

static void on_done(void *user, const am_sched_result *res) {
    waiter *w = user;
    pthread_mutex_lock(&w->mu);
    w->status = res->status;
    if (res->status) snprintf(w->err, sizeof w->err, "%s", res->error ? res->error : "?");
    const am_transcript *tr = res->job ? am_job_transcript(res->job) : NULL;
    if (tr) {
        w->tokens = tr->n_tokens;
        w->windows = tr->n_windows;
        w->segments = tr->n_segments;
    }
    am_job_free(res->job);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}


// A WAV image of x (n,), or NULL.
static unsigned char *wav_or_null(const float *x, size_t n, size_t *len) {
    unsigned char *w = NULL;
    return am_audio_wav_encode(x, n, &w, len) ? NULL : w;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *vad_path = NULL;
    const char *clips[64];
    int n_clips = 0, reps = 3, json = 0;
    double minutes = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-m") && v) model_path = argv[++i];
        else if (!strcmp(a, "--vad-model") && v) vad_path = argv[++i];
        else if (!strcmp(a, "--minutes") && v) minutes = atof(argv[++i]);
        else if (!strcmp(a, "--reps") && v) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--json")) json = 1;
        else if (a[0] != '-' && n_clips < 64) clips[n_clips++] = a;
        else {
            fprintf(stderr, "usage: %s -m MODEL --vad-model VAD [--minutes 10] [--reps 3] [--json] CLIP...\n", argv[0]);
            return 2;
        }
    }
    if (!model_path || !vad_path || !n_clips || reps < 1 || !(minutes > 0 && minutes <= 180)) {
        fprintf(stderr, "bench_chunk: -m MODEL, --vad-model VAD and at least one CLIP are required\n");
        return 2;
    }
    // the recording: clips with silences, cycling, until the length
    const size_t total = (size_t)(minutes * 60 * 16000);
    float *rec = calloc(total, sizeof *rec);
    size_t at = 0, speech = 0;
    for (int k = 0; rec && at < total; k++) {
        float *x = NULL;
        size_t n = 0;
        if (am_audio_decode_file(clips[k % n_clips], NULL, &x, &n)) {
            fprintf(stderr, "bench_chunk: %s: %s\n", clips[k % n_clips], am_last_error());
            return 1;
        }
        for (size_t i = 0; i < n && at < total; i++, at++, speech++) rec[at] = x[i];
        am_audio_free(x);
        at += (size_t)((3 + k % 6) * 16000); // silence
    }
    size_t wav_len = 0;
    unsigned char *wav = rec ? wav_or_null(rec, total, &wav_len) : NULL;
    free(rec);
    am_model *m = am_model_load(model_path);
    am_tokenizer *tok = m ? am_tokenizer_create(m->vocab_bytes, m->vocab_len, m->n_file_vocab, m->hp.n_vocab) : NULL;
    am_sched_params sp = am_sched_default_params();
    sp.vad_model = vad_path;
    sp.default_timeout_s = 3600;
    am_sched *s = tok && wav ? am_sched_create(m, tok, &sp, NULL) : NULL;
    if (!s) {
        fprintf(stderr, "bench_chunk: %s\n", am_last_error());
        return 1;
    }
    const char *names[2] = {"seek loop", "vad chunks"};
    double wall[2][64];
    long tokens[2] = {0}, windows[2] = {0}, segments[2] = {0};
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++)
        for (int md = 0; md < 2; md++) {
            const int mode = r % 2 ? 1 - md : md; // alternate which goes first
            waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
            am_sched_request q = {.audio = wav, .audio_size = wav_len, .done = on_done, .user = &w};
            q.params = am_transcribe_default_params();
            q.params.language = "en";
            q.params.decode.temperature_inc = 0; // one decode per window in both modes
            q.chunking = mode ? AM_CHUNK_VAD : AM_CHUNK_SEEK;
            const double t0 = am_time_s();
            uint64_t id;
            if (am_sched_submit(s, &q, &id)) {
                fprintf(stderr, "bench_chunk: submit: %s\n", am_last_error());
                return 1;
            }
            pthread_mutex_lock(&w.mu);
            while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
            pthread_mutex_unlock(&w.mu);
            wall[mode][r] = am_time_s() - t0;
            if (w.status) {
                fprintf(stderr, "bench_chunk: %s: %s\n", names[mode], w.err);
                return 1;
            }
            tokens[mode] = w.tokens, windows[mode] = w.windows, segments[mode] = w.segments;
            if (!json)
                fprintf(stderr, "  rep %d %-10s %.2f s, %ld windows, %ld tokens\n", r + 1, names[mode], wall[mode][r],
                        w.windows, w.tokens);
        }
    double med[2];
    for (int md = 0; md < 2; md++) {
        qsort(wall[md], (size_t)reps, sizeof(double), cmp_double);
        med[md] = wall[md][reps / 2];
    }
    const double audio_s = (double)total / 16000, speech_s = (double)speech / 16000;
    if (json) {
        printf("{\"audio_s\":%.1f,\"speech_s\":%.1f,\"model\":\"%s\",\"reps\":%d", audio_s, speech_s, m->name, reps);
        for (int md = 0; md < 2; md++)
            printf(",\"%s\":{\"wall_s\":%.3f,\"windows\":%ld,\"tokens\":%ld,\"segments\":%ld}", md ? "vad" : "seek",
                   med[md], windows[md], tokens[md], segments[md]);
        printf(",\"speedup\":%.3f}\n", med[0] / med[1]);
    } else {
        printf("%.1f min recording (%.0f s of speech), model %s, median of %d\n", audio_s / 60, speech_s, m->name,
               reps);
        printf("%-11s %9s %8s %8s %9s %12s\n", "mode", "wall s", "windows", "tokens", "segments", "x real time");
        for (int md = 0; md < 2; md++)
            printf("%-11s %9.2f %8ld %8ld %9ld %12.1f\n", names[md], med[md], windows[md], tokens[md], segments[md],
                   audio_s / med[md]);
        printf("vad chunking: %.2fx faster than the seek loop\n", med[0] / med[1]);
    }
    am_sched_free(s);
    am_tokenizer_free(tok);
    am_model_free(m);
    free(wav);
    return 0;
}
