/**
 * Follows DATABASE_URL_FILE: when its URL changes, the database rotates to it (postgres.ts
 * rotate: connect once with the new URL, then switch). Vault Agent rewrites the file by rename,
 * which inotify reports unreliably, so the directory is watched AND the file re-read every
 * `pollMs`. A missing or empty file is a rewrite in progress: the current credentials stay. A
 * file that is not a URL, or a URL that cannot connect, is refused: logged once (naming
 * DATABASE_URL_FILE, never the content), counted, and the last good URL stays in use.
 */
import { watch, type FSWatcher } from "node:fs";
import { dirname } from "node:path";
import { DATABASE_URL_FILE_ENV, describeDatabaseUrl, readDatabaseUrlFile, redactPassword, type UrlFileRead } from "./url-file";

export type CredentialReloadOutcome = "applied" | "invalid" | "probe_failed";

type Log = (level: "info" | "warn" | "error", message: string, extra?: Record<string, unknown>) => void;

export interface CredentialFileOptions {
  readonly path: string;
  /** The URL the database was opened with. */
  readonly initialUrl: string;
  readonly rotate: (url: string) => Promise<void>;
  readonly log: Log;
  readonly onOutcome?: (outcome: CredentialReloadOutcome) => void;
  /** Re-read interval, whatever the watcher reports (default 5 s). */
  readonly pollMs?: number;
  /** A changed URL is applied once two reads this far apart agree (default 100 ms). */
  readonly settleMs?: number;
}

export interface CredentialFileWatch {
  /** Where the credentials come from and what was last refused: for /ready's reason. */
  describe(): string;
  /** Re-reads the file now (also what the watcher and the poll timer call). */
  check(): Promise<void>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function watchCredentialFile(options: CredentialFileOptions): CredentialFileWatch {
  const { path, log } = options;
  const pollMs = options.pollMs ?? 5000;
  const settleMs = options.settleMs ?? 100;
  const where = { variable: DATABASE_URL_FILE_ENV, file: path };
  let applied = options.initialUrl;
  let appliedAt = new Date();
  /** Fingerprint of the content last refused (logged and counted once per content). */
  let refused: { fingerprint: string; reason: string } | undefined;
  let absentLogged: "missing" | "empty" | undefined;
  let closed = false;
  let running: Promise<void> | undefined;
  let again = false;
  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;

  function refuse(read: UrlFileRead, outcome: "invalid" | "probe_failed", reason: string): void {
    if (refused?.fingerprint === read.fingerprint) return;
    refused = { fingerprint: read.fingerprint, reason };
    log("warn", `${DATABASE_URL_FILE_ENV}: ${reason}; keeping the current database credentials`, where);
    options.onOutcome?.(outcome);
  }

  async function checkOnce(): Promise<void> {
    let read = readDatabaseUrlFile(path);
    if (read.kind === "url" && read.url !== applied) {
      // A rewrite in place can be caught half-written: apply only what two reads agree on.
      await sleep(settleMs);
      const second = readDatabaseUrlFile(path);
      if (second.fingerprint !== read.fingerprint) {
        again = true;
        return;
      }
      read = second;
    }
    if (closed) return;
    if (read.kind === "absent") {
      if (absentLogged !== read.why) log("warn", `${DATABASE_URL_FILE_ENV} is ${read.why} (being rewritten?); keeping the current database credentials`, where);
      absentLogged = read.why;
      return;
    }
    absentLogged = undefined;
    if (read.kind === "invalid") return refuse(read, "invalid", `the file ${read.reason}`);
    if (read.url === applied) {
      refused = undefined;
      return;
    }
    try {
      await options.rotate(read.url);
    } catch (error) {
      return refuse(read, "probe_failed", `connecting with the new credentials failed: ${redactPassword((error as Error).message, read.url)}`);
    }
    applied = read.url;
    appliedAt = new Date();
    refused = undefined;
    log("info", "database credentials reloaded", { ...where, ...describeDatabaseUrl(read.url) });
    options.onOutcome?.("applied");
  }

  function check(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await checkOnce().catch((error) => log("error", `${DATABASE_URL_FILE_ENV}: check failed`, { ...where, error: String(error) }));
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  function startWatching(): void {
    if (watcher || closed) return;
    try {
      // A rename arrives under the temporary file's name, or none at all: any event in the folder counts.
      watcher = watch(dirname(path), { persistent: false }, () => schedule());
      watcher.on("error", () => {
        watcher?.close();
        watcher = undefined;
      });
    } catch {
      watcher = undefined; // the folder is missing: the poll keeps going and retries the watch
    }
  }

  function schedule(): void {
    if (debounce || closed) return;
    debounce = setTimeout(() => {
      debounce = undefined;
      void check();
    }, 20);
    debounce.unref();
  }

  startWatching();
  const poll = setInterval(() => {
    startWatching();
    void check();
  }, pollMs);
  poll.unref();

  return {
    describe() {
      const { user } = describeDatabaseUrl(applied);
      const base = `credentials from ${DATABASE_URL_FILE_ENV} ${path} (user ${user}, loaded ${appliedAt.toISOString()})`;
      return refused ? `${base}; newer content refused: ${refused.reason}` : base;
    },
    check,
    async close() {
      closed = true;
      clearInterval(poll);
      clearTimeout(debounce);
      watcher?.close();
      await running;
    },
  };
}
