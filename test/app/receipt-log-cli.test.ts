/**
 * `knhk receipts prove` and `verify-log` on PostgreSQL 15, run as the service role, against the
 * attacks the log exists to catch, each on its own database: the database owner (bypassing the
 * append-only triggers) truncating the tail, changing one receipt, and rewriting the whole chain
 * with fresh receipts signed by the same service key. The first two are reported against the
 * log's own signed checkpoints; the rewrite is self-consistent, so only a checkpoint an auditor
 * kept reveals it, as a fork. A checkpoint signed by another key is refused.
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../app/src/cli/receipts";
import { loadMigrations, migrate } from "../../app/src/db/migrate";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { createLedger, registerEphemeralSigner, type Ledger } from "../../app/src/receipts";
import type { Signer } from "../../app/src/receipts/keys";
import { signCheckpoint } from "../../app/src/receipts/tlog/checkpoint";
import { checkpointIfDue, latestCheckpoint } from "../../app/src/receipts/tlog/checkpoints";
import { advanceTreeFully } from "../../app/src/receipts/tlog/store";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { capturedStreams } from "../support/streams";
import { asOwnerBypassingTriggers } from "./receipts-support";

jest.setTimeout(300_000);

const ORIGIN = "knhk.test/receipt-log-cli";
const POLICY = { origin: ORIGIN, everyReceipts: 25, intervalMs: 3_600_000 };
let pg: TestPostgres;
let dir: string;
let counter = 0;
const opened: Array<{ close(): Promise<unknown> }> = [];

beforeAll(async () => {
  pg = await startPostgres();
  await pg.psql("CREATE ROLE knhk_app LOGIN");
  dir = mkdtempSync(join(tmpdir(), "knhk-log-cli-"));
}, 120_000);
afterAll(async () => {
  for (const o of opened.reverse()) await o.close().catch(() => undefined);
  await pg?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

interface Log {
  readonly owner: PostgresDatabase;
  readonly service: PostgresDatabase;
  readonly ledger: Ledger;
  readonly signer: Signer;
  /** Appends receipts, advancing the tree and signing checkpoints as the service does. */
  grow(count: number, tag?: string): Promise<void>;
  cli(...args: string[]): Promise<{ code: number; out: string; err: string }>;
}

async function freshLog(receipts: number): Promise<Log> {
  const database = `knhk_log_${++counter}`;
  await pg.createDatabase(database);
  const owner = createPostgresDatabase({ connectionString: pg.url(database), max: 2 });
  await migrate(owner, loadMigrations());
  await pg.psql("GRANT knhk_service TO knhk_app", database);
  const service = createPostgresDatabase({ connectionString: pg.url(database, "knhk_app"), max: 4 });
  const signer = await registerEphemeralSigner(owner);
  const ledger = createLedger({ db: service, signer });
  opened.push(owner, service, ledger);
  const log: Log = {
    owner,
    service,
    ledger,
    signer,
    async grow(count, tag = "original") {
      for (let i = 0; i < count; i++) {
        await ledger.append({ operation: "log.test", outcome: "success", evidence: { tag, i }, sector: "generic" });
        if (i % 10 === 9 || i === count - 1) {
          await advanceTreeFully(service);
          await checkpointIfDue(service, signer, POLICY);
        }
      }
    },
    async cli(...args) {
      const { stdout, stderr, out, err } = capturedStreams();
      const code = await run(args, { db: service, env: {}, stdout, stderr });
      return { code, out: out(), err: err() };
    },
  };
  await log.grow(receipts);
  return log;
}

const checkpointSizes = async (log: Log) => (await log.service.query<{ size: string }>("SELECT size::text AS size FROM receipt_tree_checkpoints ORDER BY receipt_tree_checkpoints.size")).rows.map((r) => Number(r.size));

const receiptIds = async (log: Log) => (await log.service.query<{ id: string }>("SELECT id::text AS id FROM receipts ORDER BY seq")).rows.map((r) => r.id);

test("prove prints and checks a receipt's proof; verify-log finds an intact log intact", async () => {
  const log = await freshLog(120);
  const ids = await receiptIds(log);
  // Checkpoints as the service signs them: the first at once, then every 25 receipts or more.
  expect(await checkpointSizes(log)).toEqual([10, 40, 70, 100]);
  for (const id of [ids[0], ids[59], ids[99]]) {
    const proved = await log.cli("prove", id);
    expect(proved).toMatchObject({ code: 0, out: expect.stringMatching(/is leaf \d+ of the tree of size 100[\s\S]*verified: the checkpoint's signature and the audit path hold/) });
  }
  const json = await log.cli("prove", ids[3], "--size", "10", "--format", "json");
  expect(json.code).toBe(0);
  expect(JSON.parse(json.out)).toMatchObject({ seq: 4, leaf_index: 3, tree_size: 10, verified: true });
  expect(await log.cli("verify-log")).toMatchObject({ code: 0, out: expect.stringMatching(/receipts: 120, tree: 120, signed checkpoints: 4 \(latest size 100\)[\s\S]*log intact/) });

  expect((await log.cli("prove", ids[100], "--size", "40")).err).toMatch(/--size: receipt seq 101 is not in the tree of size 40/);
  expect((await log.cli("prove", ids[100])).err).toMatch(/--size: receipt seq 101 is not in the tree of size 100; use a later checkpoint/);
  expect((await log.cli("prove", ids[0], "--size", "26")).err).toMatch(/--size: no signed checkpoint has size 26/);
  expect((await log.cli("prove", ids[0], "--size", "0")).code).toBe(2);
  expect((await log.cli("prove")).code).toBe(2);
  expect(await log.cli("prove", "00000000-0000-4000-8000-000000000000")).toMatchObject({ code: 1, err: expect.stringMatching(/no receipt/) });
  expect(await log.cli("prove", "not-a-receipt-id")).toMatchObject({ code: 1, err: expect.stringMatching(/no receipt not-a-receipt-id/) });
});

test("a truncated tail is reported against the last signed checkpoint, and against an auditor's when the owner also removed the tree and checkpoints", async () => {
  const log = await freshLog(100);
  const kept = (await latestCheckpoint(log.service))!.note;
  expect(await asOwnerBypassingTriggers(log.owner, "DELETE FROM receipts WHERE seq > 90")).toBe(10);
  const report = await log.cli("verify-log", "--format", "json");
  expect(report.code).toBe(1);
  expect(await checkpointSizes(log)).toEqual([10, 40, 70, 100]);
  expect(JSON.parse(report.out).findings).toEqual(expect.arrayContaining([{ kind: "truncated", size: 100, detail: "the signed checkpoint covers 100 receipts; the log has 90" }]));

  // The owner covers up: the tree's rows and checkpoints beyond 90 go too, the head is rewound.
  await asOwnerBypassingTriggers(log.owner, "DELETE FROM receipt_tree_checkpoints WHERE size > 90");
  await asOwnerBypassingTriggers(log.owner, "DELETE FROM receipt_tree_hash_runs");
  await asOwnerBypassingTriggers(log.owner, "UPDATE receipt_tree_head SET size = 0, root = sha256(''::bytea)");
  await advanceTreeFully(log.service);
  expect((await log.cli("verify-log")).code).toBe(0);
  const file = join(dir, "kept-truncated.txt");
  writeFileSync(file, kept);
  const audited = await log.cli("verify-log", "--checkpoint", file);
  expect(audited).toMatchObject({ code: 1, out: expect.stringContaining("truncated at size 100: the remembered checkpoint covers 100 receipts; the log has 90") });
});

test("a changed receipt is reported as a rewrite at every checkpoint that covers it", async () => {
  const log = await freshLog(60);
  expect(await asOwnerBypassingTriggers(log.owner, "UPDATE receipts SET hash = repeat('a', 64) WHERE seq = 30")).toBe(1);
  const report = JSON.parse((await log.cli("verify-log", "--format", "json")).out);
  expect(report.ok).toBe(false);
  const sizes = report.findings.filter((f: { kind: string }) => f.kind === "rewritten").map((f: { size: number }) => f.size);
  // Checkpoints at 10 and 40, the tree's head at 60: seq 30 is under 40 and the head, not 10.
  expect(await checkpointSizes(log)).toEqual([10, 40]);
  expect(sizes.sort((a: number, b: number) => a - b)).toEqual([40, 60]);
});

test("the whole chain rewritten and re-signed with the service key passes on its own, and is a fork against an auditor's checkpoint", async () => {
  const log = await freshLog(80);
  const kept = (await latestCheckpoint(log.service))!.note;
  for (const statement of [
    "DELETE FROM receipts",
    "DELETE FROM receipt_tree_hash_runs",
    "DELETE FROM receipt_tree_checkpoints",
    "UPDATE receipt_chain_head SET seq = 0, hash = repeat('0', 64), created_at = 'epoch'",
    "UPDATE receipt_tree_head SET size = 0, root = sha256(''::bytea)",
  ]) {
    await asOwnerBypassingTriggers(log.owner, statement);
  }
  await log.grow(90, "rewritten");
  expect((await log.cli("verify-log")).code).toBe(0);
  const file = join(dir, "kept-fork.txt");
  writeFileSync(file, kept);
  const audited = await log.cli("verify-log", "--checkpoint", file);
  expect(audited.code).toBe(1);
  expect(audited.out).toMatch(/fork at size 70: the remembered checkpoint has root \S+; the receipts give \S+/);

  // A checkpoint signed with a key that is not registered is refused, not trusted.
  const stranger = generateKeyPairSync("ed25519");
  const forged = await signCheckpoint(
    { origin: ORIGIN, size: 80, root: Buffer.alloc(32, 7) },
    { name: ORIGIN, publicKey: Buffer.from(stranger.publicKey.export({ format: "jwk" }).x!, "base64url"), sign: async (m) => sign(null, m, stranger.privateKey) },
  );
  writeFileSync(join(dir, "forged.txt"), forged);
  const refused = await log.cli("verify-log", "--checkpoint", join(dir, "forged.txt"));
  expect(refused).toMatchObject({ code: 1, out: expect.stringMatching(/bad_signature at size 0: the remembered checkpoint: note: no signature by a known key verifies/) });
});
