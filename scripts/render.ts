/**
 * Offline preview: `npm run render -- --stack <stack> --out <dir> [--overlay <config.yaml>]`.
 * Writes <dir>/resources.json (every resource: {type, name, urn, parent, inputs}, secrets as
 * "[secret]") and <dir>/k8s/<kind>-<namespace>-<name>.yaml for every Kubernetes object.
 * `--overlay` merges a YAML/JSON map of config keys (`knhk:aws: {...}`) over the stack file, e.g.
 * the account-specific identifiers a stack file leaves to the deploying team.
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import { parseStackConfig } from "../infra/config";
import { monitoringFiles, monitoringInput } from "../infra/render/monitoring-bundle";
import * as YAML from "yaml";
import { listStacks, mergeConfig, readStackConfigFile, renderStack, writeRender } from "../infra/testing/render";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { stack: { type: "string", short: "s" }, out: { type: "string", short: "o" }, overlay: { type: "string" } },
    strict: true,
  });
  const stacks = listStacks();
  if (!values.stack || !values.out) {
    throw new Error(`usage: npm run render -- --stack <${stacks.join("|")}> --out <dir> [--overlay <config.yaml>]`);
  }
  const overlay = values.overlay ? (YAML.parse(fs.readFileSync(values.overlay, "utf8")) as Record<string, unknown>) : undefined;
  const result = await renderStack(values.stack, { overlay });
  const out = path.resolve(values.out);
  const { files } = writeRender(result, out);
  console.log(`stack ${values.stack}: ${result.resources.length} resources -> ${path.join(out, "resources.json")}`);
  console.log(`${files.length} Kubernetes objects -> ${path.join(out, "k8s")}/`);
  // The monitoring documents as the real tools read them (promtool, amtool, Grafana import).
  const stackFile = readStackConfigFile(values.stack);
  const config = parseStackConfig(values.stack, overlay ? mergeConfig(stackFile, overlay) : stackFile);
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
