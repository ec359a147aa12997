import type { Database } from "../db/types";
import type { PostgresDatabase } from "../db/postgres";
import type { ServiceMetrics } from "./metrics";

function isPostgres(db: Database): db is PostgresDatabase {
  return db.kind === "postgres" && "poolStats" in db;
}

/**
 * Pool gauges read from node-postgres' own counters at scrape time, summed over the pools of the
 * current and of draining old credentials (a rotation briefly has both). The embedded PGlite
 * database is one in-process connection: max 1, always idle between queries.
 */
export function attachPoolMetrics(metrics: ServiceMetrics, db: Database, poolMax: number): void {
  if (!isPostgres(db)) {
    metrics.addCollector("knhk_db_pool_max_connections", () => metrics.set("knhk_db_pool_max_connections", {}, 1));
    metrics.addCollector("knhk_db_pool_connections", () => {
      metrics.set("knhk_db_pool_connections", { state: "active" }, 0);
      metrics.set("knhk_db_pool_connections", { state: "idle" }, 1);
    });
    metrics.addCollector("knhk_db_pool_waiting_requests", () => metrics.set("knhk_db_pool_waiting_requests", {}, 0));
    return;
  }
  metrics.addCollector("knhk_db_pool_max_connections", () => metrics.set("knhk_db_pool_max_connections", {}, poolMax));
  metrics.addCollector("knhk_db_pool_connections", () => {
    const stats = db.poolStats();
    metrics.set("knhk_db_pool_connections", { state: "active" }, stats.total - stats.idle);
    metrics.set("knhk_db_pool_connections", { state: "idle" }, stats.idle);
  });
  metrics.addCollector("knhk_db_pool_waiting_requests", () => metrics.set("knhk_db_pool_waiting_requests", {}, db.poolStats().waiting));
}
