/**
 * Tiles of the receipt log in the C2SP tlog-tiles layout: the stored hashes cut into tiles of
 * height 8, so a tile at level L holds up to 256 consecutive hashes of tree level 8L and anyone
 * can rebuild any root or proof from plain files. Paths are `tile/<L>/<N>` for a full tile and
 * `tile/<L>/<N>.p/<W>` for a partial one of width W (1..255), N written in groups of three
 * digits, every group but the last prefixed with "x" (tile 1234067 is `x001/x234/067`).
 */
import { storedHashIndex, type HashReader } from "./tree";

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 2 ** TILE_HEIGHT;

export interface Tile {
  /** Tile level: its hashes are of tree level TILE_HEIGHT * level. */
  readonly level: number;
  /** Tile number within its level. */
  readonly n: number;
  /** Hashes in the tile, 1..256 (256: full). */
  readonly width: number;
}

function checkTile(t: Tile): void {
  if (!Number.isInteger(t.level) || t.level < 0 || t.level > 63) throw new RangeError(`level: must be an integer from 0 to 63, got ${t.level}`);
  if (!Number.isSafeInteger(t.n) || t.n < 0) throw new RangeError(`n: must be a non-negative safe integer, got ${t.n}`);
  if (!Number.isInteger(t.width) || t.width < 1 || t.width > TILE_WIDTH) throw new RangeError(`width: must be an integer from 1 to ${TILE_WIDTH}, got ${t.width}`);
}

export function tilePath(t: Tile): string {
  checkTile(t);
  const groups: string[] = [];
  let n = t.n;
  do {
    groups.unshift(String(n % 1000).padStart(3, "0"));
    n = Math.floor(n / 1000);
  } while (n > 0);
  const index = groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join("/");
  return `tile/${t.level}/${index}${t.width === TILE_WIDTH ? "" : `.p/${t.width}`}`;
}

const PATH = /^tile\/(0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*)([0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

/** The tile a path names, or an error saying what is wrong with it (the path is untrusted input). */
export function parseTilePath(path: string): Tile | { error: string } {
  const m = PATH.exec(path);
  if (!m) return { error: "not a tile path: expected tile/<level>/<N> or tile/<level>/<N>.p/<width>, N in x-prefixed groups of three digits" };
  const level = Number(m[1]);
  const groups = [...(m[2] ? m[2].split("/").filter(Boolean).map((g) => g.slice(1)) : []), m[3]];
  if (groups.length > 1 && groups[0] === "000") return { error: "tile number has a leading zero group" };
  if (groups.length > 6) return { error: "tile number too large" };
  const n = groups.reduce((acc, g) => acc * 1000 + Number(g), 0);
  const width = m[4] === undefined ? TILE_WIDTH : Number(m[4]);
  if (level > 63) return { error: "level must be from 0 to 63" };
  if (m[4] !== undefined && width >= TILE_WIDTH) return { error: `a partial tile's width must be from 1 to ${TILE_WIDTH - 1}` };
  return { level, n, width };
}

/** The tile's bytes: its stored hashes, concatenated. */
export async function readTile(t: Tile, read: HashReader): Promise<Buffer> {
  checkTile(t);
  const first = t.n * TILE_WIDTH;
  const indexes = Array.from({ length: t.width }, (_, i) => storedHashIndex(TILE_HEIGHT * t.level, first + i));
  const hashes = await read(indexes);
  if (hashes.length !== indexes.length) throw new Error(`hash reader returned ${hashes.length} hashes for ${indexes.length} indexes`);
  return Buffer.concat(hashes);
}

/**
 * The tiles that change when the tree grows from `oldSize` to `newSize` leaves: every tile that
 * becomes full and, per level, the partial tile at the new size. From 0, every tile of the tree.
 */
export function newTiles(oldSize: number, newSize: number): Tile[] {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || newSize < oldSize) {
    throw new RangeError(`sizes: need 0 <= oldSize <= newSize, got ${oldSize} and ${newSize}`);
  }
  const tiles: Tile[] = [];
  for (let level = 0; Math.floor(newSize / TILE_WIDTH ** level) > 0; level++) {
    const oldN = Math.floor(oldSize / TILE_WIDTH ** level);
    const newN = Math.floor(newSize / TILE_WIDTH ** level);
    if (oldN === newN) continue;
    for (let n = Math.floor(oldN / TILE_WIDTH); n < Math.floor(newN / TILE_WIDTH); n++) tiles.push({ level, n, width: TILE_WIDTH });
    const n = Math.floor(newN / TILE_WIDTH);
    const width = newN - n * TILE_WIDTH;
    if (width > 0) tiles.push({ level, n, width });
  }
  return tiles;
}
