/**
 * A `--require` module for child Node processes that resolves one cluster DNS name to loopback,
 * so a process connects to a test server by the name its TLS certificate carries (verify-full still
 * checks that name).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** Writes the module into `dir` and returns its path (for NODE_OPTIONS=--require <path>). */
export function writeLoopbackResolver(dir: string, host: string): string {
  const file = join(dir, "resolve-primary.js");
  writeFileSync(
    file,
    `const dns = require("dns"); const lookup = dns.lookup;
dns.lookup = function (host, options, callback) {
  if (typeof options === "function") { callback = options; options = {}; }
  if (host === ${JSON.stringify(host)}) return options && options.all ? callback(null, [{ address: "127.0.0.1", family: 4 }]) : callback(null, "127.0.0.1", 4);
  return lookup.call(dns, host, options, callback);
};\n`,
  );
  return file;
}
