/**
 * Chain verification throughput against the machine's ed25519 verification ceiling.
 *
 *   npm run bench:verify          (or: npx tsx bench/verify-chain.ts)
 *
 * Ceiling: node:crypto ed25519 verify in one worker thread per core, nothing else, cycling through
 * 1,024 distinct 32-byte messages and their signatures (as a chain's receipts are all distinct;
 * verifying one signature over and over flatters the ceiling by a few per cent on these cores).
 * Chain: `verifyChain` over a stored chain in PostgreSQL 15 as `receipts verify-chain` runs it: as a
 * login of the verifier role (knhk_verifier), the calling thread and one worker thread per further
 * core each reading its ranges over its own connection, recomputing every hash, checking every link and signature. The
 * two are measured in
 * alternation so load changes on a shared machine hit both; the ratio is taken per pair.
 * Incremental: after a checkpoint, only the receipts appended since are verified.
 * Target (issues #8, #15): chain verification >= 90% of the ceiling.
 */
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { availableParallelism, loadavg } from "node:os";
import { Worker } from "node:worker_threads";
import { createPostgresDatabase } from "../app/src/db/postgres";
import { loadMigrations, migrate } from "../app/src/db/migrate";
import { createLedger, loadSigner, verifyChain } from "../app/src/receipts";
import { LEDGER_JOBS } from "../infra/render/ledger-jobs";
import { startPostgres } from "../test/support/postgres";
import { printTable, summarize, writeResult } from "./lib";
import { postgresCpuUs } from "./pg-cpu";

const CHAIN = Number(process.env.CHAIN ?? 30_000);
const INCREMENT = Number(process.env.INCREMENT ?? 1_000);
const REPETITIONS = Number(process.env.REPETITIONS ?? 3);
const CEILING_MS = Number(process.env.CEILING_MS ?? 2000);
const TARGET_RATIO = 0.9;
const VERIFIER_LOGIN = "knhk_bench_verifier";

const CEILING_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const crypto = require("node:crypto");
const key = crypto.createPublicKey(workerData.publicKey);
const pairs = workerData.pairs.map(([m, s]) => [Buffer.from(m, "hex"), Buffer.from(s, "base64")]);
parentPort.once("message", (ms) => {
  let n = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (let i = 0; i < 50; i++) {
      const [msg, sig] = pairs[(n + i) % pairs.length];
      if (!crypto.verify(null, msg, key, sig)) throw new Error("bad signature");
    }
    n += 50;
  }
  parentPort.postMessage(n);
});
`;

/** Distinct messages for the ceiling: a chain's signatures all differ, so the ceiling's do too. */
const CEILING_SIGNATURES = 1024;

/** ed25519 verifications per second with one worker thread per core, and CPU µs per verification. */
async function ceiling(threads: number): Promise<{ rate: number; cpuUsPerVerify: number }> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const pairs = Array.from({ length: CEILING_SIGNATURES }, () => {
    const message = randomBytes(32);
    return [message.toString("hex"), sign(null, message, privateKey).toString("base64")];
  });
  const workers = Array.from(
    { length: threads },
    () =>
      new Worker(CEILING_WORKER, {
        eval: true,
        workerData: { publicKey: publicKey.export({ format: "pem", type: "spki" }), pairs },
      }),
  );
  try {
    await Promise.all(workers.map((w) => new Promise((r) => w.once("online", r))));
    const cpuBefore = process.cpuUsage();
    const counts = await Promise.all(
      workers.map((w) => {
        const done = new Promise<number>((resolve, reject) => {
          w.once("message", resolve);
          w.once("error", reject);
        });
        w.postMessage(CEILING_MS);
        return done;
      }),
    );
    const cpu = process.cpuUsage(cpuBefore);
    const total = counts.reduce((a, b) => a + b, 0);
    return { rate: total / (CEILING_MS / 1000), cpuUsPerVerify: (cpu.user + cpu.system) / total };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

async function main(): Promise<void> {
  const cores = availableParallelism();
  const pg = await startPostgres({ settings: { synchronous_commit: "on", shared_buffers: "256MB" } });
  try {
    await pg.createDatabase("bench");
    const db = createPostgresDatabase({ connectionString: pg.url("bench"), max: 4 });
    await migrate(db, loadMigrations());
    // The CronJob's identity: a login that is only a member of the verifier role.
    await pg.psql(`CREATE ROLE ${VERIFIER_LOGIN} LOGIN IN ROLE ${LEDGER_JOBS.verifyChain.dbRole}`, "bench");
    const verifierUrl = pg.url("bench", VERIFIER_LOGIN);
    const verifier = createPostgresDatabase({ connectionString: verifierUrl, max: 2 });
    const signer = await loadSigner({ db, env: {}, log: () => undefined });
    const ledger = createLedger({ db, signer });
    const fill = async (n: number, phase: string) => {
      for (let done = 0; done < n; done += 2000) {
        const count = Math.min(2000, n - done);
        await Promise.all(
          Array.from({ length: count }, (_, i) =>
            ledger.append({ operation: "bench.verify", outcome: "success", evidence: { phase, i: done + i, note: "verification benchmark" }, sector: "bench" }),
          ),
        );
      }
    };
    console.log(`chain verification: ${CHAIN} receipts, ${cores} cores, ${REPETITIONS} repetitions (+1 warm-up)`);
    await fill(CHAIN, "chain");
    // Settle the freshly written table as a long-lived ledger is (hint bits, visibility map,
    // statistics), so autovacuum does not start in the middle of a measured run.
    await db.query("VACUUM (ANALYZE) receipts");
    await db.query("CHECKPOINT");

    const timeVerify = async (fromCheckpoint: boolean, saveCheckpoint: boolean) => {
      const pgBefore = postgresCpuUs(pg.dataDir);
      const cpuBefore = process.cpuUsage();
      const start = process.hrtime.bigint();
      const report = await verifyChain({ db: verifier, connection: { connectionString: verifierUrl }, callingThread: true, fromCheckpoint, saveCheckpoint });
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const cpu = process.cpuUsage(cpuBefore);
      const pgCpu = postgresCpuUs(pg.dataDir) - pgBefore;
      if (!report.ok) throw new Error(`benchmark chain failed verification: ${JSON.stringify(report).slice(0, 500)}`);
      const count = report.total_count;
      return { seconds, count, rate: count / seconds, cpuUsPerReceipt: (cpu.user + cpu.system + pgCpu) / Math.max(1, count) };
    };

    await ceiling(cores); // warm-up
    await timeVerify(false, false);
    const ceilings: number[] = [];
    const chainRates: number[] = [];
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    const ceilingCpu: number[] = [];
    const chainCpu: number[] = [];
    for (let i = 0; i < REPETITIONS; i++) {
      const c = await ceiling(cores);
      const v = await timeVerify(false, false);
      ceilings.push(c.rate);
      chainRates.push(v.rate);
      ratios.push(v.rate / c.rate);
      ceilingCpu.push(c.cpuUsPerVerify);
      chainCpu.push(v.cpuUsPerReceipt);
      cpuRatios.push(c.cpuUsPerVerify / v.cpuUsPerReceipt);
      console.log(
        `  #${i + 1}: ceiling ${Math.round(c.rate)}/s (${c.cpuUsPerVerify.toFixed(1)} CPU-µs/verify), ` +
          `verify-chain ${Math.round(v.rate)}/s (${v.cpuUsPerReceipt.toFixed(1)} CPU-µs/receipt incl. PostgreSQL), ` +
          `ratio ${(v.rate / c.rate).toFixed(3)}, CPU efficiency ${(c.cpuUsPerVerify / v.cpuUsPerReceipt).toFixed(3)}`,
      );
    }

    // Incremental: a checkpoint at the head, then INCREMENT new receipts.
    const full = await timeVerify(false, true);
    await fill(INCREMENT, "increment");
    const incremental = await timeVerify(true, true);
    await ledger.close();
    await verifier.close();
    await db.close();

    const c = summarize(ceilings);
    const v = summarize(chainRates);
    const r = summarize(ratios);
    const e = summarize(cpuRatios);
    printTable(
      [
        { measure: "ed25519 verify ceiling (node:crypto, 1 thread/core)", median_per_s: Math.round(c.median), min: Math.round(c.min), max: Math.round(c.max) },
        { measure: "receipts verify-chain", median_per_s: Math.round(v.median), min: Math.round(v.min), max: Math.round(v.max) },
      ],
      undefined,
      "verifications per second",
    );
    const met = r.median >= TARGET_RATIO;
    console.log(`\nverify-chain / ceiling (wall-clock rates): ${r.median.toFixed(3)} (min ${r.min.toFixed(3)}, max ${r.max.toFixed(3)}); target >= ${TARGET_RATIO}: ${met ? "MET" : "NOT MET"}`);
    console.log(
      `CPU efficiency (ceiling CPU per verify / verify-chain CPU per receipt, PostgreSQL included; load-independent): ` +
        `${e.median.toFixed(3)} (min ${e.min.toFixed(3)}, max ${e.max.toFixed(3)}); load average ${loadavg()[0].toFixed(1)} on ${cores} cores`,
    );
    console.log(
      `incremental: ${incremental.count} new receipts in ${(incremental.seconds * 1000).toFixed(0)} ms vs full ${full.count} in ${(full.seconds * 1000).toFixed(0)} ms ` +
        `(cost ratio ${(incremental.seconds / full.seconds).toFixed(3)}, receipt ratio ${(incremental.count / full.count).toFixed(3)})`,
    );
    const file = writeResult("verify-chain", {
      chain_receipts: CHAIN,
      threads: cores,
      target_ratio: TARGET_RATIO,
      ceiling_per_s: { ...c, samples: ceilings },
      verify_chain_per_s: { ...v, samples: chainRates },
      ratio: { ...r, samples: ratios },
      cpu_efficiency: { ...e, samples: cpuRatios },
      ceiling_cpu_us_per_verify: summarize(ceilingCpu).median,
      verify_chain_cpu_us_per_receipt: summarize(chainCpu).median,
      load_average_1m: loadavg()[0],
      target_met: met,
      incremental: {
        new_receipts: incremental.count,
        seconds: incremental.seconds,
        full_receipts: full.count,
        full_seconds: full.seconds,
        cost_ratio: incremental.seconds / full.seconds,
      },
    });
    console.log(`results: ${file}`);
  } finally {
    await pg.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
