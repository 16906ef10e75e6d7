// fuzz_chunking.c — libFuzzer target: the chunking_strategy form field parser
// (am_http_parse_chunking, src/am_http.h) on arbitrary bytes.
//
// The input is the field's value (NUL-terminated copy; an embedded NUL ends it
// as it would in the server). Invariants beyond the sanitizers: a success
// yields AM_CHUNK_VAD or AM_CHUNK_SEEK and VAD parameters that
// am_vad_check_params accepts (the scheduler refuses anything else); a failure
// leaves a non-empty NUL-terminated message, also when the message buffer is
// tiny (an exact-size heap block, so ASan sees any write past it).
//
// Corpus: fuzz/corpus/chunking (regress-*: its first finding, a threshold
// inside (0, 1) as a double that rounds to 0 or 1 as the float the VAD stores) (JSON objects as OpenAI documents them);
// dictionary: fuzz/chunking.dict.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "am_http.h"
#include "am_sched.h"
#include "am_vad.h"
#include "fuzz_common.h"

// ---------------------------------------------------------------- one input
static void parse_once(const char *v, size_t cap) {
    char *msg = cap ? malloc(cap) : NULL;
    if (cap && !msg) return;
    if (msg) memset(msg, 0x55, cap);
    int chunking = -7;
    am_vad_params vad;
    memset(&vad, 0x55, sizeof vad);
    const int rc = am_http_parse_chunking(v, &chunking, &vad, msg, cap);
    FZ_ASSERT(rc == 0 || rc == -1, "rc %d", rc);
    if (rc == 0) {
        FZ_ASSERT(chunking == AM_CHUNK_VAD || chunking == AM_CHUNK_SEEK, "chunking %d", chunking);
        FZ_ASSERT(am_vad_check_params(&vad) == 0, "accepted '%.200s' but the VAD parameters are invalid: %s", v,
                  am_last_error());
    } else if (cap) {
        FZ_ASSERT(memchr(msg, 0, cap) != NULL, "message not NUL-terminated");
        FZ_ASSERT(cap == 1 || msg[0] != 0, "empty message");
    }
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *v = malloc(size + 1);
    if (!v) return 0;
    memcpy(v, data, size);
    v[size] = 0;
    parse_once(v, 256);              // the server's buffer size
    parse_once(v, 1 + size % 24);    // a small one: truncated messages
    free(v);
    return 0;
}
