/**
 * `knhk receipts <command>`:
 *   verify-chain [--format text|json] [--limit N] [--incremental] [--workers N] [--record-run]
 *       Verifies the stored chain; exit 0 when intact, 1 on any failure, 2 on bad usage.
 *       Progress goes to stderr for long runs. --record-run (the scheduled jobs) stores the
 *       outcome in ledger_job_runs, which the service exports for the chain-integrity alert.
 *   register-key --version N (--key-file <pem> | --public-key <base64>)
 *       Registers a signing key's public half (run as the database owner: the service role may
 *       not). The PEM may be the private key (only its public half is stored) or the public key.
 *   export --out <dir|-> [--after-seq N]
 *       Writes receipts (seq > N) as NDJSON, one receipt per line, to stdout (-) or to
 *       <dir>/receipts-<first>-<last>.ndjson.
 */
import { createPublicKey } from "node:crypto";
import { createWriteStream, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { once } from "node:events";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { rawPublicKey, registerSigningKey, SigningKeyRegistrationError } from "../receipts/keys";
import { exportReceipts } from "../receipts/store";
import { verifyChain } from "../receipts/verify";
import { recordRun, verificationRun } from "../ledger-jobs";
import type { ChainFailure, VerificationReport } from "../receipts/types";
import type { CliContext } from "./context";

const USAGE = `usage:
  knhk receipts verify-chain [--format text|json] [--limit N] [--incremental] [--workers N] [--record-run]
  knhk receipts register-key --version N (--key-file <pem> | --public-key <base64>)
  knhk receipts export --out <dir|-> [--after-seq N]
`;

class UsageError extends Error {}

function positiveInteger(flag: string, value: string | undefined, allowZero = false): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || (!allowZero && Number(value) === 0) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${flag}: must be a ${allowZero ? "non-negative" : "positive"} integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function parse(args: string[], options: NonNullable<ParseArgsConfig["options"]>) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text);
}

function describe(f: ChainFailure): string {
  return `  seq ${f.seq} id ${f.id || "-"}: ${f.kind}: ${f.detail}`;
}

export function formatReport(report: VerificationReport): string {
  const failures = [...report.chain_breaks, ...report.signature_failures, ...report.retrocausation_violations].sort(
    (a, b) => a.seq - b.seq,
  );
  const lines = [
    `receipts examined: ${report.total_count}${report.incremental ? " (incremental, from the last checkpoint)" : ""}`,
    `verified:          ${report.verified_count}`,
    `seq range:         ${report.from_seq ?? "-"}..${report.to_seq ?? "-"}`,
    `last timestamp:    ${report.last_verified_timestamp ?? "-"}`,
    `chain breaks: ${report.chain_breaks.length}, signature failures: ${report.signature_failures.length}, retrocausation: ${report.retrocausation_violations.length}`,
    ...failures.map(describe),
    report.ok ? "chain intact" : "CHAIN FAILED VERIFICATION",
  ];
  return lines.join("\n") + "\n";
}

async function verifyCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parse(args, {
    format: { type: "string", default: "text" },
    limit: { type: "string" },
    incremental: { type: "boolean", default: false },
    workers: { type: "string" },
    "record-run": { type: "boolean", default: false },
  });
  const format = values.format as string;
  if (format !== "text" && format !== "json") throw new UsageError(`--format: must be text or json, got ${JSON.stringify(format)}`);
  const limit = positiveInteger("limit", values.limit as string | undefined);
  const workers = positiveInteger("workers", values.workers as string | undefined, true);
  const recordIt = values["record-run"] === true;
  if (recordIt && limit !== undefined) throw new UsageError("--record-run: not with --limit (a partial run is no verification of the chain)");
  let lastPrint = 0;
  const started = Date.now();
  const report = await verifyChain({
    db: ctx.db,
    limit,
    workers,
    fromCheckpoint: values.incremental === true,
    onProgress: ({ verified, total, seq }) => {
      const now = Date.now();
      if (total < 20_000 || (now - lastPrint < 1000 && verified < total)) return;
      lastPrint = now;
      const rate = Math.round(verified / Math.max(0.001, (now - started) / 1000));
      write(ctx.stderr, `verify-chain: ${verified}/${total} (${Math.floor((verified / total) * 100)}%) at seq ${seq}, ${rate} receipts/s\n`);
    },
  });
  write(ctx.stdout, format === "json" ? JSON.stringify(report, null, 2) + "\n" : formatReport(report));
  if (recordIt) {
    try {
      await recordRun(ctx.db, verificationRun(report, new Date(started)));
    } catch (error) {
      // Unrecorded, the outcome never reaches the alert: fail the run so the CronJob's staleness alert does.
      write(ctx.stderr, `verify-chain: could not record the run in ledger_job_runs: ${(error as Error).message}\n`);
      return 1;
    }
  }
  return report.ok ? 0 : 1;
}

function publicKeyFrom(keyFile: string | undefined, publicKey: string | undefined): string {
  if (keyFile && publicKey) throw new UsageError("--key-file and --public-key: give only one");
  if (publicKey !== undefined) {
    if (!/^[A-Za-z0-9+/]{43}=$/.test(publicKey)) throw new UsageError("--public-key: must be a raw 32-byte ed25519 key in base64");
    return publicKey;
  }
  if (!keyFile) throw new UsageError("--key-file or --public-key: required");
  let pem: string;
  try {
    pem = readFileSync(keyFile, "utf8");
  } catch (error) {
    throw new UsageError(`--key-file: cannot read ${keyFile} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    return rawPublicKey(createPublicKey(pem));
  } catch (error) {
    throw new UsageError(`--key-file: not an ed25519 PEM key (${(error as Error).message})`);
  }
}

async function registerKeyCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parse(args, { version: { type: "string" }, "key-file": { type: "string" }, "public-key": { type: "string" } });
  const version = positiveInteger("version", values.version as string | undefined);
  if (version === undefined) throw new UsageError("--version: required");
  const publicKey = publicKeyFrom(values["key-file"] as string | undefined, values["public-key"] as string | undefined);
  try {
    await registerSigningKey(ctx.db, { keyVersion: version, publicKey, ephemeral: false });
  } catch (error) {
    if (!(error instanceof SigningKeyRegistrationError) && !/registered with a different public key/.test((error as Error).message)) throw error;
    write(ctx.stderr, `receipts register-key: ${(error as Error).message}\n`);
    return 1;
  }
  write(ctx.stdout, `signing key version ${version} registered (${publicKey})\n`);
  return 0;
}

async function exportCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parse(args, { out: { type: "string" }, "after-seq": { type: "string" } });
  const out = values.out as string | undefined;
  if (!out) throw new UsageError("--out: required (a directory, or - for stdout)");
  const afterSeq = positiveInteger("after-seq", values["after-seq"] as string | undefined, true) ?? 0;

  const toStdout = out === "-";
  let tmpPath = "";
  let stream: NodeJS.WritableStream;
  if (toStdout) {
    stream = ctx.stdout;
  } else {
    mkdirSync(out, { recursive: true });
    tmpPath = join(out, `.receipts-export-${process.pid}.ndjson.tmp`);
    stream = createWriteStream(tmpPath, { flags: "wx" });
  }
  let count = 0;
  let first: number | null = null;
  let last: number | null = null;
  for await (const receipt of exportReceipts(ctx.db, { afterSeq })) {
    first ??= receipt.seq;
    last = receipt.seq;
    count++;
    if (!stream.write(JSON.stringify(receipt) + "\n")) await once(stream, "drain");
  }
  if (toStdout) {
    write(ctx.stderr, `exported ${count} receipts${count ? ` (seq ${first}..${last})` : ""}\n`);
    return 0;
  }
  const file = stream as ReturnType<typeof createWriteStream>;
  file.end();
  await once(file, "close");
  const finalPath = join(out, count ? `receipts-${first}-${last}.ndjson` : `receipts-after-${afterSeq}-empty.ndjson`);
  renameSync(tmpPath, finalPath);
  write(ctx.stderr, `exported ${count} receipts${count ? ` (seq ${first}..${last})` : ""} to ${finalPath}\n`);
  return 0;
}

export async function run(args: string[], ctx: CliContext): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "verify-chain":
        return await verifyCommand(rest, ctx);
      case "export":
        return await exportCommand(rest, ctx);
      case "register-key":
        return await registerKeyCommand(rest, ctx);
      case undefined:
      case "help":
      case "--help":
        write(command === undefined ? ctx.stderr : ctx.stdout, USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown receipts command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      write(ctx.stderr, `receipts: ${error.message}\n${USAGE}`);
      return 2;
    }
    throw error;
  }
}
