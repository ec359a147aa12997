/**
 * Issue 17, defect 8: only the active colour leads the MAPE-K loop. The gate's reading of the
 * active-colour file (exact colours only, anything else fail safe, a kubelet-style `..data`
 * symlink swap picked up by the re-read); then a blue and two green service processes (real
 * PostgreSQL, the least-privileged role) sharing one active-colour file: while it says blue a
 * blue pod leads and no green pod ever does, on-demand cycles on green get 409; flipped to green,
 * leadership moves to green and blue reports 0; a garbled file leaves nobody leading.
 */
import fc from "fast-check";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { activeColorState, watchActiveColor } from "../../app/src/server/active-color";
import { spawnTracked, type TrackedProcess } from "../support/processes";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { waitFor } from "../support/ports";
import { startOidc, type TestOidc } from "./shell/oidc";
import { createMigratedDatabase, grantServiceRole, TEST_SERVICE_SETTINGS } from "./shell/service";

jest.setTimeout(300_000);

const ROOT = join(__dirname, "..", "..");
const MAIN = join(ROOT, "app", "src", "main.ts");

/** A mounted ConfigMap: `color` -> `..data/color`, `..data` -> a timestamped folder, swapped by rename. */
function configMapVolume(dir: string) {
  let n = 0;
  const write = (color: string) => {
    const folder = join(dir, `..2026_${++n}`);
    mkdirSync(folder);
    writeFileSync(join(folder, "color"), color);
    symlinkSync(folder, join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
  };
  return {
    file: join(dir, "color"),
    init(color: string) {
      write(color);
      symlinkSync(join("..data", "color"), join(dir, "color"));
    },
    write,
  };
}

describe("reading the active colour", () => {
  test("exactly the colour (surrounding whitespace aside) makes a replica eligible; anything else never does, with the reason", () => {
    const read = (text: string) => () => text;
    expect(activeColorState("blue", "/f", read("blue"))).toEqual({ eligible: true });
    expect(activeColorState("blue", "/f", read(" blue\n"))).toEqual({ eligible: true });
    expect(activeColorState("blue", "/f", read("green\n"))).toEqual({ eligible: false, reason: "the active colour is green; this replica is blue" });
    expect(activeColorState("green", "/f", read("Blue"))).toEqual({
      eligible: false,
      reason: "KNHK_ACTIVE_COLOR_FILE /f holds no colour (expected blue or green): not leading (fail safe)",
    });
    const missing = () => {
      throw Object.assign(new Error("no such file"), { code: "ENOENT" });
    };
    expect(activeColorState("green", "/f", missing)).toEqual({ eligible: false, reason: "KNHK_ACTIVE_COLOR_FILE /f cannot be read (ENOENT): not leading (fail safe)" });
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (text) => {
        const state = activeColorState("blue", "/f", read(text));
        expect(state.eligible).toBe(text.trim() === "blue");
      }),
      { numRuns: 500 },
    );
  });

  test("the periodic re-read follows a kubelet-style symlink swap, notifies each change once and logs the reason", async () => {
    const dir = mkdtempSync(join(tmpdir(), "knhk-active-color-"));
    const volume = configMapVolume(dir);
    volume.init("green");
    const logs: string[] = [];
    const changes: boolean[] = [];
    const gate = watchActiveColor({ color: "blue", file: volume.file, log: (level, message) => logs.push(`${level} ${message}`), pollMs: 50 });
    try {
      gate.onChange((eligible) => changes.push(eligible));
      expect(gate.state()).toEqual({ eligible: false, reason: "the active colour is green; this replica is blue" });
      volume.write("blue");
      await waitFor("blue to become active", async () => gate.state().eligible, 10_000, 20);
      volume.write("garbage");
      await waitFor("the garbled file to make blue inactive", async () => !gate.state().eligible, 10_000, 20);
      volume.write("blue");
      await waitFor("blue again", async () => gate.state().eligible, 10_000, 20);
      expect(changes).toEqual([true, false, true]);
      expect(logs).toEqual([
        "info MAPE-K leadership: the active colour is green; this replica is blue",
        "info colour blue is active: this replica competes for MAPE-K leadership",
        `warn MAPE-K leadership: KNHK_ACTIVE_COLOR_FILE ${volume.file} holds no colour (expected blue or green): not leading (fail safe)`,
        "info colour blue is active: this replica competes for MAPE-K leadership",
      ]);
    } finally {
      gate.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("blue and green service processes on one PostgreSQL", () => {
  interface Pod {
    readonly color: "blue" | "green";
    readonly process: TrackedProcess;
    readonly apiUrl: string;
    readonly metricsUrl: string;
    readonly stderr: () => string;
  }

  let pg: TestPostgres;
  let oidc: TestOidc;
  let admin: string;
  let database: string;
  let dir: string;
  let volume: ReturnType<typeof configMapVolume>;
  const pods: Pod[] = [];

  function startPod(color: "blue" | "green"): Promise<Pod> {
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...oidc.env(),
      ...TEST_SERVICE_SETTINGS,
      KNHK_MAPE_K_INTERVAL_SECONDS: "1",
      DATABASE_URL: pg.url(database, "knhk_app"),
      DATABASE_MIGRATION_URL: pg.url(database),
      KNHK_MIGRATE_ON_START: "false",
      DB_POOL_MAX_CONNECTIONS: "8",
      KNHK_COLOR: color,
      KNHK_ACTIVE_COLOR_FILE: volume.file,
    };
    const proc = spawnTracked(process.execPath, ["--import", "tsx", MAIN], { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    return new Promise((resolve, reject) => {
      proc.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk;
        const line = stderr.split("\n").find((l) => l.includes('"msg":"knhk listening"'));
        if (line && !pods.some((p) => p.process === proc)) {
          const { api, metrics } = JSON.parse(line) as { api: string; metrics: string };
          const pod = { color, process: proc, apiUrl: api, metricsUrl: metrics, stderr: () => stderr };
          pods.push(pod);
          resolve(pod);
        }
      });
      void proc.exited.then(({ code, signal }) => reject(new Error(`${color} pod exited (${code ?? signal}) before listening:\n${stderr}`)));
      setTimeout(() => reject(new Error(`${color} pod not listening after 90 s:\n${stderr}`)), 90_000).unref();
    });
  }

  async function leading(pod: Pod): Promise<boolean> {
    const text = await (await fetch(`${pod.metricsUrl}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith("knhk_mape_k_leader "));
    if (!line) throw new Error("knhk_mape_k_leader not exported");
    return line === "knhk_mape_k_leader 1";
  }

  /** Leaders per colour, read from every pod's /metrics. */
  async function leaders(): Promise<{ blue: number; green: number }> {
    const states = await Promise.all(pods.map(async (p) => [p.color, await leading(p)] as const));
    return {
      blue: states.filter(([c, l]) => c === "blue" && l).length,
      green: states.filter(([c, l]) => c === "green" && l).length,
    };
  }

  const execute = (pod: Pod) =>
    fetch(`${pod.apiUrl}/api/v1/mape-k/execute`, { method: "POST", headers: { authorization: `Bearer ${admin}` } }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as { reason?: string; message?: string; replica_id?: string },
    }));

  beforeAll(async () => {
    [pg, oidc] = await Promise.all([startPostgres(), startOidc()]);
    admin = await oidc.roleToken("administrator");
    database = await createMigratedDatabase(pg);
    await grantServiceRole(pg, database);
    dir = mkdtempSync(join(tmpdir(), "knhk-active-color-volume-"));
    volume = configMapVolume(dir);
    volume.init("blue");
    await Promise.all((["blue", "green", "green"] as const).map(startPod));
  }, 280_000);

  afterAll(async () => {
    for (const pod of pods) await pod.process.stop().catch(() => undefined);
    await oidc?.close();
    await pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("blue active: one blue pod leads and no green pod ever does; on demand, green refuses with 409 and blue runs the cycle", async () => {
    let greenLed = false;
    await waitFor("one blue leader", async () => {
      const now = await leaders();
      if (now.green > 0) greenLed = true;
      return now.blue === 1;
    }, 60_000, 100);
    // Several scheduled cycles later, still nobody green.
    const green = pods.filter((p) => p.color === "green");
    const cyclesBefore = Number(await pg.psql("SELECT count(*) FROM mape_k_cycles WHERE trigger = 'scheduled'", database));
    await waitFor("more scheduled cycles", async () => {
      const now = await leaders();
      if (now.green > 0 || now.blue !== 1) greenLed = true;
      return Number(await pg.psql("SELECT count(*) FROM mape_k_cycles WHERE trigger = 'scheduled'", database)) >= cyclesBefore + 3;
    }, 60_000, 100);
    expect(greenLed).toBe(false);
    const replicas = (await pg.psql("SELECT DISTINCT replica_id FROM mape_k_cycles WHERE trigger = 'scheduled'", database)).split("\n").filter(Boolean);
    const greenReplicas = green.map((p) => `-${p.process.pid}`);
    expect(replicas.length).toBeGreaterThan(0);
    expect(replicas.filter((r) => greenReplicas.some((g) => r.endsWith(g)))).toEqual([]);

    for (const pod of green) {
      const refused = await execute(pod);
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ reason: "inactive_color", message: "MAPE-K cycles run only on the active colour: the active colour is blue; this replica is green" });
    }
    const ran = await execute(pods.find((p) => p.color === "blue")!);
    expect(ran.status).toBe(200);
  });

  test("flipped to green: leadership moves to one green pod, the blue pod reports 0, and on demand only green runs", async () => {
    volume.write("green\n");
    await waitFor("one green leader and no blue one", async () => {
      const now = await leaders();
      return now.green === 1 && now.blue === 0;
    }, 60_000, 100);
    const greenPids = pods.filter((p) => p.color === "green").map((p) => p.process.pid);
    await waitFor("a scheduled cycle on green", async () => {
      const last = (await pg.psql("SELECT replica_id FROM mape_k_cycles WHERE trigger = 'scheduled' ORDER BY started_at DESC LIMIT 1", database)).trim();
      return greenPids.some((pid) => last.endsWith(`-${pid}`));
    }, 60_000, 200);
    expect(await leaders()).toEqual({ green: 1, blue: 0 });
    const blue = pods.find((p) => p.color === "blue")!;
    expect((await execute(blue)).body).toMatchObject({ reason: "inactive_color" });
    // Each pod reads the file on its own; a green pod that is not the leader may see the flip a
    // poll later than the one that took the leadership (seen on a loaded machine).
    for (const pod of pods.filter((p) => p.color === "green")) {
      await waitFor(`green pod ${pod.process.pid} runs a cycle on demand`, async () => (await execute(pod)).status === 200, 30_000, 250);
    }
  });

  test("a garbled file leaves nobody leading (fail safe, logged); the active colour written again leads again", async () => {
    volume.write("purple");
    await waitFor("no leader at all", async () => {
      const now = await leaders();
      return now.green === 0 && now.blue === 0;
    }, 60_000, 100);
    // Followers report 0 whatever the file says: wait until every pod has read it and said why.
    await waitFor("every pod to log the refusal", async () => pods.every((p) => p.stderr().includes("holds no colour (expected blue or green): not leading (fail safe)")), 30_000, 100);
    expect(await leaders()).toEqual({ blue: 0, green: 0 });
    volume.write("blue");
    await waitFor("blue to lead again", async () => {
      const now = await leaders();
      return now.blue === 1 && now.green === 0;
    }, 60_000, 100);
  });
});
