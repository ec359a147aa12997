/**
 * Batch ingest through the domain (real PostgreSQL 15, the domain as knhk_app, real ledger and
 * kernel): per-item results, one receipt per batch committing to every stored observation's leaf,
 * inclusion proofs that hold for any JSON the API accepts, and ingest commits shared by
 * concurrent requests.
 */
import fc from "fast-check";
import { MERKLE_TREE, proofHolds, ValidationError, type Guard } from "../../app/src/domain";
import { verifyChain } from "../../app/src/receipts";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { openScenario, type Scenario } from "./domain-support";

let pg: TestPostgres;
let s: Scenario;

const guards: Guard[] = [
  { id: "temp-max", sector: "manufacturing", event_type: "sensor.temp", check: { op: "max", path: "value", max: 100 }, action: "reject" },
  { id: "unit-required", sector: "*", event_type: "sensor.temp", check: { op: "required", path: "metadata.unit" }, action: "flag" },
];

beforeAll(async () => {
  pg = await startPostgres();
  s = await openScenario(pg, { genesis: { guards } });
}, 120_000);
afterAll(async () => {
  await s?.close();
  await pg?.destroy();
});

async function receiptAt(seq: number): Promise<{ operation: string; outcome: string; sector: string; evidence: Record<string, any> }> {
  const { rows } = await s.db.query<{ operation: string; outcome: string; sector: string; evidence: string }>("SELECT operation, outcome, sector, evidence FROM receipts WHERE seq = $1", [seq]);
  return { ...rows[0], evidence: JSON.parse(rows[0].evidence) };
}

const count = async (sql: string, params: unknown[] = []) => (await s.db.query<{ n: number }>(sql, params)).rows[0].n;

test("a batch stores the good items, reports each refused one by field, and receipts the Merkle root of what it stored", async () => {
  const result = await s.domain.observations.createBatch([
    { event_type: "sensor.temp", value: 20, sector: "manufacturing", metadata: { unit: "C" } },
    { event_type: "sensor.temp", value: 150, sector: "manufacturing", metadata: { unit: "C" } },
    { event_type: "sensor.temp", value: 21, sector: "mars" },
    { event_type: "sensor.temp", value: 22, sector: "manufacturing" },
    "not an object",
    { event_type: "sensor.temp", value: 23, sector: "logistics", metadata: { unit: "C" }, colour: "red" },
  ]);
  expect(result).toMatchObject({ stored: 2, invalid: 3, rejected: 1 });
  expect(result.items.map((i) => [i.index, i.status, "field" in i ? i.field : undefined])).toEqual([
    [0, "stored", undefined],
    [1, "rejected", "items.1.value"],
    [2, "invalid", "items.2.sector"],
    [3, "stored", undefined],
    [4, "invalid", "items.4.body"],
    [5, "invalid", "items.5.colour"],
  ]);
  expect(result.items[1]).toMatchObject({ guard_id: "temp-max" });
  expect(result.items[3]).toMatchObject({ flagged: true });

  const stored = await s.db.query<{ id: string; batch_index: number }>("SELECT id, batch_index FROM observations WHERE batch_id = $1 ORDER BY batch_index", [result.batch_id]);
  expect(stored.rows.map((r) => [r.id, r.batch_index])).toEqual([
    [(result.items[0] as { id: string }).id, 0],
    [(result.items[3] as { id: string }).id, 1],
  ]);
  const receipt = await receiptAt(result.receipt_seq!);
  expect(receipt).toMatchObject({ operation: "observation.batch", outcome: "flagged", sector: "manufacturing" });
  expect(receipt.evidence).toMatchObject({
    batch_id: result.batch_id,
    merkle_root: result.merkle_root,
    tree: MERKLE_TREE,
    stored: 2,
    flagged: 1,
    invalid: 3,
    rejected_by_guard: { "temp-max": [1] },
  });
  expect(await count("SELECT receipt_seq::int AS n FROM observation_batches WHERE id = $1", [result.batch_id])).toBe(result.receipt_seq);
  expect(await count("SELECT count(*)::int AS n FROM receipt_outbox")).toBe(0);

  for (const item of result.items.filter((i) => i.status === "stored")) {
    const proof = await s.domain.observations.proof((item as { id: string }).id);
    expect(proofHolds(proof)).toBe(true);
    expect(proof.batch).toMatchObject({ id: result.batch_id, size: 2, merkle_root: receipt.evidence.merkle_root });
    expect(proof.receipt_seq).toBe(result.receipt_seq);
    // The proof is bound to the stored fields: any change breaks it.
    expect(proofHolds({ ...proof, observation: { ...proof.observation, value: 99 } })).toBe(false);
    expect(proofHolds({ ...proof, batch: { ...proof.batch!, index: 1 - proof.batch!.index } })).toBe(false);
  }
  const report = await verifyChain({ db: s.owner, saveCheckpoint: false });
  expect(report.ok).toBe(true);
});

test("a single observation's receipt carries its leaf hash, and its proof holds", async () => {
  const obs = await s.domain.observations.create({ event_type: "sensor.temp", value: 30, sector: "generic", metadata: { unit: "C" } });
  const proof = await s.domain.observations.proof(obs.id);
  expect(proof.batch).toBeUndefined();
  expect(proofHolds(proof)).toBe(true);
  const receipt = await receiptAt(proof.receipt_seq!);
  expect(receipt).toMatchObject({ operation: "observation.create", evidence: { observation_id: obs.id, observation_hash: proof.leaf_hash } });
});

test("identical items are distinct observations with distinct leaves", async () => {
  const item = { event_type: "sensor.temp", value: 40, sector: "generic", metadata: { unit: "C" } };
  const result = await s.domain.observations.createBatch([item, item, item]);
  expect(result.stored).toBe(3);
  const ids = result.items.map((i) => (i as { id: string }).id);
  expect(new Set(ids).size).toBe(3);
  const leaves = await Promise.all(ids.map(async (id) => (await s.domain.observations.proof(id)).leaf_hash));
  expect(new Set(leaves).size).toBe(3);
});

test("a batch whose every item a guard refuses stores nothing but is receipted; one of only invalid items is not", async () => {
  const rows = await count("SELECT count(*)::int AS n FROM observations");
  const refused = await s.domain.observations.createBatch([
    { event_type: "sensor.temp", value: 500, sector: "manufacturing" },
    { event_type: "sensor.temp", value: 600, sector: "manufacturing" },
  ]);
  expect(refused).toMatchObject({ batch_id: null, stored: 0, rejected: 2, merkle_root: null });
  expect(await receiptAt(refused.receipt_seq!)).toMatchObject({ operation: "observation.batch", outcome: "rejected", evidence: { rejected_by_guard: { "temp-max": [0, 1] } } });
  const invalid = await s.domain.observations.createBatch([{ sector: "generic" }]);
  expect(invalid).toMatchObject({ stored: 0, invalid: 1, receipt_seq: null });
  expect(await count("SELECT count(*)::int AS n FROM observations")).toBe(rows);
});

test("the batch as a whole is refused, naming items, when empty, too large, or mixing smoke with other sectors", async () => {
  const refusal = (items: unknown[]) => s.domain.observations.createBatch(items).catch((e) => e);
  for (const items of [[], Array.from({ length: 1001 }, () => ({ event_type: "x", value: 1, sector: "generic" }))]) {
    const error = await refusal(items);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.field).toBe("items");
  }
  const mixed = await refusal([
    { event_type: "smoke.write", value: 1, sector: "smoke" },
    { event_type: "x", value: 1, sector: "generic" },
  ]);
  expect(mixed).toMatchObject({ field: "items", reason: expect.stringContaining("smoke") });
  const smoke = await s.domain.observations.createBatch([{ event_type: "smoke.write", value: 1, sector: "smoke" }]);
  expect(await receiptAt(smoke.receipt_seq!)).toMatchObject({ sector: "smoke" });
});

test("a proof holds after the round trip through PostgreSQL for any value and metadata the API accepts (fuzzed)", async () => {
  // Strings PostgreSQL can store (no NUL, no lone surrogates), numbers within the API's bound.
  const text = fc.string({ unit: "grapheme", maxLength: 12 });
  const number = fc.oneof(fc.integer(), fc.double({ min: -1e15, max: 1e15, noNaN: true }), fc.constantFrom(0.1, 1e-7, -0, 123456789012345, 5e-324));
  const leaf = fc.oneof(text, number, fc.boolean(), fc.constant(null));
  const value = fc.letrec<{ v: unknown }>((tie) => ({ v: fc.oneof({ maxDepth: 3 }, leaf, fc.array(tie("v"), { maxLength: 3 }), fc.dictionary(text, tie("v"), { maxKeys: 3, noNullPrototype: true })) })).v;
  const metadata = fc.dictionary(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), value, { maxKeys: 3, noNullPrototype: true });
  const item = fc.record({ event_type: fc.constantFrom("fuzz.proof", "fuzz.other"), value, sector: fc.constantFrom("finance", "generic"), metadata });
  await fc.assert(
    fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 9 }), async (items) => {
      const result = await s.domain.observations.createBatch(items);
      expect(result.stored).toBe(items.length);
      for (const stored of result.items) {
        const proof = await s.domain.observations.proof((stored as { id: string }).id);
        expect({ id: proof.observation.id, holds: proofHolds(proof) }).toEqual({ id: proof.observation.id, holds: true });
        expect(proof.batch?.merkle_root).toBe(result.merkle_root);
      }
    }),
    { numRuns: 25, seed: 1503 },
  );
});

test("concurrent ingest requests share commits: fewer ingest transactions than requests, nothing lost", async () => {
  const before = s.metrics.records.filter((r) => r.name === "knhk_observation_commit_size").length;
  const singles = Array.from({ length: 40 }, (_, i) => s.domain.observations.create({ event_type: "concurrent.single", value: i, sector: "finance" }));
  const batches = Array.from({ length: 5 }, (_, b) =>
    s.domain.observations.createBatch(Array.from({ length: 20 }, (_, i) => ({ event_type: "concurrent.batch", value: b * 100 + i, sector: "finance" }))),
  );
  const [created, batched] = await Promise.all([Promise.all(singles), Promise.all(batches)]);
  const commits = s.metrics.records.filter((r) => r.name === "knhk_observation_commit_size").slice(before);
  expect(commits.reduce((n, r) => n + r.value, 0)).toBe(40 + 100);
  expect(commits.length).toBeLessThan(45);
  expect(await count("SELECT count(*)::int AS n FROM observations WHERE event_type IN ('concurrent.single', 'concurrent.batch')")).toBe(140);
  expect(new Set(created.map((o) => o.seq)).size).toBe(40);
  expect(batched.every((b) => b.stored === 20 && b.receipt_seq !== null)).toBe(true);
  expect(await count("SELECT count(*)::int AS n FROM receipt_outbox")).toBe(0);
});
