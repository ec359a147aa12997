/**
 * `npm run knhk -- <group> <command> [options]`: the operator CLI.
 *
 *   receipts verify-chain [--format json] [--limit N]   verify the stored receipt chain
 *   receipts export ...                                 NDJSON export for the archive
 *   audit log ...                                       append an audit event (deploy scripts)
 *   audit verify-log ...                                check the audit log's tree against its signed checkpoints
 *   archive run ...                                     archive receipts and audit to object storage
 *   schema migrate | status                             apply / check the migrations (the migration Job)
 *
 * The dispatcher opens (and, unless KNHK_MIGRATE_ON_START=false, migrates) the database from DATABASE_URL / DB_POOL_* (embedded PGlite
 * in KNHK_EMBEDDED_DATA_DIR when unset) and hands it to the group's module (`run(args, ctx)`).
 */
import { join } from "node:path";
import { CLI_POOL_MAX_CONNECTIONS } from "../config/env";
import { ConfigError, loadConfig } from "../config";
import { migrate } from "../db/migrate";
import { databaseKind, openDatabase } from "../db/open";
import type { Database } from "../db/types";
import type { CliContext, CliRun } from "./context";

export const GROUPS = {
  receipts: "verify the receipt chain, export receipts",
  audit: "append to or read the audit log",
  archive: "archive receipts and audit events",
  schema: "apply or check the database migrations",
} as const;
type Group = keyof typeof GROUPS;

const USAGE = `usage: npm run knhk -- <group> <command> [options]\n\ngroups:\n${Object.entries(GROUPS)
  .map(([g, d]) => `  ${g.padEnd(10)} ${d}`)
  .join("\n")}\n\nrun 'npm run knhk -- <group> --help' for a group's commands\n`;

/** Loads `./<group>`; a group whose module is not built yet is reported, not crashed on. */
function loadGroup(group: Group): CliRun | string {
  const path = join(__dirname, group);
  let loaded: { run?: unknown };
  try {
    loaded = require(path) as { run?: unknown };
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === "MODULE_NOT_FOUND" && e.message.includes(path)) return `the '${group}' commands are not available in this build (no module app/src/cli/${group}.ts)`;
    throw error;
  }
  if (typeof loaded.run !== "function") return `app/src/cli/${group}.ts does not export run(args, ctx)`;
  return loaded.run as CliRun;
}

export interface DispatchIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** Runs one CLI invocation and resolves with its exit code (2 = usage error). */
export async function dispatch(argv: readonly string[], io: DispatchIo): Promise<number> {
  const [group, ...args] = argv;
  if (!group || group === "help" || group === "--help" || group === "-h") {
    (group ? io.stdout : io.stderr).write(USAGE);
    return group ? 0 : 2;
  }
  if (!(group in GROUPS)) {
    io.stderr.write(`unknown command group '${group}'\n\n${USAGE}`);
    return 2;
  }
  const run = loadGroup(group as Group);
  if (typeof run === "string") {
    io.stderr.write(`${run}\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  }
  // A CLI needs one or two connections, not the service's pool; `--help` needs none at all.
  const settings = { ...config.database, poolMin: 0, poolMax: Math.min(config.database.poolMax, CLI_POOL_MAX_CONNECTIONS) };
  const db = lazyDatabase(databaseKind(settings), async () => {
    const opened = await openDatabase(settings);
    // KNHK_MIGRATE_ON_START=false: a least-privileged identity (no DDL) runs commands on a migrated schema.
    // `schema` migrates (or only reads) explicitly.
    if (config.database.migrateOnStart && group !== "schema") await migrate(opened);
    return opened;
  });
  try {
    const ctx: CliContext = { db, env: io.env, stdout: io.stdout, stderr: io.stderr };
    return await run(args, ctx);
  } finally {
    await db.close();
  }
}

/** Opens (and migrates) the database on first use only. */
function lazyDatabase(kind: Database["kind"], open: () => Promise<Database>): Database {
  let opened: Promise<Database> | undefined;
  const get = () => (opened ??= open());
  return {
    kind,
    query: async (text, params) => (await get()).query(text, params),
    exec: async (text) => (await get()).exec(text),
    transaction: async (fn) => (await get()).transaction(fn),
    session: async (fn) => (await get()).session(fn),
    async close() {
      if (opened) await (await opened).close();
    },
  };
}

if (require.main === module) {
  dispatch(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: Error) => {
      process.stderr.write(`knhk: ${error.message}\n`);
      process.exitCode = 1;
    },
  );
}
