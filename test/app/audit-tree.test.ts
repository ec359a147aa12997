/**
 * The audit log's Merkle tree on PostgreSQL 15 (migration 0013, app/src/audit/tree.ts), written
 * and checked as the service role knhk_app, as the service runs it: the tree takes an entry only
 * once its transaction is older than every transaction in progress, so an entry that commits
 * late is never skipped; every entry is a leaf exactly once with its stored hashes and proofs
 * matching the tree built in memory; checkpoints open with the registered key under the audit
 * origin; `audit verify-log` reports a changed entry (naming it), a deleted entry, a truncated
 * tail and a rewritten log against a checkpoint an auditor kept; the service role cannot change
 * the tree; and a writer killed with SIGKILL leaves a consistent earlier head.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAuditWriter } from "../../app/src/audit";
import { advanceAuditTree, AUDIT_TREE, auditLeafData, auditLogOrigin, readAuditLeaves } from "../../app/src/audit/tree";
import { verifyAuditLog } from "../../app/src/audit/verify-log";
import { run } from "../../app/src/cli/audit";
import { loadMigrations, migrate } from "../../app/src/db/migrate";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { registerEphemeralSigner } from "../../app/src/receipts";
import type { Signer } from "../../app/src/receipts/keys";
import { leafHash, verifyInclusion } from "../../app/src/receipts/merkle";
import { signCheckpoint } from "../../app/src/receipts/tlog/checkpoint";
import { checkpointIfDue, latestCheckpoint, noteSigner } from "../../app/src/receipts/tlog/checkpoints";
import { advanceTreeFully, readTreeHead, storedHashReader } from "../../app/src/receipts/tlog/store";
import { inclusionProof, storedHashCount, treeHash } from "../../app/src/receipts/tlog/tree";
import { openWithRegisteredKeys } from "../../app/src/receipts/tlog/verify-log";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { capturedStreams } from "../support/streams";
import { asOwnerBypassingTriggers, killTreeWriterAfter, storedHashesIn } from "./receipts-support";

jest.setTimeout(300_000);

const POLICY = { origin: auditLogOrigin("knhk.test/receipts"), everyReceipts: 50, intervalMs: 3_600_000, tables: AUDIT_TREE };
let pg: TestPostgres;
let dir: string;
let counter = 0;
const opened: Array<{ close(): Promise<unknown> }> = [];

beforeAll(async () => {
  pg = await startPostgres({ settings: { synchronous_commit: "on" } });
  await pg.psql("CREATE ROLE knhk_app LOGIN");
  dir = mkdtempSync(join(tmpdir(), "knhk-audit-tree-"));
}, 120_000);
afterAll(async () => {
  for (const o of opened.reverse()) await o.close().catch(() => undefined);
  await pg?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

interface Log {
  readonly owner: PostgresDatabase;
  readonly service: PostgresDatabase;
  readonly url: string;
  readonly signer: Signer;
  /** Writes audit entries through the service's group-commit writer (concurrent batches). */
  write(count: number, tag?: string): Promise<void>;
  /** Advances the tree and signs a checkpoint if one is due, as the service does. */
  follow(): Promise<void>;
  cli(...args: string[]): Promise<{ code: number; out: string; err: string }>;
}

async function freshLog(): Promise<Log> {
  const database = `knhk_audit_${++counter}`;
  await pg.createDatabase(database);
  const owner = createPostgresDatabase({ connectionString: pg.url(database), max: 2 });
  await migrate(owner, loadMigrations());
  await pg.psql("GRANT knhk_service TO knhk_app", database);
  const url = pg.url(database, "knhk_app");
  const service = createPostgresDatabase({ connectionString: url, max: 6 });
  const signer = await registerEphemeralSigner(owner);
  const writer = createAuditWriter({ db: service, maxBatch: 40 });
  opened.push(owner, service, writer);
  return {
    owner,
    service,
    url,
    signer,
    async write(count, tag = "original") {
      await Promise.all(Array.from({ length: count }, (_, i) => writer.record({ actor: `user-${i % 7}`, action: "authz.decision", target: "GET /api/v1/patterns", outcome: "allow", details: { tag, i, note: "ünïcode \"quoted\"" } })));
    },
    async follow() {
      await advanceTreeFully(service, undefined, 37, advanceAuditTree);
      await checkpointIfDue(service, signer, POLICY);
    },
    async cli(...args) {
      const { stdout, stderr, out, err } = capturedStreams();
      const code = await run(args, { db: service, env: {}, stdout, stderr });
      return { code, out: out(), err: err() };
    },
  };
}

async function grown(waves: number, perWave: number): Promise<Log> {
  const log = await freshLog();
  for (let w = 0; w < waves; w++) {
    await log.write(perWave, `wave-${w}`);
    await log.follow();
  }
  return log;
}

const count = async (db: PostgresDatabase, table: string) => Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0].n);

test("an entry that commits after later ids is taken once its transaction ends, never skipped, in the order the tree recorded", async () => {
  const log = await freshLog();
  await log.write(5);
  // A transaction that has begun writing (it holds an xid) but whose audit entry comes later.
  const late = await log.service.session(async (s) => {
    await s.exec("BEGIN");
    await s.query("SELECT pg_current_xact_id()");
    // Meanwhile entries with larger ids and a later transaction commit.
    await log.write(3, "meanwhile");
    await log.follow();
    const whileOpen = await readTreeHead(log.service, false, AUDIT_TREE);
    const { rows } = await s.query<{ id: string }>("INSERT INTO audit_log (actor, action, target) VALUES ('late', 'test.late', 'x') RETURNING id::text AS id");
    await s.exec("COMMIT");
    return { id: rows[0].id, sizeWhileOpen: whileOpen.size };
  });
  // While the early transaction was open, nothing after it was taken, though committed.
  expect(late.sizeWhileOpen).toBe(5);
  await log.follow();
  const leaves = await readAuditLeaves(log.service, 0, 100, 100);
  expect(leaves).toHaveLength(9);
  // The late entry's transaction began before the three committed meanwhile: it is leaf 5 though its id is the largest.
  expect(leaves[5].auditId).toBe(late.id);
  expect(Math.max(...leaves.map((l) => Number(l.auditId)))).toBe(Number(late.id));
  expect(new Set(leaves.map((l) => l.auditId)).size).toBe(9);
  expect((await verifyAuditLog(log.service)).findings).toEqual([]);
});

test("every entry written concurrently is one leaf; stored hashes, root and proofs match the entries; checkpoints open under the audit origin", async () => {
  const log = await grown(6, 120);
  const entries = await count(log.service, "audit_log");
  expect(entries).toBe(720);
  const head = await readTreeHead(log.service, false, AUDIT_TREE);
  expect(head.size).toBe(entries);
  expect(await count(log.service, "audit_tree_leaves")).toBe(entries);
  expect(await storedHashesIn(log.service, "audit_tree_hash_runs")).toBe(storedHashCount(entries));
  const leaves = await readAuditLeaves(log.service, 0, entries, entries);
  expect(new Set(leaves.map((l) => l.auditId)).size).toBe(entries);
  const hashes = leaves.map((l) => leafHash(auditLeafData(l.entry!)));
  const reader = storedHashReader(log.service, AUDIT_TREE);
  expect(await treeHash(entries, reader)).toEqual(head.root);

  const checkpoint = (await latestCheckpoint(log.service, AUDIT_TREE))!;
  expect(checkpoint.size).toBe(entries);
  expect(checkpoint.note.split("\n")[0]).toBe("knhk.test/receipts/audit");
  const openedNote = await openWithRegisteredKeys(log.service, checkpoint.note);
  expect(openedNote.root).toEqual(head.root);
  for (const index of [0, 1, 255, 256, 500, entries - 1]) {
    const proof = await inclusionProof(entries, index, reader);
    expect(verifyInclusion(hashes[index], index, entries, proof, openedNote.root)).toBe(true);
    expect(verifyInclusion(hashes[(index + 1) % entries], index, entries, proof, openedNote.root)).toBe(false);
  }
  expect(await log.cli("verify-log")).toMatchObject({ code: 0, out: expect.stringMatching(/audit entries in the tree: 720, tree: 720, signed checkpoints: 6 \(latest size 720\)[\s\S]*audit log intact/) });
});

test("a changed entry is reported by id, a deleted one as missing, a truncated tail against the signed checkpoint", async () => {
  const log = await grown(3, 60);
  const leaves = await readAuditLeaves(log.service, 0, 1000, 1000);
  const changed = leaves[70].auditId;
  expect(await asOwnerBypassingTriggers(log.owner, `UPDATE audit_log SET outcome = 'deny_forbidden' WHERE id = ${changed}`)).toBe(1);
  const report = await log.cli("verify-log", "--format", "json");
  expect(report.code).toBe(1);
  const findings = JSON.parse(report.out).findings;
  expect(findings).toEqual(
    expect.arrayContaining([
      { kind: "changed_entry", size: 71, detail: `audit entry ${changed} (leaf 70) does not give the leaf hash stored when the tree took it` },
      expect.objectContaining({ kind: "rewritten", size: 120 }),
      expect.objectContaining({ kind: "rewritten", size: 180 }),
    ]),
  );
  // Nothing before the changed entry is blamed: the checkpoint of size 60 still holds.
  expect(findings.filter((f: { size: number }) => f.size <= 60)).toEqual([]);

  const other = await grown(3, 60);
  const otherLeaves = await readAuditLeaves(other.service, 0, 1000, 1000);
  expect(await asOwnerBypassingTriggers(other.owner, `DELETE FROM audit_log WHERE id = ${otherLeaves[100].auditId}`)).toBe(1);
  expect(JSON.parse((await other.cli("verify-log", "--format", "json")).out).findings).toEqual([{ kind: "missing_entry", size: 101, detail: `audit entry ${otherLeaves[100].auditId} (leaf 100) is gone` }]);

  const third = await grown(3, 60);
  const thirdLeaves = await readAuditLeaves(third.service, 0, 1000, 1000);
  const tail = thirdLeaves.slice(150).map((l) => l.auditId).join(",");
  // The owner removes the tail with its leaves, rewinding nothing else.
  await asOwnerBypassingTriggers(third.owner, `DELETE FROM audit_log WHERE id IN (${tail})`);
  await asOwnerBypassingTriggers(third.owner, "DELETE FROM audit_tree_leaves WHERE leaf_index >= 150");
  const truncated = await third.cli("verify-log");
  expect(truncated.code).toBe(1);
  expect(truncated.out).toMatch(/truncated at size 180: the signed checkpoint covers 180 audit entries; the log has 150/);
  expect(truncated.out).toMatch(/AUDIT LOG NOT INTACT/);
});

test("a log rewritten and re-signed by the owner is reported as a fork against a checkpoint an auditor kept", async () => {
  const log = await grown(2, 80);
  const kept = join(dir, "kept-audit-checkpoint");
  writeFileSync(kept, (await latestCheckpoint(log.service, AUDIT_TREE))!.note);
  expect(await log.cli("verify-log", "--checkpoint", kept)).toMatchObject({ code: 0 });
  // The owner rewrites one early entry and rebuilds the whole tree and its checkpoints from scratch.
  const first = (await readAuditLeaves(log.service, 0, 1, 1))[0].auditId;
  await asOwnerBypassingTriggers(log.owner, `UPDATE audit_log SET actor = 'someone-else' WHERE id = ${first}`);
  for (const table of ["audit_tree_checkpoints", "audit_tree_hash_runs", "audit_tree_leaves"]) await asOwnerBypassingTriggers(log.owner, `DELETE FROM ${table}`);
  await asOwnerBypassingTriggers(log.owner, "UPDATE audit_tree_head SET size = 0, root = sha256(''::bytea), last_xact = '0', last_id = 0");
  await log.follow();
  // Consistent with itself...
  expect((await log.cli("verify-log")).code).toBe(0);
  // ...but not with what the auditor holds.
  const forked = await log.cli("verify-log", "--checkpoint", kept, "--format", "json");
  expect(forked.code).toBe(1);
  expect(JSON.parse(forked.out).findings).toEqual([expect.objectContaining({ kind: "fork", size: 160 })]);
  // A checkpoint of the receipt log, signed with the same key and claiming this tree's size and root, is not this log's.
  const otherLog = join(dir, "receipt-log-checkpoint");
  const head = await readTreeHead(log.service, false, AUDIT_TREE);
  writeFileSync(otherLog, await signCheckpoint({ origin: "knhk.test/receipts", size: head.size, root: head.root }, noteSigner(log.signer, "knhk.test/receipts")));
  const crossed = await log.cli("verify-log", "--checkpoint", otherLog, "--format", "json");
  expect(crossed.code).toBe(1);
  expect(JSON.parse(crossed.out).findings).toEqual([{ kind: "bad_signature", size: 0, detail: "the remembered checkpoint: it is a checkpoint of knhk.test/receipts; this log's checkpoints are of knhk.test/receipts/audit" }]);
  expect((await log.cli("verify-log", "--checkpoint", join(dir, "absent"))).code).toBe(2);
  expect((await log.cli("verify-log", "--format", "yaml")).err).toMatch(/--format: must be text or json/);
});

test("the service role cannot change, delete or shrink the audit tree", async () => {
  const log = await grown(1, 30);
  for (const statement of [
    "UPDATE audit_tree_hash_runs SET hashes = sha256('x'::bytea) WHERE first_idx = 0",
    "DELETE FROM audit_tree_hash_runs",
    "DELETE FROM audit_tree_leaves",
    "UPDATE audit_tree_leaves SET audit_id = 1 WHERE leaf_index = 2",
    "UPDATE audit_tree_head SET size = 1",
    "DELETE FROM audit_tree_checkpoints",
    "UPDATE audit_log SET actor = 'x'",
  ]) {
    await expect(log.service.query(statement)).rejects.toThrow(/permission denied|immutable|only grows/);
  }
  await expect(log.service.query("UPDATE audit_tree_head SET size = 1")).rejects.toThrow(/audit_tree_head: the tree only grows \(size 30 to 1\)/);
  expect((await verifyAuditLog(log.service)).ok).toBe(true);
});

test("a writer killed with SIGKILL at any point leaves a consistent earlier head, and the next run completes", async () => {
  const log = await freshLog();
  await log.write(4000);
  let previous = 0;
  for (const killAfterSteps of [3, 20, 45]) {
    await killTreeWriterAfter(log.url, "audit", 31, killAfterSteps);
    const head = await readTreeHead(log.service, false, AUDIT_TREE);
    expect(head.size).toBeGreaterThan(previous);
    expect(head.size).toBeLessThan(4000);
    expect(await count(log.service, "audit_tree_leaves")).toBe(head.size);
    expect(await storedHashesIn(log.service, "audit_tree_hash_runs")).toBe(storedHashCount(head.size));
    expect((await verifyAuditLog(log.service)).findings).toEqual([]);
    previous = head.size;
  }
  await log.follow();
  expect((await readTreeHead(log.service, false, AUDIT_TREE)).size).toBe(4000);
  const report = await verifyAuditLog(log.service);
  expect(report).toMatchObject({ ok: true, leaves: 4000, treeSize: 4000 });
});
