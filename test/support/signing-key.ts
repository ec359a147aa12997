/**
 * The receipt signing key a deployed service is given: a PEM file and its version, registered by
 * the owner beforehand (as the migration Job does), so the service itself needs no owner
 * credential. Returns the service's environment for it.
 */
import { createPublicKey } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Database } from "../../app/src/db/types";
import { generateSigningKey, rawPublicKey, registerSigningKey, SIGNING_KEY_ENV } from "../../app/src/receipts/keys";

const KEY_VERSION = 1;

export async function provisionSigningKey(owner: Database, dir: string): Promise<Record<string, string>> {
  const { privateKey, pem } = generateSigningKey();
  const file = join(dir, "receipt-signing-key.pem");
  writeFileSync(file, pem, { mode: 0o600 });
  await registerSigningKey(owner, { keyVersion: KEY_VERSION, publicKey: rawPublicKey(createPublicKey(privateKey)), ephemeral: false });
  return { [SIGNING_KEY_ENV.file]: file, [SIGNING_KEY_ENV.version]: String(KEY_VERSION) };
}
