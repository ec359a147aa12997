/**
 * `knhk:vault`: the service's Vault access (off in the `local` stack). The Vault provider itself is
 * configured with the standard `vault:address` / VAULT_TOKEN settings of the deploying identity.
 */
import { z } from "zod";

const mountPath = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "must be a Vault mount path such as 'secret'");
const duration = z.number().int().positive();

export const vaultSection = z
  .object({
    enabled: z.boolean().default(false),
    /** Mount paths of the engines this stack creates. */
    mounts: z
      .object({
        kv: mountPath.default("secret"),
        database: mountPath.default("database"),
        transit: mountPath.default("transit"),
        kubernetesAuth: mountPath.default("kubernetes"),
      })
      .strict()
      .prefault({}),
    /** The cluster's API server as Vault reaches it (Kubernetes auth backend config). */
    kubernetesHost: z.string().regex(/^https:\/\/\S+$/, "must be an https:// URL").default("https://kubernetes.default.svc"),
    /** Audience of the projected service-account token Vault Agent presents. */
    tokenAudience: z.string().min(1).default("vault"),
    tokenTtlSeconds: duration.default(3600),
    tokenMaxTtlSeconds: duration.default(14400),
    database: z
      .object({
        /** PostgreSQL user Vault connects as to create dynamic users; its password is rotated by Vault. */
        adminUsername: z.string().regex(/^[a-z_][a-z0-9_]*$/, "must be a PostgreSQL role name").default("vault_admin"),
        /** Dynamic credentials lease for the service. */
        defaultTtlSeconds: duration.default(3600),
        maxTtlSeconds: duration.default(86400),
        /** Rotation of the static schema-owner credential (30 days). */
        staticRotationSeconds: duration.default(30 * 24 * 3600),
        /** Cron schedule for rotating Vault's own root credential on the connection. */
        rootRotationSchedule: z.string().regex(/^(\S+\s+){4}\S+$/, "must be a 5-field cron expression").default("0 3 1 * *"),
      })
      .strict()
      .prefault({}),
    /** Receipt-signing transit key rotation (90 days per the guide). */
    signingKeyRotationSeconds: duration.default(90 * 24 * 3600),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.tokenMaxTtlSeconds < v.tokenTtlSeconds) {
      ctx.addIssue({ code: "custom", path: ["tokenMaxTtlSeconds"], input: v.tokenMaxTtlSeconds, message: `must be >= tokenTtlSeconds (${v.tokenTtlSeconds})` });
    }
    if (v.database.maxTtlSeconds < v.database.defaultTtlSeconds) {
      ctx.addIssue({ code: "custom", path: ["database", "maxTtlSeconds"], input: v.database.maxTtlSeconds, message: `must be >= database.defaultTtlSeconds (${v.database.defaultTtlSeconds})` });
    }
  });
export type VaultConfig = z.infer<typeof vaultSection>;
