/**
 * The local control plane (scripts/cluster.sh) for tests: a private state folder and free loopback
 * ports, so a test cluster never touches the one `scripts/up-local.sh` runs. `stop()` runs
 * `cluster.sh down --wipe` and then checks that every process `up` started has exited; until then
 * each is recorded for the run's leak check.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { kubectl, type Kubectl } from "../../scripts/lib/cluster/kubectl";
import { freePort } from "../support/ports";
import { recordGroup } from "../support/processes";

export const REPO = path.resolve(__dirname, "../..");

export interface TestCluster {
  readonly kubeconfig: string;
  /** The folder with kubectl, kwok, kube-apiserver ... (put it first on PATH for scripts). */
  readonly binDir: string;
  readonly stateDir: string;
  readonly kubectl: Kubectl;
  /** Seconds `cluster.sh up` took. */
  readonly startSeconds: number;
  /** PIDs of the processes `up` started, by component. */
  pids(): Record<string, number>;
  /** `down` keeping the state (rejects naming any process still alive), then `up` again. */
  restart(): Promise<void>;
  /** Stops the cluster; rejects naming any process still alive afterwards. */
  stop(): Promise<void>;
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", args, { cwd: REPO, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`bash ${args.join(" ")} failed:\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

/** Binaries for the control plane: built once per pin set, cached outside the repo. */
export async function clusterBinDir(): Promise<string> {
  return run([path.join(REPO, "scripts/cluster-build.sh")], {});
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startCluster(): Promise<TestCluster> {
  const binDir = await clusterBinDir();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "knhk-cluster-"));
  const etcdPort = await freePort();
  let etcdPeerFree = await freePort();
  while (etcdPeerFree === etcdPort + 1) etcdPeerFree = await freePort();
  const env = {
    KNHK_CLUSTER_DIR: stateDir,
    KNHK_CLUSTER_API_PORT: String(await freePort()),
    KNHK_CLUSTER_ETCD_PORT: String(etcdPort),
    KNHK_CLUSTER_KWOK_PORT: String(await freePort()),
  };
  const script = path.join(REPO, "scripts/cluster.sh");
  const started = Date.now();
  let kubeconfig: string;
  try {
    kubeconfig = await run([script, "up"], env);
  } catch (error) {
    await run([script, "down", "--wipe"], env).catch(() => undefined);
    throw error;
  }
  const startSeconds = (Date.now() - started) / 1000;

  const pidDir = path.join(stateDir, "pids");
  const readPids = (): Record<string, number> =>
    Object.fromEntries(fs.readdirSync(pidDir).map((f) => [f.replace(/\.pid$/, ""), Number(fs.readFileSync(path.join(pidDir, f), "utf8"))]));
  // Each component leads its own process group (cluster.sh starts it with setsid): the run's leak
  // check (test/support/processes.ts) sees any that outlives the suite.
  const track = (pids: Record<string, number>) => Object.entries(pids).map(([component, pid]) => recordGroup(pid, `cluster.sh ${component}`));
  let recorded = readPids();
  let releases = track(recorded);
  const stillAlive = (pids: Record<string, number>) => {
    const left = Object.entries(pids).filter(([, pid]) => alive(pid));
    if (left.length > 0) throw new Error(`still running after cluster.sh down: ${left.map(([c, p]) => `${c} (${p})`).join(", ")}`);
    for (const release of releases) release();
  };
  return {
    kubeconfig,
    binDir,
    stateDir,
    startSeconds,
    kubectl: kubectl({ kubeconfig, binary: path.join(binDir, "kubectl") }),
    pids: () => ({ ...recorded }),
    async restart() {
      await run([script, "down"], env);
      stillAlive(recorded);
      await run([script, "up"], env);
      recorded = readPids();
      releases = track(recorded);
    },
    async stop() {
      await run([script, "down", "--wipe"], env);
      stillAlive(recorded);
    },
  };
}
