#!/usr/bin/env bash
# Download a whisper.cpp ggml model from the public model zoo.
#   scripts/download-model.sh NAME [DIR]     e.g. base.en, tiny, small.en-q5_1, large-v3
set -euo pipefail
name="${1:-base.en}"
dir="${2:-models}"
case "$name" in
  *[!A-Za-z0-9._-]*) echo "download-model: invalid model name '$name'" >&2; exit 2 ;;
esac
url="https://huggingface.co/ggerganov/whisper.cpp/resolve/main/ggml-${name}.bin"
mkdir -p "$dir"
out="$dir/ggml-${name}.bin"
if [ -s "$out" ]; then echo "download-model: $out already exists"; exit 0; fi
echo "download-model: fetching $url"
if ! curl -fL --connect-timeout 15 --retry 2 -o "$out.part" "$url"; then
  rm -f "$out.part"
  echo "download-model: could not download ggml-${name}.bin (offline, or no such model)." >&2
  echo "download-model: copy a whisper.cpp ggml model file into $dir/ by hand instead." >&2
  exit 1
fi
mv "$out.part" "$out"
echo "download-model: saved $out — run with: AMANUENSIS_MODEL=$out make run"
