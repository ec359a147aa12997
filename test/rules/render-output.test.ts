/**
 * `npm run render -- --stack prod --out <dir>` writes the monitoring documents beside the
 * manifests, in the form the real tools read: prometheus/rules.yaml (promtool),
 * alertmanager/alertmanager.yaml (amtool) and dashboards/*.json.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { writeTestIdentifiers } from "../support/stack-identifiers";
import { run, tempDir, removeTempDirs } from "./tools";

afterAll(removeTempDirs);

jest.setTimeout(180_000);

const REPO = join(__dirname, "..", "..");
let out: string;

beforeAll(() => {
  out = tempDir("render-prod");
  const overlay = writeTestIdentifiers(tempDir("render-prod-identifiers"), "prod");
  const r = spawnSync("npm", ["run", "-s", "render", "--", "--stack", "prod", "--out", out, "--overlay", overlay], { cwd: REPO, encoding: "utf8", timeout: 170_000 });
  if (r.status !== 0) throw new Error(`npm run render failed:\n${r.stdout}${r.stderr}`);
  expect(r.stdout).toMatch(/5 monitoring files/);
});

test("prometheus/rules.yaml passes promtool check rules and has every area", () => {
  const file = join(out, "prometheus", "rules.yaml");
  const r = run("promtool", ["check", "rules", file]);
  expect(r.status).toBe(0);
  const groups = (parse(readFileSync(file, "utf8")) as { groups: { name: string }[] }).groups.map((g) => g.name);
  expect(groups).toEqual(["knhk-slo", "knhk-latency", "knhk-database-pool", "knhk-database-statements", "knhk-integrity", "knhk-ledger-jobs", "knhk-patroni", "knhk-backup", "knhk-redis", "knhk-workload", "knhk-escalation"]);
});

test("alertmanager/alertmanager.yaml passes amtool check-config with four severity routes", () => {
  const file = join(out, "alertmanager", "alertmanager.yaml");
  const r = run("amtool", ["check-config", file]);
  expect(r.status).toBe(0);
  const doc = parse(readFileSync(file, "utf8")) as { route: { routes: { matchers: string[]; receiver: string }[] } };
  expect(doc.route.routes.filter((x) => x.matchers.some((m) => m.startsWith("severity="))).map((x) => [x.matchers[0], x.receiver])).toEqual([
    ['severity="P0"', "knhk-pager-p0"],
    ['severity="P1"', "knhk-pager-p1"],
    ['severity="P2"', "knhk-chat"],
    ['severity="P3"', "knhk-ticket"],
  ]);
});

test("dashboards/ holds the three dashboards", () => {
  const files = readdirSync(join(out, "dashboards")).sort();
  expect(files).toEqual(["knhk-mape-k.json", "knhk-overview.json", "knhk-postgres.json"]);
  for (const f of files) expect(JSON.parse(readFileSync(join(out, "dashboards", f), "utf8")).uid).toBe(f.replace(/\.json$/, ""));
});
