/**
 * A throwaway PKI for tests (openssl): one CA and one server certificate with the given DNS names
 * and IP addresses, the shape cert-manager issues (EC P-256, serverAuth, SANs only).
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TestPki {
  readonly caFile: string;
  readonly caPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export async function makeTestPki(dir: string, san: { readonly dns: readonly string[]; readonly ips?: readonly string[] }): Promise<TestPki> {
  const ssl = (args: string[]) => run("openssl", args, { cwd: dir, timeout: 60_000 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await ssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-sha256", "-subj", "/CN=knhk-test-ca",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  const names = [...san.dns.map((d) => `DNS:${d}`), ...(san.ips ?? []).map((ip) => `IP:${ip}`)];
  writeFileSync(join(dir, "server.ext"), ["keyUsage=critical,digitalSignature,keyEncipherment", "extendedKeyUsage=serverAuth", `subjectAltName=${names.join(",")}`, ""].join("\n"));
  await ssl(["req", "-new", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", `/CN=${san.dns[0] ?? san.ips?.[0] ?? "server"}`]);
  await ssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-sha256", "-extfile", "server.ext", "-out", "server.crt"]);
  return { caFile: join(dir, "ca.crt"), caPem: readFileSync(join(dir, "ca.crt"), "utf8"), certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") };
}
