// am_config.h — the settings table of the command line (in the style of
// redis's config.c): every user-visible setting of `serve`, `transcribe`,
// `info` and `vad` is one row of a static table giving its name, the commands
// it applies to, its long flag (and short alias), its environment variable,
// its type, bounds, default, a one-line help and the field of am_settings it
// is stored in. The same table drives the argument parser, the environment,
// the `--help` text (am_config_usage) and README.md's configuration table
// (am_config_markdown, printed by `amanuensis config --markdown`).
//
// Precedence: a flag overrides its environment variable, which overrides the
// default. An environment variable that is set but empty counts as unset. Bad
// values are AM_EINVAL with a message naming the flag or variable and its
// bounds or allowed values ("--beam-size: 0 is outside 1..16"); the caller
// prints it and exits (status 2 for option errors). Cross-field checks
// (patience needs a beam size, alignment heads against the model) belong to
// the commands, which learn where a value came from with am_config_origin.
//
// Ownership: the table is static and immutable. An am_settings owns copies of
// every string and list it holds and its array of positional arguments (the
// arguments themselves are borrowed from argv); release them with
// am_config_free. Strings returned by am_config_markdown / am_config_text are
// malloc'd for the caller. Thread-safety: the table and the query functions
// may be used from any thread; one am_settings must not be used by two
// threads at once; am_config_apply_env / am_config_load read the environment
// with getenv (call them before other threads may setenv).
#ifndef AM_CONFIG_H
#define AM_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "am_common.h"

// ---------------------------------------------------------------- commands
// The commands a setting applies to (a bitmask in am_setting.cmds).
enum {
    AM_CMD_SERVE = 1u << 0,
    AM_CMD_TRANSCRIBE = 1u << 1,
    AM_CMD_INFO = 1u << 2,
    AM_CMD_VAD = 1u << 3,
    AM_CMD_ALL = (1u << 4) - 1,
};

// "serve", "transcribe", "info", "vad" for one AM_CMD_* bit; NULL otherwise.
const char *am_config_cmd_name(unsigned cmd);
// The AM_CMD_* bit of a command name; 0 when unknown.
unsigned am_config_cmd_from_name(const char *name);

// ---------------------------------------------------------------- types
typedef enum {
    AM_SETTING_SWITCH, // a flag without a value (--word-timestamps): stores !default in an int
    AM_SETTING_BOOL,   // on|off, true|false, yes|no, 1|0 (any case) -> int 1 / 0
    AM_SETTING_INT,    // a decimal integer (or a whole number such as 1e3) within the bounds -> int64_t
    AM_SETTING_DOUBLE, // a finite number within the bounds (+inf too with AM_SETTING_INF) -> double
    AM_SETTING_STRING, // any text -> char * (a copy; NULL when unset)
    AM_SETTING_ENUM,   // one of the row's values (exact match) -> int index into values
    AM_SETTING_MIB,    // a size in MiB (fractions allowed) within the bounds -> size_t bytes (rounded up)
    AM_SETTING_LIST,   // a repeatable flag; the environment variable is a comma-separated list (items
                       // trimmed of spaces, empty ones skipped) -> am_strlist
} am_setting_type;

// am_setting.flags
#define AM_SETTING_MIN_EXCL 1u // the lower bound is exclusive (x > min)
#define AM_SETTING_MAX_EXCL 2u // the upper bound is exclusive (x < max)
#define AM_SETTING_INF 4u      // AM_SETTING_DOUBLE: "inf" is accepted too (beyond max)
#define AM_SETTING_EXTERNAL 8u // environment only, read by the library module that uses it
                               // (AMANUENSIS_THREADS, AMANUENSIS_ISA): listed and documented, never parsed here

// am_setting.offset of a row without a field (AM_SETTING_EXTERNAL).
#define AM_SETTING_NO_FIELD ((size_t)-1)

// Where a value came from.
typedef enum { AM_SRC_DEFAULT = 0, AM_SRC_ENV = 1, AM_SRC_FLAG = 2 } am_config_source;

// A list of strings (AM_SETTING_LIST), each a malloc'd copy.
typedef struct {
    char **items; // n strings
    int n;        // entries
} am_strlist;

// One row of the table.
typedef struct {
    const char *name;       // unique within each command: the long flag without "--" ("beam-size")
    unsigned cmds;          // AM_CMD_* bits: the commands that take the flag
    const char *flag;       // long flag ("--beam-size"); NULL = environment only
    const char *short_flag; // short alias ("-m"); NULL = none
    const char *metavar;    // the value's name in the usage text ("N", "PATH"); NULL for switches
    const char *env;        // environment variable; NULL = none
    unsigned env_cmds;      // the commands that read env (a subset of cmds); 0 = all of cmds
    am_setting_type type;
    unsigned flags;         // AM_SETTING_MIN_EXCL, ...
    double min, max;        // bounds of INT, DOUBLE and MIB (MIB: in MiB); -INFINITY / INFINITY = none
    const char *const *values; // ENUM: the allowed values, NULL-terminated
    double def;             // default of every type but STRING and LIST (ENUM: the index; MIB: in MiB)
    const char *def_str;    // default of a STRING; NULL = unset
    const char *def_doc;    // the default as the docs show it when the value alone says too little
                            // ("greedy"); NULL = the value
    const char *help;       // one line
    size_t offset;          // offsetof(am_settings, field) of the value; AM_SETTING_NO_FIELD for EXTERNAL
} am_setting;

// The whole table; *n gets the number of rows.
const am_setting *am_config_table(size_t *n);
// The row of `name` for command cmd (one AM_CMD_* bit; 0 = any command); NULL when none.
const am_setting *am_config_find(unsigned cmd, const char *name);

// ---------------------------------------------------------------- values
#define AM_CONFIG_MAX_SETTINGS 64 // rows the table may have (am_settings.source)

// The values of every setting for one command, with the defaults of the table
// (each field's comment: flag, unit, default). Fields of settings the command
// does not take keep their defaults.
typedef struct {
    unsigned cmd;           // the command (one AM_CMD_* bit)
    // every command
    int help;               // -h, --help: print the command's usage and exit. Default 0.
    int quiet;              // -q, --quiet: less on stderr. Default 0.
    char *model;            // -m, --model / AMANUENSIS_MODEL: the Whisper ggml model file. Default NULL.
    // serve and transcribe
    int kv_type;            // --kv-type / AMANUENSIS_KV_TYPE: index in {"f32", "f16"}. Default 0 (f32).
    int64_t beam_size;      // --beam-size (/ AMANUENSIS_BEAM_SIZE for serve): beams, 1..16; 0 = greedy. Default 0.
    int64_t best_of;        // --best-of (/ AMANUENSIS_BEST_OF): candidates sampled, 1..16; 0 = 1. Default 0.
    double patience;        // --patience (/ AMANUENSIS_PATIENCE): beam search patience, > 0. Default 1.0.
    double length_penalty;  // --length-penalty (/ AMANUENSIS_LENGTH_PENALTY): 0..1; NAN = sum logprob /
                            // length. Default NAN.
    char *alignment_heads;  // --alignment-heads (/ AMANUENSIS_ALIGNMENT_HEADS): a checkpoint name or
                            // "L,H;L,H;..."; NULL = the model's. Default NULL.
    // transcribe
    int response_format;    // -f, --response-format: index in {json, text, srt, vtt, verbose_json}. Default 0.
    char *language;         // -l, --language: code or name; "auto" = detect. Default "auto".
    int task;               // --task: index in {transcribe, translate}. Default 0.
    char *prompt;           // --prompt: initial prompt. Default NULL.
    double temperature;     // --temperature: the first temperature, 0..1. Default 0.
    double temperature_inc; // --temperature-inc: fallback step, 0..1 (0 = no fallback). Default 0.2.
    double compression_ratio_threshold; // --compression-ratio-threshold. Default 2.4.
    double logprob_threshold;           // --logprob-threshold. Default -1.0.
    double no_speech_threshold;         // --no-speech-threshold. Default 0.6.
    int condition_on_previous_text;     // --no-condition-on-previous-text sets 0. Default 1.
    int without_timestamps; // --no-timestamps. Default 0.
    int word_timestamps;    // --word-timestamps. Default 0.
    int64_t seed;           // --seed: sampling seed, >= 0. Default 0.
    int64_t batch;          // --batch: windows per encoder batch, 1..64. Default 8.
    // serve
    char *host;             // --host: bind address. Default "127.0.0.1".
    int64_t port;           // --port: TCP port, 0..65535 (0 = ephemeral). Default 9050.
    int batching;           // --batching / ENABLE_BATCHING: cross-request batching. Default 1.
    int64_t max_batch_size; // --max-batch-size / BATCH_MAX_SIZE: windows per encoder batch, 1..256. Default 8.
    int64_t max_wait_ms;    // --max-wait-ms / BATCH_MAX_WAIT_MS: batch collection wait, ms, 0..60000. Default 50.
    int64_t max_windows;    // --max-windows: windows decoding at once, 0..4096 (0 = as many as fit). Default 0.
    int64_t max_queue;      // --max-queue: requests in flight before 429, 1..1000000. Default 64.
    size_t max_upload_bytes; // --max-upload-mb / AMANUENSIS_MAX_UPLOAD_MB: upload limit, bytes (given in
                            // MiB, > 0..1000000). Default 25 MiB.
    double timeout;         // --timeout: per-request deadline, seconds, > 0..1e7. Default 60.
    double drain_timeout;   // --drain-timeout: shutdown wait for in-flight work, seconds, 0..1e7. Default 30.
    double drain_grace;     // --drain-grace / AMANUENSIS_DRAIN_GRACE: seconds, 0..100000. Default 0.
    am_strlist api_keys;    // --api-key (repeatable) / AMANUENSIS_API_KEYS (comma-separated). Default none.
    int public_metrics;     // --public-metrics / AMANUENSIS_PUBLIC_METRICS: bool. Default 0.
    int64_t threads_http;   // --threads-http: HTTP polling threads, 1..64. Default 2.
    int64_t max_connections; // --max-connections / AMANUENSIS_MAX_CONNECTIONS: open connections, 1..1e6. Default
                            // 1024.
    int64_t max_connections_per_ip; // --max-connections-per-ip / AMANUENSIS_MAX_CONNECTIONS_PER_IP: open
                            // connections per client address, 0..1e6 (0 = unlimited). Default 0.
    double header_timeout;  // --header-timeout / AMANUENSIS_HEADER_TIMEOUT: seconds to send complete request
                            // headers, 0..86400 (0 = no limit). Default 30.
    double upload_timeout;  // --upload-timeout / AMANUENSIS_UPLOAD_TIMEOUT: seconds to send a request body,
                            // 0..86400 (0 = no limit). Default 300.
    int64_t max_header_kb;  // --max-header-kb / AMANUENSIS_MAX_HEADER_KB: request line + headers, KiB,
                            // 1..65536. Default 64.
    int64_t max_form_parts; // --max-form-parts / AMANUENSIS_MAX_FORM_PARTS: multipart parts per request,
                            // 1..1e6. Default 64.
    size_t upload_memory_bytes; // --upload-memory-mb / AMANUENSIS_UPLOAD_MEMORY_MB: uploads being received,
                            // together, bytes (given in MiB, 0..1e7; 0 = unlimited). Default 2048 MiB.
    int64_t audio_memory_mb; // --audio-memory-mb / AMANUENSIS_AUDIO_MEMORY_MB: admitted requests' audio, MiB,
                            // 0..1e7 (0 = unlimited). Default 2048.
    int vad;                // --vad / AMANUENSIS_VAD: VAD chunking by default. Default 0.
    // serve (--vad-model) and vad (-m, --model)
    char *vad_model;        // AMANUENSIS_VAD_MODEL: the Silero VAD ggml file. Default
                            // "models/ggml-silero-v6.2.0.bin".
    // vad
    double vad_threshold;   // --threshold: speech probability threshold, (0, 1). Default 0.5.
    int64_t min_speech_ms;  // --min-speech-ms: ms, 0..3600000. Default 250.
    int64_t min_silence_ms; // --min-silence-ms: ms, 0..3600000. Default 100.
    double max_speech_s;    // --max-speech-s: seconds, 0..86400 or inf (0 = no limit). Default 0.
    int64_t speech_pad_ms;  // --speech-pad-ms: ms, 0..60000. Default 30.
    double samples_overlap_s; // --samples-overlap: seconds, 0..10. Default 0.1.
    int probs;              // --probs: print every frame's probability. Default 0.
    // where each value came from: source[i] for row i of am_config_table
    unsigned char source[AM_CONFIG_MAX_SETTINGS];
    // the arguments that are not options, in order (borrowed from argv)
    const char **args;      // n_args entries (malloc'd array)
    int n_args;
} am_settings;

// The table's defaults for command cmd (one AM_CMD_* bit). 0, or AM_EINVAL
// (not one command) / AM_ENOMEM; s is always safe to am_config_free.
int am_config_init(am_settings *s, unsigned cmd);
void am_config_free(am_settings *s);

// Set one row's value from text (as a flag or variable of that name would):
// 0, or AM_EINVAL with a message naming `what` ("--beam-size",
// "AMANUENSIS_BEAM_SIZE") and the bounds, or AM_ENOMEM. A LIST given as a
// flag appends one item (the first flag replaces what the environment gave);
// given as an environment variable it replaces the list with the
// comma-separated items. SWITCH ignores value.
int am_config_set(am_settings *s, const am_setting *row, const char *what, const char *value,
                  am_config_source src);

// Every environment variable of s->cmd's rows whose value did not come from a
// flag: 0, or the first error (message names the variable).
int am_config_apply_env(am_settings *s);

// Options and positional arguments of argv[0..argc) (without the program and
// command names): "--flag VALUE", "--flag=VALUE", "-m VALUE", switches, "--"
// ends the options; "-" and anything not starting with '-' is positional.
// 0, or AM_EINVAL: an unknown option or one of another command, a missing
// value ("--beam-size needs a value"), a bad value.
int am_config_parse_args(am_settings *s, int argc, char **argv);

// am_config_init, am_config_parse_args, then (unless --help was given)
// am_config_apply_env: the effective settings of cmd. On error s is still
// safe to am_config_free.
int am_config_load(am_settings *s, unsigned cmd, int argc, char **argv);

// Where the value of row `name` of s->cmd came from (AM_SRC_DEFAULT for an unknown name).
am_config_source am_config_source_of(const am_settings *s, const char *name);
// How to name the value of row `name` in a message: the long flag when a flag
// set it, the variable when the environment did, else the long flag (or the
// variable of an environment-only row). "" for an unknown name.
const char *am_config_origin(const am_settings *s, const char *name);

// ---------------------------------------------------------------- documentation
// The option lines of command cmd's usage (flag, value, help, bounds, default,
// variable; wrapped at 100 columns), indented by `indent` spaces. 0, or AM_EIO.
int am_config_usage(FILE *f, unsigned cmd, int indent);

// The Markdown table of every row (README.md, between <!-- settings:begin -->
// and <!-- settings:end -->): a header line, a separator and one line per row,
// each ending in '\n'. Columns: Setting (flag), Env var, Type, Default,
// Bounds/values, Commands, Description. malloc'd; NULL on AM_ENOMEM.
char *am_config_markdown(void);

// The same table as aligned plain text (`amanuensis config`). malloc'd; NULL on AM_ENOMEM.
char *am_config_text(void);

#endif // AM_CONFIG_H
