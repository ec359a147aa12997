#!/usr/bin/env bash
# Finds or builds the NetworkPolicy evaluator of tools/netpol (a thin CLI over
# cyclonus's pkg/matcher, pinned in tools/netpol/versions.env) and prints the
# path of its binary (<repo>/.tools/netpol/bin/netpol).
#
# Built with `go build` through the Go module proxy into a cache outside the
# repo, ${KNHK_NETPOL_CACHE:-$HOME/.cache/knhk-netpol}/<key>/, where <key>
# hashes tools/netpol/ and the Go version: a fresh clone on the same machine
# reuses it, and changing a pin or the CLI rebuilds. A cold build takes about
# 3 minutes on 2 cores; progress goes to stderr, stdout carries only the path.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo/tools/netpol"
link_root="$repo/.tools/netpol"
cache_root="${KNHK_NETPOL_CACHE:-$HOME/.cache/knhk-netpol}"

log() { echo "netpol-build: $*" >&2; }
die() { echo "netpol-build: error: $*" >&2; exit 1; }

# shellcheck source=../tools/netpol/versions.env
source "$src/versions.env"
grep -Eq "^[[:space:]]*(require[[:space:]]+)?github.com/mattfenwick/cyclonus $CYCLONUS_VERSION( |\$)" "$src/go.mod" ||
  die "tools/netpol/go.mod does not require github.com/mattfenwick/cyclonus $CYCLONUS_VERSION (tools/netpol/versions.env); update both together"

command -v go >/dev/null || die "Go is needed to build the NetworkPolicy evaluator"

key="$(
  cd "$src"
  find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' -o -name '*.env' \) |
    LC_ALL=C sort | xargs sha256sum
  go env GOVERSION
)"
key="$(echo "$key" | sha256sum | cut -c1-16)"
out="$cache_root/$key"
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

if [[ ! -x "$out/bin/netpol" ]]; then
  log "building the evaluator (cyclonus $CYCLONUS_VERSION) into $out (a cold build takes about 3 minutes on 2 cores)"
  started=$SECONDS
  tmp="$(mktemp -d "$out/.build-XXXXXX")"
  (
    cd "$src"
    # go build prints nothing while it compiles; say every minute that it still does.
    ( while sleep 60; do log "go build: still building ($((SECONDS - started))s)"; done ) &
    ticker=$!
    trap 'kill "$ticker" 2>/dev/null || true' EXIT
    log "go mod download"
    GOFLAGS=-mod=readonly go mod download
    log "go build"
    GOFLAGS=-mod=readonly nice -n 10 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$tmp/netpol" .
  ) >&2
  rm -rf "$out/bin"
  mkdir -p "$out/bin"
  mv "$tmp/netpol" "$out/bin/netpol"
  rm -rf "$tmp"
  log "built the evaluator in $((SECONDS - started))s"
fi
exec 9>&-

mkdir -p "$link_root"
ln -sfn "$out/bin" "$link_root/bin"
echo "$link_root/bin/netpol"
