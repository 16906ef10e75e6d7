// e2e_golden_more.c — beam search and word timestamps end to end, against the
// reference (shared/golden/golden-more.json, openai-whisper 20250625):
//
//   cli     for every model of golden-more.json, one `amanuensis transcribe`
//           of all its clips with --word-timestamps and one with --beam-size 5
//           (both --language en --temperature-inc 0 -f verbose_json); each
//           body (one line per file, in order) against transcribe_words /
//           transcribe_beam5: same segments (seek, start, end exactly equal
//           after the JSON round trip, text and tokens identical), the same
//           words in each segment (text identical, start/end exactly equal,
//           probability within 1e-4), and the top-level "words" (OpenAI's:
//           word stripped; word, start, end) equal to the segments' words in
//           order.
//   server  `amanuensis serve` on the tiny.en fixture: a mix of requests over
//           several clips (words + beam 5, words only, beam only, greedy) sent
//           all at once, then each again alone: every concurrent body equals
//           its single-request body byte for byte except the "performance"
//           object (wall-clock timings) — a difference is reported with the
//           fields it touches (the decode statistics avg_logprob,
//           no_speech_prob, probability, or anything else); the concurrent
//           words-only and beam-only bodies against the tiny.en cases of
//           golden-more.json (the reference has no words-with-beams case: those
//           bodies are checked for their shape and against their single runs).
//
// usage: e2e_golden_more [--cli-only | --server-only]
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>

#include "server.h"

#define BIN AM_BINARY_DIR "/amanuensis"
#define MAX_CLIPS 16
#define TINY_EN "ggml-test-tiny.en.bin"

// ---------------------------------------------------------------- small helpers
static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// o[key] as a number, NAN when absent or not a number
static double jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const cJSON *jget(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

// Python's s.strip() (malloc'd)
static char *py_strip(const char *text) {
    const char *s = text;
    const size_t n = am_str_strip(&s, strlen(text));
    char *r = malloc(n + 1);
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

// The body without its trailing ,"performance":{...} object (timings), or
// NULL when it does not end with one. malloc'd.
static char *without_performance(const char *body) {
    const char *perf = body ? strstr(body, ",\"performance\":{") : NULL;
    const char *close = perf ? strchr(perf, '}') : NULL;
    if (!close || close[1] != '}' || close[2] != 0) return NULL;
    char *r = strndup(body, (size_t)(perf - body) + 1);
    r[perf - body] = '}';
    return r;
}

// ---------------------------------------------------------------- comparisons
typedef struct {
    int segments, words;
} tally;

// One segment's words against the reference's: text identical, start/end
// exactly equal, probability within 1e-4. Returns 1 when equal.
static int words_equal(const char *label, int k, const cJSON *got, const cJSON *ref) {
    const int ng = cJSON_GetArraySize(got), nr = cJSON_GetArraySize(ref);
    if (!cJSON_IsArray(got) || ng != nr) {
        CHECKF(0, "%s: segment %d has %d words%s, reference %d", label, k, ng, cJSON_IsArray(got) ? "" : " (no array)",
               nr);
        return 0;
    }
    for (int i = 0; i < nr; i++) {
        const cJSON *g = cJSON_GetArrayItem(got, i), *r = cJSON_GetArrayItem(ref, i);
        const char *gw = jstr(g, "word"), *rw = jstr(r, "word");
        const double gs = jnum(g, "start"), ge = jnum(g, "end"), gp = jnum(g, "probability");
        const double rs = jnum(r, "start"), re = jnum(r, "end"), rp = jnum(r, "probability");
        const int same = gw && rw && !strcmp(gw, rw) && gs == rs && ge == re && fabs(gp - rp) <= 1e-4;
        if (!same) {
            CHECKF(0, "%s: segment %d word %d: ours '%s' [%.17g, %.17g] p %.8f, reference '%s' [%.17g, %.17g] p %.8f",
                   label, k, i, gw ? gw : "(none)", gs, ge, gp, rw ? rw : "(none)", rs, re, rp);
            return 0;
        }
    }
    return 1;
}

// A verbose_json "segments" array against the reference trace's segments:
// seek, start, end exactly equal, text and tokens identical; with_words: each
// segment's words too, else no segment has "words". Returns 1 when equal.
static int segments_equal(const char *label, const cJSON *got, const cJSON *trace, int with_words, tally *t) {
    const cJSON *ref = jget(trace, "segments");
    const int ng = cJSON_GetArraySize(got), nr = cJSON_GetArraySize(ref);
    if (!cJSON_IsArray(got)) {
        CHECKF(0, "%s: no \"segments\" array", label);
        return 0;
    }
    for (int k = 0; k < ng && k < nr; k++) {
        const cJSON *g = cJSON_GetArrayItem(got, k), *r = cJSON_GetArrayItem(ref, k);
        const cJSON *gt = jget(g, "tokens"), *rt = jget(r, "tokens");
        int same_tokens = cJSON_IsArray(gt) && cJSON_GetArraySize(gt) == cJSON_GetArraySize(rt);
        for (int i = 0; same_tokens && i < cJSON_GetArraySize(rt); i++) {
            const cJSON *a = cJSON_GetArrayItem(gt, i), *b = cJSON_GetArrayItem(rt, i);
            same_tokens = cJSON_IsNumber(a) && a->valuedouble == b->valuedouble;
        }
        const char *gx = jstr(g, "text"), *rx = jstr(r, "text");
        const double gseek = jnum(g, "seek"), gs = jnum(g, "start"), ge = jnum(g, "end");
        const double rseek = jnum(r, "seek"), rs = jnum(r, "start"), re = jnum(r, "end");
        const int same = gseek == rseek && gs == rs && ge == re && gx && rx && !strcmp(gx, rx) && same_tokens;
        if (!same) {
            CHECKF(0,
                   "%s: segment %d differs: ours seek %.0f [%.17g, %.17g] %d tokens%s '%.60s', reference seek %.0f "
                   "[%.17g, %.17g] %d tokens '%.60s'",
                   label, k, gseek, gs, ge, cJSON_GetArraySize(gt), same_tokens ? "" : " (differ)", gx ? gx : "(none)",
                   rseek, rs, re, cJSON_GetArraySize(rt), rx ? rx : "(none)");
            return 0;
        }
        if (with_words) {
            if (!words_equal(label, k, jget(g, "words"), jget(r, "words"))) return 0;
            t->words += cJSON_GetArraySize(jget(g, "words"));
        } else if (jget(g, "words")) {
            CHECKF(0, "%s: segment %d has \"words\" without word timestamps", label, k);
            return 0;
        }
    }
    if (ng != nr) {
        CHECKF(0, "%s: %d segments, reference %d", label, ng, nr);
        return 0;
    }
    t->segments = ng;
    return 1;
}

// OpenAI's top-level "words": the words of `segs` (an array of segments with
// "words") in order, each {word: stripped text, start, end} and nothing else.
// Returns 1 when equal.
static int top_words_equal(const char *label, const cJSON *top, const cJSON *segs) {
    if (!cJSON_IsArray(top)) {
        CHECKF(0, "%s: no top-level \"words\" array", label);
        return 0;
    }
    const cJSON *it = top->child, *s;
    int i = 0;
    cJSON_ArrayForEach(s, segs) {
        const cJSON *w;
        cJSON_ArrayForEach(w, jget(s, "words")) {
            if (!it) {
                CHECKF(0, "%s: top-level words end at %d, the segments have more", label, i);
                return 0;
            }
            char *want = py_strip(jstr(w, "word") ? jstr(w, "word") : "");
            const char *got = jstr(it, "word");
            const int keys = cJSON_GetArraySize(it);
            const int same = keys == 3 && got && !strcmp(got, want) && jnum(it, "start") == jnum(w, "start") &&
                             jnum(it, "end") == jnum(w, "end");
            CHECKF(same, "%s: top-level word %d: '%s' [%.17g, %.17g] (%d keys), want '%s' [%.17g, %.17g]", label, i,
                   got ? got : "(none)", jnum(it, "start"), jnum(it, "end"), keys, want, jnum(w, "start"),
                   jnum(w, "end"));
            free(want);
            if (!same) return 0;
            it = it->next;
            i++;
        }
    }
    CHECKF(it == NULL, "%s: %d top-level words, the segments have %d", label, cJSON_GetArraySize(top), i);
    return it == NULL;
}

// A whole verbose_json body against a golden-more trace. words: the body has
// word timestamps (segment words and top-level words); segments: the body has
// "segments" (a server request with only timestamp_granularities[]=word has
// not: then its top-level words are compared with the reference's).
static int body_matches(const char *label, const cJSON *body, const cJSON *trace, int words, int segments, tally *t) {
    memset(t, 0, sizeof *t);
    if (!body) {
        CHECKF(0, "%s: body is not JSON", label);
        return 0;
    }
    int ok = 1;
    if (segments) ok = segments_equal(label, jget(body, "segments"), trace, words, t);
    else if (jget(body, "segments")) {
        CHECKF(0, "%s: \"segments\" present though only word granularity was asked for", label);
        ok = 0;
    }
    if (!ok) return 0;
    if (words) {
        // once the segments equal the reference's, its segments stand for ours
        if (!top_words_equal(label, jget(body, "words"), segments ? jget(body, "segments") : jget(trace, "segments")))
            return 0;
        if (!segments) {
            t->segments = cJSON_GetArraySize(jget(trace, "segments"));
            t->words = cJSON_GetArraySize(jget(body, "words"));
        }
    } else if (jget(body, "words")) {
        CHECKF(0, "%s: top-level \"words\" without word timestamps", label);
        return 0;
    }
    return 1;
}

// ---------------------------------------------------------------- the CLI
typedef struct {
    int status; // exit code, 128 + signal, -1: could not run
    char *out, *err;
    double secs;
} proc;

static char *slurp_fd(int fd) {
    size_t n = 0, cap = 4096;
    char *b = malloc(cap);
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        if (n + 4096 + 1 > cap) b = realloc(b, cap *= 2);
        const ssize_t r = read(fd, b + n, 4096);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    b[n] = 0;
    return b;
}

// Run argv with stdout and stderr captured (temporary files, removed).
static proc run_cli(const char *const *argv) {
    proc p = {.status = -1};
    char out_path[] = "/tmp/am_e2e_gm_out_XXXXXX", err_path[] = "/tmp/am_e2e_gm_err_XXXXXX";
    const int fo = mkstemp(out_path), fe = mkstemp(err_path);
    if (fo < 0 || fe < 0) {
        CHECKF(0, "mkstemp: %s", strerror(errno));
        if (fo >= 0) close(fo), unlink(out_path);
        if (fe >= 0) close(fe), unlink(err_path);
        p.out = calloc(1, 1);
        p.err = calloc(1, 1);
        return p;
    }
    unlink(out_path);
    unlink(err_path);
    fflush(stdout);
    fflush(stderr);
    const double t0 = am_time_s();
    const pid_t pid = fork();
    if (pid == 0) {
        const int fin = open("/dev/null", O_RDONLY);
        if (fin >= 0) dup2(fin, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid > 0) {
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        p.status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
    } else {
        CHECKF(0, "fork: %s", strerror(errno));
    }
    p.secs = am_time_s() - t0;
    p.out = slurp_fd(fo);
    p.err = slurp_fd(fe);
    close(fo);
    close(fe);
    return p;
}

static void proc_free(proc *p) {
    free(p->out);
    free(p->err);
}

static const char *short_model(const char *model_file) { // ggml-test-tiny.en.bin -> tiny.en
    return !strncmp(model_file, "ggml-test-", 10) ? model_file + 10 : model_file;
}

// Both invocations for one model: all its clips at once, words then beam 5.
static int cli_model(const char *model_file, const cJSON *cases) {
    char rel[512], model[1024];
    snprintf(rel, sizeof rel, "fixtures/%s", model_file);
    if (!am_test_find(rel, model, sizeof model)) {
        SKIP_CASE(model_file, "model file not found (set AMANUENSIS_TEST_DATA to the shared dir)");
        return 0;
    }
    const cJSON *cs[MAX_CLIPS];
    char paths[MAX_CLIPS][1024];
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *m = jstr(c, "model"), *clip = jstr(c, "clip");
        if (!m || !clip || strcmp(m, model_file) || n == MAX_CLIPS) continue;
        snprintf(rel, sizeof rel, "audio/%s", clip);
        if (!am_test_find(rel, paths[n], sizeof paths[n])) {
            char label[300];
            snprintf(label, sizeof label, "%s/%s", model_file, clip);
            SKIP_CASE(label, "clip not found (set AMANUENSIS_TEST_DATA to the shared dir)");
            continue;
        }
        cs[n++] = c;
    }
    if (!n) return 0;
    static const struct {
        const char *name, *opt, *val, *key;
        int words;
    } runs[] = {{"words", "--word-timestamps", NULL, "transcribe_words", 1},
                {"beam5", "--beam-size", "5", "transcribe_beam5", 0}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        const char *argv[16 + MAX_CLIPS];
        int a = 0;
        argv[a++] = BIN;
        argv[a++] = "transcribe";
        argv[a++] = "-q";
        argv[a++] = "-m";
        argv[a++] = model;
        argv[a++] = "--language";
        argv[a++] = "en";
        argv[a++] = "--temperature-inc";
        argv[a++] = "0";
        argv[a++] = runs[r].opt;
        if (runs[r].val) argv[a++] = runs[r].val;
        argv[a++] = "-f";
        argv[a++] = "verbose_json";
        for (int i = 0; i < n; i++) argv[a++] = paths[i];
        argv[a] = NULL;
        proc p = run_cli(argv);
        CHECKF(p.status == 0, "%s %s: exit %d: %s", model_file, runs[r].name, p.status, p.err);
        printf("%s: cli %s, %d clip(s) in one run: %.2f s\n", short_model(model_file), runs[r].name, n, p.secs);
        // one body per line, in the order of the files
        const char *line = p.out;
        for (int i = 0; i < n; i++) {
            char label[300];
            snprintf(label, sizeof label, "cli %s/%s %s", short_model(model_file), jstr(cs[i], "clip"), runs[r].name);
            const char *eol = line ? strchr(line, '\n') : NULL;
            if (!eol) {
                CHECKF(0, "%s: no output line %d (stdout has fewer lines than files)", label, i + 1);
                break;
            }
            cJSON *body = cJSON_ParseWithLength(line, (size_t)(eol - line));
            tally t;
            const int ok = body_matches(label, body, jget(cs[i], runs[r].key), runs[r].words, 1, &t);
            if (ok) printf("  %-58s %3d segments, %4d words: equal\n", label, t.segments, t.words);
            cJSON_Delete(body);
            line = eol + 1;
        }
        CHECKF(p.status != 0 || (line && *line == 0), "%s %s: more output lines than files", model_file,
               runs[r].name);
        proc_free(&p);
    }
    return 1;
}

// ---------------------------------------------------------------- the server
enum { K_WORDS_BEAM, K_WORDS, K_BEAM, K_GREEDY };

typedef struct {
    const char *clip;
    int kind;
    int with_segments; // with word timestamps: timestamp_granularities[]=segment too
    const char *format; // response_format
} req_spec;

// The mix: every kind on several clips, words with and without segment
// granularity, one clip asked twice in the same shape.
static const req_spec k_reqs[] = {
    {"jfk.wav", K_WORDS_BEAM, 1, "verbose_json"},
    {"one-two-three-44k.wav", K_WORDS_BEAM, 0, "verbose_json"},
    {"long-mix-16k.wav", K_WORDS_BEAM, 1, "verbose_json"},
    {"jfk.wav", K_WORDS, 1, "verbose_json"},
    {"one-two-three-44k.wav", K_WORDS, 0, "verbose_json"},
    {"long-mix-16k.wav", K_WORDS, 1, "verbose_json"},
    {"jfk-44k-stereo.flac", K_WORDS, 1, "verbose_json"},
    {"jfk.wav", K_BEAM, 0, "verbose_json"},
    {"long-mix-16k.wav", K_BEAM, 0, "verbose_json"},
    {"jfk.mp3", K_BEAM, 0, "verbose_json"},
    {"one-two-three-44k.wav", K_GREEDY, 0, "verbose_json"},
    {"jfk.wav", K_GREEDY, 0, "json"},
    {"jfk.wav", K_WORDS_BEAM, 1, "verbose_json"}, // the first request again, at the same time
};
#define N_REQS ((int)(sizeof k_reqs / sizeof k_reqs[0]))

static const char *const k_kind_names[] = {"words+beam5", "words", "beam5", "greedy"};

typedef struct {
    char name[64];
    void *data;
    size_t size;
} audio_file;

static void build_fields(const req_spec *r, const char **f) {
    int n = 0;
    f[n++] = "response_format";
    f[n++] = r->format;
    f[n++] = "language";
    f[n++] = "en";
    f[n++] = "temperature_inc";
    f[n++] = "0";
    if (r->kind == K_WORDS_BEAM || r->kind == K_WORDS) {
        f[n++] = "timestamp_granularities[]";
        f[n++] = "word";
        if (r->with_segments) {
            f[n++] = "timestamp_granularities[]";
            f[n++] = "segment";
        }
    }
    if (r->kind == K_WORDS_BEAM || r->kind == K_BEAM) {
        f[n++] = "beam_size";
        f[n++] = "5";
    }
    f[n] = NULL;
    f[n + 1] = NULL;
}

// Walk two bodies side by side: structural differences (keys, strings,
// array lengths, numbers in any other field) count in *other; numbers of the
// decode statistics that differ go into the per-field tally (count, largest
// relative difference).
static const char *const k_stats[] = {"avg_logprob", "no_speech_prob", "probability", "compression_ratio",
                                      "temperature"};
#define N_STATS ((int)(sizeof k_stats / sizeof k_stats[0]))

static void json_diff(const cJSON *a, const cJSON *b, const char *key, int *n_stat, double *max_rel, int *other) {
    if (!a || !b || (a->type & 0xff) != (b->type & 0xff)) {
        (*other)++;
        return;
    }
    if (cJSON_IsNumber(a)) {
        if (a->valuedouble == b->valuedouble) return;
        for (int k = 0; k < N_STATS; k++)
            if (key && !strcmp(key, k_stats[k])) {
                const double rel = fabs(a->valuedouble - b->valuedouble) / fmax(fabs(a->valuedouble), 1e-300);
                n_stat[k]++;
                if (rel > max_rel[k]) max_rel[k] = rel;
                return;
            }
        (*other)++;
    } else if (cJSON_IsString(a)) {
        *other += strcmp(a->valuestring, b->valuestring) != 0;
    } else if (cJSON_IsArray(a) || cJSON_IsObject(a)) {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) {
            (*other)++;
            return;
        }
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next) {
            if (cJSON_IsObject(a) && strcmp(x->string, y->string)) (*other)++;
            else json_diff(x, y, cJSON_IsObject(a) ? x->string : key, n_stat, max_rel, other);
        }
    }
}

// A concurrent body that is not its single-request body: where they first
// differ, and which fields differ (the check has failed already).
static void report_diff(const char *label, const char *a, const char *b) {
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    const size_t from = i > 80 ? i - 80 : 0;
    CHECKF(0, "%s: concurrent body differs from the single request at byte %zu:\n  concurrent: ...%.200s\n  single:     ...%.200s",
           label, i, a + from, b + from);
    cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b);
    int n_stat[N_STATS] = {0}, other = 0;
    double max_rel[N_STATS] = {0};
    json_diff(ja, jb, NULL, n_stat, max_rel, &other);
    fprintf(stderr, "  differing values:");
    for (int k = 0; k < N_STATS; k++)
        if (n_stat[k]) fprintf(stderr, " %s %d (max rel %.2g)", k_stats[k], n_stat[k], max_rel[k]);
    fprintf(stderr, "; anything else (keys, text, tokens, seek, start, end, word times): %d\n", other);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
}

static int server_part(const cJSON *cases) {
    char model[1024], rel[512];
    if (!am_test_find("fixtures/" TINY_EN, model, sizeof model)) {
        SKIP_CASE("server", "%s not found (set AMANUENSIS_TEST_DATA to the shared dir)", TINY_EN);
        return 0;
    }
    audio_file files[MAX_CLIPS];
    int n_files = 0;
    int idx[N_REQS];
    for (int i = 0; i < N_REQS; i++) {
        idx[i] = -1;
        for (int k = 0; k < n_files && idx[i] < 0; k++)
            if (!strcmp(files[k].name, k_reqs[i].clip)) idx[i] = k;
        if (idx[i] >= 0) continue;
        char path[1024];
        snprintf(rel, sizeof rel, "audio/%s", k_reqs[i].clip);
        audio_file *f = &files[n_files];
        if (!am_test_find(rel, path, sizeof path) || !(f->data = am_test_read_file(path, &f->size))) {
            SKIP_CASE("server", "clip %s not found (set AMANUENSIS_TEST_DATA to the shared dir)", k_reqs[i].clip);
            for (int k = 0; k < n_files; k++) free(files[k].data);
            return 0;
        }
        snprintf(f->name, sizeof f->name, "%s", k_reqs[i].clip);
        idx[i] = n_files++;
    }
    test_server srv;
    if (server_start(&srv, model, NULL)) {
        CHECKF(0, "server did not start (log %s)", srv.log);
        server_stop(&srv, SIGKILL);
        for (int k = 0; k < n_files; k++) free(files[k].data);
        return 1;
    }
    printf("server: %d requests over %d clips, %s, port %d\n", N_REQS, n_files, TINY_EN, srv.port);

    // all at once
    http_upload conc[N_REQS];
    for (int i = 0; i < N_REQS; i++) {
        const char *fields[24];
        build_fields(&k_reqs[i], fields);
        http_upload_init(&conc[i], srv.port, "/v1/audio/transcriptions", files[idx[i]].data, files[idx[i]].size,
                         files[idx[i]].name, fields);
    }
    const double t0 = am_time_s();
    http_run_all(conc, N_REQS);
    const double t_conc = am_time_s() - t0;
    char *stats = NULL;
    const long st_code = http_get(srv.port, "/stats/batching", &stats);
    cJSON *sj = st_code == 200 ? cJSON_Parse(stats) : NULL;
    const cJSON *dec = jget(sj, "decoder");
    const double dec_avg = jnum(dec, "avg_batch_size"), dec_steps = jnum(dec, "steps");
    printf("server: %d concurrent requests in %.2f s (decoder: %.0f steps, %.1f rows/step)\n", N_REQS, t_conc,
           dec_steps, dec_avg);
    cJSON_Delete(sj);
    free(stats);

    // each alone, one after the other
    double t_single = 0;
    for (int i = 0; i < N_REQS; i++) {
        char label[200];
        snprintf(label, sizeof label, "server #%d %s %s%s (%s)", i, k_reqs[i].clip, k_kind_names[k_reqs[i].kind],
                 k_reqs[i].with_segments ? "+segments" : "", k_reqs[i].format);
        const char *fields[24];
        build_fields(&k_reqs[i], fields);
        http_upload one;
        http_upload_init(&one, srv.port, "/v1/audio/transcriptions", files[idx[i]].data, files[idx[i]].size,
                         files[idx[i]].name, fields);
        const double t1 = am_time_s();
        http_run_all(&one, 1);
        const double dt = am_time_s() - t1;
        t_single += dt;
        CHECKF(conc[i].status == 200, "%s: concurrent status %ld: %.300s", label, conc[i].status,
               conc[i].body.data ? conc[i].body.data : "");
        CHECKF(one.status == 200, "%s: single status %ld: %.300s", label, one.status,
               one.body.data ? one.body.data : "");
        char *a = without_performance(conc[i].body.data), *b = without_performance(one.body.data);
        CHECKF(a && b, "%s: a body does not end with the \"performance\" object", label);
        if (a && b && strcmp(a, b)) report_diff(label, a, b);
        else if (a && b) printf("  %-68s equal (%zu bytes; alone %.2f s)\n", label, strlen(a), dt);
        free(a);
        free(b);
        http_upload_free(&one);
    }
    printf("server: the same %d requests one at a time: %.2f s (concurrent: %.2f s, %.2fx)\n", N_REQS, t_single,
           t_conc, t_conc > 0 ? t_single / t_conc : 0.0);

    // the concurrent bodies against the reference, where it has the case
    for (int i = 0; i < N_REQS; i++) {
        const req_spec *r = &k_reqs[i];
        if (conc[i].status != 200) continue;
        char label[200];
        snprintf(label, sizeof label, "server #%d %s %s%s", i, r->clip, k_kind_names[r->kind],
                 r->with_segments ? "+segments" : "");
        cJSON *body = cJSON_Parse(conc[i].body.data);
        const cJSON *perf = jget(body, "performance");
        CHECKF(jstr(perf, "mode") != NULL, "%s: no performance.mode", label);
        const cJSON *c = NULL, *it;
        cJSON_ArrayForEach(it, cases) {
            if (jstr(it, "model") && jstr(it, "clip") && !strcmp(jstr(it, "model"), TINY_EN) &&
                !strcmp(jstr(it, "clip"), r->clip))
                c = it;
        }
        tally t;
        if (r->kind == K_WORDS && c) {
            if (body_matches(label, body, jget(c, "transcribe_words"), 1, r->with_segments, &t))
                printf("  %-58s %3d segments, %4d words: equal to transcribe_words\n", label, t.segments, t.words);
        } else if (r->kind == K_BEAM && c) {
            if (body_matches(label, body, jget(c, "transcribe_beam5"), 0, 1, &t))
                printf("  %-58s %3d segments: equal to transcribe_beam5\n", label, t.segments);
        } else if (r->kind == K_WORDS_BEAM) {
            // no reference for words with beams: the body's own shape
            const cJSON *segs = jget(body, "segments");
            CHECKF(r->with_segments ? cJSON_IsArray(segs) : segs == NULL, "%s: \"segments\" %s", label,
                   segs ? "present" : "missing");
            if (segs) top_words_equal(label, jget(body, "words"), segs);
            else CHECKF(cJSON_IsArray(jget(body, "words")), "%s: no top-level words", label);
            CHECKF(cJSON_GetArraySize(jget(body, "words")) > 0, "%s: no words", label);
        }
        cJSON_Delete(body);
    }
    for (int i = 0; i < N_REQS; i++) http_upload_free(&conc[i]);
    const int st = server_stop(&srv, SIGTERM);
    CHECKF(st == 0, "server exit status %d (want a clean exit 0 after SIGTERM)", st);
    for (int k = 0; k < n_files; k++) free(files[k].data);
    return 1;
}

// ---------------------------------------------------------------- main
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); // progress lines in order with the failures on stderr
    const int cli = argc < 2 || strcmp(argv[1], "--server-only") != 0;
    const int srv = argc < 2 || strcmp(argv[1], "--cli-only") != 0;
    char path[1024];
    if (!am_test_find("golden/golden-more.json", path, sizeof path)) {
        SKIP_CASE("golden-more", "golden-more.json not found (set AMANUENSIS_TEST_DATA to the shared dir)");
        return am_test_finish("e2e_golden_more", 0);
    }
    char *text = am_test_read_file(path, NULL);
    cJSON *more = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *cases = jget(more, "cases");
    if (!cJSON_IsArray(cases)) {
        CHECKF(0, "%s: not a golden-more document", path);
        cJSON_Delete(more);
        return am_test_finish("e2e_golden_more", 0);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int ran = 0;
    const double t0 = am_time_s();
    if (cli) { // every model, in the order of its first case
        const char *seen[64];
        int n_seen = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cases) {
            const char *m = jstr(c, "model");
            int dup = !m;
            for (int i = 0; i < n_seen && !dup; i++) dup = !strcmp(seen[i], m);
            if (dup || n_seen == 64) continue;
            seen[n_seen++] = m;
            ran |= cli_model(m, cases);
        }
        printf("cli: %.1f s\n", am_time_s() - t0);
    }
    if (srv) {
        const double t1 = am_time_s();
        ran |= server_part(cases);
        printf("server: %.1f s in all\n", am_time_s() - t1);
    }
    curl_global_cleanup();
    cJSON_Delete(more);
    return am_test_finish("e2e_golden_more", ran);
}
