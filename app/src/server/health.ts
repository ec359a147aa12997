import type { Database } from "../db/types";

export type DependencyState = "healthy" | "degraded" | "down";

export interface HealthReport {
  readonly status: DependencyState;
  readonly timestamp: string;
  readonly uptime_seconds: number;
  readonly dependencies: { readonly database: DependencyState; readonly redis: DependencyState };
}

export interface HealthService {
  check(): Promise<HealthReport>;
  /** Ready to take traffic: the database answers and the process is not shutting down. */
  ready(): Promise<{ ready: boolean; reason?: string }>;
  /** Called on SIGTERM: /ready fails from then on, so load balancers drain this replica. */
  markShuttingDown(): void;
}

export interface HealthDeps {
  readonly db: Database;
  /** Redis state: "degraded" when Redis is absent or unreachable (fallbacks serve). */
  readonly redis: () => Promise<"healthy" | "degraded">;
  readonly probeTimeoutMs?: number;
  readonly startedAt?: number;
  /** Receives each probe's result (knhk_dependency_up). */
  readonly onProbe?: (dependency: "database" | "redis", up: boolean) => void;
  /** Where the database credentials come from (DATABASE_URL_FILE): added to /ready's reason. */
  readonly describeCredentials?: () => string;
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

  let lastDatabaseError = "";

  async function database(): Promise<DependencyState> {
    try {
      await withTimeout(deps.db.query("SELECT 1"), timeoutMs, "database probe");
      deps.onProbe?.("database", true);
      return "healthy";
    } catch (error) {
      lastDatabaseError = brief(error);
      deps.onProbe?.("database", false);
      return "down";
    }
  }

  async function redis(): Promise<DependencyState> {
    const state = await withTimeout(deps.redis(), timeoutMs, "redis probe").catch(() => "degraded" as const);
    deps.onProbe?.("redis", state === "healthy");
    return state;
  }

  return {
    async check() {
      const [db, cache] = await Promise.all([database(), redis()]);
      const status: DependencyState = db === "down" ? "down" : cache !== "healthy" ? "degraded" : "healthy";
      return {
        status,
        timestamp: new Date().toISOString(),
        uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
        dependencies: { database: db, redis: cache },
      };
    },
    async ready() {
      if (shuttingDown) return { ready: false, reason: "shutting down" };
      if ((await database()) === "healthy") return { ready: true };
      const source = deps.describeCredentials?.();
      return { ready: false, reason: `database unreachable: ${lastDatabaseError}${source ? ` (${source})` : ""}` };
    },
    markShuttingDown() {
      shuttingDown = true;
    },
  };
}
