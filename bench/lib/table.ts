/** Plain-text aligned tables for benchmark output (stdout), numbers right-aligned. */

export type Cell = string | number | boolean | null | undefined;

/** Numbers: integers as is, others with 3 significant decimals under 10, 1 decimal above. */
export function formatCell(value: Cell): string {
  if (value === null || value === undefined) return "-";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return String(value);
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) < 10 ? value.toFixed(3) : value.toFixed(1);
  }
  return value;
}

export function renderTable(rows: readonly Record<string, Cell>[], columns?: readonly string[]): string {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => cols.map((c) => formatCell(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const numeric = cols.map((c) => rows.length > 0 && rows.every((r) => typeof r[c] === "number" || r[c] == null));
  const pad = (s: string, i: number) => (numeric[i] ? s.padStart(widths[i]) : s.padEnd(widths[i]));
  const lines = [
    cols.map((c, i) => pad(c, i)).join("  "),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...cells.map((row) => row.map((s, i) => pad(s, i)).join("  ")),
  ];
  return lines.map((l) => l.trimEnd()).join("\n");
}

/** Prints a table (optionally titled) to stdout. */
export function printTable(rows: readonly Record<string, Cell>[], columns?: readonly string[], title?: string): void {
  if (title) console.log(`\n${title}`);
  console.log(renderTable(rows, columns));
}
