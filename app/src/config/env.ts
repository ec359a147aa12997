import { z } from "zod";
import { DEFAULT_MFA_REQUIRED_ROLES, ROLES, type Role } from "../auth/roles";
import { DEFAULT_AUDIENCES, OIDC_CLOCK_TOLERANCE_SECONDS, OIDC_MAX_TOKEN_AGE_SECONDS, OidcConfigError, parseOidcIssuers, type OidcIssuer } from "./oidc";

/** A bad environment variable: start-up stops with the variable and the reason. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly reason: string,
  ) {
    super(`invalid configuration: ${variable}: ${reason}`);
    this.name = "ConfigError";
  }
}

const int = (min: number, max: number, fallback: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
    .optional()
    .transform((v) => v ?? fallback);
const tuned = (rule: SettingRule) => int(rule.min, rule.max, rule.default);

/** 0 asks the OS for any free port (tests). */
const port = (fallback: number) => int(0, 65535, fallback);

const optionalText = z
  .string()
  .trim()
  .transform((v) => (v === "" ? undefined : v))
  .optional();

const hostPortList = z
  .string()
  .trim()
  .transform((v, ctx) => {
    const entries = v.split(",").map((s) => s.trim()).filter(Boolean);
    if (entries.length === 0) {
      ctx.addIssue({ code: "custom", message: "needs at least one host:port" });
      return z.NEVER;
    }
    return entries.map((entry) => {
      const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(entry);
      const portNumber = match ? Number(match[2]) : 0;
      if (!match || portNumber < 1 || portNumber > 65535) {
        ctx.addIssue({ code: "custom", message: `"${entry}" is not host:port` });
        return { host: "", port: 0 };
      }
      return { host: match[1].replace(/^\[|\]$/g, ""), port: portNumber };
    });
  })
  .optional();

/** Log levels the service accepts (pino's), and the one it uses when KNHK_LOG_LEVEL is unset; infra's ConfigMap schema uses the same. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export const DEFAULT_LOG_LEVEL = "info" satisfies (typeof LOG_LEVELS)[number];

/** An integer setting's bounds and its value when unset. */
export interface SettingRule {
  readonly min: number;
  readonly max: number;
  readonly default: number;
}

/** Bounds and defaults of the service's tuning settings, for its own parsing and infra's ConfigMap schema. */
export const SERVICE_TUNING = {
  PATTERN_WINDOW_SECONDS: { min: 1, max: 86_400, default: 60 },
  VALIDATION_TIMEOUT_MS: { min: 1, max: 600_000, default: 100 },
} as const;

/** The deployment colours of a blue-green stack. */
export const COLORS = ["blue", "green"] as const;
export type Color = (typeof COLORS)[number];

/** What a checkpoint's origin line (and the note key's name) may be: the service and the stack config check it alike. */
export const TLOG_ORIGIN = { pattern: /^[\x21-\x2a\x2c-\x7e]{1,255}$/, rule: 'must be 1-255 printable ASCII characters without spaces or "+"' } as const;

/** The receipt log's checkpoint settings when KNHK_TLOG_* are unset. */
export const TLOG_DEFAULTS = { origin: "knhk.local/receipts", everyReceipts: 1000, intervalSeconds: 60 } as const;

/** The service's pool sizes when DB_POOL_MAX/MIN_CONNECTIONS are unset (the stack's connection budget derives from them). */
export const DB_POOL_DEFAULTS = { max: 50, min: 10 } as const;
/** A `knhk` CLI run needs one or two connections, never the service's pool: it opens at most this many. */
export const CLI_POOL_MAX_CONNECTIONS = 4;

/** KNHK_MFA_REQUIRED_ROLES as written: role names separated by commas, or `none`; the stack renders it with this. */
export function formatMfaRequiredRoles(roles: readonly Role[]): string {
  return roles.length === 0 ? "none" : roles.join(",");
}

const mfaRequiredRoles = z
  .string()
  .trim()
  .transform((v, ctx): Role[] => {
    if (v === "none") return [];
    const names = v.split(",").map((name) => name.trim());
    const unknown = names.find((name) => !(ROLES as readonly string[]).includes(name));
    if (unknown !== undefined) {
      ctx.addIssue({ code: "custom", message: `${unknown === "" ? "empty role name" : `unknown role ${JSON.stringify(unknown)}`} (roles: ${ROLES.join(", ")}; or "none")` });
      return z.NEVER;
    }
    return ROLES.filter((role) => names.includes(role));
  })
  .optional()
  .transform((v) => v ?? [...DEFAULT_MFA_REQUIRED_ROLES]);

/** Every variable the service reads, by its own name, so an issue's path names the variable. */
const envSchema = z.object({
  DATABASE_URL: optionalText.pipe(
    z.string().regex(/^postgres(ql)?:\/\/[^\s]+$/, "must be a postgres:// or postgresql:// URL").optional(),
  ),
  /** A file holding the URL (Vault Agent's rendering), re-read while the service runs: see db/credential-file.ts. */
  DATABASE_URL_FILE: optionalText.pipe(z.string().regex(/^[^\0\r\n]+$/, "must be a file path").optional()),
  /** Owner connection for migrations when the service's own role may not run DDL. */
  DATABASE_MIGRATION_URL: optionalText.pipe(
    z.string().regex(/^postgres(ql)?:\/\/[^\s]+$/, "must be a postgres:// or postgresql:// URL").optional(),
  ),
  KNHK_MIGRATE_ON_START: z.enum(["true", "false"], { error: "must be true or false" }).optional().transform((v) => v !== "false"),
  DB_POOL_MAX_CONNECTIONS: int(1, 10_000, DB_POOL_DEFAULTS.max),
  DB_POOL_MIN_CONNECTIONS: int(0, 10_000, DB_POOL_DEFAULTS.min),
  KNHK_EMBEDDED_DATA_DIR: optionalText,
  REDIS_URL: optionalText.pipe(z.string().regex(/^rediss?:\/\/[^\s]+$/, "must be a redis:// or rediss:// URL").optional()),
  REDIS_SENTINELS: hostPortList,
  REDIS_SENTINEL_MASTER: optionalText.pipe(z.string().regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-'").optional()),
  REDIS_PASSWORD: optionalText,
  REDIS_SENTINEL_PASSWORD: optionalText,
  KNHK_OIDC_AUDIENCES: optionalText,
  KNHK_OIDC_CLOCK_TOLERANCE_SECONDS: int(OIDC_CLOCK_TOLERANCE_SECONDS.min, OIDC_CLOCK_TOLERANCE_SECONDS.max, OIDC_CLOCK_TOLERANCE_SECONDS.default),
  KNHK_OIDC_MAX_TOKEN_AGE_SECONDS: int(OIDC_MAX_TOKEN_AGE_SECONDS.min, OIDC_MAX_TOKEN_AGE_SECONDS.max, OIDC_MAX_TOKEN_AGE_SECONDS.default),
  /** Roles held only with a token that proves MFA (see DEFAULT_MFA_REQUIRED_ROLES). */
  KNHK_MFA_REQUIRED_ROLES: mfaRequiredRoles,
  PATTERN_WINDOW_SECONDS: tuned(SERVICE_TUNING.PATTERN_WINDOW_SECONDS),
  VALIDATION_TIMEOUT_MS: tuned(SERVICE_TUNING.VALIDATION_TIMEOUT_MS),
  KNHK_HOST: optionalText.transform((v) => v ?? "0.0.0.0"),
  KNHK_PORT: port(8080),
  KNHK_METRICS_PORT: port(9090),
  KNHK_BODY_LIMIT_BYTES: int(1024, 10 * 1024 * 1024, 256 * 1024),
  /** POST /api/v1/observations/batch: up to 1,000 observations of a few KiB each. */
  KNHK_BATCH_BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024, 4 * 1024 * 1024),
  /** The API port's certificate chain and key (PEM files, e.g. a mounted kubernetes.io/tls Secret): HTTPS with TLS 1.3 only. */
  KNHK_TLS_CERT_FILE: optionalText.pipe(z.string().regex(/^[^\0\r\n]+$/, "must be a file path").optional()),
  KNHK_TLS_KEY_FILE: optionalText.pipe(z.string().regex(/^[^\0\r\n]+$/, "must be a file path").optional()),
  /** How often the certificate files are re-read; a renewed certificate serves new connections without a restart. */
  KNHK_TLS_RELOAD_SECONDS: int(1, 3600, 60),
  /** The receipt log's origin line in its checkpoints (and the note key's name): unique per deployment. */
  KNHK_TLOG_ORIGIN: optionalText.pipe(z.string().regex(TLOG_ORIGIN.pattern, TLOG_ORIGIN.rule).optional()).transform((v) => v ?? TLOG_DEFAULTS.origin),
  /** A new checkpoint once the tree grew by this many receipts, or when the last is older than the interval. */
  KNHK_TLOG_CHECKPOINT_EVERY_RECEIPTS: int(1, 10_000_000, TLOG_DEFAULTS.everyReceipts),
  KNHK_TLOG_CHECKPOINT_INTERVAL_SECONDS: int(1, 86_400, TLOG_DEFAULTS.intervalSeconds),
  KNHK_RATE_LIMIT_MAX: int(1, 1_000_000, 600),
  KNHK_RATE_LIMIT_WINDOW_SECONDS: int(1, 3600, 60),
  KNHK_MAPE_K_INTERVAL_SECONDS: int(0, 86_400, 60),
  /** /health's vault freshness: the database role's max TTL (infra/render/vault-database.ts), default 24 h. */
  KNHK_VAULT_CREDENTIALS_MAX_AGE_SECONDS: int(1, 31 * 86_400, 86_400),
  /** Blue-green: this pod's colour, and the file naming the active one (only it leads the MAPE-K loop). */
  KNHK_COLOR: optionalText.pipe(z.enum(COLORS, { error: `must be ${COLORS.join(" or ")}` }).optional()),
  KNHK_ACTIVE_COLOR_FILE: optionalText.pipe(z.string().regex(/^[^\0\r\n]+$/, "must be a file path").optional()),
  KNHK_SHUTDOWN_TIMEOUT_MS: int(1000, 600_000, 25_000),
  KNHK_LOG_LEVEL: z.enum(LOG_LEVELS).optional().transform((v) => v ?? DEFAULT_LOG_LEVEL),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalText.pipe(z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional()),
  OTEL_SERVICE_NAME: optionalText.transform((v) => v ?? "knhk-closed-loop"),
});

export interface RedisConfig {
  readonly mode: "standalone" | "sentinel";
  readonly url?: string;
  readonly sentinels?: readonly { host: string; port: number }[];
  readonly masterName?: string;
  readonly password?: string;
  readonly sentinelPassword?: string;
}

export interface Config {
  readonly database: {
    readonly url?: string;
    /** DATABASE_URL_FILE (instead of url). */
    readonly urlFile?: string;
    /** Rendered credentials older than this are stale (/health vault degraded). */
    readonly credentialsMaxAgeSeconds: number;
    readonly poolMax: number;
    readonly poolMin: number;
    readonly embeddedDir?: string;
    readonly migrationUrl?: string;
    readonly migrateOnStart: boolean;
  };
  /** Absent: no Redis configured; the service runs on in-process fallbacks (reported degraded). */
  readonly redis?: RedisConfig;
  readonly oidc: {
    readonly issuers: readonly OidcIssuer[];
    readonly clockToleranceSeconds: number;
    readonly maxTokenAgeSeconds: number;
    readonly mfaRequiredRoles: readonly Role[];
  };
  readonly domain: { readonly patternWindowSeconds: number; readonly validationTimeoutMs: number; readonly mapeKIntervalSeconds: number };
  /** Blue-green (KNHK_COLOR + KNHK_ACTIVE_COLOR_FILE); absent: a single-colour stack, this replica may always lead. */
  readonly leadership?: { readonly color: Color; readonly activeColorFile: string };
  readonly http: {
    readonly host: string;
    readonly port: number;
    readonly metricsPort: number;
    readonly bodyLimitBytes: number;
    readonly batchBodyLimitBytes: number;
    /** Absent: plain HTTP (a stack without a certificate: local). */
    readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly reloadSeconds: number };
  };
  readonly rateLimit: { readonly max: number; readonly windowSeconds: number };
  /** The receipt log's checkpoints (origin, every N receipts or T seconds). */
  readonly tlog: { readonly origin: string; readonly checkpointEveryReceipts: number; readonly checkpointIntervalSeconds: number };
  readonly shutdownTimeoutMs: number;
  readonly logLevel: string;
  readonly telemetry: { readonly otlpEndpoint?: string; readonly serviceName: string };
}

/** Reads and validates the environment; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue.path[0] ?? "(environment)");
    const reason = issue.code === "invalid_value" ? `${issue.message}` : issue.message;
    throw new ConfigError(variable, reason);
  }
  const e = parsed.data;
  if (e.DB_POOL_MIN_CONNECTIONS > e.DB_POOL_MAX_CONNECTIONS) {
    throw new ConfigError("DB_POOL_MIN_CONNECTIONS", `must not exceed DB_POOL_MAX_CONNECTIONS (${e.DB_POOL_MAX_CONNECTIONS})`);
  }
  if (e.DATABASE_URL && e.DATABASE_URL_FILE) {
    throw new ConfigError("DATABASE_URL_FILE", "set either DATABASE_URL or DATABASE_URL_FILE, not both");
  }
  if (e.DATABASE_MIGRATION_URL && !e.DATABASE_URL && !e.DATABASE_URL_FILE) {
    throw new ConfigError("DATABASE_MIGRATION_URL", "set without DATABASE_URL or DATABASE_URL_FILE");
  }
  if (e.KNHK_TLS_CERT_FILE && !e.KNHK_TLS_KEY_FILE) throw new ConfigError("KNHK_TLS_KEY_FILE", "required when KNHK_TLS_CERT_FILE is set");
  if (e.KNHK_TLS_KEY_FILE && !e.KNHK_TLS_CERT_FILE) throw new ConfigError("KNHK_TLS_CERT_FILE", "required when KNHK_TLS_KEY_FILE is set");
  if (e.KNHK_COLOR && !e.KNHK_ACTIVE_COLOR_FILE) throw new ConfigError("KNHK_ACTIVE_COLOR_FILE", "required when KNHK_COLOR is set");
  if (e.KNHK_ACTIVE_COLOR_FILE && !e.KNHK_COLOR) throw new ConfigError("KNHK_COLOR", "required when KNHK_ACTIVE_COLOR_FILE is set");
  if (e.KNHK_PORT !== 0 && e.KNHK_PORT === e.KNHK_METRICS_PORT) {
    throw new ConfigError("KNHK_METRICS_PORT", "must differ from KNHK_PORT");
  }
  return {
    database: {
      url: e.DATABASE_URL,
      urlFile: e.DATABASE_URL_FILE,
      credentialsMaxAgeSeconds: e.KNHK_VAULT_CREDENTIALS_MAX_AGE_SECONDS,
      poolMax: e.DB_POOL_MAX_CONNECTIONS,
      poolMin: e.DB_POOL_MIN_CONNECTIONS,
      embeddedDir: e.KNHK_EMBEDDED_DATA_DIR,
      migrationUrl: e.DATABASE_MIGRATION_URL,
      migrateOnStart: e.KNHK_MIGRATE_ON_START,
    },
    redis: redisConfig(e),
    oidc: {
      issuers: oidcIssuers(env, e.KNHK_OIDC_AUDIENCES),
      clockToleranceSeconds: e.KNHK_OIDC_CLOCK_TOLERANCE_SECONDS,
      maxTokenAgeSeconds: e.KNHK_OIDC_MAX_TOKEN_AGE_SECONDS,
      mfaRequiredRoles: e.KNHK_MFA_REQUIRED_ROLES,
    },
    domain: {
      patternWindowSeconds: e.PATTERN_WINDOW_SECONDS,
      validationTimeoutMs: e.VALIDATION_TIMEOUT_MS,
      mapeKIntervalSeconds: e.KNHK_MAPE_K_INTERVAL_SECONDS,
    },
    leadership: e.KNHK_COLOR && e.KNHK_ACTIVE_COLOR_FILE ? { color: e.KNHK_COLOR, activeColorFile: e.KNHK_ACTIVE_COLOR_FILE } : undefined,
    http: {
      host: e.KNHK_HOST,
      port: e.KNHK_PORT,
      metricsPort: e.KNHK_METRICS_PORT,
      bodyLimitBytes: e.KNHK_BODY_LIMIT_BYTES,
      batchBodyLimitBytes: e.KNHK_BATCH_BODY_LIMIT_BYTES,
      tls: e.KNHK_TLS_CERT_FILE && e.KNHK_TLS_KEY_FILE ? { certFile: e.KNHK_TLS_CERT_FILE, keyFile: e.KNHK_TLS_KEY_FILE, reloadSeconds: e.KNHK_TLS_RELOAD_SECONDS } : undefined,
    },
    rateLimit: { max: e.KNHK_RATE_LIMIT_MAX, windowSeconds: e.KNHK_RATE_LIMIT_WINDOW_SECONDS },
    tlog: { origin: e.KNHK_TLOG_ORIGIN, checkpointEveryReceipts: e.KNHK_TLOG_CHECKPOINT_EVERY_RECEIPTS, checkpointIntervalSeconds: e.KNHK_TLOG_CHECKPOINT_INTERVAL_SECONDS },
    shutdownTimeoutMs: e.KNHK_SHUTDOWN_TIMEOUT_MS,
    logLevel: e.KNHK_LOG_LEVEL,
    telemetry: { otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME },
  };
}

function redisConfig(e: z.infer<typeof envSchema>): RedisConfig | undefined {
  if (e.REDIS_URL && e.REDIS_SENTINELS) {
    throw new ConfigError("REDIS_SENTINELS", "set either REDIS_URL or REDIS_SENTINELS, not both");
  }
  if (e.REDIS_SENTINELS) {
    if (!e.REDIS_SENTINEL_MASTER) throw new ConfigError("REDIS_SENTINEL_MASTER", "required when REDIS_SENTINELS is set");
    return {
      mode: "sentinel",
      sentinels: e.REDIS_SENTINELS,
      masterName: e.REDIS_SENTINEL_MASTER,
      password: e.REDIS_PASSWORD,
      sentinelPassword: e.REDIS_SENTINEL_PASSWORD,
    };
  }
  if (e.REDIS_SENTINEL_MASTER) throw new ConfigError("REDIS_SENTINEL_MASTER", "set without REDIS_SENTINELS");
  if (e.REDIS_URL) return { mode: "standalone", url: e.REDIS_URL, password: e.REDIS_PASSWORD };
  return undefined;
}

function oidcIssuers(env: Readonly<Record<string, string | undefined>>, audiencesText: string | undefined): OidcIssuer[] {
  let audiences: readonly string[] = DEFAULT_AUDIENCES;
  if (audiencesText) {
    audiences = audiencesText.split(",").map((a) => a.trim()).filter(Boolean);
    const unknown = audiences.find((a) => !(DEFAULT_AUDIENCES as readonly string[]).includes(a));
    if (audiences.length === 0) throw new ConfigError("KNHK_OIDC_AUDIENCES", "needs at least one audience");
    if (unknown) throw new ConfigError("KNHK_OIDC_AUDIENCES", `unknown audience ${unknown} (allowed: ${DEFAULT_AUDIENCES.join(", ")})`);
  }
  try {
    return parseOidcIssuers(env, audiences);
  } catch (error) {
    if (error instanceof OidcConfigError) throw new ConfigError(error.variable, error.message.slice(error.variable.length + 2));
    throw error;
  }
}

/** A one-line summary for the start-up log: no secrets (URLs lose their credentials). */
export function describeConfig(config: Config): Record<string, unknown> {
  const redact = (url?: string) => (url ? url.replace(/\/\/[^@/]*@/, "//***@") : undefined);
  return {
    database: config.database.url
      ? redact(config.database.url)
      : config.database.urlFile
        ? `from DATABASE_URL_FILE ${config.database.urlFile}`
        : `embedded PGlite (${config.database.embeddedDir ?? "in memory"})`,
    leadership: config.leadership ? `colour ${config.leadership.color}, leads while ${config.leadership.activeColorFile} names it` : "any replica",
    pool: `${config.database.poolMin}-${config.database.poolMax}`,
    redis: config.redis ? (config.redis.mode === "sentinel" ? `sentinel ${config.redis.masterName}` : redact(config.redis.url)) : "none (in-process fallbacks)",
    oidcIssuers: config.oidc.issuers.map((i) => `${i.name}=${i.issuer}`),
    mfaRequiredFor: formatMfaRequiredRoles(config.oidc.mfaRequiredRoles),
    ports: { api: config.http.port, metrics: config.http.metricsPort },
    api: config.http.tls ? `https (TLS 1.3) with ${config.http.tls.certFile}` : "http",
    tracing: config.telemetry.otlpEndpoint ?? "off",
  };
}
