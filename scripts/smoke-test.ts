/**
 * `npm run smoke-test -- (--url <api-url> --metrics-url <metrics-url> | --target blue|green|live [--namespace knhk]) [options]`
 *
 * Checks one KNHK endpoint: /health and its dependencies, /ready, an observation round trip,
 * pattern detection, the metrics contract (registry/), receipt chain verification of the last
 * receipts, and /health latency. Tokens from KNHK_SMOKE_TOKEN and KNHK_SMOKE_INGEST_TOKEN.
 * Exit 0 when every check passes, 1 naming the first failed check, 2 bad usage.
 */
import { parseArgs } from "node:util";
import { consoleLogger, Kubectl, smokeOptionsFromEnv, TemplateEndpoints } from "./lib/deploy/adapters";
import { numberFlag, runMain, UsageError } from "./lib/deploy/cli";
import type { Color, EndpointPort } from "./lib/deploy/ports";
import { DEFAULT_SMOKE, runSmokeTest } from "./lib/smoke";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      "metrics-url": { type: "string" },
      target: { type: "string" },
      namespace: { type: "string", default: "knhk" },
      "kube-context": { type: "string" },
      kubectl: { type: "string", default: "kubectl" },
      "allow-degraded": { type: "string", multiple: true, default: [] },
      "receipt-limit": { type: "string" },
      "latency-samples": { type: "string" },
      "max-p95-ms": { type: "string" },
      format: { type: "string", default: "text" },
    },
  });
  let endpoints: EndpointPort;
  let target: Color | "live" = "live";
  if (values.url || values["metrics-url"]) {
    if (!values.url || !values["metrics-url"]) throw new UsageError("--url and --metrics-url go together");
    endpoints = new TemplateEndpoints(values.url, values["metrics-url"]);
  } else if (values.target) {
    if (!["blue", "green", "live"].includes(values.target)) throw new UsageError(`--target must be blue, green or live, not ${JSON.stringify(values.target)}`);
    target = values.target as Color | "live";
    endpoints = new Kubectl({ bin: values.kubectl!, namespace: values.namespace!, context: values["kube-context"], log: consoleLogger });
  } else {
    throw new UsageError("give --url and --metrics-url, or --target blue|green|live");
  }
  const options = smokeOptionsFromEnv(process.env, {
    allowDegraded: values["allow-degraded"],
    receiptLimit: numberFlag("receipt-limit", values["receipt-limit"], DEFAULT_SMOKE.receiptLimit, 1),
    latencySamples: numberFlag("latency-samples", values["latency-samples"], DEFAULT_SMOKE.latencySamples, 1),
    maxP95Ms: numberFlag("max-p95-ms", values["max-p95-ms"], DEFAULT_SMOKE.maxP95Ms, 1),
  });
  const endpoint = await endpoints.open(target);
  try {
    const text = values.format !== "json";
    const result = await runSmokeTest(endpoint, options, undefined, text ? (line) => console.log(line) : undefined);
    if (!text) console.log(JSON.stringify(result, null, 2));
    else console.log(result.ok ? `smoke test passed (${result.checks.length} checks)` : `smoke test FAILED at check "${result.failedCheck}": ${result.message}`);
    return result.ok ? 0 : 1;
  } finally {
    await endpoint.close();
  }
}

runMain("smoke-test", main, consoleLogger);
