/**
 * Issue 17, defect 7: the service follows Vault's dynamic database credentials without a restart.
 * The real service runs as a user created by Vault's rendered creation statements (member of the
 * service role only, password checked by scram-sha-256, KNHK_MIGRATE_ON_START=false after the
 * owner migrated), reading DATABASE_URL_FILE. Under steady reads and writes, with the scheduled
 * MAPE-K loop holding its leader lock and the ledger its owner lock, user B is issued into the
 * file and user A revoked by Vault's revocation statements (which end A's sessions): no request
 * fails, /ready never fails, the service ends up connected as B only with its advisory locks
 * carried over, and the receipts of before and after verify. A file left pointing at a revoked
 * user makes /ready 503 with the reason (and a renewal brings it back); garbage, an empty file
 * and credentials that cannot connect keep the last good URL, logged naming DATABASE_URL_FILE
 * and counted.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../support/ports";
import type { TestPostgres } from "../support/postgres";
import { backendsByUser, issueDynamicUser, renderFile, revokeDynamicUser, startPasswordPostgres, type DynamicUser } from "./shell/dynamic-users";
import { startOidc, type TestOidc } from "./shell/oidc";
import { createMigratedDatabase, startServiceOn, type ServiceUnderTest } from "./shell/service";

jest.setTimeout(300_000);

let pg: TestPostgres;
let oidc: TestOidc;
let admin: string;
let dir: string;
const services: ServiceUnderTest[] = [];

beforeAll(async () => {
  [pg, oidc] = await Promise.all([startPasswordPostgres(), startOidc()]);
  admin = await oidc.roleToken("administrator");
  dir = mkdtempSync(join(tmpdir(), "knhk-vault-secrets-"));
}, 180_000);

afterAll(async () => {
  for (const s of services) await s.stop().catch(() => undefined);
  await oidc?.close();
  await pg?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The service on a fresh migrated database, logged in as `user` through DATABASE_URL_FILE. */
async function startOnFile(database: string, file: string, user: DynamicUser, env: Record<string, string> = {}): Promise<ServiceUnderTest> {
  renderFile(file, `${user.url(database)}\n`);
  const svc = await startServiceOn(pg, database, {
    ...oidc.env(),
    DATABASE_URL_FILE: file,
    KNHK_MIGRATE_ON_START: "false",
    KNHK_RATE_LIMIT_MAX: "1000000",
    ...env,
  });
  services.push(svc);
  return svc;
}

async function metric(svc: ServiceUnderTest, series: string): Promise<number> {
  const text = await (await fetch(`${svc.service.metricsUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

const reloads = (svc: ServiceUnderTest, outcome: string) => metric(svc, `knhk_db_credential_reloads_total{outcome="${outcome}"}`);

/** Advisory locks of `database` by holder: "user|key" for bigint keys. */
async function advisoryLocks(database: string): Promise<string[]> {
  const out = await pg.psql(
    `SELECT a.usename || '|' || ((l.classid::int8 << 32) | l.objid::int8) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND a.datname = '${database}' ORDER BY 1`,
    database,
  );
  return out.split("\n").filter(Boolean);
}

interface Load {
  readonly responses: { path: string; status: number }[];
  readonly failures: string[];
  readonly readyStatuses: number[];
  readonly writes: string[];
  stop(): Promise<void>;
}

/** Steady reads, writes and on-demand MAPE-K cycles, and /ready polled, until stop(); every response is kept. */
function driveLoad(svc: ServiceUnderTest): Load {
  let stopped = false;
  const load = { responses: [] as { path: string; status: number }[], failures: [] as string[], readyStatuses: [] as number[], writes: [] as string[] };
  const call = async (path: string, init: { method?: string; json?: unknown }, ok: number) => {
    try {
      const r = await svc.api(path, { ...init, token: admin });
      load.responses.push({ path, status: r.status });
      if (r.status !== ok) load.failures.push(`${init.method ?? "GET"} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      return r;
    } catch (error) {
      load.failures.push(`${init.method ?? "GET"} ${path}: ${String(error)}`);
      return undefined;
    }
  };
  const loops = [
    ...Array.from({ length: 4 }, (_, k) =>
      (async () => {
        for (let i = 0; !stopped; i++) {
          const r = await call("/api/v1/observations", { method: "POST", json: { event_type: `rotation.t${k}`, value: i, sector: "generic" } }, 201);
          if (r?.status === 201) load.writes.push(r.body.id as string);
        }
      })(),
    ),
    (async () => {
      while (!stopped) await call("/api/v1/observations?limit=20", {}, 200);
    })(),
    (async () => {
      while (!stopped) await call("/api/v1/receipts?limit=10", {}, 200);
    })(),
    (async () => {
      while (!stopped) {
        await call("/api/v1/mape-k/execute", { method: "POST" }, 200);
        await new Promise((r) => setTimeout(r, 200));
      }
    })(),
    (async () => {
      while (!stopped) {
        try {
          load.readyStatuses.push((await fetch(`${svc.service.apiUrl}/ready`)).status);
        } catch {
          load.readyStatuses.push(0);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })(),
  ];
  return {
    ...load,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

test("rotation under load: B issued into the file, A revoked; no request fails, /ready stays ready, only B remains, receipts verify", async () => {
  const database = await createMigratedDatabase(pg);
  const file = join(dir, "database-url");
  const a = await issueDynamicUser(pg, database, "a");
  const svc = await startOnFile(database, file, a, { KNHK_MAPE_K_INTERVAL_SECONDS: "1", DB_POOL_MAX_CONNECTIONS: "20" });
  const load = driveLoad(svc);
  let stopped = false;
  try {
    await waitFor("writes as A and the MAPE-K leader", async () => load.writes.length >= 40 && svc.service.domain.mapeK.isLeader(), 60_000, 50);
    expect([...(await backendsByUser(pg, database)).keys()]).toEqual([a.name]);
    const locksOfA = (await advisoryLocks(database)).filter((l) => l.startsWith(`${a.name}|`)).map((l) => l.split("|")[1]);
    expect(locksOfA.length).toBeGreaterThanOrEqual(2); // the ledger's outbox owner lock and the leader lock
    const writesBefore = load.writes.length;

    const b = await issueDynamicUser(pg, database, "b");
    renderFile(file, `${b.url(database)}\n`);
    await waitFor("the reload", async () => (await reloads(svc, "applied")) === 1, 30_000, 50);
    // Vault revokes A's lease later (at its end); by then nothing of the service is on A.
    await waitFor("every connection of A to be gone", async () => !(await backendsByUser(pg, database)).has(a.name), 60_000, 100);
    await revokeDynamicUser(pg, database, a);
    const writesAtRevocation = load.writes.length;
    await waitFor("writes after the revocation", async () => load.writes.length >= writesAtRevocation + 40, 60_000, 50);
    await load.stop();
    stopped = true;

    expect(load.failures).toEqual([]);
    expect(load.responses.length).toBeGreaterThan(120);
    expect(load.responses.some((r) => r.path === "/api/v1/mape-k/execute")).toBe(true);
    expect(load.readyStatuses.length).toBeGreaterThan(0);
    expect(load.readyStatuses.filter((s) => s !== 200)).toEqual([]);
    expect(writesBefore).toBeGreaterThan(0);

    expect([...(await backendsByUser(pg, database)).keys()]).toEqual([b.name]);
    // The long-held locks moved with their sessions (never released): B holds every one A held.
    const locksNow = await advisoryLocks(database);
    for (const key of locksOfA) {
      if (locksNow.some((l) => l.endsWith(`|${key}`))) expect(locksNow).toContain(`${b.name}|${key}`);
    }
    expect(locksNow.filter((l) => l.startsWith(`${b.name}|`)).length).toBeGreaterThanOrEqual(2);
    expect(svc.service.domain.mapeK.isLeader()).toBe(true);

    const first = load.writes[0];
    const last = load.writes[load.writes.length - 1];
    const seqs = await pg.psql(
      `SELECT seq FROM receipts WHERE operation = 'observation.create' AND evidence::jsonb ->> 'observation_id' IN ('${first}', '${last}') ORDER BY seq`,
      database,
    );
    const [firstSeq, lastSeq] = seqs.split("\n").filter(Boolean).map(Number);
    expect(firstSeq).toBeGreaterThan(0);
    expect(lastSeq).toBeGreaterThan(firstSeq);
    const verified = await svc.api("/api/v1/receipts/verify", { method: "POST", token: admin, json: {} });
    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ ok: true, from_seq: 1 });
    expect(verified.body.verified_count).toBe(verified.body.total_count);
    expect(verified.body.to_seq).toBeGreaterThanOrEqual(lastSeq);

    expect(await reloads(svc, "applied")).toBe(1);
    expect(await reloads(svc, "invalid")).toBe(0);
    const logs = svc.logs.join("\n");
    expect(logs).toContain(`database credentials reloaded {"variable":"DATABASE_URL_FILE","file":"${file}","user":"${b.name}"`);
    expect(logs).toContain("database session moved to the new credentials");
    for (const secret of [a.password, b.password, encodeURIComponent(a.password), encodeURIComponent(b.password)]) expect(logs).not.toContain(secret);
  } finally {
    if (!stopped) await load.stop();
  }
});

describe("a file that is not renewed, or not a URL", () => {
  let database: string;
  let file: string;
  let svc: ServiceUnderTest;
  let current: DynamicUser;
  const post = (event: string) => svc.api("/api/v1/observations", { method: "POST", token: admin, json: { event_type: event, value: 1, sector: "generic" } });

  beforeAll(async () => {
    database = await createMigratedDatabase(pg);
    file = join(dir, "database-url-2");
    current = await issueDynamicUser(pg, database, "c");
    svc = await startOnFile(database, file, current);
    expect((await post("stale.before")).status).toBe(201);
  });

  test("revoked and never renewed: /ready 503 naming the failure and the file (the process keeps serving /health); a renewal brings it back", async () => {
    await revokeDynamicUser(pg, database, current);
    let reason = "";
    await waitFor("/ready to fail", async () => {
      const r = await fetch(`${svc.service.apiUrl}/ready`);
      reason = ((await r.json()) as { reason?: string }).reason ?? "";
      return r.status === 503;
    }, 30_000, 100);
    expect(reason).toMatch(new RegExp(`^database unreachable: .*${current.name}.* \\(credentials from DATABASE_URL_FILE ${file} \\(user ${current.name}, loaded `));
    expect(reason).not.toContain(current.password);
    const health = await svc.api("/health");
    expect(health.status).toBe(200);
    expect(health.body.dependencies.database).toBe("down");
    expect((await post("stale.during")).status).toBe(503);

    current = await issueDynamicUser(pg, database, "d");
    renderFile(file, current.url(database));
    await waitFor("/ready again", async () => (await fetch(`${svc.service.apiUrl}/ready`)).status === 200, 30_000, 100);
    expect((await post("stale.after")).status).toBe(201);
    // The ledger's owner session re-took its lock on the renewed credentials.
    await waitFor("the owner lock on the renewed credentials", async () => (await advisoryLocks(database)).some((l) => l.startsWith(`${current.name}|`)), 15_000, 100);
    expect([...(await backendsByUser(pg, database)).keys()]).toEqual([current.name]);
    const verified = await svc.api("/api/v1/receipts/verify", { method: "POST", token: admin, json: {} });
    expect(verified.body).toMatchObject({ ok: true });
  });

  test("garbage, an empty file and credentials that cannot connect: the last good URL stays, each refusal is logged naming DATABASE_URL_FILE and counted", async () => {
    const invalidBefore = await reloads(svc, "invalid");
    const appliedBefore = await reloads(svc, "applied");
    renderFile(file, "v4ult-rendered-garbage\n");
    await waitFor("the refusal to be counted", async () => (await reloads(svc, "invalid")) === invalidBefore + 1, 30_000, 100);
    expect(svc.logs.join("\n")).toContain("warn DATABASE_URL_FILE: the file is not a postgres:// or postgresql:// URL; keeping the current database credentials");
    expect(svc.logs.join("\n")).not.toContain("v4ult-rendered-garbage");
    expect((await post("garbage.after")).status).toBe(201);
    expect((await fetch(`${svc.service.apiUrl}/ready`)).status).toBe(200);

    renderFile(file, "");
    await waitFor("the empty file to be noticed", async () => svc.logs.some((l) => l.includes("DATABASE_URL_FILE is empty")), 30_000, 100);
    expect((await post("empty.after")).status).toBe(201);

    const wrong = current.url(database).replace(encodeURIComponent(current.password), "Wr0ng-pa55w0rd");
    renderFile(file, wrong);
    await waitFor("the failed probe to be counted", async () => (await reloads(svc, "probe_failed")) >= 1, 30_000, 100);
    expect(svc.logs.join("\n")).toMatch(/warn DATABASE_URL_FILE: connecting with the new credentials failed: password authentication failed/);
    expect(svc.logs.join("\n")).not.toContain("Wr0ng-pa55w0rd");
    expect((await post("wrong.after")).status).toBe(201);

    renderFile(file, current.url(database)); // the good URL again: nothing to change
    await svc.service.db.query("SELECT 1");
    expect(await reloads(svc, "applied")).toBe(appliedBefore);
    expect(await reloads(svc, "invalid")).toBe(invalidBefore + 1);
    expect([...(await backendsByUser(pg, database)).keys()]).toEqual([current.name]);
  });
});
