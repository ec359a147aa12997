import { resourcePolicy } from "../lib/define";
import { describeObject, TYPES } from "../lib/kubernetes";
import { asArray, asRecord, dig, notApplicable, type Violation } from "../lib/model";

const DEFAULT_SEVERITIES = ["P0", "P1", "P2", "P3"];

/** Every alert in a PrometheusRule carries a known severity label and an http(s) runbook_url annotation. */
export const alertSeverityAndRunbook = resourcePolicy({
  name: "alert-severity-and-runbook",
  description: "Every PrometheusRule alert has a severity label (P0-P3) and a runbook_url annotation.",
  enforcementLevel: "mandatory",
  configSchema: {
    properties: { severities: { type: "array", items: { type: "string" }, default: DEFAULT_SEVERITIES } },
  },
  check: (resource, ctx) => {
    if (resource.type !== TYPES.prometheusRule) return notApplicable("not a PrometheusRule");
    const severities = Array.isArray(ctx.config.severities) ? ctx.config.severities.map(String) : DEFAULT_SEVERITIES;
    const violations: Violation[] = [];
    for (const group of asArray(dig(resource.props, "spec", "groups"))) {
      const groupName = String(asRecord(group)?.name ?? "?");
      for (const r of asArray(asRecord(group)?.rules)) {
        const rule = asRecord(r) ?? {};
        if (typeof rule.alert !== "string") continue; // recording rule
        const where = `${describeObject(resource)}: alert ${rule.alert} (group ${groupName})`;
        const severity = dig(rule, "labels", "severity");
        if (typeof severity !== "string" || severity === "") {
          violations.push({ message: `${where} has no severity label` });
        } else if (!severities.includes(severity)) {
          violations.push({ message: `${where} has severity "${severity}", allowed: ${severities.join(", ")}` });
        }
        const runbook = dig(rule, "annotations", "runbook_url");
        if (typeof runbook !== "string" || runbook === "") {
          violations.push({ message: `${where} has no runbook_url annotation` });
        } else if (!/^https?:\/\/\S+$/.test(runbook)) {
          violations.push({ message: `${where} has runbook_url "${runbook}", which is not an http(s) URL` });
        }
      }
    }
    return violations;
  },
});
