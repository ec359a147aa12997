import { stackPolicy } from "../lib/define";
import { asArray, asRecord, dig } from "../lib/model";
import { checkBuckets, configsFor, S3_TYPES } from "../lib/s3";

/** Whether an IAM policy document denies every principal every S3 action without TLS. */
export function deniesInsecureTransport(document: unknown): boolean {
  const doc = typeof document === "string" ? safeJson(document) : document;
  const raw = asRecord(doc)?.Statement;
  const list = Array.isArray(raw) ? raw : raw ? [raw] : [];
  return list.some((s) => {
    const st = asRecord(s) ?? {};
    if (st.Effect !== "Deny") return false;
    const principal = st.Principal;
    const everyone = principal === "*" || asArray(dig(principal, "AWS")).includes("*") || dig(principal, "AWS") === "*";
    const actions = Array.isArray(st.Action) ? st.Action.map(String) : [String(st.Action)];
    const allActions = actions.includes("s3:*") || actions.includes("*");
    const secure = dig(st, "Condition", "Bool", "aws:SecureTransport");
    const insecure = secure === "false" || secure === false || (Array.isArray(secure) && secure.map(String).includes("false"));
    return everyone && allActions && insecure;
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Stack policy: every bucket's policy denies all access over plain HTTP (aws:SecureTransport false). */
export const s3BucketTlsOnly = stackPolicy({
  name: "s3-bucket-tls-only",
  description: "Every S3 bucket has a bucket policy denying any request without TLS (aws:SecureTransport = false).",
  enforcementLevel: "mandatory",
  check: (resources) =>
    checkBuckets(resources, (bucket) => {
      const policies = configsFor(resources, bucket, S3_TYPES.policy);
      if (policies.some((p) => deniesInsecureTransport(p.props.policy))) return [];
      return policies.length === 0
        ? [" has no bucket policy (TLS-only access requires a Deny on aws:SecureTransport = false)"]
        : [": bucket policy does not deny s3:* to every principal when aws:SecureTransport is false"];
    }),
});
