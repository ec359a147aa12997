/**
 * What Patroni's Kubernetes DCS (endpoints mode, `use_endpoints: true`) may do in its namespace,
 * verb by verb; each one is what a call of Patroni 4.0 needs (test/cluster/patroni-dcs.test.ts
 * removes each in turn and watches a member break):
 *
 * - endpoints list + watch: every member's cache of the leader (`postgres-primary`), config, sync,
 *   failover and failsafe objects (label selector: the pod labels plus the scope label);
 * - endpoints create: the first member creates them (initialize key, leader lock);
 * - endpoints patch: the leader renews its lock (and its IP in it) every loop; members write
 *   sync, failsafe and history;
 * - pods list + watch: the members' cache of each other's state annotations;
 * - pods patch: each member writes its own role label (what postgres-replicas selects) and status;
 * - endpoints get: after a conflicting write of the lock (409: a lost race for it, or someone
 *   else's write of the Endpoints crossing the leader's renewal) Patroni re-reads it from the API
 *   server; without it the leader gives up its lock on the first such conflict (the test makes a
 *   lone member meet one, test/support/crossing-write.ts).
 *
 * Not granted: delete/deletecollection (`patronictl remove` is an operator's act, with an
 * operator's credentials), update (Patroni never replaces an object), services/create (the stack
 * declares `postgres-primary-config`, and Patroni accepts a 403 or 409 there), configmaps (not
 * used in endpoints mode).
 */
export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
}

export const PATRONI_ROLE_RULES: readonly PolicyRule[] = [
  { apiGroups: [""], resources: ["endpoints"], verbs: ["create", "get", "list", "patch", "watch"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["list", "patch", "watch"] },
];

/** Each (resource, verb) the rules grant, as `configmaps/patch`. */
export function grantedVerbs(rules: readonly PolicyRule[]): string[] {
  return rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${res}/${v}`)));
}

/** The rules without one `resource/verb` (rules left without verbs are dropped). */
export function withoutVerb(rules: readonly PolicyRule[], resourceVerb: string): PolicyRule[] {
  const [resource, verb] = resourceVerb.split("/");
  if (!grantedVerbs(rules).includes(resourceVerb)) throw new Error(`the rules grant no ${resourceVerb}`);
  return rules.flatMap((r) => {
    if (!r.resources.includes(resource)) return [r];
    const others = r.resources.filter((x) => x !== resource);
    const verbs = r.verbs.filter((v) => v !== verb);
    return [...(others.length ? [{ ...r, resources: others }] : []), ...(verbs.length ? [{ ...r, resources: [resource], verbs }] : [])];
  });
}
