/**
 * What the deploy script smoke-tests and watches when the cluster's containers do not run: the
 * real service on loopback (real PostgreSQL 15 as the least-privileged role, Redis, a local OIDC
 * issuer) standing in for the pods of the colour being deployed, and a real Prometheus scraping
 * it with that colour's pod label, so the watch's queries select its series as they would in a
 * cluster. The deploy reaches it through `--url-template` / `--metrics-url-template`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";
import { startOidc, type TestOidc } from "../app/shell/oidc";
import { startTestService, type ServiceUnderTest } from "../app/shell/service";
import { startPrometheus, type RunningServer } from "../rules/servers";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startRedis, type TestRedis } from "../support/redis";
import { DEFAULT_WATCH } from "../../scripts/lib/deploy/watch";

export interface SmokeTarget {
  readonly apiUrl: string;
  readonly metricsUrl: string;
  readonly prometheusUrl: string;
  /**
   * Where the deploy's audit events go, as the service's least-privileged role (INSERT on audit_log,
   * no DDL): DATABASE_URL and KNHK_MIGRATE_ON_START=false for the deploy script's audit CLI.
   */
  readonly auditEnv: Record<string, string>;
  /** KNHK_SMOKE_TOKEN / KNHK_SMOKE_INGEST_TOKEN for the deploy script. */
  readonly tokens: Record<string, string>;
  psql(sql: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startSmokeTarget(podName: string): Promise<SmokeTarget> {
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const pg: TestPostgres = await startPostgres();
    stops.push(() => pg.destroy());
    const redis: TestRedis = await startRedis();
    stops.push(() => redis.destroy());
    const oidc: TestOidc = await startOidc();
    stops.push(() => oidc.close());
    const service: ServiceUnderTest = await startTestService(pg, { ...oidc.env(), REDIS_URL: redis.url });
    stops.push(() => service.stop());

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "knhk-smoke-prom-"));
    stops.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const config = path.join(dir, "prometheus.yml");
    fs.writeFileSync(config, YAML.stringify({
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      scrape_configs: [{
        job_name: DEFAULT_WATCH.job,
        static_configs: [{ targets: [new URL(service.service.metricsUrl).host], labels: { pod: podName } }],
      }],
    }));
    const prometheus: RunningServer = await startPrometheus(config);
    stops.push(() => prometheus.stop());

    return {
      apiUrl: service.service.apiUrl,
      metricsUrl: service.service.metricsUrl,
      prometheusUrl: prometheus.url,
      auditEnv: { DATABASE_URL: pg.url(service.database, "knhk_app"), KNHK_MIGRATE_ON_START: "false" },
      tokens: {
        KNHK_SMOKE_TOKEN: await oidc.token("okta", { claims: { sub: "smoke-test", groups: ["knhk-analysts", "knhk-operators"] } }),
        KNHK_SMOKE_INGEST_TOKEN: await oidc.roleToken("ingestor", "smoke-ingest"),
      },
      psql: (sql) => pg.psql(sql, service.database),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
