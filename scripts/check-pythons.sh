#!/usr/bin/env bash
# The torch-free core (params and their schema, the stage table and the engine files it generates,
# the package layering) under each newer Python this machine has: 3.12 and 3.13 are supported by
# pyproject.toml, but the pinned torch 2.13.0 CPU wheel on this machine is for 3.11 only, so the
# full suite runs on 3.11 (make test) and these interpreters get what runs without torch.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
find_python() {   # $1 = 3.12: on PATH, or installed by pyenv
    command -v "python$1" >/dev/null 2>&1 && "python$1" -c "" 2>/dev/null && { command -v "python$1"; return; }
    local root; root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    ls -d "$root"/versions/"$1".*/bin/python 2>/dev/null | sort -V | tail -1
}
for version in 3.12 3.13; do
    py=$(find_python "$version")
    if [ -z "$py" ]; then echo "python $version: not on this machine, skipped"; continue; fi
    venv="$ROOT/.venv-$version"
    if [ ! -x "$venv/bin/pytest" ]; then
        "$py" -m venv "$venv"
        "$venv/bin/pip" install -q numpy==2.4.6 pyyaml==6.0.3 jsonschema==4.26.0 pytest==9.2.0 2>&1 \
            | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    fi
    echo "python $version ($("$venv/bin/python" --version)):"
    (cd "$ROOT" && PYTHONPATH="$ROOT" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        tests/test_config.py tests/test_package_layers.py tests/test_pipeline.py -k "not closure and not pixelvae_variant")
done
