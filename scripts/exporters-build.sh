#!/usr/bin/env bash
# Finds or builds postgres_exporter and redis_exporter at the versions pinned in
# tools/exporters/versions.env and prints the folder that holds them
# (<repo>/.tools/exporters/bin). Cached outside the repo (scripts/lib/go-tool-build.sh); a cold
# build takes about 2 minutes on 2 cores.
#
# The checksum database has no entry for these two modules (sum.golang.org answers 404), so
# go.sum in tools/exporters is what pins their content: GONOSUMDB names them and -mod=readonly
# refuses anything go.sum does not hold.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo/tools/exporters"
POSTGRES_EXPORTER=github.com/prometheus-community/postgres_exporter
REDIS_EXPORTER=github.com/oliver006/redis_exporter
# shellcheck source=lib/go-tool-build.sh
source "$repo/scripts/lib/go-tool-build.sh"
# shellcheck source=../tools/exporters/versions.env
source "$src/versions.env"
go_tool_require "$src" "$POSTGRES_EXPORTER" "$POSTGRES_EXPORTER_VERSION"
go_tool_require "$src" "$REDIS_EXPORTER" "$REDIS_EXPORTER_VERSION"

build() {
  export GONOSUMDB="$POSTGRES_EXPORTER,$REDIS_EXPORTER" GOFLAGS=-mod=readonly
  go mod download
  nice -n 10 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$1/" "$POSTGRES_EXPORTER/cmd/postgres_exporter" "$REDIS_EXPORTER"
}
GO_TOOL_CACHE="${KNHK_EXPORTERS_CACHE:-$HOME/.cache/knhk-exporters}" go_tool_build exporters "$src" build postgres_exporter redis_exporter
