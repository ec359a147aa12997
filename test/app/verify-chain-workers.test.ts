/**
 * verify-chain with the chain cut into ranges that worker threads read and check themselves:
 * against PostgreSQL 15 over TLS (sslmode=verify-full) as a login of knhk_verifier, the CLI's
 * identity. Every report is held to a naive single-pass verification written here (canonical.ts,
 * node:crypto), whatever the range size, thread count and tampering (fast-check); tampering at
 * range boundaries, a parent link broken between two ranges, and a run whose connections are cut
 * are checked on their own.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, verify, type KeyObject } from "node:crypto";
import { execFile } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import fc from "fast-check";
import { run } from "../../app/src/cli/receipts";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { loadMigrations, migrate } from "../../app/src/db/migrate";
import {
  GENESIS_PARENT_HASH,
  canonicalReceiptText,
  createLedger,
  latestCheckpoint,
  receiptIdFromHash,
  registerSigningKey,
  sha256Hex,
  signerFromPem,
  verifyChain,
  type ChainFailure,
  type VerificationReport,
} from "../../app/src/receipts";
import { rawPublicKey } from "../../app/src/receipts/keys";
import { LEDGER_JOBS } from "../../infra/render/ledger-jobs";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { capturedStreams } from "../support/streams";
import { asOwnerBypassingTriggers } from "./receipts-support";

jest.setTimeout(600_000);

const exec = promisify(execFile);
const CHAIN = 600;
const TEMPLATE = "chain_template";
const VERIFIER = "knhk_verify_test";
const PASSWORD = randomBytes(18).toString("base64url");
const KEY_VERSION = 7;
const ISO = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

let pg: TestPostgres;
let dir: string;
let ca: string;
let otherCa: string;
const pem = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
const publicKey = createPublicKey(pem);
let databases = 0;

async function authority(name: string): Promise<{ crt: string; key: string }> {
  const crt = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await exec("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", `/CN=${name}`]);
  return { crt, key };
}

/** A server certificate for IP 127.0.0.1 signed by `signer`, readable by the postgres OS user. */
async function serverCertificate(signer: { crt: string; key: string }): Promise<{ crt: string; key: string }> {
  const key = join(dir, "server.key");
  const csr = join(dir, "server.csr");
  const crt = join(dir, "server.crt");
  const ext = join(dir, "server.ext");
  writeFileSync(ext, "subjectAltName=IP:127.0.0.1\n");
  await exec("openssl", ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=postgres"]);
  await exec("openssl", ["x509", "-req", "-in", csr, "-CA", signer.crt, "-CAkey", signer.key, "-CAcreateserial", "-out", crt, "-days", "1", "-extfile", ext]);
  if (process.getuid?.() === 0) {
    const owner = statSync("/var/lib/postgresql");
    chownSync(key, owner.uid, owner.gid);
    chownSync(crt, owner.uid, owner.gid);
  }
  return { crt, key };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "knhk-verify-tls-"));
  chmodSync(dir, 0o755);
  const root = await authority("knhk-verify-ca");
  ca = root.crt;
  otherCa = (await authority("someone-elses-ca")).crt;
  const server = await serverCertificate(root);
  // Every login but the superuser's set-up connections must come over TLS.
  const hba = join(dir, "pg_hba.conf");
  writeFileSync(
    hba,
    ["local all postgres trust", "host all postgres 127.0.0.1/32 trust", "hostssl all all 127.0.0.1/32 scram-sha-256", "hostnossl all all 127.0.0.1/32 reject", ""].join("\n"),
    { mode: 0o644 },
  );
  pg = await startPostgres({ settings: { hba_file: hba, ssl: "on", ssl_cert_file: server.crt, ssl_key_file: server.key, log_connections: "on" } });

  await pg.createDatabase(TEMPLATE);
  const owner = createPostgresDatabase({ connectionString: pg.url(TEMPLATE), max: 4 });
  try {
    await migrate(owner, loadMigrations());
    const signer = signerFromPem(pem, KEY_VERSION);
    await registerSigningKey(owner, signer);
    const ledger = createLedger({ db: owner, signer });
    for (let i = 0; i < CHAIN; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          ledger.append({ operation: "test.verify", outcome: "success", evidence: { i: i + j, text: 'é"\\\n\u2028' }, sector: "workers" }),
        ),
      );
    }
    await ledger.close();
    await signer.close();
  } finally {
    await owner.close();
  }
  await pg.psql(`CREATE ROLE ${VERIFIER} LOGIN PASSWORD '${PASSWORD}' IN ROLE ${LEDGER_JOBS.verifyChain.dbRole}`);
});

afterAll(async () => {
  await pg?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Chain {
  readonly name: string;
  readonly owner: PostgresDatabase;
  /** As the verifier login over TLS, verified against `ca`. */
  readonly verifier: PostgresDatabase;
  url(caFile?: string): string;
  close(): Promise<void>;
}

/** A copy of the 600-receipt chain in a database of its own. */
async function freshChain(): Promise<Chain> {
  const name = `chain_${++databases}`;
  await pg.psql(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE}`);
  const url = (caFile = ca) => `postgres://${VERIFIER}:${PASSWORD}@127.0.0.1:${pg.port}/${name}?sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}`;
  const owner = createPostgresDatabase({ connectionString: pg.url(name), max: 2 });
  const verifier = createPostgresDatabase({ connectionString: url(), max: 2 });
  return {
    name,
    owner,
    verifier,
    url,
    async close() {
      await verifier.close();
      await owner.close();
      await pg.psql(`DROP DATABASE ${name}`);
    },
  };
}

/** Every failure a naive walk over the stored rows finds, as "seq kind", sorted. */
async function naiveFailures(owner: PostgresDatabase, limit = Number.POSITIVE_INFINITY): Promise<string[]> {
  const keys = new Map<number, KeyObject>([[KEY_VERSION, publicKey]]);
  const { rows } = await owner.query<Record<string, string>>(
    `SELECT seq::text AS seq, id::text AS id, operation, outcome, evidence, sector, ${ISO} AS created_at, parent_hash, key_version::text AS key_version, hash, signature FROM receipts ORDER BY receipts.seq`,
  );
  const found: string[] = [];
  let previous = { seq: 0, hash: GENESIS_PARENT_HASH, created_at: "" };
  for (const row of rows.slice(0, limit)) {
    const seq = Number(row.seq);
    if (seq !== previous.seq + 1) found.push(`${seq} sequence_gap`);
    if (row.parent_hash !== previous.hash) found.push(`${seq} parent_mismatch`);
    if (row.created_at < previous.created_at) found.push(`${seq} retrocausation`);
    const hash = sha256Hex(
      canonicalReceiptText({ seq, operation: row.operation, outcome: row.outcome, evidenceJson: row.evidence, sector: row.sector, created_at: row.created_at, parent_hash: row.parent_hash, key_version: Number(row.key_version) }),
    );
    if (hash !== row.hash || row.id !== receiptIdFromHash(hash)) found.push(`${seq} hash_mismatch`);
    const key = keys.get(Number(row.key_version));
    const signed = key !== undefined && /^[0-9a-f]{64}$/.test(row.hash) && verify(null, Buffer.from(row.hash, "hex"), key, Buffer.from(row.signature, "base64"));
    if (!signed) found.push(`${seq} signature_invalid`);
    previous = { seq, hash: row.hash, created_at: row.created_at };
  }
  // The chain head, checked whatever the limit: the last receipt must still have the hash the
  // ledger recorded there (reported once, if the walk has not already reported that receipt).
  const head = (await owner.query<{ seq: string; hash: string; stored: string | null }>(
    "SELECT h.seq::text AS seq, h.hash, r.hash AS stored FROM receipt_chain_head h LEFT JOIN receipts r ON r.seq = h.seq",
  )).rows[0];
  const headFailure = `${head.seq} hash_mismatch`;
  if (head.stored !== null && head.stored !== head.hash && !found.includes(headFailure)) found.push(headFailure);
  return found.sort();
}

const onReceipts = (report: VerificationReport): ChainFailure[] =>
  [...report.chain_breaks, ...report.signature_failures, ...report.retrocausation_violations].filter((f) => f.id !== "");
const kinds = (report: VerificationReport): string[] => onReceipts(report).map((f) => `${f.seq} ${f.kind}`).sort();

const TAMPERING = {
  outcome: "UPDATE receipts SET outcome = 'failed' WHERE seq = $1",
  signature: `UPDATE receipts SET signature = (SELECT signature FROM receipts WHERE seq = $1 % ${CHAIN} + 1) WHERE seq = $1`,
  parent_hash: "UPDATE receipts SET parent_hash = repeat('a', 64) WHERE seq = $1",
  hash: "UPDATE receipts SET hash = repeat('b', 64) WHERE seq = $1",
  id: "UPDATE receipts SET id = md5(seq::text)::uuid WHERE seq = $1",
  older: "UPDATE receipts SET created_at = created_at - interval '1 hour' WHERE seq = $1",
  deleted: "DELETE FROM receipts WHERE seq = $1",
  moved: "UPDATE receipts SET seq = seq + 1000000 WHERE seq = $1",
} as const;

describe("the threads' reports equal a naive walk over the chain", () => {
  test("for any tampering, range size, thread count, limit, with and without the threads' own connections", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          tampering: fc.array(fc.tuple(fc.integer({ min: 1, max: CHAIN }), fc.constantFrom(...(Object.keys(TAMPERING) as Array<keyof typeof TAMPERING>))), { maxLength: 6 }),
          // Mostly small ranges: many boundaries for the tampering to land on.
          pageSize: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 12 }), weight: 3 }, { arbitrary: fc.integer({ min: 13, max: 300 }), weight: 1 }),
          workers: fc.integer({ min: 0, max: 3 }),
          callingThread: fc.boolean(),
          ownConnections: fc.boolean(),
          limit: fc.option(fc.integer({ min: 1, max: CHAIN + 2 }), { nil: undefined }),
        }),
        async ({ tampering, pageSize, workers, callingThread, ownConnections, limit }) => {
          const chain = await freshChain();
          try {
            for (const [seq, what] of tampering) await asOwnerBypassingTriggers(chain.owner, TAMPERING[what], [seq]);
            const report = await verifyChain({
              db: chain.verifier,
              connection: ownConnections ? { connectionString: chain.url() } : undefined,
              pageSize,
              workers,
              callingThread,
              limit,
              saveCheckpoint: false,
            });
            const expected = await naiveFailures(chain.owner, limit);
            expect(kinds(report)).toEqual(expected);
            const stored = Number((await chain.owner.query<{ n: string }>("SELECT count(*) AS n FROM receipts")).rows[0].n);
            expect(report.total_count).toBe(Math.min(stored, limit ?? stored));
            const anyFailure = report.chain_breaks.length + report.signature_failures.length + report.retrocausation_violations.length > 0;
            expect(report.ok).toBe(!anyFailure);
            if (tampering.length === 0) expect(report.ok).toBe(true);
          } finally {
            await chain.close();
          }
        },
      ),
      { numRuns: 20 },
    );
  });

  test("a rewritten last receipt is reported once, by its own hash check, though the chain head disagrees too", async () => {
    const chain = await freshChain();
    try {
      await asOwnerBypassingTriggers(chain.owner, TAMPERING.hash, [CHAIN]);
      const whole = await verifyChain({ db: chain.verifier, pageSize: 13, workers: 0, saveCheckpoint: false });
      expect(kinds(whole)).toEqual([`${CHAIN} hash_mismatch`, `${CHAIN} signature_invalid`]);
      expect(whole.chain_breaks.map((f) => f.detail)).toEqual(["stored hash differs from the hash recomputed from the receipt's fields"]);
      // A walk that stops before the head still hears from the head check.
      const first = await verifyChain({ db: chain.verifier, pageSize: 13, workers: 0, limit: 1, saveCheckpoint: false });
      expect(first.chain_breaks.map((f) => `${f.seq} ${f.detail}`)).toEqual([`${CHAIN} the last receipt's hash differs from the hash recorded in receipt_chain_head`]);
      expect(first.ok).toBe(false);
    } finally {
      await chain.close();
    }
  });
});

describe("ranges of 8 receipts, three threads reading their own", () => {
  let chain: Chain;
  const verifyRanges = () =>
    verifyChain({ db: chain.verifier, connection: { connectionString: chain.url() }, pageSize: 8, workers: 3, saveCheckpoint: false });
  beforeEach(async () => {
    chain = await freshChain();
  });
  afterEach(async () => {
    await chain.close();
  });

  test("the last receipt of one range and the first of the next, each tampered: each named", async () => {
    await asOwnerBypassingTriggers(chain.owner, "UPDATE receipts SET outcome = 'failed' WHERE seq IN (16, 17)");
    const report = await verifyRanges();
    expect(onReceipts(report)).toEqual([
      expect.objectContaining({ seq: 16, kind: "hash_mismatch" }),
      expect.objectContaining({ seq: 17, kind: "hash_mismatch" }),
    ]);
    expect(report).toMatchObject({ ok: false, total_count: CHAIN, verified_count: CHAIN - 2 });
  });

  test("a parent link broken between two ranges, every receipt re-hashed and re-signed with the registered key: only that link fails", async () => {
    // From seq 17 (the first of the third range) on, a rewritten chain whose first link points elsewhere.
    const signer = signerFromPem(pem, KEY_VERSION);
    const { rows } = await chain.owner.query<Record<string, string>>(
      `SELECT seq::text AS seq, operation, outcome, evidence, sector, ${ISO} AS created_at FROM receipts WHERE seq >= 17 ORDER BY receipts.seq`,
    );
    let parent = "c".repeat(64);
    for (const row of rows) {
      const fields = { seq: Number(row.seq), operation: row.operation, outcome: row.outcome, evidenceJson: row.evidence, sector: row.sector, created_at: row.created_at, parent_hash: parent, key_version: KEY_VERSION };
      const hash = sha256Hex(canonicalReceiptText(fields));
      await asOwnerBypassingTriggers(chain.owner, "UPDATE receipts SET id = $2, parent_hash = $3, hash = $4, signature = $5 WHERE seq = $1", [
        fields.seq,
        receiptIdFromHash(hash),
        parent,
        hash,
        signer.sign(hash),
      ]);
      parent = hash;
    }
    await chain.owner.query("UPDATE receipt_chain_head SET hash = $1", [parent]);
    await signer.close();
    const report = await verifyRanges();
    expect(onReceipts(report)).toEqual([expect.objectContaining({ seq: 17, kind: "parent_mismatch", detail: "parent_hash differs from the previous receipt's hash" })]);
    expect(report.chain_breaks).toHaveLength(1);
  });

  test("the receipt that ends a range deleted: the next range's first receipt reports the gap", async () => {
    await asOwnerBypassingTriggers(chain.owner, "DELETE FROM receipts WHERE seq = 24");
    const report = await verifyRanges();
    expect(onReceipts(report).map((f) => [f.seq, f.kind, f.detail])).toEqual([
      [25, "parent_mismatch", "parent_hash differs from the previous receipt's hash"],
      [25, "sequence_gap", "expected seq 24, found 25"],
    ]);
  });
});

describe("the CLI over TLS as the verifier login", () => {
  test("its threads connect as that login over TLS and verify the chain", async () => {
    const chain = await freshChain();
    try {
      const { stdout, stderr, out } = capturedStreams();
      expect(await run(["verify-chain", "--format", "json"], { db: chain.verifier, env: { DATABASE_URL: chain.url() }, stdout, stderr })).toBe(0);
      expect(JSON.parse(out())).toMatchObject({ ok: true, total_count: CHAIN, verified_count: CHAIN });
      // The calling thread's reader and one thread per further core: each its own TLS connection as the login.
      const log = readFileSync(join(pg.socketDir, "server.log"), "utf8");
      const threads = log
        .split("\n")
        .filter((line) => line.includes(`connection authorized: user=${VERIFIER} database=${chain.name} application_name=knhk verify-chain`));
      expect(threads).toHaveLength(availableParallelism());
      for (const line of threads) expect(line).toMatch(/SSL enabled/);
    } finally {
      await chain.close();
    }
  });

  test("with a CA that did not sign the server's certificate the threads cannot connect: the run fails, nothing is reported verified", async () => {
    const chain = await freshChain();
    try {
      const { stdout, stderr, out } = capturedStreams();
      const result = run(["verify-chain", "--format", "json"], { db: chain.verifier, env: { DATABASE_URL: chain.url(otherCa) }, stdout, stderr });
      await expect(result).rejects.toThrow(/certificate/);
      await expect(result).rejects.not.toThrow(PASSWORD);
      expect(out()).toBe("");
      expect(await latestCheckpoint(chain.owner)).toBeNull();
    } finally {
      await chain.close();
    }
  });
});

describe("an interrupted verification", () => {
  test("the threads' connections terminated before they read a range: the run throws, no checkpoint, never verified", async () => {
    const chain = await freshChain();
    try {
      const threads = 2;
      // Before the first range is planned, every thread's connection is cut (once all are open).
      const terminating: PostgresDatabase = {
        ...chain.verifier,
        async query(text, params) {
          if (/row_number\(\) OVER/.test(text)) {
            const open = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = '${chain.name}' AND application_name = 'knhk verify-chain'`;
            while ((await chain.owner.query<{ n: number }>(open)).rows[0].n < threads) await new Promise((resolve) => setImmediate(resolve));
            await chain.owner.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${chain.name}' AND application_name = 'knhk verify-chain'`);
          }
          return chain.verifier.query(text, params);
        },
      };
      await expect(verifyChain({ db: terminating, connection: { connectionString: chain.url() }, workers: threads, pageSize: 16 })).rejects.toThrow(
        /verifier thread: reading receipts \d+\.\.\d+ failed: /,
      );
      expect(await latestCheckpoint(chain.owner)).toBeNull();
    } finally {
      await chain.close();
    }
  });
});

test("a connection string that is no postgres URL is refused without repeating it", async () => {
  const chain = await freshChain();
  try {
    await expect(verifyChain({ db: chain.verifier, connection: { connectionString: `mysql://u:${PASSWORD}@h/db` } })).rejects.toThrow(
      "connection.connectionString: must be a postgres:// or postgresql:// URL",
    );
    await expect(verifyChain({ db: chain.verifier, connection: { connectionString: `mysql://u:${PASSWORD}@h/db` } })).rejects.not.toThrow(PASSWORD);
  } finally {
    await chain.close();
  }
});

// The signing key's public half, as registered (a sanity check of the fixture).
test("the fixture's chain is signed with the registered key", async () => {
  const chain = await freshChain();
  try {
    const { rows } = await chain.owner.query<{ public_key: string }>("SELECT public_key FROM receipt_signing_keys WHERE key_version = $1", [KEY_VERSION]);
    expect(rows[0].public_key).toBe(rawPublicKey(publicKey));
    expect(await naiveFailures(chain.owner)).toEqual([]);
  } finally {
    await chain.close();
  }
});
