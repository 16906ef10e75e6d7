#!/usr/bin/env bash
# Download a whisper.cpp ggml model from the public model zoo.
#   scripts/download-model.sh NAME [DIR]     e.g. base.en, tiny, small.en-q5_1, large-v3
# AMANUENSIS_MODEL_URL overrides the base URL the file is fetched from (a mirror,
# or a local server in tests); the file fetched is $AMANUENSIS_MODEL_URL/ggml-NAME.bin.
set -euo pipefail
name="${1:-base.en}"
dir="${2:-models}"
case "$name" in
  *[!A-Za-z0-9._-]*) echo "download-model: invalid model name '$name'" >&2; exit 2 ;;
esac
base="${AMANUENSIS_MODEL_URL:-https://huggingface.co/ggerganov/whisper.cpp/resolve/main}"
url="${base%/}/ggml-${name}.bin"
mkdir -p "$dir"
out="$dir/ggml-${name}.bin"
if [ -s "$out" ]; then echo "download-model: $out already exists"; exit 0; fi
echo "download-model: fetching $url"
trap 'rm -f "$out.part"' EXIT   # no partial file, even when interrupted
if ! curl -fL --connect-timeout 15 --retry 2 -o "$out.part" "$url"; then
  rm -f "$out.part"
  echo "download-model: could not download ggml-${name}.bin (offline, or no such model)." >&2
  echo "download-model: copy a whisper.cpp ggml model file into $dir/ by hand instead." >&2
  exit 1
fi
mv "$out.part" "$out"
echo "download-model: saved $out — run with: AMANUENSIS_MODEL=$out make run"
