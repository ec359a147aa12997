import { parse } from "@cdktf/hcl2json";
import {
  CAPABILITIES,
  operatorPolicyRules,
  policyAllows,
  renderPolicyHcl,
  servicePolicyRules,
  type Capability,
  type PolicyRule,
  vaultLayout,
} from "../../infra/render/vault-policies";

const layout = vaultLayout({ kv: "secret", database: "database", transit: "transit" });

/** Parses rendered HCL the way Vault reads it and returns the rules; rejects unknown capabilities. */
async function parsePolicy(hcl: string): Promise<PolicyRule[]> {
  const doc = (await parse("policy.hcl", hcl)) as { path?: Record<string, { capabilities: string[] }[]> };
  return Object.entries(doc.path ?? {}).map(([path, blocks]) => {
    expect(blocks).toHaveLength(1);
    for (const c of blocks[0].capabilities) {
      if (!(CAPABILITIES as readonly string[]).includes(c)) throw new Error(`${path}: unknown capability "${c}"`);
    }
    return { path, capabilities: blocks[0].capabilities as Capability[] };
  });
}

// What the service must and must not be able to do: [path, capability, allowed].
const SERVICE_MATRIX: [string, Capability, boolean][] = [
  ["database/creds/knhk-app", "read", true],
  ["database/creds/other-role", "read", false],
  ["database/static-creds/knhk-owner", "read", false],
  ["database/config/knhk-postgres", "read", false],
  ["database/rotate-root/knhk-postgres", "update", false],
  ["secret/data/knhk/database/postgres", "read", true],
  ["secret/data/knhk/database/redis", "read", true],
  ["secret/data/knhk/api/signing-key", "read", true],
  ["secret/data/knhk/api/jwt-secret", "read", true],
  ["secret/data/knhk/api/signing-key", "create", false],
  ["secret/data/knhk/api/signing-key", "update", false],
  ["secret/data/knhk/database/postgres", "delete", false],
  ["secret/data/knhk/encryption/master-key", "read", false],
  ["secret/data/knhk/encryption/kms-key-id", "read", false],
  ["secret/metadata/knhk/api/signing-key", "delete", false],
  ["secret/data/other-app/api/key", "read", false],
  ["transit/sign/knhk-receipts", "update", true],
  ["transit/verify/knhk-receipts", "update", true],
  ["transit/sign/other-key", "update", false],
  ["transit/keys/knhk-receipts", "read", false],
  ["transit/keys/knhk-receipts/rotate", "update", false],
  ["transit/export/signing-key/knhk-receipts", "read", false],
  ["transit/encrypt/knhk-receipts", "update", false],
  ["sys/policies/acl/knhk-service", "update", false],
  ["sys/policy/knhk-service", "update", false],
  ["sys/auth/kubernetes", "update", false],
  ["auth/kubernetes/role/knhk-service", "update", false],
  ["sys/mounts/secret", "update", false],
  ["auth/token/renew-self", "update", true],
  ["auth/token/create", "update", false],
];

describe("Vault policies", () => {
  it("the service policy, parsed as HCL, grants exactly the capability matrix", async () => {
    const rules = await parsePolicy(renderPolicyHcl(servicePolicyRules(layout)));
    for (const [path, capability, allowed] of SERVICE_MATRIX) {
      expect({ path, capability, allowed: policyAllows(rules, path, capability) }).toEqual({ path, capability, allowed });
    }
  });

  it("the service policy grants no sudo, no wildcard root path and never writes KV", async () => {
    const rules = await parsePolicy(renderPolicyHcl(servicePolicyRules(layout)));
    for (const rule of rules) {
      expect(rule.capabilities).not.toContain("sudo");
      expect(rule.path).not.toMatch(/^[*+]/);
      expect(rule.path.split("/").length).toBeGreaterThan(1);
      if (rule.path.startsWith("secret/")) expect(rule.capabilities.every((c) => c === "read" || c === "deny")).toBe(true);
    }
  });

  it("the operator policy is read-only break glass, separate from the service's", async () => {
    const rules = await parsePolicy(renderPolicyHcl(operatorPolicyRules(layout)));
    expect(policyAllows(rules, "secret/data/knhk/encryption/master-key", "read")).toBe(true);
    expect(policyAllows(rules, "database/static-creds/knhk-owner", "read")).toBe(true);
    expect(policyAllows(rules, "secret/data/knhk/encryption/master-key", "update")).toBe(false);
    expect(policyAllows(rules, "transit/sign/knhk-receipts", "update")).toBe(false);
    expect(policyAllows(rules, "sys/policies/acl/knhk-operator", "update")).toBe(false);
    for (const rule of rules) expect(rule.capabilities).not.toContain("sudo");
  });

  it("a typo in a capability fails: the renderer refuses it and the HCL check catches a hand edit", async () => {
    expect(() => renderPolicyHcl([{ path: "secret/data/x", capabilities: ["raed" as Capability] }])).toThrow(/unknown capability "raed"/);
    const hcl = renderPolicyHcl(servicePolicyRules(layout)).replace('"read"', '"raed"');
    await expect(parsePolicy(hcl)).rejects.toThrow(/unknown capability "raed"/);
  });

  it("the renderer rejects malformed paths and mixed deny", () => {
    expect(() => renderPolicyHcl([{ path: "/secret/x", capabilities: ["read"] }])).toThrow(/not a Vault path/);
    expect(() => renderPolicyHcl([{ path: "secret/*/x", capabilities: ["read"] }])).toThrow(/only allowed at the end/);
    expect(() => renderPolicyHcl([{ path: "secret/x", capabilities: [] }])).toThrow(/no capabilities/);
    expect(() => renderPolicyHcl([{ path: "secret/x", capabilities: ["deny", "read"] }])).toThrow(/deny cannot be combined/);
  });

  it("evaluates like Vault: exact beats glob, longer prefix beats shorter, deny wins its path, + is one segment", () => {
    const rules: PolicyRule[] = [
      { path: "kv/data/*", capabilities: ["read"] },
      { path: "kv/data/team/*", capabilities: ["deny"] },
      { path: "kv/data/team/open", capabilities: ["read", "list"] },
      { path: "kv/+/one", capabilities: ["update"] },
    ];
    expect(policyAllows(rules, "kv/data/x", "read")).toBe(true);
    expect(policyAllows(rules, "kv/data/team/secret", "read")).toBe(false);
    expect(policyAllows(rules, "kv/data/team/open", "list")).toBe(true);
    expect(policyAllows(rules, "kv/meta/one", "update")).toBe(true);
    expect(policyAllows(rules, "kv/meta/deep/one", "update")).toBe(false);
    expect(policyAllows(rules, "other/path", "read")).toBe(false);
  });
});
