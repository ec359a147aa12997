/** `knhk:app`: the KNHK service (blue/green Deployments, Service, HPA, ConfigMap). */
import { z } from "zod";
import { DEFAULT_LOG_LEVEL, LOG_LEVELS, SERVICE_TUNING, TLOG_ORIGIN, type SettingRule } from "../../app/src/config/env";
import { containerResources, dnsLabel, imageRepository, imageVersion, resources } from "./common";
import { oidcSection } from "./oidc";

const positiveInt = z.number().int().min(1);
/** A service tuning setting with the service's own bounds and default. */
const tuning = (rule: SettingRule) => z.number().int().min(rule.min).max(rule.max).default(rule.default);

/**
 * Keys of the ConfigMap `knhk-config`; each may be overridden per stack. The pool sizes default
 * to what the PostgreSQL connection budget allows (connection-budget.ts), capped at the service's
 * own defaults; explicit values are checked against the same budget.
 */
export const appSettings = z
  .object({
    DB_POOL_MAX_CONNECTIONS: positiveInt.optional(),
    DB_POOL_MIN_CONNECTIONS: z.number().int().min(0).optional(),
    PATTERN_WINDOW_SECONDS: tuning(SERVICE_TUNING.PATTERN_WINDOW_SECONDS),
    VALIDATION_TIMEOUT_MS: tuning(SERVICE_TUNING.VALIDATION_TIMEOUT_MS),
    KNHK_LOG_LEVEL: z.enum(LOG_LEVELS).default(DEFAULT_LOG_LEVEL),
    /** The receipt log's origin line in its signed checkpoints; one per deployment (service default: knhk.local/receipts). */
    KNHK_TLOG_ORIGIN: z.string().regex(TLOG_ORIGIN.pattern, TLOG_ORIGIN.rule).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.DB_POOL_MIN_CONNECTIONS !== undefined && s.DB_POOL_MAX_CONNECTIONS !== undefined && s.DB_POOL_MIN_CONNECTIONS > s.DB_POOL_MAX_CONNECTIONS) {
      ctx.addIssue({
        code: "custom",
        path: ["DB_POOL_MIN_CONNECTIONS"],
        input: s.DB_POOL_MIN_CONNECTIONS,
        message: `must be <= DB_POOL_MAX_CONNECTIONS (${s.DB_POOL_MAX_CONNECTIONS})`,
      });
    }
  });

export const autoscaling = z
  .object({
    minReplicas: positiveInt.default(3),
    maxReplicas: positiveInt.default(10),
    cpuUtilization: z.number().int().min(1).max(100).default(70),
    memoryUtilization: z.number().int().min(1).max(100).default(80),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.maxReplicas < a.minReplicas) {
      ctx.addIssue({ code: "custom", path: ["maxReplicas"], input: a.maxReplicas, message: `must be >= minReplicas (${a.minReplicas})` });
    }
  });

export const appSection = z
  .object({
    /** Image repository without tag; each colour pins its own version. */
    image: imageRepository.default("ghcr.io/knhk/knhk"),
    versions: z
      .object({ blue: imageVersion, green: imageVersion })
      .strict()
      .prefault({ blue: "0.1.0", green: "0.1.0" }),
    activeColor: z.enum(["blue", "green"]).default("blue"),
    /** Replicas of each colour's Deployment before the HPA takes over. */
    replicas: positiveInt.default(3),
    autoscaling: autoscaling.prefault({}),
    resources: containerResources.default(resources("500m", "512Mi", "2000m", "2Gi")),
    settings: appSettings.prefault({}),
    /**
     * HTTPS on the API port (TLS 1.3): the Secret (type kubernetes.io/tls, e.g. written by a
     * cert-manager Certificate) whose tls.crt and tls.key the pods mount. Absent: plain HTTP
     * (required in staging and prod).
     */
    tls: z.object({ secretName: dnsLabel }).strict().optional(),
    /** Identity providers whose tokens the service accepts (required outside `local`). */
    oidc: oidcSection.prefault({}),
    /**
     * The service's start command inside the image. With Vault on, the container runs
     * `sh -c '. /vault/secrets/database.env && exec <command>'` so DATABASE_URL is set.
     */
    command: z.array(z.string().min(1)).min(1).default(["node", "dist/app/src/main.js"]),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.replicas < a.autoscaling.minReplicas || a.replicas > a.autoscaling.maxReplicas) {
      ctx.addIssue({
        code: "custom",
        path: ["replicas"],
        input: a.replicas,
        message: `must lie within autoscaling.minReplicas..maxReplicas (${a.autoscaling.minReplicas}..${a.autoscaling.maxReplicas})`,
      });
    }
  });
export type AppSectionConfig = z.infer<typeof appSection>;

/** Settings once the stack rules have resolved the pool sizes against the connection budget. */
export type AppSettings = Omit<AppSectionConfig["settings"], "DB_POOL_MAX_CONNECTIONS" | "DB_POOL_MIN_CONNECTIONS"> & {
  readonly DB_POOL_MAX_CONNECTIONS: number;
  readonly DB_POOL_MIN_CONNECTIONS: number;
};

/** The validated `knhk:app` section of a stack (what KnhkService receives). */
export type AppConfig = Omit<AppSectionConfig, "settings"> & { readonly settings: AppSettings };
