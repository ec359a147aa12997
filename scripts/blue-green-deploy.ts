/**
 * `npm run deploy -- --stack <stack> --version <tag|sha256:digest> --prometheus-url <url> [options]`
 *
 * Zero-downtime deploy: the version goes to the idle colour through Pulumi
 * (`knhk:app.versions.<idle>`, `pulumi up`), which must roll out and pass the smoke test before
 * `knhk:app.activeColor` switches `knhk-service` to it; then error ratio and p95 are watched in
 * Prometheus and traffic switches back automatically above 1% errors.
 * Tokens for the smoke test come from KNHK_SMOKE_TOKEN / KNHK_SMOKE_INGEST_TOKEN; the audit
 * event goes through `npm run knhk -- audit log` (DATABASE_URL of the environment).
 * For stacks no workflow applies (the local cluster): dev, staging and prod run what their stack
 * file on main says, so their releases are commits (`npm run release`, the release workflow) and
 * this script refuses them.
 * Exit 0 deployed, 1 aborted, rolled back or refused, 2 bad usage.
 */
import { parseArgs } from "node:util";
import { AuditCli, consoleLogger, HttpSmoke, Kubectl, PrometheusHttp, PulumiCli, smokeOptionsFromEnv } from "./lib/deploy/adapters";
import { blueGreenDeploy, exitCodeOf } from "./lib/deploy/blue-green";
import { CLUSTER_OPTIONS, defaultActor, endpointsFrom, numberFlag, pulumiBinary, REPO_ROOT, requiredFlag, runMain } from "./lib/deploy/cli";
import { RefusedError } from "./lib/deploy/errors";
import { checkVersion } from "./lib/release/stack-file";
import { appliedByWorkflow } from "./lib/release/stacks";
import { systemClock } from "./lib/deploy/ports";
import { DEFAULT_WATCH } from "./lib/deploy/watch";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      ...CLUSTER_OPTIONS,
      version: { type: "string" },
      "prometheus-url": { type: "string" },
      "watch-seconds": { type: "string" },
      "interval-seconds": { type: "string" },
      "max-error-ratio": { type: "string" },
      "max-p95-ms": { type: "string" },
      "rollout-timeout-seconds": { type: "string" },
      "allow-degraded": { type: "string", multiple: true, default: [] },
      "policy-pack": { type: "string", default: "policy" },
    },
  });
  const stack = requiredFlag("stack", values.stack);
  const version = requiredFlag("version", values.version);
  checkVersion(version);
  if (appliedByWorkflow(stack)) {
    throw new RefusedError(`stack ${stack} runs what Pulumi.${stack}.yaml on main says: release with \`npm run release -- stage --stack ${stack} --version ${version}\` (or the release workflow) and merge the pull request`);
  }
  const log = consoleLogger;
  const kubectl = new Kubectl({ bin: values.kubectl!, namespace: values.namespace!, context: values["kube-context"], log });
  const outcome = await blueGreenDeploy(
    {
      pulumi: new PulumiCli({ bin: pulumiBinary(values.pulumi), stack, cwd: REPO_ROOT, policyPack: values["policy-pack"] || undefined, log }),
      cluster: kubectl,
      endpoints: endpointsFrom(values, kubectl),
      smoke: new HttpSmoke(smokeOptionsFromEnv(process.env, { allowDegraded: values["allow-degraded"] }), log),
      prometheus: new PrometheusHttp(requiredFlag("prometheus-url", values["prometheus-url"])),
      audit: new AuditCli({ cwd: REPO_ROOT }),
      clock: systemClock,
      log,
    },
    {
      version,
      stack,
      actor: values.actor ?? defaultActor(process.env),
      rolloutTimeoutMs: numberFlag("rollout-timeout-seconds", values["rollout-timeout-seconds"], 300, 1) * 1000,
      watch: {
        ...DEFAULT_WATCH,
        durationMs: numberFlag("watch-seconds", values["watch-seconds"], DEFAULT_WATCH.durationMs / 1000, 1) * 1000,
        intervalMs: numberFlag("interval-seconds", values["interval-seconds"], DEFAULT_WATCH.intervalMs / 1000, 1) * 1000,
        maxErrorRatio: numberFlag("max-error-ratio", values["max-error-ratio"], DEFAULT_WATCH.maxErrorRatio),
        maxP95Seconds: numberFlag("max-p95-ms", values["max-p95-ms"], DEFAULT_WATCH.maxP95Seconds * 1000) / 1000,
      },
    },
  );
  console.log(JSON.stringify(outcome));
  return exitCodeOf(outcome);
}

runMain("deploy", main, consoleLogger);
