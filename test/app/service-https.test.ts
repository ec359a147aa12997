/**
 * The API port over HTTPS as the deployed service serves it (a kubernetes.io/tls Secret's files,
 * the service as knhk_app on PostgreSQL 15): TLS 1.3 only, no plaintext, a renewed certificate
 * served without a restart, and start-up refusing a broken pair naming the variable.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { openStartupGate } from "../../app/src/server/startup-gate";
import { readServerCertificate } from "../../app/src/server/tls";
import { requestText } from "../support/https-client";
import { freePort, waitFor } from "../support/ports";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { makeTestPki, type TestPki } from "../support/tls";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";

jest.setTimeout(120_000);

let pg: TestPostgres;
let oidc: TestOidc;
let svc: ServiceUnderTest;
let dir: string;
let first: TestPki;
let second: TestPki;
/** The mounted Secret's files, as the pod sees them. */
const mounted = { cert: "", key: "" };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "knhk-https-"));
  for (const sub of ["first", "second", "secret"]) mkdirSync(join(dir, sub));
  [pg, oidc, first, second] = await Promise.all([
    startPostgres(),
    startOidc(),
    makeTestPki(join(dir, "first"), { dns: ["localhost"], ips: ["127.0.0.1"] }),
    makeTestPki(join(dir, "second"), { dns: ["localhost"], ips: ["127.0.0.1"] }),
  ]);
  mounted.cert = join(dir, "secret", "tls.crt");
  mounted.key = join(dir, "secret", "tls.key");
  copyFileSync(first.certFile, mounted.cert);
  copyFileSync(first.keyFile, mounted.key);
  svc = await startTestService(pg, { ...oidc.env(), KNHK_TLS_CERT_FILE: mounted.cert, KNHK_TLS_KEY_FILE: mounted.key, KNHK_TLS_RELOAD_SECONDS: "1" }, { ca: first.caPem });
}, 180_000);

afterAll(async () => {
  await svc?.stop();
  await oidc?.close();
  await pg?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens a TLS connection to the API port with these client settings; resolves with the negotiated protocol or rejects. */
function handshake(options: { ca: string; minVersion?: "TLSv1.2" | "TLSv1.3"; maxVersion?: "TLSv1.2" | "TLSv1.3"; servername?: string }): Promise<string> {
  const url = new URL(svc.service.apiUrl);
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({ host: url.hostname, port: Number(url.port), ca: options.ca, minVersion: options.minVersion, maxVersion: options.maxVersion, servername: options.servername });
    socket.once("secureConnect", () => {
      resolve(socket.getProtocol() ?? "");
      socket.end();
    });
    socket.once("error", reject);
  });
}

test("serves HTTPS: TLS 1.3 verified against the CA, and an authorised call works end to end", async () => {
  expect(svc.service.apiUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  expect(await handshake({ ca: first.caPem })).toBe("TLSv1.3");
  const response = await svc.api("/api/v1/observations?limit=1", { token: await oidc.roleToken("observer") });
  expect(response.status).toBe(200);
  expect((await svc.api("/health")).status).toBe(200);
});

test("a TLS 1.2 client is refused", async () => {
  await expect(handshake({ ca: first.caPem, maxVersion: "TLSv1.2" })).rejects.toThrow(/protocol version|unsupported protocol|wrong version/i);
});

test("a plaintext HTTP request gets no answer", async () => {
  const url = new URL(svc.service.apiUrl);
  const outcome = await new Promise<string>((resolve) => {
    const request = httpRequest({ host: url.hostname, port: Number(url.port), path: "/health", timeout: 5000 }, (response) => resolve(`status ${response.statusCode}`));
    request.on("error", (error) => resolve(`error ${error.message}`));
    request.on("timeout", () => request.destroy(new Error("timed out")));
    request.end();
  });
  expect(outcome).toMatch(/^error /);
});

test("a client that does not trust the CA is refused", async () => {
  await expect(handshake({ ca: second.caPem })).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
});

test("a renewed certificate written into the mounted files serves new connections without a restart; a broken rewrite keeps the last good one", async () => {
  // A rewrite in progress: half a certificate. The service keeps serving the first one.
  writeFileSync(mounted.cert, readFileSync(second.certFile, "utf8").slice(0, 100));
  await new Promise((resolve) => setTimeout(resolve, 2500));
  expect(await handshake({ ca: first.caPem })).toBe("TLSv1.3");
  expect(svc.logs.some((line) => line.includes("TLS certificate not reloaded"))).toBe(true);

  copyFileSync(second.keyFile, mounted.key);
  copyFileSync(second.certFile, mounted.cert);
  await waitFor("the renewed certificate", async () => (await handshake({ ca: second.caPem }).then(() => true, () => false)), 15_000, 200);
  await expect(handshake({ ca: first.caPem })).rejects.toThrow();
  const response = await requestText(`${svc.service.apiUrl}/health`, { ca: second.caPem });
  expect(response.status).toBe(200);
  expect(svc.logs.some((line) => line.includes("TLS certificate reloaded"))).toBe(true);
  // Logs name the file, never its content.
  expect(svc.logs.join("\n")).not.toContain("PRIVATE KEY");
});

test("a key that does not match the certificate stops start-up naming the variable, without the key", async () => {
  const error = await readServerCertificate({ certFile: first.certFile, keyFile: second.keyFile }).catch((e: Error) => e);
  expect(String(error)).toMatch(/^ConfigError: invalid configuration: KNHK_TLS_KEY_FILE: not a usable certificate and key pair \(.*\)$/);
  expect(String(error)).not.toContain("PRIVATE KEY");
  await expect(readServerCertificate({ certFile: join(dir, "missing.crt"), keyFile: first.keyFile })).rejects.toThrow(/KNHK_TLS_CERT_FILE: cannot read .*missing\.crt: ENOENT/);
});

test("the start-up gate answers the probes over HTTPS too", async () => {
  const port = await freePort();
  const gate = await openStartupGate({ host: "127.0.0.1", port, log: () => undefined, https: await readServerCertificate({ certFile: first.certFile, keyFile: first.keyFile }) });
  try {
    const ready = await requestText(`https://127.0.0.1:${port}/ready`, { ca: first.caPem });
    expect({ status: ready.status, body: JSON.parse(ready.text) }).toEqual({ status: 503, body: { status: "not_ready", reason: "starting" } });
    expect((await requestText(`https://127.0.0.1:${port}/health`, { ca: first.caPem })).status).toBe(200);
  } finally {
    await gate.close();
  }
});
