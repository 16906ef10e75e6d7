// am_config.c — the settings table and what it drives: argument parsing, the
// environment, the usage text and the Markdown table (see am_config.h).
#include "am_config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// ---------------------------------------------------------------- the table
#define F(field) offsetof(am_settings, field)
#define NOB .min = -INFINITY, .max = INFINITY
#define B(lo, hi) .min = (lo), .max = (hi)
#define S AM_CMD_SERVE
#define T AM_CMD_TRANSCRIBE
#define I AM_CMD_INFO
#define V AM_CMD_VAD

static const char *const k_kv_types[] = {"f32", "f16", NULL};
static const char *const k_formats[] = {"json", "text", "srt", "vtt", "verbose_json", NULL};
static const char *const k_tasks[] = {"transcribe", "translate", NULL};
static const char *const k_isas[] = {"scalar", "avx2", "avx512", NULL};
#define VAD_MODEL_DEFAULT "models/ggml-silero-v6.2.0.bin"

static const am_setting k_table[] = {
    // ---- every command
    {.name = "help", .cmds = AM_CMD_ALL, .flag = "--help", .short_flag = "-h", .type = AM_SETTING_SWITCH, NOB,
     .help = "print this help and exit", .offset = F(help)},
    {.name = "quiet", .cmds = S | T | V, .flag = "--quiet", .short_flag = "-q", .type = AM_SETTING_SWITCH, NOB,
     .help = "less on stderr: no progress or timings (transcribe, vad), no per-request log lines (serve)",
     .offset = F(quiet)},
    {.name = "model", .cmds = S | T | I, .flag = "--model", .short_flag = "-m", .metavar = "PATH",
     .env = "AMANUENSIS_MODEL", .type = AM_SETTING_STRING, NOB,
     .help = "the Whisper ggml model file (required; get one with: make model MODEL=base.en)", .offset = F(model)},
    // ---- serve and transcribe
    {.name = "kv-type", .cmds = S | T, .flag = "--kv-type", .metavar = "T", .env = "AMANUENSIS_KV_TYPE",
     .type = AM_SETTING_ENUM, NOB, .values = k_kv_types, .def = 0,
     .help = "K/V element type: f32 is exact; f16 keeps cross K/V and KV caches in half precision "
             "(half the memory per window)",
     .offset = F(kv_type)},
    {.name = "beam-size", .cmds = S | T, .flag = "--beam-size", .metavar = "N", .env = "AMANUENSIS_BEAM_SIZE",
     .env_cmds = S, .type = AM_SETTING_INT, B(1, 16), .def = 0, .def_doc = "greedy",
     .help = "beam search with N beams at temperature 0 (serve: the default of a request's beam_size)",
     .offset = F(beam_size)},
    {.name = "best-of", .cmds = S | T, .flag = "--best-of", .metavar = "N", .env = "AMANUENSIS_BEST_OF",
     .env_cmds = S, .type = AM_SETTING_INT, B(1, 16), .def = 0, .def_doc = "1",
     .help = "candidates sampled at temperature > 0 (serve: the default best_of)", .offset = F(best_of)},
    {.name = "patience", .cmds = S | T, .flag = "--patience", .metavar = "X", .env = "AMANUENSIS_PATIENCE",
     .env_cmds = S, .type = AM_SETTING_DOUBLE, .flags = AM_SETTING_MIN_EXCL, B(0, INFINITY), .def = 1.0,
     .help = "beam search patience; needs a beam size (serve: the default patience)", .offset = F(patience)},
    {.name = "length-penalty", .cmds = S | T, .flag = "--length-penalty", .metavar = "X",
     .env = "AMANUENSIS_LENGTH_PENALTY", .env_cmds = S, .type = AM_SETTING_DOUBLE, B(0, 1), .def = NAN,
     .def_doc = "sum logprob / length",
     .help = "rank candidates by sum logprob / ((5 + length) / 6)^X (serve: the default length_penalty)",
     .offset = F(length_penalty)},
    {.name = "alignment-heads", .cmds = S | T, .flag = "--alignment-heads", .metavar = "SPEC",
     .env = "AMANUENSIS_ALIGNMENT_HEADS", .env_cmds = S, .type = AM_SETTING_STRING, NOB, .def_doc = "the model's",
     .help = "cross-attention heads for word timestamps: a checkpoint name (tiny.en, base, ..., large-v3-turbo) "
             "or \"L,H;L,H;...\"",
     .offset = F(alignment_heads)},
    // ---- transcribe
    {.name = "response-format", .cmds = T, .flag = "--response-format", .short_flag = "-f", .metavar = "F",
     .type = AM_SETTING_ENUM, NOB, .values = k_formats, .def = 0,
     .help = "output format (the server's response body)", .offset = F(response_format)},
    {.name = "language", .cmds = T, .flag = "--language", .short_flag = "-l", .metavar = "L",
     .type = AM_SETTING_STRING, NOB, .def_str = "auto",
     .help = "language code or name; auto = detect (English-only models: en)", .offset = F(language)},
    {.name = "task", .cmds = T, .flag = "--task", .metavar = "T", .type = AM_SETTING_ENUM, NOB, .values = k_tasks,
     .def = 0, .help = "transcribe, or translate into English (multilingual models)", .offset = F(task)},
    {.name = "prompt", .cmds = T, .flag = "--prompt", .metavar = "TEXT", .type = AM_SETTING_STRING, NOB,
     .def_doc = "none", .help = "initial prompt (text before the first window)", .offset = F(prompt)},
    {.name = "temperature", .cmds = T, .flag = "--temperature", .metavar = "T", .type = AM_SETTING_DOUBLE, B(0, 1),
     .def = 0, .help = "the first sampling temperature", .offset = F(temperature)},
    {.name = "temperature-inc", .cmds = T, .flag = "--temperature-inc", .metavar = "D", .type = AM_SETTING_DOUBLE,
     B(0, 1), .def = 0.2, .help = "temperature fallback step; 0 disables fallback", .offset = F(temperature_inc)},
    {.name = "compression-ratio-threshold", .cmds = T, .flag = "--compression-ratio-threshold", .metavar = "X",
     .type = AM_SETTING_DOUBLE, NOB, .def = 2.4,
     .help = "fall back to a higher temperature when the text's gzip compression ratio is above X",
     .offset = F(compression_ratio_threshold)},
    {.name = "logprob-threshold", .cmds = T, .flag = "--logprob-threshold", .metavar = "X",
     .type = AM_SETTING_DOUBLE, NOB, .def = -1.0,
     .help = "fall back when the average log probability is below X", .offset = F(logprob_threshold)},
    {.name = "no-speech-threshold", .cmds = T, .flag = "--no-speech-threshold", .metavar = "X",
     .type = AM_SETTING_DOUBLE, NOB, .def = 0.6,
     .help = "a window is silence when its no-speech probability is above X and its log probability is low",
     .offset = F(no_speech_threshold)},
    {.name = "no-condition-on-previous-text", .cmds = T, .flag = "--no-condition-on-previous-text",
     .type = AM_SETTING_SWITCH, NOB, .def = 1, .help = "do not prompt each window with the text before it",
     .offset = F(condition_on_previous_text)},
    {.name = "no-timestamps", .cmds = T, .flag = "--no-timestamps", .type = AM_SETTING_SWITCH, NOB,
     .help = "decode without timestamp tokens", .offset = F(without_timestamps)},
    {.name = "word-timestamps", .cmds = T, .flag = "--word-timestamps", .type = AM_SETTING_SWITCH, NOB,
     .help = "word-level timestamps (verbose_json: each segment's words and the top-level words; segment times "
             "come from the words)",
     .offset = F(word_timestamps)},
    {.name = "seed", .cmds = T, .flag = "--seed", .metavar = "N", .type = AM_SETTING_INT, B(0, INFINITY), .def = 0,
     .help = "sampling seed", .offset = F(seed)},
    {.name = "batch", .cmds = T, .flag = "--batch", .metavar = "N", .type = AM_SETTING_INT, B(1, 64), .def = 8,
     .help = "windows per encoder batch", .offset = F(batch)},
    // ---- serve
    {.name = "host", .cmds = S, .flag = "--host", .metavar = "ADDR", .type = AM_SETTING_STRING, NOB,
     .def_str = "127.0.0.1", .help = "bind address (IPv6 literals work)", .offset = F(host)},
    {.name = "port", .cmds = S, .flag = "--port", .metavar = "N", .type = AM_SETTING_INT, B(0, 65535), .def = 9050,
     .help = "TCP port; 0 = an ephemeral port (printed at startup)", .offset = F(port)},
    {.name = "batching", .cmds = S, .flag = "--batching", .metavar = "on|off", .env = "ENABLE_BATCHING",
     .type = AM_SETTING_BOOL, NOB, .def = 1,
     .help = "cross-request batching (off: one request and one window at a time)", .offset = F(batching)},
    {.name = "max-batch-size", .cmds = S, .flag = "--max-batch-size", .metavar = "N", .env = "BATCH_MAX_SIZE",
     .type = AM_SETTING_INT, B(1, 256), .def = 8, .help = "windows per encoder batch", .offset = F(max_batch_size)},
    {.name = "max-wait-ms", .cmds = S, .flag = "--max-wait-ms", .metavar = "N", .env = "BATCH_MAX_WAIT_MS",
     .type = AM_SETTING_INT, B(0, 60000), .def = 50,
     .help = "a batch is encoded once its oldest window has waited N ms", .offset = F(max_wait_ms)},
    {.name = "max-windows", .cmds = S, .flag = "--max-windows", .metavar = "N", .type = AM_SETTING_INT,
     B(0, 4096), .def = 0, .help = "windows decoding at once; 0 = as many as fit in memory",
     .offset = F(max_windows)},
    {.name = "max-queue", .cmds = S, .flag = "--max-queue", .metavar = "N", .type = AM_SETTING_INT, B(1, 1e6),
     .def = 64, .help = "requests in flight before 429", .offset = F(max_queue)},
    {.name = "max-upload-mb", .cmds = S, .flag = "--max-upload-mb", .metavar = "X",
     .env = "AMANUENSIS_MAX_UPLOAD_MB", .type = AM_SETTING_MIB, .flags = AM_SETTING_MIN_EXCL, B(0, 1e6), .def = 25,
     .help = "upload limit in MiB (413 above it)", .offset = F(max_upload_bytes)},
    {.name = "timeout", .cmds = S, .flag = "--timeout", .metavar = "S", .type = AM_SETTING_DOUBLE,
     .flags = AM_SETTING_MIN_EXCL, B(0, 1e7), .def = 60, .help = "per-request deadline in seconds (504 after it)",
     .offset = F(timeout)},
    {.name = "drain-timeout", .cmds = S, .flag = "--drain-timeout", .metavar = "S", .type = AM_SETTING_DOUBLE,
     B(0, 1e7), .def = 30, .help = "how long shutdown waits for in-flight work (seconds)",
     .offset = F(drain_timeout)},
    {.name = "drain-grace", .cmds = S, .flag = "--drain-grace", .metavar = "S", .env = "AMANUENSIS_DRAIN_GRACE",
     .type = AM_SETTING_DOUBLE, B(0, 1e5), .def = 0,
     .help = "after SIGTERM /ready says 503 at once, but new requests are served until none arrives for S s "
             "(at most 10 S; a second signal ends it); 0 = refuse new requests at once",
     .offset = F(drain_grace)},
    {.name = "api-key", .cmds = S, .flag = "--api-key", .metavar = "KEY", .env = "AMANUENSIS_API_KEYS",
     .type = AM_SETTING_LIST, NOB, .def_doc = "none",
     .help = "require 'Authorization: Bearer KEY' on every endpoint but /health (repeatable; the variable is "
             "comma-separated)",
     .offset = F(api_keys)},
    {.name = "public-metrics", .cmds = S, .flag = "--public-metrics", .env = "AMANUENSIS_PUBLIC_METRICS",
     .type = AM_SETTING_BOOL, NOB, .def = 0, .metavar = "on|off",
     .help = "with API keys: /metrics and /stats/batching without a key (scrapers on a private network)",
     .offset = F(public_metrics)},
    {.name = "threads-http", .cmds = S, .flag = "--threads-http", .metavar = "N", .type = AM_SETTING_INT, B(1, 64),
     .def = 2, .help = "HTTP polling threads", .offset = F(threads_http)},
    {.name = "max-connections", .cmds = S, .flag = "--max-connections", .metavar = "N",
     .env = "AMANUENSIS_MAX_CONNECTIONS", .type = AM_SETTING_INT, B(1, 1e6), .def = 1024,
     .help = "open HTTP connections at most; beyond it new ones wait in the listen backlog (the soft open-file "
             "limit is raised to fit at startup, or N lowered to what the hard limit allows)",
     .offset = F(max_connections)},
    {.name = "max-connections-per-ip", .cmds = S, .flag = "--max-connections-per-ip", .metavar = "N",
     .env = "AMANUENSIS_MAX_CONNECTIONS_PER_IP", .type = AM_SETTING_INT, B(0, 1e6), .def = 0,
     .help = "open connections per client address (more are closed at once); 0 = unlimited (a load balancer "
             "connects from one address)",
     .offset = F(max_connections_per_ip)},
    {.name = "header-timeout", .cmds = S, .flag = "--header-timeout", .metavar = "S",
     .env = "AMANUENSIS_HEADER_TIMEOUT", .type = AM_SETTING_DOUBLE, B(0, 86400), .def = 30,
     .help = "seconds a connection has to send complete request headers from its accept (else 408 and closed) or "
             "from its previous response (keep-alive: closed); a total, not reset by each byte; 0 = no limit",
     .offset = F(header_timeout)},
    {.name = "upload-timeout", .cmds = S, .flag = "--upload-timeout", .metavar = "S",
     .env = "AMANUENSIS_UPLOAD_TIMEOUT", .type = AM_SETTING_DOUBLE, B(0, 86400), .def = 300,
     .help = "seconds a request has to send its whole body once its headers are in (else 408 and closed); "
             "0 = no limit",
     .offset = F(upload_timeout)},
    {.name = "max-header-kb", .cmds = S, .flag = "--max-header-kb", .metavar = "N",
     .env = "AMANUENSIS_MAX_HEADER_KB", .type = AM_SETTING_INT, B(1, 65536), .def = 64,
     .help = "request line and headers in KiB at most (431 above it)", .offset = F(max_header_kb)},
    {.name = "max-form-parts", .cmds = S, .flag = "--max-form-parts", .metavar = "N",
     .env = "AMANUENSIS_MAX_FORM_PARTS", .type = AM_SETTING_INT, B(1, 1e6), .def = 64,
     .help = "multipart/form-data parts per request at most (400 above it)", .offset = F(max_form_parts)},
    {.name = "upload-memory-mb", .cmds = S, .flag = "--upload-memory-mb", .metavar = "X",
     .env = "AMANUENSIS_UPLOAD_MEMORY_MB", .type = AM_SETTING_MIB, B(0, 1e7), .def = 2048,
     .help = "memory for the uploads being received, together, in MiB (429 above it); 0 = unlimited",
     .offset = F(upload_memory_bytes)},
    {.name = "audio-memory-mb", .cmds = S, .flag = "--audio-memory-mb", .metavar = "N",
     .env = "AMANUENSIS_AUDIO_MEMORY_MB", .type = AM_SETTING_INT, B(0, 1e7), .def = 2048,
     .help = "memory for the admitted requests' audio (uploads, then log-mel spectrograms of 32 KB per second "
             "at 80 mels) in MiB (429 above it); 0 = unlimited",
     .offset = F(audio_memory_mb)},
    {.name = "vad", .cmds = S, .flag = "--vad", .metavar = "on|off", .env = "AMANUENSIS_VAD",
     .type = AM_SETTING_BOOL, NOB, .def = 0,
     .help = "VAD chunking by default for requests without chunking_strategy (needs a VAD model)",
     .offset = F(vad)},
    {.name = "vad-model", .cmds = S, .flag = "--vad-model", .metavar = "PATH", .env = "AMANUENSIS_VAD_MODEL",
     .type = AM_SETTING_STRING, NOB, .def_str = VAD_MODEL_DEFAULT,
     .help = "Silero VAD ggml file (the default may be missing: then no VAD; a path given must load)",
     .offset = F(vad_model)},
    // ---- vad
    {.name = "model", .cmds = V, .flag = "--model", .short_flag = "-m", .metavar = "PATH",
     .env = "AMANUENSIS_VAD_MODEL", .type = AM_SETTING_STRING, NOB, .def_str = VAD_MODEL_DEFAULT,
     .help = "Silero VAD ggml file", .offset = F(vad_model)},
    {.name = "threshold", .cmds = V, .flag = "--threshold", .metavar = "T", .type = AM_SETTING_DOUBLE,
     .flags = AM_SETTING_MIN_EXCL | AM_SETTING_MAX_EXCL, B(0, 1), .def = 0.5,
     .help = "speech probability threshold", .offset = F(vad_threshold)},
    {.name = "min-speech-ms", .cmds = V, .flag = "--min-speech-ms", .metavar = "N", .type = AM_SETTING_INT,
     B(0, 3600000), .def = 250, .help = "drop shorter segments (ms)", .offset = F(min_speech_ms)},
    {.name = "min-silence-ms", .cmds = V, .flag = "--min-silence-ms", .metavar = "N", .type = AM_SETTING_INT,
     B(0, 3600000), .def = 100, .help = "silence that ends a segment (ms)", .offset = F(min_silence_ms)},
    {.name = "max-speech-s", .cmds = V, .flag = "--max-speech-s", .metavar = "X", .type = AM_SETTING_DOUBLE,
     .flags = AM_SETTING_INF, B(0, 86400), .def = 0, .def_doc = "0 (no limit)",
     .help = "split longer segments (seconds; only whole seconds count)", .offset = F(max_speech_s)},
    {.name = "speech-pad-ms", .cmds = V, .flag = "--speech-pad-ms", .metavar = "N", .type = AM_SETTING_INT,
     B(0, 60000), .def = 30, .help = "padding on both sides of a segment (ms)", .offset = F(speech_pad_ms)},
    {.name = "samples-overlap", .cmds = V, .flag = "--samples-overlap", .metavar = "X", .type = AM_SETTING_DOUBLE,
     B(0, 10), .def = 0.1, .help = "seconds of audio kept after each span but the last",
     .offset = F(samples_overlap_s)},
    {.name = "probs", .cmds = V, .flag = "--probs", .type = AM_SETTING_SWITCH, NOB,
     .help = "add \"probs\": the speech probability of every 512-sample frame", .offset = F(probs)},
    // ---- environment only, read by the library where it is used
    {.name = "threads", .cmds = S | T | I, .env = "AMANUENSIS_THREADS", .metavar = "N", .type = AM_SETTING_INT,
     .flags = AM_SETTING_EXTERNAL, B(1, 64), .def_doc = "all cores",
     .help = "compute threads (read by the thread pool at its start; above 64: 64)",
     .offset = AM_SETTING_NO_FIELD},
    {.name = "isa", .cmds = S | T | I, .env = "AMANUENSIS_ISA", .metavar = "ISA", .type = AM_SETTING_ENUM,
     .flags = AM_SETTING_EXTERNAL, NOB, .values = k_isas, .def_doc = "the best the CPU has",
     .help = "lower the instruction set the kernels use (never raises it)", .offset = AM_SETTING_NO_FIELD},
};

#undef F
#undef NOB
#undef B
#undef S
#undef T
#undef I
#undef V

_Static_assert(AM_ARRAY_LEN(k_table) <= AM_CONFIG_MAX_SETTINGS, "am_settings.source is too small for the table");

const am_setting *am_config_table(size_t *n) {
    if (n) *n = AM_ARRAY_LEN(k_table);
    return k_table;
}

static const char *const k_cmd_names[] = {"serve", "transcribe", "info", "vad"};

const char *am_config_cmd_name(unsigned cmd) {
    for (size_t i = 0; i < AM_ARRAY_LEN(k_cmd_names); i++)
        if (cmd == 1u << i) return k_cmd_names[i];
    return NULL;
}

unsigned am_config_cmd_from_name(const char *name) {
    for (size_t i = 0; name && i < AM_ARRAY_LEN(k_cmd_names); i++)
        if (!strcmp(name, k_cmd_names[i])) return 1u << i;
    return 0;
}

const am_setting *am_config_find(unsigned cmd, const char *name) {
    for (size_t i = 0; name && i < AM_ARRAY_LEN(k_table); i++)
        if ((!cmd || (k_table[i].cmds & cmd)) && !strcmp(k_table[i].name, name)) return &k_table[i];
    return NULL;
}

// The commands whose environment variable of row r is read.
static unsigned env_cmds(const am_setting *r) { return r->env ? (r->env_cmds ? r->env_cmds : r->cmds) : 0; }

// ---------------------------------------------------------------- text helpers
// A growable string; `oom` sticks once an allocation failed.
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)n);
    free(big);
}

// The buffer's string (never NULL unless out of memory), handed to the caller.
static char *sb_take(sbuf *b) {
    if (!b->oom && !b->p) sb_put(b, "", 0);
    if (b->oom) {
        free(b->p);
        am_set_error(AM_ENOMEM, "out of memory");
        return NULL;
    }
    return b->p;
}

static void fmt_num(char *buf, size_t size, double x) {
    if (isinf(x)) snprintf(buf, size, "%sinf", x < 0 ? "-" : "");
    else snprintf(buf, size, "%.15g", x);
}

// The bounds of a numeric row: "1..16", "> 0", ">= 0 and < 1", "0..86400 or inf"; "" when none.
static void bounds_text(const am_setting *r, char *buf, size_t size) {
    char lo[40], hi[40];
    fmt_num(lo, sizeof lo, r->min);
    fmt_num(hi, sizeof hi, r->max);
    const int has_lo = isfinite(r->min), has_hi = isfinite(r->max);
    const int lo_x = (r->flags & AM_SETTING_MIN_EXCL) != 0, hi_x = (r->flags & AM_SETTING_MAX_EXCL) != 0;
    buf[0] = 0;
    if (has_lo && has_hi && !lo_x && !hi_x) snprintf(buf, size, "%s..%s", lo, hi);
    else if (has_lo && has_hi) snprintf(buf, size, "%s %s and %s %s", lo_x ? ">" : ">=", lo, hi_x ? "<" : "<=", hi);
    else if (has_lo) snprintf(buf, size, "%s %s", lo_x ? ">" : ">=", lo);
    else if (has_hi) snprintf(buf, size, "%s %s", hi_x ? "<" : "<=", hi);
    if (r->flags & AM_SETTING_INF) {
        const size_t n = strlen(buf);
        snprintf(buf + n, size - n, "%sinf", n ? " or " : "");
    }
}

static int is_range(const am_setting *r) {
    return isfinite(r->min) && isfinite(r->max) && !(r->flags & (AM_SETTING_MIN_EXCL | AM_SETTING_MAX_EXCL));
}

static int in_bounds(const am_setting *r, double x) {
    if (isinf(x) && x > 0 && (r->flags & AM_SETTING_INF)) return 1;
    if (r->flags & AM_SETTING_MIN_EXCL ? !(x > r->min) : !(x >= r->min)) return 0;
    if (r->flags & AM_SETTING_MAX_EXCL ? !(x < r->max) : !(x <= r->max)) return 0;
    return 1;
}

// ---------------------------------------------------------------- values
static int row_index(const am_setting *r) { return (int)(r - k_table); }

static void *field(am_settings *s, const am_setting *r) { return (char *)s + r->offset; }

static void list_clear(am_strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int list_push(am_strlist *l, const char *item, size_t len) {
    char **items = realloc(l->items, (size_t)(l->n + 1) * sizeof *items);
    if (!items) return am_set_error(AM_ENOMEM, "out of memory");
    l->items = items;
    if (!(items[l->n] = strndup(item, len))) return am_set_error(AM_ENOMEM, "out of memory");
    l->n++;
    return 0;
}

static int set_string(char **dst, const char *v) {
    char *copy = v ? strdup(v) : NULL;
    if (v && !copy) return am_set_error(AM_ENOMEM, "out of memory");
    free(*dst);
    *dst = copy;
    return 0;
}

// Only spaces after the number (end points past it).
static int rest_blank(const char *end) {
    while (isspace((unsigned char)*end)) end++;
    return *end == 0;
}

static int parse_number(const am_setting *r, const char *v, double *out) {
    char *end;
    errno = 0;
    const double x = strtod(v, &end);
    if (end == v || !rest_blank(end) || isnan(x)) return -1;
    if (isinf(x) && !(x > 0 && (r->flags & AM_SETTING_INF))) return -1;
    *out = x;
    return 0;
}

// A decimal integer, or a whole number in another notation ("1e3", "250.0").
static int parse_int(const char *v, int64_t *out) {
    char *end;
    errno = 0;
    const long long n = strtoll(v, &end, 10);
    if (end != v && rest_blank(end) && !errno) {
        *out = n;
        return 0;
    }
    errno = 0;
    const double x = strtod(v, &end);
    if (end == v || !rest_blank(end) || !isfinite(x) || x != floor(x) || fabs(x) > 9007199254740992.0) return -1;
    *out = (int64_t)x;
    return 0;
}

static int bad_bounds(const am_setting *r, const char *what, const char *v) {
    char b[96];
    bounds_text(r, b, sizeof b);
    while (isspace((unsigned char)*v)) v++;
    if (is_range(r) || (r->flags & AM_SETTING_INF)) return am_set_error(AM_EINVAL, "%s: %s is outside %s", what, v, b);
    return am_set_error(AM_EINVAL, "%s: %s must be %s", what, v, b);
}

static int bad_syntax(const am_setting *r, const char *what, const char *v, const char *kind) {
    char b[96];
    bounds_text(r, b, sizeof b);
    return am_set_error(AM_EINVAL, "%s: '%s' is not %s%s%s%s", what, v, kind, *b ? " (" : "", b, *b ? ")" : "");
}

static int parse_bool(const char *v, int *out) {
    while (isspace((unsigned char)*v)) v++;
    size_t n = strlen(v);
    while (n > 0 && isspace((unsigned char)v[n - 1])) n--;
    static const char *const on[] = {"on", "true", "yes", "1"}, *const off[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < AM_ARRAY_LEN(on); i++) {
        if (strlen(on[i]) == n && !strncasecmp(v, on[i], n)) return *out = 1, 0;
        if (strlen(off[i]) == n && !strncasecmp(v, off[i], n)) return *out = 0, 0;
    }
    return -1;
}

// "a, b, c" (the allowed values of an enum), with `sep`.
static void join_values(sbuf *b, const char *const *values, const char *sep, const char *quote) {
    for (int i = 0; values[i]; i++) {
        if (i) sb_str(b, sep);
        sb_str(b, quote);
        sb_str(b, values[i]);
        sb_str(b, quote);
    }
}

static int set_list(am_settings *s, const am_setting *r, const char *what, const char *v, am_config_source src) {
    am_strlist *l = field(s, r);
    if (src == AM_SRC_FLAG) { // the first flag replaces the environment's list
        if (s->source[row_index(r)] != AM_SRC_FLAG) list_clear(l);
        if (!*v) return am_set_error(AM_EINVAL, "%s must not be empty", what);
        return list_push(l, v, strlen(v));
    }
    list_clear(l);
    for (const char *p = v; *p;) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        const char *a = p;
        while (a < e && *a == ' ') a++;
        const char *z = e;
        while (z > a && z[-1] == ' ') z--;
        int rc;
        if (z > a && (rc = list_push(l, a, (size_t)(z - a)))) return rc;
        p = comma ? comma + 1 : e;
    }
    return 0;
}

int am_config_set(am_settings *s, const am_setting *r, const char *what, const char *v, am_config_source src) {
    if (!s || !r || row_index(r) < 0 || (size_t)row_index(r) >= AM_ARRAY_LEN(k_table))
        return am_set_error(AM_EINVAL, "am_config_set: not a row of the table");
    if (!what) what = r->flag ? r->flag : r->env;
    if (r->flags & AM_SETTING_EXTERNAL) return am_set_error(AM_EINVAL, "%s is read where it is used", what);
    if (r->type != AM_SETTING_SWITCH && !v) return am_set_error(AM_EINVAL, "%s needs a value", what);
    double x;
    int64_t n;
    int rc = 0;
    switch (r->type) {
    case AM_SETTING_SWITCH: *(int *)field(s, r) = !(int)r->def; break;
    case AM_SETTING_BOOL:
        if (parse_bool(v, (int *)field(s, r)))
            return am_set_error(AM_EINVAL, "%s: '%s' is not on or off (or true/false, yes/no, 1/0)", what, v);
        break;
    case AM_SETTING_INT:
        if (parse_int(v, &n)) return bad_syntax(r, what, v, "an integer");
        if (!in_bounds(r, (double)n)) return bad_bounds(r, what, v);
        *(int64_t *)field(s, r) = n;
        break;
    case AM_SETTING_DOUBLE:
    case AM_SETTING_MIB:
        if (parse_number(r, v, &x)) return bad_syntax(r, what, v, "a number");
        if (!in_bounds(r, x)) return bad_bounds(r, what, v);
        if (r->type == AM_SETTING_DOUBLE) *(double *)field(s, r) = x;
        else *(size_t *)field(s, r) = (size_t)ceil(x * 1048576.0);
        break;
    case AM_SETTING_STRING: rc = set_string((char **)field(s, r), v); break;
    case AM_SETTING_ENUM: {
        int k = 0;
        while (r->values[k] && strcmp(r->values[k], v)) k++;
        if (!r->values[k]) {
            sbuf b = {0};
            join_values(&b, r->values, ", ", "");
            rc = am_set_error(AM_EINVAL, "%s: '%s' is not one of %s", what, v, b.p ? b.p : "");
            free(b.p);
            return rc;
        }
        *(int *)field(s, r) = k;
        break;
    }
    case AM_SETTING_LIST: rc = set_list(s, r, what, v, src); break;
    }
    if (rc == 0) s->source[row_index(r)] = (unsigned char)src;
    return rc;
}

int am_config_init(am_settings *s, unsigned cmd) {
    if (!s) return am_set_error(AM_EINVAL, "am_config_init: NULL settings");
    memset(s, 0, sizeof *s);
    s->cmd = cmd;
    if (!am_config_cmd_name(cmd)) return am_set_error(AM_EINVAL, "am_config_init: %u is not one command", cmd);
    // every row's default (also those of other commands: their fields then read sensibly);
    // rows sharing a field (vad_model) agree on the default
    for (size_t i = 0; i < AM_ARRAY_LEN(k_table); i++) {
        const am_setting *r = &k_table[i];
        if (r->offset == AM_SETTING_NO_FIELD) continue;
        void *f = field(s, r);
        switch (r->type) {
        case AM_SETTING_SWITCH:
        case AM_SETTING_BOOL:
        case AM_SETTING_ENUM: *(int *)f = (int)r->def; break;
        case AM_SETTING_INT: *(int64_t *)f = (int64_t)r->def; break;
        case AM_SETTING_DOUBLE: *(double *)f = r->def; break;
        case AM_SETTING_MIB: *(size_t *)f = (size_t)ceil(r->def * 1048576.0); break;
        case AM_SETTING_STRING:
            if (set_string((char **)f, r->def_str)) return AM_ENOMEM;
            break;
        case AM_SETTING_LIST: break;
        }
    }
    return 0;
}

void am_config_free(am_settings *s) {
    if (!s) return;
    for (size_t i = 0; i < AM_ARRAY_LEN(k_table); i++) {
        const am_setting *r = &k_table[i];
        if (r->offset == AM_SETTING_NO_FIELD) continue;
        if (r->type == AM_SETTING_STRING) {
            char **p = field(s, r);
            free(*p);
            *p = NULL;
        } else if (r->type == AM_SETTING_LIST) {
            list_clear(field(s, r));
        }
    }
    free(s->args);
    s->args = NULL;
    s->n_args = 0;
}

// ---------------------------------------------------------------- environment and arguments
int am_config_apply_env(am_settings *s) {
    for (size_t i = 0; i < AM_ARRAY_LEN(k_table); i++) {
        const am_setting *r = &k_table[i];
        if (!(env_cmds(r) & s->cmd) || (r->flags & AM_SETTING_EXTERNAL) || s->source[i] == AM_SRC_FLAG) continue;
        const char *v = getenv(r->env);
        if (!v || !*v) continue;
        const int rc = am_config_set(s, r, r->env, v, AM_SRC_ENV);
        if (rc) return rc;
    }
    return 0;
}

// The row whose long or short flag is a[0..len) among the rows of cmds.
static const am_setting *find_flag(unsigned cmds, const char *a, size_t len) {
    for (size_t i = 0; i < AM_ARRAY_LEN(k_table); i++) {
        const am_setting *r = &k_table[i];
        if (!(r->cmds & cmds)) continue;
        if ((r->flag && strlen(r->flag) == len && !strncmp(r->flag, a, len)) ||
            (r->short_flag && strlen(r->short_flag) == len && !strncmp(r->short_flag, a, len)))
            return r;
    }
    return NULL;
}

static void cmds_text(sbuf *b, unsigned cmds) {
    int k = 0;
    for (size_t i = 0; i < AM_ARRAY_LEN(k_cmd_names); i++)
        if (cmds & (1u << i)) {
            if (k++) sb_str(b, ", ");
            sb_str(b, k_cmd_names[i]);
        }
}

static int unknown_option(const am_settings *s, const char *a, size_t len) {
    const char *cmd = am_config_cmd_name(s->cmd);
    const am_setting *other = find_flag(AM_CMD_ALL, a, len);
    if (!other)
        return am_set_error(AM_EINVAL, "%s: unknown option '%.*s' (see amanuensis %s --help)", cmd, (int)len, a, cmd);
    sbuf b = {0};
    cmds_text(&b, other->cmds);
    const int rc = am_set_error(AM_EINVAL, "%s: %.*s is not an option of %s (only of %s)", cmd, (int)len, a, cmd,
                                b.p ? b.p : "");
    free(b.p);
    return rc;
}

int am_config_parse_args(am_settings *s, int argc, char **argv) {
    int options_done = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && !strcmp(a, "--")) {
            options_done = 1;
            continue;
        }
        if (options_done || a[0] != '-' || !a[1]) { // positional
            const char **args = realloc(s->args, (size_t)(s->n_args + 1) * sizeof *args);
            if (!args) return am_set_error(AM_ENOMEM, "out of memory");
            s->args = args;
            args[s->n_args++] = a;
            continue;
        }
        const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
        const size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const am_setting *r = find_flag(s->cmd, a, len);
        if (!r) return unknown_option(s, a, len);
        if (r->type == AM_SETTING_SWITCH) {
            if (eq) return am_set_error(AM_EINVAL, "%s takes no value", r->flag);
            am_config_set(s, r, r->flag, NULL, AM_SRC_FLAG);
            continue;
        }
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!v) return am_set_error(AM_EINVAL, "%s needs a value", a);
        const int rc = am_config_set(s, r, r->flag, v, AM_SRC_FLAG);
        if (rc) return rc;
    }
    return 0;
}

int am_config_load(am_settings *s, unsigned cmd, int argc, char **argv) {
    int rc = am_config_init(s, cmd);
    if (!rc) rc = am_config_parse_args(s, argc, argv);
    if (!rc && !s->help) rc = am_config_apply_env(s);
    return rc;
}

am_config_source am_config_source_of(const am_settings *s, const char *name) {
    const am_setting *r = am_config_find(s->cmd, name);
    return r ? (am_config_source)s->source[row_index(r)] : AM_SRC_DEFAULT;
}

const char *am_config_origin(const am_settings *s, const char *name) {
    const am_setting *r = am_config_find(s->cmd, name);
    if (!r) return "";
    if (s->source[row_index(r)] == AM_SRC_ENV) return r->env;
    return r->flag ? r->flag : r->env;
}

// ---------------------------------------------------------------- documentation
static const char *type_name(const am_setting *r) {
    switch (r->type) {
    case AM_SETTING_SWITCH: return "switch";
    case AM_SETTING_BOOL: return "bool";
    case AM_SETTING_INT: return "int";
    case AM_SETTING_DOUBLE: return "number";
    case AM_SETTING_STRING: return "string";
    case AM_SETTING_ENUM: return "enum";
    case AM_SETTING_MIB: return "size (MiB)";
    case AM_SETTING_LIST: return "list";
    }
    return "?";
}

// The default as text; *literal = 1 when it is a value (not a description).
static void default_text(const am_setting *r, char *buf, size_t size, int *literal) {
    *literal = 0;
    if (r->def_doc) {
        snprintf(buf, size, "%s", r->def_doc);
        return;
    }
    *literal = 1;
    switch (r->type) {
    case AM_SETTING_SWITCH: snprintf(buf, size, "off"); break;
    case AM_SETTING_BOOL: snprintf(buf, size, "%s", r->def != 0 ? "on" : "off"); break;
    case AM_SETTING_INT:
    case AM_SETTING_DOUBLE:
    case AM_SETTING_MIB: fmt_num(buf, size, r->def); break;
    case AM_SETTING_ENUM: snprintf(buf, size, "%s", r->values[(int)r->def]); break;
    case AM_SETTING_STRING:
    case AM_SETTING_LIST:
        *literal = r->def_str != NULL;
        snprintf(buf, size, "%s", r->def_str ? r->def_str : "none");
        break;
    }
}

// The allowed values: bounds, an enum's values, a bool's spellings; "" when anything goes.
static void values_text(sbuf *b, const am_setting *r, int md) {
    char buf[96];
    switch (r->type) {
    case AM_SETTING_INT:
    case AM_SETTING_DOUBLE:
    case AM_SETTING_MIB:
        bounds_text(r, buf, sizeof buf);
        sb_str(b, *buf ? buf : "any number");
        break;
    case AM_SETTING_ENUM: join_values(b, r->values, ", ", md ? "`" : ""); break;
    case AM_SETTING_BOOL: sb_str(b, "on/off, true/false, yes/no, 1/0"); break;
    default: break;
    }
}

// One cell of the table (column 0..6) of row r; md: Markdown (code spans, escaped '|').
static void cell(sbuf *out, const am_setting *r, int col, int md) {
    sbuf b = {0};
    const char *q = md ? "`" : "";
    char buf[128];
    int literal;
    switch (col) {
    case 0:
        if (!r->flag) break;
        if (r->short_flag) sb_printf(&b, "%s%s%s, ", q, r->short_flag, q);
        sb_printf(&b, "%s%s%s%s%s", q, r->flag, r->metavar ? " " : "", r->metavar ? r->metavar : "", q);
        break;
    case 1:
        if (!r->env) break;
        sb_printf(&b, "%s%s%s", q, r->env, q);
        if (env_cmds(r) != r->cmds) {
            sb_str(&b, " (");
            cmds_text(&b, env_cmds(r));
            sb_str(&b, " only)");
        }
        break;
    case 2: sb_str(&b, type_name(r)); break;
    case 3:
        default_text(r, buf, sizeof buf, &literal);
        sb_printf(&b, "%s%s%s", literal ? q : "", buf, literal ? q : "");
        break;
    case 4: values_text(&b, r, md); break;
    case 5: cmds_text(&b, r->cmds); break;
    case 6:
        sb_str(&b, r->help);
        if (r->flags & AM_SETTING_EXTERNAL) sb_str(&b, " (environment only)");
        break;
    }
    const char *s = b.p && *b.p ? b.p : md ? "—" : "-";
    for (; *s; s++) {
        if (md && *s == '|') sb_put(out, "\\", 1);
        sb_put(out, s, 1);
    }
    if (b.oom) out->oom = 1;
    free(b.p);
}

static const char *const k_columns[] = {"Setting (flag)", "Env var", "Type", "Default",
                                        "Bounds/values", "Commands", "Description"};
enum { N_COLUMNS = 7 };

char *am_config_markdown(void) {
    sbuf b = {0};
    sb_str(&b, "|");
    for (int c = 0; c < N_COLUMNS; c++) sb_printf(&b, " %s |", k_columns[c]);
    sb_str(&b, "\n|");
    for (int c = 0; c < N_COLUMNS; c++) sb_str(&b, "---|");
    sb_str(&b, "\n");
    for (size_t i = 0; i < AM_ARRAY_LEN(k_table); i++) {
        sb_str(&b, "|");
        for (int c = 0; c < N_COLUMNS; c++) {
            sb_str(&b, " ");
            cell(&b, &k_table[i], c, 1);
            sb_str(&b, " |");
        }
        sb_str(&b, "\n");
    }
    return sb_take(&b);
}

char *am_config_text(void) {
    enum { N = AM_ARRAY_LEN(k_table) };
    sbuf cells[N][N_COLUMNS - 1];
    size_t width[N_COLUMNS - 1];
    memset(cells, 0, sizeof cells);
    for (int c = 0; c < N_COLUMNS - 1; c++) width[c] = strlen(k_columns[c]);
    for (size_t i = 0; i < N; i++)
        for (int c = 0; c < N_COLUMNS - 1; c++) {
            cell(&cells[i][c], &k_table[i], c, 0);
            if (cells[i][c].n > width[c]) width[c] = cells[i][c].n;
        }
    sbuf b = {0};
    for (int c = 0; c < N_COLUMNS - 1; c++) sb_printf(&b, "%-*s  ", (int)width[c], k_columns[c]);
    sb_printf(&b, "%s\n", k_columns[N_COLUMNS - 1]);
    for (size_t i = 0; i < N; i++) {
        for (int c = 0; c < N_COLUMNS - 1; c++) {
            const char *t = cells[i][c].p ? cells[i][c].p : "";
            sb_str(&b, t);
            for (size_t k = strlen(t); k < width[c] + 2; k++) sb_put(&b, " ", 1);
            b.oom |= cells[i][c].oom;
            free(cells[i][c].p);
        }
        cell(&b, &k_table[i], N_COLUMNS - 1, 0);
        sb_str(&b, "\n");
    }
    return sb_take(&b);
}

// Append `text` word by word to b, breaking lines at `width` columns with
// `indent` spaces on every new line; *col is the current column.
static void wrap(sbuf *b, const char *text, int indent, int width, int *col) {
    for (const char *p = text; *p;) {
        while (*p == ' ') p++;
        const char *e = p;
        while (*e && *e != ' ') e++;
        if (e == p) break;
        const int len = (int)(e - p);
        if (*col > indent && *col + 1 + len > width) {
            sb_printf(b, "\n%*s", indent, "");
            *col = indent;
        } else if (*col > indent) {
            sb_str(b, " ");
            (*col)++;
        }
        sb_put(b, p, (size_t)len);
        *col += len;
        p = e;
    }
}

int am_config_usage(FILE *f, unsigned cmd, int indent) {
    enum { WIDTH = 100, HELP_COL = 28 };
    sbuf b = {0};
    for (size_t i = 0; i < AM_ARRAY_LEN(k_table); i++) {
        const am_setting *r = &k_table[i];
        if (!(r->cmds & cmd)) continue;
        const int help_col = indent + HELP_COL;
        // the left part: -m, --model PATH  /  AMANUENSIS_THREADS=N
        const size_t start = b.n;
        sb_printf(&b, "%*s", indent, "");
        if (r->short_flag) sb_printf(&b, "%s, ", r->short_flag);
        if (r->flag) sb_printf(&b, "%s%s%s", r->flag, r->metavar ? " " : "", r->metavar ? r->metavar : "");
        else sb_printf(&b, "$%s=%s", r->env, r->metavar ? r->metavar : "");
        int col = (int)(b.n - start);
        if (col + 2 > help_col) {
            sb_printf(&b, "\n%*s", help_col, "");
        } else {
            sb_printf(&b, "%*s", help_col - col, "");
        }
        col = help_col;
        // the right part: help (values; default; $VARIABLE)
        sbuf d = {0};
        if (r->type == AM_SETTING_ENUM && !(r->metavar && strchr(r->metavar, '|'))) {
            join_values(&d, r->values, ", ", "");
        } else if (r->type != AM_SETTING_BOOL) {
            values_text(&d, r, 0);
        }
        char def[128];
        int literal;
        default_text(r, def, sizeof def, &literal);
        if (r->type != AM_SETTING_SWITCH && (literal || r->def_doc))
            sb_printf(&d, "%sdefault %s", d.n ? "; " : "", def);
        if ((env_cmds(r) & cmd) && r->flag) sb_printf(&d, "%s$%s", d.n ? "; " : "", r->env);
        wrap(&b, r->help, help_col, WIDTH, &col);
        if (d.n) {
            sbuf t = {0};
            sb_printf(&t, "(%s)", d.p);
            wrap(&b, t.p ? t.p : "", help_col, WIDTH, &col);
            b.oom |= t.oom;
            free(t.p);
        }
        b.oom |= d.oom;
        free(d.p);
        sb_str(&b, "\n");
    }
    char *text = sb_take(&b);
    if (!text) return AM_ENOMEM;
    const int rc = fputs(text, f) < 0 ? am_set_error(AM_EIO, "cannot write the usage text") : 0;
    free(text);
    return rc;
}
