import { resourcePolicy } from "../lib/define";
import { checkContainers, describeObject, TYPES } from "../lib/kubernetes";
import { asArray, asRecord, notApplicable, SECRET_PLACEHOLDER, type Violation } from "../lib/model";

/** Names that hold secrets (PASSWORD, TOKEN, ...), unless they only point at one (..._FILE, ..._PATH). */
const SENSITIVE_NAME = /(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|cipher[_-]?pass|signing[_-]?key|database[_-]?url|dsn|masterauth|auth[_-]pass|secret[_-]?key|access[_-]?key)$/i;
const REFERENCE_NAME = /(_file|_path|_dir|_name|_ref|_secret_name|_mount|_id|_ttl)$/i;

/** Values that are secrets whatever their key says. */
const SECRET_VALUES: readonly [RegExp, string][] = [
  [/[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:[^\s@/]+@/i, "a URL with embedded credentials"],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a PEM private key"],
  [/\bAKIA[0-9A-Z]{16}\b/, "an AWS access key id"],
  [/\bhvs\.[A-Za-z0-9_-]{20,}/, "a Vault token"],
];

/** A value that only refers to a secret (template placeholder, env reference, file path, empty). */
function isReference(value: string): boolean {
  const v = value.trim().replace(/^["']|["']$/g, "");
  return v === "" || /^\/[\w.\/-]+$/.test(v) || /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(v) || /^\{\{.*\}\}$/.test(v) || /^<[^>]+>$/.test(v);
}

export function isSensitiveName(name: string): boolean {
  return SENSITIVE_NAME.test(name) && !REFERENCE_NAME.test(name);
}

/** Problems with one value stored under `name`; `name` may be a ConfigMap key or an env var name. */
export function secretProblems(name: string, value: string): string[] {
  const problems: string[] = [];
  if (value.includes(SECRET_PLACEHOLDER)) problems.push("holds a Pulumi secret in plain text");
  for (const [pattern, what] of SECRET_VALUES) if (pattern.test(value)) problems.push(`contains ${what}`);
  if (problems.length === 0 && isSensitiveName(name) && !isReference(value)) problems.push("is named like a secret and holds a literal value");
  if (problems.length === 0) {
    // Embedded documents (patroni.yml, redis.conf, *.ini): look at each `key: value` / `key = value` line.
    for (const line of value.split("\n")) {
      const m = /^\s*([A-Za-z0-9_.-]+)\s*(?::|=|\s)\s*(.+?)\s*$/.exec(line);
      if (m && isSensitiveName(m[1]) && !isReference(m[2]) && !/^(true|false|null|~|\||>)$/i.test(m[2])) {
        problems.push(`sets "${m[1]}" to a literal value`);
        break;
      }
    }
  }
  return problems;
}

/**
 * Secrets never appear as plain strings in ConfigMaps or container env values: they come from
 * Secrets (`valueFrom.secretKeyRef`) or Vault Agent files.
 */
export const noPlaintextSecrets = resourcePolicy({
  name: "no-plaintext-secrets",
  description: "No secret value in a ConfigMap or a container env value; use Secrets (secretKeyRef) or Vault Agent.",
  enforcementLevel: "mandatory",
  check: (resource) => {
    if (resource.type === TYPES.configMap) {
      const violations: Violation[] = [];
      for (const field of ["data", "binaryData"]) {
        for (const [key, value] of Object.entries(asRecord(resource.props[field]) ?? {})) {
          for (const problem of secretProblems(key, String(value))) {
            violations.push({ message: `${describeObject(resource)}: ${field}.${key} ${problem}` });
          }
        }
      }
      return violations;
    }
    const verdict = checkContainers(resource, ({ container }) =>
      asArray(container.env).flatMap((e) => {
        const env = asRecord(e) ?? {};
        if (typeof env.value !== "string") return [];
        return secretProblems(String(env.name), env.value).map((p) => `env ${String(env.name)} ${p}`);
      }),
    );
    return "notApplicable" in verdict ? notApplicable("neither a ConfigMap nor a workload") : verdict;
  },
});
