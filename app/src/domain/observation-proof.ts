/**
 * What makes a stored observation provable: its leaf, the RFC 8785 canonical JSON of the fields
 * fixed at ingest (not `seq`, which the database assigns, nor the guard outcomes, which the
 * snapshot id and `flagged` already pin), hashed as a Merkle leaf. A single observation's receipt
 * carries its leaf hash; a batch's receipt carries the Merkle root over its leaves in order, and
 * an inclusion proof ties one observation to it.
 */
import canonicalize from "canonicalize";
import { inclusionProof, leafHash, merkleRoot, verifyInclusion } from "../receipts/merkle";
import type { JsonObject, JsonValue, Observation } from "./types";

/** The name of the tree in receipts' evidence, so a verifier knows which hashing to apply. */
export const MERKLE_TREE = "rfc9162-sha256";

export interface LeafFields {
  readonly id: string;
  readonly event_type: string;
  readonly value: JsonValue;
  readonly sector: string;
  readonly metadata: JsonObject;
  /** ISO-8601 with milliseconds, as the API returns it. */
  readonly observed_at: string;
  readonly snapshot_id: string;
  readonly flagged: boolean;
}

export function leafText(o: LeafFields): string {
  const text = canonicalize({
    id: o.id,
    event_type: o.event_type,
    value: o.value,
    sector: o.sector,
    metadata: o.metadata,
    observed_at: o.observed_at,
    snapshot_id: o.snapshot_id,
    flagged: o.flagged,
  });
  if (text === undefined) throw new TypeError("observation fields are not representable as JSON");
  return text;
}

export const observationLeaf = (o: LeafFields): Buffer => leafHash(leafText(o));

export function batchRoot(leaves: readonly Buffer[]): string {
  return merkleRoot(leaves).toString("hex");
}

/** Everything a third party needs to check one observation against a signed receipt. */
export interface ObservationProof {
  readonly observation: Observation;
  readonly leaf_hash: string;
  readonly tree: typeof MERKLE_TREE;
  /** Absent for a single observation (its receipt holds the leaf hash itself). */
  readonly batch?: { readonly id: string; readonly index: number; readonly size: number; readonly merkle_root: string; readonly inclusion_proof: readonly string[] };
  /** The receipt that commits to the leaf (or to the batch root); null while it is still being appended. */
  readonly receipt_seq: number | null;
}

export function batchProof(leaves: readonly Buffer[], index: number): string[] {
  return inclusionProof(leaves, index).map((h) => h.toString("hex"));
}

/**
 * Checks a proof's own consistency: the leaf recomputed from the observation's fields, and for a
 * batch the inclusion path up to the root. The caller then checks that a receipt whose signature
 * verifies carries that root (evidence.merkle_root) or leaf (evidence.observation_hash).
 */
export function proofHolds(proof: ObservationProof): boolean {
  const leaf = observationLeaf(proof.observation);
  if (leaf.toString("hex") !== proof.leaf_hash) return false;
  if (!proof.batch) return true;
  const hex = /^[0-9a-f]{64}$/;
  if (!hex.test(proof.batch.merkle_root) || !proof.batch.inclusion_proof.every((h) => hex.test(h))) return false;
  return verifyInclusion(
    leaf,
    proof.batch.index,
    proof.batch.size,
    proof.batch.inclusion_proof.map((h) => Buffer.from(h, "hex")),
    Buffer.from(proof.batch.merkle_root, "hex"),
  );
}
