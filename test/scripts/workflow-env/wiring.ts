/**
 * The env and secrets wiring of the workflows, checked statically (no runner can execute these
 * jobs here): every job is expanded into its instances (matrix values, workflow_dispatch choices,
 * reusable workflows with the inputs and secrets their callers pass); for each step that may run,
 * the environment it gets is computed (runner defaults, workflow/job/step `env`, what earlier
 * actions export: AWS credentials, VAULT_TOKEN, `$GITHUB_ENV` lines); then
 * - every variable a script the step runs needs (env-reads.ts: `npm run` -> package.json -> the
 *   entry and everything it reaches; bash scripts) must be in it;
 * - a tool the script runs must be set up: the Pulumi CLI (and its passphrase and backend), a
 *   kubeconfig context for kubectl (the stack's `knhk:kubernetes.context`, from
 *   `aws eks update-kubeconfig --alias`), AWS credentials for the aws CLI;
 * - a `pulumi/actions` update or preview gets what the stack's providers read (their documented
 *   variables: VAULT_ADDR/VAULT_TOKEN, GRAFANA_URL/GRAFANA_AUTH, AWS credentials and region,
 *   PULUMI_CONFIG_PASSPHRASE for the passphrase secrets provider) for the providers the stack
 *   file enables, and the cluster its kubernetes provider targets;
 * - OIDC actions run with `id-token: write`.
 */
import { basename } from "node:path";
import { parse } from "yaml";
import type { ScriptEnv } from "./env-reads";
import { interpolate, isSymbolic, mayRun, provided, type Contexts, type Value } from "./expressions";

export interface Problem {
  readonly workflow: string;
  readonly job: string;
  readonly step: string;
  readonly script?: string;
  readonly variable: string;
  readonly message: string;
}

/** One variable a step needs, and where the need comes from (for coverage assertions). */
export interface Checked {
  readonly workflow: string;
  readonly job: string;
  readonly step: string;
  readonly need: string;
  readonly variable: string;
  readonly ok: boolean;
}

export interface WiringInput {
  /** Workflow file name -> its text. */
  readonly workflows: Readonly<Record<string, string>>;
  /** `Pulumi.<stack>.yaml` text, or undefined. */
  readonly stackFile: (stack: string) => string | undefined;
  /** The env needs of a script run by a step. */
  readonly script: (kind: "ts" | "bash", file: string) => ScriptEnv;
  /** `npm run <name>` -> the entry it runs. */
  readonly npmScript: (name: string) => { kind: "ts" | "bash"; file: string } | undefined;
  /** A repository file's text (to see which files a script writes, e.g. a kubeconfig). */
  readonly readFile: (file: string) => string;
}

/** GitHub's default environment of every step (docs: "Default environment variables"), and the shell's own. */
export const RUNNER_ENV = [
  "CI", "GITHUB_ACTION", "GITHUB_ACTION_PATH", "GITHUB_ACTION_REPOSITORY", "GITHUB_ACTIONS", "GITHUB_ACTOR", "GITHUB_ACTOR_ID",
  "GITHUB_API_URL", "GITHUB_BASE_REF", "GITHUB_ENV", "GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH", "GITHUB_GRAPHQL_URL", "GITHUB_HEAD_REF",
  "GITHUB_JOB", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_REF", "GITHUB_REF_NAME", "GITHUB_REF_PROTECTED", "GITHUB_REF_TYPE",
  "GITHUB_REPOSITORY", "GITHUB_REPOSITORY_ID", "GITHUB_REPOSITORY_OWNER", "GITHUB_REPOSITORY_OWNER_ID", "GITHUB_RETENTION_DAYS",
  "GITHUB_RUN_ATTEMPT", "GITHUB_RUN_ID", "GITHUB_RUN_NUMBER", "GITHUB_SERVER_URL", "GITHUB_SHA", "GITHUB_STEP_SUMMARY",
  "GITHUB_TRIGGERING_ACTOR", "GITHUB_WORKFLOW", "GITHUB_WORKFLOW_REF", "GITHUB_WORKFLOW_SHA", "GITHUB_WORKSPACE", "RUNNER_ARCH",
  "RUNNER_DEBUG", "RUNNER_ENVIRONMENT", "RUNNER_NAME", "RUNNER_OS", "RUNNER_TEMP", "RUNNER_TOOL_CACHE", "HOME", "PATH", "USER",
];

/** What actions export to the steps after them (their docs), by action and inputs. */
function actionExports(action: string, inputs: Record<string, Value>): string[] {
  switch (action) {
    case "aws-actions/configure-aws-credentials":
      return ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"];
    case "hashicorp/vault-action":
      return inputs.exportToken === true || inputs.exportToken === "true" ? ["VAULT_TOKEN"] : [];
    default:
      return [];
  }
}

/** Outputs an action always sets (its docs), by action. */
const ACTION_OUTPUTS: Readonly<Record<string, readonly string[]>> = {
  "actions/create-github-app-token": ["token", "installation-id", "app-slug"],
};

/** Actions that need the job's OIDC token (`permissions: id-token: write`), given their inputs. */
function needsIdToken(action: string, inputs: Record<string, Value>): boolean {
  if (action === "aws-actions/configure-aws-credentials") return !("aws-access-key-id" in inputs);
  if (action === "hashicorp/vault-action") return inputs.method === "jwt" && !("jwtPrivateKey" in inputs);
  return false;
}

type Workflow = {
  on: unknown;
  env?: Record<string, unknown>;
  permissions?: unknown;
  jobs: Record<string, Job>;
};
type Job = {
  name?: string;
  uses?: string;
  with?: Record<string, unknown>;
  secrets?: "inherit" | Record<string, unknown>;
  if?: unknown;
  env?: Record<string, unknown>;
  permissions?: unknown;
  strategy?: { matrix?: Record<string, unknown> };
  steps?: Step[];
};
type Step = { name?: string; id?: string; uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, unknown>; if?: unknown };

interface Instance {
  readonly workflow: string;
  readonly job: string;
  readonly label: string;
  readonly def: Job;
  readonly ctx: Contexts;
  readonly wf: Workflow;
  readonly permissions: unknown;
}

function cartesian(axes: [string, Value[]][]): Record<string, Value>[] {
  return axes.reduce<Record<string, Value>[]>((acc, [k, vs]) => acc.flatMap((a) => vs.map((v) => ({ ...a, [k]: v }))), [{}]);
}

/** Values of workflow_dispatch / workflow_call inputs: each choice or boolean, else the run-time value. */
function inputAxes(inputs: Record<string, { type?: string; options?: string[]; default?: unknown; required?: boolean }> | undefined, name: string): [string, Value[]][] {
  return Object.entries(inputs ?? {}).map(([k, d]) => {
    if (d.type === "choice" && d.options) return [k, d.options];
    if (d.type === "boolean") return [k, [true, false]];
    return [k, [{ sym: `${name} input ${k}`, maybeEmpty: !d.required && d.default === undefined }]];
  });
}

function triggers(on: unknown): string[] {
  if (typeof on === "string") return [on];
  if (Array.isArray(on)) return on as string[];
  return Object.keys((on ?? {}) as object);
}

function hasIdTokenWrite(permissions: unknown): boolean {
  if (permissions === "write-all") return true;
  return typeof permissions === "object" && permissions !== null && (permissions as Record<string, unknown>)["id-token"] === "write";
}

function instances(workflows: Record<string, Workflow>): Instance[] {
  const out: Instance[] = [];
  const expand = (file: string, wf: Workflow, jobId: string, def: Job, base: Contexts, prefix: string) => {
    const matrix = Object.entries(def.strategy?.matrix ?? {});
    if (matrix.some(([k]) => k === "include" || k === "exclude")) throw new Error(`${file} ${jobId}: matrix include/exclude is not supported by this check`);
    for (const m of cartesian(matrix.map(([k, v]) => [k, (v as unknown[]).map((x) => x as Value)]))) {
      const ctx: Contexts = { ...base, matrix: m };
      if (!mayRun(def.if, ctx)) continue;
      const values = [...Object.values(m), ...Object.values(base.inputs ?? {}).filter((v) => !isSymbolic(v))].map(String);
      const label = `${prefix}${jobId}${values.length ? ` (${values.join(", ")})` : ""}`;
      if (def.uses) {
        const callee = workflows[basename(def.uses)];
        if (!def.uses.startsWith("./.github/workflows/") || !callee) throw new Error(`${file} ${jobId}: reusable workflow ${def.uses} not found`);
        const withValues = Object.fromEntries(Object.entries(def.with ?? {}).map(([k, v]) => [k, interpolate(v, ctx)]));
        const declared = ((callee.on as Record<string, { inputs?: Record<string, { default?: unknown }> }>).workflow_call?.inputs) ?? {};
        const inputs = Object.fromEntries(Object.entries(declared).map(([k, d]) => [k, (withValues[k] ?? d.default ?? null) as Value]));
        const secrets = def.secrets === "inherit" ? undefined : new Set(Object.keys(def.secrets ?? {}));
        for (const [calleeJob, calleeDef] of Object.entries(callee.jobs)) {
          expand(basename(def.uses), callee, calleeJob, calleeDef, { inputs, secrets }, `${file} ${label} -> `);
        }
        continue;
      }
      out.push({ workflow: file, job: jobId, label, def, ctx, wf, permissions: def.permissions ?? wf.permissions });
    }
  };
  for (const [file, wf] of Object.entries(workflows)) {
    const on = triggers(wf.on);
    if (on.length === 1 && on[0] === "workflow_call") continue;
    const dispatch = (wf.on as Record<string, { inputs?: Parameters<typeof inputAxes>[0] }>)?.workflow_dispatch;
    for (const inputs of cartesian(inputAxes(dispatch?.inputs, file))) {
      for (const [jobId, def] of Object.entries(wf.jobs)) expand(file, wf, jobId, def, { inputs }, "");
    }
  }
  return out;
}

/** `$NAME` / `${NAME}` of the step's concrete env substituted into a command line. */
function substitute(text: string, env: Record<string, Value>): string {
  return text.replace(/\$\{?([A-Za-z_]\w*)\}?/g, (all, name: string) => {
    const v = env[name];
    return v !== undefined && !isSymbolic(v) && v !== null ? String(v) : all;
  });
}

/** A `run:` text with each `${{ }}` replaced by its value, or `<expression>` when only known at run time. */
function renderTemplate(text: string, ctx: Contexts): string {
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (all, expr: string) => {
    const v = interpolate(all, ctx);
    return isSymbolic(v) ? `<${expr.trim()}>` : v === null ? "" : String(v);
  });
}

const flagValue = (command: string, flag: string): string | undefined => new RegExp(`--${flag}[ =]"?([\\w.-]+)"?`).exec(command)?.[1];

/** The secrets provider is passphrase unless the stack file names another. */
function usesPassphrase(stackText: string | undefined): boolean {
  const provider = (parse(stackText ?? "") as { secretsprovider?: string } | null)?.secretsprovider;
  return provider === undefined || provider.startsWith("passphrase");
}

export function checkWiring(input: WiringInput): { problems: Problem[]; checked: Checked[] } {
  const workflows = Object.fromEntries(Object.entries(input.workflows).map(([f, t]) => [f, parse(t) as Workflow]));
  const problems: Problem[] = [];
  const checked: Checked[] = [];

  for (const inst of instances(workflows)) {
    const exported = new Map<string, Value>();
    const stepOutputs = new Set<string>();
    const kubeContexts = new Set<string>();
    const producedFiles = new Set<string>();
    let aws = false;
    let pulumiCli = false;
    let pulumiLoggedIn = false;
    const base: Record<string, Value> = Object.fromEntries(RUNNER_ENV.map((n) => [n, { sym: `runner ${n}`, maybeEmpty: false } as Value]));
    const levelEnv = (env: Record<string, unknown> | undefined, ctx: Contexts) => Object.fromEntries(Object.entries(env ?? {}).map(([k, v]) => [k, interpolate(v, ctx)]));
    const wfEnv = levelEnv(inst.wf.env, inst.ctx);
    const jobEnv = levelEnv(inst.def.env, { ...inst.ctx, env: wfEnv });

    (inst.def.steps ?? []).forEach((step, index) => {
      const stepName = step.name ?? step.uses ?? (step.run ?? "").split("\n")[0] ?? `step ${index + 1}`;
      const outer = { ...base, ...wfEnv, ...jobEnv, ...Object.fromEntries(exported) };
      const ctx: Contexts = { ...inst.ctx, env: outer, stepOutputs };
      if (!mayRun(step.if, ctx)) return;
      const env: Record<string, Value> = { ...outer, ...levelEnv(step.env, ctx) };
      const where = { workflow: inst.workflow, job: inst.label, step: stepName };
      const need = (variable: string, why: string, script?: string, ok = provided(env[variable] ?? null)) => {
        checked.push({ ...where, need: why, variable, ok });
        if (!ok) problems.push({ ...where, script, variable, message: `${inst.workflow} / ${inst.label} / step "${stepName}": ${why} needs ${variable}, which the step does not get` });
      };
      const fact = (ok: boolean, variable: string, why: string, script?: string) => need(variable, why, script, ok);

      /** What Pulumi needs for `stack`: always its passphrase and backend; `providers` adds what an update's providers read. */
      const stackNeeds = (stack: string, what: string, backendGiven: boolean, providers: boolean, script?: string) => {
        const need2 = (variable: string, why: string) => need(variable, why, script);
        const fact2 = (ok: boolean, variable: string, why: string) => fact(ok, variable, why, script);
        const text = input.stackFile(stack);
        if (text === undefined) return fact2(false, `Pulumi.${stack}.yaml`, `${what} of stack ${stack}`);
        const config = ((parse(text) as { config?: Record<string, unknown> } | null)?.config ?? {}) as Record<string, unknown>;
        const section = (name: string) => (config[`knhk:${name}`] ?? {}) as { enabled?: boolean; context?: string; kubeconfig?: string; renderDir?: string };
        if (usesPassphrase(text)) need2("PULUMI_CONFIG_PASSPHRASE", `${what} (passphrase secrets provider of ${stack})`);
        fact2(backendGiven || pulumiLoggedIn || provided(env.PULUMI_BACKEND_URL ?? null), "PULUMI_BACKEND_URL", `${what}: the state backend (cloud-url or PULUMI_BACKEND_URL)`);
        if (!providers) return;
        if (section("vault").enabled) {
          if (config["vault:address"] === undefined) need2("VAULT_ADDR", `${what}: the Vault provider of ${stack} (knhk:vault.enabled)`);
          if (config["vault:token"] === undefined) need2("VAULT_TOKEN", `${what}: the Vault provider of ${stack} (knhk:vault.enabled)`);
        }
        if (section("grafana").enabled) {
          if (config["grafana:url"] === undefined) need2("GRAFANA_URL", `${what}: the Grafana provider of ${stack} (knhk:grafana.enabled)`);
          if (config["grafana:auth"] === undefined) need2("GRAFANA_AUTH", `${what}: the Grafana provider of ${stack} (knhk:grafana.enabled)`);
        }
        if (section("aws").enabled) {
          fact2(aws, "AWS credentials", `${what}: the AWS provider of ${stack} (knhk:aws.enabled; aws-actions/configure-aws-credentials before it)`);
          if (config["aws:region"] === undefined) need2("AWS_REGION", `${what}: the AWS provider's region of ${stack}`);
        }
        const k8s = section("kubernetes");
        if (k8s.renderDir === undefined) {
          if (k8s.kubeconfig !== undefined) fact2(producedFiles.has(basename(k8s.kubeconfig)), k8s.kubeconfig, `${what}: the kubeconfig of ${stack} (knhk:kubernetes.kubeconfig), made by an earlier step`);
          else if (k8s.context !== undefined) fact2(kubeContexts.has(k8s.context), `kube context ${k8s.context}`, `${what}: the cluster of ${stack} (knhk:kubernetes.context)`);
        }
      };

      if (step.uses) {
        const action = step.uses.split("@")[0];
        const withValues = Object.fromEntries(Object.entries(step.with ?? {}).map(([k, v]) => [k, interpolate(v, ctx)]));
        if (needsIdToken(action, withValues)) fact(hasIdTokenWrite(inst.permissions), "permissions id-token: write", `${action} (OIDC)`);
        if (action === "aws-actions/configure-aws-credentials") {
          for (const k of ["role-to-assume", "aws-region"]) fact(provided(withValues[k] ?? null), `with.${k}`, action);
          aws = true;
        }
        if (action === "hashicorp/vault-action") fact(provided(withValues.url ?? null), "with.url", action);
        if (action === "pulumi/actions") {
          const command = withValues.command;
          if (command === undefined || command === null) pulumiCli = true;
          else if (["up", "preview", "refresh", "destroy"].includes(String(command))) {
            const stack = withValues["stack-name"];
            if (isSymbolic(stack) || typeof stack !== "string") throw new Error(`${inst.workflow} ${inst.label}: stack-name must be known for each job instance`);
            stackNeeds(stack, `pulumi ${command}`, provided(withValues["cloud-url"] ?? null), true);
          }
        }
        if (action === "actions/github-script") {
          for (const m of String(step.with?.script ?? "").matchAll(/process\.env\.([A-Za-z_]\w*)/g)) need(m[1], "its script");
        }
        for (const name of actionExports(action, withValues)) exported.set(name, { sym: `${action} ${name}`, maybeEmpty: false });
        if (step.id) for (const o of ACTION_OUTPUTS[action] ?? []) stepOutputs.add(`${step.id}.${o}`);
        return;
      }

      if (step.run) {
        const text = substitute(renderTemplate(step.run, ctx), env);
        if (step.id) for (const m of text.matchAll(/^\s*echo\s+"([A-Za-z_][\w-]*)=[^"\n]*"\s*>>\s*"?\$\{?GITHUB_OUTPUT/gm)) stepOutputs.add(`${step.id}.${m[1]}`);
        const commands = text.split(/\n|&&|;|\|\|?/).map((c) => c.trim()).filter(Boolean);
        for (const command of commands) {
          const npm = /^npm\s+run\s+(?:--silent\s+)?([\w:.-]+)/.exec(command);
          const bash = /^(?:bash|exec bash)\s+"?([\w./-]+\.sh|\.ci\/run)"?/.exec(command);
          const entry = npm ? input.npmScript(npm[1]) : bash ? { kind: "bash" as const, file: bash[1] } : undefined;
          if (/^aws\s/.test(command)) fact(aws, "AWS credentials", "the aws CLI (aws-actions/configure-aws-credentials before it)");
          const alias = /^aws\s+eks\s+update-kubeconfig\b.*--alias\s+"?([\w.-]+)"?/.exec(command)?.[1];
          if (alias) kubeContexts.add(alias);
          if (/^pulumi\s/.test(command)) fact(pulumiCli, "pulumi CLI", "the pulumi command (pulumi/actions installs it)");
          if (/^pulumi\s+login\s+\S/.test(command)) pulumiLoggedIn = true;
          for (const m of command.matchAll(/echo\s+"?([A-Za-z_]\w*)=.*>>\s*"?\$\{?GITHUB_ENV/g)) exported.set(m[1], { sym: "GITHUB_ENV", maybeEmpty: false });
          if (!entry) continue;
          const scripts = [input.script(entry.kind, entry.file)];
          for (const t of scripts[0].tsEntries ?? []) scripts.push(input.script("ts", t));
          const stack = flagValue(command, "stack");
          for (const s of scripts) {
            for (const f of s.files) producedFiles.add(basename(f));
            for (const f of s.files) {
              for (const m of input.readFile(f).matchAll(/[\w.-]+\.kubeconfig\b/g)) producedFiles.add(m[0]);
            }
            for (const read of s.reads.filter((r) => r.required)) need(read.name, `${s.entry} (${read.at})`, s.entry);
            if (s.tools.has("pulumi")) {
              fact(pulumiCli, "pulumi CLI", `${s.entry} runs pulumi (pulumi/actions installs it)`);
              // Reading state (outputs) needs the passphrase and backend; an update every provider's credentials.
              if (stack !== undefined) stackNeeds(stack, `${s.entry} (${s.tools.has("pulumi up") ? "pulumi up" : "pulumi"})`, false, s.tools.has("pulumi up"), s.entry);
            }
            if (s.tools.has("kubectl")) {
              const context = flagValue(command, "kube-context") ?? (stack !== undefined ? (parse(input.stackFile(stack) ?? "") as { config?: Record<string, { context?: string }> } | null)?.config?.["knhk:kubernetes"]?.context : undefined);
              if (context !== undefined) fact(kubeContexts.has(context), `kube context ${context}`, `${s.entry} runs kubectl`);
            }
          }
        }
      }
    });
  }
  return { problems, checked };
}
