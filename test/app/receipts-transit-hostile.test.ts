/**
 * A Vault that answers wrongly never gets a receipt stored (issue 17, defect 6). A tiny fake
 * transit server (in this process, for the malformed answers a real OpenBao never gives) serves
 * a genuine ed25519 public key and then: another key's signatures, reordered or missing items,
 * another version, item errors, non-JSON, HTTP 500, an endless body, no answer at all. Each
 * append fails with SigningUnavailableError, nothing is stored, and once the server answers
 * honestly the chain continues and verifies. Property tests hold the parsers (sign and key
 * answers, the settings, the keys file, the version choice) to their contracts on hostile input.
 */
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { createLedger, loadSigner, registerSigningKey, SigningUnavailableError, verifyChain, type Signer } from "../../app/src/receipts";
import { rawPublicKey } from "../../app/src/receipts/keys";
import { exportTrustedKeys, parseTrustedKeys, TrustedKeysError } from "../../app/src/receipts/trusted-keys";
import {
  chooseSigningVersion,
  parseSignAnswer,
  parseTransitKey,
  TRANSIT_ENV,
  TransitConfigError,
  transitSettingsFromEnv,
  type TransitKeyInfo,
} from "../../app/src/receipts/vault-transit";
import { VerifyPool } from "../../app/src/receipts/verify-pool";
import { startLedgerPostgres, type LedgerPostgres } from "./receipts-support";
import { ledgerDatabase, type LedgerDatabase } from "./transit-support";

jest.setTimeout(120_000);

type Mode =
  | "honest"
  | "other-key"
  | "reordered"
  | "missing-item"
  | "other-version"
  | "item-error"
  | "not-json"
  | "http-500"
  | "endless"
  | "silent";

interface FakeTransit {
  readonly addr: string;
  mode: Mode;
  signRequests: number;
  close(): Promise<void>;
}

const KEY = "knhk-receipts";

async function startFakeTransit(genuine: KeyObject, publicKey: string): Promise<FakeTransit> {
  const other = generateKeyPairSync("ed25519").privateKey;
  const pending = new Set<ServerResponse>();
  const fake: { mode: Mode; signRequests: number } = { mode: "honest", signRequests: 0 };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "GET" && req.url === `/v1/transit/keys/${KEY}`) {
        return json(res, 200, { data: { type: "ed25519", latest_version: 1, min_encryption_version: 0, keys: { "1": { public_key: publicKey } } } });
      }
      if (req.method !== "POST" || req.url !== `/v1/transit/sign/${KEY}`) return json(res, 404, { errors: ["no handler"] });
      fake.signRequests++;
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { batch_input: { input: string }[]; key_version: number };
      const signWith = (key: KeyObject, version: number) => (item: { input: string }) => ({
        signature: `vault:v${version}:${sign(null, Buffer.from(item.input, "base64"), key).toString("base64")}`,
        key_version: version,
      });
      const honest = body.batch_input.map(signWith(genuine, 1));
      switch (fake.mode) {
        case "honest":
          return json(res, 200, { data: { batch_results: honest } });
        case "other-key":
          return json(res, 200, { data: { batch_results: body.batch_input.map(signWith(other, 1)) } });
        case "reordered":
          return json(res, 200, { data: { batch_results: [...honest].reverse() } });
        case "missing-item":
          return json(res, 200, { data: { batch_results: honest.slice(1) } });
        case "other-version":
          return json(res, 200, { data: { batch_results: body.batch_input.map(signWith(genuine, 2)) } });
        case "item-error":
          return json(res, 200, { data: { batch_results: honest.map((r, i) => (i === 0 ? { error: "unable to sign\u0000\u001b[31m", key_version: 0 } : r)) } });
        case "not-json":
          res.writeHead(200, { "content-type": "application/json" });
          return res.end("<html>proxy error</html>");
        case "http-500":
          return json(res, 500, { errors: ["internal error", "storage unavailable"] });
        case "endless": {
          res.writeHead(200, { "content-type": "application/json" });
          const block = Buffer.alloc(64 * 1024, 0x20);
          const pump = () => {
            while (!res.destroyed && res.write(block));
            if (!res.destroyed) res.once("drain", pump);
          };
          res.write('{"data":{"batch_results":[');
          return pump();
        }
        case "silent":
          pending.add(res);
          return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    addr: `http://127.0.0.1:${port}`,
    async close() {
      for (const res of pending) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

describe("a hostile transit server", () => {
  let pg: LedgerPostgres;
  let db: LedgerDatabase;
  let fake: FakeTransit;
  let signer: Signer;
  const { privateKey, publicKey: publicKeyObject } = generateKeyPairSync("ed25519");
  const publicKey = rawPublicKey(publicKeyObject);

  beforeAll(async () => {
    pg = await startLedgerPostgres();
    db = await ledgerDatabase(pg);
    fake = await startFakeTransit(privateKey, publicKey);
    await registerSigningKey(db.owner, { keyVersion: 1, publicKey, ephemeral: false });
    const env = {
      [TRANSIT_ENV.addr]: fake.addr,
      [TRANSIT_ENV.key]: KEY,
      [TRANSIT_ENV.timeoutMs]: "500",
      [TRANSIT_ENV.startupWaitSeconds]: "0",
    };
    signer = await loadSigner({ db: db.service, env, log: () => undefined });
  });
  afterAll(async () => {
    await signer?.close();
    await fake?.close();
    await db?.close();
    await pg?.close();
  });

  const stored = async () => (await db.owner.query<{ n: string; head: string }>("SELECT (SELECT count(*) FROM receipts) AS n, (SELECT seq FROM receipt_chain_head) AS head")).rows[0];

  test.each<[Mode, RegExp]>([
    ["other-key", /the signature of item 0 does not verify with the registered public key of version 1; nothing was stored/],
    ["reordered", /the signature of item 0 does not verify/],
    ["missing-item", /unexpected answer \(4 results for 5 inputs\)/],
    ["other-version", /unexpected answer \(item 0 signed with key_version 2, not 1\)/],
    ["item-error", /unexpected answer \(item 0: unable to sign\?\?\[31m\)/],
    ["not-json", /Vault at http:\/\/127\.0\.0\.1:\d+ answered with a body that is not JSON/],
    ["http-500", /answered HTTP 500: internal error; storage unavailable/],
    ["endless", /sent more than 4194304 bytes/],
    ["silent", /did not answer within 500 ms/],
  ])("%s: the append fails, nothing is stored, and the ledger goes on once the answers are honest", async (mode, reason) => {
    const ledger = createLedger({ db: db.service, signer });
    try {
      const before = await stored();
      fake.mode = mode;
      const requests = fake.signRequests;
      const failures = await Promise.all(
        Array.from({ length: 5 }, (_, i) => ledger.append({ operation: "test.hostile", outcome: "success", evidence: { mode, i }, sector: "default" }).catch((e: Error) => e)),
      );
      for (const failure of failures) {
        expect(failure).toBeInstanceOf(SigningUnavailableError);
        expect((failure as Error).message).toMatch(reason);
      }
      expect(fake.signRequests - requests).toBeLessThanOrEqual(2); // not split per receipt
      expect(await stored()).toEqual(before);

      fake.mode = "honest";
      const next = await ledger.append({ operation: "test.hostile", outcome: "success", evidence: { mode, after: true }, sector: "default" });
      expect(next.seq).toBe(Number(before.head) + 1);
    } finally {
      fake.mode = "honest";
      await ledger.close();
    }
    expect((await verifyChain({ db: db.service, trustedKeys: new Map([[1, publicKey]]) })).ok).toBe(true);
  });
});

describe("VerifyPool (the local check of Vault's signatures)", () => {
  test("finds the first signature that does not verify, in threads or inline, wherever it is", async () => {
    const { privateKey: key, publicKey: pub } = generateKeyPairSync("ed25519");
    const hashes = Array.from({ length: 300 }, (_, i) => Buffer.alloc(32, i % 251).toString("hex").replace(/^../, (i % 256).toString(16).padStart(2, "0")));
    const good = hashes.map((h) => sign(null, Buffer.from(h, "hex"), key).toString("base64"));
    for (const threads of [1, 3]) {
      const pool = new VerifyPool(threads);
      try {
        expect(await pool.firstInvalid(pub, hashes, good)).toBe(-1);
        for (const bad of [0, 73, 150, 299]) {
          const signatures = [...good];
          signatures[bad] = good[(bad + 1) % good.length];
          expect(await pool.firstInvalid(pub, hashes, signatures)).toBe(bad);
        }
        expect(await pool.firstInvalid(pub, hashes.slice(0, 5), [good[1], ...good.slice(1, 5)])).toBe(0);
      } finally {
        await pool.close();
      }
    }
  });
});

// ---- parsers on hostile input ----

const b64 = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((a) => Buffer.from(a).toString("base64"));
const validSignAnswer = (count: number, version: number) =>
  fc.array(b64(64), { minLength: count, maxLength: count }).map((sigs) => ({ data: { batch_results: sigs.map((s) => ({ signature: `vault:v${version}:${s}`, key_version: version })) } }));

describe("parseSignAnswer", () => {
  test("returns exactly `count` raw signatures or throws SigningUnavailableError, for any JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 5 }), (body, count, version) => {
        try {
          const sigs = parseSignAnswer(body, count, version);
          expect(sigs).toHaveLength(count);
          for (const s of sigs) expect(Buffer.from(s, "base64")).toHaveLength(64);
        } catch (error) {
          expect(error).toBeInstanceOf(SigningUnavailableError);
        }
      }),
      { numRuns: 500 },
    );
  });

  test("accepts a well-formed answer and refuses it with any one item changed", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((n) => fc.tuple(fc.constant(n), validSignAnswer(n, 3), fc.nat({ max: n - 1 }), fc.constantFrom("version", "prefix", "error", "truncate", "drop", "keyVersion"))),
        ([n, answer, at, change]) => {
          expect(parseSignAnswer(answer, n, 3)).toHaveLength(n);
          const results = answer.data.batch_results.map((r) => ({ ...r })) as Record<string, unknown>[];
          const item = results[at];
          if (change === "version") item.signature = String(item.signature).replace("vault:v3:", "vault:v4:");
          if (change === "prefix") item.signature = String(item.signature).replace("vault:v3:", "");
          if (change === "error") item.error = "permission denied";
          if (change === "truncate") item.signature = String(item.signature).slice(0, -4);
          if (change === "drop") results.splice(at, 1);
          if (change === "keyVersion") item.key_version = 2;
          expect(() => parseSignAnswer({ data: { batch_results: results } }, n, 3)).toThrow(SigningUnavailableError);
        },
      ),
    );
  });
});

describe("parseTransitKey", () => {
  test("any JSON: a consistent key description or SigningUnavailableError", () => {
    const keyish = fc.record({
      data: fc.record({
        type: fc.constantFrom("ed25519", "rsa-2048", 7),
        latest_version: fc.oneof(fc.integer({ min: -2, max: 4 }), fc.string()),
        min_encryption_version: fc.option(fc.integer({ min: -1, max: 3 }), { nil: undefined }),
        keys: fc.dictionary(fc.oneof(fc.constantFrom("1", "2", "3", "0", "01", "x"), fc.string()), fc.record({ public_key: fc.oneof(b64(32), b64(31), fc.string()) })),
      }),
    });
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), keyish), (body) => {
        let info: TransitKeyInfo;
        try {
          info = parseTransitKey(body, "transit/k");
        } catch (error) {
          expect(error).toBeInstanceOf(SigningUnavailableError);
          return;
        }
        expect(info.keys.has(info.latestVersion)).toBe(true);
        for (const [version, key] of info.keys) {
          expect(Number.isInteger(version) && version >= 1 && version <= info.latestVersion).toBe(true);
          expect(Buffer.from(key, "base64")).toHaveLength(32);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("chooseSigningVersion", () => {
  test("signs with the newest transit version registered with the same key; newer unregistered ones are reported, never used", () => {
    const keyOf = (v: number, variant: number) => Buffer.alloc(32, v * 7 + variant).toString("base64");
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 8 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 10 }), fc.constantFrom(0, 1)), { maxLength: 10 }),
        (latest, minEncryption, registeredList) => {
          const keys = new Map(Array.from({ length: latest }, (_, i) => [i + 1, keyOf(i + 1, 0)] as [number, string]));
          const registered = new Map(registeredList.map(([v, variant]) => [v, keyOf(v, variant)] as [number, string]));
          const choice = chooseSigningVersion({ latestVersion: latest, minEncryptionVersion: minEncryption, keys }, registered);
          const eligible = [...keys.keys()].filter((v) => registered.get(v) === keys.get(v) && v >= minEncryption);
          expect(choice.version).toBe(eligible.length ? Math.max(...eligible) : undefined);
          if (choice.version !== undefined) expect(choice.publicKey).toBe(keys.get(choice.version));
          expect(choice.unregistered).toEqual([...keys.keys()].filter((v) => !registered.has(v) && (choice.version === undefined || v > choice.version)));
          expect(choice.conflicting).toEqual([...keys.keys()].filter((v) => registered.has(v) && registered.get(v) !== keys.get(v)));
          for (const [v, k] of choice.usable) expect(registered.get(v)).toBe(k);
        },
      ),
    );
  });
});

describe("transitSettingsFromEnv", () => {
  const names = [TRANSIT_ENV.addr, TRANSIT_ENV.mount, TRANSIT_ENV.key, TRANSIT_ENV.timeoutMs, TRANSIT_ENV.refreshSeconds, TRANSIT_ENV.startupWaitSeconds];
  const value = fc.oneof(
    fc.string(),
    fc.constantFrom("http://127.0.0.1:8200", "https://vault.internal:8200/", "http://u:p@h:1", "http://h/v1", "javascript:alert(1)", "transit", "a/b", "../x", "5000", "0", "-1", "1e3"),
  );
  test("any values: settings that hold the rules, or a TransitConfigError naming one of the variables", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...names), value), (env) => {
        try {
          const settings = transitSettingsFromEnv(env);
          if (!settings) {
            expect(names.every((n) => !env[n])).toBe(true);
            return;
          }
          expect(settings.addr).toMatch(/^https?:\/\/[^/@]+$/);
          expect(settings.mount).toMatch(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/);
          expect(settings.key).toMatch(/^[A-Za-z0-9_.-]+$/);
          expect([settings.mount, settings.key].some((p) => p.split("/").some((seg) => seg === "." || seg === ".."))).toBe(false);
          expect(settings.timeoutMs).toBeGreaterThanOrEqual(100);
        } catch (error) {
          expect(error).toBeInstanceOf(TransitConfigError);
          expect(names).toContain((error as TransitConfigError).variable);
          expect((error as Error).message.startsWith(`${(error as TransitConfigError).variable}: `)).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe("trusted keys file", () => {
  test("an exported file parses back to the same keys", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 8 }), fc.array(b64(32), { minLength: 8, maxLength: 8 }), (versions, keys) => {
        const map = new Map(versions.map((v, i) => [v, keys[i]] as [number, string]));
        const text = exportTrustedKeys({ latestVersion: Math.max(...versions), minEncryptionVersion: 0, keys: map }, "vault-transit:transit/k");
        expect(parseTrustedKeys(text, "keys.json").keys).toEqual(map);
      }),
    );
  });

  test("any text: keys that hold the rules, or a TrustedKeysError naming the file and field", () => {
    const doc = fc.record(
      {
        format: fc.constantFrom("knhk.receipt-signing-keys/v1", "v0", 1),
        source: fc.oneof(fc.string(), fc.constant(5)),
        keys: fc.oneof(fc.array(fc.record({ key_version: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.double()), public_key: fc.oneof(b64(32), fc.string()) })), fc.jsonValue()),
        extra: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.string(), doc.map((d) => JSON.stringify(d)), fc.jsonValue().map((j) => JSON.stringify(j))), (text) => {
        try {
          const { keys } = parseTrustedKeys(text, "keys.json");
          for (const [v, k] of keys) {
            expect(Number.isInteger(v) && v >= 1).toBe(true);
            expect(Buffer.from(k, "base64")).toHaveLength(32);
          }
        } catch (error) {
          expect(error).toBeInstanceOf(TrustedKeysError);
          expect((error as Error).message).toMatch(/^keys\.json: \S+/);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
