import { parse } from "@cdktf/hcl2json";
import {
  CAPABILITIES,
  migrationPolicyRules,
  operatorPolicyRules,
  policyAllows,
  renderPolicyHcl,
  servicePolicyRules,
  type Capability,
  type PolicyRule,
  VAULT_OBJECT_NAMES,
  vaultLayout,
} from "../../infra/render/vault-policies";
import { startOpenBao, type TestOpenBao } from "../support/openbao";

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
  ["transit/keys/knhk-receipts", "read", true],
  ["transit/sign/knhk-receipts", "read", false],
  ["transit/sign/knhk-receipts/sha2-256", "update", false],
  ["transit/sign/other-key", "update", false],
  ["transit/verify/knhk-receipts", "update", false],
  ["transit/keys/knhk-receipts", "update", false],
  ["transit/keys/knhk-receipts", "delete", false],
  ["transit/keys/knhk-receipts/rotate", "update", false],
  ["transit/keys/knhk-receipts/config", "update", false],
  ["transit/keys/knhk-receipts/trim", "update", false],
  ["transit/keys/other-key", "read", false],
  ["transit/keys", "list", false],
  ["transit/export/signing-key/knhk-receipts", "read", false],
  ["transit/backup/knhk-receipts", "read", false],
  ["transit/encrypt/knhk-receipts", "update", false],
  ["transit/hmac/knhk-receipts", "update", false],
  ["sys/policies/acl/knhk-service", "update", false],
  ["sys/policy/knhk-service", "update", false],
  ["sys/auth/kubernetes", "update", false],
  ["auth/kubernetes/role/knhk-service", "update", false],
  ["sys/mounts/secret", "update", false],
  ["auth/token/renew-self", "update", true],
  ["auth/token/create", "update", false],
];

// What the migration Job (owner credential, registering transit versions) may do.
const MIGRATION_MATRIX: [string, Capability, boolean][] = [
  ["database/static-creds/knhk-owner", "read", true],
  ["database/creds/knhk-app", "read", false],
  ["database/rotate-role/knhk-owner", "update", false],
  ["transit/keys/knhk-receipts", "read", true],
  ["transit/sign/knhk-receipts", "update", false],
  ["transit/keys/knhk-receipts/rotate", "update", false],
  ["transit/export/signing-key/knhk-receipts", "read", false],
  ["secret/data/knhk/api/signing-key", "read", false],
  ["secret/data/knhk/encryption/master-key", "read", false],
  ["sys/policies/acl/knhk-migration", "update", false],
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

  it("the migration policy reads the owner credential and the transit public keys, and signs nothing", async () => {
    const rules = await parsePolicy(renderPolicyHcl(migrationPolicyRules(layout)));
    for (const [path, capability, allowed] of MIGRATION_MATRIX) {
      expect({ path, capability, allowed: policyAllows(rules, path, capability) }).toEqual({ path, capability, allowed });
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

/**
 * The same rendered HCL (the text the stack writes: test/infra/vault-archive-components.test.ts
 * holds the rendered vault.Policy resources to it) loaded into a real OpenBao: Vault's own
 * evaluation (sys/capabilities) must agree with the matrices, and real requests with a token that
 * has only the service policy sign, and are refused (403) everything else of transit.
 */
describe("the rendered policies on a real OpenBao", () => {
  let bao: TestOpenBao;
  let serviceToken: string;
  let migrationToken: string;
  const key = VAULT_OBJECT_NAMES.signingKey;

  beforeAll(async () => {
    bao = await startOpenBao();
    await bao.enableMount("transit", "transit");
    await bao.enableMount("database", "database");
    for (const name of [key, "other-key"]) await bao.root("POST", `transit/keys/${name}`, { type: "ed25519", exportable: false });
    await bao.writePolicy("knhk-service", renderPolicyHcl(servicePolicyRules(layout)));
    await bao.writePolicy("knhk-migration", renderPolicyHcl(migrationPolicyRules(layout)));
    serviceToken = await bao.createToken(["knhk-service"]);
    migrationToken = await bao.createToken(["knhk-migration"]);
  }, 60_000);
  afterAll(async () => {
    await bao?.stop();
  });

  /** Vault's capability names for a path, evaluated by Vault for `token`. */
  async function capabilities(token: string, paths: string[]): Promise<Record<string, string[]>> {
    const { body } = await bao.root("POST", "sys/capabilities", { token, paths });
    return Object.fromEntries(paths.map((p) => [p, body[p] as string[]]));
  }

  it("OpenBao's evaluation of the service policy is the matrix", async () => {
    const caps = await capabilities(serviceToken, [...new Set(SERVICE_MATRIX.map(([path]) => path))]);
    for (const [path, capability, allowed] of SERVICE_MATRIX) {
      expect({ path, capability, allowed: caps[path].includes(capability) }).toEqual({ path, capability, allowed });
    }
  });

  it("OpenBao's evaluation of the migration policy is the matrix", async () => {
    const caps = await capabilities(migrationToken, [...new Set(MIGRATION_MATRIX.map(([path]) => path))]);
    for (const [path, capability, allowed] of MIGRATION_MATRIX) {
      expect({ path, capability, allowed: caps[path].includes(capability) }).toEqual({ path, capability, allowed });
    }
  });

  it("with the service policy only: batch sign and key read work; rotate, export, config, other keys, verify are 403", async () => {
    const input = Buffer.alloc(32, 7).toString("base64");
    const signed = await bao.request("POST", `transit/sign/${key}`, { batch_input: [{ input }, { input }], key_version: 1 }, serviceToken);
    expect(signed.status).toBe(200);
    expect(signed.body.data.batch_results.map((r: { signature: string }) => r.signature)).toEqual([expect.stringMatching(/^vault:v1:/), expect.stringMatching(/^vault:v1:/)]);
    const read = await bao.request("GET", `transit/keys/${key}`, undefined, serviceToken);
    expect(read.status).toBe(200);
    expect(read.body.data.keys["1"].public_key).toMatch(/^[A-Za-z0-9+/]{43}=$/);

    const refused: [string, string, unknown?][] = [
      ["POST", `transit/keys/${key}/rotate`],
      ["POST", `transit/keys/${key}/config`, { deletion_allowed: true }],
      ["POST", `transit/keys/${key}/trim`, { min_available_version: 1 }],
      ["DELETE", `transit/keys/${key}`],
      ["GET", `transit/export/signing-key/${key}`],
      ["GET", `transit/backup/${key}`],
      ["POST", "transit/sign/other-key", { input }],
      ["GET", "transit/keys/other-key"],
      ["POST", `transit/verify/${key}`, { input, signature: signed.body.data.batch_results[0].signature }],
      ["POST", `transit/hmac/${key}`, { input }],
      ["LIST", "transit/keys"],
      ["POST", "transit/keys/new-key", { type: "ed25519" }],
      ["PUT", "sys/policies/acl/knhk-service", { policy: 'path "*" { capabilities = ["sudo"] }' }],
      ["POST", "sys/mounts/transit2", { type: "transit" }],
    ];
    for (const [method, path, body] of refused) {
      const response = await bao.request(method, path, body, serviceToken);
      expect({ method, path, status: response.status }).toEqual({ method, path, status: 403 });
    }
    // Nothing the refused calls did took effect: still one version, no new key.
    expect((await bao.root("GET", `transit/keys/${key}`)).body.data.latest_version).toBe(1);
  });

  it("with the migration policy only: key read works, signing is 403", async () => {
    expect((await bao.request("GET", `transit/keys/${key}`, undefined, migrationToken)).status).toBe(200);
    const input = Buffer.alloc(32, 1).toString("base64");
    expect((await bao.request("POST", `transit/sign/${key}`, { input }, migrationToken)).status).toBe(403);
    expect((await bao.request("POST", `transit/keys/${key}/rotate`, undefined, migrationToken)).status).toBe(403);
  });
});
