/**
 * Ledger.appendWith: rows written in the receipt batch's own transaction, as knhk_app on a real
 * PostgreSQL 15. Rows and receipt are durable together or not at all; one value whose rows fail
 * fails alone; each batch calls a writer once with every value in batch order.
 */
import { createLedger, registerEphemeralSigner, verifyChain, type Ledger } from "../../app/src/receipts";
import type { CompanionWriter } from "../../app/src/receipts/ledger";
import { startLedgerPostgres, type LedgerPostgres } from "./receipts-support";

let env: LedgerPostgres;
let ledger: Ledger;
const calls: string[][] = [];

/** Inserts its values into a table of its own; "bad" violates the table's check. */
const writer: CompanionWriter<string, number> = {
  rows: () => 1,
  statement(values, receipts, prefix, param) {
    calls.push([...values]);
    return {
      ctes: `${prefix}rows AS (INSERT INTO companion_rows (value, receipt_seq) SELECT * FROM unnest(${param(values)}::text[], ${param(receipts.map((r) => r.seq))}::bigint[]) RETURNING value)`,
      result: `(SELECT json_object_agg(value, length(value)) FROM ${prefix}rows)`,
    };
  },
  results: (lengths, values) => values.map((v) => (lengths as Record<string, number>)[v]),
};

beforeAll(async () => {
  env = await startLedgerPostgres();
  await env.pg.psql("CREATE TABLE companion_rows (value text NOT NULL CHECK (value <> 'bad'), receipt_seq bigint NOT NULL); GRANT SELECT, INSERT ON companion_rows TO knhk_service;", "knhk");
  ledger = createLedger({ db: env.service, signer: await registerEphemeralSigner(env.owner) });
}, 120_000);
afterAll(async () => {
  await ledger?.close();
  await env?.close();
});

const entry = (value: string) => ({ operation: "companion.test", outcome: "success", evidence: { value }, sector: "generic" });

test("concurrent appends share a batch: the writer runs once per batch with its values in order, each row next to its receipt", async () => {
  calls.length = 0;
  const values = ["a", "bb", "ccc", "dddd", "eeeee"];
  const results = await Promise.all(values.map((v) => ledger.appendWith(entry(v), writer, v)));
  expect(results.map((r) => r.result)).toEqual([1, 2, 3, 4, 5]);
  expect(calls.flat()).toEqual(values);
  expect(calls.length).toBeLessThan(values.length);
  const rows = await env.service.query<{ value: string; receipt_seq: string; evidence: string }>(
    "SELECT c.value, c.receipt_seq, r.evidence FROM companion_rows c JOIN receipts r ON r.seq = c.receipt_seq ORDER BY c.receipt_seq",
  );
  expect(rows.rows.map((r) => [r.value, JSON.parse(r.evidence).value])).toEqual(values.map((v) => [v, v]));
  expect(rows.rows.map((r) => Number(r.receipt_seq))).toEqual(results.map((r) => r.receipt.seq));
});

test("a value whose rows fail fails alone: no row and no receipt for it, the others stored with theirs", async () => {
  const before = await env.service.query<{ n: number }>("SELECT count(*)::int AS n FROM receipts");
  const outcomes = await Promise.allSettled(["ok1", "bad", "ok2"].map((v) => ledger.appendWith(entry(v), writer, v)));
  expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/companion_rows_value_check/);
  const after = await env.service.query<{ n: number }>("SELECT count(*)::int AS n FROM receipts");
  expect(after.rows[0].n).toBe(before.rows[0].n + 2);
  const bad = await env.service.query<{ n: number }>("SELECT count(*)::int AS n FROM receipts WHERE evidence LIKE '%\"bad\"%'");
  expect(bad.rows[0].n).toBe(0);
  expect((await env.service.query<{ n: number }>("SELECT count(*)::int AS n FROM companion_rows WHERE value = 'bad'")).rows[0].n).toBe(0);
  expect((await verifyChain({ db: env.owner, saveCheckpoint: false, workers: 0 })).ok).toBe(true);
});
