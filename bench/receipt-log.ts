/**
 * The receipt log (transparency log) on PostgreSQL 15 (synchronous_commit on):
 * - append throughput with the tree maintained (the service's background follower advancing the
 *   tree and signing checkpoints) vs without it, alternating in the same run (target >= 0.9);
 * - inclusion and consistency proofs at a tree of 1,000,000 receipts served by the API (the service
 *   as its own process, as knhk_app, each request authenticated, authorized and audited; target
 *   p95 < 2 ms each), next to the same proofs through the functions the API calls;
 * - verify-log over those receipts vs the SHA-256 ceiling of this machine for the same number of
 *   leaf and node hashes (target >= 0.5), measured in the same run.
 *
 *   npm run bench:tlog   (or: npx tsx bench/receipt-log.ts [--quick])
 *
 * The 1,000,000 receipts are inserted by SQL as the owner (well-formed hashes, one key version):
 * the tree, its proofs and verify-log read only seq and hash, so they need no signatures.
 */
import { createHash } from "node:crypto";
import { loadavg } from "node:os";
import { createPostgresDatabase, type PostgresDatabase } from "../app/src/db/postgres";
import { loadMigrations, migrate } from "../app/src/db/migrate";
import { createLedger, registerEphemeralSigner, type Ledger } from "../app/src/receipts";
import type { Signer } from "../app/src/receipts/keys";
import { checkpointIfDue } from "../app/src/receipts/tlog/checkpoints";
import { createTreeFollower } from "../app/src/receipts/tlog/follower";
import { proveConsistency, proveReceipt } from "../app/src/receipts/tlog/log";
import { advanceTreeFully } from "../app/src/receipts/tlog/store";
import { verifyLog } from "../app/src/receipts/tlog/verify-log";
import { startPostgres } from "../test/support/postgres";
import { printTable, quantile, summarize, writeResult } from "./lib";
import { startBenchOidc } from "./lib/oidc";
import { startServiceProcess } from "./lib/servers";

const quick = process.argv.includes("--quick");
const TREE_SIZE = quick ? 100_000 : 1_000_000;
const APPEND_SECONDS = quick ? 2 : 4;
const APPEND_REPETITIONS = quick ? 2 : 3;
const APPENDERS = 128;
const PROOFS = 2000;
const TARGETS = { appendRatio: 0.9, proofP95Ms: 2, verifyLogCeilingShare: 0.5 } as const;
const POLICY = { origin: "knhk.bench/receipt-log", everyReceipts: 1000, intervalMs: 60_000 };

/** A latency series as stored: its summary and its p95 (the figure the targets use). */
const latency = (samples: readonly number[]) => ({ ...summarize(samples), p95: quantile([...samples].sort((a, b) => a - b), 0.95) });

async function appendFor(ledger: Ledger, seconds: number): Promise<number> {
  const deadline = Date.now() + seconds * 1000;
  let acked = 0;
  await Promise.all(
    Array.from({ length: APPENDERS }, async (_, k) => {
      for (let i = 0; Date.now() < deadline; i++) {
        await ledger.append({ operation: "bench.tlog", outcome: "success", evidence: { k, i }, sector: "bench" });
        if (Date.now() <= deadline) acked++;
      }
    }),
  );
  return acked / seconds;
}

/** Receipts/s with and without the tree follower, alternating. */
async function appendThroughput(service: PostgresDatabase, signer: Signer) {
  const withTree: number[] = [];
  const without: number[] = [];
  for (let r = 0; r < APPEND_REPETITIONS; r++) {
    for (const mode of r % 2 === 0 ? ["without", "with"] : ["with", "without"]) {
      const follower = mode === "with" ? createTreeFollower({ db: service, afterAdvance: () => checkpointIfDue(service, signer, POLICY) }) : undefined;
      // Start each run with the tree caught up, so "with" pays only for what it appends.
      await advanceTreeFully(service);
      const ledger = createLedger({ db: service, signer, metrics: { onBatch: () => follower?.notify() } });
      const rate = await appendFor(ledger, APPEND_SECONDS);
      await ledger.close();
      await follower?.close();
      (mode === "with" ? withTree : without).push(rate);
      process.stderr.write(`append ${mode} the tree: ${Math.round(rate)} receipts/s\n`);
    }
  }
  await advanceTreeFully(service);
  return { withTree: summarize(withTree), without: summarize(without) };
}

/** SHA-256 of `leaves` 33-byte leaf inputs and leaves - 1 65-byte node inputs: what replaying a tree of that size hashes. */
function sha256Ceiling(leaves: number): number {
  const leaf = Buffer.alloc(33, 1);
  const node = Buffer.alloc(65, 2);
  const started = process.hrtime.bigint();
  for (let i = 0; i < leaves; i++) createHash("sha256").update(leaf).digest();
  for (let i = 1; i < leaves; i++) createHash("sha256").update(node).digest();
  return leaves / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function main(): Promise<void> {
  const pg = await startPostgres({ settings: { synchronous_commit: "on" } });
  try {
    await pg.createDatabase("knhk");
    const owner = createPostgresDatabase({ connectionString: pg.url("knhk"), max: 2 });
    await migrate(owner, loadMigrations());
    await pg.psql("CREATE ROLE knhk_app LOGIN; GRANT knhk_service TO knhk_app;", "knhk");
    const service = createPostgresDatabase({ connectionString: pg.url("knhk", "knhk_app"), max: 8 });
    const signer = await registerEphemeralSigner(owner);

    process.stderr.write(`append throughput, ${APPEND_REPETITIONS} x ${APPEND_SECONDS} s each way, ${APPENDERS} appenders\n`);
    const append = await appendThroughput(service, signer);

    const existing = Number((await service.query<{ n: string }>("SELECT coalesce(max(seq), 0)::text AS n FROM receipts")).rows[0].n);
    // A fast machine may append more than the tree size in the timed runs: the tree is then that size.
    const treeSize = Math.max(TREE_SIZE, existing);
    process.stderr.write(`inserting receipts ${existing + 1}..${treeSize} by SQL\n`);
    await owner.query(
      `INSERT INTO receipts (seq, id, operation, outcome, evidence, sector, created_at, parent_hash, key_version, hash, signature)
       SELECT s, md5(s::text)::uuid, 'bench.synthetic', 'success', '{}', 'bench', now(), repeat('0', 64), $2, encode(sha256(s::text::bytea), 'hex'), ''
       FROM generate_series($1::bigint, $3::bigint) s`,
      [existing + 1, signer.keyVersion, treeSize],
    );
    await owner.query("ANALYZE receipts");
    let started = Date.now();
    let last = 0;
    await advanceTreeFully(service, (r) => {
      if (Date.now() - last > 5000) {
        last = Date.now();
        process.stderr.write(`tree: ${r.to} of ${treeSize}\n`);
      }
    });
    const treeSeconds = (Date.now() - started) / 1000;
    await owner.query("ANALYZE receipt_tree_hash_runs");
    await checkpointIfDue(service, signer, { ...POLICY, everyReceipts: 1 });
    process.stderr.write(`tree of ${treeSize} built in ${treeSeconds.toFixed(1)} s\n`);

    const ids = (await service.query<{ id: string }>("SELECT id::text AS id FROM receipts WHERE seq IN (SELECT 1 + floor(random() * $1)::bigint FROM generate_series(1, $2))", [treeSize, PROOFS])).rows.map((r) => r.id);
    const proofMs: number[] = [];
    for (const id of ids) {
      const t = performance.now();
      await proveReceipt(service, id, treeSize);
      proofMs.push(performance.now() - t);
    }
    // Consistency proofs need two checkpointed sizes: the one after the append runs and the full tree.
    const sizes = (await service.query<{ size: string }>("SELECT size::text AS size FROM receipt_tree_checkpoints ORDER BY receipt_tree_checkpoints.size")).rows.map((r) => Number(r.size));
    const consistencyMs: number[] = [];
    for (let i = 0; i < PROOFS / 4; i++) {
      const from = sizes[Math.floor(Math.random() * (sizes.length - 1))];
      const t = performance.now();
      await proveConsistency(service, from, treeSize);
      consistencyMs.push(performance.now() - t);
    }
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

    // The same proofs through HTTP, from the service as it runs (its own process, token verified,
    // permission checked, the decision audited before the answer), one request at a time.
    const oidc = await startBenchOidc();
    const api = await startServiceProcess({ pg, database: "knhk", env: { ...oidc.env(), KNHK_TLOG_ORIGIN: POLICY.origin, KNHK_RATE_LIMIT_MAX: "1000000", KNHK_LOG_LEVEL: "warn" } });
    const httpProofMs: number[] = [];
    const httpConsistencyMs: number[] = [];
    const httpCheckpointMs: number[] = [];
    const commitMs: number[] = [];
    const healthMs: number[] = [];
    await owner.query("CREATE TABLE bench_commit (id bigserial PRIMARY KEY, at timestamptz NOT NULL)");
    try {
      const token = await oidc.roleToken("observer");
      const receipts = `${api.apiUrl}/api/v1/receipts`;
      const get = async (url: string, into: number[]) => {
        const t = performance.now();
        const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
        const body = await response.text();
        into.push(performance.now() - t);
        if (response.status !== 200) throw new Error(`GET ${url}: ${response.status} ${body.slice(0, 200)}`);
      };
      for (const id of ids.slice(0, 50)) await get(`${receipts}/${id}/proof?size=${treeSize}`, []); // warm-up
      for (const id of ids) await get(`${receipts}/${id}/proof?size=${treeSize}`, httpProofMs);
      for (let i = 0; i < PROOFS / 4; i++) await get(`${receipts}/consistency?from=${sizes[Math.floor(Math.random() * (sizes.length - 1))]}&to=${treeSize}`, httpConsistencyMs);
      // The request path's own cost: the latest checkpoint (one indexed row) through the same auth and audit.
      for (let i = 0; i < PROOFS / 4; i++) await get(`${receipts}/checkpoint`, httpCheckpointMs);
      // The service's floor from this client: no token, no audit, one database ping.
      for (let i = 0; i < PROOFS / 4; i++) await get(`${api.apiUrl}/health`, healthMs);
      // What one durable write costs here (a decision is one): INSERT + COMMIT, synchronous_commit on.
      for (let i = 0; i < PROOFS / 4; i++) {
        const t = performance.now();
        await owner.query("INSERT INTO bench_commit (at) VALUES (now())");
        commitMs.push(performance.now() - t);
      }
    } finally {
      await api.stop();
      await oidc.close();
    }

    process.stderr.write(`verify-log over ${treeSize} receipts\n`);
    const ceilingBefore = sha256Ceiling(treeSize);
    started = Date.now();
    const report = await verifyLog(service);
    const verifySeconds = (Date.now() - started) / 1000;
    const ceilingAfter = sha256Ceiling(treeSize);
    if (!report.ok) throw new Error(`verify-log failed on the benchmark's own log: ${JSON.stringify(report.findings.slice(0, 3))}`);
    const ceiling = (ceilingBefore + ceilingAfter) / 2;
    const verifyRate = treeSize / verifySeconds;

    const appendRatio = append.withTree.median / append.without.median;
    const proofP95 = quantile(sorted(proofMs), 0.95);
    const consistencyP95 = quantile(sorted(consistencyMs), 0.95);
    const httpProofP95 = quantile(sorted(httpProofMs), 0.95);
    const httpConsistencyP95 = quantile(sorted(httpConsistencyMs), 0.95);
    const httpCheckpointP95 = quantile(sorted(httpCheckpointMs), 0.95);
    const figures = [
      { figure: "receipt append with the tree maintained (1 process, 128 appenders)", measured: `${Math.round(append.withTree.median)} receipts/s (min ${Math.round(append.withTree.min)}, max ${Math.round(append.withTree.max)})`, reference: `without the tree ${Math.round(append.without.median)} receipts/s`, target: `>= ${TARGETS.appendRatio} of without`, ratio: `${appendRatio.toFixed(2)} of without`, met: appendRatio >= TARGETS.appendRatio },
      { figure: `inclusion proof at a tree of ${treeSize.toLocaleString("en-US")} receipts, GET /receipts/:id/proof`, measured: `p95 ${httpProofP95.toFixed(2)} ms (p50 ${quantile(sorted(httpProofMs), 0.5).toFixed(2)}, n=${httpProofMs.length})`, reference: `the function it calls: p95 ${proofP95.toFixed(2)} ms (p50 ${quantile(sorted(proofMs), 0.5).toFixed(2)})`, target: `p95 < ${TARGETS.proofP95Ms} ms`, ratio: `${(httpProofP95 / TARGETS.proofP95Ms).toFixed(2)}x target`, met: httpProofP95 < TARGETS.proofP95Ms },
      { figure: `consistency proof to a tree of ${treeSize.toLocaleString("en-US")} receipts, GET /receipts/consistency`, measured: `p95 ${httpConsistencyP95.toFixed(2)} ms (p50 ${quantile(sorted(httpConsistencyMs), 0.5).toFixed(2)}, n=${httpConsistencyMs.length})`, reference: `the function it calls: p95 ${consistencyP95.toFixed(2)} ms (p50 ${quantile(sorted(consistencyMs), 0.5).toFixed(2)})`, target: `p95 < ${TARGETS.proofP95Ms} ms`, ratio: `${(httpConsistencyP95 / TARGETS.proofP95Ms).toFixed(2)}x target`, met: httpConsistencyP95 < TARGETS.proofP95Ms },
      { figure: "GET /receipts/checkpoint (the request path: token, permission, audited decision)", measured: `p95 ${httpCheckpointP95.toFixed(2)} ms (p50 ${quantile(sorted(httpCheckpointMs), 0.5).toFixed(2)}, n=${httpCheckpointMs.length})`, reference: `one durable INSERT + COMMIT (what its audited decision waits for): p95 ${quantile(sorted(commitMs), 0.95).toFixed(2)} ms (p50 ${quantile(sorted(commitMs), 0.5).toFixed(2)})`, target: "-", ratio: "-", met: null },
      { figure: "GET /health (no token, no audit: one database ping)", measured: `p95 ${quantile(sorted(healthMs), 0.95).toFixed(2)} ms (p50 ${quantile(sorted(healthMs), 0.5).toFixed(2)}, n=${healthMs.length})`, reference: "-", target: "-", ratio: "-", met: null },
      { figure: `verify-log over ${treeSize.toLocaleString("en-US")} receipts`, measured: `${Math.round(verifyRate)} receipts/s (${verifySeconds.toFixed(1)} s)`, reference: `SHA-256 ceiling ${Math.round(ceiling)} leaves/s (a leaf and a node hash each)`, target: `>= ${TARGETS.verifyLogCeilingShare} of the ceiling`, ratio: `${(verifyRate / ceiling).toFixed(2)} of the ceiling`, met: verifyRate / ceiling >= TARGETS.verifyLogCeilingShare },
      { figure: `tree built from ${treeSize.toLocaleString("en-US")} stored receipts`, measured: `${Math.round(treeSize / treeSeconds)} receipts/s (${treeSeconds.toFixed(1)} s)`, reference: "-", target: "-", ratio: "-", met: null },
    ];
    printTable(figures, ["figure", "measured", "reference", "target", "ratio", "met"], "receipt log");
    const file = writeResult("receipt-log", { tree_size: treeSize, quick, load_average_1m: Math.round(loadavg()[0] * 10) / 10, targets: TARGETS, append, proof_ms: latency(proofMs), consistency_ms: latency(consistencyMs), http_proof_ms: latency(httpProofMs), http_consistency_ms: latency(httpConsistencyMs), http_checkpoint_ms: latency(httpCheckpointMs), durable_commit_ms: latency(commitMs), http_health_ms: latency(healthMs), verify_log_seconds: verifySeconds, sha256_ceiling_leaves_per_second: ceiling, tree_build_seconds: treeSeconds, figures });
    console.log(`results: ${file}`);
    await service.close();
    await owner.close();
    await signer.close();
  } finally {
    await pg.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
