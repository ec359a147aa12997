/**
 * Fakes of the deploy ports: a Pulumi stack whose `up` applies the config to a simulated
 * cluster, a scripted Prometheus, a smoke test with a chosen result, and a clock that never
 * waits. Each records what was done to it.
 */
import type {
  AppState, AuditEvent, AuditPort, Clock, ClusterPort, Color, Endpoint, EndpointPort, Logger, PrometheusPort, PulumiPort, SmokePort, SmokeReport,
} from "../../scripts/lib/deploy/ports";

export class FakePulumi implements PulumiPort {
  readonly calls: string[] = [];
  /** What the cluster runs after the last successful `up`. */
  deployed: AppState;
  failUp = false;
  private config: { activeColor: Color; versions: Record<Color, string> };

  constructor(initial: AppState) {
    this.config = { activeColor: initial.activeColor, versions: { ...initial.versions } };
    this.deployed = structuredClone(this.config);
  }

  async readAppState(): Promise<AppState> {
    return structuredClone(this.config);
  }

  async setAppConfig(path: "activeColor" | `versions.${Color}`, value: string): Promise<void> {
    this.calls.push(`config set knhk:app.${path} ${value}`);
    if (path === "activeColor") this.config.activeColor = value as Color;
    else this.config.versions[path.slice("versions.".length) as Color] = value;
  }

  async up(message: string): Promise<void> {
    this.calls.push(`up: ${message}`);
    if (this.failUp) throw new Error("update failed: kubernetes:apps/v1:Deployment knhk-green: timeout");
    this.deployed = structuredClone(this.config);
  }
}

export class FakeCluster implements ClusterPort {
  readonly annotations: { color: Color; annotations: Record<string, string> }[] = [];
  rolloutCompletes = true;
  async waitForRollout(): Promise<boolean> {
    return this.rolloutCompletes;
  }
  async annotate(color: Color, annotations: Record<string, string>): Promise<void> {
    this.annotations.push({ color, annotations: { ...annotations } });
  }
}

export class FakeEndpoints implements EndpointPort {
  readonly opened: (Color | "live")[] = [];
  open(target: Color | "live"): Promise<Endpoint> {
    this.opened.push(target);
    return Promise.resolve({ apiUrl: `http://${target}.test:8080`, metricsUrl: `http://${target}.test:9090`, close: async () => undefined });
  }
}

export class FakeSmoke implements SmokePort {
  readonly targets: string[] = [];
  constructor(private readonly report: SmokeReport = { ok: true }) {}
  async run(endpoint: Endpoint): Promise<SmokeReport> {
    this.targets.push(endpoint.apiUrl);
    return this.report;
  }
}

/** Answers the error-ratio and p95 queries of a colour from scripted per-colour values. */
export class FakePrometheus implements PrometheusPort {
  readonly queries: string[] = [];
  constructor(private readonly values: Partial<Record<Color, { errorRatio?: number; p95?: number; fail?: boolean }>>) {}
  async query(promql: string): Promise<number | undefined> {
    this.queries.push(promql);
    const color = /pod=~"knhk-(blue|green)-/.exec(promql)?.[1] as Color;
    const v = this.values[color] ?? {};
    if (v.fail) throw new Error("connect ECONNREFUSED 127.0.0.1:9090");
    return promql.startsWith("histogram_quantile") ? v.p95 : v.errorRatio;
  }
}

export class FakeAudit implements AuditPort {
  readonly events: AuditEvent[] = [];
  async log(event: AuditEvent): Promise<void> {
    this.events.push(event);
  }
}

export class FakeClock implements Clock {
  private t = Date.parse("2026-11-28T00:00:00Z");
  readonly sleeps: number[] = [];
  now(): Date {
    return new Date(this.t);
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
  }
}

export class MemoryLog implements Logger {
  readonly lines: string[] = [];
  info(m: string): void {
    this.lines.push(`info: ${m}`);
  }
  warn(m: string): void {
    this.lines.push(`warn: ${m}`);
  }
}
