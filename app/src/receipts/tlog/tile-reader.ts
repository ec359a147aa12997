/**
 * Stored hashes read from tiles (what an auditor holds: the published tiles, not the database):
 * a hash at tree level L is a tile entry when L is a multiple of 8, else the subtree hash of the
 * 2^(L mod 8) entries below it in the tile of level floor(L / 8). For a tree of `size` leaves the
 * tile used is the full one or, at its right edge, the partial one of that size's width.
 */
import { nodeHash } from "../merkle";
import { tilePath, TILE_HEIGHT, TILE_WIDTH } from "./tiles";
import { HASH_BYTES, splitStoredHashIndex, type HashReader } from "./tree";

/** `fetchTile(path)` returns a tile's bytes by its C2SP path (e.g. from the bucket). */
export function tileHashReader(size: number, fetchTile: (path: string) => Promise<Buffer>): HashReader {
  const tiles = new Map<string, Promise<Buffer>>();
  const tile = (path: string, width: number) => {
    let bytes = tiles.get(path);
    if (!bytes) {
      bytes = fetchTile(path).then((b) => {
        if (b.length !== width * HASH_BYTES) throw new Error(`${path}: ${b.length} bytes, expected ${width * HASH_BYTES}`);
        return b;
      });
      tiles.set(path, bytes);
    }
    return bytes;
  };
  return (indexes) =>
    Promise.all(
      indexes.map(async (index) => {
        const { level, n } = splitStoredHashIndex(index);
        const tileLevel = Math.floor(level / TILE_HEIGHT);
        const count = 2 ** (level - tileLevel * TILE_HEIGHT);
        const first = n * count;
        const entries = Math.floor(size / TILE_WIDTH ** tileLevel);
        if (first + count > entries) throw new Error(`stored hash ${index} is not in a tree of ${size} leaves`);
        const tileN = Math.floor(first / TILE_WIDTH);
        const width = Math.min(TILE_WIDTH, entries - tileN * TILE_WIDTH);
        const bytes = await tile(tilePath({ level: tileLevel, n: tileN, width }), width);
        let level0: Buffer[] = [];
        const offset = first - tileN * TILE_WIDTH;
        for (let i = 0; i < count; i++) level0.push(bytes.subarray((offset + i) * HASH_BYTES, (offset + i + 1) * HASH_BYTES));
        while (level0.length > 1) {
          const up: Buffer[] = [];
          for (let i = 0; i < level0.length; i += 2) up.push(nodeHash(level0[i], level0[i + 1]));
          level0 = up;
        }
        return Buffer.from(level0[0]);
      }),
    );
}
