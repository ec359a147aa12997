/**
 * Reads Kubernetes objects from YAML folders (the provider's renderYamlToDirectory output and the
 * mock render's k8s/ folder) and reduces them to what both sides must agree on.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";

export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly [key: string]: unknown };
  readonly [key: string]: unknown;
}

/** Every object in every *.yaml / *.yml file under `dir`, recursively. */
export function readObjects(dir: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const file of yamlFiles(dir)) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
      const value = doc.toJS() as K8sObject | null;
      if (value) objects.push(value);
    }
  }
  return objects;
}

function yamlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(entry.name) ? [full] : [];
  });
}

/** `Kind namespace/name`, the identity of an object in a cluster. */
export function objectKey(object: Pick<K8sObject, "kind" | "metadata">): string {
  return `${object.kind} ${object.metadata.namespace ?? ""}/${object.metadata.name}`;
}

/** Objects by identity; throws on two objects with the same identity. */
export function byKey(objects: readonly K8sObject[]): Map<string, K8sObject> {
  const map = new Map<string, K8sObject>();
  for (const object of objects) {
    const key = objectKey(object);
    if (map.has(key)) throw new Error(`two objects are ${key}`);
    map.set(key, object);
  }
  return map;
}

/**
 * The object as the Kubernetes provider writes it when it renders: the provider parses objects
 * into Kubernetes types and back, which writes CPU quantities canonically ("1000m" -> "1") and
 * drops probe delays of 0 (the API default). Labels and annotations left empty are dropped too.
 */
export function canonical(object: K8sObject): K8sObject {
  return canonicalValue(structuredClone(object), "") as K8sObject;
}

function canonicalValue(value: unknown, key: string): unknown {
  if (Array.isArray(value)) return value.map((item) => canonicalValue(item, ""));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (k === "initialDelaySeconds" && v === 0) continue;
      if ((k === "labels" || k === "annotations") && v && typeof v === "object" && Object.keys(v).length === 0) continue;
      out[k] = canonicalValue(v, k);
    }
    return out;
  }
  if (key === "cpu" && typeof value === "string") {
    const millis = /^(\d+)m$/.exec(value);
    if (millis && Number(millis[1]) % 1000 === 0) return String(Number(millis[1]) / 1000);
  }
  return value;
}
