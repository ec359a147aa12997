import { ConflictError, NotFoundError, ValidationError, type Guard } from "../../app/src/domain";
import { evaluateCheckWarm, runGuards } from "../../app/src/domain/hotpath-port";
import { createKernel } from "../../app/src/hotpath";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { ago, openScenario, receiptOperations, type Scenario } from "./domain-support";

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
});

const guards: Guard[] = [
  { id: "temp-max", sector: "manufacturing", event_type: "sensor.temp", check: { op: "max", path: "value", max: 100 }, action: "reject" },
  { id: "unit-required", sector: "*", event_type: "sensor.temp", check: { op: "required", path: "metadata.unit" }, action: "flag" },
  { id: "readings-max", sector: "logistics", event_type: "sensor.temp", check: { op: "max", path: "metadata.readings", max: 50 }, action: "flag" },
];

describe("observations", () => {
  let s: Scenario;
  beforeAll(async () => {
    s = await openScenario(pg, { genesis: { guards, schemas: { "sensor.temp": { value_type: "number", metadata: { unit: "string" } } } } });
  }, 60_000);
  afterAll(async () => s?.close());

  test("create persists, runs the guards on the hot path, and appends a receipt", async () => {
    const obs = await s.domain.observations.create({ event_type: "sensor.temp", value: 42, sector: "manufacturing", metadata: { unit: "C" } });
    expect(obs).toMatchObject({ event_type: "sensor.temp", value: 42, sector: "manufacturing", metadata: { unit: "C" }, flagged: false });
    expect(obs.guards.map((g) => [g.guard_id, g.passed, g.path])).toEqual([
      ["schema:value", true, "hot"],
      ["schema:metadata.unit", true, "hot"],
      ["temp-max", true, "hot"],
      ["unit-required", true, "hot"],
    ]);
    expect(obs.hot_path_ticks).toBeGreaterThan(0);
    expect(await s.domain.observations.get(obs.id)).toEqual(obs);
    const ops = await receiptOperations(s.db);
    expect(ops[ops.length - 1]).toEqual({ operation: "observation.create", outcome: "success" });
    expect(s.metrics.records.some((r) => r.name === "knhk_hot_path_ticks" && r.labels.operation === "COMPARE_O_GT")).toBe(true);
    expect(s.metrics.records.some((r) => r.name === "knhk_hot_path_ticks" && r.labels.operation === "OBSERVATION_APPEND")).toBe(true);
  });

  test("a failing reject guard refuses the observation, names the field, stores nothing and receipts the rejection", async () => {
    const before = await s.db.query<{ n: number }>("SELECT count(*)::int AS n FROM observations");
    const error = await s.domain.observations.create({ event_type: "sensor.temp", value: 150, sector: "manufacturing", metadata: { unit: "C" } }).catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.field).toBe("value");
    expect(error.reason).toMatch(/temp-max/);
    const after = await s.db.query<{ n: number }>("SELECT count(*)::int AS n FROM observations");
    expect(after.rows[0].n).toBe(before.rows[0].n);
    const ops = await receiptOperations(s.db);
    expect(ops[ops.length - 1]).toEqual({ operation: "observation.create", outcome: "rejected" });
    // The same value in another sector: the guard does not apply.
    await expect(s.domain.observations.create({ event_type: "sensor.temp", value: 150, sector: "generic", metadata: { unit: "C" } })).resolves.toMatchObject({ flagged: false });
  });

  test("failing flag guards and schema mismatches flag the observation", async () => {
    const obs = await s.domain.observations.create({ event_type: "sensor.temp", value: "hot", sector: "generic" });
    expect(obs.flagged).toBe(true);
    const failed = obs.guards.filter((g) => !g.passed).map((g) => g.guard_id);
    expect(failed).toEqual(["schema:value", "schema:metadata.unit", "unit-required"]);
  });

  test("admission parks a guard whose field needs more than 8 rows; the warm path decides it with the reason", async () => {
    const short = await s.domain.observations.create({ event_type: "sensor.temp", value: 1, sector: "logistics", metadata: { unit: "C", readings: [1, 2, 3, 4, 5, 6, 7, 60] } });
    expect(short.guards.find((g) => g.guard_id === "readings-max")).toMatchObject({ path: "hot", passed: false, ticks: 8 });
    const long = await s.domain.observations.create({ event_type: "sensor.temp", value: 1, sector: "logistics", metadata: { unit: "C", readings: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] } });
    expect(long.guards.find((g) => g.guard_id === "readings-max")).toMatchObject({ path: "warm", passed: true, parked_reason: "run_too_long", ticks: 0 });
    expect(long.flagged).toBe(false);
    const long2 = await s.domain.observations.create({ event_type: "sensor.temp", value: 1, sector: "logistics", metadata: { unit: "C", readings: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 99] } });
    expect(long2.guards.find((g) => g.guard_id === "readings-max")).toMatchObject({ path: "warm", passed: false });
    expect(s.metrics.total("knhk_hot_path_parked_total", { reason: "run_too_long" })).toBe(2);
  });

  test("bad input is refused naming the field", async () => {
    const cases: [unknown, string][] = [
      [{ event_type: "", value: 1, sector: "generic" }, "event_type"],
      [{ event_type: "a b", value: 1, sector: "generic" }, "event_type"],
      [{ event_type: "x", sector: "generic" }, "value"],
      [{ event_type: "x", value: 1, sector: "mars" }, "sector"],
      [{ event_type: "x", value: 1, sector: "generic", metadata: [1] }, "metadata"],
      [{ event_type: "x", value: 1, sector: "generic", metadata: { "bad key": 1 } }, "metadata.bad key"],
      [{ event_type: "x", value: 1, sector: "generic", extra: true }, "extra"],
      [{ event_type: "x", value: 1, sector: "generic", observed_at: "yesterday" }, "observed_at"],
      [{ event_type: "x", value: 1, sector: "generic", observed_at: new Date(Date.now() + 3_600_000).toISOString() }, "observed_at"],
      [{ event_type: "x", value: "y".repeat(70_000), sector: "generic" }, "value"],
      ["not an object", "body"],
    ];
    for (const [input, field] of cases) {
      const error = await s.domain.observations.create(input as never).catch((e) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect([input, error.field]).toEqual([input, field]);
    }
  });

  test("get of an unknown id is NotFound; list pages newest first with a cursor and filters", async () => {
    await expect(s.domain.observations.get("00000000-0000-4000-8000-000000000000")).rejects.toBeInstanceOf(NotFoundError);
    await expect(s.domain.observations.get("not-a-uuid")).rejects.toBeInstanceOf(NotFoundError);
    for (let i = 0; i < 5; i++) await s.domain.observations.create({ event_type: "page.test", value: i, sector: "finance", observed_at: ago(s.clock, 5 - i) });
    const first = await s.domain.observations.list({ event_type: "page.test", limit: 2 });
    expect(first.items.map((o) => o.value)).toEqual([4, 3]);
    expect(first.next_cursor).not.toBeNull();
    const second = await s.domain.observations.list({ event_type: "page.test", limit: 2, cursor: first.next_cursor! });
    expect(second.items.map((o) => o.value)).toEqual([2, 1]);
    const third = await s.domain.observations.list({ event_type: "page.test", limit: 2, cursor: second.next_cursor! });
    expect(third.items.map((o) => o.value)).toEqual([0]);
    expect(third.next_cursor).toBeNull();
    const since = await s.domain.observations.list({ event_type: "page.test", since: ago(s.clock, 2.5) });
    expect(since.items.map((o) => o.value)).toEqual([4, 3]);
    expect((await s.domain.observations.list({ sector: "healthcare" })).items).toEqual([]);
    await expect(s.domain.observations.list({ limit: 0 })).rejects.toMatchObject({ field: "limit" });
    await expect(s.domain.observations.list({ cursor: "abc" })).rejects.toMatchObject({ field: "cursor" });
    await expect(s.domain.observations.list({ sector: "mars" as never })).rejects.toMatchObject({ field: "sector" });
  });

  test("rollback at the genesis snapshot is a conflict", async () => {
    await expect(s.domain.snapshots.rollback()).rejects.toBeInstanceOf(ConflictError);
  });
});

describe("guard evaluation on the kernel agrees with the reference semantics", () => {
  test("a guard whose field has no run left in the kernel is parked for capacity and decided on the warm path", async () => {
    const kernel = await createKernel({ capacity: 8 }); // one run: taken by the observation's value row
    const { recordingMetrics } = await import("../../app/src/domain");
    const metrics = recordingMetrics();
    const guard: Guard = { id: "g", sector: "*", event_type: "*", check: { op: "max", path: "metadata.n", max: 10 }, action: "flag" };
    const over = runGuards(kernel, [guard], 0, { n: 11 }, { metrics });
    const under = runGuards(kernel, [guard], 0, { n: 9 }, { metrics });
    expect(over.outcomes[0]).toMatchObject({ path: "warm", parked_reason: "capacity", passed: false });
    expect(under.outcomes[0]).toMatchObject({ path: "warm", parked_reason: "capacity", passed: true });
    expect(metrics.total("knhk_hot_path_parked_total", { reason: "capacity" })).toBe(2);
  });

  test("random fields and checks", async () => {
    const kernel = await createKernel({ capacity: 256 });
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const element = () => [rand(200) - 100, (rand(2000) - 1000) / 7, "s", true, null][rand(5)];
    for (let i = 0; i < 400; i++) {
      const field = rand(4) === 0 ? undefined : rand(3) === 0 ? Array.from({ length: rand(12) }, element) : element();
      const checks = [
        { op: "required", path: "metadata.f" },
        { op: "datatype", path: "metadata.f", datatype: ["number", "string", "array", "boolean", "null"][rand(5)] },
        { op: "max", path: "metadata.f", max: rand(100) - 50 },
        { op: "min", path: "metadata.f", min: rand(100) - 50 },
      ] as const;
      for (const check of checks) {
        const metadata: Record<string, never> = field === undefined ? {} : { f: field as never };
        const run = runGuards(kernel, [{ id: "g", sector: "*", event_type: "*", check: check as never, action: "flag" }], 0, metadata);
        expect([check, field, run.outcomes[0].passed]).toEqual([check, field, evaluateCheckWarm(check as never, field as never)]);
      }
    }
  });
});
