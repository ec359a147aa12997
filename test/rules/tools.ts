/** Shared by the rules tests: the rendered test stack's documents and the Debian tools that check them. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { ruleFile, type RenderedRuleGroup } from "../../infra/render/alert-rules";
import type { AlertRoutingConfig } from "../../infra/render/alertmanager";
import { monitoringDocuments, type MonitoringInput } from "../../infra/render/monitoring-bundle";

export const TEST_ROUTING: AlertRoutingConfig = {
  pagerRoutingKey: { name: "alertmanager-receivers", key: "pagerduty-routing-key" },
  escalationRoutingKey: { name: "alertmanager-receivers", key: "pagerduty-escalation-key" },
  chatWebhookUrl: { name: "alertmanager-receivers", key: "slack-webhook-url" },
  ticketToken: { name: "alertmanager-receivers", key: "ticket-token" },
  chatChannel: "#knhk-alerts",
  ticketUrl: "https://tickets.example.test/api/alertmanager",
};

export const TEST_INPUT: MonitoringInput = {
  namespace: "knhk",
  cluster: "test",
  runbookBaseUrl: "https://github.com/knhk/knhk/blob/main",
  sentinelQuorum: 2,
  maximumLagOnFailoverBytes: 1_048_576,
  routing: TEST_ROUTING,
  // Shorter than the defaults (4 h, 13 h, 8 d): promtool evaluates every rule each test minute.
  ledgerJobs: [
    { kind: "archive", cronJob: "knhk-archive", alertAfterSeconds: 2 * 3600 },
    { kind: "verifyChain", cronJob: "knhk-verify-chain", alertAfterSeconds: 3 * 3600 },
    { kind: "fullVerification", cronJob: "knhk-verify-chain-full", alertAfterSeconds: 5 * 3600 },
  ],
};

export function testRuleGroups(): RenderedRuleGroup[] {
  return monitoringDocuments(TEST_INPUT).ruleGroups;
}

const created: string[] = [];

/** A fresh temp dir, removed by `removeTempDirs` (call it in afterAll). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `knhk-${prefix}-`));
  created.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function writeYaml(path: string, doc: unknown): string {
  writeFileSync(path, stringify(doc, { lineWidth: 0 }));
  return path;
}

export function writeRuleFile(dir: string, groups: readonly RenderedRuleGroup[] = testRuleGroups()): string {
  return writeYaml(join(dir, "rules.yaml"), ruleFile(groups));
}

export interface ToolResult {
  readonly status: number | null;
  readonly output: string;
}

export function run(command: string, args: readonly string[]): ToolResult {
  const r = spawnSync(command, [...args], { encoding: "utf8", timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Minutes in a Prometheus duration such as `30s`, `15m`, `1h`, `3d` (seconds round up). */
export function minutes(duration: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(duration);
  if (!m) throw new Error(`not a duration: ${duration}`);
  const n = Number(m[1]);
  return { s: Math.ceil(n / 60), m: n, h: n * 60, d: n * 1440 }[m[2] as "s" | "m" | "h" | "d"];
}

/** Expands `{{ $value ... }}` and `{{ $labels.x }}` the way the expected alert must show them. */
export function expandTemplate(template: string, value: string, labels: Readonly<Record<string, string>>): string {
  const out = template
    .replace(/\{\{\s*\$value(\s*\|\s*\w+)?\s*\}\}/g, value)
    .replace(/\{\{\s*\$labels\.(\w+)\s*\}\}/g, (_, key: string) => {
      if (!(key in labels)) throw new Error(`template uses $labels.${key}, which the alert does not carry`);
      return labels[key];
    });
  if (out.includes("{{")) throw new Error(`unexpanded template in: ${template}`);
  return out;
}
