/**
 * Test helper: builds engine-shaped validation args (props, urn, stackTags, getConfig,
 * notApplicable, parent links) for hand-built resources and runs one policy on them.
 * Never imports policy/index.ts (that would start the analyzer server).
 */
import type { KnhkPolicy } from "../../policy/lib/define";
import { policyConfig, resourceArgs, runPolicies, stackArgs } from "../../policy/lib/harness";
import type { PolicyInputResource } from "../../policy/lib/model";

export const PROJECT = "knhk";

export interface Built extends PolicyInputResource {}

/** A resource of `stack` with a URN like the engine makes (parent type chain included). */
export function resource(
  stack: string,
  type: string,
  name: string,
  props: Record<string, unknown>,
  parent?: PolicyInputResource,
): Built {
  const parentChain = parent && parent.type !== "pulumi:pulumi:Stack" ? `${parent.urn.split("::")[2]}$` : "";
  return {
    type,
    name,
    urn: `urn:pulumi:${stack}::${PROJECT}::${parentChain}${type}::${name}`,
    parent: parent?.urn ?? `urn:pulumi:${stack}::${PROJECT}::pulumi:pulumi:Stack::${PROJECT}-${stack}`,
    props,
  };
}

export interface RunOptions {
  readonly stackTags?: Record<string, string>;
  readonly config?: Record<string, unknown>;
}

export interface Outcome {
  readonly violations: string[];
  readonly notApplicable?: string;
}

/** Runs a resource policy on one resource, or a stack policy on a list, through the engine-shaped args. */
export async function check(policy: KnhkPolicy, subject: PolicyInputResource | readonly PolicyInputResource[], options: RunOptions = {}): Promise<Outcome> {
  const tags = new Map(Object.entries(options.stackTags ?? {}));
  const config = policyConfig(policy, options.config);
  const violations: string[] = [];
  try {
    if (policy.kind === "resource") {
      if (Array.isArray(subject)) throw new Error(`${policy.name} is a resource policy: pass one resource`);
      await policy.validateResource(resourceArgs(subject as PolicyInputResource, tags, config), (m) => violations.push(m));
    } else {
      const list = Array.isArray(subject) ? (subject as PolicyInputResource[]) : [subject as PolicyInputResource];
      await policy.validateStack(stackArgs(list, tags, config), (m) => violations.push(m));
    }
  } catch (error) {
    if (error instanceof Error && error.message.startsWith("not applicable: ")) {
      return { violations, notApplicable: error.message.slice("not applicable: ".length) };
    }
    throw error;
  }
  return { violations };
}

/** Runs a whole policy list over a stack (as `npm run policy` does). */
export { runPolicies };
