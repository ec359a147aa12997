/**
 * Ingest loses nothing it acknowledged, single and batch, when the service is killed or the
 * database crashes under load: the service as its own process (knhk_app, real PostgreSQL 15,
 * synchronous_commit on) takes POST /observations and POST /observations/batch from concurrent
 * clients. After each SIGKILL and restart, and after a PostgreSQL crash (immediate shutdown)
 * in the middle of batches, every observation the service answered 201 for is stored with its
 * receipt, every batch is stored whole or not at all, and verify-chain passes.
 */
import { randomUUID } from "node:crypto";
import { run } from "../../app/src/cli/receipts";
import type { PostgresDatabase } from "../../app/src/db/postgres";
import { waitFor } from "../support/ports";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { capturedStreams } from "../support/streams";
import { startOidc, type TestOidc } from "./shell/oidc";
import { prepareServiceProcess, type PreparedServiceProcess, type ServiceProcess } from "./shell/service-process";

jest.setTimeout(600_000);

/** Observations per batch request. */
const BATCH = 40;
/** Stored observations at which the service is killed (cumulative). */
const KILL_POINTS = [400, 1500, 3000];

let pg: TestPostgres;
let oidc: TestOidc;
let ingestor: string;
let killable: PreparedServiceProcess;
let owner: PostgresDatabase;
let serviceDb: PostgresDatabase;
/** Every batch any client of this file sent, by tag. */
const everyBatchSent = new Set<string>();

beforeAll(async () => {
  [pg, oidc] = await Promise.all([startPostgres({ settings: { synchronous_commit: "on" } }), startOidc()]);
  ingestor = await oidc.roleToken("ingestor");
  killable = await prepareServiceProcess(pg, oidc);
  ({ owner, serviceDb } = killable);
});

afterAll(async () => {
  await killable?.close();
  await oidc?.close().catch(() => undefined);
  await pg?.destroy();
});

/** What the clients were told: ids answered 201 (single and batch items), and every batch sent by its tag. */
interface Acknowledged {
  readonly ids: string[];
  readonly batchesSent: string[];
  readonly statuses: Map<number, number>;
}

async function post(apiUrl: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${apiUrl}/api/v1${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ingestor}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Single and batch ingest clients until `stop()`; a request cut by a kill or crash is simply not acknowledged. */
function ingestLoad(apiUrl: string, round: string, acknowledged: Acknowledged) {
  let stopped = false;
  const note = (status: number) => acknowledged.statuses.set(status, (acknowledged.statuses.get(status) ?? 0) + 1);
  const single = (k: number) =>
    (async () => {
      for (let i = 0; !stopped; i++) {
        try {
          const answer = await post(apiUrl, "/observations", { event_type: `ingest.${round}`, value: i, sector: "finance", metadata: { client: k } });
          note(answer.status);
          if (answer.status === 201) acknowledged.ids.push(answer.body.id);
        } catch {
          if (stopped) return;
          await new Promise((resolve) => setTimeout(resolve, 50)); // the service or database is gone for now
        }
      }
    })();
  const batch = (k: number) =>
    (async () => {
      for (let i = 0; !stopped; i++) {
        const tag = `${round}-${k}-${i}-${randomUUID()}`;
        acknowledged.batchesSent.push(tag);
        everyBatchSent.add(tag);
        const items = Array.from({ length: BATCH }, (_, j) => ({ event_type: `ingest.${round}.batch`, value: j, sector: "logistics", metadata: { batch: tag } }));
        try {
          const answer = await post(apiUrl, "/observations/batch", { items });
          note(answer.status);
          if (answer.status === 201) {
            expect(answer.body.stored).toBe(BATCH);
            for (const item of answer.body.items) acknowledged.ids.push(item.id);
          }
        } catch {
          if (stopped) return;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    })();
  const loops = [...Array.from({ length: 8 }, (_, k) => single(k)), ...Array.from({ length: 4 }, (_, k) => batch(k))];
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  return Number((await owner.query<{ n: string }>(sql, params)).rows[0].n);
}

async function waitForStored(atLeast: number): Promise<void> {
  for (let polls = 0; (await count("SELECT count(*) AS n FROM observations")) < atLeast; polls++) {
    if (polls > 1200) throw new Error(`ingest stalled below ${atLeast} stored observations`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What must hold after any failure: nothing acknowledged lost, nothing half-written, the chain whole. */
async function expectNothingLost(acknowledged: Acknowledged): Promise<void> {
  const acked = [...new Set(acknowledged.ids)];
  expect(acked.length).toBe(acknowledged.ids.length);
  const storedAcked = await count("SELECT count(*) AS n FROM observations WHERE id = ANY($1::uuid[])", [acked]);
  expect({ acknowledged: acked.length, lost: acked.length - storedAcked }).toEqual({ acknowledged: acked.length, lost: 0 });
  // Every stored observation (acknowledged or not) has its receipt, of its kind.
  expect(
    await count(`SELECT count(*) AS n FROM observations o WHERE NOT EXISTS (
      SELECT 1 FROM receipts r WHERE r.seq = o.receipt_seq
        AND r.operation = CASE WHEN o.batch_id IS NULL THEN 'observation.create' ELSE 'observation.batch' END)`),
  ).toBe(0);
  // Every batch is whole: all of its items under one batch row and one receipt, or none.
  const { rows } = await owner.query<{ tag: string; n: string; batches: string; receipts: string }>(
    `SELECT metadata->>'batch' AS tag, count(*)::text AS n, count(DISTINCT batch_id)::text AS batches, count(DISTINCT receipt_seq)::text AS receipts
     FROM observations WHERE metadata ? 'batch' GROUP BY 1`,
  );
  const partial = rows.filter((r) => Number(r.n) !== BATCH || r.batches !== "1" || r.receipts !== "1");
  expect(partial).toEqual([]);
  expect(rows.filter((r) => !everyBatchSent.has(r.tag))).toEqual([]);
  expect(rows.length).toBeGreaterThan(0);
  expect(await count(`SELECT count(*) AS n FROM observation_batches b WHERE b.item_count <> (SELECT count(*) FROM observations o WHERE o.batch_id = b.id)`)).toBe(0);
  const { stdout, stderr, out } = capturedStreams();
  const code = await run(["verify-chain", "--format", "json"], { db: serviceDb, env: {}, stdout, stderr });
  expect({ code, ok: JSON.parse(out()).ok }).toEqual({ code: 0, ok: true });
}

test("SIGKILL of the service under single and batch ingest: every acknowledged observation is stored with its receipt, batches whole, the chain verifies", async () => {
  const acknowledged: Acknowledged = { ids: [], batchesSent: [], statuses: new Map() };
  let service: ServiceProcess = await killable.start();
  for (const [round, killAt] of KILL_POINTS.entries()) {
    const load = ingestLoad(service.apiUrl, `kill${round}`, acknowledged);
    await waitForStored(killAt);
    service.process.signal("SIGKILL");
    expect((await service.process.exited).signal).toBe("SIGKILL");
    await service.process.stop("SIGKILL");
    await load.stop();
    service = await killable.start();
    await expectNothingLost(acknowledged);
  }
  expect(acknowledged.statuses.get(201)).toBeGreaterThan(100);
  // Only successes and refusals caused by the kill itself; never a 500.
  expect([...acknowledged.statuses.keys()].filter((status) => status >= 500 && status !== 503)).toEqual([]);
  await service.process.stop("SIGTERM");
});

test("a PostgreSQL crash in the middle of batches: each batch fails or is stored whole, nothing acknowledged is lost, and ingest resumes", async () => {
  const acknowledged: Acknowledged = { ids: [], batchesSent: [], statuses: new Map() };
  const service = await killable.start();
  const before = await count("SELECT count(*) AS n FROM observations");
  const load = ingestLoad(service.apiUrl, "crash", acknowledged);
  await waitForStored(before + 800);
  await pg.crash();
  await new Promise((resolve) => setTimeout(resolve, 500));
  await pg.start();
  // The same service process reconnects and goes on storing.
  const resumedFrom = acknowledged.ids.length;
  for (let polls = 0; acknowledged.ids.length < resumedFrom + 200; polls++) {
    if (polls > 1200) throw new Error(`ingest did not resume after the crash: ${JSON.stringify([...acknowledged.statuses])}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await load.stop();
  for (const db of [owner, serviceDb]) await waitFor("the test's own connections are back", async () => db.query("SELECT 1").then(() => true, () => false), 30_000, 100);
  await expectNothingLost(acknowledged);
  expect([...acknowledged.statuses.keys()].filter((status) => status >= 500 && status !== 503)).toEqual([]);
  await service.process.stop("SIGTERM");
});
