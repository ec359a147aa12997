/**
 * Writes BENCHMARKS.md from bench/results/*.json (and run-all.json, the record of the last
 * `npm run bench`), so the table is always the latest measured figures.
 *
 *   npm run bench:report     (or: npx tsx bench/report.ts [--out FILE])
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { RESULTS_DIR } from "./lib/results";
import { renderReport, type RunRecord, type StoredResult } from "./lib/report";

export const RUN_RECORD = "run-all.json";

function readJson<T>(file: string): T {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch (error) {
    throw new Error(`${path.relative(process.cwd(), file)}: ${(error as Error).message}`);
  }
}

/** Every result file in `dir` (not the run record), checked to be what writeResult writes. */
export function readResults(dir: string = RESULTS_DIR): StoredResult[] {
  const files = readdirSync(dir).filter((f) => f.endsWith(".json") && f !== RUN_RECORD).sort();
  const results = files.map((f) => readJson<StoredResult>(path.join(dir, f)));
  for (const [i, r] of results.entries()) {
    if (typeof r?.benchmark !== "string" || !r.machine || r.data === undefined) {
      throw new Error(`${files[i]}: not a benchmark result (needs benchmark, machine and data, as writeResult writes them)`);
    }
  }
  return results;
}

export function writeReport(out: string, dir: string = RESULTS_DIR): string {
  const results = readResults(dir);
  let run: RunRecord | undefined;
  if (readdirSync(dir).includes(RUN_RECORD)) run = readJson<RunRecord>(path.join(dir, RUN_RECORD));
  const markdown = renderReport({ results, run, generatedAt: new Date().toISOString().replace(/\.\d+Z$/, "Z") });
  writeFileSync(out, markdown);
  return markdown;
}

if (require.main === module) {
  const i = process.argv.indexOf("--out");
  const out = path.resolve(i >= 0 ? process.argv[i + 1] : path.join(__dirname, "..", "BENCHMARKS.md"));
  try {
    const markdown = writeReport(out);
    const summary = markdown.split("\n").find((l) => l.startsWith("**"));
    console.log(`written ${path.relative(process.cwd(), out)}: ${summary?.replace(/\*/g, "") ?? ""}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}
