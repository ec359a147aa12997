/** `knhk:patroni`: PostgreSQL 15 with Patroni, its DCS, storage and pgBackRest. */
import { z } from "zod";
import { STRICT_SYNC_STANDBY_WAIT_SECONDS, writeRecoverySeconds } from "../render/patroni";
import { containerResources, cronSchedule, dnsLabel, pinnedImage, resources, storage } from "./common";
import { ENCRYPTED_STORAGE_CLASS } from "../render/volume-encryption";

/** Failover must complete within this budget (seed guarantee: RTO < 30 s). */
export const RTO_BUDGET_SECONDS = 30;

const backupRepo = z.discriminatedUnion("type", [
  z
    .object({
      type: z.literal("s3"),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be an S3 bucket name"),
      region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "must be an AWS region such as eu-central-1"),
      endpoint: z.string().min(1).optional(),
      path: z.string().startsWith("/").default("/pgbackrest"),
    })
    .strict(),
  z
    .object({
      type: z.literal("posix"),
      path: z.string().startsWith("/").default("/var/lib/pgbackrest"),
      /** PVC size of the repository volume. */
      size: z.string().regex(/^\d+(Ki|Mi|Gi|Ti)$/, "must be a storage quantity such as 50Gi").default("50Gi"),
    })
    .strict(),
]);

export const patroniSection = z
  .object({
    /** Image with PostgreSQL 15, Patroni >= 4.0 (role label values) and pgBackRest: infra/images/patroni. */
    image: pinnedImage.default("ghcr.io/knhk/postgres-patroni:15-patroni4.0.7"),
    exporterImage: pinnedImage.default("quay.io/prometheuscommunity/postgres-exporter:v0.16.0"),
    /** pgbackrest_exporter (bundles its own pgBackRest 2.57 to run `pgbackrest info`): sidecar on 9854. */
    pgbackrestExporterImage: pinnedImage.default("docker.io/woblerr/pgbackrest_exporter:v0.22.0"),
    members: z.number().int().min(1).max(9).default(3),
    dcs: z
      .discriminatedUnion("type", [
        z.object({ type: z.literal("kubernetes") }).strict(),
        z
          .object({
            type: z.literal("etcd"),
            hosts: z.array(z.string().regex(/^[^:\s]+:\d+$/, "must be host:port")).min(1),
          })
          .strict(),
      ])
      .default({ type: "kubernetes" }),
    // Patroni 4 refuses ttl < 20 and retry_timeout < 3; 20 + 2 + the strict-sync wait of 5 s stays below the RTO.
    ttl: z.number().int().min(20).default(20),
    // Every loop_wait seconds each member runs its HA loop: it bounds how late a crashed
    // PostgreSQL is restarted and an expired lock is taken (test/cluster/patroni-failover.test.ts).
    loopWait: z.number().int().min(1).default(2),
    retryTimeout: z.number().int().min(3).default(5),
    primaryStartTimeout: z.number().int().min(0).default(10),
    maximumLagOnFailover: z.number().int().min(0).default(1048576),
    storage: storage.prefault({ className: ENCRYPTED_STORAGE_CLASS, size: "100Gi" }),
    resources: containerResources.default(resources("1", "2Gi", "4", "8Gi")),
    /** Secret (type kubernetes.io/tls) with tls.crt, tls.key, ca.crt for PostgreSQL and the REST API. */
    tlsSecretName: dnsLabel.default("postgres-tls"),
    /** Secret with superuser-, replication-, rewind- and exporter-password (created by Vault/ops, never in git). */
    credentialsSecretName: dnsLabel.default("postgres-credentials"),
    postgresParameters: z
      .object({
        /** Checked against every client's pool (connection-budget.ts); the service's pool default derives from it. */
        max_connections: z.number().int().min(10).default(200),
        /** Slots only superusers (Patroni, an operator's psql) may take once the others are used up. */
        superuser_reserved_connections: z.number().int().min(1).max(20).default(3),
        shared_buffers: z.string().regex(/^\d+(kB|MB|GB)$/, "must be like 512MB").default("512MB"),
      })
      .strict()
      .prefault({}),
    backup: z
      .object({
        repo: backupRepo.default({ type: "posix", path: "/var/lib/pgbackrest", size: "50Gi" }),
        /** Client certificate (CN pgbackrest-repo) the backup jobs present to `pgbackrest server`. */
        clientTlsSecretName: dnsLabel.default("pgbackrest-client-tls"),
        /** Secret with `cipher-pass` (repo encryption, aes-256-cbc). */
        cipherSecretName: dnsLabel.default("pgbackrest-cipher"),
        retentionFull: z.number().int().min(1).default(4),
        fullSchedule: cronSchedule.default("0 2 * * 0"),
        incrementalSchedule: cronSchedule.default("0 2 * * 1-6"),
        restoreTestSchedule: cronSchedule.default("0 4 1 * *"),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.loopWait + 2 * p.retryTimeout > p.ttl) {
      ctx.addIssue({
        code: "custom",
        path: ["ttl"],
        input: p.ttl,
        message: `must be >= loopWait + 2*retryTimeout (${p.loopWait} + 2*${p.retryTimeout} = ${p.loopWait + 2 * p.retryTimeout})`,
      });
    }
    if (writeRecoverySeconds(p) >= RTO_BUDGET_SECONDS) {
      ctx.addIssue({
        code: "custom",
        path: ["ttl"],
        input: p.ttl,
        message: `ttl + loopWait + the ${STRICT_SYNC_STANDBY_WAIT_SECONDS} s strict-sync standby wait (${writeRecoverySeconds(p)} s) must stay below the RTO budget of ${RTO_BUDGET_SECONDS} s`,
      });
    }
  });
export type PatroniConfig = z.infer<typeof patroniSection>;
