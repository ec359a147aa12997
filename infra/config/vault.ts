/**
 * `knhk:vault`: the service's Vault access (off in the `local` stack). The Vault provider itself is
 * configured with the standard `vault:address` / VAULT_TOKEN settings of the deploying identity.
 */
import { z } from "zod";
import { dnsLabel } from "./common";

const mountPath = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "must be a Vault mount path such as 'secret'");
const duration = z.number().int().positive();

export const vaultSection = z
  .object({
    enabled: z.boolean().default(false),
    /** Mount paths of the engines this stack creates. */
    mounts: z
      .object({
        /** Not `secret`: that path is mounted already on most Vault servers (dev mode, other teams). */
        kv: mountPath.default("knhk-kv"),
        database: mountPath.default("database"),
        transit: mountPath.default("transit"),
        kubernetesAuth: mountPath.default("kubernetes"),
      })
      .strict()
      .prefault({}),
    /**
     * Where the Vault server's connections to PostgreSQL come from (its database secrets engine):
     * pods in a namespace of this cluster (the Vault Helm chart's labels by default), or addresses
     * outside it. PostgreSQL's NetworkPolicy admits exactly this source on 5432.
     */
    server: z
      .union([
        z.object({ namespace: dnsLabel, podLabels: z.record(z.string(), z.string()).default({ "app.kubernetes.io/name": "vault" }) }).strict(),
        z.object({ cidrs: z.array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, "must be an IPv4 CIDR such as 10.20.0.0/16")).min(1) }).strict(),
      ])
      .default({ namespace: "vault", podLabels: { "app.kubernetes.io/name": "vault" } }),
    /** The cluster's API server as Vault reaches it (Kubernetes auth backend config). */
    kubernetesHost: z.string().regex(/^https:\/\/\S+$/, "must be an https:// URL").default("https://kubernetes.default.svc"),
    /** Audience of the projected service-account token Vault Agent presents. */
    tokenAudience: z.string().min(1).default("vault"),
    tokenTtlSeconds: duration.default(3600),
    tokenMaxTtlSeconds: duration.default(14400),
    database: z
      .object({
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
