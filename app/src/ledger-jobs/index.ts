/**
 * The scheduled ledger jobs' run records (ledger_job_runs) and what the service exports from them.
 *
 *   await recordRun(db, verificationRun(report, startedAt));   // knhk receipts verify-chain --record-run
 *   addVerificationRunCollector(metrics, db, onError);          // the service: knhk_receipt_chain_verification_failures
 */
export { addVerificationRunCollector, VERIFICATION_FAILURES_METRIC, type GaugeSink } from "./metrics";
export {
  CHAIN_FAILURE_KINDS,
  VERIFICATION_MODES,
  failureCounts,
  latestVerifications,
  recordRun,
  verificationRun,
  type FailureCounts,
  type JobRun,
  type LatestVerification,
  type LedgerJob,
  type VerificationMode,
} from "./runs";
