// am_http.h — the HTTP front end of the server (libmicrohttpd), OpenAI's audio API.
//
// Endpoints:
//   POST /v1/audio/transcriptions, POST /v1/audio/translations
//        multipart/form-data as OpenAI's SDKs send it: file (required), model,
//        language, prompt, response_format, temperature, timestamp_granularities[]
//        ("segment", "word"; word needs verbose_json: word timestamps, a top-level
//        "words" array and each segment's "words"; ["word"] alone leaves out
//        "segments"), include[] ("logprobs", json only: "logprobs" [{token,
//        logprob, bytes}] of the sampled text tokens), chunking_strategy ("auto",
//        or {"type":"server_vad","threshold","prefix_padding_ms",
//        "silence_duration_ms"} as JSON; the extension "none" forces the seek
//        loop where --vad on makes chunking the default), stream (true: OpenAI's
//        server-sent events, json/text transcriptions only, see below), and the
//        extensions without_timestamps (the reference's without_timestamps=True),
//        temperature_inc, priority (also the X-Priority header), beam_size
//        (1..16), best_of (1..16), patience (> 0, with a beam size) and
//        length_penalty (0..1), which override the server's defaults
//        (am_http_params). 200 with the rendered transcript; json and
//        verbose_json carry "usage" {"type":"duration","seconds"} and the
//        "performance" object.
//        stream=true: 200 with Content-Type text/event-stream at once, then
//        "data: {json}\n\n" events: transcript.text.delta {"type","delta"[,
//        "logprobs"]} each time a window's segments are accepted (after any
//        fallback; with VAD chunking, chunk by chunk in timeline order), then one
//        transcript.text.done {"type","text"[,"logprobs"],"usage"}; the deltas
//        concatenate to the done text, which is the json response's text. A
//        failure after the 200 is one {"type":"error","error":{...}} event. A
//        client that disconnects mid-stream cancels its work.
//   GET  /health                liveness, always 200 {"status":"ok"}
//   GET  /ready                 readiness for a load balancer: 200 {"status":"ready", ...} when the
//                               instance takes work, else 503 {"status":"unavailable","reason":
//                               "draining" | "queue full" | "audio memory full", ...}; both carry the
//                               free capacity: "model", "pending_results", "max_queue",
//                               "free_queue_slots", "queue_depth", "active_windows", "max_windows",
//                               "free_windows", "audio_memory_mb", "audio_memory_budget_mb" (0:
//                               unlimited), "draining" (bool). There is no "loading" state: the server listens
//                               only once its model is loaded.
//   GET  /v1/models, /v1/models/{id}   the loaded model in OpenAI's list/object shape
//   GET  /stats/batching        the scheduler statistics document (am_metrics_stats_json)
//   GET  /metrics               Prometheus text (am_metrics_prometheus)
// With API keys configured, every endpoint but /health needs "Authorization:
// Bearer <key>" (401 otherwise, unknown paths included; keys compared in
// constant time): a load balancer's /ready check sends a key too.
// public_metrics opens /metrics and /stats/batching for scrapers. The priority form field
// overrides the X-Priority header; higher is served first.
//
// Errors use OpenAI's shape {"error": {"message", "type", "param", "code"}},
// type "invalid_request_error" for 4xx and "server_error" for 5xx:
//   400 invalid field (param names it; e.g. beam_size out of 1..16, patience
//       without a beam size, timestamp_granularities[]=word with a response_format
//       other than verbose_json, stream with verbose_json/srt/vtt or on
//       translations, include[]=logprobs without json, a bad chunking_strategy or
//       one without a VAD model), values OpenAI accepts that this server cannot
//       honour (response_format diarized_json, known_speaker_names[],
//       known_speaker_references[]: code "unsupported_value"), missing (param
//       "file") or empty file,
//       undecodable audio (scheduler AM_EAUDIO, code "invalid_audio"), audio
//       longer than the scheduler allows (AM_ERANGE, code "audio_too_long"),
//       not multipart/form-data, malformed multipart, more than max_form_parts
//       parts (code too_many_parts)
//   401 missing or wrong API key   404 unknown path   405 wrong method (Allow header)
//   408 header / upload deadline passed, or nothing arrived for idle_timeout_s
//       mid-request (codes header_timeout, upload_timeout, idle_timeout;
//       written on the socket, which is then closed: see Limits)
//   413 upload over the limit: Content-Length checked before reading, bytes
//       counted while receiving (nothing buffered past the limit)
//   431 request line and headers over max_header_bytes (code header_too_large)
//   429 queue full (am_sched_submit AM_EFULL), with Retry-After: 1
//   500 internal error   503 draining (AM_ESHUTDOWN / after am_http_begin_drain and its
//       grace, params.drain_grace_s)
//   504 request deadline passed (AM_ETIMEDOUT)
//   499 is logged and counted (never seen by anyone) when the client went away.
// Every response carries X-Request-Id; every request is logged on stderr
// (method path status ms id) and recorded with am_metrics_http.
//
// Limits (am_http_params; every breach is answered, logged and counted):
//   connections        max_connections open at once (more wait in the listen
//                      backlog), max_connections_per_ip per client address
//                      (more are closed at once, counted in
//                      connections_refused; libmicrohttpd logs them).
//   header timeout     a connection must deliver complete request headers
//                      within header_timeout_s of its accept (or of the end of
//                      its previous request): a total bound, so a client
//                      sending a header byte every second is cut too. A watcher
//                      thread sweeps the connections by deadline every 50 ms:
//                      a fresh one gets 408 {"error": {"code":
//                      "header_timeout"}} written on its socket and is shut
//                      down, a kept-alive one is shut down without a word (a
//                      408 there could be read as the answer to its next
//                      request). Recorded under the endpoint label
//                      "connection" (no URL is known yet).
//   upload timeout     a request's body must be complete within
//                      upload_timeout_s of its headers: 408 (code
//                      "upload_timeout") written on the socket, which is shut
//                      down, whether the body trickles or stalls.
//   body size          413 by Content-Length before reading; a chunked body is
//                      counted while received: 413 once complete, or the
//                      connection closed (413 recorded, and written on the
//                      socket) after 4x the limit.
//   headers            431 (code "header_too_large") above max_header_bytes;
//                      headers that do not even fit in the connection's memory
//                      get libmicrohttpd's own 431 (414 for a huge URL, 400 for
//                      a malformed request): HTML, not OpenAI's shape, but
//                      counted under "connection" (seen through its log).
//   multipart          400 (code "too_many_parts") above max_form_parts parts;
//                      a text field above 16 KiB is a 400 naming it.
//   idle               idle_timeout_s without a byte either way closes a
//                      connection (libmicrohttpd's timeout; a suspended one
//                      waiting for its transcription is exempt).
//
// Threading: libmicrohttpd's internal polling thread(s) parse requests; a
// transcription is submitted to the scheduler and its connection suspended
// (HTTP threads never wait for inference). The scheduler's completion
// callback stores the result and resumes the connection; the polling thread
// then renders and sends the body. A watcher thread polls the sockets of
// suspended connections and cancels the work of clients that hang up.
//
// Ownership: am_http borrows the scheduler, metrics, model and tokenizer (they
// must outlive it) and copies the params (strings included). Thread-safety:
// am_http_port / am_http_begin_drain / am_http_grace_over / am_http_end_grace /
// am_http_get_counts may be called from any thread; am_http_stop once, from the
// thread that started it.
#ifndef AM_HTTP_H
#define AM_HTTP_H

#include <stddef.h>

#include "am_metrics.h"
#include "am_model.h"
#include "am_sched.h"
#include "am_tokenizer.h"

// The longest grace, in multiples of drain_grace_s (a client that never pauses
// cannot hold a draining instance open).
#define AM_HTTP_GRACE_CAP 10

typedef struct {
    const char *host;          // bind address: IPv4/IPv6 literal or a name. Default "127.0.0.1".
    int port;                  // TCP port; 0 = an ephemeral port (see am_http_port). Default 9050.
    size_t max_upload_bytes;   // largest accepted audio file in bytes. Default 25 MiB.
    double request_timeout_s;  // per-request deadline from submit (seconds); 504 after it. Default 60.
    int idle_timeout_s;        // close a connection idle this long (seconds; 0 = never). Default 30.
    int threads;               // HTTP polling threads. Default 2.
    const char *const *api_keys; // accepted bearer keys; NULL / n_api_keys 0 = no auth. Default none.
    int n_api_keys;            // entries in api_keys. Default 0.
    int public_metrics;        // with api_keys: /metrics and /stats/batching answer without a key (scrapers on
                               // a private network). Default 0: they need one too.
    int log_requests;          // one line per request on stderr. Default 1.
    // Decoding defaults of every request (the form fields beam_size, best_of,
    // patience, length_penalty override them one by one; see am_decode_params):
    int beam_size;             // beams at temperature 0, 1..AM_MAX_GROUP; 0 = greedy. Default 0.
    int best_of;               // candidates sampled at temperature > 0, 1..AM_MAX_GROUP; 0 = 1. Default 0.
    double patience;           // beam search patience (> 0). Default 1.0. A request's patience field needs a
                               // beam size (its own or this default), as the reference's DecodingOptions.
    double length_penalty;     // NAN = length-normalised ranking (default); else 0..1.
    double drain_grace_s;      // after am_http_begin_drain, keep serving new transcription requests (while
                               // /ready answers 503) until none has arrived for this many seconds and no
                               // upload is being received, at most AM_HTTP_GRACE_CAP times as long: the time a
                               // load balancer's health checks need to take the instance out of rotation
                               // (seconds; 0 = refuse new requests with 503 at once). Default 0.
    // Limits against slow and abusive clients (see "Limits" above):
    int max_connections;       // open connections at most (MHD_OPTION_CONNECTION_LIMIT, split evenly over the
                               // polling threads); at the limit new connections are not accepted and wait in the
                               // listen backlog (256), beyond which the kernel drops them. Each is one open file:
                               // the caller fits it to RLIMIT_NOFILE. Default 1024.
    int max_connections_per_ip; // open connections per client address (MHD_OPTION_PER_IP_CONNECTION_LIMIT): more
                               // are accepted and closed at once; 0 = unlimited. Default 0 (a load balancer
                               // connects from one address).
    double header_timeout_s;   // seconds a connection has to deliver a request's complete headers, counted from
                               // its accept or from the end of its previous request, in total (not reset by each
                               // byte as idle_timeout_s is): then a fresh connection gets 408 and is closed, a
                               // kept-alive one is closed. 0 = no limit. Default 30.
    double upload_timeout_s;   // seconds a request has to deliver its whole body, counted from its complete
                               // headers: then 408 and the connection is closed. 0 = no limit. Default 300.
    size_t max_header_bytes;   // request line + headers at most, in bytes: 431 above it. The connection's memory
                               // (MHD_OPTION_CONNECTION_MEMORY_LIMIT) is this + 192 KiB; headers that do not fit
                               // in it get libmicrohttpd's own 431 (414 for the URL alone). Default 64 KiB.
    int max_form_parts;        // multipart/form-data parts per request at most: 400 above it. Default 64.
    size_t upload_memory_bytes; // the upload buffers of all requests being received together, in bytes: a request
                               // whose buffer would take the total above it while others hold some gets 429 with
                               // Retry-After (at once when its Content-Length says so, else once its body is
                               // read). 0 = unlimited. Default 2 GiB.
} am_http_params;

am_http_params am_http_default_params(void);

typedef struct am_http am_http;

// Counters of the HTTP layer (for the shutdown report).
typedef struct {
    long requests;      // responses sent (or requests ended without one)
    long client_errors; // 4xx
    long server_errors; // 5xx
    long transcriptions_ok; // 200s on the transcription/translation endpoints
    long header_timeouts;   // connections closed at the header timeout (408 or, kept alive, silently)
    long upload_timeouts;   // requests cut at the upload timeout (408)
    long connections_refused; // connections closed at once by the per-address limit
    long connection_limit_hits; // times the open connections reached max_connections
} am_http_counts;

// Bind and start serving. Returns NULL (last error set: AM_EINVAL bad params,
// AM_EIO cannot bind, AM_ENOMEM) on failure.
am_http *am_http_start(const am_http_params *p, am_sched *s, am_metrics *m, const am_model *model,
                       const am_tokenizer *tok);

// The port actually bound (the ephemeral one when params.port was 0).
int am_http_port(const am_http *h);

// Enter draining: /ready answers 503 at once; new transcription requests get
// 503 once the grace (params.drain_grace_s) is over, at once without one.
// Keeps serving in-flight responses. The caller waits for am_http_grace_over,
// then drains the scheduler.
void am_http_begin_drain(am_http *h);

// 1 once draining and the grace is over (new transcription requests are
// refused from then on), else 0. Never 1 before am_http_begin_drain.
int am_http_grace_over(am_http *h);

// End the grace now (e.g. a second SIGTERM).
void am_http_end_grace(am_http *h);

void am_http_get_counts(am_http *h, am_http_counts *c);

// Cancel whatever is still waiting in the scheduler, wait up to timeout_s for
// in-flight responses to be delivered, stop the daemon and free everything.
// The final counters go to *final when it is not NULL.
void am_http_stop(am_http *h, double timeout_s, am_http_counts *final);

// The chunking_strategy form field: "auto" (VAD chunking with the VAD
// defaults), "none" (an extension: the seek loop even where the server chunks
// by default), or OpenAI's JSON {"type": "server_vad", "threshold",
// "prefix_padding_ms", "silence_duration_ms"} (each optional: speech
// probability threshold in (0, 1), padding around each speech region 0..60000
// ms, the silence that ends a region 0..3600000 ms; no other key). Sets
// *chunking (AM_CHUNK_VAD / AM_CHUNK_SEEK) and *vad (am_vad_default_params()
// with the given fields). Returns 0, or -1 with a message in msg (cap bytes).
// Reentrant.
int am_http_parse_chunking(const char *v, int *chunking, am_vad_params *vad, char *msg, size_t cap);

#endif // AM_HTTP_H
