/**
 * Whether the database schema is at the version this build needs. The service runs without DDL
 * rights (the migration Job applies migrations as the owner), so it must tell an unmigrated
 * database from a broken one and say what to run.
 */
import { loadMigrations, type Migration } from "./migrate";
import type { Sql } from "./types";

export interface SchemaStatus {
  /** Highest version this build ships. */
  readonly required: number;
  /** Versions this build ships that the database has not applied, in order. */
  readonly missing: readonly number[];
  readonly ready: boolean;
}

export const MIGRATE_COMMAND = "knhk schema migrate";

/** Reads schema_migrations (absent table = nothing applied). */
export async function schemaStatus(db: Sql, migrations: readonly Migration[] = loadMigrations()): Promise<SchemaStatus> {
  const exists = (await db.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")).rows[0].present;
  let applied = new Set<number>();
  if (exists) {
    try {
      applied = new Set((await db.query<{ version: number }>("SELECT version FROM schema_migrations")).rows.map((r) => Number(r.version)));
    } catch (error) {
      // The service role may read schema_migrations from the migration that grants it (0008) on.
      if ((error as { code?: string }).code !== "42501") throw error;
    }
  }
  const missing = migrations.map((m) => m.version).filter((v) => !applied.has(v));
  return { required: migrations.at(-1)?.version ?? 0, missing, ready: missing.length === 0 };
}

/** One line for logs and /ready: what is missing and which command (the migration Job) applies it. */
export function describeSchemaStatus(status: SchemaStatus): string {
  if (status.ready) return `schema at version ${status.required}`;
  return (
    `schema not migrated: migrations ${status.missing.join(", ")} of this build (version ${status.required}) are not applied; ` +
    `the migration Job runs \`${MIGRATE_COMMAND}\` as the schema owner before a new version starts`
  );
}
