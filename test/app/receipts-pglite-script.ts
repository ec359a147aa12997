/**
 * Run by receipts-pglite.test.ts in a child process (tsx): PGlite loads its WebAssembly through a
 * dynamic import that jest's VM cannot host. Exercises the ledger on embedded PGlite and prints
 * one JSON line with what it observed.
 */
import { migrate } from "../../app/src/db/migrate";
import { createPgliteDatabase } from "../../app/src/db/pglite";
import { appendAudit } from "../../app/src/audit";
import { createLedger, loadSigner, verifyChain } from "../../app/src/receipts";
import { ledgerMigrations } from "./receipts-support";

async function refused(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return "not refused";
  } catch (error) {
    return (error as Error).message;
  }
}

async function main(): Promise<void> {
  const db = await createPgliteDatabase();
  const applied = await migrate(db, ledgerMigrations());
  const logs: string[] = [];
  const signer = await loadSigner({ db, env: {}, log: (l) => logs.push(l) });
  const batches: number[] = [];
  const ledger = createLedger({ db, signer, metrics: { onBatch: (n) => batches.push(n) } });
  const receipts = await Promise.all(
    Array.from({ length: 300 }, (_, i) => ledger.append({ operation: "test.pglite", outcome: "success", evidence: { i }, sector: "embedded" })),
  );
  const seqs = receipts.map((r) => r.seq).sort((a, b) => a - b);
  const inline = await verifyChain({ db, workers: 0 });
  const threaded = await verifyChain({ db, workers: 2, pageSize: 64, saveCheckpoint: false });

  const more = await Promise.all(
    Array.from({ length: 20 }, (_, i) => ledger.append({ operation: "test.pglite", outcome: "success", evidence: { more: i }, sector: "embedded" })),
  );
  const incremental = await verifyChain({ db, fromCheckpoint: true, workers: 0 });

  const updateRefused = await refused(() => db.query("UPDATE receipts SET outcome = 'failed' WHERE seq = 5"));
  const deleteRefused = await refused(() => db.query("DELETE FROM receipts WHERE seq = 5"));
  const auditDeleteRefused = await refused(async () => {
    await appendAudit(db, { actor: "tester", action: "test.event", target: "pglite" });
    await db.query("DELETE FROM audit_log");
  });

  await db.exec("SET session_replication_role = replica");
  await db.query("UPDATE receipts SET evidence = '{\"i\":-1}' WHERE seq = 7");
  await db.exec("RESET session_replication_role");
  const tampered = await verifyChain({ db, workers: 0, saveCheckpoint: false });
  await ledger.close();
  await db.close();

  process.stdout.write(
    JSON.stringify({
      applied,
      logs,
      seqs,
      batches,
      inline,
      threaded,
      moreSeqs: more.map((r) => r.seq),
      incremental,
      updateRefused,
      deleteRefused,
      auditDeleteRefused,
      tampered,
      tamperedId: receipts.find((r) => r.seq === 7)?.id,
    }) + "\n",
  );
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
