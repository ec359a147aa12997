/**
 * Per-receipt checks (hash recomputation, id derivation, ed25519 signature) as plain JavaScript
 * source, so the same code runs inside worker threads (spawned with `eval`, which works the same
 * under tsx, ts-jest and compiled output) and inline in the calling thread.
 *
 * The canonical text is built exactly like canonical.ts `canonicalReceiptText` (a test holds the
 * two to RFC 8785 via the canonicalize library).
 */

/** A receipt as fetched for verification: created_at already in ISO form, evidence as stored text. */
export interface VerifyRow {
  seq: string | number;
  id: string;
  operation: string;
  outcome: string;
  evidence: string;
  sector: string;
  created_at: string;
  parent_hash: string;
  key_version: number | string;
  hash: string;
  signature: string;
}

export interface RowFailure {
  /** Index of the row within the page. */
  readonly index: number;
  readonly kind: "hash_mismatch" | "signature_invalid";
  readonly detail: string;
}

export type PageVerifier = (rows: VerifyRow[]) => RowFailure[];

/** `(crypto, keyring: [version, rawPublicKeyBase64][]) => PageVerifier` */
export const VERIFY_CORE_SOURCE = String.raw`(function makePageVerifier(crypto, keyring) {
  var keys = new Map();
  for (var i = 0; i < keyring.length; i++) {
    var raw = Buffer.from(keyring[i][1], "base64").toString("base64url");
    keys.set(Number(keyring[i][0]), crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw }, format: "jwk" }));
  }
  var HEX64 = /^[0-9a-f]{64}$/;
  // crypto.hash (Node >= 20.12) is a one-shot digest without a Hash object per receipt.
  var oneShot = typeof crypto.hash === "function";
  function idFromHash(h) {
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20, 32);
  }
  return function verifyPage(rows) {
    var failures = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var text = '{"created_at":' + JSON.stringify(r.created_at) + ',"evidence":' + r.evidence +
        ',"key_version":' + Number(r.key_version) + ',"operation":' + JSON.stringify(r.operation) +
        ',"outcome":' + JSON.stringify(r.outcome) + ',"parent_hash":' + JSON.stringify(r.parent_hash) +
        ',"sector":' + JSON.stringify(r.sector) + ',"seq":' + String(r.seq) + "}";
      var recomputed = oneShot ? crypto.hash("sha256", text, "hex") : crypto.createHash("sha256").update(text, "utf8").digest("hex");
      if (recomputed !== r.hash) {
        failures.push({ index: i, kind: "hash_mismatch", detail: "stored hash differs from the hash recomputed from the receipt's fields" });
      } else if (r.id !== idFromHash(r.hash)) {
        failures.push({ index: i, kind: "hash_mismatch", detail: "id does not match the receipt's hash" });
      }
      var key = keys.get(Number(r.key_version));
      if (!key) {
        failures.push({ index: i, kind: "signature_invalid", detail: "unknown key_version " + r.key_version });
        continue;
      }
      var ok = false;
      if (HEX64.test(r.hash)) {
        try {
          ok = crypto.verify(null, Buffer.from(r.hash, "hex"), key, Buffer.from(r.signature, "base64"));
        } catch (e) {
          ok = false;
        }
      }
      if (!ok) {
        failures.push({ index: i, kind: "signature_invalid", detail: "signature does not verify with key_version " + r.key_version });
      }
    }
    return failures;
  };
})`;

export const VERIFY_WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const verifyPage = ${VERIFY_CORE_SOURCE}(require("node:crypto"), workerData.keyring);
parentPort.on("message", (message) => {
  try {
    parentPort.postMessage({ id: message.id, failures: verifyPage(message.rows) });
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: String(error && error.stack || error) });
  }
});
`;

export function makeInlineVerifier(keyring: Array<[number, string]>): PageVerifier {
  // Indirect eval: the source is a constant of this module, not input.
  const make = (0, eval)(VERIFY_CORE_SOURCE) as (crypto: unknown, keyring: Array<[number, string]>) => PageVerifier;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return make(require("node:crypto"), keyring);
}
