/**
 * Blue-green deploy through Pulumi: the new version goes to the idle colour, which must roll
 * out, answer /health and pass the smoke test before `knhk-service` is switched to it. After
 * the switch the error ratio and p95 are watched; above the error threshold traffic goes back
 * to the previous colour automatically. Every outcome is annotated and audit-logged.
 *
 * `blueGreenDeploy` runs all steps in one go against a stack no workflow applies (the local
 * cluster). Stacks the workflows apply release through their stack file instead
 * (scripts/lib/release), with the same checks: `checkColor` and the watch run in the apply job.
 */
import { watchColor, type WatchOptions, type WatchVerdict } from "./watch";
import {
  otherColor,
  type AuditPort,
  type Clock,
  type ClusterPort,
  type Color,
  type EndpointPort,
  type Logger,
  type PrometheusPort,
  type PulumiPort,
  type SmokePort,
} from "./ports";

export interface DeployDeps {
  readonly pulumi: PulumiPort;
  readonly cluster: ClusterPort;
  readonly endpoints: EndpointPort;
  readonly smoke: SmokePort;
  readonly prometheus: PrometheusPort;
  readonly audit: AuditPort;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface DeployOptions {
  readonly version: string;
  readonly stack: string;
  readonly actor: string;
  readonly rolloutTimeoutMs: number;
  readonly watch: WatchOptions;
}

export type DeployOutcome =
  /** Traffic on the new version, watch passed. */
  | { readonly status: "deployed"; readonly color: Color; readonly previousColor: Color; readonly warnings: string[] }
  /** Stopped before the switch: traffic never left the active colour. */
  | { readonly status: "aborted"; readonly stage: "pulumi-up" | "rollout" | "smoke-test"; readonly reason: string; readonly activeColor: Color }
  /** Switched, then switched back because the watch failed. */
  | { readonly status: "rolled-back"; readonly reason: string; readonly activeColor: Color; readonly failedColor: Color };

/** Exit codes of `npm run deploy`: 0 deployed, 1 aborted or rolled back. */
export function exitCodeOf(outcome: DeployOutcome): number {
  return outcome.status === "deployed" ? 0 : 1;
}

/** Annotations of a colour's Deployment once it serves a version that passed the watch. */
export function deployedAnnotations(at: Date, version: string, actor: string, previousColor: Color): Record<string, string> {
  return { "knhk.io/deployed-at": at.toISOString(), "knhk.io/version": version, "knhk.io/deployed-by": actor, "knhk.io/previous-color": previousColor };
}

/** Annotations of a colour traffic was taken away from because its watch failed. */
export function rolledBackAnnotations(at: Date, reason: string): Record<string, string> {
  return { "knhk.io/rolled-back-at": at.toISOString(), "knhk.io/rollback-reason": reason };
}

export type ColorCheck = { readonly ok: true } | { readonly ok: false; readonly stage: "rollout" | "smoke-test"; readonly reason: string };

/** A colour is ready for traffic: its Deployment rolled out and the smoke test passes on its own Service. */
export async function checkColor(deps: Pick<DeployDeps, "cluster" | "endpoints" | "smoke">, color: Color, rolloutTimeoutMs: number): Promise<ColorCheck> {
  if (!(await deps.cluster.waitForRollout(color, rolloutTimeoutMs))) {
    return { ok: false, stage: "rollout", reason: `knhk-${color} did not finish rolling out within ${Math.round(rolloutTimeoutMs / 1000)} s` };
  }
  const endpoint = await deps.endpoints.open(color);
  let smoke;
  try {
    smoke = await deps.smoke.run(endpoint);
  } finally {
    await endpoint.close();
  }
  if (!smoke.ok) return { ok: false, stage: "smoke-test", reason: `smoke test failed at check "${smoke.failedCheck}": ${smoke.message ?? ""}`.trim() };
  return { ok: true };
}

export async function blueGreenDeploy(deps: DeployDeps, options: DeployOptions): Promise<DeployOutcome> {
  const { pulumi, cluster, log } = deps;
  const state = await pulumi.readAppState();
  const active = state.activeColor;
  const idle = otherColor(active);
  const previousVersion = state.versions[active];
  const base = { stack: options.stack, version: options.version, previousVersion, activeColor: active, idleColor: idle };
  log.info(`stack ${options.stack}: ${active} is live with ${previousVersion}; deploying ${options.version} to ${idle}`);

  const audit = (action: string, outcome: string, target: Color, details: Record<string, unknown>) =>
    deps.audit.log({ actor: options.actor, action, target: `knhk-${target}`, outcome, details: { ...base, ...details } });

  const idleVersion = state.versions[idle];
  const abort = async (stage: "pulumi-up" | "rollout" | "smoke-test", reason: string): Promise<DeployOutcome> => {
    log.warn(`aborted at ${stage}: ${reason}; traffic stays on ${active}`);
    // The idle colour is what `rollback` switches to: put back the version it ran, so a rejected
    // version never becomes the rollback target.
    let restored: string | undefined;
    if (stage !== "pulumi-up") {
      log.info(`restoring ${idle} to ${idleVersion}`);
      try {
        await pulumi.setAppConfig(`versions.${idle}`, idleVersion);
        await pulumi.up(`restore ${idle} to ${idleVersion} after the aborted deploy of ${options.version}`);
        restored = idleVersion;
      } catch (error) {
        log.warn(`could not restore ${idle} to ${idleVersion}: ${(error as Error).message}; do not roll back to ${idle} before fixing it`);
      }
    }
    await audit("deploy", "aborted", idle, { stage, reason, ...(restored ? { restoredVersion: restored } : {}) });
    return { status: "aborted", stage, reason, activeColor: active };
  };

  // 1. New version on the idle colour (live traffic untouched).
  try {
    await pulumi.setAppConfig(`versions.${idle}`, options.version);
    await pulumi.up(`deploy ${options.version} to ${idle} (idle)`);
  } catch (error) {
    return abort("pulumi-up", `pulumi up failed: ${(error as Error).message}`);
  }

  // 2-3. Rollout, then the smoke test of the idle colour through its own Service.
  const check = await checkColor(deps, idle, options.rolloutTimeoutMs);
  if (!check.ok) return abort(check.stage, check.reason);

  // 4. Switch knhk-service.
  await pulumi.setAppConfig("activeColor", idle);
  await pulumi.up(`switch knhk-service to ${idle} (${options.version})`);
  log.info(`knhk-service now selects ${idle}; watching for ${Math.round(options.watch.durationMs / 1000)} s`);

  // 5. Watch; roll back on a bad error ratio.
  const verdict: WatchVerdict = await watchColor(idle, deps, options.watch);
  if (!verdict.healthy) {
    log.warn(`${verdict.reason}: rolling back to ${active}`);
    await pulumi.setAppConfig("activeColor", active);
    await pulumi.up(`automatic rollback to ${active} (${previousVersion}): ${verdict.reason}`);
    await cluster.annotate(idle, rolledBackAnnotations(deps.clock.now(), verdict.reason));
    await audit("deploy", "rolled-back", idle, { reason: verdict.reason, samples: verdict.samples });
    return { status: "rolled-back", reason: verdict.reason, activeColor: active, failedColor: idle };
  }

  // 6. Record the deployment.
  await cluster.annotate(idle, deployedAnnotations(deps.clock.now(), options.version, options.actor, active));
  await audit("deploy", "success", idle, { warnings: verdict.warnings, samples: verdict.samples.length });
  log.info(`deployed ${options.version} on ${idle}; ${active} keeps ${previousVersion} for rollback`);
  return { status: "deployed", color: idle, previousColor: active, warnings: verdict.warnings };
}
