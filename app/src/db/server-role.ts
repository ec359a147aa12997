/**
 * Which PostgreSQL server the pool reached: a primary (and on which timeline) or a standby.
 *
 * The service role has no pg_monitor (pg_control_checkpoint() is out of reach), so the timeline
 * comes from the name of the WAL file the primary writes: pg_walfile_name(pg_current_wal_lsn())
 * is TTTTTTTTXXXXXXXXYYYYYYYY in hex, TTTTTTTT the timeline ID. Both functions are executable by
 * PUBLIC; pg_walfile_name errors during recovery, hence the CASE (pg_is_in_recovery only goes
 * from true to false, so a row saying "primary" always carries its WAL file name).
 */
export const SERVER_ROLE_SQL = `SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS wal_file,
  host(inet_server_addr()) AS server_addr, inet_server_port() AS server_port`;

export interface ServerRole {
  /** A standby (read-only): the service cannot write there. */
  readonly inRecovery: boolean;
  /** The primary's timeline (absent on a standby). */
  readonly timeline?: number;
  /** host:port as the server reports it (inet_server_addr), absent over a Unix socket. */
  readonly server?: string;
}

const WAL_FILE = /^([0-9A-F]{8})[0-9A-F]{16}$/i;

/** The timeline ID of a WAL file name, or undefined when `name` is not one (timeline 0 does not exist). */
export function timelineOfWalFile(name: unknown): number | undefined {
  if (typeof name !== "string") return undefined;
  const match = WAL_FILE.exec(name);
  if (!match) return undefined;
  const timeline = Number.parseInt(match[1], 16);
  return timeline >= 1 ? timeline : undefined;
}

const HOST = /^[0-9A-Fa-f.:]{2,45}$/;

function serverOf(addr: unknown, port: unknown): string | undefined {
  if (typeof addr !== "string" || !HOST.test(addr)) return undefined;
  const number = typeof port === "number" ? port : typeof port === "string" && /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  const host = addr.includes(":") ? `[${addr}]` : addr;
  return Number.isInteger(number) && number > 0 && number <= 65535 ? `${host}:${number}` : host;
}

/**
 * A row of SERVER_ROLE_SQL as a ServerRole; undefined for anything else (a primary without a
 * valid WAL file name included), so that no metric is ever set from a garbled row.
 */
export function parseServerRole(row: unknown): ServerRole | undefined {
  if (typeof row !== "object" || row === null) return undefined;
  const { in_recovery, wal_file, server_addr, server_port } = row as Record<string, unknown>;
  if (typeof in_recovery !== "boolean") return undefined;
  const server = serverOf(server_addr, server_port);
  const where = server ? { server } : {};
  if (in_recovery) return { inRecovery: true, ...where };
  const timeline = timelineOfWalFile(wal_file);
  return timeline === undefined ? undefined : { inRecovery: false, timeline, ...where };
}
