/**
 * What the service exports about the scheduled ledger jobs, read from ledger_job_runs on every
 * scrape: Prometheus sees the outcome of a verification CronJob although its pod is gone, and the
 * P0 KnhkReceiptChainBroken fires when a scheduled run found a break (until a later run of the
 * same mode verifies clean).
 */
import type { Sql } from "../db/types";
import { CHAIN_FAILURE_KINDS, latestVerifications } from "./runs";

export const VERIFICATION_FAILURES_METRIC = "knhk_receipt_chain_verification_failures";

/** The part of ServiceMetrics the collector uses. */
export interface GaugeSink {
  addCollector(name: string, collect: () => void | Promise<void>): void;
  set(name: string, labels: Record<string, string>, value: number): void;
}

/**
 * Sets knhk_receipt_chain_verification_failures{kind,mode} before every scrape. A failed read
 * keeps the previous values (and is reported): a database outage must not fail the whole scrape,
 * which would page as KnhkServiceDown.
 */
export function addVerificationRunCollector(metrics: GaugeSink, db: Sql, onError: (error: Error) => void = () => undefined, now: () => number = Date.now): void {
  let reportedAt = Number.NEGATIVE_INFINITY;
  metrics.addCollector(VERIFICATION_FAILURES_METRIC, async () => {
    let latest;
    try {
      latest = await latestVerifications(db);
    } catch (error) {
      // Every scrape fails alike during an outage: report once a minute, not on every scrape.
      if (now() - reportedAt >= 60_000) {
        reportedAt = now();
        onError(error as Error);
      }
      return;
    }
    for (const run of latest) {
      for (const kind of CHAIN_FAILURE_KINDS) metrics.set(VERIFICATION_FAILURES_METRIC, { kind, mode: run.mode }, run.failures[kind]);
    }
  });
}
