/** The receipt ledger's public shapes (DESIGN.md "Receipts"). */

/** JSON values accepted as evidence (anything RFC 8785 can canonicalize). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What a caller hands to `Ledger.append`. */
export interface ReceiptInput {
  /** Dotted lower-case name of what happened, e.g. "mape_k.monitor", "snapshot.promote". */
  readonly operation: string;
  /** Lower-case outcome word, e.g. "success", "partial_success", "failed", "rejected". */
  readonly outcome: string;
  /** Any JSON object describing the step (canonicalized and hashed with the receipt). */
  readonly evidence: { readonly [key: string]: unknown };
  /** The sector (tenant / domain) the step belongs to, e.g. "default". */
  readonly sector: string;
}

/** A stored receipt: one link of the global chain. */
export interface Receipt {
  /** UUID derived from the first 128 bits of `hash` (so it cannot be changed independently). */
  readonly id: string;
  /** Position in the one global chain, 1, 2, 3, ... without gaps. */
  readonly seq: number;
  readonly operation: string;
  readonly outcome: string;
  readonly evidence: { readonly [key: string]: JsonValue };
  readonly sector: string;
  /** ISO 8601 UTC with milliseconds, e.g. "2026-11-27T23:28:46.123Z". */
  readonly created_at: string;
  /** `hash` of the receipt with seq - 1; 64 zeros for seq 1. */
  readonly parent_hash: string;
  /** Version of the signing key (receipt_signing_keys.key_version). */
  readonly key_version: number;
  /** SHA-256 (hex) of the RFC 8785 canonical JSON of the fields above except id. */
  readonly hash: string;
  /** ed25519 signature (base64) over the 32 raw bytes of `hash`. */
  readonly signature: string;
}

/** Integrity failure kinds; the same values label knhk_receipt_chain_breaks_total. */
export type ChainFailureKind =
  | "hash_mismatch"
  | "parent_mismatch"
  | "signature_invalid"
  | "retrocausation"
  | "sequence_gap";

export interface ChainFailure {
  readonly id: string;
  readonly seq: number;
  readonly kind: ChainFailureKind;
  /** Human-readable reason, e.g. "stored hash differs from the recomputed hash". */
  readonly detail: string;
}

export interface VerificationReport {
  /** Receipts examined by this run. */
  readonly total_count: number;
  /** Receipts that passed every check. */
  readonly verified_count: number;
  readonly signature_failures: ChainFailure[];
  /** hash_mismatch, parent_mismatch and sequence_gap failures. */
  readonly chain_breaks: ChainFailure[];
  readonly retrocausation_violations: ChainFailure[];
  /** created_at of the last receipt examined (null when there was none). */
  readonly last_verified_timestamp: string | null;
  /** seq range examined: first and last (null when empty). */
  readonly from_seq: number | null;
  readonly to_seq: number | null;
  /** True when the run started from a stored checkpoint (incremental mode). */
  readonly incremental: boolean;
  readonly ok: boolean;
}

/** Progress of a long verification, reported every few thousand receipts. */
export interface VerificationProgress {
  readonly verified: number;
  readonly total: number;
  readonly seq: number;
}

/** Optional metric hooks so the ledger needs no prom-client import. */
export interface LedgerMetrics {
  /** A batch of `size` receipts committed durably. */
  onBatch?(size: number): void;
  /** `n` receipts acknowledged to their callers. */
  onAppended?(n: number): void;
}

export interface VerificationMetrics {
  onFailure?(kind: ChainFailureKind): void;
  onVerifiedSeq?(seq: number): void;
}
