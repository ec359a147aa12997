import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { verifyChain } from "../../app/src/receipts";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { waitFor } from "../support/ports";
import { observe, openScenario, receiptOperations } from "./domain-support";

const run = promisify(execFile);
let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
});

const genesis = {
  thresholds: {
    high_frequency: { default: 5, by_event_type: {} },
    error_spike: { min_errors: 5, ratio: 0.2, factor: 2, baseline_windows: 10 },
    silence: { lookback_windows: 10 },
    schema_mismatch: { min_ratio: 0.2 },
  },
};

describe("MAPE-K loop", () => {
  test("closed loop: observations in, pattern, proposal, validation, promotion, rollback; every step receipted; the chain verifies", async () => {
    const s = await openScenario(pg, { genesis });
    try {
      const genesisSnapshot = await s.domain.snapshots.current();
      await observe(s, 7, "order.created", "logistics", 10);
      const cycle = await s.domain.mapeK.execute();
      expect(cycle.outcome).toBe("success");
      expect(cycle.trigger).toBe("on_demand");
      expect(cycle.phases.map((p) => [p.phase, p.ok])).toEqual([
        ["monitor", true],
        ["analyze", true],
        ["plan", true],
        ["execute", true],
        ["knowledge", true],
      ]);
      expect(cycle.phases.every((p) => p.receipt_seq !== null)).toBe(true);
      expect(cycle.phases[0].detail).toMatchObject({ observations: 7, event_types: 1 });
      const results = cycle.phases[3].detail.results as { proposal_id: string; validation: string; promoted: boolean; snapshot_id: string }[];
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ validation: "passed", promoted: true });

      const current = await s.domain.snapshots.current();
      expect(current).toMatchObject({ id: results[0].snapshot_id, parent_id: genesisSnapshot.id, version: 2 });
      expect(current.content.thresholds.high_frequency.by_event_type).toEqual({ "order.created": 9 });
      expect(cycle.phases[4].detail).toMatchObject({ outcome: "success", current_snapshot_id: current.id });
      expect(await s.domain.mapeK.getCycle(cycle.id)).toEqual(cycle);

      // the next cycle sees the new normal: nothing to do
      const quiet = await s.domain.mapeK.execute();
      expect(quiet.outcome).toBe("success");
      expect(quiet.phases[1].detail).toEqual({ patterns: [] });

      await s.domain.snapshots.rollback();
      expect((await s.domain.snapshots.current()).id).toBe(genesisSnapshot.id);

      const ops = (await receiptOperations(s.db)).map((r) => r.operation);
      const expected = [
        ...Array(7).fill("observation.create"),
        "mape_k.monitor",
        "pattern.detect",
        "mape_k.analyze",
        "proposal.generate",
        "mape_k.plan",
        "proposal.validate",
        "snapshot.promote",
        "mape_k.execute",
        "mape_k.knowledge",
        "mape_k.monitor",
        "pattern.detect",
        "mape_k.analyze",
        "mape_k.plan",
        "mape_k.execute",
        "mape_k.knowledge",
        "snapshot.rollback",
      ];
      expect(ops).toEqual(expected);
      const report = await verifyChain({ db: s.db, workers: 0, saveCheckpoint: false });
      expect(report).toMatchObject({ ok: true, total_count: expected.length, verified_count: expected.length });
      expect(s.metrics.total("knhk_mape_k_cycles_total", { outcome: "success", trigger: "on_demand" })).toBe(2);
      expect(s.metrics.records.filter((r) => r.name === "knhk_mape_k_phase_duration_seconds")).toHaveLength(10);
    } finally {
      await s.close();
    }
  });

  test("partial success: a proposal that fails validation is not promoted, and the cycle says so", async () => {
    const s = await openScenario(pg, { genesis });
    try {
      await observe(s, 7, "order.created", "logistics", 10);
      await observe(s, 3, "rare.event", "logistics", 10);
      await s.db.query("SELECT 1");
      // rare.event: 3 observations over a threshold of 2 is too little evidence (D1)
      await s.owner.query(
        `UPDATE knowledge_snapshots SET content = jsonb_set(content, '{thresholds,high_frequency,by_event_type}', '{"rare.event": 2}'::jsonb) WHERE parent_id IS NULL`,
      );
      const genesisRow = await s.owner.query<{ id: string; content: never }>("SELECT id, content FROM knowledge_snapshots WHERE parent_id IS NULL");
      const { contentHash } = await import("../../app/src/domain");
      await s.owner.query("UPDATE knowledge_snapshots SET content_hash = $2 WHERE id = $1", [genesisRow.rows[0].id, contentHash(genesisRow.rows[0].content)]);
      s.domain.snapshots.invalidate();
      const cycle = await s.domain.mapeK.execute();
      expect(cycle.outcome).toBe("partial_success");
      const results = cycle.phases[3].detail.results as { kind: string; validation: string; failures: string[]; promoted: boolean }[];
      const byType = Object.fromEntries(results.map((r) => [r.validation, r]));
      expect(byType.failed).toMatchObject({ failures: ["D1"], promoted: false });
      expect(byType.passed).toMatchObject({ promoted: true });
      expect(cycle.phases[3].ok).toBe(false);
      const receipts = await s.db.query<{ operation: string; outcome: string }>("SELECT operation, outcome FROM receipts WHERE operation IN ('mape_k.execute', 'mape_k.knowledge') ORDER BY seq");
      expect(receipts.rows.map((r) => r.outcome)).toEqual(["partial_success", "partial_success"]);
      expect(s.metrics.total("knhk_mape_k_cycles_total", { outcome: "partial_success" })).toBe(1);
    } finally {
      await s.close();
    }
  });

  test("failed: a phase that errors stops the cycle; the failure is receipted and recorded", async () => {
    const s = await openScenario(pg, { genesis });
    try {
      await observe(s, 7, "order.created", "logistics", 10);
      await s.owner.exec("REVOKE INSERT ON patterns FROM knhk_service");
      const cycle = await s.domain.mapeK.execute();
      expect(cycle.outcome).toBe("failed");
      expect(cycle.phases.map((p) => [p.phase, p.ok])).toEqual([
        ["monitor", true],
        ["analyze", false],
        ["knowledge", true],
      ]);
      expect(cycle.phases[1].error).toMatch(/permission denied/);
      const receipts = await s.db.query<{ operation: string; outcome: string }>("SELECT operation, outcome FROM receipts WHERE operation LIKE 'mape_k.%' ORDER BY seq");
      expect(receipts.rows).toEqual([
        { operation: "mape_k.monitor", outcome: "success" },
        { operation: "mape_k.analyze", outcome: "failed" },
        { operation: "mape_k.knowledge", outcome: "failed" },
      ]);
      expect((await s.domain.mapeK.getCycle(cycle.id)).outcome).toBe("failed");
      expect(s.metrics.total("knhk_mape_k_cycles_total", { outcome: "failed", trigger: "on_demand" })).toBe(1);
    } finally {
      await s.close();
    }
  });

  test("on-demand cycles on two replicas at once run one after the other: one promotion, no conflict", async () => {
    const s = await openScenario(pg, { genesis });
    const b = await s.replica();
    try {
      await observe(s, 7, "order.created", "logistics", 10);
      const [first, second] = await Promise.all([s.domain.mapeK.execute(), b.domain.mapeK.execute()]);
      expect([first.outcome, second.outcome]).toEqual(["success", "success"]);
      const promotions = [first, second].flatMap((c) => (c.phases[3].detail.results as { promoted: boolean }[]).filter((r) => r.promoted));
      expect(promotions).toHaveLength(1);
      expect((await s.domain.snapshots.current()).version).toBe(2);
      const proposals = await s.db.query<{ n: number }>("SELECT count(*)::int AS n FROM proposals");
      expect(proposals.rows[0].n).toBe(1);
    } finally {
      await b.close();
      await s.close();
    }
  });

  test("two replicas on one database: exactly one leads the scheduled loop; the other takes over when it stops", async () => {
    const s = await openScenario(pg, { genesis, settings: { replicaId: "replica-a" } });
    const b = await s.replica({ replicaId: "replica-b" });
    try {
      s.domain.mapeK.startScheduler();
      b.domain.mapeK.startScheduler();
      await waitFor("a leader", async () => s.domain.mapeK.isLeader() || b.domain.mapeK.isLeader(), 10_000, 50);
      const [leader, follower, leaderId, followerId] = s.domain.mapeK.isLeader()
        ? [s.domain, b.domain, "replica-a", "replica-b"]
        : [b.domain, s.domain, "replica-b", "replica-a"];
      expect(follower.mapeK.isLeader()).toBe(false);
      await waitFor("two scheduled cycles", async () => {
        const { rows } = await s.db.query<{ n: number }>("SELECT count(*)::int AS n FROM mape_k_cycles WHERE trigger = 'scheduled'");
        return rows[0].n >= 2;
      }, 10_000, 50);
      expect(follower.mapeK.isLeader()).toBe(false);
      const replicas = await s.db.query<{ replica_id: string }>("SELECT DISTINCT replica_id FROM mape_k_cycles WHERE trigger = 'scheduled'");
      expect(replicas.rows.map((r) => r.replica_id)).toEqual([leaderId]);
      const holders = await s.owner.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid::text::bigint = (hashtext('knhk.mape_k.leader')::bigint & 4294967295)");
      expect(holders.rows[0].n).toBe(1);

      await leader.mapeK.stopScheduler();
      expect(leader.mapeK.isLeader()).toBe(false);
      await waitFor("the follower to take over", async () => follower.mapeK.isLeader(), 10_000, 50);
      await waitFor("a cycle by the new leader", async () => {
        const { rows } = await s.db.query<{ n: number }>("SELECT count(*)::int AS n FROM mape_k_cycles WHERE trigger = 'scheduled' AND replica_id = $1", [followerId]);
        return rows[0].n >= 1;
      }, 10_000, 50);
      await follower.mapeK.stopScheduler();
      const after = await s.owner.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid::text::bigint = (hashtext('knhk.mape_k.leader')::bigint & 4294967295)");
      expect(after.rows[0].n).toBe(0);
    } finally {
      await b.close();
      await s.close();
    }
  });

  test("a leader whose session dies loses the lock; a replica takes over and only one leads", async () => {
    const s = await openScenario(pg, { genesis, settings: { replicaId: "replica-a" } });
    const b = await s.replica({ replicaId: "replica-b" });
    try {
      s.domain.mapeK.startScheduler();
      await waitFor("a leads", async () => s.domain.mapeK.isLeader(), 10_000, 50);
      b.domain.mapeK.startScheduler();
      const holder = await s.owner.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid::text::bigint = (hashtext('knhk.mape_k.leader')::bigint & 4294967295)");
      expect(holder.rows).toHaveLength(1);
      await s.owner.query("SELECT pg_terminate_backend($1)", [holder.rows[0].pid]);
      await waitFor("b to take over", async () => b.domain.mapeK.isLeader(), 10_000, 50);
      await waitFor("a to step down", async () => !s.domain.mapeK.isLeader(), 10_000, 50);
      const holders = await s.owner.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid::text::bigint = (hashtext('knhk.mape_k.leader')::bigint & 4294967295)");
      expect(holders.rows[0].n).toBe(1);
    } finally {
      await b.close();
      await s.close();
    }
  });

  test("the same loop runs on embedded PGlite: on demand and scheduled (sole leader)", async () => {
    // PGlite needs a dynamic import jest's VM cannot host: run it in a child process.
    const { stdout } = await run(join(__dirname, "..", "..", "node_modules", ".bin", "tsx"), [join(__dirname, "loop-pglite-script.ts")], { timeout: 60_000 });
    expect(JSON.parse(stdout.trim())).toEqual({
      outcome: "success",
      version: 2,
      led: true,
      scheduled: true,
      leaderAfterStop: false,
      chainOk: true,
      receipts: expect.any(Number),
      genesisSnapshots: 1,
    });
  }, 90_000);
});
