// test_transcribe.c — long-form transcription against the reference: every
// golden case's `transcribe` trace (temperature 0 only, condition on previous
// text) — segment seek/start/end/text/tokens — with all clips of a model
// running together in one engine (batched encoder calls and decoder steps).
#include <stdint.h>

#include "am_audio.h"
#include "am_transcribe.h"
#include "golden.h"

#define MAX_CASES 16
#define MAX_TOK 4096

static void compare(const char *label, const cJSON *trace, const am_transcript *tr) {
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(trace, "segments");
    const cJSON *gap = cJSON_GetObjectItemCaseSensitive(trace, "first_step_gap_below_1e-4");
    // the near-tie index counts sampled tokens over all windows in order
    const int limit = cJSON_IsNumber(gap) ? gap->valueint : -1;
    const int n_ref = cJSON_GetArraySize(segs);
    int k = 0, tokens_before = 0, diverged = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, segs) {
        int32_t want[MAX_TOK];
        const int nw = golden_ints(s, "tokens", want, MAX_TOK);
        if (k >= tr->n_segments) {
            CHECKF(limit >= 0 && tokens_before >= limit, "%s: only %d segments, reference has %d", label,
                   tr->n_segments, n_ref);
            diverged = 1;
            break;
        }
        const am_segment *g = &tr->segments[k];
        const int same = g->seek == cJSON_GetObjectItemCaseSensitive(s, "seek")->valueint &&
                         g->start == cJSON_GetObjectItemCaseSensitive(s, "start")->valuedouble &&
                         g->end == cJSON_GetObjectItemCaseSensitive(s, "end")->valuedouble &&
                         strcmp(g->text, golden_str(s, "text")) == 0 && g->n_tokens == nw &&
                         memcmp(g->tokens, want, (size_t)nw * sizeof *want) == 0;
        if (!same) {
            if (limit >= 0 && tokens_before + nw > limit) {
                printf("  %s: segment %d differs after the reference near-tie at sampled token %d\n", label, k, limit);
                diverged = 1;
                break;
            }
            CHECKF(same, "%s: segment %d differs: ours seek %d [%.3f, %.3f] %d tokens '%.40s', ref seek %d [%.3f, %.3f] %d tokens '%.40s'",
                   label, k, g->seek, g->start, g->end, g->n_tokens, g->text,
                   cJSON_GetObjectItemCaseSensitive(s, "seek")->valueint,
                   cJSON_GetObjectItemCaseSensitive(s, "start")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(s, "end")->valuedouble, nw, golden_str(s, "text"));
            diverged = 1;
            break;
        }
        tokens_before += nw;
        k++;
    }
    if (!diverged) CHECKF(tr->n_segments == n_ref, "%s: %d segments, reference %d", label, tr->n_segments, n_ref);
    printf("  %-48s %d segments, %d windows, language %s, %.2f s\n", label, tr->n_segments, tr->n_windows,
           tr->language, tr->duration);
}

static int run_model(const char *model_file, cJSON *cases) {
    char rel[512], path[1024];
    am_tokenizer *tok;
    am_model *m = golden_model(model_file, &tok);
    if (!m) return 0;
    am_decoding *dc = tok ? am_decoding_create(m, tok) : NULL;
    am_mel *mel = dc ? am_mel_create(m->mel_filters, m->hp.n_mels) : NULL;
    am_engine *eng = mel ? am_engine_create(dc, NULL) : NULL;
    CHECKF(eng != NULL, "%s: setup: %s", model_file, am_last_error());
    am_job *jobs[MAX_CASES];
    const cJSON *traces[MAX_CASES];
    char labels[MAX_CASES][200];
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        if (!eng || strcmp(golden_str(c, "model"), model_file) != 0 || n == MAX_CASES) continue;
        snprintf(labels[n], sizeof labels[0], "%s/%s", model_file, golden_str(c, "clip"));
        snprintf(rel, sizeof rel, "audio/%s", golden_str(c, "clip"));
        if (!am_test_find(rel, path, sizeof path)) {
            SKIP_CASE(labels[n], "clip not found (set AMANUENSIS_TEST_DATA to the shared dir)");
            continue;
        }
        float *pcm = NULL;
        size_t ns = 0;
        am_mel_result r;
        CHECK(am_audio_decode_file(path, NULL, &pcm, &ns) == 0);
        CHECK(am_mel_compute(mel, pcm, ns, &r) == 0);
        am_audio_free(pcm);
        am_transcribe_params p = am_transcribe_default_params();
        p.language = "en";
        p.decode.temperature_inc = 0; // temperature (0.0,) only
        jobs[n] = am_job_create(dc, &r, &p);
        CHECK(jobs[n] != NULL);
        if (!jobs[n]) continue;
        CHECK(am_engine_add(eng, jobs[n]) == 0);
        traces[n] = cJSON_GetObjectItemCaseSensitive(c, "transcribe");
        n++;
    }
    if (n) {
        CHECKF(am_engine_run(eng, 0) == 0, "%s: engine: %s", model_file, am_last_error());
        const am_engine_stats *st = am_engine_get_stats(eng);
        printf("%s: %d clips, %ld encoder calls (%ld windows), %ld decoder steps (%.1f rows/step)\n", model_file, n,
               st->encoder_calls, st->encoder_windows, st->decoder_steps,
               st->decoder_steps ? (double)st->decoder_rows / st->decoder_steps : 0.0);
    }
    for (int i = 0; i < n; i++) {
        const am_transcript *tr = am_job_transcript(jobs[i]);
        CHECKF(tr != NULL, "%s: job state %d", labels[i], am_job_state(jobs[i]));
        if (tr) compare(labels[i], traces[i], tr);
        am_job_free(jobs[i]);
    }
    am_engine_free(eng);
    am_mel_free(mel);
    am_decoding_free(dc);
    am_tokenizer_free(tok);
    am_model_free(m);
    return n > 0;
}

int main(int argc, char **argv) {
    cJSON *root = golden_load();
    if (!root) {
        SKIP_CASE("golden", "golden.json not found");
        return am_test_finish("test_transcribe", 0);
    }
    const int ran = golden_each_model(argc, argv, golden_cases(root), run_model);
    cJSON_Delete(root);
    return am_test_finish("test_transcribe", ran);
}
