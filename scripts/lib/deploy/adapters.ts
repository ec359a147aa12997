/**
 * Real implementations of the deploy ports: the Pulumi CLI, kubectl (rollout status, annotate,
 * port-forward), the Prometheus HTTP API, the audit CLI (`npm run knhk -- audit log`) and the
 * smoke test. Each shells out with an argument vector (never a shell string).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readAppState, setAppValue, stackFileName } from "../release/stack-file";
import { requiredEnv } from "./errors";
import { DEFAULT_SMOKE, runSmokeTest, type SmokeOptions } from "../smoke";
import type { AppState, AuditEvent, AuditPort, ClusterPort, Color, Endpoint, EndpointPort, Logger, PrometheusPort, PulumiPort, SmokePort } from "./ports";

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command, capturing output; `echo` streams its output to the operator too. */
export async function runCommand(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; echo?: boolean } = {}): Promise<CommandResult> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d;
    if (options.echo) process.stdout.write(d);
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d;
    if (options.echo) process.stderr.write(d);
  });
  const [code] = (await once(child, "close")) as [number | null];
  return { code: code ?? 1, stdout, stderr };
}

function lastLines(text: string, n = 10): string {
  return text.trim().split("\n").slice(-n).join("\n");
}

/**
 * The Pulumi side of a deploy: `knhk:app` is read from and written to the stack file itself
 * (scripts/lib/release/stack-file.ts: comments kept, each edit read back through the schema), the
 * same edit a release commit makes; `up` and the stack's outputs go through the CLI.
 */
export class PulumiCli implements PulumiPort {
  constructor(private readonly o: { bin: string; stack: string; cwd: string; policyPack?: string; env?: NodeJS.ProcessEnv; log: Logger }) {}

  private get file(): string {
    return join(this.o.cwd, stackFileName(this.o.stack));
  }

  async readAppState(): Promise<AppState> {
    return readAppState(readFileSync(this.file, "utf8"), stackFileName(this.o.stack));
  }

  async setAppConfig(path: "activeColor" | `versions.${Color}`, value: string): Promise<void> {
    writeFileSync(this.file, setAppValue(readFileSync(this.file, "utf8"), path, value, stackFileName(this.o.stack)).text);
  }

  /** `pulumi stack output --json`: what the last update exported ({} before the first). */
  async outputs(): Promise<Record<string, unknown>> {
    const r = await runCommand(this.o.bin, ["stack", "output", "--json", "--stack", this.o.stack], { cwd: this.o.cwd, env: this.o.env });
    if (r.code !== 0) throw new Error(`pulumi stack output --stack ${this.o.stack} failed: ${lastLines(r.stderr || r.stdout, 5)}`);
    return JSON.parse(r.stdout || "{}") as Record<string, unknown>;
  }

  async up(message: string): Promise<void> {
    this.o.log.info(`pulumi up --stack ${this.o.stack}: ${message}`);
    const args = ["up", "--yes", "--skip-preview", "--stack", this.o.stack, "--message", message];
    if (this.o.policyPack) args.push("--policy-pack", this.o.policyPack);
    const r = await runCommand(this.o.bin, args, { cwd: this.o.cwd, env: this.o.env, echo: true });
    if (r.code !== 0) throw new Error(`pulumi up exited ${r.code}: ${lastLines(r.stderr || r.stdout, 5)}`);
  }
}

export class Kubectl implements ClusterPort, EndpointPort {
  constructor(private readonly o: { bin: string; namespace: string; context?: string; log: Logger }) {}

  private args(...rest: string[]): string[] {
    return [...(this.o.context ? ["--context", this.o.context] : []), "--namespace", this.o.namespace, ...rest];
  }

  async waitForRollout(color: Color, timeoutMs: number): Promise<boolean> {
    const r = await runCommand(this.o.bin, this.args("rollout", "status", `deployment/knhk-${color}`, `--timeout=${Math.ceil(timeoutMs / 1000)}s`));
    if (r.code !== 0) this.o.log.warn(`kubectl rollout status knhk-${color}: ${lastLines(r.stderr || r.stdout, 3)}`);
    return r.code === 0;
  }

  async annotate(color: Color, annotations: Readonly<Record<string, string>>): Promise<void> {
    const pairs = Object.entries(annotations).map(([k, v]) => `${k}=${v}`);
    const r = await runCommand(this.o.bin, this.args("annotate", `deployment/knhk-${color}`, "--overwrite", ...pairs));
    if (r.code !== 0) throw new Error(`kubectl annotate deployment/knhk-${color} failed: ${lastLines(r.stderr)}`);
  }

  /** Port-forwards the Service's API (8080) and metrics (9090) ports to free local ports. */
  async open(target: Color | "live"): Promise<Endpoint> {
    const service = target === "live" ? "knhk-service" : `knhk-${target}`;
    const child = spawn(this.o.bin, this.args("port-forward", `service/${service}`, ":8080", ":9090"), { stdio: ["ignore", "pipe", "pipe"] });
    const ports = await new Promise<number[]>((resolve, reject) => {
      const found: number[] = [];
      let errors = "";
      const timer = setTimeout(() => reject(new Error(`kubectl port-forward service/${service} did not start: ${errors}`)), 15_000);
      child.stdout.on("data", (d: Buffer) => {
        for (const m of String(d).matchAll(/Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)/g)) found[m[2] === "8080" ? 0 : 1] = Number(m[1]);
        if (found[0] && found[1]) {
          clearTimeout(timer);
          resolve(found);
        }
      });
      child.stderr.on("data", (d: Buffer) => (errors += d));
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`kubectl port-forward service/${service} exited ${code}: ${errors.trim()}`));
      });
    });
    return {
      apiUrl: `http://127.0.0.1:${ports[0]}`,
      metricsUrl: `http://127.0.0.1:${ports[1]}`,
      close: async () => {
        child.kill();
      },
    };
  }
}

/** Fixed URLs, `{target}` replaced by `blue`, `green` or `live` (e.g. in-cluster DNS from a CI runner). */
export class TemplateEndpoints implements EndpointPort {
  constructor(private readonly apiTemplate: string, private readonly metricsTemplate: string) {}
  async open(target: Color | "live"): Promise<Endpoint> {
    const fill = (t: string) => t.replaceAll("{target}", target);
    return { apiUrl: fill(this.apiTemplate), metricsUrl: fill(this.metricsTemplate), close: async () => undefined };
  }
}

/** Instant queries against the Prometheus HTTP API (`/api/v1/query`). */
export class PrometheusHttp implements PrometheusPort {
  constructor(private readonly baseUrl: string, private readonly timeoutMs = 10_000) {}

  async query(promql: string): Promise<number | undefined> {
    const url = new URL("/api/v1/query", this.baseUrl);
    url.searchParams.set("query", promql);
    const response = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown } };
    if (body.status !== "success" || !body.data) throw new Error(`Prometheus: ${body.error ?? `HTTP ${response.status}`}`);
    const { resultType, result } = body.data;
    let text: string | undefined;
    if (resultType === "scalar") text = (result as [number, string])[1];
    else if (resultType === "vector") {
      const vector = result as { value: [number, string] }[];
      if (vector.length > 1) throw new Error(`Prometheus: expected one series, got ${vector.length} for ${promql}`);
      text = vector[0]?.value[1];
    } else throw new Error(`Prometheus: unexpected result type ${resultType}`);
    const value = text === undefined ? NaN : Number(text);
    return Number.isFinite(value) ? value : undefined;
  }
}

/**
 * Appends audit events with the service's own CLI (`npm run knhk -- audit log`), against
 * DATABASE_URL: the audit writer's least-privileged role, which may insert but owns no schema,
 * so the CLI never migrates (KNHK_MIGRATE_ON_START=false); the migration Job owns the schema.
 */
export class AuditCli implements AuditPort {
  constructor(private readonly o: { cwd: string; env?: NodeJS.ProcessEnv }) {}
  async log(event: AuditEvent): Promise<void> {
    const env = { ...(this.o.env ?? process.env), KNHK_MIGRATE_ON_START: "false" };
    const r = await runCommand("npm", ["run", "--silent", "knhk", "--", "audit", "log", "--actor", event.actor, "--action", event.action, "--target", event.target, "--outcome", event.outcome, "--details", JSON.stringify(event.details)], { cwd: this.o.cwd, env });
    if (r.code !== 0) throw new Error(`audit log failed (exit ${r.code}): ${lastLines(r.stderr || r.stdout, 5)}`);
  }
}

export class HttpSmoke implements SmokePort {
  constructor(private readonly options: SmokeOptions, private readonly log: Logger) {}
  async run(endpoint: Endpoint) {
    return runSmokeTest(endpoint, this.options, undefined, (line) => this.log.info(`smoke ${line}`));
  }
}

/** Smoke options from the environment (tokens never on the command line) plus overrides. */
export function smokeOptionsFromEnv(env: NodeJS.ProcessEnv, overrides: Partial<SmokeOptions> = {}): SmokeOptions {
  const token = requiredEnv(env, "KNHK_SMOKE_TOKEN", "a bearer token with read, pattern-detection and receipt-verification permissions");
  const ingestToken = requiredEnv(env, "KNHK_SMOKE_INGEST_TOKEN", "a bearer token with the ingestor role");
  return { ...DEFAULT_SMOKE, token, ingestToken, ...overrides };
}

/** GET /health -> its `status` field. */
export async function healthStatus(apiUrl: string): Promise<string> {
  const response = await fetch(new URL("/health", apiUrl), { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { status?: string };
  return response.ok && typeof body.status === "string" ? body.status : `HTTP ${response.status}`;
}

export const consoleLogger: Logger = {
  info: (m) => console.log(`[${new Date().toISOString()}] ${m}`),
  warn: (m) => console.warn(`[${new Date().toISOString()}] WARN ${m}`),
};
