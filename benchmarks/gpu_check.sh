#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py says what it prints): one command on the GPU machine, with the
# Python there (PyTorch, numpy, pyyaml, tqdm) and this checkout's code; no install step.
#   bash benchmarks/gpu_check.sh --prepare              # first, here: .gpucheck/ (MNIST files + bank)
#   bash benchmarks/gpu_check.sh                        # there, with .gpucheck/ carried along
#   bash benchmarks/gpu_check.sh --device cpu --tiny    # the CPU fallback that CI runs
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1   # one line per figure, no progress bars
PY="${PYTHON:-python3}"
if [[ -x .venv/bin/python && -z "${PYTHON:-}" ]]; then PY=.venv/bin/python; fi
exec "$PY" -m benchmarks.gpu_check "$@"
