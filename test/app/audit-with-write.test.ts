/**
 * Every allow decision is durable before its answer, the service as knhk_app on a real
 * PostgreSQL 15. Ingest routes commit their decision in the transaction of their own write
 * (auditWithWrite): the decision row and the observation carry the same transaction id; a request
 * that writes nothing still has its decision recorded before the response; when audit_log cannot
 * be written, nothing is stored and the caller gets a 503. A read runs while its decision
 * commits, and its answer waits for that commit (or becomes a 503 without the data).
 */
import { randomUUID } from "node:crypto";
import { createPostgresDatabase } from "../../app/src/db/postgres";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";

let pg: TestPostgres;
let oidc: TestOidc;
let svc: ServiceUnderTest;
let ingestor: string;
let observer: string;

beforeAll(async () => {
  [pg, oidc] = await Promise.all([startPostgres(), startOidc()]);
  svc = await startTestService(pg, { ...oidc.env(), KNHK_RATE_LIMIT_MAX: "100000" });
  ingestor = await oidc.roleToken("ingestor");
  observer = await oidc.roleToken("observer");
}, 180_000);
afterAll(async () => {
  await svc?.stop();
  await oidc?.close();
  await pg?.destroy();
});

const sql = (text: string) => pg.psql(text, svc.database).then((out) => out.trim());

function ingest(path: string, json: unknown, requestId = randomUUID()) {
  return svc.api(`/api/v1${path}`, { method: "POST", token: ingestor, json, headers: { "x-request-id": requestId } }).then((r) => ({ ...r, requestId }));
}

const decisionOf = (requestId: string) =>
  sql(`SELECT outcome || '|' || target || '|' || xmin FROM audit_log WHERE action = 'authz.decision' AND details->>'request_id' = '${requestId}'`);

test("a stored observation and its allow decision commit in one transaction (same xmin), once", async () => {
  const single = await ingest("/observations", { event_type: "audit.write", value: 1, sector: "finance" });
  expect(single.status).toBe(201);
  const xmin = await sql(`SELECT xmin FROM observations WHERE id = '${single.body.id}'`);
  expect(await decisionOf(single.requestId)).toBe(`allow|POST /api/v1/observations|${xmin}`);

  const batch = await ingest("/observations/batch", { items: [{ event_type: "audit.write", value: 2, sector: "finance" }, { event_type: "audit.write", value: 3, sector: "finance" }] });
  expect(batch.status).toBe(201);
  const batchXmin = await sql(`SELECT DISTINCT xmin FROM observations WHERE batch_id = '${batch.body.batch_id}'`);
  expect(await decisionOf(batch.requestId)).toBe(`allow|POST /api/v1/observations/batch|${batchXmin}`);
});

test("a request that stores nothing has its allow decision recorded anyway, before its response", async () => {
  const refused = await ingest("/observations", { event_type: "audit.write", value: 1, sector: "mars" });
  expect(refused.status).toBe(400);
  expect(await decisionOf(refused.requestId)).toMatch(/^allow\|POST \/api\/v1\/observations\|\d+$/);
  const refusedBatch = await ingest("/observations/batch", { items: [{ sector: "mars" }] });
  expect(refusedBatch.status).toBe(400);
  expect(await decisionOf(refusedBatch.requestId)).toMatch(/^allow\|POST \/api\/v1\/observations\/batch\|\d+$/);
});

test("when audit_log cannot be written: no observation is stored and the caller gets a 503, for a write and for a refusal", async () => {
  const before = await sql("SELECT count(*) FROM observations");
  await sql("REVOKE INSERT ON audit_log FROM knhk_service");
  try {
    const write = await ingest("/observations", { event_type: "audit.down", value: 1, sector: "finance" });
    expect([write.status, write.body]).toEqual([503, { error: "unavailable", message: "audit log unavailable; request refused" }]);
    const batch = await ingest("/observations/batch", { items: [{ event_type: "audit.down", value: 1, sector: "finance" }] });
    expect(batch.status).toBe(503);
    const refused = await ingest("/observations", { event_type: "audit.down", value: 1, sector: "mars" });
    expect(refused.status).toBe(503);
    expect(await sql("SELECT count(*) FROM observations")).toBe(before);
    expect(await sql("SELECT count(*) FROM observations WHERE event_type = 'audit.down'")).toBe("0");
  } finally {
    await sql("GRANT INSERT ON audit_log TO knhk_service");
  }
  const after = await ingest("/observations", { event_type: "audit.back", value: 1, sector: "finance" });
  expect(after.status).toBe(201);
});

function read(path: string, method: "GET" | "HEAD" = "GET", requestId = randomUUID()) {
  return svc.api(`/api/v1${path}`, { method, token: observer, headers: { "x-request-id": requestId } }).then((r) => ({ ...r, requestId }));
}

test("a read's answer waits until its decision is committed: held while audit_log is locked, sent with the decision once it is not", async () => {
  const stored = await ingest("/observations", { event_type: "audit.read", value: 4, sector: "finance" });
  expect(stored.status).toBe(201);
  const owner = createPostgresDatabase({ connectionString: pg.url(svc.database), max: 1 });
  try {
    const requestId = randomUUID();
    let answered = false;
    const pending = await owner.transaction(async (tx) => {
      // SHARE blocks every INSERT into audit_log (reads go on): the decision cannot commit.
      await tx.query("LOCK TABLE audit_log IN SHARE MODE");
      const answer = read(`/observations/${stored.body.id}`, "GET", requestId).then((r) => ((answered = true), r));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(answered).toBe(false);
      return { answer };
    });
    const answer = await pending.answer;
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id: stored.body.id });
    expect(await decisionOf(requestId)).toMatch(new RegExp(`^allow\\|GET /api/v1/observations/:id\\|\\d+$`));
  } finally {
    await owner.close();
  }
});

test("when audit_log cannot be written, a read answers 503 and none of its data", async () => {
  const stored = await ingest("/observations", { event_type: "audit.read", value: 5, sector: "finance" });
  await sql("REVOKE INSERT ON audit_log FROM knhk_service");
  try {
    const refused = await read(`/observations/${stored.body.id}`);
    expect([refused.status, refused.body]).toEqual([503, { error: "unavailable", message: "audit log unavailable; request refused" }]);
    expect((await read(`/observations/${stored.body.id}`, "HEAD")).status).toBe(503);
    // A read the route refuses (404) is held back the same way: its decision was not recorded either.
    expect((await read(`/observations/${randomUUID()}`)).status).toBe(503);
  } finally {
    await sql("GRANT INSERT ON audit_log TO knhk_service");
  }
  expect((await read(`/observations/${stored.body.id}`)).status).toBe(200);
});
