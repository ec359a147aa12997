/**
 * Stack benchmark: wall time of `npm run render -- --stack prod` (the whole program under Pulumi
 * mocks, in a fresh process, including TypeScript loading and writing resources.json and the
 * manifests). Target: under 10 s. Usage: npx tsx bench/stack-render.ts [--runs N] [--stack S]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { printTable, repeat, writeResult } from "./lib";

const TARGET_SECONDS = 10;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const stack = arg("stack", "prod");
  const runs = Number(arg("runs", "5"));
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${arg("runs", "")}`);
  const root = path.resolve(__dirname, "..");
  let resources = 0;

  const renderOnce = (): number => {
    const out = mkdtempSync(path.join(tmpdir(), "knhk-bench-render-"));
    try {
      const start = process.hrtime.bigint();
      const child = spawnSync(process.execPath, [path.join(root, "node_modules/tsx/dist/cli.mjs"), "scripts/render.ts", "--stack", stack, "--out", out], {
        cwd: root,
        encoding: "utf8",
      });
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (child.status !== 0) throw new Error(`render failed (exit ${child.status}): ${child.stderr}`);
      resources = (JSON.parse(readFileSync(path.join(out, "resources.json"), "utf8")) as unknown[]).length;
      process.stderr.write(`stack-render: ${seconds.toFixed(2)} s\n`);
      return seconds;
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  };

  const m = await repeat(renderOnce, { warmup: 1, repetitions: runs });
  const s = m.summary;
  const met = s.median < TARGET_SECONDS;
  printTable([{ stack, resources, runs, median_s: s.median, min_s: s.min, max_s: s.max, target_s: TARGET_SECONDS, met }]);
  const file = writeResult("stack-render", { stack, resources, seconds: m.samples, summary: s, target_seconds: TARGET_SECONDS, met });
  console.log(`written ${path.relative(root, file)}`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
