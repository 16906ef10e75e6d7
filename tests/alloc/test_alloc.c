// test_alloc.c — allocation-failure injection over every create path.
//
// Built with the allocation functions wrapped (see alloc_inject.h and the
// "allocation-failure injection" section of CMakeLists.txt): for each path
// the test first runs it once counting the injection points (the wrapped calls
// it makes, on any thread), then again and again with the N-th point failing,
// N = 1, 2, ... until a run meets no injected failure. Every run that failed
// must return NULL / a negative code (AM_ENOMEM when the failed call was one of
// the libc allocators; any AM_E* code for a library entry point) with
// am_last_error() set (for a request: its completion callback's status and
// message; over HTTP: a 500 that says so), must not crash, must leave no block
// it allocated behind (the wrappers track every block; LSan checks the rest,
// e.g. cJSON's, at exit under ASan) and must not leave a thread behind. A
// request must end exactly once (a hang is a failure). A run that succeeded
// although a point failed (an optional allocation) must still give the result
// of the clean run.
//
// Budget (the test runs in `make test` under ASan): a path is covered point by
// point for its first ALLOC_EXHAUSTIVE (60) points, then with a stride so that
// it takes about ALLOC_MAX_RUNS (100) runs, always with its last ALLOC_TAIL (4)
// points. The paths that run a whole transcription (engine_run, sched: the
// encoder's 1500-position attention costs seconds under ASan) take 3 runs by
// default; engine_beam, sched_vad and http_post run only when named or with
// ALLOC_FULL. Then a "sticky" pass (the N-th point and every later one fail:
// cleanup must not need memory) runs over the cheap paths. ALLOC_FULL=1 covers
// every point of every path in both passes (tens of minutes under ASan).
//
// Usage: test_alloc [-v] [PATH...]   (PATH: names in main(); default all)
//   -v prints every run (the failed call's site, the error). ALLOC_EXHAUSTIVE,
//   ALLOC_MAX_RUNS, ALLOC_TAIL override the budget; ALLOC_FROM=N starts the
//   injected runs at point N (to bisect a long path).
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <unistd.h>

#include <curl/curl.h>

#include "alloc_inject.h"
#include "am_align.h"
#include "am_audio.h"
#include "am_decode.h"
#include "am_decoder.h"
#include "am_encoder.h"
#include "am_format.h"
#include "am_http.h"
#include "am_mel.h"
#include "am_metrics.h"
#include "am_model.h"
#include "am_nn.h"
#include "am_sched.h"
#include "am_test.h"
#include "am_tokenizer.h"
#include "am_transcribe.h"
#include "am_vad.h"
#include "server.h" // http_mime_file, http_mime_fields

// LSan (under ASan only): a leak check that does not end the process
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static int g_verbose;
// runs per path: the first g_exhaustive points one by one, then a stride (see run_path);
// ALLOC_FULL=1 covers every point of every path
static long g_exhaustive = 60, g_max_runs = 100, g_tail = 4;
static int g_full;

// ---------------------------------------------------------------- shared fixtures (built disarmed)
static char g_model_path[1024], g_vad_path[1024], g_wav_path[1024];
static void *g_model_buf;
static size_t g_model_size;
static void *g_wav;
static size_t g_wav_size;
static am_model *g_m;
static am_tokenizer *g_tok;
static am_decoding *g_dc;
static float *g_pcm;
static size_t g_n_pcm;
static am_mel_result g_mel;        // of g_pcm
static char *g_expect_text;        // the transcript text of g_pcm
static am_job *g_words_job;        // a finished job with word timestamps (for the formats)
static char *g_expect_render[5];   // its renderings
static am_sched *g_http_sched;     // for the http path
static am_metrics *g_metrics;

// Transcription parameters that keep a run short on the random-weight test
// model: no temperature fallback, at most 24 tokens per window.
static am_transcribe_params quick_params(void) {
    am_transcribe_params tp = am_transcribe_default_params();
    tp.decode.temperature_inc = 0;
    tp.decode.sample_len = 24;
    return tp;
}

// ---------------------------------------------------------------- failure capture
// A failing step stores its code and message here (the driver checks them).
static char g_msg[512];
static int g_code;

// A create returned NULL: its code is the thread's last error.
static int failed_null(void) {
    snprintf(g_msg, sizeof g_msg, "%s", am_last_error());
    g_code = am_last_error_code();
    return g_code ? g_code : -1000; // -1000: no error code was set
}

// A call returned rc < 0.
static int failed_rc(int rc) {
    snprintf(g_msg, sizeof g_msg, "%s", am_last_error());
    g_code = rc;
    return rc;
}

// A failure reported asynchronously (a request's completion).
static int failed_async(int status, const char *msg) {
    snprintf(g_msg, sizeof g_msg, "%s", msg ? msg : "");
    g_code = status;
    return status ? status : -1000;
}

// A tolerated failure produced a wrong result.
static int wrong_result(const char *what) {
    snprintf(g_msg, sizeof g_msg, "WRONG RESULT: %.400s", what);
    g_code = -2000;
    return g_code;
}

// ---------------------------------------------------------------- threads
static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

// ---------------------------------------------------------------- the driver
typedef int (*path_fn)(void *ctx);

typedef struct {
    const char *name;
    path_fn fn;
    void *ctx;
    int sticky;     // also run the sticky pass
    int max_runs;   // 0 = g_max_runs
    void (*after)(void *ctx, int rc); // called after each run, before its leak check (fixtures to remake)
    int lib_frees;  // blocks of ours are freed inside a library (libmicrohttpd's response buffers):
                    // the leak check needs ASan to see those frees
} path_def;

static int g_clean_run; // the run in progress is the first, clean one
static long g_cur_n;    // its failing point

typedef struct {
    long points;    // injection points of a clean run
    long runs, failed_runs, tolerated, leaks, bad;
    int codes[16];  // -code histogram of failed runs (index 0: other)
} path_stats;

static void note_code(path_stats *st, int code) {
    if (code < 0 && code > -16) st->codes[-code]++;
    else st->codes[0]++;
}

// One run with point n failing (0 = none). Returns the fired count.
static long run_once(const path_def *pd, long n, int sticky, path_stats *st, int *rc_out) {
    const int threads0 = thread_count();
    const unsigned long mark = alloc_inject_seq();
    g_msg[0] = 0;
    g_code = 0;
    am_set_error(AM_OK, "%s", "");
    alloc_inject_arm(n, sticky);
    g_clean_run = n == 0;
    g_cur_n = n;
    const int rc = pd->fn(pd->ctx);
    const long calls = alloc_inject_disarm();
    if (pd->after) pd->after(pd->ctx, rc);
    const long fired = alloc_inject_fired();
    const char *fn = alloc_inject_first_failed();
    char label[160];
    snprintf(label, sizeof label, "%s%s N=%ld (%s)", pd->name, sticky ? " sticky" : "", n, fired ? fn : "no failure");
    st->runs++;
    if (n == 0) st->points = calls;
    if (fired && rc == 0) {
        st->tolerated++;
        if (g_verbose) {
            char where[512];
            alloc_inject_first_caller(where, sizeof where);
            printf("  %s: tolerated (failed call in %s)\n", label, where);
        }
    } else if (fired) {
        st->failed_runs++;
        note_code(st, rc);
        // an allocation of ours failed: AM_ENOMEM; a library call failed: any AM_E* code
        const int libc = !strcmp(fn, "malloc") || !strcmp(fn, "calloc") || !strcmp(fn, "realloc") ||
                         !strcmp(fn, "strdup") || !strcmp(fn, "strndup") || !strcmp(fn, "aligned_alloc") ||
                         !strcmp(fn, "mmap") || !strcmp(fn, "posix_memalign");
        int ok = rc < 0 && rc > -100 && g_msg[0];
        if (libc && !sticky) ok = ok && rc == AM_ENOMEM;
        if (!ok) st->bad++;
        CHECKF(ok, "%s: returned %d (%s), message '%s'", label, rc, am_strerror(rc), g_msg);
        if (g_verbose) {
            char where[512];
            alloc_inject_first_caller(where, sizeof where);
            printf("  %s: %d '%s' (failed call in %s)\n", label, rc, g_msg, where);
        }
    } else {
        CHECKF(rc == 0, "%s: failed without an injected failure: %d '%s'", label, rc, g_msg);
    }
    const long leaked = pd->lib_frees && !alloc_inject_sees_library_frees() ? 0 : alloc_inject_leaks(mark, 8, label);
    if (leaked) {
        st->leaks++;
        CHECKF(leaked == 0, "%s: %ld blocks leaked", label, leaked);
        if (__lsan_do_recoverable_leak_check) __lsan_do_recoverable_leak_check();
    }
    int threads1 = thread_count();
    for (int i = 0; i < 100 && threads1 > threads0; i++) { // an exiting thread may linger a moment
        usleep(10000);
        threads1 = thread_count();
    }
    CHECKF(threads1 <= threads0, "%s: %d threads before, %d after", label, threads0, threads1);
    if (rc_out) *rc_out = rc;
    return fired;
}

static void run_path(const path_def *pd, int sticky) {
    path_stats st = {0};
    const double t0 = am_time_s();
    int rc;
    run_once(pd, 0, 0, &st, &rc); // the clean run: how many points
    const long points = st.points;
    const long budget = g_full ? LONG_MAX / 4 : pd->max_runs > 0 && !getenv("ALLOC_MAX_RUNS") ? pd->max_runs : g_max_runs;
    const long exhaustive = g_full ? LONG_MAX / 4 : AM_MIN(sticky ? budget / 3 : g_exhaustive, budget / 2);
    const long tail = g_full ? 0 : AM_MIN(g_tail, budget / 3);
    long stride = 1;
    if (points > budget) stride = AM_MAX(1, (points - exhaustive) / AM_MAX(1, budget - exhaustive - tail));
    long n = getenv("ALLOC_FROM") ? AM_MAX(1, atol(getenv("ALLOC_FROM"))) : 1; // resume a long path
    for (;;) {
        if (!run_once(pd, n, sticky, &st, &rc)) break; // reached the end without a failure
        if (n < exhaustive || stride == 1) n++;
        else if (n < points - tail && n + stride >= points - tail) n = points - tail;
        else if (n >= points - tail) n++;
        else n += stride;
    }
    const char *names[16] = {"other", "EINVAL", "ENOMEM", "EIO", "EFORMAT", "EAUDIO", "ERANGE", "EUNSUPPORTED",
                             "ECANCELED", "EFULL", "ETIMEDOUT", "EINTERNAL", "ESHUTDOWN", "?", "?", "?"};
    char codes[256] = "";
    for (int i = 0; i < 16; i++)
        if (st.codes[i])
            snprintf(codes + strlen(codes), sizeof codes - strlen(codes), " %s:%d", names[i], st.codes[i]);
    printf("%-16s %-6s points %5ld  runs %4ld (stride %ld)  failed %4ld [%s ]  tolerated %3ld  leaky %ld  bad %ld  "
           "%.1f s\n",
           pd->name, sticky ? "sticky" : "once", points, st.runs - 1, stride, st.failed_runs, codes, st.tolerated,
           st.leaks, st.bad, am_time_s() - t0);
    fflush(stdout);
}

// ---------------------------------------------------------------- paths
static int p_model_load(void *ctx) {
    am_model *m = am_model_load(g_model_path);
    if (!m) return failed_null();
    const int ok = m->hp.n_vocab == g_m->hp.n_vocab && m->arena_bytes == g_m->arena_bytes &&
                   !memcmp(m->arena, g_m->arena, m->arena_bytes);
    am_model_free(m);
    return ok ? 0 : wrong_result("model differs");
}

static int p_model_load_buffer(void *ctx) {
    am_model *m = am_model_load_buffer(g_model_buf, g_model_size, "test");
    if (!m) return failed_null();
    const int ok = m->arena_bytes == g_m->arena_bytes && !memcmp(m->arena, g_m->arena, m->arena_bytes);
    am_model_free(m);
    return ok ? 0 : wrong_result("model differs");
}

static int p_tokenizer(void *ctx) {
    am_tokenizer *t = am_tokenizer_create(g_m->vocab_bytes, g_m->vocab_len, g_m->n_file_vocab, g_m->hp.n_vocab);
    if (!t) return failed_null();
    int32_t a[512], b[512];
    const int na = am_tokenizer_suppress_tokens(t, a, 512), nb = am_tokenizer_suppress_tokens(g_tok, b, 512);
    am_tokenizer_free(t);
    return na == nb && na > 0 && !memcmp(a, b, (size_t)na * sizeof *a) ? 0 : wrong_result("suppress tokens differ");
}

static int p_decoding(void *ctx) {
    am_decoding *dc = am_decoding_create(g_m, g_tok);
    if (!dc) return failed_null();
    am_wdec *w = am_wdec_create(dc);
    if (!w) {
        const int rc = failed_null();
        am_decoding_free(dc);
        return rc;
    }
    am_wdec_free(w);
    am_decoding_free(dc);
    return 0;
}

static int p_mel(void *ctx) {
    am_mel *mel = am_mel_create(g_m->mel_filters, g_m->hp.n_mels);
    if (!mel) return failed_null();
    const float *samples[2] = {g_pcm, g_pcm + g_n_pcm / 2};
    const size_t n[2] = {g_n_pcm, g_n_pcm / 3};
    am_mel_result out[2];
    memset(out, 0xff, sizeof out); // garbage: on failure nothing needs freeing
    const int rc = am_mel_compute_batch(mel, samples, n, 2, out);
    am_mel_free(mel);
    if (rc) return failed_rc(rc);
    const int ok = out[0].n_frames == g_mel.n_frames &&
                   !memcmp(out[0].data, g_mel.data, (size_t)g_mel.n_mels * g_mel.n_frames * sizeof(float));
    am_mel_free_result(&out[0]);
    am_mel_free_result(&out[1]);
    return ok ? 0 : wrong_result("mel differs");
}

static int p_encoder(void *ctx) {
    am_encoder_params p = am_encoder_default_params();
    p.max_batch = 2;
    am_encoder *e = am_encoder_create(g_m, &p);
    if (!e) return failed_null();
    am_encoder_free(e);
    return 0;
}

static int p_decoder(void *ctx) {
    am_decoder *d = am_decoder_create(g_m, NULL);
    if (!d) return failed_null();
    am_xkv *x = am_xkv_create(g_m, AM_TYPE_F16);
    am_seq *s = x ? am_seq_create(g_m, 0, AM_TYPE_F16) : NULL;
    const int rc = s ? 0 : failed_null();
    am_seq_free(s);
    am_xkv_free(x);
    am_decoder_free(d);
    return rc;
}

static int p_engine_create(void *ctx) {
    am_engine_params p = am_engine_default_params();
    p.max_windows = 4;
    p.max_rows = 64; // smaller scratch: a faster run, the same allocations
    if (ctx) { // with explicit alignment heads (copied)
        static const am_align_head heads[2] = {{0, 0}, {1, 1}};
        p.alignment_heads = heads;
        p.n_alignment_heads = 2;
    }
    am_engine *e = am_engine_create(g_dc, &p);
    if (!e) return failed_null();
    am_engine_free(e);
    return 0;
}

// A copy of g_mel (am_job_create takes a mel over).
static int mel_copy(am_mel_result *dst) {
    const size_t n = (size_t)g_mel.n_mels * g_mel.n_frames;
    *dst = g_mel;
    alloc_inject_classes(0); // the fixture's own copy is not a point of the path
    dst->data = malloc(n * sizeof(float));
    alloc_inject_classes(ALLOC_CLASS_LIBC | ALLOC_CLASS_LIB);
    if (!dst->data) return -1;
    memcpy(dst->data, g_mel.data, n * sizeof(float));
    return 0;
}

static int p_job_create(void *ctx) {
    am_transcribe_params tp = quick_params();
    tp.initial_prompt = "Hello there, this is a prompt.";
    am_mel_result mel;
    if (mel_copy(&mel)) return failed_async(AM_EINTERNAL, "fixture");
    am_job *j = am_job_create(g_dc, &mel, &tp);
    if (!j) {
        const int rc = failed_null();
        am_mel_free_result(&mel); // still ours (or emptied when the job had taken it over)
        return rc;
    }
    CHECK(mel.data == NULL);
    am_job_free(j);
    // a span (copies its slice), and an empty span (a finished job)
    j = am_job_create_span(g_dc, &g_mel, 100, 500, &tp);
    if (!j) return failed_null();
    am_job_free(j);
    tp.initial_prompt = NULL;
    if (!(j = am_job_create_span(g_dc, &g_mel, 0, 0, &tp))) return failed_null();
    const int ok = am_job_state(j) == AM_JOB_DONE && am_job_transcript(j) && !strcmp(am_job_transcript(j)->text, "");
    am_job_free(j);
    return ok ? 0 : wrong_result("empty span");
}

// Run jobs to completion in a fresh engine (disarmed helper).
static int run_jobs(am_job **jobs, int n, int words) {
    am_engine_params ep = am_engine_default_params();
    ep.max_windows = 4;
    am_engine *e = am_engine_create(g_dc, &ep);
    int rc = e ? 0 : -1;
    for (int i = 0; i < n && !rc; i++) rc = am_engine_add(e, jobs[i]);
    if (!rc) rc = am_engine_run(e, 0);
    am_engine_free(e);
    (void)words;
    return rc;
}

// am_job_join: spans of g_mel, finished once; a failed join changes nothing,
// so they are reused until a join succeeds (then made again).
#define N_PARTS 2
typedef struct {
    am_job *parts[N_PARTS];
    char *text_before[N_PARTS];
    int n_seg_before[N_PARTS];
} join_ctx;

static void join_setup(join_ctx *c) {
    am_transcribe_params tp = quick_params();
    const int half = g_mel.content_frames / 2;
    alloc_inject_track(0);
    for (int i = 0; i < N_PARTS; i++) {
        c->parts[i] = am_job_create_span(g_dc, &g_mel, i * half, i ? g_mel.content_frames - half : half, &tp);
        CHECK(c->parts[i] != NULL);
    }
    CHECK(run_jobs(c->parts, N_PARTS, 0) == 0);
    for (int i = 0; i < N_PARTS; i++) {
        const am_transcript *tr = am_job_transcript(c->parts[i]);
        CHECK(tr != NULL);
        c->text_before[i] = strdup(tr ? tr->text : "");
        c->n_seg_before[i] = tr ? tr->n_segments : 0;
    }
    alloc_inject_track(1);
}

static void join_teardown(join_ctx *c) {
    for (int i = 0; i < N_PARTS; i++) {
        am_job_free(c->parts[i]);
        free(c->text_before[i]);
    }
    memset(c, 0, sizeof *c);
}

static int p_job_join(void *ctx) {
    join_ctx *c = ctx;
    const int rc = am_job_join(c->parts[0], c->parts, N_PARTS, g_mel.content_frames * 0.01);
    if (rc) {
        failed_rc(rc);
        for (int i = 0; i < N_PARTS; i++) { // nothing changed
            const am_transcript *tr = am_job_transcript(c->parts[i]);
            if (!tr || strcmp(tr->text, c->text_before[i]) || tr->n_segments != c->n_seg_before[i])
                return wrong_result("a failed join changed a part");
        }
        return rc;
    }
    const am_transcript *tr = am_job_transcript(c->parts[0]);
    char want[4096];
    snprintf(want, sizeof want, "%s%s", c->text_before[0], c->text_before[1]);
    const int ok = tr && !strcmp(tr->text, want) && tr->n_segments == c->n_seg_before[0] + c->n_seg_before[1];
    return ok ? 0 : wrong_result("joined transcript");
}

// after a successful join the parts are spent: make them again
static void join_after(void *ctx, int rc) {
    if (rc) return;
    join_teardown(ctx);
    join_setup(ctx);
}

// The whole engine over a job: create, add, run to the end (a job that failed
// inside reports its error), with word timestamps.
static int p_engine_run(void *ctx) {
    const int beam = ctx != NULL;
    am_engine_params ep = am_engine_default_params();
    ep.max_windows = 2;
    ep.max_batch = 2;
    am_engine *e = am_engine_create(g_dc, &ep);
    if (!e) return failed_null();
    am_transcribe_params tp = quick_params();
    tp.word_timestamps = 1;
    if (beam) tp.decode.beam_size = 2;
    am_mel_result mel;
    if (mel_copy(&mel)) {
        am_engine_free(e);
        return failed_async(AM_EINTERNAL, "fixture");
    }
    am_job *j = am_job_create(g_dc, &mel, &tp);
    if (!j) {
        const int rc = failed_null();
        am_mel_free_result(&mel);
        am_engine_free(e);
        return rc;
    }
    int rc = am_engine_add(e, j);
    if (!rc) rc = am_engine_run(e, 0);
    if (!rc && am_job_state(j) == AM_JOB_ERROR) {
        const char *msg;
        rc = am_job_error(j, &msg);
        failed_async(rc, msg);
    } else if (rc) {
        failed_rc(rc);
    }
    if (!rc) {
        const am_transcript *tr = am_job_transcript(j);
        if (!tr) rc = wrong_result("no transcript");
        else if (!beam && strcmp(tr->text, g_expect_text)) rc = wrong_result("transcript text differs");
    }
    am_job_free(j);
    am_engine_free(e);
    return rc;
}

static int p_vad(void *ctx) {
    am_vad_model *v = am_vad_model_load(g_vad_path);
    if (!v) return failed_null();
    am_vad_segment *seg = NULL;
    size_t n_seg = 0;
    const size_t n = AM_MIN(g_n_pcm, (size_t)3 * 16000); // 3 s: speech, and a quick run
    int rc = am_vad_detect(v, g_pcm, n, NULL, &seg, &n_seg);
    am_vad_chunk *ch = NULL;
    size_t n_ch = 0;
    if (!rc) rc = am_vad_chunks(seg, n_seg, n, 30.0, &ch, &n_ch);
    if (rc) failed_rc(rc);
    else if (n_seg == 0 || n_ch == 0) rc = wrong_result("no speech found");
    free(ch);
    am_vad_segments_free(seg);
    am_vad_model_free(v);
    return rc;
}

static int p_metrics(void *ctx) {
    am_metrics *m = am_metrics_create();
    if (!m) return failed_null();
    am_metrics_http(m, "transcriptions", 200, 0.5);
    am_metrics_http(m, "health", 200, 0.001);
    am_metrics_request(m, 1, 0.01, 0.5, 11.0, 30);
    am_metrics_batch(m, AM_BATCH_ENCODER, 2, 0.1);
    am_metrics_batch(m, AM_BATCH_DECODER, 3, 0.01);
    am_metrics_cancelled(m, 1);
    am_metrics_state st = {.enabled = 1, .mode = "batched", .max_batch_size = 8, .device = "cpu", .model = "x"};
    char *a = am_metrics_prometheus(m, &st);
    char *b = a ? am_metrics_stats_json(m, &st) : NULL;
    const int rc = b ? 0 : failed_null();
    free(a);
    free(b);
    am_metrics_free(m);
    return rc;
}

static int p_format(void *ctx) {
    const am_transcript *tr = am_job_transcript(g_words_job);
    for (int f = 0; f < 5; f++) {
        am_format_extra ex = {.with_performance = 1, .processing_time_s = 1.25, .mode = "cli",
                              .with_words = f == AM_FMT_VERBOSE_JSON, .logprobs = f == AM_FMT_JSON ? g_tok : NULL};
        char *out = NULL;
        size_t len = 0;
        const int rc = am_format_render(tr, (am_format)f, &ex, &out, &len);
        if (rc) {
            CHECKF(out == NULL, "am_format_render failed but left *out set");
            return failed_rc(rc);
        }
        const int same = g_expect_render[f] && !strcmp(out, g_expect_render[f]) && len == strlen(out);
        free(out);
        if (!same) return wrong_result(am_format_name((am_format)f));
    }
    return 0;
}

// ---- the scheduler: create, one request through it (audio decode, mel, engine), free
typedef struct {
    pthread_mutex_t lock;
    int n_calls, status;
    char error[256];
    char text[4096];
} done_state;

static void on_done(void *user, const am_sched_result *res) {
    done_state *d = user;
    pthread_mutex_lock(&d->lock);
    d->n_calls++;
    d->status = res->status;
    snprintf(d->error, sizeof d->error, "%s", res->error ? res->error : "");
    if (res->status == 0) {
        const am_transcript *tr = am_job_transcript(res->job);
        snprintf(d->text, sizeof d->text, "%s", tr && tr->text ? tr->text : "(no transcript)");
        am_job_free(res->job);
    }
    pthread_mutex_unlock(&d->lock);
}

static int p_sched(void *ctx) {
    const int vad = ctx != NULL;
    am_sched_params sp = am_sched_default_params();
    sp.max_batch_size = 2;
    sp.max_windows = 4;
    sp.max_wait_ms = 1;
    sp.vad_model = vad ? g_vad_path : NULL;
    const int threads0 = thread_count();
    am_sched *s = am_sched_create(g_m, g_tok, &sp, g_metrics);
    if (!s) return failed_null();
    static done_state d;
    memset(&d, 0, sizeof d);
    pthread_mutex_init(&d.lock, NULL);
    am_sched_request q = {.audio = g_wav, .audio_size = g_wav_size, .params = quick_params(),
                          .timeout_s = 120, .done = on_done, .user = &d, .chunking = vad ? AM_CHUNK_VAD : AM_CHUNK_SEEK};
    uint64_t id;
    int rc = am_sched_submit(s, &q, &id);
    if (rc) {
        failed_rc(rc);
        am_sched_free(s);
        pthread_mutex_destroy(&d.lock);
        CHECKF(d.n_calls == 0, "sched: done called for a refused request");
        return rc;
    }
    // a clean run takes a few seconds; a scheduler thread that ended (the engine
    // and the audio worker run until am_sched_free) leaves the request hanging
    const double until = am_time_s() + 60;
    double thread_gone = 0;
    int n_calls = 0;
    while (am_time_s() < until) {
        pthread_mutex_lock(&d.lock);
        n_calls = d.n_calls;
        pthread_mutex_unlock(&d.lock);
        if (n_calls) break;
        if (thread_count() < threads0 + 2) {
            if (!thread_gone) thread_gone = am_time_s();
            else if (am_time_s() - thread_gone > 1.0) break;
        } else {
            thread_gone = 0;
        }
        usleep(2000);
    }
    CHECKF(n_calls == 1, "sched%s N=%ld (%s): request not finished (hang): %s", vad ? "_vad" : "", g_cur_n,
           alloc_inject_first_failed(), thread_gone ? "a scheduler thread has ended" : "after 60 s");
    am_sched_free(s);
    CHECKF(d.n_calls == 1, "sched: done called %d times", d.n_calls);
    pthread_mutex_destroy(&d.lock);
    if (d.status) return failed_async(d.status, d.error);
    static char expect[2][4096];
    if (g_clean_run) snprintf(expect[vad], sizeof expect[vad], "%s", d.text);
    return strcmp(d.text, expect[vad]) ? wrong_result(d.text) : 0;
}

// ---- the HTTP front end: start, one GET, stop
static size_t sink(char *p, size_t size, size_t n, void *user) { return size * n; }

// Start the HTTP front end on a free port (one thread, no request log); its URL of path goes to url.
static am_http *http_start(const char *path, char *url, size_t cap) {
    am_http_params hp = am_http_default_params();
    hp.port = 0;
    hp.threads = 1;
    hp.log_requests = 0;
    am_http *h = am_http_start(&hp, g_http_sched, g_metrics, g_m, g_tok);
    if (h) snprintf(url, cap, "http://127.0.0.1:%d%s", am_http_port(h), path);
    return h;
}

// Perform c on url (the body to on_write(user), at most timeout_s): the status, 0 when no answer came.
static long http_perform(CURL *c, const char *url, curl_write_callback on_write, void *user, long timeout_s) {
    long code = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    if (user) curl_easy_setopt(c, CURLOPT_WRITEDATA, user);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static int p_http(void *ctx) {
    char url[128];
    am_http *h = http_start("/health", url, sizeof url);
    if (!h) return failed_null();
    CURL *c = curl_easy_init();
    long code = 0;
    if (c) {
        code = http_perform(c, url, sink, NULL, 20L);
        curl_easy_cleanup(c);
    }
    am_http_stop(h, 5, NULL);
    // a request may fail inside the server (500, or no answer) once a point failed; never when none did
    if (code != 200 && !alloc_inject_fired()) return wrong_result("GET /health");
    return 0;
}

// ---- one transcription through the HTTP front end (start, POST, stop): every
// failure must become an error response (5xx for memory), never a hang or no answer
typedef struct {
    char data[8192];
    size_t len;
} body_buf;

static size_t body_write(char *p, size_t size, size_t n, void *user) {
    body_buf *b = user;
    const size_t k = AM_MIN(size * n, sizeof b->data - 1 - b->len);
    memcpy(b->data + b->len, p, k);
    b->len += k;
    b->data[b->len] = 0;
    return size * n;
}

static int p_http_post(void *ctx) {
    char url[128];
    am_http *h = http_start("/v1/audio/transcriptions", url, sizeof url);
    if (!h) return failed_null();
    static body_buf b;
    b.len = 0;
    b.data[0] = 0;
    long code = 0;
    CURL *c = curl_easy_init();
    curl_mime *mime = c ? curl_mime_init(c) : NULL;
    if (mime) {
        http_mime_file(mime, g_wav, g_wav_size, "jfk.wav");
        const char *const fields[] = {"model", "whisper-1", "response_format", "verbose_json", "temperature_inc", "0",
                                      "timestamp_granularities[]", "word", NULL};
        http_mime_fields(mime, fields);
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
        code = http_perform(c, url, body_write, &b, 60L);
    }
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    am_http_stop(h, 5, NULL);
    static char expect[8192];
    if (code == 200) {
        if (g_clean_run) snprintf(expect, sizeof expect, "%s", b.data);
        // a tolerated failure must not change the transcript (the performance object differs per run)
        const char *perf_a = strstr(b.data, "\"performance\""), *perf_b = strstr(expect, "\"performance\"");
        const size_t la = perf_a ? (size_t)(perf_a - b.data) : b.len, lb = perf_b ? (size_t)(perf_b - expect) : strlen(expect);
        return la == lb && !memcmp(b.data, expect, la) ? 0 : wrong_result(b.data);
    }
    if (code >= 500) return failed_async(code == 500 && strstr(b.data, "memory") ? AM_ENOMEM : AM_EINTERNAL, b.data);
    return failed_async(code ? AM_EINVAL : -1001, code ? b.data : "no HTTP response (connection closed)");
}

// ---------------------------------------------------------------- main
int main(int argc, char **argv) {
    const char *want[32];
    int n_want = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) g_verbose = 1;
        else if (n_want < 32) want[n_want++] = argv[i];
    }
    if (getenv("ALLOC_EXHAUSTIVE")) g_exhaustive = atol(getenv("ALLOC_EXHAUSTIVE"));
    if (getenv("ALLOC_MAX_RUNS")) g_max_runs = atol(getenv("ALLOC_MAX_RUNS"));
    if (getenv("ALLOC_TAIL")) g_tail = atol(getenv("ALLOC_TAIL"));
    g_full = getenv("ALLOC_FULL") && atoi(getenv("ALLOC_FULL"));
    setvbuf(stdout, NULL, _IOLBF, 0);
    alloc_inject_arm(0, 0);
    snprintf(g_model_path, sizeof g_model_path, "%s/tests/data/ggml-test-tiny.en.bin", AM_SOURCE_DIR);
    snprintf(g_vad_path, sizeof g_vad_path, "%s/data/ggml-silero-v6.2.0.bin", AM_SOURCE_DIR);
    snprintf(g_wav_path, sizeof g_wav_path, "%s/tests/data/jfk.wav", AM_SOURCE_DIR);
    if (!am_test_exists(g_model_path) || !am_test_exists(g_vad_path) || !am_test_exists(g_wav_path)) {
        SKIP_CASE("test_alloc", "model, VAD model or jfk.wav missing");
        return am_test_finish("test_alloc", 0);
    }
    curl_global_init(CURL_GLOBAL_ALL);
    am_nn_threads(); // the compute pool starts once per process
    // fixtures (process-wide state is initialised here, before anything is counted:
    // the compute thread pool, FFTW's planner, libav's tables)
    g_model_buf = am_test_read_file(g_model_path, &g_model_size);
    g_wav = am_test_read_file(g_wav_path, &g_wav_size);
    g_m = am_model_load(g_model_path);
    g_tok = g_m ? am_tokenizer_create(g_m->vocab_bytes, g_m->vocab_len, g_m->n_file_vocab, g_m->hp.n_vocab) : NULL;
    g_dc = g_tok ? am_decoding_create(g_m, g_tok) : NULL;
    g_metrics = am_metrics_create();
    am_metrics_http(g_metrics, "health", 200, 0); // its endpoint label is made once (kept by g_metrics)
    am_mel *mel = g_m ? am_mel_create(g_m->mel_filters, g_m->hp.n_mels) : NULL;
    if (!g_model_buf || !g_wav || !g_dc || !mel || !g_metrics ||
        am_audio_decode_file(g_wav_path, NULL, &g_pcm, &g_n_pcm) || am_mel_compute(mel, g_pcm, g_n_pcm, &g_mel)) {
        fprintf(stderr, "setup failed: %s\n", am_last_error());
        return 1;
    }
    am_mel_free(mel);
    {
        am_transcribe_params tp = quick_params();
        tp.word_timestamps = 1;
        am_mel_result copy;
        mel_copy(&copy);
        g_words_job = am_job_create(g_dc, &copy, &tp);
        CHECK(g_words_job && run_jobs(&g_words_job, 1, 1) == 0 && am_job_transcript(g_words_job));
        if (!g_words_job || !am_job_transcript(g_words_job)) return 1;
        g_expect_text = strdup(am_job_transcript(g_words_job)->text);
        printf("transcript: %s\n", g_expect_text);
        for (int f = 0; f < 5; f++) {
            am_format_extra ex = {.with_performance = 1, .processing_time_s = 1.25, .mode = "cli",
                                  .with_words = f == AM_FMT_VERBOSE_JSON, .logprobs = f == AM_FMT_JSON ? g_tok : NULL};
            size_t len;
            CHECK(am_format_render(am_job_transcript(g_words_job), (am_format)f, &ex, &g_expect_render[f], &len) == 0);
        }
    }
    am_sched_params sp = am_sched_default_params();
    sp.max_windows = 2;
    g_http_sched = am_sched_create(g_m, g_tok, &sp, g_metrics);
    CHECK(g_http_sched != NULL);
    // its engine thread makes its engine now: wait until nothing is allocated for 0.3 s
    for (unsigned long seq = 0, k = 0; k < 100 && seq != alloc_inject_seq(); k++) {
        seq = alloc_inject_seq();
        usleep(300000);
    }

    static join_ctx jc;
    const path_def paths[] = {
        {"model_load", p_model_load, NULL, 1, 0, NULL, 0},
        {"model_buffer", p_model_load_buffer, NULL, 1, 0, NULL, 0},
        {"tokenizer", p_tokenizer, NULL, 1, 0, NULL, 0},
        {"decoding", p_decoding, NULL, 1, 0, NULL, 0},
        {"mel", p_mel, NULL, 1, 0, NULL, 0},
        {"encoder", p_encoder, NULL, 1, 0, NULL, 0},
        {"decoder", p_decoder, NULL, 1, 0, NULL, 0},
        {"engine_create", p_engine_create, NULL, 1, 0, NULL, 0},
        {"engine_heads", p_engine_create, (void *)1, 0, 0, NULL, 0},
        {"job_create", p_job_create, NULL, 1, 0, NULL, 0},
        {"job_join", p_job_join, &jc, 0, 0, join_after, 0},
        {"vad", p_vad, NULL, 0, 0, NULL, 0},
        {"metrics", p_metrics, NULL, 1, 0, NULL, 0},
        {"format", p_format, NULL, 1, 0, NULL, 0},
        // a whole transcription per run (the encoder's 1500-position attention costs
        // seconds under ASan): a few runs by default, every point with ALLOC_FULL=1
        {"engine_run", p_engine_run, NULL, 0, 3, NULL, 0},
        {"engine_beam", p_engine_run, (void *)1, 0, -1, NULL, 0},
        {"sched", p_sched, NULL, 0, 3, NULL, 0},
        {"sched_vad", p_sched, (void *)1, 0, -1, NULL, 0},
        {"http", p_http, NULL, 1, 0, NULL, 1},
        {"http_post", p_http_post, NULL, 0, -1, NULL, 1},
    };
    int ran = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < AM_ARRAY_LEN(paths); i++) {
            int sel = n_want == 0;
            for (int k = 0; k < n_want; k++) sel |= !strcmp(want[k], paths[i].name);
            if (!sel || (pass == 1 && !paths[i].sticky && !g_full)) continue;
            if (n_want == 0 && !g_full && paths[i].max_runs < 0) continue; // only by name or ALLOC_FULL
            if (paths[i].fn == p_job_join && !jc.parts[0]) join_setup(&jc);
            run_path(&paths[i], pass);
            ran = 1;
        }
    join_teardown(&jc);
    am_sched_free(g_http_sched);
    for (int f = 0; f < 5; f++) free(g_expect_render[f]);
    free(g_expect_text);
    am_job_free(g_words_job);
    am_mel_free_result(&g_mel);
    am_audio_free(g_pcm);
    am_metrics_free(g_metrics);
    am_decoding_free(g_dc);
    am_tokenizer_free(g_tok);
    am_model_free(g_m);
    free(g_model_buf);
    free(g_wav);
    curl_global_cleanup();
    printf("live tracked blocks at exit: %ld\n", alloc_inject_live());
    return am_test_finish("test_alloc", ran);
}
