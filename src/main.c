// main.c — the amanuensis command line.
//
//   amanuensis transcribe -m MODEL [options] FILE...   transcribe files (batched together)
//   amanuensis info -m MODEL [FILE...]                 model facts and stage timings
//   amanuensis serve [-m MODEL] [options]              the OpenAI-compatible HTTP server
//   amanuensis vad [-m VAD_MODEL] [options] FILE      speech segments (Silero VAD) as JSON
//   amanuensis config [--markdown]                     the settings table
//
// Every option and environment variable is a row of the settings table in
// am_config.c: it parses them (flag > environment > default) and writes the
// option lines of the usage text; the commands here check what spans several
// settings (patience needs a beam size, alignment heads against the model).
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "am_audio.h"
#include "am_config.h"
#include "am_decoder.h"
#include "am_encoder.h"
#include "am_format.h"
#include "am_http.h"
#include "am_mel.h"
#include "am_metrics.h"
#include "am_model.h"
#include "am_sched.h"
#include "am_transcribe.h"
#include "am_vad.h"

// ---------------------------------------------------------------- usage
// What each command is, above its option lines (which come from the settings table).
static const struct {
    unsigned cmd;
    const char *synopsis, *about;
} k_commands[] = {
    {AM_CMD_TRANSCRIBE, "transcribe -m MODEL [options] FILE...",
     "transcribe audio files (any container ffmpeg reads); several files are decoded together in batches.\n"
     "Output (stdout) is the server's response body; progress and timings go to stderr."},
    {AM_CMD_INFO, "info -m MODEL [FILE...]",
     "print the model's parameters; for each audio FILE, decode it and time the mel and encoder stages"},
    {AM_CMD_VAD, "vad [-m VAD_MODEL] [options] FILE",
     "speech segments (Silero VAD v6.2, whisper.cpp's VAD ggml file and segmentation) as JSON:\n"
     "{\"segments\":[[start_s,end_s],...],\"spans\":[[first,end],...]}; spans are the samples [first, end)\n"
     "at 16 kHz whisper.cpp keeps of each segment when it transcribes with VAD (end + --samples-overlap\n"
     "for all but the last)"},
    {AM_CMD_SERVE, "serve [-m MODEL] [options]",
     "the OpenAI-compatible HTTP server (POST /v1/audio/transcriptions, /v1/audio/translations; GET /health,\n"
     "/ready, /v1/models, /stats/batching, /metrics). SIGTERM/SIGINT drain, then exit 0."},
};

// The usage of every command (cmd 0) or of one.
static void usage(FILE *f, unsigned cmd) {
    fprintf(f, "usage: amanuensis <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < AM_ARRAY_LEN(k_commands); i++) {
        if (cmd && cmd != k_commands[i].cmd) continue;
        fprintf(f, "  %s\n", k_commands[i].synopsis);
        for (const char *p = k_commands[i].about; *p;) { // each line indented
            const char *e = strchr(p, '\n');
            const int n = e ? (int)(e - p) : (int)strlen(p);
            fprintf(f, "      %.*s\n", n, p);
            p += n + (e != NULL);
        }
        am_config_usage(f, k_commands[i].cmd, 6);
    }
    if (!cmd)
        fprintf(f, "  config [--markdown]\n"
                   "      print the settings table (--markdown: the table of README.md's Configuration section)\n");
    fprintf(f, "\n"
               "A flag overrides its environment variable ($NAME), which overrides the default; flags take\n"
               "their value as the next argument or after '='. Get a real model with: make model MODEL=base.en\n");
}

// The settings of command cmd from argv[2..] and the environment. Returns -1
// when the command should go on, else its exit status: 0 after --help, 2
// after an option error (printed).
static int load_settings(am_settings *s, unsigned cmd, int argc, char **argv) {
    if (am_config_load(s, cmd, argc - 2, argv + 2)) {
        fprintf(stderr, "amanuensis: %s\n", am_last_error());
        return am_last_error_code() == AM_EINVAL ? 2 : 1;
    }
    if (s->help) {
        usage(stdout, cmd);
        return 0;
    }
    return -1;
}

// --alignment-heads SPEC against the loaded model into heads (AM_ALIGN_MAX_HEADS);
// `what` names the flag or variable. Returns the count, or -1 with a message.
static int parse_alignment_heads(const char *what, const am_model *m, const char *spec, am_align_head *heads) {
    const int n = am_align_parse_heads(m, spec, heads, AM_ALIGN_MAX_HEADS);
    if (n <= 0) {
        fprintf(stderr, "amanuensis: %s '%s': %s\n", what, spec, n < 0 ? am_last_error() : "no heads given");
        return -1;
    }
    return n;
}

// Patience without a beam size is an error, as in the reference's DecodingOptions.
static int check_patience(const am_settings *s, const char *beam_what) {
    if (am_config_source_of(s, "patience") != AM_SRC_DEFAULT && s->beam_size == 0) {
        fprintf(stderr, "amanuensis: %s requires %s (patience applies to beam search only)\n",
                am_config_origin(s, "patience"), beam_what);
        return -1;
    }
    return 0;
}

// The value of an enum setting as the table spells it ("f16", "verbose_json").
static const char *enum_value(const am_settings *s, const char *name, int index) {
    return am_config_find(s->cmd, name)->values[index];
}

// The K/V type of --kv-type (f32 or f16: both names of am_type_from_name).
static int kv_type_of(const am_settings *s) { return am_type_from_name(enum_value(s, "kv-type", s->kv_type)); }

static const char k_no_model[] =
    "amanuensis: no model given (-m MODEL or $AMANUENSIS_MODEL); try: make model MODEL=base.en\n";

// ---------------------------------------------------------------- info
static int info_run(const am_settings *s) {
    if (!s->model || !*s->model) {
        fputs(k_no_model, stderr);
        return 2;
    }
    double t0 = am_time_s();
    am_model *m = am_model_load(s->model);
    if (!m) {
        fprintf(stderr, "amanuensis: %s\n", am_last_error());
        return 1;
    }
    const am_hparams *hp = &m->hp;
    printf("model %s: %s weights (file ftype %d), loaded in %.0f ms, %.1f MB in memory\n", m->name,
           am_type_name(m->weight_type), hp->ftype, 1e3 * (am_time_s() - t0),
           am_model_weight_bytes(m) / 1048576.0);
    printf("  vocab %d (%s), mels %d\n", hp->n_vocab, am_model_is_multilingual(m) ? "multilingual" : "English-only",
           hp->n_mels);
    printf("  encoder: ctx %d, width %d, heads %d, layers %d\n", hp->n_audio_ctx, hp->n_audio_state,
           hp->n_audio_head, hp->n_audio_layer);
    printf("  decoder: ctx %d, width %d, heads %d, layers %d\n", hp->n_text_ctx, hp->n_text_state, hp->n_text_head,
           hp->n_text_layer);
    const int kv_types[] = {AM_TYPE_F32, AM_TYPE_F16};
    for (size_t i = 0; i < AM_ARRAY_LEN(kv_types); i++) {
        const int kv = kv_types[i];
        printf("  per window (kv %s): cross K/V %.1f MB; per sequence: self KV %.1f MB\n", am_type_name(kv),
               am_xkv_bytes(m, kv) / 1048576.0, am_seq_bytes_for(m, 0, kv) / 1048576.0);
    }
    int rc = 0;
    am_mel *mel = am_mel_create(m->mel_filters, hp->n_mels);
    am_encoder *enc = am_encoder_create(m, NULL);
    const size_t win = (size_t)hp->n_mels * AM_MEL_WINDOW_FRAMES;
    float *window = malloc(win * sizeof *window);
    float *out = malloc((size_t)hp->n_audio_ctx * hp->n_audio_state * sizeof *out);
    if (!mel || !enc || !window || !out) {
        fprintf(stderr, "amanuensis: %s\n", am_last_error());
        rc = 1;
        goto done;
    }
    for (int i = 0; i < s->n_args; i++) {
        float *pcm = NULL;
        size_t n = 0;
        am_mel_result r = {0};
        double ta = am_time_s();
        if (am_audio_decode_file(s->args[i], NULL, &pcm, &n)) {
            fprintf(stderr, "amanuensis: %s: %s\n", s->args[i], am_last_error());
            rc = 1;
            continue;
        }
        double tb = am_time_s();
        if (am_mel_compute(mel, pcm, n, &r)) {
            fprintf(stderr, "amanuensis: %s: %s\n", s->args[i], am_last_error());
            am_audio_free(pcm);
            rc = 1;
            continue;
        }
        double tc = am_time_s();
        am_mel_window(window, &r, 0);
        am_encoder_run(enc, window, 1, out);
        double td = am_time_s();
        printf("%s: %.2f s of audio; decode %.1f ms, mel %.1f ms (%d frames), encoder %.1f ms (first window)\n",
               s->args[i], n / (double)AM_SAMPLE_RATE, 1e3 * (tb - ta), 1e3 * (tc - tb), r.content_frames,
               1e3 * (td - tc));
        am_mel_free_result(&r);
        am_audio_free(pcm);
    }
done:
    free(window);
    free(out);
    am_encoder_free(enc);
    am_mel_free(mel);
    am_model_free(m);
    return rc;
}

static int cmd_info(int argc, char **argv) {
    am_settings s;
    int rc = load_settings(&s, AM_CMD_INFO, argc, argv);
    if (rc < 0) rc = info_run(&s);
    am_config_free(&s);
    return rc;
}

// ---------------------------------------------------------------- transcribe
typedef struct {
    const char *path;
    am_job *job;
    double audio_s;
} cli_file;

static int transcribe_run(const am_settings *s) {
    am_transcribe_params tp = am_transcribe_default_params();
    tp.language = !strcmp(s->language, "auto") ? NULL : s->language;
    tp.translate = !strcmp(enum_value(s, "task", s->task), "translate");
    tp.initial_prompt = s->prompt;
    tp.condition_on_previous_text = s->condition_on_previous_text;
    tp.word_timestamps = s->word_timestamps;
    tp.decode.temperature = s->temperature;
    tp.decode.temperature_inc = s->temperature_inc;
    tp.decode.compression_ratio_threshold = s->compression_ratio_threshold;
    tp.decode.logprob_threshold = s->logprob_threshold;
    tp.decode.no_speech_threshold = s->no_speech_threshold;
    tp.decode.without_timestamps = s->without_timestamps;
    tp.decode.seed = (uint64_t)s->seed;
    tp.decode.beam_size = (int)s->beam_size;
    tp.decode.best_of = (int)s->best_of;
    tp.decode.patience = s->patience;
    tp.decode.length_penalty = s->length_penalty;
    am_format fmt = AM_FMT_JSON;
    if (am_format_parse(enum_value(s, "response-format", s->response_format), &fmt)) {
        fprintf(stderr, "amanuensis: %s\n", am_last_error());
        return 2;
    }
    const char *model_path = s->model, *heads_spec = s->alignment_heads;
    const int quiet = s->quiet, batch = (int)s->batch, kv_type = kv_type_of(s);
    if (check_patience(s, "--beam-size")) return 2;
    if (!model_path || !*model_path) {
        fputs(k_no_model, stderr);
        return 2;
    }
    if (s->n_args == 0) {
        fprintf(stderr, "amanuensis: no input files\n");
        return 2;
    }
    int n_files = s->n_args, rc = 2;
    cli_file *files = calloc((size_t)n_files, sizeof *files);
    if (!files) return 1;
    for (int i = 0; i < n_files; i++) files[i].path = s->args[i];
    rc = 1;
    double t0 = am_time_s();
    am_model *m = am_model_load(model_path);
    am_tokenizer *tok = NULL;
    am_decoding *dc = NULL;
    am_mel *mel = NULL;
    am_engine *eng = NULL;
    if (!m) {
        fprintf(stderr, "amanuensis: %s\n", am_last_error());
        goto done;
    }
    double t_load = am_time_s() - t0, t_audio = 0, t_mel = 0;
    am_engine_params ep = am_engine_default_params();
    ep.max_batch = batch;
    ep.kv_type = kv_type;
    am_align_head heads[AM_ALIGN_MAX_HEADS];
    if (heads_spec) {
        const int n_heads = parse_alignment_heads("--alignment-heads", m, heads_spec, heads);
        if (n_heads < 0) {
            rc = 2;
            goto cleanup;
        }
        ep.alignment_heads = heads;
        ep.n_alignment_heads = n_heads;
    }
    if (!(tok = am_tokenizer_create(m->vocab_bytes, m->vocab_len, m->n_file_vocab, m->hp.n_vocab)) ||
        !(dc = am_decoding_create(m, tok)) || !(mel = am_mel_create(m->mel_filters, m->hp.n_mels)) ||
        !(eng = am_engine_create(dc, &ep))) {
        fprintf(stderr, "amanuensis: %s\n", am_last_error());
        goto cleanup;
    }
    int n_ok = 0;
    double audio_total = 0;
    for (int i = 0; i < n_files; i++) {
        float *pcm = NULL;
        size_t n = 0;
        am_mel_result r;
        double ta = am_time_s();
        if (am_audio_decode_file(files[i].path, NULL, &pcm, &n)) {
            fprintf(stderr, "amanuensis: %s: %s\n", files[i].path, am_last_error());
            continue;
        }
        double tb = am_time_s();
        t_audio += tb - ta;
        int mrc = am_mel_compute(mel, pcm, n, &r);
        am_audio_free(pcm);
        t_mel += am_time_s() - tb;
        if (mrc || !(files[i].job = am_job_create(dc, &r, &tp))) {
            fprintf(stderr, "amanuensis: %s: %s\n", files[i].path, am_last_error());
            if (!mrc) am_mel_free_result(&r);
            continue;
        }
        files[i].audio_s = n / (double)AM_SAMPLE_RATE;
        audio_total += files[i].audio_s;
        am_engine_add(eng, files[i].job);
        n_ok++;
    }
    // run all files together, reporting progress every couple of seconds
    while (am_engine_pending(eng) > 0) {
        if (am_engine_run(eng, 2.0)) {
            fprintf(stderr, "amanuensis: %s\n", am_last_error());
            goto cleanup;
        }
        for (int i = 0; !quiet && am_engine_pending(eng) > 0 && i < n_files; i++)
            if (files[i].job && files[i].audio_s > 30)
                fprintf(stderr, "amanuensis: %s: %.0f%%\n", files[i].path, 100 * am_job_progress(files[i].job));
    }
    const double t_end = am_time_s();
    int failed = n_ok < n_files;
    for (int i = 0; i < n_files; i++) {
        if (!files[i].job) continue;
        const am_transcript *tr = am_job_transcript(files[i].job);
        if (!tr) {
            const char *msg;
            am_job_error(files[i].job, &msg);
            fprintf(stderr, "amanuensis: %s: %s\n", files[i].path, msg);
            failed = 1;
            continue;
        }
        am_format_extra x = {.with_performance = 1, .processing_time_s = t_end - t0, .mode = "cli",
                             .with_words = tp.word_timestamps};
        char *body = NULL;
        if (am_format_render(tr, fmt, &x, &body, NULL)) {
            fprintf(stderr, "amanuensis: %s: %s\n", files[i].path, am_last_error());
            failed = 1;
            continue;
        }
        fputs(body, stdout);
        if (fmt == AM_FMT_JSON || fmt == AM_FMT_VERBOSE_JSON) fputc('\n', stdout);
        free(body);
    }
    if (!quiet) {
        const am_engine_stats *st = am_engine_get_stats(eng);
        fprintf(stderr,
                "amanuensis: %d file(s), %.2f s of audio in %.2f s (%.1fx realtime)\n"
                "amanuensis: load %.0f ms, audio decode %.0f ms, mel %.0f ms, encoder %.0f ms (%ld windows in %ld "
                "calls), decoder %.0f ms (%ld steps, %.1f rows/step)\n",
                n_files, audio_total, t_end - t0, audio_total / (t_end - t0), 1e3 * t_load, 1e3 * t_audio,
                1e3 * t_mel, 1e3 * st->encoder_s, st->encoder_windows, st->encoder_calls, 1e3 * st->decoder_s,
                st->decoder_steps, st->decoder_steps ? (double)st->decoder_rows / st->decoder_steps : 0.0);
    }
    rc = failed ? 1 : 0;
cleanup:
    for (int i = 0; i < n_files; i++) am_job_free(files[i].job);
    am_engine_free(eng);
    am_mel_free(mel);
    am_decoding_free(dc);
    am_tokenizer_free(tok);
    am_model_free(m);
done:
    free(files);
    return rc;
}

static int cmd_transcribe(int argc, char **argv) {
    am_settings s;
    int rc = load_settings(&s, AM_CMD_TRANSCRIBE, argc, argv);
    if (rc < 0) rc = transcribe_run(&s);
    am_config_free(&s);
    return rc;
}

// ---------------------------------------------------------------- serve
static volatile sig_atomic_t g_stop_signal;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

static double json_number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

// The VAD model serve hands to the scheduler: the path, or NULL for none. The
// default path may be missing (a note: no VAD model); a path given by flag or
// environment must load, and so must any model when VAD chunking is on by
// default. Returns 0, or 1 with a message (exit status 1).
static int serve_vad_model(const am_settings *s, const char **out) {
    const char *path = s->vad_model;
    const char *path_from = am_config_origin(s, "vad-model"), *vad_from = am_config_origin(s, "vad");
    const int given = am_config_source_of(s, "vad-model") != AM_SRC_DEFAULT;
    *out = NULL;
    if (!path || !*path) { // given as "": no model
        if (s->vad) {
            fprintf(stderr, "amanuensis: serve: %s on needs a VAD model (%s is empty)\n", vad_from, path_from);
            return 1;
        }
        return 0;
    }
    if (!given && access(path, F_OK) != 0) {
        if (s->vad) {
            fprintf(stderr,
                    "amanuensis: serve: %s on needs a VAD model: %s does not exist (`make` puts it there; or give "
                    "--vad-model PATH or $AMANUENSIS_VAD_MODEL)\n",
                    vad_from, path);
            return 1;
        }
        fprintf(stderr, "amanuensis: note: no VAD model (%s not found; --vad-model PATH sets one): VAD chunking "
                        "is not available\n",
                path);
        return 0;
    }
    am_vad_model *vm = am_vad_model_load(path); // checked here, loaded (again) by the scheduler
    if (!vm) {
        fprintf(stderr, "amanuensis: serve: %s %s: %s\n", path_from, path, am_last_error());
        return 1;
    }
    am_vad_model_free(vm);
    *out = path;
    return 0;
}

// Open files kept for everything but the HTTP connections (the listen socket,
// the polling threads' wake-up pipes, the audio decoder's, logs).
#define FD_RESERVE 64

// Every HTTP connection is an open file: raise the soft RLIMIT_NOFILE to the
// hard one when --max-connections needs it, else lower the limit to fit.
static int fit_connections_to_fd_limit(int max_connections) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return max_connections;
    const rlim_t need = (rlim_t)max_connections + FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need && rl.rlim_max > rl.rlim_cur) {
        const rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            fprintf(stderr,
                    "amanuensis: raised the open-file limit (RLIMIT_NOFILE) from %llu to %llu for %d connections\n",
                    (unsigned long long)old, (unsigned long long)rl.rlim_cur, max_connections);
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return max_connections;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        const int fit = rl.rlim_cur > FD_RESERVE + 1 ? (int)(rl.rlim_cur - FD_RESERVE) : 1;
        fprintf(stderr, "amanuensis: warning: the open-file limit %llu (hard %llu) holds %d connections: "
                        "--max-connections lowered from %d to %d\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, fit, max_connections, fit);
        return fit;
    }
    return max_connections;
}

static int serve_run(const am_settings *s) {
    int rc = 2;
    const char *model_path = s->model;
    am_sched_params sp = am_sched_default_params();
    sp.enable_batching = s->batching;
    sp.max_batch_size = (int)s->max_batch_size;
    sp.max_wait_ms = (int)s->max_wait_ms;
    sp.max_windows = (int)s->max_windows;
    sp.max_queue = (int)s->max_queue;
    sp.audio_memory_mb = (int)s->audio_memory_mb;
    sp.kv_type = kv_type_of(s);
    sp.alignment_heads = s->alignment_heads;
    sp.vad = s->vad;
    am_http_params hp = am_http_default_params();
    hp.host = s->host;
    hp.port = (int)s->port;
    hp.threads = (int)s->threads_http;
    hp.beam_size = (int)s->beam_size;
    hp.best_of = (int)s->best_of;
    hp.patience = s->patience;
    hp.length_penalty = s->length_penalty;
    const double upload_mb = s->max_upload_bytes / 1048576.0, timeout = s->timeout;
    const double drain_timeout = s->drain_timeout, drain_grace = s->drain_grace;
    const int quiet = s->quiet, n_keys = s->api_keys.n;
    const char *heads_from = am_config_origin(s, "alignment-heads");
    am_model *m = NULL;
    am_tokenizer *tok = NULL;
    am_metrics *metrics = NULL;
    am_sched *sched = NULL;
    am_http *http = NULL;
    if (s->n_args > 0) {
        fprintf(stderr, "amanuensis: serve: unknown argument '%s' (see amanuensis serve --help)\n", s->args[0]);
        goto done;
    }
    if (check_patience(s, "--beam-size (or AMANUENSIS_BEAM_SIZE)")) goto done;
    if (!model_path || !*model_path) {
        fprintf(stderr, "amanuensis: serve: no model given (-m MODEL or $AMANUENSIS_MODEL).\n"
                        "  get one with:  make model MODEL=base.en\n"
                        "  then run:      AMANUENSIS_MODEL=models/ggml-base.en.bin amanuensis serve\n");
        goto done;
    }
    if (serve_vad_model(s, &sp.vad_model)) {
        rc = 1;
        goto done;
    }
    hp.max_upload_bytes = s->max_upload_bytes;
    hp.request_timeout_s = timeout;
    sp.default_timeout_s = timeout;
    hp.api_keys = (const char *const *)s->api_keys.items;
    hp.n_api_keys = n_keys;
    hp.public_metrics = s->public_metrics;
    hp.log_requests = !quiet;
    hp.drain_grace_s = drain_grace;
    hp.max_connections = fit_connections_to_fd_limit((int)s->max_connections);
    hp.max_connections_per_ip = (int)s->max_connections_per_ip;
    hp.header_timeout_s = s->header_timeout;
    hp.upload_timeout_s = s->upload_timeout;
    hp.max_header_bytes = (size_t)s->max_header_kb << 10;
    hp.max_form_parts = (int)s->max_form_parts;
    hp.upload_memory_bytes = s->upload_memory_bytes;

    // SIGINT/SIGTERM: blocked in every thread created from here on and taken
    // by sigtimedwait below; the handler covers threads that existed before
    // (a BLAS pool started by a library constructor) by setting the flag.
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

    rc = 1;
    const double t0 = am_time_s();
    if (!(m = am_model_load(model_path))) {
        fprintf(stderr, "amanuensis: serve: %s\n", am_last_error());
        goto cleanup;
    }
    if (sp.alignment_heads && *sp.alignment_heads) { // a usage error: checked here (exit 2), parsed by the scheduler
        am_align_head heads[AM_ALIGN_MAX_HEADS];
        if (parse_alignment_heads(heads_from, m, sp.alignment_heads, heads) < 0) {
            rc = 2;
            goto cleanup;
        }
    }
    if (!(tok = am_tokenizer_create(m->vocab_bytes, m->vocab_len, m->n_file_vocab, m->hp.n_vocab)) ||
        !(metrics = am_metrics_create()) || !(sched = am_sched_create(m, tok, &sp, metrics)) ||
        !(http = am_http_start(&hp, sched, metrics, m, tok))) {
        fprintf(stderr, "amanuensis: serve: %s\n", am_last_error());
        goto cleanup;
    }
    am_metrics_state cfg; // the effective configuration (max_windows may have been derived)
    am_sched_state(sched, &cfg);
    fprintf(stderr,
            "amanuensis: serving %s (%s, %s weights, loaded in %.0f ms): batching %s (max batch %d, max wait %d ms, "
            "max windows %d), queue %d, upload limit %.1f MB, timeout %g s, drain timeout %g s, drain grace %g s, "
            "%d HTTP thread(s), API keys: %d\n",
            m->name, am_model_is_multilingual(m) ? "multilingual" : "English-only", am_type_name(m->weight_type),
            1e3 * (am_time_s() - t0), sp.enable_batching ? "on" : "off", cfg.max_batch_size, cfg.max_wait_ms,
            cfg.max_windows, cfg.max_queue, upload_mb, timeout, drain_timeout, drain_grace, hp.threads, n_keys);
    fprintf(stderr,
            "amanuensis: client limits: %d connections (%d per address, 0 = any), header timeout %g s, upload "
            "timeout %g s, headers %zu KiB, %d form parts; memory for uploads %zu MiB, for admitted audio %d MiB "
            "(0 = unlimited)\n",
            hp.max_connections, hp.max_connections_per_ip, hp.header_timeout_s, hp.upload_timeout_s,
            hp.max_header_bytes >> 10, hp.max_form_parts, hp.upload_memory_bytes >> 20, sp.audio_memory_mb);
    if (hp.beam_size || hp.best_of || !isnan(hp.length_penalty) || (sp.alignment_heads && *sp.alignment_heads))
        fprintf(stderr,
                "amanuensis: request defaults: beam_size %d (0 = greedy), best_of %d, patience %g, length_penalty %g; "
                "alignment heads %s\n",
                hp.beam_size, hp.best_of, hp.patience, hp.length_penalty,
                sp.alignment_heads && *sp.alignment_heads ? sp.alignment_heads : "model default");
    if (sp.vad_model)
        fprintf(stderr, "amanuensis: VAD model %s; VAD chunking by default: %s\n", sp.vad_model, sp.vad ? "on" : "off");
    const int v6 = strchr(hp.host, ':') != NULL;
    fprintf(stderr, "amanuensis: listening on http://%s%s%s:%d\n", v6 ? "[" : "", hp.host, v6 ? "]" : "",
            am_http_port(http));
    fflush(stderr);

    while (!g_stop_signal) {
        const struct timespec tick = {0, 200 * 1000000L};
        const int sig = sigtimedwait(&stop_set, NULL, &tick);
        if (sig > 0) g_stop_signal = sig;
    }
    const char *sig_name = g_stop_signal == SIGINT ? "SIGINT" : "SIGTERM";
    am_http_begin_drain(http); // /ready: 503 from now on
    if (drain_grace > 0) { // new requests are still served until the balancer stops sending them
        fprintf(stderr, "amanuensis: %s received: not ready; serving new requests until none arrives for %g s\n",
                sig_name, drain_grace);
        fflush(stderr);
        const double t_grace = am_time_s();
        while (!am_http_grace_over(http)) {
            const struct timespec tick = {0, 50 * 1000000L};
            if (sigtimedwait(&stop_set, NULL, &tick) > 0) am_http_end_grace(http); // a second signal
        }
        fprintf(stderr, "amanuensis: grace over after %.2f s\n", am_time_s() - t_grace);
    }
    fprintf(stderr, "amanuensis: %s received: draining (up to %g s)\n", sig_name, drain_timeout);
    const double t_drain = am_time_s();
    const int cut = am_sched_drain(sched, drain_timeout);
    am_http_counts hc = {0};
    am_http_stop(http, 5.0, &hc); // delivers the drained requests' responses
    http = NULL;
    am_metrics_state st;
    am_sched_state(sched, &st);
    st.model = m->name;
    char *js = am_metrics_stats_json(metrics, &st);
    cJSON *stats = js ? cJSON_Parse(js) : NULL;
    free(js);
    fprintf(stderr,
            "amanuensis: drained in %.2f s (%d request(s) cut off at the drain timeout); HTTP: %ld responses, %ld "
            "transcriptions ok, %ld 4xx, %ld 5xx, %ld header / %ld upload timeouts, %ld connections refused, "
            "connection limit reached %ld times; scheduler: %.0f requests, %.0f batches, avg batch size %.2f, %.0f "
            "errors, %.0f cancelled, %.0f timed out\n",
            am_time_s() - t_drain, cut, hc.requests, hc.transcriptions_ok, hc.client_errors, hc.server_errors,
            hc.header_timeouts, hc.upload_timeouts, hc.connections_refused, hc.connection_limit_hits,
            json_number(stats, "total_requests"), json_number(stats, "total_batches"),
            json_number(stats, "avg_batch_size"), json_number(stats, "total_errors"), json_number(stats, "cancelled"),
            json_number(stats, "timed_out"));
    cJSON_Delete(stats);
    rc = 0;
cleanup:
    am_http_stop(http, 1.0, NULL);
    am_sched_free(sched);
    am_metrics_free(metrics);
    am_tokenizer_free(tok);
    am_model_free(m);
done:
    return rc;
}

static int cmd_serve(int argc, char **argv) {
    am_settings s;
    int rc = load_settings(&s, AM_CMD_SERVE, argc, argv);
    if (rc < 0) rc = serve_run(&s);
    am_config_free(&s);
    return rc;
}

// ---------------------------------------------------------------- vad
// amanuensis vad [-m VAD_MODEL] [options] FILE: speech segments as JSON on stdout.
static int vad_run(const am_settings *s) {
    if (s->n_args != 1) {
        if (s->n_args == 0) fprintf(stderr, "amanuensis: vad needs an audio FILE\n");
        else fprintf(stderr, "amanuensis: vad takes one FILE (got '%s' and '%s')\n", s->args[0], s->args[1]);
        return 2;
    }
    const char *file = s->args[0], *model = s->vad_model;
    const int quiet = s->quiet, with_probs = s->probs;
    am_vad_params p = am_vad_default_params();
    p.threshold = (float)s->vad_threshold;
    p.min_speech_ms = (int)s->min_speech_ms;
    p.min_silence_ms = (int)s->min_silence_ms;
    p.max_speech_s = (float)s->max_speech_s;
    p.speech_pad_ms = (int)s->speech_pad_ms;
    p.samples_overlap_s = (float)s->samples_overlap_s;
    if (am_vad_check_params(&p)) { // the table's bounds are the module's: a failure here is a bug
        fprintf(stderr, "amanuensis: vad: %s\n", am_last_error());
        return 2;
    }
    if (!model || !*model) {
        fprintf(stderr, "amanuensis: vad: no VAD model (-m VAD_MODEL or $AMANUENSIS_VAD_MODEL)\n");
        return 2;
    }
    float *pcm = NULL, *probs = NULL;
    am_vad_segment *seg = NULL;
    am_vad_span *spans = NULL;
    size_t n = 0, n_seg = 0;
    int rc = 1;
    am_vad_model *m = am_vad_model_load(model);
    if (!m) {
        fprintf(stderr, "amanuensis: %s\n", am_last_error());
        return 1;
    }
    if (am_audio_decode_file(file, NULL, &pcm, &n)) {
        fprintf(stderr, "amanuensis: %s: %s\n", file, am_last_error());
        goto done;
    }
    const size_t n_frames = am_vad_n_frames(n);
    const double t0 = am_time_s();
    if (!(probs = malloc(n_frames * sizeof *probs)) || !(spans = malloc((n_frames + 1) * sizeof *spans))) {
        fprintf(stderr, "amanuensis: out of memory\n");
        goto done;
    }
    if (am_vad_probs(m, pcm, n, probs) || am_vad_segments_from_probs(probs, n_frames, &p, &seg, &n_seg) ||
        am_vad_spans(spans, seg, n_seg, n, p.samples_overlap_s)) {
        fprintf(stderr, "amanuensis: %s: %s\n", file, am_last_error());
        goto done;
    }
    const double secs = am_time_s() - t0, audio_s = n / (double)AM_SAMPLE_RATE;
    printf("{\"segments\":[");
    for (size_t i = 0; i < n_seg; i++)
        printf("%s[%.2f,%.2f]", i ? "," : "", seg[i].start_cs / 100.0, seg[i].end_cs / 100.0);
    printf("],\"spans\":[");
    for (size_t i = 0; i < n_seg; i++)
        printf("%s[%lld,%lld]", i ? "," : "", (long long)spans[i].start, (long long)spans[i].end);
    printf("]");
    if (with_probs) {
        printf(",\"probs\":[");
        for (size_t i = 0; i < n_frames; i++) printf("%s%.6g", i ? "," : "", probs[i]);
        printf("]");
    }
    printf("}\n");
    if (!quiet)
        fprintf(stderr, "%s: %.2f s of audio, %zu frames, %zu segments; VAD %.1f ms (%.0f frames/s, %.0fx real time)\n",
                file, audio_s, n_frames, n_seg, 1e3 * secs, n_frames / AM_MAX(secs, 1e-9),
                audio_s / AM_MAX(secs, 1e-9));
    rc = 0;
done:
    free(probs);
    free(spans);
    am_vad_segments_free(seg);
    am_audio_free(pcm);
    am_vad_model_free(m);
    return rc;
}

static int cmd_vad(int argc, char **argv) {
    am_settings s;
    int rc = load_settings(&s, AM_CMD_VAD, argc, argv);
    if (rc < 0) rc = vad_run(&s);
    am_config_free(&s);
    return rc;
}

// ---------------------------------------------------------------- config
// amanuensis config [--markdown]: the settings table (plain, or README.md's Markdown).
static int cmd_config(int argc, char **argv) {
    int markdown = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--markdown")) markdown = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: amanuensis config [--markdown]\n"
                   "  print the settings table of serve, transcribe, info and vad (--markdown: the table of\n"
                   "  README.md's Configuration section)\n");
            return 0;
        } else {
            fprintf(stderr, "amanuensis: config: unknown argument '%s' (only --markdown)\n", argv[i]);
            return 2;
        }
    }
    char *text = markdown ? am_config_markdown() : am_config_text();
    if (!text) {
        fprintf(stderr, "amanuensis: %s\n", am_last_error());
        return 1;
    }
    fputs(text, stdout);
    free(text);
    return fflush(stdout) ? 1 : 0;
}

// ---------------------------------------------------------------- main
int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout, 0);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "transcribe")) return cmd_transcribe(argc, argv);
    if (!strcmp(argv[1], "info")) return cmd_info(argc, argv);
    if (!strcmp(argv[1], "serve")) return cmd_serve(argc, argv);
    if (!strcmp(argv[1], "vad")) return cmd_vad(argc, argv);
    if (!strcmp(argv[1], "config")) return cmd_config(argc, argv);
    fprintf(stderr, "amanuensis: unknown command '%s'\n", argv[1]);
    usage(stderr, 0);
    return 2;
}
