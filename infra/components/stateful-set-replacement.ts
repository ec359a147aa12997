/**
 * How a StatefulSet is replaced. Its selector, serviceName, podManagementPolicy and
 * volumeClaimTemplates cannot be updated, so the Kubernetes provider plans a replace when one of
 * them changes. With a fixed name the old object has to go first (`deleteBeforeReplace`), and it
 * is deleted with its pods orphaned, so the members keep running on their volumes until the new
 * StatefulSet, with the same selector, adopts them. Existing claims keep their size: growing a
 * volume is a claim expansion, not a template change.
 */
import type * as pulumi from "@pulumi/pulumi";

/** Annotation of the StatefulSet: deleting it leaves its pods running. */
export const ORPHAN_PODS_ON_DELETE: Readonly<Record<string, string>> = { "pulumi.com/deletionPropagationPolicy": "orphan" };

/** Resource options of every StatefulSet (merged with the child options). */
export function statefulSetOptions(child: pulumi.CustomResourceOptions): pulumi.CustomResourceOptions {
  return { ...child, deleteBeforeReplace: true };
}
