/**
 * Where an object as declared (the mock render) and the object the API server holds disagree.
 * The server adds defaults and status, so only what the declaration sets is compared: every field
 * of `expected` must be in `actual` with the same value (arrays element by element, same length).
 * Quantities are compared by value ("1000m" = "1", "1024Mi" = "1Gi").
 */

const QUANTITY = /^([+-]?\d+(?:\.\d+)?)(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$/;
const FACTOR: Record<string, number> = {
  "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50,
};

/** A Kubernetes quantity as a number ("500m" = 0.5, "1Gi" = 2^30, "3" = 3), or undefined when it is not one. */
export function quantity(value: string): number | undefined {
  const match = QUANTITY.exec(value);
  return match ? Number(match[1]) * FACTOR[match[2] ?? ""] : undefined;
}

function sameScalar(expected: unknown, actual: unknown): boolean {
  if (expected === actual) return true;
  // The server writes quantities canonically; plain numbers and numeric strings are not quantities.
  const suffixed = (v: string) => /[a-zA-Z]$/.test(v);
  if (typeof expected === "string" && typeof actual === "string" && (suffixed(expected) || suffixed(actual))) {
    const [e, a] = [quantity(expected), quantity(actual)];
    return e !== undefined && a !== undefined && Math.abs(e - a) <= Math.abs(e) * 1e-9;
  }
  return false;
}

/** Paths (`spec.template.spec.containers[0].image`) where `actual` does not hold `expected`. */
export function subsetMismatches(expected: unknown, actual: unknown, at = ""): string[] {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return [`${at}: expected ${expected.length} items, found ${Array.isArray(actual) ? actual.length : JSON.stringify(actual)}`];
    }
    return expected.flatMap((item, i) => subsetMismatches(item, actual[i], `${at}[${i}]`));
  }
  if (expected && typeof expected === "object") {
    if (!actual || typeof actual !== "object" || Array.isArray(actual)) return [`${at}: expected an object, found ${JSON.stringify(actual)}`];
    return Object.entries(expected as Record<string, unknown>).flatMap(([key, value]) =>
      subsetMismatches(value, (actual as Record<string, unknown>)[key], at ? `${at}.${key}` : key),
    );
  }
  return sameScalar(expected, actual) ? [] : [`${at}: expected ${JSON.stringify(expected)}, found ${JSON.stringify(actual)}`];
}
