/**
 * Builds CrossGuard policies from pure checks. A policy module declares its check over plain
 * data (`model.ts`); `resourcePolicy`/`stackPolicy` wrap it into the object `@pulumi/policy`
 * expects, deriving the context (stack, environment, config) from the validation args.
 * Only types come from `@pulumi/policy` here, so jest and `npm run policy` never start the
 * analyzer server that `new PolicyPack(...)` starts.
 */
import type {
  EnforcementLevel,
  PolicyConfigSchema,
  PolicyResource,
  ReportViolation,
  ResourceValidation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import { isNotApplicable, parseUrn, type PolicyContext, type PolicyInputResource, type StackSettings, type Verdict } from "./model";
import { loadStackSettings } from "./stackSettings";

/** Stack tag that overrides which environment a stack counts as (e.g. a `prod-eu` stack). */
export const ENVIRONMENT_TAG = "knhk:environment";

interface Definition {
  readonly name: string;
  readonly description: string;
  readonly enforcementLevel: EnforcementLevel;
  readonly configSchema?: PolicyConfigSchema;
}

export interface ResourceCheckDefinition extends Definition {
  /** Pure: one resource's inputs -> violations or not applicable. */
  readonly check: (resource: PolicyInputResource, ctx: PolicyContext) => Verdict | Promise<Verdict>;
}

export interface StackCheckDefinition extends Definition {
  /** Pure: every resource of the stack -> violations (each optionally naming a resource) or not applicable. */
  readonly check: (resources: readonly PolicyInputResource[], ctx: PolicyContext) => Verdict | Promise<Verdict>;
}

/** A CrossGuard resource policy that keeps its pure check reachable for the offline harness. */
export type KnhkResourcePolicy = ResourceValidationPolicy & { readonly kind: "resource"; readonly definition: ResourceCheckDefinition; validateResource: ResourceValidation };
export type KnhkStackPolicy = StackValidationPolicy & { readonly kind: "stack"; readonly definition: StackCheckDefinition };
export type KnhkPolicy = KnhkResourcePolicy | KnhkStackPolicy;

export function resourcePolicy(definition: ResourceCheckDefinition): KnhkResourcePolicy {
  return {
    kind: "resource",
    definition,
    name: definition.name,
    description: definition.description,
    enforcementLevel: definition.enforcementLevel,
    configSchema: definition.configSchema,
    validateResource: async (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
      const resource: PolicyInputResource = { type: args.type, name: args.name, urn: args.urn, props: args.props };
      const ctx = contextFor(args.urn, args.stackTags, args.getConfig<Record<string, unknown>>());
      report(await definition.check(resource, ctx), args, reportViolation);
    },
  };
}

export function stackPolicy(definition: StackCheckDefinition): KnhkStackPolicy {
  return {
    kind: "stack",
    definition,
    name: definition.name,
    description: definition.description,
    enforcementLevel: definition.enforcementLevel,
    configSchema: definition.configSchema,
    validateStack: async (args: StackValidationArgs, reportViolation: ReportViolation) => {
      if (args.resources.length === 0) args.notApplicable("the stack declares no resources");
      const resources = args.resources.map(fromPolicyResource);
      const ctx = contextFor(resources[0].urn, args.stackTags, args.getConfig<Record<string, unknown>>());
      report(await definition.check(resources, ctx), args, reportViolation);
    },
  };
}

function report(verdict: Verdict, args: { notApplicable(reason?: string): never }, reportViolation: ReportViolation): void {
  if (isNotApplicable(verdict)) args.notApplicable(verdict.notApplicable);
  for (const violation of verdict) reportViolation(violation.message, violation.urn);
}

/** Engine resources carry object links; the checks read URNs. */
function fromPolicyResource(resource: PolicyResource): PolicyInputResource {
  const propertyDependencies: Record<string, string[]> = {};
  for (const [prop, deps] of Object.entries(resource.propertyDependencies ?? {})) {
    propertyDependencies[prop] = deps.map((d) => d.urn);
  }
  return {
    type: resource.type,
    name: resource.name,
    urn: resource.urn,
    parent: resource.parent?.urn,
    props: resource.props,
    propertyDependencies,
  };
}

function contextFor(urn: string, stackTags: ReadonlyMap<string, string>, config: Record<string, unknown>): PolicyContext {
  const stack = parseUrn(urn).stack;
  // Policy config may pin the storage classes (tests, other projects); otherwise the stack file says.
  const storageClasses = config.storageClasses;
  const stackSettings: StackSettings | undefined = Array.isArray(storageClasses)
    ? { storageClasses: storageClasses.map(String) }
    : loadStackSettings(stack);
  return { stack, environment: stackTags.get(ENVIRONMENT_TAG) ?? stack, config, stackSettings };
}
