/**
 * The receipt outbox (migration 0006): a receipted step stores its receipt input in
 * receipt_outbox in the SAME transaction (or the same statement) as its domain rows, so a row is
 * never durable without its receipt being durable too. The ledger's batch transaction deletes the
 * entry in the statement that inserts the receipt; entries a dead process left behind are
 * appended by the next ledger that recovers (at service start, before it serves).
 */
import { randomUUID } from "node:crypto";
import type { Sql } from "../db/types";
import { validateReceiptInput, type ValidatedInput } from "./canonical";
import type { ReceiptInput } from "./types";

/** Domain tables whose rows point back at their receipt (`receipt_seq`). */
export type ReceiptLinkTable = "snapshot_transitions" | "validation_reports";
export const RECEIPT_LINK_TABLES: readonly ReceiptLinkTable[] = ["snapshot_transitions", "validation_reports"];

export interface ReceiptLink {
  readonly table: ReceiptLinkTable;
  /** The `seq` of the row that gets `receipt_seq` once the receipt is appended. */
  readonly seq: number;
}

/** A receipt stored in the outbox, not yet in the chain. */
export interface StagedReceipt {
  readonly outboxId: string;
  readonly input: ValidatedInput;
  readonly link?: ReceiptLink;
}

export interface StagingStatement {
  /** `INSERT INTO receipt_outbox ...` with placeholders from `$firstParam`; usable as a CTE body. */
  readonly sql: string;
  readonly params: unknown[];
  readonly staged: StagedReceipt;
}

/** Validates the input and builds the outbox INSERT (throws ReceiptInputError on bad input). */
export function stagingStatement(owner: string, input: ReceiptInput, firstParam = 1, link?: ReceiptLink): StagingStatement {
  if (link && !RECEIPT_LINK_TABLES.includes(link.table)) throw new RangeError(`link.table: not a receipt link table: ${link.table}`);
  const validated = validateReceiptInput(input);
  const outboxId = randomUUID();
  const p = (i: number) => `$${firstParam + i}`;
  return {
    sql:
      "INSERT INTO receipt_outbox (id, owner, operation, outcome, evidence, sector, link_table, link_seq) " +
      `VALUES (${p(0)}::uuid, ${p(1)}::uuid, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}::text, ${p(7)}::bigint)`,
    params: [outboxId, owner, validated.operation, validated.outcome, validated.evidenceJson, validated.sector, link?.table ?? null, link?.seq ?? null],
    staged: { outboxId, input: validated, link },
  };
}

interface OutboxRow {
  id: string;
  operation: string;
  outcome: string;
  evidence: string;
  sector: string;
  link_table: ReceiptLinkTable | null;
  link_seq: string | number | null;
}

/** The outbox entries of `owner`, oldest first. */
export async function stagedOf(db: Sql, owner: string): Promise<StagedReceipt[]> {
  const { rows } = await db.query<OutboxRow>(
    "SELECT id::text AS id, operation, outcome, evidence, sector, link_table, link_seq FROM receipt_outbox WHERE owner = $1 ORDER BY staged_at, id",
    [owner],
  );
  return rows.map((r) => ({
    outboxId: r.id,
    input: { operation: r.operation, outcome: r.outcome, evidenceJson: r.evidence, sector: r.sector },
    link: r.link_table ? { table: r.link_table, seq: Number(r.link_seq) } : undefined,
  }));
}

export async function outboxOwners(db: Sql): Promise<string[]> {
  const { rows } = await db.query<{ owner: string }>("SELECT DISTINCT owner::text AS owner FROM receipt_outbox");
  return rows.map((r) => r.owner);
}

/** The session advisory lock a live ledger holds on its owner id. */
export const OWNER_LOCK_KEY = "hashtextextended('knhk.receipt_outbox:' || $1, 0)";
