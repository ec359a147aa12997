/**
 * Receipt signing through a Vault (or OpenBao) transit ed25519 key: the private key never leaves
 * Vault. One `POST /v1/<mount>/sign/<key>` with `batch_input` per group-commit batch (chunked
 * under Vault's JSON limits), input = the 32 raw bytes of the receipt hash, exactly what the local
 * signer signs, with `key_version` pinned; every answer is parsed strictly and each signature is
 * verified locally before the ledger stores it, so a wrong key or a malformed answer is a failed
 * write, never a stored receipt.
 *
 * Which version signs: the newest transit version that the owner registered in
 * receipt_signing_keys with the same public key (transit rotates on its own; a version nobody
 * registered must not sign, or verification against the registered keys would fail). Re-checked
 * periodically, so a version registered later is picked up without a restart.
 *
 * In production the address is the Vault Agent's API proxy on loopback, which adds the pod's
 * token; KNHK_SIGNING_VAULT_TOKEN_FILE is for use without the proxy.
 */
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Sql } from "../db/types";
import { loadKeyring, type Keyring } from "./keyring";
import type { Signer } from "./keys";
import { SigningKeyRegistrationError, SigningUnavailableError } from "./signing-errors";
import { VerifyPool } from "./verify-pool";

export const TRANSIT_ENV = {
  addr: "KNHK_SIGNING_VAULT_ADDR",
  mount: "KNHK_SIGNING_TRANSIT_MOUNT",
  key: "KNHK_SIGNING_TRANSIT_KEY",
  tokenFile: "KNHK_SIGNING_VAULT_TOKEN_FILE",
  caFile: "KNHK_SIGNING_VAULT_CA_FILE",
  timeoutMs: "KNHK_SIGNING_VAULT_TIMEOUT_MS",
  refreshSeconds: "KNHK_SIGNING_TRANSIT_REFRESH_SECONDS",
  startupWaitSeconds: "KNHK_SIGNING_VAULT_STARTUP_WAIT_SECONDS",
} as const;

/** Start-up waits for an unreachable Vault (the agent sidecar may start after the service container). */
export const TRANSIT_DEFAULTS = { mount: "transit", timeoutMs: 5000, refreshSeconds: 60, startupWaitSeconds: 30 } as const;

/**
 * Hashes per sign request. Vault and OpenBao refuse JSON bodies with more than 1000 strings by
 * default (each batch item is two); 256 is the ledger's default batch, so that is one request.
 */
export const TRANSIT_SIGN_CHUNK = 256;

/** Largest answer read from Vault (a 256-item sign answer is ~40 KB). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export interface TransitSettings {
  /** Base URL, e.g. http://127.0.0.1:8200 (no path). */
  readonly addr: string;
  readonly mount: string;
  readonly key: string;
  readonly tokenFile?: string;
  /** PEM text of the CA (read once at start). */
  readonly ca?: string;
  readonly caFile?: string;
  readonly timeoutMs: number;
  readonly refreshMs: number;
  /** How long start-up retries while Vault is unavailable (0: fail at once). */
  readonly startupWaitMs: number;
}

export class TransitConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`${variable}: ${reason}`);
    this.name = "TransitConfigError";
  }
}

const SEGMENT = /^[A-Za-z0-9_.-]{1,128}$/;

function pathName(variable: string, value: string, allowSlash: boolean): string {
  const segments = allowSlash ? value.split("/") : [value];
  if (value.length > 256 || !segments.every((s) => SEGMENT.test(s) && s !== "." && s !== "..")) {
    throw new TransitConfigError(
      variable,
      `must be ${allowSlash ? "a Vault mount path (segments" : "a Vault key name ("}of letters, digits, '_', '-', '.'), got ${JSON.stringify(value.slice(0, 80))}`,
    );
  }
  return value;
}

function integerIn(variable: string, value: string | undefined, min: number, max: number, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new TransitConfigError(variable, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value.slice(0, 40))}`);
  }
  return Number(value);
}

function readText(variable: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new TransitConfigError(variable, `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/**
 * The transit settings from the environment, or undefined when KNHK_SIGNING_VAULT_ADDR is unset
 * (and none of the other transit variables is set). Throws TransitConfigError naming the variable.
 */
export function transitSettingsFromEnv(env: NodeJS.ProcessEnv): TransitSettings | undefined {
  const addrText = env[TRANSIT_ENV.addr];
  if (addrText === undefined || addrText === "") {
    const stray = Object.values(TRANSIT_ENV).find((name) => name !== TRANSIT_ENV.addr && env[name] !== undefined && env[name] !== "");
    if (stray) throw new TransitConfigError(stray, `is set but ${TRANSIT_ENV.addr} is not (transit signing needs the Vault address)`);
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(addrText);
  } catch {
    throw new TransitConfigError(TRANSIT_ENV.addr, `must be an http(s) URL such as http://127.0.0.1:8200, got ${JSON.stringify(addrText.slice(0, 80))}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TransitConfigError(TRANSIT_ENV.addr, `must use http or https, got ${url.protocol.replace(/:$/, "")}`);
  }
  if (url.username || url.password) throw new TransitConfigError(TRANSIT_ENV.addr, "must not contain credentials (use the agent or KNHK_SIGNING_VAULT_TOKEN_FILE)");
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
    throw new TransitConfigError(TRANSIT_ENV.addr, "must be the server's base URL without a path, query or fragment (the /v1/ API path is added)");
  }
  const mount = pathName(TRANSIT_ENV.mount, env[TRANSIT_ENV.mount] || TRANSIT_DEFAULTS.mount, true);
  const keyText = env[TRANSIT_ENV.key];
  if (!keyText) throw new TransitConfigError(TRANSIT_ENV.key, `is required with ${TRANSIT_ENV.addr} (the transit key that signs receipts)`);
  const key = pathName(TRANSIT_ENV.key, keyText, false);
  const tokenFile = env[TRANSIT_ENV.tokenFile] || undefined;
  if (tokenFile) readToken(tokenFile);
  const caFile = env[TRANSIT_ENV.caFile] || undefined;
  let ca: string | undefined;
  if (caFile) {
    if (url.protocol !== "https:") throw new TransitConfigError(TRANSIT_ENV.caFile, `is set but ${TRANSIT_ENV.addr} is not https`);
    ca = readText(TRANSIT_ENV.caFile, caFile);
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new TransitConfigError(TRANSIT_ENV.caFile, `${caFile} holds no PEM certificate`);
  }
  return {
    addr: url.origin,
    mount,
    key,
    tokenFile,
    ca,
    caFile,
    timeoutMs: integerIn(TRANSIT_ENV.timeoutMs, env[TRANSIT_ENV.timeoutMs], 100, 120_000, TRANSIT_DEFAULTS.timeoutMs),
    refreshMs: integerIn(TRANSIT_ENV.refreshSeconds, env[TRANSIT_ENV.refreshSeconds], 1, 86_400, TRANSIT_DEFAULTS.refreshSeconds) * 1000,
    startupWaitMs: integerIn(TRANSIT_ENV.startupWaitSeconds, env[TRANSIT_ENV.startupWaitSeconds], 0, 600, TRANSIT_DEFAULTS.startupWaitSeconds) * 1000,
  };
}

/** The token in the file, read per request (the agent or an operator may replace it). */
function readToken(path: string): string {
  const token = readText(TRANSIT_ENV.tokenFile, path).trim();
  if (!token) throw new TransitConfigError(TRANSIT_ENV.tokenFile, `${path} is empty`);
  if (!/^[\x21-\x7e]{1,4096}$/.test(token)) throw new TransitConfigError(TRANSIT_ENV.tokenFile, `${path} does not hold a token (one line of printable characters)`);
  return token;
}

/** The public side of a transit key, as Vault reports it. */
export interface TransitKeyInfo {
  readonly latestVersion: number;
  /** Versions below this may not sign (0: any). */
  readonly minEncryptionVersion: number;
  /** version -> raw ed25519 public key (base64). */
  readonly keys: Keyring;
}

const RAW_ED25519_B64 = /^[A-Za-z0-9+/]{43}=$/;
const SIGNATURE = /^vault:v([1-9][0-9]{0,9}):([A-Za-z0-9+/]{86}==)$/;
const VERSION_KEY = /^[1-9][0-9]{0,9}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isVersion(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Parses `GET <mount>/keys/<key>`'s body strictly; `what` names the key in errors. */
export function parseTransitKey(body: unknown, what: string): TransitKeyInfo {
  const bad = (reason: string) => new SigningUnavailableError(`Vault transit key ${what}: unexpected answer (${reason})`);
  const data = isObject(body) ? body.data : undefined;
  if (!isObject(data)) throw bad("no data object");
  if (data.type !== "ed25519") throw bad(`type is ${JSON.stringify(data.type)}, receipts need ed25519`);
  if (!isVersion(data.latest_version) || data.latest_version < 1) throw bad("latest_version is not a positive integer");
  const minEncryption = data.min_encryption_version ?? 0;
  if (!isVersion(minEncryption)) throw bad("min_encryption_version is not an integer");
  if (!isObject(data.keys)) throw bad("no keys object");
  const keys = new Map<number, string>();
  for (const [version, entry] of Object.entries(data.keys)) {
    if (!VERSION_KEY.test(version) || Number(version) > data.latest_version) throw bad(`key version ${JSON.stringify(version.slice(0, 20))}`);
    const publicKey = isObject(entry) ? entry.public_key : undefined;
    if (typeof publicKey !== "string" || !RAW_ED25519_B64.test(publicKey)) throw bad(`version ${version} has no raw ed25519 public_key`);
    keys.set(Number(version), publicKey);
  }
  if (!keys.has(data.latest_version)) throw bad(`latest_version ${data.latest_version} is not among its keys`);
  return { latestVersion: data.latest_version, minEncryptionVersion: minEncryption, keys };
}

/**
 * Parses a sign answer for `count` inputs signed as `version`: raw signatures (base64) in order.
 * Anything else (an item error, a missing or extra item, another version, a malformed
 * signature) throws: a receipt is stored with a signature Vault really made, or not at all.
 */
export function parseSignAnswer(body: unknown, count: number, version: number): string[] {
  const bad = (reason: string) => new SigningUnavailableError(`Vault transit sign: unexpected answer (${reason})`);
  const results = isObject(body) && isObject(body.data) ? body.data.batch_results : undefined;
  if (!Array.isArray(results)) throw bad("no data.batch_results array");
  if (results.length !== count) throw bad(`${results.length} results for ${count} inputs`);
  return results.map((result, i) => {
    if (!isObject(result)) throw bad(`item ${i} is not an object`);
    if (typeof result.error === "string" && result.error !== "") throw bad(`item ${i}: ${printable(result.error)}`);
    if (result.key_version !== undefined && result.key_version !== version) throw bad(`item ${i} signed with key_version ${printable(String(result.key_version))}, not ${version}`);
    const match = typeof result.signature === "string" ? SIGNATURE.exec(result.signature) : null;
    if (!match) throw bad(`item ${i} has no signature of the form vault:v<N>:<base64 ed25519 signature>`);
    if (Number(match[1]) !== version) throw bad(`item ${i} signed with version ${match[1]}, not ${version}`);
    return match[2];
  });
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
}

/** Vault's error list from a failed answer, shortened and made printable. */
function vaultErrors(body: unknown): string {
  const errors = isObject(body) && Array.isArray(body.errors) ? body.errors.filter((e): e is string => typeof e === "string") : [];
  return errors.length ? `: ${printable(errors.join("; "))}` : "";
}

/** The HTTP side of transit: key reads and batched signing. */
export class TransitClient {
  private readonly agent: HttpAgent;
  readonly description: string;

  constructor(readonly settings: TransitSettings) {
    const https = settings.addr.startsWith("https:");
    this.agent = https ? new HttpsAgent({ keepAlive: true, maxSockets: 16, ca: settings.ca }) : new HttpAgent({ keepAlive: true, maxSockets: 16 });
    this.description = `${settings.mount}/keys/${settings.key} at ${settings.addr}`;
  }

  async readKey(): Promise<TransitKeyInfo> {
    const { status, body } = await this.call("GET", `${this.settings.mount}/keys/${this.settings.key}`);
    if (status !== 200) throw this.failed(`reading transit key ${this.settings.mount}/${this.settings.key}`, status, body);
    return parseTransitKey(body, `${this.settings.mount}/${this.settings.key}`);
  }

  /** Signatures (raw base64) of the hex hashes with `version`, in order; one request per chunk. */
  /** Signatures over the raw bytes of each hex hash. */
  async sign(version: number, hashes: readonly string[]): Promise<string[]> {
    return this.signInputs(version, hashes.map((hash) => Buffer.from(hash, "hex")));
  }

  /** Signatures over each message's bytes. */
  async signInputs(version: number, messages: readonly Buffer[]): Promise<string[]> {
    const chunks: Promise<string[]>[] = [];
    for (let from = 0; from < messages.length; from += TRANSIT_SIGN_CHUNK) {
      chunks.push(this.signChunk(version, messages.slice(from, from + TRANSIT_SIGN_CHUNK)));
    }
    return (await Promise.all(chunks)).flat();
  }

  private async signChunk(version: number, messages: readonly Buffer[]): Promise<string[]> {
    const batch = messages.map((message) => ({ input: message.toString("base64") }));
    const { status, body } = await this.call("POST", `${this.settings.mount}/sign/${this.settings.key}`, { batch_input: batch, key_version: version });
    if (status !== 200) throw this.failed(`signing with transit key ${this.settings.mount}/${this.settings.key} version ${version}`, status, body);
    return parseSignAnswer(body, messages.length, version);
  }

  close(): void {
    this.agent.destroy();
  }

  private failed(what: string, status: number, body: unknown): SigningUnavailableError {
    const hint = status === 403 ? " (the token's policy does not allow it)" : status === 503 ? " (Vault is sealed or not active)" : "";
    return new SigningUnavailableError(`${what}: Vault at ${this.settings.addr} answered HTTP ${status}${hint}${vaultErrors(body)}`);
  }

  private call(method: "GET" | "POST", path: string, payload?: unknown): Promise<{ status: number; body: unknown }> {
    const { addr, timeoutMs, tokenFile } = this.settings;
    const url = new URL(`/v1/${path}`, addr);
    const headers: Record<string, string> = { accept: "application/json" };
    if (tokenFile) headers["x-vault-token"] = readToken(tokenFile);
    const text = payload === undefined ? undefined : JSON.stringify(payload);
    if (text !== undefined) headers["content-type"] = "application/json";
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outcome();
      };
      const fail = (reason: string) => settle(() => reject(new SigningUnavailableError(`${method} ${url.pathname}: Vault at ${addr} ${reason}`)));
      const req = send(url, { method, headers, agent: this.agent, ca: this.settings.ca }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            fail(`sent more than ${MAX_RESPONSE_BYTES} bytes`);
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", (error) => fail(`broke off the answer (${error.message})`));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const raw = Buffer.concat(chunks).toString("utf8");
          let body: unknown = null;
          try {
            body = raw === "" ? null : JSON.parse(raw);
          } catch {
            if (status === 200) return fail("answered with a body that is not JSON");
          }
          settle(() => resolve({ status, body }));
        });
      });
      const timer = setTimeout(() => {
        fail(`did not answer within ${timeoutMs} ms`);
        req.destroy();
      }, timeoutMs);
      req.on("error", (error: NodeJS.ErrnoException) => fail(`is unreachable (${error.code ?? error.message})`));
      req.end(text);
    });
  }
}

/** What the version choice found: the version that signs, and the transit versions nobody registered. */
export interface SigningChoice {
  /** The newest transit version registered with the same public key (undefined: none). */
  readonly version: number | undefined;
  readonly publicKey: string | undefined;
  /** Transit versions newer than `version` that are not registered (they do not sign yet). */
  readonly unregistered: readonly number[];
  /** Versions registered with a different public key than transit's (never used). */
  readonly conflicting: readonly number[];
  /** Every transit version whose registered key matches: the versions this signer may sign with. */
  readonly usable: Keyring;
}

/** Pure: the version that should sign, from transit's keys and the registered keys. */
export function chooseSigningVersion(transit: TransitKeyInfo, registered: Keyring): SigningChoice {
  const usable = new Map<number, string>();
  const conflicting: number[] = [];
  for (const [version, publicKey] of transit.keys) {
    const stored = registered.get(version);
    if (stored === undefined) continue;
    if (stored !== publicKey) conflicting.push(version);
    else if (version >= transit.minEncryptionVersion) usable.set(version, publicKey);
  }
  const version = usable.size ? Math.max(...usable.keys()) : undefined;
  const unregistered = [...transit.keys.keys()].filter((v) => !registered.has(v) && (version === undefined || v > version)).sort((a, b) => a - b);
  return { version, publicKey: version === undefined ? undefined : usable.get(version), unregistered, conflicting: conflicting.sort((a, b) => a - b), usable };
}

/** What a transit signer reports after each check (for a gauge or a log). */
export interface TransitKeyStatus {
  readonly signingVersion: number;
  readonly latestVersion: number;
  readonly unregisteredVersions: number;
}

export interface TransitSignerOptions {
  readonly client: TransitClient;
  /** Where receipt_signing_keys is read (the service's own connection is enough: SELECT). */
  readonly db: Sql;
  readonly log: (line: string) => void;
  /** Re-check interval; default the client's settings (KNHK_SIGNING_TRANSIT_REFRESH_SECONDS). */
  readonly refreshMs?: number;
  readonly onStatus?: (status: TransitKeyStatus) => void;
  /** Threads verifying Vault's signatures of large batches; default one per core. */
  readonly threads?: number;
}

export interface TransitSigner extends Signer {
  /** Re-reads transit and receipt_signing_keys now and switches to the newest registered version. */
  refresh(): Promise<SigningChoice>;
}

export const REGISTER_TRANSIT_COMMAND = "npm run knhk -- receipts register-transit-keys";

function registerHint(client: TransitClient): string {
  return (
    `register them as the database owner: \`${REGISTER_TRANSIT_COMMAND}\` with DATABASE_URL of the owner and the same ` +
    `${TRANSIT_ENV.addr}/${TRANSIT_ENV.key} (key ${client.settings.mount}/${client.settings.key})`
  );
}

/** A signer over a transit key; fails (naming the fix) when no transit version is registered. */
export async function createTransitSigner(options: TransitSignerOptions): Promise<TransitSigner> {
  const { client, db, log } = options;
  const refreshMs = options.refreshMs ?? client.settings.refreshMs;
  const verifiers = new Map<number, KeyObject>();
  const pool = new VerifyPool(options.threads ?? availableParallelism());
  let current: { version: number; publicKey: string } | undefined;
  let lastNotice = "";
  let timer: NodeJS.Timeout | undefined;

  const notice = (line: string) => {
    if (line !== lastNotice) log(line);
    lastNotice = line;
  };

  async function refresh(): Promise<SigningChoice> {
    const transit = await client.readKey();
    const choice = chooseSigningVersion(transit, await loadKeyring(db));
    if (choice.version === undefined || choice.publicKey === undefined) {
      const conflicts = choice.conflicting.length ? `; versions ${choice.conflicting.join(", ")} are registered with other public keys` : "";
      throw new SigningKeyRegistrationError(
        `receipts: no version of Vault transit key ${client.settings.mount}/${client.settings.key} (versions ${[...transit.keys.keys()].join(", ")}) ` +
          `is registered in receipt_signing_keys${conflicts}; ${registerHint(client)}`,
      );
    }
    for (const [version, publicKey] of choice.usable) {
      if (!verifiers.has(version)) {
        verifiers.set(version, createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey, "base64").toString("base64url") }, format: "jwk" }));
      }
    }
    const previous = current?.version;
    current = { version: choice.version, publicKey: choice.publicKey };
    const notes: string[] = [];
    if (previous !== undefined && previous !== choice.version) notes.push(`now signing with version ${choice.version} (was ${previous})`);
    if (choice.unregistered.length) {
      notes.push(`transit has versions ${choice.unregistered.join(", ")} not registered in receipt_signing_keys; signing with version ${choice.version} until they are (${registerHint(client)})`);
    }
    if (choice.conflicting.length) notes.push(`versions ${choice.conflicting.join(", ")} are registered with other public keys than transit's and never sign`);
    notice(notes.length ? `receipts: transit key ${client.settings.mount}/${client.settings.key}: ${notes.join("; ")}` : "");
    options.onStatus?.({ signingVersion: choice.version, latestVersion: transit.latestVersion, unregisteredVersions: choice.unregistered.length });
    return choice;
  }

  try {
    await firstRefresh(refresh, client, log);
  } catch (error) {
    await pool.close();
    throw error;
  }
  timer = setInterval(() => {
    refresh().catch((error: Error) => notice(`receipts: re-checking transit key ${client.description} failed, still signing with version ${current?.version}: ${error.message}`));
  }, refreshMs);
  timer.unref();

  return {
    get keyVersion() {
      return (current as { version: number }).version;
    },
    get publicKey() {
      return (current as { publicKey: string }).publicKey;
    },
    ephemeral: false,
    refresh,
    async signMany(hashes, keyVersion = (current as { version: number }).version) {
      if (hashes.length === 0) return [];
      const key = verifiers.get(keyVersion);
      if (!key) throw new SigningUnavailableError(`key_version ${keyVersion} is not a registered version of transit key ${client.settings.mount}/${client.settings.key}`);
      const signatures = await client.sign(keyVersion, hashes);
      const bad = await pool.firstInvalid(key, hashes, signatures);
      if (bad >= 0) {
        throw new SigningUnavailableError(
          `Vault transit sign: the signature of item ${bad} does not verify with the registered public key of version ${keyVersion}; nothing was stored`,
        );
      }
      return signatures;
    },
    async signMessage(message, keyVersion = (current as { version: number }).version) {
      const key = verifiers.get(keyVersion);
      if (!key) throw new SigningUnavailableError(`key_version ${keyVersion} is not a registered version of transit key ${client.settings.mount}/${client.settings.key}`);
      const [signature] = await client.signInputs(keyVersion, [message]);
      if (!verify(null, message, key, Buffer.from(signature, "base64"))) {
        throw new SigningUnavailableError(`Vault transit sign: the signature does not verify with the registered public key of version ${keyVersion}`);
      }
      return signature;
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      client.close();
      await pool.close();
    },
  };
}

/** The first check, retried while Vault is unavailable for up to the start-up wait; other failures are final. */
async function firstRefresh(refresh: () => Promise<SigningChoice>, client: TransitClient, log: (line: string) => void): Promise<void> {
  const deadline = Date.now() + client.settings.startupWaitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await refresh();
      return;
    } catch (error) {
      if (!(error instanceof SigningUnavailableError) || Date.now() >= deadline) {
        client.close();
        throw error;
      }
      if (attempt === 0) log(`receipts: waiting up to ${client.settings.startupWaitMs / 1000} s for Vault transit (${error.message})`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** attempt, Math.max(0, deadline - Date.now()))));
    }
  }
}

/** The public keys of a transit key, for registration and as a trusted source for verification. */
export async function readTransitKeys(settings: TransitSettings): Promise<TransitKeyInfo> {
  const client = new TransitClient(settings);
  try {
    return await client.readKey();
  } finally {
    client.close();
  }
}
