/**
 * The receipt tree in PostgreSQL 15 (migration 0012, app/src/receipts/tlog/store.ts), written as
 * the service role knhk_app: it advances over the receipts in seq order in bounded transactions,
 * its root equals a replay of the receipts and its stored hashes give the same root and proofs as
 * the tree built in memory; concurrent writers queue on the head; it refuses to skip a missing
 * receipt; the service role cannot change, delete or shrink it; and a writer killed with SIGKILL
 * at any point leaves it at a consistent previous head, from which it completes.
 */
import { migrate, loadMigrations } from "../../app/src/db/migrate";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { createLedger, registerEphemeralSigner, type Ledger } from "../../app/src/receipts";
import type { Signer } from "../../app/src/receipts/keys";
import { leafHash } from "../../app/src/receipts/merkle";
import { checkpointIfDue } from "../../app/src/receipts/tlog/checkpoints";
import { advanceTree, advanceTreeFully, readTreeHead, receiptLeafData, RUN_HASHES, storedHashReader } from "../../app/src/receipts/tlog/store";
import { verifyLog } from "../../app/src/receipts/tlog/verify-log";
import { consistencyProof, inclusionProof, storedHashCount, storedHashesForLeaf, treeHash, type HashReader } from "../../app/src/receipts/tlog/tree";
import { waitFor } from "../support/ports";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { asOwnerBypassingTriggers, killTreeWriterAfter, storedHashesIn } from "./receipts-support";

jest.setTimeout(300_000);

let pg: TestPostgres;
let owner: PostgresDatabase;
let service: PostgresDatabase;
let ledger: Ledger;
let signer: Signer;
let serviceUrl: string;

beforeAll(async () => {
  pg = await startPostgres({ settings: { synchronous_commit: "on" } });
  await pg.createDatabase("knhk");
  owner = createPostgresDatabase({ connectionString: pg.url("knhk"), max: 4 });
  await migrate(owner, loadMigrations());
  await pg.psql("CREATE ROLE knhk_app LOGIN; GRANT knhk_service TO knhk_app;", "knhk");
  serviceUrl = pg.url("knhk", "knhk_app");
  service = createPostgresDatabase({ connectionString: serviceUrl, max: 8 });
  signer = await registerEphemeralSigner(owner);
  ledger = createLedger({ db: service, signer });
}, 120_000);
afterAll(async () => {
  await ledger?.close();
  await service?.close();
  await owner?.close();
  await pg?.destroy();
});

async function appendReceipts(count: number): Promise<void> {
  for (let done = 0; done < count; done += 200) {
    await Promise.all(Array.from({ length: Math.min(200, count - done) }, (_, i) => ledger.append({ operation: "tree.test", outcome: "success", evidence: { i: done + i }, sector: "generic" })));
  }
}

async function receiptCount(): Promise<number> {
  return Number((await service.query<{ n: string }>("SELECT count(*)::text AS n FROM receipts")).rows[0].n);
}

/** The tree built in memory from the receipts' leaf hashes, as the reference. */
async function memoryTree(size: number): Promise<HashReader> {
  const { rows } = await service.query<{ hash: string }>("SELECT hash FROM receipts WHERE seq <= $1 ORDER BY seq", [size]);
  const hashes: Buffer[] = [];
  const read: HashReader = async (indexes) => indexes.map((i) => hashes[i]);
  for (const [n, r] of rows.entries()) hashes.push(...(await storedHashesForLeaf(n, leafHash(receiptLeafData(r.hash)), read)));
  return read;
}

async function expectConsistent(): Promise<number> {
  const head = await readTreeHead(service);
  expect(await storedHashesIn(service, "receipt_tree_hash_runs")).toBe(storedHashCount(head.size));
  // The head's root equals the tree replayed from the receipts (verify-log's check).
  expect((await verifyLog(service)).findings).toEqual([]);
  if (head.size > 0) expect(await treeHash(head.size, storedHashReader(service))).toEqual(head.root);
  return head.size;
}

test("the tree advances over every receipt in bounded steps; its root, stored hashes and proofs match the receipts", async () => {
  await appendReceipts(1000);
  const steps: number[] = [];
  const head = await advanceTreeFully(service, (r) => steps.push(r.to - r.from), 97);
  expect(head.size).toBe(await receiptCount());
  expect(Math.max(...steps)).toBe(97);
  expect(await expectConsistent()).toBe(head.size);
  const reference = await memoryTree(head.size);
  const db = storedHashReader(service);
  for (const size of [1, 2, 97, 256, 257, 999, head.size]) {
    expect(await treeHash(size, db)).toEqual(await treeHash(size, reference));
    for (const index of [0, size - 1, Math.floor(size / 2)]) expect(await inclusionProof(size, index, db)).toEqual(await inclusionProof(size, index, reference));
    expect(await consistencyProof(head.size, size, db)).toEqual(await consistencyProof(head.size, size, reference));
  }
});

test("concurrent writers queue on the head: each receipt enters the tree once", async () => {
  await appendReceipts(600);
  const results = await Promise.all([advanceTree(service, 150), advanceTree(service, 150), advanceTree(service, 150), advanceTree(service, 150)]);
  const covered = results.map((r) => [r.from, r.to]).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < covered.length; i++) expect(covered[i][0]).toBe(covered[i - 1][1]);
  expect(await expectConsistent()).toBe(await receiptCount());
});

test("the service role cannot change, delete or shrink the tree", async () => {
  await expect(service.query("UPDATE receipt_tree_hash_runs SET hashes = hashes WHERE first_idx = 0")).rejects.toThrow(/receipt_tree_hash_runs: a run only grows; its stored hashes never change \(run at 0\)/);
  await expect(service.query("UPDATE receipt_tree_hash_runs SET hashes = sha256('x'::bytea) || substring(hashes FROM 33) || sha256('y'::bytea) WHERE first_idx = 0")).rejects.toThrow(/a run only grows/);
  // Not even the owner can change or delete stored hashes (the triggers).
  await expect(owner.query("UPDATE receipt_tree_hash_runs SET hashes = hashes WHERE first_idx = 0")).rejects.toThrow(/a run only grows/);
  await expect(owner.query("UPDATE receipt_tree_hash_runs SET first_idx = first_idx + 240 WHERE first_idx = 0")).rejects.toThrow(/a run only grows/);
  await expect(owner.query("DELETE FROM receipt_tree_hash_runs WHERE first_idx = 0")).rejects.toThrow(/append-only/);
  await expect(owner.query("UPDATE receipt_tree_head SET size = 0")).rejects.toThrow(/only grows/);
  await expect(service.query("DELETE FROM receipt_tree_hash_runs WHERE first_idx = 0")).rejects.toThrow(/permission denied|append-only/);
  await expect(service.query("TRUNCATE receipt_tree_hash_runs")).rejects.toThrow(/permission denied|append-only/);
  await expect(service.query("UPDATE receipt_tree_head SET size = size - 1")).rejects.toThrow(/only grows/);
  await expect(service.query("DELETE FROM receipt_tree_head")).rejects.toThrow(/permission denied|append-only/);
  expect(await expectConsistent()).toBeGreaterThan(0);
});

test("stored hashes are runs of 240 from a multiple of 240, only the last partial: a gap, a ragged run or an overlong one is refused", async () => {
  const stored = await storedHashesIn(service, "receipt_tree_hash_runs");
  expect(stored).toBeGreaterThan(RUN_HASHES);
  const { rows } = await service.query<{ first: string; n: number }>("SELECT first_idx::text AS first, length(hashes) / 32 AS n FROM receipt_tree_hash_runs ORDER BY first_idx");
  expect(rows.map((r) => Number(r.first))).toEqual(rows.map((_, k) => k * RUN_HASHES));
  expect(rows.slice(0, -1).every((r) => r.n === RUN_HASHES)).toBe(true);
  const last = Number(rows[rows.length - 1].first);
  const hash = Buffer.alloc(32, 7);
  const insert = (first: number, hashes: Buffer) => service.query("INSERT INTO receipt_tree_hash_runs (first_idx, hashes) VALUES ($1, $2)", [first, hashes]);
  // The earlier tests leave the last run partial (this test needs one to exist).
  expect(stored % RUN_HASHES).not.toBe(0);
  await expect(insert(last + RUN_HASHES, hash)).rejects.toThrow(`receipt_tree_hash_runs: a run starts only after a full run of 240 hashes; the run at ${last} holds ${stored - last} hashes`);
  await expect(insert(last + 2 * RUN_HASHES, hash)).rejects.toThrow(`the run at ${last + RUN_HASHES} is missing`);
  await expect(insert(last + 1, hash)).rejects.toThrow(/check constraint|starts only after a full run/);
  await expect(service.query("UPDATE receipt_tree_hash_runs SET hashes = hashes || $2 WHERE first_idx = $1", [last, Buffer.alloc(32 * RUN_HASHES, 1)])).rejects.toThrow(/check constraint/);
  await expect(service.query("UPDATE receipt_tree_hash_runs SET hashes = hashes || $2 WHERE first_idx = $1", [last, Buffer.alloc(31, 1)])).rejects.toThrow(/check constraint/);
  expect(await storedHashesIn(service, "receipt_tree_hash_runs")).toBe(stored);
  expect(await expectConsistent()).toBeGreaterThan(0);
});

test("migration 0014 moves a tree stored a hash per row into runs: same hashes, same root, and the tree goes on from there", async () => {
  await pg.createDatabase("knhk_upgrade");
  const upgradeOwner = createPostgresDatabase({ connectionString: pg.url("knhk_upgrade"), max: 2 });
  const upgradeService = createPostgresDatabase({ connectionString: pg.url("knhk_upgrade", "knhk_app"), max: 2 });
  try {
    await migrate(upgradeOwner, loadMigrations().filter((m) => m.version < 14));
    await upgradeOwner.query("GRANT knhk_service TO knhk_app");
    const upgradeLedger = createLedger({ db: upgradeService, signer: await registerEphemeralSigner(upgradeOwner) });
    await Promise.all(Array.from({ length: 700 }, (_, i) => upgradeLedger.append({ operation: "tree.upgrade", outcome: "success", evidence: { i }, sector: "generic" })));
    await upgradeLedger.close();
    // The tree of the first 500 receipts as the old layout stored it: a row per stored hash.
    const { rows } = await upgradeOwner.query<{ hash: string }>("SELECT hash FROM receipts WHERE seq <= 500 ORDER BY seq");
    const hashes: Buffer[] = [];
    const read: HashReader = async (indexes) => indexes.map((i) => hashes[i]);
    for (const [n, r] of rows.entries()) hashes.push(...(await storedHashesForLeaf(n, leafHash(receiptLeafData(r.hash)), read)));
    expect(hashes.length).toBe(storedHashCount(500));
    await upgradeOwner.query("INSERT INTO receipt_tree_hashes (idx, hash) SELECT i - 1, h FROM unnest($1::bytea[]) WITH ORDINALITY AS t(h, i)", [hashes]);
    await upgradeOwner.query("UPDATE receipt_tree_head SET size = 500, root = $1", [await treeHash(500, read)]);

    await migrate(upgradeOwner, loadMigrations());
    expect(await storedHashesIn(upgradeService, "receipt_tree_hash_runs")).toBe(hashes.length);
    expect(await storedHashReader(upgradeService)(hashes.map((_, i) => i))).toEqual(hashes);
    expect(await advanceTreeFully(upgradeService, undefined, 77)).toMatchObject({ size: 700 });
    expect((await verifyLog(upgradeService)).findings).toEqual([]);
    expect(await storedHashesIn(upgradeService, "receipt_tree_hash_runs")).toBe(storedHashCount(700));
  } finally {
    await upgradeService.close();
    await upgradeOwner.close();
  }
});

test("a writer killed with SIGKILL at any point leaves a consistent earlier head, and the next run completes", async () => {
  await appendReceipts(6000);
  const total = await receiptCount();
  let previous = (await readTreeHead(service)).size;
  for (const killAfterSteps of [3, 17, 40]) {
    await killTreeWriterAfter(serviceUrl, "receipts", 37, killAfterSteps);
    const size = await expectConsistent();
    expect(size).toBeGreaterThan(previous);
    expect(size).toBeLessThan(total);
    previous = size;
  }
  expect((await advanceTreeFully(service)).size).toBe(total);
  expect(await expectConsistent()).toBe(total);
});

test("a PostgreSQL crash while the tree advances loses no acknowledged receipt and no checkpointed tree state; after recovery the tree is consistent and completes", async () => {
  await appendReceipts(3000);
  const policy = { origin: "knhk.test/receipt-tree", everyReceipts: 200, intervalMs: 3_600_000 };
  const acked: string[] = [];
  let steps = 0;
  let running = true;
  // Tree advances (not waiting for their WAL flush) with checkpoints, and appends, until the crash.
  const advancing = (async () => {
    while (running) {
      await advanceTree(service, 23);
      await checkpointIfDue(service, signer, policy);
      steps++;
    }
  })().catch((error: Error) => error);
  const appending = (async () => {
    for (let i = 0; running; i++) acked.push((await ledger.append({ operation: "tree.crash", outcome: "success", evidence: { i }, sector: "generic" })).id);
  })().catch((error: Error) => error);
  await waitFor("40 tree steps before the crash", async () => steps >= 40, 60_000, 2);
  await pg.crash();
  running = false;
  // Both loops end on the crash (with whatever error the driver gives for a vanished server).
  await Promise.all([advancing, appending]);
  await pg.start();

  await waitFor("the service role reconnected", async () => service.query("SELECT 1").then(() => true, () => false), 30_000, 100);
  const { rows } = await service.query<{ n: string }>("SELECT count(*)::text AS n FROM receipts WHERE id = ANY($1::uuid[])", [acked]);
  expect(Number(rows[0].n)).toBe(acked.length);
  const head = await readTreeHead(service);
  const checkpointed = Number((await service.query<{ n: string }>("SELECT coalesce(max(size), 0)::text AS n FROM receipt_tree_checkpoints")).rows[0].n);
  expect(checkpointed).toBeGreaterThan(0);
  expect(head.size).toBeGreaterThanOrEqual(checkpointed);
  await expectConsistent();
  expect((await advanceTreeFully(service)).size).toBe(await receiptCount());
  expect(await expectConsistent()).toBe(await receiptCount());
});

test("a missing receipt stops the tree at the gap instead of skipping it, and replay names it", async () => {
  await appendReceipts(10);
  const head = await readTreeHead(service);
  // The owner bypassing the triggers removes a receipt the tree has not reached yet.
  expect(await asOwnerBypassingTriggers(owner, "DELETE FROM receipts WHERE seq = $1", [head.size + 3])).toBe(1);
  await expect(advanceTree(service)).rejects.toThrow(`receipt seq ${head.size + 3} is missing (next is ${head.size + 4}); the tree never skips a receipt`);
  expect(await readTreeHead(service)).toEqual(head);
  const replay = await verifyLog(service);
  expect(replay.findings).toEqual([]);
  // Advanced past the gap by hand would be refused too: the replay names the missing seq.
  await asOwnerBypassingTriggers(owner, "UPDATE receipt_tree_head SET size = size + 10");
  expect((await verifyLog(service)).findings).toEqual(expect.arrayContaining([{ kind: "missing_receipt", size: head.size + 3, detail: `receipt seq ${head.size + 3} is missing (the next is ${head.size + 4})` }]));
});
