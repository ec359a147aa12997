/**
 * The GitHub workflows: actionlint (installed by scripts/install-deps.sh from the Go module
 * proxy) passes, catches a seeded mistake, and the workflows have the promised shape.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";

const REPO = join(__dirname, "..", "..");
const WORKFLOWS = join(REPO, ".github", "workflows");
const ACTIONLINT = [process.env.ACTIONLINT, join(REPO, ".tools", "go-bin", "actionlint")].find((p): p is string => !!p && existsSync(p));

const workflow = (file: string) => parse(readFileSync(join(WORKFLOWS, file), "utf8"));

function stepUsing(job: { steps: { uses?: string; with?: Record<string, unknown> }[] }, action: string) {
  const step = job.steps.find((s) => s.uses?.startsWith(`${action}@`));
  if (!step) throw new Error(`no step uses ${action}`);
  return step;
}

describe("actionlint", () => {
  test("is installed (scripts/install-deps.sh) and passes on .github/workflows", () => {
    if (!ACTIONLINT) throw new Error("actionlint is missing: run `bash scripts/install-deps.sh` (go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12 into .tools/go-bin)");
    const r = spawnSync(ACTIONLINT, ["-no-color"], { cwd: REPO, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  test("fails on a seeded mistake (an input pulumi/actions does not have)", () => {
    const dir = mkdtempSync(join(tmpdir(), "knhk-actionlint-"));
    try {
      execFileSync("git", ["init", "-q", dir]);
      cpSync(WORKFLOWS, join(dir, ".github", "workflows"), { recursive: true });
      const file = join(dir, ".github", "workflows", "pull-request.yml");
      writeFileSync(file, readFileSync(file, "utf8").replace("always-include-summary: true", "always-include-sumary: true"));
      const r = spawnSync(ACTIONLINT!, ["-no-color"], { cwd: dir, encoding: "utf8" });
      expect(r.status).toBe(1);
      expect(r.stdout).toContain('input "always-include-sumary" is not defined in action "pulumi/actions@v6"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("pull-request workflow", () => {
  const wf = workflow("pull-request.yml");

  test("runs on pull requests with a preview job per stack, policy pack and PR comments", () => {
    expect(Object.keys(wf.on)).toEqual(["pull_request"]);
    const preview = wf.jobs.preview;
    expect(preview.strategy.matrix.stack).toEqual(["local", "dev", "staging", "prod"]);
    const step = stepUsing(preview, "pulumi/actions");
    expect(step.with).toMatchObject({
      command: "preview",
      "stack-name": "${{ matrix.stack }}",
      policyPacks: "policy",
      "comment-on-pr": true,
      "edit-pr-comment": true,
      "always-include-summary": true,
    });
  });

  test("the offline job renders the diff against the base branch and runs the policy pack per stack", () => {
    const offline = wf.jobs.offline;
    expect(offline.strategy.matrix.stack).toEqual(["local", "dev", "staging", "prod"]);
    const scripts = offline.steps.map((s: { run?: string }) => s.run ?? "").join("\n");
    expect(scripts).toContain('npm run --silent diff -- --stack "${{ matrix.stack }}" --base "origin/${{ github.base_ref }}"');
    expect(scripts).toContain('npm run --silent policy -- --stack "${{ matrix.stack }}"');
    expect(offline.steps.find((s: { uses?: string }) => s.uses?.startsWith("actions/checkout@")).with["fetch-depth"]).toBe(0);
  });
});

describe("deploy workflow", () => {
  test("on main: pulumi up in order dev -> staging -> prod, each in its GitHub environment", () => {
    const wf = workflow("deploy.yml");
    expect(wf.on).toEqual({ push: { branches: ["main"] } });
    expect(Object.keys(wf.jobs)).toEqual(["dev", "staging", "prod"]);
    expect(wf.jobs.dev.needs).toBeUndefined();
    expect(wf.jobs.staging.needs).toBe("dev");
    expect(wf.jobs.prod.needs).toBe("staging");
    for (const stack of ["dev", "staging", "prod"]) {
      expect(wf.jobs[stack]).toMatchObject({ uses: "./.github/workflows/pulumi-up.yml", with: { stack } });
    }
    const up = workflow("pulumi-up.yml").jobs.up;
    expect(up.environment).toBe("${{ inputs.stack }}");
    expect(up.concurrency).toEqual({ group: "pulumi-${{ inputs.stack }}", "cancel-in-progress": false });
    expect(stepUsing(up, "pulumi/actions").with).toMatchObject({ command: "up", "stack-name": "${{ inputs.stack }}", policyPacks: "policy" });
  });
});
