/**
 * What the deploy and rollback logic needs from the outside world. The scripts wire real
 * adapters (Pulumi CLI, kubectl, Prometheus HTTP API, the audit CLI); tests wire fakes.
 */

import type { Color } from "../../../app/src/config/env";

export type { Color };

export const otherColor = (c: Color): Color => (c === "blue" ? "green" : "blue");

/** The part of `knhk:app` the deploy reads: which colour serves, and each colour's version. */
export interface AppState {
  readonly activeColor: Color;
  readonly versions: Readonly<Record<Color, string>>;
}

/** Drives the Pulumi program: stack config under `knhk:app` and `pulumi up`. */
export interface PulumiPort {
  readAppState(): Promise<AppState>;
  /** `pulumi config set --path knhk:app.<path> <value>`. */
  setAppConfig(path: "activeColor" | `versions.${Color}`, value: string): Promise<void>;
  /** `pulumi up --yes`; rejects when the update fails. */
  up(message: string): Promise<void>;
}

/** The Kubernetes side: rollout status and annotations of the colour Deployments. */
export interface ClusterPort {
  /** Resolves true when the colour's Deployment has fully rolled out within `timeoutMs`, false on timeout. */
  waitForRollout(color: Color, timeoutMs: number): Promise<boolean>;
  annotate(color: Color, annotations: Readonly<Record<string, string>>): Promise<void>;
}

/** A base URL for a Service (the colour's own, or the live `knhk-service`); `close` ends any tunnel. */
export interface Endpoint {
  readonly apiUrl: string;
  readonly metricsUrl: string;
  close(): Promise<void>;
}

export interface EndpointPort {
  /** `color` = the colour's own Service (smoke test before the switch); "live" = knhk-service. */
  open(target: Color | "live"): Promise<Endpoint>;
}

/** An instant PromQL query reduced to one number; undefined when the result is empty or NaN. */
export interface PrometheusPort {
  query(promql: string): Promise<number | undefined>;
}

export interface SmokeReport {
  readonly ok: boolean;
  /** Name of the first failed check, when not ok. */
  readonly failedCheck?: string;
  readonly message?: string;
}

export interface SmokePort {
  run(endpoint: Endpoint): Promise<SmokeReport>;
}

export interface AuditEvent {
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly outcome: string;
  readonly details: Record<string, unknown>;
}

export interface AuditPort {
  log(event: AuditEvent): Promise<void>;
}

export interface Clock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
