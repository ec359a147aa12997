/**
 * Per-receipt checks as plain JavaScript source, so the same code runs inside worker threads
 * (spawned with `eval`, which works the same under tsx, ts-jest and compiled output) and inline in
 * the calling thread.
 *
 * A range of receipts (consecutive in seq order) is checked as a whole: every receipt's canonical
 * text rebuilt from its stored fields, its SHA-256 recomputed and compared with the stored hash,
 * its id with the hash, its ed25519 signature with the key of its key_version, and the links
 * between neighbours in the range (seq + 1, parent_hash = previous hash, created_at not older).
 * The first receipt's link to whatever precedes the range is left to the caller, who has it.
 *
 * The canonical text is built exactly like canonical.ts `canonicalReceiptText` (receipts-format
 * holds the two to RFC 8785; verify-chain-workers holds this one to canonical.ts by property).
 */

/** The columns a range is read with, in the order of a row array (RangeRow). */
export const RANGE_COLUMNS = [
  "seq",
  "id",
  "operation",
  "outcome",
  "evidence",
  "sector",
  "created_at",
  "parent_hash",
  "key_version",
  "hash",
  "signature",
] as const;

/** created_at as hashed: ISO 8601 UTC with milliseconds. */
export const ISO_UTC = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The receipts with from < seq <= to, in seq order, as RANGE_COLUMNS ($1 = from, $2 = to). */
export const SELECT_RANGE =
  `SELECT seq, id::text AS id, operation, outcome, evidence, sector, ${ISO_UTC} AS created_at, ` +
  "parent_hash, key_version, hash, signature FROM receipts WHERE seq > $1::bigint AND seq <= $2::bigint ORDER BY seq";

/** A receipt as RANGE_COLUMNS, every field as PostgreSQL's text output. */
export type RangeRow = string[];

/** What a range verifier needs besides the rows; plain data, so it can go to a thread. */
export interface RangeConfig {
  /** Public keys signatures are checked with: [key_version, raw 32-byte key in base64]. */
  readonly keys: Array<[number, string]>;
  /** Failures every receipt of a key_version gets (signature_invalid), e.g. an untrusted registrar. */
  readonly keyProblems: Array<[number, string[]]>;
  /** With keys from a trusted source: its name; a key_version absent from keyProblems and keys is not in it. */
  readonly missingKeySource: string | null;
}

export interface RangeFailure {
  readonly seq: number;
  readonly id: string;
  readonly kind: "hash_mismatch" | "signature_invalid" | "sequence_gap" | "parent_mismatch" | "retrocausation";
  readonly detail: string;
}

export interface RangeResult {
  readonly count: number;
  /** The first receipt: [seq, id, parent_hash, created_at], for the link to the range before. */
  readonly first: [number, string, string, string] | null;
  /** The last receipt: [seq, hash, created_at], for the link to the range after. */
  readonly last: [number, string, string] | null;
  /** In row order; within a row: links, key problems, then hash and signature. */
  readonly failures: RangeFailure[];
}

export type RangeVerifier = (rows: RangeRow[]) => RangeResult;

/** `(crypto, config: RangeConfig) => { verifyRange: RangeVerifier, checkRow }` */
export const VERIFY_CORE_SOURCE = String.raw`(function makeRangeVerifier(crypto, config) {
  var keys = new Map();
  for (var i = 0; i < config.keys.length; i++) {
    var raw = Buffer.from(config.keys[i][1], "base64").toString("base64url");
    keys.set(Number(config.keys[i][0]), crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw }, format: "jwk" }));
  }
  var problems = new Map(config.keyProblems);
  var NONE = [];
  var HEX64 = /^[0-9a-f]{64}$/;
  // crypto.hash (Node >= 20.12) is a one-shot digest without a Hash object per receipt.
  var oneShot = typeof crypto.hash === "function";
  function idFromHash(h) {
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20, 32);
  }
  function problemsOf(version) {
    var p = problems.get(version);
    if (p !== undefined) return p;
    if (config.missingKeySource === null) return NONE;
    p = ["key_version " + version + " is not in " + config.missingKeySource];
    problems.set(version, p);
    return p;
  }
  // r: [seq, id, operation, outcome, evidence, sector, created_at, parent_hash, key_version, hash, signature]
  function checkRow(r, seq, fail) {
    var version = Number(r[8]);
    var text = '{"created_at":' + JSON.stringify(r[6]) + ',"evidence":' + r[4] +
      ',"key_version":' + version + ',"operation":' + JSON.stringify(r[2]) +
      ',"outcome":' + JSON.stringify(r[3]) + ',"parent_hash":' + JSON.stringify(r[7]) +
      ',"sector":' + JSON.stringify(r[5]) + ',"seq":' + String(r[0]) + "}";
    var stored = r[9];
    var digest = oneShot ? crypto.hash("sha256", text, "buffer") : crypto.createHash("sha256").update(text, "utf8").digest();
    // The signed message is the stored hash's bytes: the digest itself when the two agree.
    var message = null;
    if (digest.toString("hex") === stored) {
      message = digest;
      if (r[1] !== idFromHash(stored)) fail(seq, r[1], "hash_mismatch", "id does not match the receipt's hash");
    } else {
      fail(seq, r[1], "hash_mismatch", "stored hash differs from the hash recomputed from the receipt's fields");
      if (HEX64.test(stored)) message = Buffer.from(stored, "hex");
    }
    var key = keys.get(version);
    if (!key) {
      fail(seq, r[1], "signature_invalid", "unknown key_version " + version);
      return;
    }
    var ok = false;
    if (message !== null) {
      try {
        ok = crypto.verify(null, message, key, Buffer.from(r[10], "base64"));
      } catch (e) {
        ok = false;
      }
    }
    if (!ok) fail(seq, r[1], "signature_invalid", "signature does not verify with key_version " + version);
  }
  function verifyRange(rows) {
    var failures = [];
    function fail(seq, id, kind, detail) {
      failures.push({ seq: seq, id: id, kind: kind, detail: detail });
    }
    var prevSeq = 0, prevHash = "", prevCreated = "";
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var seq = Number(r[0]);
      if (i > 0) {
        if (seq !== prevSeq + 1) fail(seq, r[1], "sequence_gap", "expected seq " + (prevSeq + 1) + ", found " + seq);
        if (r[7] !== prevHash) fail(seq, r[1], "parent_mismatch", "parent_hash differs from the previous receipt's hash");
        if (r[6] < prevCreated) {
          fail(seq, r[1], "retrocausation", "created_at " + r[6] + " is older than its parent's " + prevCreated);
        }
      }
      var keyProblems = problemsOf(Number(r[8]));
      for (var p = 0; p < keyProblems.length; p++) fail(seq, r[1], "signature_invalid", keyProblems[p]);
      checkRow(r, seq, fail);
      prevSeq = seq;
      prevHash = r[9];
      prevCreated = r[6];
    }
    var n = rows.length;
    return {
      count: n,
      first: n ? [Number(rows[0][0]), rows[0][1], rows[0][7], rows[0][6]] : null,
      last: n ? [Number(rows[n - 1][0]), rows[n - 1][9], rows[n - 1][6]] : null,
      failures: failures,
    };
  }
  return { verifyRange: verifyRange, checkRow: checkRow };
})`;

interface CoreFunctions {
  verifyRange: RangeVerifier;
  checkRow(row: RangeRow, seq: number, fail: (seq: number, id: string, kind: RangeFailure["kind"], detail: string) => void): void;
}

function makeCore(config: RangeConfig): CoreFunctions {
  // Indirect eval: the source is a constant of this module, not input.
  const make = (0, eval)(VERIFY_CORE_SOURCE) as (crypto: unknown, config: RangeConfig) => CoreFunctions;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return make(require("node:crypto"), config);
}

export function makeInlineRangeVerifier(config: RangeConfig): RangeVerifier {
  return makeCore(config).verifyRange;
}

/** A row as any driver returns it (numbers or bigint strings for seq and key_version) as RangeRow. */
export function toRangeRow(row: Record<(typeof RANGE_COLUMNS)[number], unknown>): RangeRow {
  return RANGE_COLUMNS.map((column) => String(row[column]));
}

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

/** Hash, id and signature of each row on its own (no links), in the calling thread. */
export function makeInlineVerifier(keyring: Array<[number, string]>): PageVerifier {
  const core = makeCore({ keys: keyring, keyProblems: [], missingKeySource: null });
  return (rows) => {
    const failures: RowFailure[] = [];
    rows.forEach((row, index) =>
      core.checkRow(toRangeRow(row), Number(row.seq), (_seq, _id, kind, detail) => failures.push({ index, kind: kind as RowFailure["kind"], detail })),
    );
    return failures;
  };
}
