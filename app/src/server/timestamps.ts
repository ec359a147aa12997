/**
 * The instants a request may name: ISO-8601 years 0001-9999 (PostgreSQL has no year 0, and
 * JavaScript cannot represent a leap second), checked after ajv's date-time format.
 */
export const EARLIEST_TIMESTAMP = "0001-01-01T00:00:00Z";
export const LATEST_TIMESTAMP = "9999-12-31T23:59:59.999Z";
const EARLIEST_MS = Date.parse(EARLIEST_TIMESTAMP);
const LATEST_MS = Date.parse(LATEST_TIMESTAMP);

/** Why this date-time text is not a storable instant, or null when it is. */
export function instantProblem(text: string): string | null {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return "must be a representable instant (no leap seconds)";
  if (ms < EARLIEST_MS || ms > LATEST_MS) return `must be from ${EARLIEST_TIMESTAMP} to ${LATEST_TIMESTAMP}`;
  return null;
}

/** The ajv keyword that applies instantProblem: `{ format: "date-time", storableInstant: true }`. */
export const storableInstantKeyword = {
  keyword: "storableInstant",
  type: "string",
  schemaType: "boolean",
  errors: true,
  validate: function storableInstant(enabled: boolean, data: string): boolean {
    const problem = enabled ? instantProblem(data) : null;
    (storableInstant as unknown as { errors: unknown[] }).errors = problem ? [{ keyword: "storableInstant", message: problem, params: {} }] : [];
    return problem === null;
  },
} as const;
