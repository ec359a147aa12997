/** How archived records are written: shared by the archive streams and the audit log's leaves. */

/** SQL: a timestamptz column as ISO 8601 UTC text with microseconds. */
export const ISO_US = (column: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** JSON object text from scalar fields plus raw JSON members (PostgreSQL's own jsonb text, verbatim). */
export function jsonLine(fields: Record<string, unknown>, raw: Record<string, string>): string {
  const head = JSON.stringify(fields).slice(0, -1);
  const tail = Object.entries(raw)
    .map(([k, text]) => `,${JSON.stringify(k)}:${text}`)
    .join("");
  return `${head}${tail}}`;
}
