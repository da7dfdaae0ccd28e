#!/usr/bin/env bash
# Install npdraw's pinned dependencies into the Python environment given as $1
# (default: the python on PATH).  Used by `make install` (.venv) and by the
# Snakemake conda environment's post-deploy step, so both get the same set.
set -euo pipefail
PY=${1:-python}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# pip's extra local indexes on some machines print one harmless warning per package.
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
# torch first, from the exact pin, so no later requirement can pull another build.
quiet "$PY" -m pip install -q torch==2.13.0
quiet "$PY" -m pip install -q -r "$ROOT/requirements.lock"
# scikit-learn-extra 0.3.0's wheel was built for numpy 1: compile it against numpy 2.
quiet "$PY" -m pip install -q --no-build-isolation --no-cache-dir \
    --no-binary scikit-learn-extra scikit-learn-extra==0.3.0
quiet "$PY" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
"$PY" -c "import torch, torchmetrics, dvclive, snakemake, sklearn_extra.cluster, kmedoids, npdraw; assert torch.__version__.startswith('2.13.0'), torch.__version__"
