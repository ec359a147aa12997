/** The wiring check's inputs read from this repository (workflows, stack files, scripts). */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { analyzeBash, analyzeTypeScript, npmScriptEntry, type ScriptEnv } from "./env-reads";
import type { WiringInput } from "./wiring";

export const REPO = join(__dirname, "..", "..", "..");
export const WORKFLOWS_DIR = join(REPO, ".github", "workflows");

export function repoWorkflows(): Record<string, string> {
  return Object.fromEntries(readdirSync(WORKFLOWS_DIR).filter((f) => /\.ya?ml$/.test(f)).map((f) => [f, readFileSync(join(WORKFLOWS_DIR, f), "utf8")]));
}

/** Every TypeScript entry `npm run` can start (one compiler program for all of them). */
function tsEntries(): string[] {
  const scripts = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  return [...new Set(Object.keys(scripts).map((n) => npmScriptEntry(n, REPO)).filter((e) => e?.kind === "ts").map((e) => e!.file))];
}

/** Wiring input over the repository; TypeScript entries are analysed once, on first use. */
export function repoWiringInput(workflows: Record<string, string> = repoWorkflows()): WiringInput {
  let ts: Map<string, ScriptEnv> | undefined;
  const bash = new Map<string, ScriptEnv>();
  return {
    workflows,
    stackFile: (stack) => (existsSync(join(REPO, `Pulumi.${stack}.yaml`)) ? readFileSync(join(REPO, `Pulumi.${stack}.yaml`), "utf8") : undefined),
    script: (kind, file) => {
      if (kind === "bash") {
        if (!bash.has(file)) bash.set(file, analyzeBash(file, REPO));
        return bash.get(file)!;
      }
      ts ??= analyzeTypeScript(tsEntries(), REPO);
      if (!ts.has(file)) ts = new Map([...ts, ...analyzeTypeScript([file], REPO)]);
      return ts.get(file)!;
    },
    npmScript: (name) => npmScriptEntry(name, REPO),
    readFile: (file) => readFileSync(join(REPO, file), "utf8"),
  };
}
