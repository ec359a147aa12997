/** What every CLI subcommand module receives from the dispatcher (`npm run knhk -- <group> <command>`). */
import type { Database } from "../db/types";

export interface CliContext {
  /** Opened (and migrated) by the dispatcher from DATABASE_URL, or the embedded PGlite. */
  readonly db: Database;
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/**
 * Contract of a subcommand module: `run(args, ctx)` gets the arguments after `<group>` (the first
 * one is the command) and resolves with the process exit code.
 */
export type CliRun = (args: string[], ctx: CliContext) => Promise<number>;
