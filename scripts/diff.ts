/**
 * `npm run diff -- --stack <stack> --base <git-ref> [--head <git-ref>] [--format markdown|json] [--out <file>] [--json-out <file>]`
 *
 * Renders the stack offline (`npm run render`) at the base ref and at the working tree (or a
 * head ref) and prints the resource-level diff: Markdown for a pull-request comment, or JSON.
 * The base is exported with `git archive` into a temp folder (read-only for the repository:
 * no worktree registration to clean up) and reuses this checkout's node_modules via a symlink.
 * Exit 0 on success (changes or not), 2 on bad usage or a failed render.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { diffStacks, toMarkdown, type DiffResource, type StackDiff } from "./lib/diff";

export interface DiffOptions {
  readonly repo: string;
  readonly stack: string;
  readonly base: string;
  /** A git ref; absent: the working tree as it is. */
  readonly head?: string;
}

/** Runs `npm run render` for `stack` in `dir` and returns its resources.json. */
export function renderIn(dir: string, stack: string, label: string): DiffResource[] {
  const out = mkdtempSync(join(tmpdir(), "knhk-diff-out-"));
  try {
    const result = spawnSync("npm", ["run", "--silent", "render", "--", "--stack", stack, "--out", out], { cwd: dir, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (result.status !== 0) {
      throw new Error(`render of stack ${stack} at ${label} failed (exit ${result.status}):\n${(result.stderr || result.stdout).trim().split("\n").slice(-15).join("\n")}`);
    }
    return JSON.parse(readFileSync(join(out, "resources.json"), "utf8")) as DiffResource[];
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Exports `ref` of `repo` into a temp folder with node_modules linked; returns the folder. */
export function exportRef(repo: string, ref: string): string {
  const commit = execFileSync("git", ["-C", repo, "rev-parse", "--verify", `${ref}^{commit}`], { encoding: "utf8" }).trim();
  const dir = mkdtempSync(join(tmpdir(), "knhk-diff-base-"));
  const archive = spawnSync("sh", ["-c", `git -C "$0" archive --format=tar "$1" | tar -x -C "$2"`, repo, commit, dir], { encoding: "utf8" });
  if (archive.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`git archive ${ref} failed: ${archive.stderr.trim()}`);
  }
  // A committed node_modules symlink (gitignore's `node_modules/` only matches folders) would shadow ours.
  rmSync(join(dir, "node_modules"), { recursive: true, force: true });
  symlinkSync(join(repo, "node_modules"), join(dir, "node_modules"), "dir");
  return dir;
}

export function diffAgainst(options: DiffOptions): StackDiff {
  const baseDir = exportRef(options.repo, options.base);
  let headDir: string | undefined;
  try {
    const base = renderIn(baseDir, options.stack, `base ${options.base}`);
    if (options.head) headDir = exportRef(options.repo, options.head);
    const head = renderIn(headDir ?? options.repo, options.stack, options.head ? `head ${options.head}` : "the working tree");
    return diffStacks(base, head);
  } finally {
    rmSync(baseDir, { recursive: true, force: true });
    if (headDir) rmSync(headDir, { recursive: true, force: true });
  }
}

function main(): number {
  const { values } = parseArgs({
    options: {
      stack: { type: "string" },
      base: { type: "string" },
      head: { type: "string" },
      format: { type: "string", default: "markdown" },
      out: { type: "string" },
      "json-out": { type: "string" },
      repo: { type: "string", default: resolve(__dirname, "..") },
    },
  });
  if (!values.stack || !values.base) {
    console.error("usage: npm run diff -- --stack <stack> --base <git-ref> [--head <git-ref>] [--format markdown|json] [--out <file>] [--json-out <file>]");
    return 2;
  }
  if (values.format !== "markdown" && values.format !== "json") {
    console.error(`--format must be markdown or json, not ${JSON.stringify(values.format)}`);
    return 2;
  }
  const repo = resolve(values.repo!);
  if (!existsSync(join(repo, "node_modules"))) {
    console.error(`${repo} has no node_modules: run npm ci first`);
    return 2;
  }
  const diff = diffAgainst({ repo, stack: values.stack, base: values.base, head: values.head });
  const json = `${JSON.stringify({ stack: values.stack, base: values.base, head: values.head ?? null, ...diff }, null, 2)}\n`;
  const text = values.format === "json" ? json : toMarkdown(diff, { stack: values.stack, base: values.base, head: values.head });
  // One render pair, two outputs: the PR comment (Markdown) and a machine-readable artifact.
  if (values["json-out"]) writeFileSync(values["json-out"], json);
  if (values.out) writeFileSync(values.out, text);
  else process.stdout.write(text);
  return 0;
}

if (require.main === module) {
  try {
    process.exit(main());
  } catch (error) {
    console.error(`diff: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  }
}
