/**
 * The Patroni StatefulSet of a render, run on the local control plane (test/cluster/cluster.ts):
 * the rendered ServiceAccount, Role, RoleBinding, Services and StatefulSet are applied to a
 * namespace of their own; kwok gives the pods their node, IP and phase; and for each pod a real
 * PostgreSQL 15 + the pinned Patroni 4.0.7 runs on loopback, started from the rendered patroni.yml
 * with the pod's name and IP and a token of the rendered ServiceAccount bound to that pod (no
 * admin credential: a verb missing from the Role fails as it would in the pod).
 *
 * What a node would do is played by the harness:
 * - the kubelet's readiness probe (pod-prober.ts) writes each pod's Ready condition from the
 *   rendered readinessProbe (path, period, thresholds) against the member's REST API;
 * - kube-proxy (service-proxy.ts) routes `postgres-primary` and `postgres-replicas` to the members
 *   their EndpointSlices name: the EndpointSlices decide where writes go;
 * - each member reaches the API server through its own link (network-link.ts), which a drill can
 *   cut to take that member's DCS away.
 *
 * What differs from a pod, and why: files under the rendered mount paths live in the member's
 * folder; listen and connect addresses are loopback ports (the API server refuses loopback pod
 * IPs, so the pods keep kwok's IPs and the proxies map them to ports); WAL archiving and replica
 * creation from the pgBackRest repository are off (the pgBackRest suite covers them; replicas are
 * cloned with pg_basebackup, the rendered fallback method).
 */
import { execFile } from "node:child_process";
import { chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse, stringify } from "yaml";
import { POSTGRES } from "../../infra/render/topology";
import type { PolicyRule } from "../../infra/render/patroni-rbac";
import type { K8sObject } from "../../infra/testing/render";
import type { TestCluster } from "../cluster/cluster";
import { startCrossingWriteHop, type CrossingWriteHop } from "./crossing-write";
import { kubeApi, type KubeApi } from "./kube-api";
import { startNetworkLink, type NetworkLink } from "./network-link";
import { PINNED_PATRONI, postgresOwner, spawnLogged } from "./patroni";
import { asRoot, crashPostmaster, postmasterPid, psqlAsPostgres, restCall, stopPostgresNow } from "./patroni-member";
import { startPodProber, type PodProber } from "./pod-prober";
import { freePort, waitFor } from "./ports";
import { PG_BIN } from "./postgres";
import type { TrackedProcess } from "./processes";
import { startServiceProxy, type ServiceProxy } from "./service-proxy";
import { makeTestPki, type TestPki } from "./tls";

const run = promisify(execFile);

/** The passwords the rendered pod reads from the credentials Secret. */
export const MEMBER_PASSWORDS = {
  PATRONI_SUPERUSER_PASSWORD: "k8s-test-superuser-password",
  PATRONI_REPLICATION_PASSWORD: "k8s-test-replication-password",
  PATRONI_REWIND_PASSWORD: "k8s-test-rewind-password",
  EXPORTER_PASSWORD: "k8s-test-exporter-password",
  VAULT_ADMIN_PASSWORD: "k8s-test-vault-admin-password",
} as const;

export interface K8sMember {
  readonly name: string;
  readonly pgPort: number;
  readonly apiPort: number;
  readonly podIp: string;
  readonly dir: string;
  /** The member's way to the API server (a drill cuts it). */
  readonly apiServerLink: NetworkLink;
}

export interface MemberStatus {
  readonly name: string;
  readonly role: string;
  readonly state: string;
  readonly timeline?: number;
}

export interface PatroniOnCluster {
  readonly namespace: string;
  readonly members: readonly K8sMember[];
  readonly serviceAccountUser: string;
  readonly primary: ServiceProxy;
  readonly replicas: ServiceProxy;
  readonly pki: TestPki;
  /** The admin's API client (the harness's own view, never the members'). */
  readonly api: KubeApi;
  /** With `crossingWrites`: the hop that makes a renewal of the lock cross another write. */
  readonly crossingWrites?: CrossingWriteHop;
  member(name: string): K8sMember;
  /** Holder of the leader lock, from the leader Endpoints' annotation. */
  leader(): Promise<string | undefined>;
  /** Patroni's /cluster from the first member that answers. */
  clusterStatus(): Promise<MemberStatus[]>;
  /** One leader and members-1 streaming replicas, one of them a sync standby; returns /cluster. */
  waitForHealthy(timeoutMs?: number): Promise<MemberStatus[]>;
  /** The role label of each pod. */
  podRoles(): Promise<Record<string, string | undefined>>;
  psql(name: string, sql: string, database?: string): Promise<string>;
  /** Node death: SIGKILL of Patroni, immediate stop of its PostgreSQL, and the kubelet stops probing. */
  killMember(name: string): Promise<void>;
  /** The node is back: Patroni starts again on the same data directory, the kubelet probes again. */
  startMember(name: string): Promise<void>;
  /** kill -9 of the member's postmaster; Patroni keeps running. Returns the PID. */
  crashPostgres(name: string): Promise<number>;
  /** PID of the member's running postmaster (undefined while there is none). */
  postmasterPid(name: string): number | undefined;
  /** The member loses the API server (its DCS); the other members and clients still reach it. */
  cutApiServer(name: string): void;
  /** Ends cutApiServer. */
  restoreApiServer(name: string): void;
  /** Planned switchover to `candidate` through the leader's REST API. */
  switchover(candidate: string): Promise<void>;
  log(name: string): string;
  destroy(): Promise<void>;
}

export interface PatroniOnClusterOptions {
  readonly cluster: TestCluster;
  /** The render the objects and patroni.yml come from. */
  readonly objects: readonly K8sObject[];
  readonly namespace: string;
  readonly members: number;
  /** Replaces the rendered Role's rules (the RBAC tests take verbs away). */
  readonly roleRules?: readonly PolicyRule[];
  /** Members reach the API server through a CrossingWriteHop (default false: straight through). */
  readonly crossingWrites?: boolean;
}

const PATRONI_OBJECTS: readonly [string, string][] = [
  ["ServiceAccount", POSTGRES.serviceAccount],
  ["Role", POSTGRES.serviceAccount],
  ["RoleBinding", POSTGRES.serviceAccount],
  ["Service", POSTGRES.headlessService],
  ["Service", POSTGRES.primaryService],
  ["Service", POSTGRES.configService],
  ["Service", POSTGRES.replicasService],
  ["StatefulSet", POSTGRES.statefulSet],
];

function rendered(objects: readonly K8sObject[], kind: string, name: string): any {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`the render has no ${kind} ${name}`);
  return JSON.parse(JSON.stringify(found));
}

/** The rendered objects of the Patroni cluster, moved to `namespace`. */
export function patroniObjects(objects: readonly K8sObject[], namespace: string, members: number, roleRules?: readonly PolicyRule[]): any[] {
  const renderedNamespace = JSON.parse(JSON.stringify(objects.find((o) => o.kind === "Namespace")));
  renderedNamespace.metadata = { ...renderedNamespace.metadata, name: namespace, labels: { ...renderedNamespace.metadata.labels, "kubernetes.io/metadata.name": namespace } };
  // The shared pgBackRest repository volume, when the render has one: the pods mount it.
  const repo = objects.filter((o) => o.kind === "PersistentVolumeClaim").map((o) => ["PersistentVolumeClaim", o.metadata.name] as [string, string]);
  const moved = [...PATRONI_OBJECTS, ...repo].map(([kind, name]) => {
    const o = rendered(objects, kind, name);
    o.metadata.namespace = namespace;
    if (kind === "RoleBinding") o.subjects = o.subjects.map((s: any) => ({ ...s, namespace }));
    if (kind === "Role" && roleRules) o.rules = roleRules;
    if (kind === "StatefulSet") o.spec.replicas = members;
    return o;
  });
  return [renderedNamespace, ...moved];
}

const MEMBER_CONTEXT = "pod";

function memberKubeconfig(server: string, caFile: string, token: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "local", cluster: { server, "certificate-authority": caFile } }],
    users: [{ name: "pod", user: { token } }],
    contexts: [{ name: MEMBER_CONTEXT, context: { cluster: "local", user: "pod" } }],
    "current-context": MEMBER_CONTEXT,
  });
}

/** The rendered patroni.yml with the file paths and addresses of one member on loopback. */
function memberPatroniYaml(renderedYaml: string, m: { dir: string; pgPort: number; apiPort: number; namespace: string; postBootstrap: string }): string {
  const doc = parse(renderedYaml, { version: "1.1" }) as any;
  const tls = { cert: join(m.dir, "tls.crt"), key: join(m.dir, "tls.key"), ca: join(m.dir, "ca.crt") };
  doc.kubernetes.namespace = m.namespace;
  // Outside a pod Patroni reads KUBECONFIG and picks this context (in a pod: the projected token).
  doc.kubernetes.context = MEMBER_CONTEXT;
  doc.restapi.listen = `127.0.0.1:${m.apiPort}`;
  if (doc.restapi.certfile) Object.assign(doc.restapi, { certfile: tls.cert, keyfile: tls.key, cafile: tls.ca });
  const pg = doc.postgresql;
  Object.assign(pg, { listen: `127.0.0.1:${m.pgPort}`, data_dir: join(m.dir, "data"), bin_dir: PG_BIN, pgpass: join(m.dir, "pgpass") });
  pg.parameters.unix_socket_directories = m.dir;
  if (pg.parameters.ssl === "on") Object.assign(pg.parameters, { ssl_cert_file: tls.cert, ssl_key_file: tls.key, ssl_ca_file: tls.ca });
  pg.create_replica_methods = ["basebackup"];
  delete pg.pgbackrest;
  delete pg.recovery_conf;
  const parameters = doc.bootstrap.dcs.postgresql.parameters;
  parameters.archive_command = "/bin/true";
  parameters.shared_buffers = "32MB";
  doc.bootstrap.post_bootstrap = m.postBootstrap;
  return stringify(doc, { lineWidth: 0, version: "1.1" });
}

export async function startPatroniOnCluster(opts: PatroniOnClusterOptions): Promise<PatroniOnCluster> {
  const { cluster, namespace } = opts;
  const api = kubeApi(cluster.kubeconfig);
  const kubectl = cluster.kubectl;
  const root = mkdtempSync(join(tmpdir(), `knhk-patroni-${namespace}-`));
  const owner = postgresOwner();
  const own = (p: string) => asRoot && chownSync(p, owner.uid, owner.gid);
  own(root);

  await kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: patroniObjects(opts.objects, namespace, opts.members, opts.roleRules) }));
  const statefulSet = rendered(opts.objects, "StatefulSet", POSTGRES.statefulSet);
  const patroniContainer = statefulSet.spec.template.spec.containers.find((c: any) => c.name === "patroni");
  const readiness = patroniContainer.readinessProbe;
  const configMap = opts.objects.find((o) => o.kind === "ConfigMap" && (o as any).data?.["patroni.yml"]) as any;
  if (!configMap) throw new Error("the render has no ConfigMap with patroni.yml");

  const names = Array.from({ length: opts.members }, (_, i) => `${POSTGRES.statefulSet}-${i}`);
  // kwok schedules the pods, binds their volumes and gives them an IP once they run.
  const podIps: Record<string, string> = {};
  await waitFor(`${opts.members} running pods with an IP in ${namespace}`, async () => {
    const pods = JSON.parse(await kubectl(["get", "pods", "-n", namespace, "-o", "json"])).items as any[];
    for (const p of pods) if (p.status?.phase === "Running" && p.status.podIP) podIps[p.metadata.name] = p.status.podIP;
    return names.every((n) => podIps[n]);
  }, 180_000, 500);

  const pki = await makeTestPki(root, {
    dns: [`*.${POSTGRES.headlessService}.${namespace}.svc.cluster.local`, `${POSTGRES.primaryService}.${namespace}.svc.cluster.local`, `${POSTGRES.replicasService}.${namespace}.svc.cluster.local`, "localhost"],
    ips: ["127.0.0.1"],
  });
  const apiUrl = new URL(api.server);
  const postBootstrap = join(root, "post-bootstrap.sh");
  writeFileSync(postBootstrap, configMap.data["post-bootstrap.sh"], { mode: 0o755 });

  // The cluster CA, readable by the postgres user that runs Patroni (the pod's ca.crt).
  const clusterCa = join(root, "cluster-ca.crt");
  copyFileSync(api.caFile ?? "", clusterCa);
  own(clusterCa);
  const crossingWrites = opts.crossingWrites
    ? await startCrossingWriteHop({ api, namespace, lock: POSTGRES.primaryService, tls: { certFile: pki.certFile, keyFile: pki.keyFile } })
    : undefined;
  const apiServer = crossingWrites ? { host: "127.0.0.1", port: crossingWrites.port } : { host: apiUrl.hostname, port: Number(apiUrl.port) };
  const members: K8sMember[] = [];
  const env: Record<string, Record<string, string>> = {};
  for (const name of names) {
    const dir = join(root, name);
    mkdirSync(dir, { mode: 0o700 });
    own(dir);
    for (const [from, to, mode] of [[pki.certFile, "tls.crt", 0o644], [pki.keyFile, "tls.key", 0o600], [pki.caFile, "ca.crt", 0o644]] as const) {
      copyFileSync(from, join(dir, to));
      own(join(dir, to));
      await run("chmod", [mode.toString(8), join(dir, to)]);
    }
    const [pgPort, apiPort] = [await freePort(), await freePort()];
    const apiServerLink = await startNetworkLink(apiServer);
    // The token the kubelet would project into this pod: the rendered ServiceAccount, bound to the pod.
    const token = (await kubectl(["create", "token", POSTGRES.serviceAccount, "-n", namespace, "--bound-object-kind", "Pod", "--bound-object-name", name, "--duration", "6h"])).trim();
    const kubeconfig = join(dir, "kubeconfig");
    // Through the hop, the API server's certificate is the hop's, from the harness CA.
    writeFileSync(kubeconfig, memberKubeconfig(`https://127.0.0.1:${apiServerLink.port}`, crossingWrites ? join(dir, "ca.crt") : clusterCa, token), { mode: 0o600 });
    own(kubeconfig);
    const configFile = join(dir, "patroni.yml");
    writeFileSync(configFile, memberPatroniYaml(configMap.data["patroni.yml"], { dir, pgPort, apiPort, namespace, postBootstrap }));
    own(configFile);
    members.push({ name, pgPort, apiPort, podIp: podIps[name], dir, apiServerLink });
    const { KUBERNETES_SERVICE_HOST: _h, KUBERNETES_SERVICE_PORT: _p, ...inherited } = process.env;
    env[name] = {
      ...(inherited as Record<string, string>),
      ...PINNED_PATRONI.env,
      ...MEMBER_PASSWORDS,
      PATH: `${PG_BIN}:${process.env.PATH}`,
      HOME: dir,
      KUBECONFIG: kubeconfig,
      PATRONI_NAME: name,
      PATRONI_KUBERNETES_POD_IP: podIps[name],
      PATRONI_POSTGRESQL_CONNECT_ADDRESS: `127.0.0.1:${pgPort}`,
      PATRONI_RESTAPI_CONNECT_ADDRESS: `127.0.0.1:${apiPort}`,
    };
  }
  const memberNamed = (name: string) => {
    const m = members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  };
  const children = new Map<string, TrackedProcess>();
  const start = (m: K8sMember) =>
    children.set(m.name, spawnLogged(PINNED_PATRONI.command, [...PINNED_PATRONI.args, join(m.dir, "patroni.yml")], env[m.name], join(root, `${m.name}.log`), true));
  const stopPostgres = (m: K8sMember) => stopPostgresNow(join(m.dir, "data"));
  for (const m of members) start(m);

  const probePath = readiness.httpGet.path as string;
  const prober: PodProber = startPodProber(
    api,
    namespace,
    Object.fromEntries(members.map((m) => [m.name, async () => (await restCall(m.apiPort, probePath, { ca: pki.caPem, timeoutMs: readiness.timeoutSeconds * 1000 })).status === 200])),
    { periodMs: readiness.periodSeconds * 1000, failureThreshold: readiness.failureThreshold, successThreshold: readiness.successThreshold ?? 1 },
  );
  const backend = (pod: string) => members.find((m) => m.name === pod || m.podIp === pod)?.pgPort;
  const primary = await startServiceProxy({ api, namespace, service: POSTGRES.primaryService, backend });
  const replicas = await startServiceProxy({ api, namespace, service: POSTGRES.replicasService, backend });

  const harness: PatroniOnCluster = {
    namespace,
    members,
    serviceAccountUser: `system:serviceaccount:${namespace}:${POSTGRES.serviceAccount}`,
    primary,
    replicas,
    pki,
    api,
    crossingWrites,
    member: memberNamed,
    async leader() {
      const res = await api.request("GET", `/api/v1/namespaces/${namespace}/endpoints/${POSTGRES.primaryService}`);
      return res.status === 200 ? (res.body.metadata.annotations?.leader as string | undefined) || undefined : undefined;
    },
    async clusterStatus() {
      // Asked of a member that still reaches the API server: the DCS's view during a drill.
      for (const m of members) {
        if (!children.has(m.name) || m.apiServerLink.isCut()) continue;
        const res = await restCall(m.apiPort, "/cluster", { ca: pki.caPem }).catch(() => undefined);
        if (res?.status === 200) return (res.body.members as any[]).map(({ name, role, state, timeline }) => ({ name, role, state, timeline }));
      }
      throw new Error("no Patroni member answers /cluster");
    },
    async waitForHealthy(timeoutMs = 180_000) {
      let last: MemberStatus[] = [];
      await waitFor(
        `one leader and ${opts.members - 1} streaming replicas (one synchronous) in ${namespace}`,
        async () => {
          last = await harness.clusterStatus();
          const leaders = last.filter((m) => m.role === "leader" && m.state === "running");
          const standbys = last.filter((m) => m.role !== "leader" && m.state === "streaming");
          return leaders.length === 1 && standbys.length === opts.members - 1 && (opts.members === 1 || standbys.some((m) => m.role === "sync_standby"));
        },
        timeoutMs,
        500,
      ).catch((error) => {
        throw new Error(`${(error as Error).message}\nlast /cluster: ${JSON.stringify(last)}\n${members.map((m) => `--- ${m.name}\n${harness.log(m.name).slice(-3000)}`).join("\n")}`);
      });
      return last;
    },
    async podRoles() {
      const pods = JSON.parse(await kubectl(["get", "pods", "-n", namespace, "-o", "json"])).items as any[];
      return Object.fromEntries(pods.map((p) => [p.metadata.name, p.metadata.labels?.[POSTGRES.roleLabel]]));
    },
    psql: (name, sql, database) => psqlAsPostgres({ socketDir: memberNamed(name).dir, pgPort: memberNamed(name).pgPort }, sql, database),
    async killMember(name) {
      const m = memberNamed(name);
      prober.pause(name);
      await children.get(name)?.stop("SIGKILL");
      children.delete(name);
      await stopPostgres(m);
    },
    async startMember(name) {
      if (children.has(name)) throw new Error(`${name} is running`);
      start(memberNamed(name));
      prober.resume(name);
    },
    crashPostgres: async (name) => crashPostmaster(join(memberNamed(name).dir, "data")),
    postmasterPid: (name) => postmasterPid(join(memberNamed(name).dir, "data")),
    cutApiServer: (name) => memberNamed(name).apiServerLink.cut(),
    restoreApiServer: (name) => memberNamed(name).apiServerLink.restore(),
    async switchover(candidate) {
      const leader = await harness.leader();
      if (!leader) throw new Error("no leader to switch over from");
      const res = await restCall(memberNamed(leader).apiPort, "/switchover", { method: "POST", body: { leader, candidate }, ca: pki.caPem, timeoutMs: 30_000 });
      if (res.status !== 200) throw new Error(`switchover ${leader} -> ${candidate}: ${res.status} ${JSON.stringify(res.body)}`);
    },
    log: (name) => {
      try {
        return readFileSync(join(root, `${name}.log`), "utf8");
      } catch {
        return "";
      }
    },
    async destroy() {
      await prober.stop();
      await primary.close();
      await replicas.close();
      for (const [name, child] of children) {
        await child.stop("SIGTERM", 30_000);
        children.delete(name);
      }
      for (const m of members) {
        await stopPostgres(m);
        await m.apiServerLink.close();
      }
      await crossingWrites?.close();
      await kubectl(["delete", "namespace", namespace, "--wait=false"]).catch(() => undefined);
      api.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return harness;
}
