/** Release steps as stack file edits, the transitions blue-green allows, and the apply job's checks (against fakes). */
import fc from "fast-check";
import { parse } from "yaml";
import { RefusedError, UsageError } from "../../scripts/lib/deploy/errors";
import { DEFAULT_WATCH } from "../../scripts/lib/deploy/watch";
import { readAppState, restoreVersion, rollbackColor, stageVersion, switchColor } from "../../scripts/lib/release/stack-file";
import { deployedState, transition } from "../../scripts/lib/release/transition";
import { applyCorrection, gate, verifyTransition } from "../../scripts/lib/release/verify";
import { FakeAudit, FakeClock, FakeCluster, FakeEndpoints, FakePrometheus, FakeSmoke, MemoryLog } from "./fakes";

const FILE = [
  "# prod: the stack's comment",
  "config:",
  "  aws:region: eu-central-1",
  "  knhk:app:",
  "    versions:",
  "      blue: 1.4.0 # serving",
  "      green: 1.3.0",
  "    activeColor: blue",
  "    resources:",
  "      requests: { cpu: 500m, memory: 512Mi }",
  "      limits: { cpu: 2000m, memory: 2Gi }",
  "  knhk:vault:",
  "    enabled: true",
  "",
].join("\n");

const changedLines = (a: string, b: string) => {
  const [x, y] = [a.split("\n"), b.split("\n")];
  expect(y).toHaveLength(x.length);
  return y.filter((l, i) => l !== x[i]);
};

describe("stack file edits", () => {
  test("stage sets only the idle colour's version and keeps comments and flow maps", () => {
    const e = stageVersion(FILE, "1.5.0");
    expect(changedLines(FILE, e.text)).toEqual(["      green: 1.5.0"]);
    expect(e).toMatchObject({ key: "knhk:app.versions.green", from: "1.3.0", to: "1.5.0" });
    expect(e.after).toEqual({ activeColor: "blue", versions: { blue: "1.4.0", green: "1.5.0" } });
  });

  test("switch flips activeColor to the idle colour when it runs the version, keeping the serving comment", () => {
    const staged = stageVersion(FILE, "1.5.0").text;
    const e = switchColor(staged, "1.5.0");
    expect(changedLines(staged, e.text)).toEqual(["    activeColor: green"]);
    expect(e.text).toContain("blue: 1.4.0 # serving");
    expect(() => switchColor(staged, "1.6.0")).toThrow(new RefusedError("stack file: the idle colour green runs 1.5.0 (knhk:app.versions.green), not 1.6.0; not switching"));
  });

  test("refuses to release the version already active, or already staged", () => {
    expect(() => stageVersion(FILE, "1.4.0")).toThrow(/1\.4\.0 is already the active version \(knhk:app\.versions\.blue, blue serves\)/);
    expect(() => stageVersion(stageVersion(FILE, "1.5.0").text, "1.5.0")).toThrow(/already staged on the idle colour \(knhk:app\.versions\.green\)/);
  });

  test("a bad version names --version and the rule; nothing is written", () => {
    expect(() => stageVersion(FILE, "latest")).toThrow(new UsageError(`--version "latest" must be pinned: 'latest' is not allowed`));
    expect(() => stageVersion(FILE, "1.5.0\nactiveColor: green")).toThrow(UsageError);
    expect(() => stageVersion(FILE, "")).toThrow(/--version "" must be an image tag/);
  });

  test("a file without knhk:app versions gets them (schema defaults read first)", () => {
    const e = stageVersion("config:\n  knhk:app:\n    replicas: 3\n", "2.0.0");
    expect(parse(e.text).config["knhk:app"]).toEqual({ replicas: 3, versions: { blue: "0.1.0", green: "2.0.0" } });
    expect(e.before.versions).toEqual({ blue: "0.1.0", green: "0.1.0" });
  });

  test("an invalid knhk:app is refused naming the key", () => {
    expect(() => stageVersion(FILE.replace("activeColor: blue", "activeColor: purple"), "1.5.0")).toThrow(/knhk:app\.activeColor/);
  });

  test("rollback flips back only from the named colour; restore only the idle colour holding the rejected version", () => {
    expect(rollbackColor(FILE, "blue").after.activeColor).toBe("green");
    expect(() => rollbackColor(FILE, "green")).toThrow(/activeColor is blue, not green; nothing to roll back/);
    const staged = stageVersion(FILE, "1.5.0").text;
    expect(changedLines(staged, restoreVersion(staged, "green", "1.3.0", "1.5.0").text)).toEqual(["      green: 1.3.0"]);
    expect(() => restoreVersion(staged, "blue", "1.3.0", "1.5.0")).toThrow(/blue is the active colour/);
    expect(() => restoreVersion(FILE, "green", "1.2.0", "1.5.0")).toThrow(/is 1\.3\.0, not the rejected 1\.5\.0/);
  });

  test("hostile version strings: refused naming --version, or written so that YAML 1.1 and 1.2 readers read exactly them on one line", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[A-Za-z0-9_.:-]{1,20}$/), fc.constantFrom("1_000", "yes", "on", "0x1F", "1e3", "007", "null", "~", "1.10", "true")), (version) => {
        let e;
        try {
          e = stageVersion(FILE, version);
        } catch (error) {
          expect(error).toBeInstanceOf(error instanceof RefusedError ? RefusedError : UsageError);
          expect((error as Error).message).toMatch(error instanceof UsageError ? /^--version / : /knhk:app\.versions/);
          return;
        }
        expect(changedLines(FILE, e.text)).toHaveLength(1);
        expect(readAppState(e.text).versions.green).toBe(version);
        expect(parse(e.text, { version: "1.1" }).config["knhk:app"].versions.green).toBe(version);
      }),
      { numRuns: 400 },
    );
  });
});

describe("transitions", () => {
  const blue = { activeColor: "blue" as const, versions: { blue: "1.4.0", green: "1.3.0" } };
  test("stage, switch, none and the first deploy", () => {
    expect(transition(blue, { ...blue, versions: { blue: "1.4.0", green: "1.5.0" } }, "f")).toEqual({ kind: "stage", color: "green", version: "1.5.0", previousVersion: "1.3.0", activeColor: "blue" });
    expect(transition(blue, { ...blue, activeColor: "green" }, "f")).toEqual({ kind: "switch", from: "blue", to: "green", version: "1.3.0", previousVersion: "1.4.0" });
    expect(transition(blue, blue, "f")).toEqual({ kind: "none", activeColor: "blue" });
    expect(transition(undefined, blue, "f")).toEqual({ kind: "initial", activeColor: "blue" });
  });

  test("refuses the serving colour's version changed in place, and a switch together with a version change", () => {
    expect(() => transition(blue, { ...blue, versions: { blue: "1.5.0", green: "1.3.0" } }, "Pulumi.prod.yaml")).toThrow(
      /Pulumi\.prod\.yaml: changes the version of the serving colour in place \(knhk:app\.versions\.blue 1\.4\.0 -> 1\.5\.0/,
    );
    expect(() => transition(blue, { activeColor: "green", versions: { blue: "1.4.0", green: "1.5.0" } }, "f")).toThrow(/switches traffic to green .* and changes its version in the same update/);
  });

  test("the deployed state comes from the program's outputs (tags and digests)", () => {
    const digest = `sha256:${"a".repeat(64)}`;
    expect(deployedState({ activeColor: "green", images: { blue: "ghcr.io/knhk/knhk:1.4.0", green: `registry:5000/knhk@${digest}` } })).toEqual({ activeColor: "green", versions: { blue: "1.4.0", green: digest } });
    expect(deployedState({})).toBeUndefined();
    expect(() => deployedState({ activeColor: "red", images: {} })).toThrow(/stack outputs activeColor\/images/);
  });
});

describe("the apply job's release checks", () => {
  const options = { stack: "prod", actor: "github:ci", commit: "abc123", rolloutTimeoutMs: 300_000, watch: { ...DEFAULT_WATCH, durationMs: 60_000, intervalMs: 30_000 } };
  const deps = (o: { smoke?: { ok: boolean; failedCheck?: string; message?: string }; prom?: ConstructorParameters<typeof FakePrometheus>[0] } = {}) => ({
    cluster: new FakeCluster(), endpoints: new FakeEndpoints(), smoke: new FakeSmoke(o.smoke), prometheus: new FakePrometheus(o.prom ?? { green: { errorRatio: 0, p95: 0.05 } }),
    audit: new FakeAudit(), clock: new FakeClock(), log: new MemoryLog(),
  });
  const stage = { kind: "stage" as const, color: "green" as const, version: "1.5.0", previousVersion: "1.3.0", activeColor: "blue" as const };
  const sw = { kind: "switch" as const, from: "blue" as const, to: "green" as const, version: "1.5.0", previousVersion: "1.4.0" };

  test("a staged colour that passes the smoke test may be switched to; audited as staged", async () => {
    const d = deps();
    expect(await verifyTransition(d, stage, options)).toEqual({ status: "staged", color: "green", version: "1.5.0" });
    expect(d.smoke.targets).toEqual(["http://green.test:8080"]);
    expect(d.audit.events).toEqual([expect.objectContaining({ action: "deploy", target: "knhk-green", outcome: "staged", details: expect.objectContaining({ stack: "prod", commit: "abc123", version: "1.5.0" }) })]);
  });

  test("a failed smoke test names the check and the correction restoring the idle colour's previous version", async () => {
    const d = deps({ smoke: { ok: false, failedCheck: "ready", message: "GET /ready returned 503" } });
    const v = await verifyTransition(d, stage, options);
    expect(v).toEqual({ status: "rejected", stage: "smoke-test", reason: 'smoke test failed at check "ready": GET /ready returned 503', correction: { kind: "restore", color: "green", version: "1.3.0", rejected: "1.5.0" } });
    const staged = stageVersion(FILE, "1.5.0").text;
    expect(applyCorrection(staged, (v as { correction: Parameters<typeof applyCorrection>[1] }).correction, "f").after.versions.green).toBe("1.3.0");
    expect(d.audit.events.map((e) => e.outcome)).toEqual(["aborted"]);
  });

  test("a rollout timeout rejects without a smoke test", async () => {
    const d = deps();
    d.cluster.rolloutCompletes = false;
    expect(await verifyTransition(d, stage, options)).toMatchObject({ status: "rejected", stage: "rollout" });
    expect(d.smoke.targets).toEqual([]);
  });

  test("after a switch the new colour is watched: healthy annotates and audits success, above 1% errors names the rollback", async () => {
    const ok = deps();
    expect(await verifyTransition(ok, sw, options)).toEqual({ status: "switched", color: "green", version: "1.5.0", warnings: [] });
    expect(ok.cluster.annotations[0].annotations).toMatchObject({ "knhk.io/version": "1.5.0", "knhk.io/previous-color": "blue" });
    const bad = deps({ prom: { green: { errorRatio: 0.05, p95: 0.05 } } });
    const v = await verifyTransition(bad, sw, options);
    expect(v).toEqual({ status: "unhealthy", reason: "error ratio 5.00% on green exceeds 1.00%", correction: { kind: "rollback", from: "green" } });
    expect(bad.audit.events.map((e) => e.outcome)).toEqual(["rolled-back"]);
    expect(bad.cluster.annotations[0].annotations["knhk.io/rollback-reason"]).toBe("error ratio 5.00% on green exceeds 1.00%");
  });

  test("the gate before a switch refuses a colour that fails its smoke test now; other steps pass through", async () => {
    await expect(gate(deps({ smoke: { ok: false, failedCheck: "health", message: "down" } }), sw, 1000)).rejects.toThrow(/not switching traffic to green: smoke test failed at check "health"/);
    const d = deps();
    await gate(d, stage, 1000);
    expect(d.smoke.targets).toEqual([]);
  });
});
