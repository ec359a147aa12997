#!/usr/bin/env bash
# Finds or builds tools/tlog-verify, the independent checker of the receipt log's checkpoints,
# proofs and tiles (the Go checksum database's sumdb/tlog and sumdb/note, pinned in
# tools/tlog-verify/versions.env), and prints the folder that holds it
# (<repo>/.tools/tlog-verify/bin). Cached outside the repo (scripts/lib/go-tool-build.sh); a cold
# build takes under a minute on 2 cores.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo/tools/tlog-verify"
# shellcheck source=lib/go-tool-build.sh
source "$repo/scripts/lib/go-tool-build.sh"
# shellcheck source=../tools/tlog-verify/versions.env
source "$src/versions.env"
go_tool_require "$src" golang.org/x/mod "$XMOD_VERSION"

build() {
  GOFLAGS=-mod=readonly go mod download
  GOFLAGS=-mod=readonly nice -n 10 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$1/tlog-verify" .
}
GO_TOOL_CACHE="${KNHK_TLOG_VERIFY_CACHE:-$HOME/.cache/knhk-tlog-verify}" go_tool_build tlog-verify "$src" build tlog-verify
