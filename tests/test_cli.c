// test_cli.c — the `amanuensis transcribe` command line, run as a child
// process: every response format equals the library's rendering of the
// transcript computed in-process, several files at once give the single-file
// results in order, errors exit nonzero with a useful message (bad options
// exit 2, for `serve` too), the word-timestamp and beam-search options give
// the library's results, and scripts/download-model.sh fails cleanly when it
// cannot download.
//
// Checks marked [engine] need the engine's word timestamps (non-empty words).
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "am_audio.h"
#include "am_format.h"
#include "am_test.h"
#include "am_transcribe.h"

#ifndef AM_BINARY_DIR
#define AM_BINARY_DIR "."
#endif

extern char **environ;

static char g_tmp[256];   // the test's temporary directory
static int g_runs;        // processes started (names their output files)

// ---------------------------------------------------------------- processes
typedef struct {
    int status;    // exit code; 128 + signal when killed; -1 when it could not run
    char *out;     // stdout (NUL-terminated)
    size_t out_len;
    char *err;     // stderr
    double secs;
} proc;

static void proc_free(proc *p) {
    free(p->out);
    free(p->err);
    memset(p, 0, sizeof *p);
}

// Does environment entry e ("NAME=value") set one of the names in list?
static int env_named(const char *e, const char *const *list) {
    for (int i = 0; list && list[i]; i++) {
        const size_t n = strlen(list[i]);
        if (!strncmp(e, list[i], n) && e[n] == '=') return 1;
    }
    return 0;
}

// Run argv (argv[0] is a path) with stdin from /dev/null, capturing stdout and
// stderr separately. set: "NAME=value" entries to add or replace; unset:
// names to remove. Everything the child needs is prepared before fork().
static proc run(const char *const *argv, const char *const *set, const char *const *unset) {
    proc r = {.status = -1};
    char out_path[512], err_path[512];
    const int k = g_runs++;
    snprintf(out_path, sizeof out_path, "%s/run%d.out", g_tmp, k);
    snprintf(err_path, sizeof err_path, "%s/run%d.err", g_tmp, k);
    // the child's environment
    size_t n_env = 0, n_set = 0;
    while (environ[n_env]) n_env++;
    while (set && set[n_set]) n_set++;
    char **envp = calloc(n_env + n_set + 1, sizeof *envp);
    size_t m = 0;
    for (size_t i = 0; i < n_env; i++) {
        const char *e = environ[i];
        int drop = env_named(e, unset);
        for (size_t j = 0; j < n_set && !drop; j++) {
            const char *eq = strchr(set[j], '=');
            drop = eq && !strncmp(e, set[j], (size_t)(eq - set[j]) + 1);
        }
        if (!drop) envp[m++] = (char *)e;
    }
    for (size_t j = 0; j < n_set; j++) envp[m++] = (char *)set[j];
    envp[m] = NULL;
    const int fd_in = open("/dev/null", O_RDONLY);
    const int fd_out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int fd_err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd_in < 0 || fd_out < 0 || fd_err < 0) {
        CHECKF(0, "cannot open the capture files in %s: %s", g_tmp, strerror(errno));
        goto done;
    }
    fflush(stdout);
    fflush(stderr);
    const double t0 = am_time_s();
    const pid_t pid = fork();
    if (pid < 0) {
        CHECKF(0, "fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        dup2(fd_in, 0);
        dup2(fd_out, 1);
        dup2(fd_err, 2);
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    r.secs = am_time_s() - t0;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
done:
    if (fd_in >= 0) close(fd_in);
    if (fd_out >= 0) close(fd_out);
    if (fd_err >= 0) close(fd_err);
    free(envp);
    r.out = am_test_read_file(out_path, &r.out_len);
    r.err = am_test_read_file(err_path, NULL);
    if (!r.out) r.out = calloc(1, 1);
    if (!r.err) r.err = calloc(1, 1);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECKF(f && fwrite(data, 1, n, f) == n, "write %s", path);
    if (f) fclose(f);
}

// A 16 kHz mono s16 WAV: 3 s of a rising tone with a little noise.
static void write_wav(const char *path) {
    enum { N = 3 * 16000 };
    uint8_t *buf = malloc(44 + 2 * N);
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        const double t = i / 16000.0;
        const double v = 0.3 * sin(2 * M_PI * (200 + 300 * t) * t) + 0.02 * ((seed >> 16) / 65536.0 - 0.5);
        const int16_t s = (int16_t)lrint(v * 32767);
        buf[44 + 2 * i] = (uint8_t)(s & 0xff);
        buf[44 + 2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
    }
    const uint32_t data = 2 * N, riff = 36 + data, fmt = 16, rate = 16000, byte_rate = 32000;
    const uint16_t pcm = 1, ch = 1, align = 2, bits = 16;
#define PUT32(off, v) (buf[off] = (v) & 0xff, buf[off + 1] = ((v) >> 8) & 0xff, buf[off + 2] = ((v) >> 16) & 0xff, buf[off + 3] = ((v) >> 24) & 0xff)
#define PUT16(off, v) (buf[off] = (v) & 0xff, buf[off + 1] = ((v) >> 8) & 0xff)
    memcpy(buf, "RIFF", 4);
    PUT32(4, riff);
    memcpy(buf + 8, "WAVEfmt ", 8);
    PUT32(16, fmt);
    PUT16(20, pcm);
    PUT16(22, ch);
    PUT32(24, rate);
    PUT32(28, byte_rate);
    PUT16(32, align);
    PUT16(34, bits);
    memcpy(buf + 36, "data", 4);
    PUT32(40, data);
#undef PUT32
#undef PUT16
    write_file(path, buf, 44 + 2 * N);
    free(buf);
}

// ---------------------------------------------------------------- library side
typedef struct {
    am_model *m;
    am_tokenizer *tok;
    am_decoding *dc;
    am_mel *mel;
} model_ctx;

// Transcribe a file in-process with p (NULL: the CLI's defaults plus
// temperature_inc 0) and alignment heads (NULL: the model's), alone in its
// engine as a single-file CLI run does. NULL on failure.
static am_job *transcribe_file_with(model_ctx *c, const char *path, const am_transcribe_params *params,
                                    const am_align_head *heads, int n_heads) {
    float *pcm = NULL;
    size_t ns = 0;
    am_mel_result r;
    if (am_audio_decode_file(path, NULL, &pcm, &ns)) {
        CHECKF(0, "decode %s: %s", path, am_last_error());
        return NULL;
    }
    const int mrc = am_mel_compute(c->mel, pcm, ns, &r);
    am_audio_free(pcm);
    CHECK(mrc == 0);
    if (mrc) return NULL;
    am_transcribe_params p = am_transcribe_default_params();
    p.decode.temperature_inc = 0;
    if (params) p = *params;
    am_job *job = am_job_create(c->dc, &r, &p);
    CHECKF(job != NULL, "job: %s", am_last_error());
    if (!job) {
        am_mel_free_result(&r);
        return NULL;
    }
    am_engine_params ep = am_engine_default_params();
    ep.alignment_heads = heads;
    ep.n_alignment_heads = n_heads;
    am_engine *eng = am_engine_create(c->dc, &ep);
    CHECKF(eng && am_engine_add(eng, job) == 0 && am_engine_run(eng, 0) == 0, "engine: %s", am_last_error());
    CHECKF(am_job_transcript(job) != NULL, "%s: no transcript", path);
    am_engine_free(eng);
    return job;
}

static am_job *transcribe_file(model_ctx *c, const char *path) { return transcribe_file_with(c, path, NULL, NULL, 0); }

static char *lib_render_x(const am_transcript *tr, am_format f, const am_format_extra *x) {
    char *s = NULL;
    if (!tr) return NULL;
    CHECKF(am_format_render(tr, f, x, &s, NULL) == 0, "render: %s", am_last_error());
    return s;
}

static char *lib_render(const am_transcript *tr, am_format f) { return lib_render_x(tr, f, NULL); }

// ---------------------------------------------------------------- checks
// The "performance" object of a CLI JSON body: 4 keys, mode "cli".
static void check_performance(const char *label, const cJSON *o, double duration) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "performance");
    CHECKF(cJSON_IsObject(p), "%s: no performance object", label);
    if (!cJSON_IsObject(p)) return;
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, p) n++;
    CHECKF(n == 4, "%s: performance has %d keys", label, n);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(p, "audio_duration_s");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "processing_time_s");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(p, "realtime_factor");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(p, "mode");
    CHECKF(cJSON_IsNumber(a) && fabs(a->valuedouble - duration) < 1e-9, "%s: audio_duration_s", label);
    CHECKF(cJSON_IsNumber(t) && t->valuedouble > 0 && t->valuedouble < 600, "%s: processing_time_s", label);
    CHECKF(cJSON_IsNumber(f) && cJSON_IsNumber(t) && duration > 0 &&
               fabs(f->valuedouble - t->valuedouble / duration) <= 1e-9 * (1 + f->valuedouble),
           "%s: realtime_factor", label);
    CHECKF(cJSON_IsString(m) && !strcmp(m->valuestring, "cli"), "%s: mode", label);
}

// A CLI JSON body (one line) against the library's rendering of tr (with
// extras x, e.g. words): equal after removing "performance" from the CLI's.
static void check_json_body_x(const char *label, const char *line, size_t len, const am_transcript *tr, am_format f,
                              const am_format_extra *x) {
    char *copy = malloc(len + 1);
    memcpy(copy, line, len);
    copy[len] = 0;
    cJSON *got = cJSON_Parse(copy);
    CHECKF(got != NULL, "%s: stdout is not JSON: %.200s", label, copy);
    char *want_s = lib_render_x(tr, f, x);
    cJSON *want = want_s ? cJSON_Parse(want_s) : NULL;
    if (got && want) {
        check_performance(label, got, tr->duration);
        cJSON_DeleteItemFromObjectCaseSensitive(got, "performance");
        cJSON_DeleteItemFromObjectCaseSensitive(want, "performance");
        CHECKF(cJSON_Compare(got, want, 1), "%s: body differs from the library's rendering", label);
        // byte for byte: the CLI's line without its trailing performance object
        const char *perf = strstr(copy, ",\"performance\":{");
        const char *close = perf ? strchr(perf, '}') : NULL;
        char *bare = NULL;
        if (close && close[1] == '}' && close[2] == 0) {
            bare = strndup(copy, (size_t)(perf - copy) + 1);
            bare[perf - copy] = '}';
        }
        CHECKF(bare && !strcmp(bare, want_s), "%s: body text differs from the library's:\n%.300s\n%.300s", label,
               bare ? bare : copy, want_s);
        free(bare);
    }
    cJSON_Delete(got);
    cJSON_Delete(want);
    free(want_s);
    free(copy);
}

static void check_json_body(const char *label, const char *line, size_t len, const am_transcript *tr, am_format f) {
    check_json_body_x(label, line, len, tr, f, NULL);
}

static int near_eq(double a, double b) { return fabs(a - b) <= 1e-5 * fmax(fabs(a), fabs(b)); }

// verbose_json segments against the transcript struct: seek, start, end,
// text and tokens equal; the decode statistics equal up to the last bits of
// the logits (which depend on a row's place in a batched decoder step).
static void check_segments(const char *label, const char *body, size_t len, const am_transcript *tr) {
    char *copy = malloc(len + 1);
    memcpy(copy, body, len);
    copy[len] = 0;
    cJSON *o = cJSON_Parse(copy);
    free(copy);
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(o, "segments");
    CHECKF(cJSON_GetArraySize(segs) == tr->n_segments, "%s: %d segments, library %d", label,
           cJSON_GetArraySize(segs), tr->n_segments);
    for (int i = 0; i < tr->n_segments && i < cJSON_GetArraySize(segs); i++) {
        const am_segment *s = &tr->segments[i];
        const cJSON *j = cJSON_GetArrayItem(segs, i);
        const cJSON *seek = cJSON_GetObjectItemCaseSensitive(j, "seek");
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(j, "start");
        const cJSON *end = cJSON_GetObjectItemCaseSensitive(j, "end");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(j, "tokens");
        // times: within a few ulps (exact JSON number round trips are test_format's business)
        CHECKF(cJSON_IsNumber(seek) && seek->valueint == s->seek, "%s: segment %d seek", label, i);
        CHECKF(cJSON_IsNumber(start) && fabs(start->valuedouble - s->start) <= 1e-12 * (1 + fabs(s->start)),
               "%s: segment %d start", label, i);
        CHECKF(cJSON_IsNumber(end) && fabs(end->valuedouble - s->end) <= 1e-12 * (1 + fabs(s->end)),
               "%s: segment %d end", label, i);
        CHECKF(cJSON_IsString(text) && !strcmp(text->valuestring, s->text), "%s: segment %d text", label, i);
        int same = cJSON_GetArraySize(toks) == s->n_tokens;
        for (int k = 0; same && k < s->n_tokens; k++)
            same = cJSON_GetArrayItem(toks, k)->valuedouble == (double)s->tokens[k];
        CHECKF(same, "%s: segment %d tokens", label, i);
        static const char *stats[] = {"temperature", "avg_logprob", "compression_ratio", "no_speech_prob"};
        const double want[] = {s->temperature, s->avg_logprob, s->compression_ratio, s->no_speech_prob};
        for (int k = 0; k < 4; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, stats[k]);
            CHECKF(cJSON_IsNumber(v) && near_eq(v->valuedouble, want[k]), "%s: segment %d %s %.17g, library %.17g",
                   label, i, stats[k], cJSON_IsNumber(v) ? v->valuedouble : NAN, want[k]);
        }
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
    const char *t = tr->text;
    const size_t n = am_str_strip(&t, strlen(t));
    CHECKF(cJSON_IsString(text) && strlen(text->valuestring) == n && !strncmp(text->valuestring, t, n),
           "%s: text differs", label);
    cJSON_Delete(o);
}

// The n-th line (0-based) of s: pointer and length (without the '\n'), or NULL.
static const char *nth_line(const char *s, int n, size_t *len) {
    for (int i = 0; i < n && s; i++) {
        s = strchr(s, '\n');
        if (s) s++;
    }
    if (!s || !*s) return NULL;
    const char *e = strchr(s, '\n');
    *len = e ? (size_t)(e - s) : strlen(s);
    return s;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

// ---------------------------------------------------------------- cases
#define BIN AM_BINARY_DIR "/amanuensis"

static void test_formats(model_ctx *c, const char *model, const char *jfk, const char *gen) {
    am_job *jobs[2];
    const double t0 = am_time_s();
    jobs[0] = transcribe_file(c, jfk);
    jobs[1] = transcribe_file(c, gen);
    printf("  library: jfk and the generated clip in %.2f s\n", am_time_s() - t0);
    const am_transcript *tj = jobs[0] ? am_job_transcript(jobs[0]) : NULL;
    const am_transcript *tg = jobs[1] ? am_job_transcript(jobs[1]) : NULL;
    if (!tj || !tg) goto out;

    // verbose_json, not quiet: the body, the segments, the timings line
    {
        const char *argv[] = {BIN, "transcribe", "-m", model, "--temperature-inc", "0", "-f", "verbose_json", jfk, NULL};
        proc r = run(argv, NULL, NULL);
        CHECKF(r.status == 0, "verbose_json: exit %d: %s", r.status, r.err);
        CHECKF(r.out_len > 0 && r.out[r.out_len - 1] == '\n' && count_lines(r.out) == 1,
               "verbose_json: stdout is not one line");
        check_json_body("verbose_json", r.out, r.out_len ? r.out_len - 1 : 0, tj, AM_FMT_VERBOSE_JSON);
        check_segments("verbose_json", r.out, r.out_len, tj);
        CHECKF(strstr(r.err, "realtime") != NULL, "verbose_json: no timings line on stderr: '%s'", r.err);
        printf("  cli verbose_json: %.2f s\n", r.secs);
        proc_free(&r);
    }
    // json (quiet): {"text", "performance"}, no timings
    {
        const char *argv[] = {BIN, "transcribe", "-q", "-m", model, "--temperature-inc", "0", jfk, NULL};
        proc r = run(argv, NULL, NULL);
        CHECKF(r.status == 0, "json: exit %d: %s", r.status, r.err);
        CHECKF(r.out_len > 0 && r.out[r.out_len - 1] == '\n', "json: no newline after the body");
        check_json_body("json", r.out, r.out_len ? r.out_len - 1 : 0, tj, AM_FMT_JSON);
        cJSON *o = cJSON_Parse(r.out);
        int n = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, o) n++;
        CHECKF(n == 3 && cJSON_GetObjectItemCaseSensitive(o, "text") && cJSON_GetObjectItemCaseSensitive(o, "usage"),
               "json: %d keys", n);
        cJSON_Delete(o);
        CHECKF(strstr(r.err, "realtime") == NULL, "json -q: timings printed anyway: '%s'", r.err);
        proc_free(&r);
    }
    // text, srt, vtt: byte for byte the library's rendering
    static const struct {
        const char *name;
        am_format f;
    } plain[] = {{"text", AM_FMT_TEXT}, {"srt", AM_FMT_SRT}, {"vtt", AM_FMT_VTT}};
    for (size_t i = 0; i < AM_ARRAY_LEN(plain); i++) {
        const char *argv[] = {BIN, "transcribe", "-m", model, "--temperature-inc", "0", "--response-format",
                              plain[i].name, "-q", jfk, NULL};
        proc r = run(argv, NULL, NULL);
        char *want = lib_render(tj, plain[i].f);
        CHECKF(r.status == 0, "%s: exit %d: %s", plain[i].name, r.status, r.err);
        CHECKF(want && !strcmp(r.out, want), "%s: stdout differs from the library:\n%s\n--- want:\n%s", plain[i].name,
               r.out, want ? want : "(null)");
        CHECKF(r.err[0] == 0, "%s -q: stderr not empty: '%s'", plain[i].name, r.err);
        free(want);
        proc_free(&r);
    }
    // several files at once: in order, each as the single-file run
    {
        const char *argv1[] = {BIN, "transcribe", "-q", "-m", model, "--temperature-inc", "0", "-f", "verbose_json",
                               gen, NULL};
        proc single = run(argv1, NULL, NULL);
        CHECKF(single.status == 0, "generated clip: exit %d: %s", single.status, single.err);
        check_json_body("generated clip", single.out, single.out_len ? single.out_len - 1 : 0, tg,
                        AM_FMT_VERBOSE_JSON);
        const char *argv3[] = {BIN, "transcribe", "-q", "-m", model, "--temperature-inc", "0", "-f", "verbose_json",
                               jfk, gen, jfk, NULL};
        proc r = run(argv3, NULL, NULL);
        CHECKF(r.status == 0, "three files: exit %d: %s", r.status, r.err);
        CHECKF(count_lines(r.out) == 3, "three files: %d lines of output", count_lines(r.out));
        // Batching keeps the results: the same segments, timestamps, text and
        // tokens as the single-file runs, and the same decode statistics up to
        // the last bits of float32 logits (BLAS rounds a row differently
        // depending on how many rows share the step).
        const am_transcript *order[] = {tj, tg, tj};
        int identical = 0;
        for (int i = 0; i < 3; i++) {
            size_t len = 0;
            const char *line = nth_line(r.out, i, &len);
            char label[64];
            snprintf(label, sizeof label, "three files, #%d", i + 1);
            CHECKF(line != NULL, "%s: missing", label);
            if (!line) continue;
            check_segments(label, line, len, order[i]);
            cJSON *o = cJSON_ParseWithLength(line, len);
            check_performance(label, o, order[i]->duration);
            cJSON_DeleteItemFromObjectCaseSensitive(o, "performance");
            char *body = cJSON_PrintUnformatted(o), *want = lib_render(order[i], AM_FMT_VERBOSE_JSON);
            identical += body && want && !strcmp(body, want);
            free(body);
            free(want);
            cJSON_Delete(o);
        }
        if (identical < 3)
            printf("  note: %d of 3 batched bodies differ from the single-file runs in the last digits\n", 3 - identical);
        printf("  cli three files: %.2f s (single generated clip %.2f s)\n", r.secs, single.secs);
        proc_free(&r);
        proc_free(&single);
    }
out:
    am_job_free(jobs[0]);
    am_job_free(jobs[1]);
}

static void test_errors(const char *model, const char *jfk, const char *ml_model) {
    // no model at all
    {
        const char *argv[] = {BIN, "transcribe", jfk, NULL};
        const char *unset[] = {"AMANUENSIS_MODEL", NULL};
        proc r = run(argv, NULL, unset);
        CHECKF(r.status == 2, "no model: exit %d", r.status);
        CHECKF(strstr(r.err, "make model") != NULL, "no model: message '%s'", r.err);
        CHECK(r.out[0] == 0);
        proc_free(&r);
    }
    // a model file that does not exist: the loader's message
    {
        char nope[512];
        snprintf(nope, sizeof nope, "%s/no-such-model.bin", g_tmp);
        CHECK(am_model_load(nope) == NULL);
        char want[512];
        snprintf(want, sizeof want, "%s", am_last_error());
        const char *argv[] = {BIN, "transcribe", "-m", nope, jfk, NULL};
        proc r = run(argv, NULL, NULL);
        CHECKF(r.status == 1, "missing model: exit %d", r.status);
        CHECKF(*want && strstr(r.err, want) != NULL, "missing model: stderr '%s' lacks '%s'", r.err, want);
        proc_free(&r);
    }
    // a file of random bytes is not audio
    {
        char garbage[512];
        snprintf(garbage, sizeof garbage, "%s/garbage.wav", g_tmp);
        uint8_t bytes[8192];
        uint64_t s = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < sizeof bytes; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            bytes[i] = (uint8_t)(s >> 24);
        }
        write_file(garbage, bytes, sizeof bytes);
        const char *argv[] = {BIN, "transcribe", "-m", model, "--temperature-inc", "0", garbage, NULL};
        proc r = run(argv, NULL, NULL);
        CHECKF(r.status == 1, "garbage audio: exit %d", r.status);
        CHECKF(strstr(r.err, "garbage.wav") != NULL, "garbage audio: stderr does not name the file: '%s'", r.err);
        CHECKF(r.out[0] == 0, "garbage audio: stdout '%s'", r.out);
        proc_free(&r);
    }
    // bad options: nonzero, before any work
    static const struct {
        const char *opt, *val, *msg[5];
    } bad[] = {
        {"--no-such-option", NULL, {"--no-such-option"}},
        {"--response-format", "xml", {"json", "text", "srt", "vtt", "verbose_json"}},
        {"-f", "", {"verbose_json"}},
        {"--temperature", "2", {"temperature"}},
        {"--temperature", "-0.1", {"temperature"}},
        {"--temperature", "abc", {"not a number"}},
        {"--temperature-inc", "nan", {"not a number"}},
        {"--task", "summarize", {"transcribe", "translate"}},
        {"--batch", "0", {"batch"}},
        {"--beam-size", "0", {"--beam-size", "1..16"}},
        {"--beam-size", "17", {"--beam-size", "1..16"}},
        {"--beam-size", "abc", {"--beam-size", "integer", "'abc'"}},
        {"--beam-size", "2.5", {"--beam-size", "integer"}},
        {"--best-of", "0", {"--best-of", "1..16"}},
        {"--best-of", "17", {"--best-of", "1..16"}},
        {"--patience", "0", {"--patience", "> 0"}},
        {"--patience", "-1", {"--patience", "> 0"}},
        {"--patience", "abc", {"--patience", "> 0"}},
        {"--patience", "2", {"--patience", "requires --beam-size"}}, // without --beam-size
        {"--length-penalty", "1.5", {"--length-penalty", "0..1"}},
        {"--length-penalty", "-0.1", {"--length-penalty", "0..1"}},
        {"--length-penalty", "nan", {"--length-penalty", "0..1"}},
        {"--alignment-heads", "2,0", {"--alignment-heads", "2,0"}}, // the fixture has 2 layers x 2 heads
        {"--alignment-heads", "0,2", {"--alignment-heads"}},
        {"--alignment-heads", "-1,0", {"--alignment-heads"}},
        {"--alignment-heads", "large-v3", {"--alignment-heads", "large-v3"}},
        {"--alignment-heads", "nonsense", {"--alignment-heads", "nonsense"}},
    };
    for (size_t i = 0; i < AM_ARRAY_LEN(bad); i++) {
        const char *argv[] = {BIN, "transcribe", "-m", model, bad[i].opt, bad[i].val, jfk, NULL};
        if (!bad[i].val) argv[5] = jfk, argv[6] = NULL;
        proc r = run(argv, NULL, NULL);
        // usage errors exit 2 (a bad model file or audio: 1)
        CHECKF(r.status == 2, "%s %s: exit %d, want 2", bad[i].opt, bad[i].val ? bad[i].val : "", r.status);
        for (int k = 0; k < 5 && bad[i].msg[k]; k++)
            CHECKF(strstr(r.err, bad[i].msg[k]) != NULL, "%s %s: stderr lacks '%s': '%s'", bad[i].opt,
                   bad[i].val ? bad[i].val : "", bad[i].msg[k], r.err);
        CHECKF(r.out[0] == 0, "%s: stdout '%.100s'", bad[i].opt, r.out);
        CHECKF(r.secs < 20, "%s: took %.1f s (should fail before decoding)", bad[i].opt, r.secs);
        proc_free(&r);
    }
    // missing option value, no input files, no command
    {
        const char *argv[] = {BIN, "transcribe", "-m", model, "--language", NULL};
        proc r = run(argv, NULL, NULL);
        CHECKF(r.status == 2 && strstr(r.err, "needs a value"), "--language without a value: exit %d '%s'", r.status,
               r.err);
        proc_free(&r);
        const char *argv1[] = {BIN, "transcribe", "-m", model, jfk, "--beam-size", NULL};
        r = run(argv1, NULL, NULL);
        CHECKF(r.status == 2 && strstr(r.err, "--beam-size needs a value"), "--beam-size without a value: exit %d '%s'",
               r.status, r.err);
        proc_free(&r);
        const char *argv2[] = {BIN, "transcribe", "-m", model, NULL};
        r = run(argv2, NULL, NULL);
        CHECKF(r.status != 0 && strstr(r.err, "no input"), "no input files: exit %d '%s'", r.status, r.err);
        proc_free(&r);
        const char *argv3[] = {BIN, "frobnicate", NULL};
        r = run(argv3, NULL, NULL);
        CHECKF(r.status != 0 && strstr(r.err, "frobnicate"), "unknown command: exit %d '%s'", r.status, r.err);
        proc_free(&r);
    }
    // an unknown language is an error, on English-only models too (the
    // reference's get_tokenizer raises "Unsupported language" before looking
    // at the model)
    {
        const char *argv[] = {BIN, "transcribe", "-q", "-m", model, "--temperature-inc", "0", "--language",
                              "klingon", "-f", "text", jfk, NULL};
        proc r = run(argv, NULL, NULL);
        CHECKF(r.status != 0 && strstr(r.err, "unsupported language"),
               "--language klingon (English-only model): exit %d, stderr '%s', stdout '%.60s'", r.status, r.err,
               r.out);
        proc_free(&r);
    }
    if (ml_model) {
        const char *argv[] = {BIN, "transcribe", "-q", "-m", ml_model, "--language", "klingon", jfk, NULL};
        proc r = run(argv, NULL, NULL);
        CHECKF(r.status != 0 && strstr(r.err, "unsupported language"),
               "--language klingon (multilingual model): exit %d, stderr '%s'", r.status, r.err);
        proc_free(&r);
    } else {
        SKIP_CASE("klingon on the multilingual model", "ggml-test-ml.bin not found");
    }
}

// --word-timestamps, --alignment-heads and the beam options: the library's
// results with the same parameters.
static void test_decode_options(model_ctx *c, const char *model, const char *jfk) {
    am_transcribe_params pw = am_transcribe_default_params(), pb = pw;
    pw.decode.temperature_inc = pb.decode.temperature_inc = 0;
    pw.word_timestamps = 1;
    pb.decode.beam_size = 2;
    pb.decode.patience = 1.5;
    pb.decode.length_penalty = 0.5;
    pb.decode.best_of = 3;
    am_align_head heads[AM_ALIGN_MAX_HEADS];
    const int n_heads = am_align_parse_heads(c->m, "1,0;1,1", heads, AM_ALIGN_MAX_HEADS);
    CHECKF(n_heads == 2, "am_align_parse_heads(\"1,0;1,1\"): %d (%s)", n_heads, am_last_error());
    am_job *jw = transcribe_file_with(c, jfk, &pw, NULL, 0);
    am_job *jh = n_heads == 2 ? transcribe_file_with(c, jfk, &pw, heads, n_heads) : NULL;
    am_job *jb = transcribe_file_with(c, jfk, &pb, NULL, 0);
    const am_transcript *tw = jw ? am_job_transcript(jw) : NULL, *th = jh ? am_job_transcript(jh) : NULL;
    const am_transcript *tb = jb ? am_job_transcript(jb) : NULL;
    const am_format_extra words = {.with_words = 1};
    if (tw) { // verbose_json with words: segment words and top-level words
        const char *argv[] = {BIN, "transcribe", "-q", "-m", model, "--temperature-inc", "0", "--word-timestamps", "-f",
                              "verbose_json", jfk, NULL};
        proc r = run(argv, NULL, NULL);
        CHECKF(r.status == 0, "--word-timestamps: exit %d: %s", r.status, r.err);
        check_json_body_x("--word-timestamps", r.out, r.out_len ? r.out_len - 1 : 0, tw, AM_FMT_VERBOSE_JSON, &words);
        cJSON *o = cJSON_Parse(r.out);
        const cJSON *top = cJSON_GetObjectItemCaseSensitive(o, "words");
        const cJSON *segs = cJSON_GetObjectItemCaseSensitive(o, "segments");
        CHECKF(cJSON_IsArray(top) && cJSON_IsArray(segs), "--word-timestamps: no top-level words or no segments");
        int seg_words = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, segs) {
            const cJSON *w = cJSON_GetObjectItemCaseSensitive(it, "words");
            CHECKF(cJSON_IsArray(w), "--word-timestamps: a segment without \"words\"");
            seg_words += cJSON_GetArraySize(w);
        }
        CHECKF(cJSON_GetArraySize(top) == seg_words, "--word-timestamps: %d top-level words, %d in the segments",
               cJSON_GetArraySize(top), seg_words);
        CHECKF(seg_words > 0, "[engine] --word-timestamps: no words");
        cJSON_Delete(o);
        proc_free(&r);
        // srt: the segments (their times taken from the words), no words
        const char *argv2[] = {BIN, "transcribe", "-q", "-m", model, "--temperature-inc", "0", "--word-timestamps",
                               "-f", "srt", jfk, NULL};
        r = run(argv2, NULL, NULL);
        char *want = lib_render(tw, AM_FMT_SRT);
        CHECKF(r.status == 0 && want && !strcmp(r.out, want), "--word-timestamps srt: exit %d, differs:\n%s\n---\n%s",
               r.status, r.out, want ? want : "(null)");
        free(want);
        proc_free(&r);
    }
    if (th) {
        const char *argv[] = {BIN, "transcribe", "-q", "-m", model, "--temperature-inc", "0", "--word-timestamps",
                              "--alignment-heads", "1,0;1,1", "-f", "verbose_json", jfk, NULL};
        proc r = run(argv, NULL, NULL);
        CHECKF(r.status == 0, "--alignment-heads: exit %d: %s", r.status, r.err);
        check_json_body_x("--alignment-heads 1,0;1,1", r.out, r.out_len ? r.out_len - 1 : 0, th, AM_FMT_VERBOSE_JSON,
                          &words);
        proc_free(&r);
    }
    if (tb) {
        const char *argv[] = {BIN, "transcribe", "-q", "-m", model, "--temperature-inc", "0", "--beam-size", "2",
                              "--patience", "1.5", "--length-penalty", "0.5", "--best-of", "3", "-f", "verbose_json",
                              jfk, NULL};
        proc r = run(argv, NULL, NULL);
        CHECKF(r.status == 0, "--beam-size 2: exit %d: %s", r.status, r.err);
        check_json_body("--beam-size 2", r.out, r.out_len ? r.out_len - 1 : 0, tb, AM_FMT_VERBOSE_JSON);
        CHECKF(!strstr(r.out, "\"words\""), "--beam-size 2 without --word-timestamps has words");
        proc_free(&r);
    }
    am_job_free(jw);
    am_job_free(jh);
    am_job_free(jb);
}

// serve: bad decoding options (flags and environment) exit 2 before serving,
// with a message naming the option and its bounds.
static void test_serve_errors(const char *model) {
    const char *timeout_bin = am_test_exists("/usr/bin/timeout") ? "/usr/bin/timeout"
                              : am_test_exists("/bin/timeout")   ? "/bin/timeout"
                                                                 : NULL;
    if (!timeout_bin) { // a server that wrongly started would never return
        SKIP_CASE("serve option errors", "timeout(1) not found");
        return;
    }
    static const char *const unset[] = {"AMANUENSIS_BEAM_SIZE", "AMANUENSIS_BEST_OF", "AMANUENSIS_PATIENCE",
                                        "AMANUENSIS_LENGTH_PENALTY", "AMANUENSIS_ALIGNMENT_HEADS",
                                        "AMANUENSIS_API_KEYS", "AMANUENSIS_KV_TYPE", "AMANUENSIS_MAX_UPLOAD_MB",
                                        NULL};
    static const struct {
        const char *args[5];
        const char *env;
        const char *msg[3];
    } bad[] = {
        {{"--beam-size", "0"}, NULL, {"--beam-size", "1..16"}},
        {{"--beam-size", "17"}, NULL, {"--beam-size", "1..16"}},
        {{"--beam-size", "abc"}, NULL, {"--beam-size", "integer"}},
        {{"--best-of", "0"}, NULL, {"--best-of", "1..16"}},
        {{"--best-of", "99"}, NULL, {"--best-of", "1..16"}},
        {{"--patience", "0", "--beam-size", "2"}, NULL, {"--patience", "> 0"}},
        {{"--patience", "2"}, NULL, {"--patience", "requires --beam-size"}},
        {{"--length-penalty", "1.5"}, NULL, {"--length-penalty", "0..1"}},
        {{"--length-penalty", "-1"}, NULL, {"--length-penalty", "0..1"}},
        {{NULL}, "AMANUENSIS_BEAM_SIZE=abc", {"AMANUENSIS_BEAM_SIZE", "1..16"}},
        {{NULL}, "AMANUENSIS_BEST_OF=17", {"AMANUENSIS_BEST_OF", "1..16"}},
        {{"--beam-size", "2"}, "AMANUENSIS_PATIENCE=-2", {"AMANUENSIS_PATIENCE", "> 0"}},
        {{NULL}, "AMANUENSIS_PATIENCE=2", {"AMANUENSIS_PATIENCE", "requires"}},
        {{NULL}, "AMANUENSIS_LENGTH_PENALTY=2", {"AMANUENSIS_LENGTH_PENALTY", "0..1"}},
        {{"--alignment-heads", "2,0"}, NULL, {"--alignment-heads", "2,0"}},
        {{"--alignment-heads", "0,2"}, NULL, {"--alignment-heads"}},
        {{"--alignment-heads", "large-v3"}, NULL, {"--alignment-heads"}},
        {{NULL}, "AMANUENSIS_ALIGNMENT_HEADS=nonsense", {"AMANUENSIS_ALIGNMENT_HEADS", "nonsense"}},
        {{"--beam-size"}, NULL, {"--beam-size", "needs a value"}},
    };
    for (size_t i = 0; i < AM_ARRAY_LEN(bad); i++) {
        const char *argv[16] = {timeout_bin, "30", BIN, "serve", "-m", model, "--port", "0", "-q"};
        int n = 9;
        for (int k = 0; k < 5 && bad[i].args[k]; k++) argv[n++] = bad[i].args[k];
        argv[n] = NULL;
        const char *set[] = {bad[i].env, NULL};
        char label[128];
        snprintf(label, sizeof label, "serve %s %s %s", bad[i].args[0] ? bad[i].args[0] : "",
                 bad[i].args[1] ? bad[i].args[1] : "", bad[i].env ? bad[i].env : "");
        proc r = run(argv, set, unset);
        CHECKF(r.status == 2, "%s: exit %d, want 2 (124: it served): %s", label, r.status, r.err);
        for (int k = 0; k < 3 && bad[i].msg[k]; k++)
            CHECKF(strstr(r.err, bad[i].msg[k]) != NULL, "%s: stderr lacks '%s': '%s'", label, bad[i].msg[k], r.err);
        CHECKF(!strstr(r.err, "listening on"), "%s: it started listening", label);
        proc_free(&r);
    }
}

// scripts/download-model.sh with AMANUENSIS_MODEL_URL: fails cleanly when
// nothing answers; copies the file from a file:// "mirror". No network.
static void test_download(void) {
    if (!am_test_exists("/bin/bash") && !am_test_exists("/usr/bin/bash")) {
        SKIP_CASE("download-model.sh", "bash not found");
        return;
    }
    if (!am_test_exists("/usr/bin/curl") && !am_test_exists("/bin/curl") && !am_test_exists("/usr/local/bin/curl")) {
        SKIP_CASE("download-model.sh", "curl not found");
        return;
    }
    const char *bash = am_test_exists("/bin/bash") ? "/bin/bash" : "/usr/bin/bash";
    char dir[512];
    snprintf(dir, sizeof dir, "%s/dl", g_tmp);
    {
        const char *argv[] = {bash, AM_SOURCE_DIR "/scripts/download-model.sh", "tiny.en", dir, NULL};
        const char *set[] = {"AMANUENSIS_MODEL_URL=http://127.0.0.1:9", NULL}; // discard port: nothing listens
        proc r = run(argv, set, NULL);
        CHECKF(r.status != 0 && r.status < 128, "download from a dead port: exit %d", r.status);
        CHECKF(strstr(r.err, "could not download") != NULL, "download: stderr '%s'", r.err);
        CHECKF(strstr(r.out, "http://127.0.0.1:9/ggml-tiny.en.bin") != NULL, "download: the URL override was not used: '%s'",
               r.out);
        CHECKF(r.secs < 20, "download: took %.1f s to fail", r.secs);
        int files = 0;
        DIR *d = opendir(dir);
        for (struct dirent *e; d && (e = readdir(d));)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                files++;
                CHECKF(0, "download left '%s' behind", e->d_name);
            }
        if (d) closedir(d);
        printf("  download-model.sh: failed in %.2f s, %d files left\n", r.secs, files);
        proc_free(&r);
    }
    {
        // a local "mirror": the file arrives whole, no .part remains
        char mirror[512], src[600], url[600], got[600];
        snprintf(mirror, sizeof mirror, "%s/mirror", g_tmp);
        mkdir(mirror, 0700);
        snprintf(src, sizeof src, "%s/ggml-dummy.bin", mirror);
        const char payload[] = "not really a model, but bytes to copy\n";
        write_file(src, payload, sizeof payload - 1);
        snprintf(url, sizeof url, "AMANUENSIS_MODEL_URL=file://%s/", mirror);
        const char *argv[] = {bash, AM_SOURCE_DIR "/scripts/download-model.sh", "dummy", dir, NULL};
        const char *set[] = {url, NULL};
        proc r = run(argv, set, NULL);
        CHECKF(r.status == 0, "download from file://: exit %d: %s", r.status, r.err);
        snprintf(got, sizeof got, "%s/ggml-dummy.bin", dir);
        size_t n = 0;
        char *data = am_test_read_file(got, &n);
        CHECKF(data && n == sizeof payload - 1 && !memcmp(data, payload, n), "downloaded file differs");
        free(data);
        snprintf(got, sizeof got, "%s/ggml-dummy.bin.part", dir);
        CHECK(!am_test_exists(got));
        proc_free(&r);
        // bad names are refused before anything is fetched
        const char *argv2[] = {bash, AM_SOURCE_DIR "/scripts/download-model.sh", "../etc", dir, NULL};
        r = run(argv2, set, NULL);
        CHECKF(r.status == 2 && strstr(r.err, "invalid model name"), "bad name: exit %d '%s'", r.status, r.err);
        proc_free(&r);
    }
}

int main(void) {
    char model[1024], jfk[1024], ml[1024], gen[600];
    if (!am_test_exists(BIN)) {
        SKIP_CASE("cli", "%s not built", BIN);
        return am_test_finish("test_cli", 0);
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/am-test-cli-XXXXXX");
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    int ran = 0;
    test_download();
    ran = 1;
    const int have_model = am_test_find("fixtures/ggml-test-tiny.en.bin", model, sizeof model);
    const int have_jfk = am_test_find("audio/jfk.wav", jfk, sizeof jfk);
    const int have_ml = am_test_find("fixtures/ggml-test-ml.bin", ml, sizeof ml);
    if (!have_model || !have_jfk) {
        SKIP_CASE("transcribe", "ggml-test-tiny.en.bin or jfk.wav not found (set AMANUENSIS_TEST_DATA)");
    } else {
        snprintf(gen, sizeof gen, "%s/tone.wav", g_tmp);
        write_wav(gen);
        model_ctx c = {0};
        c.m = am_model_load(model);
        if (c.m) c.tok = am_tokenizer_create(c.m->vocab_bytes, c.m->vocab_len, c.m->n_file_vocab, c.m->hp.n_vocab);
        if (c.tok) c.dc = am_decoding_create(c.m, c.tok);
        if (c.dc) c.mel = am_mel_create(c.m->mel_filters, c.m->hp.n_mels);
        CHECKF(c.mel != NULL, "model setup: %s", am_last_error());
        if (c.mel) test_formats(&c, model, jfk, gen);
        if (c.mel) test_decode_options(&c, model, jfk);
        test_errors(model, jfk, have_ml ? ml : NULL);
        test_serve_errors(model);
        am_mel_free(c.mel);
        am_decoding_free(c.dc);
        am_tokenizer_free(c.tok);
        am_model_free(c.m);
    }
    nftw(g_tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return am_test_finish("test_cli", ran);
}
