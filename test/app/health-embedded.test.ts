/**
 * `npm run service` spawned as a real process with no server installed beside it: embedded
 * PGlite, no Redis. It answers /health with JSON and /metrics with the registry's metrics,
 * exports OpenTelemetry spans when OTEL_EXPORTER_OTLP_ENDPOINT is set, and on SIGTERM finishes
 * the request in flight before exiting 0.
 */
import { createServer, request as httpRequest, type Server } from "node:http";
import { join } from "node:path";
import { loadRegistry } from "../../registry";
import { freePort, waitFor } from "../support/ports";
import { spawnTracked, type TrackedProcess } from "../support/processes";
import { startOidc, type TestOidc } from "./shell/oidc";

const ROOT = join(__dirname, "..", "..");
let service: TrackedProcess | undefined;
let exited: Promise<number | null>;
let output = "";
let apiPort: number;
let metricsPort: number;
let oidc: TestOidc;
let otlp: { server: Server; url: string; bodies: string[] };

beforeAll(async () => {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      if (req.url === "/v1/traces") bodies.push(body);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  otlp = { server, url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`, bodies };
  oidc = await startOidc();
  [apiPort, metricsPort] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (/^(DATABASE_|REDIS_|KNHK_|OTEL_|DB_POOL_)/.test(name)) delete env[name];
  Object.assign(env, oidc.env(), {
    KNHK_PORT: String(apiPort),
    KNHK_METRICS_PORT: String(metricsPort),
    KNHK_HOST: "127.0.0.1",
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_SERVICE_NAME: "knhk-spawned",
  });
  // Its own process group, so clean-up can kill npm, tsx and the service at once.
  service = spawnTracked("npm", ["run", "--silent", "service"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  service.child.stdout!.on("data", (d) => (output += d));
  service.child.stderr!.on("data", (d) => (output += d));
  exited = service.exited.then(({ code }) => code);
  await waitFor("npm run service answers /health", async () => (await fetch(`http://127.0.0.1:${apiPort}/health`)).ok, 150_000, 500);
}, 180_000);

afterAll(async () => {
  // The whole group (npm, tsx and the service), awaited: nothing outlives the file.
  await service?.stop("SIGKILL");
  await oidc?.close();
  await new Promise((resolve) => otlp?.server.close(resolve));
});

test("/health answers JSON: database healthy on PGlite, redis degraded (no Redis configured)", async () => {
  const response = await fetch(`http://127.0.0.1:${apiPort}/health`);
  expect(response.headers.get("content-type")).toMatch(/application\/json/);
  expect(await response.json()).toMatchObject({ status: "degraded", dependencies: { database: "healthy", redis: "degraded" } });
  expect((await fetch(`http://127.0.0.1:${apiPort}/ready`)).status).toBe(200);
});

test("/metrics on the metrics port serves exactly the registry's metrics", async () => {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const served = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  const registry = loadRegistry();
  expect(served).toEqual(new Set([...registry.service.map((m) => m.name), ...registry.defaults]));
  expect(text).toMatch(/^knhk_db_pool_max_connections 1$/m);
});

test("the embedded service serves the API end to end", async () => {
  const token = await oidc.roleToken("ingestor");
  const created = await fetch(`http://127.0.0.1:${apiPort}/api/v1/observations`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ event_type: "embedded.ok", value: 1, sector: "generic" }),
  });
  expect(created.status).toBe(201);
});

test("spans are exported over OTLP/HTTP with the service name and the caller's trace id", async () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  await fetch(`http://127.0.0.1:${apiPort}/ready`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
  await waitFor("span exported", async () => otlp.bodies.some((b) => b.includes(traceId)), 20_000);
  const spans = otlp.bodies
    .map((b) => JSON.parse(b))
    .flatMap((doc: any) => doc.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans.map((span: any) => ({ ...span, resource: r.resource })))));
  const span = spans.find((s: any) => s.traceId === traceId);
  expect(span.name).toBe("GET /ready");
  expect(JSON.stringify(span.resource)).toContain("knhk-spawned");
});

test("SIGTERM: the request in flight completes, then the process exits 0", async () => {
  const token = await oidc.roleToken("ingestor");
  const body = JSON.stringify({ event_type: "embedded.inflight", value: 2, sector: "generic" });
  const response = new Promise<number>((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port: apiPort, path: "/api/v1/observations", method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    // Half the body now, the rest after SIGTERM: the request is in flight while shutdown starts.
    req.write(body.slice(0, 10));
    setTimeout(() => {
      // The service process itself (npm and tsx pass its exit code on).
      const pid = Number(/"msg":"knhk listening".*?"pid":(\d+)/.exec(output)?.[1]);
      process.kill(pid, "SIGTERM");
      setTimeout(() => req.end(body.slice(10)), 1000);
    }, 500);
  });
  expect(await response).toBe(201);
  expect(await exited).toBe(0);
  expect(output).toContain("SIGTERM: shutting down");
  expect(output).toContain("knhk stopped");
}, 60_000);
