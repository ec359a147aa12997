/**
 * The apply job's release steps around `pulumi up`, with the blue-green checks of the one-shot
 * deploy (scripts/lib/deploy/blue-green.ts):
 * - before the update (`gate`): a switch goes only to a colour that passes the smoke test now;
 * - after it (`verifyTransition`): a staged colour must roll out and pass the smoke test (then the
 *   switch pull request may be opened); a switched-to colour is watched (error ratio, p95).
 * A failure names the correction that puts the stack file back (the idle colour's previous
 * version, or traffic back to the previous colour); the workflow applies it at once and commits it
 * to main, so git and the cluster never disagree about what serves.
 */
import { checkColor, deployedAnnotations, rolledBackAnnotations, type DeployDeps } from "../deploy/blue-green";
import { RefusedError } from "../deploy/errors";
import type { Color } from "../deploy/ports";
import { watchColor, type WatchOptions } from "../deploy/watch";
import { restoreVersion, rollbackColor, type StackEdit } from "./stack-file";
import type { Transition } from "./transition";

export type VerifyDeps = Pick<DeployDeps, "cluster" | "endpoints" | "smoke" | "prometheus" | "audit" | "clock" | "log">;

export interface VerifyOptions {
  readonly stack: string;
  readonly actor: string;
  /** The commit being applied (audit details). */
  readonly commit?: string;
  readonly rolloutTimeoutMs: number;
  readonly watch: WatchOptions;
}

/** The edit that undoes a failed step, applied to the stack file the same way on any commit. */
export type Correction =
  | { readonly kind: "restore"; readonly color: Color; readonly version: string; readonly rejected: string }
  | { readonly kind: "rollback"; readonly from: Color };

export type Verdict =
  /** No release step in this update (or the first deploy): the live smoke test is all. */
  | { readonly status: "nothing-to-verify"; readonly transition: Transition["kind"] }
  /** The staged colour is ready: the switch may be proposed. */
  | { readonly status: "staged"; readonly color: Color; readonly version: string }
  /** The staged colour failed; traffic never left the active colour. */
  | { readonly status: "rejected"; readonly stage: "rollout" | "smoke-test"; readonly reason: string; readonly correction: Correction }
  /** Traffic is on the new colour and its watch passed. */
  | { readonly status: "switched"; readonly color: Color; readonly version: string; readonly warnings: string[] }
  /** The watch after the switch failed: traffic must go back. */
  | { readonly status: "unhealthy"; readonly reason: string; readonly correction: Correction };

export const verdictFailed = (v: Verdict): boolean => v.status === "rejected" || v.status === "unhealthy";

/** The correction as an edit of a stack file's text. */
export function applyCorrection(text: string, c: Correction, file: string): StackEdit {
  return c.kind === "restore" ? restoreVersion(text, c.color, c.version, c.rejected, file) : rollbackColor(text, c.from, file);
}

export function describeCorrection(c: Correction): string {
  return c.kind === "restore" ? `restore ${c.color} to ${c.version} (rejected ${c.rejected})` : `traffic back from ${c.from}`;
}

/** Before `pulumi up` of a switch: the colour about to serve passes the smoke test, or nothing is applied. */
export async function gate(deps: Pick<VerifyDeps, "endpoints" | "smoke" | "cluster" | "log">, t: Transition, rolloutTimeoutMs: number): Promise<void> {
  if (t.kind !== "switch") return;
  deps.log.info(`before switching to ${t.to} (${t.version}): smoke test of knhk-${t.to}`);
  const check = await checkColor(deps, t.to, rolloutTimeoutMs);
  if (!check.ok) throw new RefusedError(`not switching traffic to ${t.to}: ${check.reason}; nothing was applied (revert the switch commit, or fix ${t.to} and re-run)`);
}

export async function verifyTransition(deps: VerifyDeps, t: Transition, o: VerifyOptions): Promise<Verdict> {
  const audit = (outcome: string, target: Color, details: Record<string, unknown>) =>
    deps.audit.log({ actor: o.actor, action: "deploy", target: `knhk-${target}`, outcome, details: { stack: o.stack, ...(o.commit ? { commit: o.commit } : {}), ...details } });

  if (t.kind === "stage") {
    const details = { version: t.version, previousVersion: t.previousVersion, idleColor: t.color, activeColor: t.activeColor };
    const check = await checkColor(deps, t.color, o.rolloutTimeoutMs);
    if (!check.ok) {
      deps.log.warn(`staged ${t.version} on ${t.color} failed at ${check.stage}: ${check.reason}; traffic stays on ${t.activeColor}`);
      await audit("aborted", t.color, { ...details, stage: check.stage, reason: check.reason, restoredVersion: t.previousVersion });
      return { status: "rejected", stage: check.stage, reason: check.reason, correction: { kind: "restore", color: t.color, version: t.previousVersion, rejected: t.version } };
    }
    await audit("staged", t.color, details);
    deps.log.info(`${t.version} on ${t.color} passed the smoke test; the switch may follow`);
    return { status: "staged", color: t.color, version: t.version };
  }

  if (t.kind === "switch") {
    const details = { version: t.version, previousVersion: t.previousVersion, activeColor: t.to, previousColor: t.from };
    deps.log.info(`knhk-service selects ${t.to}; watching for ${Math.round(o.watch.durationMs / 1000)} s`);
    const verdict = await watchColor(t.to, deps, o.watch);
    if (!verdict.healthy) {
      deps.log.warn(`${verdict.reason}: traffic goes back to ${t.from}`);
      await deps.cluster.annotate(t.to, rolledBackAnnotations(deps.clock.now(), verdict.reason));
      await audit("rolled-back", t.to, { ...details, reason: verdict.reason, samples: verdict.samples });
      return { status: "unhealthy", reason: verdict.reason, correction: { kind: "rollback", from: t.to } };
    }
    await deps.cluster.annotate(t.to, deployedAnnotations(deps.clock.now(), t.version, o.actor, t.from));
    await audit("success", t.to, { ...details, warnings: verdict.warnings, samples: verdict.samples.length });
    return { status: "switched", color: t.to, version: t.version, warnings: verdict.warnings };
  }

  return { status: "nothing-to-verify", transition: t.kind };
}
