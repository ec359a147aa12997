import type { PolicyContext } from "./model";

/** Environments whose stacks must meet production rules (policy config `productionEnvironments`). */
export const DEFAULT_PRODUCTION_ENVIRONMENTS = ["prod"];
/** Environments that must run replicated databases (policy config `replicatedEnvironments`). */
export const DEFAULT_REPLICATED_ENVIRONMENTS = ["staging", "prod"];

/** Whether the context's environment is listed under `key` in the policy config (or in the default list). */
export function environmentIn(ctx: PolicyContext, key: string, fallback: readonly string[]): boolean {
  const configured = ctx.config[key];
  const list = Array.isArray(configured) ? configured.map(String) : fallback;
  return list.includes(ctx.environment);
}

export const environmentSchema = (key: string, fallback: readonly string[]) => ({
  [key]: { type: "array" as const, items: { type: "string" as const }, default: [...fallback] },
});
