export { closeRedis, createRedisClient, isReady, probeRedis, type RedisState } from "./connection";
export { createRateLimiter, type RateDecision, type RateLimiter, type RateLimitSettings } from "./rate-limit";
export { createSnapshotBus, SNAPSHOT_CHANNEL, type SnapshotBus, type SnapshotChangeListener } from "./broadcast";
export { createCurrentSnapshotCache, CURRENT_SNAPSHOT_KEY, type CurrentSnapshotCache } from "./snapshot-cache";
