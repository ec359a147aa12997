/**
 * Receipt signing keys. Private keys never touch the database: a signer is a Vault transit key
 * (KNHK_SIGNING_VAULT_ADDR + KNHK_SIGNING_TRANSIT_KEY, production: vault-transit.ts), or a PEM
 * (KNHK_SIGNING_KEY_FILE or KNHK_SIGNING_KEY_PEM) with its KNHK_SIGNING_KEY_VERSION, or, with no
 * key configured, a fresh ephemeral key registered as a new version (development only). Public
 * keys live in `receipt_signing_keys` forever, so receipts signed before a rotation stay verifiable.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { openDatabase } from "../db/open";
import type { Database, Sql } from "../db/types";
import { SigningKeyRegistrationError, SigningUnavailableError } from "./signing-errors";
import { SigningPool } from "./signing-pool";
import { createTransitSigner, TransitClient, TRANSIT_ENV, transitSettingsFromEnv, type TransitKeyStatus } from "./vault-transit";

export { loadKeyring, type Keyring } from "./keyring";
export { SigningKeyRegistrationError, SigningUnavailableError } from "./signing-errors";

export interface Signer {
  /** The version new receipts are signed with (a transit signer moves to a newly registered one). */
  readonly keyVersion: number;
  /** Raw 32-byte ed25519 public key of `keyVersion`, base64. */
  readonly publicKey: string;
  /** True for a key generated at start because none was configured. */
  readonly ephemeral: boolean;
  /**
   * ed25519 signatures (base64) over the 32 raw bytes of each hex hash, in order. `keyVersion`
   * (default: the current one) is the version the hashes were computed with: the signer signs
   * with exactly that version or throws. Large batches are spread over threads or requests.
   */
  signMany(hashes: string[], keyVersion?: number): Promise<string[]>;
  /**
   * ed25519 signature (base64) over `message` itself, with `keyVersion` (default: the current
   * one) or an error: what signed notes (the receipt log's checkpoints) need.
   */
  signMessage(message: Buffer, keyVersion?: number): Promise<string>;
  /** Stops the signing threads / timers (optional: they never keep the process alive). */
  close(): Promise<void>;
}

/** A signer holding its private key in this process. */
export interface LocalSigner extends Signer {
  /** ed25519 signature (base64) over the 32 raw bytes of the hex `hash`. */
  sign(hash: string): string;
}

/** Batches smaller than this are signed in the calling thread (a thread hop costs more). */
const PARALLEL_SIGNING_MIN = 16;

export const SIGNING_KEY_ENV = {
  file: "KNHK_SIGNING_KEY_FILE",
  pem: "KNHK_SIGNING_KEY_PEM",
  version: "KNHK_SIGNING_KEY_VERSION",
} as const;

export function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: "jwk" });
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") {
    throw new Error("signing key must be an ed25519 key");
  }
  return Buffer.from(jwk.x, "base64url").toString("base64");
}

export function publicKeyFromRaw(raw: string): KeyObject {
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw, "base64").toString("base64url") },
    format: "jwk",
  });
}

export function signerFromPrivateKey(
  privateKey: KeyObject,
  keyVersion: number,
  ephemeral = false,
  threads = availableParallelism(),
): LocalSigner {
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new Error(`signing key must be ed25519, got ${privateKey.asymmetricKeyType ?? privateKey.type}`);
  }
  if (!Number.isInteger(keyVersion) || keyVersion < 1) {
    throw new Error(`key version must be a positive integer, got ${keyVersion}`);
  }
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  const signOne = (hash: string) => sign(null, Buffer.from(hash, "hex"), privateKey).toString("base64");
  const pool = threads > 1 ? new SigningPool(privateKey, threads) : null;
  return {
    keyVersion,
    publicKey,
    ephemeral,
    sign: signOne,
    async signMany(hashes, version = keyVersion) {
      if (version !== keyVersion) throw new SigningUnavailableError(`asked to sign as key_version ${version}, but this key is version ${keyVersion}`);
      if (!pool || hashes.length < PARALLEL_SIGNING_MIN) return hashes.map(signOne);
      return pool.signMany(hashes);
    },
    async signMessage(message, version = keyVersion) {
      if (version !== keyVersion) throw new SigningUnavailableError(`asked to sign as key_version ${version}, but this key is version ${keyVersion}`);
      return sign(null, message, privateKey).toString("base64");
    },
    close: async () => pool?.close(),
  };
}

export function signerFromPem(pem: string, keyVersion: number): LocalSigner {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new Error(`signing key PEM is not a readable private key (${(error as Error).message})`);
  }
  return signerFromPrivateKey(key, keyVersion);
}

export function generateSigningKey(): { privateKey: KeyObject; pem: string } {
  const { privateKey } = generateKeyPairSync("ed25519");
  return { privateKey, pem: privateKey.export({ format: "pem", type: "pkcs8" }).toString() };
}

async function inTransaction<T>(db: Database, fn: (tx: Sql) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(hashtext('knhk.receipt_signing_keys'))");
    return fn(tx);
  });
}

/**
 * Roles trusted to register signing keys: the owner of receipt_signing_keys, its members, and
 * superusers (migration 0006). The service role is none of them. `$1` is a role name.
 */
export const TRUSTED_REGISTRAR_SQL =
  "SELECT coalesce((SELECT r.rolsuper OR pg_has_role(r.oid, c.relowner, 'USAGE') FROM pg_roles r, pg_class c " +
  "WHERE r.rolname = $1 AND c.oid = 'receipt_signing_keys'::regclass), false) AS trusted";

/** Whether the role this connection runs as may register signing keys. */
export async function mayRegisterKeys(db: Sql): Promise<{ role: string; trusted: boolean }> {
  const role = (await db.query<{ role: string }>("SELECT current_user::text AS role")).rows[0].role;
  const trusted = (await db.query<{ trusted: boolean }>(TRUSTED_REGISTRAR_SQL, [role])).rows[0].trusted;
  return { role, trusted };
}

const REGISTER_HINT =
  "register it as the database owner: `npm run knhk -- receipts register-key --version N --key-file <pem>` " +
  "with DATABASE_URL of the owner, or set DATABASE_MIGRATION_URL (the owner) so the service registers it through that identity";

/**
 * Records a configured key version. Registering version N retires every older active version
 * (rotation); re-registering the same key is a no-op; the same version with another key is refused.
 * Only a trusted registrar (owner, member, superuser) may insert; anyone may re-confirm a key
 * that is already registered.
 */
export async function registerSigningKey(db: Database, signer: Pick<Signer, "keyVersion" | "publicKey" | "ephemeral">): Promise<void> {
  await inTransaction(db, async (tx) => {
    const existing = await tx.query<{ public_key: string }>(
      "SELECT public_key FROM receipt_signing_keys WHERE key_version = $1",
      [signer.keyVersion],
    );
    if (existing.rows.length > 0) {
      if (existing.rows[0].public_key !== signer.publicKey) {
        throw new Error(
          `${SIGNING_KEY_ENV.version}=${signer.keyVersion}: that version is registered with a different public key; rotate by using a new version`,
        );
      }
      return;
    }
    const { role, trusted } = await mayRegisterKeys(tx);
    if (!trusted) {
      throw new SigningKeyRegistrationError(
        `receipts: signing key version ${signer.keyVersion} is not registered and role ${role} may not register signing keys; ${REGISTER_HINT}`,
      );
    }
    await tx.query(
      "INSERT INTO receipt_signing_keys (key_version, public_key, ephemeral) VALUES ($1, $2, $3)",
      [signer.keyVersion, signer.publicKey, signer.ephemeral],
    );
    if (!signer.ephemeral) {
      await tx.query(
        "UPDATE receipt_signing_keys SET retired_at = now() WHERE key_version < $1 AND retired_at IS NULL AND NOT ephemeral",
        [signer.keyVersion],
      );
    }
  });
}

/** Registers a fresh ephemeral key under the next free version and returns its signer. */
export async function registerEphemeralSigner(db: Database): Promise<Signer> {
  const { privateKey } = generateSigningKey();
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  const version = await inTransaction(db, async (tx) => {
    const { role, trusted } = await mayRegisterKeys(tx);
    if (!trusted) {
      throw new SigningKeyRegistrationError(
        `receipts: no ${SIGNING_KEY_ENV.file} configured, and role ${role} may not register an ephemeral signing key; ` +
          `configure ${SIGNING_KEY_ENV.file} and ${SIGNING_KEY_ENV.version} with a key the owner registered, or ${REGISTER_HINT}`,
      );
    }
    const next = await tx.query<{ v: number }>(
      "INSERT INTO receipt_signing_keys (key_version, public_key, ephemeral) SELECT coalesce(max(key_version), 0) + 1, $1, true FROM receipt_signing_keys RETURNING key_version AS v",
      [publicKey],
    );
    return Number(next.rows[0].v);
  });
  return signerFromPrivateKey(privateKey, version, true);
}

export interface LoadSignerOptions {
  readonly db: Database;
  readonly env: NodeJS.ProcessEnv;
  /** Where the "ephemeral key" and transit notices go; defaults to stderr. */
  readonly log?: (line: string) => void;
  /** After each transit key check: the signing version and how many newer versions are unregistered. */
  readonly onTransitStatus?: (status: TransitKeyStatus) => void;
  /**
   * The identity that registers keys (the owner). Default: `db` itself when it may register
   * (owner, embedded PGlite), else DATABASE_MIGRATION_URL when set, else none (an unregistered
   * key then refuses to start).
   */
  readonly registrar?: Database;
}

/** Runs fn with the identity that may register keys, opening DATABASE_MIGRATION_URL when needed. */
async function withRegistrar<T>(options: LoadSignerOptions, fn: (registrar: Database) => Promise<T>): Promise<T> {
  if (options.registrar) return fn(options.registrar);
  const ownerUrl = options.env.DATABASE_MIGRATION_URL;
  if (!ownerUrl || options.db.kind !== "postgres" || (await mayRegisterKeys(options.db)).trusted) return fn(options.db);
  const owner = await openDatabase({ url: ownerUrl, poolMax: 1, poolMin: 0 });
  try {
    return await fn(owner);
  } finally {
    await owner.close();
  }
}

/**
 * The process's signer from the environment:
 * - KNHK_SIGNING_VAULT_ADDR with KNHK_SIGNING_TRANSIT_KEY (and KNHK_SIGNING_TRANSIT_MOUNT,
 *   KNHK_SIGNING_VAULT_TOKEN_FILE, KNHK_SIGNING_VAULT_CA_FILE): Vault transit signs; the newest
 *   transit version the owner registered is used (never registered here: see vault-transit.ts);
 * - KNHK_SIGNING_KEY_FILE (path to a PKCS#8 PEM ed25519 private key) or KNHK_SIGNING_KEY_PEM
 *   (the PEM itself), with KNHK_SIGNING_KEY_VERSION (positive integer, required with a key);
 * - neither: an ephemeral key, registered as a new version (logged; not for production).
 * A key not yet registered is registered by the owner identity (see `registrar`); without one
 * this throws SigningKeyRegistrationError naming the fix.
 */
export async function loadSigner(options: LoadSignerOptions): Promise<Signer> {
  const { env } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const file = env[SIGNING_KEY_ENV.file];
  const inline = env[SIGNING_KEY_ENV.pem];
  const versionText = env[SIGNING_KEY_ENV.version];
  const transit = transitSettingsFromEnv(env);
  if (transit) {
    const local = [SIGNING_KEY_ENV.file, SIGNING_KEY_ENV.pem, SIGNING_KEY_ENV.version].filter((name) => env[name]);
    if (local.length) throw new Error(`${TRANSIT_ENV.addr} and ${local.join(", ")} are both set; sign either through Vault transit or with a key file, not both`);
    return createTransitSigner({ client: new TransitClient(transit), db: options.db, log, onStatus: options.onTransitStatus });
  }
  if (file && inline) {
    throw new Error(`${SIGNING_KEY_ENV.file} and ${SIGNING_KEY_ENV.pem} are both set; set only one`);
  }
  if (!file && !inline) {
    if (versionText) {
      throw new Error(`${SIGNING_KEY_ENV.version} is set but neither ${SIGNING_KEY_ENV.file} nor ${SIGNING_KEY_ENV.pem} is`);
    }
    const signer = await withRegistrar(options, (registrar) => registerEphemeralSigner(registrar));
    log(
      `receipts: no ${SIGNING_KEY_ENV.file} configured; signing with an ephemeral ed25519 key registered as key_version ${signer.keyVersion}`,
    );
    return signer;
  }
  if (!versionText || !/^[1-9][0-9]{0,8}$/.test(versionText)) {
    throw new Error(`${SIGNING_KEY_ENV.version} must be a positive integer, got ${versionText === undefined ? "nothing" : JSON.stringify(versionText)}`);
  }
  let pem: string;
  if (file) {
    try {
      pem = readFileSync(file, "utf8");
    } catch (error) {
      throw new Error(`${SIGNING_KEY_ENV.file}=${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  } else {
    pem = inline as string;
  }
  let signer: Signer;
  try {
    signer = signerFromPem(pem, Number(versionText));
  } catch (error) {
    throw new Error(`${file ? SIGNING_KEY_ENV.file : SIGNING_KEY_ENV.pem}: ${(error as Error).message}`);
  }
  try {
    await withRegistrar(options, (registrar) => registerSigningKey(registrar, signer));
  } catch (error) {
    await signer.close();
    throw error;
  }
  return signer;
}

export interface SigningKeyRecord {
  readonly key_version: number;
  readonly public_key: string;
  readonly ephemeral: boolean;
  readonly activated_at: string;
  readonly retired_at: string | null;
}

export async function listSigningKeys(db: Sql): Promise<SigningKeyRecord[]> {
  const result = await db.query<{ key_version: number; public_key: string; ephemeral: boolean; activated_at: Date; retired_at: Date | null }>(
    "SELECT key_version, public_key, ephemeral, activated_at, retired_at FROM receipt_signing_keys ORDER BY key_version",
  );
  return result.rows.map((r) => ({
    key_version: Number(r.key_version),
    public_key: r.public_key,
    ephemeral: r.ephemeral,
    activated_at: new Date(r.activated_at).toISOString(),
    retired_at: r.retired_at ? new Date(r.retired_at).toISOString() : null,
  }));
}
