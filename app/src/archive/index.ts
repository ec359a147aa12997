/**
 * The compliance archive (issue #5, service side): `knhk archive run` and `knhk archive restore`.
 *
 *   const config = loadArchiveConfig(process.env);           // ArchiveConfigError names the variable
 *   const summary = await archiveRun({ db, s3: createArchiveS3Client(config), config, progress: console.error });
 *   const restored = await archiveRestore({ db: scratchDb, s3, ledgerBucket: config.ledgerBucket });
 */
export { buildBatch, objectKey, positionsOfKey, retainUntil, type ArchiveRecord, type Batch, type StreamName } from "./batch";
export { listCheckpoints, loadCheckpoint, type Checkpoint } from "./checkpoints";
export {
  ARCHIVE_ENV,
  ArchiveConfigError,
  DEFAULT_OBSERVATION_ARCHIVE_AFTER_DAYS,
  DEFAULT_RETENTION_DAYS,
  loadArchiveConfig,
  type ArchiveConfig,
  type RetentionMode,
} from "./config";
export { RESTORE_STREAMS, RestoreError, archiveRestore, type RestoreOptions, type RestoreStream, type RestoreSummary } from "./restore";
export {
  ArchiveObjectError,
  ArchiveRunError,
  DEFAULT_AUDIT_SETTLE_SECONDS,
  DEFAULT_BATCH_SIZE,
  META,
  archiveRun,
  type ArchiveRunOptions,
  type ArchiveSummary,
  type StreamSummary,
} from "./run";
export { createArchiveS3Client, describeS3Error, type S3Sender } from "./s3";
export { ARCHIVE_PREFIXES, STREAM_NAMES, STREAMS } from "./streams";
