/**
 * `knhk:ledgerJobs`: the scheduled ledger jobs (CronJobs in the stack's namespace).
 *
 * - `archive` (`knhk-archive`): `knhk archive run` copies new receipts and audit entries to the
 *   Object-Locked ledger bucket and observations older than `observationArchiveAfterDays` to the
 *   data bucket (Glacier by its lifecycle), then deletes the archived observations from PostgreSQL.
 * - `verifyChain` (`knhk-verify-chain`): incremental chain verification from the last checkpoint.
 * - `fullVerification` (`knhk-verify-chain-full`): the whole chain from genesis (what an
 *   incremental run cannot see: a receipt rewritten below the last checkpoint with its hash kept).
 *
 * They run where the stack gives them a database identity (`knhk:vault.enabled`); the archive also
 * needs the compliance archive (`knhk:aws.enabled`). Each job alerts when it has not succeeded for
 * `alertAfterSeconds`.
 */
import { z } from "zod";
import { containerResources, cronSchedule, resources, type ContainerResources } from "./common";

const seconds = z.number().int().positive();

interface JobDefaults {
  readonly schedule: string;
  readonly activeDeadlineSeconds: number;
  readonly alertAfterSeconds: number;
  readonly resources: ContainerResources;
}

/** The fields every job has. */
function jobFields(d: JobDefaults) {
  return {
    enabled: z.boolean().default(true),
    /** 5-field cron expression, UTC. */
    schedule: cronSchedule.default(d.schedule),
    /** A run still going after this long is stopped (and counts as failed). */
    activeDeadlineSeconds: z.number().int().min(60).default(d.activeDeadlineSeconds),
    /** The job's alert fires when no run succeeded for this long. */
    alertAfterSeconds: seconds.default(d.alertAfterSeconds),
    resources: containerResources.default(d.resources),
  };
}

/** A run that is still within its deadline must not page as "not succeeding". */
function alertAfterDeadline(j: { alertAfterSeconds: number; activeDeadlineSeconds: number }, ctx: z.RefinementCtx): void {
  if (j.alertAfterSeconds <= j.activeDeadlineSeconds) {
    ctx.addIssue({
      code: "custom",
      path: ["alertAfterSeconds"],
      input: j.alertAfterSeconds,
      message: `must be greater than activeDeadlineSeconds (${j.activeDeadlineSeconds})`,
    });
  }
}

/** Verifier threads; the container's CPU limit should allow them. */
const workers = z.number().int().min(1).max(64);

export const ledgerJobsSection = z
  .object({
    archive: z
      .object({
        ...jobFields({ schedule: "17 * * * *", activeDeadlineSeconds: 2700, alertAfterSeconds: 4 * 3600, resources: resources("250m", "256Mi", "1", "512Mi") }),
        /** Records per S3 object (`--batch`). */
        batchSize: z.number().int().min(1).max(100_000).default(1000),
        /** Observations stay this long in PostgreSQL, then go to the data bucket (KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS). */
        observationArchiveAfterDays: z.number().int().min(1).max(36_500).default(90),
        /** Delete archived observations from PostgreSQL (`--delete-archived-observations`). */
        deleteArchivedObservations: z.boolean().default(true),
      })
      .strict()
      .superRefine(alertAfterDeadline)
      .prefault({}),
    verifyChain: z
      .object({
        ...jobFields({ schedule: "41 */6 * * *", activeDeadlineSeconds: 2700, alertAfterSeconds: 13 * 3600, resources: resources("500m", "256Mi", "2", "1Gi") }),
        workers: workers.default(2),
      })
      .strict()
      .superRefine(alertAfterDeadline)
      .prefault({}),
    fullVerification: z
      .object({
        ...jobFields({ schedule: "23 4 * * 0", activeDeadlineSeconds: 3300, alertAfterSeconds: 8 * 86400, resources: resources("1", "512Mi", "2", "1Gi") }),
        workers: workers.default(2),
      })
      .strict()
      .superRefine(alertAfterDeadline)
      .prefault({}),
    /**
     * Lease of the jobs' dynamic database credentials (the TTL of the Vault database roles
     * knhk-archiver and knhk-verifier). Vault Agent renders a Job's credential once (a Job with the
     * agent sidecar would never complete) and Vault ends its sessions when the lease expires, so
     * every job's activeDeadlineSeconds must stay below it.
     */
    credentialTtlSeconds: z.number().int().min(300).max(86_400).default(3600),
    /** A run that could not start within this long after its scheduled time is skipped (counted as missed). */
    startingDeadlineSeconds: z.number().int().min(10).default(600),
    /** Retries of a failed run (a new pod each time, new credentials each time). */
    backoffLimit: z.number().int().min(0).max(6).default(1),
    successfulJobsHistoryLimit: z.number().int().min(0).max(10).default(3),
    failedJobsHistoryLimit: z.number().int().min(1).max(10).default(3),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const kind of ["archive", "verifyChain", "fullVerification"] as const) {
      const deadline = c[kind].activeDeadlineSeconds;
      if (c[kind].enabled && deadline >= c.credentialTtlSeconds) {
        ctx.addIssue({
          code: "custom",
          path: [kind, "activeDeadlineSeconds"],
          input: deadline,
          message: `must be below credentialTtlSeconds (${c.credentialTtlSeconds}): Vault ends the run's database sessions when its credential's lease expires`,
        });
      }
    }
  });
export type LedgerJobsConfig = z.infer<typeof ledgerJobsSection>;
