import type { JWTPayload } from "jose";
import type { MfaRule } from "../config/oidc";

export type MfaEvidence =
  | { readonly proven: true; readonly by: string }
  /** `missing`: what the token lacks, for the 403 and its audit entry. */
  | { readonly proven: false; readonly missing: string };

/*
 * A refusal quotes at most this much of the token's (unverified-content) claims and of the
 * rule, so the reason fits the audit entry's 512 characters with the roles around it.
 */
const QUOTED_CHARS = 24;
const QUOTED_ENTRIES = 6;

function shortened(value: string): string {
  return value.length > QUOTED_CHARS ? `${value.slice(0, QUOTED_CHARS)}...` : value;
}

function listed(values: readonly unknown[], show: (value: unknown) => string): string {
  const shown = values.slice(0, QUOTED_ENTRIES).map(show);
  return `[${shown.join(", ")}${values.length > QUOTED_ENTRIES ? ", ..." : ""}]`;
}

const quoted = (value: unknown) => (typeof value === "string" ? JSON.stringify(shortened(value)) : "(not a string)");

function describeAmr(amr: unknown): string {
  if (amr === undefined) return "no amr claim";
  return Array.isArray(amr) ? `amr ${listed(amr, quoted)}` : "amr is not a list";
}

/**
 * Whether a verified token's claims prove MFA under an issuer's rule: an `amr` entry from
 * `rule.amr`, or an `acr` equal to one of `rule.acr`. Claims of the wrong type prove nothing.
 */
export function mfaEvidence(rule: MfaRule, claims: JWTPayload): MfaEvidence {
  const amr = claims.amr;
  if (Array.isArray(amr)) {
    const method = rule.amr.find((m) => amr.includes(m));
    if (method !== undefined) return { proven: true, by: `amr ${method}` };
  }
  const acr = claims.acr;
  if (typeof acr === "string" && rule.acr.includes(acr)) return { proven: true, by: `acr ${acr}` };
  const wanted = [
    rule.amr.length > 0 ? `amr with one of ${listed(rule.amr, (v) => shortened(String(v)))}` : undefined,
    rule.acr.length > 0 ? `acr one of ${listed(rule.acr, (v) => shortened(String(v)))}` : undefined,
  ].filter((w): w is string => w !== undefined);
  const has = `${describeAmr(amr)}, ${typeof acr === "string" ? `acr ${quoted(acr)}` : acr === undefined ? "no acr claim" : "acr is not a string"}`;
  return { proven: false, missing: `multi-factor authentication (${wanted.join(" or ")}; the token has ${has})` };
}
