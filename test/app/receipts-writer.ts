/**
 * A receipt-writing service process for the multi-process tests:
 *   node --import tsx test/app/receipts-writer.ts
 * env: KNHK_TEST_DATABASE_URL, KNHK_TEST_OWNER_URL (registers the writer's key: the service role
 * may not), WRITER_LABEL, WRITER_COUNT (0 = until killed), WRITER_CONCURRENCY.
 * Prints "ready <key_version>" once, then "ack <seq> <id>" for every receipt whose append promise
 * resolved (stdout to a pipe is synchronous on Linux, so a printed line was acknowledged).
 */
import { createPostgresDatabase } from "../../app/src/db/postgres";
import { createLedger, loadSigner } from "../../app/src/receipts";

async function main(): Promise<void> {
  const url = process.env.KNHK_TEST_DATABASE_URL;
  if (!url) throw new Error("KNHK_TEST_DATABASE_URL is required");
  const label = process.env.WRITER_LABEL ?? String(process.pid);
  const count = Number(process.env.WRITER_COUNT ?? "1000");
  const concurrency = Number(process.env.WRITER_CONCURRENCY ?? "32");
  const db = createPostgresDatabase({ connectionString: url, max: 4 });
  const signer = await loadSigner({ db, env: { DATABASE_MIGRATION_URL: process.env.KNHK_TEST_OWNER_URL }, log: () => undefined });
  const ledger = createLedger({ db, signer });
  process.stdout.write(`ready ${signer.keyVersion}\n`);
  let next = 0;
  const more = () => count === 0 || next < count;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (more()) {
        const i = next++;
        const receipt = await ledger.append({
          operation: "test.writer",
          outcome: "success",
          evidence: { writer: label, i },
          sector: "default",
        });
        process.stdout.write(`ack ${receipt.seq} ${receipt.id}\n`);
      }
    }),
  );
  await ledger.close();
  await db.close();
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
