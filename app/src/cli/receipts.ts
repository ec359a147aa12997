/**
 * `knhk receipts <command>`:
 *   verify-chain [--format text|json] [--limit N] [--incremental] [--workers N] [--record-run]
 *       Verifies the stored chain; exit 0 when intact, 1 on any failure, 2 on bad usage.
 *       Progress goes to stderr for long runs. --record-run (the scheduled jobs) stores the
 *       outcome in ledger_job_runs, which the service exports for the chain-integrity alert.
 *       --trusted-keys <file> and/or --trusted-keys-from-vault: a key source outside the database
 *       (a keys file written by export-transit-keys; Vault transit through the KNHK_SIGNING_*
 *       variables): every receipt's key_version must be there with the key the database holds.
 *   register-key --version N (--key-file <pem> | --public-key <base64>)
 *       Registers a signing key's public half (run as the database owner: the service role may
 *       not). The PEM may be the private key (only its public half is stored) or the public key.
 *   register-transit-keys [--keys-file <file>]
 *       Registers every version of the Vault transit signing key (KNHK_SIGNING_VAULT_ADDR,
 *       KNHK_SIGNING_TRANSIT_MOUNT, KNHK_SIGNING_TRANSIT_KEY...) not registered yet, as the
 *       database owner (DATABASE_URL). With --keys-file, from a keys file instead of Vault: the
 *       migration Job's Vault Agent renders one from the transit key and the Job runs this after
 *       the migrations.
 *   export-transit-keys
 *       Prints the transit key's public keys as a keys file (JSON) for --trusted-keys.
 *   prove <id> [--size N], verify-log [--checkpoint <file>], audit --bucket <name>
 *       The receipt log (transparency log): see cli/receipt-log.ts.
 *   export --out <dir|-> [--after-seq N]
 *       Writes receipts (seq > N) as NDJSON, one receipt per line, to stdout (-) or to
 *       <dir>/receipts-<first>-<last>.ndjson.
 */
import { createPublicKey } from "node:crypto";
import { createWriteStream, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { once } from "node:events";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { loadKeyring, rawPublicKey, registerSigningKey, SigningKeyRegistrationError, SigningUnavailableError } from "../receipts/keys";
import { exportTrustedKeys, mergeTrustedKeys, parseTrustedKeys, transitSource, TrustedKeysError } from "../receipts/trusted-keys";
import { readTransitKeys, TRANSIT_ENV, TransitConfigError, transitSettingsFromEnv, type TransitSettings } from "../receipts/vault-transit";
import { exportReceipts } from "../receipts/store";
import { verifyChain, type VerifierConnection } from "../receipts/verify";
import { loadConfig } from "../config";
import { readDatabaseUrlFile } from "../db/url-file";
import { recordRun, verificationRun } from "../ledger-jobs";
import type { ChainFailure, VerificationReport } from "../receipts/types";
import type { CliContext } from "./context";
import { auditCommand, LogUsageError, proveCommand, verifyLogCommand } from "./receipt-log";

const USAGE = `usage:
  knhk receipts verify-chain [--format text|json] [--limit N] [--incremental] [--workers N] [--record-run]
                             [--trusted-keys <file>] [--trusted-keys-from-vault]
  knhk receipts register-key --version N (--key-file <pem> | --public-key <base64>)
  knhk receipts register-transit-keys [--keys-file <file>]  (else KNHK_SIGNING_VAULT_ADDR, KNHK_SIGNING_TRANSIT_KEY, ...)
  knhk receipts export-transit-keys        (prints a keys file for --trusted-keys)
  knhk receipts export --out <dir|-> [--after-seq N]
  knhk receipts prove <receipt id> [--size N] [--format text|json]
  knhk receipts verify-log [--checkpoint <file>] [--format text|json]
  knhk receipts audit --bucket <ledger bucket> [--prefix receipts/] [--sample N] [--format text|json]
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

/** The transit settings from the environment; a command that needs them fails with exit 2 without. */
function transitSettings(ctx: CliContext, command: string): TransitSettings {
  const settings = transitSettingsFromEnv(ctx.env);
  if (!settings) throw new UsageError(`${command}: ${TRANSIT_ENV.addr} and ${TRANSIT_ENV.key} must name the Vault transit signing key`);
  return settings;
}

/** The keys of --trusted-keys and/or --trusted-keys-from-vault, merged (they must agree). */
async function trustedKeys(file: string | undefined, fromVault: boolean, ctx: CliContext): Promise<{ keys: ReadonlyMap<number, string>; source: string } | undefined> {
  const sources: { keys: ReadonlyMap<number, string>; source: string }[] = [];
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new UsageError(`--trusted-keys: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    const parsed = parseTrustedKeys(text, file);
    sources.push({ keys: parsed.keys, source: `keys file ${file} (${parsed.source})` });
  }
  if (fromVault) {
    const settings = transitSettings(ctx, "--trusted-keys-from-vault");
    sources.push({ keys: (await readTransitKeys(settings)).keys, source: `Vault transit ${settings.mount}/${settings.key}` });
  }
  if (sources.length === 0) return undefined;
  return { keys: mergeTrustedKeys(sources), source: sources.map((s) => s.source).join(" and ") };
}

/**
 * The URL the dispatcher opened ctx.db with (DATABASE_URL, or DATABASE_URL_FILE's content): the
 * verifier threads read receipts over connections of their own with it, as the same role and
 * with the same TLS settings. None for the embedded database: ctx.db's connection reads for them.
 */
function verifierConnection(ctx: CliContext): VerifierConnection | undefined {
  if (ctx.db.kind !== "postgres") return undefined;
  const { url, urlFile } = loadConfig(ctx.env).database;
  if (url) return { connectionString: url };
  if (!urlFile) return undefined;
  const read = readDatabaseUrlFile(urlFile);
  return read.kind === "url" ? { connectionString: read.url } : undefined;
}

async function verifyCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parse(args, {
    format: { type: "string", default: "text" },
    limit: { type: "string" },
    incremental: { type: "boolean", default: false },
    workers: { type: "string" },
    "record-run": { type: "boolean", default: false },
    "trusted-keys": { type: "string" },
    "trusted-keys-from-vault": { type: "boolean", default: false },
  });
  const format = values.format as string;
  if (format !== "text" && format !== "json") throw new UsageError(`--format: must be text or json, got ${JSON.stringify(format)}`);
  const limit = positiveInteger("limit", values.limit as string | undefined);
  const workers = positiveInteger("workers", values.workers as string | undefined, true);
  const recordIt = values["record-run"] === true;
  if (recordIt && limit !== undefined) throw new UsageError("--record-run: not with --limit (a partial run is no verification of the chain)");
  const trusted = await trustedKeys(values["trusted-keys"] as string | undefined, values["trusted-keys-from-vault"] === true, ctx);
  if (trusted) write(ctx.stderr, `verify-chain: trusting the public keys of ${trusted.source} (versions ${[...trusted.keys.keys()].join(", ")})\n`);
  let lastPrint = 0;
  const started = Date.now();
  const report = await verifyChain({
    db: ctx.db,
    connection: verifierConnection(ctx),
    // A CLI process has nothing else to do: its own thread verifies beside the workers.
    callingThread: true,
    limit,
    workers,
    fromCheckpoint: values.incremental === true,
    trustedKeys: trusted?.keys,
    trustedSource: trusted?.source,
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

async function registerTransitKeysCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parse(args, { "keys-file": { type: "string" } });
  const keysFile = values["keys-file"] as string | undefined;
  let keys: ReadonlyMap<number, string>;
  let source: string;
  if (keysFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(keysFile, "utf8");
    } catch (error) {
      throw new UsageError(`--keys-file: cannot read ${keysFile} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    const parsed = parseTrustedKeys(text, keysFile);
    keys = parsed.keys;
    source = parsed.source;
  } else {
    const settings = transitSettings(ctx, "register-transit-keys");
    keys = (await readTransitKeys(settings)).keys;
    source = transitSource(settings);
  }
  const registered = await loadKeyring(ctx.db);
  let failed = false;
  for (const [version, publicKey] of [...keys].sort(([a], [b]) => a - b)) {
    if (registered.get(version) === publicKey) {
      write(ctx.stdout, `${source} version ${version}: already registered\n`);
      continue;
    }
    try {
      await registerSigningKey(ctx.db, { keyVersion: version, publicKey, ephemeral: false });
      write(ctx.stdout, `${source} version ${version}: registered (${publicKey})\n`);
    } catch (error) {
      if (!(error instanceof SigningKeyRegistrationError) && !/registered with a different public key/.test((error as Error).message)) throw error;
      const reason =
        error instanceof SigningKeyRegistrationError ? error.message : `key_version ${version} is registered with another public key than transit's; it never signs`;
      write(ctx.stderr, `receipts register-transit-keys: version ${version}: ${reason}\n`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

async function exportTransitKeysCommand(args: string[], ctx: CliContext): Promise<number> {
  parse(args, {});
  const settings = transitSettings(ctx, "export-transit-keys");
  write(ctx.stdout, exportTrustedKeys(await readTransitKeys(settings), transitSource(settings)));
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
      case "register-transit-keys":
        return await registerTransitKeysCommand(rest, ctx);
      case "export-transit-keys":
        return await exportTransitKeysCommand(rest, ctx);
      case "prove":
        return await proveCommand(rest, ctx);
      case "verify-log":
        return await verifyLogCommand(rest, ctx);
      case "audit":
        return await auditCommand(rest, ctx);
      case undefined:
      case "help":
      case "--help":
        write(command === undefined ? ctx.stderr : ctx.stdout, USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown receipts command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof LogUsageError || error instanceof TransitConfigError || error instanceof TrustedKeysError) {
      write(ctx.stderr, `receipts: ${error.message}\n${error instanceof UsageError || error instanceof LogUsageError ? USAGE : ""}`);
      return 2;
    }
    if (error instanceof SigningUnavailableError) {
      write(ctx.stderr, `receipts: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
