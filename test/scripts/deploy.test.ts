/** Blue-green deploy and rollback logic against fakes of Pulumi, the cluster and Prometheus. */
import { blueGreenDeploy, exitCodeOf, type DeployOptions } from "../../scripts/lib/deploy/blue-green";
import type { AppState, SmokeReport } from "../../scripts/lib/deploy/ports";
import { rollback, type RollbackOptions } from "../../scripts/lib/deploy/rollback";
import { DEFAULT_WATCH, errorRatioQuery, p95Query } from "../../scripts/lib/deploy/watch";
import { FakeAudit, FakeClock, FakeCluster, FakeEndpoints, FakePrometheus, FakePulumi, FakeSmoke, MemoryLog } from "./fakes";

const BLUE_LIVE: AppState = { activeColor: "blue", versions: { blue: "1.4.0", green: "1.3.0" } };
const OPTIONS: DeployOptions = { version: "1.5.0", stack: "prod", actor: "ci@example", rolloutTimeoutMs: 300_000, watch: { ...DEFAULT_WATCH, durationMs: 120_000, intervalMs: 30_000 } };

function world(state: AppState = BLUE_LIVE, opts: { smoke?: SmokeReport; prom?: ConstructorParameters<typeof FakePrometheus>[0] } = {}) {
  return {
    pulumi: new FakePulumi(state),
    cluster: new FakeCluster(),
    endpoints: new FakeEndpoints(),
    smoke: new FakeSmoke(opts.smoke),
    prometheus: new FakePrometheus(opts.prom ?? { blue: { errorRatio: 0, p95: 0.05 }, green: { errorRatio: 0.001, p95: 0.05 } }),
    audit: new FakeAudit(),
    clock: new FakeClock(),
    log: new MemoryLog(),
  };
}

describe("blue-green deploy", () => {
  test("deploys to the idle colour, smoke-tests it, switches, watches, annotates and audits", async () => {
    const w = world();
    const outcome = await blueGreenDeploy(w, OPTIONS);
    expect(outcome).toEqual({ status: "deployed", color: "green", previousColor: "blue", warnings: [] });
    expect(exitCodeOf(outcome)).toBe(0);
    expect(w.pulumi.calls).toEqual([
      "config set knhk:app.versions.green 1.5.0",
      "up: deploy 1.5.0 to green (idle)",
      "config set knhk:app.activeColor green",
      "up: switch knhk-service to green (1.5.0)",
    ]);
    expect(w.pulumi.deployed).toEqual({ activeColor: "green", versions: { blue: "1.4.0", green: "1.5.0" } });
    expect(w.smoke.targets).toEqual(["http://green.test:8080"]);
    // 120 s watch every 30 s: four samples of both queries, all about green.
    expect(w.clock.sleeps).toEqual([30_000, 30_000, 30_000, 30_000]);
    expect(w.prometheus.queries).toHaveLength(8);
    expect(w.prometheus.queries.every((q) => q.includes('pod=~"knhk-green-.+"'))).toBe(true);
    expect(w.cluster.annotations).toEqual([
      { color: "green", annotations: { "knhk.io/deployed-at": "2026-11-28T00:02:00.000Z", "knhk.io/version": "1.5.0", "knhk.io/deployed-by": "ci@example", "knhk.io/previous-color": "blue" } },
    ]);
    expect(w.audit.events).toEqual([
      expect.objectContaining({ actor: "ci@example", action: "deploy", target: "knhk-green", outcome: "success", details: expect.objectContaining({ version: "1.5.0", previousVersion: "1.4.0", stack: "prod" }) }),
    ]);
  });

  test("colour choice: with green live the new version goes to blue", async () => {
    const w = world({ activeColor: "green", versions: { blue: "1.3.0", green: "1.4.0" } }, { prom: { blue: { errorRatio: 0, p95: 0.01 } } });
    const outcome = await blueGreenDeploy(w, OPTIONS);
    expect(outcome.status).toBe("deployed");
    expect(w.pulumi.deployed).toEqual({ activeColor: "blue", versions: { blue: "1.5.0", green: "1.4.0" } });
  });

  test("a failing smoke test aborts before the switch and names the check", async () => {
    const w = world(BLUE_LIVE, { smoke: { ok: false, failedCheck: "observation-round-trip", message: "POST /api/v1/observations returned 503" } });
    const outcome = await blueGreenDeploy(w, OPTIONS);
    expect(outcome).toEqual({
      status: "aborted",
      stage: "smoke-test",
      reason: 'smoke test failed at check "observation-round-trip": POST /api/v1/observations returned 503',
      activeColor: "blue",
    });
    expect(exitCodeOf(outcome)).toBe(1);
    expect(w.pulumi.calls.some((c) => c.includes("activeColor"))).toBe(false);
    expect(w.pulumi.deployed).toEqual(BLUE_LIVE);
    expect(w.pulumi.calls.slice(-2)).toEqual([
      "config set knhk:app.versions.green 1.3.0",
      "up: restore green to 1.3.0 after the aborted deploy of 1.5.0",
    ]);
    expect(w.prometheus.queries).toEqual([]);
    expect(w.audit.events.map((e) => [e.action, e.outcome, e.details.stage])).toEqual([["deploy", "aborted", "smoke-test"]]);
  });

  test("a rollout timeout never switches traffic", async () => {
    const w = world();
    w.cluster.rolloutCompletes = false;
    const outcome = await blueGreenDeploy(w, OPTIONS);
    expect(outcome).toEqual({ status: "aborted", stage: "rollout", reason: "knhk-green did not finish rolling out within 300 s", activeColor: "blue" });
    expect(w.smoke.targets).toEqual([]);
    expect(w.pulumi.calls).toEqual([
      "config set knhk:app.versions.green 1.5.0",
      "up: deploy 1.5.0 to green (idle)",
      "config set knhk:app.versions.green 1.3.0",
      "up: restore green to 1.3.0 after the aborted deploy of 1.5.0",
    ]);
    expect(w.pulumi.deployed).toEqual(BLUE_LIVE);
  });

  test("a failed pulumi up aborts with its error", async () => {
    const w = world();
    w.pulumi.failUp = true;
    const outcome = await blueGreenDeploy(w, OPTIONS);
    expect(outcome).toMatchObject({ status: "aborted", stage: "pulumi-up", activeColor: "blue" });
    expect((outcome as { reason: string }).reason).toContain("update failed");
  });

  test("an error ratio above 1% after the switch rolls back automatically", async () => {
    const w = world(BLUE_LIVE, { prom: { green: { errorRatio: 0.034, p95: 0.08 } } });
    const outcome = await blueGreenDeploy(w, OPTIONS);
    expect(outcome).toEqual({ status: "rolled-back", reason: "error ratio 3.40% on green exceeds 1.00%", activeColor: "blue", failedColor: "green" });
    expect(exitCodeOf(outcome)).toBe(1);
    expect(w.pulumi.calls.slice(-2)).toEqual(["config set knhk:app.activeColor blue", "up: automatic rollback to blue (1.4.0): error ratio 3.40% on green exceeds 1.00%"]);
    expect(w.pulumi.deployed.activeColor).toBe("blue");
    // Stopped at the first bad sample.
    expect(w.clock.sleeps).toEqual([30_000]);
    expect(w.audit.events.map((e) => e.outcome)).toEqual(["rolled-back"]);
    expect(w.cluster.annotations[0].annotations["knhk.io/rollback-reason"]).toBe("error ratio 3.40% on green exceeds 1.00%");
  });

  test("exactly 1% is tolerated; p95 above 200 ms only warns", async () => {
    const w = world(BLUE_LIVE, { prom: { green: { errorRatio: 0.01, p95: 0.25 } } });
    const outcome = await blueGreenDeploy(w, OPTIONS);
    expect(outcome.status).toBe("deployed");
    expect((outcome as { warnings: string[] }).warnings).toContain("p95 latency 250 ms on green is above 200 ms");
  });

  test("no traffic data is not a failure, but an unreachable Prometheus for the whole watch rolls back", async () => {
    const quiet = world(BLUE_LIVE, { prom: { green: {} } });
    expect((await blueGreenDeploy(quiet, OPTIONS)).status).toBe("deployed");
    const blind = world(BLUE_LIVE, { prom: { green: { fail: true } } });
    const outcome = await blueGreenDeploy(blind, OPTIONS);
    expect(outcome).toMatchObject({ status: "rolled-back", reason: "no Prometheus sample for green during the watch (4 failed queries)" });
  });

  test("queries select one colour's pods and the registry's metric names", () => {
    expect(errorRatioQuery("green", DEFAULT_WATCH)).toBe(
      '(sum(rate(knhk_http_requests_total{job="knhk-service",pod=~"knhk-green-.+",status_class="5xx"}[1m])) or vector(0)) / sum(rate(knhk_http_requests_total{job="knhk-service",pod=~"knhk-green-.+"}[1m]))',
    );
    expect(p95Query("blue", DEFAULT_WATCH)).toBe(
      'histogram_quantile(0.95, sum by (le) (rate(knhk_http_request_duration_seconds_bucket{job="knhk-service",pod=~"knhk-blue-.+"}[1m])))',
    );
  });
});

describe("rollback", () => {
  const GREEN_LIVE: AppState = { activeColor: "green", versions: { blue: "1.4.0", green: "1.5.0" } };
  const OPTS: RollbackOptions = { stack: "prod", actor: "oncall@example", reason: "errors after deploy", yes: true, force: false };

  function rb(answer: string | undefined, health: Record<string, string> = { blue: "healthy", live: "healthy" }) {
    const w = world(GREEN_LIVE);
    const asked: string[] = [];
    const deps = {
      ...w,
      health: async (url: string) => health[new URL(url).hostname.split(".")[0]] ?? "down",
      confirm: { ask: async (q: string) => (asked.push(q), answer) },
    };
    return { w, deps, asked };
  }

  test("--yes switches back without asking, checks the live Service, annotates and audits", async () => {
    const { w, deps, asked } = rb(undefined);
    const outcome = await rollback(deps, OPTS);
    expect(outcome).toEqual({ status: "rolled-back", from: "green", to: "blue", version: "1.4.0", liveHealth: "healthy" });
    expect(asked).toEqual([]);
    expect(w.pulumi.calls).toEqual(["config set knhk:app.activeColor blue", "up: rollback to blue (1.4.0): errors after deploy"]);
    expect(w.endpoints.opened).toEqual(["blue", "live"]);
    expect(w.cluster.annotations[0]).toEqual({ color: "blue", annotations: { "knhk.io/rolled-back-at": "2026-11-28T00:00:00.000Z", "knhk.io/rolled-back-by": "oncall@example", "knhk.io/rollback-from": "green" } });
    expect(w.audit.events).toEqual([expect.objectContaining({ action: "rollback", target: "knhk-blue", outcome: "success", details: expect.objectContaining({ from: "green", to: "blue", fromVersion: "1.5.0" }) })]);
  });

  test("without --yes and without a terminal it refuses and changes nothing", async () => {
    const { w, deps } = rb(undefined);
    expect(await rollback(deps, { ...OPTS, yes: false })).toEqual({ status: "refused", reason: "no terminal to confirm on: pass --yes to roll back non-interactively" });
    expect(w.pulumi.calls).toEqual([]);
    expect(w.audit.events).toEqual([]);
  });

  test("on a terminal the stack name must be typed", async () => {
    const wrong = rb("yes");
    expect(await rollback(wrong.deps, { ...OPTS, yes: false })).toEqual({ status: "refused", reason: 'confirmation did not match the stack name "prod"' });
    expect(wrong.asked[0]).toContain("from green to blue (1.4.0)");
    expect(wrong.w.pulumi.calls).toEqual([]);
    const right = rb("prod\n");
    expect((await rollback(right.deps, { ...OPTS, yes: false })).status).toBe("rolled-back");
  });

  test("an unhealthy target colour is refused unless --force", async () => {
    const { w, deps } = rb(undefined, { blue: "degraded", live: "healthy" });
    expect(await rollback(deps, OPTS)).toEqual({ status: "refused", reason: "knhk-blue is degraded; not switching traffic to it (use --force to override)" });
    expect(w.pulumi.calls).toEqual([]);
    const forced = rb(undefined, { blue: "degraded", live: "degraded" });
    const outcome = await rollback(forced.deps, { ...OPTS, force: true });
    expect(outcome).toMatchObject({ status: "rolled-back", liveHealth: "degraded" });
    expect(forced.w.audit.events[0].outcome).toBe("degraded");
  });
});
