import { createPgliteDatabase } from "./pglite";
import { createPostgresDatabase } from "./postgres";
import type { Database } from "./types";

export interface DatabaseSettings {
  /** postgres:// URL; absent means the embedded PGlite fallback. */
  readonly url?: string;
  readonly poolMax?: number;
  readonly poolMin?: number;
  /** PGlite data directory; absent means in memory. */
  readonly embeddedDir?: string;
}

export async function openDatabase(settings: DatabaseSettings): Promise<Database> {
  if (!settings.url) return createPgliteDatabase(settings.embeddedDir);
  return createPostgresDatabase({
    connectionString: settings.url,
    max: settings.poolMax ?? 50,
    min: settings.poolMin ?? 0,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    maxLifetimeSeconds: 1800,
  });
}
