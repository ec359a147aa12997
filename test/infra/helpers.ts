/** Lookups over a rendered stack for the infra tests. */
import { parse } from "yaml";
import type { K8sObject, RenderResult } from "../../infra/testing/render";

// Loose shapes: the tests read rendered YAML-like objects.
/* eslint-disable @typescript-eslint/no-explicit-any */
export type Obj = K8sObject & Record<string, any>;

export function find(r: RenderResult, kind: string, name: string): Obj {
  const found = r.k8sObjects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`${r.stack}: expected one ${kind} ${name}, found ${found.length}`);
  return found[0] as Obj;
}

export function all(r: RenderResult, kind: string): Obj[] {
  return r.k8sObjects.filter((o) => o.kind === kind) as Obj[];
}

/** The pod spec of a workload (Deployment, StatefulSet, CronJob). */
export function podSpec(o: Obj): any {
  if (o.kind === "CronJob") return o.spec.jobTemplate.spec.template.spec;
  return o.spec.template.spec;
}

export function podTemplate(o: Obj): any {
  if (o.kind === "CronJob") return o.spec.jobTemplate.spec.template;
  return o.spec.template;
}

export const WORKLOAD_KINDS = ["Deployment", "StatefulSet", "CronJob", "Job", "DaemonSet"];

export function workloads(r: RenderResult): Obj[] {
  return r.k8sObjects.filter((o) => WORKLOAD_KINDS.includes(o.kind)) as Obj[];
}

export function patroniYaml(r: RenderResult): any {
  return parse(find(r, "ConfigMap", "postgres-patroni").data["patroni.yml"], { version: "1.1" });
}

/** `key=value` lines of an ini section. */
export function iniSection(text: string, section: string): Record<string, string> {
  const out: Record<string, string> = {};
  let current = "";
  for (const line of text.split("\n")) {
    const header = /^\[(.+)\]$/.exec(line.trim());
    if (header) current = header[1];
    else if (current === section && line.includes("=")) {
      const i = line.indexOf("=");
      out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
  }
  return out;
}

/** `key value` lines of redis.conf / sentinel.conf (repeated keys joined with "; "). */
export function confLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (!line.trim() || line.startsWith("#")) continue;
    const i = line.indexOf(" ");
    const k = line.slice(0, i);
    const v = line.slice(i + 1);
    out[k] = out[k] ? `${out[k]}; ${v}` : v;
  }
  return out;
}
