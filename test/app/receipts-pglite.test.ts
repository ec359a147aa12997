/** The ledger on embedded PGlite (no DATABASE_URL): same migrations, same chain, same checks. */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

jest.setTimeout(180_000);

const run = promisify(execFile);
const ROOT = join(__dirname, "..", "..");

test("appends, verifies (inline and threaded, full and incremental), refuses UPDATE/DELETE and reports tampering", async () => {
  const { stdout } = await run(join(ROOT, "node_modules", ".bin", "tsx"), [join(__dirname, "receipts-pglite-script.ts")], {
    cwd: ROOT,
    timeout: 170_000,
  });
  const r = JSON.parse(stdout.trim().split("\n").pop() as string);
  expect(r.applied).toEqual([2, 3, 6]);
  expect(r.logs[0]).toMatch(/ephemeral ed25519 key registered as key_version 1/);
  expect(r.seqs).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
  expect(r.batches.reduce((a: number, b: number) => a + b, 0)).toBe(320);
  expect(r.batches.length).toBeLessThan(300);
  for (const report of [r.inline, r.threaded]) {
    expect(report).toMatchObject({ ok: true, total_count: 300, verified_count: 300, chain_breaks: [], signature_failures: [] });
  }
  expect(r.moreSeqs.sort((a: number, b: number) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => 301 + i));
  expect(r.incremental).toMatchObject({ ok: true, incremental: true, total_count: 20, from_seq: 301, to_seq: 320 });
  expect(r.updateRefused).toMatch(/table receipts is append-only: UPDATE is not allowed/);
  expect(r.deleteRefused).toMatch(/table receipts is append-only: DELETE is not allowed/);
  expect(r.auditDeleteRefused).toMatch(/table audit_log is append-only: DELETE is not allowed/);
  expect(r.tampered.ok).toBe(false);
  expect(r.tampered.chain_breaks).toEqual([expect.objectContaining({ id: r.tamperedId, seq: 7, kind: "hash_mismatch" })]);
});
