#!/usr/bin/env bash
# make-seeds.sh — (re)generate the checked-in seed corpora under fuzz/corpus/.
#
#   bash fuzz/make-seeds.sh            # writes fuzz/corpus/<target>/seed-*
#
# Sources: the shared clips (AMANUENSIS_TEST_DATA, default ../shared next to
# the checkout) where present, else the copies in tests/data/ and data/ (jfk.wav,
# ggml-test-tiny.en.bin, the VAD model); seeds whose source is missing are
# skipped with a note. Deterministic: the same sources give the same bytes.
# Seeds stay small (the whole corpus is a few hundred KB): audio is cut to
# fractions of a second, models to their headers. Only files named seed-* are
# replaced; nothing else in fuzz/corpus/ is touched.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${AMANUENSIS_TEST_DATA:-$ROOT/../shared}"
OUT="$ROOT/fuzz/corpus"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- byte helpers
# le16 / le32 N: N as little-endian binary on stdout.
le16() { printf "\\$(printf %03o $(($1 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))"; }
le32() { le16 $(($1 & 65535)); le16 $(($1 >> 16 & 65535)); }
zeros() { dd if=/dev/zero iflag=count_bytes count="$1" bs=65536 status=none; }
# src PATH-UNDER-SHARED FALLBACK: the path of a source file, or "" when absent.
src() {
  if [ -f "$SHARED/$1" ]; then echo "$SHARED/$1"
  elif [ -n "${2:-}" ] && [ -f "$ROOT/$2" ]; then echo "$ROOT/$2"
  else echo ""; fi
}
note() { echo "make-seeds: $*" >&2; }
# cut_head COUNT FILE: the first COUNT bytes of FILE.
cut_head() { dd if="$2" iflag=count_bytes count="$1" bs=65536 status=none; }
# slice FILE OFFSET COUNT: COUNT bytes of FILE from OFFSET.
slice() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=65536 status=none; }

# ---------------------------------------------------------------- audio helpers
# wav_header FORMAT CHANNELS RATE BITS DATA_BYTES: a canonical 44-byte RIFF/WAVE header.
wav_header() {
  local fmt=$1 ch=$2 rate=$3 bits=$4 n=$5
  local align=$((ch * bits / 8)); [ "$align" -gt 0 ] || align=1
  printf 'RIFF'; le32 $((36 + n)); printf 'WAVEfmt '; le32 16
  le16 "$fmt"; le16 "$ch"; le32 "$rate"; le32 $((rate * align)); le16 "$align"; le16 "$bits"
  printf 'data'; le32 "$n"
}
# pcm FILE FIRST_BYTE COUNT: COUNT bytes of FILE's data chunk from FIRST_BYTE.
pcm() {
  local off
  off=$(grep -obUa -m1 'data' "$1")
  off=${off%%:*}
  slice "$1" $((off + 8 + $2)) "$3"
}

JFK="$(src audio/jfk.wav tests/data/jfk.wav)"
MP3="$(src audio/jfk.mp3)"
FLAC="$(src audio/jfk-44k-stereo.flac)"
W44="$(src audio/one-two-three-44k.wav)"
ESPEAK="$(src audio/espeak-quick-fox.wav)"
TINY="$(src fixtures/ggml-test-tiny.en.bin tests/data/ggml-test-tiny.en.bin)"
VAD="$ROOT/data/ggml-silero-v6.2.0.bin"
[ -n "$JFK" ] || { note "jfk.wav not found (tests/data/jfk.wav ships with the repository)"; exit 1; }

# 16 kHz mono s16 cuts of jfk.wav (speech from 0.5 s on): 0.3 s and 0.1 s.
{ wav_header 1 1 16000 16 9600; pcm "$JFK" 16000 9600; } > "$TMP/jfk-0.3s.wav"
{ wav_header 1 1 16000 16 3200; pcm "$JFK" 16000 3200; } > "$TMP/jfk-0.1s.wav"
[ -n "$MP3" ] && cut_head 4096 "$MP3" > "$TMP/jfk-head.mp3"
[ -n "$FLAC" ] && cut_head 8192 "$FLAC" > "$TMP/jfk-head.flac"

# ---------------------------------------------------------------- fuzz_audio
mkdir -p "$OUT/audio"
A="$OUT/audio"
rm -f "$A"/seed-*
cp "$TMP/jfk-0.1s.wav" "$A/seed-jfk-0.1s.wav"
cut_head 4096 "$JFK" > "$A/seed-jfk-head.wav"            # LIST chunk; header claims 11 s
if [ -n "$MP3" ]; then
  cp "$TMP/jfk-head.mp3" "$A/seed-jfk-head.mp3"         # ID3 tag + frames
  slice "$MP3" 20000 3000 > "$A/seed-jfk-mid.mp3"       # bare frames, cut mid-frame
else note "jfk.mp3 missing: no mp3 seeds"; fi
[ -n "$FLAC" ] && cp "$TMP/jfk-head.flac" "$A/seed-jfk-44k-stereo-head.flac" || note "no flac seed"
[ -n "$W44" ] && cut_head 4096 "$W44" > "$A/seed-44k-head.wav" || note "no 44.1 kHz wav seed"
[ -n "$ESPEAK" ] && cut_head 2048 "$ESPEAK" > "$A/seed-espeak-head.wav" || note "no espeak seed"
# other WAV codecs and layouts over the same bytes (the decoders behind the header)
{ wav_header 3 1 16000 32 2048; pcm "$JFK" 16000 2048; } > "$A/seed-float32.wav"
{ wav_header 1 2 44100 16 2048; pcm "$JFK" 16000 2048; } > "$A/seed-stereo-44k.wav"
{ wav_header 1 1 8000 8 1024; pcm "$JFK" 16000 1024; } > "$A/seed-u8-8k.wav"
{ wav_header 6 1 8000 8 1024; pcm "$JFK" 16000 1024; } > "$A/seed-alaw.wav"
{ wav_header 7 1 8000 8 1024; pcm "$JFK" 16000 1024; } > "$A/seed-mulaw.wav"
{ wav_header 1 6 48000 24 1152; pcm "$JFK" 16000 1152; } > "$A/seed-5.1-s24.wav"

# ---------------------------------------------------------------- fuzz_model
mkdir -p "$OUT/model"
M="$OUT/model"
rm -f "$M"/seed-*
# A minimal valid model: width 1, one head, one layer each, n_text_ctx 4, f16
# matrices, f32 vectors, all weights zero, the 256 single bytes as vocabulary.
# tensor NAME TYPE NE...: header + zero data (ggml order dims; type 0 f32, 1 f16).
tensor() {
  local name=$1 type=$2; shift 2
  local n=1 d
  for d in "$@"; do n=$((n * d)); done
  le32 $#; le32 ${#name}; le32 "$type"
  for d in "$@"; do le32 "$d"; done
  printf '%s' "$name"
  zeros $((n * (type == 0 ? 4 : 2)))
}
attn() { # PREFIX KIND
  tensor "$1.$2_ln.weight" 0 1; tensor "$1.$2_ln.bias" 0 1
  tensor "$1.$2.query.weight" 1 1 1; tensor "$1.$2.query.bias" 0 1
  tensor "$1.$2.key.weight" 1 1 1
  tensor "$1.$2.value.weight" 1 1 1; tensor "$1.$2.value.bias" 0 1
  tensor "$1.$2.out.weight" 1 1 1; tensor "$1.$2.out.bias" 0 1
}
mlp() { # PREFIX
  tensor "$1.mlp_ln.weight" 0 1; tensor "$1.mlp_ln.bias" 0 1
  tensor "$1.mlp.0.weight" 1 1 4; tensor "$1.mlp.0.bias" 0 4
  tensor "$1.mlp.2.weight" 1 4 1; tensor "$1.mlp.2.bias" 0 1
}
{
  printf 'lmgg'                                            # magic 0x67676d6c
  for v in 51864 1500 1 1 1 4 1 1 1 80 1; do le32 "$v"; done # hparams (ftype 1: f16)
  le32 80; le32 201; zeros $((80 * 201 * 4))               # mel filterbank
  le32 256
  for b in $(seq 0 255); do le32 1; printf "\\$(printf %03o "$b")"; done
  tensor encoder.conv1.weight 1 3 80 1; tensor encoder.conv1.bias 0 1 1
  tensor encoder.conv2.weight 1 3 1 1; tensor encoder.conv2.bias 0 1 1
  tensor encoder.ln_post.weight 0 1; tensor encoder.ln_post.bias 0 1
  attn encoder.blocks.0 attn; mlp encoder.blocks.0
  tensor decoder.positional_embedding 0 1 4
  tensor decoder.ln.weight 0 1; tensor decoder.ln.bias 0 1
  attn decoder.blocks.0 attn; attn decoder.blocks.0 cross_attn; mlp decoder.blocks.0
} > "$TMP/min-head.bin"
# the two big tables last (a cut before them is a "tensor missing" error)
{ cat "$TMP/min-head.bin"
  tensor encoder.positional_embedding 0 1 1500
  tensor decoder.token_embedding.weight 1 1 51864; } > "$M/seed-minimal-valid.bin"
if [ -n "$TINY" ]; then
  cut_head 4096 "$TINY" > "$M/seed-tiny.en-head.bin"      # hparams + part of the filterbank (truncated)
else note "ggml-test-tiny.en.bin missing: no tiny.en cut"; fi

# ---------------------------------------------------------------- fuzz_vad_model
mkdir -p "$OUT/vad_model"
V="$OUT/vad_model"
rm -f "$V"/seed-*
cut_head 170 "$VAD" > "$V/seed-header.bin"               # header + the first tensor's header
cut_head 1200 "$VAD" > "$V/seed-first-tensor-cut.bin"    # truncated inside the first tensor's data
# (the whole 885 KB model is added to the scratch corpus by fuzz/run.sh from data/)

# ---------------------------------------------------------------- fuzz_tokenizer
mkdir -p "$OUT/tokenizer"
T="$OUT/tokenizer"
rm -f "$T"/seed-*
printf ' And so, my fellow Americans, ask not what your country can do for you.' > "$T/seed-jfk"
printf "I'm sure they'll say it's John's, we've, you'd, 'RE 'S" > "$T/seed-contractions"
printf '  12345 3.14159 -42 1,000,000 \t\n\n  \r\n x  ' > "$T/seed-numbers-space"
printf '\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c \xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xf0\x9f\x98\x80\xf0\x9f\x8e\xb5 \xe2\x99\xaa\xe2\x99\xaa' > "$T/seed-unicode"
printf 'ok \xff\xfe \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 x\x80y\x00z' > "$T/seed-invalid-utf8"
printf '<|endoftext|><|startoftranscript|><|en|><|transcribe|><|notimestamps|><|0.00|> [Music] (laughs) ((( >>' > "$T/seed-specials"
printf '\x5e\xc4\x00\x00\x5f\xc4\x00\x00\x6b\xc4\x00\x00\xff\xff\xff\xff\x00\x00\x00\x80\x10\x27\x00\x00' > "$T/seed-ids"
printf 'english' > "$T/seed-lang-name"
printf 'yue' > "$T/seed-lang-yue"

# ---------------------------------------------------------------- fuzz_chunking
mkdir -p "$OUT/chunking"
C="$OUT/chunking"
rm -f "$C"/seed-*
printf 'auto' > "$C/seed-auto"
printf 'none' > "$C/seed-none"
printf '{"type": "server_vad"}' > "$C/seed-type"
printf '{"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200}' > "$C/seed-full"
printf '{"type":"server_vad","threshold":1e-3,"prefix_padding_ms":60000,"silence_duration_ms":3600000}' > "$C/seed-limits"
printf '{"type":"server_vad","threshold":1,"prefix_padding_ms":-1,"silence_duration_ms":2.5,"x":null}' > "$C/seed-bad"
printf '["server_vad", {"type": "auto"}, null, true, "\\u0000\\ud800"]' > "$C/seed-array"

# ---------------------------------------------------------------- fuzz_format
# Inputs follow the reader in fuzz_format.c (fuzz_common.h fz_*): u8 fields,
# u32 little-endian, a double as a selector byte (< 64: a small value, 2 bytes)
# and strings as a length byte + bytes.
mkdir -p "$OUT/format"
F="$OUT/format"
rm -f "$F"/seed-*
u8() { printf "\\$(printf %03o "$1")"; }
dbl() { u8 "$1"; u8 "$2"; }                              # K < 64: (K+1) * 0.01 * int8(V)
sel() { u8 "$1"; }                                       # 64..95 a special value, 96..103 +-inf, 104..111 NaN
str() { u8 ${#1}; printf '%s' "$1"; }
seg() { # START_K START_V END_K END_V TEXT: a segment with 3 tokens, logprobs and 2 words
  le32 0; le32 0; dbl "$1" "$2"; dbl "$3" "$4"; str "$5"
  u8 3; u8 0; le16 2215; u8 0; le16 1545; u8 200; le16 1400   # a text token, another, a timestamp
  u8 1; dbl 0 236; dbl 0 246; dbl 0 256                       # logprobs (-0.2, -0.1, 0)
  dbl 0 0; dbl 9 236; dbl 19 12; dbl 0 1                      # temperature, avg_logprob, ratio, no_speech
  u8 2; u8 1; str " And"; dbl 0 0; dbl 0 50; dbl 0 90; u8 1; str " so"; dbl 0 50; dbl 0 99; dbl 0 80
}
{ u8 0; u8 0; dbl 10 100; u8 1; str " And so my fellow Americans"; u8 2
  seg 0 0 0 100 " And so"; seg 0 100 9 100 " my fellow Americans --> ask"; dbl 0 12; u8 1; } > "$F/seed-two-segments"
{ u8 17; u8 1; sel 96; u8 0; u8 1
  le32 4294967295; le32 3000; sel 104; sel 75; str $'line one\n\nline two\r\rx--->y'
  u8 0; sel 64; sel 70; sel 80; sel 90; u8 0; u8 1; sel 100; u8 3; } > "$F/seed-odd-values"
{ u8 255; printf 'zz\xff\xfe\x01abcdefghij'; u8 0; u8 200; printf '\x00\x00\x00\x00\x00\x00\xf0\x7f'
  u8 0; u8 0; sel 110; u8 0; } > "$F/seed-raw-language"

# ---------------------------------------------------------------- fuzz_http
mkdir -p "$OUT/http"
H="$OUT/http"
rm -f "$H"/seed-*
BOUNDARY=8f3c2a1b9d4e4f6a8b7c6d5e4f3a2b1c     # httpx: 16 random bytes as hex
KEY=sk-fuzz
# field NAME VALUE: one multipart form field as httpx writes it.
field() { printf -- '--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' "$BOUNDARY" "$1" "$2"; }
# file_part PATH FILENAME TYPE
file_part() {
  printf -- '--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\nContent-Type: %s\r\n\r\n' \
    "$BOUNDARY" "$2" "$3"
  cat "$1"; printf '\r\n'
}
# request NAME PATH BODY-FILE [EXTRA-HEADER...]: a POST as the openai Python SDK sends it.
request() {
  local name=$1 path=$2 body=$3; shift 3
  {
    printf 'POST %s HTTP/1.1\r\nHost: 127.0.0.1:9050\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n' "$path"
    printf 'Accept: application/json\r\nContent-Type: multipart/form-data; boundary=%s\r\n' "$BOUNDARY"
    printf 'User-Agent: OpenAI/Python 1.54.0\r\nX-Stainless-Lang: python\r\nX-Stainless-Package-Version: 1.54.0\r\n'
    printf 'X-Stainless-Retry-Count: 0\r\nX-Stainless-Read-Timeout: 600\r\nAuthorization: Bearer %s\r\n' "$KEY"
    local h; for h in "$@"; do printf '%s\r\n' "$h"; done
    printf 'Content-Length: %d\r\n\r\n' "$(wc -c < "$body")"
    cat "$body"
  } > "$H/seed-$name"
}
# body FIELDS... -- AUDIO FILENAME TYPE: a multipart body (fields as NAME=VALUE).
body() {
  local out=$1; shift
  {
    while [ "$1" != "--" ]; do field "${1%%=*}" "${1#*=}"; shift; done; shift
    [ "$1" != "none" ] && file_part "$1" "$2" "$3"
    printf -- '--%s--\r\n' "$BOUNDARY"
  } > "$out"
}
W5="$TMP/jfk-0.3s.wav"; W1="$TMP/jfk-0.1s.wav"
# temperature_inc=0 (an extension; the SDK sends it with extra_body): no temperature
# fallback. The test model is random, so a window otherwise decodes at six
# temperatures and runs past the fuzz server's 3 s deadline (sdk-text keeps the
# fallback: the 504 path).
FAST=temperature_inc=0
body "$TMP/b" model=whisper-1 response_format=json "$FAST" -- "$W5" jfk.wav audio/x-wav
request sdk-json /v1/audio/transcriptions "$TMP/b"
body "$TMP/b" model=whisper-1 response_format=verbose_json 'timestamp_granularities[]=word' \
  'timestamp_granularities[]=segment' "$FAST" -- "$W5" jfk.wav audio/x-wav
request sdk-verbose-words /v1/audio/transcriptions "$TMP/b"
body "$TMP/b" model=whisper-1 language=en 'prompt=The president said:' response_format=srt "$FAST" \
  -- "$W1" jfk.wav audio/x-wav
request sdk-srt /v1/audio/transcriptions "$TMP/b"
body "$TMP/b" model=whisper-1 response_format=vtt temperature=0.2 "$FAST" -- "$W1" jfk.wav audio/wav
request sdk-vtt /v1/audio/transcriptions "$TMP/b"
body "$TMP/b" model=whisper-1 response_format=text -- "$W1" jfk.wav audio/x-wav
request sdk-text /v1/audio/transcriptions "$TMP/b"
body "$TMP/b" model=gpt-4o-transcribe response_format=json 'include[]=logprobs' stream=true "$FAST" \
  -- "$W5" jfk.wav audio/x-wav
request sdk-stream /v1/audio/transcriptions "$TMP/b"
body "$TMP/b" model=whisper-1 chunking_strategy=auto "$FAST" -- "$W5" jfk.wav audio/x-wav
request sdk-chunking-auto /v1/audio/transcriptions "$TMP/b"
body "$TMP/b" model=whisper-1 \
  'chunking_strategy={"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200}' \
  response_format=verbose_json "$FAST" -- "$W1" jfk.wav audio/x-wav
request sdk-chunking-json /v1/audio/transcriptions "$TMP/b"
# what the openai Python SDK makes of chunking_strategy={"type": "server_vad", ...}
# (nested form fields, brackets style)
body "$TMP/b" model=whisper-1 'chunking_strategy[type]=server_vad' 'chunking_strategy[threshold]=0.4' "$FAST" \
  -- "$W1" jfk.wav audio/x-wav
request sdk-chunking-brackets /v1/audio/transcriptions "$TMP/b"
body "$TMP/b" model=whisper-1 beam_size=2 patience=1.5 length_penalty=0.5 without_timestamps=true priority=3 \
  "$FAST" -- "$W1" jfk.wav audio/x-wav
request beam /v1/audio/transcriptions "$TMP/b" 'X-Priority: 5'
body "$TMP/b" model=whisper-1 temperature=0.5 best_of=2 response_format=verbose_json "$FAST" \
  -- "$W1" jfk.wav audio/x-wav
request best-of /v1/audio/transcriptions "$TMP/b"
if [ -f "$TMP/jfk-head.mp3" ]; then
  body "$TMP/b" model=whisper-1 response_format=json "$FAST" -- "$TMP/jfk-head.mp3" jfk.mp3 audio/mpeg
  request translation-mp3 /v1/audio/translations "$TMP/b"
fi
if [ -f "$TMP/jfk-head.flac" ]; then
  body "$TMP/b" model=whisper-1 "$FAST" -- "$TMP/jfk-head.flac" jfk.flac audio/flac
  request flac /v1/audio/transcriptions "$TMP/b"
fi
body "$TMP/b" model=whisper-1 response_format=diarized_json 'known_speaker_names[]=agent' -- "$W1" a.wav audio/x-wav
request unsupported /v1/audio/transcriptions "$TMP/b"
body "$TMP/b" model=whisper-1 -- none
request no-file /v1/audio/transcriptions "$TMP/b"
printf 'not audio at all' > "$TMP/junk"
body "$TMP/b" model=whisper-1 -- "$TMP/junk" junk.wav audio/x-wav
request junk-file /v1/audio/transcriptions "$TMP/b"
body "$TMP/b" model=whisper-1 -- "$W1" a.wav audio/x-wav
cat "$TMP/b" > "$TMP/b2"; body "$TMP/b3" language=xx -- "$W1" b.wav audio/x-wav; cat "$TMP/b3" >> "$TMP/b2"
request two-files /v1/audio/transcriptions "$TMP/b2"
# framing: truncated body, chunked upload, Expect: 100-continue, over the limit, no or wrong key
body "$TMP/b" model=whisper-1 -- "$W1" a.wav audio/x-wav
request truncated /v1/audio/transcriptions "$TMP/b"
cut_head 1500 "$H/seed-truncated" > "$TMP/t" && mv "$TMP/t" "$H/seed-truncated"
{
  printf 'POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n' "$KEY"
  printf 'Content-Type: multipart/form-data; boundary=%s\r\nTransfer-Encoding: chunked\r\n\r\n' "$BOUNDARY"
  printf '%x\r\n' "$(wc -c < "$TMP/b")"; cat "$TMP/b"; printf '\r\n0\r\n\r\n'
} > "$H/seed-chunked"
request expect-continue /v1/audio/transcriptions "$TMP/b" 'Expect: 100-continue'
{
  printf 'POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n' "$KEY"
  printf 'Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: 999999999\r\n\r\n' "$BOUNDARY"
} > "$H/seed-too-large"
sed "s/Bearer $KEY/Bearer sk-wrong/" "$H/seed-sdk-text" > "$H/seed-wrong-key"
{
  printf 'POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n' "$KEY"
  printf 'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 27\r\n\r\nmodel=whisper-1&file=abcdef'
} > "$H/seed-urlencoded"
{
  printf 'POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n' "$KEY"
  printf 'Content-Type: multipart/form-data\r\nContent-Length: 10\r\n\r\n--x--\r\n\r\n'
} > "$H/seed-no-boundary"
get() { # NAME METHOD PATH [KEY]
  { printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n' "$2" "$3"
    [ -n "${4:-}" ] && printf 'Authorization: Bearer %s\r\n' "$4"
    printf '\r\n'; } > "$H/seed-$1"
}
get health GET /health
get ready GET /ready "$KEY"
get models GET /v1/models "$KEY"
get model GET /v1/models/whisper-1 "$KEY"
get stats GET /stats/batching "$KEY"
get metrics GET /metrics "$KEY"
get metrics-nokey GET /metrics
get unknown GET /v1/unknown "$KEY"
get wrong-method DELETE /v1/audio/transcriptions "$KEY"
get head HEAD /health
get options OPTIONS '*' "$KEY"
printf 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n' \
  "$KEY" > "$H/seed-pipelined"
printf 'GET /health HTTP/1.0\r\n\r\n' > "$H/seed-http10"
printf 'GARBAGE\r\n\r\n' > "$H/seed-garbage"

du -sh "$OUT"/* >&2
