/**
 * The Secrets a set of Kubernetes objects reads but does not create: credentials and
 * certificates that exist before a deploy (made by Vault, cert-manager or the operator).
 * Found by walking the objects themselves, so the list follows what the components really
 * reference:
 *
 * - pod specs: `env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`, `volumes[].secret`,
 *   projected volume `sources[].secret`;
 * - prometheus-operator objects: every `{ name, key }` selector that is not a ConfigMap's (their
 *   receivers and TLS settings take SecretKeySelectors under many field names).
 */

export interface ObjectLike {
  readonly kind: string;
  readonly apiVersion: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly [field: string]: unknown;
}

export interface ReferencedSecret {
  readonly namespace: string;
  readonly name: string;
  /** The keys read by name, sorted. */
  readonly keys: readonly string[];
  /** Mounted whole as a volume (every key becomes a file), e.g. a TLS Secret. */
  readonly mounted: boolean;
}

type Found = { keys: Set<string>; mounted: boolean };

const CONFIG_MAP_FIELDS = new Set(["configMap", "configMapKeyRef", "configMapRef"]);
const MONITORING_GROUP = "monitoring.coreos.com/";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every `[fieldName, value]` pair below `value`, depth first (iterative: no recursion limit). */
function* fields(value: unknown): Generator<[string, unknown]> {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const next = stack.pop();
    if (Array.isArray(next)) stack.push(...next);
    else if (isRecord(next)) {
      for (const [field, child] of Object.entries(next)) {
        yield [field, child];
        stack.push(child);
      }
    }
  }
}

function podReferences(object: ObjectLike, note: (name: string, key?: string, mounted?: boolean) => void): void {
  for (const [field, value] of fields(object)) {
    if (!isRecord(value)) continue;
    if (field === "secretKeyRef" && typeof value.name === "string" && typeof value.key === "string") note(value.name, value.key);
    if (field === "secretRef" && typeof value.name === "string") note(value.name);
    if (field === "secret") {
      const name = typeof value.secretName === "string" ? value.secretName : typeof value.name === "string" ? value.name : undefined;
      if (name === undefined) continue;
      const items = Array.isArray(value.items) ? value.items.filter(isRecord) : [];
      if (items.length === 0) {
        note(name, undefined, true);
        continue;
      }
      for (const item of items) if (typeof item.key === "string") note(name, item.key);
    }
  }
}

function monitoringReferences(object: ObjectLike, note: (name: string, key?: string) => void): void {
  for (const [field, value] of fields(object.spec)) {
    if (CONFIG_MAP_FIELDS.has(field) || !isRecord(value)) continue;
    const keys = Object.keys(value).filter((k) => k !== "optional");
    if (keys.length === 2 && typeof value.name === "string" && typeof value.key === "string") note(value.name, value.key);
  }
}

/** The Secrets `objects` reference and do not define themselves, sorted by namespace and name. */
export function referencedSecrets(objects: readonly ObjectLike[], defaultNamespace = "default"): ReferencedSecret[] {
  const defined = new Set(
    objects.filter((o) => o.kind === "Secret").map((o) => `${o.metadata.namespace ?? defaultNamespace}/${o.metadata.name}`),
  );
  const found = new Map<string, Found>();
  for (const object of objects) {
    const namespace = object.metadata.namespace ?? defaultNamespace;
    const note = (name: string, key?: string, mounted = false) => {
      const id = `${namespace}/${name}`;
      const entry = found.get(id) ?? { keys: new Set<string>(), mounted: false };
      if (key !== undefined) entry.keys.add(key);
      entry.mounted ||= mounted;
      found.set(id, entry);
    };
    if (object.apiVersion.startsWith(MONITORING_GROUP)) monitoringReferences(object, note);
    else podReferences(object, note);
  }
  return [...found]
    .filter(([id]) => !defined.has(id))
    .map(([id, entry]) => {
      const [namespace, name] = id.split("/");
      return { namespace, name, keys: [...entry.keys].sort(), mounted: entry.mounted };
    })
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
}
