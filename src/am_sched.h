// am_sched.h — the cross-request batching scheduler behind the server.
//
// Requests (raw audio bytes + transcription parameters) are admitted into a
// bounded queue ordered by priority, then deadline, then arrival. An audio
// worker decodes them (any container) and computes their mel spectrograms in
// batches (one am_mel_compute_batch call per batch). One engine thread owns
// the model compute: it runs an am_engine over all admitted jobs — encoder
// batches formed by the hybrid collector (BATCH_MAX_SIZE windows, or the
// oldest has waited BATCH_MAX_WAIT_MS, or at once when the engine is idle and
// no upload is being decoded: nothing could join) and continuous-batching decoder steps
// that advance every active window of every request at once. Windows join
// after their encoder pass and leave at end-of-text; fallback retries and the
// next window of a long file re-enter as new work.
//
// Interleaving policy: while windows are decoding, an encoder batch is formed
// only when the collector fires, and between two encoder batches at least one
// decoder step runs, so decoding never starves behind encoder work; when
// nothing decodes, a batch is encoded as soon as the collector fires (an idle
// engine never waits longer than BATCH_MAX_WAIT_MS for company).
//
// With batching disabled (ENABLE_BATCHING=false) the same engine runs one
// request at a time, one window at a time (the sequential mode).
//
// Every request ends exactly once in its completion callback, called from a
// scheduler thread: success (the job, handed over), or an error — bad audio,
// cancelled, timed out, shutting down — which never affects other requests.
//
// Ownership: the scheduler borrows the model and tokenizer (they outlive it)
// and copies request audio and the parsed alignment heads. Thread-safety: submit/cancel/stats/drain may be
// called from any thread.
#ifndef AM_SCHED_H
#define AM_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "am_metrics.h"
#include "am_model.h"
#include "am_tokenizer.h"
#include "am_transcribe.h"
#include "am_vad.h"

typedef struct {
    int enable_batching;      // ENABLE_BATCHING; 0 = sequential mode. Default 1.
    int max_batch_size;       // BATCH_MAX_SIZE: windows per encoder batch / mel batch. Default 8.
    int max_wait_ms;          // BATCH_MAX_WAIT_MS: oldest waiting window forces a batch. Default 50.
    int max_windows;          // windows decoding at once (each holds cross K/V + a KV cache); 0 = as many as
                              // fit in window_memory_mb, at most 64. Default 0.
    int window_memory_mb;     // memory for decoding windows when max_windows is 0 (MiB). Default 4096.
    int max_queue;            // requests admitted but not finished before submit returns AM_EFULL. Default 64.
    int audio_memory_mb;      // memory for admitted requests' audio (MiB; --audio-memory-mb): each holds its
                              // upload until decoded, then its log-mel spectrogram (n_mels * 100 * 4 bytes per
                              // second). A request that would take the total above it while others hold some
                              // ends with AM_EFULL (HTTP 429): at submit by its upload size, after decoding by
                              // its spectrogram's. 0 = unlimited. Default 2048.
    double max_audio_s;       // longest accepted audio in seconds (0 = unlimited). Default 3 hours.
    double default_timeout_s; // per-request deadline when the caller gives none (seconds). Default 60.
    int kv_type;              // K/V element type: AM_TYPE_F32 (exact) or AM_TYPE_F16 (--kv-type,
                              // AMANUENSIS_KV_TYPE). Default AM_TYPE_F32.
    const char *alignment_heads; // cross-attention heads for word timestamps (--alignment-heads,
                              // AMANUENSIS_ALIGNMENT_HEADS): a checkpoint name or "L,H;L,H;..." as
                              // am_align_parse_heads reads it, parsed (and not kept) by am_sched_create;
                              // NULL or "" = the model's defaults. Default NULL.
    int vad;                  // VAD chunking for requests that do not set chunking_strategy (--vad on|off,
                              // AMANUENSIS_VAD): speech regions merged into chunks of at most 30 s, decoded
                              // in parallel as independent windows. Default 0 (the reference's seek loop).
    const char *vad_model;    // Silero VAD ggml file (--vad-model, AMANUENSIS_VAD_MODEL), loaded (and not
                              // kept) by am_sched_create; NULL or "" = no model: chunking_strategy is then
                              // refused and vad must be 0. Default NULL.
} am_sched_params;

am_sched_params am_sched_default_params(void);
// Apply ENABLE_BATCHING, BATCH_MAX_SIZE, BATCH_MAX_WAIT_MS from the environment.
void am_sched_params_from_env(am_sched_params *p);

typedef struct am_sched am_sched;

// The outcome of one request, passed to its completion callback.
typedef struct {
    int status;            // 0, or AM_EAUDIO / AM_ERANGE (audio too long) / AM_ECANCELED /
                           // AM_ETIMEDOUT / AM_ESHUTDOWN / AM_EINVAL / AM_ENOMEM / AM_EINTERNAL
    const char *error;     // message when status != 0 (valid during the callback only)
    am_job *job;           // on success: the finished job; the callee owns it (am_job_free)
    double queue_wait_s;   // submit -> first window encoded
    double processing_s;   // submit -> done
    double audio_s;        // seconds of audio
} am_sched_result;

typedef void (*am_sched_done_fn)(void *user, const am_sched_result *res);

// What a request has produced so far (streaming): passed to its progress
// callback whenever text became final (a window's segments were accepted,
// after any fallback). Everything is cumulative from the start of the file,
// and valid during the callback only.
typedef struct {
    const char *text;         // the final transcript's text starts with this (am_transcript.text's form)
    const int32_t *tokens;    // (n_tokens,) the sampled tokens of the accepted segments so far, in order
    const float *logprobs;    // (n_tokens,) their log-probabilities
    int n_tokens;
} am_sched_progress;

typedef void (*am_sched_progress_fn)(void *user, const am_sched_progress *pr);

// How a request's audio is cut into windows.
enum {
    AM_CHUNK_DEFAULT = -1, // the server's default (am_sched_params.vad)
    AM_CHUNK_SEEK = 0,     // the reference's seek loop over the whole file
    AM_CHUNK_VAD = 1,      // speech regions (Silero VAD) merged into chunks of at most 30 s, each
                           // transcribed as an independent span (its own seek loop, prompt and language),
                           // a file's chunks in the engine together (at most a quarter of max_windows at
                           // once, so one long file leaves slots to the others); times on the file's
                           // timeline; no speech at all gives an empty transcript without decoding
};

typedef struct {
    const void *audio;          // encoded audio bytes (copied by submit)
    size_t audio_size;
    am_transcribe_params params; // pointers inside (language, initial_prompt) are copied
    int priority;               // higher first. Default 0.
    double timeout_s;           // deadline from submit; <= 0 uses default_timeout_s
    am_sched_done_fn done;      // completion callback (required)
    void *user;                 // passed to done and progress
    int chunking;               // AM_CHUNK_SEEK (0, what a zeroed request gets), AM_CHUNK_VAD (needs the
                                // scheduler's VAD model) or AM_CHUNK_DEFAULT (the server's --vad)
    am_vad_params vad;          // VAD parameters of AM_CHUNK_VAD; zeroed = am_vad_default_params(). Its
                                // max_speech_s is set by the scheduler (the chunk length).
    am_sched_progress_fn progress; // optional: called from the engine thread (never with a scheduler lock
                                // held; keep it short) when more text became final. NULL = none.
} am_sched_request;

am_sched *am_sched_create(const am_model *m, const am_tokenizer *tok, const am_sched_params *p,
                          am_metrics *metrics);
// Whether VAD chunking is available (a VAD model was loaded), and the default chunking.
int am_sched_has_vad(const am_sched *s);
int am_sched_default_chunking(const am_sched *s);
// Stops accepting, cancels what is left (AM_ESHUTDOWN), joins the threads.
void am_sched_free(am_sched *s);

// Queue a request. Returns 0 and its id in *id, AM_EFULL when the queue is
// full (HTTP 429), AM_ESHUTDOWN while draining (503), AM_EINVAL for bad
// parameters (e.g. unknown language, bad VAD parameters, VAD chunking without
// a VAD model). On error `done` is never called.
int am_sched_submit(am_sched *s, const am_sched_request *req, uint64_t *id);

// Cancel a request (client gone): its work stops and its slots are freed at
// the next scheduler step; `done` is called with AM_ECANCELED. Unknown or
// finished ids are ignored.
void am_sched_cancel(am_sched *s, uint64_t id);

// Stop accepting new requests (submit -> AM_ESHUTDOWN) and wait up to
// timeout_s for admitted requests to finish; those still running then are
// cancelled with AM_ESHUTDOWN. Returns the number that had to be cancelled.
int am_sched_drain(am_sched *s, double timeout_s);

int am_sched_draining(const am_sched *s);

// A consistent snapshot for /stats/batching, /metrics and /ready.
void am_sched_state(am_sched *s, am_metrics_state *st);

#endif // AM_SCHED_H
