export { OTHER, SCHEMA_VIOLATIONS, ServiceMetrics, type ServiceMetricName } from "./metrics";
export { attachPoolMetrics } from "./pool";
export { startTracing, type Tracing } from "./tracing";
