/**
 * Patroni on the Kubernetes DCS against the local control plane (a real kube-apiserver,
 * controllers and scheduler; kwok's pods played by real PostgreSQL 15 + Patroni 4.0.7 processes,
 * test/support/patroni-k8s.ts), with the rendered ServiceAccount, Role, Services and StatefulSet:
 *
 * - bootstrap: one leader, its IP in `postgres-primary` (the leader lock is that Service's
 *   Endpoints), the role labels on the pods, the EndpointSlices of both Services, one sync standby;
 * - failover drills under receipt load from the KNHK service writing through `postgres-primary`
 *   (test/support/failover-drill.ts): node death, PostgreSQL crash, switchover, loss of the API
 *   server; after each the endpoint is on the leader, no acknowledged receipt is lost, and the
 *   service recovered by itself; afterwards `receipts verify-chain` passes;
 * - RBAC: the rendered Role is sufficient (everything above ran with it, and the audit log shows
 *   each granted verb used and only the expected refusal) and minimal (taking any one verb away
 *   breaks a member; `get` only matters when a renewal of the lock conflicts, so each lone member
 *   is made to meet one).
 *
 * The drills' times are printed here and measured by `npm run bench:failover`; they are never asserted.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { FAILOVER_METRICS } from "../../app/src/telemetry/failover";
import { grantedVerbs, PATRONI_ROLE_RULES, withoutVerb } from "../../infra/render/patroni-rbac";
import { POSTGRES } from "../../infra/render/topology";
import type { K8sObject } from "../../infra/testing/render";
import { startOidc, type TestOidc } from "../app/shell/oidc";
import { readAudit, resourceVerb } from "../support/audit-log";
import { CROSSING_WRITE_ANNOTATION } from "../support/crossing-write";
import { DRILLS, runDrill, type DrillFigures } from "../support/failover-drill";
import { startPatroniOnCluster, type PatroniOnCluster } from "../support/patroni-k8s";
import { startReceiptLoad, type ReceiptLoad } from "../support/receipt-load";
import { waitFor } from "../support/ports";
import { readEndpoints } from "../support/service-proxy";
import { startServiceOnPatroni, type ServiceOnPatroni } from "../support/service-on-patroni";
import { renderTestStack } from "../support/stack-identifiers";
import { REPO, startCluster, type TestCluster } from "./cluster";

const run = promisify(execFile);
jest.setTimeout(1_800_000);

/**
 * The one refusal Patroni meets with the rendered Role, by design: it tries to create the Service
 * of its config Endpoints, which the stack declares itself (Patroni accepts the 403 as it would a 409).
 */
const EXPECTED_REFUSALS = [`services/create`];

let cluster: TestCluster;
let objects: K8sObject[];
let pg: PatroniOnCluster;
let oidc: TestOidc;
let svc: ServiceOnPatroni | undefined;
let load: ReceiptLoad | undefined;

beforeAll(async () => {
  const [started, render, idp] = await Promise.all([startCluster(), renderTestStack("local", { overlay: { "knhk:patroni": { members: 3 } } }), startOidc()]);
  cluster = started;
  objects = render.k8sObjects;
  oidc = idp;
  pg = await startPatroniOnCluster({ cluster, objects, namespace: "knhk-patroni", members: 3 });
});

afterAll(async () => {
  await load?.stop();
  await svc?.stop();
  await oidc?.close();
  await pg?.destroy();
  await cluster?.stop();
});

/** `receipts verify-chain` of the CLI, as the scheduled job runs it (its role, through postgres-primary). */
async function verifyChain(): Promise<any> {
  const { stdout } = await run(join(REPO, "node_modules", ".bin", "tsx"), [join(REPO, "app", "src", "cli", "index.ts"), "receipts", "verify-chain", "--format", "json"], {
    cwd: REPO,
    env: { ...process.env, DATABASE_URL: svc!.verifierUrl, KNHK_MIGRATE_ON_START: "false", KNHK_LOG_LEVEL: "silent" },
    timeout: 300_000,
  });
  return JSON.parse(stdout);
}

function metric(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

describe("bootstrap on the Kubernetes DCS", () => {
  let leader: string;

  it("three members elect one leader with one synchronous standby", async () => {
    const members = await pg.waitForHealthy();
    expect(members.filter((m) => m.role === "leader")).toHaveLength(1);
    expect(members.filter((m) => m.role === "sync_standby")).toHaveLength(1);
    leader = members.find((m) => m.role === "leader")!.name;
    expect(await pg.leader()).toBe(leader);
  });

  it("Patroni's objects exist in the namespace: the leader lock is postgres-primary's Endpoints, with the leader's pod IP", async () => {
    const list = await pg.api.get(`/api/v1/namespaces/${pg.namespace}/endpoints`);
    const names = (list.items as any[]).map((e) => e.metadata.name);
    expect(names).toEqual(expect.arrayContaining([POSTGRES.primaryService, POSTGRES.configService]));
    const lock = (list.items as any[]).find((e) => e.metadata.name === POSTGRES.primaryService);
    expect(lock.metadata.annotations.leader).toBe(leader);
    expect(lock.subsets).toEqual([
      expect.objectContaining({ addresses: [expect.objectContaining({ ip: pg.member(leader).podIp })], ports: [expect.objectContaining({ name: "postgresql", port: 5432 })] }),
    ]);
    const config = (list.items as any[]).find((e) => e.metadata.name === POSTGRES.configService);
    expect(config.metadata.annotations.initialize).toMatch(/^\d+$/);
  });

  it("the leader's pod carries the primary role label, the others the replica value postgres-replicas selects", async () => {
    const roles = await pg.podRoles();
    for (const m of pg.members) expect([m.name, roles[m.name]]).toEqual([m.name, m.name === leader ? POSTGRES.primaryRole : POSTGRES.replicaRole]);
  });

  it("the EndpointSlices route postgres-primary to the leader and postgres-replicas to the two replicas", async () => {
    const replicaPods = pg.members.map((m) => m.name).filter((n) => n !== leader).sort();
    // A replica's pod turns Ready once its readiness probe passes (the harness's kubelet), which
    // can be a probe period after Patroni reports it streaming.
    await pg.primary.waitFor([leader], 30_000);
    await pg.replicas.waitFor(replicaPods, 60_000);
    const primary = await readEndpoints(pg.api, pg.namespace, POSTGRES.primaryService);
    expect(primary.map((e) => [e.pod, e.address, e.ready])).toEqual([[leader, pg.member(leader).podIp, true]]);
    const replicas = (await readEndpoints(pg.api, pg.namespace, POSTGRES.replicasService)).filter((e) => e.ready).map((e) => e.pod).sort();
    expect(replicas).toEqual(replicaPods);
  });
});

describe("failover drills under receipt load through postgres-primary", () => {
  const figures: DrillFigures[] = [];

  beforeAll(async () => {
    svc = await startServiceOnPatroni(pg, oidc.env());
    load = startReceiptLoad({ apiUrl: svc.service.apiUrl, token: await oidc.roleToken("ingestor") });
  });

  it.each(DRILLS)("%s: the endpoint is on the leader, 0 acknowledged receipts lost, the service is ready again by itself", async (drill) => {
    const f = await runDrill(pg!, load!, drill, { database: svc!.database, log: (m) => console.log(m) });
    figures.push(f);
    expect(f.lost).toBe(0);
    expect(f.acknowledged).toBeGreaterThan(0);
    const leader = await pg.leader();
    expect(leader).toBe(f.newLeader);
    expect(pg.primary.readyPods()).toEqual([f.newLeader]);
    if (drill === "node-death" || drill === "switchover") expect(f.newLeader).not.toBe(f.oldLeader);
    else expect(f.newLeader).toBe(f.oldLeader);
    // The service's pool recovered without a restart.
    const ready = await fetch(`${svc!.service.apiUrl}/ready`);
    expect(ready.status).toBe(200);
    // Every receipt so far, the drill's included, verifies (the chain is read through postgres-primary).
    const report = await verifyChain();
    expect(report.total_count).toBeGreaterThanOrEqual(f.acknowledged);
    expect(report).toMatchObject({ verified_count: report.total_count, signature_failures: [], chain_breaks: [] });
  });

  it("the service reports the promotions it went through, and the timeline it writes to now", async () => {
    const timeline = (await pg.clusterStatus()).find((m) => m.role === "leader")?.timeline;
    // Two promotions (node death, switchover); the crash restart and the DCS loss keep the timeline.
    expect(timeline).toBe(3);
    const text = await svc!.metrics();
    expect(metric(text, FAILOVER_METRICS.timeline)).toBe(timeline);
    expect(metric(text, FAILOVER_METRICS.failovers)).toBeGreaterThanOrEqual(1);
    expect(metric(text, FAILOVER_METRICS.inRecovery)).toBe(0);
  });

  it("once the load stops, receipts verify-chain passes over every receipt written through the drills", async () => {
    await load!.stop();
    const report = await verifyChain();
    expect(report.total_count).toBeGreaterThanOrEqual(load!.acknowledgedIds().length);
    expect(report).toMatchObject({ verified_count: report.total_count, signature_failures: [], chain_breaks: [] });
    console.log(`failover drills: ${figures.map((f) => `${f.drill} endpoint ${f.endpointSwitchSeconds ?? "-"} s, first write ${f.firstWriteSeconds} s, rejoin ${f.rejoinSeconds ?? "-"} s, lost ${f.lost}/${f.acknowledged}`).join("; ")}`);
  });
});

describe("the Role is sufficient and minimal", () => {
  // One member per namespace, all at once: the full Role next to each Role with one verb taken
  // away. Each lone member also meets a write of its lock by someone else that crosses its renewal
  // (test/support/crossing-write.ts), the one moment Patroni reads the lock with `get`.
  const mutations = grantedVerbs(PATRONI_ROLE_RULES);
  const NAMESPACE_PREFIX = "knhk-rbac-";
  const outcome = new Map<string, { healthy: boolean; why: string; refused: string[]; used: string[] }>();

  beforeAll(async () => {
    const runs = [undefined, ...mutations].map(async (removed) => {
      const namespace = `${NAMESPACE_PREFIX}${removed ? removed.replace("/", "-") : "full"}`;
      const member = await startPatroniOnCluster({
        cluster,
        objects,
        namespace,
        members: 1,
        roleRules: removed ? withoutVerb(PATRONI_ROLE_RULES, removed) : undefined,
        crossingWrites: true,
      });
      return { removed: removed ?? "none", member };
    });
    const started = await Promise.all(runs);
    // Long enough to bootstrap and renew the lock several times (loop_wait 2 s, ttl 20 s).
    await new Promise((r) => setTimeout(r, 60_000));
    // The members are judged side by side. The audit log is read only between the steps: reading
    // it blocks this process, which carries every member's traffic to the API server.
    const verdicts = await Promise.all(started.map(({ member }) => judgeSteadyState(member)));
    const rbacUsers = { prefix: `system:serviceaccount:${NAMESPACE_PREFIX}` };
    const auditBefore = readAudit(cluster.stateDir, rbacUsers);
    for (const [i, { member }] of started.entries()) {
      const lists = auditBefore.filter((e) => e.user === member.serviceAccountUser && e.verb === "list").length;
      if (verdicts[i].healthy && lists > 10) verdicts[i] = { healthy: false, why: `listed ${lists} times (its caches are not watched)` };
    }
    await Promise.all(started.map(async ({ member }, i) => verdicts[i].healthy && (verdicts[i] = await judgeCrossedRenewal(member))));
    const audit = readAudit(cluster.stateDir, rbacUsers);
    for (const [i, { removed, member }] of started.entries()) {
      const events = audit.filter((e) => e.user === member.serviceAccountUser);
      outcome.set(removed, {
        ...verdicts[i],
        refused: [...new Set(events.filter((e) => e.code === 403).map(resourceVerb))],
        used: [...new Set(events.filter((e) => e.code < 400 || e.code === 409).map(resourceVerb))],
      });
    }
    await Promise.all(started.map(({ member }) => member.destroy()));
  });

  type Verdict = { healthy: boolean; why: string };

  /**
   * A lone member works when it holds the lock with its IP in postgres-primary, keeps renewing it,
   * carries the primary role label, its caches are watched rather than listed over and over (the
   * caller counts its lists), and a write of its lock by someone else that crosses a renewal does
   * not cost it the lock (judgeCrossedRenewal).
   */
  async function judgeSteadyState(member: PatroniOnCluster): Promise<Verdict> {
    const name = member.members[0].name;
    const first = await lockOf(member);
    if (first?.metadata?.annotations?.leader !== name) return { healthy: false, why: "holds no leader lock" };
    if (first.subsets?.[0]?.addresses?.[0]?.ip !== member.members[0].podIp) return { healthy: false, why: "its IP is not in postgres-primary" };
    await new Promise((r) => setTimeout(r, 6_000));
    const second = await lockOf(member);
    if (second?.metadata?.annotations?.renewTime === first.metadata.annotations.renewTime) return { healthy: false, why: "does not renew its lock" };
    if ((await member.podRoles())[name] !== POSTGRES.primaryRole) return { healthy: false, why: "its pod has no primary role label" };
    return { healthy: true, why: "" };
  }

  async function judgeCrossedRenewal(member: PatroniOnCluster): Promise<Verdict> {
    const name = member.members[0].name;
    const hop = member.crossingWrites!;
    const logBefore = member.log(name).length;
    hop.arm();
    const renewed = await waitFor("a renewal of the lock crossing another write", async () => hop.crossed.length > 0, 30_000, 200).then(() => true, () => false);
    if (!renewed) return { healthy: false, why: "renewed no lock through the API server in 30 s" };
    if (hop.crossed[0] !== 409) return { healthy: false, why: `the crossing write did not make the renewal conflict (answer ${hop.crossed[0]})` };
    // Two loops after the conflict: time for a demotion to show.
    await new Promise((r) => setTimeout(r, 6_000));
    const after = member.log(name).slice(logBefore);
    if (/Demoting self|failed to update leader lock/.test(after)) return { healthy: false, why: "gave up its lock after a renewal crossed another write" };
    const lock = await lockOf(member);
    if (lock?.metadata?.annotations?.leader !== name || lock.metadata.annotations[CROSSING_WRITE_ANNOTATION] !== "1") return { healthy: false, why: "the lock after the crossing write is not its own" };
    return { healthy: true, why: "" };
  }

  const lockOf = async (member: PatroniOnCluster) =>
    (await member.api.request("GET", `/api/v1/namespaces/${member.namespace}/endpoints/${POSTGRES.primaryService}`)).body;

  it("sufficient: through bootstrap and every drill, and a lone member's crossed renewal, each granted verb was used and only the expected call refused", () => {
    const events = readAudit(cluster.stateDir, pg.serviceAccountUser);
    const used = new Set([...events.filter((e) => e.code < 400 || e.code === 409).map(resourceVerb), ...outcome.get("none")!.used]);
    for (const verb of grantedVerbs(PATRONI_ROLE_RULES)) expect([verb, used.has(verb)]).toEqual([verb, true]);
    const refused = [...new Set(events.filter((e) => e.code === 403).map(resourceVerb))];
    if (refused.join() !== EXPECTED_REFUSALS.join()) {
      // What was refused, when and on which object: the evidence if this ever fails.
      console.log(`refused in the drills' namespace:\n${events.filter((e) => e.code === 403).map((e) => `${e.at} ${resourceVerb(e)} ${e.name ?? ""}`).join("\n")}`);
    }
    expect(refused).toEqual(EXPECTED_REFUSALS);
  });

  it("with the full Role a lone member works, keeps its lock through a crossed renewal, and is refused only the expected call", () => {
    const { used: _used, ...o } = outcome.get("none")!;
    expect(o).toEqual({ healthy: true, why: "", refused: EXPECTED_REFUSALS });
  });

  it.each(mutations)("without %s the member breaks, and the audit log shows that very request refused", (removed) => {
    const { used: _used, ...o } = outcome.get(removed)!;
    console.log(`rbac: without ${removed}: ${o.healthy ? "healthy" : o.why}; refused ${o.refused.join(", ")}`);
    expect(o.healthy).toBe(false);
    expect(o.refused).toContain(removed);
  });
});
