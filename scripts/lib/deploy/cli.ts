/** Option parsing shared by the deploy, rollback and smoke-test scripts: clear errors naming the flag. */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { Kubectl, TemplateEndpoints } from "./adapters";
import { UsageError } from "./errors";
import type { EndpointPort, Logger } from "./ports";

export const REPO_ROOT = resolve(__dirname, "..", "..", "..");

export { UsageError };

export function numberFlag(flag: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${flag} must be a number >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

export function requiredFlag(flag: string, value: string | undefined): string {
  if (value === undefined || value === "") throw new UsageError(`--${flag} is required`);
  return value;
}

/** The repo's engine (scripts/engine.sh puts it in .tools/bin) or `pulumi` on PATH. */
export function pulumiBinary(explicit?: string): string {
  if (explicit) return explicit;
  const local = join(REPO_ROOT, ".tools", "bin", "pulumi");
  return existsSync(local) ? local : "pulumi";
}

/** Whoever runs the script: CI actor, else the OS user. */
export function defaultActor(env: NodeJS.ProcessEnv): string {
  return env.GITHUB_ACTOR ? `github:${env.GITHUB_ACTOR}` : env.USER ?? env.USERNAME ?? "unknown";
}

/** URL templates when given (in-cluster DNS), otherwise kubectl port-forward. */
export function endpointsFrom(values: { "url-template"?: string; "metrics-url-template"?: string }, kubectl: Kubectl): EndpointPort {
  const api = values["url-template"];
  const metrics = values["metrics-url-template"];
  if (api && metrics) return new TemplateEndpoints(api, metrics);
  if (api || metrics) throw new UsageError("--url-template and --metrics-url-template go together");
  return kubectl;
}

export const CLUSTER_OPTIONS = {
  stack: { type: "string" },
  namespace: { type: "string", default: "knhk" },
  "kube-context": { type: "string" },
  kubectl: { type: "string", default: "kubectl" },
  pulumi: { type: "string" },
  "url-template": { type: "string" },
  "metrics-url-template": { type: "string" },
  actor: { type: "string" },
} as const;

/** Runs a script's main: exit with its code; usage errors exit 2 with the message. */
export function runMain(name: string, main: () => Promise<number>, log: Logger): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      const usage = error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS");
      log.warn(`${name}: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(usage ? 2 : 1);
    },
  );
}
