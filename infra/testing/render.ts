/**
 * Offline render of a stack: evaluates the real program under Pulumi mocks (no engine, no cloud)
 * with the project name `knhk`, the given stack and the config of `Pulumi.<stack>.yaml`, and
 * records every registered resource (components, providers and the stack included).
 *
 * Used by `scripts/render.ts` (`npm run render`), the infra tests and the policy runner.
 * The Pulumi runtime state is process-global: render one stack at a time (awaited in sequence).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import * as YAML from "yaml";
import { arnAccount } from "../config/identifiers";

export const PROJECT = "knhk";
export const SECRET_PLACEHOLDER = "[secret]";
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface RenderedResource {
  /** Pulumi type token, e.g. `kubernetes:apps/v1:StatefulSet`, `knhk:database:PatroniCluster`. */
  readonly type: string;
  /** Pulumi resource name (not the Kubernetes metadata.name). */
  readonly name: string;
  readonly urn: string;
  /** URN of the parent resource; null only for the stack itself. */
  readonly parent: string | null;
  /** Inputs as sent to the engine, secrets replaced by `[secret]`. */
  readonly inputs: Record<string, unknown>;
}

/** A Kubernetes object as it would be applied (the inputs of a `kubernetes:*` resource). */
export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly [k: string]: unknown };
  readonly [k: string]: unknown;
}

export interface RenderResult {
  readonly stack: string;
  readonly resources: RenderedResource[];
  readonly k8sObjects: K8sObject[];
  /** Stack outputs, secrets replaced by `[secret]`. */
  readonly outputs: Record<string, unknown>;
}

export interface RenderOptions {
  /** Folder holding Pulumi.yaml and Pulumi.<stack>.yaml (default: the repository root). */
  readonly projectDir?: string;
  /** Replaces the stack file's config (keys like `knhk:app`), e.g. to test bad values. */
  readonly config?: Record<string, unknown>;
  /**
   * Merged over the config (objects key by key, anything else replaced): supplies what a stack file
   * leaves to the deploying team, e.g. the account-specific identifiers tests fill in.
   */
  readonly overlay?: Record<string, unknown>;
  /** Full keys of `config` to mark as secret. */
  readonly secretKeys?: readonly string[];
  /** Receives every recorded resource, also when the program fails (e.g. to assert none was declared). */
  readonly collect?: RenderedResource[];
}

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** The `config:` map of `Pulumi.<stack>.yaml`. */
export function readStackConfigFile(stack: string, projectDir = REPO_ROOT): Record<string, unknown> {
  const file = path.join(projectDir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) throw new Error(`no stack file ${file} (stacks: ${listStacks(projectDir).join(", ")})`);
  const doc = YAML.parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  return doc?.config ?? {};
}

/** Stacks that have a `Pulumi.<stack>.yaml` next to Pulumi.yaml. */
export function listStacks(projectDir = REPO_ROOT): string[] {
  return fs
    .readdirSync(projectDir)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/** `overlay` over `base`: plain objects merge key by key, arrays and scalars replace. */
export function mergeConfig(base: Record<string, unknown>, overlay: Record<string, unknown>): Record<string, unknown> {
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overlay)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? mergeConfig(current, value) : value;
  }
  return out;
}

/** Pulumi passes every config value as text; structured values as JSON. */
function toRuntimeConfig(config: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

type Callback = (err: Error | null, resp?: { getUrn(): string }) => void;
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getObject(): unknown;
}

/** The stock mock monitor, plus a record of each registration with its parent and inputs. */
class RecordingMonitor extends MockMonitor {
  readonly records: RenderedResource[] = [];

  override async registerResource(req: RegisterRequest, callback: Callback): Promise<void> {
    const inputs = redactSecrets(pulumi.runtime.deserializeProperties(req.getObject() as Parameters<typeof pulumi.runtime.deserializeProperties>[0])) as Record<string, unknown>;
    await super.registerResource(req, (err, resp) => {
      if (!err && resp) {
        this.records.push({ type: req.getType(), name: req.getName(), urn: resp.getUrn(), parent: req.getParent() || null, inputs });
      }
      callback(err, resp);
    });
  }
}

/**
 * The account the offline render pretends to deploy into: the one of the configured IRSA provider
 * (the deploying identity and the cluster share an account), so no invented id appears in the
 * rendered ARNs. Without AWS in the stack nothing asks for it.
 */
function mockAccount(config: Record<string, unknown>): string {
  const aws = config["knhk:aws"];
  const section = typeof aws === "string" ? (JSON.parse(aws) as unknown) : aws;
  const arn = (section as { oidcProviderArn?: unknown } | undefined)?.oidcProviderArn;
  return (typeof arn === "string" ? arnAccount(arn) : undefined) ?? "(no knhk:aws.oidcProviderArn configured)";
}

function mockIdentity(account: string) {
  return { accountId: account, arn: `arn:aws:iam::${account}:user/render`, userId: "RENDER", id: account };
}

/** Provider-computed outputs the program reads (AWS ARNs), made deterministic for the offline render. */
function mockState(account: string, type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  if (type === "aws:s3/bucket:Bucket") return { ...inputs, arn: `arn:aws:s3:::${String(inputs.bucket ?? name)}` };
  if (type.startsWith("aws:")) {
    const [, service] = /^aws:([a-z0-9]+)\//.exec(type) ?? [];
    return { ...inputs, arn: `arn:aws:${service}::${account}:${name}` };
  }
  return inputs;
}

/** Replaces every secret (as deserialized by the runtime) by `[secret]`, recursively. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SECRET_SIG_KEY] === SECRET_SIG) return SECRET_PLACEHOLDER;
    if (pulumi.Resource.isInstance(value)) return "[resource]";
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, redactSecrets(v)]));
  }
  return value;
}

/**
 * Evaluates the program for `stack` under mocks and returns every resource and every
 * Kubernetes object. Throws the program's error (e.g. a StackConfigError) unchanged.
 */
export async function renderStack(stack: string, options: RenderOptions = {}): Promise<RenderResult> {
  const base = options.config ?? readStackConfigFile(stack, options.projectDir);
  const config = options.overlay ? mergeConfig(base, options.overlay) : base;
  pulumi.runtime.setAllConfig(toRuntimeConfig(config), [...(options.secretKeys ?? [])]);

  const account = mockAccount(config);
  const monitor = new RecordingMonitor({
    newResource: (args) => ({ id: args.custom ? `${args.name}-id` : undefined, state: mockState(account, args.type, args.name, args.inputs) }),
    call: (args) => (args.token === "aws:index/getCallerIdentity:getCallerIdentity" ? mockIdentity(account) : args.inputs),
  });
  // What pulumi.runtime.setMocks does, with our monitor.
  const settings = require("@pulumi/pulumi/runtime/settings") as {
    setMockOptions(m: unknown, project: string, stack: string, preview: boolean): void;
    waitForRPCs(): Promise<void>;
  };
  const state = require("@pulumi/pulumi/runtime/state") as { getStore(): Record<string, boolean> };
  settings.setMockOptions(monitor, PROJECT, stack, false);
  Object.assign(state.getStore(), {
    supportsSecrets: true,
    supportsResourceReferences: true,
    supportsOutputValues: false,
    supportsDeletedWith: true,
    supportsAliasSpecs: true,
    supportsTransforms: false,
  });

  // Loaded after the mocks are in place: the program module must see this runtime state.
  const { knhkProgram } = require("../program") as typeof import("../program");
  let programError: unknown;
  const outputs = await pulumi.runtime.runInPulumiStack(async () => {
    try {
      return await knhkProgram();
    } catch (err) {
      programError = err;
      return {};
    }
  });
  await settings.waitForRPCs();
  options.collect?.push(...monitor.records);
  if (programError !== undefined) throw programError;

  const resources = monitor.records;
  return { stack, resources, k8sObjects: kubernetesObjects(resources), outputs: redactSecrets(outputs ?? {}) as Record<string, unknown> };
}

/** Kubernetes objects are the inputs of `kubernetes:*` resources (not the provider itself). */
export function kubernetesObjects(resources: readonly RenderedResource[]): K8sObject[] {
  return resources
    .filter((r) => r.type.startsWith("kubernetes:") && typeof r.inputs.kind === "string" && typeof r.inputs.apiVersion === "string")
    .map((r) => r.inputs as unknown as K8sObject);
}

/** `<kind>-<namespace>-<name>.yaml` (cluster-scoped objects: `<kind>-<name>.yaml`), lower-case. */
export function manifestFileName(obj: K8sObject): string {
  const parts = [obj.kind, obj.metadata.namespace, obj.metadata.name].filter((p): p is string => !!p);
  return `${parts.join("-").toLowerCase().replace(/[^a-z0-9.-]/g, "_")}.yaml`;
}

/** Writes `<outDir>/resources.json` and one YAML file per Kubernetes object under `<outDir>/k8s/`. */
export function writeRender(result: RenderResult, outDir: string): { resourcesFile: string; manifestDir: string; files: string[] } {
  const manifestDir = path.join(outDir, "k8s");
  fs.rmSync(manifestDir, { recursive: true, force: true });
  fs.mkdirSync(manifestDir, { recursive: true });
  const resourcesFile = path.join(outDir, "resources.json");
  fs.writeFileSync(resourcesFile, `${JSON.stringify(result.resources, null, 2)}\n`);
  const files: string[] = [];
  for (const obj of result.k8sObjects) {
    const name = manifestFileName(obj);
    if (files.includes(name)) throw new Error(`two Kubernetes objects map to ${name}`);
    files.push(name);
    fs.writeFileSync(path.join(manifestDir, name), YAML.stringify(obj, { lineWidth: 0 }));
  }
  return { resourcesFile, manifestDir, files };
}
