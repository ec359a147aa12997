/**
 * The database URL file (DATABASE_URL_FILE): one postgres:// URL, rendered by Vault Agent from
 * the current dynamic credentials and rewritten in place on renewal. Reading it never throws and
 * no message repeats the file's content: it holds a password.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

export const DATABASE_URL_FILE_ENV = "DATABASE_URL_FILE";
/** A URL with a long password and CA path is a few hundred bytes; anything far larger is not one. */
export const MAX_URL_FILE_BYTES = 8192;
const SSL_MODES = ["disable", "prefer", "require", "verify-ca", "verify-full", "no-verify"];

export type UrlFileContent =
  | { readonly kind: "url"; readonly url: string }
  /** Missing or empty: the file is being rewritten (or not rendered yet). */
  | { readonly kind: "absent"; readonly why: "missing" | "empty" }
  | { readonly kind: "invalid"; readonly reason: string };

export type UrlFileRead = UrlFileContent & {
  /** sha256 of the raw content: tells one rewrite from the next without keeping the text. */
  readonly fingerprint: string;
};

const invalid = (reason: string): UrlFileContent => ({ kind: "invalid", reason });

/** Parses the file's text: one URL, optionally followed by a line break. */
export function parseDatabaseUrlText(text: string): UrlFileContent {
  if (text.length > MAX_URL_FILE_BYTES) return invalid(`is larger than ${MAX_URL_FILE_BYTES} bytes`);
  const value = text.trim();
  if (value === "") return { kind: "absent", why: "empty" };
  if (!/^postgres(ql)?:\/\//.test(value)) return invalid("is not a postgres:// or postgresql:// URL");
  if (/[\r\n]/.test(value)) return invalid("must hold one URL on one line");
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(value)) return invalid("contains whitespace or control characters");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return invalid("is not a valid URL");
  }
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    decodeURIComponent(url.pathname);
  } catch {
    return invalid("has a malformed percent-escape");
  }
  if (!url.hostname) return invalid("names no host");
  if (!url.username) return invalid("names no user");
  if (url.pathname.length <= 1) return invalid("names no database");
  const sslmode = url.searchParams.get("sslmode");
  if (sslmode !== null && !SSL_MODES.includes(sslmode)) return invalid(`sslmode must be one of ${SSL_MODES.join(", ")}`);
  return { kind: "url", url: value };
}

export function readDatabaseUrlFile(path: string): UrlFileRead {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const fingerprint = `error:${code ?? "unknown"}`;
    if (code === "ENOENT") return { kind: "absent", why: "missing", fingerprint };
    return { kind: "invalid", reason: `cannot be read (${code ?? (error as Error).message})`, fingerprint };
  }
  const fingerprint = createHash("sha256").update(raw).digest("hex");
  if (raw.length > MAX_URL_FILE_BYTES) return { kind: "invalid", reason: `is larger than ${MAX_URL_FILE_BYTES} bytes`, fingerprint };
  const text = raw.toString("utf8");
  if (text.includes("\ufffd")) return { kind: "invalid", reason: "is not UTF-8 text", fingerprint };
  return { ...parseDatabaseUrlText(text), fingerprint };
}

/** What a log line may say about a URL: never the password, never the query (CA path aside). */
export function describeDatabaseUrl(url: string): { user: string; host: string; database: string } {
  const parsed = new URL(url);
  return {
    user: decodeURIComponent(parsed.username),
    host: parsed.port ? `${parsed.hostname}:${parsed.port}` : parsed.hostname,
    database: decodeURIComponent(parsed.pathname.slice(1)),
  };
}

/** Removes the URL's password (raw and decoded) from a message, should a driver ever echo it. */
export function redactPassword(message: string, url: string): string {
  let password = "";
  try {
    password = new URL(url).password;
  } catch {
    return message;
  }
  if (!password) return message;
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // keep the raw form only
  }
  return message.split(password).join("***").split(decoded).join("***");
}
