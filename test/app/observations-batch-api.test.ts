/**
 * POST /api/v1/observations/batch and GET /api/v1/observations/:id/proof over HTTP, against the
 * service running as knhk_app on a real PostgreSQL 15 with a local OIDC issuer: status codes,
 * per-item refusals naming items.<i>.<field>, the envelope's bounds, the body limit, and a proof
 * a client can check on its own against the signed receipt.
 */
import { createPublicKey, verify as verifySignature } from "node:crypto";
import { proofHolds } from "../../app/src/domain";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { waitFor } from "../support/ports";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";

const BATCH_BODY_LIMIT = 64 * 1024;

let pg: TestPostgres;
let oidc: TestOidc;
let svc: ServiceUnderTest;
let ingestor: string;
let observer: string;

beforeAll(async () => {
  [pg, oidc] = await Promise.all([startPostgres(), startOidc()]);
  svc = await startTestService(pg, { ...oidc.env(), KNHK_RATE_LIMIT_MAX: "100000", KNHK_BATCH_BODY_LIMIT_BYTES: String(BATCH_BODY_LIMIT) });
  [ingestor, observer] = await Promise.all([oidc.roleToken("ingestor"), oidc.roleToken("observer")]);
}, 180_000);
afterAll(async () => {
  await svc?.stop();
  await oidc?.close();
  await pg?.destroy();
});

const post = (items: unknown) => svc.api("/api/v1/observations/batch", { method: "POST", token: ingestor, json: { items } });
const good = (i: number) => ({ event_type: "batch.api", value: i, sector: "logistics", metadata: { site: `s${i}` } });

test("a batch with a bad item among good ones is a 201 with per-item results naming each refused field", async () => {
  const response = await post([good(1), { ...good(2), sector: "mars" }, { ...good(3), metadata: { note: "nul\u0000here" } }, good(4), { ...good(5), observed_at: "yesterday" }]);
  expect(response.status).toBe(201);
  expect(response.body).toMatchObject({ stored: 2, invalid: 3, rejected: 0 });
  expect(response.body.items.map((i: any) => [i.status, i.field ?? null])).toEqual([
    ["stored", null],
    ["invalid", "items.1.sector"],
    ["invalid", "items.2.metadata.note"],
    ["stored", null],
    ["invalid", "items.4.observed_at"],
  ]);
  expect(response.body.items[2].reason).toMatch(/NUL|\\u0000|null character/i);
});

test("nothing stored is a 400 naming the first refused item, with every item's result", async () => {
  const response = await post([{ ...good(1), sector: "mars" }, { value: 1 }]);
  expect(response.status).toBe(400);
  expect(response.body).toMatchObject({ error: "bad_request", field: "items.0.sector", stored: 0, invalid: 2, batch_id: null });
  expect(response.body.message).toContain("items.0.sector");
  expect(response.body.items[1]).toMatchObject({ status: "invalid", field: "items.1.event_type" });
});

test("the envelope: more than 1,000 items, none, or no items field is a 400 naming body.items; a body over the limit is a 413", async () => {
  const tooMany = await post(Array.from({ length: 1001 }, (_, i) => ({ event_type: "x", value: i, sector: "generic" })));
  expect(tooMany.status).toBe(400);
  expect(tooMany.body.field).toBe("body.items");
  expect((await post([])).body.field).toBe("body.items");
  const missing = await svc.api("/api/v1/observations/batch", { method: "POST", token: ingestor, json: { observations: [good(1)] } });
  // ajv reports the first failing rule: the missing required field.
  expect([missing.status, missing.body.field]).toEqual([400, "body.items"]);
  const large = await post(Array.from({ length: 200 }, (_, i) => ({ ...good(i), metadata: { pad: "x".repeat(400) } })));
  expect(large.status).toBe(413);
  expect(large.body.field).toBe("body");
  // The single POST keeps its own (default) limit.
  const single = await svc.api("/api/v1/observations", { method: "POST", token: ingestor, json: good(1) });
  expect(single.status).toBe(201);
});

test("an observer may not ingest a batch (403), and the decision is audited", async () => {
  const response = await svc.api("/api/v1/observations/batch", { method: "POST", token: observer, json: { items: [good(1)] } });
  expect(response.status).toBe(403);
  const rows = await pg.psql("SELECT count(*) FROM audit_log WHERE outcome = 'deny_forbidden' AND target = 'POST /api/v1/observations/batch'", svc.database);
  expect(Number(rows)).toBeGreaterThan(0);
});

test("a client checks a batch member's proof on its own: the leaf from the fields, the path to the root, the root in the receipt, the receipt's signature", async () => {
  const created = await post([good(10), good(11), good(12)]);
  expect(created.status).toBe(201);
  const member = created.body.items[2];
  const proof = await svc.api(`/api/v1/observations/${member.id}/proof`, { token: observer });
  expect(proof.status).toBe(200);
  expect(proof.body.batch).toMatchObject({ id: created.body.batch_id, index: 2, size: 3, merkle_root: created.body.merkle_root });
  expect(proofHolds(proof.body)).toBe(true);

  const receipts = await svc.api(`/api/v1/receipts?limit=1000`, { token: observer });
  const receipt = receipts.body.items.find((r: any) => r.seq === proof.body.receipt_seq);
  expect(receipt).toMatchObject({ operation: "observation.batch", evidence: { merkle_root: created.body.merkle_root, batch_id: created.body.batch_id } });
  const raw = Buffer.from((await pg.psql(`SELECT public_key FROM receipt_signing_keys WHERE key_version = ${receipt.key_version}`, svc.database)).trim(), "base64");
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
  expect(verifySignature(null, Buffer.from(receipt.hash, "hex"), key, Buffer.from(receipt.signature, "base64"))).toBe(true);

  const unknown = await svc.api("/api/v1/observations/00000000-0000-4000-8000-000000000000/proof", { token: observer });
  expect(unknown.status).toBe(404);
});

test("the service keeps the receipt log's Merkle tree up with the chain, as knhk_app, and reports its size", async () => {
  const head = async () => (await pg.psql("SELECT (SELECT count(*) FROM receipts) || ',' || (SELECT size FROM receipt_tree_head)", svc.database)).trim().split(",").map(Number);
  expect((await post([good(20), good(21)])).status).toBe(201);
  await waitFor("the tree to cover every receipt", async () => {
    const [receipts, tree] = await head();
    return receipts > 0 && tree === receipts;
  }, 30_000, 100);
  const [receipts] = await head();
  const metrics = await (await fetch(`${svc.service.metricsUrl}/metrics`)).text();
  expect(Number(/^knhk_receipt_tree_size (\d+)$/m.exec(metrics)?.[1])).toBe(receipts);
  expect(svc.logs.join("\n")).not.toMatch(/receipt tree advance failed/);
});
