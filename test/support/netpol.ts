/**
 * The independent NetworkPolicy evaluator for tests: tools/netpol, a thin CLI over cyclonus's
 * matcher (built once by scripts/netpol-build.sh, cached outside the repo). Every verdict is
 * cyclonus's; this module only runs the binary.
 *
 *   const [verdict] = await evaluateFlows({ networkPolicies, namespaces, queries: [query] });
 *   verdict.allowed, verdict.ingress.deniedBy ...
 */
import * as path from "node:path";
import type { K8sObject } from "../../infra/testing/render";
import { spawnTracked } from "./processes";

const REPO = path.resolve(__dirname, "../..");

/** A pod (namespace, labels and its IP: ipBlock rules match pods by IP too), or an address outside the cluster. */
export type FlowPeer =
  | { readonly namespace: string; readonly podLabels: Readonly<Record<string, string>>; readonly ip: string }
  | { readonly ip: string };

export interface FlowQuery {
  readonly from: FlowPeer;
  readonly to: FlowPeer;
  readonly port: number;
  /** The destination container port's name, for policies that name ports. */
  readonly portName?: string;
  readonly protocol: "TCP" | "UDP" | "SCTP";
}

export interface NetpolRequest {
  readonly networkPolicies: readonly K8sObject[];
  /** Labels of every namespace a peer is in. */
  readonly namespaces: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly queries: readonly FlowQuery[];
}

/** Policies of one namespace selecting the same pods (cyclonus merges them into one target). */
export interface PolicyTarget {
  readonly namespace: string;
  readonly podSelector: Record<string, unknown>;
  readonly policies: readonly string[];
}

export interface DirectionVerdict {
  readonly allowed: boolean;
  readonly allowedBy: readonly PolicyTarget[];
  readonly deniedBy: readonly PolicyTarget[];
}

export interface FlowVerdict {
  readonly allowed: boolean;
  readonly ingress: DirectionVerdict;
  readonly egress: DirectionVerdict;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], stdin: string): Promise<RunResult> {
  const child = spawnTracked(command, args, { cwd: REPO, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  child.child.stdin?.on("error", () => undefined); // a binary that exits early closes its stdin
  child.child.stdin?.end(stdin);
  // "close" comes once the process has exited and its output is read to the end.
  const closed = new Promise<number | null>((resolve, reject) => {
    child.child.once("error", reject);
    child.child.once("close", (code) => resolve(code));
  });
  return closed.then(async (code) => {
    await child.stop(); // takes the group off the leak check (it has exited already)
    return { code, stdout, stderr };
  });
}

let binary: Promise<string> | undefined;

/** Path of the evaluator binary (built on first use; scripts/test.sh builds it before jest). */
export function netpolBinary(): Promise<string> {
  binary ??= run("bash", [path.join(REPO, "scripts/netpol-build.sh")], "").then((r) => {
    if (r.code !== 0) throw new Error(`scripts/netpol-build.sh failed (exit ${r.code}):\n${r.stderr}`);
    return r.stdout.trim();
  });
  return binary;
}

/** Runs the evaluator on raw stdin (for its input checks). */
export async function runNetpol(stdin: string): Promise<RunResult> {
  return run(await netpolBinary(), [], stdin);
}

/** cyclonus's verdict on each query, in order. */
export async function evaluateFlows(request: NetpolRequest): Promise<FlowVerdict[]> {
  const result = await runNetpol(JSON.stringify(request));
  if (result.code !== 0) throw new Error(`netpol exited ${result.code}: ${result.stderr.trim()}`);
  const { results } = JSON.parse(result.stdout) as { results: FlowVerdict[] };
  if (results.length !== request.queries.length) throw new Error(`netpol answered ${results.length} of ${request.queries.length} queries`);
  return results;
}
