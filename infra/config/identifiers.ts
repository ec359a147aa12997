/**
 * Account- and organisation-specific identifiers (AWS account ids, the cluster's OIDC provider,
 * identity-provider hosts) have no defaults: an invented value deploys without error and then
 * fails at run time (IRSA roles that trust nobody, 401 on every call). This module recognises the
 * values that are known placeholders, for the config schema and for the policy pack alike.
 */

/**
 * Account ids that are documentation examples or filler: a repeated digit (000000000000,
 * 111111111111, ...), counting sequences, and the ids the AWS documentation uses in its examples.
 */
const PLACEHOLDER_ACCOUNTS: ReadonlySet<string> = new Set([
  ...Array.from({ length: 10 }, (_, d) => String(d).repeat(12)),
  "123456789012",
  "012345678901",
  "210987654321",
  "111122223333",
  "444455556666",
  "777788889999",
]);

/** Host names reserved for documentation and tests (RFC 2606, RFC 6761): they never name a real system. */
const RESERVED_HOSTS = /(^|\.)(example\.(com|net|org)|example|invalid|test|localhost)$/i;

/** Words (between separators) that mark a value as "fill in later" rather than a real identifier. */
const PLACEHOLDER_WORDS = /(^|[^a-z0-9])(change[-_]?me|placeholder|replace[-_]?me|todo|fixme|example|dummy|x{4,}|your[-_][a-z0-9_-]*)([^a-z0-9]|$)/i;

/**
 * Cluster ids (the `<id>` of an EKS issuer `.../id/<id>`) that are this project's name, filler,
 * or carry a marker anywhere (the AWS documentation's `EXAMPLED539D4633E53DE1B71EXAMPLE`).
 */
const PLACEHOLDER_IDS = /^(knhk|test|x+|[0-]+|.*(example|changeme|placeholder).*)$/i;

/** Why `accountId` is a placeholder, or undefined. */
export function placeholderAccountProblem(accountId: string): string | undefined {
  return PLACEHOLDER_ACCOUNTS.has(accountId) ? `account ${accountId} is a placeholder, not a real AWS account id` : undefined;
}

/** Why a host name is a placeholder, or undefined. */
export function placeholderHostProblem(host: string): string | undefined {
  const h = host.toLowerCase().replace(/\.$/, "");
  if (RESERVED_HOSTS.test(h)) return `host ${h} is reserved for documentation/tests (RFC 2606/6761)`;
  if (PLACEHOLDER_WORDS.test(h)) return `host ${h} is a placeholder`;
  return undefined;
}

/** An id of zeros (the nil UUID as an Azure tenant, ...): never a real one. */
const ZERO_ID = /^[0-]{8,}$/;

/** Why a path segment is a placeholder, or undefined; `strictIds` also refuses filler ids (cluster ids). */
function placeholderSegmentProblem(segment: string, strictIds: boolean): string | undefined {
  if (PLACEHOLDER_WORDS.test(segment) || ZERO_ID.test(segment) || (strictIds && PLACEHOLDER_IDS.test(segment))) return `"${segment}" is a placeholder`;
  return undefined;
}

function hostAndPathProblem(host: string, path: string, strictIds: boolean): string | undefined {
  return placeholderHostProblem(host) ?? path.split("/").filter(Boolean).map((s) => placeholderSegmentProblem(s, strictIds)).find((p) => p !== undefined);
}

/** `<host>/<path>` of a cluster's IRSA issuer (also the tail of its OIDC provider ARN), e.g. `oidc.eks.<region>.amazonaws.com/id/<id>`. */
export function placeholderIssuerProblem(hostAndPath: string): string | undefined {
  const slash = hostAndPath.indexOf("/");
  return slash < 0 ? hostAndPathProblem(hostAndPath, "", true) : hostAndPathProblem(hostAndPath.slice(0, slash), hostAndPath.slice(slash), true);
}

/**
 * An identity provider's URL (an OIDC issuer, a JWKS location). Path segments are only checked for
 * placeholder words: realm and server names such as `knhk` or `default` are real there.
 */
export function placeholderUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined; // the URL schema reports malformed values
  }
  return hostAndPathProblem(parsed.hostname, parsed.pathname, false);
}

/** arn:<partition>:<service>:<region>:<account>:<resource>; the account part may be empty (S3). */
const ARN = /\barn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:(\d{12})?:([^\s"',\]}]*)/g;

/** Every problem with an ARN inside `text` (a property value, a JSON policy document). */
export function placeholderArnProblems(text: string): string[] {
  const problems: string[] = [];
  for (const match of text.matchAll(ARN)) {
    const [arn, account, resource] = match;
    const accountProblem = account ? placeholderAccountProblem(account) : undefined;
    if (accountProblem) problems.push(`${arn}: ${accountProblem}`);
    const provider = /^oidc-provider\/(.+)$/.exec(resource ?? "");
    const providerProblem = provider ? placeholderIssuerProblem(provider[1]) : undefined;
    if (providerProblem) problems.push(`${arn}: ${providerProblem}`);
  }
  return problems;
}

/** The account id of an ARN, or undefined when it names none. */
export function arnAccount(arn: string): string | undefined {
  return /^arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:(\d{12}):/.exec(arn)?.[1];
}
