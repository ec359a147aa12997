/**
 * The receipt outbox (defect 4): a receipt staged in a committed transaction reaches the chain
 * exactly once, through appendStaged or, when its process is gone, through another ledger's
 * recover(); a live ledger's entries are never adopted; a rolled-back transaction leaves nothing.
 */
import { createLedger, loadSigner, verifyChain, type Ledger, type Signer } from "../../app/src/receipts";
import { startLedgerPostgres, type LedgerPostgres } from "./receipts-support";

jest.setTimeout(120_000);
let env: LedgerPostgres;
let signer: Signer;

beforeAll(async () => {
  env = await startLedgerPostgres();
  signer = await loadSigner({ db: env.service, registrar: env.owner, env: {}, log: () => undefined });
});
afterAll(async () => {
  await signer?.close();
  await env?.close();
});

const outboxCount = async () => Number((await env.owner.query<{ n: string }>("SELECT count(*) AS n FROM receipt_outbox")).rows[0].n);

/** Stages `n` receipts in committed transactions without appending them: what a kill -9 after COMMIT leaves. */
async function stageCommitted(ledger: Ledger, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    await env.service.transaction((tx) => ledger.stage(tx, { operation: "test.outbox", outcome: "success", evidence: { tag, i }, sector: "default" }));
  }
}

async function receiptsTagged(tag: string): Promise<number> {
  const { rows } = await env.owner.query<{ n: string }>("SELECT count(*) AS n FROM receipts WHERE evidence::jsonb ->> 'tag' = $1", [tag]);
  return Number(rows[0].n);
}

test("a staged receipt is appended once by appendStaged and leaves the outbox in the same transaction", async () => {
  const ledger = createLedger({ db: env.service, signer });
  try {
    const staged = await env.service.transaction((tx) => ledger.stage(tx, { operation: "test.outbox", outcome: "success", evidence: { tag: "direct" }, sector: "default" }));
    expect(await outboxCount()).toBe(1);
    const receipt = await ledger.appendStaged(staged);
    expect(await outboxCount()).toBe(0);
    expect(await receiptsTagged("direct")).toBe(1);
    // Appending the same entry again is refused: it is no longer in the outbox.
    await expect(ledger.appendStaged(staged)).rejects.toThrow(/outbox entries was already appended/);
    expect(await receiptsTagged("direct")).toBe(1);
    expect((await ledger.head()).seq).toBe(receipt.seq);
  } finally {
    await ledger.close();
  }
});

test("a rolled-back transaction leaves no outbox entry", async () => {
  const ledger = createLedger({ db: env.service, signer });
  try {
    await expect(
      env.service.transaction(async (tx) => {
        await ledger.stage(tx, { operation: "test.outbox", outcome: "success", evidence: { tag: "rolled back" }, sector: "default" });
        throw new Error("the step failed");
      }),
    ).rejects.toThrow("the step failed");
    expect(await outboxCount()).toBe(0);
  } finally {
    await ledger.close();
  }
});

test("recover() adopts only the entries of ledgers that are gone, each exactly once", async () => {
  const alive = createLedger({ db: env.service, signer });
  const recovering = createLedger({ db: env.service, signer });
  const later = createLedger({ db: env.service, signer });
  try {
    await stageCommitted(alive, 5, "orphan");
    // Its owner still holds its lock: nothing is adopted, nothing appended twice.
    expect(await recovering.recover()).toBe(0);
    expect(await outboxCount()).toBe(5);
    await alive.close(); // the process is gone; its committed entries stay behind
    expect(await outboxCount()).toBe(5);
    const [a, b] = await Promise.all([recovering.recover(), later.recover()]);
    expect(a + b).toBe(5);
    expect(await outboxCount()).toBe(0);
    expect(await receiptsTagged("orphan")).toBe(5);
    expect(await recovering.recover()).toBe(0);
    const report = await verifyChain({ db: env.service, saveCheckpoint: false });
    expect(report).toMatchObject({ ok: true, chain_breaks: [], signature_failures: [] });
  } finally {
    await alive.close();
    await recovering.close();
    await later.close();
  }
});

test("a ledger's own entries that failed to append are retried by its recover()", async () => {
  const ledger = createLedger({ db: env.service, signer });
  try {
    await stageCommitted(ledger, 3, "own");
    expect(await ledger.recover()).toBe(3);
    expect(await receiptsTagged("own")).toBe(3);
    expect(await outboxCount()).toBe(0);
  } finally {
    await ledger.close();
  }
});
