/**
 * The passphrase the pull-request workflow's preview sets for the `local` stack decrypts the salt
 * committed in Pulumi.local.yaml, with the real engine (scripts/engine.sh) and a file backend as
 * pulumi/actions uses it (`cloud-url: file://...`, `upsert`: `pulumi stack init local`, which checks
 * the passphrase against the salt's encrypted check value and keeps the committed salt). The
 * passphrase is taken from the workflow file by evaluating the step's expression for the `local`
 * matrix entry, not restated here. A secret set with it reads back; a wrong passphrase is refused.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { engineBinDir, REPO } from "../engine/engine";
import { runCommand } from "../../scripts/lib/deploy/adapters";
import { interpolate, isSymbolic } from "./workflow-env/expressions";

/** PULUMI_CONFIG_PASSPHRASE of the preview step for one matrix value of pull-request.yml. */
function previewPassphrase(stack: string): string {
  const wf = parse(readFileSync(join(REPO, ".github", "workflows", "pull-request.yml"), "utf8"));
  const step = wf.jobs.preview.steps.find((s: { uses?: string }) => s.uses?.startsWith("pulumi/actions@"));
  const value = interpolate(step.env.PULUMI_CONFIG_PASSPHRASE, { matrix: { stack } });
  if (typeof value !== "string" || value === "") throw new Error(`the preview of ${stack} sets no literal passphrase: ${JSON.stringify(value)}`);
  return value;
}

describe("the local stack's committed salt and the pull-request preview's passphrase", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const pulumi = (args: string[], passphrase: string) =>
    runCommand("pulumi", [...args, "--stack", "local", "--non-interactive", "--color", "never"], { cwd: join(dir, "project"), env: { ...env, PULUMI_CONFIG_PASSPHRASE: passphrase } });

  beforeAll(() => {
    const bin = engineBinDir();
    dir = mkdtempSync(join(tmpdir(), "knhk-passphrase-"));
    for (const d of ["project", "state", "home"]) mkdirSync(join(dir, d));
    for (const f of ["Pulumi.yaml", "Pulumi.local.yaml"]) copyFileSync(join(REPO, f), join(dir, "project", f));
    env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, PULUMI_HOME: join(dir, "home"), PULUMI_BACKEND_URL: `file://${join(dir, "state")}`, PULUMI_SKIP_UPDATE_CHECK: "true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true" };
    delete env.PULUMI_ACCESS_TOKEN;
  }, 600_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("the other stacks' previews take the passphrase from the repository secret", () => {
    for (const stack of ["dev", "staging", "prod"]) {
      const wf = parse(readFileSync(join(REPO, ".github", "workflows", "pull-request.yml"), "utf8"));
      const step = wf.jobs.preview.steps.find((s: { uses?: string }) => s.uses?.startsWith("pulumi/actions@"));
      const value = interpolate(step.env.PULUMI_CONFIG_PASSPHRASE, { matrix: { stack } });
      expect(isSymbolic(value) && value.sym).toBe("secrets.PULUMI_CONFIG_PASSPHRASE");
    }
  });

  test("a wrong passphrase cannot initialise the stack: the committed salt refuses it", async () => {
    const wrong = await pulumi(["stack", "init"], `${previewPassphrase("local")}-wrong`);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("incorrect passphrase");
  }, 120_000);

  test("the workflow's passphrase initialises the stack as pulumi/actions does, keeps the salt, and decrypts a secret", async () => {
    const passphrase = previewPassphrase("local");
    const salt = (parse(readFileSync(join(REPO, "Pulumi.local.yaml"), "utf8")) as { encryptionsalt: string }).encryptionsalt;
    const init = await pulumi(["stack", "init"], passphrase);
    expect({ code: init.code, stderr: init.stderr }).toEqual({ code: 0, stderr: "Created stack 'local'\n" });
    const file = join(dir, "project", "Pulumi.local.yaml");
    expect((parse(readFileSync(file, "utf8")) as { encryptionsalt: string }).encryptionsalt).toBe(salt);

    const set = await pulumi(["config", "set", "--secret", "knhk-ci:probe", "decrypts"], passphrase);
    expect(set.code).toBe(0);
    const stored = (parse(readFileSync(file, "utf8")) as { config: Record<string, { secure?: string }> }).config["knhk-ci:probe"];
    expect(stored.secure).toMatch(/^v1:/);
    const read = await pulumi(["config", "get", "knhk-ci:probe"], passphrase);
    expect({ code: read.code, stdout: read.stdout.trim() }).toEqual({ code: 0, stdout: "decrypts" });
    const wrong = await pulumi(["config", "get", "knhk-ci:probe"], `${passphrase}-wrong`);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("incorrect passphrase");
  }, 120_000);
});
