/**
 * The receipt ledger against a real PostgreSQL 15 (synchronous_commit on): group-commit appends,
 * verification of a 10,000-receipt chain, tamper detection for every stored field, append-only
 * enforcement, key rotation, retrocausation and incremental verification.
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate } from "../../app/src/db/migrate";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import {
  ReceiptInputError,
  canonicalReceiptText,
  createLedger,
  latestCheckpoint,
  listSigningKeys,
  loadSigner,
  receiptIdFromHash,
  sha256Hex,
  verifyChain,
  type ChainFailure,
  type Ledger,
  type Receipt,
  type Signer,
  type VerificationReport,
} from "../../app/src/receipts";
import { asOwnerBypassingTriggers, ledgerMigrations, startLedgerPostgres, type LedgerPostgres } from "./receipts-support";

jest.setTimeout(240_000);

const quiet = () => undefined;
let env: LedgerPostgres;
let signer: Signer;
let ledger: Ledger;
const batchSizes: number[] = [];

beforeAll(async () => {
  env = await startLedgerPostgres();
  signer = await loadSigner({ db: env.service, registrar: env.owner, env: {}, log: quiet });
  ledger = createLedger({ db: env.service, signer, metrics: { onBatch: (n) => batchSizes.push(n) } });
});

afterAll(async () => {
  await ledger?.close();
  await env?.close();
});

function allFailures(report: VerificationReport): ChainFailure[] {
  return [...report.chain_breaks, ...report.signature_failures, ...report.retrocausation_violations];
}

function append(i: number, extra: Record<string, unknown> = {}): Promise<Receipt> {
  return ledger.append({ operation: "test.append", outcome: "success", evidence: { i, ...extra }, sector: "default" });
}

describe("group-commit append", () => {
  test("an acknowledged receipt is already committed when its promise resolves", async () => {
    const checks = Array.from({ length: 300 }, (_, i) =>
      append(i, { durability: true }).then(async (r) => {
        // A different connection (the owner's pool) sees it: the transaction committed before the ack.
        const row = await env.owner.query<{ hash: string }>("SELECT hash FROM receipts WHERE id = $1", [r.id]);
        return row.rows[0]?.hash === r.hash;
      }),
    );
    expect((await Promise.all(checks)).every(Boolean)).toBe(true);
  });

  test("bad input is rejected naming the field, without disturbing the queue", async () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ operation: "", outcome: "success", evidence: {}, sector: "s" }, "operation"],
      [{ operation: "a b", outcome: "success", evidence: {}, sector: "s" }, "operation"],
      [{ operation: "x", outcome: "OK!", evidence: {}, sector: "s" }, "outcome"],
      [{ operation: "x", outcome: "success", evidence: [1], sector: "s" }, "evidence"],
      [{ operation: "x", outcome: "success", evidence: { n: Number.NaN }, sector: "s" }, "evidence"],
      [{ operation: "x", outcome: "success", evidence: { big: "x".repeat(70_000) }, sector: "s" }, "evidence"],
      [{ operation: "x", outcome: "success", evidence: {}, sector: "a\nb" }, "sector"],
      [{ operation: "x", outcome: "success", evidence: {}, sector: "" }, "sector"],
    ];
    const good = append(1, { between: "bad inputs" });
    for (const [input, field] of bad) {
      const error = await ledger.append(input as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ReceiptInputError);
      expect((error as ReceiptInputError).field).toBe(field);
      expect((error as Error).message).toMatch(new RegExp(`^${field}: `));
    }
    expect((await good).seq).toBeGreaterThan(0);
  });
});

describe("append-only in the database", () => {
  test.each([
    ["UPDATE", "UPDATE receipts SET outcome = 'failed' WHERE seq = 1"],
    ["DELETE", "DELETE FROM receipts WHERE seq = 1"],
    ["TRUNCATE", "TRUNCATE receipts"],
  ])("%s as the service role is refused", async (_op, sql) => {
    await expect(env.service.query(sql)).rejects.toThrow(/permission denied/);
  });

  test.each([
    ["UPDATE", "UPDATE receipts SET outcome = 'failed' WHERE seq = 1"],
    ["DELETE", "DELETE FROM receipts WHERE seq = 1"],
    ["TRUNCATE", "TRUNCATE receipts"],
  ])("%s even as the owner is stopped by the trigger", async (op, sql) => {
    await expect(env.owner.query(sql)).rejects.toThrow(new RegExp(`table receipts is append-only: ${op} is not allowed`));
  });

  test("the chain head and the rows are unchanged after the refused statements", async () => {
    const rows = await env.owner.query<{ n: string; outcome: string }>("SELECT count(*) AS n, min(outcome) AS outcome FROM receipts");
    expect(rows.rows[0].outcome).toBe("success");
    expect(Number(rows.rows[0].n)).toBe((await ledger.head()).seq);
  });
});

describe("tampering by the owner (trigger bypassed) is reported with the receipt id and kind", () => {
  let otherKeyVersion: number;
  beforeAll(async () => {
    await Promise.all(Array.from({ length: 300 }, (_, i) => append(i, { for: "tampering" })));
    const other = await loadSigner({ db: env.service, registrar: env.owner, env: {}, log: quiet });
    otherKeyVersion = other.keyVersion;
  });

  const FORGED_ID = "00000000-0000-4000-8000-000000000001";
  // field, tampering SQL ($1 = seq, $2 = another registered key version), kinds reported on the tampered receipt
  const cases: Array<[string, string, string[]]> = [
    ["id", `UPDATE receipts SET id = '${FORGED_ID}' WHERE seq = $1`, ["hash_mismatch"]],
    ["seq", "UPDATE receipts SET seq = 1000000 WHERE seq = $1", ["hash_mismatch", "sequence_gap"]],
    ["operation", "UPDATE receipts SET operation = 'test.forged' WHERE seq = $1", ["hash_mismatch"]],
    ["outcome", "UPDATE receipts SET outcome = 'failed' WHERE seq = $1", ["hash_mismatch"]],
    ["evidence", `UPDATE receipts SET evidence = '{"i":-1}' WHERE seq = $1`, ["hash_mismatch"]],
    ["evidence formatting", `UPDATE receipts SET evidence = replace(evidence, ':', ': ') WHERE seq = $1`, ["hash_mismatch"]],
    ["sector", "UPDATE receipts SET sector = 'other' WHERE seq = $1", ["hash_mismatch"]],
    ["created_at", "UPDATE receipts SET created_at = created_at + interval '1 millisecond' WHERE seq = $1", ["hash_mismatch"]],
    ["parent_hash", "UPDATE receipts SET parent_hash = repeat('a', 64) WHERE seq = $1", ["hash_mismatch", "parent_mismatch"]],
    ["key_version", "UPDATE receipts SET key_version = $2 WHERE seq = $1", ["hash_mismatch", "signature_invalid"]],
    ["hash", "UPDATE receipts SET hash = repeat('b', 64) WHERE seq = $1", ["hash_mismatch", "signature_invalid"]],
    [
      "signature",
      "UPDATE receipts SET signature = (SELECT signature FROM receipts WHERE seq = $1 + 1) WHERE seq = $1",
      ["signature_invalid"],
    ],
  ];

  test.each(cases)("%s", async (field, tamper, kinds) => {
    const seq = 100 + cases.findIndex((c) => c[0] === field) * 7;
    const original = await env.owner.query<Record<string, unknown>>("SELECT * FROM receipts WHERE seq = $1", [seq]);
    const before = original.rows[0];
    const params = field === "key_version" ? [seq, otherKeyVersion] : [seq];
    expect(await asOwnerBypassingTriggers(env.owner, tamper, params)).toBe(1);

    const report = await verifyChain({ db: env.owner, saveCheckpoint: false });
    expect(report.ok).toBe(false);
    const storedId = field === "id" ? FORGED_ID : (before.id as string);
    const onTampered = allFailures(report).filter((f) => f.id === storedId);
    const found = onTampered.map((f) => f.kind).sort();
    // A moved seq also lands after the head, so its parent link and timestamp order break too.
    if (field === "seq") expect(found).toEqual(expect.arrayContaining(kinds));
    else expect(found).toEqual([...kinds].sort());
    for (const f of onTampered) expect(f.detail.length).toBeGreaterThan(0);
    expect(onTampered[0].seq).toBe(field === "seq" ? 1000000 : seq);
    // Nothing but the tampered receipt and its direct child is reported (a seq moved past the
    // head also lies beyond receipt_chain_head: an anchor failure naming no receipt).
    const anchored = allFailures(report).filter((x) => x.id === "");
    expect(anchored.map((f) => f.kind)).toEqual(field === "seq" ? ["sequence_gap"] : []);
    for (const f of allFailures(report).filter((x) => x.id !== storedId && x.id !== "")) expect(f.seq).toBe(seq + 1);
    const onReceipts = allFailures(report).filter((x) => x.id !== "");
    expect(report.verified_count).toBe(report.total_count - new Set(onReceipts.map((f) => f.seq)).size);

    // Restoring the original values makes the chain verify again: detection is exact, not noise.
    await asOwnerBypassingTriggers(
      env.owner,
      "UPDATE receipts SET seq = $1, id = $2, operation = $3, outcome = $4, evidence = $5, sector = $6, created_at = $7, parent_hash = $8, key_version = $9, hash = $10, signature = $11 WHERE id = $12",
      [before.seq, before.id, before.operation, before.outcome, before.evidence, before.sector, before.created_at, before.parent_hash, before.key_version, before.hash, before.signature, storedId],
    );
    const restored = await verifyChain({ db: env.owner, saveCheckpoint: false, workers: 0 });
    expect(allFailures(restored)).toEqual([]);
  });
});

describe("key rotation", () => {
  test("receipts signed before a rotation stay valid; the old key is retired; a version cannot be reused with another key", async () => {
    const before = await Promise.all(Array.from({ length: 50 }, (_, i) => append(i, { phase: "before rotation" })));
    const nextVersion = Math.max(...(await listSigningKeys(env.service)).map((k) => k.key_version)) + 1;
    const { privateKey } = generateKeyPairSync("ed25519");
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const rotated = await loadSigner({
      db: env.service,
      registrar: env.owner,
      env: { KNHK_SIGNING_KEY_PEM: pem, KNHK_SIGNING_KEY_VERSION: String(nextVersion) },
      log: quiet,
    });
    expect(rotated.keyVersion).toBe(nextVersion);
    const rotatedLedger = createLedger({ db: env.service, signer: rotated });
    const after = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        rotatedLedger.append({ operation: "test.append", outcome: "success", evidence: { i, phase: "after" }, sector: "default" }),
      ),
    );
    await rotatedLedger.close();
    expect(new Set(before.map((r) => r.key_version))).toEqual(new Set([signer.keyVersion]));
    expect(new Set(after.map((r) => r.key_version))).toEqual(new Set([nextVersion]));

    const report = await verifyChain({ db: env.service });
    expect(allFailures(report)).toEqual([]);
    expect(report.ok).toBe(true);

    const keys = await listSigningKeys(env.service);
    expect(keys.find((k) => k.key_version === nextVersion)?.retired_at).toBeNull();

    // Same version, different key: refused, naming the variable.
    const other = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    await expect(
      loadSigner({ db: env.service, registrar: env.owner, env: { KNHK_SIGNING_KEY_PEM: other, KNHK_SIGNING_KEY_VERSION: String(nextVersion) }, log: quiet }),
    ).rejects.toThrow(/KNHK_SIGNING_KEY_VERSION=\d+: that version is registered with a different public key/);

    // A later configured version retires the earlier configured one.
    const third = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    await loadSigner({ db: env.service, registrar: env.owner, env: { KNHK_SIGNING_KEY_PEM: third, KNHK_SIGNING_KEY_VERSION: String(nextVersion + 1) }, log: quiet });
    const afterThird = await listSigningKeys(env.service);
    expect(afterThird.find((k) => k.key_version === nextVersion)?.retired_at).not.toBeNull();
    expect((await verifyChain({ db: env.service })).ok).toBe(true);
  });
});

describe("incremental verification", () => {
  test("verifies only what was appended after the last checkpoint and checks the checkpoint anchor", async () => {
    const full = await verifyChain({ db: env.service });
    expect(full.ok).toBe(true);
    const checkpoint = await latestCheckpoint(env.service);
    expect(checkpoint?.seq).toBe(full.to_seq);

    await Promise.all(Array.from({ length: 120 }, (_, i) => append(i, { phase: "incremental" })));
    const incremental = await verifyChain({ db: env.service, fromCheckpoint: true });
    expect(incremental).toMatchObject({ ok: true, incremental: true, total_count: 120, verified_count: 120 });
    expect(incremental.from_seq).toBe((full.to_seq as number) + 1);
    expect((await latestCheckpoint(env.service))?.seq).toBe(incremental.to_seq);

    // Nothing new: nothing to verify.
    const empty = await verifyChain({ db: env.service, fromCheckpoint: true });
    expect(empty).toMatchObject({ ok: true, total_count: 0 });

    // A tampered new receipt fails the incremental run, and no checkpoint moves past it.
    const fresh = await append(0, { phase: "after checkpoint" });
    const anchorBefore = await latestCheckpoint(env.service);
    await asOwnerBypassingTriggers(env.owner, "UPDATE receipts SET outcome = 'failed' WHERE seq = $1", [fresh.seq]);
    const failed = await verifyChain({ db: env.service, fromCheckpoint: true });
    expect(failed.ok).toBe(false);
    expect(failed.chain_breaks).toEqual([expect.objectContaining({ id: fresh.id, seq: fresh.seq, kind: "hash_mismatch" })]);
    expect((await latestCheckpoint(env.service))?.seq).toBe(anchorBefore?.seq);
    await asOwnerBypassingTriggers(env.owner, "UPDATE receipts SET outcome = 'success' WHERE seq = $1", [fresh.seq]);

    // Tampering with the checkpointed receipt itself is caught by the anchor check.
    const anchor = (await latestCheckpoint(env.service))!;
    await asOwnerBypassingTriggers(env.owner, "UPDATE receipts SET hash = repeat('c', 64) WHERE seq = $1", [anchor.seq]);
    const anchored = await verifyChain({ db: env.service, fromCheckpoint: true, saveCheckpoint: false });
    expect(anchored.ok).toBe(false);
    expect(anchored.chain_breaks.some((f) => f.seq === anchor.seq && f.kind === "hash_mismatch")).toBe(true);
    await asOwnerBypassingTriggers(env.owner, "UPDATE receipts SET hash = $1 WHERE seq = $2", [anchor.hash, anchor.seq]);
    expect((await verifyChain({ db: env.service, fromCheckpoint: true })).ok).toBe(true);
  });

  test("--limit verifies a prefix", async () => {
    const report = await verifyChain({ db: env.service, limit: 25, workers: 1, pageSize: 10 });
    expect(report).toMatchObject({ ok: true, total_count: 25, from_seq: 1, to_seq: 25 });
  });
});

describe("retrocausation", () => {
  test("a correctly hashed and signed receipt older than its parent is reported", async () => {
    await env.pg.createDatabase("knhk_retro");
    const owner = createPostgresDatabase({ connectionString: env.pg.url("knhk_retro"), max: 2 });
    try {
      await migrate(owner, ledgerMigrations());
      // A clock running backwards: the ledger clamps created_at so the chain stays ordered.
      let t = Date.parse("2030-01-01T00:00:00.000Z");
      const s = await loadSigner({ db: owner, env: {}, log: quiet });
      const backwards = createLedger({ db: owner, signer: s, clock: () => (t -= 1000) });
      for (let i = 0; i < 5; i++) await backwards.append({ operation: "t", outcome: "success", evidence: { i }, sector: "x" });
      await backwards.close();
      expect((await verifyChain({ db: owner, workers: 0 })).ok).toBe(true);

      // Forge a child one hour older than its parent, with a valid hash and signature.
      const head = (await owner.query<{ hash: string; created_at: Date }>("SELECT hash, created_at FROM receipts WHERE seq = 5")).rows[0];
      const createdAt = new Date(new Date(head.created_at).getTime() - 3_600_000).toISOString();
      const { privateKey } = generateKeyPairSync("ed25519");
      const keyed = await loadSigner({
        db: owner,
        env: { KNHK_SIGNING_KEY_PEM: privateKey.export({ format: "pem", type: "pkcs8" }).toString(), KNHK_SIGNING_KEY_VERSION: "50" },
        log: quiet,
      });
      const fields = { seq: 6, operation: "t", outcome: "success", evidenceJson: '{"forged":true}', sector: "x", created_at: createdAt, parent_hash: head.hash, key_version: 50 };
      const hash = sha256Hex(canonicalReceiptText(fields));
      const id = receiptIdFromHash(hash);
      await owner.query(
        "INSERT INTO receipts (seq, id, operation, outcome, evidence, sector, created_at, parent_hash, key_version, hash, signature) VALUES (6, $1, 't', 'success', $2, 'x', $3, $4, 50, $5, $6)",
        [id, fields.evidenceJson, createdAt, head.hash, hash, sign(null, Buffer.from(hash, "hex"), privateKey).toString("base64")],
      );
      // ... and move the head to it, as the ledger would have: only the timestamp order is wrong.
      await owner.query("UPDATE receipt_chain_head SET seq = 6, hash = $1, created_at = $2", [hash, createdAt]);
      expect(keyed.keyVersion).toBe(50);
      const report = await verifyChain({ db: owner });
      expect(report.ok).toBe(false);
      expect(report.chain_breaks).toEqual([]);
      expect(report.signature_failures).toEqual([]);
      expect(report.retrocausation_violations).toEqual([expect.objectContaining({ id, seq: 6, kind: "retrocausation" })]);
      expect(report.verified_count).toBe(5);
    } finally {
      await owner.close();
    }
  });
});

describe("a long chain", () => {
  test("a chain of 10,000 receipts appended concurrently is one unbroken chain that verifies", async () => {
    const start = (await ledger.head()).seq;
    const batchesBefore = batchSizes.length;
    const receipts = await Promise.all(Array.from({ length: 10_000 }, (_, i) => append(i)));
    expect(receipts.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 10_000 }, (_, i) => start + i + 1));
    // Batching happened: fewer transactions than receipts, and every receipt in exactly one batch.
    const batches = batchSizes.slice(batchesBefore);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(10_000);
    expect(batches.length).toBeLessThan(10_000);

    const progress: number[] = [];
    const report = await verifyChain({ db: env.service, onProgress: (p) => progress.push(p.verified) });
    expect(allFailures(report)).toEqual([]);
    const total = start + 10_000;
    expect(report).toMatchObject({ ok: true, total_count: total, verified_count: total, from_seq: 1, to_seq: total });
    expect(report.last_verified_timestamp).toBe(receipts.find((r) => r.seq === total)?.created_at);
    expect(progress[progress.length - 1]).toBe(total);

    const stored = await ledger.get(receipts[1234].id);
    expect(stored).toEqual(receipts[1234]);

    // Pages are verified in chunks by several threads: a failure deep in a page names its own receipt.
    const deep = start + 1500;
    const original = (await env.owner.query<{ signature: string }>("SELECT signature FROM receipts WHERE seq = $1", [deep])).rows[0].signature;
    const swap = "UPDATE receipts SET signature = (SELECT signature FROM receipts WHERE seq = $1 + 1) WHERE seq = $1";
    expect(await asOwnerBypassingTriggers(env.owner, swap, [deep])).toBe(1);
    const tampered = await verifyChain({ db: env.owner, saveCheckpoint: false, workers: 2 });
    expect(allFailures(tampered)).toEqual([expect.objectContaining({ seq: deep, kind: "signature_invalid" })]);
    expect(await asOwnerBypassingTriggers(env.owner, "UPDATE receipts SET signature = $2 WHERE seq = $1", [deep, original])).toBe(1);
    expect((await verifyChain({ db: env.owner, saveCheckpoint: false })).ok).toBe(true);
  });
});

describe("signer configuration", () => {
  let db: PostgresDatabase;
  const dir = mkdtempSync(join(tmpdir(), "knhk-keys-"));
  const pem = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  beforeAll(async () => {
    await env.pg.createDatabase("knhk_keys");
    db = createPostgresDatabase({ connectionString: env.pg.url("knhk_keys"), max: 2 });
    await migrate(db, ledgerMigrations());
  });
  afterAll(async () => {
    await db.close();
  });

  test("no key configured: an ephemeral key registered as a new version, announced in the log", async () => {
    const lines: string[] = [];
    const a = await loadSigner({ db, env: {}, log: (l) => lines.push(l) });
    const b = await loadSigner({ db, env: {}, log: (l) => lines.push(l) });
    expect(b.keyVersion).toBe(a.keyVersion + 1);
    expect(a.ephemeral).toBe(true);
    expect(lines[0]).toMatch(/no KNHK_SIGNING_KEY_FILE configured; signing with an ephemeral ed25519 key registered as key_version \d+/);
    const keys = await listSigningKeys(db);
    expect(keys.map((k) => k.public_key)).toEqual(expect.arrayContaining([a.publicKey, b.publicKey]));
  });

  test("KNHK_SIGNING_KEY_FILE with KNHK_SIGNING_KEY_VERSION: registered once, idempotent on restart", async () => {
    const file = join(dir, "key.pem");
    writeFileSync(file, pem);
    const env = { KNHK_SIGNING_KEY_FILE: file, KNHK_SIGNING_KEY_VERSION: "20" };
    const first = await loadSigner({ db, env });
    const again = await loadSigner({ db, env });
    expect(first).toMatchObject({ keyVersion: 20, ephemeral: false });
    expect(again.publicKey).toBe(first.publicKey);
    expect((await listSigningKeys(db)).filter((k) => k.key_version === 20)).toHaveLength(1);
  });

  test.each([
    [{ KNHK_SIGNING_KEY_PEM: pem }, /KNHK_SIGNING_KEY_VERSION must be a positive integer, got nothing/],
    [{ KNHK_SIGNING_KEY_PEM: pem, KNHK_SIGNING_KEY_VERSION: "0" }, /KNHK_SIGNING_KEY_VERSION must be a positive integer, got "0"/],
    [{ KNHK_SIGNING_KEY_PEM: pem, KNHK_SIGNING_KEY_VERSION: "v2" }, /KNHK_SIGNING_KEY_VERSION must be a positive integer/],
    [{ KNHK_SIGNING_KEY_PEM: "not a pem", KNHK_SIGNING_KEY_VERSION: "2" }, /KNHK_SIGNING_KEY_PEM: signing key PEM is not a readable private key/],
    [{ KNHK_SIGNING_KEY_FILE: "/nonexistent/key.pem", KNHK_SIGNING_KEY_VERSION: "2" }, /KNHK_SIGNING_KEY_FILE=\/nonexistent\/key.pem: cannot read \(ENOENT\)/],
    [{ KNHK_SIGNING_KEY_FILE: "/x", KNHK_SIGNING_KEY_PEM: pem, KNHK_SIGNING_KEY_VERSION: "2" }, /both set/],
    [{ KNHK_SIGNING_KEY_VERSION: "2" }, /KNHK_SIGNING_KEY_VERSION is set but neither/],
    [
      { KNHK_SIGNING_KEY_PEM: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString(), KNHK_SIGNING_KEY_VERSION: "3" },
      /signing key must be ed25519, got ec/,
    ],
  ])("bad configuration %# is refused naming the variable", async (env, message) => {
    await expect(loadSigner({ db, env, log: () => undefined })).rejects.toThrow(message);
  });
});
