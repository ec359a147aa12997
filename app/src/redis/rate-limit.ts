import type Redis from "ioredis";
import { isReady } from "./connection";

export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the current window ends. */
  readonly resetSeconds: number;
  readonly backend: "redis" | "memory";
}

export interface RateLimiter {
  consume(principal: string): Promise<RateDecision>;
}

export interface RateLimitSettings {
  readonly max: number;
  readonly windowSeconds: number;
  readonly now?: () => number;
}

// INCR and set the expiry in one step, so a crash between them cannot leave a key without TTL.
const INCREMENT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count`;

/**
 * Fixed-window counter per principal. Shared through Redis across replicas; while Redis is
 * unreachable each replica counts in process (the limit then applies per replica).
 */
export function createRateLimiter(redis: Redis | undefined, settings: RateLimitSettings): RateLimiter {
  const now = settings.now ?? Date.now;
  const windowMs = settings.windowSeconds * 1000;
  const local = new Map<string, { window: number; count: number }>();

  function decide(count: number, window: number, backend: RateDecision["backend"]): RateDecision {
    return {
      allowed: count <= settings.max,
      limit: settings.max,
      remaining: Math.max(0, settings.max - count),
      resetSeconds: Math.ceil(((window + 1) * windowMs - now()) / 1000),
      backend,
    };
  }

  function consumeLocally(principal: string, window: number): RateDecision {
    if (local.size > 10_000) {
      for (const [key, entry] of local) if (entry.window < window) local.delete(key);
    }
    const entry = local.get(principal);
    const count = entry && entry.window === window ? entry.count + 1 : 1;
    local.set(principal, { window, count });
    return decide(count, window, "memory");
  }

  return {
    async consume(principal) {
      const window = Math.floor(now() / windowMs);
      if (isReady(redis)) {
        try {
          const key = `knhk:ratelimit:${principal}:${window}`;
          const count = Number(await redis.eval(INCREMENT_SCRIPT, 1, key, String(windowMs)));
          return decide(count, window, "redis");
        } catch {
          // fall through to the in-process counter
        }
      }
      return consumeLocally(principal, window);
    },
  };
}
