/**
 * `npm run release:verify -- --stack <stack> --plan release-plan.json --prometheus-url <url> --out release-verdict.json [options]`
 *
 * In the apply job, after `pulumi up`: the release checks of the plan's step (scripts/lib/release/verify.ts).
 * A staged colour rolls out and passes the smoke test (step output `next=switch`: the job proposes
 * the switch); a switched-to colour is watched (error ratio above `--max-error-ratio` fails, p95
 * above `--max-p95-ms` warns). On a failure the correction is written into the work tree's stack
 * file (the job applies it with `pulumi up` and commits it with `npm run release:propose -- correct`)
 * and named in the verdict and the step output `correction`. Every outcome is annotated and
 * audit-logged through the service's CLI as DATABASE_URL's role (the least-privileged audit
 * writer; it never migrates). Exit 0 passed or nothing to verify, 1 failed, 2 bad usage.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { AuditCli, consoleLogger, HttpSmoke, Kubectl, PrometheusHttp, smokeOptionsFromEnv } from "./lib/deploy/adapters";
import { CLUSTER_OPTIONS, defaultActor, endpointsFrom, numberFlag, REPO_ROOT, requiredFlag, runMain, UsageError } from "./lib/deploy/cli";
import { requiredEnv } from "./lib/deploy/errors";
import { systemClock } from "./lib/deploy/ports";
import { DEFAULT_WATCH } from "./lib/deploy/watch";
import { writeStepOutputs } from "./lib/release/outputs";
import { kubeContextOf, stackFileName } from "./lib/release/stack-file";
import type { Transition } from "./lib/release/transition";
import { applyCorrection, verdictFailed, verifyTransition } from "./lib/release/verify";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      ...CLUSTER_OPTIONS,
      plan: { type: "string" },
      out: { type: "string" },
      "prometheus-url": { type: "string" },
      "watch-seconds": { type: "string" },
      "interval-seconds": { type: "string" },
      "max-error-ratio": { type: "string" },
      "max-p95-ms": { type: "string" },
      "rollout-timeout-seconds": { type: "string" },
      "allow-degraded": { type: "string", multiple: true, default: [] },
    },
  });
  const stack = requiredFlag("stack", values.stack);
  const out = requiredFlag("out", values.out);
  const plan = JSON.parse(readFileSync(requiredFlag("plan", values.plan), "utf8")) as { stack: string; transition: Transition };
  if (plan.stack !== stack) throw new UsageError(`--plan is for stack ${plan.stack}, not ${stack}`);
  // Audit events must reach the environment's audit log, never an embedded database of the runner.
  requiredEnv(process.env, "DATABASE_URL", "the audit writer's PostgreSQL URL: a role that may insert audit events and owns no schema");
  const log = consoleLogger;
  const fileName = stackFileName(stack);
  const file = join(REPO_ROOT, fileName);
  const kubectl = new Kubectl({ bin: values.kubectl!, namespace: values.namespace!, context: values["kube-context"] ?? kubeContextOf(readFileSync(file, "utf8"), fileName), log });
  const verdict = await verifyTransition(
    {
      cluster: kubectl,
      endpoints: endpointsFrom(values, kubectl),
      smoke: new HttpSmoke(smokeOptionsFromEnv(process.env, { allowDegraded: values["allow-degraded"] }), log),
      prometheus: new PrometheusHttp(requiredFlag("prometheus-url", values["prometheus-url"])),
      audit: new AuditCli({ cwd: REPO_ROOT }),
      clock: systemClock,
      log,
    },
    plan.transition,
    {
      stack,
      actor: values.actor ?? defaultActor(process.env),
      commit: process.env.GITHUB_SHA || undefined,
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
  if ("correction" in verdict) {
    const edit = applyCorrection(readFileSync(file, "utf8"), verdict.correction, fileName);
    writeFileSync(file, edit.text);
    log.warn(`${fileName}: ${edit.key} ${edit.from} -> ${edit.to} (apply it, then commit it with release:propose -- correct)`);
  }
  writeFileSync(out, JSON.stringify(verdict, null, 2));
  writeStepOutputs(process.env, {
    result: verdictFailed(verdict) ? "failed" : verdict.status === "nothing-to-verify" ? "none" : "passed",
    next: verdict.status === "staged" ? "switch" : "",
    version: "version" in verdict ? verdict.version : "",
    correction: "correction" in verdict ? verdict.correction.kind : "",
  });
  console.log(JSON.stringify(verdict));
  return verdictFailed(verdict) ? 1 : 0;
}

runMain("release:verify", main, consoleLogger);
