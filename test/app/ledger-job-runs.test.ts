/**
 * ledger_job_runs and what the service exports from it (app/src/ledger-jobs), on PostgreSQL 15:
 * run records from verification reports, the latest run per mode, the gauge the P0 reads (values,
 * modes that never ran, a database that cannot be read), and the CLI flags that record runs.
 */
import { dispatch } from "../../app/src/cli/index";
import { migrate } from "../../app/src/db/migrate";
import { openDatabase } from "../../app/src/db/open";
import type { Database, Sql } from "../../app/src/db/types";
import { addVerificationRunCollector, CHAIN_FAILURE_KINDS, failureCounts, latestVerifications, recordRun, verificationRun } from "../../app/src/ledger-jobs";
import type { VerificationReport } from "../../app/src/receipts/types";
import { ServiceMetrics } from "../../app/src/telemetry/metrics";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { capturedStreams } from "../support/streams";

let pg: TestPostgres;
let db: Database;

beforeAll(async () => {
  pg = await startPostgres();
  await pg.createDatabase("knhk_runs");
  db = await openDatabase({ url: pg.url("knhk_runs"), poolMax: 2, poolMin: 0 });
  await migrate(db);
}, 120_000);

afterAll(async () => {
  await db?.close();
  await pg?.destroy();
});

function report(over: Partial<VerificationReport>): VerificationReport {
  return {
    total_count: 10,
    verified_count: 10,
    signature_failures: [],
    chain_breaks: [],
    retrocausation_violations: [],
    last_verified_timestamp: null,
    from_seq: 1,
    to_seq: 10,
    incremental: false,
    ok: true,
    ...over,
  };
}

const failure = (seq: number, kind: "hash_mismatch" | "parent_mismatch" | "sequence_gap" | "signature_invalid" | "retrocausation") => ({ id: "", seq, kind, detail: "x" });

async function exported(metrics: ServiceMetrics): Promise<Record<string, number>> {
  const text = (await metrics.exposition()).body;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^knhk_receipt_chain_verification_failures\{kind="([a-z_]+)",mode="([a-z]+)"\} (\d+)$/gm)) out[`${m[2]}/${m[1]}`] = Number(m[3]);
  return out;
}

describe("run records", () => {
  test("a report's failures are counted by kind; the mode is what the run did", () => {
    const r = report({
      ok: false,
      incremental: true,
      chain_breaks: [failure(3, "hash_mismatch"), failure(4, "parent_mismatch"), failure(9, "hash_mismatch")],
      signature_failures: [failure(5, "signature_invalid")],
      retrocausation_violations: [failure(6, "retrocausation")],
    });
    expect(failureCounts(r)).toEqual({ hash_mismatch: 2, parent_mismatch: 1, signature_invalid: 1, retrocausation: 1, sequence_gap: 0 });
    const started = new Date("2026-01-01T00:00:00Z");
    expect(verificationRun(r, started)).toMatchObject({ job: "verify-incremental", ok: false, startedAt: started, summary: { total_count: 10, from_seq: 1, to_seq: 10 } });
    expect(verificationRun(report({ incremental: false }), started).job).toBe("verify-full");
  });

  test("the latest run of each mode, whatever ran in between", async () => {
    expect(await latestVerifications(db)).toEqual([]);
    const t = new Date(Date.now() - 60_000);
    await recordRun(db, verificationRun(report({ ok: false, chain_breaks: [failure(2, "sequence_gap")] }), t));
    await recordRun(db, verificationRun(report({ incremental: true }), t));
    await recordRun(db, { job: "archive", ok: true, startedAt: t, summary: { ok: true } });
    const latest = await latestVerifications(db);
    expect(latest.map((l) => [l.mode, l.ok, l.failures.sequence_gap])).toEqual([
      ["full", false, 1],
      ["incremental", true, 0],
    ]);
    await recordRun(db, verificationRun(report({}), t));
    expect((await latestVerifications(db)).find((l) => l.mode === "full")).toMatchObject({ ok: true, failures: { sequence_gap: 0 } });
  });

  test("a run record cannot finish before it started, and the table is append-only", async () => {
    await expect(db.query("INSERT INTO ledger_job_runs (job, ok, started_at, finished_at) VALUES ('archive', true, now(), now() - interval '1 hour')")).rejects.toThrow(/check constraint/);
    await expect(db.query("INSERT INTO ledger_job_runs (job, ok, started_at) VALUES ('backup', true, now())")).rejects.toThrow(/check constraint/);
    await expect(db.query("UPDATE ledger_job_runs SET ok = true")).rejects.toThrow(/append-only/);
    await expect(db.query("TRUNCATE ledger_job_runs")).rejects.toThrow(/append-only/);
  });
});

describe("the service's gauge", () => {
  test("every kind of each recorded mode; the latest run's counts", async () => {
    const metrics = new ServiceMetrics(undefined, { defaultMetrics: false });
    addVerificationRunCollector(metrics, db);
    await recordRun(db, verificationRun(report({ ok: false, incremental: true, chain_breaks: [failure(7, "hash_mismatch")] }), new Date()));
    const values = await exported(metrics);
    expect(Object.keys(values).sort()).toEqual([...CHAIN_FAILURE_KINDS.map((k) => `full/${k}`), ...CHAIN_FAILURE_KINDS.map((k) => `incremental/${k}`)].sort());
    expect(values["incremental/hash_mismatch"]).toBe(1);
    expect(values["full/hash_mismatch"]).toBe(0);
  });

  test("no run recorded: no series (nothing is claimed about a chain nobody verified)", async () => {
    await pg.createDatabase("knhk_runs_empty");
    const empty = await openDatabase({ url: pg.url("knhk_runs_empty"), poolMax: 1, poolMin: 0 });
    try {
      await migrate(empty);
      const metrics = new ServiceMetrics(undefined, { defaultMetrics: false });
      addVerificationRunCollector(metrics, empty);
      expect(await exported(metrics)).toEqual({});
      expect((await metrics.exposition()).body).toContain("# TYPE knhk_receipt_chain_verification_failures gauge");
    } finally {
      await empty.close();
    }
  });

  test("an unreadable database keeps the last values, does not fail the scrape, and is reported once a minute", async () => {
    let broken = false;
    const flaky: Sql = {
      query: (text, params) => (broken ? Promise.reject(new Error("connection refused")) : db.query(text, params)),
      exec: (text) => db.exec(text),
    };
    let clock = 0;
    const errors: string[] = [];
    const metrics = new ServiceMetrics(undefined, { defaultMetrics: false });
    addVerificationRunCollector(metrics, flaky, (e) => errors.push(e.message), () => clock);
    const before = await exported(metrics);
    expect(before["incremental/hash_mismatch"]).toBe(1);
    broken = true;
    expect(await exported(metrics)).toEqual(before);
    clock += 30_000;
    expect(await exported(metrics)).toEqual(before);
    clock += 30_000;
    await exported(metrics);
    expect(errors).toEqual(["connection refused", "connection refused"]);
  });
});

describe("the CLI's --record-run", () => {
  async function knhk(argv: string[]) {
    const { stdout, stderr, out, err } = capturedStreams();
    const code = await dispatch(argv, { env: { DATABASE_URL: pg.url("knhk_runs") }, stdout, stderr });
    return { code, out: out(), err: err() };
  }

  test("verify-chain --record-run records the run; with --limit it is refused (a partial run proves nothing)", async () => {
    const before = Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM ledger_job_runs")).rows[0].n);
    const ok = await knhk(["receipts", "verify-chain", "--record-run", "--workers", "0"]);
    expect(ok.code).toBe(0);
    expect(Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM ledger_job_runs")).rows[0].n)).toBe(before + 1);
    const refused = await knhk(["receipts", "verify-chain", "--record-run", "--limit", "5"]);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain("--record-run: not with --limit");
  });

  test("archive run flags are parsed strictly", async () => {
    const bad = await knhk(["archive", "run", "--delete-archived-observations=yes"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/delete-archived-observations/);
  });
});
