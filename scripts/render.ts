/**
 * Offline preview: `npm run render -- --stack <stack> --out <dir>`.
 * Writes <dir>/resources.json (every resource: {type, name, urn, parent, inputs}, secrets as
 * "[secret]") and <dir>/k8s/<kind>-<namespace>-<name>.yaml for every Kubernetes object.
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import { parseStackConfig } from "../infra/config";
import { monitoringFiles, monitoringInput } from "../infra/render/monitoring-bundle";
import { listStacks, readStackConfigFile, renderStack, writeRender } from "../infra/testing/render";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { stack: { type: "string", short: "s" }, out: { type: "string", short: "o" } },
    strict: true,
  });
  const stacks = listStacks();
  if (!values.stack || !values.out) {
    throw new Error(`usage: npm run render -- --stack <${stacks.join("|")}> --out <dir>`);
  }
  const result = await renderStack(values.stack);
  const out = path.resolve(values.out);
  const { files } = writeRender(result, out);
  console.log(`stack ${values.stack}: ${result.resources.length} resources -> ${path.join(out, "resources.json")}`);
  console.log(`${files.length} Kubernetes objects -> ${path.join(out, "k8s")}/`);
  // The monitoring documents as the real tools read them (promtool, amtool, Grafana import).
  const config = parseStackConfig(values.stack, readStackConfigFile(values.stack));
  if (config.monitoring.enabled) {
    const docs = monitoringFiles(monitoringInput(config));
    for (const [rel, text] of Object.entries(docs)) {
      fs.mkdirSync(path.dirname(path.join(out, rel)), { recursive: true });
      fs.writeFileSync(path.join(out, rel), text);
    }
    console.log(`${Object.keys(docs).length} monitoring files -> prometheus/, alertmanager/, dashboards/`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
