/**
 * `npm run policy -- --stack <stack> [--resources <resources.json>] [--config <policy-config.json>] [--format text|json]`
 *
 * Runs every policy of the CrossGuard pack (policy/) against the stack as the offline render
 * sees it (or a given resources.json) and prints each violation with resource, policy and
 * message. Exit 1 when a mandatory policy is violated, 2 on bad usage.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { mandatoryViolations, fromRendered, runPolicies, type HarnessResult, type RenderedResource } from "../policy/lib/harness";
import { ALL_POLICIES } from "../policy/policies/all";

export interface PolicyRunOptions {
  readonly stack: string;
  readonly resourcesFile?: string;
  readonly configFile?: string;
  readonly stackTags?: Record<string, string>;
}

export async function loadResources(options: PolicyRunOptions): Promise<RenderedResource[]> {
  if (options.resourcesFile) return JSON.parse(readFileSync(options.resourcesFile, "utf8")) as RenderedResource[];
  const { renderStack } = await import("../infra/testing/render");
  return (await renderStack(options.stack)).resources;
}

export async function checkStack(resources: readonly RenderedResource[], options: Omit<PolicyRunOptions, "stack" | "resourcesFile"> = {}): Promise<HarnessResult> {
  const config = options.configFile ? (JSON.parse(readFileSync(options.configFile, "utf8")) as Record<string, Record<string, unknown>>) : undefined;
  return runPolicies(ALL_POLICIES, fromRendered(resources), { config, stackTags: options.stackTags });
}

/** Human report: one block per violation, mandatory first, then a summary line. */
export function formatReport(stack: string, result: HarnessResult, resourceCount: number): string {
  const lines: string[] = [];
  const sorted = [...result.violations].sort((a, b) => Number(b.enforcementLevel === "mandatory") - Number(a.enforcementLevel === "mandatory"));
  for (const v of sorted) {
    const subject = v.urn ? `${v.resourceType ?? "?"} ${v.resourceName ?? v.urn}` : `stack ${stack}`;
    lines.push(`[${v.enforcementLevel}] ${v.policy}`, `  resource: ${subject}`, `  ${v.message}`);
  }
  const mandatory = mandatoryViolations(result).length;
  const advisory = result.violations.length - mandatory;
  const applied = ALL_POLICIES.filter((p) => !(p.kind === "stack" && result.notApplicable[p.name])).length;
  lines.push(`policy: stack ${stack}: ${resourceCount} resources, ${ALL_POLICIES.length} policies (${applied} applied), ${mandatory} mandatory and ${advisory} advisory violation(s)`);
  return lines.join("\n");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      stack: { type: "string" },
      resources: { type: "string" },
      config: { type: "string" },
      format: { type: "string", default: "text" },
      environment: { type: "string" },
    },
  });
  if (!values.stack) {
    console.error("usage: npm run policy -- --stack <stack> [--resources <resources.json>] [--config <policy-config.json>] [--format text|json] [--environment <env>]");
    return 2;
  }
  if (values.format !== "text" && values.format !== "json") {
    console.error(`--format must be text or json, not ${JSON.stringify(values.format)}`);
    return 2;
  }
  const options: PolicyRunOptions = {
    stack: values.stack,
    resourcesFile: values.resources,
    configFile: values.config,
    stackTags: values.environment ? { "knhk:environment": values.environment } : undefined,
  };
  const resources = await loadResources(options);
  const result = await checkStack(resources, options);
  if (values.format === "json") {
    console.log(JSON.stringify({ stack: values.stack, ...result }, null, 2));
  } else {
    console.log(formatReport(values.stack, result, resources.length));
  }
  return mandatoryViolations(result).length > 0 ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`policy: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(2);
    },
  );
}
