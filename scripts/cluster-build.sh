#!/usr/bin/env bash
# Finds or builds the local Kubernetes control plane pinned in
# tools/cluster/versions.env and prints the folder that holds it
# (<repo>/.tools/cluster/bin), ready to put on PATH.
#
# Binaries: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
# (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3), kwok
# (sigs.k8s.io/kwok) and controller-gen (sigs.k8s.io/controller-tools); and,
# generated at build time by controller-gen from the pinned prometheus-operator
# API module, the monitoring.coreos.com CRDs (crds/*.yaml beside bin/); and kwok's
# stage definitions from its module (kwok-stages/*.yaml).
#
# Everything is built with `go build` through the Go module proxy into a cache
# outside the repo, ${KNHK_CLUSTER_CACHE:-$HOME/.cache/knhk-cluster}/<key>/,
# where <key> hashes tools/cluster/ and the Go version: a fresh clone on the
# same machine reuses it, and changing a pin rebuilds. A cold build takes
# about 15 minutes on 2 cores; progress goes to stderr, stdout carries only
# the folder.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo/tools/cluster"
link_root="$repo/.tools/cluster"
cache_root="${KNHK_CLUSTER_CACHE:-$HOME/.cache/knhk-cluster}"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok controller-gen)

log() { echo "cluster-build: $*" >&2; }
die() { echo "cluster-build: error: $*" >&2; exit 1; }

# shellcheck source=../tools/cluster/versions.env
source "$src/versions.env"

require_pin() { # <module> <version>
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$1 $2( |\$)" "$src/go.mod" ||
    die "tools/cluster/go.mod does not require $1 $2 (tools/cluster/versions.env); update both together"
}
require_pin k8s.io/kubernetes "$KUBERNETES_VERSION"
require_pin go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
require_pin sigs.k8s.io/kwok "$KWOK_VERSION"
require_pin sigs.k8s.io/controller-tools "$CONTROLLER_TOOLS_VERSION"
require_pin github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring "$PROMETHEUS_OPERATOR_API_VERSION"
grep -q "k8s.io/api => k8s.io/api $KUBERNETES_STAGING_VERSION\$" "$src/go.mod" ||
  die "tools/cluster/go.mod does not replace the staging modules with $KUBERNETES_STAGING_VERSION"

command -v go >/dev/null || die "Go is needed to build the control plane"

# shellcheck source=lib/go-tool-build.sh
source "$repo/scripts/lib/go-tool-build.sh"
key="$(go_tool_cache_key "$src")"
out="$cache_root/$key"
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

# go build prints nothing while it compiles; say every minute that it still does.
with_progress() { # <label> <command...>
  local label="$1" started=$SECONDS ticker
  shift
  ( while sleep 60; do log "$label: still building ($((SECONDS - started))s)"; done ) &
  ticker=$!
  local status=0
  "$@" || status=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  return "$status"
}

complete() {
  local name
  for name in "${BINARIES[@]}"; do [[ -x "$out/bin/$name" ]] || return 1; done
  [[ -f "$out/crds/.complete" ]]
}

if ! complete; then
  log "building the control plane into $out (a cold build takes about 15 minutes on 2 cores)"
  started=$SECONDS
  tmp="$(mktemp -d "$out/.build-XXXXXX")"
  mkdir -p "$tmp/bin" "$tmp/crds"
  (
    cd "$src"
    export GOFLAGS=-mod=mod
    log "go mod download"
    go mod download
    log "go build ${BINARIES[*]}"
    with_progress "go build" nice -n 10 go build -trimpath -buildvcs=false \
      -ldflags "-s -w \
        -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
        -X k8s.io/component-base/version.gitMajor=1 \
        -X k8s.io/component-base/version.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) \
        -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION" \
      -o "$tmp/bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
      ./cmd/etcd sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/controller-tools/cmd/controller-gen
    log "controller-gen: monitoring.coreos.com CRDs from prometheus-operator $PROMETHEUS_OPERATOR_API_VERSION"
    "$tmp/bin/controller-gen" crd:crdVersions=v1,maxDescLen=0,allowDangerousTypes=true \
      paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1/... \
      paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1/... \
      output:crd:dir="$tmp/crds"
  ) >&2
  ls "$tmp/crds"/*.yaml >/dev/null 2>&1 || die "controller-gen wrote no CRD"
  touch "$tmp/crds/.complete"
  rm -rf "$out/bin" "$out/crds"
  mv "$tmp/bin" "$out/bin"
  mv "$tmp/crds" "$out/crds"
  rm -rf "$tmp"
  log "built the control plane in $((SECONDS - started))s"
fi
# kwok's stage definitions (how simulated nodes, pods and volumes move through their lifecycle)
# ship in its module: copied from the pinned module, never into the repo.
if [[ ! -f "$out/kwok-stages/.complete" ]]; then
  kwok_dir="$(cd "$src" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  rm -rf "$out/kwok-stages" && mkdir -p "$out/kwok-stages"
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/general/pod-create pod/general/pod-init-container-running pod/general/pod-init-container-completed \
    pod/general/pod-ready pod/general/pod-complete pod/general/pod-delete \
    volume/fast/pvc-provision volume/fast/pv-bind volume/fast/pv-delete volume/fast/pvc-delete; do
    cp "$kwok_dir/kustomize/stage/$stage.yaml" "$out/kwok-stages/$(basename "$stage").yaml"
  done
  touch "$out/kwok-stages/.complete"
fi
exec 9>&-

mkdir -p "$link_root"
ln -sfn "$out/bin" "$link_root/bin"
ln -sfn "$out/crds" "$link_root/crds"
ln -sfn "$out/kwok-stages" "$link_root/kwok-stages"
echo "$link_root/bin"
