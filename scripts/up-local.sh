#!/usr/bin/env bash
# The main command: deploys the `local` stack with the real Pulumi engine to the local
# Kubernetes control plane (scripts/cluster.sh: real API server, controllers and scheduler;
# nodes simulated by kwok, so containers do not run).
#
#   scripts/up-local.sh
#
# 1. installs what it needs, builds or finds the engine (scripts/engine.sh) and the control
#    plane (scripts/cluster-build.sh);
# 2. starts the cluster (idempotent);
# 3. scripts/deploy-local.sh: the namespace, the Secrets the stack only references (generated
#    here, never committed or printed), `pulumi up --stack local --yes` with Pulumi's await
#    logic on, and a readiness summary per kind read from the API server.
# Running it again changes nothing.
#
# Environment:
#   PULUMI_CONFIG_PASSPHRASE  passphrase of the stack's secrets provider. The local stack has a
#                             documented default ("knhk-local-only"); it holds no real secrets.
#   KNHK_ENGINE_CACHE / KNHK_CLUSTER_CACHE   where built binaries are cached (default ~/.cache/…)
#   KNHK_CLUSTER_*            see scripts/cluster.sh (state folder, ports)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
stack=local

bash scripts/install-deps.sh

engine_bin="$(bash scripts/engine.sh)"
cluster_bin="$(bash scripts/cluster-build.sh)"
export PATH="$engine_bin:$cluster_bin:$PATH"

kubeconfig="$(bash scripts/cluster.sh up)"

# The engine's home, state and plugins stay inside the repo (all gitignored);
# plugins come from PATH only, never from the network.
export PULUMI_HOME="$repo/.tools/pulumi-home"
export PULUMI_BACKEND_URL="file://$repo/.pulumi"
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-knhk-local-only}"
mkdir -p "$PULUMI_HOME" "$repo/.pulumi"

bash scripts/deploy-local.sh "$kubeconfig"
echo
echo "kubectl: export KUBECONFIG=$kubeconfig PATH=$cluster_bin:\$PATH"
echo "stop the cluster: bash scripts/cluster.sh down   (add --wipe to delete its state)"
