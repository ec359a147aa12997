/**
 * Drives the real Pulumi engine (built or found by scripts/engine.sh) against a private copy of
 * the project: each workspace has its own file backend, PULUMI_HOME and rendered manifests, so
 * test runs never share state with each other or with `scripts/up-local.sh`.
 */
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";
import type { RenderedResource } from "../../infra/testing/render";

export const REPO = path.resolve(__dirname, "../..");
/** The local stack's passphrase default, as documented in the README (the stack holds no real secrets). */
export const LOCAL_PASSPHRASE = "knhk-local-only";

/** Top-level entries never copied into a workspace: dependencies, state, outputs, VCS. */
const NOT_COPIED = new Set(["node_modules", ".git", ".out", ".pulumi", ".tools", "coverage", "dist"]);

/**
 * The folder holding pulumi, pulumi-language-nodejs and pulumi-resource-kubernetes. Throws when
 * scripts/engine.sh cannot find or build them: CI builds the engine before the tests, so a missing
 * engine is a failure, never a skip.
 */
export function engineBinDir(): string {
  try {
    return execFileSync("bash", [path.join(REPO, "scripts/engine.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 16 * 1024 * 1024,
    }).trim();
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`scripts/engine.sh could not provide the Pulumi engine:\n${stderr || String(error)}`);
  }
}

export interface PulumiResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class Workspace {
  private constructor(
    /** The project copy: Pulumi.yaml, stack files, infra/, policy/, scripts/ ... */
    readonly dir: string,
    private readonly root: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** A fresh project copy whose `stack` is initialised with the passphrase secrets provider. */
  static async withStack(stack: string): Promise<Workspace> {
    const ws = Workspace.create(engineBinDir());
    await ws.pulumiOk(["stack", "init", stack, "--secrets-provider", "passphrase"]);
    return ws;
  }

  /** A fresh copy of the project with an empty file backend. */
  static create(binDir: string): Workspace {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "knhk-engine-"));
    const dir = path.join(root, "project");
    fs.mkdirSync(dir);
    for (const entry of fs.readdirSync(REPO)) {
      if (NOT_COPIED.has(entry)) continue;
      fs.cpSync(path.join(REPO, entry), path.join(dir, entry), { recursive: true });
    }
    fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"), "dir");
    const state = path.join(root, "state");
    const home = path.join(root, "pulumi-home");
    fs.mkdirSync(state);
    fs.mkdirSync(home);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ""}`,
      PULUMI_HOME: home,
      PULUMI_BACKEND_URL: `file://${state}`,
      PULUMI_CONFIG_PASSPHRASE: LOCAL_PASSPHRASE,
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      NO_COLOR: "1",
    };
    delete env.PULUMI_ACCESS_TOKEN;
    return new Workspace(dir, root, env);
  }

  /** Runs `pulumi <args>` in the project copy; resolves with the exit code, never rejects on failure. */
  pulumi(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<PulumiResult> {
    return this.run("pulumi", [...args, "--color", "never", "--non-interactive"], extraEnv);
  }

  /** Like `pulumi`, but throws with the engine's output when the command fails. */
  async pulumiOk(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<PulumiResult> {
    const result = await this.pulumi(args, extraEnv);
    if (result.code !== 0) {
      throw new Error(`pulumi ${args.join(" ")} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
    }
    return result;
  }

  /** Runs any command in the project copy with the engine environment. */
  run(command: string, args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<PulumiResult> {
    return new Promise((resolve, reject) => {
      execFile(
        command,
        [...args],
        { cwd: this.dir, env: { ...this.env, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error && typeof error.code !== "number") return reject(error);
          resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
        },
      );
    });
  }

  /** Puts `dir` first on the PATH of every later command (e.g. the local cluster's kubectl). */
  prependPath(dir: string): void {
    this.env.PATH = `${dir}${path.delimiter}${this.env.PATH ?? ""}`;
  }

  /** Absolute path of a file or folder inside the project copy. */
  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export interface PreviewStep {
  readonly op: string;
  readonly urn: string;
  /** Changed property paths, e.g. { "spec.maxReplicas": { kind: "update" } }. */
  readonly detailedDiff?: Record<string, unknown> | null;
}

export interface Preview {
  readonly steps: PreviewStep[];
  /** Count of resources per operation, e.g. { same: 40, update: 2 }. */
  readonly changeSummary: Record<string, number>;
}


/**
 * `type::name` of a URN. The mock monitor spells parent types into URNs differently from the
 * engine (it includes the stack's type), so resources are matched on their own type and name.
 */
export function resourceKey(urn: string): string {
  const [, , qualifiedType, name] = urn.split("::");
  return `${qualifiedType.split("$").pop()}::${name}`;
}

/** `npm run render` in the workspace: the program under mocks, with the workspace's stack config. */
export async function mockRender(ws: Workspace, stack: string, name: string): Promise<{ resources: RenderedResource[]; k8sDir: string }> {
  const out = ws.path(".out", `mock-${name}`);
  const tsx = ws.path("node_modules", ".bin", "tsx");
  const result = await ws.run(tsx, ["scripts/render.ts", "--stack", stack, "--out", out]);
  if (result.code !== 0) throw new Error(`mock render failed:\n${result.stdout}\n${result.stderr}`);
  const resources = JSON.parse(fs.readFileSync(path.join(out, "resources.json"), "utf8")) as RenderedResource[];
  return { resources, k8sDir: path.join(out, "k8s") };
}

export async function preview(ws: Workspace, stack: string): Promise<Preview> {
  const result = await ws.pulumiOk(["preview", "--stack", stack, "--json"]);
  return JSON.parse(result.stdout) as Preview;
}

/** Changes `knhk:<section>` path `keys` in the workspace's stack file, keeping the rest of the file. */
export function updateStackConfig(ws: Workspace, stack: string, section: string, keys: string[], update: (old: unknown) => unknown): void {
  const file = ws.path(`Pulumi.${stack}.yaml`);
  const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
  const at = ["config", `knhk:${section}`, ...keys];
  doc.setIn(at, update(doc.getIn(at)));
  fs.writeFileSync(file, doc.toString());
}

/** Points the workspace's stack at a folder of rendered manifests instead of a cluster. */
export function useRenderDir(ws: Workspace, stack: string, dir: string): void {
  updateStackConfig(ws, stack, "kubernetes", [], () => ({ renderDir: dir }));
}
