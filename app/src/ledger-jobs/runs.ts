/**
 * ledger_job_runs (migration 0007): the outcome of every scheduled ledger job run. The CronJob's
 * pod is gone after its run; this table is what the service (metrics) and operators read.
 */
import type { Sql } from "../db/types";
import type { ChainFailureKind, VerificationReport } from "../receipts/types";

export type LedgerJob = "archive" | "verify-incremental" | "verify-full";
export type VerificationMode = "incremental" | "full";

/** Every failure kind, in the order of the registry's closed set for `kind`. */
export const CHAIN_FAILURE_KINDS = ["hash_mismatch", "parent_mismatch", "signature_invalid", "retrocausation", "sequence_gap"] as const satisfies readonly ChainFailureKind[];
// A kind added to ChainFailureKind but not listed above fails to compile here.
const _everyKind: Record<ChainFailureKind, true> = { hash_mismatch: true, parent_mismatch: true, signature_invalid: true, retrocausation: true, sequence_gap: true };
void _everyKind;

export const VERIFICATION_MODES: readonly VerificationMode[] = ["incremental", "full"];

export type FailureCounts = Record<ChainFailureKind, number>;

export interface JobRun {
  readonly job: LedgerJob;
  readonly ok: boolean;
  readonly startedAt: Date;
  readonly failures?: Partial<FailureCounts>;
  readonly summary?: Record<string, unknown>;
}

export async function recordRun(sql: Sql, run: JobRun): Promise<void> {
  await sql.query("INSERT INTO ledger_job_runs (job, ok, started_at, failures, summary) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)", [
    run.job,
    run.ok,
    run.startedAt,
    JSON.stringify(run.failures ?? {}),
    JSON.stringify(run.summary ?? {}),
  ]);
}

export function failureCounts(report: VerificationReport): FailureCounts {
  const counts = Object.fromEntries(CHAIN_FAILURE_KINDS.map((k) => [k, 0])) as FailureCounts;
  for (const f of [...report.chain_breaks, ...report.signature_failures, ...report.retrocausation_violations]) counts[f.kind]++;
  return counts;
}

/** The run record of a verification: its mode is what the run did (an incremental run without a checkpoint verified everything). */
export function verificationRun(report: VerificationReport, startedAt: Date): JobRun {
  return {
    job: report.incremental ? "verify-incremental" : "verify-full",
    ok: report.ok,
    startedAt,
    failures: failureCounts(report),
    summary: { total_count: report.total_count, verified_count: report.verified_count, from_seq: report.from_seq, to_seq: report.to_seq },
  };
}

export interface LatestVerification {
  readonly mode: VerificationMode;
  readonly ok: boolean;
  readonly finishedAt: Date;
  readonly failures: FailureCounts;
}

/** The latest recorded run of each verification mode (a mode that never ran is absent). */
export async function latestVerifications(sql: Sql): Promise<LatestVerification[]> {
  const { rows } = await sql.query<{ job: LedgerJob; ok: boolean; finished_at: Date | string; failures: unknown }>(
    "SELECT DISTINCT ON (job) job, ok, finished_at, failures FROM ledger_job_runs " +
      "WHERE job IN ('verify-incremental', 'verify-full') ORDER BY job, id DESC",
  );
  return rows.map((row) => {
    const stored = (typeof row.failures === "string" ? JSON.parse(row.failures) : row.failures) as Record<string, unknown>;
    const failures = Object.fromEntries(
      CHAIN_FAILURE_KINDS.map((k) => {
        const n = Number(stored?.[k] ?? 0);
        return [k, Number.isFinite(n) && n > 0 ? n : 0];
      }),
    ) as FailureCounts;
    return { mode: row.job === "verify-full" ? "full" : "incremental", ok: row.ok, finishedAt: new Date(row.finished_at), failures };
  });
}
