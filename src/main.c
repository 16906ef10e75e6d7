// main.c — the amanuensis command line.
//
//   amanuensis info -m MODEL [FILE...]   model facts; with files: decode, mel and
//                                        encoder timings per file
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_audio.h"
#include "am_decoder.h"
#include "am_encoder.h"
#include "am_mel.h"
#include "am_model.h"

// ---------------------------------------------------------------- usage
static void usage(FILE *f) {
    fprintf(f,
            "usage: amanuensis <command> [options]\n"
            "\n"
            "commands:\n"
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

// ---------------------------------------------------------------- main
int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "info")) return cmd_info(argc, argv);
    fprintf(stderr, "amanuensis: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
