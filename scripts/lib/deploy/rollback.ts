/**
 * Manual rollback: point `knhk-service` back at the other colour (which still runs the previous
 * version). Checks that colour's health before switching, confirms (typed, on a terminal; or
 * `--yes`), switches through Pulumi, checks the live Service, annotates and audit-logs.
 */
import { otherColor, type AuditPort, type ClusterPort, type Clock, type Color, type EndpointPort, type Logger, type PulumiPort } from "./ports";

/** Asks the operator; resolves with what they typed (undefined when no terminal is attached). */
export interface Confirmer {
  ask(question: string): Promise<string | undefined>;
}

export interface RollbackDeps {
  readonly pulumi: PulumiPort;
  readonly cluster: ClusterPort;
  readonly endpoints: EndpointPort;
  /** GET /health of an endpoint: resolves with the parsed body's status, rejects when unreachable. */
  readonly health: (apiUrl: string) => Promise<string>;
  readonly audit: AuditPort;
  readonly confirm: Confirmer;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface RollbackOptions {
  readonly stack: string;
  readonly actor: string;
  readonly reason: string;
  /** Skip the typed confirmation (automation). */
  readonly yes: boolean;
  /** Switch even when the target colour is not healthy. */
  readonly force: boolean;
}

export type RollbackOutcome =
  | { readonly status: "rolled-back"; readonly from: Color; readonly to: Color; readonly version: string; readonly liveHealth: string }
  | { readonly status: "refused"; readonly reason: string };

async function healthOf(deps: RollbackDeps, target: Color | "live"): Promise<string> {
  const endpoint = await deps.endpoints.open(target);
  try {
    return await deps.health(endpoint.apiUrl);
  } catch (error) {
    return `unreachable (${(error as Error).message})`;
  } finally {
    await endpoint.close();
  }
}

export async function rollback(deps: RollbackDeps, options: RollbackOptions): Promise<RollbackOutcome> {
  const state = await deps.pulumi.readAppState();
  const from = state.activeColor;
  const to = otherColor(from);
  const version = state.versions[to];
  deps.log.info(`stack ${options.stack}: live ${from} (${state.versions[from]}); rollback target ${to} (${version})`);

  const targetHealth = await healthOf(deps, to);
  if (targetHealth !== "healthy") {
    if (!options.force) return { status: "refused", reason: `knhk-${to} is ${targetHealth}; not switching traffic to it (use --force to override)` };
    deps.log.warn(`knhk-${to} is ${targetHealth}; switching anyway (--force)`);
  }

  if (!options.yes) {
    const typed = await deps.confirm.ask(`Switch knhk-service on stack ${options.stack} from ${from} to ${to} (${version})? Type the stack name to confirm: `);
    if (typed === undefined) return { status: "refused", reason: "no terminal to confirm on: pass --yes to roll back non-interactively" };
    if (typed.trim() !== options.stack) return { status: "refused", reason: `confirmation did not match the stack name "${options.stack}"` };
  }

  await deps.pulumi.setAppConfig("activeColor", to);
  await deps.pulumi.up(`rollback to ${to} (${version}): ${options.reason}`);
  const live = await healthOf(deps, "live");
  if (live !== "healthy") deps.log.warn(`knhk-service reports ${live} after the rollback`);
  await deps.cluster.annotate(to, {
    "knhk.io/rolled-back-at": deps.clock.now().toISOString(),
    "knhk.io/rolled-back-by": options.actor,
    "knhk.io/rollback-from": from,
  });
  await deps.audit.log({
    actor: options.actor,
    action: "rollback",
    target: `knhk-${to}`,
    outcome: live === "healthy" ? "success" : "degraded",
    details: { stack: options.stack, from, to, version, fromVersion: state.versions[from], reason: options.reason, liveHealth: live },
  });
  return { status: "rolled-back", from, to, version, liveHealth: live };
}
