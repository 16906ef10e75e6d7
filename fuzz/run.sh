#!/usr/bin/env bash
# run.sh — run the libFuzzer targets built in BUILD (make fuzz calls this).
#
#   bash fuzz/run.sh BUILD [TARGET...]     # default: every target
#
# Environment:
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_JOBS     targets run at once (default 1)
#   FUZZ_ARGS     extra libFuzzer flags for every target (e.g. -seed=1 -runs=100000)
#
# Each target fuzzes BUILD/fuzz/corpus/<target>, a scratch copy of the checked-in
# fuzz/corpus/<target> (seeds are copied in, never over, so what earlier runs found
# is kept; delete the directory to start afresh) with its dictionary, -max_len and
# -timeout. Logs go to BUILD/fuzz/logs/<target>.log, crash / leak / timeout / OOM
# reproducers to BUILD/fuzz/artifacts/<target>-*. Exits 1 when any target failed,
# after printing each failure's reproducer path and the sanitizer's summary.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:?usage: run.sh BUILD [TARGET...]}" && pwd)"
shift
SECONDS_EACH="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-1}"
ALL=(chunking tokenizer format audio model vad_model http)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")

# ---------------------------------------------------------------- per target
# -max_len suits the input (a whole model for model/vad_model), -timeout the slowest
# legitimate input; http's per-input leak check is off (fuzz_http.c says why). audio:
# one allocation over 256 MB from an input of at most 16 KB is a finding (a small
# upload that costs the server that much memory), as is a process over 2 GB.
flags() {
  case "$1" in
    chunking)  echo "-max_len=1024 -timeout=10 -dict=$ROOT/fuzz/chunking.dict" ;;
    tokenizer) echo "-max_len=4096 -timeout=10 -dict=$ROOT/fuzz/tokenizer.dict" ;;
    format)    echo "-max_len=4096 -timeout=10" ;;
    audio)     echo "-max_len=16384 -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=256" ;;
    model)     echo "-max_len=200000 -timeout=30 -dict=$ROOT/fuzz/model.dict" ;;
    vad_model) echo "-max_len=1048576 -timeout=30 -dict=$ROOT/fuzz/vad_model.dict" ;;
    http)      echo "-max_len=65536 -timeout=30 -rss_limit_mb=4096 -detect_leaks=0 -dict=$ROOT/fuzz/http.dict" ;;
    *)         return 1 ;;
  esac
}

export OPENBLAS_NUM_THREADS=1 AMANUENSIS_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/fuzz/ubsan.supp"
mkdir -p "$BUILD/fuzz/logs" "$BUILD/fuzz/artifacts"

run_one() {
  local t=$1 bin="$BUILD/fuzz_$1" corpus="$BUILD/fuzz/corpus/$1" log="$BUILD/fuzz/logs/$1.log" f
  f="$(flags "$t")" || { echo "fuzz: unknown target '$t' (known: ${ALL[*]})"; return 2; }
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (build with -DAM_FUZZ=ON --target fuzz_all)"; return 2; }
  mkdir -p "$corpus"
  cp -n "$ROOT/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  [ "$t" = vad_model ] && cp -n "$ROOT/data/ggml-silero-v6.2.0.bin" "$corpus/seed-silero-v6.2.0.bin"
  rm -f "$BUILD/fuzz/artifacts/$t"-*
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="$BUILD/fuzz/artifacts/$t-" \
    $f ${FUZZ_ARGS:-} "$corpus" > "$log" 2>&1
  local rc=$?
  local runs speed
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || true)
  speed=$(grep -o 'exec/s: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  if [ $rc -eq 0 ]; then
    printf 'fuzz: %-10s ok      %6s s %10s runs %7s exec/s  corpus %s files\n' "$t" "$SECONDS_EACH" "${runs:-?}" \
      "${speed:-?}" "$(ls "$corpus" | wc -l)"
    return 0
  fi
  printf 'fuzz: %-10s FAILED  (exit %d) after %s runs; log: %s\n' "$t" "$rc" "${runs:-?}" "$log"
  grep -E '^(SUMMARY|==[0-9]+==ERROR)|invariant failed|runtime error' "$log" | head -5 | sed 's/^/fuzz:   /'
  grep -o 'Test unit written to .*' "$log" | sed 's/Test unit written to /fuzz:   reproducer: /'
  echo "fuzz:   rerun: $bin $f <reproducer>"
  return 1
}

# ---------------------------------------------------------------- all of them
failed=0
running=0
for t in "${TARGETS[@]}"; do
  if [ "$JOBS" -le 1 ]; then
    run_one "$t" || failed=1
    continue
  fi
  run_one "$t" &
  running=$((running + 1))
  if [ $running -ge "$JOBS" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ $running -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
exit $failed
