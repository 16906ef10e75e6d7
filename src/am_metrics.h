// am_metrics.h — counters, histograms and percentiles of the service, rendered
// as Prometheus text (/metrics) and as the /stats/batching JSON document.
//
// Recorded by the HTTP layer (every response's status, latency) and by the
// scheduler (queue waits, engine batches, audio seconds, tokens).
//
// Ownership: am_metrics owns everything it records; rendered strings are
// malloc'd and owned by the caller. Thread-safety: every function may be
// called from any thread concurrently (one internal mutex).
#ifndef AM_METRICS_H
#define AM_METRICS_H

#include <stddef.h>

typedef struct am_metrics am_metrics;

// What the scheduler reports about itself when stats are rendered.
typedef struct {
    int enabled;            // batching enabled (ENABLE_BATCHING)
    const char *mode;       // "batched" or "sequential"
    int max_batch_size;     // BATCH_MAX_SIZE
    int max_wait_ms;        // BATCH_MAX_WAIT_MS
    int max_windows;        // concurrent decoding windows allowed
    int max_queue;          // queued requests allowed before 429
    const char *device;     // "cpu"
    const char *model;      // loaded model name
    int queue_depth;        // requests waiting (audio decode + encoder queue)
    int pending_results;    // requests admitted and not yet answered
    int active_sequences;   // windows decoding right now
    int draining;           // shutting down
    size_t audio_memory_bytes;  // bytes the admitted requests' audio holds (uploads, spectrograms)
    size_t audio_memory_budget; // its limit (0: unlimited)
} am_metrics_state;

enum { AM_BATCH_ENCODER = 0, AM_BATCH_DECODER = 1 };

am_metrics *am_metrics_create(void);
void am_metrics_free(am_metrics *m);

// One HTTP response: endpoint label ("transcriptions", "translations", "health", ...),
// status code, and its wall latency in seconds.
void am_metrics_http(am_metrics *m, const char *endpoint, int status, double latency_s);

// One transcription request finished in the scheduler: ok (1) or failed (0),
// time queued before its first window was encoded, total processing time,
// audio seconds and tokens generated. Call it exactly once per finished
// request, cancellations and timeouts included (ok = 0). Waits, times, audio
// and tokens are recorded for successful requests only.
void am_metrics_request(am_metrics *m, int ok, double queue_wait_s, double processing_s, double audio_s,
                        long tokens);

// One engine call: kind AM_BATCH_ENCODER (size = windows encoded together) or
// AM_BATCH_DECODER (size = sequences stepped together), and its duration.
void am_metrics_batch(am_metrics *m, int kind, int size, double seconds);

// A request was cancelled because its client went away (timed_out = 0) or
// its deadline passed (timed_out = 1). Called in addition to the request's
// am_metrics_request(ok = 0): requests_total{result="error"} counts the
// failures that were neither.
void am_metrics_cancelled(am_metrics *m, int timed_out);

// Prometheus text exposition format (version 0.0.4): amanuensis_* series.
char *am_metrics_prometheus(am_metrics *m, const am_metrics_state *st);

// The /stats/batching JSON document (see am_metrics.c for the schema).
char *am_metrics_stats_json(am_metrics *m, const am_metrics_state *st);

#endif // AM_METRICS_H
