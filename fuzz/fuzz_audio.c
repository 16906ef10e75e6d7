// fuzz_audio.c — libFuzzer target: audio decoding from memory
// (am_audio_decode_memory, src/am_audio.h) with max_seconds 30, as the server
// decodes an upload.
//
// The input is the whole file image. Invariants beyond the sanitizers: the
// return code is one of the documented ones; a success yields at least one and
// at most 30 s of samples, each finite and in [-1, 1); a failure leaves
// *out NULL, *n_out 0 and a non-empty am_last_error().
//
// One-time state: LLVMFuzzerInitialize quiets libav's log (a process-wide
// level inside libavutil; without it every damaged input prints warnings).
//
// Corpus: fuzz/corpus/audio (the first few KB of wav, mp3 and flac clips;
// fuzz/make-seeds.sh). No dictionary: the container magics are in the seeds.
#include <libavutil/log.h>
#include <stdint.h>
#include <stdlib.h>

#include "am_audio.h"
#include "fuzz_common.h"

#define MAX_SECONDS 30.0

// ---------------------------------------------------------------- init
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    av_log_set_level(AV_LOG_QUIET);
    return 0;
}

// ---------------------------------------------------------------- one input
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    am_audio_params p = am_audio_default_params();
    p.max_seconds = MAX_SECONDS;
    float *out = (float *)&p; // must be overwritten
    size_t n = 12345;
    am_set_error(AM_OK, "%s", "");
    const int rc = am_audio_decode_memory(data, size, &p, &out, &n);
    if (rc == 0) {
        FZ_ASSERT(out != NULL && n > 0, "success without samples");
        FZ_ASSERT(n <= (size_t)(MAX_SECONDS * AM_SAMPLE_RATE), "%zu samples over max_seconds", n);
        for (size_t i = 0; i < n; i++)
            FZ_ASSERT(out[i] >= -1.0f && out[i] < 1.0f, "sample %zu = %g", i, (double)out[i]);
    } else {
        FZ_ASSERT(rc == AM_EAUDIO || rc == AM_ERANGE || rc == AM_ENOMEM || rc == AM_EINVAL, "rc %d", rc);
        FZ_ASSERT(out == NULL && n == 0, "outputs not cleared on failure");
        FZ_ASSERT(am_last_error()[0] != 0, "failure %d without a message", rc);
    }
    am_audio_free(out);
    return 0;
}
