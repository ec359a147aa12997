/**
 * Whether pattern detection's cost grows with the history it reads: POST /api/v1/patterns/detect
 * against two databases that differ only in how many observations their history holds, the
 * api benchmark's stream (20/s over the 60 s window and its 10 windows of history: 13,200) and
 * 100 times that (1,320,000) over the same seconds, event types and sectors. One service process
 * per database (as knhk_app, token verified, decision audited), requests one at a time,
 * alternating between the two in blocks, so both see the same machine. Target: p95 with 100x
 * the history within 1.5x of p95 with 1x.
 *
 *   npm run bench:detect-history   (or: npx tsx bench/detect-history.ts [--quick])
 */
import { loadavg } from "node:os";
import type { TestPostgres } from "../test/support/postgres";
import { startPostgres } from "../test/support/postgres";
import { printTable, quantile, summarize, writeResult } from "./lib";
import { insertDetectionStream } from "./lib/detection-stream";
import { startBenchOidc } from "./lib/oidc";
import { prepareServiceDatabase, startServiceProcess, type ServiceProcess } from "./lib/servers";

const quick = process.argv.includes("--quick");
const WINDOW_SECONDS = 60;
const HISTORY_WINDOWS = 10;
const RATE_PER_SECOND = 20;
const DENSER = 100;
const BLOCKS = quick ? 4 : 10;
const PER_BLOCK = 50;
const TARGET_RATIO = 1.5;
/** Seconds the seeded stream runs ahead of now, so the window stays full while the requests run. */
const AHEAD_SECONDS = 120;

/** The api benchmark's detection stream, `density` times as many observations over the same seconds. */
async function seed(pg: TestPostgres, database: string, snapshotId: string, density: number): Promise<number> {
  const backSeconds = WINDOW_SECONDS * (HISTORY_WINDOWS + 1);
  const seconds = backSeconds + AHEAD_SECONDS;
  await insertDetectionStream(pg.url(database), { snapshotId, backSeconds, seconds, count: RATE_PER_SECOND * seconds * density });
  return RATE_PER_SECOND * backSeconds * density;
}

async function main(): Promise<void> {
  const pg = await startPostgres({ settings: { synchronous_commit: "on" } });
  const oidc = await startBenchOidc();
  const services: ServiceProcess[] = [];
  try {
    const [observer, analyst] = await Promise.all([oidc.roleToken("observer"), oidc.roleToken("analyst")]);
    const sizes: Record<string, { density: number; inHorizon: number; service: ServiceProcess; ms: number[] }> = {};
    for (const [name, density] of [["1x", 1], [`${DENSER}x`, DENSER]] as const) {
      const database = `knhk_detect_${name}`;
      await prepareServiceDatabase(pg, database);
      const service = await startServiceProcess({ pg, database, env: { ...oidc.env(), KNHK_RATE_LIMIT_MAX: "1000000", KNHK_MAPE_K_INTERVAL_SECONDS: "0", KNHK_LOG_LEVEL: "warn" } });
      services.push(service);
      const snapshot = (await (await fetch(`${service.apiUrl}/api/v1/snapshots/current`, { headers: { authorization: `Bearer ${observer}` } })).json()) as { id: string };
      const started = Date.now();
      const inHorizon = await seed(pg, database, snapshot.id, density);
      process.stderr.write(`${name}: ${inHorizon.toLocaleString("en-US")} observations in the window and its history, seeded in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      sizes[name] = { density, inHorizon, service, ms: [] };
    }
    const detect = async (service: ServiceProcess, into: number[]) => {
      const t = performance.now();
      const response = await fetch(`${service.apiUrl}/api/v1/patterns/detect`, {
        method: "POST",
        headers: { authorization: `Bearer ${analyst}`, "content-type": "application/json" },
        body: JSON.stringify({ window_seconds: WINDOW_SECONDS }),
      });
      const body = await response.text();
      into.push(performance.now() - t);
      if (response.status !== 200) throw new Error(`POST /api/v1/patterns/detect: ${response.status} ${body.slice(0, 200)}`);
    };
    const names = Object.keys(sizes);
    for (const name of names) for (let i = 0; i < 20; i++) await detect(sizes[name].service, []); // warm-up
    for (let block = 0; block < BLOCKS; block++) {
      for (const name of block % 2 === 0 ? names : [...names].reverse()) {
        for (let i = 0; i < PER_BLOCK; i++) await detect(sizes[name].service, sizes[name].ms);
      }
      process.stderr.write(`block ${block + 1} of ${BLOCKS}\n`);
    }
    const p95 = (ms: number[]) => quantile([...ms].sort((a, b) => a - b), 0.95);
    const p50 = (ms: number[]) => quantile([...ms].sort((a, b) => a - b), 0.5);
    const [small, large] = names.map((name) => sizes[name]);
    const ratio = p95(large.ms) / p95(small.ms);
    const figures = [
      {
        figure: `POST /patterns/detect with ${DENSER}x the history (${large.inHorizon.toLocaleString("en-US")} observations in the window and its history)`,
        measured: `p95 ${p95(large.ms).toFixed(2)} ms (p50 ${p50(large.ms).toFixed(2)}, n=${large.ms.length})`,
        reference: `with ${small.inHorizon.toLocaleString("en-US")}: p95 ${p95(small.ms).toFixed(2)} ms (p50 ${p50(small.ms).toFixed(2)}, n=${small.ms.length})`,
        target: `p95 <= ${TARGET_RATIO}x the reference`,
        ratio: `${ratio.toFixed(2)}x`,
        met: ratio <= TARGET_RATIO,
      },
    ];
    printTable(figures, ["figure", "measured", "reference", "target", "ratio", "met"], "pattern detection against the size of its history");
    const latency = (ms: number[]) => ({ ...summarize(ms), p95: p95(ms) });
    const file = writeResult("detect-history", {
      quick,
      load_average_1m: Math.round(loadavg()[0] * 10) / 10,
      window_seconds: WINDOW_SECONDS,
      history_windows: HISTORY_WINDOWS,
      target_ratio: TARGET_RATIO,
      sizes: Object.fromEntries(names.map((name) => [name, { observations_in_horizon: sizes[name].inHorizon, latency_ms: latency(sizes[name].ms) }])),
      figures,
    });
    console.log(`results: ${file}`);
  } finally {
    for (const service of services) await service.stop();
    await oidc.close();
    await pg.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
