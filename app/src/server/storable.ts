/**
 * What PostgreSQL can store, checked at the request boundary: text and jsonb refuse NUL
 * (22P05 / 22021), jsonb refuses lone UTF-16 surrogates (22P02), float8 aggregates overflow near
 * 1.8e308 (22003). Request data that could not be stored is a 400 naming the field; text from
 * unverified sources that must be recorded anyway (audit) is made storable instead.
 */
import { LONE_SURROGATE_SOURCE, unstorableReason } from "../db/storable-text";

/** Deepest nesting of any request body, checked on the raw text before it is parsed. */
export const MAX_BODY_DEPTH = 64;
/** Largest magnitude of any number in a request (beyond it, sums and squares leave float8's exact range). */
export const MAX_ABS_NUMBER = 1e15;

const LONE_SURROGATES = new RegExp(LONE_SURROGATE_SOURCE, "g");
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;

const escape = (unit: string) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * Attacker-controlled text made recordable: control characters and lone surrogates become
 * visible \uXXXX escapes (so the record still shows what was sent), then it is cut to `max`.
 */
export function storableText(text: string, max = 512): string {
  const visible = text.replace(CONTROL, escape).replace(LONE_SURROGATES, escape);
  if (visible.length <= max) return visible;
  // Never cut between the halves of a surrogate pair.
  const last = visible.charCodeAt(max - 1);
  return visible.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/**
 * The deepest nesting of arrays and objects in JSON text, found without recursion; stops counting
 * once `limit` is exceeded. Brackets inside strings do not count.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

export interface Unstorable {
  /** Dotted path from the request part, e.g. body.metadata.region. */
  readonly field: string;
  readonly reason: string;
}

function checkNumber(value: number): string | null {
  if (!Number.isFinite(value)) return "must be a finite number";
  if (Math.abs(value) > MAX_ABS_NUMBER) return `must be between -${MAX_ABS_NUMBER} and ${MAX_ABS_NUMBER}`;
  return null;
}

/**
 * The first string, key or number in a parsed request part that PostgreSQL could not store (or
 * that is out of the numeric bound), walked with an explicit stack so depth cannot overflow it.
 */
export function findUnstorable(root: unknown, context: string, maxDepth = MAX_BODY_DEPTH): Unstorable | null {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: root, path: context, depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === "string") {
      const reason = unstorableReason(value);
      if (reason) return { field: path, reason };
    } else if (typeof value === "number") {
      const reason = checkNumber(value);
      if (reason) return { field: path, reason };
    } else if (value !== null && typeof value === "object") {
      if (depth >= maxDepth) return { field: path, reason: `nests deeper than ${maxDepth} levels` };
      const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
      const children = entries.map(([key, child]) => ({ key, value: child, path: `${path}.${storableText(key, 128)}`, depth: depth + 1 }));
      if (!Array.isArray(value)) {
        for (const child of children) {
          const reason = unstorableReason(child.key);
          if (reason) return { field: child.path, reason: `key ${reason}` };
        }
      }
      // Reversed so the first offending value in document order is reported first.
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
    }
  }
  return null;
}
