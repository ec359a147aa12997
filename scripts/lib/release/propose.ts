/**
 * A release step as a commit: the stack file edit is made on the tip of the base branch in a
 * separate git worktree (the caller's checkout, which the apply job is deploying, stays as it is),
 * committed, and pushed either to a release branch with a pull request (`pr`) or, for a
 * correction of a failed step, straight to the base branch (`push`). Git authenticates with the
 * given token through the environment, never on a command line.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../deploy/adapters";
import { RefusedError } from "../deploy/errors";
import type { Logger } from "../deploy/ports";
import { stackFileName, type StackEdit } from "./stack-file";

export interface PullRequestPort {
  /** Opens a pull request from `head` into `base`; resolves with its URL. */
  create(o: { cwd: string; base: string; head: string; title: string; body: string }): Promise<string>;
}

export interface ProposeOptions {
  /** A clone of the repository (the workflow's checkout). */
  readonly repo: string;
  readonly remote: string;
  readonly base: string;
  readonly stack: string;
  readonly mode: "pr" | "push";
  /** Token git pushes with (a GitHub App installation token, so the push starts the workflows). */
  readonly token: string;
  readonly author: { readonly name: string; readonly email: string };
  readonly pullRequests: PullRequestPort;
  readonly log: Logger;
}

export interface Proposal {
  readonly title: string;
  readonly body: string;
  /** Branch name suffix for `pr`: release/<stack>/<slug>. */
  readonly slug: string;
  readonly edit: (text: string, file: string) => StackEdit;
}

export interface Proposed {
  readonly commit: string;
  readonly branch: string;
  readonly edit: StackEdit;
  readonly url?: string;
}

/** git's `-c` settings as environment (GIT_CONFIG_COUNT/KEY/VALUE), so the token is not in argv. */
export function gitAuthEnv(token: string, identity: ProposeOptions["author"]): NodeJS.ProcessEnv {
  const basic = Buffer.from(`x-access-token:${token}`).toString("base64");
  const settings: [string, string][] = [
    ["http.extraheader", `AUTHORIZATION: basic ${basic}`],
    ["user.name", identity.name],
    ["user.email", identity.email],
  ];
  const env: NodeJS.ProcessEnv = { GIT_CONFIG_COUNT: String(settings.length), GIT_TERMINAL_PROMPT: "0" };
  settings.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  return env;
}

/** A branch-name-safe slug: the proposal's own words, nothing a ref cannot hold. */
export function slugOf(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/\.{2,}/g, ".").replace(/^[-.]+|[-.]+$/g, "").slice(0, 80) || "release";
}

export async function propose(o: ProposeOptions, p: Proposal): Promise<Proposed> {
  const env = { ...process.env, ...gitAuthEnv(o.token, o.author) };
  const git = async (cwd: string, ...args: string[]) => {
    const r = await runCommand("git", ["-C", cwd, ...args], { env });
    if (r.code !== 0) throw new RefusedError(`git ${args[0]} failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ")}`);
    return r.stdout.trim();
  };

  await git(o.repo, "fetch", "--quiet", o.remote, o.base);
  const dir = mkdtempSync(join(tmpdir(), "knhk-release-"));
  const tree = join(dir, "tree");
  await git(o.repo, "worktree", "add", "--quiet", "--detach", tree, "FETCH_HEAD");
  try {
    const fileName = stackFileName(o.stack);
    const file = join(tree, fileName);
    const edit = p.edit(readFileSync(file, "utf8"), `${fileName} on ${o.remote}/${o.base}`);
    writeFileSync(file, edit.text);
    await git(tree, "add", "--", fileName);
    await git(tree, "commit", "--quiet", "-m", p.title, "-m", p.body);
    const commit = await git(tree, "rev-parse", "HEAD");
    const branch = o.mode === "push" ? o.base : `release/${o.stack}/${slugOf(p.slug)}`;
    if (o.mode === "push") {
      // Not forced: if the base moved since the fetch, the push fails and nothing is lost.
      await git(tree, "push", "--quiet", o.remote, `HEAD:refs/heads/${o.base}`);
      o.log.info(`pushed ${commit.slice(0, 12)} to ${o.base}: ${p.title}`);
      return { commit, branch, edit };
    }
    await git(tree, "push", "--quiet", "--force", o.remote, `HEAD:refs/heads/${branch}`);
    const url = await o.pullRequests.create({ cwd: tree, base: o.base, head: branch, title: p.title, body: p.body });
    o.log.info(`opened ${url}: ${p.title}`);
    return { commit, branch, edit, url };
  } finally {
    await runCommand("git", ["-C", o.repo, "worktree", "remove", "--force", tree], { env });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `gh pr create` (GH_TOKEN in its environment). */
export class GhPullRequests implements PullRequestPort {
  constructor(private readonly o: { bin: string; token: string }) {}
  async create(p: { cwd: string; base: string; head: string; title: string; body: string }): Promise<string> {
    const r = await runCommand(this.o.bin, ["pr", "create", "--base", p.base, "--head", p.head, "--title", p.title, "--body", p.body], {
      cwd: p.cwd,
      env: { ...process.env, GH_TOKEN: this.o.token },
    });
    if (r.code !== 0) throw new RefusedError(`gh pr create failed: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout.trim().split("\n").pop() ?? "";
  }
}
