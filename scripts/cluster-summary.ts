/**
 * Prints, per kind, how many objects a namespace holds and how many are ready, read from the
 * API server; names every object that is not ready. Exit code 1 when any is not ready.
 *
 *   npx tsx scripts/cluster-summary.ts --kubeconfig <file> --namespace knhk
 */
import { parseArgs } from "node:util";
import { kubectl, listNamespace } from "./lib/cluster/kubectl";
import { formatSummary, readinessOf, summarize, type Readiness } from "./lib/cluster/readiness";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { kubeconfig: { type: "string" }, context: { type: "string" }, namespace: { type: "string" } },
    strict: true,
  });
  if (!values.kubeconfig) throw new Error("--kubeconfig: required");
  if (!values.namespace) throw new Error("--namespace: required");
  const objects = await listNamespace(kubectl({ kubeconfig: values.kubeconfig, context: values.context }), values.namespace);
  const notReady = objects.map(readinessOf).filter((r): r is Readiness => r !== undefined && r.ready < r.desired);
  console.log(formatSummary(values.namespace, summarize(objects), notReady));
  return notReady.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`cluster-summary: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
