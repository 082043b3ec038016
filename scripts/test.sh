#!/usr/bin/env bash
# Set up with the dev tooling, then lint, type-check, check the import layers, run the fast
# answer-evaluation sets and every test, then the real-model tier (tests/realmodel) alone.
# pytest runs last, so its summary line is the last thing printed.
# Redis, Elasticsearch, Weaviate and the HTTP servers are started by the test fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
# The production retrieval engines the contract and e2e suites run against: Elasticsearch
# (from Maven Central, needs a JDK >= 21 and mvn) and Weaviate (built with Go >= 1.26), cached
# outside the clone. The first run builds them (about 5 minutes); later runs reuse them.
scripts/engines.sh install
# The SQL source's tests start a real PostgreSQL server: Debian's package.
if ! command -v initdb >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    echo "Installing PostgreSQL (Debian's postgresql package) for the SQL source's tests"
    sudo=""; [[ "$(id -u)" == 0 ]] || sudo="sudo -n"
    $sudo apt-get install -y -q postgresql >/dev/null
fi
# The local GGUF model of the real-model tier (a verified test fixture, ~0.5 GB, cached).
scripts/models.sh install qwen2.5-coder-0.5b
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Imports run downhill: the layer contracts in pyproject.toml ([tool.importlinter]).
.venv/bin/lint-imports
# The deployment files (deploy/, Dockerfile), offline: compose files through compose-go, the
# Helm chart through helm lint/template and kubeconform, the Dockerfile through hadolint.
# Pinned tools, cached outside the clone: the first run builds them (a few minutes).
scripts/deploy_check.sh
# The fast answer-evaluation sets, offline, gated by evals/datasets/datasets.yaml: a metric
# below its threshold fails the build. The report lands in .ragent/eval-report/ (ignored).
eval_status=0
.venv/bin/ragent eval answers evals/datasets/samples_qa.jsonl evals/datasets/tool_use.jsonl \
    evals/datasets/injection.jsonl evals/datasets/structured.jsonl --report .ragent/eval-report || eval_status=$?
# The retrieval gate: BM25, dense and hybrid nDCG@10 on each BEIR dev set, offline, against
# its thresholds in the same file (a few minutes on two cores, most of it embedding dbpedia).
for beir in evals/datasets/beir/*/; do
    .venv/bin/ragent eval retrieval --beir "$beir" || eval_status=$?
done
status=0
.venv/bin/pytest "$@" || status=$?
# pytest exits 5 when it collected no tests: that is a failure here, never a pass.
if [[ $status -eq 5 ]]; then
    echo "no tests were collected" >&2
    exit 1
fi
# The real-model tier, alone: a local llama.cpp model decodes on every core, and slows
# to a crawl when other tests compete for them.
if [[ $# -eq 0 ]]; then
    realmodel_status=0
    .venv/bin/pytest -m realmodel tests/realmodel || realmodel_status=$?
    if [[ $status -eq 0 ]]; then
        status=$realmodel_status
    fi
fi
if [[ $eval_status -ne 0 ]]; then
    echo "the answer or retrieval evaluation sets missed a threshold (see above)" >&2
    if [[ $status -eq 0 ]]; then
        status=$eval_status
    fi
fi
exit $status
