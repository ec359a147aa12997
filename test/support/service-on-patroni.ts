/**
 * The KNHK service in this process, writing through `postgres-primary` of a Patroni cluster on
 * the local control plane (test/support/patroni-k8s.ts) the way the pods do: over TLS with
 * `verify-full` against the cluster's CA, as a login that is only a member of knhk_service. The
 * schema is migrated by the owner (the migration Job's identity), whose password is set the way
 * Vault's static role sets it.
 */
import { migrate } from "../../app/src/db/migrate";
import { openDatabase } from "../../app/src/db/open";
import { startService, type RunningService } from "../../app/src/server/service";
import { POSTGRES } from "../../infra/render/topology";
import { TEST_SERVICE_SETTINGS } from "../app/shell/service";
import type { PatroniOnCluster } from "./patroni-k8s";

const OWNER_PASSWORD = "k8s-test-owner-password";
const SERVICE_LOGIN = "knhk_app";
const SERVICE_PASSWORD = "k8s-test-service-password";

export interface ServiceOnPatroni {
  readonly service: RunningService;
  readonly database: string;
  readonly logs: string[];
  /** The owner's URL through postgres-primary (verify-chain, checks). */
  readonly ownerUrl: string;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export function primaryUrl(pg: PatroniOnCluster, user: string, password: string): string {
  return `postgres://${user}:${password}@127.0.0.1:${pg.primary.port}/${POSTGRES.database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg.pki.caFile)}`;
}

export async function startServiceOnPatroni(pg: PatroniOnCluster, env: Record<string, string>): Promise<ServiceOnPatroni> {
  const leader = await pg.leader();
  if (!leader) throw new Error("no leader to prepare the database on");
  await pg.psql(leader, `ALTER ROLE ${POSTGRES.ownerDbUser} PASSWORD '${OWNER_PASSWORD}'; CREATE ROLE ${SERVICE_LOGIN} LOGIN PASSWORD '${SERVICE_PASSWORD}' IN ROLE ${POSTGRES.serviceDbRole};`);
  const ownerUrl = primaryUrl(pg, POSTGRES.ownerDbUser, OWNER_PASSWORD);
  const owner = await openDatabase({ url: ownerUrl, poolMax: 1, poolMin: 0 });
  await migrate(owner);
  await owner.close();
  const logs: string[] = [];
  const service = await startService(
    {
      ...TEST_SERVICE_SETTINGS,
      DB_POOL_MAX_CONNECTIONS: "8",
      // The load writes far above one caller's API rate limit; the drills measure the database.
      KNHK_RATE_LIMIT_MAX: "1000000",
      DATABASE_URL: primaryUrl(pg, SERVICE_LOGIN, SERVICE_PASSWORD),
      DATABASE_MIGRATION_URL: ownerUrl,
      ...env,
    },
    (level, message, extra) => logs.push(`${new Date().toISOString()} ${level} ${message} ${extra ? JSON.stringify(extra) : ""}`),
  );
  return {
    service,
    database: POSTGRES.database,
    logs,
    ownerUrl,
    metrics: async () => (await fetch(`${service.metricsUrl}/metrics`)).text(),
    stop: () => service.stop(),
  };
}
