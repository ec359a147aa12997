/**
 * Creates, in a local cluster, the Secrets the stack only references (in a real environment Vault,
 * cert-manager or the operator makes them): every Secret and key the stack's objects read, found
 * by `referencedSecrets` in the mock render. Values are generated here, never committed and never
 * printed: random tokens, `https://…invalid/…` for URL keys, and for a Secret mounted whole a
 * certificate chain (ca.crt, tls.crt, tls.key) from a throwaway CA.
 *
 *   npx tsx scripts/local-secrets.ts --stack local --kubeconfig <file> [--context <name>]
 *
 * Idempotent: an existing Secret keeps its values; only missing Secrets, or missing keys of an
 * existing one, are added. It refuses every stack but `local`.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { referencedSecrets, type ReferencedSecret } from "../infra/render/referenced-secrets";
import { renderStack } from "../infra/testing/render";
import { kubectl as kubectlFor, KubectlError, type Kubectl } from "./lib/cluster/kubectl";

const TLS_KEYS = ["ca.crt", "tls.crt", "tls.key"];

/** A CA and a serving/client certificate for `<service>.<namespace>.svc` and the namespace's names. */
function certificateChain(secret: ReferencedSecret): Record<string, string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "knhk-local-tls-"));
  try {
    const file = (name: string) => path.join(dir, name);
    const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl("req", "-x509", ...ec, "-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "365", "-sha256",
      "-subj", `/CN=knhk-local-${secret.name}-ca`, "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign");
    const service = secret.name.replace(/-tls$/, "");
    const ns = secret.namespace;
    fs.writeFileSync(file("ext.cnf"), [
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth,clientAuth",
      `subjectAltName=DNS:${service}.${ns}.svc,DNS:*.${ns}.svc,DNS:*.${ns}.svc.cluster.local,DNS:*.${service}.${ns}.svc,DNS:localhost`,
    ].join("\n"));
    openssl("req", "-new", ...ec, "-keyout", file("tls.key"), "-out", file("tls.csr"), "-subj", `/CN=${service}.${ns}.svc`);
    openssl("x509", "-req", "-in", file("tls.csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-CAcreateserial",
      "-days", "365", "-sha256", "-extfile", file("ext.cnf"), "-out", file("tls.crt"));
    return Object.fromEntries(TLS_KEYS.map((k) => [k, fs.readFileSync(file(k), "utf8")]));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function generatedValue(name: string, key: string): string {
  const token = randomBytes(24).toString("base64url");
  return /-url$/.test(key) ? `https://${key.replace(/-url$/, "")}.${name}.invalid/${token}` : token;
}

/** The keys and values a missing Secret (or the missing keys of an existing one) gets. */
function valuesFor(secret: ReferencedSecret, missing: readonly string[]): Record<string, string> {
  const tls = secret.mounted ? certificateChain(secret) : {};
  return Object.fromEntries(missing.map((key) => [key, tls[key] ?? generatedValue(secret.name, key)]));
}

async function existingKeys(kubectl: Kubectl, secret: ReferencedSecret): Promise<string[] | undefined> {
  try {
    const json = await kubectl(["get", "secret", secret.name, "-n", secret.namespace, "-o", "json"]);
    return Object.keys((JSON.parse(json) as { data?: Record<string, string> }).data ?? {});
  } catch (error) {
    if (error instanceof KubectlError && /NotFound|not found/.test(error.stderr)) return undefined;
    throw error;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { stack: { type: "string" }, kubeconfig: { type: "string" }, context: { type: "string" } },
    strict: true,
  });
  if (values.stack !== "local") throw new Error("--stack: only the local stack gets generated Secrets (got " + String(values.stack) + ")");
  if (!values.kubeconfig) throw new Error("--kubeconfig: the local cluster's kubeconfig file is required");
  const kubectl = kubectlFor({ kubeconfig: values.kubeconfig, context: values.context });
  const render = await renderStack(values.stack);
  const secrets = referencedSecrets(render.k8sObjects);

  for (const secret of secrets) {
    const wanted = [...new Set([...secret.keys, ...(secret.mounted ? TLS_KEYS : [])])].sort();
    const have = await existingKeys(kubectl, secret);
    const missing = wanted.filter((k) => !(have ?? []).includes(k));
    if (missing.length === 0) {
      console.log(`secret ${secret.namespace}/${secret.name}: present (${wanted.length} keys)`);
      continue;
    }
    const stringData = valuesFor(secret, missing);
    if (have === undefined) {
      const manifest = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: secret.name, namespace: secret.namespace, labels: { "app.kubernetes.io/managed-by": "knhk-local-secrets" } },
        type: secret.mounted ? "kubernetes.io/tls" : "Opaque",
        stringData,
      };
      await kubectl(["create", "-f", "-"], JSON.stringify(manifest));
      console.log(`secret ${secret.namespace}/${secret.name}: created (${missing.join(", ")})`);
    } else {
      await kubectl(["patch", "secret", secret.name, "-n", secret.namespace, "--type", "merge", "--patch-file", "/dev/stdin"],
        JSON.stringify({ stringData }));
      console.log(`secret ${secret.namespace}/${secret.name}: added ${missing.join(", ")}`);
    }
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`local-secrets: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
