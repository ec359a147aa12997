/**
 * kill -9 of the real service under load on every receipted write path leaves no row without its
 * receipt (issue 18, defect 4): the service (node app/src/main.ts) runs as the least-privileged
 * role knhk_app against a real PostgreSQL 15, with migrations and its key registration done by
 * the owner (DATABASE_MIGRATION_URL). Concurrent clients POST observations, pattern detections,
 * proposal generations, proposal validations, MAPE-K cycles (validation, promotion) and
 * rollbacks; at several kill points the whole process group gets SIGKILL; the restarted service
 * appends what was staged before it serves, and then every receipted row has its receipt and
 * verify-chain passes.
 */
import { run } from "../../app/src/cli/receipts";
import type { PostgresDatabase } from "../../app/src/db/postgres";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { capturedStreams } from "../support/streams";
import { startOidc, type TestOidc } from "./shell/oidc";
import { prepareServiceProcess, type PreparedServiceProcess } from "./shell/service-process";

jest.setTimeout(600_000);

/** The statuses key of the proposal validation client. */
const VALIDATE = "/proposals/:id/validate";
/** Stored observations at which the service is killed (cumulative). */
const KILL_POINTS = [250, 700, 1200];

let pg: TestPostgres;
let oidc: TestOidc;
let admin: string;
let killable: PreparedServiceProcess;
let owner: PostgresDatabase;
let serviceDb: PostgresDatabase;

beforeAll(async () => {
  [pg, oidc] = await Promise.all([startPostgres({ settings: { synchronous_commit: "on" } }), startOidc()]);
  admin = await oidc.roleToken("administrator");
  killable = await prepareServiceProcess(pg, oidc);
  ({ owner, serviceDb } = killable);
});

afterAll(async () => {
  await killable?.close();
  await oidc?.close().catch(() => undefined);
  await pg?.destroy();
});

async function post(apiUrl: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${apiUrl}/api/v1${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function count(sql: string): Promise<number> {
  return Number((await owner.query<{ n: string }>(sql)).rows[0].n);
}

/**
 * Clients on every receipted write path until `stop()`; a request cut by the kill is not an error.
 * Observations use round-specific event types above the high-frequency threshold, so every
 * MAPE-K cycle has patterns to plan, validate and promote.
 */
function driveLoad(apiUrl: string, round: number) {
  let stopped = false;
  const statuses = new Map<string, number[]>();
  const note = (path: string, status: number) => statuses.set(path, [...(statuses.get(path) ?? []), status]);
  const loop = (path: string, body: (i: number) => unknown) =>
    (async () => {
      for (let i = 0; !stopped; i++) {
        try {
          note(path, (await post(apiUrl, path, body(i))).status);
        } catch {
          return; // the service is gone
        }
      }
    })();
  const loops = [
    ...Array.from({ length: 12 }, (_, k) =>
      loop("/observations", (i) => ({
        event_type: `load.r${round}.t${(k + i) % 3}`,
        value: i % 5 === 0 ? { error: true } : i,
        sector: ["finance", "logistics", "generic"][k % 3],
        metadata: i % 5 === 0 ? { level: "error" } : {},
      })),
    ),
    loop("/patterns/detect", () => ({})),
    loop("/proposals/generate", () => ({})),
    loop("/mape-k/execute", () => ({})),
    loop("/snapshots/rollback", () => ({})),
    // Validation of the latest proposals (a promoted, current one answers 409: nothing stored).
    (async () => {
      for (let i = 0; !stopped; i++) {
        const { rows } = await owner.query<{ id: string }>("SELECT id::text AS id FROM proposals ORDER BY seq DESC LIMIT 3");
        if (rows.length === 0) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        try {
          note(VALIDATE, (await post(apiUrl, `/proposals/${rows[i % rows.length].id}/validate`, {})).status);
        } catch {
          return; // the service is gone
        }
      }
    })(),
  ];
  return {
    statuses,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Polls until the count is reached; gives up (with what the clients saw) if the load stalls. */
async function waitForCount(sql: string, atLeast: number, load: { statuses: Map<string, number[]> }): Promise<void> {
  let last = -1;
  let stalled = 0;
  for (;;) {
    const n = await count(sql);
    if (n >= atLeast) return;
    stalled = n === last ? stalled + 1 : 0;
    last = n;
    if (stalled > 600) {
      const seen = Object.fromEntries([...load.statuses].map(([path, list]) => [path, [...new Set(list)]]));
      throw new Error(`load stalled at ${n} of ${atLeast}: statuses ${JSON.stringify(seen)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Receipted rows whose receipt is missing, per table. A pattern's receipt is the pattern.detect
 * receipt of its run: it lists the pattern's id, or, for a run with more patterns than the
 * evidence lists (EVIDENCE_LIST_LIMIT), it is the run's receipt (same window end and snapshot).
 * A validation report links its receipt through receipt_seq.
 */
async function rowsWithoutReceipts(): Promise<Record<string, number>> {
  return {
    observations: await count(
      `SELECT count(*) AS n FROM observations o WHERE NOT EXISTS (
         SELECT 1 FROM receipts r WHERE r.operation = 'observation.create' AND r.evidence::jsonb ->> 'observation_id' = o.id::text)`,
    ),
    snapshot_transitions: await count(
      `SELECT count(*) AS n FROM snapshot_transitions t WHERE NOT EXISTS (
         SELECT 1 FROM receipts r WHERE r.seq = t.receipt_seq AND r.operation = 'snapshot.' || t.kind
           AND r.evidence::jsonb ->> (CASE t.kind WHEN 'promote' THEN 'snapshot_id' ELSE 'rolled_back_snapshot_id' END)
             = (CASE t.kind WHEN 'promote' THEN t.to_snapshot_id ELSE t.from_snapshot_id END)::text)`,
    ),
    patterns: await count(
      `SELECT count(*) AS n FROM patterns p
       WHERE NOT EXISTS (
         SELECT 1 FROM receipts r, jsonb_array_elements(r.evidence::jsonb -> 'patterns') e
         WHERE r.operation = 'pattern.detect' AND e ->> 'id' = p.id::text)
       AND NOT EXISTS (
         SELECT 1 FROM receipts r WHERE r.operation = 'pattern.detect'
           AND (r.evidence::jsonb ->> 'patterns_total')::int > jsonb_array_length(r.evidence::jsonb -> 'patterns')
           AND (r.evidence::jsonb ->> 'window_end')::timestamptz = p.window_end
           AND r.evidence::jsonb ->> 'snapshot_id' = p.snapshot_id::text)`,
    ),
    validation_reports: await count(
      `SELECT count(*) AS n FROM validation_reports v WHERE NOT EXISTS (
         SELECT 1 FROM receipts r WHERE r.seq = v.receipt_seq AND r.operation = 'proposal.validate'
           AND r.evidence::jsonb ->> 'report_id' = v.id::text AND r.outcome = v.outcome)`,
    ),
    proposals: await count(
      `SELECT count(*) AS n FROM proposals q WHERE NOT EXISTS (
         SELECT 1 FROM receipts r, jsonb_array_elements(r.evidence::jsonb -> 'proposals') p
         WHERE r.operation = 'proposal.generate' AND p ->> 'id' = q.id::text)`,
    ),
    mape_k_phases: await count(
      `SELECT count(*) AS n FROM mape_k_cycles c, jsonb_array_elements(c.phases) ph
       WHERE ph ->> 'receipt_seq' IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM receipts r WHERE r.seq = (ph ->> 'receipt_seq')::bigint AND r.operation = 'mape_k.' || (ph ->> 'phase')
           AND r.evidence::jsonb ->> 'cycle_id' = c.id::text)`,
    ),
    receipt_outbox: await count("SELECT count(*) AS n FROM receipt_outbox"),
  };
}

async function verifyChainCli(): Promise<{ code: number; out: string }> {
  const { stdout, stderr, out } = capturedStreams();
  const code = await run(["verify-chain", "--format", "json"], { db: serviceDb, env: {}, stdout, stderr });
  return { code, out: out() };
}

test("SIGKILL under load at several points: after each restart no receipted row lacks its receipt and verify-chain passes", async () => {
  const none = { observations: 0, snapshot_transitions: 0, patterns: 0, validation_reports: 0, proposals: 0, mape_k_phases: 0, receipt_outbox: 0 };
  let service = await killable.start();
  let validated = 0;
  for (const [round, killAt] of KILL_POINTS.entries()) {
    const load = driveLoad(service.apiUrl, round);
    await waitForCount("SELECT count(*) AS n FROM observations", killAt, load);
    service.process.signal("SIGKILL");
    expect((await service.process.exited).signal).toBe("SIGKILL");
    await service.process.stop("SIGKILL"); // the whole group is gone
    await load.stop();
    // The load reached every path: observations stored, and the other paths answered.
    expect(load.statuses.get("/observations")?.filter((s) => s === 201).length).toBeGreaterThan(0);
    validated += load.statuses.get(VALIDATE)?.filter((s) => s === 200).length ?? 0;
    for (const path of ["/patterns/detect", "/proposals/generate", VALIDATE, "/mape-k/execute", "/snapshots/rollback"]) {
      expect({ path, answered: (load.statuses.get(path) ?? []).length > 0 }).toEqual({ path, answered: true });
    }

    // Restart: recovery appends what the killed process staged, before the service listens.
    service = await killable.start();
    expect({ round, ...(await rowsWithoutReceipts()) }).toEqual({ round, ...none });
    const verified = await verifyChainCli();
    expect({ round, code: verified.code }).toEqual({ round, code: 0 });
    expect(JSON.parse(verified.out)).toMatchObject({ ok: true, chain_breaks: [], signature_failures: [] });
  }
  // The loop really exercised promotion and proposal generation across the rounds.
  expect(await count("SELECT count(*) AS n FROM snapshot_transitions WHERE kind = 'promote'")).toBeGreaterThan(0);
  expect(await count("SELECT count(*) AS n FROM proposals")).toBeGreaterThan(0);
  // ... and pattern detection and proposal validation stored rows.
  expect(await count("SELECT count(*) AS n FROM patterns")).toBeGreaterThan(0);
  expect(await count("SELECT count(*) AS n FROM validation_reports")).toBeGreaterThan(0);
  expect(validated).toBeGreaterThan(0);
  await service.process.stop("SIGTERM");
  expect(await rowsWithoutReceipts()).toEqual(none);
});
