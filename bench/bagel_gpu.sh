#!/usr/bin/env bash
# BAGEL plugin GPU check: bf16 CUDA generation throughput (images/s) on random tiny and
# mid-size checkpoints, plus a device_map="auto" consistency check. Not used by CI.
#
#   bash bench/bagel_gpu.sh                       # tiny + mid, batch 16, 50 grid points
#   bash bench/bagel_gpu.sh --configs tiny --batch 8
#   bash bench/bagel_gpu.sh --device cpu --dtype float32 --configs tiny --steps 4 --batch 2   # dry run
#
# Works from the sources (PYTHONPATH), so a bare GPU machine with torch, transformers,
# accelerate and safetensors needs nothing installed. If diffusers is missing there, carry its
# wheel in .whl/ (see the device notes); wheels found there are installed into /tmp first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="core:plugins/unisandbox-bagel/src${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/bagel-bench-site .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/bagel-bench-site"
fi
export PYTHONUNBUFFERED=1
exec "$PY" bench/bagel_gpu.py "$@"
