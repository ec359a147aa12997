/**
 * `knhk archive <command>`: the compliance archive (object storage, S3 API).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import {
  ArchiveConfigError,
  ArchiveRunError,
  RESTORE_STREAMS,
  STREAM_NAMES,
  archiveRestore,
  archiveRun,
  createArchiveS3Client,
  loadArchiveConfig,
  type ArchiveSummary,
  type RestoreStream,
  type StreamName,
} from "../archive";
import { recordRun } from "../ledger-jobs";
import type { CliContext } from "./context";

const USAGE = `usage:
  knhk archive run [--stream receipts|audit|observations]... [--batch N] [--delete-archived-observations] [--record-run]
  knhk archive restore --from-s3 [--stream receipts|audit]...

archive run
  Copies new receipts and audit entries to the ledger bucket (receipts/, audit/) with per-object
  Object Lock retention (KNHK_ARCHIVE_RETENTION_MODE for KNHK_ARCHIVE_RETENTION_DAYS after the
  object's last record), and observations older than KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS to the data
  bucket (observations/), as NDJSON objects of up to N records (default 1000) with a SHA-256
  checksum. Resumable and idempotent: progress is checkpointed in the database after every object,
  and a rerun uploads nothing twice. Receipts and audit entries are never deleted from the
  database; with --delete-archived-observations, observations the run (or an earlier one) has
  archived are deleted from it afterwards (the scheduled job: observations leave PostgreSQL after
  KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS). --record-run stores the outcome in ledger_job_runs.
  Progress lines go to stderr, a JSON summary (uploaded/skipped per stream) to stdout.
  Exit 0 when done, 1 on a failure (the message names the object key and the S3 error), 2 on bad
  usage or configuration.

archive restore --from-s3
  Re-imports the archived receipts (and the archived public signing keys) and audit entries into
  the database of DATABASE_URL, which must be an EMPTY scratch database, then verifies the receipt
  chain. Exit 0 when the restored chain verifies, 1 otherwise.

environment:
  KNHK_ARCHIVE_LEDGER_BUCKET           Object-Locked bucket for receipts/ and audit/ (required)
  KNHK_ARCHIVE_DATA_BUCKET             bucket for observations/ (required)
  KNHK_ARCHIVE_RETENTION_MODE          COMPLIANCE (default) or GOVERNANCE
  KNHK_ARCHIVE_RETENTION_DAYS          default 2562 (7 years of 366 days)
  KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS  default 90
  KNHK_ARCHIVE_KMS_KEY_ID              SSE-KMS key (id, ARN or alias/NAME); optional
  AWS_REGION, AWS credentials (default chain: IRSA web identity, AWS_ACCESS_KEY_ID/...),
  AWS_ENDPOINT_URL_S3                  custom S3 endpoint, path-style (emulators); optional
`;

class UsageError extends Error {}

function parse(args: string[], options: NonNullable<ParseArgsConfig["options"]>) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function streamsOf<T extends string>(values: unknown, allowed: readonly T[]): T[] | undefined {
  const list = values as string[] | undefined;
  if (!list || list.length === 0) return undefined;
  for (const s of list) {
    if (!allowed.includes(s as T)) throw new UsageError(`--stream: must be one of ${allowed.join(", ")}, got ${JSON.stringify(s)}`);
  }
  return allowed.filter((s) => list.includes(s));
}

async function runCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parse(args, {
    stream: { type: "string", multiple: true },
    batch: { type: "string" },
    "delete-archived-observations": { type: "boolean", default: false },
    "record-run": { type: "boolean", default: false },
  });
  const streams = streamsOf<StreamName>(values.stream, STREAM_NAMES);
  let batchSize: number | undefined;
  if (values.batch !== undefined) {
    const raw = values.batch as string;
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 100_000) throw new UsageError(`--batch: must be an integer from 1 to 100000, got ${JSON.stringify(raw)}`);
    batchSize = Number(raw);
  }
  const config = loadArchiveConfig(ctx.env);
  const s3 = createArchiveS3Client(config);
  const startedAt = new Date();
  const record = async (summary: ArchiveSummary): Promise<void> => {
    if (values["record-run"] !== true) return;
    try {
      await recordRun(ctx.db, { job: "archive", ok: summary.ok, startedAt, summary: { ...summary } });
    } catch (error) {
      // The exit code still tells the CronJob (and kube-state-metrics) how the run went.
      ctx.stderr.write(`archive: could not record the run in ledger_job_runs: ${(error as Error).message}\n`);
    }
  };
  try {
    const summary = await archiveRun({
      db: ctx.db,
      s3,
      config,
      streams,
      batchSize,
      deleteArchivedObservations: values["delete-archived-observations"] === true,
      progress: (line) => ctx.stderr.write(line + "\n"),
    });
    await record(summary);
    ctx.stdout.write(JSON.stringify(summary, null, 2) + "\n");
    return 0;
  } catch (error) {
    if (!(error instanceof ArchiveRunError)) throw error;
    await record(error.summary);
    ctx.stdout.write(JSON.stringify(error.summary, null, 2) + "\n");
    ctx.stderr.write(`archive: failed: ${error.message}\n`);
    return 1;
  } finally {
    s3.destroy();
  }
}

async function restoreCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parse(args, { "from-s3": { type: "boolean", default: false }, stream: { type: "string", multiple: true } });
  if (values["from-s3"] !== true) throw new UsageError("--from-s3: required (the archive in the ledger bucket is the only restore source)");
  const streams = streamsOf<RestoreStream>(values.stream, RESTORE_STREAMS);
  const config = loadArchiveConfig(ctx.env);
  const s3 = createArchiveS3Client(config);
  try {
    const summary = await archiveRestore({ db: ctx.db, s3, ledgerBucket: config.ledgerBucket, streams, progress: (line) => ctx.stderr.write(line + "\n") });
    ctx.stdout.write(JSON.stringify(summary, null, 2) + "\n");
    if (!summary.ok) ctx.stderr.write("archive restore: the restored receipt chain FAILED verification\n");
    return summary.ok ? 0 : 1;
  } catch (error) {
    ctx.stderr.write(`archive restore: failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    s3.destroy();
  }
}

export async function run(args: string[], ctx: CliContext): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "run":
        return await runCommand(rest, ctx);
      case "restore":
        return await restoreCommand(rest, ctx);
      case undefined:
      case "help":
      case "--help":
        (command === undefined ? ctx.stderr : ctx.stdout).write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown archive command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof ArchiveConfigError) {
      ctx.stderr.write(`archive: ${error.message}\n${error instanceof UsageError ? USAGE : ""}`);
      return 2;
    }
    throw error;
  }
}
