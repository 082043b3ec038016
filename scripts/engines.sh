#!/usr/bin/env bash
# Install, start and stop the production retrieval engines for tests and benchmarks:
# Elasticsearch (a distribution from Maven Central, run on a JDK >= 21) and Weaviate (built
# from its Go module). Both are cached outside the clone, so a second run reuses them.
#
# Usage:
#   scripts/engines.sh install [elasticsearch|weaviate|all]   # fetch/build into the cache
#   scripts/engines.sh start ENGINE RUN_DIR   # start on free loopback ports, wait until ready;
#                                             # RUN_DIR/env then holds the variables to reach it
#   scripts/engines.sh stop RUN_DIR           # stop what `start` started there
#   scripts/engines.sh path                   # print the cache folder
#
# The cache is $RAGENT_ENGINES_CACHE, else /var/cache/ragent-engines for root (a service
# user must read it: Elasticsearch refuses to run as root), else ~/.cache/ragent-engines.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [[ -n "${RAGENT_ENGINES_CACHE:-}" ]]; then
    cache="$RAGENT_ENGINES_CACHE"
elif [[ $(id -u) -eq 0 ]]; then
    cache=/var/cache/ragent-engines
else
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/ragent-engines"
fi
export RAGENT_ENGINES_CACHE="$cache"

die() { echo "engines: $*" >&2; exit 2; }

engine_script() {
    case "$1" in
        elasticsearch|es) echo "$here/engines/elasticsearch.sh" ;;
        weaviate) echo "$here/engines/weaviate.sh" ;;
        *) die "unknown engine '$1' (elasticsearch or weaviate)" ;;
    esac
}

cmd="${1:-}"
case "$cmd" in
    install)
        which="${2:-all}"
        if [[ "$which" == all ]]; then
            "$here/engines/elasticsearch.sh" install
            "$here/engines/weaviate.sh" install
        else
            "$(engine_script "$which")" install
        fi
        ;;
    start)
        [[ $# -eq 3 ]] || die "usage: engines.sh start ENGINE RUN_DIR"
        mkdir -p "$3"
        "$(engine_script "$2")" start "$(cd "$3" && pwd)"
        ;;
    stop)
        [[ $# -eq 2 ]] || die "usage: engines.sh stop RUN_DIR"
        [[ -f "$2/engine" ]] || exit 0
        "$(engine_script "$(cat "$2/engine")")" stop "$(cd "$2" && pwd)"
        ;;
    path) echo "$cache" ;;
    *) die "usage: engines.sh install|start|stop|path (see the header of this script)" ;;
esac
