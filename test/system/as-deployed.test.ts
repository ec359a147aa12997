/**
 * The service exactly as the prod render configures it, on real servers:
 *
 * - PostgreSQL 15 with the rendered pg_hba and TLS settings (TLS 1.3 only, SCRAM, no trust), and the
 *   rendered post-bootstrap script run as the superuser over the local socket, as Patroni runs it;
 * - OpenBao (the open-source Vault) configured from the rendered Vault resources: the database
 *   connection as `vault_admin` verifying PostgreSQL with the cluster CA, the dynamic and static
 *   roles with their rendered statements, the transit key, and the rendered policies;
 * - `bao agent` rendering the pods' files from the rendered annotation templates (the migration
 *   Job's owner URL, the service's database URL) with tokens that hold only the rendered policies,
 *   and serving the service's transit proxy;
 * - an OIDC issuer configured through stack config (`knhk:app.oidc`) over https;
 * - the service started with the rendered ConfigMap and container environment, as a process.
 *
 * What differs from a pod is only where things are: files under the rendered mount paths live in a
 * temporary directory (the same remapping the kubelet's mounts do), the primary's rendered port
 * 5432 is this test's port, and the rendered host name resolves to loopback (a --require shim; the
 * TLS check still verifies that name against the certificate).
 */
import { execFile } from "node:child_process";
import { chownSync, chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";
import * as YAML from "yaml";
import { ROLE_PERMISSIONS, ROLES, type Permission } from "../../app/src/auth/roles";
import { APP, APP_FILES, PORTS, POSTGRES } from "../../infra/render/topology";
import { VAULT_NAMES } from "../../infra/components/vault-access";
import { migrationCommand, migrationSteps } from "../../infra/render/schema-migration";
import { VAULT_MAX_OPEN_CONNECTIONS, VAULT_PASSWORD_AUTHENTICATION, vaultConnectionUrl } from "../../infra/render/vault-database";
import type { K8sObject, RenderedResource, RenderResult } from "../../infra/testing/render";
import { startOidc, type TestOidc } from "../app/shell/oidc";
import { openbaoBinary, startOpenBao, type TestOpenBao } from "../support/openbao";
import { requestText } from "../support/https-client";
import { freePort } from "../support/ports";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { spawnTracked, type TrackedProcess } from "../support/processes";
import { renderTestStack } from "../support/stack-identifiers";
import { writeLoopbackResolver } from "../support/loopback-resolver";
import { makeTestPki, type TestPki } from "../support/tls";

const run = promisify(execFile);
jest.setTimeout(900_000);

const REPO = join(__dirname, "..", "..");
const TSX = join(REPO, "node_modules", ".bin", "tsx");

let root: string;
let pki: TestPki;
let oidc: TestOidc;
let render: RenderResult;
let pg: TestPostgres;
let bao: TestOpenBao;
const stoppers: (() => Promise<void>)[] = [];

// ---- reading the render ----------------------------------------------------------------------

function object(kind: string, name: string): K8sObject {
  const found = render.k8sObjects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`the prod render has no ${kind} ${name}`);
  return found;
}

function resourcesOf(type: string): RenderedResource[] {
  return render.resources.filter((r) => r.type === type);
}

function only(type: string, predicate: (r: RenderedResource) => boolean = () => true): Record<string, any> {
  const found = resourcesOf(type).filter(predicate);
  if (found.length !== 1) throw new Error(`expected one ${type}, the prod render has ${found.length}`);
  return found[0].inputs;
}

type Pod = { metadata: { annotations: Record<string, string> }; spec: { containers: Container[]; volumes: any[] } };
type Container = { name: string; command: string[]; env?: { name: string; value?: string }[]; envFrom?: unknown[]; volumeMounts?: { name: string; mountPath: string }[] };

function podTemplate(kind: "Deployment" | "Job", name: string | RegExp): Pod {
  const found = render.k8sObjects.find((o) => o.kind === kind && (typeof name === "string" ? o.metadata.name === name : name.test(o.metadata.name)));
  if (!found) throw new Error(`the prod render has no ${kind} ${name}`);
  return (found as any).spec.template as Pod;
}

function envOf(container: Container): Record<string, string> {
  return Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? ""]));
}

/** Vault Agent's rendered files of a pod: mount path -> template text. */
function agentTemplates(pod: Pod): Record<string, string> {
  const prefix = "vault.hashicorp.com/agent-inject-template-";
  return Object.fromEntries(
    Object.entries(pod.metadata.annotations)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [`/vault/secrets/${k.slice(prefix.length)}`, v]),
  );
}

// ---- the pod's view: mounts remapped to this test's directory ----------------------------------

/** Pod path -> test path, for the files the kubelet or Vault Agent would put there. */
const mounts = new Map<string, string>();

function podFile(podPath: string): string {
  const local = mounts.get(podPath);
  if (!local) throw new Error(`no test file stands for the pod path ${podPath}`);
  return local;
}

/** Replaces every mapped pod path, and the rendered primary address, in a rendered text. */
function remap(text: string): string {
  let out = text;
  for (const [pod, local] of mounts) {
    out = out.split(pod).join(local).split(encodeURIComponent(pod)).join(encodeURIComponent(local));
  }
  return out.split(`${primaryHost()}:${PORTS.postgres}`).join(`${primaryHost()}:${pg.port}`);
}

function primaryHost(): string {
  return `${POSTGRES.primaryService}.${render.k8sObjects.find((o) => o.kind === "Namespace")?.metadata.name}.svc.cluster.local`;
}

// ---- Vault, configured from the render -------------------------------------------------------

interface VaultSetup {
  readonly databaseMount: string;
  readonly transitMount: string;
  readonly serviceToken: string;
  readonly migrationToken: string;
}

async function configureVault(): Promise<VaultSetup> {
  const mountsByType = new Map(resourcesOf("vault:index/mount:Mount").map((m) => [m.inputs.type as string, m.inputs.path as string]));
  const databaseMount = mountsByType.get("database") as string;
  const transitMount = mountsByType.get("transit") as string;
  await bao.enableMount(databaseMount, "database");
  await bao.enableMount(transitMount, "transit");

  const connection = only("vault:database/secretBackendConnection:SecretBackendConnection");
  // The connection's settings are one secret input in the render (they carry the password), so they
  // come from the pure function the component sends; the rest is read from the render.
  expect(connection.postgresql).toBe("[secret]");
  // Vault reaches the primary by its rendered name; the test's PostgreSQL answers on loopback, and
  // its certificate carries 127.0.0.1 too, so Vault still verifies it in full.
  const connectionUrl = vaultConnectionUrl({ host: "127.0.0.1", port: pg.port, name: POSTGRES.database });
  const settings = {
    plugin_name: "postgresql-database-plugin",
    username: POSTGRES.vaultAdminDbUser,
    password: VAULT_ADMIN_PASSWORD,
    allowed_roles: connection.allowedRoles,
    verify_connection: connection.verifyConnection,
    max_open_connections: VAULT_MAX_OPEN_CONNECTIONS,
    password_authentication: VAULT_PASSWORD_AUTHENTICATION,
    root_rotation_statements: connection.rootRotationStatements,
  };
  // The CA Vault verifies PostgreSQL with: the one the stack reads from the TLS Secret (`tls_ca`).
  const configured = await bao.request("POST", `${databaseMount}/config/${connection.name}`, { ...settings, connection_url: connectionUrl, tls_ca: pki.caPem }, bao.rootToken);
  if (configured.status >= 400) {
    // An OpenBao without `tls_ca`: the same CA as a file on the server (libpq's sslrootcert).
    connectionFallback = `tls_ca refused (${JSON.stringify(configured.body).slice(0, 200)}); CA given as sslrootcert`;
    await bao.root("POST", `${databaseMount}/config/${connection.name}`, { ...settings, connection_url: `${connectionUrl}&sslrootcert=${encodeURIComponent(pki.caFile)}` });
  }

  const dynamic = only("vault:database/secretBackendRole:SecretBackendRole", (r) => r.inputs.name === VAULT_NAMES.databaseRole);
  await bao.root("POST", `${databaseMount}/roles/${dynamic.name}`, {
    db_name: connection.name,
    creation_statements: dynamic.creationStatements,
    revocation_statements: dynamic.revocationStatements,
    default_ttl: dynamic.defaultTtl,
    max_ttl: dynamic.maxTtl,
  });
  const ownerRole = only("vault:database/secretBackendStaticRole:SecretBackendStaticRole");
  await bao.root("POST", `${databaseMount}/static-roles/${ownerRole.name}`, {
    db_name: connection.name,
    username: ownerRole.username,
    rotation_period: ownerRole.rotationPeriod,
  });
  const key = only("vault:transit/secretBackendKey:SecretBackendKey");
  await bao.root("POST", `${transitMount}/keys/${key.name}`, { type: key.type, exportable: key.exportable, allow_plaintext_backup: key.allowPlaintextBackup });

  const policies = new Map(resourcesOf("vault:index/policy:Policy").map((p) => [p.inputs.name as string, p.inputs.policy as string]));
  for (const [name, hcl] of policies) await bao.writePolicy(name, hcl);
  const authRoles = new Map(resourcesOf("vault:kubernetes/authBackendRole:AuthBackendRole").map((r) => [r.inputs.roleName as string, r.inputs]));
  const serviceAuth = authRoles.get(podTemplate("Deployment", APP.deployment("blue")).metadata.annotations["vault.hashicorp.com/role"]);
  const migrationAuth = authRoles.get(podTemplate("Job", /^knhk-migrate-/).metadata.annotations["vault.hashicorp.com/role"]);
  if (!serviceAuth || !migrationAuth) throw new Error("the pods' Vault roles are not rendered auth roles");
  // A token with exactly the auth role's policies stands for the Kubernetes login.
  const policyNames = (auth: Record<string, any>) => (auth.tokenPolicies as string[]).map((p) => (p === "[resource]" ? "" : p));
  return {
    databaseMount,
    transitMount,
    serviceToken: await bao.createToken(policyNames(serviceAuth).filter(Boolean).length ? policyNames(serviceAuth) : ["knhk-service"]),
    migrationToken: await bao.createToken(policyNames(migrationAuth).filter(Boolean).length ? policyNames(migrationAuth) : ["knhk-migration"]),
  };
}

// ---- Vault Agent ------------------------------------------------------------------------------

/** `bao agent` with token auto-auth, rendering `templates` (test path -> text); optionally the API proxy. */
async function startAgent(name: string, token: string, templates: Record<string, string>, options: { once?: boolean; proxyPort?: number } = {}): Promise<TrackedProcess> {
  const dir = join(root, `agent-${name}`);
  mkdirSync(dir, { recursive: true });
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, token, { mode: 0o600 });
  const templateBlocks = Object.entries(templates).map(([destination, contents]) => {
    const source = join(dir, `${basename(destination)}.tpl`);
    writeFileSync(source, contents);
    return `template {\n  source = "${source}"\n  destination = "${destination}"\n  perms = "0600"\n  error_on_missing_key = true\n}`;
  });
  const config = [
    `vault {\n  address = "${bao.addr}"\n}`,
    `auto_auth {\n  method "token_file" {\n    config = {\n      token_file_path = "${tokenFile}"\n    }\n  }\n}`,
    options.once ? "exit_after_auth = true" : "",
    `template_config {\n  exit_on_retry_failure = true\n}`,
    ...templateBlocks,
    options.proxyPort ? `api_proxy {\n  use_auto_auth_token = "force"\n}\nlistener "tcp" {\n  address = "127.0.0.1:${options.proxyPort}"\n  tls_disable = true\n}` : "",
  ].join("\n");
  writeFileSync(join(dir, "agent.hcl"), config);
  const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: dir };
  const agent = spawnTracked(openbaoBinary(), ["agent", `-config=${join(dir, "agent.hcl")}`], { stdio: ["ignore", "pipe", "pipe"], env });
  let output = "";
  agent.child.stdout?.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  agent.child.stderr?.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  stoppers.push(() => agent.stop("SIGTERM", 5000));
  await until(`agent ${name} rendered ${Object.keys(templates).join(", ")}`, async () => Object.keys(templates).every((f) => existsSync(f) && statSync(f).size > 0), 60_000, () => output);
  return agent;
}

// ---- the service as a process -----------------------------------------------------------------

interface RunningService {
  readonly process: TrackedProcess;
  readonly port: number;
  readonly metricsPort: number;
  output(): string;
  api(path: string, init?: { method?: string; token?: string; json?: unknown }): Promise<{ status: number; body: any }>;
}

async function startServiceAsRendered(signingProxyPort: number): Promise<RunningService> {
  const deployment = podTemplate("Deployment", APP.deployment("blue"));
  const container = deployment.spec.containers.find((c) => c.name === "knhk") as Container;
  const configMap = object("ConfigMap", APP.configMap) as unknown as { data: Record<string, string> };
  const [port, metricsPort] = [await freePort(), await freePort()];
  // The pods serve the API over HTTPS from the mounted Secret, and the kubelet probes with HTTPS.
  const tlsVolume = (deployment.spec.volumes as { name: string; secret?: { secretName: string } }[]).find((v) => v.name === "api-tls");
  expect(tlsVolume?.secret?.secretName).toBe("knhk-tls");
  expect(container.volumeMounts).toContainEqual(expect.objectContaining({ name: "api-tls", mountPath: dirname(APP_FILES.tlsCert) }));
  expect((container as unknown as { readinessProbe: { httpGet: { scheme: string } } }).readinessProbe.httpGet.scheme).toBe("HTTPS");
  const rendered = { ...configMap.data, ...envOf(container) };
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: root,
    ...Object.fromEntries(Object.entries(rendered).map(([k, v]) => [k, remap(v)])),
    // Loopback and free ports instead of the pod's 0.0.0.0:8080/9090.
    KNHK_HOST: "127.0.0.1",
    KNHK_PORT: String(port),
    KNHK_METRICS_PORT: String(metricsPort),
    // The agent's proxy listens on the pod's 127.0.0.1:8200; here on a free port.
    KNHK_SIGNING_VAULT_ADDR: rendered.KNHK_SIGNING_VAULT_ADDR.replace(/:\d+$/, `:${signingProxyPort}`),
    // The IdP's certificate is issued by this test's CA (a pod trusts the public CA of its IdP).
    NODE_EXTRA_CA_CERTS: pki.caFile,
    NODE_OPTIONS: `--require ${join(root, "resolve-primary.js")}`,
    KNHK_MAPE_K_INTERVAL_SECONDS: "0",
  };
  // No Redis in this test: the service reports it degraded and uses its in-process fallbacks.
  delete env.REDIS_SENTINELS;
  delete env.REDIS_SENTINEL_MASTER;
  expect(env.DATABASE_URL).toBeUndefined();
  const proc = spawnTracked(TSX, [join(REPO, "app", "src", "main.ts")], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.child.stdout?.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-50_000)));
  proc.child.stderr?.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-50_000)));
  stoppers.push(() => proc.stop("SIGTERM", 15_000));
  const api = async (path: string, init: { method?: string; token?: string; json?: unknown } = {}) => {
    const response = await requestText(`https://127.0.0.1:${port}${path}`, {
      method: init.method ?? "GET",
      headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.method === "POST" ? { "content-type": "application/json" } : {}) },
      body: init.method === "POST" ? JSON.stringify(init.json ?? {}) : undefined,
      ca: pki.caPem,
    });
    const text = response.text;
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: response.status, body };
  };
  await until("the service answers /health", async () => {
    if (proc.child.exitCode !== null) throw new Error(`the service exited with ${proc.child.exitCode}:\n${output.slice(-4000)}`);
    return (await api("/health").catch(() => ({ status: 0 }))).status === 200;
  }, 120_000, () => output);
  return { process: proc, port, metricsPort, output: () => output, api };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, detail: () => string = () => ""): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await check();
    } catch (error) {
      if ((error as Error).message.startsWith("the service exited")) throw error;
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}\n${detail().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// ---- set-up -------------------------------------------------------------------------------------

const VAULT_ADMIN_PASSWORD = `vault-admin-${process.pid}-first`;
let connectionFallback = "";
let vault: VaultSetup;
let service: RunningService;
let signingProxyPort: number;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "knhk-as-deployed-"));
  // One render first, to know the names the certificates must carry.
  const probe = await renderTestStack("prod");
  render = probe;
  pki = await makeTestPki(root, { dns: [primaryHost(), "localhost"], ips: ["127.0.0.1"] });
  oidc = await startOidc({ tls: { cert: readFileSync(pki.certFile, "utf8"), key: readFileSync(pki.keyFile, "utf8") } });
  // The issuer is stack config, rendered into the ConfigMap like any stack's.
  render = await renderTestStack("prod", {
    overlay: { "knhk:app": { oidc: { issuers: [{ name: "keycloak", claimMapping: "keycloak", issuer: oidc.issuer("keycloak") }] } } },
  });

  // The kubelet's mounts: the CA (only ca.crt of the TLS Secret) and the active-colour ConfigMap.
  const deployment = podTemplate("Deployment", APP.deployment("blue"));
  const caVolume = deployment.spec.volumes.find((v) => v.secret?.items?.some((i: { key: string }) => i.key === "ca.crt"));
  expect(caVolume?.secret.items).toEqual([{ key: "ca.crt", path: basename(APP_FILES.postgresCa) }]);
  const caMount = deployment.spec.containers[0].volumeMounts?.find((m) => m.name === caVolume.name);
  expect(caMount?.mountPath).toBe(dirname(APP_FILES.postgresCa));
  mounts.set(APP_FILES.postgresCa, pki.caFile);
  // The API certificate Secret (knhk:app.tls), as the kubelet mounts it: here issued by this test's CA.
  mounts.set(APP_FILES.tlsCert, pki.certFile);
  mounts.set(APP_FILES.tlsKey, pki.keyFile);
  const activeColorFile = join(root, "active-color");
  const activeColor = object("ConfigMap", APP.activeColorConfigMap) as unknown as { data: Record<string, string> };
  writeFileSync(activeColorFile, activeColor.data[basename(APP_FILES.activeColor)]);
  mounts.set(APP_FILES.activeColor, activeColorFile);
  mounts.set(APP_FILES.databaseUrl, join(root, "service-secrets", basename(APP_FILES.databaseUrl)));
  mounts.set(APP_FILES.ownerDatabaseUrl, join(root, "migration-secrets", basename(APP_FILES.ownerDatabaseUrl)));
  mounts.set(APP_FILES.transitKeys, join(root, "migration-secrets", basename(APP_FILES.transitKeys)));
  writeLoopbackResolver(root, primaryHost());


  // PostgreSQL with the rendered pg_hba and TLS settings, bootstrapped by the rendered script.
  const patroniYaml = render.k8sObjects.map((o) => (o as any).data?.["patroni.yml"]).find((y) => typeof y === "string") as string;
  const postBootstrap = render.k8sObjects.map((o) => (o as any).data?.["post-bootstrap.sh"]).find((y) => typeof y === "string") as string;
  const patroni = YAML.parse(patroniYaml, { version: "1.1" }) as { postgresql: { pg_hba: string[]; parameters: Record<string, unknown> } };
  const params = patroni.postgresql.parameters;
  expect(params.ssl).toBe("on");
  expect(params.ssl_min_protocol_version).toBe("TLSv1.3");
  // The server's files, as the postgres OS user reads them from the TLS Secret's mount.
  const serverFiles = mkdtempSync(join(tmpdir(), "knhk-as-deployed-postgres-"));
  const hbaFile = join(serverFiles, "pg_hba.conf");
  writeFileSync(hbaFile, `${patroni.postgresql.pg_hba.join("\n")}\n`);
  for (const [from, to] of [[pki.certFile, "tls.crt"], [pki.keyFile, "tls.key"], [pki.caFile, "ca.crt"]]) writeFileSync(join(serverFiles, to), readFileSync(from));
  if (process.getuid?.() === 0) {
    const owner = statSync("/var/lib/postgresql");
    for (const f of [serverFiles, hbaFile, ...["tls.crt", "tls.key", "ca.crt"].map((f) => join(serverFiles, f))]) chownSync(f, owner.uid, owner.gid);
  }
  chmodSync(join(serverFiles, "tls.key"), 0o600);
  pg = await startPostgres({
    settings: {
      hba_file: hbaFile,
      ssl: "on",
      ssl_cert_file: join(serverFiles, "tls.crt"),
      ssl_key_file: join(serverFiles, "tls.key"),
      ssl_ca_file: join(serverFiles, "ca.crt"),
      ssl_min_protocol_version: String(params.ssl_min_protocol_version),
      password_encryption: String(params.password_encryption),
    },
  });
  const script = join(serverFiles, "post-bootstrap.sh");
  writeFileSync(script, postBootstrap, { mode: 0o755 });
  const asPostgres = process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--"]] as const : undefined;
  const superuserUrl = `postgresql:///postgres?host=${encodeURIComponent(pg.socketDir)}&port=${pg.port}&user=postgres`;
  const bootstrapEnv = { PATH: `/usr/lib/postgresql/15/bin:${process.env.PATH}`, EXPORTER_PASSWORD: "exporter-test", VAULT_ADMIN_PASSWORD };
  if (asPostgres) await run("runuser", ["-u", "postgres", "--", "env", ...Object.entries(bootstrapEnv).map(([k, v]) => `${k}=${v}`), "sh", script, superuserUrl], { timeout: 60_000 });
  else await run("sh", [script, superuserUrl], { env: { ...process.env, ...bootstrapEnv }, timeout: 60_000 });

  bao = await startOpenBao();
  stoppers.push(() => bao.stop());
  vault = await configureVault();
  signingProxyPort = await freePort();
}, 900_000);

afterAll(async () => {
  for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  await oidc?.close();
  await pg?.destroy();
});

// ---- the deploy, in the rendered order ----------------------------------------------------------

describe("prod as rendered", () => {
  test("the database admits no trust login and no plain TCP: the rendered pg_hba is in force", async () => {
    const rules = await pg.psql("SELECT type || ' ' || auth_method FROM pg_hba_file_rules ORDER BY line_number");
    expect(rules.split("\n").filter(Boolean).every((r) => /^(local peer|hostssl scram-sha-256)$/.test(r))).toBe(true);
    const roles = await pg.psql(`SELECT rolname || ':' || rolcanlogin || ':' || rolcreaterole FROM pg_roles WHERE rolname IN ('${POSTGRES.ownerDbUser}', '${POSTGRES.serviceDbRole}', '${POSTGRES.vaultAdminDbUser}') ORDER BY 1`);
    expect(roles.trim().split("\n")).toEqual([`${POSTGRES.serviceDbRole}:false:false`, `${POSTGRES.ownerDbUser}:true:false`, `${POSTGRES.vaultAdminDbUser}:true:true`].sort());
  });

  test("a plaintext client, a TLS 1.2 client and a client checking another host name are all refused", async () => {
    const { Client } = await import("pg");
    const attempt = async (ssl: false | Record<string, unknown>) => {
      const client = new Client({ host: "127.0.0.1", port: pg.port, database: "postgres", user: POSTGRES.vaultAdminDbUser, password: VAULT_ADMIN_PASSWORD, ssl, connectionTimeoutMillis: 10_000 });
      try {
        await client.connect();
        return `connected over ${(await client.query("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0]?.version}`;
      } catch (error) {
        return `refused: ${(error as Error).message}`;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    const ca = readFileSync(pki.caFile, "utf8");
    // Control: verify-full against the cluster CA and the certificate's name.
    expect(await attempt({ ca, servername: primaryHost() })).toBe("connected over TLSv1.3");
    expect(await attempt(false)).toMatch(/^refused: no pg_hba\.conf entry .*no encryption/);
    expect(await attempt({ ca, servername: primaryHost(), maxVersion: "TLSv1.2" })).toMatch(/^refused: .*alert protocol version/);
    expect(await attempt({ ca, servername: "postgres-replicas.elsewhere.svc" })).toMatch(/^refused: Hostname\/IP does not match certificate's altnames/);
  });

  test("Vault's connection verifies PostgreSQL with the cluster CA and logs in as vault_admin over TLS 1.3", async () => {
    // HashiCorp Vault (1.18+) takes the CA as `tls_ca`, as the stack sends it; OpenBao 2.7 has no
    // such field, so there the same CA goes in as sslrootcert. Either way, no CA, no connection:
    if (connectionFallback) process.stderr.write(`as-deployed: ${connectionFallback}\n`);
    const withoutCa = await bao.request("POST", `${vault.databaseMount}/config/no-ca-probe`, {
      plugin_name: "postgresql-database-plugin",
      connection_url: vaultConnectionUrl({ host: "127.0.0.1", port: pg.port, name: POSTGRES.database }),
      username: POSTGRES.vaultAdminDbUser,
      password: VAULT_ADMIN_PASSWORD,
      verify_connection: true,
    }, bao.rootToken);
    expect(withoutCa.status).toBe(400);
    const creds = await bao.root("GET", `${vault.databaseMount}/creds/${only("vault:database/secretBackendRole:SecretBackendRole", (r) => r.inputs.name === VAULT_NAMES.databaseRole).name}`);
    expect(creds.body.data.username).toEqual(expect.any(String));
    const ssl = await pg.psql("SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'vault_admin' AND s.ssl AND s.version = 'TLSv1.3'");
    expect(Number(ssl.trim())).toBeGreaterThan(0);
    await bao.root("PUT", "sys/leases/revoke", { lease_id: creds.body.lease_id });
  });

  test("a service started before the migration Job stays up, unready, naming the command that is missing", async () => {
    await startAgent("service", vault.serviceToken, remapTemplates(agentTemplates(podTemplate("Deployment", APP.deployment("blue")))), { proxyPort: signingProxyPort });
    service = await startServiceAsRendered(signingProxyPort);
    await until("/ready names the missing migrations", async () => {
      const ready = await service.api("/ready");
      return ready.status === 503 && JSON.stringify(ready.body).includes("knhk schema migrate");
    }, 120_000, service.output);
    expect((await service.api("/health")).status).toBe(200);
    expect(service.process.child.exitCode).toBeNull();
  });

  test("the migration Job's command, as the owner Vault rotates, applies the schema; the waiting service becomes ready by itself", async () => {
    const job = podTemplate("Job", /^knhk-migrate-/);
    const container = job.spec.containers[0];
    expect(job.metadata.annotations["vault.hashicorp.com/agent-pre-populate-only"]).toBe("true");
    await startAgent("migration", vault.migrationToken, remapTemplates(agentTemplates(job)), { once: true });
    const ownerUrl = readFileSync(podFile(APP_FILES.ownerDatabaseUrl), "utf8");
    expect(new URL(ownerUrl).username).toBe(POSTGRES.ownerDbUser);
    // The Job's shell runs these steps in order; each is the image's CLI, run here from source.
    expect(container.command).toEqual(migrationCommand());
    const env = { PATH: process.env.PATH ?? "", HOME: root, NODE_OPTIONS: `--require ${join(root, "resolve-primary.js")}`, ...Object.fromEntries(Object.entries(envOf(container)).map(([k, v]) => [k, remap(v)])) };
    const outputs: string[] = [];
    for (const step of migrationSteps()) {
      expect(step.slice(0, APP.cliCommand.length)).toEqual([...APP.cliCommand]);
      const { stdout } = await run(TSX, [join(REPO, "app", "src", "cli", "index.ts"), ...step.slice(APP.cliCommand.length).map(remap)], { cwd: REPO, env, timeout: 300_000 });
      outputs.push(stdout);
    }
    expect(JSON.parse(outputs[0].trim().split("\n").at(-1) as string)).toMatchObject({ ready: true, missing: [] });
    expect(outputs[1]).toMatch(/version 1: registered/);
    await until("the service is ready", async () => (await service.api("/ready")).status === 200, 180_000, service.output);
  });

  test("the service runs as a dynamic Vault user, member of the service role only, over TLS 1.3, without DDL rights", async () => {
    const rows = await pg.psql(
      `SELECT DISTINCT a.usename || '|' || s.ssl || '|' || coalesce(s.version, '') FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid WHERE a.datname = 'knhk' AND a.backend_type = 'client backend' AND a.usename NOT IN ('postgres', '${POSTGRES.vaultAdminDbUser}')`,
    );
    const users = rows.split("\n").filter(Boolean).map((r) => r.split("|"));
    expect(users.length).toBeGreaterThan(0);
    for (const [user, ssl, version] of users) {
      expect(user).not.toBe(POSTGRES.ownerDbUser);
      expect(user).not.toBe(POSTGRES.vaultAdminDbUser);
      expect({ user, ssl, version }).toEqual({ user, ssl: "true", version: "TLSv1.3" });
      const memberOf = await pg.psql(`SELECT string_agg(b.rolname, ',' ORDER BY b.rolname) FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '${user}'`);
      expect(memberOf.trim()).toBe(POSTGRES.serviceDbRole);
      const mayCreate = await pg.psql(`SELECT has_schema_privilege('${user}', 'public', 'CREATE') OR has_database_privilege('${user}', 'knhk', 'CREATE')`, "knhk");
      expect(mayCreate.trim()).toBe("f");
    }
  });

  test("it serves the RBAC matrix to tokens of the issuer configured in stack config", async () => {
    const endpoints: { method: "GET" | "POST"; path: string; permission: Permission; json?: unknown }[] = [
      { method: "GET", path: "/api/v1/observations?limit=5", permission: "READ_OBSERVATIONS" },
      { method: "POST", path: "/api/v1/observations", permission: "INGEST_OBSERVATIONS", json: { event_type: "as-deployed", value: 1, sector: "logistics" } },
      { method: "GET", path: "/api/v1/snapshots", permission: "READ_SNAPSHOTS" },
      { method: "GET", path: "/api/v1/patterns?kind=high_frequency", permission: "READ_PATTERNS" },
      { method: "POST", path: "/api/v1/patterns/detect", permission: "DETECT_PATTERNS", json: { window_seconds: 120 } },
      { method: "POST", path: "/api/v1/analytics/run", permission: "RUN_ANALYTICS", json: {} },
      { method: "POST", path: "/api/v1/proposals/generate", permission: "GENERATE_PROPOSALS", json: {} },
      { method: "POST", path: "/api/v1/mape-k/execute", permission: "EXECUTE_MAPE_K" },
      { method: "GET", path: "/api/v1/receipts?limit=5", permission: "READ_RECEIPTS" },
      { method: "POST", path: "/api/v1/receipts/verify", permission: "VERIFY_RECEIPTS", json: {} },
    ];
    const outcomes: string[] = [];
    const expected: string[] = [];
    for (const role of ROLES) {
      const token = await oidc.roleToken(role, `${role}-as-deployed`, "keycloak");
      for (const e of endpoints) {
        const response = await service.api(e.path, { method: e.method, token, json: e.json });
        const allowed = ROLE_PERMISSIONS[role].includes(e.permission);
        outcomes.push(`${role} ${e.method} ${e.path} ${response.status >= 200 && response.status < 300 ? "2xx" : response.status}${allowed && response.status >= 300 ? ` ${JSON.stringify(response.body)}` : ""}`);
        expected.push(`${role} ${e.method} ${e.path} ${allowed ? "2xx" : 403}`);
      }
    }
    expect(outcomes).toEqual(expected);
    expect((await service.api("/api/v1/observations")).status).toBe(401);
  });

  test("its receipts are signed by the Vault transit key and verify against the keys Vault publishes", async () => {
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: root,
      DATABASE_URL_FILE: podFile(APP_FILES.databaseUrl),
      KNHK_MIGRATE_ON_START: "false",
      NODE_OPTIONS: `--require ${join(root, "resolve-primary.js")}`,
      KNHK_SIGNING_VAULT_ADDR: `http://127.0.0.1:${signingProxyPort}`,
      KNHK_SIGNING_TRANSIT_MOUNT: vault.transitMount,
      KNHK_SIGNING_TRANSIT_KEY: only("vault:transit/secretBackendKey:SecretBackendKey").name,
    };
    const { stdout } = await run(TSX, [join(REPO, "app", "src", "cli", "index.ts"), "receipts", "verify-chain", "--format", "json", "--trusted-keys-from-vault"], { cwd: REPO, env, timeout: 300_000 });
    const report = JSON.parse(stdout);
    expect(report.total_count).toBeGreaterThan(0);
    expect(report).toMatchObject({ verified_count: report.total_count, signature_failures: [], chain_breaks: [] });
    const versions = await pg.psql("SELECT string_agg(DISTINCT key_version::text, ',') FROM receipts", "knhk");
    expect(versions.trim()).toBe("1");
    const ephemeral = await pg.psql("SELECT count(*) FROM receipt_signing_keys WHERE ephemeral", "knhk");
    expect(ephemeral.trim()).toBe("0");
  });
});

function remapTemplates(templates: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(templates).map(([path, text]) => [podFile(path), remap(text)]));
}
