/**
 * What every Patroni harness does to one member on this machine (the etcd cluster of patroni.ts
 * and the pods on the local control plane of patroni-k8s.ts): psql as the postgres user over the
 * member's socket, the immediate stop and the crash of its PostgreSQL, and calls to its REST API
 * (plain HTTP, or HTTPS against the harness CA).
 *
 * PostgreSQL refuses root: when the tests run as root, these run as the `postgres` OS user.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { promisify } from "node:util";
import { PG_BIN } from "./postgres";

const run = promisify(execFile);
export const asRoot = process.getuid?.() === 0;

/** A PostgreSQL binary with its arguments, as the postgres user when the tests run as root. */
function asPostgres(binary: string, args: readonly string[]): [string, string[]] {
  const path = join(PG_BIN, binary);
  return asRoot ? ["runuser", ["-u", "postgres", "--", path, ...args]] : [path, [...args]];
}

/** One statement's rows as `psql -At` prints them, as the superuser over the member's socket. */
export async function psqlAsPostgres(member: { socketDir: string; pgPort: number }, sql: string, database = "postgres"): Promise<string> {
  const [cmd, argv] = asPostgres("psql", ["-X", "-h", member.socketDir, "-p", String(member.pgPort), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql]);
  // Large answers too: the drills read every acknowledged id back.
  const { stdout } = await run(cmd, argv, { timeout: 30_000, maxBuffer: 256 * 1024 * 1024 });
  return stdout.trim();
}

/**
 * `pg_ctl -m immediate stop` of the member's data directory (no error if it is not running):
 * PostgreSQL runs in its own session, outside Patroni's process group, so a node death or a
 * teardown stops it here.
 */
export async function stopPostgresNow(dataDir: string): Promise<void> {
  const [cmd, argv] = asPostgres("pg_ctl", ["-D", dataDir, "-m", "immediate", "stop"]);
  await run(cmd, argv).catch(() => undefined);
}

/** PID of the postmaster running on `dataDir`, from its postmaster.pid (undefined when there is none). */
export function postmasterPid(dataDir: string): number | undefined {
  try {
    return Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]) || undefined;
  } catch {
    return undefined;
  }
}

/** kill -9 of the postmaster of `dataDir`; returns its PID. */
export function crashPostmaster(dataDir: string): number {
  const pid = postmasterPid(dataDir);
  if (!pid) throw new Error(`no postmaster runs on ${dataDir}`);
  process.kill(pid, "SIGKILL");
  return pid;
}

export interface RestAnswer {
  readonly status: number;
  /** Parsed JSON, or the text when the answer is not JSON (Patroni answers some calls in plain text). */
  readonly body: any;
}

export interface RestOptions {
  readonly method?: string;
  readonly body?: unknown;
  /** PEM of the CA the member's HTTPS certificate is from; without it, plain HTTP. */
  readonly ca?: string;
  readonly timeoutMs?: number;
}

/** A call to the REST API on 127.0.0.1:`port` (a Patroni member, etcd). */
export function restCall(port: number, path: string, opts: RestOptions = {}): Promise<RestAnswer> {
  const method = opts.method ?? "GET";
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers = payload ? { "content-type": "application/json" } : {};
  const options = { host: "127.0.0.1", port, path, method, headers, timeout: opts.timeoutMs ?? 3000 };
  return new Promise((resolve, reject) => {
    const onAnswer = (res: import("node:http").IncomingMessage) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        let body: unknown = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          // a plain-text answer
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on("error", reject);
    };
    const req = opts.ca ? httpsRequest({ ...options, ca: opts.ca }, onAnswer) : httpRequest(options, onAnswer);
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} on port ${port}: timeout`)));
    req.on("error", reject);
    req.end(payload);
  });
}
