/**
 * Reads the stack config values the policies compare against from `Pulumi.<stack>.yaml`, through
 * the program's own section schemas (so defaults are the program's defaults). The policy pack
 * runs in its own process without the program's config, hence the file read.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import type { z } from "zod";
import { patroniSection } from "../../infra/config/patroni";
import { redisSection } from "../../infra/config/redis";
import type { StackSettings } from "./model";

const cache = new Map<string, StackSettings | undefined>();

/** The folder holding `Pulumi.yaml`, searched upwards from `start`. */
export function findProjectRoot(start: string = __dirname): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "Pulumi.yaml"))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Settings for `stack`, or undefined when its stack file does not exist. Throws on an invalid section. */
export function loadStackSettings(stack: string, root: string | undefined = findProjectRoot()): StackSettings | undefined {
  const key = `${root}::${stack}`;
  if (!cache.has(key)) cache.set(key, readSettings(stack, root));
  return cache.get(key);
}

function readSettings(stack: string, root: string | undefined): StackSettings | undefined {
  if (!root) return undefined;
  const file = join(root, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) return undefined;
  const config = (parse(readFileSync(file, "utf8")) ?? {}).config ?? {};
  return stackSettingsFromConfig(config, file);
}

/** One `knhk:<section>` of the raw config through the program's schema (JSON text or object). */
function section<T>(config: Record<string, unknown>, key: string, schema: z.ZodType<T>, source: string): T {
  const raw = config[key];
  try {
    return schema.parse(typeof raw === "string" ? JSON.parse(raw) : raw ?? {});
  } catch (error) {
    throw new Error(`${source}: ${key} is invalid: ${(error as Error).message}`);
  }
}

/** Pure: raw stack config (`{"knhk:patroni": {...}}`) -> the settings policies need. */
export function stackSettingsFromConfig(config: Record<string, unknown>, source = "stack config"): StackSettings {
  const patroni = section(config, "knhk:patroni", patroniSection, source);
  const redis = section(config, "knhk:redis", redisSection, source);
  return { storageClasses: [...new Set([patroni.storage.className, redis.storage.className])] };
}
