/**
 * Tampering that `receipts verify-chain` must catch (issue 18, defect 8), each against a fresh
 * chain on a real PostgreSQL 15: a truncated tail, a full truncation, a row forged and signed with
 * a key the service role inserted, a rewrite re-signed with a registered key below a checkpoint;
 * and the one it cannot catch inside the database (an owner who rewrites receipts, head and
 * checkpoints together), which README states. Also: the service role cannot register or change
 * signing keys, and a service running as it refuses to start with an unregistered key.
 */
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../app/src/cli/receipts";
import type { CliContext } from "../../app/src/cli/context";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { migrate } from "../../app/src/db/migrate";
import {
  canonicalReceiptText,
  createLedger,
  loadSigner,
  receiptIdFromHash,
  registerSigningKey,
  sha256Hex,
  signerFromPem,
  SigningKeyRegistrationError,
  verifyChain,
} from "../../app/src/receipts";
import { rawPublicKey } from "../../app/src/receipts/keys";
import { startService } from "../../app/src/server/service";
import { capturedStreams } from "../support/streams";
import { asOwnerBypassingTriggers, ledgerMigrations, startLedgerPostgres, type LedgerPostgres } from "./receipts-support";
import { TEST_SERVICE_SETTINGS } from "./shell/service";

jest.setTimeout(240_000);
let env: LedgerPostgres;
let counter = 0;
const quiet = () => undefined;

beforeAll(async () => {
  env = await startLedgerPostgres();
});
afterAll(async () => {
  await env?.close();
});

interface Chain {
  readonly owner: PostgresDatabase;
  readonly service: PostgresDatabase;
  close(): Promise<void>;
}

/** 250 receipts by the service role; a verification checkpoint at seq 200. */
async function freshChain(): Promise<Chain> {
  const name = `tamper_${++counter}`;
  await env.pg.createDatabase(name);
  const owner = createPostgresDatabase({ connectionString: env.pg.url(name), max: 2 });
  await migrate(owner, ledgerMigrations());
  const service = createPostgresDatabase({ connectionString: env.pg.url(name, "knhk_app"), max: 4 });
  const signer = await loadSigner({ db: service, registrar: owner, env: {}, log: quiet });
  const ledger = createLedger({ db: service, signer });
  const append = (from: number, n: number) =>
    Promise.all(Array.from({ length: n }, (_, i) => ledger.append({ operation: "test.tamper", outcome: "success", evidence: { i: from + i }, sector: "default" })));
  for (let i = 0; i < 200; i += 50) await append(i, 50);
  expect((await verifyChain({ db: service })).to_seq).toBe(200); // stores the checkpoint
  await append(200, 50);
  await ledger.close();
  await signer.close();
  return {
    owner,
    service,
    async close() {
      await service.close();
      await owner.close();
    },
  };
}

async function verifyCli(db: PostgresDatabase, args: string[] = []): Promise<{ code: number; out: string }> {
  const { stdout, stderr, out } = capturedStreams();
  const ctx: CliContext = { db, env: {}, stdout, stderr };
  const code = await run(["verify-chain", ...args], ctx);
  return { code, out: out() };
}

/** Rewrites receipts from seq `from` on (evidence of `from` changed), re-hashed, re-signed with `pem` as `version`, head moved. */
async function rewriteFrom(chain: Chain, from: number, pem: string, version: number): Promise<void> {
  const key = signerFromPem(pem, version);
  const { rows } = await chain.owner.query<{ seq: string; operation: string; outcome: string; evidence: string; sector: string; created_at: string; parent_hash: string }>(
    `SELECT seq, operation, outcome, evidence, sector, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at, parent_hash FROM receipts WHERE seq >= $1 ORDER BY seq`,
    [from],
  );
  let parent = rows[0].parent_hash;
  for (const row of rows) {
    const evidenceJson = Number(row.seq) === from ? '{"i":-1,"rewritten":true}' : row.evidence;
    const fields = { seq: Number(row.seq), operation: row.operation, outcome: row.outcome, evidenceJson, sector: row.sector, created_at: row.created_at, parent_hash: parent, key_version: version };
    const hash = sha256Hex(canonicalReceiptText(fields));
    await asOwnerBypassingTriggers(
      chain.owner,
      "UPDATE receipts SET id = $2, evidence = $3, parent_hash = $4, key_version = $5, hash = $6, signature = $7 WHERE seq = $1",
      [fields.seq, receiptIdFromHash(hash), evidenceJson, parent, version, hash, key.sign(hash)],
    );
    parent = hash;
  }
  await chain.owner.query("UPDATE receipt_chain_head SET hash = $1", [parent]);
  await key.close();
}

const newPem = () => generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();

describe("verify-chain catches", () => {
  test("a truncated tail: receipts missing below receipt_chain_head", async () => {
    const chain = await freshChain();
    try {
      expect((await verifyCli(chain.service)).code).toBe(0);
      await asOwnerBypassingTriggers(chain.owner, "DELETE FROM receipts WHERE seq > 230");
      const { code, out } = await verifyCli(chain.service);
      expect(code).toBe(1);
      expect(out).toMatch(/seq 231 id -: sequence_gap: receipts 231\.\.250 are missing: receipt_chain_head is at seq 250 but the last stored receipt is seq 230 \(truncated\)/);
      expect(out).toMatch(/CHAIN FAILED VERIFICATION/);
    } finally {
      await chain.close();
    }
  });

  test("a truncated tail with the head moved back: receipts missing below the latest checkpoint", async () => {
    const chain = await freshChain();
    try {
      await asOwnerBypassingTriggers(chain.owner, "DELETE FROM receipts WHERE seq > 150");
      await chain.owner.query("UPDATE receipt_chain_head SET seq = 150, hash = (SELECT hash FROM receipts WHERE seq = 150)");
      for (const args of [[], ["--incremental"]]) {
        const { code, out } = await verifyCli(chain.service, args);
        expect(code).toBe(1);
        expect(out).toMatch(/seq 200 id -: sequence_gap: receipt seq 200 is missing, but a verification on \S+ checkpointed it \(truncated\)/);
      }
    } finally {
      await chain.close();
    }
  });

  test("a full truncation, with and without resetting the head", async () => {
    const chain = await freshChain();
    try {
      await asOwnerBypassingTriggers(chain.owner, "DELETE FROM receipts");
      let result = await verifyCli(chain.service);
      expect(result.code).toBe(1);
      expect(result.out).toMatch(/sequence_gap: receipts 1\.\.250 are missing: receipt_chain_head is at seq 250 but the last stored receipt is none \(truncated\)/);
      await chain.owner.query("UPDATE receipt_chain_head SET seq = 0, hash = repeat('0', 64), created_at = 'epoch'");
      result = await verifyCli(chain.service, ["--format", "json"]);
      expect(result.code).toBe(1);
      const report = JSON.parse(result.out);
      expect(report.chain_breaks).toEqual([expect.objectContaining({ seq: 200, kind: "sequence_gap", detail: expect.stringMatching(/checkpointed it \(truncated\)/) })]);
    } finally {
      await chain.close();
    }
  });

  test("a row forged and signed with a key the service role inserted (the privileges before migration 0006)", async () => {
    const chain = await freshChain();
    try {
      // Re-open the hole 0002 had, to show verification does not rely on the privilege alone.
      await chain.owner.query("GRANT INSERT ON receipt_signing_keys TO knhk_service");
      const pem = newPem();
      const forger = signerFromPem(pem, 99);
      await chain.service.query("INSERT INTO receipt_signing_keys (key_version, public_key, registered_by) VALUES (99, $1, 'postgres')", [forger.publicKey]);
      await chain.owner.query("REVOKE INSERT ON receipt_signing_keys FROM knhk_service");
      const registeredBy = await chain.owner.query<{ registered_by: string }>("SELECT registered_by::text AS registered_by FROM receipt_signing_keys WHERE key_version = 99");
      expect(registeredBy.rows[0].registered_by).toBe("knhk_app"); // the trigger, not the inserter, names the registrar

      const head = (await chain.service.query<{ hash: string; created_at: string }>(
        `SELECT hash, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at FROM receipt_chain_head`,
      )).rows[0];
      const fields = { seq: 251, operation: "snapshot.promote", outcome: "success", evidenceJson: '{"forged":true}', sector: "generic", created_at: head.created_at, parent_hash: head.hash, key_version: 99 };
      const hash = sha256Hex(canonicalReceiptText(fields));
      const id = receiptIdFromHash(hash);
      // Everything the service role may do: INSERT the receipt, move the head.
      await chain.service.query(
        "INSERT INTO receipts (seq, id, operation, outcome, evidence, sector, created_at, parent_hash, key_version, hash, signature) VALUES (251, $1, $2, $3, $4, $5, $6, $7, 99, $8, $9)",
        [id, fields.operation, fields.outcome, fields.evidenceJson, fields.sector, fields.created_at, fields.parent_hash, hash, forger.sign(hash)],
      );
      await chain.service.query("UPDATE receipt_chain_head SET seq = 251, hash = $1", [hash]);
      await forger.close();

      const { code, out } = await verifyCli(chain.service);
      expect(code).toBe(1);
      expect(out).toContain(`seq 251 id ${id}: signature_invalid: signed with key_version 99, registered by role knhk_app, which may not register signing keys`);
      expect(out).toMatch(/chain breaks: 0, signature failures: 1, retrocausation: 0/);
    } finally {
      await chain.close();
    }
  });

  test("a rewrite re-signed with a registered key, below a verification checkpoint", async () => {
    const chain = await freshChain();
    try {
      const pem = newPem();
      // The owner may register keys: the forged chain is signed with a trusted key.
      await registerSigningKey(chain.owner, { keyVersion: 40, publicKey: rawPublicKey(createPublicKey(pem)), ephemeral: false });
      await rewriteFrom(chain, 120, pem, 40);
      const { code, out } = await verifyCli(chain.service);
      expect(code).toBe(1);
      expect(out).toMatch(/seq 200 id [0-9a-f-]{36}: hash_mismatch: receipt seq 200 no longer has the hash a verification on \S+ checkpointed \(rewritten\)/);
      // Every link, hash and signature of the rewritten chain is valid: only the checkpoint knows.
      expect(out).toMatch(/chain breaks: 1, signature failures: 0, retrocausation: 0/);
    } finally {
      await chain.close();
    }
  });
});

describe("what a chain inside one database cannot prove", () => {
  test("an owner who rewrites the receipts, the head and the checkpoints, re-signed with a registered key, is not detectable in-database", async () => {
    const chain = await freshChain();
    try {
      const pem = newPem();
      await registerSigningKey(chain.owner, { keyVersion: 41, publicKey: rawPublicKey(createPublicKey(pem)), ephemeral: false });
      await rewriteFrom(chain, 120, pem, 41);
      await chain.owner.query("DELETE FROM receipt_verification_checkpoints");
      const { code, out } = await verifyCli(chain.service);
      // Documented limit, not a pass: README "What verify-chain proves" says an external anchor is needed.
      expect(code).toBe(0);
      expect(out).toMatch(/chain intact/);
      const readme = readFileSync(join(__dirname, "..", "..", "README.md"), "utf8").replace(/\s+/g, " ");
      expect(readme).toMatch(/rewrites receipts, chain head and checkpoints together and re-signs them with a registered key is not detectable/);
    } finally {
      await chain.close();
    }
  });
});

describe("only the owner registers signing keys", () => {
  let chain: Chain;
  beforeAll(async () => {
    chain = await freshChain();
  });
  afterAll(async () => {
    await chain.close();
  });

  test.each([
    ["INSERT", "INSERT INTO receipt_signing_keys (key_version, public_key) VALUES (77, 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=')"],
    ["UPDATE of retired_at", "UPDATE receipt_signing_keys SET retired_at = now()"],
    ["UPDATE of public_key", "UPDATE receipt_signing_keys SET public_key = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='"],
    ["DELETE", "DELETE FROM receipt_signing_keys"],
  ])("%s as the service role is refused", async (_what, sql) => {
    await expect(chain.service.query(sql)).rejects.toThrow(/permission denied/);
  });

  test("the owner may retire a key but not change or delete one", async () => {
    await expect(chain.owner.query("UPDATE receipt_signing_keys SET public_key = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='")).rejects.toThrow(/only retired_at may change/);
    await expect(chain.owner.query("DELETE FROM receipt_signing_keys")).rejects.toThrow(/DELETE is not allowed/);
    expect((await chain.owner.query("UPDATE receipt_signing_keys SET retired_at = now() WHERE retired_at IS NULL")).rowCount).toBeGreaterThan(0);
  });

  test("a service role with an unregistered key refuses to start naming the fix; registered by the owner's CLI, it starts", async () => {
    const pem = newPem();
    const keyEnv = { KNHK_SIGNING_KEY_PEM: pem, KNHK_SIGNING_KEY_VERSION: "60" };
    const refused = loadSigner({ db: chain.service, env: keyEnv, log: quiet });
    await expect(refused).rejects.toThrow(SigningKeyRegistrationError);
    await expect(refused).rejects.toThrow(/signing key version 60 is not registered and role knhk_app may not register signing keys; register it as the database owner: `npm run knhk -- receipts register-key --version N --key-file <pem>`/);
    await expect(loadSigner({ db: chain.service, env: {}, log: quiet })).rejects.toThrow(/no KNHK_SIGNING_KEY_FILE configured, and role knhk_app may not register an ephemeral signing key/);

    const { stdout, stderr, err } = capturedStreams();
    // As the service role the CLI is refused too...
    expect(await run(["register-key", "--version", "60", "--public-key", rawPublicKey(createPublicKey(pem))], { db: chain.service, env: {}, stdout, stderr })).toBe(1);
    expect(err()).toMatch(/role knhk_app may not register signing keys/);
    // ... as the owner it registers the key, and the service role then loads it.
    const owner = capturedStreams();
    expect(await run(["register-key", "--version", "60", "--public-key", rawPublicKey(createPublicKey(pem))], { db: chain.owner, env: {}, stdout: owner.stdout, stderr: owner.stderr })).toBe(0);
    expect(owner.out()).toMatch(/signing key version 60 registered/);
    const signer = await loadSigner({ db: chain.service, env: keyEnv, log: quiet });
    expect(signer.keyVersion).toBe(60);
    await signer.close();
  });

  test("the real service as knhk_app with an unregistered key and no owner identity stops at start with that message", async () => {
    const name = `tamper_service_${++counter}`;
    await env.pg.createDatabase(name);
    const owner = createPostgresDatabase({ connectionString: env.pg.url(name), max: 2 });
    await migrate(owner);
    await owner.close();
    const start = startService(
      {
        DATABASE_URL: env.pg.url(name, "knhk_app"),
        KNHK_MIGRATE_ON_START: "false",
        ...TEST_SERVICE_SETTINGS,
      },
      quiet,
    );
    await expect(start).rejects.toThrow(/role knhk_app may not register an ephemeral signing key; .*receipts register-key/);
  });
});
