/**
 * `knhk:grafana`: the three dashboards. `enabled` creates a folder and the dashboards through the
 * Grafana API (@pulumiverse/grafana; off in the `local` stack); `sidecarConfigMaps` ships the same
 * JSON as ConfigMaps labelled for the Grafana dashboard sidecar.
 */
import { z } from "zod";
import { dnsLabel } from "./common";

export const grafanaSection = z
  .object({
    enabled: z.boolean().default(false),
    folderTitle: z.string().min(1).default("KNHK"),
    folderUid: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, "must be a Grafana uid (letters, digits, '_', '-', max 40)").default("knhk"),
    sidecarConfigMaps: z.boolean().default(true),
    /** Namespace the sidecar watches; default the stack's namespace. */
    sidecarNamespace: dnsLabel.optional(),
  })
  .strict();
export type GrafanaConfig = z.infer<typeof grafanaSection>;
