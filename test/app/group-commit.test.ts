/** db/group-commit: batching, acknowledgement after the write, failures confined to their batch. */
import { createGroupCommit } from "../../app/src/db/group-commit";

function deferred() {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
}

test("submissions made while a batch is written form the next batch, each resolved with its own result", async () => {
  const batches: number[][] = [];
  const gate = deferred();
  const group = createGroupCommit<number, string>(100, async (take) => {
    const items = take();
    batches.push(items);
    if (batches.length === 1) await gate.promise;
    return items.map((n) => `stored ${n}`);
  });
  const first = group.submit(1);
  const rest = [2, 3, 4].map((n) => group.submit(n));
  gate.release();
  expect(await Promise.all([first, ...rest])).toEqual(["stored 1", "stored 2", "stored 3", "stored 4"]);
  expect(batches).toEqual([[1], [2, 3, 4]]);
});

test("nothing resolves before its batch's write has finished", async () => {
  const gate = deferred();
  let resolved = false;
  const group = createGroupCommit<number, number>(10, async (take) => {
    const items = take();
    await gate.promise;
    return items;
  });
  const pending = group.submit(7).then((v) => ((resolved = true), v));
  await new Promise((r) => setTimeout(r, 20));
  expect(resolved).toBe(false);
  gate.release();
  expect(await pending).toBe(7);
});

test("batches hold at most maxBatch items", async () => {
  const sizes: number[] = [];
  const group = createGroupCommit<number, number>(3, async (take) => {
    const items = take();
    sizes.push(items.length);
    return items;
  });
  await Promise.all(Array.from({ length: 8 }, (_, i) => group.submit(i)));
  expect(sizes.every((n) => n <= 3)).toBe(true);
  expect(sizes.reduce((a, b) => a + b, 0)).toBe(8);
});

test("a failed write rejects its own batch only; the next batch is still written", async () => {
  const gate = deferred();
  let calls = 0;
  const group = createGroupCommit<number, number>(100, async (take) => {
    calls += 1;
    const items = take();
    if (calls === 1) {
      await gate.promise;
      throw new Error("disk full");
    }
    return items;
  });
  const failing = group.submit(1);
  const next = group.submit(2);
  gate.release();
  await expect(failing).rejects.toThrow("disk full");
  await expect(next).resolves.toBe(2);
});

test("a write that fails before taking fails what was waiting, and taking twice returns the same batch", async () => {
  let calls = 0;
  const group = createGroupCommit<number, number>(100, async (take) => {
    calls += 1;
    if (calls === 1) throw new Error("database down");
    const once = take();
    expect(take()).toEqual(once);
    return once;
  });
  await expect(group.submit(1)).rejects.toThrow("database down");
  await expect(group.submit(2)).resolves.toBe(2);
  await group.drained();
});
