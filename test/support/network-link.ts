/**
 * A TCP link to one server that a test can cut, standing in for the network between a pod and
 * that server: `cut()` is a partition (bytes stop flowing both ways, new connections are accepted
 * and hang, nothing is refused or reset, as when packets are dropped); `restore()` heals it (the
 * hung connections are closed, as their peers would have timed them out).
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface NetworkLink {
  /** Loopback port to connect to instead of the server's. */
  readonly port: number;
  readonly isCut: () => boolean;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startNetworkLink(target: { host: string; port: number }): Promise<NetworkLink> {
  let cut = false;
  const pairs = new Set<[Socket, Socket | undefined]>();
  const server: Server = createServer((client) => {
    const pair: [Socket, Socket | undefined] = [client, undefined];
    pairs.add(pair);
    client.on("error", () => undefined);
    client.on("close", () => {
      pair[1]?.destroy();
      pairs.delete(pair);
    });
    if (cut) {
      client.pause();
      return;
    }
    const upstream = createConnection(target);
    pair[1] = upstream;
    upstream.on("error", () => client.destroy());
    upstream.on("close", () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    isCut: () => cut,
    cut() {
      cut = true;
      for (const [client, upstream] of pairs) {
        client.unpipe();
        upstream?.unpipe();
        client.pause();
        upstream?.pause();
      }
    },
    restore() {
      cut = false;
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream?.destroy();
      }
      pairs.clear();
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
