// main.c — the amanuensis command line.
//
//   amanuensis transcribe -m MODEL [options] FILE...   transcribe files (batched together)
//   amanuensis info -m MODEL [FILE...]                 model facts and stage timings
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_audio.h"
#include "am_decoder.h"
#include "am_encoder.h"
#include "am_format.h"
#include "am_mel.h"
#include "am_model.h"
#include "am_transcribe.h"

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
            "      --compression-ratio-threshold X (2.4)  --logprob-threshold X (-1.0)\n"
            "      --no-speech-threshold X (0.6)  --no-condition-on-previous-text\n"
            "      --seed N              sampling seed (default 0)\n"
            "      --batch N             encoder batch size (default 8)\n"
            "      -q, --quiet           no progress or timings on stderr\n"
            "  info -m MODEL [FILE...]   print the model's parameters; for each audio FILE,\n"
            "                            decode it and time the mel and encoder stages\n"
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
    printf("model %s: %s weights (file ftype %d), loaded in %.0f ms, %.1f MB as float32\n", m->name,
           am_model_type_name(m->weight_type), hp->ftype, 1e3 * (am_time_s() - t0),
           am_model_weight_bytes(m) / 1048576.0);
    printf("  vocab %d (%s), mels %d\n", hp->n_vocab, am_model_is_multilingual(m) ? "multilingual" : "English-only",
           hp->n_mels);
    printf("  encoder: ctx %d, width %d, heads %d, layers %d\n", hp->n_audio_ctx, hp->n_audio_state,
           hp->n_audio_head, hp->n_audio_layer);
    printf("  decoder: ctx %d, width %d, heads %d, layers %d\n", hp->n_text_ctx, hp->n_text_state, hp->n_text_head,
           hp->n_text_layer);
    printf("  per window: cross K/V %.1f MB; per sequence: self KV %.1f MB\n", am_xkv_bytes(m) / 1048576.0,
           (double)hp->n_text_layer * 2 * hp->n_text_ctx * hp->n_text_state * 4 / 1048576.0);
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

static int cmd_transcribe(int argc, char **argv) {
    const char *model_path = getenv("AMANUENSIS_MODEL");
    am_transcribe_params tp = am_transcribe_default_params();
    am_format fmt = AM_FMT_JSON;
    int quiet = 0, batch = 8;
    cli_file *files = calloc((size_t)argc, sizeof *files);
    int n_files = 0, rc = 1;
    if (!files) return 1;
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
            NEED_NUMBER;
            tp.decode.seed = (uint64_t)d;
        } else if (!strcmp(a, "--batch")) {
            NEED_NUMBER;
            batch = (int)d;
            if (batch < 1 || batch > 64) {
                fprintf(stderr, "amanuensis: --batch must be 1..64\n");
                goto done;
            }
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
    if (!model_path) {
        fprintf(stderr, "amanuensis: no model given (-m MODEL or $AMANUENSIS_MODEL); try: make model MODEL=base.en\n");
        rc = 2;
        goto done;
    }
    if (n_files == 0) {
        fprintf(stderr, "amanuensis: no input files\n");
        rc = 2;
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
    // run all files together, reporting progress now and then
    double t_run = am_time_s(), last_report = t_run;
    while (am_engine_pending(eng) > 0) {
        int r = (am_engine_waiting_windows(eng) > 0 && am_engine_active_windows(eng) < ep.max_windows)
                    ? am_engine_encode(eng, 0)
                    : am_engine_decode_step(eng);
        if (r < 0) {
            fprintf(stderr, "amanuensis: %s\n", am_last_error());
            goto cleanup;
        }
        if (!quiet && am_time_s() - last_report > 2.0) {
            last_report = am_time_s();
            for (int i = 0; i < n_files; i++)
                if (files[i].job && files[i].audio_s > 30)
                    fprintf(stderr, "amanuensis: %s: %.0f%%\n", files[i].path, 100 * am_job_progress(files[i].job));
        }
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
        am_format_extra x = {.with_performance = 1, .processing_time_s = t_end - t0, .mode = "cli"};
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
        (void)t_run;
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

// ---------------------------------------------------------------- main
int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "transcribe")) return cmd_transcribe(argc, argv);
    if (!strcmp(argv[1], "info")) return cmd_info(argc, argv);
    fprintf(stderr, "amanuensis: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
