/**
 * Write availability through Patroni failovers on the Kubernetes DCS (issue 13): the local
 * control plane (scripts/cluster.sh), the rendered Patroni StatefulSet played by 3 real
 * PostgreSQL 15 + Patroni 4.0.7 members (test/support/patroni-k8s.ts), and the KNHK service
 * writing receipts through `postgres-primary` (4 clients, synchronous commit). Each drill of
 * test/support/failover-drill.ts runs REPETITIONS times, in rotation; per drill the median and the
 * worst of: seconds until postgres-primary's only endpoint is the new leader, until the first
 * acknowledged write, until the old leader streams again, and the acknowledged writes lost.
 *
 * The reference column is what the issue measured on the etcd DCS (not this run: an etcd cluster
 * is a different harness); the targets are the issue's.
 *
 *   npm run bench:failover [-- --quick]     (--quick: one repetition)
 */
import { startOidc } from "../test/app/shell/oidc";
import { startCluster } from "../test/cluster/cluster";
import { DRILL_DESCRIPTIONS, DRILLS, runDrill, type Drill, type DrillFigures } from "../test/support/failover-drill";
import { startPatroniOnCluster } from "../test/support/patroni-k8s";
import { startReceiptLoad } from "../test/support/receipt-load";
import { startServiceOnPatroni } from "../test/support/service-on-patroni";
import { renderTestStack } from "../test/support/stack-identifiers";
import { loadavg } from "node:os";
import { printTable, summarize, writeResult } from "./lib";

const REPETITIONS = process.argv.includes("--quick") ? 1 : Number(process.env.REPETITIONS ?? 3);

/** Seconds, worst of the repetitions (null: the figure does not apply to the drill). */
export const FAILOVER_TARGETS: Record<Drill, { endpoint: number | null; firstWrite: number | null }> = {
  "node-death": { endpoint: 20, firstWrite: 20 },
  "postgres-crash": { endpoint: null, firstWrite: 5 },
  switchover: { endpoint: 3, firstWrite: 3 },
  "dcs-loss": { endpoint: null, firstWrite: null },
};

/** What the issue measured with the etcd DCS (3 members, loopback), seconds. */
const ETCD_REFERENCE: Record<Drill, string> = {
  "node-death": "first write 16.3-25.5 s",
  "postgres-crash": "first write 10.1 s",
  switchover: "first write 3.8-4.4 s",
  "dcs-loss": "-",
};

function stats(values: readonly (number | null)[]) {
  const present = values.filter((v): v is number => v !== null);
  if (present.length === 0) return null;
  const s = summarize(present);
  return { median: s.median, worst: s.max, n: s.n };
}

async function main(): Promise<void> {
  const started = Date.now();
  let peakLoad = loadavg()[0];
  const loadSampler = setInterval(() => (peakLoad = Math.max(peakLoad, loadavg()[0])), 5000);
  console.log(`failover bench: ${DRILLS.length} drills x ${REPETITIONS}; starting the control plane and the render`);
  const [cluster, render, oidc] = await Promise.all([startCluster(), renderTestStack("local", { overlay: { "knhk:patroni": { members: 3 } } }), startOidc()]);
  const pg = await startPatroniOnCluster({ cluster, objects: render.k8sObjects, namespace: "knhk-failover-bench", members: 3 });
  const runs: DrillFigures[] = [];
  try {
    await pg.waitForHealthy();
    const svc = await startServiceOnPatroni(pg, oidc.env());
    const load = startReceiptLoad({ apiUrl: svc.service.apiUrl, token: await oidc.roleToken("ingestor") });
    try {
      for (let rep = 1; rep <= REPETITIONS; rep++) {
        for (const drill of DRILLS) {
          const f = await runDrill(pg, load, drill, { database: svc.database, log: (m) => console.log(`  [${rep}/${REPETITIONS}] ${m}`) });
          runs.push(f);
        }
      }
    } finally {
      await load.stop();
      await svc.stop();
    }
  } finally {
    await oidc.close();
    await pg.destroy();
    await cluster.stop();
  }

  const settings = render.k8sObjects.find((o) => o.kind === "ConfigMap" && (o as any).data?.["patroni.yml"]) as any;
  const dcs = /ttl: (\d+)[\s\S]*?loop_wait: (\d+)[\s\S]*?retry_timeout: (\d+)/.exec(settings.data["patroni.yml"]);
  const drills = DRILLS.map((drill) => {
    const mine = runs.filter((r) => r.drill === drill);
    const endpoint = stats(mine.map((r) => r.endpointSwitchSeconds));
    const firstWrite = stats(mine.map((r) => r.firstWriteSeconds));
    const target = FAILOVER_TARGETS[drill];
    const met = (s: ReturnType<typeof stats>, bound: number | null) => (bound === null || s === null ? null : s.worst <= bound);
    return {
      drill,
      description: DRILL_DESCRIPTIONS[drill],
      repetitions: mine.length,
      endpoint_switch_seconds: endpoint,
      first_write_seconds: firstWrite,
      rejoin_seconds: stats(mine.map((r) => r.rejoinSeconds)),
      // Each repetition checks every write acknowledged since the start: the last one checked them all.
      acknowledged: Math.max(...mine.map((r) => r.acknowledged)),
      lost: mine.reduce((a, r) => a + r.lost, 0),
      target_endpoint_seconds: target.endpoint,
      target_first_write_seconds: target.firstWrite,
      endpoint_met: met(endpoint, target.endpoint),
      first_write_met: met(firstWrite, target.firstWrite),
      rpo_met: mine.every((r) => r.lost === 0),
      etcd_reference: ETCD_REFERENCE[drill],
    };
  });
  const fmt = (s: ReturnType<typeof stats>) => (s ? `${s.median.toFixed(1)} / ${s.worst.toFixed(1)}` : "-");
  printTable(
    drills.map((d) => ({
      drill: d.drill,
      "endpoint s (median / worst)": fmt(d.endpoint_switch_seconds),
      "target": d.target_endpoint_seconds ?? "-",
      "first write s (median / worst)": fmt(d.first_write_seconds),
      "target ": d.target_first_write_seconds ?? "-",
      "rejoin s (median / worst)": fmt(d.rejoin_seconds),
      "lost / acknowledged": `${d.lost} / ${d.acknowledged}`,
      "etcd (issue)": d.etcd_reference,
    })),
    undefined,
    `Failover drills, ${REPETITIONS} repetitions each (Kubernetes DCS, ttl ${dcs?.[1]}, loop_wait ${dcs?.[2]}, retry_timeout ${dcs?.[3]})`,
  );
  const file = writeResult("failover", {
    repetitions: REPETITIONS,
    members: 3,
    dcs: "kubernetes",
    patroni: { ttl: Number(dcs?.[1]), loop_wait: Number(dcs?.[2]), retry_timeout: Number(dcs?.[3]) },
    writers: 4,
    // The highest 1-minute load average seen during the run (2 cores: above 2 means other work competed).
    load_average_1m: Math.round(peakLoad * 10) / 10,
    drills,
    runs,
    seconds: Math.round((Date.now() - started) / 1000),
  });
  clearInterval(loadSampler);
  console.log(`written ${file}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
