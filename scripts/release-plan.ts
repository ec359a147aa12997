/**
 * `npm run release:plan -- --stack <stack> --out release-plan.json [--kube-context <ctx>] [options]`
 *
 * In the apply job, before `pulumi up`: what the update does to the colours, from what is
 * deployed (the stack's outputs) to the stack file being applied. Refuses what blue-green does
 * not allow (the pull request check may have been bypassed); for a switch, smoke-tests the colour
 * about to serve and refuses when it fails, so nothing is applied. Writes the plan for
 * `npm run release:verify` and the step outputs `kind` and `version`.
 * Pulumi needs the backend (PULUMI_BACKEND_URL or a login) and PULUMI_CONFIG_PASSPHRASE; the smoke
 * test KNHK_SMOKE_TOKEN and KNHK_SMOKE_INGEST_TOKEN. Exit 0 planned, 1 refused, 2 bad usage.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { consoleLogger, HttpSmoke, Kubectl, PulumiCli, smokeOptionsFromEnv } from "./lib/deploy/adapters";
import { CLUSTER_OPTIONS, endpointsFrom, numberFlag, pulumiBinary, REPO_ROOT, requiredFlag, runMain } from "./lib/deploy/cli";
import { writeStepOutputs } from "./lib/release/outputs";
import { kubeContextOf, readAppState, stackFileName } from "./lib/release/stack-file";
import { deployedState, describeTransition, transition } from "./lib/release/transition";
import { gate } from "./lib/release/verify";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      ...CLUSTER_OPTIONS,
      out: { type: "string" },
      "rollout-timeout-seconds": { type: "string" },
      "allow-degraded": { type: "string", multiple: true, default: [] },
    },
  });
  const stack = requiredFlag("stack", values.stack);
  const out = requiredFlag("out", values.out);
  const log = consoleLogger;
  const fileName = stackFileName(stack);
  const text = readFileSync(join(REPO_ROOT, fileName), "utf8");
  const pulumi = new PulumiCli({ bin: pulumiBinary(values.pulumi), stack, cwd: REPO_ROOT, log });
  const plan = transition(deployedState(await pulumi.outputs()), readAppState(text, fileName), `${fileName} (deployed -> this commit)`);
  log.info(`stack ${stack}: ${describeTransition(plan)}`);
  if (plan.kind === "switch") {
    const kubectl = new Kubectl({ bin: values.kubectl!, namespace: values.namespace!, context: values["kube-context"] ?? kubeContextOf(text, fileName), log });
    const smoke = new HttpSmoke(smokeOptionsFromEnv(process.env, { allowDegraded: values["allow-degraded"] }), log);
    await gate({ cluster: kubectl, endpoints: endpointsFrom(values, kubectl), smoke, log }, plan, numberFlag("rollout-timeout-seconds", values["rollout-timeout-seconds"], 300, 1) * 1000);
  }
  writeFileSync(out, JSON.stringify({ stack, transition: plan }, null, 2));
  writeStepOutputs(process.env, { kind: plan.kind, version: "version" in plan ? plan.version : "" });
  console.log(JSON.stringify(plan));
  return 0;
}

runMain("release:plan", main, consoleLogger);
