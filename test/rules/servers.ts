/**
 * Real Debian Prometheus and Alertmanager processes for the rules tests (loopback, free ports,
 * temp dirs, killed in `stop`), and a loopback HTTP sink that records what receivers deliver.
 */
import { rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { freePort, waitFor } from "../support/ports";
import { spawnTracked } from "../support/processes";
import { tempDir } from "./tools";

export interface RunningServer {
  readonly url: string;
  readonly dir: string;
  /** stderr so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

async function startBinary(binary: string, args: (port: number, dir: string) => string[], readyPath: string): Promise<RunningServer> {
  const dir = tempDir(binary.replace(/\W/g, ""));
  const port = await freePort();
  const tracked = spawnTracked(binary, args(port, dir), { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  tracked.child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  tracked.child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const server: RunningServer = {
    url,
    dir,
    log: () => log,
    stop: async () => {
      await tracked.stop("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(`${binary} on ${url}`, async () => {
      if (tracked.hasExited()) throw new Error(`${binary} exited:\n${log}`);
      return (await fetch(url + readyPath)).ok;
    }, 30_000);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

export function startAlertmanager(configFile: string): Promise<RunningServer> {
  return startBinary(
    "prometheus-alertmanager",
    (port, dir) => [`--config.file=${configFile}`, `--storage.path=${dir}`, `--web.listen-address=127.0.0.1:${port}`, "--cluster.listen-address=", "--log.level=warn"],
    "/-/ready",
  );
}

export function startPrometheus(configFile: string): Promise<RunningServer> {
  return startBinary(
    "prometheus",
    (port, dir) => [`--config.file=${configFile}`, `--storage.tsdb.path=${dir}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    "/-/ready",
  );
}

export interface Delivery {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
}

/** Accepts any POST on loopback and records it. */
export interface Sink {
  readonly url: string;
  readonly deliveries: Delivery[];
  close(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      let parsed: unknown = body;
      try {
        parsed = JSON.parse(body);
      } catch {
        // keep the raw text
      }
      deliveries.push({ path: req.url ?? "", headers: req.headers, body: parsed });
      res.writeHead(202, { "content-type": "application/json" });
      res.end('{"status":"success","message":"Event processed"}');
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${port}`,
    deliveries,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
