import { posix } from "node:path";
import { APP } from "../../infra/render/topology";
import { stackPolicy } from "../lib/define";
import { DEFAULT_REPLICATED_ENVIRONMENTS, environmentIn, environmentSchema } from "../lib/environments";
import { describeObject, metadataName, TYPES } from "../lib/kubernetes";
import { asArray, asRecord, dig, notApplicable, type Violation } from "../lib/model";

const PROBES = ["livenessProbe", "readinessProbe", "startupProbe"] as const;

/**
 * Stack policy (staging, prod): the service's API serves HTTPS. Its ConfigMap names the
 * certificate files (KNHK_TLS_CERT_FILE, KNHK_TLS_KEY_FILE), and every Deployment reading that
 * ConfigMap mounts a Secret where the files are and probes with HTTPS (a probe over HTTP against
 * an HTTPS port would fail, and one that passes means the port is not HTTPS).
 */
export const appServesHttps = stackPolicy({
  name: "app-serves-https",
  description: "In staging and prod the KNHK service's API port serves HTTPS from a mounted certificate Secret.",
  enforcementLevel: "mandatory",
  configSchema: { properties: { ...environmentSchema("httpsEnvironments", DEFAULT_REPLICATED_ENVIRONMENTS) } },
  check: (resources, ctx) => {
    if (!environmentIn(ctx, "httpsEnvironments", DEFAULT_REPLICATED_ENVIRONMENTS)) return notApplicable(`environment ${ctx.environment} does not require HTTPS`);
    const configMap = resources.find((r) => r.type === TYPES.configMap && metadataName(r) === APP.configMap);
    if (!configMap) return notApplicable(`the stack has no ConfigMap ${APP.configMap} (no KNHK service)`);
    const data = asRecord(configMap.props.data) ?? {};
    const certFile = data.KNHK_TLS_CERT_FILE;
    const violations: Violation[] = [];
    for (const key of ["KNHK_TLS_CERT_FILE", "KNHK_TLS_KEY_FILE"]) {
      if (typeof data[key] !== "string" || data[key] === "") violations.push({ urn: configMap.urn, message: `${describeObject(configMap)} sets no ${key}: the API would serve plain HTTP` });
    }
    const readers = resources.filter(
      (r) => r.type === TYPES.deployment && JSON.stringify(dig(r.props, "spec", "template", "spec", "containers") ?? []).includes(`"configMapRef":{"name":"${APP.configMap}"}`),
    );
    for (const deployment of readers) {
      const pod = asRecord(dig(deployment.props, "spec", "template", "spec")) ?? {};
      const secretVolumes = new Set(asArray(pod.volumes).map((v) => asRecord(v) ?? {}).filter((v) => asRecord(v.secret)).map((v) => String(v.name)));
      for (const c of asArray(pod.containers)) {
        const container = asRecord(c) ?? {};
        if (!JSON.stringify(container.envFrom ?? []).includes(`"name":"${APP.configMap}"`)) continue;
        const where = `${describeObject(deployment)} container ${String(container.name)}`;
        for (const probe of PROBES) {
          const scheme = dig(container, probe, "httpGet", "scheme");
          if (dig(container, probe, "httpGet") !== undefined && scheme !== "HTTPS") violations.push({ urn: deployment.urn, message: `${where}: ${probe} uses ${JSON.stringify(scheme ?? "HTTP")}, not HTTPS` });
        }
        if (typeof certFile === "string" && certFile !== "") {
          const dir = posix.dirname(certFile);
          const mounted = asArray(container.volumeMounts).map((m) => asRecord(m) ?? {}).some((m) => m.mountPath === dir && secretVolumes.has(String(m.name)));
          if (!mounted) violations.push({ urn: deployment.urn, message: `${where}: mounts no Secret at ${dir}, where KNHK_TLS_CERT_FILE points` });
        }
      }
    }
    return violations;
  },
});
