import { parse } from "yaml";
import { stackPolicy } from "../lib/define";
import { DEFAULT_REPLICATED_ENVIRONMENTS, environmentIn, environmentSchema } from "../lib/environments";
import { containersOf, describeObject, metadataName, podSpecOf, TYPES } from "../lib/kubernetes";
import { asArray, asRecord, dig, notApplicable, SECRET_PLACEHOLDER, type PolicyInputResource, type Violation } from "../lib/model";

const DEFAULT_MIN_MEMBERS = 2;

/** A patroni.yml found in a ConfigMap or Secret: the document, where it lives, under which key. */
interface PatroniDocument {
  readonly resource: PolicyInputResource;
  readonly key: string;
  readonly config: Record<string, unknown>;
}

/** Patroni configuration documents: YAML objects with `scope` and `bootstrap.dcs`. */
export function findPatroniDocuments(resources: readonly PolicyInputResource[]): { documents: PatroniDocument[]; unreadable: string[] } {
  const documents: PatroniDocument[] = [];
  const unreadable: string[] = [];
  for (const resource of resources) {
    if (resource.type !== TYPES.configMap && resource.type !== TYPES.secret) continue;
    const data = { ...(asRecord(resource.props.data) ?? {}), ...(asRecord(resource.props.stringData) ?? {}) };
    for (const [key, value] of Object.entries(data)) {
      if (!/patroni.*\.ya?ml$/i.test(key) && !/^patroni/i.test(key)) continue;
      if (value === SECRET_PLACEHOLDER) {
        unreadable.push(`${describeObject(resource)} key ${key} is a secret the offline render cannot read`);
        continue;
      }
      let text = String(value);
      if (resource.type === TYPES.secret && resource.props.data !== undefined && key in (asRecord(resource.props.data) ?? {})) {
        text = Buffer.from(text, "base64").toString("utf8");
      }
      try {
        const config = asRecord(parse(text));
        if (config && asRecord(dig(config, "bootstrap", "dcs"))) documents.push({ resource, key, config });
      } catch {
        unreadable.push(`${describeObject(resource)} key ${key} is not valid YAML`);
      }
    }
  }
  return { documents, unreadable };
}

/** StatefulSets that run Patroni: a container with PATRONI_* env or running `patroni`. */
function patroniStatefulSets(resources: readonly PolicyInputResource[]): PolicyInputResource[] {
  return resources.filter((r) => {
    if (r.type !== TYPES.statefulSet) return false;
    const pod = podSpecOf(r);
    return !!pod && containersOf(pod).some(({ container }) =>
      asArray(container.env).some((e) => String(asRecord(e)?.name ?? "").startsWith("PATRONI_")) ||
      [...asArray(container.command), ...asArray(container.args)].some((a) => /(^|\/)patroni(\s|$)/.test(String(a))),
    );
  });
}

function enabled(value: unknown): boolean {
  return value === true || value === "on" || value === "true" || value === "quorum";
}

/**
 * Stack policy (replicated environments): Patroni runs `synchronous_mode` with
 * `synchronous_mode_strict` (RPO 0: no commit without a synchronous standby) and at least two
 * members, read from the rendered patroni.yml and the StatefulSet's replicas.
 */
export const patroniSynchronousReplication = stackPolicy({
  name: "patroni-synchronous-replication",
  description: "In staging and prod Patroni runs synchronous_mode with synchronous_mode_strict and >= 2 members.",
  enforcementLevel: "mandatory",
  configSchema: {
    properties: {
      ...environmentSchema("replicatedEnvironments", DEFAULT_REPLICATED_ENVIRONMENTS),
      minMembers: { type: "integer", default: DEFAULT_MIN_MEMBERS },
    },
  },
  check: (resources, ctx) => {
    if (!environmentIn(ctx, "replicatedEnvironments", DEFAULT_REPLICATED_ENVIRONMENTS)) {
      return notApplicable(`environment ${ctx.environment} does not require replicated databases`);
    }
    const minMembers = typeof ctx.config.minMembers === "number" ? ctx.config.minMembers : DEFAULT_MIN_MEMBERS;
    const violations: Violation[] = [];
    const { documents, unreadable } = findPatroniDocuments(resources);
    for (const message of unreadable) violations.push({ message: `cannot verify Patroni replication: ${message}` });
    if (documents.length === 0 && unreadable.length === 0) {
      violations.push({ message: `stack ${ctx.stack} declares no Patroni configuration (patroni.yml in a ConfigMap or Secret)` });
    }
    for (const doc of documents) {
      const dcs = asRecord(dig(doc.config, "bootstrap", "dcs")) ?? {};
      const where = `${describeObject(doc.resource)} ${doc.key}`;
      if (!enabled(dcs.synchronous_mode)) {
        violations.push({ urn: doc.resource.urn, message: `${where}: bootstrap.dcs.synchronous_mode is ${JSON.stringify(dcs.synchronous_mode ?? null)}; must be true` });
      }
      if (dcs.synchronous_mode_strict !== true) {
        violations.push({ urn: doc.resource.urn, message: `${where}: bootstrap.dcs.synchronous_mode_strict is ${JSON.stringify(dcs.synchronous_mode_strict ?? null)}; must be true` });
      }
    }
    const sets = patroniStatefulSets(resources);
    if (sets.length === 0) violations.push({ message: `stack ${ctx.stack} declares no Patroni StatefulSet` });
    for (const set of sets) {
      const replicas = dig(set.props, "spec", "replicas") ?? 1;
      if (Number(replicas) < minMembers) {
        violations.push({ urn: set.urn, message: `${describeObject(set)} (${metadataName(set)}) runs ${String(replicas)} Patroni member(s); at least ${minMembers} required in ${ctx.environment}` });
      }
    }
    return violations;
  },
});
