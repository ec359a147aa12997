import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Database } from "./types";

export const MIGRATIONS_DIR = join(__dirname, "..", "..", "migrations");

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Migrations are `NNNN_name.sql` files applied in version order, each in its own transaction. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((file) => file.endsWith(".sql"))
    .map((file) => {
      const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
      if (!match) throw new Error(`migration file ${file}: name must be NNNN_lower_snake.sql`);
      return { version: Number(match[1]), name: match[2], sql: readFileSync(join(dir, file), "utf8") };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (i > 0 && migrations[i - 1].version === m.version) {
      throw new Error(`migration version ${m.version} is used twice`);
    }
  });
  return migrations;
}

/**
 * Applies the migrations not yet recorded in schema_migrations. Several replicas starting at once
 * serialise on an advisory lock, so each migration runs exactly once.
 */
export async function migrate(db: Database, migrations: Migration[] = loadMigrations()): Promise<number[]> {
  return db.session(async (session) => {
    await session.query("SELECT pg_advisory_lock(hashtext('knhk.migrations'))");
    try {
      await session.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
      );
      const applied = new Set(
        (await session.query<{ version: number }>("SELECT version FROM schema_migrations")).rows.map((r) => r.version),
      );
      const done: number[] = [];
      for (const migration of migrations) {
        if (applied.has(migration.version)) continue;
        await session.exec("BEGIN");
        try {
          await session.exec(migration.sql);
          await session.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
            migration.version,
            migration.name,
          ]);
          await session.exec("COMMIT");
        } catch (error) {
          await session.exec("ROLLBACK");
          throw new Error(`migration ${migration.version}_${migration.name} failed: ${(error as Error).message}`);
        }
        done.push(migration.version);
      }
      return done;
    } finally {
      await session.query("SELECT pg_advisory_unlock(hashtext('knhk.migrations'))");
    }
  });
}
