import { PassThrough } from "node:stream";

/** stdout/stderr for a CLI run in-process, with what was written to each so far. */
export function capturedStreams(): { stdout: PassThrough; stderr: PassThrough; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (c) => (out += c));
  stderr.on("data", (c) => (err += c));
  return { stdout, stderr, out: () => out, err: () => err };
}
