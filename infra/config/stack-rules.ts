/**
 * Rules that span sections or depend on the stack, applied once every section has parsed:
 * the OIDC issuers a deployed stack needs, no placeholder ticket system, and the PostgreSQL
 * connection budget (which also resolves the service's pool defaults).
 */
import { DEFAULT_MFA_REQUIRED_ROLES } from "../../app/src/auth/roles";
import type { AppConfig, AppSectionConfig } from "./app";
import type { AwsSectionConfig } from "./aws";
import { budgetProblem, derivedPool, largestPoolThatFits, type BudgetInput } from "./connection-budget";
import { placeholderUrlProblem } from "./identifiers";
import type { MonitoringConfig } from "./monitoring";
import type { PatroniConfig } from "./patroni";

/** The one stack that runs on loopback: it may use http issuers and none at all (no real users). */
export const LOCAL_STACK = "local";

/** A problem with one key: `path` below `knhk:<section>`. */
export interface StackIssue {
  readonly section: string;
  readonly path: readonly (string | number)[];
  readonly value: unknown;
  readonly message: string;
}

export function oidcIssues(stack: string, app: AppSectionConfig): StackIssue[] {
  if (stack === LOCAL_STACK) return [];
  const issues: StackIssue[] = [];
  const { issuers } = app.oidc;
  if (issuers.length === 0) {
    issues.push({
      section: "app",
      path: ["oidc", "issuers"],
      value: issuers,
      message: `at least one OIDC issuer is required in stack "${stack}" (without one the service answers every /api/v1 call with 401): set knhk:app.oidc.issuers[0].name, .claimMapping (okta|azure|keycloak) and .issuer`,
    });
  }
  const unguarded = DEFAULT_MFA_REQUIRED_ROLES.filter((role) => !app.oidc.mfaRequiredRoles.includes(role));
  if (unguarded.length > 0) {
    issues.push({
      section: "app",
      path: ["oidc", "mfaRequiredRoles"],
      value: app.oidc.mfaRequiredRoles,
      message: `must include ${unguarded.join(", ")} outside the ${LOCAL_STACK} stack (roles that change state are held only after multi-factor authentication; a stack may add roles, not remove these)`,
    });
  }
  issuers.forEach((issuer, i) => {
    for (const field of ["issuer", "jwksUri"] as const) {
      const url = issuer[field];
      if (url === undefined) continue;
      const path = ["oidc", "issuers", i, field];
      if (new URL(url).protocol !== "https:") {
        issues.push({ section: "app", path, value: url, message: `must be an https URL outside the ${LOCAL_STACK} stack (tokens and keys must not travel in clear text)` });
        continue;
      }
      const placeholder = placeholderUrlProblem(url);
      if (placeholder) issues.push({ section: "app", path, value: url, message: `${placeholder}: set the identity provider's real ${field}` });
    }
  });
  return issues;
}

/**
 * With the archive (an AWS account), the stack declares an encrypted StorageClass
 * (knhk:aws.volumes): every StatefulSet's volumes must use it, so nothing lands on an
 * unencrypted default class.
 */
export function volumeIssues(aws: AwsSectionConfig, volumes: Readonly<Record<"patroni" | "redis", { readonly storage: { readonly className: string } }>>): StackIssue[] {
  if (!aws.enabled) return [];
  const declared = aws.volumes.storageClassName;
  return (Object.entries(volumes) as ["patroni" | "redis", { storage: { className: string } }][])
    .filter(([, section]) => section.storage.className !== declared)
    .map(([section, config]) => ({
      section,
      path: ["storage", "className"],
      value: config.storage.className,
      message: `must be "${declared}", the encrypted StorageClass this stack declares (knhk:aws.volumes.storageClassName): volumes are encrypted at rest with the stack's KMS key`,
    }));
}

/** Stacks whose API port must serve HTTPS (TLS 1.3): a certificate Secret in knhk:app.tls. */
export const HTTPS_REQUIRED_STACKS: readonly string[] = ["staging", "prod"];

export function apiTlsIssues(stack: string, app: AppSectionConfig): StackIssue[] {
  if (!HTTPS_REQUIRED_STACKS.includes(stack) || app.tls !== undefined) return [];
  return [{
    section: "app",
    path: ["tls"],
    value: undefined,
    message: `required in stack "${stack}": the API must serve HTTPS (TLS 1.3); set knhk:app.tls.secretName to the kubernetes.io/tls Secret (e.g. a cert-manager Certificate's) holding tls.crt and tls.key`,
  }];
}

/** Organisation-specific monitoring endpoints must not be placeholders where alerts matter. */
export function monitoringIssues(stack: string, monitoring: MonitoringConfig): StackIssue[] {
  const url = monitoring.receivers.ticketUrl;
  if (stack === LOCAL_STACK || !monitoring.enabled || url === undefined) return [];
  const placeholder = placeholderUrlProblem(url);
  return placeholder ? [{ section: "monitoring", path: ["receivers", "ticketUrl"], value: url, message: `${placeholder}: set the ticket system's real webhook` }] : [];
}

export function budgetInput(app: AppSectionConfig, patroni: PatroniConfig): BudgetInput {
  return {
    maxConnections: patroni.postgresParameters.max_connections,
    superuserReservedConnections: patroni.postgresParameters.superuser_reserved_connections,
    members: patroni.members,
    maxReplicas: app.autoscaling.maxReplicas,
  };
}

/** Resolves the pool sizes (explicit, else derived from the budget) and checks them against it. */
export function resolvePool(app: AppSectionConfig, patroni: PatroniConfig): { app?: AppConfig; issues: StackIssue[] } {
  const input = budgetInput(app, patroni);
  const derived = derivedPool(input);
  const explicitMax = app.settings.DB_POOL_MAX_CONNECTIONS;
  const max = explicitMax ?? derived.max;
  const min = app.settings.DB_POOL_MIN_CONNECTIONS ?? Math.min(derived.min, max);
  const issues: StackIssue[] = [];
  if (explicitMax !== undefined) {
    const problem = budgetProblem(input, explicitMax);
    if (problem) issues.push({ section: "app", path: ["settings", "DB_POOL_MAX_CONNECTIONS"], value: explicitMax, message: problem });
  } else if (largestPoolThatFits(input) < 1) {
    issues.push({ section: "patroni", path: ["postgresParameters", "max_connections"], value: input.maxConnections, message: budgetProblem(input, 1) ?? "" });
  } else if (min > max) {
    issues.push({
      section: "app",
      path: ["settings", "DB_POOL_MIN_CONNECTIONS"],
      value: min,
      message: `must be <= DB_POOL_MAX_CONNECTIONS (${max}, derived from the connection budget)`,
    });
  }
  if (issues.length > 0) return { issues };
  const { DB_POOL_MAX_CONNECTIONS: _max, DB_POOL_MIN_CONNECTIONS: _min, ...rest } = app.settings;
  return { app: { ...app, settings: { DB_POOL_MAX_CONNECTIONS: max, DB_POOL_MIN_CONNECTIONS: min, ...rest } }, issues };
}
