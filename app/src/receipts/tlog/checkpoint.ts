/**
 * Checkpoints of the receipt log in the C2SP tlog-checkpoint format, as C2SP signed notes:
 *
 *   <origin>\n<tree size>\n<base64 root hash>\n      (the note text, what is signed)
 *   \n
 *   — <key name> <base64(key id || ed25519 signature)>\n
 *
 * The key id is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key) (0x01: the
 * Ed25519 signature type); the verifier key an auditor configures is
 * `<key name>+<key id as 8 hex digits>+<base64(0x01 || public key)>`, the form the Go checksum
 * database's note package and other tlog clients read.
 */
import { createHash } from "node:crypto";
import { HASH_BYTES } from "./tree";

const ED25519 = 0x01;
const SIGNATURE_PREFIX = "\u2014 ";

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
}

export interface NoteSigner {
  /** Key name: no whitespace, no "+". */
  readonly name: string;
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  sign(message: Buffer): Promise<Buffer>;
}

/** A checkpoint line or key name must be non-empty printable text without the characters that delimit notes. */
function checkName(field: string, value: string): void {
  if (value.length === 0 || /[\s+\u2014]/u.test(value) || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new RangeError(`${field}: must be non-empty, without whitespace, "+" or "\u2014", got ${JSON.stringify(value)}`);
  }
}

export function checkpointText(c: Checkpoint): string {
  checkName("origin", c.origin);
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw new RangeError(`size: must be a non-negative safe integer, got ${c.size}`);
  if (c.root.length !== HASH_BYTES) throw new RangeError(`root: must be ${HASH_BYTES} bytes, got ${c.root.length}`);
  return `${c.origin}\n${c.size}\n${c.root.toString("base64")}\n`;
}

export function keyId(name: string, publicKey: Buffer): Buffer {
  checkName("key name", name);
  if (publicKey.length !== 32) throw new RangeError(`public key: must be 32 bytes (Ed25519), got ${publicKey.length}`);
  return createHash("sha256").update(name).update(Buffer.from([0x0a, ED25519])).update(publicKey).digest().subarray(0, 4);
}

/** The verifier key string an auditor configures for this signer. */
export function verifierKey(name: string, publicKey: Buffer): string {
  return `${name}+${keyId(name, publicKey).toString("hex")}+${Buffer.concat([Buffer.from([ED25519]), publicKey]).toString("base64")}`;
}

/** The signed note of a checkpoint. */
export async function signCheckpoint(c: Checkpoint, signer: NoteSigner): Promise<string> {
  const text = checkpointText(c);
  const signature = await signer.sign(Buffer.from(text, "utf8"));
  if (signature.length !== 64) throw new Error(`signer returned a ${signature.length}-byte signature, not an Ed25519 one`);
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${Buffer.concat([keyId(signer.name, signer.publicKey), signature]).toString("base64")}\n`;
}

/**
 * Opens a signed checkpoint note with the given verifiers (`verify(message, signature)` of each
 * known key): the note is refused unless at least one known key's signature verifies. The
 * text is untrusted input: every malformed part is an error naming it.
 */
export function openCheckpoint(note: string, verifiers: ReadonlyArray<{ name: string; publicKey: Buffer; verify(message: Buffer, signature: Buffer): boolean }>): Checkpoint {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Error("note: no blank line between text and signatures, or no final newline");
  const text = note.slice(0, split + 1);
  const lines = text.split("\n").slice(0, -1);
  if (lines.length < 3) throw new Error("checkpoint: needs origin, size and root lines");
  const [origin, sizeText, rootText] = lines;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw new Error(`checkpoint: size line ${JSON.stringify(sizeText)} is not a tree size`);
  const root = Buffer.from(rootText, "base64");
  if (root.length !== HASH_BYTES || root.toString("base64") !== rootText) throw new Error("checkpoint: root line is not a base64 SHA-256 hash");
  checkName("origin", origin);
  let verified = false;
  for (const line of note.slice(split + 2, -1).split("\n")) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new Error(`note: signature line ${JSON.stringify(line)} does not start with "\u2014 "`);
    const [name, blob, ...rest] = line.slice(SIGNATURE_PREFIX.length).split(" ");
    const bytes = Buffer.from(blob ?? "", "base64");
    if (rest.length > 0 || !name || bytes.length < 5 || bytes.toString("base64") !== blob) throw new Error(`note: malformed signature line ${JSON.stringify(line)}`);
    const id = bytes.subarray(0, 4);
    for (const v of verifiers) {
      if (v.name === name && keyId(v.name, v.publicKey).equals(id) && bytes.length === 68 && v.verify(Buffer.from(text, "utf8"), bytes.subarray(4))) {
        verified = true;
      }
    }
  }
  if (!verified) throw new Error("note: no signature by a known key verifies");
  return { origin, size: Number(sizeText), root };
}
