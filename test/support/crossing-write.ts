/**
 * An HTTPS hop between Patroni members and the API server that can make one renewal of the
 * leader lock cross another client's write, as when an operator's `kubectl annotate` of the
 * `postgres-primary` Endpoints lands between the leader's read of it and its next renewal.
 *
 * Once armed, the hop holds the next PATCH of the lock, writes an annotation to the lock itself
 * (with the harness's own credentials), and only then forwards the PATCH: it carries the
 * resourceVersion the member read before that write, so the API server answers 409, exactly the
 * conflict the race would produce, but on demand instead of by chance. Every other request, watch
 * streams included, is forwarded untouched with the member's own token.
 */
import { readFileSync } from "node:fs";
import { Agent, createServer, request, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { KubeApi } from "./kube-api";

/** The annotation the crossing write sets on the lock (its value: the write's sequence number). */
export const CROSSING_WRITE_ANNOTATION = "knhk.test/crossing-write";

export interface CrossingWriteHop {
  /** Loopback port the members' kubeconfig points at (through their network links). */
  readonly port: number;
  /** The next PATCH of the lock will cross a write. */
  arm(): void;
  /** Answers to armed PATCHes, in order (409: the conflict the member had to handle; 0: the crossing write failed). */
  readonly crossed: readonly number[];
  close(): Promise<void>;
}

export interface CrossingWriteOptions {
  /** The harness's API client: it makes the crossing write and gives the upstream address and CA. */
  readonly api: KubeApi;
  readonly namespace: string;
  /** Name of the Endpoints that hold the leader lock. */
  readonly lock: string;
  /** Server certificate for 127.0.0.1, from a CA the members trust instead of the cluster's. */
  readonly tls: { readonly certFile: string; readonly keyFile: string };
}

export async function startCrossingWriteHop(opts: CrossingWriteOptions): Promise<CrossingWriteHop> {
  const upstream = new URL(opts.api.server);
  const agent = new Agent({ keepAlive: true, ca: opts.api.caFile ? readFileSync(opts.api.caFile) : undefined });
  const lockPath = `/api/v1/namespaces/${opts.namespace}/endpoints/${opts.lock}`;
  const crossed: number[] = [];
  let armed = false;

  const crossingWrite = async () => {
    const res = await opts.api.request("PATCH", lockPath, { metadata: { annotations: { [CROSSING_WRITE_ANNOTATION]: String(crossed.length + 1) } } }, "application/merge-patch+json");
    if (res.status !== 200) throw new Error(`crossing write of ${lockPath}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, onStatus?: (status: number) => void) => {
    const out = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        onStatus?.(answer.statusCode ?? 0);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    res.on("close", () => out.destroy());
    req.pipe(out);
  };

  const server: Server = createServer({ cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) }, (req, res) => {
    const isLockRenewal = req.method === "PATCH" && req.url?.split("?")[0] === lockPath;
    if (!armed || !isLockRenewal) return forward(req, res);
    armed = false;
    req.pause();
    crossingWrite().then(
      () => forward(req, res, (status) => crossed.push(status)),
      () => {
        crossed.push(0);
        res.destroy();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    arm: () => {
      armed = true;
    },
    crossed,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
