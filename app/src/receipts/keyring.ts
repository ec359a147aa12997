/** The registered public keys (receipt_signing_keys), as verification and the transit signer read them. */
import type { Sql } from "../db/types";

/** key_version -> raw ed25519 public key (base64). */
export type Keyring = ReadonlyMap<number, string>;

export async function loadKeyring(db: Sql): Promise<Keyring> {
  const result = await db.query<{ key_version: number; public_key: string }>(
    "SELECT key_version, public_key FROM receipt_signing_keys ORDER BY key_version",
  );
  return new Map(result.rows.map((r) => [Number(r.key_version), r.public_key]));
}
