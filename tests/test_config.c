// test_config.c — the settings table (am_config): the table's own
// consistency, the defaults, parsing of every type with its bounds and the
// exact error messages, flag over environment over default, unknown and
// misplaced options, repeatable lists, enums, positional arguments, the usage
// text, and README.md's configuration table against the generated Markdown.
#include <stddef.h>

#include "am_config.h"
#include "am_test.h"

// Every environment variable of the table, unset so the host's environment cannot leak in.
static void clear_env(void) {
    size_t n;
    const am_setting *t = am_config_table(&n);
    for (size_t i = 0; i < n; i++)
        if (t[i].env) unsetenv(t[i].env);
}

// am_config_load on a NULL-terminated argument list; returns its result and
// leaves the error message in am_last_error().
static int load(am_settings *s, unsigned cmd, const char *const *args) {
    int argc = 0;
    while (args && args[argc]) argc++;
    return am_config_load(s, cmd, argc, (char **)args);
}

// Loading args for cmd fails with AM_EINVAL and exactly `msg`.
static void expect_error(unsigned cmd, const char *const *args, const char *msg) {
    am_settings s;
    const int rc = load(&s, cmd, args);
    CHECKF(rc == AM_EINVAL && !strcmp(am_last_error(), msg), "%s %s: rc %d, message '%s', want '%s'",
           am_config_cmd_name(cmd), args[0] ? args[0] : "(environment)", rc, am_last_error(), msg);
    am_config_free(&s);
}

// ---------------------------------------------------------------- the table itself
static void test_table(void) {
    size_t n;
    const am_setting *t = am_config_table(&n);
    CHECK(n > 40 && n <= AM_CONFIG_MAX_SETTINGS);
    for (size_t i = 0; i < n; i++) {
        const am_setting *r = &t[i];
        CHECKF(r->name && *r->name && r->help && *r->help, "row %zu: no name or help", i);
        CHECKF(r->cmds && !(r->cmds & ~(unsigned)AM_CMD_ALL), "%s: commands %#x", r->name, r->cmds);
        CHECKF(r->flag || r->env, "%s: neither a flag nor a variable", r->name);
        CHECKF(!r->flag || !strncmp(r->flag, "--", 2), "%s: long flag '%s'", r->name, r->flag);
        CHECKF(!r->short_flag || (r->short_flag[0] == '-' && r->short_flag[1] && !r->short_flag[2]),
               "%s: short flag", r->name);
        CHECKF(!r->env_cmds || (r->env && !(r->env_cmds & ~r->cmds)), "%s: env_cmds not within cmds", r->name);
        CHECKF(r->type == AM_SETTING_SWITCH || r->metavar, "%s: a value without a metavar", r->name);
        CHECKF(r->type != AM_SETTING_ENUM || (r->values && r->values[0]), "%s: an enum without values", r->name);
        if (r->type == AM_SETTING_ENUM && !r->def_doc) {
            int k = 0;
            while (r->values[k]) k++;
            CHECKF(r->def >= 0 && r->def < k, "%s: default index %g", r->name, r->def);
        }
        if (r->flags & AM_SETTING_EXTERNAL) CHECKF(!r->flag && r->offset == AM_SETTING_NO_FIELD, "%s", r->name);
        else CHECKF(r->offset < sizeof(am_settings), "%s: offset %zu", r->name, r->offset);
        CHECKF(am_config_find(0, r->name) != NULL, "%s: not found", r->name);
        for (unsigned c = 1; c <= AM_CMD_INFO << 1; c <<= 1) {
            if (!(r->cmds & c)) continue;
            CHECKF(am_config_find(c, r->name) == r, "%s: am_config_find(%s) finds another row", r->name,
                   am_config_cmd_name(c));
            for (size_t j = i + 1; j < n; j++) { // names, flags and short flags unique within a command
                const am_setting *q = &t[j];
                if (!(q->cmds & c)) continue;
                CHECKF(strcmp(r->name, q->name), "%s: name twice in %s", r->name, am_config_cmd_name(c));
                CHECKF(!r->flag || !q->flag || strcmp(r->flag, q->flag), "%s: flag twice", r->flag);
                CHECKF(!r->short_flag || !q->short_flag || strcmp(r->short_flag, q->short_flag), "%s twice",
                       r->short_flag);
            }
        }
    }
    CHECK(am_config_cmd_from_name("serve") == AM_CMD_SERVE && am_config_cmd_from_name("vad") == AM_CMD_VAD);
    CHECK(am_config_cmd_from_name("config") == 0 && am_config_cmd_name(3) == NULL);
    CHECK(am_config_find(AM_CMD_SERVE, "seed") == NULL && am_config_find(AM_CMD_TRANSCRIBE, "seed") != NULL);
    // the two "model" rows: the Whisper model, and vad's VAD model
    CHECK(!strcmp(am_config_find(AM_CMD_SERVE, "model")->env, "AMANUENSIS_MODEL"));
    CHECK(!strcmp(am_config_find(AM_CMD_VAD, "model")->env, "AMANUENSIS_VAD_MODEL"));
    am_settings s;
    CHECK(am_config_init(&s, AM_CMD_SERVE | AM_CMD_VAD) == AM_EINVAL);
    am_config_free(&s);
}

// ---------------------------------------------------------------- defaults
static void test_defaults(void) {
    am_settings s;
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){NULL}) == 0);
    CHECK(s.cmd == AM_CMD_SERVE && s.help == 0 && s.quiet == 0 && s.model == NULL);
    CHECK(!strcmp(s.host, "127.0.0.1") && s.port == 9050 && s.batching == 1 && s.max_batch_size == 8);
    CHECK(s.max_wait_ms == 50 && s.max_windows == 0 && s.max_queue == 64 && s.threads_http == 2);
    CHECK(s.max_upload_bytes == (size_t)25 << 20 && s.timeout == 60 && s.drain_timeout == 30 && s.drain_grace == 0);
    CHECK(s.api_keys.n == 0 && s.api_keys.items == NULL && s.kv_type == 0 && s.vad == 0);
    CHECK(s.vad_model && !strcmp(s.vad_model, "models/ggml-silero-v6.2.0.bin"));
    CHECK(s.beam_size == 0 && s.best_of == 0 && s.patience == 1.0 && isnan(s.length_penalty));
    CHECK(s.alignment_heads == NULL && s.n_args == 0);
    for (size_t i = 0; i < AM_CONFIG_MAX_SETTINGS; i++) CHECK(s.source[i] == AM_SRC_DEFAULT);
    CHECK(am_config_source_of(&s, "beam-size") == AM_SRC_DEFAULT);
    CHECK(!strcmp(am_config_origin(&s, "beam-size"), "--beam-size") && !strcmp(am_config_origin(&s, "nope"), ""));
    CHECK(!strcmp(am_config_origin(&s, "threads"), "AMANUENSIS_THREADS"));
    am_config_free(&s);
    CHECK(load(&s, AM_CMD_TRANSCRIBE, (const char *const[]){NULL}) == 0);
    CHECK(s.response_format == 0 && !strcmp(s.language, "auto") && s.task == 0 && s.prompt == NULL);
    CHECK(s.temperature == 0 && s.temperature_inc == 0.2 && s.compression_ratio_threshold == 2.4);
    CHECK(s.logprob_threshold == -1.0 && s.no_speech_threshold == 0.6 && s.condition_on_previous_text == 1);
    CHECK(s.without_timestamps == 0 && s.word_timestamps == 0 && s.seed == 0 && s.batch == 8);
    am_config_free(&s);
    CHECK(load(&s, AM_CMD_VAD, (const char *const[]){NULL}) == 0);
    CHECK(s.vad_threshold == 0.5 && s.min_speech_ms == 250 && s.min_silence_ms == 100 && s.max_speech_s == 0);
    CHECK(s.speech_pad_ms == 30 && s.samples_overlap_s == 0.1 && s.probs == 0);
    CHECK(!strcmp(s.vad_model, "models/ggml-silero-v6.2.0.bin"));
    am_config_free(&s);
}

// ---------------------------------------------------------------- each type
static void test_types(void) {
    am_settings s;
    // switch: !default
    CHECK(load(&s, AM_CMD_TRANSCRIBE,
               (const char *const[]){"--word-timestamps", "--no-condition-on-previous-text", "--no-timestamps", "-q",
                                     NULL}) == 0);
    CHECK(s.word_timestamps == 1 && s.condition_on_previous_text == 0 && s.without_timestamps == 1 && s.quiet == 1);
    CHECK(am_config_source_of(&s, "word-timestamps") == AM_SRC_FLAG);
    CHECK(am_config_source_of(&s, "seed") == AM_SRC_DEFAULT);
    am_config_free(&s);
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--quiet=1", NULL}, "--quiet takes no value");
    // bool: on/off, true/false, yes/no, 1/0, any case
    static const struct {
        const char *v;
        int want;
    } bools[] = {{"on", 1}, {"OFF", 0}, {"true", 1}, {"False", 0}, {"yes", 1}, {"no", 0}, {"1", 1}, {"0", 0}};
    for (size_t i = 0; i < AM_ARRAY_LEN(bools); i++) {
        CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){"--batching", bools[i].v, "--vad", bools[i].v, NULL}) ==
              0);
        CHECKF(s.batching == bools[i].want && s.vad == bools[i].want, "--batching %s: %d", bools[i].v, s.batching);
        am_config_free(&s);
    }
    expect_error(AM_CMD_SERVE, (const char *const[]){"--batching", "maybe", NULL},
                 "--batching: 'maybe' is not on or off (or true/false, yes/no, 1/0)");
    // int: bounds, syntax; whole numbers in other notations
    CHECK(load(&s, AM_CMD_TRANSCRIBE,
               (const char *const[]){"--beam-size", "16", "--best-of", "1", "--batch", "1e1", "--seed",
                                     "9223372036854775807", NULL}) == 0);
    CHECK(s.beam_size == 16 && s.best_of == 1 && s.batch == 10 && s.seed == INT64_MAX);
    am_config_free(&s);
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--beam-size", "0", NULL}, "--beam-size: 0 is outside 1..16");
    expect_error(AM_CMD_SERVE, (const char *const[]){"--beam-size", "17", NULL}, "--beam-size: 17 is outside 1..16");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--beam-size", "abc", NULL},
                 "--beam-size: 'abc' is not an integer (1..16)");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--best-of", "2.5", NULL},
                 "--best-of: '2.5' is not an integer (1..16)");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--seed", "-1", NULL}, "--seed: -1 must be >= 0");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--seed", "99999999999999999999", NULL},
                 "--seed: '99999999999999999999' is not an integer (>= 0)");
    expect_error(AM_CMD_SERVE, (const char *const[]){"--port", "65536", NULL}, "--port: 65536 is outside 0..65535");
    expect_error(AM_CMD_SERVE, (const char *const[]){"--max-batch-size", "", NULL},
                 "--max-batch-size: '' is not an integer (1..256)");
    // double: bounds (inclusive, exclusive, none), nan and inf, negative values after a flag
    CHECK(load(&s, AM_CMD_TRANSCRIBE,
               (const char *const[]){"--patience", "0.5", "--length-penalty", "1", "--temperature", "0",
                                     "--logprob-threshold", "-5", "--compression-ratio-threshold", "1e300",
                                     NULL}) == 0);
    CHECK(s.patience == 0.5 && s.length_penalty == 1 && s.temperature == 0 && s.logprob_threshold == -5);
    CHECK(s.compression_ratio_threshold == 1e300);
    am_config_free(&s);
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--patience", "0", NULL}, "--patience: 0 must be > 0");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--patience", "inf", NULL},
                 "--patience: 'inf' is not a number (> 0)");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--length-penalty", "1.5", NULL},
                 "--length-penalty: 1.5 is outside 0..1");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--length-penalty", "nan", NULL},
                 "--length-penalty: 'nan' is not a number (0..1)");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--temperature", "-0.1", NULL},
                 "--temperature: -0.1 is outside 0..1");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--no-speech-threshold", "x", NULL},
                 "--no-speech-threshold: 'x' is not a number");
    expect_error(AM_CMD_VAD, (const char *const[]){"--threshold", "1", NULL}, "--threshold: 1 must be > 0 and < 1");
    expect_error(AM_CMD_VAD, (const char *const[]){"--threshold", "0", NULL}, "--threshold: 0 must be > 0 and < 1");
    expect_error(AM_CMD_SERVE, (const char *const[]){"--timeout", "0", NULL},
                 "--timeout: 0 must be > 0 and <= 10000000");
    CHECK(load(&s, AM_CMD_VAD, (const char *const[]){"--max-speech-s", "inf", "--threshold", "0.25", NULL}) == 0);
    CHECK(isinf(s.max_speech_s) && s.max_speech_s > 0 && s.vad_threshold == 0.25);
    am_config_free(&s);
    expect_error(AM_CMD_VAD, (const char *const[]){"--max-speech-s", "86401", NULL},
                 "--max-speech-s: 86401 is outside 0..86400 or inf");
    expect_error(AM_CMD_VAD, (const char *const[]){"--min-speech-ms", "-1", NULL},
                 "--min-speech-ms: -1 is outside 0..3600000");
    // string: any text, also empty, also starting with '-'
    CHECK(load(&s, AM_CMD_TRANSCRIBE,
               (const char *const[]){"--prompt", "", "-l", "fr", "--alignment-heads", "1,0;1,1", NULL}) == 0);
    CHECK(s.prompt && !*s.prompt && !strcmp(s.language, "fr") && !strcmp(s.alignment_heads, "1,0;1,1"));
    am_config_free(&s);
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){"--host", "::1", "--prompt", NULL}) == AM_EINVAL);
    am_config_free(&s);
    CHECK(load(&s, AM_CMD_TRANSCRIBE, (const char *const[]){"--prompt", "-x", NULL}) == 0 && !strcmp(s.prompt, "-x"));
    am_config_free(&s);
    // enum: the index of the value; exact spelling
    CHECK(load(&s, AM_CMD_TRANSCRIBE,
               (const char *const[]){"-f", "verbose_json", "--kv-type", "f16", "--task", "translate", NULL}) == 0);
    CHECK(s.response_format == 4 && s.kv_type == 1 && s.task == 1);
    am_config_free(&s);
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--response-format", "xml", NULL},
                 "--response-format: 'xml' is not one of json, text, srt, vtt, verbose_json");
    expect_error(AM_CMD_SERVE, (const char *const[]){"--kv-type", "F16", NULL},
                 "--kv-type: 'F16' is not one of f32, f16");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--task", "summarize", NULL},
                 "--task: 'summarize' is not one of transcribe, translate");
    // size in MiB: bytes, rounded up; --flag=value
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){"--max-upload-mb", "0.5", NULL}) == 0);
    CHECK(s.max_upload_bytes == 524288);
    am_config_free(&s);
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){"--max-upload-mb=1e-9", NULL}) == 0);
    CHECK(s.max_upload_bytes == 1);
    am_config_free(&s);
    expect_error(AM_CMD_SERVE, (const char *const[]){"--max-upload-mb", "0", NULL},
                 "--max-upload-mb: 0 must be > 0 and <= 1000000");
    // flag=value for every type; a value with '=' in it
    CHECK(load(&s, AM_CMD_TRANSCRIBE, (const char *const[]){"--beam-size=3", "--prompt=a=b", "--kv-type=f16", NULL}) ==
          0);
    CHECK(s.beam_size == 3 && !strcmp(s.prompt, "a=b") && s.kv_type == 1);
    am_config_free(&s);
}

// ---------------------------------------------------------------- lists
static void test_lists(void) {
    am_settings s;
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){"--api-key", "k-one", "--api-key=k two", NULL}) == 0);
    CHECK(s.api_keys.n == 2 && !strcmp(s.api_keys.items[0], "k-one") && !strcmp(s.api_keys.items[1], "k two"));
    am_config_free(&s);
    CHECK(s.api_keys.n == 0 && s.api_keys.items == NULL);
    expect_error(AM_CMD_SERVE, (const char *const[]){"--api-key", "", NULL}, "--api-key must not be empty");
    // the variable: comma-separated, items trimmed, empty ones skipped
    setenv("AMANUENSIS_API_KEYS", " a , ,b,, c d ", 1);
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){NULL}) == 0);
    CHECK(s.api_keys.n == 3 && !strcmp(s.api_keys.items[0], "a") && !strcmp(s.api_keys.items[1], "b") &&
          !strcmp(s.api_keys.items[2], "c d"));
    CHECK(am_config_source_of(&s, "api-key") == AM_SRC_ENV);
    am_config_free(&s);
    // flags replace the variable's list (not add to it)
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){"--api-key", "x", "--api-key", "y", NULL}) == 0);
    CHECK(s.api_keys.n == 2 && !strcmp(s.api_keys.items[0], "x") && !strcmp(s.api_keys.items[1], "y"));
    am_config_free(&s);
    // am_config_set directly: the environment after a flag, then a flag again
    CHECK(am_config_init(&s, AM_CMD_SERVE) == 0);
    const am_setting *keys = am_config_find(AM_CMD_SERVE, "api-key");
    CHECK(am_config_set(&s, keys, NULL, "p,q", AM_SRC_ENV) == 0 && s.api_keys.n == 2);
    CHECK(am_config_set(&s, keys, NULL, "r", AM_SRC_FLAG) == 0 && s.api_keys.n == 1);
    CHECK(am_config_set(&s, keys, NULL, "t", AM_SRC_FLAG) == 0 && s.api_keys.n == 2);
    CHECK(am_config_set(&s, keys, NULL, ",", AM_SRC_ENV) == 0 && s.api_keys.n == 0);
    CHECK(am_config_set(&s, am_config_find(0, "threads"), NULL, "4", AM_SRC_ENV) == AM_EINVAL);
    CHECK(am_config_set(&s, am_config_find(AM_CMD_SERVE, "port"), NULL, NULL, AM_SRC_FLAG) == AM_EINVAL);
    CHECK(!strcmp(am_last_error(), "--port needs a value"));
    am_config_free(&s);
    unsetenv("AMANUENSIS_API_KEYS");
}

// ---------------------------------------------------------------- flag > environment > default
static void test_precedence(void) {
    am_settings s;
    setenv("AMANUENSIS_BEAM_SIZE", "3", 1);
    setenv("ENABLE_BATCHING", "false", 1);
    setenv("BATCH_MAX_SIZE", "16", 1);
    setenv("AMANUENSIS_MAX_UPLOAD_MB", "2", 1);
    setenv("AMANUENSIS_MODEL", "env-model.bin", 1);
    setenv("AMANUENSIS_KV_TYPE", "f16", 1);
    setenv("AMANUENSIS_VAD", "on", 1);
    setenv("AMANUENSIS_VAD_MODEL", "env-vad.bin", 1);
    setenv("BATCH_MAX_WAIT_MS", "", 1); // set but empty: unset
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){NULL}) == 0);
    CHECK(s.beam_size == 3 && s.batching == 0 && s.max_batch_size == 16 && s.max_upload_bytes == 2u << 20);
    CHECK(!strcmp(s.model, "env-model.bin") && s.kv_type == 1 && s.vad == 1 && !strcmp(s.vad_model, "env-vad.bin"));
    CHECK(s.max_wait_ms == 50 && am_config_source_of(&s, "max-wait-ms") == AM_SRC_DEFAULT);
    CHECK(am_config_source_of(&s, "beam-size") == AM_SRC_ENV);
    CHECK(!strcmp(am_config_origin(&s, "beam-size"), "AMANUENSIS_BEAM_SIZE"));
    CHECK(am_config_source_of(&s, "vad-model") == AM_SRC_ENV);
    am_config_free(&s);
    // flags win
    CHECK(load(&s, AM_CMD_SERVE,
               (const char *const[]){"--beam-size", "4", "--batching", "on", "-m", "flag-model.bin", "--vad-model",
                                     "flag-vad.bin", NULL}) == 0);
    CHECK(s.beam_size == 4 && s.batching == 1 && !strcmp(s.model, "flag-model.bin"));
    CHECK(!strcmp(s.vad_model, "flag-vad.bin") && s.max_batch_size == 16);
    CHECK(am_config_source_of(&s, "beam-size") == AM_SRC_FLAG && am_config_source_of(&s, "batching") == AM_SRC_FLAG);
    CHECK(!strcmp(am_config_origin(&s, "beam-size"), "--beam-size"));
    am_config_free(&s);
    // transcribe takes AMANUENSIS_MODEL and AMANUENSIS_KV_TYPE, not the serve-only decoding defaults
    CHECK(load(&s, AM_CMD_TRANSCRIBE, (const char *const[]){NULL}) == 0);
    CHECK(s.beam_size == 0 && !strcmp(s.model, "env-model.bin") && s.kv_type == 1);
    am_config_free(&s);
    // vad: -m and AMANUENSIS_VAD_MODEL
    CHECK(load(&s, AM_CMD_VAD, (const char *const[]){NULL}) == 0 && !strcmp(s.vad_model, "env-vad.bin"));
    am_config_free(&s);
    CHECK(load(&s, AM_CMD_VAD, (const char *const[]){"-m", "m.bin", NULL}) == 0 && !strcmp(s.vad_model, "m.bin"));
    am_config_free(&s);
    // a bad variable: the error names it; a flag overriding it hides it
    setenv("AMANUENSIS_BEAM_SIZE", "abc", 1);
    expect_error(AM_CMD_SERVE, (const char *const[]){NULL}, "AMANUENSIS_BEAM_SIZE: 'abc' is not an integer (1..16)");
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){"--beam-size", "2", NULL}) == 0 && s.beam_size == 2);
    am_config_free(&s);
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){"--help", NULL}) == 0 && s.help == 1); // no env errors
    am_config_free(&s);
    unsetenv("AMANUENSIS_BEAM_SIZE");
    setenv("BATCH_MAX_SIZE", "300", 1);
    expect_error(AM_CMD_SERVE, (const char *const[]){NULL}, "BATCH_MAX_SIZE: 300 is outside 1..256");
    setenv("BATCH_MAX_SIZE", "8", 1);
    setenv("ENABLE_BATCHING", "sometimes", 1);
    expect_error(AM_CMD_SERVE, (const char *const[]){NULL},
                 "ENABLE_BATCHING: 'sometimes' is not on or off (or true/false, yes/no, 1/0)");
    setenv("ENABLE_BATCHING", "true", 1);
    setenv("AMANUENSIS_PATIENCE", "-2", 1);
    expect_error(AM_CMD_SERVE, (const char *const[]){NULL}, "AMANUENSIS_PATIENCE: -2 must be > 0");
    setenv("AMANUENSIS_PATIENCE", "1.5", 1);
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){NULL}) == 0 && s.patience == 1.5);
    CHECK(!strcmp(am_config_origin(&s, "patience"), "AMANUENSIS_PATIENCE"));
    am_config_free(&s);
    setenv("AMANUENSIS_DRAIN_GRACE", "100001", 1);
    expect_error(AM_CMD_SERVE, (const char *const[]){NULL}, "AMANUENSIS_DRAIN_GRACE: 100001 is outside 0..100000");
    clear_env();
    // environment-only rows are the library's: never parsed here
    setenv("AMANUENSIS_THREADS", "lots", 1);
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){NULL}) == 0);
    am_config_free(&s);
    clear_env();
}

// ---------------------------------------------------------------- options and arguments
static void test_arguments(void) {
    am_settings s;
    expect_error(AM_CMD_SERVE, (const char *const[]){"--nope", NULL},
                 "serve: unknown option '--nope' (see amanuensis serve --help)");
    expect_error(AM_CMD_SERVE, (const char *const[]){"--nope=1", NULL},
                 "serve: unknown option '--nope' (see amanuensis serve --help)");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"--port", "1", NULL},
                 "transcribe: --port is not an option of transcribe (only of serve)");
    expect_error(AM_CMD_INFO, (const char *const[]){"--beam-size", "2", NULL},
                 "info: --beam-size is not an option of info (only of serve, transcribe)");
    expect_error(AM_CMD_VAD, (const char *const[]){"--vad-model", "x", NULL},
                 "vad: --vad-model is not an option of vad (only of serve)");
    expect_error(AM_CMD_SERVE, (const char *const[]){"-x", NULL},
                 "serve: unknown option '-x' (see amanuensis serve --help)");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"a.wav", "--beam-size", NULL}, "--beam-size needs a value");
    expect_error(AM_CMD_TRANSCRIBE, (const char *const[]){"-l", NULL}, "-l needs a value");
    // positional arguments in order, between options; "-" is one; "--" ends the options
    CHECK(load(&s, AM_CMD_TRANSCRIBE,
               (const char *const[]){"a.wav", "-q", "b.wav", "-", "--", "--c.wav", "-q", NULL}) == 0);
    CHECK(s.n_args == 5 && s.quiet == 1);
    if (s.n_args == 5)
        CHECK(!strcmp(s.args[0], "a.wav") && !strcmp(s.args[1], "b.wav") && !strcmp(s.args[2], "-") &&
              !strcmp(s.args[3], "--c.wav") && !strcmp(s.args[4], "-q"));
    am_config_free(&s);
    CHECK(load(&s, AM_CMD_INFO, (const char *const[]){"-m", "x.bin", "a.wav", "b.wav", "-h", NULL}) == 0);
    CHECK(s.help == 1 && s.n_args == 2 && !strcmp(s.model, "x.bin"));
    am_config_free(&s);
    // a later flag overrides an earlier one
    CHECK(load(&s, AM_CMD_SERVE, (const char *const[]){"--port", "1", "--port", "2", NULL}) == 0 && s.port == 2);
    am_config_free(&s);
}

// ---------------------------------------------------------------- documentation
static void test_docs(void) {
    size_t n;
    const am_setting *t = am_config_table(&n);
    // usage: every flag and variable of the command, nothing of the others
    for (unsigned c = 1; c <= AM_CMD_VAD; c <<= 1) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        CHECK(f && am_config_usage(f, c, 4) == 0);
        if (f) fclose(f);
        for (size_t i = 0; text && i < n; i++) {
            const am_setting *r = &t[i];
            char want[96];
            snprintf(want, sizeof want, "%s%s", r->flag ? r->flag : "$", r->flag ? "" : r->env);
            if (r->cmds & c) CHECKF(strstr(text, want) != NULL, "%s usage lacks %s", am_config_cmd_name(c), want);
            if (r->env && (r->env_cmds ? r->env_cmds : r->cmds) & c) {
                snprintf(want, sizeof want, "$%s", r->env);
                CHECKF(strstr(text, want) != NULL, "%s usage lacks %s", am_config_cmd_name(c), want);
            }
        }
        CHECK(c == AM_CMD_SERVE ? strstr(text, "--seed") == NULL : strstr(text, "--max-queue") == NULL);
        CHECK(c == AM_CMD_TRANSCRIBE ? strstr(text, "$AMANUENSIS_BEAM_SIZE") == NULL : 1);
        // no line longer than 100 columns (a flag column alone may be)
        for (const char *p = text; p && *p;) {
            const char *e = strchr(p, '\n');
            const size_t w = e ? (size_t)(e - p) : strlen(p);
            CHECKF(w <= 100, "%s usage: a line of %zu columns: %.*s", am_config_cmd_name(c), w, (int)w, p);
            p = e ? e + 1 : p + w;
        }
        free(text);
    }
    // Markdown: the header, a line per row, every env var; pipes escaped
    char *md = am_config_markdown();
    CHECK(md != NULL);
    if (!md) return;
    const char *header = "| Setting (flag) | Env var | Type | Default | Bounds/values | Commands | Description |\n"
                         "|---|---|---|---|---|---|---|\n";
    CHECK(!strncmp(md, header, strlen(header)));
    size_t lines = 0;
    for (const char *p = md; *p; p++) lines += *p == '\n';
    CHECKF(lines == n + 2, "markdown: %zu lines for %zu rows", lines, n);
    CHECK(strstr(md, "| `--beam-size N` | `AMANUENSIS_BEAM_SIZE` (serve only) | int | greedy | 1..16 | serve, "
                     "transcribe |") != NULL);
    CHECK(strstr(md, "`--batching on\\|off`") != NULL);
    CHECK(strstr(md, "| `--vad-model PATH` | `AMANUENSIS_VAD_MODEL` | string | `models/ggml-silero-v6.2.0.bin` |") !=
          NULL);
    char *text = am_config_text();
    CHECK(text && strstr(text, "AMANUENSIS_THREADS") && strstr(text, "--max-upload-mb X") && !strstr(text, "`"));
    free(text);
    // README.md's copy between the markers is exactly this table
    size_t size = 0;
    char *readme = am_test_read_file(AM_SOURCE_DIR "/README.md", &size);
    CHECKF(readme != NULL, "cannot read %s/README.md", AM_SOURCE_DIR);
    const char *begin = readme ? strstr(readme, "<!-- settings:begin -->\n") : NULL;
    const char *end = begin ? strstr(begin, "<!-- settings:end -->") : NULL;
    CHECKF(begin && end, "README.md has no <!-- settings:begin --> ... <!-- settings:end --> section");
    if (begin && end) {
        begin += strlen("<!-- settings:begin -->\n");
        const size_t len = (size_t)(end - begin);
        const int same = len == strlen(md) && !memcmp(begin, md, len);
        if (!same) { // the first line that differs
            size_t i = 0, line = 1;
            while (i < len && md[i] && begin[i] == md[i]) line += md[i++] == '\n';
            fprintf(stderr, "README.md line %zu of the table differs from `amanuensis config --markdown`\n", line);
        }
        CHECKF(same, "README.md's settings table is not the generated one (regenerate it with: amanuensis config "
                     "--markdown)");
    }
    free(readme);
    free(md);
}

int main(void) {
    clear_env();
    test_table();
    test_defaults();
    test_types();
    test_lists();
    test_precedence();
    test_arguments();
    test_docs();
    return am_test_finish("test_config", 1);
}
