#!/usr/bin/env bash
# The main command: deploys the `local` stack with the real Pulumi engine.
#
#   scripts/up-local.sh
#
# Installs what it needs, builds or finds the engine (scripts/engine.sh), runs
# `pulumi up --stack local --yes` against a file backend in the repo (.pulumi/),
# then prints where the Kubernetes manifests are and how many objects of each
# kind they hold. Running it again changes nothing.
#
# Environment:
#   PULUMI_CONFIG_PASSPHRASE  passphrase of the stack's secrets provider. The
#                             local stack has a documented default
#                             ("knhk-local-only"); it holds no real secrets.
#   KNHK_ENGINE_CACHE         where built engine binaries are cached
#                             (default ~/.cache/knhk-engine).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
stack=local

if [[ -f scripts/install-deps.sh ]]; then
  bash scripts/install-deps.sh
elif [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

bin_dir="$(scripts/engine.sh)"
export PATH="$bin_dir:$PATH"

# The engine's home, state and plugins stay inside the repo (all gitignored);
# plugins come from PATH only, never from the network.
export PULUMI_HOME="$repo/.tools/pulumi-home"
export PULUMI_BACKEND_URL="file://$repo/.pulumi"
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-knhk-local-only}"
mkdir -p "$PULUMI_HOME" "$repo/.pulumi"

if ! pulumi stack select "$stack" >/dev/null 2>&1; then
  pulumi stack init "$stack" --secrets-provider passphrase
fi

pulumi up --stack "$stack" --yes --skip-preview --suppress-progress

render_dir="$(pulumi config get --stack "$stack" --path 'kubernetes.renderDir')"
resource_count="$(pulumi stack export --stack "$stack" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).deployment.resources.length))')"

echo
echo "Stack '$stack': $resource_count resources in the engine state (${PULUMI_BACKEND_URL#file://})"
echo "Kubernetes manifests: $repo/$render_dir"
node - "$render_dir" <<'EOF'
const fs = require("node:fs");
const path = require("node:path");
const YAML = require("yaml");

const root = process.argv[2];
const files = [];
(function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (/\.ya?ml$/.test(entry.name)) files.push(full);
  }
})(root);

const byKind = new Map();
for (const file of files) {
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    const kind = doc.toJS()?.kind;
    if (kind) byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
  }
}
const total = [...byKind.values()].reduce((a, b) => a + b, 0);
console.log(`${total} objects in ${files.length} files, by kind:`);
for (const [kind, count] of [...byKind].sort(([a], [b]) => a.localeCompare(b))) {
  console.log(`  ${String(count).padStart(4)}  ${kind}`);
}
EOF
