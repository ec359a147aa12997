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

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "install-deps: ok"
