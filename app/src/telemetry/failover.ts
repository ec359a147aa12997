import type { ServerRole } from "../db/server-role";
import type { ServiceMetrics } from "./metrics";

export const FAILOVER_METRICS = {
  timeline: "knhk_db_timeline",
  failovers: "knhk_db_failovers_total",
  inRecovery: "knhk_db_in_recovery",
} as const;

/**
 * Turns each database probe's ServerRole into the failover metrics. A failover is counted when a
 * primary's timeline exceeds the highest one seen since start (the first observation only sets the
 * gauge): probes run concurrently on different pool connections, and while an old primary still
 * answers next to the promoted one, alternating 1, 2, 1, 2 is one promotion, not three.
 */
export function failoverRecorder(metrics: Pick<ServiceMetrics, "set" | "inc">): (role: ServerRole) => void {
  let highest: number | undefined;
  return (role) => {
    metrics.set(FAILOVER_METRICS.inRecovery, {}, role.inRecovery ? 1 : 0);
    if (role.inRecovery || role.timeline === undefined) return;
    metrics.set(FAILOVER_METRICS.timeline, {}, role.timeline);
    if (highest !== undefined && role.timeline > highest) metrics.inc(FAILOVER_METRICS.failovers);
    if (highest === undefined || role.timeline > highest) highest = role.timeline;
  };
}
