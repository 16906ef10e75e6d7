#!/usr/bin/env bash
# `make run`: start the server (amanuensis serve). Uses $AMANUENSIS_MODEL, else
# the first models/ggml-*.bin, else the bundled random-weight test fixture
# (meaningless text, but it exercises the whole pipeline).
# Host/port: $AMANUENSIS_HOST (127.0.0.1) and $AMANUENSIS_PORT (9050); other
# settings come from the environment (ENABLE_BATCHING, BATCH_MAX_SIZE,
# BATCH_MAX_WAIT_MS, AMANUENSIS_API_KEYS, AMANUENSIS_MAX_UPLOAD_MB) or extra
# arguments: ./scripts/run.sh --max-queue 16
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
exec ./build/amanuensis serve -m "$model" --host "${AMANUENSIS_HOST:-127.0.0.1}" \
  --port "${AMANUENSIS_PORT:-9050}" "$@"
