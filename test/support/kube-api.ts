/**
 * A small HTTPS client for the Kubernetes API, from a kubeconfig (client certificate or token),
 * for the harnesses that stand in for a kubelet or kube-proxy and must react within a second
 * (kubectl starts a process per call). Requests are JSON; `watch` streams watch events.
 */
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { parse } from "yaml";

export interface KubeResponse<T = any> {
  readonly status: number;
  readonly body: T;
}

export interface KubeApi {
  readonly server: string;
  readonly caFile: string | undefined;
  request<T = any>(method: string, path: string, body?: unknown, contentType?: string): Promise<KubeResponse<T>>;
  /** GET that rejects unless 200. */
  get<T = any>(path: string): Promise<T>;
  /** Strategic merge patch of a pod's status (what the kubelet does). */
  patchPodStatus(namespace: string, pod: string, status: unknown): Promise<void>;
  close(): void;
}

interface Kubeconfig {
  clusters: { name: string; cluster: { server: string; "certificate-authority"?: string; "certificate-authority-data"?: string } }[];
  users: { name: string; user: { "client-certificate"?: string; "client-key"?: string; "client-certificate-data"?: string; "client-key-data"?: string; token?: string } }[];
  contexts: { name: string; context: { cluster: string; user: string } }[];
  "current-context": string;
}

const fromFileOrData = (file: string | undefined, data: string | undefined): Buffer | undefined =>
  data ? Buffer.from(data, "base64") : file ? readFileSync(file) : undefined;

export function kubeApi(kubeconfigFile: string): KubeApi {
  const config = parse(readFileSync(kubeconfigFile, "utf8")) as Kubeconfig;
  const context = config.contexts.find((c) => c.name === config["current-context"])?.context;
  const cluster = config.clusters.find((c) => c.name === context?.cluster)?.cluster;
  const user = config.users.find((u) => u.name === context?.user)?.user;
  if (!context || !cluster || !user) throw new Error(`${kubeconfigFile}: current-context names no cluster and user`);
  const url = new URL(cluster.server);
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 8,
    ca: fromFileOrData(cluster["certificate-authority"], cluster["certificate-authority-data"]),
    cert: fromFileOrData(user["client-certificate"], user["client-certificate-data"]),
    key: fromFileOrData(user["client-key"], user["client-key-data"]),
  });
  const auth: Record<string, string> = user.token ? { authorization: `Bearer ${user.token}` } : {};

  const call = <T>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<KubeResponse<T>> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path,
          agent,
          timeout: 10_000,
          headers: { accept: "application/json", ...auth, ...(payload ? { "content-type": contentType, "content-length": payload.length } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              // not JSON
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      req.end(payload);
    });

  return {
    server: cluster.server,
    caFile: cluster["certificate-authority"],
    request: call,
    async get(path) {
      const res = await call<any>("GET", path);
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      return res.body;
    },
    async patchPodStatus(namespace, pod, status) {
      const res = await call("PATCH", `/api/v1/namespaces/${namespace}/pods/${pod}/status`, { status }, "application/strategic-merge-patch+json");
      if (res.status !== 200) throw new Error(`patch status of pod ${pod}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    },
    close: () => agent.destroy(),
  };
}
