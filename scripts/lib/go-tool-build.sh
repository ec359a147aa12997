# Shared by the scripts that build a Go test tool from the Go module proxy (netpol-build.sh,
# exporters-build.sh, tlog-verify-build.sh). Source it, then call
#
#   go_tool_build <name> <source folder> <build function> <binary>...
#
# It builds into a cache outside the repo, ${cache_root}/<key>/bin, where <key> hashes the
# source folder's Go files, go.mod, go.sum and *.env and the Go version (a fresh clone on the same
# machine reuses it; changing a pin rebuilds), links <repo>/.tools/<name>/bin to it and prints that
# folder. The build function runs in the source folder with one argument, the folder to put the
# binaries in. Progress goes to stderr (a line a minute while go build is silent).
go_tool_build() {
  local name="$1" src="$2" build="$3"
  shift 3
  local binaries=("$@")
  local repo link_root cache_root key out tmp started ticker b missing=0
  repo="$(cd "$src/../.." && pwd)"
  link_root="$repo/.tools/$name"
  cache_root="${GO_TOOL_CACHE:-$HOME/.cache/knhk-$name}"
  command -v go >/dev/null || { echo "$name-build: error: Go is needed to build $name" >&2; exit 1; }
  key="$(go_tool_cache_key "$src")"
  out="$cache_root/$key"
  mkdir -p "$out"
  exec 9>"$out/.lock"
  flock 9
  for b in "${binaries[@]}"; do [[ -x "$out/bin/$b" ]] || missing=1; done
  if [[ $missing == 1 ]]; then
    echo "$name-build: building ${binaries[*]} into $out" >&2
    started=$SECONDS
    tmp="$(mktemp -d "$out/.build-XXXXXX")"
    (
      cd "$src"
      ( while sleep 60; do echo "$name-build: go build: still building ($((SECONDS - started))s)" >&2; done ) &
      ticker=$!
      trap 'kill "$ticker" 2>/dev/null || true' EXIT
      "$build" "$tmp"
    ) >&2
    rm -rf "$out/bin"
    mkdir -p "$out/bin"
    for b in "${binaries[@]}"; do mv "$tmp/$b" "$out/bin/$b"; done
    rm -rf "$tmp"
    echo "$name-build: built in $((SECONDS - started))s" >&2
  fi
  exec 9>&-
  mkdir -p "$link_root"
  ln -sfn "$out/bin" "$link_root/bin"
  echo "$link_root/bin"
}

# The cache key of a Go tool's source folder $1: its Go files, go.mod, go.sum and *.env, and the
# Go version (also scripts/cluster-build.sh's).
go_tool_cache_key() {
  (
    cd "$1"
    find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' -o -name '*.env' \) |
      LC_ALL=C sort | xargs sha256sum
    go env GOVERSION
  ) | sha256sum | cut -c1-16
}

# Fails unless go.mod in $1 requires module $2 at version $3.
go_tool_require() {
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2 $3( |\$)" "$1/go.mod" ||
    { echo "error: $1/go.mod does not require $2 $3 (versions.env); update both together" >&2; exit 1; }
}
