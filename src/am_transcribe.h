// am_transcribe.h — long-form transcription exactly as openai-whisper's
// transcribe() does it, as jobs that many requests run side by side.
//
// An am_job is one audio file's seek loop: it hands out 30 s windows to
// encode, decodes each with an am_wdec (prompt from previous text,
// temperature fallback), turns timestamp pairs into segments, advances the
// seek, and finally produces an am_transcript. A span job does the same over
// a slice of a file's mel (e.g. one VAD chunk) with its times on the file's
// timeline; finished span jobs are joined into one transcript (am_job_join).
//
// An am_engine runs any number of jobs together: each tick encodes the
// windows that wait (one batched encoder call) and advances every decoding
// window of every job by one batched decoder step. Windows join after their
// encoder pass and leave at end-of-text; fallback retries and the next window
// of a long file re-enter as new work. The scheduler (am_sched) drives an
// engine from its worker thread; the CLI simply runs it to completion.
//
// Ownership: a job owns its mel (a span job its copy of the slice) and its
// transcript (segments, their tokens, logprobs and words); the engine borrows jobs
// (the caller frees them after am_engine_remove or completion) and owns its
// encoder, decoder and the pool of cross-K/V + sequence slots. Everything
// borrows the am_decoding (model + tokenizer). Thread-safety: an engine and
// its jobs are used by one thread at a time.
#ifndef AM_TRANSCRIBE_H
#define AM_TRANSCRIBE_H

#include <stddef.h>
#include <stdint.h>

#include "am_align.h"
#include "am_decode.h"
#include "am_mel.h"

// ---------------------------------------------------------------- parameters
typedef struct {
    const char *language;           // code or name; NULL = detect (multilingual) / "en" (English-only)
    int translate;                  // task translate (multilingual models). Default 0.
    const char *initial_prompt;     // text prompt for the first window. Default NULL.
    int condition_on_previous_text; // feed previous windows' text as the prompt. Default 1.
    int word_timestamps;            // word-level timestamps (the reference's word_timestamps=True): an
                                    // alignment pass per window, segment times from the words. Default 0.
    am_decode_params decode;        // temperature, fallback thresholds, timestamps, beams (am_decode_default_params)
} am_transcribe_params;

am_transcribe_params am_transcribe_default_params(void);

// ---------------------------------------------------------------- results
typedef struct {
    int id;
    int seek;           // mel frame where its window started (original timeline for span jobs)
    double start, end;  // seconds (original timeline for span jobs, as are its words' times)
    char *text;
    int32_t *tokens;    // incl. timestamp tokens
    int n_tokens;
    float *token_logprobs; // (n_tokens,) parallel to tokens, NULL when n_tokens is 0: each token's
                           // log-probability (am_wdec_result.token_logprobs of its window)
    double temperature, avg_logprob, compression_ratio, no_speech_prob;
    am_word *words;     // word timestamps (word_timestamps on): text, start, end, probability; else NULL
    int n_words;
} am_segment;

typedef struct {
    char language[16];
    am_lang_prob lang_top[AM_LANG_TOP]; // when the language was detected
    int n_lang_top;
    int translate;
    double duration;      // seconds of audio (content frames * 0.01)
    char *text;           // all text (after the initial prompt), as the reference's result["text"]
    am_segment *segments;
    int n_segments;
    // statistics
    int n_windows;        // windows decoded (incl. detection-only passes)
    int n_fallbacks;      // temperature retries
    int n_tokens;         // tokens sampled
} am_transcript;

// ---------------------------------------------------------------- jobs
typedef struct am_job am_job;

enum { AM_JOB_ENCODE = 0, AM_JOB_DECODE = 1, AM_JOB_DONE = 2, AM_JOB_ERROR = 3 };

// mel is taken over (freed with the job). Returns NULL (last error set) for
// bad parameters, e.g. an unknown language.
am_job *am_job_create(const am_decoding *dc, am_mel_result *mel, const am_transcribe_params *p);
// A job over mel frames [first_frame, first_frame + n_frames) of `mel` (borrowed: the slice and the
// 3000 frames after it, or what exists, are copied): its own seek loop as if that slice were the whole
// file (prompt from its own previous windows only, its own language detection), but every time it
// reports — segment seek/start/end, word start/end — is on the original timeline
// (first_frame * 0.01 s later). n_frames == 0 gives a finished job with an empty transcript.
// The slice must lie within mel->n_frames (first_frame >= 0, n_frames >= 0), else NULL with
// AM_EINVAL. Its transcript's duration is n_frames * 0.01 s and am_job_progress runs over the
// slice. Returns NULL (last error set) as am_job_create does.
am_job *am_job_create_span(const am_decoding *dc, const am_mel_result *mel, int first_frame, int n_frames,
                           const am_transcribe_params *p);
void am_job_free(am_job *j);
// Join finished jobs parts[0..n) (in timeline order) into dst (finished; typically the first span),
// which then holds one transcript: segments appended in order with ids renumbered, text the
// concatenation of the parts' texts, statistics summed (n_windows, n_fallbacks, n_tokens), language
// and lang_top of dst kept, duration set to `duration` seconds. parts are left empty (still to be freed).
// dst's own transcript comes first: it may be parts[0] (counted once) but no later part; a part
// given twice, or one not AM_JOB_DONE, is AM_EINVAL. Returns 0, AM_EINVAL or AM_ENOMEM (then
// nothing changed). Not while any of the jobs is in an engine (finished jobs have left it).
int am_job_join(am_job *dst, am_job *const *parts, int n, double duration);
// Committed text so far (what the final transcript's text will start with): malloc'd in *text
// (the caller free()s it). It is job_finish's decode of the segments committed so far (after the
// initial prompt, without timestamps), less a final incomplete UTF-8 character; once the job is
// done (or joined), the transcript's text. Returns 0, AM_EINVAL or AM_ENOMEM.
// Also, am_job_n_committed(j): number of segments committed so far (changes when text may have grown).
// Both read the job: call them on the thread that drives its engine (e.g. from on_finish or
// between steps), not while another thread steps it.
int am_job_text_so_far(const am_job *j, char **text);
int am_job_n_committed(const am_job *j);
// The segments committed so far (*n of them; final: later windows only append). Valid until the
// job's next engine step; engine thread only.
const am_segment *am_job_segments(const am_job *j, int *n);

int am_job_state(const am_job *j);
// Fraction of the audio processed (committed windows), 0..1, never decreasing; over its slice for a span job.
double am_job_progress(const am_job *j);
// The finished transcript (NULL unless AM_JOB_DONE).
const am_transcript *am_job_transcript(const am_job *j);
// Error code and message when AM_JOB_ERROR.
int am_job_error(const am_job *j, const char **msg);
// An opaque pointer for the caller (e.g. its request); 0 by default.
void am_job_set_user(am_job *j, void *user);
void *am_job_user(const am_job *j);
// Scheduling order in an engine: higher priority first, then the earlier
// deadline (am_time_s() clock; 0 = none), then the window that waited longest.
void am_job_set_priority(am_job *j, int priority, double deadline);
// am_time_s() when the job's first window was encoded (0 before).
double am_job_first_encode_time(const am_job *j);

// ---------------------------------------------------------------- engine
typedef struct am_engine am_engine;

typedef struct {
    int max_batch;    // windows per encoder call. Default 8.
    int max_windows;  // windows decoding at once (each holds cross K/V + a sequence). Default 64.
    int max_seqs;     // decoder sequences (KV caches) held by all windows together: a window with beams
                      // or best-of candidates holds several. A window that would exceed it waits for
                      // others to finish (it runs alone when it needs more). 0 = no limit (default).
    int max_rows;     // decoder rows per internal pass (am_decoder_params). Default 512.
    int kv_type;      // element type of cross K/V and KV caches: AM_TYPE_F32 (exact, default) or
                      // AM_TYPE_F16 (half the memory and traffic; not the reference's arithmetic)
    // Called (on the engine's thread, inside am_engine_encode/decode_step) for
    // each job that finished (AM_JOB_DONE) or failed (AM_JOB_ERROR); the job has
    // left the engine by then. Optional.
    void (*on_finish)(am_job *j, void *ctx);
    void *ctx;        // passed to on_finish
    // Alignment heads for word timestamps; NULL = the model's defaults (am_align_default_heads).
    const am_align_head *alignment_heads; // (n_alignment_heads,), copied by am_engine_create
    int n_alignment_heads;
} am_engine_params;

typedef struct {
    long encoder_calls, encoder_windows;  // batches and windows encoded
    long decoder_steps, decoder_rows;     // steps and sequence-rows stepped
    double encoder_s, decoder_s, mel_s;   // time spent
} am_engine_stats;

am_engine_params am_engine_default_params(void);
am_engine *am_engine_create(const am_decoding *dc, const am_engine_params *p);
void am_engine_free(am_engine *e);

// Add a job (borrowed). A job that is already finished (audio too short for
// one mel frame) is reported to on_finish right away. Returns 0 or AM_EINVAL.
int am_engine_add(am_engine *e, am_job *j);
// Remove a job now (cancellation): its slots are freed. Returns 0 or AM_EINVAL if absent.
int am_engine_remove(am_engine *e, am_job *j);
// Jobs in the engine that are not finished.
int am_engine_pending(const am_engine *e);
// Windows waiting for the encoder / windows decoding now.
int am_engine_waiting_windows(const am_engine *e);
int am_engine_active_windows(const am_engine *e);
// am_time_s() since when the longest-waiting window waits (0 when none waits).
double am_engine_oldest_wait(const am_engine *e);

// One encoder batch of waiting windows (at most max_enc, 0 = max_batch).
// Returns windows encoded, or a negative error.
int am_engine_encode(am_engine *e, int max_enc);
// One decoder step over every decoding window. Returns rows stepped (0 when
// nothing decodes), or a negative error. Finished jobs leave the engine.
int am_engine_decode_step(am_engine *e);
// Run (encode when windows wait and slots are free, else step) until every
// job is finished, or for about max_s seconds when max_s > 0 (then call again).
int am_engine_run(am_engine *e, double max_s);

const am_engine_stats *am_engine_get_stats(const am_engine *e);

#endif // AM_TRANSCRIBE_H
