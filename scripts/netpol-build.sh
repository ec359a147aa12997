#!/usr/bin/env bash
# Finds or builds the NetworkPolicy evaluator of tools/netpol (a thin CLI over cyclonus's
# pkg/matcher, pinned in tools/netpol/versions.env) and prints the path of its binary
# (<repo>/.tools/netpol/bin/netpol). Cached outside the repo (scripts/lib/go-tool-build.sh); a
# cold build takes about 3 minutes on 2 cores.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo/tools/netpol"
# shellcheck source=lib/go-tool-build.sh
source "$repo/scripts/lib/go-tool-build.sh"
# shellcheck source=../tools/netpol/versions.env
source "$src/versions.env"
go_tool_require "$src" github.com/mattfenwick/cyclonus "$CYCLONUS_VERSION"

build() {
  GOFLAGS=-mod=readonly go mod download
  GOFLAGS=-mod=readonly nice -n 10 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$1/netpol" .
}
bin="$(GO_TOOL_CACHE="${KNHK_NETPOL_CACHE:-$HOME/.cache/knhk-netpol}" go_tool_build netpol "$src" build netpol)"
echo "$bin/netpol"
