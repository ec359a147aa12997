import { parseServerRole, SERVER_ROLE_SQL, type ServerRole } from "../db/server-role";
import type { Database } from "../db/types";

export type DependencyState = "healthy" | "degraded" | "down";

export interface HealthReport {
  readonly status: DependencyState;
  readonly timestamp: string;
  readonly uptime_seconds: number;
  /** `vault` only where the database credentials come from a Vault Agent file (DATABASE_URL_FILE). */
  readonly dependencies: { readonly database: DependencyState; readonly redis: DependencyState; readonly vault?: DependencyState };
}

export interface HealthService {
  check(): Promise<HealthReport>;
  /** Ready to take traffic: a primary answers (not a standby) and the process is not shutting down. */
  ready(): Promise<{ ready: boolean; reason?: string }>;
  /** Called on SIGTERM: /ready fails from then on, so load balancers drain this replica. */
  markShuttingDown(): void;
}

export interface HealthDeps {
  readonly db: Database;
  /** Redis state: "degraded" when Redis is absent or unreachable (fallbacks serve). */
  readonly redis: () => Promise<"healthy" | "degraded">;
  /** Vault Agent's rendered credentials (vault-credentials.ts); absent: not reported. */
  readonly vault?: () => Promise<DependencyState>;
  readonly probeTimeoutMs?: number;
  readonly startedAt?: number;
  /** Receives each probe's result (knhk_dependency_up). */
  readonly onProbe?: (dependency: "database" | "redis", up: boolean) => void;
  /** Where the database credentials come from (DATABASE_URL_FILE): added to /ready's reason. */
  readonly describeCredentials?: () => string;
  /** Receives the server role of each PostgreSQL probe whose row parses (knhk_db_timeline, knhk_db_in_recovery). */
  readonly onServerRole?: (role: ServerRole) => void;
}

/** Standby: reachable but read-only; the service must not take traffic there. */
type DatabaseProbe = { readonly state: "healthy" } | { readonly state: "standby"; readonly server?: string } | { readonly state: "down"; readonly error: string };

/** /ready's reason for a standby (the drills and runbooks match on it). */
export function standbyReason(server?: string): string {
  return `connected to a standby (read-only)${server ? `: ${server}` : ""}`;
}

/** A probe's error for /ready's reason: driver and server messages name no password; kept short. */
function brief(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function createHealthService(deps: HealthDeps): HealthService {
  const startedAt = deps.startedAt ?? Date.now();
  const timeoutMs = deps.probeTimeoutMs ?? 2000;
  let shuttingDown = false;

  // One round trip for reachability and role: PGlite is embedded (no standby, no failover).
  const probeSql = deps.db.kind === "postgres" ? SERVER_ROLE_SQL : "SELECT 1";

  async function database(): Promise<DatabaseProbe> {
    let rows: unknown[];
    try {
      rows = (await withTimeout(deps.db.query(probeSql), timeoutMs, "database probe")).rows;
    } catch (error) {
      deps.onProbe?.("database", false);
      return { state: "down", error: brief(error) };
    }
    deps.onProbe?.("database", true);
    if (deps.db.kind !== "postgres") return { state: "healthy" };
    // A row that does not parse leaves the metrics alone; the server did answer, so it stays ready.
    const role = parseServerRole(rows[0]);
    if (!role) return { state: "healthy" };
    deps.onServerRole?.(role);
    return role.inRecovery ? { state: "standby", server: role.server } : { state: "healthy" };
  }

  async function redis(): Promise<DependencyState> {
    const state = await withTimeout(deps.redis(), timeoutMs, "redis probe").catch(() => "degraded" as const);
    deps.onProbe?.("redis", state === "healthy");
    return state;
  }

  return {
    async check() {
      const [probe, cache, vault] = await Promise.all([database(), redis(), deps.vault?.().catch(() => "down" as const)]);
      const db: DependencyState = probe.state === "standby" ? "degraded" : probe.state;
      // Stale or missing credentials do not stop a pool that is connected: degraded, not down.
      const status: DependencyState = db === "down" ? "down" : cache !== "healthy" || (vault !== undefined && vault !== "healthy") ? "degraded" : "healthy";
      return {
        status,
        timestamp: new Date().toISOString(),
        uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
        dependencies: { database: db, redis: cache, ...(vault !== undefined ? { vault } : {}) },
      };
    },
    async ready() {
      if (shuttingDown) return { ready: false, reason: "shutting down" };
      const probe = await database();
      if (probe.state === "healthy") return { ready: true };
      if (probe.state === "standby") return { ready: false, reason: standbyReason(probe.server) };
      const source = deps.describeCredentials?.();
      return { ready: false, reason: `database unreachable: ${probe.error}${source ? ` (${source})` : ""}` };
    },
    markShuttingDown() {
      shuttingDown = true;
    },
  };
}
