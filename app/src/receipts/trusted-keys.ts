/**
 * Public signing keys published outside the database, so verification need not trust the key
 * rows of the database it verifies: read from Vault transit, or from a JSON file exported from
 * it (`knhk receipts export-transit-keys > keys.json`, kept with the archive or in a repository).
 *
 *   {"format":"knhk.receipt-signing-keys/v1","source":"vault-transit:transit/knhk-receipts",
 *    "exported_at":"2026-12-02T10:00:00.000Z","keys":[{"key_version":1,"public_key":"<base64>"}]}
 */
import type { Keyring } from "./keyring";
import type { TransitKeyInfo, TransitSettings } from "./vault-transit";

export const TRUSTED_KEYS_FORMAT = "knhk.receipt-signing-keys/v1";

export class TrustedKeysError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TrustedKeysError";
  }
}

/** Where transit keys come from, as a keys file and failure details name it. */
export function transitSource(settings: Pick<TransitSettings, "mount" | "key">): string {
  return `vault-transit:${settings.mount}/${settings.key}`;
}

/** The keys file text (one JSON document, newline-terminated). */
export function exportTrustedKeys(info: TransitKeyInfo, source: string, now = new Date()): string {
  const keys = [...info.keys.entries()].sort(([a], [b]) => a - b).map(([key_version, public_key]) => ({ key_version, public_key }));
  return JSON.stringify({ format: TRUSTED_KEYS_FORMAT, source, exported_at: now.toISOString(), keys }, null, 2) + "\n";
}

const RAW_ED25519_B64 = /^[A-Za-z0-9+/]{43}=$/;
const FIELDS = new Set(["format", "source", "exported_at", "keys"]);

/** Parses a keys file strictly; errors name `file` and the field. */
export function parseTrustedKeys(text: string, file: string): { keys: Keyring; source: string } {
  const bad = (field: string, reason: string) => new TrustedKeysError(`${file}: ${field}: ${reason}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw bad("(file)", `not JSON (${(error as Error).message.slice(0, 120)})`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw bad("(file)", "must be a JSON object");
  const record = doc as Record<string, unknown>;
  const unknown = Object.keys(record).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) throw bad(JSON.stringify(unknown.slice(0, 40)), "unknown field");
  if (record.format !== TRUSTED_KEYS_FORMAT) throw bad("format", `must be ${JSON.stringify(TRUSTED_KEYS_FORMAT)}`);
  if (typeof record.source !== "string" || record.source.length === 0 || record.source.length > 300) throw bad("source", "must be a non-empty string");
  if (record.exported_at !== undefined && typeof record.exported_at !== "string") throw bad("exported_at", "must be a string");
  if (!Array.isArray(record.keys) || record.keys.length === 0) throw bad("keys", "must be a non-empty array");
  const keys = new Map<number, string>();
  record.keys.forEach((entry: unknown, i) => {
    const e = entry as Record<string, unknown>;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw bad(`keys[${i}]`, "must be an object");
    if (Object.keys(e).some((k) => k !== "key_version" && k !== "public_key")) throw bad(`keys[${i}]`, "only key_version and public_key are allowed");
    const version = e.key_version;
    if (typeof version !== "number" || !Number.isInteger(version) || version < 1 || version > 2_147_483_647) {
      throw bad(`keys[${i}].key_version`, "must be a positive integer");
    }
    if (typeof e.public_key !== "string" || !RAW_ED25519_B64.test(e.public_key)) throw bad(`keys[${i}].public_key`, "must be a raw 32-byte ed25519 key in base64");
    if (keys.has(version)) throw bad(`keys[${i}].key_version`, `version ${version} is listed twice`);
    keys.set(version, e.public_key);
  });
  return { keys, source: record.source };
}

/** Merges trusted sources; the same version with two different keys is an error naming both. */
export function mergeTrustedKeys(sources: ReadonlyArray<{ keys: Keyring; source: string }>): Keyring {
  const merged = new Map<number, { key: string; source: string }>();
  for (const { keys, source } of sources) {
    for (const [version, key] of keys) {
      const seen = merged.get(version);
      if (seen && seen.key !== key) throw new TrustedKeysError(`key_version ${version}: ${seen.source} and ${source} disagree on its public key`);
      merged.set(version, { key, source });
    }
  }
  return new Map([...merged].map(([version, { key }]) => [version, key]));
}
