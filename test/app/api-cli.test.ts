/**
 * The CLI dispatcher (`npm run knhk -- <group> <command>`) against a real PostgreSQL 15: it opens
 * and migrates the database from DATABASE_URL, routes each group to its module, and turns usage
 * mistakes into exit code 2 with a message.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { dispatch } from "../../app/src/cli/index";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { capturedStreams } from "../support/streams";

const run = promisify(execFile);
const ROOT = join(__dirname, "..", "..");
let pg: TestPostgres;
let url: string;

beforeAll(async () => {
  pg = await startPostgres();
  await pg.createDatabase("knhk_cli");
  url = pg.url("knhk_cli");
}, 120_000);

afterAll(async () => {
  await pg?.destroy();
});

async function knhk(argv: string[], env: NodeJS.ProcessEnv = { DATABASE_URL: url }) {
  const { stdout, stderr, out, err } = capturedStreams();
  const code = await dispatch(argv, { env, stdout, stderr });
  return { code, out: out(), err: err() };
}

test("no group or an unknown group: usage on stderr, exit 2", async () => {
  expect(await knhk([])).toMatchObject({ code: 2, err: expect.stringContaining("usage: npm run knhk") });
  const unknown = await knhk(["deploy", "now"]);
  expect(unknown.code).toBe(2);
  expect(unknown.err).toContain("unknown command group 'deploy'");
});

test("help: usage listing every group on stdout, exit 0", async () => {
  const help = await knhk(["help"]);
  expect(help.code).toBe(0);
  for (const group of ["receipts", "audit", "archive"]) expect(help.out).toContain(group);
});

test("a bad database setting stops the command naming the variable", async () => {
  const bad = await knhk(["audit", "log", "--actor", "a", "--action", "b.c", "--target", "t"], { DATABASE_URL: "mysql://nope" });
  expect(bad.code).toBe(2);
  expect(bad.err).toContain("DATABASE_URL");
});

test("audit log goes to the audit module on the migrated database", async () => {
  const result = await knhk(["audit", "log", "--actor", "deploy-script", "--action", "deploy.start", "--target", "prod", "--outcome", "success"]);
  expect(result.code).toBe(0);
  expect(await pg.psql("SELECT actor || '|' || action || '|' || target FROM audit_log WHERE action = 'deploy.start'", "knhk_cli")).toContain("deploy-script|deploy.start|prod");
});

test("as the least-privileged service role the CLI runs on the migrated schema, and migrating is refused", async () => {
  // The owner migrates (and so creates knhk_service) first.
  expect(await knhk(["audit", "log", "--actor", "deploy-script", "--action", "deploy.begin", "--target", "prod"])).toMatchObject({ code: 0 });
  await pg.psql(
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'knhk_cli_app') THEN CREATE ROLE knhk_cli_app LOGIN; END IF; END $$; GRANT knhk_service TO knhk_cli_app;",
    "knhk_cli",
  );
  const argv = ["audit", "log", "--actor", "deploy-script", "--action", "deploy.finish", "--target", "prod", "--outcome", "success"];
  const asService = pg.url("knhk_cli", "knhk_cli_app");
  // Migrating needs DDL the role does not have.
  await expect(knhk(argv, { DATABASE_URL: asService })).rejects.toThrow(/permission denied/);
  expect(await knhk(argv, { DATABASE_URL: asService, KNHK_MIGRATE_ON_START: "false" })).toMatchObject({ code: 0 });
  expect(await pg.psql("SELECT count(*) FROM audit_log WHERE action = 'deploy.finish'", "knhk_cli")).toContain("1");
});

test("npm run knhk -- receipts verify-chain --format json runs end to end", async () => {
  const { stdout } = await run("npm", ["run", "--silent", "knhk", "--", "receipts", "verify-chain", "--format", "json"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: url },
    timeout: 120_000,
  });
  const report = JSON.parse(stdout);
  expect(report).toMatchObject({ signature_failures: [], chain_breaks: [], retrocausation_violations: [] });
  expect(report.total_count).toBe(report.verified_count);
}, 120_000);
