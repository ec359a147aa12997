/**
 * Watching a colour after the traffic switch: error ratio and p95 latency from Prometheus,
 * sampled every `intervalMs` for `durationMs`. Stops at the first sample whose error ratio is
 * above the threshold.
 */
import type { Clock, Color, Logger, PrometheusPort } from "./ports";

export interface WatchOptions {
  readonly durationMs: number;
  readonly intervalMs: number;
  /** Roll back above this error ratio (0.01 = 1%). */
  readonly maxErrorRatio: number;
  /** Warn above this p95 latency in seconds. */
  readonly maxP95Seconds: number;
  /** Prometheus `job` label of the service's series. */
  readonly job: string;
  /** Rate window of the queries, e.g. `1m`. */
  readonly window: string;
}

export const DEFAULT_WATCH: WatchOptions = {
  durationMs: 5 * 60_000,
  intervalMs: 30_000,
  maxErrorRatio: 0.01,
  maxP95Seconds: 0.2,
  job: "knhk-service",
  window: "1m",
};

/** Series of one colour: its pods are named `knhk-<colour>-<replicaset>-<id>`. */
function selector(color: Color, job: string, extra = ""): string {
  return `{job="${job}",pod=~"knhk-${color}-.+"${extra}}`;
}

export function errorRatioQuery(color: Color, o: Pick<WatchOptions, "job" | "window">): string {
  const total = `sum(rate(knhk_http_requests_total${selector(color, o.job)}[${o.window}]))`;
  const errors = `sum(rate(knhk_http_requests_total${selector(color, o.job, ',status_class="5xx"')}[${o.window}]))`;
  // `or vector(0)`: no 5xx series at all means 0 errors, not "no data".
  return `(${errors} or vector(0)) / ${total}`;
}

export function p95Query(color: Color, o: Pick<WatchOptions, "job" | "window">): string {
  return `histogram_quantile(0.95, sum by (le) (rate(knhk_http_request_duration_seconds_bucket${selector(color, o.job)}[${o.window}])))`;
}

export interface WatchSample {
  readonly at: string;
  readonly errorRatio?: number;
  readonly p95Seconds?: number;
}

export type WatchVerdict =
  | { readonly healthy: true; readonly samples: WatchSample[]; readonly warnings: string[] }
  | { readonly healthy: false; readonly reason: string; readonly samples: WatchSample[]; readonly warnings: string[] };

const pct = (r: number) => `${(r * 100).toFixed(2)}%`;

export async function watchColor(color: Color, deps: { prometheus: PrometheusPort; clock: Clock; log: Logger }, o: WatchOptions): Promise<WatchVerdict> {
  const samples: WatchSample[] = [];
  const warnings: string[] = [];
  const rounds = Math.max(1, Math.ceil(o.durationMs / o.intervalMs));
  let failedQueries = 0;
  for (let round = 1; round <= rounds; round++) {
    await deps.clock.sleep(o.intervalMs);
    let errorRatio: number | undefined;
    let p95Seconds: number | undefined;
    try {
      errorRatio = await deps.prometheus.query(errorRatioQuery(color, o));
      p95Seconds = await deps.prometheus.query(p95Query(color, o));
    } catch (error) {
      failedQueries++;
      const w = `sample ${round}/${rounds}: Prometheus query failed: ${(error as Error).message}`;
      warnings.push(w);
      deps.log.warn(w);
    }
    samples.push({ at: deps.clock.now().toISOString(), errorRatio, p95Seconds });
    deps.log.info(`watch ${color} ${round}/${rounds}: error ratio ${errorRatio === undefined ? "n/a" : pct(errorRatio)}, p95 ${p95Seconds === undefined ? "n/a" : `${Math.round(p95Seconds * 1000)} ms`}`);
    if (errorRatio !== undefined && errorRatio > o.maxErrorRatio) {
      return { healthy: false, reason: `error ratio ${pct(errorRatio)} on ${color} exceeds ${pct(o.maxErrorRatio)}`, samples, warnings };
    }
    if (p95Seconds !== undefined && p95Seconds > o.maxP95Seconds) {
      const w = `p95 latency ${Math.round(p95Seconds * 1000)} ms on ${color} is above ${Math.round(o.maxP95Seconds * 1000)} ms`;
      warnings.push(w);
      deps.log.warn(w);
    }
  }
  // Not one successful query: nothing proves the new colour is healthy.
  if (failedQueries === rounds) {
    return { healthy: false, reason: `no Prometheus sample for ${color} during the watch (${failedQueries} failed queries)`, samples, warnings };
  }
  return { healthy: true, samples, warnings };
}
