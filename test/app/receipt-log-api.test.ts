/**
 * The receipt log served by the real service (as knhk_app on PostgreSQL 15), checked by the
 * independent verifier (tools/tlog-verify: the Go checksum database's sumdb/tlog and sumdb/note):
 * the service signs checkpoints as the log grows (every N receipts, C2SP signed notes with the
 * receipt key), GET /receipts/checkpoint serves the latest, and every checkpoint stored opens with
 * the verifier key derived from the registered public key; inclusion proofs from
 * GET /receipts/:id/proof and consistency proofs between every pair of consecutive checkpoints
 * from GET /receipts/consistency verify; the tiles fetched from GET /receipts/tile/... by their
 * C2SP paths rebuild the latest root and prove sampled receipts. Bad input is a 400 naming the
 * field; what is not in the log is a 404. The audit log's tree, kept by the same service, is
 * checked by the same verifier under its own origin.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { AUDIT_TREE, auditLeafData, readAuditLeaves } from "../../app/src/audit/tree";
import { createPostgresDatabase } from "../../app/src/db/postgres";
import { verifierKey } from "../../app/src/receipts/tlog/checkpoint";
import { checkpointsAfter, latestCheckpoint } from "../../app/src/receipts/tlog/checkpoints";
import { storedHashReader } from "../../app/src/receipts/tlog/store";
import { consistencyProof, inclusionProof } from "../../app/src/receipts/tlog/tree";
import { newTiles, tilePath } from "../../app/src/receipts/tlog/tiles";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { waitFor } from "../support/ports";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";

jest.setTimeout(300_000);

const run = promisify(execFile);
const REPO = join(__dirname, "..", "..");
const ORIGIN = "knhk.test/receipt-log-api";
const EVERY = 40;

let pg: TestPostgres;
let oidc: TestOidc;
let svc: ServiceUnderTest;
let observer: string;
let verifierBin: string;
let root: string;

beforeAll(async () => {
  const built = run("bash", [join(REPO, "scripts", "tlog-verify-build.sh")], { timeout: 600_000 });
  [pg, oidc] = await Promise.all([startPostgres({ settings: { synchronous_commit: "on" } }), startOidc()]);
  svc = await startTestService(pg, { ...oidc.env(), KNHK_RATE_LIMIT_MAX: "100000", KNHK_TLOG_ORIGIN: ORIGIN, KNHK_TLOG_CHECKPOINT_EVERY_RECEIPTS: String(EVERY), KNHK_TLOG_CHECKPOINT_INTERVAL_SECONDS: "1" });
  observer = await oidc.roleToken("observer");
  const ingestor = await oidc.roleToken("ingestor");
  // Receipts in waves, so the log is checkpointed at several sizes on the way.
  for (let wave = 0; wave < 6; wave++) {
    await Promise.all(Array.from({ length: 50 }, (_, i) => svc.api("/api/v1/observations", { method: "POST", token: ingestor, json: { event_type: "tlog.api", value: wave * 50 + i, sector: "finance" } })));
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  await waitFor("a checkpoint covering every receipt", async () => {
    const [receipts, checkpoint] = (await pg.psql("SELECT (SELECT count(*) FROM receipts) || ',' || (SELECT coalesce(max(size), 0) FROM receipt_tree_checkpoints)", svc.database)).trim().split(",").map(Number);
    return checkpoint === receipts;
  }, 30_000, 200);
  verifierBin = join((await built).stdout.trim(), "tlog-verify");
  root = mkdtempSync(join(tmpdir(), "knhk-tlog-api-"));
}, 300_000);
afterAll(async () => {
  await svc?.stop();
  await oidc?.close();
  await pg?.destroy();
  if (root) rmSync(root, { recursive: true, force: true });
});

const get = (path: string) => svc.api(`/api/v1/receipts${path}`, { token: observer });

async function verify(request: unknown): Promise<{ checkpoints: any[]; inclusion: any[]; consistency: any[]; tiles: any[] }> {
  const file = join(root, `request-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(request));
  return JSON.parse((await run(verifierBin, [file], { timeout: 120_000, maxBuffer: 64 * 2 ** 20 })).stdout);
}

async function storedCheckpoints(): Promise<Array<{ size: number; note: string; keyVersion: number }>> {
  const out = await pg.psql("SELECT json_agg(json_build_object('size', size, 'note', note, 'keyVersion', key_version) ORDER BY size) FROM receipt_tree_checkpoints", svc.database);
  return JSON.parse(out);
}

async function vkeyOf(keyVersion: number): Promise<string> {
  const publicKey = (await pg.psql(`SELECT public_key FROM receipt_signing_keys WHERE key_version = ${keyVersion}`, svc.database)).trim();
  return verifierKey(ORIGIN, Buffer.from(publicKey, "base64"));
}

test("every stored checkpoint opens with the registered key; consecutive checkpoints are consistent; served proofs verify", async () => {
  const checkpoints = await storedCheckpoints();
  expect(checkpoints.length).toBeGreaterThanOrEqual(4);
  for (let i = 1; i < checkpoints.length; i++) expect(checkpoints[i].size).toBeGreaterThan(checkpoints[i - 1].size);
  const latest = await get("/checkpoint");
  expect(latest.status).toBe(200);
  expect(latest.headers.get("content-type")).toMatch(/^text\/plain/);
  expect(latest.body).toBe(checkpoints[checkpoints.length - 1].note);

  const consistency = [];
  for (let i = 1; i < checkpoints.length; i++) {
    const answer = await get(`/consistency?from=${checkpoints[i - 1].size}&to=${checkpoints[i].size}`);
    expect(answer.status).toBe(200);
    consistency.push({ older: i - 1, newer: i, proof: answer.body.proof });
  }
  const listed = await svc.api("/api/v1/receipts?limit=1000", { token: observer });
  const receipts = listed.body.items as Array<{ id: string; seq: number }>;
  const inclusion = [];
  for (const r of [receipts[0], receipts[Math.floor(receipts.length / 2)], receipts[receipts.length - 1]]) {
    for (const [c, checkpoint] of checkpoints.entries()) {
      if (r.seq > checkpoint.size) continue;
      const answer = await get(`/${r.id}/proof?size=${checkpoint.size}`);
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ receipt_id: r.id, seq: r.seq, leaf_index: r.seq - 1, tree_size: checkpoint.size, checkpoint: checkpoint.note });
      inclusion.push({ checkpoint: c, index: r.seq - 1, data: answer.body.leaf_data, proof: answer.body.proof });
    }
  }
  // Without size: against the latest checkpoint.
  const latestProof = await get(`/${receipts[0].id}/proof`);
  expect(latestProof.body.tree_size).toBe(checkpoints[checkpoints.length - 1].size);

  const result = await verify({ vkey: await vkeyOf(checkpoints[0].keyVersion), checkpoints: checkpoints.map((c) => c.note), inclusion, consistency });
  expect(result.checkpoints.map((c) => c.size)).toEqual(checkpoints.map((c) => c.size));
  expect(result.checkpoints.filter((c) => !c.ok)).toEqual([]);
  expect(result.inclusion).toHaveLength(inclusion.length);
  expect(result.inclusion.filter((c) => !c.ok)).toEqual([]);
  expect(result.consistency.filter((c) => !c.ok)).toEqual([]);
});

test("the tiles served by their C2SP paths rebuild the latest root and prove receipts, from the files alone", async () => {
  const checkpoints = await storedCheckpoints();
  const latest = checkpoints[checkpoints.length - 1];
  const dir = join(root, "tiles");
  for (const tile of newTiles(0, latest.size)) {
    const response = await fetch(`${svc.service.apiUrl}/api/v1/receipts/${tilePath(tile)}`, { headers: { authorization: `Bearer ${observer}` } });
    expect({ path: tilePath(tile), status: response.status }).toEqual({ path: tilePath(tile), status: 200 });
    expect(response.headers.get("cache-control")).toMatch(/immutable/);
    const file = join(dir, tilePath(tile));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, Buffer.from(await response.arrayBuffer()));
  }
  const rows = (await pg.psql(`SELECT json_agg(json_build_object('seq', seq, 'hash', hash) ORDER BY seq) FROM receipts WHERE seq IN (1, ${Math.ceil(latest.size / 2)}, ${latest.size})`, svc.database)).trim();
  const sampled = JSON.parse(rows) as Array<{ seq: number; hash: string }>;
  const result = await verify({
    vkey: await vkeyOf(latest.keyVersion),
    checkpoints: [latest.note],
    tiles: [{ dir, checkpoint: 0, indexes: sampled.map((r) => r.seq - 1), data: sampled.map((r) => Buffer.from(r.hash, "hex").toString("base64")) }],
  });
  expect(result.tiles).toHaveLength(1 + sampled.length);
  expect(result.tiles.filter((t) => !t.ok)).toEqual([]);
});

test("the service keeps the audit log in its own tree: its checkpoints open under the audit origin, consecutive ones are consistent and sampled entries' proofs verify", async () => {
  // Read as the service's own least-privileged login, not as the owner.
  const db = createPostgresDatabase({ connectionString: pg.url(svc.database, "knhk_app"), max: 2 });
  try {
    // Every request above made an authorization decision; the service's audit tree takes them within a second.
    await waitFor("an audit checkpoint covering the ingest's decisions", async () => ((await latestCheckpoint(db, AUDIT_TREE))?.size ?? 0) >= 300, 30_000, 200);
    const checkpoints = await checkpointsAfter(db, 0, 1000, AUDIT_TREE);
    const latest = checkpoints[checkpoints.length - 1];
    expect(latest.note.split("\n")[0]).toBe(`${ORIGIN}/audit`);
    const reader = storedHashReader(db, AUDIT_TREE);
    const leaves = await readAuditLeaves(db, 0, latest.size, latest.size);
    expect(leaves.filter((l) => l.entry === null)).toEqual([]);
    const inclusion = [];
    for (const index of [0, Math.floor(latest.size / 2), latest.size - 1]) {
      inclusion.push({ checkpoint: checkpoints.length - 1, index, data: auditLeafData(leaves[index].entry!).toString("base64"), proof: (await inclusionProof(latest.size, index, reader)).map((h) => h.toString("base64")) });
    }
    const consistency = [];
    for (let i = 1; i < checkpoints.length; i++) consistency.push({ older: i - 1, newer: i, proof: (await consistencyProof(checkpoints[i].size, checkpoints[i - 1].size, reader)).map((h) => h.toString("base64")) });
    const publicKey = (await pg.psql(`SELECT public_key FROM receipt_signing_keys WHERE key_version = ${latest.keyVersion}`, svc.database)).trim();
    const result = await verify({ vkey: verifierKey(`${ORIGIN}/audit`, Buffer.from(publicKey, "base64")), checkpoints: checkpoints.map((c) => c.note), inclusion, consistency });
    expect(result.checkpoints.filter((c) => !c.ok)).toEqual([]);
    expect(result.inclusion.filter((c) => !c.ok)).toEqual([]);
    expect(result.consistency).toHaveLength(checkpoints.length - 1);
    expect(result.consistency.filter((c) => !c.ok)).toEqual([]);
    // The receipt log's key name does not open an audit checkpoint.
    const crossed = await verify({ vkey: await vkeyOf(latest.keyVersion), checkpoints: [latest.note] });
    expect(crossed.checkpoints[0].ok).toBe(false);
  } finally {
    await db.close();
  }
});

test("bad input is a 400 naming the field, and what is not in the log a 404", async () => {
  const checkpoints = await storedCheckpoints();
  const latest = checkpoints[checkpoints.length - 1].size;
  const receipt = (await svc.api("/api/v1/receipts?limit=1", { token: observer })).body.items[0];
  expect((await get(`/${receipt.id}/proof?size=${latest + 1}`)).body).toMatchObject({ error: "bad_request", field: "size" });
  expect((await get(`/${receipt.id}/proof?size=0`)).body).toMatchObject({ error: "bad_request", field: "querystring.size" });
  expect((await get(`/consistency?from=${latest}&to=${checkpoints[0].size}`)).body).toMatchObject({ error: "bad_request", field: "from" });
  expect((await get(`/consistency?from=1`)).status).toBe(400);
  expect((await get("/tile/0/1")).body).toMatchObject({ error: "bad_request", field: "path" });
  // Every 404 in the error handler's one envelope, naming what is missing.
  expect(await get("/tile/0/x999/999")).toMatchObject({ status: 404, body: { error: "not_found", entity: "tile", id: "tile/0/x999/999", message: "tile/0/x999/999 is not in the tree yet" } });
  const unknown = "00000000-0000-4000-8000-000000000000";
  for (const path of [`/${unknown}/proof`, `/${unknown}`]) {
    expect(await get(path)).toMatchObject({ status: 404, body: { error: "not_found", entity: "receipt", id: unknown, message: `receipt ${unknown} not found` } });
  }
});
