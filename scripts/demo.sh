#!/usr/bin/env bash
# Set up, ingest the bundled sample documents and ask a question, fully offline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export RAGENT_DATA_DIR="${RAGENT_DATA_DIR:-$PWD/.ragent}"
.venv/bin/ragent ingest samples
.venv/bin/ragent ask "${1:-How often does SQLite run a checkpoint in WAL mode?}"
