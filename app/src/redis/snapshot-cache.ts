import type Redis from "ioredis";
import type { Snapshot } from "../domain/types";
import { isReady } from "./connection";

export const CURRENT_SNAPSHOT_KEY = "knhk:snapshot:current";

export interface CurrentSnapshotCache {
  /** The current snapshot: from Redis when cached there, else from `load` (then cached). */
  get(load: () => Promise<Snapshot>): Promise<Snapshot>;
  invalidate(): Promise<void>;
}

/**
 * The current snapshot shared by all replicas through Redis (a short TTL bounds staleness if an
 * invalidation is lost). Without Redis, `load` (the domain's in-process cache) answers.
 */
export function createCurrentSnapshotCache(redis: Redis | undefined, ttlSeconds = 30): CurrentSnapshotCache {
  return {
    async get(load) {
      if (isReady(redis)) {
        try {
          const cached = await redis.get(CURRENT_SNAPSHOT_KEY);
          if (cached) return JSON.parse(cached) as Snapshot;
        } catch {
          // Redis failed mid-request: fall back to the loader
        }
      }
      const snapshot = await load();
      if (isReady(redis)) {
        await redis.set(CURRENT_SNAPSHOT_KEY, JSON.stringify(snapshot), "EX", ttlSeconds).catch(() => undefined);
      }
      return snapshot;
    },
    async invalidate() {
      if (isReady(redis)) await redis.del(CURRENT_SNAPSHOT_KEY).catch(() => undefined);
    },
  };
}
