// main.c — the amanuensis command line.
//
//   amanuensis transcribe -m MODEL [options] FILE...   transcribe files (batched together)
//   amanuensis info -m MODEL [FILE...]                 model facts and stage timings
//   amanuensis serve [-m MODEL] [--host A] [--port N]  the OpenAI-compatible HTTP server
//   amanuensis vad [-m VAD_MODEL] [options] FILE      speech segments (Silero VAD) as JSON
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "am_audio.h"
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
static void usage(FILE *f) {
    fprintf(f,
            "usage: amanuensis <command> [options]\n"
            "\n"
            "commands:\n"
            "  transcribe -m MODEL [options] FILE...\n"
            "      transcribe audio files (any container ffmpeg reads); several files are\n"
            "      decoded together in batches. Output (stdout) is the server's response body.\n"
            "      --response-format F   json (default) | text | srt | vtt | verbose_json\n"
            "      --language L          language code or name (default: detect; English-only models: en)\n"
            "      --task T              transcribe (default) | translate\n"
            "      --prompt TEXT         initial prompt\n"
            "      --temperature T       first sampling temperature (default 0)\n"
            "      --temperature-inc D   fallback step (default 0.2; 0 disables fallback)\n"
            "      --no-timestamps       decode without timestamp tokens\n"
            "      --word-timestamps     word-level timestamps (verbose_json: each segment's \"words\"\n"
            "                            and the top-level \"words\"; segment times come from the words)\n"
            "      --beam-size N         beam search with N beams (1..16) at temperature 0 (default: greedy)\n"
            "      --best-of N           candidates sampled at temperature > 0 (1..16, default 1)\n"
            "      --patience X          beam search patience (> 0, default 1.0; needs --beam-size)\n"
            "      --length-penalty X    rank candidates by sum logprob / ((5 + length) / 6)^X (0..1;\n"
            "                            default: sum logprob / length)\n"
            "      --alignment-heads S   cross-attention heads for word timestamps: a model name\n"
            "                            (tiny.en, ..., large-v3) or \"L,H;L,H;...\" (default: the model's)\n"
            "      --compression-ratio-threshold X (2.4)  --logprob-threshold X (-1.0)\n"
            "      --no-speech-threshold X (0.6)  --no-condition-on-previous-text\n"
            "      --seed N              sampling seed (default 0)\n"
            "      --batch N             encoder batch size (default 8)\n"
            "      --kv-type T           f32 (default, exact) | f16: cross K/V and KV caches in half\n"
            "                            precision, half the memory per window ($AMANUENSIS_KV_TYPE)\n"
            "      -q, --quiet           no progress or timings on stderr\n"
            "  info -m MODEL [FILE...]   print the model's parameters; for each audio FILE,\n"
            "                            decode it and time the mel and encoder stages\n"
            "  vad [-m VAD_MODEL] [options] FILE\n"
            "      speech segments (Silero VAD v6.2, whisper.cpp's VAD ggml file and segmentation)\n"
            "      as JSON: {\"segments\":[[start_s,end_s],...],\"spans\":[[first,end],...]}; spans\n"
            "      are the samples [first, end) at 16 kHz whisper.cpp keeps of each segment when\n"
            "      it transcribes with VAD (end + --samples-overlap for all but the last)\n"
            "      -m, --model PATH      VAD model ($AMANUENSIS_VAD_MODEL, else\n"
            "                            models/ggml-silero-v6.2.0.bin)\n"
            "      --threshold T         speech probability threshold (0..1 exclusive, default 0.5)\n"
            "      --min-speech-ms N     drop shorter segments (0..3600000, default 250)\n"
            "      --min-silence-ms N    silence that ends a segment (0..3600000, default 100)\n"
            "      --max-speech-s X      split longer segments (0..86400 whole seconds, default 0 = none)\n"
            "      --speech-pad-ms N     padding on both sides of a segment (0..60000, default 30)\n"
            "      --samples-overlap X   seconds of overlap after each span but the last (0..10, default 0.1)\n"
            "      --probs               add \"probs\": the speech probability of every 512-sample frame\n"
            "      -q, --quiet           no timing line on stderr\n"
            "  serve [-m MODEL] [options]  the OpenAI-compatible HTTP server\n"
            "      (POST /v1/audio/transcriptions, /v1/audio/translations; GET /health, /ready,\n"
            "      /v1/models, /stats/batching, /metrics). SIGTERM/SIGINT drain, then exit 0.\n"
            "      --host ADDR           bind address (default 127.0.0.1; IPv6 literals work)\n"
            "      --port N              TCP port (default 9050; 0 = ephemeral, printed at startup)\n"
            "      --batching on|off     cross-request batching ($ENABLE_BATCHING, default on)\n"
            "      --max-batch-size N    windows per encoder batch ($BATCH_MAX_SIZE, default 8)\n"
            "      --max-wait-ms N       batch collection wait ($BATCH_MAX_WAIT_MS, default 50)\n"
            "      --max-windows N       windows decoding at once (default 0 = as many as fit in memory)\n"
            "      --max-queue N         requests in flight before 429 (default 64)\n"
            "      --max-upload-mb X     upload limit ($AMANUENSIS_MAX_UPLOAD_MB, default 25)\n"
            "      --timeout S           per-request deadline, 504 after it (default 60)\n"
            "      --drain-timeout S     how long shutdown waits for in-flight work (default 30)\n"
            "      --drain-grace S       behind a load balancer: after SIGTERM /ready says 503 at once, but new\n"
            "                            requests are still served until none arrives for S s (at most 10 S;\n"
            "                            a second signal ends it), then the drain ($AMANUENSIS_DRAIN_GRACE,\n"
            "                            default 0: refuse new requests at once)\n"
            "      --api-key KEY         require 'Authorization: Bearer KEY' on /v1, /stats, /metrics\n"
            "                            (repeatable; $AMANUENSIS_API_KEYS, comma-separated)\n"
            "      --threads-http N      HTTP polling threads (default 2)\n"
            "      --kv-type T           f32 (default, exact) | f16 ($AMANUENSIS_KV_TYPE), as for transcribe\n"
            "      --beam-size N         default beam_size of requests ($AMANUENSIS_BEAM_SIZE; default greedy)\n"
            "      --best-of N           default best_of ($AMANUENSIS_BEST_OF)\n"
            "      --patience X          default patience ($AMANUENSIS_PATIENCE; needs a beam size)\n"
            "      --length-penalty X    default length_penalty ($AMANUENSIS_LENGTH_PENALTY)\n"
            "                            (requests override each with the form field of the same name)\n"
            "      --alignment-heads S   heads for word timestamps, as for transcribe\n"
            "                            ($AMANUENSIS_ALIGNMENT_HEADS)\n"
            "      -q, --quiet           no per-request log lines\n"
            "\n"
            "MODEL defaults to $AMANUENSIS_MODEL. Get a real model with: make model MODEL=base.en\n");
}

static const char *model_path_arg(int argc, char **argv, int *first_file) {
    const char *model = getenv("AMANUENSIS_MODEL");
    int i = 2;
    for (; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) model = argv[++i];
        else break;
    }
    *first_file = i;
    return model;
}

// ---------------------------------------------------------------- info
static int cmd_info(int argc, char **argv) {
    int first;
    const char *path = model_path_arg(argc, argv, &first);
    if (!path) {
        fprintf(stderr, "amanuensis: no model given (-m MODEL or $AMANUENSIS_MODEL); try: make model MODEL=base.en\n");
        return 2;
    }
    double t0 = am_time_s();
    am_model *m = am_model_load(path);
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
    for (int i = first; i < argc; i++) {
        float *pcm = NULL;
        size_t n = 0;
        am_mel_result r = {0};
        double ta = am_time_s();
        if (am_audio_decode_file(argv[i], NULL, &pcm, &n)) {
            fprintf(stderr, "amanuensis: %s: %s\n", argv[i], am_last_error());
            rc = 1;
            continue;
        }
        double tb = am_time_s();
        if (am_mel_compute(mel, pcm, n, &r)) {
            fprintf(stderr, "amanuensis: %s: %s\n", argv[i], am_last_error());
            am_audio_free(pcm);
            rc = 1;
            continue;
        }
        double tc = am_time_s();
        am_mel_window(window, &r, 0);
        am_encoder_run(enc, window, 1, out);
        double td = am_time_s();
        printf("%s: %.2f s of audio; decode %.1f ms, mel %.1f ms (%d frames), encoder %.1f ms (first window)\n",
               argv[i], n / (double)AM_SAMPLE_RATE, 1e3 * (tb - ta), 1e3 * (tc - tb), r.content_frames,
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

// ---------------------------------------------------------------- transcribe
typedef struct {
    const char *path;
    am_job *job;
    double audio_s;
} cli_file;

static int parse_double(const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    return *end == 0 && end != s && isfinite(*out) ? 0 : -1;
}

// --kv-type / AMANUENSIS_KV_TYPE: "f32" or "f16" -> *type; -1 with a message otherwise.
static int parse_kv_type(const char *what, const char *v, int *type) {
    const int t = am_type_from_name(v);
    if (t == AM_TYPE_F32 || t == AM_TYPE_F16) {
        *type = t;
        return 0;
    }
    fprintf(stderr, "amanuensis: %s must be f32 or f16 (got '%s')\n", what, v ? v : "");
    return -1;
}

// AMANUENSIS_KV_TYPE, when set: the default that a --kv-type flag overrides.
static int kv_type_from_env(int *type) {
    const char *v = getenv("AMANUENSIS_KV_TYPE");
    return v && *v ? parse_kv_type("AMANUENSIS_KV_TYPE", v, type) : 0;
}

// The decoding strategy options, checked as the server checks its form fields
// (the same bounds and wording). `what` names the flag or variable; each
// returns 0, or -1 with a message on stderr.
// --beam-size / --best-of: an integer in 1..AM_MAX_GROUP.
static int parse_group_size(const char *what, const char *v, int *out) {
    char *end;
    errno = 0;
    const long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < 1 || n > AM_MAX_GROUP) {
        fprintf(stderr, "amanuensis: %s must be an integer between 1 and %d (got '%s')\n", what, AM_MAX_GROUP, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

// --patience: a number > 0.
static int parse_patience(const char *what, const char *v, double *out) {
    if (parse_double(v, out) || !(*out > 0)) {
        fprintf(stderr, "amanuensis: %s must be a number greater than 0 (got '%s')\n", what, v);
        return -1;
    }
    return 0;
}

// --length-penalty: a number in [0, 1].
static int parse_length_penalty(const char *what, const char *v, double *out) {
    if (parse_double(v, out) || !(*out >= 0 && *out <= 1)) {
        fprintf(stderr, "amanuensis: %s must be a number between 0 and 1 (got '%s')\n", what, v);
        return -1;
    }
    return 0;
}

// Patience without a beam size is an error, as in the reference's DecodingOptions.
static int check_patience(const char *patience_what, int has_patience, int beam_size, const char *beam_what) {
    if (has_patience && beam_size == 0) {
        fprintf(stderr, "amanuensis: %s requires %s (patience applies to beam search only)\n", patience_what,
                beam_what);
        return -1;
    }
    return 0;
}

// --alignment-heads SPEC against the loaded model into heads (AM_ALIGN_MAX_HEADS);
// returns the count, or -1 with a message.
static int parse_alignment_heads(const char *what, const am_model *m, const char *spec, am_align_head *heads) {
    const int n = am_align_parse_heads(m, spec, heads, AM_ALIGN_MAX_HEADS);
    if (n <= 0) {
        fprintf(stderr, "amanuensis: %s '%s': %s\n", what, spec, n < 0 ? am_last_error() : "no heads given");
        return -1;
    }
    return n;
}

static int cmd_transcribe(int argc, char **argv) {
    const char *model_path = getenv("AMANUENSIS_MODEL");
    am_transcribe_params tp = am_transcribe_default_params();
    am_format fmt = AM_FMT_JSON;
    int quiet = 0, batch = 8, kv_type = AM_TYPE_F32, has_patience = 0;
    const char *heads_spec = NULL;
    cli_file *files = calloc((size_t)argc, sizeof *files);
    int n_files = 0, rc = 2; // usage errors exit 2
    if (!files) return 1;
    if (kv_type_from_env(&kv_type)) goto done;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
#define NEED_VALUE                                                          \
    do {                                                                    \
        if (!v) {                                                           \
            fprintf(stderr, "amanuensis: %s needs a value\n", a);           \
            goto done;                                                      \
        }                                                                   \
        i++;                                                                \
    } while (0)
#define NEED_NUMBER                                                         \
    do {                                                                    \
        NEED_VALUE;                                                         \
        if (parse_double(v, &d)) {                                          \
            fprintf(stderr, "amanuensis: %s: '%s' is not a number\n", a, v); \
            goto done;                                                      \
        }                                                                   \
    } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEED_VALUE;
            model_path = v;
        } else if (!strcmp(a, "--response-format") || !strcmp(a, "-f")) {
            NEED_VALUE;
            if (am_format_parse(v, &fmt)) {
                fprintf(stderr, "amanuensis: %s\n", am_last_error());
                goto done;
            }
        } else if (!strcmp(a, "--language") || !strcmp(a, "-l")) {
            NEED_VALUE;
            tp.language = !strcmp(v, "auto") ? NULL : v;
        } else if (!strcmp(a, "--task")) {
            NEED_VALUE;
            if (strcmp(v, "transcribe") && strcmp(v, "translate")) {
                fprintf(stderr, "amanuensis: --task must be transcribe or translate\n");
                goto done;
            }
            tp.translate = !strcmp(v, "translate");
        } else if (!strcmp(a, "--prompt")) {
            NEED_VALUE;
            tp.initial_prompt = v;
        } else if (!strcmp(a, "--temperature")) {
            NEED_NUMBER;
            if (d < 0 || d > 1) {
                fprintf(stderr, "amanuensis: --temperature must be in [0, 1]\n");
                goto done;
            }
            tp.decode.temperature = d;
        } else if (!strcmp(a, "--temperature-inc")) {
            NEED_NUMBER;
            if (d < 0 || d > 1) {
                fprintf(stderr, "amanuensis: --temperature-inc must be in [0, 1]\n");
                goto done;
            }
            tp.decode.temperature_inc = d;
        } else if (!strcmp(a, "--compression-ratio-threshold")) {
            NEED_NUMBER;
            tp.decode.compression_ratio_threshold = d;
        } else if (!strcmp(a, "--logprob-threshold")) {
            NEED_NUMBER;
            tp.decode.logprob_threshold = d;
        } else if (!strcmp(a, "--no-speech-threshold")) {
            NEED_NUMBER;
            tp.decode.no_speech_threshold = d;
        } else if (!strcmp(a, "--seed")) {
            NEED_VALUE;
            char *end;
            errno = 0;
            const unsigned long long seed = strtoull(v, &end, 10);
            if (*end || end == v || errno || v[0] == '-') {
                fprintf(stderr, "amanuensis: --seed must be a non-negative integer\n");
                goto done;
            }
            tp.decode.seed = seed;
        } else if (!strcmp(a, "--batch")) {
            NEED_NUMBER;
            batch = (int)d;
            if (d != floor(d) || batch < 1 || batch > 64) {
                fprintf(stderr, "amanuensis: --batch must be 1..64\n");
                goto done;
            }
        } else if (!strcmp(a, "--kv-type")) {
            NEED_VALUE;
            if (parse_kv_type(a, v, &kv_type)) goto done;
        } else if (!strcmp(a, "--beam-size")) {
            NEED_VALUE;
            if (parse_group_size(a, v, &tp.decode.beam_size)) goto done;
        } else if (!strcmp(a, "--best-of")) {
            NEED_VALUE;
            if (parse_group_size(a, v, &tp.decode.best_of)) goto done;
        } else if (!strcmp(a, "--patience")) {
            NEED_VALUE;
            if (parse_patience(a, v, &tp.decode.patience)) goto done;
            has_patience = 1;
        } else if (!strcmp(a, "--length-penalty")) {
            NEED_VALUE;
            if (parse_length_penalty(a, v, &tp.decode.length_penalty)) goto done;
        } else if (!strcmp(a, "--alignment-heads")) {
            NEED_VALUE;
            heads_spec = v;
        } else if (!strcmp(a, "--word-timestamps")) {
            tp.word_timestamps = 1;
        } else if (!strcmp(a, "--no-timestamps")) {
            tp.decode.without_timestamps = 1;
        } else if (!strcmp(a, "--no-condition-on-previous-text")) {
            tp.condition_on_previous_text = 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "amanuensis: unknown option '%s'\n", a);
            usage(stderr);
            goto done;
        } else {
            files[n_files++].path = a;
        }
#undef NEED_VALUE
#undef NEED_NUMBER
    }
    if (check_patience("--patience", has_patience, tp.decode.beam_size, "--beam-size")) goto done;
    if (!model_path) {
        fprintf(stderr, "amanuensis: no model given (-m MODEL or $AMANUENSIS_MODEL); try: make model MODEL=base.en\n");
        goto done;
    }
    if (n_files == 0) {
        fprintf(stderr, "amanuensis: no input files\n");
        goto done;
    }
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

// ---------------------------------------------------------------- serve
static volatile sig_atomic_t g_stop_signal;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

static int parse_flag(const char *v, int *out) {
    if (!strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) *out = 1;
    else if (!strcasecmp(v, "off") || !strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) *out = 0;
    else return -1;
    return 0;
}

// A number from a flag or the environment within [lo, hi]; prints why not.
static int serve_number(const char *what, const char *v, double lo, double hi, double *out) {
    if (parse_double(v, out) || *out < lo || *out > hi) {
        fprintf(stderr, "amanuensis: %s: '%s' is not a number in [%g, %g]\n", what, v, lo, hi);
        return -1;
    }
    return 0;
}

static double json_number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int cmd_serve(int argc, char **argv) {
    const char *model_path = getenv("AMANUENSIS_MODEL");
    am_sched_params sp = am_sched_default_params();
    am_sched_params_from_env(&sp);
    am_http_params hp = am_http_default_params();
    double upload_mb = 25, drain_timeout = 30, timeout = 60, drain_grace = 0, d;
    int quiet = 0, rc = 2;
    // where patience and the alignment heads came from (flag or environment), for the messages
    const char *patience_from = NULL, *heads_from = "--alignment-heads";
    const char **keys = calloc((size_t)argc + 1, sizeof *keys); // --api-key values
    char *env_keys = NULL;
    int n_keys = 0;
    am_model *m = NULL;
    am_tokenizer *tok = NULL;
    am_metrics *metrics = NULL;
    am_sched *sched = NULL;
    am_http *http = NULL;
    if (!keys) return 1;
    const char *v = getenv("AMANUENSIS_MAX_UPLOAD_MB");
    if (v && *v && serve_number("AMANUENSIS_MAX_UPLOAD_MB", v, 1e-6, 1e6, &upload_mb)) goto done;
    if ((v = getenv("AMANUENSIS_DRAIN_GRACE")) && *v && serve_number("AMANUENSIS_DRAIN_GRACE", v, 0, 1e5, &drain_grace))
        goto done;
    if (kv_type_from_env(&sp.kv_type)) goto done;
    // decoding defaults from the environment (flags override them)
    if ((v = getenv("AMANUENSIS_BEAM_SIZE")) && *v && parse_group_size("AMANUENSIS_BEAM_SIZE", v, &hp.beam_size))
        goto done;
    if ((v = getenv("AMANUENSIS_BEST_OF")) && *v && parse_group_size("AMANUENSIS_BEST_OF", v, &hp.best_of))
        goto done;
    if ((v = getenv("AMANUENSIS_PATIENCE")) && *v) {
        if (parse_patience("AMANUENSIS_PATIENCE", v, &hp.patience)) goto done;
        patience_from = "AMANUENSIS_PATIENCE";
    }
    if ((v = getenv("AMANUENSIS_LENGTH_PENALTY")) && *v &&
        parse_length_penalty("AMANUENSIS_LENGTH_PENALTY", v, &hp.length_penalty))
        goto done;
    if ((v = getenv("AMANUENSIS_ALIGNMENT_HEADS")) && *v) {
        sp.alignment_heads = v;
        heads_from = "AMANUENSIS_ALIGNMENT_HEADS";
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        v = i + 1 < argc ? argv[i + 1] : NULL;
        static const char *const with_value[] = {"-m", "--model", "--host", "--port", "--batching",
                                                 "--max-batch-size", "--max-wait-ms", "--max-windows",
                                                 "--max-queue", "--max-upload-mb", "--timeout", "--drain-timeout",
                                                 "--drain-grace", "--api-key", "--threads-http", "--kv-type",
                                                 "--beam-size",
                                                 "--best-of", "--patience", "--length-penalty",
                                                 "--alignment-heads"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(a, with_value[k]);
        if (known && !v) {
            fprintf(stderr, "amanuensis: %s needs a value\n", a);
            goto done;
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--host")) hp.host = v;
        else if (!strcmp(a, "--port")) {
            if (serve_number(a, v, 0, 65535, &d)) goto done;
            hp.port = (int)d;
        } else if (!strcmp(a, "--batching")) {
            if (parse_flag(v, &sp.enable_batching)) {
                fprintf(stderr, "amanuensis: --batching must be on or off\n");
                goto done;
            }
        } else if (!strcmp(a, "--max-batch-size")) {
            if (serve_number(a, v, 1, 256, &d)) goto done;
            sp.max_batch_size = (int)d;
        } else if (!strcmp(a, "--max-wait-ms")) {
            if (serve_number(a, v, 0, 60000, &d)) goto done;
            sp.max_wait_ms = (int)d;
        } else if (!strcmp(a, "--max-windows")) {
            if (serve_number(a, v, 0, 4096, &d)) goto done;
            sp.max_windows = (int)d;
        } else if (!strcmp(a, "--max-queue")) {
            if (serve_number(a, v, 1, 1e6, &d)) goto done;
            sp.max_queue = (int)d;
        } else if (!strcmp(a, "--max-upload-mb")) {
            if (serve_number(a, v, 1e-6, 1e6, &upload_mb)) goto done;
        } else if (!strcmp(a, "--timeout")) {
            if (serve_number(a, v, 1e-6, 1e7, &timeout)) goto done;
        } else if (!strcmp(a, "--drain-timeout")) {
            if (serve_number(a, v, 0, 1e7, &drain_timeout)) goto done;
        } else if (!strcmp(a, "--drain-grace")) {
            if (serve_number(a, v, 0, 1e5, &drain_grace)) goto done;
        } else if (!strcmp(a, "--api-key")) {
            if (!*v) {
                fprintf(stderr, "amanuensis: --api-key must not be empty\n");
                goto done;
            }
            keys[n_keys++] = v;
        } else if (!strcmp(a, "--threads-http")) {
            if (serve_number(a, v, 1, 64, &d)) goto done;
            hp.threads = (int)d;
        } else if (!strcmp(a, "--kv-type")) {
            if (parse_kv_type(a, v, &sp.kv_type)) goto done;
        } else if (!strcmp(a, "--beam-size")) {
            if (parse_group_size(a, v, &hp.beam_size)) goto done;
        } else if (!strcmp(a, "--best-of")) {
            if (parse_group_size(a, v, &hp.best_of)) goto done;
        } else if (!strcmp(a, "--patience")) {
            if (parse_patience(a, v, &hp.patience)) goto done;
            patience_from = "--patience";
        } else if (!strcmp(a, "--length-penalty")) {
            if (parse_length_penalty(a, v, &hp.length_penalty)) goto done;
        } else if (!strcmp(a, "--alignment-heads")) {
            sp.alignment_heads = v;
            heads_from = "--alignment-heads";
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        } else {
            fprintf(stderr, "amanuensis: serve: unknown argument '%s'\n", a);
            usage(stderr);
            goto done;
        }
        i++; // the value
    }
    if (n_keys == 0 && (v = getenv("AMANUENSIS_API_KEYS")) && *v) { // flags override the environment
        if (!(env_keys = strdup(v))) goto done;
        for (char *save = NULL, *k = strtok_r(env_keys, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
            while (*k == ' ') k++;
            size_t n = strlen(k);
            while (n > 0 && k[n - 1] == ' ') k[--n] = 0;
            if (*k && n_keys < argc) keys[n_keys++] = k;
        }
    }
    if (patience_from && check_patience(patience_from, 1, hp.beam_size, "--beam-size (or AMANUENSIS_BEAM_SIZE)"))
        goto done;
    if (!model_path || !*model_path) {
        fprintf(stderr, "amanuensis: serve: no model given (-m MODEL or $AMANUENSIS_MODEL).\n"
                        "  get one with:  make model MODEL=base.en\n"
                        "  then run:      AMANUENSIS_MODEL=models/ggml-base.en.bin amanuensis serve\n");
        goto done;
    }
    hp.max_upload_bytes = (size_t)(upload_mb * 1048576.0);
    hp.request_timeout_s = timeout;
    sp.default_timeout_s = timeout;
    hp.api_keys = keys;
    hp.n_api_keys = n_keys;
    hp.log_requests = !quiet;
    hp.drain_grace_s = drain_grace;

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
    if (hp.beam_size || hp.best_of || !isnan(hp.length_penalty) || (sp.alignment_heads && *sp.alignment_heads))
        fprintf(stderr,
                "amanuensis: request defaults: beam_size %d (0 = greedy), best_of %d, patience %g, length_penalty %g; "
                "alignment heads %s\n",
                hp.beam_size, hp.best_of, hp.patience, hp.length_penalty,
                sp.alignment_heads && *sp.alignment_heads ? sp.alignment_heads : "model default");
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
            "transcriptions ok, %ld 4xx, %ld 5xx; scheduler: %.0f requests, %.0f batches, avg batch size %.2f, %.0f "
            "errors, %.0f cancelled, %.0f timed out\n",
            am_time_s() - t_drain, cut, hc.requests, hc.transcriptions_ok, hc.client_errors, hc.server_errors,
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
    free(env_keys);
    free(keys);
    return rc;
}

// ---------------------------------------------------------------- vad
// amanuensis vad [-m VAD_MODEL] [options] FILE: speech segments as JSON on stdout.
static int cmd_vad(int argc, char **argv) {
    const char *model = getenv("AMANUENSIS_VAD_MODEL"), *file = NULL;
    am_vad_params p = am_vad_default_params();
    int quiet = 0, with_probs = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--probs")) {
            with_probs = 1;
            continue;
        }
        if (a[0] != '-' || !a[1]) {
            if (file) {
                fprintf(stderr, "amanuensis: vad takes one FILE (got '%s' and '%s')\n", file, a);
                return 2;
            }
            file = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "amanuensis: %s needs a value (or is unknown; see amanuensis --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        double x;
        const int num = parse_double(v, &x) == 0;
        const int whole = num && x == floor(x) && fabs(x) <= 1e9;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--threshold") && num) p.threshold = (float)x;
        else if (!strcmp(a, "--min-speech-ms") && whole) p.min_speech_ms = (int)x;
        else if (!strcmp(a, "--min-silence-ms") && whole) p.min_silence_ms = (int)x;
        else if (!strcmp(a, "--max-speech-s") && (num || !strcmp(v, "inf"))) p.max_speech_s = num ? (float)x : INFINITY;
        else if (!strcmp(a, "--speech-pad-ms") && whole) p.speech_pad_ms = (int)x;
        else if (!strcmp(a, "--samples-overlap") && num) p.samples_overlap_s = (float)x;
        else {
            fprintf(stderr, "amanuensis: bad option '%s %s' for vad (see amanuensis --help)\n", a, v);
            return 2;
        }
        if (am_vad_check_params(&p)) { // each value is checked as it comes: the error is this option's
            fprintf(stderr, "amanuensis: %s: %s\n", a, am_last_error());
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "amanuensis: vad needs an audio FILE\n");
        return 2;
    }
    if (!model) model = "models/ggml-silero-v6.2.0.bin";
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

// ---------------------------------------------------------------- main
int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "transcribe")) return cmd_transcribe(argc, argv);
    if (!strcmp(argv[1], "info")) return cmd_info(argc, argv);
    if (!strcmp(argv[1], "serve")) return cmd_serve(argc, argv);
    if (!strcmp(argv[1], "vad")) return cmd_vad(argc, argv);
    fprintf(stderr, "amanuensis: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
