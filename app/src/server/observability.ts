import { context, propagation, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from "@opentelemetry/api";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ServiceMetrics } from "../telemetry/metrics";
import type { App } from "./types";

const spans = new WeakMap<FastifyRequest, Span>();

function statusClass(code: number): string {
  return `${Math.floor(code / 100)}xx`;
}

/** Request metrics (route templates, never raw URLs) and one server span per request. */
export function installObservability(app: App, metrics: ServiceMetrics, tracer: Tracer = trace.getTracer("knhk")): void {
  app.addHook("onRequest", async (request: FastifyRequest) => {
    const parent = propagation.extract(context.active(), request.headers);
    const route = request.routeOptions.url ?? "unmatched";
    const span = tracer.startSpan(`${request.method} ${route}`, { kind: SpanKind.SERVER, attributes: { "http.request.method": request.method, "http.route": route, "url.path": request.url.split("?")[0] } }, parent);
    spans.set(request, span);
  });
  app.addHook("onResponse", async (request: FastifyRequest, reply: FastifyReply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.inc("knhk_http_requests_total", { method: request.method, route, status_class: statusClass(reply.statusCode) });
    metrics.observe("knhk_http_request_duration_seconds", { method: request.method, route }, reply.elapsedTime / 1000);
    const span = spans.get(request);
    if (span) {
      span.setAttribute("http.response.status_code", reply.statusCode);
      if (request.principal) span.setAttribute("enduser.id", request.principal.subject);
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      spans.delete(request);
    }
  });
}
