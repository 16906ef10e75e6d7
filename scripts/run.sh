#!/usr/bin/env bash
# `make run`: start the main job. Uses $AMANUENSIS_MODEL, else the first
# models/ggml-*.bin, else the bundled random-weight test fixture (meaningless
# text, but it exercises the whole pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${AMANUENSIS_MODEL:-}"
if [ -z "$model" ]; then
  model=$(ls models/ggml-*.bin 2>/dev/null | head -n 1 || true)
fi
if [ -z "$model" ]; then
  echo "run: no model found (set AMANUENSIS_MODEL or run: make model MODEL=base.en);" >&2
  echo "run: using the bundled random-weight fixture tests/data/ggml-test-tiny.en.bin" >&2
  model=tests/data/ggml-test-tiny.en.bin
fi
exec ./build/amanuensis info -m "$model" tests/data/jfk.wav
