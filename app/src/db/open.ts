import { ConfigError } from "../config/env";
import { watchCredentialFile, type CredentialReloadOutcome } from "./credential-file";
import { createPgliteDatabase } from "./pglite";
import { createPostgresDatabase } from "./postgres";
import type { Database } from "./types";
import { DATABASE_URL_FILE_ENV, readDatabaseUrlFile } from "./url-file";

export interface DatabaseSettings {
  /** postgres:// URL; absent (and no urlFile) means the embedded PGlite fallback. */
  readonly url?: string;
  /** DATABASE_URL_FILE: a file holding the URL, followed while the database is open (credential-file.ts). */
  readonly urlFile?: string;
  readonly poolMax?: number;
  readonly poolMin?: number;
  /** PGlite data directory; absent means in memory. */
  readonly embeddedDir?: string;
}

export interface OpenOptions {
  readonly log?: (level: "info" | "warn" | "error", message: string, extra?: Record<string, unknown>) => void;
  /** Each change of DATABASE_URL_FILE's content: applied, or refused and why. */
  readonly onCredentialReload?: (outcome: CredentialReloadOutcome) => void;
  /** Re-read interval of DATABASE_URL_FILE (default 5 s). */
  readonly credentialPollMs?: number;
}

export interface OpenedDatabase extends Database {
  /** With DATABASE_URL_FILE: where the credentials come from (for /ready's reason). */
  readonly describeCredentials?: () => string;
}

/** Which Database kind `openDatabase(settings)` opens. */
export function databaseKind(settings: DatabaseSettings): Database["kind"] {
  return settings.url || settings.urlFile ? "postgres" : "pglite";
}

/** How long start-up waits for DATABASE_URL_FILE to appear (or stop being empty). */
const INITIAL_WAIT_MS = 10_000;

/** The file's URL at start-up: waits while it is missing or empty; a file that is no URL stops start-up. */
export async function readInitialDatabaseUrl(path: string, waitMs = INITIAL_WAIT_MS): Promise<string> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const read = readDatabaseUrlFile(path);
    if (read.kind === "url") return read.url;
    if (read.kind === "invalid") throw new ConfigError(DATABASE_URL_FILE_ENV, `${path} ${read.reason}`);
    if (Date.now() >= deadline) throw new ConfigError(DATABASE_URL_FILE_ENV, `${path} is ${read.why} (waited ${waitMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function openDatabase(settings: DatabaseSettings, options: OpenOptions = {}): Promise<OpenedDatabase> {
  if (databaseKind(settings) === "pglite") return createPgliteDatabase(settings.embeddedDir);
  const url = settings.urlFile ? await readInitialDatabaseUrl(settings.urlFile) : settings.url!;
  const db = createPostgresDatabase(
    {
      connectionString: url,
      max: settings.poolMax ?? 50,
      min: settings.poolMin ?? 0,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 5_000,
      maxLifetimeSeconds: 1800,
    },
    { log: options.log },
  );
  if (!settings.urlFile) return db;
  const watch = watchCredentialFile({
    path: settings.urlFile,
    initialUrl: url,
    rotate: (next) => db.rotate(next),
    log: options.log ?? (() => undefined),
    onOutcome: options.onCredentialReload,
    pollMs: options.credentialPollMs,
  });
  return {
    ...db,
    describeCredentials: () => watch.describe(),
    async close() {
      await watch.close();
      await db.close();
    },
  };
}
