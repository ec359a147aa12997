/**
 * pgbackrest.conf builder and the scripts around it (pure).
 *
 * Layout on Kubernetes: each PostgreSQL pod pushes WAL to the repository (archive-push) and runs
 * `pgbackrest server` (TLS) so the backup CronJob, acting as repository host, can back up from
 * whichever member is primary (it lists every member as pgN-host and pgBackRest picks the
 * primary). The repository is S3 (IRSA web identity) in the cloud stacks, posix elsewhere.
 * The repository is encrypted (aes-256-cbc); the passphrase comes from the environment
 * (PGBACKREST_REPO1_CIPHER_PASS), never from the file.
 */

export type PgbackrestRepo =
  | {
      readonly type: "s3";
      readonly bucket: string;
      readonly region: string;
      /** Default: s3.<region>.amazonaws.com */
      readonly endpoint?: string;
      readonly path: string;
      /** web-id: IAM role for the service account; shared: keys from the environment. */
      readonly keyType: "web-id" | "shared";
    }
  | { readonly type: "posix"; readonly path: string };

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** Where the PostgreSQL data lives from this config's point of view. */
export type PgbackrestPg =
  | { readonly kind: "local"; readonly path: string; readonly port: number; readonly socketPath: string; readonly user?: string }
  | {
      readonly kind: "remote";
      /** Every member; pgBackRest finds the primary among them. */
      readonly hosts: readonly string[];
      readonly path: string;
      readonly port: number;
      readonly socketPath: string;
      readonly tlsPort: number;
      readonly tls: TlsFiles;
    };

export interface PgbackrestConfInput {
  readonly stanza: string;
  readonly repo: PgbackrestRepo;
  readonly pg: PgbackrestPg;
  readonly retentionFull: number;
  /** Encrypt the repository (aes-256-cbc); the passphrase is read from PGBACKREST_REPO1_CIPHER_PASS. */
  readonly encrypt: boolean;
  readonly logPath: string;
  readonly lockPath: string;
  readonly processMax?: number;
  /** Run `pgbackrest server` for repository hosts whose client certificate CN is listed. */
  readonly tlsServer?: { readonly address: string; readonly port: number; readonly tls: TlsFiles; readonly allowedClientCns: readonly string[] };
}

export const CIPHER_PASS_ENV = "PGBACKREST_REPO1_CIPHER_PASS";

const STANZA = /^[A-Za-z0-9_-]+$/;

export function buildPgbackrestConf(input: PgbackrestConfInput): Record<string, Record<string, string>> {
  if (!STANZA.test(input.stanza)) throw new Error(`stanza "${input.stanza}" may only contain letters, digits, '_', '-'`);
  if (!Number.isInteger(input.retentionFull) || input.retentionFull < 1) throw new Error(`retentionFull ${input.retentionFull} must be an integer >= 1`);
  if (input.pg.kind === "remote" && input.pg.hosts.length === 0) throw new Error("pg.hosts must list at least one member");

  const global: Record<string, string> = {
    "repo1-type": input.repo.type,
    "repo1-path": input.repo.path,
    "repo1-retention-full-type": "count",
    "repo1-retention-full": String(input.retentionFull),
    "process-max": String(input.processMax ?? 2),
    "compress-type": "lz4",
    "start-fast": "y",
    delta: "y",
    "archive-check": "y",
    "log-level-console": "info",
    "log-level-file": "detail",
    "log-path": input.logPath,
    "lock-path": input.lockPath,
  };
  if (input.repo.type === "s3") {
    Object.assign(global, {
      "repo1-s3-bucket": input.repo.bucket,
      "repo1-s3-region": input.repo.region,
      "repo1-s3-endpoint": input.repo.endpoint ?? `s3.${input.repo.region}.amazonaws.com`,
      "repo1-s3-key-type": input.repo.keyType,
      "repo1-s3-uri-style": "host",
    });
  }
  if (input.encrypt) global["repo1-cipher-type"] = "aes-256-cbc";
  if (input.tlsServer) {
    Object.assign(global, {
      "tls-server-address": input.tlsServer.address,
      "tls-server-port": String(input.tlsServer.port),
      "tls-server-cert-file": input.tlsServer.tls.certFile,
      "tls-server-key-file": input.tlsServer.tls.keyFile,
      "tls-server-ca-file": input.tlsServer.tls.caFile,
      "tls-server-auth": `${input.tlsServer.allowedClientCns.join(",")}=${input.stanza}`,
    });
  }

  const stanza: Record<string, string> = {};
  if (input.pg.kind === "local") {
    Object.assign(stanza, {
      "pg1-path": input.pg.path,
      "pg1-port": String(input.pg.port),
      "pg1-socket-path": input.pg.socketPath,
      ...(input.pg.user ? { "pg1-user": input.pg.user } : {}),
    });
  } else {
    const pg = input.pg;
    pg.hosts.forEach((host, i) => {
      const n = `pg${i + 1}`;
      Object.assign(stanza, {
        [`${n}-host`]: host,
        [`${n}-host-type`]: "tls",
        [`${n}-host-port`]: String(pg.tlsPort),
        [`${n}-host-cert-file`]: pg.tls.certFile,
        [`${n}-host-key-file`]: pg.tls.keyFile,
        [`${n}-host-ca-file`]: pg.tls.caFile,
        [`${n}-path`]: pg.path,
        [`${n}-port`]: String(pg.port),
        [`${n}-socket-path`]: pg.socketPath,
      });
    });
  }
  return { global, [input.stanza]: stanza };
}

export function renderIni(doc: Record<string, Record<string, string>>): string {
  return `${Object.entries(doc)
    .map(([section, entries]) => [`[${section}]`, ...Object.entries(entries).map(([k, v]) => `${k}=${v}`)].join("\n"))
    .join("\n\n")}\n`;
}

export function renderPgbackrestConf(input: PgbackrestConfInput): string {
  return `# Generated by infra/render/pgbackrest.ts\n${renderIni(buildPgbackrestConf(input))}`;
}

/** PostgreSQL archive_command / restore_command for a stanza. */
export function archiveCommands(stanza: string, configFile: string): { archive: string; restore: string } {
  if (!STANZA.test(stanza)) throw new Error(`stanza "${stanza}" may only contain letters, digits, '_', '-'`);
  return {
    archive: `pgbackrest --config=${configFile} --stanza=${stanza} archive-push "%p"`,
    restore: `pgbackrest --config=${configFile} --stanza=${stanza} archive-get %f "%p"`,
  };
}

/** Command Patroni runs to create a replica from the repository (it appends nothing: no_params). */
export function replicaRestoreCommand(stanza: string, configFile: string): string {
  return `pgbackrest --config=${configFile} --stanza=${stanza} --delta restore`;
}

export type BackupType = "full" | "incr";

/** The CronJob's command: make sure the stanza exists, then back up. */
export function backupScript(args: { stanza: string; configFile: string; type: BackupType }): string {
  if (!STANZA.test(args.stanza)) throw new Error(`stanza "${args.stanza}" may only contain letters, digits, '_', '-'`);
  const pgbr = `pgbackrest --config=${args.configFile} --stanza=${args.stanza}`;
  return [
    "#!/bin/sh",
    "set -eu",
    // stanza-create is idempotent and is needed once before the first backup.
    `${pgbr} stanza-create`,
    `${pgbr} --type=${args.type} backup`,
    `${pgbr} info`,
    "",
  ].join("\n");
}

export interface RestoreTestInput {
  readonly stanza: string;
  readonly configFile: string;
  /** Empty scratch directory for the restored cluster. */
  readonly scratchDir: string;
  readonly binDir: string;
  /** Port and socket directory of the scratch instance (local connections only). */
  readonly port: number;
  readonly socketDir: string;
  readonly database: string;
  /** The receipt ledger table; must hold rows whose hash chain links up. */
  readonly table: string;
}

/**
 * Monthly restore test: restore the latest backup into a scratch directory, start a throwaway
 * PostgreSQL on it (no network, no archiving, no TLS, no synchronous standby), then check the
 * receipts table: at least one row, and every receipt's parent_hash equals the hash of the
 * receipt before it. Exits non-zero (the Job fails, the alert fires) otherwise.
 */
export function restoreTestScript(i: RestoreTestInput): string {
  const ident = /^[a-z_][a-z0-9_]*$/;
  for (const [field, value] of Object.entries({ database: i.database, table: i.table })) {
    if (!ident.test(value)) throw new Error(`${field} "${value}" must be a plain lower-case SQL identifier`);
  }
  if (!STANZA.test(i.stanza)) throw new Error(`stanza "${i.stanza}" may only contain letters, digits, '_', '-'`);
  const data = `${i.scratchDir}/data`;
  const psql = `${i.binDir}/psql -X -v ON_ERROR_STOP=1 -h ${i.socketDir} -p ${i.port} -d ${i.database} -Atc`;
  return [
    "#!/bin/sh",
    "set -eu",
    `DATA=${data}`,
    'rm -rf "$DATA" && mkdir -p "$DATA" && chmod 700 "$DATA"',
    `pgbackrest --config=${i.configFile} --stanza=${i.stanza} --pg1-path="$DATA" --type=immediate --target-action=promote restore`,
    `trap '${i.binDir}/pg_ctl -D "$DATA" -m immediate stop >/dev/null 2>&1 || true' EXIT`,
    // Command-line settings override the restored postgresql.conf of the production member.
    `${i.binDir}/pg_ctl -D "$DATA" -w -t 300 -l "${i.scratchDir}/restore-test.log" -o "-c port=${i.port} -c listen_addresses='' -c unix_socket_directories=${i.socketDir} -c archive_mode=off -c ssl=off -c synchronous_standby_names='' -c hba_file=$DATA/pg_hba.conf" start`,
    `until [ "$(${psql} 'SELECT NOT pg_is_in_recovery()')" = t ]; do sleep 1; done`,
    `ROWS=$(${psql} 'SELECT count(*) FROM ${i.table}')`,
    `BROKEN=$(${psql} 'SELECT count(*) FROM ${i.table} r JOIN ${i.table} p ON p.seq = r.seq - 1 WHERE r.parent_hash IS DISTINCT FROM p.hash')`,
    'echo "restore test: $ROWS receipts, $BROKEN broken links"',
    'if [ "$ROWS" -eq 0 ]; then echo "restore test FAILED: receipts table is empty" >&2; exit 1; fi',
    'if [ "$BROKEN" -ne 0 ]; then echo "restore test FAILED: $BROKEN broken hash links" >&2; exit 1; fi',
    'echo "restore test passed"',
    "",
  ].join("\n");
}
