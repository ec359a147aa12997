/**
 * What the API port answers while the service waits for something a deploy provides before it
 * can serve: the schema (the migration Job), a registered signing key (the same Job). /health is
 * 200 (the process is alive: no restart, no crash loop), /ready is 503 with the reason, so the
 * pod takes no traffic and the reason is one `kubectl describe` away. The gate closes before the
 * real API server binds the port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { serverTlsOptions, type ServerCertificate } from "./tls";

export interface StartupGate {
  /** Polls `check` (undefined = satisfied, text = what is missing) until satisfied; logs each new reason. A throw ends the wait. */
  until(what: string, check: () => Promise<string | undefined>): Promise<void>;
  close(): Promise<void>;
}

export interface StartupGateOptions {
  readonly host: string;
  readonly port: number;
  readonly log: (level: "info" | "warn", message: string, extra?: Record<string, unknown>) => void;
  /** Between two checks. Default 2000 ms. */
  readonly pollMs?: number;
  /** Answer over HTTPS with the API's certificate (the probes speak what the API will). Default: HTTP. */
  readonly https?: ServerCertificate;
}

export async function openStartupGate(options: StartupGateOptions): Promise<StartupGate> {
  let reason = "starting";
  const startedAt = Date.now();
  const answer = (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? "").split("?")[0];
    const json = (status: number, body: unknown) => response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (path === "/health") return json(200, { status: "starting", uptime_seconds: Math.round((Date.now() - startedAt) / 1000), waiting_for: reason });
    if (path === "/ready") return json(503, { status: "not_ready", reason });
    return json(503, { error: "starting", message: reason });
  };
  const server: Server = options.https ? createHttpsServer(serverTlsOptions(options.https), answer) : createServer(answer);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const pollMs = options.pollMs ?? 2000;
  return {
    async until(what, check) {
      let logged = "";
      for (;;) {
        const missing = await check();
        if (missing === undefined) {
          if (logged) options.log("info", `${what}: ready`);
          return;
        }
        reason = missing;
        if (missing !== logged) options.log("warn", `waiting: ${missing}`);
        logged = missing;
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
