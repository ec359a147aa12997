/**
 * `npm run release:check -- --stack <stack> --base <git ref>`
 *
 * The pull request's view of a release: compares `knhk:app` of `Pulumi.<stack>.yaml` at the base
 * ref with the work tree's and prints what the merge will do (stage a version on the idle colour,
 * switch traffic, or nothing). Refuses what blue-green does not allow: the serving colour's version
 * changed in place, or a switch to a colour whose version changes in the same merge.
 * Exit 0 allowed, 1 refused (naming the keys), 2 bad usage.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { consoleLogger, runCommand } from "./lib/deploy/adapters";
import { REPO_ROOT, requiredFlag, runMain, UsageError } from "./lib/deploy/cli";
import { readAppState, stackFileName } from "./lib/release/stack-file";
import { describeTransition, transition } from "./lib/release/transition";

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { stack: { type: "string" }, base: { type: "string" }, dir: { type: "string", default: REPO_ROOT } } });
  const stack = requiredFlag("stack", values.stack);
  const base = requiredFlag("base", values.base);
  const fileName = stackFileName(stack);
  const ref = await runCommand("git", ["-C", values.dir!, "rev-parse", "--verify", "--quiet", `${base}^{commit}`]);
  if (ref.code !== 0) throw new UsageError(`--base ${JSON.stringify(base)} is not a commit of this repository (fetch it first)`);
  const shown = await runCommand("git", ["-C", values.dir!, "show", `${base}:${fileName}`]);
  // A stack file the base does not have yet is a new stack: its first update is the initial deploy.
  const before = shown.code === 0 ? readAppState(shown.stdout, `${fileName} at ${base}`) : undefined;
  const after = readAppState(readFileSync(join(values.dir!, fileName), "utf8"), fileName);
  console.log(`${fileName}: ${describeTransition(transition(before, after, `${fileName} (${base} -> this change)`))}`);
  return 0;
}

runMain("release:check", main, consoleLogger);
