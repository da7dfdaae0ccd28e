#!/usr/bin/env bash
# Runs inside the freshly created conda environment (Snakemake post-deploy hook),
# from the workflow's working directory (the repository root).
set -euo pipefail
bash scripts/install-deps.sh "$CONDA_PREFIX/bin/python"
