/**
 * Throwaway Redis servers for tests (Debian's redis-server).
 *
 *   const redis = await startRedis();      // on a free loopback port, no persistence
 *   redis.url                              // redis://127.0.0.1:PORT
 *   await redis.stop(); await redis.start();
 *   await redis.destroy();
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./ports";
import { spawnTracked, type TrackedProcess } from "./processes";

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("error", () => resolve(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => {
      socket.destroy();
      resolve(data.toString().startsWith("+PONG"));
    });
  });
}

export async function startRedis(extraArgs: string[] = []): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), "knhk-redis-"));
  const port = await freePort();
  let server: TrackedProcess | undefined;
  const redis: TestRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      server = spawnTracked(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", ...extraArgs],
        { stdio: "ignore" },
      );
      await waitFor(`redis on ${port}`, () => ping(port), 15_000, 50);
    },
    async stop() {
      await server?.stop("SIGKILL");
    },
    async destroy() {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await redis.start();
  return redis;
}
