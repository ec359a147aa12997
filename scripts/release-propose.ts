/**
 * `npm run release:propose -- <step> --stack <stack> [options] (--pr | --push) [--remote origin] [--gh gh]`
 *
 * The release step of `npm run release` made on the tip of main in a separate worktree and
 * committed: `--pr` pushes a release/<stack>/... branch and opens a pull request (the release
 * workflow, and the apply job after a smoke test passed); `--push` commits straight to main (the
 * apply job's correction after a failed check, which it has already applied). GH_TOKEN: a token
 * whose pushes and pull requests start workflows (a GitHub App installation token; pull requests
 * opened with the workflow's own GITHUB_TOKEN get no checks).
 * Exit 0 proposed, 1 refused, 2 bad usage.
 */
import { consoleLogger } from "./lib/deploy/adapters";
import { REPO_ROOT, runMain, UsageError } from "./lib/deploy/cli";
import { requiredEnv } from "./lib/deploy/errors";
import { GhPullRequests, propose } from "./lib/release/propose";
import { RELEASE_BASE_BRANCH } from "./lib/release/stacks";
import { parseStep } from "./lib/release/steps";

/** Who the release commits are by (the token decides who pushes). */
export const RELEASE_AUTHOR = { name: "knhk-release", email: "knhk-release@users.noreply.github.com" };

async function main(): Promise<number> {
  const { step, values } = parseStep(process.argv.slice(2), {
    pr: { type: "boolean", default: false },
    push: { type: "boolean", default: false },
    remote: { type: "string", default: "origin" },
    gh: { type: "string", default: "gh" },
  });
  if (values.pr === values.push) throw new UsageError("give exactly one of --pr (a pull request) and --push (a commit on main)");
  const token = requiredEnv(process.env, "GH_TOKEN", "a GitHub App installation token allowed to push and open pull requests");
  const proposed = await propose(
    {
      repo: REPO_ROOT,
      remote: values.remote as string,
      base: RELEASE_BASE_BRANCH,
      stack: step.stack,
      mode: values.pr ? "pr" : "push",
      token,
      author: RELEASE_AUTHOR,
      pullRequests: new GhPullRequests({ bin: values.gh as string, token }),
      log: consoleLogger,
    },
    step.proposal,
  );
  console.log(JSON.stringify({ step: step.name, stack: step.stack, key: proposed.edit.key, from: proposed.edit.from, to: proposed.edit.to, commit: proposed.commit, branch: proposed.branch, url: proposed.url }));
  return 0;
}

runMain("release:propose", main, consoleLogger);
