#!/usr/bin/env bash
# The test command: installs what the tests need, type-checks, runs every jest suite (each suite
# starts the real servers it uses on loopback), and ends with a one-line count.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The real Pulumi engine for test/engine and the deploy scripts' tests, the local Kubernetes
# control plane for test/cluster, the NetworkPolicy evaluator for test/infra/network-flows, the
# exporters for test/system/exporters and the independent tlog verifier for test/app/tlog (each
# built once, cached outside the repo).
bash scripts/engine.sh >/dev/null
bash scripts/cluster-build.sh >/dev/null
bash scripts/netpol-build.sh >/dev/null
bash scripts/exporters-build.sh >/dev/null
bash scripts/tlog-verify-build.sh >/dev/null

echo "== typecheck"
npx tsc --noEmit -p tsconfig.json

echo "== jest"
mkdir -p .out
status=0
npx jest --ci --json --outputFile=.out/jest-results.json "$@" || status=$?
node -e '
  const r = require("./.out/jest-results.json");
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numTotalTests === 0) { console.error("no test ran"); process.exit(1); }
' || status=1
exit "$status"
