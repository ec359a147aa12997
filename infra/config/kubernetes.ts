/** `knhk:kubernetes`: where the Kubernetes provider sends objects. */
import { z } from "zod";

/**
 * `kubeconfig` (a file, relative to the project root or absolute) and/or `context` target a
 * cluster: the `local` stack's is the control plane of `scripts/cluster.sh`. `renderDir` writes
 * YAML manifests to a folder instead (no cluster needed). None of them: the ambient kubeconfig.
 */
export const kubernetesSection = z
  .object({
    renderDir: z.string().min(1).optional(),
    context: z.string().min(1).optional(),
    kubeconfig: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((k, ctx) => {
    if (k.renderDir !== undefined && (k.context !== undefined || k.kubeconfig !== undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["renderDir"],
        input: k.renderDir,
        message: "cannot be combined with context/kubeconfig: either render to a folder or target a cluster",
      });
    }
  });
export type KubernetesConfig = z.infer<typeof kubernetesSection>;
