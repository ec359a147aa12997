#!/usr/bin/env bash
# Finds or builds postgres_exporter and redis_exporter at the versions pinned in
# tools/exporters/versions.env and prints the folder that holds them
# (<repo>/.tools/exporters/bin).
#
# Built with `go build` through the Go module proxy into a cache outside the
# repo, ${KNHK_EXPORTERS_CACHE:-$HOME/.cache/knhk-exporters}/<key>/, where <key>
# hashes tools/exporters/ and the Go version: a fresh clone on the same machine
# reuses it, and changing a pin rebuilds. A cold build takes about 2 minutes on
# 2 cores; progress goes to stderr, stdout carries only the folder.
#
# The checksum database has no entry for these two modules (sum.golang.org
# answers 404), so go.sum in tools/exporters is what pins their content:
# GONOSUMDB names them and -mod=readonly refuses anything go.sum does not hold.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo/tools/exporters"
link_root="$repo/.tools/exporters"
cache_root="${KNHK_EXPORTERS_CACHE:-$HOME/.cache/knhk-exporters}"
POSTGRES_EXPORTER=github.com/prometheus-community/postgres_exporter
REDIS_EXPORTER=github.com/oliver006/redis_exporter

log() { echo "exporters-build: $*" >&2; }
die() { echo "exporters-build: error: $*" >&2; exit 1; }

# shellcheck source=../tools/exporters/versions.env
source "$src/versions.env"
for pin in "$POSTGRES_EXPORTER $POSTGRES_EXPORTER_VERSION" "$REDIS_EXPORTER $REDIS_EXPORTER_VERSION"; do
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$pin( |\$)" "$src/go.mod" ||
    die "tools/exporters/go.mod does not require $pin (tools/exporters/versions.env); update both together"
done

command -v go >/dev/null || die "Go is needed to build the exporters"

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

if [[ ! -x "$out/bin/postgres_exporter" || ! -x "$out/bin/redis_exporter" ]]; then
  log "building postgres_exporter $POSTGRES_EXPORTER_VERSION and redis_exporter $REDIS_EXPORTER_VERSION into $out (a cold build takes about 2 minutes on 2 cores)"
  started=$SECONDS
  tmp="$(mktemp -d "$out/.build-XXXXXX")"
  (
    cd "$src"
    # go build prints nothing while it compiles; say every minute that it still does.
    ( while sleep 60; do log "go build: still building ($((SECONDS - started))s)"; done ) &
    ticker=$!
    trap 'kill "$ticker" 2>/dev/null || true' EXIT
    export GONOSUMDB="$POSTGRES_EXPORTER,$REDIS_EXPORTER" GOFLAGS=-mod=readonly
    log "go mod download"
    go mod download
    log "go build"
    nice -n 10 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$tmp/" "$POSTGRES_EXPORTER/cmd/postgres_exporter" "$REDIS_EXPORTER"
  ) >&2
  rm -rf "$out/bin"
  mkdir -p "$out/bin"
  mv "$tmp/postgres_exporter" "$tmp/redis_exporter" "$out/bin/"
  rm -rf "$tmp"
  log "built the exporters in $((SECONDS - started))s"
fi
exec 9>&-

mkdir -p "$link_root"
ln -sfn "$out/bin" "$link_root/bin"
echo "$link_root/bin"
