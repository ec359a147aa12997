/** `knhk:redis`: Redis primary + replicas with Sentinel. */
import { z } from "zod";
import { containerResources, pinnedImage, resources, storage } from "./common";
import { ENCRYPTED_STORAGE_CLASS } from "../render/volume-encryption";

export const EVICTION_POLICIES = [
  "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
  "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
] as const;

export const redisSection = z
  .object({
    image: pinnedImage.default("docker.io/library/redis:7.0.15-bookworm"),
    exporterImage: pinnedImage.default("docker.io/oliver006/redis_exporter:v1.66.0"),
    /** Replicas besides the primary. */
    replicas: z.number().int().min(1).max(5).default(1),
    sentinels: z
      .number()
      .int()
      .min(3)
      .max(7)
      .refine((n) => n % 2 === 1, "must be odd so a majority exists")
      .default(3),
    quorum: z.number().int().min(1).default(2),
    maxmemory: z.string().regex(/^\d+(kb|mb|gb)$/, "must be like 256mb or 1gb (redis units)").default("256mb"),
    maxmemoryPolicy: z.enum(EVICTION_POLICIES).default("allkeys-lru"),
    downAfterMilliseconds: z.number().int().min(1000).default(5000),
    /** The primary refuses writes (NOREPLICAS) with fewer replicas than this in sync: no acknowledged write a failover discards. */
    minReplicasToWrite: z.number().int().min(1).default(1),
    /** Seconds since a replica's last acknowledgement for it to count towards minReplicasToWrite. */
    minReplicasMaxLag: z.number().int().min(1).default(3),
    failoverTimeout: z.number().int().min(1000).default(60000),
    storage: storage.prefault({ className: ENCRYPTED_STORAGE_CLASS, size: "10Gi" }),
    resources: containerResources.default(resources("250m", "512Mi", "1", "1Gi")),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.quorum > r.sentinels) {
      ctx.addIssue({ code: "custom", path: ["quorum"], input: r.quorum, message: `must be <= sentinels (${r.sentinels})` });
    }
    if (r.minReplicasToWrite > r.replicas) {
      ctx.addIssue({ code: "custom", path: ["minReplicasToWrite"], input: r.minReplicasToWrite, message: `must be <= replicas (${r.replicas}), else the primary refuses every write` });
    }
    if (r.minReplicasMaxLag * 1000 >= r.downAfterMilliseconds) {
      ctx.addIssue({
        code: "custom",
        path: ["minReplicasMaxLag"],
        input: r.minReplicasMaxLag,
        message: `must be below downAfterMilliseconds (${r.downAfterMilliseconds} ms) so a cut-off primary stops taking writes before Sentinel can promote a replica`,
      });
    }
    if (r.quorum <= r.sentinels / 2) {
      ctx.addIssue({ code: "custom", path: ["quorum"], input: r.quorum, message: `must be a majority of sentinels (> ${r.sentinels / 2})` });
    }
  });
export type RedisConfig = z.infer<typeof redisSection>;
