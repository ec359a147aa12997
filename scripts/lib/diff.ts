/**
 * Resource-level diff of two offline renders (resources.json arrays): which resources were
 * added, removed or changed, and for each change the property paths with old and new values.
 * Pure; secrets stay masked (the render already shows `[secret]`; values under secret-looking
 * keys or holding secret-looking strings are masked here too).
 */
import { secretProblems } from "../../policy/policies/no-plaintext-secrets";

export interface DiffResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly parent?: string | null;
  readonly inputs: Record<string, unknown>;
}

export interface PropertyChange {
  /** `spec.template.spec.containers[name=knhk].image`; array items with unique names are keyed by name. */
  readonly path: string;
  readonly kind: "added" | "removed" | "changed";
  readonly old?: unknown;
  readonly new?: unknown;
}

export interface ResourceSummary {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
}

export interface ChangedResource extends ResourceSummary {
  readonly changes: PropertyChange[];
}

export interface StackDiff {
  readonly added: ResourceSummary[];
  readonly removed: ResourceSummary[];
  readonly changed: ChangedResource[];
  readonly unchanged: number;
}

export const MASK = "[masked]";

/** Masks a leaf value stored under `key` when it is or looks like a secret. */
export function maskValue(key: string, value: unknown): unknown {
  if (typeof value !== "string") return value;
  return secretProblems(key, value).length > 0 ? MASK : value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Arrays whose items all carry a distinct string `name` (containers, env, ports, volumes). */
function nameKeyed(a: unknown[], b: unknown[]): boolean {
  const names = (list: unknown[]) => list.map((x) => (isObject(x) && typeof x.name === "string" ? x.name : undefined));
  const na = names(a);
  const nb = names(b);
  return [na, nb].every((n) => n.every((x) => x !== undefined) && new Set(n).size === n.length) && (a.length + b.length > 0);
}

function keyOf(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
}

/** Masks secrets anywhere inside a value that is reported whole (added/removed subtrees). */
function maskDeep(key: string, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => maskDeep(key, v));
  if (isObject(value)) {
    // An env entry {name, value}: the name says whether the value is a secret.
    if (typeof value.name === "string" && "value" in value) return { ...value, value: maskValue(value.name, value.value) };
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(k, v)]));
  }
  return maskValue(key, value);
}

/** Recursively compares two values; `lastKey` names the leaf for masking decisions. */
export function diffValues(before: unknown, after: unknown, path = "", lastKey = ""): PropertyChange[] {
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  if (before === undefined) return [{ path, kind: "added", new: maskDeep(lastKey, after) }];
  if (after === undefined) return [{ path, kind: "removed", old: maskDeep(lastKey, before) }];
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    // An env entry keeps its name; mask its value by that name.
    const leafKey = (k: string) => (k === "value" && typeof after.name === "string" ? after.name : k);
    return keys.flatMap((k) => diffValues(before[k], after[k], keyOf(path, k), leafKey(k)));
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    if (nameKeyed(before, after)) {
      const byName = (list: unknown[]) => new Map(list.map((x) => [(x as { name: string }).name, x]));
      const a = byName(before);
      const b = byName(after);
      const names = [...new Set([...a.keys(), ...b.keys()])];
      return names.flatMap((n) => diffValues(a.get(n), b.get(n), `${path}[name=${n}]`, lastKey));
    }
    const length = Math.max(before.length, after.length);
    return Array.from({ length }, (_, i) => diffValues(before[i], after[i], `${path}[${i}]`, lastKey)).flat();
  }
  return [{ path, kind: "changed", old: maskDeep(lastKey, before), new: maskDeep(lastKey, after) }];
}

const summary = (r: DiffResource): ResourceSummary => ({ urn: r.urn, type: r.type, name: r.name });

/** Compares two renders resource by resource (keyed by URN). */
export function diffStacks(base: readonly DiffResource[], head: readonly DiffResource[]): StackDiff {
  const before = new Map(base.map((r) => [r.urn, r]));
  const after = new Map(head.map((r) => [r.urn, r]));
  const added = head.filter((r) => !before.has(r.urn)).map(summary);
  const removed = base.filter((r) => !after.has(r.urn)).map(summary);
  const changed: ChangedResource[] = [];
  let unchanged = 0;
  for (const r of head) {
    const old = before.get(r.urn);
    if (!old) continue;
    const changes = diffValues(old.inputs, r.inputs);
    if ((old.parent ?? null) !== (r.parent ?? null)) changes.unshift({ path: "(parent)", kind: "changed", old: old.parent, new: r.parent });
    if (changes.length > 0) changed.push({ ...summary(r), changes });
    else unchanged++;
  }
  return { added, removed, changed, unchanged };
}

function inline(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return `\`${(text ?? "undefined").replace(/`/g, "'").replace(/\|/g, "\\|")}\``;
}

/** A -/+ line diff of two multi-line strings (longest common subsequence). */
export function lineDiff(a: string, b: string): string[] {
  const x = a.split("\n");
  const y = b.split("\n");
  const lcs: number[][] = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--) for (let j = y.length - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) { i++; j++; }
    else if (i < x.length && (j >= y.length || lcs[i + 1][j] >= lcs[i][j + 1])) out.push(`- ${x[i++]}`);
    else out.push(`+ ${y[j++]}`);
  }
  return out;
}

export interface MarkdownOptions {
  readonly stack: string;
  readonly base: string;
  readonly head?: string;
}

const SIGN = { added: "+", removed: "-", changed: "~" } as const;

/** Markdown for a pull-request comment. */
export function toMarkdown(diff: StackDiff, options: MarkdownOptions): string {
  const lines: string[] = [];
  const total = diff.added.length + diff.removed.length + diff.changed.length;
  lines.push(`### Offline preview diff: stack \`${options.stack}\``, "");
  lines.push(`Base \`${options.base}\` → ${options.head ? `\`${options.head}\`` : "working tree"}: **${diff.changed.length} changed, ${diff.added.length} added, ${diff.removed.length} removed**, ${diff.unchanged} unchanged.`, "");
  if (total === 0) {
    lines.push("No resource changes.");
    return lines.join("\n") + "\n";
  }
  for (const r of diff.added) lines.push(`- **+ added** \`${r.type}\` \`${r.name}\``);
  for (const r of diff.removed) lines.push(`- **- removed** \`${r.type}\` \`${r.name}\``);
  if (diff.added.length + diff.removed.length > 0) lines.push("");
  for (const r of diff.changed) {
    lines.push(`#### ~ \`${r.type}\` \`${r.name}\``, "", "| | property | old | new |", "|---|---|---|---|");
    const blocks: string[] = [];
    for (const c of r.changes) {
      const multiline = typeof c.old === "string" && typeof c.new === "string" && (c.old.includes("\n") || c.new.includes("\n"));
      if (multiline) {
        const diffLines = lineDiff(c.old as string, c.new as string);
        lines.push(`| ${SIGN[c.kind]} | \`${c.path}\` | (text) | ${diffLines.length} line(s) changed, below |`);
        blocks.push(`<details><summary><code>${c.path}</code></summary>`, "", "```diff", ...diffLines, "```", "", "</details>");
      } else {
        lines.push(`| ${SIGN[c.kind]} | \`${c.path}\` | ${c.kind === "added" ? "" : inline(c.old)} | ${c.kind === "removed" ? "" : inline(c.new)} |`);
      }
    }
    lines.push("", ...blocks);
    if (blocks.length > 0) lines.push("");
  }
  return lines.join("\n").replace(/\n+$/, "") + "\n";
}
