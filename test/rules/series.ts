/**
 * Input series for promtool unit tests, written as functions of the test length in minutes
 * (1-minute samples), so a scenario stays valid whatever an alert's `for` is.
 */
import { loadRegistry } from "../../registry";

export interface InputSeries {
  readonly series: string;
  readonly values: (minutes: number) => string;
}

function selector(name: string, labels: Record<string, string>): string {
  const inner = Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(",");
  return `${name}{${inner}}`;
}

/** A gauge that holds `value` for the whole test. */
export function gauge(name: string, labels: Record<string, string>, value: number): InputSeries {
  return { series: selector(name, labels), values: (m) => `${value}x${m}` };
}

/** A counter starting at 0 that grows by `perMinute` every minute. */
export function counter(name: string, labels: Record<string, string>, perMinute: number): InputSeries {
  return { series: selector(name, labels), values: (m) => `0+${perMinute}x${m}` };
}

/** A series with explicit promtool values notation (the length is the caller's business). */
export function explicit(name: string, labels: Record<string, string>, values: string): InputSeries {
  return { series: selector(name, labels), values: () => values };
}

/**
 * The `_bucket` series of a registry histogram where `perMinute` observations per minute all fall
 * into the bucket whose upper bound is `upperBound` (so quantiles interpolate inside that bucket).
 */
export function histogram(name: string, labels: Record<string, string>, upperBound: number, perMinute: number): InputSeries[] {
  const metric = loadRegistry().service.find((m) => m.name === name);
  if (!metric?.buckets) throw new Error(`${name} is not a registry histogram`);
  if (!metric.buckets.includes(upperBound)) throw new Error(`${name} has no bucket le=${upperBound} (buckets ${metric.buckets.join(", ")})`);
  const bounds = [...metric.buckets.map(String), "+Inf"];
  return bounds.map((le) => {
    const filled = le === "+Inf" || Number(le) >= upperBound;
    return counter(`${name}_bucket`, { ...labels, le }, filled ? perMinute : 0);
  });
}
