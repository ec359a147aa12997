import Redis, { type RedisOptions } from "ioredis";
import type { RedisConfig } from "../config/env";

export type RedisState = "healthy" | "degraded";

/** Fail fast while disconnected (callers fall back in process) and keep reconnecting forever. */
const COMMON: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  commandTimeout: 1000,
  retryStrategy: (attempt) => Math.min(200 * attempt, 2000),
  lazyConnect: true,
};

/** A standalone or Sentinel-managed connection (Sentinel: ioredis follows failovers itself). */
export function createRedisClient(config: RedisConfig, onError: (error: Error) => void): Redis {
  const client =
    config.mode === "sentinel"
      ? new Redis({
          ...COMMON,
          sentinels: config.sentinels!.map((s) => ({ host: s.host, port: s.port })),
          name: config.masterName!,
          password: config.password,
          sentinelPassword: config.sentinelPassword,
          sentinelRetryStrategy: (attempt) => Math.min(200 * attempt, 2000),
        })
      : new Redis(config.url!, { ...COMMON, ...(config.password ? { password: config.password } : {}) });
  client.on("error", onError);
  // lazyConnect: the first connect runs in the background; start-up never waits for Redis.
  client.connect().catch(() => undefined);
  return client;
}

export function isReady(client: Redis | undefined): client is Redis {
  return client !== undefined && client.status === "ready";
}

/** healthy when a PING answers; degraded when Redis is absent or unreachable (fallbacks serve). */
export async function probeRedis(client: Redis | undefined): Promise<RedisState> {
  if (!isReady(client)) return "degraded";
  try {
    return (await client.ping()) === "PONG" ? "healthy" : "degraded";
  } catch {
    return "degraded";
  }
}

export async function closeRedis(client: Redis | undefined): Promise<void> {
  if (!client) return;
  try {
    if (client.status === "ready") await client.quit();
    else client.disconnect();
  } catch {
    client.disconnect();
  }
}
