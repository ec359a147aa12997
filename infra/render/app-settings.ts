/**
 * The data of the ConfigMap `knhk-config`: the service's environment as the stack configures it.
 * Every key is a variable the service's `loadConfig` (app/src/config/env.ts) reads, in the format
 * it parses; test/infra/app-settings.test.ts feeds the output to it.
 */
import { formatMfaRequiredRoles } from "../../app/src/config/env";
import type { OidcIssuerEntry } from "../../app/src/config/oidc";
import type { AppConfig } from "../config/app";
import type { OidcConfig } from "../config/oidc";
import { APP_FILES, PORTS } from "./topology";

export interface AppSettingsRuntime {
  /** `host:port` of every Redis Sentinel and the monitored master name. */
  readonly redis: { readonly sentinels: readonly string[]; readonly masterName: string };
  /** Data directory of the embedded database (stacks without Vault-issued credentials); absent: none. */
  readonly embeddedDataDir?: string;
}

/** KNHK_OIDC_ISSUERS: the JSON array the service parses (snake_case keys; absent optionals stay absent). */
export function oidcIssuersJson(oidc: OidcConfig): string {
  const entries: OidcIssuerEntry[] = oidc.issuers.map((i) => ({
    name: i.name,
    claim_mapping: i.claimMapping,
    issuer: i.issuer,
    ...(i.jwksUri !== undefined ? { jwks_uri: i.jwksUri } : {}),
    ...(i.audiences !== undefined ? { audiences: [...i.audiences] } : {}),
    ...(i.mfa !== undefined ? { mfa: { amr: [...i.mfa.amr], acr: [...i.mfa.acr] } } : {}),
  }));
  return JSON.stringify(entries);
}

export function renderAppSettings(cfg: Pick<AppConfig, "settings" | "oidc" | "tls">, runtime: AppSettingsRuntime): Record<string, string> {
  const data: Record<string, string> = {
    ...Object.fromEntries(Object.entries(cfg.settings).map(([k, v]) => [k, String(v)])),
    KNHK_PORT: String(PORTS.appHttp),
    KNHK_METRICS_PORT: String(PORTS.appMetrics),
    REDIS_SENTINELS: runtime.redis.sentinels.join(","),
    REDIS_SENTINEL_MASTER: runtime.redis.masterName,
    KNHK_OIDC_CLOCK_TOLERANCE_SECONDS: String(cfg.oidc.clockToleranceSeconds),
    KNHK_OIDC_MAX_TOKEN_AGE_SECONDS: String(cfg.oidc.maxTokenAgeSeconds),
    KNHK_MFA_REQUIRED_ROLES: formatMfaRequiredRoles(cfg.oidc.mfaRequiredRoles),
  };
  // No issuer (the local stack only; the stack rules require one elsewhere): the service accepts no token.
  if (cfg.oidc.issuers.length > 0) data.KNHK_OIDC_ISSUERS = oidcIssuersJson(cfg.oidc);
  if (cfg.tls) {
    data.KNHK_TLS_CERT_FILE = APP_FILES.tlsCert;
    data.KNHK_TLS_KEY_FILE = APP_FILES.tlsKey;
  }
  if (runtime.embeddedDataDir !== undefined) data.KNHK_EMBEDDED_DATA_DIR = runtime.embeddedDataDir;
  return data;
}
