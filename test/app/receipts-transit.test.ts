/**
 * Receipts signed through a real OpenBao transit ed25519 key (issue 17, defect 6), on a real
 * PostgreSQL 15 as the service role: start-up refuses an unregistered key naming the fix; the
 * owner registers transit versions with `receipts register-transit-keys`; batches are signed with
 * one request per 256 receipts; receipts verify with the keys published outside the database
 * (Vault, or a keys file exported from it), which also catches a key row a superuser swapped;
 * a rotated version signs only once registered, picked up without a restart, and old receipts
 * still verify; a sealed Vault fails the write cleanly (nothing stored, nothing lost); TLS with a
 * CA file.
 */
import { createPublicKey, generateKeyPairSync, verify as verifySignature } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  canonicalReceiptText,
  createLedger,
  loadSigner,
  receiptIdFromHash,
  sha256Hex,
  signerFromPem,
  SigningUnavailableError,
  verifyChain,
  type Ledger,
  type LedgerOptions,
  type Signer,
} from "../../app/src/receipts";
import { rawPublicKey } from "../../app/src/receipts/keys";
import { openCheckpoint, signCheckpoint } from "../../app/src/receipts/tlog/checkpoint";
import { noteSigner } from "../../app/src/receipts/tlog/checkpoints";
import { readTransitKeys, transitSettingsFromEnv, type TransitSigner } from "../../app/src/receipts/vault-transit";
import { startOpenBao, type TestOpenBao } from "../support/openbao";
import { waitFor } from "../support/ports";
import { asOwnerBypassingTriggers, startLedgerPostgres, type LedgerPostgres } from "./receipts-support";
import { enableTransit, ledgerDatabase, receiptsCli, transitKey, TRANSIT_MOUNT, type LedgerDatabase, type TransitKeyFixture } from "./transit-support";

jest.setTimeout(240_000);

let pg: LedgerPostgres;
let bao: TestOpenBao;

beforeAll(async () => {
  [pg, bao] = await Promise.all([startLedgerPostgres(), startOpenBao({ audit: true })]);
  await enableTransit(bao);
});
afterAll(async () => {
  await bao?.stop();
  await pg?.close();
});

interface Setup {
  readonly key: TransitKeyFixture;
  readonly db: LedgerDatabase;
  readonly logs: string[];
  signer(extra?: Record<string, string>): Promise<TransitSigner>;
  /** A ledger on the service connection, closed with the set-up. */
  ledger(options: Omit<LedgerOptions, "db">): Ledger;
  register(): Promise<{ code: number; out: string; err: string }>;
  close(): Promise<void>;
}

async function setup(): Promise<Setup> {
  const key = await transitKey(bao);
  const db = await ledgerDatabase(pg);
  const logs: string[] = [];
  const signers: Signer[] = [];
  const ledgers: Ledger[] = [];
  return {
    key,
    db,
    logs,
    async signer(extra = {}) {
      const signer = (await loadSigner({ db: db.service, env: key.env(extra), log: (line) => logs.push(line) })) as TransitSigner;
      signers.push(signer);
      return signer;
    },
    ledger(options) {
      const ledger = createLedger({ db: db.service, ...options });
      ledgers.push(ledger);
      return ledger;
    },
    register: () => receiptsCli(db.owner, key.ownerEnv(), ["register-transit-keys"]),
    async close() {
      for (const l of ledgers) await l.close();
      for (const s of signers) await s.close();
      await db.close();
    },
  };
}

const receipt = (i: number) => ({ operation: "test.transit", outcome: "success", evidence: { i }, sector: "default" });
const appendMany = (ledger: Ledger, from: number, n: number) => Promise.all(Array.from({ length: n }, (_, i) => ledger.append(receipt(from + i))));
const counts = async (db: LedgerDatabase) =>
  (await db.owner.query<{ r: string; h: string; o: string }>("SELECT (SELECT count(*) FROM receipts) AS r, (SELECT seq FROM receipt_chain_head) AS h, (SELECT count(*) FROM receipt_outbox) AS o")).rows[0];

/** Sign requests for `key` in OpenBao's audit log. */
function signRequests(key: string): number {
  return readFileSync(bao.auditLog!, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { type: string; request?: { path?: string } })
    .filter((e) => e.type === "request" && e.request?.path === `${TRANSIT_MOUNT}/sign/${key}`).length;
}

async function vaultKeys(key: TransitKeyFixture): Promise<ReadonlyMap<number, string>> {
  return (await readTransitKeys(transitSettingsFromEnv(key.env())!)).keys;
}

describe("start-up and registration", () => {
  test("the service refuses to start until the owner registers a transit version, naming the command; the service role may not register", async () => {
    const s = await setup();
    try {
      await expect(s.signer()).rejects.toThrow(
        new RegExp(`no version of Vault transit key transit/${s.key.name} \\(versions 1\\) is registered in receipt_signing_keys; .*npm run knhk -- receipts register-transit-keys`),
      );
      const asService = await receiptsCli(s.db.service, s.key.ownerEnv(), ["register-transit-keys"]);
      expect(asService.code).toBe(1);
      expect(asService.err).toMatch(/version 1: .*role knhk_app may not register signing keys/);

      const first = await s.register();
      expect(first).toMatchObject({ code: 0, err: "" });
      expect(first.out).toMatch(new RegExp(`vault-transit:transit/${s.key.name} version 1: registered \\([A-Za-z0-9+/]{43}=\\)`));
      expect((await s.register()).out).toMatch(/version 1: already registered/);

      const signer = await s.signer();
      expect(signer.keyVersion).toBe(1);
      expect(signer.publicKey).toBe((await vaultKeys(s.key)).get(1));
      expect(signer.ephemeral).toBe(false);
    } finally {
      await s.close();
    }
  });

  test("transit and a key file are mutually exclusive; bad settings name the variable", async () => {
    const s = await setup();
    try {
      await expect(s.signer({ KNHK_SIGNING_KEY_FILE: "/tmp/key.pem", KNHK_SIGNING_KEY_VERSION: "1" })).rejects.toThrow(
        /KNHK_SIGNING_VAULT_ADDR and KNHK_SIGNING_KEY_FILE, KNHK_SIGNING_KEY_VERSION are both set/,
      );
      await expect(s.signer({ KNHK_SIGNING_TRANSIT_KEY: "" })).rejects.toThrow(/KNHK_SIGNING_TRANSIT_KEY: is required with KNHK_SIGNING_VAULT_ADDR/);
      await expect(s.signer({ KNHK_SIGNING_VAULT_ADDR: "ftp://127.0.0.1:8200" })).rejects.toThrow(/KNHK_SIGNING_VAULT_ADDR: must use http or https/);
      await expect(s.signer({ KNHK_SIGNING_VAULT_TOKEN_FILE: "/nonexistent/token" })).rejects.toThrow(/KNHK_SIGNING_VAULT_TOKEN_FILE: cannot read \/nonexistent\/token \(ENOENT\)/);
      await expect(s.signer({ KNHK_SIGNING_VAULT_CA_FILE: s.key.serviceTokenFile })).rejects.toThrow(/KNHK_SIGNING_VAULT_CA_FILE: is set but KNHK_SIGNING_VAULT_ADDR is not https/);
      // A key of the wrong type is refused before anything is signed.
      await bao.root("POST", `${TRANSIT_MOUNT}/keys/${s.key.name}-aes`, { type: "aes256-gcm96" });
      const rootTokenFile = join(mkdtempSync(join(tmpdir(), "knhk-root-")), "token");
      writeFileSync(rootTokenFile, bao.rootToken);
      await expect(s.signer({ KNHK_SIGNING_TRANSIT_KEY: `${s.key.name}-aes`, KNHK_SIGNING_VAULT_TOKEN_FILE: rootTokenFile })).rejects.toThrow(
        /Vault transit key transit\/.*-aes: unexpected answer \(type is "aes256-gcm96", receipts need ed25519\)/,
      );
    } finally {
      await s.close();
    }
  });
});

describe("signing through transit", () => {
  test("a batch is signed in one request per 256 receipts; the receipts verify with the keys from Vault and from an exported keys file", async () => {
    const s = await setup();
    try {
      expect((await s.register()).code).toBe(0);
      const signer = await s.signer();
      const batches: number[] = [];
      const ledger = s.ledger({ signer, maxBatch: 1000, metrics: { onBatch: (n) => batches.push(n) } });
      const before = signRequests(s.key.name);
      const stored = await appendMany(ledger, 0, 600);
      await ledger.close();
      expect(stored.every((r) => r.key_version === 1)).toBe(true);
      expect(batches.reduce((a, b) => a + b, 0)).toBe(600);
      // Every receipt signed, in as many requests as the batches needed chunks, not one per receipt.
      expect(signRequests(s.key.name) - before).toBe(batches.reduce((sum, n) => sum + Math.ceil(n / 256), 0));
      expect(batches.length).toBeLessThan(600);

      const trusted = await vaultKeys(s.key);
      const report = await verifyChain({ db: s.db.service, trustedKeys: trusted, trustedSource: "Vault" });
      expect(report).toMatchObject({ ok: true, total_count: 600, verified_count: 600 });

      const exported = await receiptsCli(s.db.service, s.key.env(), ["export-transit-keys"]);
      expect(exported.code).toBe(0);
      const file = JSON.parse(exported.out);
      expect(file).toMatchObject({ format: "knhk.receipt-signing-keys/v1", source: `vault-transit:transit/${s.key.name}`, keys: [{ key_version: 1, public_key: trusted.get(1) }] });
      const keysFile = join(mkdtempSync(join(tmpdir(), "knhk-keys-")), "keys.json");
      writeFileSync(keysFile, exported.out);
      const fromFile = await receiptsCli(s.db.service, {}, ["verify-chain", "--trusted-keys", keysFile]);
      expect(fromFile.code).toBe(0);
      expect(fromFile.err).toMatch(/trusting the public keys of keys file .*keys\.json \(vault-transit:transit\/.*\) \(versions 1\)/);
      expect(fromFile.out).toMatch(/verified: +600[\s\S]*chain intact/);
      const fromVault = await receiptsCli(s.db.service, s.key.env(), ["verify-chain", "--trusted-keys-from-vault", "--trusted-keys", keysFile]);
      expect(fromVault.code).toBe(0);
    } finally {
      await s.close();
    }
  });

  test("the token is read from its file per request: a replaced token takes effect at once, and never appears in errors", async () => {
    const s = await setup();
    try {
      expect((await s.register()).code).toBe(0);
      const signer = await s.signer();
      const ledger = s.ledger({ signer });
      await appendMany(ledger, 0, 3);
      const wrong = await bao.createToken([`migration-${s.key.name}`]); // may read keys, may not sign
      writeFileSync(s.key.serviceTokenFile, wrong);
      const refused = await ledger.append(receipt(3)).catch((e: Error) => e);
      expect(refused).toBeInstanceOf(SigningUnavailableError);
      expect((refused as Error).message).toMatch(/HTTP 403 \(the token's policy does not allow it\)/);
      expect((refused as Error).message).not.toContain(wrong);
      expect((refused as Error).message).not.toContain(s.key.serviceToken);
      writeFileSync(s.key.serviceTokenFile, s.key.serviceToken);
      expect((await ledger.append(receipt(4))).seq).toBe(4);
      await ledger.close();
      expect((await verifyChain({ db: s.db.service, trustedKeys: await vaultKeys(s.key) })).ok).toBe(true);
    } finally {
      await s.close();
    }
  });
});

describe("the receipt log's checkpoints through transit", () => {
  test("a checkpoint note signed by the transit key (over the note text, one sign request) opens with the public key Vault publishes, and not with another version's", async () => {
    const s = await setup();
    try {
      expect((await s.register()).code).toBe(0);
      const signer = await s.signer();
      const before = signRequests(s.key.name);
      const note = await signCheckpoint({ origin: "knhk.test/transit", size: 42, root: Buffer.alloc(32, 3) }, noteSigner(signer, "knhk.test/transit"));
      expect(signRequests(s.key.name) - before).toBe(1);
      const published = Buffer.from((await vaultKeys(s.key)).get(1)!, "base64");
      const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: published.toString("base64url") }, format: "jwk" });
      const verifier = { name: "knhk.test/transit", publicKey: published, verify: (m: Buffer, sig: Buffer) => verifySignature(null, m, key, sig) };
      expect(openCheckpoint(note, [verifier])).toEqual({ origin: "knhk.test/transit", size: 42, root: Buffer.alloc(32, 3) });
      // Version 2 exists in transit but is not what signed: the note does not open with it.
      await s.key.rotate();
      const v2 = Buffer.from((await vaultKeys(s.key)).get(2)!, "base64");
      const key2 = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: v2.toString("base64url") }, format: "jwk" });
      expect(() => openCheckpoint(note, [{ name: "knhk.test/transit", publicKey: v2, verify: (m: Buffer, sig: Buffer) => verifySignature(null, m, key2, sig) }])).toThrow(/no signature by a known key/);
      await expect(signer.signMessage(Buffer.from("x"), 9)).rejects.toThrow(/key_version 9 is not a registered version/);
    } finally {
      await s.close();
    }
  });
});

describe("rotation", () => {
  test("a rotated version signs only once registered, picked up without a restart; receipts of both versions verify", async () => {
    const s = await setup();
    try {
      expect((await s.register()).code).toBe(0);
      const signer = await s.signer({ KNHK_SIGNING_TRANSIT_REFRESH_SECONDS: "1" });
      const ledger = s.ledger({ signer });
      await appendMany(ledger, 0, 20);

      await s.key.rotate();
      const choice = await signer.refresh();
      expect(choice).toMatchObject({ version: 1, unregistered: [2] });
      expect(signer.keyVersion).toBe(1);
      expect(s.logs.join("\n")).toMatch(
        new RegExp(`transit key transit/${s.key.name}: transit has versions 2 not registered in receipt_signing_keys; signing with version 1 until they are .*register-transit-keys`),
      );
      const whileUnregistered = await appendMany(ledger, 20, 20);
      expect(whileUnregistered.every((r) => r.key_version === 1)).toBe(true);

      const registered = await s.register();
      expect(registered.out).toMatch(/version 1: already registered\n.*version 2: registered/);
      // The periodic re-check (every second here) moves to version 2; no restart, no explicit refresh.
      await waitFor("the signer to pick up version 2", async () => signer.keyVersion === 2, 30_000, 100);
      expect(s.logs.join("\n")).toMatch(/now signing with version 2 \(was 1\)/);
      const after = await appendMany(ledger, 40, 20);
      expect(after.every((r) => r.key_version === 2)).toBe(true);
      await ledger.close();

      const trusted = await vaultKeys(s.key);
      expect([...trusted.keys()]).toEqual([1, 2]);
      const report = await verifyChain({ db: s.db.service, trustedKeys: trusted });
      expect(report).toMatchObject({ ok: true, total_count: 60 });
      const versions = (await s.db.owner.query<{ key_version: number; n: string }>("SELECT key_version, count(*) AS n FROM receipts GROUP BY 1 ORDER BY 1")).rows;
      expect(versions.map((v) => [v.key_version, Number(v.n)])).toEqual([[1, 40], [2, 20]]);
      // A signer started now picks the newest registered version.
      expect((await s.signer()).keyVersion).toBe(2);
    } finally {
      await s.close();
    }
  });
});

describe("a key row swapped inside the database", () => {
  test("verify-chain trusts the database's keys unless given the published ones, which catch the swap naming seq and key_version", async () => {
    const s = await setup();
    try {
      expect((await s.register()).code).toBe(0);
      const signer = await s.signer();
      const ledger = s.ledger({ signer });
      await appendMany(ledger, 0, 30);
      await ledger.close();
      const keysFile = join(mkdtempSync(join(tmpdir(), "knhk-keys-")), "keys.json");
      writeFileSync(keysFile, (await receiptsCli(s.db.service, s.key.env(), ["export-transit-keys"])).out);

      // A superuser forges seq 30, signs it with a key of its own and puts that key in version 1's row.
      const forgerPem = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
      const forger = signerFromPem(forgerPem, 1);
      const row = (
        await s.db.owner.query<{ parent_hash: string; created_at: string }>(
          `SELECT parent_hash, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at FROM receipts WHERE seq = 30`,
        )
      ).rows[0];
      const evidenceJson = '{"forged":true}';
      const hash = sha256Hex(
        canonicalReceiptText({ seq: 30, operation: "test.transit", outcome: "success", evidenceJson, sector: "default", created_at: row.created_at, parent_hash: row.parent_hash, key_version: 1 }),
      );
      await asOwnerBypassingTriggers(s.db.owner, "UPDATE receipts SET id = $1, evidence = $2, hash = $3, signature = $4 WHERE seq = 30", [
        receiptIdFromHash(hash),
        evidenceJson,
        hash,
        forger.sign(hash),
      ]);
      await s.db.owner.query("UPDATE receipt_chain_head SET hash = $1", [hash]);
      const forgedKey = rawPublicKey(createPublicKey(forgerPem));
      await asOwnerBypassingTriggers(s.db.owner, "UPDATE receipt_signing_keys SET public_key = $1 WHERE key_version = 1", [forgedKey]);
      // The untouched receipts were signed by Vault: re-sign them too, as a thorough forger would.
      const { rows } = await s.db.owner.query<{ seq: string; hash: string }>("SELECT seq, hash FROM receipts WHERE seq < 30");
      for (const r of rows) await asOwnerBypassingTriggers(s.db.owner, "UPDATE receipts SET signature = $1 WHERE seq = $2", [forger.sign(r.hash), r.seq]);
      await forger.close();

      const inside = await receiptsCli(s.db.service, {}, ["verify-chain"]);
      expect(inside.code).toBe(0); // the database alone vouches for the forgery

      for (const args of [["--trusted-keys", keysFile], ["--trusted-keys-from-vault"]]) {
        const outside = await receiptsCli(s.db.service, s.key.env(), ["verify-chain", ...args]);
        expect(outside.code).toBe(1);
        expect(outside.out).toMatch(/seq 30 id [0-9a-f-]+: signature_invalid: key_version 1: receipt_signing_keys holds a different public key than (keys file|Vault transit) .* \(the key row was replaced\)/);
        expect(outside.out).toMatch(/seq 30 id [0-9a-f-]+: signature_invalid: signature does not verify with key_version 1/);
        expect(outside.out).toMatch(/seq 1 id [0-9a-f-]+: signature_invalid: key_version 1: receipt_signing_keys holds a different public key/);
        expect(outside.out).toMatch(/CHAIN FAILED VERIFICATION/);
      }
    } finally {
      await s.close();
    }
  });

  test("a receipt whose key_version the trusted source lacks fails naming both", async () => {
    const s = await setup();
    try {
      expect((await s.register()).code).toBe(0);
      const ledger = s.ledger({ signer: await s.signer() });
      await appendMany(ledger, 0, 5);
      await ledger.close();
      const report = await verifyChain({ db: s.db.service, trustedKeys: new Map([[7, (await vaultKeys(s.key)).get(1)!]]), trustedSource: "keys.json" });
      expect(report.ok).toBe(false);
      expect(report.signature_failures.map((f) => [f.seq, f.detail])).toEqual([1, 2, 3, 4, 5].map((seq) => [seq, "key_version 1 is not in keys.json"]));
    } finally {
      await s.close();
    }
  });
});

describe("Vault unavailable", () => {
  test("sealed: the write fails as 503, the batch is not split or half-stored, the staged receipt stays in the outbox and reaches the chain once Vault is back", async () => {
    const s = await setup();
    try {
      expect((await s.register()).code).toBe(0);
      const transit = await s.signer();
      let signCalls = 0;
      const signer: Signer = {
        get keyVersion() {
          return transit.keyVersion;
        },
        get publicKey() {
          return transit.publicKey;
        },
        ephemeral: false,
        signMany: (hashes, version) => {
          signCalls++;
          return transit.signMany(hashes, version);
        },
        signMessage: (message, version) => transit.signMessage(message, version),
        close: () => transit.close(),
      };
      const ledger = s.ledger({ signer, stagedRetryMs: 200 });
      await appendMany(ledger, 0, 10);
      const before = await counts(s.db);

      await bao.seal();
      let staged;
      try {
        signCalls = 0;
        const failures = await Promise.all(Array.from({ length: 8 }, (_, i) => ledger.append(receipt(100 + i)).catch((e: Error) => e)));
        for (const failure of failures) {
          expect(failure).toBeInstanceOf(SigningUnavailableError);
          expect(failure).toMatchObject({ statusCode: 503, message: expect.stringMatching(/^receipt signing unavailable: .*HTTP 503 \(Vault is sealed or not active\)/) });
        }
        // One batch (two at most, if the first append left alone), never split into per-receipt
        // retries against a Vault that is down (which would be 1 + 2 + 4 + 8 calls).
        expect(signCalls).toBeLessThanOrEqual(2);
        staged = await s.db.service.transaction((tx) => ledger.stage(tx, receipt(200)));
        await expect(ledger.appendStaged(staged)).rejects.toBeInstanceOf(SigningUnavailableError);
        expect(await counts(s.db)).toEqual({ ...before, o: "1" });
      } finally {
        await bao.unseal();
      }
      // The ledger retries its own failed outbox entry once Vault answers again: no restart needed.
      await waitFor("the staged receipt to reach the chain", async () => (await counts(s.db)).o === "0", 30_000, 100);
      expect(await counts(s.db)).toEqual({ r: "11", h: "11", o: "0" });
      const next = await ledger.append(receipt(300));
      expect(next.seq).toBe(12);
      await ledger.close();
      expect(await counts(s.db)).toEqual({ r: "12", h: "12", o: "0" });
      expect((await verifyChain({ db: s.db.service, trustedKeys: await vaultKeys(s.key) })).ok).toBe(true);
    } finally {
      await s.close();
    }
  });

  test("unreachable at start-up: fails at once naming the address, or waits for it within KNHK_SIGNING_VAULT_STARTUP_WAIT_SECONDS", async () => {
    const s = await setup();
    try {
      const closed = "http://127.0.0.1:9"; // discard port: nothing listens
      await expect(s.signer({ KNHK_SIGNING_VAULT_ADDR: closed })).rejects.toThrow(
        /receipt signing unavailable: GET \/v1\/transit\/keys\/.*: Vault at http:\/\/127\.0\.0\.1:9 is unreachable \(ECONNREFUSED\)/,
      );
      await expect(s.signer({ KNHK_SIGNING_VAULT_ADDR: closed, KNHK_SIGNING_VAULT_STARTUP_WAIT_SECONDS: "1" })).rejects.toThrow(/unreachable/);
      expect(s.logs.join("\n")).toMatch(/waiting up to 1 s for Vault transit/);
    } finally {
      await s.close();
    }
  });
});

describe("TLS", () => {
  test("an https Vault is reached with KNHK_SIGNING_VAULT_CA_FILE and refused without it", async () => {
    const tlsBao = await startOpenBao({ tls: true });
    const db = await ledgerDatabase(pg);
    try {
      await enableTransit(tlsBao);
      const key = await transitKey(tlsBao);
      expect((await receiptsCli(db.owner, key.ownerEnv(), ["register-transit-keys"])).code).toBe(0);
      const signer = await loadSigner({ db: db.service, env: key.env(), log: () => undefined });
      const ledger = createLedger({ db: db.service, signer });
      await appendMany(ledger, 0, 5);
      await ledger.close();
      await signer.close();
      expect((await verifyChain({ db: db.service, trustedKeys: await vaultKeys(key) })).ok).toBe(true);

      const withoutCa = key.env();
      delete (withoutCa as Record<string, string>).KNHK_SIGNING_VAULT_CA_FILE;
      await expect(loadSigner({ db: db.service, env: withoutCa, log: () => undefined })).rejects.toThrow(/is unreachable \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT)\)/);
    } finally {
      await db.close();
      await tlsBao.stop();
    }
  });
});
