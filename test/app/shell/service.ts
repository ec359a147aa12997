/**
 * Starts the real service (startService: config from env, migrations, ledger, kernel, domain,
 * Redis, both servers) against a real PostgreSQL 15, as the least-privileged service role
 * `knhk_app` (member of knhk_service) with migrations run by the owner, on random ports.
 */
import { migrate } from "../../../app/src/db/migrate";
import { openDatabase } from "../../../app/src/db/open";
import { startService, type RunningService } from "../../../app/src/server/service";
import { requestText } from "../../support/https-client";
import type { TestPostgres } from "../../support/postgres";

let counter = 0;

/** The settings of a service under test: loopback, random ports, quiet, no scheduled loop, no idle pool. */
export const TEST_SERVICE_SETTINGS = {
  KNHK_HOST: "127.0.0.1",
  KNHK_PORT: "0",
  KNHK_METRICS_PORT: "0",
  KNHK_LOG_LEVEL: "silent",
  KNHK_MAPE_K_INTERVAL_SECONDS: "0",
  DB_POOL_MIN_CONNECTIONS: "0",
} as const;

export interface ServiceUnderTest {
  readonly service: RunningService;
  readonly database: string;
  readonly logs: string[];
  api(path: string, init?: RequestInit & { token?: string; json?: unknown }): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

export async function createServiceDatabase(pg: TestPostgres): Promise<string> {
  const database = `knhk_api_${process.pid}_${++counter}`;
  await pg.createDatabase(database);
  return database;
}

export async function grantServiceRole(pg: TestPostgres, database: string): Promise<void> {
  await pg.psql(
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'knhk_app') THEN CREATE ROLE knhk_app LOGIN; END IF; END $$; GRANT knhk_service TO knhk_app;",
    database,
  );
}

/** A new database migrated by the owner (which creates the knhk_service role). */
export async function createMigratedDatabase(pg: TestPostgres): Promise<string> {
  const database = await createServiceDatabase(pg);
  const owner = await openDatabase({ url: pg.url(database), poolMax: 1, poolMin: 0 });
  await migrate(owner);
  await owner.close();
  return database;
}

/** `client.ca`: the CA that signed the service's certificate (KNHK_TLS_* in `env`); `api` then speaks HTTPS and trusts it. */
export interface TestClient {
  readonly ca?: string;
}

export async function startTestService(pg: TestPostgres, env: Record<string, string> = {}, client: TestClient = {}): Promise<ServiceUnderTest> {
  // Migrations create the knhk_service role; the login role is granted it afterwards, so the
  // first start migrates as the owner only, then the service runs as knhk_app.
  const database = await createMigratedDatabase(pg);
  await grantServiceRole(pg, database);
  return startServiceOn(pg, database, { DATABASE_URL: pg.url(database, "knhk_app"), ...env }, client);
}

/**
 * The service on a migrated `database` with TEST_SERVICE_SETTINGS, the owner as
 * DATABASE_MIGRATION_URL (it registers the signing key) and `env` (which names the login:
 * DATABASE_URL or DATABASE_URL_FILE).
 */
export async function startServiceOn(pg: TestPostgres, database: string, env: Record<string, string>, client: TestClient = {}): Promise<ServiceUnderTest> {
  const logs: string[] = [];
  const service = await startService(
    { ...TEST_SERVICE_SETTINGS, DB_POOL_MAX_CONNECTIONS: "10", DATABASE_MIGRATION_URL: pg.url(database), ...env },
    (level, message, extra) => logs.push(`${level} ${message} ${extra ? JSON.stringify(extra) : ""}`),
  );
  return {
    service,
    database,
    logs,
    async api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (init.token) headers.set("authorization", `Bearer ${init.token}`);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set("content-type", "application/json");
        body = JSON.stringify(init.json);
      }
      let status: number;
      let text: string;
      let responseHeaders: Headers;
      if (client.ca !== undefined) {
        const sent: Record<string, string> = {};
        headers.forEach((value, name) => (sent[name] = value));
        ({ status, text, headers: responseHeaders } = await requestText(`${service.apiUrl}${path}`, { method: init.method, headers: sent, body: typeof body === "string" ? body : undefined, ca: client.ca }));
      } else {
        const response = await fetch(`${service.apiUrl}${path}`, { ...init, headers, body });
        [status, text, responseHeaders] = [response.status, await response.text(), response.headers];
      }
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON
      }
      return { status, body: parsed, headers: responseHeaders };
    },
    stop: () => service.stop(),
  };
}
