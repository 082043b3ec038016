#!/usr/bin/env bash
# Elasticsearch for tests and benchmarks: the integ-test distribution from Maven Central, run
# on a JDK >= 21 found on this machine. Called by scripts/engines.sh, which exports
# RAGENT_ENGINES_CACHE.
#
#   elasticsearch.sh install          # fetch the distribution and add the analysis plugin,
#                                     # unless the cache already holds both
#   elasticsearch.sh start RUN_DIR    # start one node on free loopback ports, wait for
#                                     # yellow health; RUN_DIR/env holds ELASTICSEARCH_URL,
#                                     # RUN_DIR/pid the launcher's process id
#   elasticsearch.sh stop RUN_DIR     # SIGTERM, then SIGKILL after a grace period
#
# Why the integ-test distribution: it is the one Elasticsearch build Maven Central serves
# (`mvn dependency:copy`), so no other download site is needed. 9.2.8 is the newest 9.x
# there. It lacks the analysis-common module, whose `stemmer` and `asciifolding` filters the
# index mapping (app/retrieval/remote/elastic_schema.py) uses; `install` therefore builds the small
# plugin in scripts/engines/es-analysis (the same Lucene filters, under the same names) and
# installs it into the cached distribution, so the mapping is the one a stock server takes.
#
# Elasticsearch refuses to run as root. As root the node runs as the system user
# ragent-engines (created when missing); its config, data and logs then live in RUN_DIR/es
# if that user can reach RUN_DIR, else in a folder under /tmp that RUN_DIR/es links to and
# `stop` removes. The cache must be readable by that user (the default, /var/cache, is).
#
# Node settings: single node, security off (plain HTTP, no credentials), HTTP and transport
# on 127.0.0.1 only, disk watermarks off, heap ELASTICSEARCH_HEAP (default 512m).
# Tunables: ELASTICSEARCH_START_TIMEOUT (seconds to wait for health, default 180),
# ELASTICSEARCH_STOP_GRACE (seconds between SIGTERM and SIGKILL, default 30), ES_JAVA_HOME
# (the JDK; else the newest JDK >= 21 under /usr/lib/jvm, JAVA_HOME or on PATH).
set -euo pipefail

VERSION=9.2.8
ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$VERSION:zip"
JDK_MIN=21
PLUGIN=ragent-english-analysis
SERVICE_USER=ragent-engines
INSTALL_REV=1 # raise it when `install` changes what it lays down: caches then reinstall

here="$(cd "$(dirname "$0")" && pwd)"
plugin_src="$here/es-analysis"
cache="${RAGENT_ENGINES_CACHE:?run through scripts/engines.sh}"
home="$cache/elasticsearch-$VERSION"
dist="$home/dist"
stamp="$home/ready"

die() { echo "elasticsearch: $*" >&2; exit 2; }
log() { echo "elasticsearch: $*" >&2; }
# shellcheck source=scripts/engines/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

# The major version of the JDK at $1, from its `release` file (empty when it is no JDK).
jdk_major() {
    [[ -x "$1/bin/java" && -f "$1/release" ]] || return 0
    local v
    v="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release")"
    echo "${v#1.}"
}

# Print the JDK to run on: ES_JAVA_HOME when set (it must qualify), else the newest JDK >=
# $JDK_MIN among JAVA_HOME, /usr/lib/jvm/* and the one `java` on PATH belongs to.
find_jdk() {
    if [[ -n "${ES_JAVA_HOME:-}" ]]; then
        local m
        m="$(jdk_major "$ES_JAVA_HOME")"
        [[ -n "$m" && "$m" -ge $JDK_MIN ]] ||
            die "ES_JAVA_HOME=$ES_JAVA_HOME is not a JDK >= $JDK_MIN"
        echo "$ES_JAVA_HOME"
        return
    fi
    local best="" best_major=0 candidate m
    local candidates=("${JAVA_HOME:-}" /usr/lib/jvm/*)
    if command -v java >/dev/null 2>&1; then
        candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
    fi
    for candidate in "${candidates[@]}"; do
        [[ -n "$candidate" && -d "$candidate" ]] || continue
        m="$(jdk_major "$candidate")"
        if [[ -n "$m" ]] && ((m >= JDK_MIN && m > best_major)); then
            best="$candidate"
            best_major=$m
        fi
    done
    [[ -n "$best" ]] || die "Elasticsearch $VERSION needs a JDK >= $JDK_MIN (none found under" \
        "/usr/lib/jvm, JAVA_HOME or PATH; set ES_JAVA_HOME)"
    echo "$best"
}

# A digest of everything the installed distribution depends on: a changed plugin source
# makes the next `install` rebuild it, and an unchanged one makes `install` a no-op.
wanted_stamp() {
    {
        echo "$ARTIFACT $INSTALL_REV"
        (cd "$plugin_src" && find pom.xml src -type f -print0 | sort -z | xargs -0 sha256sum)
    } | sha256sum | cut -d' ' -f1
}

run_logged() { # run "$@" with its output in $home/build.log, shown when it fails
    if ! "$@" >>"$home/build.log" 2>&1; then
        tail -n 40 "$home/build.log" >&2
        die "failed: $* (log: $home/build.log)"
    fi
}

install() {
    local want
    want="$(wanted_stamp)"
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$dist/bin/elasticsearch" ]] && return 0
    command -v mvn >/dev/null 2>&1 ||
        die "installing Elasticsearch $VERSION needs Maven ('mvn') on PATH, and none was found"
    umask 022 # the service user reads the distribution
    mkdir -p "$home"
    # One install at a time per cache: a second caller waits, then finds it done.
    exec 9>"$home/.install.lock"
    flock 9
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$dist/bin/elasticsearch" ]]; then
        exec 9>&-
        return 0
    fi
    rm -rf "$home"/.staging.* "$home"/.download.* # an interrupted install's leftovers
    local jdk started=$SECONDS zip="$home/elasticsearch-$VERSION.zip"
    jdk="$(find_jdk)"
    : >"$home/build.log"
    if [[ ! -f "$zip" ]]; then
        log "fetching $ARTIFACT"
        local dl
        dl="$(mktemp -d "$home/.download.XXXXXX")"
        run_logged env JAVA_HOME="$jdk" mvn -q -B dependency:copy \
            "-Dartifact=$ARTIFACT" "-DoutputDirectory=$dl"
        mv -f "$dl/elasticsearch-$VERSION.zip" "$zip"
        rm -rf "$dl"
    fi
    # Unpack and add the plugin in a staging folder, then swap it in whole: an interrupted
    # install leaves no half-made distribution behind.
    local staging lucene
    staging="$(mktemp -d "$home/.staging.XXXXXX")"
    run_logged unzip -q "$zip" -d "$staging"
    # config/ ships group-only; it is only the template each run copies, so anyone may read it.
    chmod -R a+rX "$staging/elasticsearch-$VERSION/config"
    lucene="$(basename "$staging/elasticsearch-$VERSION"/lib/lucene-core-*.jar .jar)"
    lucene="${lucene#lucene-core-}"
    log "building the $PLUGIN plugin (Elasticsearch $VERSION, Lucene $lucene, JDK $jdk)"
    cp -r "$plugin_src" "$staging/plugin-src"
    rm -rf "$staging/plugin-src/target"
    run_logged env JAVA_HOME="$jdk" mvn -q -B -f "$staging/plugin-src/pom.xml" package \
        "-Delasticsearch.version=$VERSION" "-Dlucene.version=$lucene"
    run_logged env ES_JAVA_HOME="$jdk" "$staging/elasticsearch-$VERSION/bin/elasticsearch-plugin" \
        install --batch "file://$staging/plugin-src/target/$PLUGIN.zip"
    rm -f "$stamp"
    rm -rf "$dist"
    mv "$staging/elasticsearch-$VERSION" "$dist"
    rm -rf "$staging"
    echo "$want" >"$stamp"
    exec 9>&-
    log "installed in $dist in $((SECONDS - started)) s"
}

as_root() { [[ $(id -u) -eq 0 ]]; }

# Run "$@" as the user the node runs as.
as_node_user() {
    if as_root; then
        setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --clear-groups -- "$@"
    else
        "$@"
    fi
}

ensure_service_user() {
    id -u "$SERVICE_USER" >/dev/null 2>&1 && return 0
    command -v useradd >/dev/null 2>&1 ||
        die "Elasticsearch cannot run as root, and 'useradd' is missing to create" \
            "the system user $SERVICE_USER"
    # A concurrent start may create it first: only a user still missing afterwards is an error.
    useradd --system --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER" 2>/dev/null ||
        id -u "$SERVICE_USER" >/dev/null 2>&1 || die "could not create the system user $SERVICE_USER"
}

# The node's folder (config, data, logs, tmp): RUN_DIR/es, or a folder under /tmp that
# RUN_DIR/es links to when the service user cannot reach RUN_DIR (e.g. under /root).
make_node_home() {
    local run_dir="$1" node_home="$1/es"
    remove_node_home "$run_dir"
    mkdir -p "$node_home"
    if as_root; then
        chown "$SERVICE_USER:" "$node_home"
        if ! as_node_user test -w "$node_home" 2>/dev/null; then
            rmdir "$node_home"
            local side
            side="$(mktemp -d /tmp/ragent-elasticsearch.XXXXXX)"
            chown "$SERVICE_USER:" "$side"
            ln -s "$side" "$node_home"
        fi
    fi
    node_home="$(readlink -f "$node_home")"
    cp -r "$dist/config" "$node_home/config"
    rm -f "$node_home/config/elasticsearch.keystore" # the node creates its own
    mkdir -p "$node_home/data" "$node_home/logs" "$node_home/tmp"
    if as_root; then
        chown -R "$SERVICE_USER:" "$node_home"
    fi
    echo "$node_home"
}

# Remove RUN_DIR/es, and the folder under /tmp it may link to.
remove_node_home() {
    local link="$1/es" target
    if [[ -L "$link" ]]; then
        target="$(readlink "$link")"
        [[ "$target" == /tmp/ragent-elasticsearch.* ]] && rm -rf "$target"
    fi
    rm -rf "$link"
}

# True while $1 is the pid of an Elasticsearch launcher whose config lives in $2 (a
# recycled pid belonging to some other process is never signalled).
ours() {
    local pid="$1" node_home="$2"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    # Process substitution, not a pipe: grep -q may stop reading early, and under pipefail
    # tr's SIGPIPE would fail the test.
    grep -q '^org.elasticsearch.launcher' < <(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) ||
        return 1
    grep -qxF "ES_PATH_CONF=$node_home/config" < <(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null)
}

# Print the pids of every descendant of $1.
descendants() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null || true); do
        echo "$child"
        descendants "$child"
    done
}

# True while one of the pids runs (a zombie left for a parent to reap does not count).
any_alive() {
    local pid
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]]; then
            return 0
        fi
    done
    return 1
}

# Stop the launcher $1 and the server JVM it runs: SIGTERM to the launcher makes it shut the
# server down cleanly; whatever is left after the grace period gets SIGKILL.
terminate() {
    local pid="$1" node_home="$2" grace="${ELASTICSEARCH_STOP_GRACE:-30}"
    ours "$pid" "$node_home" || return 0
    local pids
    mapfile -t pids < <(echo "$pid"; descendants "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while any_alive "${pids[@]}" && ((SECONDS < deadline)); do sleep 0.2; done
    if any_alive "${pids[@]}"; then
        log "still running ${grace} s after SIGTERM: sending SIGKILL to ${pids[*]}"
        kill -KILL "${pids[@]}" 2>/dev/null || true
        while any_alive "${pids[@]}"; do sleep 0.1; done
    fi
}

# Launch once on fresh ports; 0 when ready, 1 when a port was taken meanwhile, else die.
launch() {
    local run_dir="$1" node_home="$2" jdk="$3" timeout="${ELASTICSEARCH_START_TIMEOUT:-180}"
    local ports http transport
    mapfile -t ports < <(pick_ports 2)
    read -r http transport <<<"${ports[*]}"
    [[ -n "${transport:-}" ]] || die "could not pick free ports (this needs python3 on PATH)"
    # A cluster name of this run's own: a health answer from any other node is not taken.
    local cluster="ragent-test-$$-$RANDOM"
    cat >"$node_home/config/elasticsearch.yml" <<EOF
cluster.name: $cluster
node.name: node-1
discovery.type: single-node
network.host: 127.0.0.1
http.port: $http
transport.port: $transport
path.data: $node_home/data
path.logs: $node_home/logs
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
EOF
    local logfile="$run_dir/elasticsearch.log"
    # A clean environment: settings in the caller's shell do not leak in. The node stays in
    # the caller's process group, so a signal to the whole test run reaches it too; the
    # server JVM also exits by itself when its launcher dies.
    local cmd=("$dist/bin/elasticsearch")
    if as_root; then
        cmd=(setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --clear-groups -- "${cmd[@]}")
    fi
    (
        cd "$node_home"
        exec env -i \
            PATH="/usr/bin:/bin" HOME="$node_home" LANG=C.UTF-8 \
            ES_JAVA_HOME="$jdk" \
            ES_PATH_CONF="$node_home/config" \
            ES_TMPDIR="$node_home/tmp" \
            ES_JAVA_OPTS="-Xms${ELASTICSEARCH_HEAP:-512m} -Xmx${ELASTICSEARCH_HEAP:-512m}" \
            "${cmd[@]}"
    ) </dev/null >"$logfile" 2>&1 &
    local pid=$!
    echo "$pid" >"$run_dir/pid"
    local url="http://127.0.0.1:$http" deadline=$((SECONDS + timeout)) health
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$run_dir/pid"
            if grep -qE 'BindException|Address already in use|Failed to bind' "$logfile"; then
                return 1
            fi
            tail -n 40 "$logfile" >&2
            die "the node exited during start-up (log: $logfile)"
        fi
        health="$(curl -fsS --max-time 2 "$url/_cluster/health" 2>/dev/null || true)"
        if [[ "$health" == *"\"cluster_name\":\"$cluster\""* &&
            "$health" =~ \"status\":\"(green|yellow)\" ]]; then
            # The integ-test distribution has no `GET /` (the rest-root module): ask the node.
            local info
            info="$(curl -fsS --max-time 5 "$url/_nodes/_local?filter_path=nodes.*.version")" ||
                info="(no answer)"
            [[ "$info" == *"\"version\":\"$VERSION\""* ]] || {
                terminate "$pid" "$node_home"
                rm -f "$run_dir/pid"
                die "$url answers, but not as Elasticsearch $VERSION: ${info:0:300}"
            }
            echo "ELASTICSEARCH_URL=$url" >"$run_dir/env"
            return 0
        fi
        sleep 0.5
    done
    terminate "$pid" "$node_home"
    rm -f "$run_dir/pid"
    tail -n 40 "$logfile" >&2
    die "no yellow or green cluster health at $url within ${timeout} s (log: $logfile)"
}

start() {
    local run_dir="$1"
    [[ -d "$run_dir" ]] || die "no such folder: $run_dir"
    if [[ -f "$run_dir/pid" && -e "$run_dir/es" ]] &&
        ours "$(cat "$run_dir/pid")" "$(readlink -f "$run_dir/es")"; then
        die "already running in $run_dir (pid $(cat "$run_dir/pid")); stop it first"
    fi
    install
    rm -f "$run_dir/env" "$run_dir/pid"
    echo elasticsearch >"$run_dir/engine"
    if as_root; then
        ensure_service_user
        as_node_user test -r "$dist/lib/elasticsearch-$VERSION.jar" ||
            die "the user $SERVICE_USER cannot read $dist; put the cache in a folder every user" \
                "can read (RAGENT_ENGINES_CACHE)"
    fi
    local jdk node_home started=$SECONDS attempt
    jdk="$(find_jdk)"
    for attempt in 1 2 3; do
        node_home="$(make_node_home "$run_dir")"
        if launch "$run_dir" "$node_home" "$jdk"; then
            log "ready at $(cut -d= -f2 "$run_dir/env") in $((SECONDS - started)) s" \
                "(pid $(cat "$run_dir/pid"))"
            return 0
        fi
        log "a port was taken before the node bound it (attempt $attempt); picking new ports"
    done
    tail -n 20 "$run_dir/elasticsearch.log" >&2
    die "could not bind free ports in three attempts (log: $run_dir/elasticsearch.log)"
}

stop() {
    local run_dir="$1" node_home
    [[ -e "$run_dir/es" ]] || { rm -f "$run_dir/pid" "$run_dir/env"; return 0; }
    node_home="$(readlink -f "$run_dir/es")"
    if [[ -f "$run_dir/pid" ]]; then
        terminate "$(cat "$run_dir/pid")" "$node_home"
    fi
    rm -f "$run_dir/pid" "$run_dir/env"
    if [[ -L "$run_dir/es" ]]; then # the folder under /tmp: its logs are copied back first
        rm -rf "$run_dir/es-logs"
        cp -r "$node_home/logs" "$run_dir/es-logs" 2>/dev/null || true
        remove_node_home "$run_dir"
    fi
}

case "${1:-}" in
    install) install ;;
    start)
        [[ $# -eq 2 ]] || die "usage: elasticsearch.sh start RUN_DIR"
        start "$2"
        ;;
    stop)
        [[ $# -eq 2 ]] || die "usage: elasticsearch.sh stop RUN_DIR"
        stop "$2"
        ;;
    *) die "usage: elasticsearch.sh install | start RUN_DIR | stop RUN_DIR" ;;
esac
