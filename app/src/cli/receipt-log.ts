/**
 * `knhk receipts prove <id> [--size N] [--format text|json]` and
 * `knhk receipts verify-log [--checkpoint <file>] [--format text|json]`: the receipt log's
 * transparency-log commands. prove prints a receipt's inclusion proof against a signed checkpoint
 * and checks it (signature with the registered keys, audit path to the root); verify-log
 * recomputes the tree from the receipts and compares it with every signed checkpoint, the stored
 * head and, with --checkpoint, a checkpoint an auditor kept; `audit --bucket <name> [--prefix P]
 * [--sample N]` checks the published log from the bucket alone (AWS_REGION, AWS_ENDPOINT_URL_S3
 * and the usual AWS credentials). Exit 0 when everything holds, 1 when
 * something does not, 2 on bad usage. Progress on stderr.
 */
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { readFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { verifyInclusion } from "../receipts/merkle";
import { LogInputError, proveReceipt } from "../receipts/tlog/log";
import { ARCHIVE_PREFIXES } from "../archive/streams";
import { auditBucket, type AuditReport, type BucketReader, type SampledLeaf } from "../receipts/tlog/audit";
import { openWithRegisteredKeys, verifyLog, type LogReport } from "../receipts/tlog/verify-log";
import { verifyAuditLog, type AuditLogReport } from "../audit/verify-log";
import type { CliContext } from "./context";

export class LogUsageError extends Error {}

function options(args: string[], spec: NonNullable<ParseArgsConfig["options"]>, positionals: number) {
  try {
    const parsed = parseArgs({ args, options: spec, strict: true, allowPositionals: positionals > 0 });
    if (parsed.positionals.length !== positionals) throw new Error(positionals ? "needs a receipt id" : "takes no positional arguments");
    return parsed;
  } catch (error) {
    throw new LogUsageError((error as Error).message);
  }
}

function format(value: unknown): "text" | "json" {
  if (value === undefined || value === "text" || value === "json") return (value as "text" | "json") ?? "text";
  throw new LogUsageError(`--format: must be text or json, got ${JSON.stringify(value)}`);
}

export async function proveCommand(args: string[], ctx: CliContext): Promise<number> {
  const parsed = options(args, { size: { type: "string" }, format: { type: "string" } }, 1);
  const id = parsed.positionals[0];
  const sizeText = parsed.values.size as string | undefined;
  if (sizeText !== undefined && !/^[1-9][0-9]{0,15}$/.test(sizeText)) throw new LogUsageError(`--size: must be a positive integer, got ${JSON.stringify(sizeText)}`);
  let answer;
  try {
    answer = await proveReceipt(ctx.db, id, sizeText === undefined ? undefined : Number(sizeText));
  } catch (error) {
    if (error instanceof LogInputError) throw new LogUsageError(`--${error.field}: ${error.reason}`);
    throw error;
  }
  if (!answer) {
    ctx.stderr.write(`receipts: no receipt ${id}\n`);
    return 1;
  }
  const checkpoint = await openWithRegisteredKeys(ctx.db, answer.checkpoint).catch((error: Error) => error);
  const holds =
    !(checkpoint instanceof Error) &&
    checkpoint.size === answer.tree_size &&
    verifyInclusion(Buffer.from(answer.leaf_hash, "base64"), answer.leaf_index, answer.tree_size, answer.proof.map((p) => Buffer.from(p, "base64")), checkpoint.root);
  if (format(parsed.values.format) === "json") {
    ctx.stdout.write(`${JSON.stringify({ ...answer, verified: holds })}\n`);
  } else {
    ctx.stdout.write(
      [
        `receipt ${answer.receipt_id} (seq ${answer.seq}) is leaf ${answer.leaf_index} of the tree of size ${answer.tree_size}`,
        `leaf hash: ${answer.leaf_hash}`,
        "audit path:",
        ...answer.proof.map((p) => `  ${p}`),
        "checkpoint:",
        ...answer.checkpoint.trimEnd().split("\n").map((l) => `  ${l}`),
        holds ? "verified: the checkpoint's signature and the audit path hold" : `NOT verified: ${checkpoint instanceof Error ? checkpoint.message : "the audit path does not lead to the checkpoint's root"}`,
        "",
      ].join("\n"),
    );
  }
  return holds ? 0 : 1;
}

export function formatLogReport(r: LogReport): string {
  return [
    `receipts: ${r.receipts}, tree: ${r.treeSize}, signed checkpoints: ${r.checkpoints}${r.latestCheckpoint === null ? "" : ` (latest size ${r.latestCheckpoint})`}`,
    ...r.findings.map((f) => `  ${f.kind} at size ${f.size}: ${f.detail}`),
    r.ok ? "log intact: every checkpoint and the tree match the receipts" : `LOG NOT INTACT: ${r.findings.length} finding(s)`,
    "",
  ].join("\n");
}

/** The arguments both verify-log commands take: --checkpoint <file>, --format; progress on stderr. */
function verifyLogArgs(args: string[], ctx: CliContext, noun: string) {
  const parsed = options(args, { checkpoint: { type: "string" }, format: { type: "string" } }, 0);
  const as = format(parsed.values.format);
  let remembered: string | undefined;
  if (parsed.values.checkpoint !== undefined) {
    try {
      remembered = readFileSync(String(parsed.values.checkpoint), "utf8");
    } catch (error) {
      throw new LogUsageError(`--checkpoint: cannot read ${parsed.values.checkpoint}: ${(error as Error).message}`);
    }
  }
  let lastReport = 0;
  const onProgress = (done: number, total: number) => {
    if (Date.now() - lastReport < 2000 && done < total) return;
    lastReport = Date.now();
    ctx.stderr.write(`verify-log: ${done} of ${total} ${noun}\n`);
  };
  return { as, remembered, onProgress };
}

export async function verifyLogCommand(args: string[], ctx: CliContext): Promise<number> {
  const { as, remembered, onProgress } = verifyLogArgs(args, ctx, "receipts");
  const report = await verifyLog(ctx.db, { remembered, onProgress });
  ctx.stdout.write(as === "json" ? `${JSON.stringify(report)}\n` : formatLogReport(report));
  return report.ok ? 0 : 1;
}

export function formatAuditLogReport(r: AuditLogReport): string {
  return [
    `audit entries in the tree: ${r.leaves}, tree: ${r.treeSize}, signed checkpoints: ${r.checkpoints}${r.latestCheckpoint === null ? "" : ` (latest size ${r.latestCheckpoint})`}`,
    ...r.findings.map((f) => `  ${f.kind} at size ${f.size}: ${f.detail}`),
    r.ok ? "audit log intact: every checkpoint and the tree match the audit entries" : `AUDIT LOG NOT INTACT: ${r.findings.length} finding(s)`,
    "",
  ].join("\n");
}

/** `knhk audit verify-log [--checkpoint <file>] [--format text|json]`: the audit log's tree against its checkpoints. */
export async function verifyAuditLogCommand(args: string[], ctx: CliContext): Promise<number> {
  const { as, remembered, onProgress } = verifyLogArgs(args, ctx, "audit entries");
  const report = await verifyAuditLog(ctx.db, { remembered, onProgress });
  ctx.stdout.write(as === "json" ? `${JSON.stringify(report)}\n` : formatAuditLogReport(report));
  return report.ok ? 0 : 1;
}

/** The ledger bucket through the S3 API (read only). */
export function s3BucketReader(bucket: string, env: NodeJS.ProcessEnv): BucketReader {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new LogUsageError("AWS_REGION: required (or AWS_DEFAULT_REGION) to read the bucket");
  const endpoint = env.AWS_ENDPOINT_URL_S3;
  const credentials = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } : undefined;
  const s3 = new S3Client({ region, ...(endpoint ? { endpoint, forcePathStyle: true } : {}), ...(credentials ? { credentials } : {}), maxAttempts: 5 });
  return {
    async list(prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async read(key) {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await object.Body!.transformToByteArray());
    },
  };
}

export function formatAuditReport(r: AuditReport): string {
  return [
    `published checkpoints: ${r.checkpoints}${r.latestSize === null ? "" : ` (latest size ${r.latestSize})`}, consistency checked: ${r.consistencyChecked}, receipts checked for inclusion: ${r.receiptsChecked}`,
    ...r.findings.map((f) => `  ${f.kind} ${f.key}: ${f.detail}`),
    r.ok ? "published log intact" : `PUBLISHED LOG NOT INTACT: ${r.findings.length} finding(s)`,
    "",
  ].join("\n");
}

export async function auditCommand(args: string[], ctx: CliContext, log: "receipts" | "audit" = "receipts"): Promise<number> {
  const parsed = options(args, { bucket: { type: "string" }, prefix: { type: "string" }, sample: { type: "string" }, format: { type: "string" } }, 0);
  const bucket = parsed.values.bucket as string | undefined;
  if (!bucket) throw new LogUsageError("--bucket: required (the ledger bucket)");
  const sampleText = parsed.values.sample as string | undefined;
  if (sampleText !== undefined && !/^[1-9][0-9]{0,6}$/.test(sampleText)) throw new LogUsageError(`--sample: must be a positive integer, got ${JSON.stringify(sampleText)}`);
  const as = format(parsed.values.format);
  const sample = sampleText === undefined ? undefined : Number(sampleText);
  const onProgress = (line: string) => ctx.stderr.write(`${line}\n`);
  const prefix = parsed.values.prefix as string | undefined;
  const report = await auditBucket(
    s3BucketReader(bucket, ctx.env),
    log === "receipts"
      ? { prefix: prefix ?? ARCHIVE_PREFIXES.receipts, sample, onProgress }
      : { prefix: prefix ?? ARCHIVE_PREFIXES.audit, keysPrefix: ARCHIVE_PREFIXES.signingKeys, leafOf: auditLineLeaf, sample, onProgress },
  );
  ctx.stdout.write(as === "json" ? `${JSON.stringify(report)}\n` : formatAuditReport(report));
  return report.ok ? 0 : 1;
}

/** An archived audit line is its own leaf data; its index is found by its hash. */
function auditLineLeaf(line: string): SampledLeaf {
  const { id } = JSON.parse(line) as { id: number };
  return { data: Buffer.from(line, "utf8"), name: `audit entry ${id}` };
}
