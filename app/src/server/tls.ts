/**
 * HTTPS for the API port: the certificate files, read at start-up and re-read while the service
 * runs, so a certificate renewed in its Secret (cert-manager writes the mounted files) serves new
 * connections without a restart. TLS 1.3 only.
 */
import { createSecureContext, type SecureContextOptions } from "node:tls";
import { readFile } from "node:fs/promises";
import { ConfigError } from "../config/env";

export const TLS_MIN_VERSION = "TLSv1.3" as const;

export interface ServerTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface ServerCertificate {
  readonly cert: string;
  readonly key: string;
}

/** The options every TLS listener of the service uses (Fastify's `https`, the start-up gate). */
export function serverTlsOptions(certificate: ServerCertificate): SecureContextOptions & { minVersion: typeof TLS_MIN_VERSION } {
  return { cert: certificate.cert, key: certificate.key, minVersion: TLS_MIN_VERSION };
}

/** Reads and checks the pair (the key must match the certificate); a problem names the variable. */
export async function readServerCertificate(files: ServerTlsFiles): Promise<ServerCertificate> {
  const read = async (variable: string, file: string) => {
    try {
      return await readFile(file, "utf8");
    } catch (error) {
      throw new ConfigError(variable, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  };
  const certificate = { cert: await read("KNHK_TLS_CERT_FILE", files.certFile), key: await read("KNHK_TLS_KEY_FILE", files.keyFile) };
  try {
    createSecureContext(serverTlsOptions(certificate));
  } catch (error) {
    // OpenSSL's reason ("key values mismatch", "no start line"); never the file content.
    throw new ConfigError("KNHK_TLS_KEY_FILE", `not a usable certificate and key pair (${(error as Error).message})`);
  }
  return certificate;
}

export interface CertificateReloader {
  /** Re-reads now; resolves to whether a changed pair was installed. */
  check(): Promise<boolean>;
  stop(): void;
}

/**
 * Re-reads the files every `intervalMs`; a changed, valid pair replaces the server's context
 * (existing connections keep theirs). A missing or broken pair (a rewrite in progress) keeps the
 * last good one and is logged once per distinct problem.
 */
export function reloadCertificateEvery(
  server: { setSecureContext(options: SecureContextOptions): void },
  files: ServerTlsFiles,
  current: ServerCertificate,
  intervalMs: number,
  log: (level: "info" | "warn", message: string, extra?: Record<string, unknown>) => void,
): CertificateReloader {
  let installed = current;
  let lastProblem = "";
  const check = async () => {
    let next: ServerCertificate;
    try {
      next = await readServerCertificate(files);
    } catch (error) {
      const problem = (error as Error).message;
      if (problem !== lastProblem) log("warn", "TLS certificate not reloaded; keeping the current one", { reason: problem });
      lastProblem = problem;
      return false;
    }
    lastProblem = "";
    if (next.cert === installed.cert && next.key === installed.key) return false;
    server.setSecureContext(serverTlsOptions(next));
    installed = next;
    log("info", "TLS certificate reloaded", { certFile: files.certFile });
    return true;
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
