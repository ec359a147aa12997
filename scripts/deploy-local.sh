#!/usr/bin/env bash
# Deploys the `local` stack to a running local cluster (scripts/cluster.sh up) with the Pulumi
# engine on PATH and its PULUMI_* environment set (scripts/up-local.sh does both):
#
#   scripts/deploy-local.sh <kubeconfig>
#
# 1. selects (or creates) the stack and points it at <kubeconfig>;
# 2. creates the namespace through Pulumi, then the Secrets the stack only references
#    (scripts/local-secrets.ts: generated, never committed or printed);
# 3. `pulumi up --stack local --yes` with Pulumi's await logic on;
# 4. prints the readiness per kind read from the API server (exit 1 if anything is not ready).
set -euo pipefail
cd "$(dirname "$0")/.."
stack=local
kubeconfig="${1:?usage: scripts/deploy-local.sh <kubeconfig>}"
command -v pulumi >/dev/null || { echo "deploy-local: pulumi is not on PATH (scripts/engine.sh)" >&2; exit 1; }

if ! pulumi stack select "$stack" >/dev/null 2>&1; then
  pulumi stack init "$stack" --secrets-provider passphrase
fi
# The stack file names the default cluster's kubeconfig (relative to the project); follow another.
if [[ "$(realpath -m "$kubeconfig")" != "$(realpath -m .tools/local-cluster/admin.kubeconfig)" ]]; then
  pulumi config set --stack "$stack" --path kubernetes.kubeconfig "$(realpath "$kubeconfig")"
fi

started=$SECONDS
# The referenced Secrets live in the stack's namespace: create it (and its provider) first.
if ! namespace_up="$(pulumi up --stack "$stack" --yes --skip-preview --suppress-progress --non-interactive \
  --target '**pulumi:providers:kubernetes::knhk-k8s' --target '**knhk:kubernetes:Namespace::*' \
  --target '**kubernetes:core/v1:Namespace::*' 2>&1)"; then
  echo "$namespace_up" >&2
  echo "deploy-local: creating the namespace failed" >&2
  exit 1
fi
npx tsx scripts/local-secrets.ts --stack "$stack" --kubeconfig "$kubeconfig"
summary() { npx tsx scripts/cluster-summary.ts --kubeconfig "$kubeconfig" --stack "$stack"; }
if ! pulumi up --stack "$stack" --yes --skip-preview --suppress-progress --non-interactive; then
  # Pulumi reports a workload that never became ready as a timeout; the controllers know why.
  echo "deploy-local: pulumi up failed; what the API server reports:" >&2
  summary >&2 || true
  exit 1
fi
echo "pulumi up: $((SECONDS - started))s"

echo
summary
