/**
 * `npm run release -- <stage|switch|rollback|restore|correct> --stack <stack> [options]`
 *
 * One release step as an edit of `Pulumi.<stack>.yaml` in this work tree (comments kept): commit
 * it and open a pull request as for any change; the pull request previews it and the apply
 * workflow releases it. `npm run release:propose` makes the same edit on main and opens the pull
 * request itself. Steps and options: scripts/lib/release/steps.ts.
 * Exit 0 edited, 1 refused (the reason names the key), 2 bad usage.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { consoleLogger } from "./lib/deploy/adapters";
import { REPO_ROOT, runMain } from "./lib/deploy/cli";
import { stackFileName } from "./lib/release/stack-file";
import { parseStep } from "./lib/release/steps";

async function main(): Promise<number> {
  const { step, values } = parseStep(process.argv.slice(2), { dir: { type: "string", default: REPO_ROOT } });
  const fileName = stackFileName(step.stack);
  const file = join(values.dir as string, fileName);
  const edit = step.proposal.edit(readFileSync(file, "utf8"), fileName);
  writeFileSync(file, edit.text);
  console.log(`${fileName}: ${edit.key} ${edit.from} -> ${edit.to}`);
  console.log(`commit it as "${step.proposal.title}" and open a pull request; ${step.proposal.body.split("\n\n").pop()}`);
  return 0;
}

runMain("release", main, consoleLogger);
