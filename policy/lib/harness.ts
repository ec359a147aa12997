/**
 * Runs the pack's policies without the engine: builds the same validation args the engine hands
 * a policy (props, urn, stackTags, getConfig, notApplicable, parent links) from plain resource
 * records, such as `npm run render`'s resources.json, and collects what the policies report.
 * Used by `npm run policy` and by the policy tests.
 */
import type {
  EnforcementLevel,
  PolicyResource,
  PolicyResourceOptions,
  ResourceValidationArgs,
  StackValidationArgs,
} from "@pulumi/policy";
import type { KnhkPolicy } from "./define";
import type { PolicyInputResource } from "./model";

import type { RenderedResource } from "../../infra/testing/render";

/** One entry of resources.json, as `npm run render` (infra/testing/render.ts) writes it. */
export type { RenderedResource };

export interface HarnessOptions {
  /** Stack tags the engine would pass (e.g. `knhk:environment`). */
  readonly stackTags?: Record<string, string>;
  /** Policy config by policy name, as in a `--policy-pack-config` file. */
  readonly config?: Record<string, Record<string, unknown>>;
}

export interface PolicyFinding {
  readonly policy: string;
  readonly enforcementLevel: EnforcementLevel;
  readonly message: string;
  /** The resource the finding is about (absent: the stack as a whole). */
  readonly urn?: string;
  readonly resourceName?: string;
  readonly resourceType?: string;
}

export interface HarnessResult {
  readonly violations: PolicyFinding[];
  /** Policy name -> reasons it did not apply (deduplicated). */
  readonly notApplicable: Record<string, string[]>;
  /** How many (policy, resource) pairs a resource policy actually checked. */
  readonly checked: Record<string, number>;
}

class NotApplicableSignal extends Error {
  constructor(readonly reason: string) {
    super(`not applicable: ${reason}`);
  }
}

const DEFAULT_OPTS: PolicyResourceOptions = {
  protect: false,
  ignoreChanges: [],
  aliases: [],
  additionalSecretOutputs: [],
} as unknown as PolicyResourceOptions;

export function fromRendered(records: readonly RenderedResource[]): PolicyInputResource[] {
  return records.map((r) => ({ type: r.type, name: r.name, urn: r.urn, parent: r.parent ?? undefined, props: r.inputs }));
}

/** The config a policy sees: its schema defaults, overlaid with the configured values. */
export function policyConfig(policy: KnhkPolicy, configured: Record<string, unknown> = {}): Record<string, unknown> {
  const defaults: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(policy.configSchema?.properties ?? {})) {
    const value = (schema as { default?: unknown }).default;
    if (value !== undefined) defaults[key] = value;
  }
  const { enforcementLevel: _level, ...rest } = configured;
  return { ...defaults, ...rest };
}

function isType(type: string) {
  return (resourceClass: { new (...rest: any[]): unknown }) => (resourceClass as unknown as { __pulumiType?: string }).__pulumiType === type;
}

/** Engine-shaped args for one resource. */
export function resourceArgs(resource: PolicyInputResource, stackTags: ReadonlyMap<string, string>, config: Record<string, unknown>): ResourceValidationArgs {
  return {
    type: resource.type,
    name: resource.name,
    urn: resource.urn,
    props: resource.props,
    opts: DEFAULT_OPTS,
    stackTags,
    isType: isType(resource.type),
    asType: ((cls: { new (...rest: any[]): unknown }) => (isType(resource.type)(cls) ? resource.props : undefined)) as ResourceValidationArgs["asType"],
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicableSignal(reason ?? "");
    },
  };
}

/** Engine-shaped args for the whole stack: parents and property dependencies linked as objects. */
export function stackArgs(resources: readonly PolicyInputResource[], stackTags: ReadonlyMap<string, string>, config: Record<string, unknown>): StackValidationArgs {
  const byUrn = new Map<string, PolicyResource>();
  const list: PolicyResource[] = resources.map((r) => {
    const pr = {
      type: r.type,
      name: r.name,
      urn: r.urn,
      props: r.props,
      opts: DEFAULT_OPTS,
      dependencies: [] as PolicyResource[],
      propertyDependencies: {} as Record<string, PolicyResource[]>,
      isType: isType(r.type),
      asType: ((cls: { new (...rest: any[]): unknown }) => (isType(r.type)(cls) ? r.props : undefined)) as PolicyResource["asType"],
    } as PolicyResource;
    byUrn.set(r.urn, pr);
    return pr;
  });
  resources.forEach((r, i) => {
    const pr = list[i] as { parent?: PolicyResource; propertyDependencies: Record<string, PolicyResource[]> };
    // A parent outside the list (the stack resource) still gets a stub so the chain ends visibly.
    if (r.parent) pr.parent = byUrn.get(r.parent) ?? ({ urn: r.parent, type: r.parent.split("::")[2]?.split("$").pop() ?? "?" } as PolicyResource);
    for (const [prop, urns] of Object.entries(r.propertyDependencies ?? {})) {
      pr.propertyDependencies[prop] = urns.map((u) => byUrn.get(u)).filter((x): x is PolicyResource => !!x);
    }
  });
  return {
    resources: list,
    stackTags,
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicableSignal(reason ?? "");
    },
  };
}

/** Runs `policies` over `resources` exactly as the engine would call them. */
export async function runPolicies(policies: readonly KnhkPolicy[], resources: readonly PolicyInputResource[], options: HarnessOptions = {}): Promise<HarnessResult> {
  const stackTags: ReadonlyMap<string, string> = new Map(Object.entries(options.stackTags ?? {}));
  const violations: PolicyFinding[] = [];
  const notApplicable: Record<string, string[]> = {};
  const checked: Record<string, number> = {};
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const skip = (policy: string, reason: string) => {
    const list = (notApplicable[policy] ??= []);
    if (!list.includes(reason)) list.push(reason);
  };

  for (const policy of policies) {
    const configured = options.config?.[policy.name] ?? {};
    const level = (configured.enforcementLevel as EnforcementLevel | undefined) ?? policy.enforcementLevel ?? "advisory";
    if (level === "disabled") continue;
    const config = policyConfig(policy, configured);
    const record = (message: string, urn?: string) => {
      const resource = urn ? byUrn.get(urn) : undefined;
      violations.push({ policy: policy.name, enforcementLevel: level, message, urn, resourceName: resource?.name, resourceType: resource?.type });
    };
    if (policy.kind === "resource") {
      for (const resource of resources) {
        try {
          await policy.validateResource(resourceArgs(resource, stackTags, config), (message) => record(message, resource.urn));
          checked[policy.name] = (checked[policy.name] ?? 0) + 1;
        } catch (error) {
          if (!(error instanceof NotApplicableSignal)) throw error;
          skip(policy.name, error.reason);
        }
      }
    } else {
      try {
        await policy.validateStack(stackArgs(resources, stackTags, config), (message, urn) => record(message, urn));
      } catch (error) {
        if (!(error instanceof NotApplicableSignal)) throw error;
        skip(policy.name, error.reason);
      }
    }
  }
  return { violations, notApplicable, checked };
}

export function mandatoryViolations(result: HarnessResult): PolicyFinding[] {
  return result.violations.filter((v) => v.enforcementLevel === "mandatory");
}
