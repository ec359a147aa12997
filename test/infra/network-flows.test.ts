/**
 * Network flows of the prod render, judged by an independent evaluator (cyclonus's NetworkPolicy
 * matcher, tools/netpol): every connection the system needs is allowed by the rendered
 * NetworkPolicies, and connections it does not need are refused.
 *
 * The pods are modelled from the rendered workloads (pod template labels and container ports,
 * Patroni's role label added as Patroni sets it), the namespaces from the rendered Namespace and
 * the stack config (monitoring, ingress, the Vault server's source), the scrape targets from the
 * rendered PodMonitors and scrape annotations. Ports and selectors come from infra/render/topology.
 */
import fc from "fast-check";
import type { StackConfig } from "../../infra/config";
import { deployedLedgerJobs, LEDGER_JOB_KINDS, LEDGER_JOBS, type LedgerJobKind } from "../../infra/render/ledger-jobs";
import { APP, BACKUP, PORTS, POSTGRES, REDIS } from "../../infra/render/topology";
import type { K8sObject } from "../../infra/testing/render";
import { evaluateFlows, runNetpol, type FlowPeer, type FlowQuery, type FlowVerdict } from "../support/netpol";
import { renderTestStack, testStackConfig } from "../support/stack-identifiers";

jest.setTimeout(600_000); // a cold build of the evaluator (scripts/test.sh builds it before jest)

type Labels = Readonly<Record<string, string>>;

interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: string;
}

/** A pod as the policies see it: where it runs, its labels and IP, and what it serves. */
interface Pod {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly ip: string;
  readonly ports: readonly ContainerPort[];
  readonly annotations: Labels;
}

interface Flow {
  readonly name: string;
  readonly query: FlowQuery;
}

/** The Vault Agent injector's opt-in annotation (its pods then talk to the Vault server). */
const VAULT_AGENT_INJECT = "vault.hashicorp.com/agent-inject";
/** Label the API server sets on every namespace. */
const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/**
 * Addresses outside the cluster (no traffic is sent: they are the evaluator's input).
 * IRSA: the AWS SDK and pgBackRest (`repo1-s3-key-type: web-id`) exchange the projected
 * web-identity token at STS over HTTPS, so no pod needs the instance metadata service; reaching it
 * would hand a pod the node's role, so it must be refused.
 */
const OUTSIDE = {
  s3: "52.219.170.1",
  sts: "52.94.0.1",
  oidcIssuer: "203.0.113.12",
  /** The Kubernetes API server's endpoint in the cluster's network (Patroni keeps its DCS there). */
  kubernetesApi: "10.0.12.34",
  imds: "169.254.169.254",
  /** Some address nothing in the stack talks to. */
  arbitrary: "198.51.100.7",
} as const;
const HTTPS = 443;
const KUBERNETES_API_PORTS = [443, 6443];
const IMDS_PORT = 80;
const DNS_PORT = 53;

// ---- the model ------------------------------------------------------------------------------

function podTemplate(o: K8sObject): { metadata?: { labels?: Labels; annotations?: Labels }; spec: { containers: { ports?: ContainerPort[] }[]; initContainers?: { ports?: ContainerPort[] }[] } } | undefined {
  const spec = o.spec as Record<string, any> | undefined;
  if (o.kind === "CronJob") return spec?.jobTemplate?.spec?.template;
  if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(o.kind)) return spec?.template;
  return undefined;
}

function matches(labels: Labels, selector: Labels): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

class Model {
  readonly pods: Pod[] = [];
  readonly namespaces: Record<string, Labels> = {};
  private nextIp = 10;

  constructor(
    readonly objects: readonly K8sObject[],
    readonly config: StackConfig,
  ) {
    const ns = objects.find((o) => o.kind === "Namespace" && o.metadata.name === config.namespace.name);
    if (!ns) throw new Error(`the render has no Namespace ${config.namespace.name}`);
    this.namespaces[ns.metadata.name] = { ...((ns.metadata.labels as Labels | undefined) ?? {}), [NAMESPACE_NAME_LABEL]: ns.metadata.name };
    for (const o of objects) {
      const template = podTemplate(o);
      if (!template) continue;
      const replicas = Math.min(Number((o.spec as { replicas?: number }).replicas ?? 1), 2);
      for (let i = 0; i < replicas; i++) {
        let labels: Labels = template.metadata?.labels ?? {};
        // Patroni labels its members with their role at run time.
        if (o.kind === "StatefulSet" && o.metadata.name === POSTGRES.statefulSet) {
          labels = { ...labels, [POSTGRES.roleLabel]: i === 0 ? POSTGRES.primaryRole : POSTGRES.replicaRole };
        }
        const containers = [...template.spec.containers, ...(template.spec.initContainers ?? [])];
        this.pods.push({
          name: `${o.kind}/${o.metadata.name}-${i}`,
          namespace: o.metadata.namespace ?? config.namespace.name,
          labels,
          ip: this.ip(),
          ports: containers.flatMap((c) => c.ports ?? []),
          annotations: template.metadata?.annotations ?? {},
        });
      }
    }
  }

  private ip(): string {
    const n = this.nextIp++;
    return `10.244.${Math.floor(n / 250)}.${n % 250}`;
  }

  /** A pod of a component outside the stack (DNS, Prometheus, the ingress controller, Vault). */
  outsidePod(name: string, namespace: string, labels: Labels, ports: readonly ContainerPort[] = []): Pod {
    this.namespaces[namespace] ??= { [NAMESPACE_NAME_LABEL]: namespace };
    return { name, namespace, labels, ip: this.ip(), ports, annotations: {} };
  }

  /** The stack's pods matching `selector`; at least one, or the render lost a workload. */
  select(selector: Labels): Pod[] {
    const found = this.pods.filter((p) => matches(p.labels, selector));
    if (found.length === 0) throw new Error(`no rendered pod matches ${JSON.stringify(selector)}`);
    return found;
  }

  /** The pods of one rendered workload (`kind/name`). */
  workload(kind: string, name: string): Pod[] {
    const found = this.pods.filter((p) => p.name.startsWith(`${kind}/${name}-`));
    if (found.length === 0) throw new Error(`the render has no ${kind} ${name}`);
    return found;
  }

  networkPolicies(): K8sObject[] {
    return this.objects.filter((o) => o.kind === "NetworkPolicy");
  }

  find(kind: string, name: string, namespace: string): K8sObject | undefined {
    return this.objects.find((o) => o.kind === kind && o.metadata.name === name && (o.metadata.namespace ?? this.config.namespace.name) === namespace);
  }
}

function peer(p: Pod | string): FlowPeer {
  return typeof p === "string" ? { ip: p } : { namespace: p.namespace, podLabels: p.labels, ip: p.ip };
}

function nameOf(p: Pod | string): string {
  return typeof p === "string" ? p : p.name;
}

/** A connection to `to` on `port`; to a pod, only on a port one of its containers declares. */
function flow(label: string, from: Pod | string, to: Pod | string, port: number, protocol: FlowQuery["protocol"] = "TCP"): Flow {
  let portName: string | undefined;
  if (typeof to !== "string") {
    const declared = to.ports.find((p) => p.containerPort === port && (p.protocol ?? "TCP") === protocol);
    if (!declared) throw new Error(`${to.name} declares no container port ${port}/${protocol} (${label})`);
    portName = declared?.name;
  }
  return { name: `${label}: ${nameOf(from)} -> ${nameOf(to)}:${port}/${protocol}`, query: { from: peer(from), to: peer(to), port, portName, protocol } };
}

function needs(what: string, from: readonly (Pod | string)[], to: readonly (Pod | string)[], ports: readonly number[], protocol: FlowQuery["protocol"] = "TCP"): Flow[] {
  return from.flatMap((f) => to.filter((t) => t !== f).flatMap((t) => ports.map((port) => flow(`needs ${what}`, f, t, port, protocol))));
}

function refuses(what: string, from: readonly (Pod | string)[], to: readonly (Pod | string)[], ports: readonly number[], protocol: FlowQuery["protocol"] = "TCP"): Flow[] {
  return from.flatMap((f) => to.filter((t) => t !== f).flatMap((t) => ports.map((port) => flow(`refuses ${what}`, f, t, port, protocol))));
}

function explain(v: FlowVerdict): string {
  const side = (name: string, d: FlowVerdict["ingress"]) =>
    d.allowed ? "" : ` ${name} refused (policies selecting the pod: ${d.deniedBy.flatMap((t) => t.policies).join(", ")})`;
  return `${side("egress", v.egress)}${side("ingress", v.ingress)}`.trim() || "allowed";
}

/** Flows whose verdict differs from `expectAllowed`, each with cyclonus's reason. */
async function wrongVerdicts(model: Model, flows: readonly Flow[], expectAllowed: boolean, policies = model.networkPolicies()): Promise<string[]> {
  if (flows.length === 0) throw new Error("no flow to evaluate");
  const verdicts = await evaluateFlows({ networkPolicies: policies, namespaces: model.namespaces, queries: flows.map((f) => f.query) });
  return flows.flatMap((f, i) => (verdicts[i].allowed === expectAllowed ? [] : [`${f.name}: ${explain(verdicts[i])}`]));
}

// ---- scrape targets -------------------------------------------------------------------------

interface Relabeling {
  readonly action?: string;
  readonly sourceLabels?: readonly string[];
  readonly targetLabel?: string;
  readonly replacement?: string;
}

/** The port a pod serves under `nameOrNumber` (a container port's name or number). */
function resolvePort(pod: Pod, nameOrNumber: string | number): number | undefined {
  if (typeof nameOrNumber === "number") return pod.ports.some((p) => p.containerPort === nameOrNumber) ? nameOrNumber : undefined;
  return pod.ports.find((p) => p.name === nameOrNumber)?.containerPort;
}

/** Pods and port behind `<service>.<namespace>.svc[.cluster.local]:<port>`, from the rendered Service. */
function serviceBackends(model: Model, address: string): { pods: Pod[]; port: (pod: Pod) => number | undefined } {
  const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)$/.exec(address);
  if (!m) throw new Error(`scrape address ${address} is not <service>.<namespace>.svc:<port>`);
  const [, name, namespace, portText] = m;
  const service = model.find("Service", name, namespace);
  if (!service) throw new Error(`scrape address ${address}: no rendered Service ${namespace}/${name}`);
  const spec = service.spec as { selector?: Labels; ports?: { port: number; targetPort?: number | string }[] };
  const servicePort = spec.ports?.find((p) => p.port === Number(portText));
  if (!servicePort) throw new Error(`scrape address ${address}: Service ${name} has no port ${portText}`);
  return { pods: model.select(spec.selector ?? {}).filter((p) => p.namespace === namespace), port: (pod) => resolvePort(pod, servicePort.targetPort ?? servicePort.port) };
}

/** What Prometheus (and the exporters it asks to probe) connect to, per rendered PodMonitor endpoint. */
function podMonitorFlows(model: Model, prometheus: Pod): Flow[] {
  const flows: Flow[] = [];
  for (const monitor of model.objects.filter((o) => o.kind === "PodMonitor")) {
    const spec = monitor.spec as { selector: { matchLabels: Labels }; namespaceSelector?: { matchNames?: string[] }; podMetricsEndpoints: { port: string; relabelings?: Relabeling[] }[] };
    const namespaces = spec.namespaceSelector?.matchNames ?? [monitor.metadata.namespace ?? model.config.namespace.name];
    const selected = model.select(spec.selector.matchLabels).filter((p) => namespaces.includes(p.namespace));
    for (const endpoint of spec.podMetricsEndpoints) {
      const label = `needs scrape (PodMonitor ${monitor.metadata.name})`;
      const address = endpoint.relabelings?.find((r) => r.targetLabel === "__address__" && !r.sourceLabels)?.replacement;
      const resolved = (pod: Pod): number => {
        const port = resolvePort(pod, endpoint.port);
        if (port === undefined) throw new Error(`PodMonitor ${monitor.metadata.name}: ${pod.name} has no port ${endpoint.port}`);
        return port;
      };
      if (address === undefined) {
        for (const pod of selected) flows.push(flow(label, prometheus, pod, resolved(pod)));
        continue;
      }
      // Multi-target exporter: Prometheus asks the exporter at `address`, which probes each selected pod.
      const exporter = serviceBackends(model, address);
      for (const pod of exporter.pods) {
        const port = exporter.port(pod);
        if (port === undefined) throw new Error(`PodMonitor ${monitor.metadata.name}: ${pod.name} does not serve ${address}`);
        flows.push(flow(label, prometheus, pod, port));
      }
      if (endpoint.relabelings?.some((r) => r.targetLabel === "__param_target")) {
        for (const pod of exporter.pods) for (const target of selected) flows.push(flow(`${label}, the exporter probing`, pod, target, resolved(target)));
      }
    }
  }
  return flows;
}

/** Pods that ask to be scraped through prometheus.io annotations. */
function annotationScrapeFlows(model: Model, prometheus: Pod): Flow[] {
  return model.pods
    .filter((p) => p.annotations["prometheus.io/scrape"] === "true")
    .map((p) => flow("needs scrape (prometheus.io/port)", prometheus, p, Number(p.annotations["prometheus.io/port"])));
}

// ---- the prod stack -------------------------------------------------------------------------

describe("network flows of the prod render, judged by cyclonus", () => {
  let model: Model;
  let dns: Pod;
  let prometheus: Pod;
  let ingressController: Pod;
  let vault: Pod | string;
  let unrelated: Pod;
  let app: Pod[];
  let postgres: Pod[];
  let redis: Pod[];
  let sentinels: Pod[];
  let backup: Pod[];
  let restoreTest: Pod[];
  let allStackPods: Pod[];
  let ledgerJobs: LedgerJobKind[];
  /** The pods of the deployed ledger CronJobs of `kinds`, checked to carry the job's selector. */
  const ledgerPods = (...kinds: LedgerJobKind[]): Pod[] =>
    ledgerJobs
      .filter((k) => kinds.includes(k))
      .flatMap((k) => model.workload("CronJob", LEDGER_JOBS[k].cronJob).filter((p) => matches(p.labels, LEDGER_JOBS[k].selector)));

  beforeAll(async () => {
    const config = testStackConfig("prod");
    model = new Model((await renderTestStack("prod")).k8sObjects, config);
    allStackPods = [...model.pods];
    dns = model.outsidePod("kube-dns", "kube-system", { "k8s-app": "kube-dns" }, [
      { name: "dns", containerPort: DNS_PORT, protocol: "UDP" },
      { name: "dns-tcp", containerPort: DNS_PORT, protocol: "TCP" },
    ]);
    prometheus = model.outsidePod("prometheus", config.namespace.monitoringNamespace, { "app.kubernetes.io/name": "prometheus" });
    ingressController = model.outsidePod("ingress-controller", config.namespace.ingressNamespace, { "app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller" });
    const server = config.vault.server;
    vault = "cidrs" in server ? firstHost(server.cidrs[0]) : model.outsidePod("vault-server", server.namespace, server.podLabels, [{ name: "http", containerPort: PORTS.vault }]);
    // Looks like the service, but in another team's namespace.
    unrelated = model.outsidePod("other-team", "other-team", APP.selector);
    app = model.select(APP.selector);
    postgres = model.select(POSTGRES.selector);
    redis = model.select(REDIS.selector);
    sentinels = model.select(REDIS.sentinelSelector);
    backup = model.select(BACKUP.selector);
    restoreTest = model.select(BACKUP.restoreTestSelector);
    ledgerJobs = deployedLedgerJobs(config);
  });

  it("models both colours, every data-plane workload, the migration Job and the ledger CronJobs from the render", () => {
    const names = model.pods.map((p) => p.name);
    for (const color of ["blue", "green"] as const) expect(names).toContain(`Deployment/${APP.deployment(color)}-0`);
    expect(postgres.map((p) => p.labels[POSTGRES.roleLabel]).sort()).toEqual([POSTGRES.primaryRole, POSTGRES.replicaRole].sort());
    expect(redis.length).toBeGreaterThan(0);
    expect(sentinels.length).toBeGreaterThan(0);
    expect(model.select(APP.migrateSelector).length).toBeGreaterThan(0);
    // prod runs the archive and both verifications on a schedule (issue 17, defect 11)
    expect([...ledgerJobs].sort()).toEqual([...LEDGER_JOB_KINDS].sort());
    for (const kind of ledgerJobs) expect(ledgerPods(kind).length).toBeGreaterThan(0);
  });

  it("allows the service to reach PostgreSQL, Redis and Sentinel", async () => {
    const flows = [
      ...needs("database", app, postgres, [PORTS.postgres]),
      ...needs("cache", app, redis, [PORTS.redis]),
      ...needs("sentinel", app, sentinels, [PORTS.sentinel]),
      ...needs("OIDC issuer keys", app, [OUTSIDE.oidcIssuer], [HTTPS]),
    ];
    expect(await wrongVerdicts(model, flows, true)).toEqual([]);
  });

  it("allows every pod of the stack to resolve names (kube-dns, UDP and TCP)", async () => {
    const flows = [...needs("DNS", allStackPods, [dns], [DNS_PORT], "UDP"), ...needs("DNS", allStackPods, [dns], [DNS_PORT], "TCP")];
    expect(await wrongVerdicts(model, flows, true)).toEqual([]);
  });

  it("allows the Vault server (as knhk:vault.server configures it) to reach PostgreSQL", async () => {
    expect(await wrongVerdicts(model, needs("Vault database engine", [vault], postgres, [PORTS.postgres]), true)).toEqual([]);
  });

  it("allows every pod with a Vault Agent to reach the Vault server", async () => {
    const agents = allStackPods.filter((p) => p.annotations[VAULT_AGENT_INJECT] === "true");
    expect(agents.map((p) => p.name)).toEqual(expect.arrayContaining([...app, ...model.select(APP.migrateSelector)].map((p) => p.name)));
    expect(await wrongVerdicts(model, needs("Vault Agent", agents, [vault], [PORTS.vault]), true)).toEqual([]);
  });

  it("allows the Patroni members to replicate and reach each other's API, and the Kubernetes API (DCS)", async () => {
    const flows = [
      ...needs("Patroni peer", postgres, postgres, [PORTS.postgres, PORTS.patroniApi]),
      ...needs("Patroni DCS", postgres, [OUTSIDE.kubernetesApi], KUBERNETES_API_PORTS),
      // pgBackRest's archive-push runs in the database pod.
      ...needs("WAL archive", postgres, [OUTSIDE.sts, OUTSIDE.s3], [HTTPS]),
    ];
    expect(await wrongVerdicts(model, flows, true)).toEqual([]);
  });

  it("allows the Redis replicas and Sentinels their failover traffic", async () => {
    const flows = [
      ...needs("Redis replication", redis, redis, [PORTS.redis]),
      ...needs("Sentinel monitoring", sentinels, redis, [PORTS.redis]),
      ...needs("Sentinel gossip", sentinels, sentinels, [PORTS.sentinel]),
    ];
    expect(await wrongVerdicts(model, flows, true)).toEqual([]);
  });

  it("allows the backup and restore-test jobs to reach S3 (through STS with their web identity) and the pgBackRest server", async () => {
    const flows = [
      ...needs("backup repository", [...backup, ...restoreTest], [OUTSIDE.sts, OUTSIDE.s3], [HTTPS]),
      ...needs("pgBackRest server", backup, postgres, [PORTS.pgbackrestServer]),
    ];
    expect(await wrongVerdicts(model, flows, true)).toEqual([]);
  });

  it("allows the migration Job and the ledger CronJobs to reach PostgreSQL, and the archive run S3", async () => {
    const archive = ledgerPods("archive");
    const verify = ledgerPods("verifyChain", "fullVerification");
    const flows = [
      ...needs("schema migration", model.select(APP.migrateSelector), postgres, [PORTS.postgres]),
      ...needs("archive run", archive, postgres, [PORTS.postgres]),
      ...needs("archive run", archive, [OUTSIDE.sts, OUTSIDE.s3], [HTTPS]),
      ...needs("chain verification", verify, postgres, [PORTS.postgres]),
    ];
    expect(await wrongVerdicts(model, flows, true)).toEqual([]);
  });

  it("allows Prometheus to scrape every metrics port, as the PodMonitors and scrape annotations ask", async () => {
    const served: [Labels, number][] = [
      [APP.selector, PORTS.appMetrics],
      [POSTGRES.selector, PORTS.postgresExporter],
      [POSTGRES.selector, PORTS.patroniApi],
      [POSTGRES.selector, PORTS.pgbackrestExporter],
      [REDIS.selector, PORTS.redisExporter],
    ];
    const flows = [
      ...served.flatMap(([selector, port]) => needs("metrics", [prometheus], model.select(selector), [port])),
      ...podMonitorFlows(model, prometheus),
      ...annotationScrapeFlows(model, prometheus),
    ];
    // Every metrics port is the target of some PodMonitor (nothing scraped only by hand).
    const monitored = new Set(podMonitorFlows(model, prometheus).map((f) => f.query.port));
    for (const [, port] of served) expect(monitored).toContain(port);
    expect(await wrongVerdicts(model, flows, true)).toEqual([]);
  });

  it("allows the ingress controller to reach the service's HTTP port", async () => {
    expect(await wrongVerdicts(model, needs("ingress", [ingressController], app, [PORTS.appHttp]), true)).toEqual([]);
  });

  it("refuses the connections nothing needs", async () => {
    const flows = [
      ...refuses("service to Patroni API", app, postgres, [PORTS.patroniApi]),
      ...refuses("service to pgBackRest server", app, postgres, [PORTS.pgbackrestServer]),
      ...refuses("Redis to PostgreSQL", redis, postgres, [PORTS.postgres]),
      ...refuses("Sentinel to PostgreSQL", sentinels, postgres, [PORTS.postgres]),
      ...refuses("backup job to SQL", backup, postgres, [PORTS.postgres]),
      ...refuses("chain verification to S3", ledgerPods("verifyChain", "fullVerification"), [OUTSIDE.s3], [HTTPS]),
      ...refuses("jobs to Redis", [...model.select(APP.migrateSelector), ...ledgerPods(...LEDGER_JOB_KINDS)], redis, [PORTS.redis]),
      ...refuses("jobs to the Patroni API", [...model.select(APP.migrateSelector), ...ledgerPods(...LEDGER_JOB_KINDS)], postgres, [PORTS.patroniApi]),
      ...refuses("another namespace", [unrelated], postgres, [PORTS.postgres]),
      ...refuses("another namespace", [unrelated], redis, [PORTS.redis]),
      ...refuses("another namespace", [unrelated], app, [PORTS.appHttp]),
      ...refuses("ingress beyond the service", [ingressController], postgres, [PORTS.postgres]),
      ...refuses("ingress to metrics", [ingressController], app, [PORTS.appMetrics]),
      ...refuses("Prometheus beyond metrics", [prometheus], app, [PORTS.appHttp]),
      ...refuses("Prometheus beyond metrics", [prometheus], postgres, [PORTS.postgres]),
      ...refuses("Vault beyond the database", [vault], redis, [PORTS.redis]),
      ...refuses("Vault beyond the database", [vault], postgres, [PORTS.patroniApi]),
      ...refuses("service to an arbitrary address", app, [OUTSIDE.arbitrary], [PORTS.postgres]),
      ...refuses("outside straight to the pods", [OUTSIDE.arbitrary], app, [PORTS.appHttp]),
      ...refuses("instance metadata (IRSA uses STS)", allStackPods, [OUTSIDE.imds], [IMDS_PORT]),
    ];
    expect(await wrongVerdicts(model, flows, false)).toEqual([]);
  });

  it("can fail: without the one allow that admits it at PostgreSQL, the service's database connection is reported refused", async () => {
    const needed = needs("database", [app[0]], [postgres[0]], [PORTS.postgres]);
    const [verdict] = await evaluateFlows({ networkPolicies: model.networkPolicies(), namespaces: model.namespaces, queries: needed.map((f) => f.query) });
    expect(verdict.allowed).toBe(true);
    // cyclonus names the policies of the target that admits it at the database pod; drop each in turn.
    const candidates = verdict.ingress.allowedBy.flatMap((t) => t.policies);
    expect(candidates.length).toBeGreaterThan(0);
    const outcomes = await Promise.all(
      candidates.map(async (name) => ({ name, wrong: await wrongVerdicts(model, needed, true, model.networkPolicies().filter((p) => p.metadata.name !== name)) })),
    );
    const loadBearing = outcomes.filter((o) => o.wrong.length > 0);
    expect(loadBearing).toHaveLength(1);
    expect(loadBearing[0].wrong).toEqual([expect.stringMatching(/^needs database: .* ingress refused \(policies selecting the pod: .*default-deny/)]);
  });
});

/** The first host address of an IPv4 CIDR. */
function firstHost(cidr: string): string {
  const [address, bits] = cidr.split("/");
  const n = address.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  const host = ((n & mask) >>> 0) + (Number(bits) >= 31 ? 0 : 1);
  return [24, 16, 8, 0].map((shift) => (host >>> shift) & 255).join(".");
}

// ---- the evaluator on known policies --------------------------------------------------------

describe("the evaluator (tools/netpol over cyclonus) on known policies", () => {
  const NS = { a: { [NAMESPACE_NAME_LABEL]: "a", team: "x" }, b: { [NAMESPACE_NAME_LABEL]: "b" } };
  const web = { namespace: "a", podLabels: { app: "web" }, ip: "10.244.0.1" };
  const db = { namespace: "a", podLabels: { app: "db" }, ip: "10.244.0.2" };
  const other = { namespace: "b", podLabels: { app: "web" }, ip: "10.244.1.1" };
  const policy = (name: string, spec: Record<string, unknown>, namespace = "a"): K8sObject => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace }, spec });
  const defaultDeny = policy("default-deny", { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
  const webToDb = [
    policy("db-from-web", { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }], ports: [{ port: 5432, protocol: "TCP" }] }] }),
    policy("web-to-db", { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Egress"], egress: [{ to: [{ podSelector: { matchLabels: { app: "db" } } }], ports: [{ port: 5432, protocol: "TCP" }] }] }),
  ];
  const ask = async (networkPolicies: K8sObject[], queries: FlowQuery[]) => evaluateFlows({ networkPolicies, namespaces: NS, queries });

  it("allows everything without policies, and nothing under a default deny", async () => {
    const q: FlowQuery = { from: web, to: db, port: 5432, protocol: "TCP" };
    expect((await ask([], [q]))[0].allowed).toBe(true);
    const [denied] = await ask([defaultDeny], [q]);
    expect(denied).toMatchObject({ allowed: false, ingress: { allowed: false }, egress: { allowed: false } });
    expect(denied.ingress.deniedBy.flatMap((t) => t.policies)).toEqual(["default-deny"]);
  });

  it("admits a pod-selected peer on the allowed port and protocol only", async () => {
    const verdicts = await ask([defaultDeny, ...webToDb], [
      { from: web, to: db, port: 5432, protocol: "TCP" },
      { from: web, to: db, port: 5433, protocol: "TCP" },
      { from: web, to: db, port: 5432, protocol: "UDP" },
      { from: db, to: web, port: 5432, protocol: "TCP" },
      // a podSelector without namespaceSelector means the policy's own namespace
      { from: other, to: db, port: 5432, protocol: "TCP" },
    ]);
    expect(verdicts.map((v) => v.allowed)).toEqual([true, false, false, false, false]);
    expect(verdicts[4]).toMatchObject({ egress: { allowed: true }, ingress: { allowed: false } });
  });

  it("reads namespaceSelector and podSelector in one peer as AND, in two peers as OR", async () => {
    const and = policy("and", { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "x" } }, podSelector: { matchLabels: { app: "web" } } }] }] });
    const or = policy("or", { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: "b" } } }, { podSelector: { matchLabels: { app: "web" } } }] }] });
    const worker = { namespace: "a", podLabels: { app: "worker" }, ip: "10.244.0.3" };
    const queries: FlowQuery[] = [web, worker, other].map((from) => ({ from, to: db, port: 80, protocol: "TCP" }));
    expect((await ask([and], queries)).map((v) => v.allowed)).toEqual([true, false, false]);
    expect((await ask([or], queries)).map((v) => v.allowed)).toEqual([true, false, true]);
  });

  it("matches ipBlock with its except ranges, and named ports", async () => {
    const egress = policy("out", {
      podSelector: { matchLabels: { app: "web" } },
      policyTypes: ["Egress"],
      egress: [{ to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["169.254.169.254/32"] } }], ports: [{ port: 443, protocol: "TCP" }] }],
    });
    const named = policy("named", { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Ingress"], ingress: [{ ports: [{ port: "sql", protocol: "TCP" }] }] });
    const verdicts = await ask([egress, named], [
      { from: web, to: { ip: "52.219.170.1" }, port: 443, protocol: "TCP" },
      { from: web, to: { ip: "169.254.169.254" }, port: 443, protocol: "TCP" },
      { from: web, to: { ip: "52.219.170.1" }, port: 80, protocol: "TCP" },
      { from: other, to: db, port: 5432, portName: "sql", protocol: "TCP" },
      { from: other, to: db, port: 5432, portName: "other", protocol: "TCP" },
    ]);
    expect(verdicts.map((v) => v.allowed)).toEqual([true, false, false, true, false]);
  });

  it("agrees with the obvious answer for any port and protocol (property)", async () => {
    const protocols = ["TCP", "UDP", "SCTP"] as const;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ port: fc.integer({ min: 1, max: 65535 }), protocol: fc.constantFrom(...protocols), fromWeb: fc.boolean() }), { minLength: 1, maxLength: 50 }), async (cases) => {
        const verdicts = await ask([defaultDeny, ...webToDb], cases.map((c) => ({ from: c.fromWeb ? web : db, to: db, port: c.port, protocol: c.protocol })));
        expect(verdicts.map((v) => v.allowed)).toEqual(cases.map((c) => c.fromWeb && c.port === 5432 && c.protocol === "TCP"));
      }),
      { numRuns: 20 },
    );
  });

  it("rejects bad input with a message naming the field", async () => {
    const base = { networkPolicies: [defaultDeny], namespaces: NS, queries: [{ from: web, to: db, port: 5432, protocol: "TCP" }] };
    const cases: [unknown, RegExp][] = [
      ["not json", /^netpol: stdin: /],
      [{ ...base, extra: 1 }, /unknown field "extra"/],
      [{ ...base, queries: [{ ...base.queries[0], port: 0 }] }, /queries\[0\]: port: 0 is not a port number/],
      [{ ...base, queries: [{ ...base.queries[0], protocol: "ICMP" }] }, /queries\[0\]: protocol: "ICMP" is not one of TCP, UDP, SCTP/],
      [{ ...base, queries: [{ ...base.queries[0], from: { namespace: "a", podLabels: {} } }] }, /queries\[0\]: from: ip: required/],
      [{ ...base, queries: [{ ...base.queries[0], to: { ...db, ip: "10.0.0.300" } }] }, /queries\[0\]: to: ip: /],
      [{ ...base, queries: [{ ...base.queries[0], to: { ...db, namespace: "c" } }] }, /queries\[0\]: to: namespace "c" is not in namespaces/],
      [{ ...base, networkPolicies: [policy("no-types", { podSelector: {} })] }, /networkPolicies\[0\] \(a\/no-types\): spec.policyTypes is empty/],
      [{ ...base, networkPolicies: [{ ...defaultDeny, metadata: { name: "x" } }] }, /networkPolicies\[0\] \(x\): metadata.namespace is required/],
      [
        { ...base, networkPolicies: [policy("bad-cidr", { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/33" } }] }] })] },
        /^netpol: cyclonus: .*10\.0\.0\.0\/33/,
      ],
    ];
    for (const [input, message] of cases) {
      const result = await runNetpol(typeof input === "string" ? input : JSON.stringify(input));
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(message) });
    }
  });

  it("answers any JSON on stdin with a verdict or a clear error, never a crash (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        const result = await runNetpol(JSON.stringify(value));
        expect([0, 1]).toContain(result.code);
        if (result.code === 1) expect(result.stderr).toMatch(/^netpol: /);
      }),
      { numRuns: 25 },
    );
  });
});
