/**
 * Several service processes appending to one PostgreSQL 15 keep ONE chain (the chain-head row lock
 * serialises their batches), and a writer killed with SIGKILL mid-run has lost no receipt it had
 * acknowledged.
 */
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createPostgresDatabase } from "../../app/src/db/postgres";
import { createLedger, loadSigner, verifyChain, type Receipt } from "../../app/src/receipts";
import { PG_BIN } from "../support/postgres";
import { spawnTracked, type TrackedProcess } from "../support/processes";
import { startLedgerPostgres, type LedgerPostgres } from "./receipts-support";

jest.setTimeout(240_000);

const WRITER = join(__dirname, "receipts-writer.ts");
const ROOT = join(__dirname, "..", "..");
let env: LedgerPostgres;
const started: TrackedProcess[] = [];

beforeAll(async () => {
  env = await startLedgerPostgres();
});
afterAll(async () => {
  for (const p of started) await p.stop();
  await env?.close();
});

interface Writer {
  readonly process: TrackedProcess;
  readonly acks: Array<{ seq: number; id: string }>;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

function startWriter(label: string, count: number, concurrency: number): Writer {
  const writer = spawnTracked(process.execPath, ["--import", "tsx", WRITER], {
    cwd: ROOT,
    env: {
      ...process.env,
      KNHK_TEST_DATABASE_URL: env.serviceUrl,
      KNHK_TEST_OWNER_URL: env.ownerUrl,
      WRITER_LABEL: label,
      WRITER_COUNT: String(count),
      WRITER_CONCURRENCY: String(concurrency),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(writer);
  const { child } = writer;
  const acks: Array<{ seq: number; id: string }> = [];
  let pending = "";
  let errors = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? ""; // a line cut by SIGKILL is not an acknowledgement
    for (const line of lines) {
      const m = /^ack (\d+) ([0-9a-f-]{36})$/.exec(line);
      if (m) acks.push({ seq: Number(m[1]), id: m[2] });
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (errors += chunk));
  const exited = writer.exited.then(({ code }) => code);
  return { process: writer, acks, exited, stderr: () => errors };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the writer");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("3 processes appending at once leave one unbroken, verifiable chain", async () => {
  const writers = ["a", "b", "c"].map((label) => startWriter(label, 1500, 48));
  const codes = await Promise.all(writers.map((w) => w.exited));
  expect({ codes, stderr: writers.map((w) => w.stderr()) }).toEqual({ codes: [0, 0, 0], stderr: ["", "", ""] });

  const acked = writers.flatMap((w) => w.acks);
  expect(acked).toHaveLength(4500);
  // Every seq 1..4500 was handed out exactly once across the three processes.
  expect(acked.map((a) => a.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 4500 }, (_, i) => i + 1));
  // The processes' batches interleave in the one chain (not three chains one after another).
  const owners = new Map(writers.flatMap((w, wi) => w.acks.map((a) => [a.seq, wi] as const)));
  let switches = 0;
  for (let s = 2; s <= 4500; s++) if (owners.get(s) !== owners.get(s - 1)) switches++;
  expect(switches).toBeGreaterThan(2);

  const report = await verifyChain({ db: env.service });
  expect([...report.chain_breaks, ...report.signature_failures, ...report.retrocausation_violations]).toEqual([]);
  expect(report).toMatchObject({ ok: true, total_count: 4500, verified_count: 4500 });
  const versions = await env.owner.query<{ key_version: number }>("SELECT DISTINCT key_version FROM receipts");
  expect(versions.rows).toHaveLength(3);
});

test("a writer killed with SIGKILL mid-batch lost no acknowledged receipt and the chain still verifies", async () => {
  const headBefore = Number((await env.owner.query<{ seq: string }>("SELECT seq FROM receipt_chain_head")).rows[0].seq);
  const steady = startWriter("steady", 2000, 32);
  const victim = startWriter("victim", 0, 64);
  await waitFor(() => victim.acks.length >= 1500, 120_000);
  victim.process.signal("SIGKILL");
  expect(await victim.exited).toBeNull();
  expect(await steady.exited).toBe(0);

  const ids = victim.acks.map((a) => a.id);
  const stored = await env.owner.query<{ id: string; seq: string }>("SELECT id::text AS id, seq FROM receipts WHERE id = ANY($1::uuid[])", [ids]);
  const storedSeq = new Map(stored.rows.map((r) => [r.id, Number(r.seq)]));
  const missing = victim.acks.filter((a) => storedSeq.get(a.id) !== a.seq);
  expect(missing).toEqual([]);

  const report = await verifyChain({ db: env.service });
  expect([...report.chain_breaks, ...report.signature_failures, ...report.retrocausation_violations]).toEqual([]);
  expect(report.ok).toBe(true);
  const head = Number((await env.owner.query<{ seq: string }>("SELECT seq FROM receipt_chain_head")).rows[0].seq);
  expect(head).toBe(report.to_seq);
  expect(head).toBeGreaterThanOrEqual(headBefore + 2000 + victim.acks.length);
});

test("receipts acknowledged before a PostgreSQL crash survive it, even with synchronous_commit off as the database default", async () => {
  // The ledger commits its batches with synchronous_commit on itself; the default here would lose them.
  await env.pg.psql("ALTER DATABASE knhk SET synchronous_commit = off");
  const db = createPostgresDatabase({ connectionString: env.serviceUrl, max: 4 });
  const signer = await loadSigner({ db, registrar: env.owner, env: {}, log: () => undefined });
  const ledger = createLedger({ db, signer });
  const acked: Receipt[] = [];
  let stop = false;
  const loops = Array.from({ length: 64 }, async (_, k) => {
    for (let i = 0; !stop; i++) {
      try {
        acked.push(await ledger.append({ operation: "test.crash", outcome: "success", evidence: { k, i }, sector: "default" }));
      } catch {
        return; // the server went away: not acknowledged
      }
    }
  });
  await waitFor(() => acked.length >= 2000, 120_000);
  const run = promisify(execFile);
  const pgCtl = [join(PG_BIN, "pg_ctl"), "-D", env.pg.dataDir, "-m", "immediate", "-w", "stop"];
  const [cmd, ...args] = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...pgCtl] : pgCtl;
  await run(cmd, args);
  const ackedAtCrash = [...acked];
  stop = true;
  await Promise.all(loops);
  await ledger.close();
  await db.close();

  await env.pg.start();
  await env.pg.psql("ALTER DATABASE knhk RESET synchronous_commit");
  const survivor = createPostgresDatabase({ connectionString: env.ownerUrl, max: 2 });
  try {
    const stored = await survivor.query<{ id: string; hash: string }>("SELECT id::text AS id, hash FROM receipts WHERE id = ANY($1::uuid[])", [
      ackedAtCrash.map((r) => r.id),
    ]);
    const hashes = new Map(stored.rows.map((r) => [r.id, r.hash]));
    expect(ackedAtCrash.filter((r) => hashes.get(r.id) !== r.hash).map((r) => r.seq)).toEqual([]);
    const report = await verifyChain({ db: survivor });
    expect(report.ok).toBe(true);
  } finally {
    await survivor.close();
  }
});
