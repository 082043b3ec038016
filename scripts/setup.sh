#!/usr/bin/env bash
# Create .venv in the repo root and install ragent with its pinned dependencies.
# Usage: scripts/setup.sh [--dev]   (--dev adds the test, lint and Studio tooling)
# Re-running is cheap: the install is skipped while pyproject.toml is unchanged.
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

base=".venv/.ragent-installed-$(sha256sum pyproject.toml | cut -c1-16)"
stamp="${base}${extras:+-dev}"
# A dev install also satisfies a plain one.
if [[ ! -f "$stamp" && ! -f "${base}-dev" ]]; then
    echo "Installing ragent${extras} into .venv (the first run takes a few minutes; log: .venv/install.log)"
    log=.venv/install.log
    {
        .venv/bin/python -m pip install --quiet --upgrade pip &&
        # torch first and exactly pinned: the CPU build; an unpinned resolve pulls a CUDA stack.
        .venv/bin/python -m pip install --quiet "torch==2.13.0" &&
        .venv/bin/python -m pip install --quiet -e ".${extras}"
    } >"$log" 2>&1 || { tail -n 30 "$log" >&2; echo "installation failed; see $log" >&2; exit 1; }
    rm -f .venv/.ragent-installed-*
    touch "$stamp"
fi
