import { trace, type Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { node, resources, tracing } from "@opentelemetry/sdk-node";

export interface Tracing {
  readonly tracer: Tracer;
  /** Flushes buffered spans and stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * Traces only (metrics stay on Prometheus): with OTEL_EXPORTER_OTLP_ENDPOINT set, spans go to
 * `<endpoint>/v1/traces` over OTLP/HTTP; without it the API's no-op tracer costs nothing.
 */
export function startTracing(settings: { readonly otlpEndpoint?: string; readonly serviceName: string }): Tracing {
  if (!settings.otlpEndpoint) {
    return { tracer: trace.getTracer("knhk"), shutdown: async () => undefined };
  }
  const exporter = new OTLPTraceExporter({ url: `${settings.otlpEndpoint.replace(/\/+$/, "")}/v1/traces` });
  const provider = new node.NodeTracerProvider({
    resource: resources.resourceFromAttributes({ "service.name": settings.serviceName }),
    spanProcessors: [new tracing.BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 })],
  });
  provider.register();
  return {
    tracer: provider.getTracer("knhk"),
    async shutdown() {
      await provider.shutdown();
    },
  };
}
