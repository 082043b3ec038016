#!/usr/bin/env bash
# Weaviate for tests and benchmarks, built from its Go module (no container runtime needed).
# Called by scripts/engines.sh, which exports RAGENT_ENGINES_CACHE.
#
#   weaviate.sh install          # build the pinned server into the cache unless it is there
#   weaviate.sh start RUN_DIR    # start it on free loopback ports, data in RUN_DIR; wait
#                                # until ready; RUN_DIR/env holds WEAVIATE_URL and
#                                # WEAVIATE_GRPC_PORT, RUN_DIR/pid the server's process id
#   weaviate.sh stop RUN_DIR     # SIGTERM, then SIGKILL after a grace period
#
# Version pin: 1.39.3 is the newest release that builds from the Go module proxy. 1.39.4 to
# 1.39.7 require github.com/weaviate/sroar v0.0.17 / v0.0.18, which the proxy refuses with
# "403 Forbidden: This module version is not available"; 1.39.0 to 1.39.3 use sroar v0.0.16,
# which it serves. The Python client (weaviate-client 4.16.2) is tested against this server.
#
# Listeners: REST binds 127.0.0.1 (--host); gossip and Raft bind CLUSTER_BIND_ADDR=127.0.0.1.
# The public gRPC port and the internal cluster data port bind every interface: Weaviate
# 1.39 listens on ":PORT" for both and has no setting to change that. Every port is picked
# free per run, so two instances never collide; the Go profiling listener (6060), metrics,
# telemetry and the API-based modules are switched off.
#
# Needs Go >= 1.26 to build (only when the cache lacks the binary), and python3, curl and
# flock. Tunables: WEAVIATE_START_TIMEOUT (seconds to wait for ready, default 180),
# WEAVIATE_STOP_GRACE (seconds between SIGTERM and SIGKILL, default 30).
set -euo pipefail

VERSION=1.39.3
MODULE=github.com/weaviate/weaviate/cmd/weaviate-server
GO_MIN=1.26 # the `go` line of weaviate v1.39.3's go.mod

cache="${RAGENT_ENGINES_CACHE:?run through scripts/engines.sh}"
home="$cache/weaviate-v$VERSION"
bin="$home/bin/weaviate-server"

die() { echo "weaviate: $*" >&2; exit 2; }
log() { echo "weaviate: $*" >&2; }
# shellcheck source=scripts/engines/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

# True when Go version $1 (e.g. 1.26.8, 1.26rc1) is at least $GO_MIN.
go_new_enough() {
    local have="${1#go}" major minor
    major="${have%%.*}"
    minor="${have#*.}"
    minor="${minor%%[!0-9]*}"
    local want_major="${GO_MIN%%.*}" want_minor="${GO_MIN#*.}"
    [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || return 1
    ((major > want_major || (major == want_major && minor >= want_minor)))
}

install() {
    [[ -x "$bin" ]] && return 0
    command -v go >/dev/null 2>&1 ||
        die "building Weaviate $VERSION needs Go >= $GO_MIN on PATH, and no 'go' was found"
    local have
    have="$(go env GOVERSION)"
    go_new_enough "$have" ||
        die "building Weaviate $VERSION needs Go >= $GO_MIN; 'go' is $have ($(command -v go))"
    mkdir -p "$home"
    # One build at a time per cache: a second caller waits, then finds the binary.
    exec 9>"$home/.install.lock"
    flock 9
    if [[ ! -x "$bin" ]]; then
        rm -rf "$home"/.build.* # an interrupted build's; none can be running: we hold the lock
        local staging
        staging="$(mktemp -d "$home/.build.XXXXXX")"
        log "building $MODULE@v$VERSION into $home/bin (a cold build takes minutes)"
        local started=$SECONDS
        if ! GOBIN="$staging" go install "$MODULE@v$VERSION" >"$home/build.log" 2>&1; then
            tail -n 30 "$home/build.log" >&2
            rm -rf "$staging"
            die "go install $MODULE@v$VERSION failed (log: $home/build.log)"
        fi
        mkdir -p "$home/bin"
        mv -f "$staging/weaviate-server" "$bin" # same filesystem: the binary appears whole
        rm -rf "$staging"
        log "built in $((SECONDS - started)) s"
    fi
    exec 9>&-
}

# True while $1 is the pid of a weaviate-server whose data lives in RUN_DIR $2 (a recycled
# pid belonging to some other process is never signalled).
ours() {
    local pid="$1" run_dir="$2"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    # -z: NUL-separated records, as /proc keeps argv and the environment.
    grep -qsz '/weaviate-server$' "/proc/$pid/cmdline" || return 1
    grep -qszxF "PERSISTENCE_DATA_PATH=$run_dir/data" "/proc/$pid/environ"
}

terminate() {
    local pid="$1" run_dir="$2" grace="${WEAVIATE_STOP_GRACE:-30}"
    ours "$pid" "$run_dir" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    local ticks=$((grace * 5))
    while alive "$pid" && ((ticks-- > 0)); do sleep 0.2; done
    if alive "$pid"; then
        log "pid $pid still running ${grace} s after SIGTERM: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while alive "$pid"; do sleep 0.1; done
    fi
}

# Whether a process runs, by pid alone: an exiting process's argv and environment vanish
# from /proc before it has exited, so `ours` turns false too early to wait on. A zombie
# counts as gone: its reaping is up to whoever adopted it.
alive() {
    kill -0 "$1" 2>/dev/null && [[ "$(ps -o stat= -p "$1" 2>/dev/null)" != Z* ]]
}

# Launch once on fresh ports; 0 when ready, 1 when a port was taken meanwhile, else die.
launch() {
    local run_dir="$1" timeout="${WEAVIATE_START_TIMEOUT:-180}"
    local ports http grpc gossip data raft raft_rpc
    mapfile -t ports < <(pick_ports 6)
    read -r http grpc gossip data raft raft_rpc <<<"${ports[*]}"
    local logfile="$run_dir/weaviate.log"
    # A clean environment: settings in the caller's shell (API keys, modules) do not leak in.
    # The server stays in the caller's process group, so a signal to the whole test run
    # (Ctrl-C, a CI timeout) reaches it too.
    env -i \
        PATH="/usr/bin:/bin" HOME="$run_dir" TMPDIR="${TMPDIR:-/tmp}" \
        PERSISTENCE_DATA_PATH="$run_dir/data" \
        AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true \
        DEFAULT_VECTORIZER_MODULE=none \
        API_BASED_MODULES_DISABLED=true \
        DISABLE_TELEMETRY=true \
        LOG_LEVEL=info \
        GO_PROFILING_DISABLE=true \
        PROMETHEUS_MONITORING_ENABLED=false \
        CLUSTER_HOSTNAME=node1 \
        CLUSTER_BIND_ADDR=127.0.0.1 \
        CLUSTER_ADVERTISE_ADDR=127.0.0.1 \
        CLUSTER_GOSSIP_BIND_PORT="$gossip" \
        CLUSTER_DATA_BIND_PORT="$data" \
        RAFT_PORT="$raft" \
        RAFT_INTERNAL_RPC_PORT="$raft_rpc" \
        RAFT_BOOTSTRAP_EXPECT=1 \
        GRPC_PORT="$grpc" \
        "$bin" --host 127.0.0.1 --port "$http" --scheme http \
        </dev/null >"$logfile" 2>&1 &
    local pid=$!
    echo "$pid" >"$run_dir/pid"
    local url="http://127.0.0.1:$http" deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            if grep -q 'address already in use' "$logfile"; then
                rm -f "$run_dir/pid"
                return 1
            fi
            tail -n 40 "$logfile" >&2
            rm -f "$run_dir/pid"
            die "the server exited during start-up (log: $logfile)"
        fi
        # gRPC starts beside REST and exits the process if its port is taken: both must answer.
        if curl -fsS -o /dev/null --max-time 2 "$url/v1/.well-known/ready" 2>/dev/null &&
            (exec 3<>"/dev/tcp/127.0.0.1/$grpc") 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
            local meta
            meta="$(curl -fsS --max-time 5 "$url/v1/meta")" ||
                die "ready, but $url/v1/meta did not answer"
            [[ "$meta" == *"\"version\":\"$VERSION\""* ]] || {
                terminate "$pid" "$run_dir"
                die "$url answers, but not as Weaviate $VERSION: ${meta:0:200}"
            }
            printf 'WEAVIATE_URL=%s\nWEAVIATE_GRPC_PORT=%s\n' "$url" "$grpc" >"$run_dir/env"
            return 0
        fi
        sleep 0.25
    done
    terminate "$pid" "$run_dir"
    rm -f "$run_dir/pid"
    tail -n 40 "$logfile" >&2
    die "not ready at $url/v1/.well-known/ready within ${timeout} s (log: $logfile)"
}

start() {
    [[ -d "$1" ]] || die "no such folder: $1"
    # The physical path: `stop` recognises the server by it, however RUN_DIR is spelled.
    local run_dir
    run_dir="$(cd "$1" && pwd -P)"
    if [[ -f "$run_dir/pid" ]] && ours "$(cat "$run_dir/pid")" "$run_dir"; then
        die "already running in $run_dir (pid $(cat "$run_dir/pid")); stop it first"
    fi
    install
    rm -f "$run_dir/env"
    mkdir -p "$run_dir/data"
    echo weaviate >"$run_dir/engine"
    local started=$SECONDS attempt
    for attempt in 1 2 3; do
        if launch "$run_dir"; then
            log "ready at $(grep WEAVIATE_URL "$run_dir/env" | cut -d= -f2) in $((SECONDS - started)) s (pid $(cat "$run_dir/pid"))"
            return 0
        fi
        log "a port was taken before the server bound it (attempt $attempt); picking new ports"
    done
    tail -n 20 "$run_dir/weaviate.log" >&2
    die "could not bind free ports in three attempts (log: $run_dir/weaviate.log)"
}

stop() {
    [[ -f "$1/pid" ]] || return 0
    local run_dir
    run_dir="$(cd "$1" && pwd -P)"
    terminate "$(cat "$run_dir/pid")" "$run_dir"
    rm -f "$run_dir/pid" "$run_dir/env"
}

case "${1:-}" in
    install) install ;;
    start)
        [[ $# -eq 2 ]] || die "usage: weaviate.sh start RUN_DIR"
        start "$2"
        ;;
    stop)
        [[ $# -eq 2 ]] || die "usage: weaviate.sh stop RUN_DIR"
        stop "$2"
        ;;
    *) die "usage: weaviate.sh install | start RUN_DIR | stop RUN_DIR" ;;
esac
