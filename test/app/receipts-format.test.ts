/**
 * The receipt format (RFC 8785 canonical JSON, SHA-256, ed25519), without a database.
 */
import canonicalize from "canonicalize";
import { createHash, generateKeyPairSync, verify } from "node:crypto";
import { createPostgresDatabase } from "../../app/src/db/postgres";
import {
  canonicalReceiptText,
  createLedger,
  receiptIdFromHash,
  signerFromPem,
  validateReceiptInput,
} from "../../app/src/receipts";
import { canonicalEvidence } from "../../app/src/receipts/canonical";
import { publicKeyFromRaw } from "../../app/src/receipts/keys";
import { makeInlineVerifier, type VerifyRow } from "../../app/src/receipts/verify-core";
import { freePort } from "../support/ports";

const awkwardEvidence = [
  {},
  { b: 1, a: [3, 2, { z: null, y: true }], "": "empty key" },
  { unicode: "é€😀\u2028\u2029", quote: 'a"b\\c', control: "\u0001\n\t", lone: "\ud800" },
  { numbers: [0, -0, 1e21, 1e-7, 123.456, -1.5e-10, 9007199254740993, 0.1 + 0.2] },
  { "€": 1, a: 2, "\u0080": 3, A: 4, "😀": 5, "\uffff": 6 },
  { nested: { deep: { deeper: [[], {}, [null]] } }, when: new Date(0) },
];

describe("canonical receipt text", () => {
  test.each(awkwardEvidence.map((e, i) => [i, e]))("evidence #%s: equals RFC 8785 canonicalize() of the whole receipt", (_i, evidence) => {
    const fields = {
      seq: 42,
      operation: "mape_k.monitor",
      outcome: "partial_success",
      sector: "sector \"x\" é",
      created_at: "2026-11-27T23:28:46.123Z",
      parent_hash: "ab".repeat(32),
      key_version: 3,
    };
    const evidenceJson = canonicalEvidence(evidence);
    const fast = canonicalReceiptText({ ...fields, evidenceJson });
    expect(fast).toBe(canonicalize({ ...fields, evidence: JSON.parse(evidenceJson) }));
    expect(fast).toBe(canonicalize({ ...fields, evidence }));
  });

  test("the worker-thread verifier builds the same text: a correct receipt passes, any change fails", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const signer = signerFromPem(privateKey.export({ format: "pem", type: "pkcs8" }).toString(), 7);
    const evidenceJson = canonicalEvidence(awkwardEvidence[2]);
    const fields = { seq: 9, operation: "op", outcome: "success", evidenceJson, sector: "s", created_at: "2026-01-01T00:00:00.000Z", parent_hash: "0".repeat(64), key_version: 7 };
    const hash = createHash("sha256").update(canonicalReceiptText(fields)).digest("hex");
    const signature = signer.sign(hash);
    expect(verify(null, Buffer.from(hash, "hex"), publicKey, Buffer.from(signature, "base64"))).toBe(true);
    const row: VerifyRow = { ...fields, evidence: evidenceJson, id: receiptIdFromHash(hash), hash, signature };
    const check = makeInlineVerifier([[7, signer.publicKey]]);
    expect(check([row])).toEqual([]);
    expect(check([{ ...row, sector: "t" }])).toEqual([expect.objectContaining({ index: 0, kind: "hash_mismatch" })]);
    expect(check([{ ...row, key_version: 8 }]).map((f) => f.kind).sort()).toEqual(["hash_mismatch", "signature_invalid"]);
    expect(check([{ ...row, signature: signer.sign("1".repeat(64)) }])).toEqual([expect.objectContaining({ kind: "signature_invalid" })]);
    expect(check([{ ...row, id: receiptIdFromHash("f".repeat(64)) }])).toEqual([
      expect.objectContaining({ kind: "hash_mismatch", detail: "id does not match the receipt's hash" }),
    ]);
    expect(publicKeyFromRaw(signer.publicKey).export({ format: "jwk" }).x).toBe(publicKey.export({ format: "jwk" }).x);
  });

  test("id is the first 128 bits of the hash in UUID form", () => {
    expect(receiptIdFromHash("0123456789abcdef0123456789abcdef" + "f".repeat(32))).toBe("01234567-89ab-cdef-0123-456789abcdef");
  });

  test.each([
    [{ operation: "x", outcome: "success", evidence: { f: () => 1 }, sector: "s" }, "evidence"],
    [{ operation: "x", outcome: "success", evidence: { n: Infinity }, sector: "s" }, "evidence"],
    [{ operation: "x", outcome: "success", evidence: { n: BigInt(1) }, sector: "s" }, "evidence"],
    [{ operation: "x", outcome: "success", evidence: null, sector: "s" }, "evidence"],
    [{ operation: "x".repeat(129), outcome: "success", evidence: {}, sector: "s" }, "operation"],
    [{ operation: "x", outcome: "", evidence: {}, sector: "s" }, "outcome"],
    [{ operation: "x", outcome: "success", evidence: {}, sector: 5 }, "sector"],
  ])("bad input %# names %s", (input, field) => {
    expect(() => validateReceiptInput(input as never)).toThrow(new RegExp(`^${field}: `));
  });
});

describe("ledger without a reachable database", () => {
  test("appends reject with the connection error instead of hanging, and close() returns", async () => {
    const port = await freePort(); // nothing listens there
    const db = createPostgresDatabase({ connectionString: `postgres://knhk@127.0.0.1:${port}/knhk`, connectionTimeoutMillis: 2000 });
    const signer = signerFromPem(generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString(), 1);
    const ledger = createLedger({ db, signer });
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => ledger.append({ operation: "x", outcome: "success", evidence: { i }, sector: "s" })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(5).fill("rejected"));
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/ECONNREFUSED/);
    await ledger.close();
    await expect(ledger.append({ operation: "x", outcome: "success", evidence: {}, sector: "s" })).rejects.toThrow(/receipt ledger is closed/);
    await db.close();
  });
});
