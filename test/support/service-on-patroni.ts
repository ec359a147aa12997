/**
 * The KNHK service in this process, writing through `postgres-primary` of a Patroni cluster on
 * the local control plane (test/support/patroni-k8s.ts) the way the pods do: over TLS with
 * `verify-full` against the cluster's CA, as a login that is only a member of knhk_service, with
 * KNHK_MIGRATE_ON_START=false and no owner credential, as the Deployment runs. Beforehand the
 * owner (the migration Job's identity, its password set the way Vault's static role sets it)
 * migrates the schema and registers the signing key the service is given as a file. Checks read
 * the chain as the verification job's role.
 */
import { dirname } from "node:path";
import { migrate } from "../../app/src/db/migrate";
import { openDatabase } from "../../app/src/db/open";
import { startService, type RunningService } from "../../app/src/server/service";
import { LEDGER_JOBS } from "../../infra/render/ledger-jobs";
import { POSTGRES } from "../../infra/render/topology";
import { TEST_SERVICE_SETTINGS } from "../app/shell/service";
import type { PatroniOnCluster } from "./patroni-k8s";
import { provisionSigningKey } from "./signing-key";

const OWNER_PASSWORD = "k8s-test-owner-password";
const SERVICE_LOGIN = "knhk_app";
const SERVICE_PASSWORD = "k8s-test-service-password";
const VERIFIER_LOGIN = "knhk_verify";
const VERIFIER_PASSWORD = "k8s-test-verifier-password";

export interface ServiceOnPatroni {
  readonly service: RunningService;
  readonly database: string;
  readonly logs: string[];
  /** A login of the verification job's role through postgres-primary (what `receipts verify-chain` runs as). */
  readonly verifierUrl: string;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export function primaryUrl(pg: PatroniOnCluster, user: string, password: string): string {
  return `postgres://${user}:${password}@127.0.0.1:${pg.primary.port}/${POSTGRES.database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg.pki.caFile)}`;
}

export async function startServiceOnPatroni(pg: PatroniOnCluster, env: Record<string, string>): Promise<ServiceOnPatroni> {
  const leader = await pg.leader();
  if (!leader) throw new Error("no leader to prepare the database on");
  await pg.psql(
    leader,
    `ALTER ROLE ${POSTGRES.ownerDbUser} PASSWORD '${OWNER_PASSWORD}'; CREATE ROLE ${SERVICE_LOGIN} LOGIN PASSWORD '${SERVICE_PASSWORD}' IN ROLE ${POSTGRES.serviceDbRole}; ` +
      `CREATE ROLE ${VERIFIER_LOGIN} LOGIN PASSWORD '${VERIFIER_PASSWORD}' IN ROLE ${LEDGER_JOBS.verifyChain.dbRole};`,
  );
  const ownerUrl = primaryUrl(pg, POSTGRES.ownerDbUser, OWNER_PASSWORD);
  const owner = await openDatabase({ url: ownerUrl, poolMax: 1, poolMin: 0 });
  let signingKey: Record<string, string>;
  try {
    await migrate(owner);
    signingKey = await provisionSigningKey(owner, dirname(pg.pki.caFile));
  } finally {
    await owner.close();
  }
  const logs: string[] = [];
  const service = await startService(
    {
      ...TEST_SERVICE_SETTINGS,
      DB_POOL_MAX_CONNECTIONS: "8",
      // The load writes far above one caller's API rate limit; the drills measure the database.
      KNHK_RATE_LIMIT_MAX: "1000000",
      DATABASE_URL: primaryUrl(pg, SERVICE_LOGIN, SERVICE_PASSWORD),
      KNHK_MIGRATE_ON_START: "false",
      ...signingKey,
      ...env,
    },
    (level, message, extra) => logs.push(`${new Date().toISOString()} ${level} ${message} ${extra ? JSON.stringify(extra) : ""}`),
  );
  return {
    service,
    database: POSTGRES.database,
    logs,
    verifierUrl: primaryUrl(pg, VERIFIER_LOGIN, VERIFIER_PASSWORD),
    metrics: async () => (await fetch(`${service.metricsUrl}/metrics`)).text(),
    stop: () => service.stop(),
  };
}
