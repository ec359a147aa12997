import Fastify from "fastify";
import type { ServiceMetrics } from "../telemetry/metrics";

/** Port 9090: GET /metrics only (Prometheus scrape, kept off the API port). */
export async function buildMetricsServer(metrics: ServiceMetrics) {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.get("/metrics", async (_request, reply) => {
    const { contentType, body } = await metrics.exposition();
    return reply.type(contentType).send(body);
  });
  await app.ready();
  return app;
}
