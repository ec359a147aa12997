/**
 * What the receipts must agree with besides their own links: the chain head the ledger moved in
 * the same transaction as every batch, every verification checkpoint (a past run's word on seq and
 * hash), and who registered each signing key. These catch a truncated tail, a full truncation, a
 * rewrite below a checkpoint, and receipts signed with a key the service role (or any other
 * untrusted role) inserted. They cannot catch an owner who rewrites receipts, head, checkpoints
 * and keys together: that needs an anchor outside this database (README "What verify-chain proves").
 */
import type { Sql } from "../db/types";
import { TRUSTED_REGISTRAR_SQL } from "./keys";
import type { ChainFailure } from "./types";

interface HeadRow {
  head_seq: string;
  head_hash: string;
  max_seq: string | null;
  hash_at_head: string | null;
  id_at_head: string | null;
}

// One statement, one snapshot: the ledger moves the head in the transaction that inserts a batch,
// so concurrent appends never make the two disagree here.
const HEAD_AND_LAST =
  "SELECT h.seq AS head_seq, h.hash AS head_hash, (SELECT max(seq) FROM receipts) AS max_seq, " +
  "r.hash AS hash_at_head, r.id::text AS id_at_head FROM receipt_chain_head h LEFT JOIN receipts r ON r.seq = h.seq";

/** The chain head against the stored receipts. */
export async function checkChainHead(db: Sql): Promise<ChainFailure[]> {
  const row = (await db.query<HeadRow>(HEAD_AND_LAST)).rows[0];
  if (!row) return [{ id: "", seq: 0, kind: "sequence_gap", detail: "receipt_chain_head is empty: the chain head row was deleted" }];
  const headSeq = Number(row.head_seq);
  const maxSeq = Number(row.max_seq ?? 0);
  if (headSeq > maxSeq) {
    return [
      {
        id: "",
        seq: maxSeq + 1,
        kind: "sequence_gap",
        detail: `receipts ${maxSeq + 1}..${headSeq} are missing: receipt_chain_head is at seq ${headSeq} but the last stored receipt is ${maxSeq === 0 ? "none" : `seq ${maxSeq}`} (truncated)`,
      },
    ];
  }
  if (headSeq < maxSeq) {
    return [
      {
        id: "",
        seq: headSeq + 1,
        kind: "sequence_gap",
        detail: `receipts ${headSeq + 1}..${maxSeq} lie beyond receipt_chain_head (seq ${headSeq}): they were not appended by the ledger, or the head was moved back`,
      },
    ];
  }
  if (headSeq > 0 && row.hash_at_head !== row.head_hash) {
    return [
      {
        id: row.id_at_head ?? "",
        seq: headSeq,
        kind: "hash_mismatch",
        detail: "the last receipt's hash differs from the hash recorded in receipt_chain_head",
      },
    ];
  }
  return [];
}

interface CheckpointRow {
  seq: string;
  hash: string;
  verified_at: Date;
  stored_hash: string | null;
  id: string | null;
}

/** Every verification checkpoint against the receipt it vouched for. */
export async function checkCheckpoints(db: Sql): Promise<ChainFailure[]> {
  const { rows } = await db.query<CheckpointRow>(
    "SELECT DISTINCT ON (c.seq) c.seq, c.hash, c.verified_at, r.hash AS stored_hash, r.id::text AS id " +
      "FROM receipt_verification_checkpoints c LEFT JOIN receipts r ON r.seq = c.seq " +
      "WHERE r.hash IS DISTINCT FROM c.hash ORDER BY c.seq, c.id DESC",
  );
  return rows.map((row) => ({
    id: row.id ?? "",
    seq: Number(row.seq),
    kind: row.stored_hash === null ? "sequence_gap" : "hash_mismatch",
    detail:
      row.stored_hash === null
        ? `receipt seq ${row.seq} is missing, but a verification on ${new Date(row.verified_at).toISOString()} checkpointed it (truncated)`
        : `receipt seq ${row.seq} no longer has the hash a verification on ${new Date(row.verified_at).toISOString()} checkpointed (rewritten)`,
  }));
}

/** key_version -> the role that registered it, for keys whose registrar is not trusted. */
export async function untrustedKeys(db: Sql): Promise<Map<number, string>> {
  const { rows } = await db.query<{ key_version: number; registered_by: string }>(
    "SELECT key_version, registered_by::text AS registered_by FROM receipt_signing_keys ORDER BY key_version",
  );
  const untrusted = new Map<number, string>();
  for (const row of rows) {
    const trusted = (await db.query<{ trusted: boolean }>(TRUSTED_REGISTRAR_SQL, [row.registered_by])).rows[0].trusted;
    if (!trusted) untrusted.set(Number(row.key_version), row.registered_by);
  }
  return untrusted;
}
