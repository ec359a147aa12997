/**
 * Prints, per kind, how many objects a namespace holds and how many are ready, read from the
 * API server; names every object that is not ready. Exit code 1 when any is not ready.
 *
 *   npx tsx scripts/cluster-summary.ts --kubeconfig <file> (--stack local | --namespace knhk)
 *
 * With --stack, the namespace is the one that stack's config names (knhk:namespace.name).
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { parseStackConfig } from "../infra/config";
import { readStackConfigFile } from "../infra/testing/render";
import { kubectl, listNamespace } from "./lib/cluster/kubectl";
import { formatSummary, readinessOf, summarize, type Readiness } from "./lib/cluster/readiness";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { kubeconfig: { type: "string" }, context: { type: "string" }, namespace: { type: "string" }, stack: { type: "string" } },
    strict: true,
  });
  if (!values.kubeconfig) throw new Error("--kubeconfig: required");
  if (!values.namespace === !values.stack) throw new Error("--stack or --namespace: exactly one is required");
  const namespace = values.namespace ?? parseStackConfig(values.stack!, readStackConfigFile(values.stack!, path.resolve(__dirname, ".."))).namespace.name;
  const objects = await listNamespace(kubectl({ kubeconfig: values.kubeconfig, context: values.context }), namespace);
  const notReady = objects.map(readinessOf).filter((r): r is Readiness => r !== undefined && r.ready < r.desired);
  console.log(formatSummary(namespace, summarize(objects), notReady));
  return notReady.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`cluster-summary: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
