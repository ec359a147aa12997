/**
 * Run by loop.test.ts in a child process (`tsx`): PGlite loads its WebAssembly through a dynamic
 * import that jest's VM cannot host. Runs the loop on embedded PGlite and prints one JSON line.
 */
import { migrate } from "../../app/src/db/migrate";
import { createPgliteDatabase } from "../../app/src/db/pglite";
import { createDomain, GENESIS_CONTENT, recordingMetrics } from "../../app/src/domain";
import { createKernel } from "../../app/src/hotpath";
import { createLedger, registerEphemeralSigner, verifyChain } from "../../app/src/receipts";

async function until(probe: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function main() {
  const db = await createPgliteDatabase();
  await migrate(db);
  const signer = await registerEphemeralSigner(db);
  const ledger = createLedger({ db, signer });
  const metrics = recordingMetrics();
  const genesisContent = { ...GENESIS_CONTENT, thresholds: { ...GENESIS_CONTENT.thresholds, high_frequency: { default: 5, by_event_type: {} } } };
  const domain = createDomain({ db, ledger, kernel: await createKernel({ capacity: 256 }), metrics, settings: { patternWindowSeconds: 60, validationTimeoutMs: 10_000, mapeKIntervalMs: 100, genesisContent } });
  await domain.init();
  await domain.init();
  for (let i = 0; i < 7; i++) await domain.observations.create({ event_type: "order.created", sector: "logistics", value: i });
  const cycle = await domain.mapeK.execute();
  const version = (await domain.snapshots.current()).version;
  domain.mapeK.startScheduler();
  const led = await until(() => domain.mapeK.isLeader(), 10_000);
  const scheduled = await until(async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM mape_k_cycles WHERE trigger = 'scheduled'")).rows[0].n >= 1, 10_000);
  await domain.mapeK.stopScheduler();
  const leaderAfterStop = domain.mapeK.isLeader();
  await ledger.close();
  const chain = await verifyChain({ db, workers: 0, saveCheckpoint: false });
  const genesisRows = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM knowledge_snapshots WHERE parent_id IS NULL");
  await db.close();
  process.stdout.write(
    `${JSON.stringify({ outcome: cycle.outcome, version, led, scheduled, leaderAfterStop, chainOk: chain.ok, receipts: chain.total_count, genesisSnapshots: genesisRows.rows[0].n })}\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
