#!/usr/bin/env bash
# Server throughput with batching on vs off, measured in one run.
#
#   scripts/bench-server.sh [MODEL] [CLIP]
#
# MODEL defaults to a generated random-weight model at tiny size (384 wide,
# 4+4 layers: real tiny.en cost; random weights make every window run the full
# 224 tokens, a worst case for decoding). CLIP defaults to tests/data/jfk.wav.
# CONCURRENCY (16), REQUESTS (32) and FIELDS (extra form fields, default
# "temperature_inc=0") tune the load. Only 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CONCURRENCY=${CONCURRENCY:-16}
REQUESTS=${REQUESTS:-32}
FIELDS=${FIELDS:-temperature_inc=0}
model=${1:-}
clip=${2:-tests/data/jfk.wav}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
if [ -z "$model" ]; then
  model="$tmp/ggml-bench-tiny.bin"
  "$BUILD/bench_core" --model tiny --write-model "$model" >/dev/null
fi
audio_s=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$clip" 2>/dev/null || echo 0)
field_args=()
for f in $FIELDS; do field_args+=(--field "$f"); done

run() { # $1 = on|off
  local log="$tmp/server-$1.log"
  "$BUILD/amanuensis" serve -m "$model" --port 0 --batching "$1" --max-queue 256 2>"$log" &
  local pid=$!
  local port=""
  for _ in $(seq 600); do
    port=$(grep -o 'listening on http://[^ ]*' "$log" 2>/dev/null | sed 's/.*://' || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "server did not start:"; cat "$log"; exit 1; }
  echo "== batching $1"
  "$BUILD/bench_load" --url "http://127.0.0.1:$port" --file "$clip" --concurrency "$CONCURRENCY" \
    --requests "$REQUESTS" --audio-seconds "$audio_s" "${field_args[@]}" | tee "$tmp/load-$1.txt"
  curl -s "http://127.0.0.1:$port/stats/batching" | head -c 400; echo
  kill -TERM "$pid"; wait "$pid" || true
}

run on
run off
on=$(sed -n 's/.*: \([0-9.]*\) req\/s.*/\1/p' "$tmp/load-on.txt")
off=$(sed -n 's/.*: \([0-9.]*\) req\/s.*/\1/p' "$tmp/load-off.txt")
echo "throughput: batching on $on req/s, off $off req/s: $(echo "$on $off" | awk '{printf "%.2fx", $1 / $2}')"
