import { ConflictError, contentHash, NotFoundError, ValidationError, type Guard, type KnowledgeContent, type Proposal, type ProposalChange } from "../../app/src/domain";
import { findPattern } from "../../app/src/domain/patterns";
import { insertProposal } from "../../app/src/domain/proposals";
import { findSnapshot } from "../../app/src/domain/snapshots";
import { verifyChain } from "../../app/src/receipts";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { observe, receiptOperations, withScenario, type Scenario } from "./domain-support";

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
});


function rules(hf: number, more: Partial<KnowledgeContent> = {}): Partial<KnowledgeContent> {
  return {
    thresholds: {
      high_frequency: { default: hf, by_event_type: {} },
      error_spike: { min_errors: 5, ratio: 0.2, factor: 2, baseline_windows: 10 },
      silence: { lookback_windows: 10 },
      schema_mismatch: { min_ratio: 0.2 },
    },
    ...more,
  };
}

/** Detect, then plan every pattern found. */
async function plan(s: Scenario): Promise<Proposal[]> {
  await s.domain.patterns.detect();
  return s.domain.proposals.generate();
}

/** A proposal with a hand-made change for an existing pattern (what a buggy or hostile planner could store). */
async function craft(s: Scenario, patternId: string, change: ProposalChange): Promise<Proposal> {
  const pattern = (await findPattern(s.db, patternId))!;
  const current = await s.domain.snapshots.current();
  return s.db.transaction((tx) => insertProposal(tx, pattern, change, "crafted by the test", current, s.clock.now()));
}

async function failuresOf(s: Scenario, id: string) {
  const report = await s.domain.proposals.validate(id);
  return { outcome: report.outcome, failures: report.failures, warnings: report.warnings, report };
}

describe("proposals", () => {
  test("each pattern kind plans its change on a candidate snapshot (base + change)", async () => {
    const schemas = { "sensor.temp": { value_type: "number" as const, metadata: {} } };
    await withScenario(pg, { genesis: rules(5, { schemas }) }, async (s) => {
      await observe(s, 6, "api.call", "finance", 10);
      await observe(s, 6, "payment.error", "finance", 10);
      await observe(s, 3, "heartbeat", "generic", 120);
      await observe(s, 5, "sensor.temp", "manufacturing", 10, { value: "hot", metadata: { unit: "C" } }); // 5 is not above 5
      const proposals = await plan(s);
      const changes = proposals.map((p) => p.change).sort((a, b) => a.kind.localeCompare(b.kind));
      expect(changes).toEqual([
        { kind: "add_guard", guard: { id: "error-code:finance:payment.error", sector: "finance", event_type: "payment.error", check: { op: "required", path: "metadata.error_code" }, action: "flag" } },
        { kind: "add_schema", event_type: "sensor.temp", schema: { value_type: "string", metadata: { unit: "string" } } },
        { kind: "adjust_threshold", event_type: "api.call", from: 5, to: 8 },
        { kind: "adjust_threshold", event_type: "payment.error", from: 5, to: 8 },
        { kind: "mark_inactive", event_type: "heartbeat" },
      ]);
      const genesis = await s.domain.snapshots.current();
      for (const p of proposals) {
        const candidate = await s.domain.snapshots.get(p.snapshot_id);
        expect(candidate).toMatchObject({ parent_id: genesis.id, version: 2, status: "candidate", proposal_id: p.id });
        expect(candidate.content_hash).toBe(contentHash(candidate.content));
        expect(await s.domain.proposals.get(p.id)).toEqual(p);
      }
      // a second generate finds nothing new; an explicit pattern id that is planned already conflicts
      expect(await s.domain.proposals.generate()).toEqual([]);
      await expect(s.domain.proposals.generate({ pattern_ids: [proposals[0].pattern_id] })).rejects.toBeInstanceOf(ConflictError);
      await expect(s.domain.proposals.generate({ pattern_ids: ["nope"] })).rejects.toMatchObject({ field: "pattern_ids.0" });
      await expect(s.domain.proposals.get("00000000-0000-4000-8000-000000000000")).rejects.toBeInstanceOf(NotFoundError);
      await expect(s.domain.proposals.validationReport(proposals[0].id)).rejects.toBeInstanceOf(NotFoundError);
      expect(s.metrics.total("knhk_proposals_generated_total")).toBe(5);
    });
  });
});

describe("validation", () => {
  test("a sound proposal passes every check; the report is stored, receipted and retrievable", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      await observe(s, 6, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      const report = await s.domain.proposals.validate(proposal.id);
      expect(report.outcome).toBe("passed");
      expect(report.failures).toEqual([]);
      expect(report.checks.map((c) => c.id)).toEqual(["S1", "S2", "S3", "S4", "Q1", "Q2", "Q3", "Q4", "Q5", "T1", "D1", "D2", "D3", "D5"]);
      expect(report.checks.every((c) => c.passed)).toBe(true);
      expect(await s.domain.proposals.validationReport(proposal.id)).toEqual(report);
      expect((await s.domain.proposals.get(proposal.id)).status).toBe("passed");
      expect(report.receipt_seq).not.toBeNull();
      const ops = await receiptOperations(s.db);
      expect(ops[ops.length - 1]).toEqual({ operation: "proposal.validate", outcome: "passed" });
      // The stored report links its receipt (filled by the ledger from the outbox entry the
      // report's transaction staged), and nothing is left in the outbox.
      const linked = await s.owner.query<{ receipt_seq: string; operation: string; report_id: string }>(
        `SELECT v.receipt_seq, r.operation, r.evidence::jsonb ->> 'report_id' AS report_id
         FROM validation_reports v JOIN receipts r ON r.seq = v.receipt_seq WHERE v.id = $1`,
        [report.id],
      );
      expect(linked.rows).toEqual([{ receipt_seq: String(report.receipt_seq), operation: "proposal.validate", report_id: report.id }]);
      expect((await s.owner.query("SELECT 1 FROM receipt_outbox")).rows).toEqual([]);
      expect(s.metrics.total("knhk_proposal_validations_total", { outcome: "passed" })).toBe(1);
    });
  });

  test("S1: a malformed stored change fails static checks and stops validation", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      await observe(s, 6, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      await s.owner.query(`UPDATE proposals SET change = '{"kind":"adjust_threshold","event_type":"api.call","from":5,"to":-3}' WHERE id = $1`, [proposal.id]);
      const { outcome, failures, report } = await failuresOf(s, proposal.id);
      expect([outcome, failures]).toEqual(["failed", ["S1"]]);
      expect(report.checks).toHaveLength(1);
      expect(report.checks[0].detail).toMatch(/to/);
      expect(s.metrics.total("knhk_proposal_validations_total", { outcome: "failed" })).toBe(1);
    });
  });

  test("S2: a candidate that is not base + change fails", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      await observe(s, 6, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      const candidate = (await findSnapshot(s.db, proposal.snapshot_id))!;
      const tampered = { ...candidate.content, inactive_event_types: ["api.call"] };
      await s.owner.query("UPDATE knowledge_snapshots SET content = $2, content_hash = $3 WHERE id = $1", [candidate.id, JSON.stringify(tampered), contentHash(tampered)]);
      expect((await failuresOf(s, proposal.id)).failures).toEqual(["S2"]);
    });
  });

  test("S3: a candidate inheriting malformed content from its base fails", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      const genesis = await s.domain.snapshots.current();
      const broken = { ...genesis.content, thresholds: { ...genesis.content.thresholds, error_spike: { ...genesis.content.thresholds.error_spike, ratio: 5 } } };
      await s.owner.query("UPDATE knowledge_snapshots SET content = $2, content_hash = $3 WHERE id = $1", [genesis.id, JSON.stringify(broken), contentHash(broken)]);
      s.domain.snapshots.invalidate();
      await observe(s, 6, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      const { failures, report } = await failuresOf(s, proposal.id);
      expect(failures).toEqual(["S3"]);
      expect(report.checks.find((c) => c.id === "S3")!.detail).toMatch(/thresholds\.error_spike\.ratio/);
    });
  });

  test("S4: a change that does not answer its pattern fails", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      await observe(s, 6, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      const crafted = await craft(s, proposal.pattern_id, { kind: "mark_inactive", event_type: "api.call" });
      expect((await failuresOf(s, crafted.id)).failures).toEqual(["S4"]);
    });
  });

  test("Q1: a pattern detected after the proposal that relies on it is retrocausation", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      await observe(s, 6, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      await s.owner.query("UPDATE patterns SET detected_at = detected_at + interval '1 hour' WHERE id = $1", [proposal.pattern_id]);
      const { failures, report } = await failuresOf(s, proposal.id);
      expect(failures).toEqual(["Q1"]);
      expect(report.checks.find((c) => c.id === "Q1")!.detail).toMatch(/after the proposal was created/);
    });
  });

  test("Q1: evidence citing an observation stored after the detection fails", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      await observe(s, 6, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      const pattern = (await findPattern(s.db, proposal.pattern_id))!;
      const cited = (pattern.evidence.sample_observation_ids as string[])[0];
      await s.owner.query("UPDATE observations SET created_at = created_at + interval '1 hour' WHERE id = $1", [cited]);
      const { failures, report } = await failuresOf(s, proposal.id);
      expect(failures).toEqual(["Q1"]);
      expect(report.checks.find((c) => c.id === "Q1")!.detail).toContain(cited);
    });
  });

  test("Q2: a schema met by too few stored observations fails", async () => {
    const schemas = { "sensor.temp": { value_type: "number" as const, metadata: {} } };
    await withScenario(pg, { genesis: rules(1000, { schemas }) }, async (s) => {
      await observe(s, 5, "sensor.temp", "manufacturing", 10, { value: "hot" });
      await observe(s, 4, "sensor.temp", "manufacturing", 10, { value: 20 });
      const [proposal] = await plan(s);
      expect(proposal.change).toEqual({ kind: "add_schema", event_type: "sensor.temp", schema: { value_type: "string", metadata: {} } });
      const { failures, report } = await failuresOf(s, proposal.id);
      expect(failures).toEqual(["Q2"]);
      expect(report.checks.find((c) => c.id === "Q2")).toMatchObject({ figures: { total: 9, conforming: 5 } });
    });
  });

  test("Q2: a schema every stored observation meets passes", async () => {
    const schemas = { "sensor.temp": { value_type: "number" as const, metadata: {} } };
    await withScenario(pg, { genesis: rules(1000, { schemas }) }, async (s) => {
      await observe(s, 6, "sensor.temp", "manufacturing", 10, { value: "hot", metadata: { unit: "C" } });
      const [proposal] = await plan(s);
      expect((await failuresOf(s, proposal.id)).outcome).toBe("passed");
    });
  });

  test("Q2: an event type marked inactive that came back fails", async () => {
    await withScenario(pg, { genesis: rules(1000) }, async (s) => {
      await observe(s, 6, "heartbeat", "generic", 120);
      const [proposal] = await plan(s);
      expect(proposal.change.kind).toBe("mark_inactive");
      await observe(s, 1, "heartbeat", "generic", 1);
      expect((await failuresOf(s, proposal.id)).failures).toEqual(["Q2"]);
    });
  });

  test("Q3: a guard whose field needs more than 8 rows is parked by kernel admission and fails; the planned guard passes", async () => {
    await withScenario(pg, { genesis: rules(1000) }, async (s) => {
      const readings = Array.from({ length: 12 }, (_, i) => i);
      await observe(s, 6, "sensor.error", "manufacturing", 10, { metadata: { readings } });
      await observe(s, 4, "sensor.ok", "manufacturing", 10);
      const [planned] = await plan(s);
      expect(planned.change.kind).toBe("add_guard");
      expect((await failuresOf(s, planned.id)).outcome).toBe("passed");
      const guard: Guard = { id: "readings-max", sector: "manufacturing", event_type: "sensor.error", check: { op: "max", path: "metadata.readings", max: 100 }, action: "flag" };
      const crafted = await craft(s, planned.pattern_id, { kind: "add_guard", guard });
      const { failures, report } = await failuresOf(s, crafted.id);
      expect(failures).toEqual(["Q3"]);
      expect(report.checks.find((c) => c.id === "Q3")!.detail).toMatch(/readings-max .*run_too_long/);
    });
  });

  test("T1: a snapshot whose guards cost more than 64 ticks per observation fails the tick budget", async () => {
    const guards: Guard[] = Array.from({ length: 8 }, (_, i) => ({
      id: `readings-${i}`,
      sector: "manufacturing",
      event_type: "sensor.error",
      check: { op: "max", path: "metadata.readings", max: 1000 + i },
      action: "flag",
    }));
    await withScenario(pg, { genesis: rules(1000, { guards }) }, async (s) => {
      await observe(s, 6, "sensor.error", "manufacturing", 10, { metadata: { readings: [1, 2, 3, 4, 5, 6, 7, 8] } });
      await observe(s, 4, "sensor.ok", "manufacturing", 10);
      const [planned] = await plan(s);
      const { failures, report } = await failuresOf(s, planned.id);
      expect(failures).toEqual(["T1"]);
      expect(report.checks.find((c) => c.id === "T1")!.figures).toMatchObject({ budget: 64 });
      expect(Number(report.checks.find((c) => c.id === "T1")!.figures!.max_observation_ticks)).toBeGreaterThan(64);
    });
  });

  test("Q4: a tampered ancestor hash breaks the chain", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      await observe(s, 6, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      await s.owner.query(`UPDATE knowledge_snapshots SET content_hash = '${"f".repeat(64)}' WHERE parent_id IS NULL`);
      const { failures, report } = await failuresOf(s, proposal.id);
      expect(failures).toEqual(["Q4"]);
      expect(report.checks.find((c) => c.id === "Q4")!.detail).toMatch(/stored content hash does not match/);
    });
  });

  test("Q5: a change that alters nothing fails", async () => {
    const guards: Guard[] = [{ id: "error-code:finance:payment.error", sector: "finance", event_type: "payment.error", check: { op: "required", path: "metadata.error_code" }, action: "flag" }];
    await withScenario(pg, { genesis: rules(1000, { guards }) }, async (s) => {
      await observe(s, 6, "payment.error", "finance", 10);
      const [proposal] = await plan(s);
      const { failures, report } = await failuresOf(s, proposal.id);
      expect(failures).toEqual(["Q5"]);
      expect(report.checks.find((c) => c.id === "Q5")!.detail).toMatch(/no-op/);
    });
  });

  test("D1: too little evidence fails the mandatory doctrine", async () => {
    await withScenario(pg, { genesis: rules(2) }, async (s) => {
      await observe(s, 3, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      const { failures, report } = await failuresOf(s, proposal.id);
      expect(failures).toEqual(["D1"]);
      expect(report.checks.find((c) => c.id === "D1")).toMatchObject({ enforcement: "mandatory", figures: { observations: 3 } });
    });
  });

  test("D2: a rejecting guard in a regulated sector fails; a flag guard passes", async () => {
    await withScenario(pg, { genesis: rules(1000) }, async (s) => {
      await observe(s, 6, "payment.error", "finance", 10);
      const [planned] = await plan(s);
      const guard = { ...(planned.change as { guard: Guard }).guard, action: "reject" as const };
      const crafted = await craft(s, planned.pattern_id, { kind: "add_guard", guard });
      expect((await failuresOf(s, crafted.id)).failures).toEqual(["D2"]);
      expect((await failuresOf(s, planned.id)).outcome).toBe("passed");
    });
  });

  test("D3 (warning) and D5 (warning): a big threshold step and stale evidence pass with warnings", async () => {
    await withScenario(pg, { genesis: rules(2) }, async (s) => {
      await observe(s, 20, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      expect(proposal.change).toMatchObject({ from: 2, to: 25 });
      s.clock.advance(200_000);
      const { outcome, failures, warnings } = await failuresOf(s, proposal.id);
      expect([outcome, failures, warnings]).toEqual(["passed", [], ["D3", "D5"]]);
    });
  });

  test("D4 (advisory): a guard that would flag most observations is noted, not fatal", async () => {
    await withScenario(pg, { genesis: rules(1000) }, async (s) => {
      await observe(s, 6, "payment.error", "finance", 10);
      const [proposal] = await plan(s);
      const { outcome, warnings, report } = await failuresOf(s, proposal.id);
      expect([outcome, warnings]).toEqual(["passed", ["D4"]]);
      expect(report.checks.find((c) => c.id === "D4")).toMatchObject({ enforcement: "advisory", figures: { evaluated: 6, failed: 6 } });
    });
  });

  test("timeout: a validation that cannot finish within the limit ends as timeout and cannot be promoted", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      await observe(s, 6, "api.call", "finance", 10);
      const [proposal] = await plan(s);
      await expect(s.domain.proposals.validate(proposal.id, { timeoutMs: 0 })).rejects.toBeInstanceOf(ValidationError);
      const report = await s.owner.session(async (session) => {
        await session.exec("BEGIN");
        await session.exec("LOCK TABLE observations IN ACCESS EXCLUSIVE MODE");
        try {
          return await s.domain.proposals.validate(proposal.id, { timeoutMs: 400 });
        } finally {
          await session.exec("ROLLBACK");
        }
      });
      expect(report.outcome).toBe("timeout");
      expect(report.timeout_ms).toBe(400);
      expect(report.checks.map((c) => c.id)).toEqual(["S1", "S2", "S3", "S4"]);
      expect((await s.domain.proposals.get(proposal.id)).status).toBe("timeout");
      expect(s.metrics.total("knhk_proposal_validations_total", { outcome: "timeout" })).toBe(1);
      await expect(s.domain.snapshots.promote(proposal.snapshot_id)).rejects.toMatchObject({ reason: "not_validated" });
      const genesis = (await s.domain.snapshots.list()).items.find((x) => x.parent_id === null)!;
      expect((await s.domain.snapshots.current()).id).toBe(genesis.id);
      // with the lock gone the same proposal validates
      expect((await s.domain.proposals.validate(proposal.id)).outcome).toBe("passed");
    });
  });
});

describe("snapshots", () => {
  test("promotion swaps the current pointer atomically, receipts and broadcasts; rollback returns to the parent", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      const genesis = await s.domain.snapshots.current();
      await observe(s, 6, "api.call", "finance", 10);
      await observe(s, 6, "api.other", "finance", 10);
      const [a, b] = await plan(s);
      await expect(s.domain.snapshots.promote(a.snapshot_id)).rejects.toMatchObject({ reason: "not_validated" });
      expect((await s.domain.proposals.validate(a.id)).outcome).toBe("passed");
      expect((await s.domain.proposals.validate(b.id)).outcome).toBe("passed");

      const promoted = await s.domain.snapshots.promote(a.snapshot_id);
      expect(promoted).toMatchObject({ id: a.snapshot_id, status: "current", parent_id: genesis.id, version: 2 });
      expect((await s.domain.snapshots.current()).id).toBe(a.snapshot_id);
      expect((await s.domain.snapshots.get(genesis.id)).status).toBe("superseded");
      expect((await s.domain.proposals.get(a.id)).status).toBe("promoted");
      expect(s.broadcasts).toEqual([{ kind: "promote", snapshot_id: a.snapshot_id, previous_snapshot_id: genesis.id, version: 2 }]);
      await expect(s.domain.snapshots.promote(a.snapshot_id)).rejects.toMatchObject({ reason: "already_current" });

      // b was validated against genesis: stale now; validation says so (Q4) and promotion refuses
      await expect(s.domain.snapshots.promote(b.snapshot_id)).rejects.toMatchObject({ reason: "stale_parent" });
      expect((await s.domain.proposals.validate(b.id)).failures).toEqual(["Q4"]);
      const rebased = await s.domain.proposals.rebase(b.id);
      expect(rebased.base_snapshot_id).toBe(a.snapshot_id);
      expect((await s.domain.proposals.validate(b.id)).outcome).toBe("passed");
      const third = await s.domain.snapshots.promote(rebased.snapshot_id);
      expect(third.version).toBe(3);
      expect(third.content.thresholds.high_frequency.by_event_type).toEqual({ "api.call": 8, "api.other": 8 });

      // the new knowledge changes detection: 6 per window is the new normal
      expect((await s.domain.patterns.detect()).patterns).toEqual([]);

      const back = await s.domain.snapshots.rollback();
      expect(back.id).toBe(a.snapshot_id);
      expect((await s.domain.snapshots.get(third.id)).status).toBe("rolled_back");
      expect(s.broadcasts[s.broadcasts.length - 1]).toEqual({ kind: "rollback", snapshot_id: a.snapshot_id, previous_snapshot_id: third.id, version: 2 });
      expect(kindsOf((await s.domain.patterns.detect()).patterns)).toEqual(["high_frequency:api.other"]);
      await s.domain.snapshots.rollback();
      await expect(s.domain.snapshots.rollback()).rejects.toMatchObject({ reason: "at_genesis" });

      const transitions = await s.db.query<{ kind: string; receipt_seq: string | null }>("SELECT kind, receipt_seq FROM snapshot_transitions ORDER BY seq");
      expect(transitions.rows.map((r) => r.kind)).toEqual(["promote", "promote", "rollback", "rollback"]);
      expect(transitions.rows.every((r) => r.receipt_seq !== null)).toBe(true);
      expect(s.metrics.total("knhk_snapshot_promotions_total")).toBe(2);
      expect(s.metrics.total("knhk_snapshot_rollbacks_total")).toBe(2);
      const ops = (await receiptOperations(s.db)).map((r) => r.operation);
      expect(ops.filter((o) => o === "snapshot.promote")).toHaveLength(2);
      expect(ops.filter((o) => o === "snapshot.rollback")).toHaveLength(2);

      const list = await s.domain.snapshots.list({ limit: 2 });
      expect(list.items).toHaveLength(2);
      expect(list.next_cursor).not.toBeNull();
      await expect(s.domain.snapshots.get("00000000-0000-4000-8000-000000000000")).rejects.toBeInstanceOf(NotFoundError);
      await expect(s.domain.snapshots.promote(genesis.id)).rejects.toMatchObject({ reason: "already_current" });

      const report = await verifyChain({ db: s.db, workers: 0, saveCheckpoint: false });
      expect(report.ok).toBe(true);
      expect(report.total_count).toBe(ops.length);
    });
  });

  test("a replica's cached snapshot follows the pointer promoted elsewhere", async () => {
    await withScenario(pg, { genesis: rules(5) }, async (s) => {
      const other = await s.replica();
      try {
        const before = await other.domain.snapshots.current();
        await observe(s, 6, "api.call", "finance", 10);
        const [p] = await plan(s);
        await s.domain.proposals.validate(p.id);
        await s.domain.snapshots.promote(p.snapshot_id);
        const after = await other.domain.snapshots.current();
        expect(after.id).not.toBe(before.id);
        expect(after.id).toBe(p.snapshot_id);
      } finally {
        await other.close();
      }
    });
  });
});

function kindsOf(patterns: readonly { kind: string; event_type: string | null }[]) {
  return patterns.map((p) => `${p.kind}:${p.event_type}`).sort();
}
