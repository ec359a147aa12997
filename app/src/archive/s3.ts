/** The S3 client of the archive: built from ArchiveConfig; the run only needs `send`. */
import { S3Client } from "@aws-sdk/client-s3";
import type { ArchiveConfig } from "./config";

/** What the archive uses of an S3Client (tests wrap it to inject failures). */
export type S3Sender = Pick<S3Client, "send">;

export function createArchiveS3Client(config: ArchiveConfig): S3Client {
  return new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    maxAttempts: 5,
  });
}

/** "NoSuchKey: The specified key does not exist. (HTTP 404)" from an SDK error. */
export function describeS3Error(error: unknown): string {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return `${e.name ?? "Error"}: ${e.message ?? String(error)}${status ? ` (HTTP ${status})` : ""}`;
}

export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NotFound" || e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404;
}
