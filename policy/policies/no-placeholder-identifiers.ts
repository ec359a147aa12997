import { arnAccount, placeholderAccountProblem, placeholderArnProblems, placeholderIssuerProblem } from "../../infra/config/identifiers";
import { resourcePolicy } from "../lib/define";
import { asRecord, type Violation } from "../lib/model";

export const IAM_ROLE_TYPE = "aws:iam/role:Role";

/** A condition key of a web-identity trust policy: `<issuer host/path>:sub` (or aud, amr). */
const ISSUER_CONDITION_KEY = /^([a-z0-9.-]+\.[a-z]{2,}(?:\/\S*)?):(sub|aud|amr|oaud)$/i;

/** JSON documents (IAM policies) travel as strings: look inside them too. */
function parseDocument(text: string): unknown {
  const t = text.trim();
  if (!(t.startsWith("{") || t.startsWith("["))) return undefined;
  try {
    return JSON.parse(t);
  } catch {
    return undefined;
  }
}

/** Every problem in `value` (any depth, JSON strings included), each with its property path. */
export function placeholderProblems(value: unknown, path = ""): string[] {
  if (typeof value === "string") {
    const doc = parseDocument(value);
    if (doc !== undefined) return placeholderProblems(doc, path);
    const problems = placeholderArnProblems(value);
    if (/^\d{12}$/.test(value)) {
      const accountProblem = placeholderAccountProblem(value);
      if (accountProblem) problems.push(accountProblem);
    }
    return problems.map((p) => `${path || "(value)"}: ${p}`);
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => placeholderProblems(v, `${path}[${i}]`));
  const record = asRecord(value);
  if (!record) return [];
  return Object.entries(record).flatMap(([key, v]) => {
    const at = path ? `${path}.${key}` : key;
    const issuer = ISSUER_CONDITION_KEY.exec(key);
    const keyProblem = issuer ? placeholderIssuerProblem(issuer[1]) : undefined;
    return [...(keyProblem ? [`${at}: condition on issuer ${issuer![1]}: ${keyProblem}`] : []), ...placeholderProblems(v, at)];
  });
}

/** The IAM role's trust policy: who may assume it, and that the web-identity conditions name the same provider. */
export function trustPolicyProblems(assumeRolePolicy: unknown): string[] {
  const doc = typeof assumeRolePolicy === "string" ? parseDocument(assumeRolePolicy) : assumeRolePolicy;
  const raw = asRecord(doc)?.Statement;
  const statements = Array.isArray(raw) ? raw : raw ? [raw] : [];
  const problems: string[] = [];
  statements.forEach((s, i) => {
    const st = asRecord(s) ?? {};
    const federated = asRecord(st.Principal)?.Federated;
    const providers = (Array.isArray(federated) ? federated : federated !== undefined ? [federated] : []).map(String);
    for (const provider of providers) {
      if (!arnAccount(provider) && provider.startsWith("arn:")) problems.push(`assumeRolePolicy.Statement[${i}].Principal.Federated: ${provider} names no account`);
      const issuer = /:oidc-provider\/(.+)$/.exec(provider)?.[1];
      if (!issuer) continue;
      const conditionIssuers = Object.values(asRecord(st.Condition) ?? {})
        .flatMap((c) => Object.keys(asRecord(c) ?? {}))
        .map((k) => ISSUER_CONDITION_KEY.exec(k)?.[1])
        .filter((k): k is string => k !== undefined);
      for (const other of new Set(conditionIssuers)) {
        if (other !== issuer) problems.push(`assumeRolePolicy.Statement[${i}].Condition: conditions on ${other} but the trusted provider is ${issuer}: no token can satisfy both`);
      }
    }
  });
  return problems;
}

/**
 * No resource carries an invented account-specific identifier: no ARN of a placeholder account
 * (000000000000, 123456789012, ...), no placeholder OIDC provider (`.../id/KNHK`, example.com),
 * no placeholder account id on its own; IAM trust policies trust a real provider and put their
 * conditions on that same provider. Such values deploy without error and fail only at run time
 * (the IRSA roles trust nobody, so backups and archiving get no S3 access).
 */
export const noPlaceholderIdentifiers = resourcePolicy({
  name: "no-placeholder-identifiers",
  description: "No placeholder AWS account id, ARN or OIDC provider in any resource property; IAM trust policies trust a real provider.",
  enforcementLevel: "mandatory",
  check: (resource) => {
    const problems = placeholderProblems(resource.props);
    if (resource.type === IAM_ROLE_TYPE) problems.push(...trustPolicyProblems(resource.props.assumeRolePolicy));
    const name = String(asRecord(resource.props.metadata)?.name ?? resource.props.name ?? resource.name);
    return [...new Set(problems)].map((p): Violation => ({ message: `${resource.type} ${name}: ${p}` }));
  },
});
