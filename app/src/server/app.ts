import Fastify, { type FastifyServerOptions } from "fastify";
import type { Tracer } from "@opentelemetry/api";
import type { TokenVerifier } from "../auth/verifier";
import type { Domain } from "../domain";
import type { RateLimiter } from "../redis/rate-limit";
import type { CurrentSnapshotCache } from "../redis/snapshot-cache";
import type { ServiceMetrics } from "../telemetry/metrics";
import type { AuditSink } from "./audit";
import { auditBeforeResponse, createAuthHook } from "./auth-hook";
import { installDepthCheckedJsonParser, refuseUnstorableInput } from "./boundary";
import { errorHandler } from "./errors";
import type { HealthService } from "./health";
import { installObservability } from "./observability";
import { healthRoutes } from "./routes/health";
import { observationRoutes } from "./routes/observations";
import { analyticsRoutes } from "./routes/analytics";
import { mapeKRoutes } from "./routes/mape-k";
import { patternRoutes } from "./routes/patterns";
import { proposalRoutes } from "./routes/proposals";
import { receiptRoutes, type ReceiptsPort } from "./routes/receipts";
import { snapshotRoutes } from "./routes/snapshots";
import type { App, TypeBoxProvider } from "./types";
import { createValidatorCompiler } from "./validation";
import { serverTlsOptions, type ServerCertificate } from "./tls";

export const API_PREFIX = "/api/v1";

export interface AppDeps {
  readonly domain: Domain;
  readonly receipts: ReceiptsPort;
  readonly verifier: TokenVerifier;
  readonly audit: AuditSink;
  readonly rateLimiter: RateLimiter;
  readonly snapshotCache: CurrentSnapshotCache;
  readonly metrics: ServiceMetrics;
  readonly health: HealthService;
  readonly bodyLimitBytes: number;
  /** Largest body of POST /api/v1/observations/batch (KNHK_BATCH_BODY_LIMIT_BYTES); default: bodyLimitBytes. */
  readonly batchBodyLimitBytes?: number;
  readonly logger?: FastifyServerOptions["logger"];
  readonly tracer?: Tracer;
  /** Serve HTTPS (TLS 1.3 only) with this certificate; absent: plain HTTP. */
  readonly https?: ServerCertificate;
}

/** The API server (port 8080): health, readiness and /api/v1, with every dependency injected. */
export async function buildApp(deps: AppDeps): Promise<App> {
  const app = Fastify({
    ...(deps.https ? { https: serverTlsOptions(deps.https) } : {}),
    logger: deps.logger ?? false,
    bodyLimit: deps.bodyLimitBytes,
    // Fastify 5 rejects JSON with __proto__/constructor keys (prototype poisoning) by default.
    onProtoPoisoning: "error",
    onConstructorPoisoning: "error",
    requestIdHeader: "x-request-id",
    return503OnClosing: true,
    forceCloseConnections: "idle",
    // Errors before routing (a URL that is not valid percent-encoded UTF-8) get the same 400 body.
    frameworkErrors: (error, request, reply) => errorHandler(error, request, reply),
  }).withTypeProvider<TypeBoxProvider>() as unknown as App;

  installDepthCheckedJsonParser(app);
  app.setValidatorCompiler(createValidatorCompiler());
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: "not_found", message: `no route ${request.method} ${request.url.split("?")[0]}` }),
  );
  installObservability(app, deps.metrics, deps.tracer);

  await app.register(healthRoutes, { health: deps.health });
  await app.register(
    async (api) => {
      // Fail at start-up, not at request time, if a route forgets its permission.
      api.addHook("onRoute", (route) => {
        if (!route.config?.permission) throw new Error(`route ${route.method} ${route.url} declares no permission`);
      });
      api.addHook("onRequest", createAuthHook(deps));
      api.addHook("onSend", auditBeforeResponse(deps.audit, (error) => app.log.error({ err: error }, "audit log write failed; the request was refused")));
      api.addHook("preValidation", refuseUnstorableInput);
      const { domain } = deps;
      await api.register(observationRoutes, { prefix: "/observations", domain, batchBodyLimitBytes: deps.batchBodyLimitBytes ?? deps.bodyLimitBytes });
      await api.register(snapshotRoutes, { prefix: "/snapshots", domain, cache: deps.snapshotCache });
      await api.register(patternRoutes, { prefix: "/patterns", domain });
      await api.register(analyticsRoutes, { prefix: "/analytics", domain });
      await api.register(proposalRoutes, { prefix: "/proposals", domain });
      await api.register(mapeKRoutes, { prefix: "/mape-k", domain });
      await api.register(receiptRoutes, { prefix: "/receipts", receipts: deps.receipts });
    },
    { prefix: API_PREFIX },
  );
  await app.ready();
  return app;
}
