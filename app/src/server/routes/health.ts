import { Type } from "@sinclair/typebox";
import type { HealthService } from "../health";
import type { RoutePlugin } from "../types";

const dependency = Type.Union([Type.Literal("healthy"), Type.Literal("degraded"), Type.Literal("down")]);
const healthResponse = Type.Object({
  status: dependency,
  timestamp: Type.String(),
  uptime_seconds: Type.Number(),
  // vault: only where the credentials come from a Vault Agent file (DATABASE_URL_FILE).
  dependencies: Type.Object({ database: dependency, redis: dependency, vault: Type.Optional(dependency) }),
});

/**
 * /health answers 200 while the process can serve (liveness: restarting would not fix a
 * database outage) and reports each dependency; /ready answers 503 when the database is
 * unreachable or the process is draining (readiness).
 */
export const healthRoutes: RoutePlugin<{ health: HealthService }> = async (app, { health }) => {
  app.get("/health", { schema: { response: { 200: healthResponse } } }, async () => health.check());
  app.get("/ready", async (_request, reply) => {
    const state = await health.ready();
    return reply.status(state.ready ? 200 : 503).send(state.ready ? { status: "ready" } : { status: "not_ready", reason: state.reason });
  });
};
