/**
 * Kubernetes schema validation of rendered objects with kubernetes-models (the OpenAPI schemas
 * of the Kubernetes API, compiled). Unknown field names are caught earlier, by the TypeScript
 * input types of @pulumi/kubernetes under `npm run typecheck`.
 */
import type { K8sObject } from "./render";

interface ValidatableModel {
  validate(): void;
}
type ModelClass = new (data: object) => ValidatableModel;

/** `kubernetes-models/<group>/<version>/<Kind>`; the core group is `v1/<Kind>`. */
function loadModel(apiVersion: string, kind: string): ModelClass | undefined {
  if (!/^[A-Za-z0-9./-]+$/.test(apiVersion) || !/^[A-Za-z0-9]+$/.test(kind)) return undefined;
  try {
    const mod = require(`kubernetes-models/${apiVersion}/${kind}`) as Record<string, ModelClass>;
    return mod[kind];
  } catch {
    return undefined;
  }
}

/** True when kubernetes-models knows the kind (core API groups; CRDs are not included). */
export function hasBuiltInSchema(obj: Pick<K8sObject, "apiVersion" | "kind">): boolean {
  return loadModel(obj.apiVersion, obj.kind) !== undefined;
}

/** Schema violations of one object (empty when valid); throws for a kind without a schema. */
export function validateK8sObject(obj: K8sObject): string[] {
  const Model = loadModel(obj.apiVersion, obj.kind);
  if (!Model) throw new Error(`no built-in schema for ${obj.apiVersion} ${obj.kind}`);
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return [`${obj.kind} ${obj.metadata.namespace ?? ""}/${obj.metadata.name}: ${(err as Error).message}`];
  }
}
