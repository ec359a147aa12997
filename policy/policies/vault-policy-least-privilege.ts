import { parse as parseHcl } from "@cdktf/hcl2json";
import { resourcePolicy } from "../lib/define";
import { asArray, asRecord, notApplicable, type Violation } from "../lib/model";

export const VAULT_POLICY_TYPE = "vault:index/policy:Policy";

/** One `path "<p>" { capabilities = [...] }` rule of a Vault policy. */
export interface VaultPathRule {
  readonly path: string;
  readonly capabilities: readonly string[];
}

/** Parses a Vault policy (HCL or its JSON form) into path rules; throws on a syntax error. */
export async function parseVaultPolicy(text: string): Promise<VaultPathRule[]> {
  const trimmed = text.trim();
  const doc: unknown = trimmed.startsWith("{") ? JSON.parse(trimmed) : await parseHcl("policy.hcl", text);
  const paths = asRecord(asRecord(doc)?.path) ?? {};
  const rules: VaultPathRule[] = [];
  for (const [path, bodies] of Object.entries(paths)) {
    // hcl2json yields a list of blocks per path; Vault's JSON form a single object.
    for (const body of Array.isArray(bodies) ? bodies : [bodies]) {
      rules.push({ path, capabilities: asArray(asRecord(body)?.capabilities).map(String) });
    }
  }
  return rules;
}

/** A path whose first segment is a glob (`*`, `+/...`, `sec*`) reaches every mount. */
export function isWildcardRootPath(path: string): boolean {
  const first = path.replace(/^\/+/, "").split("/")[0];
  return first === "" || /[*+]/.test(first);
}

/**
 * No Vault policy grants `sudo` or any capability on a wildcard root path. The service's
 * least-privilege paths are asserted by the Vault capability-matrix tests; this policy is the
 * guard that stops a broad grant from reaching any environment.
 */
export const vaultPolicyLeastPrivilege = resourcePolicy({
  name: "vault-policy-least-privilege",
  description: "Vault policies grant no sudo and nothing on a wildcard root path.",
  enforcementLevel: "mandatory",
  check: async (resource) => {
    if (resource.type !== VAULT_POLICY_TYPE) return notApplicable("not a Vault policy");
    const name = String(resource.props.name ?? resource.name);
    const text = resource.props.policy;
    if (typeof text !== "string") return [{ message: `Vault policy ${name}: the policy document is not readable (${JSON.stringify(text)})` }];
    let rules: VaultPathRule[];
    try {
      rules = await parseVaultPolicy(text);
    } catch (error) {
      return [{ message: `Vault policy ${name}: cannot parse the policy document: ${(error as Error).message}` }];
    }
    const violations: Violation[] = [];
    for (const rule of rules) {
      const granted = rule.capabilities.filter((c) => c !== "deny");
      if (rule.capabilities.includes("sudo")) {
        violations.push({ message: `Vault policy ${name}: path "${rule.path}" grants sudo` });
      }
      if (isWildcardRootPath(rule.path) && granted.length > 0) {
        violations.push({ message: `Vault policy ${name}: path "${rule.path}" is a wildcard root path granting ${granted.join(", ")}` });
      }
    }
    return violations;
  },
});
