// bench_beam.c — what beam search and word timestamps cost in the batched
// engine, measured against greedy decoding in the same run.
//
// For each mode (greedy, beam N, greedy + words, beam N + words) the same
// audio runs through one engine alone (1 request) and with `--concurrency`
// requests at once. Reported per run: decoder seconds, decoder steps, rows per
// step, accepted tokens (tokens of the results kept, all windows), decoder
// milliseconds per accepted token, and that figure over greedy's in the same
// setting. Temperature fallback is off so that every mode does one decode per
// window (equal work per accepted token); a model written by
// `bench_core --model tiny --no-eot --write-model F` decodes full windows.
//
// usage: bench_beam -m MODEL [--audio FILE] [--concurrency 16] [--beam 5] [--reps 1] [--json]
//        (without --audio: 30 s of a deterministic synthetic signal)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_audio.h"
#include "am_model.h"
#include "am_nn.h"
#include "am_transcribe.h"

typedef struct {
    const char *name;
    int beam, words;
} mode;

typedef struct {
    double decoder_s, ms_per_token;
    long steps, rows, tokens;
} result;

// 30 s of a deterministic signal with speech-like bursts (the weights are random anyway).
static float *synthetic_audio(size_t *n) {
    *n = 30 * 16000;
    float *x = malloc(*n * sizeof *x);
    uint64_t s = 12345;
    for (size_t i = 0; x && i < *n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const double noise = ((double)(s >> 11) * 0x1.0p-53 - 0.5) * 0.05;
        const double t = (double)i / 16000.0, burst = fmod(t, 2.0) < 1.2 ? 1.0 : 0.1;
        x[i] = (float)(burst * (0.3 * sin(2 * M_PI * (180 + 40 * sin(3 * t)) * t) + noise));
    }
    return x;
}

static int run(const am_decoding *dc, const am_model *m, const float *pcm, size_t n_pcm, const mode *md, int n_req,
               int beam, result *out) {
    am_mel *mel = am_mel_create(m->mel_filters, m->hp.n_mels);
    am_engine_params ep = am_engine_default_params();
    am_engine *eng = mel ? am_engine_create(dc, &ep) : NULL;
    am_job **jobs = calloc((size_t)n_req, sizeof *jobs);
    int rc = eng && jobs ? 0 : -1;
    for (int i = 0; i < n_req && !rc; i++) {
        am_mel_result r;
        rc = am_mel_compute(mel, pcm, n_pcm, &r);
        am_transcribe_params p = am_transcribe_default_params();
        p.language = "en";
        p.decode.temperature_inc = 0; // one decode per window: equal work per accepted token
        p.decode.beam_size = md->beam ? beam : 0;
        p.word_timestamps = md->words;
        if (!rc && !(jobs[i] = am_job_create(dc, &r, &p))) rc = -1;
        if (!rc) rc = am_engine_add(eng, jobs[i]);
    }
    if (!rc) rc = am_engine_run(eng, 0);
    memset(out, 0, sizeof *out);
    if (!rc) {
        const am_engine_stats *st = am_engine_get_stats(eng);
        out->decoder_s = st->decoder_s;
        out->steps = st->decoder_steps;
        out->rows = st->decoder_rows;
        for (int i = 0; i < n_req; i++) {
            const am_transcript *tr = am_job_transcript(jobs[i]);
            if (tr) out->tokens += tr->n_tokens;
        }
        out->ms_per_token = out->tokens ? 1e3 * out->decoder_s / (double)out->tokens : 0;
    } else {
        fprintf(stderr, "bench_beam: %s\n", am_last_error());
    }
    for (int i = 0; jobs && i < n_req; i++) am_job_free(jobs[i]);
    free(jobs);
    am_engine_free(eng);
    am_mel_free(mel);
    return rc;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *audio = NULL;
    int conc = 16, beam = 5, json = 0, reps = 1, only = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-m") && v) model_path = argv[++i];
        else if (!strcmp(a, "--audio") && v) audio = argv[++i];
        else if (!strcmp(a, "--concurrency") && v) conc = atoi(argv[++i]);
        else if (!strcmp(a, "--beam") && v) beam = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && v) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--only") && v) only = atoi(argv[++i]); // profiling: one mode (0..3) with --concurrency
        else {
            fprintf(stderr, "usage: %s -m MODEL [--audio FILE] [--concurrency 16] [--beam 5] [--reps 1] [--json]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!model_path || conc < 1 || conc > 64 || beam < 1 || beam > AM_MAX_GROUP || reps < 1) {
        fprintf(stderr, "bench_beam: -m MODEL is required; --concurrency 1..64, --beam 1..%d, --reps >= 1\n",
                AM_MAX_GROUP);
        return 2;
    }
    am_model *m = am_model_load(model_path);
    am_tokenizer *tok = m ? am_tokenizer_create(m->vocab_bytes, m->vocab_len, m->n_file_vocab, m->hp.n_vocab) : NULL;
    am_decoding *dc = tok ? am_decoding_create(m, tok) : NULL;
    if (!dc) {
        fprintf(stderr, "bench_beam: %s\n", am_last_error());
        return 1;
    }
    float *pcm = NULL;
    size_t n_pcm = 0;
    if (audio ? am_audio_decode_file(audio, NULL, &pcm, &n_pcm) : !(pcm = synthetic_audio(&n_pcm))) {
        fprintf(stderr, "bench_beam: audio: %s\n", am_last_error());
        return 1;
    }
    char beam_name[32], beam_words[48];
    snprintf(beam_name, sizeof beam_name, "beam %d", beam);
    snprintf(beam_words, sizeof beam_words, "beam %d + words", beam);
    const mode modes[] = {{"greedy", 0, 0}, {beam_name, 1, 0}, {"greedy + words", 0, 1}, {beam_words, 1, 1}};
    const int nm = (int)(sizeof modes / sizeof modes[0]), sizes[2] = {1, conc};
    result res[2][4];
    if (only >= 0 && only < nm) { // one run, for a profiler
        if (run(dc, m, pcm, n_pcm, &modes[only], conc, beam, &res[0][0])) return 1;
        printf("%s x %d: %.3f s decoder, %ld steps, %ld tokens\n", modes[only].name, conc, res[0][0].decoder_s,
               res[0][0].steps, res[0][0].tokens);
        return 0;
    }
    // repetitions alternate the modes; the median decoder time of each is kept
    for (int si = 0; si < 2; si++)
        for (int k = 0; k < nm; k++) {
            double t[64];
            result r;
            for (int rep = 0; rep < reps && rep < 64; rep++) {
                if (run(dc, m, pcm, n_pcm, &modes[k], sizes[si], beam, &r)) return 1;
                t[rep] = r.decoder_s;
            }
            for (int a = 1; a < reps; a++) // median
                for (int b = a; b > 0 && t[b] < t[b - 1]; b--) {
                    const double x = t[b];
                    t[b] = t[b - 1];
                    t[b - 1] = x;
                }
            r.decoder_s = t[reps / 2];
            r.ms_per_token = r.tokens ? 1e3 * r.decoder_s / (double)r.tokens : 0;
            res[si][k] = r;
        }
    if (json) printf("{\"model\":\"%s\",\"threads\":%d,\"beam\":%d,\"runs\":[", model_path, am_nn_threads(), beam);
    else
        printf("%s, %d threads, %.1f s of audio per request; decoder time per accepted token, fallback off\n\n"
               "%-16s %8s %10s %7s %9s %9s %9s %12s\n",
               model_path, am_nn_threads(), (double)n_pcm / 16000.0, "mode", "requests", "decoder_s", "steps",
               "rows/step", "tokens", "ms/token", "vs greedy");
    for (int si = 0; si < 2; si++)
        for (int k = 0; k < nm; k++) {
            const result *r = &res[si][k];
            const result *g = &res[si][0];
            const double ratio = g->ms_per_token > 0 ? r->ms_per_token / g->ms_per_token : 0;
            if (json)
                printf("%s{\"mode\":\"%s\",\"requests\":%d,\"decoder_s\":%.4f,\"steps\":%ld,\"rows\":%ld,\"tokens\":%ld,"
                       "\"ms_per_token\":%.4f,\"vs_greedy\":%.3f}",
                       si || k ? "," : "", modes[k].name, sizes[si], r->decoder_s, r->steps, r->rows, r->tokens,
                       r->ms_per_token, ratio);
            else
                printf("%-16s %8d %10.3f %7ld %9.1f %9ld %9.3f %11.2fx\n", modes[k].name, sizes[si], r->decoder_s,
                       r->steps, r->steps ? (double)r->rows / r->steps : 0.0, r->tokens, r->ms_per_token, ratio);
        }
    if (json) printf("]}\n");
    else printf("\n(vs greedy: ms/token over plain greedy's with the same number of requests)\n");
    am_audio_free(pcm);
    am_decoding_free(dc);
    am_tokenizer_free(tok);
    am_model_free(m);
    return 0;
}
