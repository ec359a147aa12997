/**
 * `npm run rollback -- --stack <stack> [--yes] [--force] [--reason <text>] [options]`
 *
 * Switches `knhk-service` back to the other colour (still running the previous version) through
 * Pulumi (`knhk:app.activeColor`, `pulumi up`) after checking that colour is healthy. On a
 * terminal it asks to type the stack name; `--yes` skips that for automation. Without a terminal
 * and without `--yes` it refuses. For stacks no workflow applies (the local cluster); dev, staging
 * and prod roll back with a commit (`npm run release -- rollback`, the release workflow).
 * Exit 0 rolled back, 1 refused or live Service unhealthy after, 2 bad usage.
 */
import { createInterface } from "node:readline/promises";
import { parseArgs } from "node:util";
import { AuditCli, consoleLogger, healthStatus, Kubectl, PulumiCli } from "./lib/deploy/adapters";
import { CLUSTER_OPTIONS, defaultActor, endpointsFrom, pulumiBinary, REPO_ROOT, requiredFlag, runMain } from "./lib/deploy/cli";
import { RefusedError } from "./lib/deploy/errors";
import { appliedByWorkflow } from "./lib/release/stacks";
import { systemClock } from "./lib/deploy/ports";
import { rollback, type Confirmer } from "./lib/deploy/rollback";

const terminalConfirmer: Confirmer = {
  ask: async (question) => {
    if (!process.stdin.isTTY || !process.stdout.isTTY) return undefined;
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      return await rl.question(question);
    } finally {
      rl.close();
    }
  },
};

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      ...CLUSTER_OPTIONS,
      yes: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
      reason: { type: "string", default: "manual rollback" },
      "policy-pack": { type: "string", default: "policy" },
    },
  });
  const stack = requiredFlag("stack", values.stack);
  if (appliedByWorkflow(stack)) {
    throw new RefusedError(`stack ${stack} runs what Pulumi.${stack}.yaml on main says: roll back with \`npm run release:propose -- rollback --stack ${stack} --pr\` (or the release workflow's rollback) and merge it`);
  }
  const log = consoleLogger;
  const kubectl = new Kubectl({ bin: values.kubectl!, namespace: values.namespace!, context: values["kube-context"], log });
  const outcome = await rollback(
    {
      pulumi: new PulumiCli({ bin: pulumiBinary(values.pulumi), stack, cwd: REPO_ROOT, policyPack: values["policy-pack"] || undefined, log }),
      cluster: kubectl,
      endpoints: endpointsFrom(values, kubectl),
      health: healthStatus,
      audit: new AuditCli({ cwd: REPO_ROOT }),
      confirm: terminalConfirmer,
      clock: systemClock,
      log,
    },
    { stack, actor: values.actor ?? defaultActor(process.env), reason: values.reason!, yes: values.yes!, force: values.force! },
  );
  console.log(JSON.stringify(outcome));
  if (outcome.status === "refused") {
    log.warn(`rollback refused: ${outcome.reason}`);
    return 1;
  }
  return outcome.liveHealth === "healthy" ? 0 : 1;
}

runMain("rollback", main, consoleLogger);
