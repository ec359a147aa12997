/**
 * What Prometheus scrapes in the KNHK namespace: one job per exporter, each with the pod port it
 * scrapes. Alert rules and dashboards select series by these job names, and the Monitoring
 * component builds its PodMonitors from the same table, so the three cannot drift apart.
 * Port names are the container port names of the workload components.
 */
import { APP, PORTS, POSTGRES, REDIS } from "./topology";

export type ScrapeJobName = "knhk-service" | "postgres-exporter" | "patroni" | "redis-exporter" | "redis-sentinel" | "pgbackrest-exporter";

export interface ScrapeJob {
  /** The `job` label every series of this target carries (set by relabeling). */
  readonly job: ScrapeJobName;
  /** Pod labels the PodMonitor selects. */
  readonly selector: Readonly<Record<string, string>>;
  /** Name of the container port on those pods. */
  readonly portName: string;
  readonly port: number;
  readonly path: string;
  readonly interval: string;
  /** Patroni's REST API serves TLS with the cluster's CA. */
  readonly tls?: boolean;
  /**
   * Scraped through redis_exporter's multi-target `/scrape?target=` endpoint: the pod address
   * becomes the target and the exporter on the Redis pods does the work (Sentinel pods have no
   * exporter of their own).
   */
  readonly viaRedisExporter?: boolean;
}

/** Port of pgbackrest_exporter (a sidecar on the PostgreSQL pods, port name `pgbackrest-exp`). */
export const PGBACKREST_EXPORTER_PORT = PORTS.pgbackrestExporter;

export const SCRAPE_JOBS: Readonly<Record<ScrapeJobName, ScrapeJob>> = {
  "knhk-service": { job: "knhk-service", selector: APP.selector, portName: "metrics", port: PORTS.appMetrics, path: "/metrics", interval: "15s" },
  "postgres-exporter": { job: "postgres-exporter", selector: POSTGRES.selector, portName: "metrics", port: PORTS.postgresExporter, path: "/metrics", interval: "30s" },
  patroni: { job: "patroni", selector: POSTGRES.selector, portName: "patroni", port: PORTS.patroniApi, path: "/metrics", interval: "15s", tls: true },
  "redis-exporter": { job: "redis-exporter", selector: REDIS.selector, portName: "metrics", port: PORTS.redisExporter, path: "/metrics", interval: "30s" },
  "redis-sentinel": { job: "redis-sentinel", selector: REDIS.sentinelSelector, portName: "sentinel", port: PORTS.sentinel, path: "/scrape", interval: "30s", viaRedisExporter: true },
  "pgbackrest-exporter": { job: "pgbackrest-exporter", selector: POSTGRES.selector, portName: "pgbackrest-exp", port: PGBACKREST_EXPORTER_PORT, path: "/metrics", interval: "60s" },
};

/** PromQL matcher text for a job, e.g. `job="patroni"`. */
export function jobMatcher(job: ScrapeJobName): string {
  return `job="${job}"`;
}

export interface PodMonitorOptions {
  readonly namespace: string;
  /** Secret holding `ca.crt` of the CA that signed Patroni's REST certificate. */
  readonly patroniTlsSecret: string;
  /** Name in Patroni's REST certificate that Prometheus verifies. */
  readonly patroniTlsServerName: string;
}

/** The `spec` of the PodMonitor for one job (monitoring.coreos.com/v1). */
export function podMonitorSpec(j: ScrapeJob, o: PodMonitorOptions): Record<string, unknown> {
  const relabelings: Record<string, unknown>[] = [
    // The operator already adds namespace, pod and container labels.
    { action: "replace", targetLabel: "job", replacement: j.job },
  ];
  if (j.viaRedisExporter) {
    relabelings.push(
      { action: "replace", sourceLabels: ["__address__"], targetLabel: "__param_target", replacement: "redis://$1" },
      { action: "replace", sourceLabels: ["__address__"], targetLabel: "instance" },
      { action: "replace", targetLabel: "__address__", replacement: `${REDIS.headlessService}.${o.namespace}.svc.cluster.local:${PORTS.redisExporter}` },
    );
  }
  return {
    selector: { matchLabels: { ...j.selector } },
    namespaceSelector: { matchNames: [o.namespace] },
    podMetricsEndpoints: [
      {
        port: j.portName,
        path: j.path,
        interval: j.interval,
        honorLabels: false,
        ...(j.tls ? { scheme: "https", tlsConfig: { ca: { secret: { name: o.patroniTlsSecret, key: "ca.crt" } }, serverName: o.patroniTlsServerName } } : { scheme: "http" }),
        relabelings,
      },
    ],
  };
}
