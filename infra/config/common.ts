/**
 * Building blocks shared by the per-section config schemas: Kubernetes quantities, names,
 * pinned image references and container resources.
 */
import { z } from "zod";

/** A Kubernetes DNS-1123 label (names of namespaces, services, storage classes...). */
export const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS-1123 label: lower-case letters, digits and '-'")
  .max(63);

const CPU_QUANTITY = /^(\d+m|\d+(\.\d+)?)$/;
const MEMORY_QUANTITY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|K|M|G|T|P)?$/;

export const cpuQuantity = z
  .string()
  .regex(CPU_QUANTITY, { message: "must be a CPU quantity such as 500m or 2", abort: true })
  .refine((q) => parseCpu(q) > 0, "must be greater than zero");

export const memoryQuantity = z
  .string()
  .regex(MEMORY_QUANTITY, { message: "must be a memory quantity such as 512Mi or 2Gi", abort: true })
  .refine((q) => parseMemory(q) > 0, "must be greater than zero");

/** CPU quantity in millicores. */
export function parseCpu(q: string): number {
  return q.endsWith("m") ? Number(q.slice(0, -1)) : Number(q) * 1000;
}

const MEMORY_FACTORS: Record<string, number> = {
  "": 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50,
};

/** Memory/storage quantity in bytes. */
export function parseMemory(q: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGTP]i?)?$/.exec(q);
  if (!m) return NaN;
  return Number(m[1]) * MEMORY_FACTORS[m[2] ?? ""];
}

/** Container requests/limits; limits must not be below requests. */
export const containerResources = z
  .object({
    requests: z.object({ cpu: cpuQuantity, memory: memoryQuantity }).strict(),
    limits: z.object({ cpu: cpuQuantity, memory: memoryQuantity }).strict(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (parseCpu(r.limits.cpu) < parseCpu(r.requests.cpu)) {
      ctx.addIssue({ code: "custom", path: ["limits", "cpu"], input: r.limits.cpu, message: `must be >= requests.cpu (${r.requests.cpu})` });
    }
    if (parseMemory(r.limits.memory) < parseMemory(r.requests.memory)) {
      ctx.addIssue({ code: "custom", path: ["limits", "memory"], input: r.limits.memory, message: `must be >= requests.memory (${r.requests.memory})` });
    }
  });
export type ContainerResources = z.infer<typeof containerResources>;

export function resources(requestsCpu: string, requestsMemory: string, limitsCpu: string, limitsMemory: string): ContainerResources {
  return { requests: { cpu: requestsCpu, memory: requestsMemory }, limits: { cpu: limitsCpu, memory: limitsMemory } };
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const REPOSITORY = /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;

/** Why a version (tag or digest) is not a pin, or undefined when it is one. */
export function versionProblem(version: string): string | undefined {
  if (DIGEST.test(version)) return undefined;
  if (!TAG.test(version)) return "must be an image tag ([A-Za-z0-9_.-], max 128) or a digest sha256:<64 hex>";
  if (version.toLowerCase() === "latest") return "must be pinned: 'latest' is not allowed";
  return undefined;
}

/** Why an image reference is not pinned by tag or digest, or undefined when it is. */
export function imageProblem(ref: string): string | undefined {
  const at = ref.indexOf("@");
  if (at >= 0) {
    const repo = ref.slice(0, at).replace(/:[^/:]+$/, "");
    if (!REPOSITORY.test(repo)) return "has an invalid repository";
    return DIGEST.test(ref.slice(at + 1)) ? undefined : "has an invalid digest (expected sha256:<64 hex>)";
  }
  const colon = ref.lastIndexOf(":");
  if (colon < 0 || colon < ref.lastIndexOf("/")) return "must be pinned by tag or digest (repository:tag or repository@sha256:...)";
  if (!REPOSITORY.test(ref.slice(0, colon))) return "has an invalid repository";
  return versionProblem(ref.slice(colon + 1));
}

/** An image reference pinned by tag (not latest) or digest. */
export const pinnedImage = z.string().superRefine((ref, ctx) => {
  const problem = imageProblem(ref);
  if (problem) ctx.addIssue({ code: "custom", input: ref, message: problem });
});

/** A repository without tag or digest (the version comes separately). */
export const imageRepository = z.string().regex(REPOSITORY, "must be an image repository without tag or digest, e.g. ghcr.io/knhk/knhk");

/** A tag or digest that pins an image. */
export const imageVersion = z.string().superRefine((v, ctx) => {
  const problem = versionProblem(v);
  if (problem) ctx.addIssue({ code: "custom", input: v, message: problem });
});

/** repository + version -> a full reference (`repo:tag` or `repo@sha256:...`). */
export function imageRef(repository: string, version: string): string {
  return version.startsWith("sha256:") ? `${repository}@${version}` : `${repository}:${version}`;
}

/** Storage for a PersistentVolumeClaim template. */
export const storage = z
  .object({ className: dnsLabel, size: memoryQuantity })
  .strict();

/** A 5-field cron expression (the shape only; Kubernetes parses the values). */
export const cronSchedule = z
  .string()
  .regex(/^(\S+\s+){4}\S+$/, "must be a 5-field cron expression such as '0 2 * * 0'");
