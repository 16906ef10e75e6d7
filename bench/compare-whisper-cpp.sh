#!/usr/bin/env bash
# The core compute next to whisper.cpp's, on the same generated model files, the
# same thread count, in one run (rounds alternate between the two engines).
#
#   WHISPER_CPP_BENCH=/path/to/whisper-bench [WHISPER_CPP_SERVER=/path/to/whisper-server] \
#     bench/compare-whisper-cpp.sh
#
# whisper.cpp is built by you, outside this repository, from its own source.
# Models: random-weight tiny and base sizes from `bench_core --write-model` (f16;
# q5_0 too for the memory figures). Per model, per round: `bench_core -m FILE
# --json` (exact f32 K/V and f16 K/V) and `whisper-bench -m FILE -t THREADS`
# (encoder per 30 s window; one-token decode steps at positions 0..255, the
# "decode" line). The medians of ROUNDS rounds (3) are reported. With
# WHISPER_CPP_SERVER, also the resident memory of `amanuensis serve` and of
# whisper-server after one request on each file. Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-$(nproc)}
: "${WHISPER_CPP_BENCH:?set WHISPER_CPP_BENCH to a whisper-bench binary}"
command -v jq >/dev/null || { echo "jq is needed (scripts/install-deps.sh installs it)"; exit 1; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
export AMANUENSIS_THREADS=$THREADS

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
calc() { awk "BEGIN {print $1}"; }

for size in tiny base; do
  "$BUILD/bench_core" --model $size --write-model "$tmp/$size-f16.bin" >/dev/null
  "$BUILD/bench_core" --model $size --type q5_0 --write-model "$tmp/$size-q5_0.bin" >/dev/null
done

for r in $(seq "$ROUNDS"); do
  for size in tiny base; do
    f="$tmp/$size-f16.bin"
    "$BUILD/bench_core" -m "$f" --json 2>/dev/null >"$tmp/am-$size-f32-$r.json"
    "$BUILD/bench_core" -m "$f" --json --kv-type f16 2>/dev/null >"$tmp/am-$size-f16-$r.json"
    "$WHISPER_CPP_BENCH" -m "$f" -t "$THREADS" >"$tmp/wc-$size-$r.txt" 2>&1
    echo "round $r/$ROUNDS: $size done" >&2
  done
done

# whisper-server / amanuensis serve: VmRSS after one request
rss_after_request() { # $1 = amanuensis|whisper.cpp, $2 = model
  local port log pid
  port=$(( 20000 + RANDOM % 20000 )); log="$tmp/server.log"
  if [ "$1" = amanuensis ]; then
    "$BUILD/amanuensis" serve -m "$2" --port "$port" -q 2>"$log" & pid=$!
    url="http://127.0.0.1:$port/v1/audio/transcriptions"
  else
    "$WHISPER_CPP_SERVER" -m "$2" --port "$port" -t "$THREADS" >"$log" 2>&1 & pid=$!
    url="http://127.0.0.1:$port/inference"
  fi
  for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  curl -s -o /dev/null -F file=@tests/data/jfk.wav -F temperature_inc=0 "$url"
  awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

sgemm=$(cat "$tmp"/am-*-f32-*.json | jq -s 'map(.sgemm_gflops) | max')
bw=$(cat "$tmp"/am-*-f32-*.json | jq -s 'map(.read_gbs) | max')
echo
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $THREADS threads;" \
     "best limits seen: sgemm $(printf %.0f "$sgemm") GFLOP/s, read bandwidth $(printf %.1f "$bw") GB/s;" \
     "medians of $ROUNDS rounds"
echo
echo "| model | | amanuensis (f32 K/V, exact) | amanuensis (f16 K/V) | whisper.cpp | amanuensis / whisper.cpp |"
echo "|---|---|---|---|---|---|"
for size in tiny base; do
  am() { cat "$tmp"/am-$size-$1-*.json | jq -r "$2" | median; }
  wc_enc=$(grep -h 'encode time' "$tmp"/wc-$size-*.txt | sed 's/.*(\s*\([0-9.]*\) ms per run).*/\1/' | median)
  wc_dec=$(grep -h ' decode time' "$tmp"/wc-$size-*.txt | sed 's/.*(\s*\([0-9.]*\) ms per run).*/\1/' | median)
  e1=$(am f32 '.models[].enc."1".ms'); e1f=$(am f32 '.models[].enc."1".frac')
  d1=$(am f32 '.models[].dec."1".ms'); d1f=$(am f32 '.models[].dec."1".frac')
  h1=$(am f16 '.models[].dec."1".ms')
  d16=$(am f32 '.models[].dec."16".ms'); h16=$(am f16 '.models[].dec."16".ms')
  printf "| %s | encoder, ms per 30 s window | %.0f (%.0f%% of sgemm) | | %.0f | %.2fx |\n" \
    $size "$e1" "$(calc "$e1f * 100")" "$wc_enc" "$(calc "$e1 / $wc_enc")"
  printf "| %s | decoder, ms per token, 1 sequence | %.2f (%.0f%% of bandwidth) | %.2f | %.2f | %.2fx (f16 K/V %.2fx) |\n" \
    $size "$d1" "$(calc "$d1f * 100")" "$h1" "$wc_dec" "$(calc "$d1 / $wc_dec")" "$(calc "$h1 / $wc_dec")"
  printf "| %s | decoder, ms per token, 16 sequences in one step | %.2f | %.2f | — (one sequence per request) | %.2fx (f16 K/V %.2fx) |\n" \
    $size "$(calc "$d16 / 16")" "$(calc "$h16 / 16")" "$(calc "$d16 / 16 / $wc_dec")" "$(calc "$h16 / 16 / $wc_dec")"
done
if [ -n "${WHISPER_CPP_SERVER:-}" ]; then
  echo
  echo "| model file | size | amanuensis serve RSS after one request | whisper-server | ratio |"
  echo "|---|---|---|---|---|"
  for f in "$tmp"/tiny-f16.bin "$tmp"/base-f16.bin "$tmp"/tiny-q5_0.bin "$tmp"/base-q5_0.bin; do
    a=$(rss_after_request amanuensis "$f"); w=$(rss_after_request whisper.cpp "$f")
    printf "| %s | %d MB | %d MB | %d MB | %.2fx |\n" "$(basename "$f")" $(( $(stat -c %s "$f") >> 20 )) "$a" "$w" \
      "$(calc "$a / $w")"
  done
fi
