/**
 * The receipt format: RFC 8785 canonical JSON of
 * {seq, operation, outcome, evidence, sector, created_at, parent_hash, key_version},
 * hash = SHA-256 hex of it, id = UUID formatted from the first 128 bits of the hash.
 */
import canonicalize from "canonicalize";
import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import type { ReceiptInput } from "./types";

export const GENESIS_PARENT_HASH = "0".repeat(64);
export const MAX_EVIDENCE_BYTES = 64 * 1024;

/** The hashed fields, with evidence already in canonical JSON text (as stored). */
export interface CanonicalFields {
  readonly seq: number;
  readonly operation: string;
  readonly outcome: string;
  readonly evidenceJson: string;
  readonly sector: string;
  readonly created_at: string;
  readonly parent_hash: string;
  readonly key_version: number;
}

/**
 * RFC 8785 text of the hashed fields. Keys are written in their sorted (UTF-16) order and the
 * evidence is already canonical, so this equals canonicalize({...}) without re-serialising the
 * evidence (tested against the library). Strings use JSON.stringify, which is what RFC 8785 uses.
 */
export function canonicalReceiptText(f: CanonicalFields): string {
  return (
    `{"created_at":${JSON.stringify(f.created_at)},"evidence":${f.evidenceJson},` +
    `"key_version":${f.key_version},"operation":${JSON.stringify(f.operation)},` +
    `"outcome":${JSON.stringify(f.outcome)},"parent_hash":${JSON.stringify(f.parent_hash)},` +
    `"sector":${JSON.stringify(f.sector)},"seq":${f.seq}}`
  );
}

// crypto.hash (Node >= 20.12) is a one-shot digest without a Hash object per call.
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: "hex") => string }).hash;

export function sha256Hex(text: string): string {
  return oneShotHash ? oneShotHash("sha256", text, "hex") : createHash("sha256").update(text, "utf8").digest("hex");
}

export function receiptIdFromHash(hash: string): string {
  return `${hash.slice(0, 8)}-${hash.slice(8, 12)}-${hash.slice(12, 16)}-${hash.slice(16, 20)}-${hash.slice(20, 32)}`;
}

export class ReceiptInputError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = "ReceiptInputError";
  }
}

const OPERATION = /^[A-Za-z0-9_.:/-]{1,128}$/;
const OUTCOME = /^[a-z][a-z0-9_]{0,63}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Evidence as canonical JSON text; throws ReceiptInputError naming the field on bad input. */
export function canonicalEvidence(evidence: unknown): string {
  if (evidence === null || typeof evidence !== "object" || Array.isArray(evidence)) {
    throw new ReceiptInputError("evidence", "must be a JSON object");
  }
  let text: string | undefined;
  try {
    text = canonicalize(evidence);
  } catch (error) {
    throw new ReceiptInputError("evidence", `is not representable as JSON (${(error as Error).message})`);
  }
  if (text === undefined) throw new ReceiptInputError("evidence", "is not representable as JSON");
  try {
    // canonicalize writes functions as the bare word "undefined": the text must parse back.
    JSON.parse(text);
  } catch {
    throw new ReceiptInputError("evidence", "contains a value that is not JSON (a function?)");
  }
  if (Buffer.byteLength(text, "utf8") > MAX_EVIDENCE_BYTES) {
    throw new ReceiptInputError("evidence", `is larger than ${MAX_EVIDENCE_BYTES} bytes as canonical JSON`);
  }
  return text;
}

export interface ValidatedInput {
  readonly operation: string;
  readonly outcome: string;
  readonly evidenceJson: string;
  readonly sector: string;
}

export function validateReceiptInput(input: ReceiptInput): ValidatedInput {
  if (input === null || typeof input !== "object") throw new ReceiptInputError("receipt", "must be an object");
  const { operation, outcome, sector } = input;
  if (typeof operation !== "string" || !OPERATION.test(operation)) {
    throw new ReceiptInputError("operation", "must be 1-128 characters of A-Z a-z 0-9 _ . : / -");
  }
  if (typeof outcome !== "string" || !OUTCOME.test(outcome)) {
    throw new ReceiptInputError("outcome", "must be a lower-case word of 1-64 characters (a-z, 0-9, _)");
  }
  if (typeof sector !== "string" || sector.length === 0 || sector.length > 128 || CONTROL.test(sector)) {
    throw new ReceiptInputError("sector", "must be 1-128 characters without control characters");
  }
  return { operation, outcome, sector, evidenceJson: canonicalEvidence(input.evidence) };
}

/** Milliseconds since the epoch as the ISO form used in receipts ("...T..:..:..mmmZ"). */
export function isoMillis(ms: number): string {
  return new Date(ms).toISOString();
}
