/**
 * The real adapters the deploy scripts use, against real tools where they can run here:
 * the Pulumi CLI (the repo's engine, scripts/engine.sh) on a throw-away stack with a local file
 * backend (config read and `config set --path`), and the service's audit CLI on embedded PGlite.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { AuditCli, PulumiCli, runCommand } from "../../scripts/lib/deploy/adapters";
import { pulumiBinary, REPO_ROOT } from "../../scripts/lib/deploy/cli";

const quiet = { info: () => undefined, warn: () => undefined };

describe("PulumiCli on a real Pulumi CLI", () => {
  const bin = pulumiBinary();
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    if (bin === "pulumi" && (await runCommand("sh", ["-c", "command -v pulumi"])).code !== 0) {
      throw new Error("no Pulumi CLI: run scripts/engine.sh (builds .tools/bin/pulumi) or put pulumi on PATH");
    }
    dir = mkdtempSync(join(tmpdir(), "knhk-pulumi-cli-"));
    env = { ...process.env, PULUMI_HOME: join(dir, "home"), PULUMI_BACKEND_URL: `file://${join(dir, "state")}`, PULUMI_CONFIG_PASSPHRASE: "test-only", PULUMI_SKIP_UPDATE_CHECK: "true" };
    mkdirSync(join(dir, "state"));
    writeFileSync(join(dir, "Pulumi.yaml"), "name: knhk\nruntime: nodejs\n");
    const init = await runCommand(bin, ["stack", "init", "prod", "--non-interactive"], { cwd: join(dir), env: { ...env } });
    expect({ code: init.code, stderr: init.stderr }).toEqual({ code: 0, stderr: expect.stringContaining("Created stack 'prod'") });
    writeFileSync(join(dir, "Pulumi.prod.yaml"), readFileSync(join(dir, "Pulumi.prod.yaml"), "utf8") + "config:\n  knhk:app:\n    activeColor: blue\n    versions:\n      blue: 1.4.0\n      green: 1.3.0\n");
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("reads and edits knhk:app in the stack file; the engine reads the edit back", async () => {
    const cli = new PulumiCli({ bin, stack: "prod", cwd: dir, env, log: quiet });
    expect(await cli.readAppState()).toEqual({ activeColor: "blue", versions: { blue: "1.4.0", green: "1.3.0" } });
    await cli.setAppConfig("versions.green", "1.5.0");
    await cli.setAppConfig("activeColor", "green");
    expect(await cli.readAppState()).toEqual({ activeColor: "green", versions: { blue: "1.4.0", green: "1.5.0" } });
    // The stack file keeps the structured value the program's schema reads.
    expect(parse(readFileSync(join(dir, "Pulumi.prod.yaml"), "utf8")).config["knhk:app"]).toEqual({ activeColor: "green", versions: { blue: "1.4.0", green: "1.5.0" } });
    // The engine reads what the stack file edit wrote, including versions YAML 1.1 would misread.
    await cli.setAppConfig("versions.blue", "1_000");
    const got = await runCommand(bin, ["config", "get", "knhk:app", "--stack", "prod"], { cwd: dir, env });
    expect(JSON.parse(got.stdout)).toEqual({ activeColor: "green", versions: { blue: "1_000", green: "1.5.0" } });
    await expect(cli.setAppConfig("activeColor", "purple")).rejects.toThrow("knhk:app.activeColor must be blue or green, not \"purple\"");
    await expect(cli.readAppState()).resolves.toEqual({ activeColor: "green", versions: { blue: "1_000", green: "1.5.0" } });
  }, 120_000);
});

describe("AuditCli on the service's own CLI", () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), "knhk-audit-cli-"));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  test("appends a deploy event to the audit log (embedded PGlite) without migrating, and fails loudly on bad input", async () => {
    const env = { ...process.env, DATABASE_URL: "", KNHK_EMBEDDED_DATA_DIR: dataDir };
    // The audit writer never migrates (KNHK_MIGRATE_ON_START=false): the schema is the migration's.
    const unmigrated = new AuditCli({ cwd: REPO_ROOT, env });
    await expect(unmigrated.log({ actor: "ci@example", action: "deploy", target: "knhk-green", outcome: "success", details: {} })).rejects.toThrow(/audit log failed/);
    const migrated = await runCommand("npm", ["run", "--silent", "knhk", "--", "schema", "migrate"], { cwd: REPO_ROOT, env });
    expect({ code: migrated.code, stderr: migrated.stderr }).toEqual({ code: 0, stderr: "" });
    const audit = new AuditCli({ cwd: REPO_ROOT, env });
    await audit.log({ actor: "ci@example", action: "deploy", target: "knhk-green", outcome: "success", details: { version: "1.5.0", stack: "prod" } });
    expect(existsSync(dataDir)).toBe(true);
    const bad = new AuditCli({ cwd: REPO_ROOT, env });
    await expect(bad.log({ actor: "", action: "deploy", target: "knhk-green", outcome: "success", details: {} })).rejects.toThrow(/audit log failed \(exit 2\).*actor/s);
  }, 180_000);
});
