#!/usr/bin/env bash
# Install the Debian packages amanuensis needs to build and test (Debian 12).
# Idempotent: does nothing when everything is present. Needs root (or sudo).
set -euo pipefail

# The VAD model that ships with the repository goes where --vad-model looks by default.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$ROOT/models/ggml-silero-v6.2.0.bin" ]; then
  mkdir -p "$ROOT/models" && cp "$ROOT/data/ggml-silero-v6.2.0.bin" "$ROOT/models/"
fi

PKGS=(
  build-essential cmake pkg-config
  libopenblas-dev        # GEMM
  libfftw3-dev           # FFT for the mel spectrogram
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev  # audio decoding
  libmicrohttpd-dev      # HTTP server
  libcjson-dev           # JSON
  zlib1g-dev             # gzip compression ratio
  libpcre2-dev           # tokenizer pre-split regex
  libcurl4-openssl-dev   # tests and load generator only
  curl                   # scripts/download-model.sh
  jq                     # bench/ scripts read bench_core --json
  gnuplot-nox            # bench/run.sh plots (bench/plot.sh)
  python3                # bench/run.sh cuts its clips (wave module)
  haproxy                # tests only: e2e_scale runs deploy/haproxy.cfg in the foreground (never as a service)
  clang                  # make fuzz only: libFuzzer targets (fuzz/), built with clang 14
  libclang-rt-14-dev     # make fuzz only: libFuzzer and the sanitizer runtimes (libclang_rt.fuzzer-x86_64.a)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
