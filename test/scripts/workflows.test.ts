/**
 * The GitHub workflows: actionlint (installed by scripts/install-deps.sh from the Go module
 * proxy) passes, catches a seeded mistake, and the workflows have the promised shape; every job's
 * env and secrets wiring holds against the scripts it runs (workflow-env/wiring.ts: no runner can
 * execute the jobs here, so the check is static), and it fails on a seeded missing variable.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { APPLIED_BY_WORKFLOW } from "../../scripts/lib/release/stacks";
import { checkWiring } from "./workflow-env/wiring";
import { repoWiringInput, repoWorkflows } from "./workflow-env/repo";

const REPO = join(__dirname, "..", "..");
const WORKFLOWS = join(REPO, ".github", "workflows");
const ACTIONLINT = [process.env.ACTIONLINT, join(REPO, ".tools", "go-bin", "actionlint")].find((p): p is string => !!p && existsSync(p));

const workflow = (file: string) => parse(readFileSync(join(WORKFLOWS, file), "utf8"));

function stepUsing(job: { steps: { uses?: string; with?: Record<string, unknown> }[] }, action: string, command?: string) {
  const step = job.steps.find((s) => s.uses?.startsWith(`${action}@`) && (command === undefined || s.with?.command === command));
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
    expect(stepUsing(up, "pulumi/actions", "up").with).toMatchObject({ command: "up", "stack-name": "${{ inputs.stack }}", policyPacks: "policy" });
  });
});

describe("deploy and release workflows", () => {
  test("deploy.yml applies exactly the stacks the release scripts treat as applied by a workflow, and release.yml offers the same", () => {
    expect(Object.values(workflow("deploy.yml").jobs).map((j) => (j as { with: { stack: string } }).with.stack)).toEqual([...APPLIED_BY_WORKFLOW]);
    expect(workflow("release.yml").on.workflow_dispatch.inputs.stack.options).toEqual([...APPLIED_BY_WORKFLOW]);
  });

  test("release.yml deploys nothing: it opens pull requests with the release App's token", () => {
    const text = readFileSync(join(WORKFLOWS, "release.yml"), "utf8");
    expect(text).not.toMatch(/pulumi (up|login)|npm run --silent (deploy|rollback)\b|command: up/);
    const steps = workflow("release.yml").jobs.propose.steps as { run?: string; env?: Record<string, string> }[];
    const proposals = steps.filter((s) => s.run?.includes("release:propose"));
    expect(proposals).toHaveLength(2);
    for (const s of proposals) {
      expect(s.run).toMatch(/ --pr$/);
      expect(s.env?.GH_TOKEN).toBe("${{ steps.app-token.outputs.token }}");
    }
  });

  test("the apply job plans before pulumi up, verifies after it, commits a correction to main and proposes the switch", () => {
    const steps = (workflow("pulumi-up.yml").jobs.up.steps as { id?: string; uses?: string; run?: string; if?: string; with?: { command?: string } }[]);
    const index = (pred: (s: (typeof steps)[number]) => boolean) => steps.findIndex(pred);
    const plan = index((s) => s.id === "plan");
    const up = index((s) => s.uses?.startsWith("pulumi/actions@") === true && s.with?.command === "up");
    const verify = index((s) => s.id === "verify");
    const correction = index((s) => s.run?.includes("release:propose -- correct") === true);
    const sw = index((s) => s.run?.includes("release:propose -- switch") === true);
    expect([plan, up, verify, correction, sw].every((i) => i >= 0)).toBe(true);
    expect(plan).toBeLessThan(up);
    expect(up).toBeLessThan(verify);
    expect(verify).toBeLessThan(correction);
    expect(steps[correction].run).toMatch(/--push$/);
    expect(steps[sw].if).toBe("steps.verify.outputs.next == 'switch'");
  });
});

describe("env and secrets wiring of every workflow job", () => {
  const input = repoWiringInput();
  let result: ReturnType<typeof checkWiring>;
  beforeAll(() => {
    result = checkWiring(input);
  }, 180_000);

  test("every variable a called script or provider needs is provided (named by workflow, job, step, script)", () => {
    expect(result.problems.map((p) => p.message)).toEqual([]);
  });

  test("the check reached the release steps and the providers' credentials (it is not vacuous)", () => {
    const has = (job: RegExp, step: RegExp, variable: string) => result.checked.some((c) => job.test(c.job) && step.test(c.step) && c.variable === variable && c.ok);
    for (const stack of APPLIED_BY_WORKFLOW) {
      const job = new RegExp(`-> up \\(${stack}\\)$`);
      expect(has(job, /^pulumi up with the policy pack$/, "VAULT_TOKEN")).toBe(true);
      expect(has(job, /^pulumi up with the policy pack$/, "GRAFANA_AUTH")).toBe(true);
      expect(has(job, /^pulumi up with the policy pack$/, "AWS credentials")).toBe(true);
      expect(has(job, /^pulumi up with the policy pack$/, `kube context knhk-${stack}`)).toBe(true);
      expect(has(job, /^Release plan/, "PULUMI_CONFIG_PASSPHRASE")).toBe(true);
      expect(has(job, /^Release checks/, "DATABASE_URL")).toBe(true);
      expect(has(job, /^Open the switch pull request$/, "GH_TOKEN")).toBe(true);
    }
    expect(has(/^offline \(prod\)$/, /^Comment the diff/, "POLICY_STATUS")).toBe(true);
    expect(has(/^preview \(local\)$/, /^pulumi preview/, ".tools/local-cluster/admin.kubeconfig")).toBe(true);
    expect(has(/^preview \(prod\)$/, /^pulumi preview/, "VAULT_TOKEN")).toBe(true);
  });

  /** The repository's workflows with one change made to the parsed YAML of `file`. */
  function mutated(file: string, change: (wf: Record<string, any>) => void): Record<string, string> {
    const workflows = repoWorkflows();
    const wf = parse(workflows[file]);
    change(wf);
    return { ...workflows, [file]: stringify(wf) };
  }

  test("fails naming workflow, job, step, script and variable when a step loses a variable its script reads", () => {
    const workflows = mutated("pulumi-up.yml", (wf) => {
      const verify = wf.jobs.up.steps.find((s: { id?: string }) => s.id === "verify");
      delete verify.env.DATABASE_URL;
    });
    const { problems } = checkWiring({ ...input, workflows });
    expect(problems.filter((p) => p.variable === "DATABASE_URL").map((p) => [p.workflow, p.job, p.step, p.script])).toEqual(
      APPLIED_BY_WORKFLOW.map((stack) => ["pulumi-up.yml", `deploy.yml ${stack} -> up (${stack})`, expect.stringMatching(/^Release checks/), "scripts/release-verify.ts"]),
    );
    expect(problems[0].message).toMatch(/scripts\/release-verify\.ts \(scripts\/release-verify\.ts:\d+\) needs DATABASE_URL, which the step does not get/);
  });

  test("fails when the update loses a provider credential, the Vault token action or the kube context", () => {
    const noGrafana = checkWiring({ ...input, workflows: mutated("pulumi-up.yml", (wf) => {
      for (const s of wf.jobs.up.steps) if (s.env) delete s.env.GRAFANA_AUTH;
    }) });
    expect(new Set(noGrafana.problems.map((p) => `${p.job}: ${p.variable}`))).toEqual(new Set(APPLIED_BY_WORKFLOW.map((s) => `deploy.yml ${s} -> up (${s}): GRAFANA_AUTH`)));
    const noVault = checkWiring({ ...input, workflows: mutated("pulumi-up.yml", (wf) => {
      wf.jobs.up.steps = wf.jobs.up.steps.filter((s: { uses?: string }) => !s.uses?.startsWith("hashicorp/vault-action@"));
    }) });
    expect(noVault.problems.some((p) => p.variable === "VAULT_TOKEN" && p.step === "pulumi up with the policy pack")).toBe(true);
    const wrongAlias = checkWiring({ ...input, workflows: mutated("pulumi-up.yml", (wf) => {
      const k = wf.jobs.up.steps.find((s: { run?: string }) => s.run?.startsWith("aws eks update-kubeconfig"));
      k.run = k.run.replace('--alias "knhk-$STACK"', '--alias "$STACK"');
    }) });
    expect(wrongAlias.problems.map((p) => p.variable)).toContain("kube context knhk-prod");
    const noOidc = checkWiring({ ...input, workflows: mutated("pulumi-up.yml", (wf) => {
      wf.permissions = { contents: "read" };
    }) });
    expect(noOidc.problems.some((p) => p.variable === "permissions id-token: write")).toBe(true);
  });

  test("a synthetic workflow: the missing secret of a called script, and a reusable workflow called without its secrets", () => {
    const synthetic = {
      "smoke.yml": [
        "name: smoke",
        "on: push",
        "jobs:",
        "  live:",
        "    runs-on: ubuntu-24.04",
        "    steps:",
        "      - run: npm run --silent smoke-test -- --url http://127.0.0.1:8080 --metrics-url http://127.0.0.1:9090",
        "        env:",
        "          KNHK_SMOKE_TOKEN: ${{ secrets.KNHK_SMOKE_TOKEN }}",
        "  called:",
        "    uses: ./.github/workflows/callee.yml",
        "",
      ].join("\n"),
      "callee.yml": [
        "name: callee",
        "on: workflow_call",
        "jobs:",
        "  run:",
        "    runs-on: ubuntu-24.04",
        "    steps:",
        "      - run: npm run --silent smoke-test -- --url http://127.0.0.1:8080 --metrics-url http://127.0.0.1:9090",
        "        env:",
        "          KNHK_SMOKE_TOKEN: ${{ secrets.KNHK_SMOKE_TOKEN }}",
        "          KNHK_SMOKE_INGEST_TOKEN: ${{ secrets.KNHK_SMOKE_INGEST_TOKEN }}",
        "",
      ].join("\n"),
    };
    const { problems } = checkWiring({ ...input, workflows: synthetic });
    expect(problems.map((p) => [p.job, p.variable, p.script])).toEqual([
      ["live", "KNHK_SMOKE_INGEST_TOKEN", "scripts/smoke-test.ts"],
      ["smoke.yml called -> run", "KNHK_SMOKE_TOKEN", "scripts/smoke-test.ts"],
      ["smoke.yml called -> run", "KNHK_SMOKE_INGEST_TOKEN", "scripts/smoke-test.ts"],
    ]);
  });

  test("the release workflow this change replaced fails the check: its deploy script's pulumi up got no Vault or Grafana credentials", () => {
    const old = execFileSync("git", ["-C", REPO, "show", "c0b64b2:.github/workflows/release.yml"], { encoding: "utf8" });
    const { problems } = checkWiring({ ...input, workflows: { ...repoWorkflows(), "release.yml": old } });
    const missing = new Set(problems.filter((p) => p.workflow === "release.yml" && p.job === "release (prod, deploy)").map((p) => `${p.script}: ${p.variable}`));
    expect(missing).toEqual(new Set(["scripts/blue-green-deploy.ts: VAULT_ADDR", "scripts/blue-green-deploy.ts: VAULT_TOKEN", "scripts/blue-green-deploy.ts: GRAFANA_URL", "scripts/blue-green-deploy.ts: GRAFANA_AUTH"]));
  });
});
