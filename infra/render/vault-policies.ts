/**
 * Vault policies as data, rendered to HCL (pure). The service may read its database credentials
 * and its KV paths, sign with the receipt transit key and read that key's public versions; nothing
 * else. The migration Job and the operators have their own, separate policies.
 */

export const CAPABILITIES = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface PolicyRule {
  readonly path: string;
  readonly capabilities: readonly Capability[];
}

export interface VaultLayout {
  readonly kvMount: string;
  readonly databaseMount: string;
  readonly transitMount: string;
  /** Prefix of the service's KV tree, e.g. `knhk` -> secret/data/knhk/... */
  readonly kvPrefix: string;
  /** Dynamic database role the service reads credentials from. */
  readonly databaseRole: string;
  /** Static (rotated) schema-owner role, for operators and migrations only. */
  readonly staticRole: string;
  /** Transit key that signs receipts. */
  readonly signingKey: string;
}

/** The fixed names of the service's Vault objects (mount paths come from the stack config). */
export const VAULT_OBJECT_NAMES = {
  kvPrefix: "knhk",
  databaseRole: "knhk-app",
  staticRole: "knhk-owner",
  signingKey: "knhk-receipts",
} as const;

/** The layout the policies are written for, from the configured mount paths. */
export function vaultLayout(mounts: { readonly kv: string; readonly database: string; readonly transit: string }): VaultLayout {
  return { kvMount: mounts.kv, databaseMount: mounts.database, transitMount: mounts.transit, ...VAULT_OBJECT_NAMES };
}

/** The KV v2 tree of the guide; `encryption/*` is for administrators only. */
export const KV_SECRETS = {
  database: ["postgres", "redis"],
  api: ["signing-key", "verifying-key", "jwt-secret"],
  encryption: ["master-key", "kms-key-id"],
} as const;

export function servicePolicyRules(l: VaultLayout): PolicyRule[] {
  return [
    { path: `${l.databaseMount}/creds/${l.databaseRole}`, capabilities: ["read"] },
    { path: `${l.kvMount}/data/${l.kvPrefix}/database/*`, capabilities: ["read"] },
    { path: `${l.kvMount}/data/${l.kvPrefix}/api/*`, capabilities: ["read"] },
    // Explicit deny: a later, broader grant elsewhere must never expose the master key.
    { path: `${l.kvMount}/data/${l.kvPrefix}/encryption/*`, capabilities: ["deny"] },
    // Receipt signing: sign with the receipt key, read its public versions (which one signs, and
    // local verification of each signature). Nothing else of transit: no rotate, export, config.
    { path: `${l.transitMount}/sign/${l.signingKey}`, capabilities: ["update"] },
    { path: `${l.transitMount}/keys/${l.signingKey}`, capabilities: ["read"] },
    // Vault Agent keeps its token and the database lease alive.
    { path: "auth/token/renew-self", capabilities: ["update"] },
    { path: "auth/token/lookup-self", capabilities: ["read"] },
    { path: "sys/leases/renew", capabilities: ["update"] },
  ];
}

/**
 * The pre-deploy migration Job: the schema owner's rotated credential (static role) to apply
 * migrations, and the transit key's public versions to register them as the owner. Nothing else.
 */
export function migrationPolicyRules(l: VaultLayout): PolicyRule[] {
  return [
    { path: `${l.databaseMount}/static-creds/${l.staticRole}`, capabilities: ["read"] },
    { path: `${l.transitMount}/keys/${l.signingKey}`, capabilities: ["read"] },
    { path: "auth/token/lookup-self", capabilities: ["read"] },
  ];
}

export function operatorPolicyRules(l: VaultLayout): PolicyRule[] {
  return [
    { path: `${l.kvMount}/data/${l.kvPrefix}/*`, capabilities: ["read"] },
    { path: `${l.kvMount}/metadata/${l.kvPrefix}/*`, capabilities: ["read", "list"] },
    { path: `${l.databaseMount}/static-creds/${l.staticRole}`, capabilities: ["read"] },
    { path: `${l.transitMount}/verify/${l.signingKey}`, capabilities: ["update"] },
    { path: `${l.transitMount}/keys/${l.signingKey}`, capabilities: ["read"] },
    { path: "sys/leases/lookup", capabilities: ["update"] },
  ];
}

const PATH = /^[A-Za-z0-9_.\-/+*]+$/;

/** Renders rules as HCL; rejects paths or capabilities Vault would not accept. */
export function renderPolicyHcl(rules: readonly PolicyRule[]): string {
  return rules
    .map((rule) => {
      if (!PATH.test(rule.path) || rule.path.startsWith("/")) throw new Error(`policy path "${rule.path}" is not a Vault path`);
      if (rule.path.slice(0, -1).includes("*")) throw new Error(`policy path "${rule.path}": '*' is only allowed at the end`);
      if (rule.capabilities.length === 0) throw new Error(`policy path "${rule.path}" has no capabilities`);
      for (const c of rule.capabilities) {
        if (!CAPABILITIES.includes(c)) throw new Error(`policy path "${rule.path}": unknown capability "${c}"`);
      }
      if (rule.capabilities.includes("deny") && rule.capabilities.length > 1) {
        throw new Error(`policy path "${rule.path}": deny cannot be combined with other capabilities`);
      }
      const caps = rule.capabilities.map((c) => JSON.stringify(c)).join(", ");
      return `path ${JSON.stringify(rule.path)} {\n  capabilities = [${caps}]\n}\n`;
    })
    .join("\n");
}

function matches(pattern: string, path: string): boolean {
  const glob = pattern.endsWith("*");
  const body = glob ? pattern.slice(0, -1) : pattern;
  const pSeg = body.split("/");
  const xSeg = path.split("/");
  if (!glob && pSeg.length !== xSeg.length) return false;
  if (glob && xSeg.length < pSeg.length) return false;
  return pSeg.every((seg, i) => {
    const last = i === pSeg.length - 1;
    if (seg === "+") return xSeg[i] !== undefined && xSeg[i] !== "";
    if (glob && last) return xSeg.slice(i).join("/").startsWith(seg);
    return seg === xSeg[i];
  });
}

/**
 * Vault's decision for one policy: the most specific matching rule wins (an exact path over a glob,
 * then the longest prefix before the first wildcard); `deny` refuses everything.
 */
export function policyAllows(rules: readonly PolicyRule[], path: string, capability: Capability): boolean {
  const candidates = rules.filter((r) => matches(r.path, path));
  if (candidates.length === 0) return false;
  const specificity = (r: PolicyRule) => {
    const exact = !r.path.includes("*") && !r.path.includes("+");
    const wildcardAt = [r.path.indexOf("*"), r.path.indexOf("+")].filter((i) => i >= 0);
    const prefix = wildcardAt.length ? Math.min(...wildcardAt) : r.path.length;
    return (exact ? 1e6 : 0) + prefix * 10 + (r.path.split("+").length - 1 === 0 ? 1 : 0);
  };
  const winner = candidates.reduce((best, r) => (specificity(r) > specificity(best) ? r : best));
  if (winner.capabilities.includes("deny")) return false;
  return winner.capabilities.includes(capability);
}
