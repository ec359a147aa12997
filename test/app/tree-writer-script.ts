/**
 * Run by receipt-tree.test.ts and audit-tree.test.ts as a child process (tsx) to be killed with
 * SIGKILL: advances the receipt tree (TREE=audit: the audit log's) in small transactions as the
 * service role (DATABASE_URL) until it covers every entry, printing the size after each step.
 */
import { createPostgresDatabase } from "../../app/src/db/postgres";
import { advanceAuditTree } from "../../app/src/audit/tree";
import { advanceTree, advanceTreeFully } from "../../app/src/receipts/tlog/store";

async function main() {
  const db = createPostgresDatabase({ connectionString: process.env.DATABASE_URL!, max: 2 });
  const head = await advanceTreeFully(db, (r) => process.stdout.write(`${r.to}\n`), Number(process.env.TREE_STEP ?? 50), process.env.TREE === "audit" ? advanceAuditTree : advanceTree);
  process.stdout.write(`done ${head.size}\n`);
  await db.close();
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
