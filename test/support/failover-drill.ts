/**
 * One failover drill on the Patroni cluster of test/support/patroni-k8s.ts while the KNHK service
 * writes receipts through `postgres-primary` (test/support/receipt-load.ts), and its figures:
 * seconds from the fault until postgres-primary's only ready endpoint is the new leader, until the
 * first acknowledged write, until the old leader streams again, and the acknowledged writes lost.
 * Used by test/cluster/patroni-failover.test.ts and `npm run bench:failover`.
 */
import type { PatroniOnCluster } from "./patroni-k8s";
import type { ReceiptLoad } from "./receipt-load";
import { waitFor } from "./ports";

export const DRILLS = ["node-death", "postgres-crash", "switchover", "dcs-loss"] as const;
export type Drill = (typeof DRILLS)[number];

export const DRILL_DESCRIPTIONS: Record<Drill, string> = {
  "node-death": "node death of the leader (SIGKILL of Patroni and PostgreSQL; its kubelet stops too)",
  "postgres-crash": "PostgreSQL crash on the leader (kill -9 of the postmaster) under a live Patroni",
  switchover: "planned switchover to the synchronous standby (Patroni REST API)",
  "dcs-loss": "the leader loses the API server (its DCS) while PostgreSQL and the other members stay reachable",
};

export interface DrillFigures {
  readonly drill: Drill;
  readonly oldLeader: string;
  readonly newLeader: string;
  /**
   * null when the leader does not change: PostgreSQL crash (Patroni restarts it in place) and DCS
   * loss (failsafe mode: every member still answers the leader, so it stays and nobody takes over).
   */
  readonly endpointSwitchSeconds: number | null;
  readonly firstWriteSeconds: number;
  /** null when the old leader never left. */
  readonly rejoinSeconds: number | null;
  readonly acknowledged: number;
  readonly lost: number;
}

const seconds = (from: number, to: number) => Math.round((to - from) / 100) / 10;

async function inRecovery(pg: PatroniOnCluster, name: string): Promise<boolean | undefined> {
  try {
    return (await pg.psql(name, "SELECT pg_is_in_recovery()")) === "t";
  } catch {
    return undefined; // not answering: down or restarting
  }
}

/** Acknowledged ids missing on `leader`: an observation row and its receipt in the chain, or it is lost. */
export async function lostWrites(pg: PatroniOnCluster, leader: string, ids: readonly string[], database: string): Promise<string[]> {
  const present = await pg.psql(
    leader,
    "SELECT o.id FROM observations o JOIN receipts r ON r.evidence::jsonb->>'observation_id' = o.id::text WHERE o.event_type = 'failover-drill'",
    database,
  );
  const found = new Set(present.split("\n").filter(Boolean));
  return ids.filter((id) => !found.has(id));
}

export interface DrillOptions {
  readonly database: string;
  /** Upper bound of every wait in the drill (not a target). */
  readonly timeoutMs?: number;
  readonly log?: (message: string) => void;
}

/** Drills after which another member holds the lock. */
const MOVES_LEADER: Record<Drill, boolean> = { "node-death": true, "postgres-crash": false, switchover: true, "dcs-loss": false };

/** How long the drill watches a leader that is expected to stay (the failsafe window is ttl). */
const STAY_WATCH_MS = 45_000;

export async function runDrill(pg: PatroniOnCluster, load: ReceiptLoad, drill: Drill, options: DrillOptions): Promise<DrillFigures> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const log = options.log ?? (() => undefined);
  const before = await pg.waitForHealthy(timeoutMs);
  const oldLeader = before.find((m) => m.role === "leader")!.name;
  const syncStandby = before.find((m) => m.role === "sync_standby")!.name;
  await pg.primary.waitFor([oldLeader], timeoutMs);
  await load.firstAcknowledgedAfter(Date.now(), timeoutMs);
  log(`${drill}: leader ${oldLeader}, sync standby ${syncStandby}, ${load.acknowledgedIds().length} writes acknowledged so far`);

  const fault = Date.now();
  // When the fault has surely taken effect: a write begun before it may not have met the fault.
  let settled = fault;
  if (drill === "node-death") await pg.killMember(oldLeader);
  else if (drill === "postgres-crash") {
    // The backends of a killed postmaster keep serving their sessions until they notice; the
    // outage is over only once Patroni has started a new postmaster and it accepts writes.
    const crashed = await pg.crashPostgres(oldLeader);
    await waitFor(`PostgreSQL on ${oldLeader} restarted after the crash`, async () => {
      const pid = pg.postmasterPid(oldLeader);
      return pid !== undefined && pid !== crashed && (await inRecovery(pg, oldLeader)) === false;
    }, timeoutMs, 100);
    settled = Date.now();
  } else if (drill === "switchover") await pg.switchover(syncStandby);
  else pg.cutApiServer(oldLeader);

  let newLeader = oldLeader;
  let endpointSwitchSeconds: number | null = null;
  if (MOVES_LEADER[drill]) {
    await waitFor(`a new leader after ${drill} of ${oldLeader}`, async () => {
      const holder = await pg.leader().catch(() => undefined);
      if (holder && holder !== oldLeader) newLeader = holder;
      return newLeader !== oldLeader;
    }, timeoutMs, 50);
    await pg.primary.waitFor([newLeader], timeoutMs);
    const switched = pg.primary.changes.find((c) => c.at >= fault && c.pods.length === 1 && c.pods[0] === newLeader);
    endpointSwitchSeconds = switched ? seconds(fault, switched.at) : null;
  } else if (drill === "dcs-loss") {
    // Past the lock's ttl: nobody may take over while the leader still reaches every member
    // (failsafe mode), and the leader stays the only writable member: no second primary takes
    // writes the other does not have.
    await new Promise((r) => setTimeout(r, STAY_WATCH_MS));
    const holder = await pg.leader();
    if (holder !== oldLeader) throw new Error(`dcs-loss: ${holder} took the lock from ${oldLeader}, which every member could still reach`);
    for (const m of pg.members.filter((x) => x.name !== oldLeader)) {
      if ((await inRecovery(pg, m.name)) !== true) throw new Error(`dcs-loss: ${m.name} left recovery while ${oldLeader} was still the primary`);
    }
  }
  const firstWrite = await firstWriteAfterOutage(load, fault, settled, timeoutMs);
  log(`${drill}: leader ${newLeader}, endpoint switched after ${endpointSwitchSeconds ?? "-"} s, first write after ${seconds(fault, firstWrite)} s`);

  let rejoinSeconds: number | null = null;
  if (drill === "node-death") await pg.startMember(oldLeader);
  if (drill === "dcs-loss") pg.restoreApiServer(oldLeader);
  if (MOVES_LEADER[drill]) {
    await waitFor(`${oldLeader} streams from ${newLeader}`, async () => {
      const status = await pg.clusterStatus().catch(() => []);
      return status.some((m) => m.name === oldLeader && m.role !== "leader" && m.state === "streaming");
    }, timeoutMs * 2, 200);
    rejoinSeconds = seconds(fault, Date.now());
  }
  await pg.waitForHealthy(timeoutMs);
  const ids = load.acknowledgedIds();
  const lost = await lostWrites(pg, newLeader, ids, options.database);
  log(`${drill}: old leader back after ${rejoinSeconds ?? "-"} s; ${ids.length} acknowledged, ${lost.length} lost`);
  return {
    drill,
    oldLeader,
    newLeader,
    endpointSwitchSeconds,
    firstWriteSeconds: seconds(fault, firstWrite),
    rejoinSeconds,
    acknowledged: ids.length,
    lost: lost.length,
  };
}

/**
 * When writes were acknowledged again after the fault: the first acknowledgement of a write begun
 * after the first write that failed or waited longer than a second; the fault itself when no write
 * was affected, that is when 20 writes begun after `settled` (the fault has taken effect) were
 * acknowledged in time and none failed. (A write begun just before a planned switchover may still
 * succeed on the old leader, so "the first acknowledgement after the fault" would be no measure.)
 */
async function firstWriteAfterOutage(load: ReceiptLoad, fault: number, settled: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const after = load.attempts.filter((a) => a.endedAt >= fault);
    const hit = after.find((a) => a.status !== 201 || a.endedAt - a.startedAt > 1000);
    if (!hit && after.filter((a) => a.status === 201 && a.startedAt >= settled).length >= 20) return fault;
    if (hit) {
      const ok = after.filter((a) => a.status === 201 && a.startedAt >= hit.startedAt).reduce((min, a) => Math.min(min, a.endedAt), Infinity);
      if (ok !== Infinity) return ok;
    }
    if (Date.now() > deadline) throw new Error(`no acknowledged write within ${timeoutMs} ms of the fault`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
