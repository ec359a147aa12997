/**
 * Receipt append throughput when Vault transit signs (issue 17, defect 6), next to the local-key
 * reference in the same run: one writer process, APPENDERS concurrent appenders, group commit
 * (maxBatch 256), PostgreSQL 15 with synchronous_commit on, OpenBao 2.7.2 (dev server, in memory)
 * on the same machine. Variants, alternated repetition by repetition:
 *   local key        the ed25519 key in the process (signing threads), as before;
 *   transit          POST /v1/transit/sign/<key> with batch_input, one request per 256 receipts,
 *                    every signature verified locally before the batch commits;
 *   transit (agent)  the same through a `bao agent` API proxy on loopback, as the pod reaches Vault.
 * Throughput = acknowledged receipts / window; CPU per receipt = this process, PostgreSQL, OpenBao
 * and the agent together (what the machine spends); each variant's chain is verified afterwards.
 *
 *   npm run bench:transit          (or: npx tsx bench/receipts-transit.ts)
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createPostgresDatabase, type PostgresDatabase } from "../app/src/db/postgres";
import { loadMigrations, migrate } from "../app/src/db/migrate";
import { createLedger, loadSigner, readTransitKeys, registerSigningKey, transitSettingsFromEnv, verifyChain, type Signer } from "../app/src/receipts";
import { signerFromPrivateKey } from "../app/src/receipts/keys";
import { TRANSIT_SIGN_CHUNK } from "../app/src/receipts/vault-transit";
import { startOpenBao, startOpenBaoAgent } from "../test/support/openbao";
import { startPostgres } from "../test/support/postgres";
import { printTable, summarize, writeResult, type Summary } from "./lib";
import { postgresCpuUs } from "./pg-cpu";

const APPENDERS = Number(process.env.APPENDERS ?? 256);
const DURATION_MS = Number(process.env.DURATION_MS ?? 3000);
const REPETITIONS = Number(process.env.REPETITIONS ?? 3);
const MAX_BATCH = 256;
const KEY = "knhk-receipts";
const LEDGER_MIGRATIONS = ["receipts", "audit_log", "receipt_outbox_and_key_registrars"];

type Variant = "local key" | "transit" | "transit (agent)";

interface Round {
  rate: number;
  meanBatch: number;
  /** CPU per acknowledged receipt: this process (all threads), PostgreSQL, OpenBao and the agent. */
  cpuUsPerReceipt: number;
}

/** Microseconds of user + system CPU a process has used (Linux /proc, USER_HZ 100). */
function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
}

/** One window of APPENDERS concurrent appenders on `db` signed by `signer`; `otherCpu` reads the servers' CPU. */
async function round(db: PostgresDatabase, signer: Signer, otherCpu: () => number): Promise<Round> {
  const batches: number[] = [];
  const ledger = createLedger({ db, signer, maxBatch: MAX_BATCH, metrics: { onBatch: (n) => batches.push(n) } });
  for (let i = 0; i < 10; i++) await ledger.append({ operation: "bench.warmup", outcome: "success", evidence: { i }, sector: "bench" });
  batches.length = 0;
  const started = Date.now();
  const cpuBefore = process.cpuUsage();
  const otherBefore = otherCpu();
  const deadline = started + DURATION_MS;
  let inWindow = 0;
  let acked = 0;
  await Promise.all(
    Array.from({ length: APPENDERS }, async (_, k) => {
      for (let i = 0; Date.now() < deadline; i++) {
        await ledger.append({ operation: "bench.append", outcome: "success", evidence: { k, i, note: "transit signing benchmark" }, sector: "bench" });
        acked++;
        if (Date.now() <= deadline) inWindow++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  const other = otherCpu() - otherBefore;
  await ledger.close();
  return {
    rate: inWindow / (DURATION_MS / 1000),
    meanBatch: batches.length ? batches.reduce((a, b) => a + b, 0) / batches.length : 0,
    cpuUsPerReceipt: (cpu.user + cpu.system + other) / Math.max(1, acked),
  };
}

async function main(): Promise<void> {
  const [pg, bao] = await Promise.all([startPostgres({ settings: { synchronous_commit: "on", fsync: "on", shared_buffers: "256MB" } }), startOpenBao()]);
  const dir = mkdtempSync(join(tmpdir(), "knhk-bench-transit-"));
  const closers: (() => Promise<void>)[] = [];
  try {
    await bao.enableMount("transit", "transit");
    await bao.root("POST", `transit/keys/${KEY}`, { type: "ed25519" });
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, bao.rootToken, { mode: 0o600 });
    const agent = await startOpenBaoAgent(bao, { tokenFile });
    closers.push(() => agent.stop());

    const migrations = loadMigrations().filter((m) => LEDGER_MIGRATIONS.includes(m.name));
    const databases = {} as Record<Variant, PostgresDatabase>;
    const signers = {} as Record<Variant, Signer>;
    const directEnv = { KNHK_SIGNING_VAULT_ADDR: bao.addr, KNHK_SIGNING_TRANSIT_KEY: KEY, KNHK_SIGNING_VAULT_TOKEN_FILE: tokenFile };
    const transitKeys = (await readTransitKeys(transitSettingsFromEnv(directEnv)!)).keys;
    const local = generateKeyPairSync("ed25519").privateKey;
    for (const [i, variant] of (["local key", "transit", "transit (agent)"] as Variant[]).entries()) {
      await pg.createDatabase(`bench_${i}`);
      const db = createPostgresDatabase({ connectionString: pg.url(`bench_${i}`), max: 4 });
      closers.push(() => db.close());
      await migrate(db, migrations);
      databases[variant] = db;
      if (variant === "local key") {
        signers[variant] = signerFromPrivateKey(local, 1);
        await registerSigningKey(db, signers[variant]);
      } else {
        // The owner registers the transit version, as the migration Job does.
        await registerSigningKey(db, { keyVersion: 1, publicKey: transitKeys.get(1)!, ephemeral: false });
        const env = variant === "transit" ? directEnv : { KNHK_SIGNING_VAULT_ADDR: agent.addr, KNHK_SIGNING_TRANSIT_KEY: KEY };
        signers[variant] = await loadSigner({ db, env, log: () => undefined });
      }
      closers.push(() => signers[variant].close());
    }

    const variants = Object.keys(signers) as Variant[];
    console.log(`receipt append with transit signing: 1 process x ${APPENDERS} appenders, maxBatch ${MAX_BATCH}, ${DURATION_MS} ms windows, ${REPETITIONS} repetitions (+1 warm-up), variants alternated`);
    const rounds = Object.fromEntries(variants.map((v) => [v, [] as Round[]])) as Record<Variant, Round[]>;
    for (let rep = 0; rep <= REPETITIONS; rep++) {
      const order = rep % 2 === 0 ? variants : [...variants].reverse();
      for (const variant of order) {
        const r = await round(databases[variant], signers[variant], () => postgresCpuUs(pg.dataDir) + processCpuUs(bao.pid) + processCpuUs(agent.pid));
        if (rep === 0) continue; // warm-up
        rounds[variant].push(r);
        console.log(`  ${variant} #${rep}: ${Math.round(r.rate)} receipts/s (mean batch ${r.meanBatch.toFixed(1)}, ${Math.round(r.cpuUsPerReceipt)} CPU-µs/receipt)`);
      }
    }

    const chains: Record<string, { receipts: number; verifies: boolean }> = {};
    for (const variant of variants) {
      const report = await verifyChain({ db: databases[variant], saveCheckpoint: false, trustedKeys: variant === "local key" ? undefined : transitKeys });
      chains[variant] = { receipts: report.total_count, verifies: report.ok };
    }

    const summary = (variant: Variant) => ({
      rate: summarize(rounds[variant].map((r) => r.rate)),
      meanBatch: summarize(rounds[variant].map((r) => r.meanBatch)).median,
      cpuUs: summarize(rounds[variant].map((r) => r.cpuUsPerReceipt)).median,
      samples: rounds[variant].map((r) => r.rate),
    });
    const results = Object.fromEntries(variants.map((v) => [v, summary(v)])) as Record<Variant, { rate: Summary; meanBatch: number; cpuUs: number; samples: number[] }>;
    printTable(
      variants.map((v) => ({
        variant: v,
        median_per_s: Math.round(results[v].rate.median),
        min: Math.round(results[v].rate.min),
        max: Math.round(results[v].rate.max),
        mean_batch: Number(results[v].meanBatch.toFixed(1)),
        cpu_us_per_receipt: Math.round(results[v].cpuUs),
        chain: `${chains[v].receipts} ${chains[v].verifies ? "verifies" : "FAILED"}`,
      })),
      undefined,
      "receipts appended per second, 1 process, synchronous_commit on",
    );
    const ratio = (v: Variant) => results[v].rate.median / results["local key"].rate.median;
    const cores = availableParallelism();
    console.log(
      `transit / local key: ${ratio("transit").toFixed(2)}x; through the agent: ${ratio("transit (agent)").toFixed(2)}x ` +
        `(load average ${loadavg()[0].toFixed(1)} on ${cores} cores; OpenBao, the agent and PostgreSQL share them; ` +
        `cpu-bound rates ${variants.map((v) => `${v} ${Math.round((cores * 1e6) / results[v].cpuUs)}/s`).join(", ")})`,
    );
    const file = writeResult("receipts-transit", {
      processes: 1,
      appenders: APPENDERS,
      window_ms: DURATION_MS,
      max_batch: MAX_BATCH,
      sign_chunk: TRANSIT_SIGN_CHUNK,
      synchronous_commit: "on",
      load_average_1m: loadavg()[0],
      cores: availableParallelism(),
      local_key: { ...results["local key"].rate, samples: results["local key"].samples, mean_batch: results["local key"].meanBatch, cpu_us_per_receipt: results["local key"].cpuUs },
      transit: { ...results.transit.rate, samples: results.transit.samples, mean_batch: results.transit.meanBatch, cpu_us_per_receipt: results.transit.cpuUs },
      transit_agent: { ...results["transit (agent)"].rate, samples: results["transit (agent)"].samples, mean_batch: results["transit (agent)"].meanBatch, cpu_us_per_receipt: results["transit (agent)"].cpuUs },
      ratio_transit_over_local: ratio("transit"),
      ratio_agent_over_local: ratio("transit (agent)"),
      chains,
    });
    console.log(`results: ${file}`);
    if (Object.values(chains).some((c) => !c.verifies)) process.exitCode = 1;
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await bao.stop();
    await pg.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
