/**
 * kubectl against one cluster, as a function: `kubectl(["get", "pods"])` resolves with stdout and
 * rejects with kubectl's stderr in the message. The binary is the one on PATH (the local
 * cluster's, scripts/cluster-build.sh, when up-local or the tests put it first).
 */
import { execFile } from "node:child_process";
import type { ListedObject } from "./readiness";

export interface KubectlTarget {
  readonly kubeconfig: string;
  readonly context?: string;
  /** Path of the kubectl binary (default: `kubectl` on PATH). */
  readonly binary?: string;
}

export type Kubectl = (args: readonly string[], input?: string) => Promise<string>;

export class KubectlError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
  ) {
    super(`kubectl ${args.join(" ")}: ${stderr.trim()}`);
    this.name = "KubectlError";
  }
}

export function kubectl(target: KubectlTarget): Kubectl {
  const base = ["--kubeconfig", target.kubeconfig, ...(target.context ? ["--context", target.context] : [])];
  return (args, input) =>
    new Promise((resolve, reject) => {
      const child = execFile(target.binary ?? "kubectl", [...base, ...args], { maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) reject(new KubectlError(args, stderr || error.message));
        else resolve(stdout);
      });
      if (input !== undefined) child.stdin?.end(input);
    });
}

/** Kinds never summarized: records of what happened rather than objects that were deployed. */
const NOT_LISTED = new Set(["events", "events.events.k8s.io"]);

/** Every object of every listable namespaced kind in `namespace`. */
export async function listNamespace(run: Kubectl, namespace: string): Promise<ListedObject[]> {
  const kinds = (await run(["api-resources", "--verbs=list", "--namespaced", "-o", "name"]))
    .split("\n")
    .map((k) => k.trim())
    .filter((k) => k && !NOT_LISTED.has(k));
  const list = JSON.parse(await run(["get", kinds.join(","), "-n", namespace, "-o", "json"])) as { items: ListedObject[] };
  return list.items;
}
