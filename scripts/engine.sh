#!/usr/bin/env bash
# Finds or builds the Pulumi engine pinned in tools/engine/versions.env and
# prints the folder that holds it (<repo>/.tools/bin), ready to put on PATH:
#
#   export PATH="$(scripts/engine.sh):$PATH"
#
# Three binaries: pulumi (CLI and engine), pulumi-language-nodejs (runs the
# TypeScript program and policy packs) and pulumi-resource-kubernetes.
# A `pulumi` v3 at or above the pin that is already on PATH is used as it is,
# with the language host next to it when there is one; anything missing is
# built with `go build` through the Go module proxy into a cache outside the
# repo, ${KNHK_ENGINE_CACHE:-$HOME/.cache/knhk-engine}/<binary>-<key>/, where
# <key> hashes the pins and that binary's sources under tools/engine/: a fresh
# clone on the same machine reuses it, and changing a pin rebuilds.
#
# Progress goes to stderr; stdout carries only the folder.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
engine_src="$repo/tools/engine"
link_dir="$repo/.tools/bin"
cache_root="${KNHK_ENGINE_CACHE:-$HOME/.cache/knhk-engine}"

log() { echo "engine: $*" >&2; }
die() { echo "engine: error: $*" >&2; exit 1; }

# shellcheck source=../tools/engine/versions.env
source "$engine_src/versions.env"

require_pin() { # <go.mod> <module> <version>
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2 $3( |\$)" "$1" ||
    die "$1 does not require $2 $3 (tools/engine/versions.env); update both together"
}
require_pin "$engine_src/go.mod" github.com/pulumi/pulumi/pkg/v3 "$PULUMI_VERSION"
require_pin "$engine_src/go.mod" github.com/pulumi/pulumi/sdk/v3 "$PULUMI_VERSION"
require_pin "$engine_src/kubernetes/go.mod" github.com/pulumi/pulumi-kubernetes/provider/v4 \
  "$KUBERNETES_PROVIDER_MODULE_VERSION"

# cache_key <name>: a hash of the pins and of the sources that <name> is built from, so that a
# change to one binary's sources rebuilds that binary only.
cache_key() {
  local sources
  case "$1" in
    pulumi) sources=(go.mod go.sum) ;;
    pulumi-language-nodejs) sources=(go.mod go.sum cmd/pulumi-language-nodejs) ;;
    pulumi-resource-kubernetes) sources=(kubernetes) ;;
  esac
  (
    cd "$engine_src"
    find versions.env "${sources[@]}" -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' -o -name '*.env' -o -name '*.patch' \) |
      LC_ALL=C sort | xargs sha256sum
    go env GOVERSION
  ) | sha256sum | cut -c1-16
}

# on_path <name>: the first <name> on PATH that is not our own link.
on_path() {
  local IFS=: dir
  for dir in $PATH; do
    [[ -n "$dir" && "$dir" != "$link_dir" && -x "$dir/$1" && ! -d "$dir/$1" ]] || continue
    echo "$dir/$1"
    return 0
  done
  return 1
}

# version_at_least <have> <want>: both vMAJOR.MINOR.PATCH, same major.
version_at_least() {
  local have="${1#v}" want="${2#v}"
  have="${have%%[-+]*}"
  [[ "${have%%.*}" == "${want%%.*}" ]] || return 1
  [[ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" == "$want" ]]
}

# built <name>: the cached binary, built first if the cache lacks it; each
# binary is built on its own, so an installed pulumi skips the heavy build.
built() {
  command -v go >/dev/null || die "Go is needed to build the engine (scripts/install-deps.sh installs it)"
  local name="$1" out
  out="$cache_root/$name-$(cache_key "$name")"
  mkdir -p "$out"
  exec 9>"$out/.lock"
  flock 9
  if [[ ! -x "$out/$name" ]]; then
    log "building $name into $out (a first build with cold Go caches takes tens of minutes)"
    local started=$SECONDS tmp
    tmp="$(mktemp -d "$out/.build-XXXXXX")"
    "build_${name//-/_}" "$tmp" >&2
    mv "$tmp/$name" "$out/$name"
    rm -rf "$tmp"
    log "built $name in $((SECONDS - started))s"
  fi
  exec 9>&-
  echo "$out/$name"
}

gobuild() { nice -n 10 go build -trimpath -buildvcs=false "$@"; }

build_pulumi() {
  log "go build pulumi $PULUMI_VERSION"
  (cd "$engine_src" && gobuild \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    -o "$1/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

build_pulumi_language_nodejs() {
  log "go build pulumi-language-nodejs $LANGUAGE_HOST_VERSION"
  (cd "$engine_src" && gobuild -ldflags "-s -w -X main.version=$LANGUAGE_HOST_VERSION" \
    -o "$1/pulumi-language-nodejs" ./cmd/pulumi-language-nodejs)
}

# The provider module with tools/engine/kubernetes/patches/*.patch applied to a copy of it (each
# patch says which upstream defect it works around), built through a go.mod that replaces the
# module with that copy.
build_pulumi_resource_kubernetes() {
  log "go build pulumi-resource-kubernetes $KUBERNETES_PROVIDER_VERSION"
  (
    cd "$engine_src/kubernetes"
    local module=github.com/pulumi/pulumi-kubernetes/provider/v4 module_dir patched="$1/provider-src" patch
    go mod download "$module"
    module_dir="$(go list -m -f '{{.Dir}}' "$module")"
    cp -r "$module_dir" "$patched"
    chmod -R u+w "$patched"
    for patch in patches/*.patch; do
      log "applying $patch"
      (cd "$patched" && git apply -p1 "$engine_src/kubernetes/$patch") ||
        die "$patch does not apply to $module $KUBERNETES_PROVIDER_MODULE_VERSION"
    done
    cp go.mod "$1/build.mod"
    cp go.sum "$1/build.sum"
    echo "replace $module => $patched" >>"$1/build.mod"
    go run -modfile="$1/build.mod" ./genschema "$patched" "$KUBERNETES_PROVIDER_VERSION" .
    gobuild -modfile="$1/build.mod" -ldflags "-s -w -X main.version=$KUBERNETES_PROVIDER_VERSION" -o "$1/pulumi-resource-kubernetes" .
  )
}

link() { # link <name> <target>
  ln -sfn "$2" "$link_dir/$1"
}

mkdir -p "$link_dir"

pulumi_cli=""
if found="$(on_path pulumi)"; then
  have="$("$found" version 2>/dev/null || true)"
  if version_at_least "$have" "$PULUMI_VERSION"; then
    pulumi_cli="$found"
    log "using the installed pulumi $have at $found (no engine build needed for it)"
  else
    log "ignoring $found ($have): the pin is $PULUMI_VERSION or a later v3"
  fi
fi

if [[ -n "$pulumi_cli" ]]; then
  link pulumi "$pulumi_cli"
  if [[ -x "$(dirname "$pulumi_cli")/pulumi-language-nodejs" ]]; then
    link pulumi-language-nodejs "$(dirname "$pulumi_cli")/pulumi-language-nodejs"
  else
    link pulumi-language-nodejs "$(built pulumi-language-nodejs)"
  fi
else
  link pulumi "$(built pulumi)"
  link pulumi-language-nodejs "$(built pulumi-language-nodejs)"
fi

if found="$(on_path pulumi-resource-kubernetes)"; then
  log "using the installed Kubernetes provider at $found"
  link pulumi-resource-kubernetes "$found"
else
  link pulumi-resource-kubernetes "$(built pulumi-resource-kubernetes)"
fi

echo "$link_dir"
