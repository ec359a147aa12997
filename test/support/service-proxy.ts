/**
 * kube-proxy for one Service, on loopback: new connections go to the ready endpoints of the
 * Service's EndpointSlices as the API server holds them now (followed by polling every
 * `pollMs`), mapped to the local process that plays each pod. As with kube-proxy, an established
 * connection stays where it was opened, and a Service without ready endpoints refuses connections.
 *
 * It also records every change of the endpoint set with its time, for the drills' figures.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { KubeApi } from "./kube-api";

export interface ServiceEndpoint {
  /** The pod the endpoint points at (targetRef), else its address. */
  readonly pod: string;
  readonly address: string;
  readonly ready: boolean;
}

export interface EndpointChange {
  readonly at: number;
  /** Ready endpoints after the change, by pod. */
  readonly pods: readonly string[];
}

export interface ServiceProxy {
  readonly service: string;
  readonly port: number;
  /** Ready endpoints as last read. */
  readyPods(): string[];
  readonly changes: readonly EndpointChange[];
  /** Resolves once the ready endpoints are exactly `pods` (as last read), with the time it was seen. */
  waitFor(pods: readonly string[], timeoutMs: number): Promise<number>;
  close(): Promise<void>;
}

export interface ServiceProxyOptions {
  readonly api: KubeApi;
  readonly namespace: string;
  readonly service: string;
  /** The loopback port of the process playing `pod`, or undefined when it has none. */
  readonly backend: (pod: string) => number | undefined;
  readonly pollMs?: number;
}

export async function readEndpoints(api: KubeApi, namespace: string, service: string): Promise<ServiceEndpoint[]> {
  const list = await api.get(`/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`);
  return (list.items as any[]).flatMap((slice) =>
    ((slice.endpoints ?? []) as any[]).flatMap((e) =>
      (e.addresses as string[]).map((address) => ({ pod: e.targetRef?.name ?? address, address, ready: e.conditions?.ready !== false })),
    ),
  );
}

export async function startServiceProxy(options: ServiceProxyOptions): Promise<ServiceProxy> {
  const { api, namespace, service, backend } = options;
  let ready: string[] = [];
  const changes: EndpointChange[] = [];
  const sockets = new Set<Socket>();
  let closed = false;
  let next = 0;

  const refresh = async () => {
    const pods = (await readEndpoints(api, namespace, service)).filter((e) => e.ready).map((e) => e.pod).sort();
    if (pods.join() !== ready.join()) {
      ready = pods;
      changes.push({ at: Date.now(), pods });
    }
  };
  await refresh();
  const poller = (async () => {
    while (!closed) {
      await new Promise((r) => setTimeout(r, options.pollMs ?? 100));
      await refresh().catch(() => undefined); // the API server may be restarting: keep the last known set
    }
  })();

  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => undefined);
    const candidates = ready.map((pod) => backend(pod)).filter((p): p is number => p !== undefined);
    if (candidates.length === 0) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: "127.0.0.1", port: candidates[next++ % candidates.length] });
    sockets.add(upstream);
    upstream.on("close", () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

  return {
    service,
    port: (server.address() as { port: number }).port,
    readyPods: () => [...ready],
    changes,
    async waitFor(pods, timeoutMs) {
      const want = [...pods].sort().join();
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (ready.join() === want) return changes.length ? changes[changes.length - 1].at : Date.now();
        if (Date.now() > deadline) throw new Error(`${service}: ready endpoints are [${ready.join(", ")}], not [${want}], after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      closed = true;
      await poller;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
