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

describe("one bad item never fails the batch it shares", () => {
  /** A write that refuses any batch holding a poisoned item, the way one bad row fails a multi-row INSERT. */
  function poisonedWriter(poisoned: ReadonlySet<number>) {
    const writes: number[][] = [];
    const gate = deferred();
    const group = createGroupCommit<number, string>(100, async (take) => {
      if (writes.length === 0) await gate.promise;
      const items = take();
      writes.push(items);
      if (items.some((n) => poisoned.has(n))) throw Object.assign(new Error("invalid input syntax for type json"), { code: "22P02" });
      return items.map((n) => `stored ${n}`);
    });
    return { group, writes, gate };
  }

  test("only the poisoned item is rejected; every other item of its batch is stored", async () => {
    const { group, writes, gate } = poisonedWriter(new Set([13]));
    const first = group.submit(0);
    const rest = Array.from({ length: 39 }, (_, i) => group.submit(i + 1));
    gate.release();
    const settled = await Promise.allSettled([first, ...rest]);
    settled.forEach((outcome, n) => {
      if (n === 13) expect(outcome).toMatchObject({ status: "rejected", reason: expect.objectContaining({ code: "22P02" }) });
      else expect(outcome).toEqual({ status: "fulfilled", value: `stored ${n}` });
    });
    // Each item is stored exactly once.
    const stored = writes.filter((w) => !w.includes(13)).flat().sort((a, b) => a - b);
    expect(stored).toEqual(Array.from({ length: 40 }, (_, n) => n).filter((n) => n !== 13));
  });

  test("several poisoned items in one batch are each rejected on their own", async () => {
    const poisoned = new Set([2, 5, 6, 30]);
    const { group, gate } = poisonedWriter(poisoned);
    const all = Array.from({ length: 32 }, (_, n) => group.submit(n));
    gate.release();
    const settled = await Promise.allSettled(all);
    expect(settled.map((s) => s.status === "rejected")).toEqual(Array.from({ length: 32 }, (_, n) => poisoned.has(n)));
  });

  test("a connection failure is not split into retries: the whole batch fails in one write", async () => {
    let writes = 0;
    const gate = deferred();
    const group = createGroupCommit<number, number>(100, async (take) => {
      writes += 1;
      if (writes === 1) await gate.promise;
      take();
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    });
    const first = group.submit(0);
    const batch = Array.from({ length: 10 }, (_, n) => group.submit(n + 1));
    gate.release();
    const settled = await Promise.allSettled([first, ...batch]);
    expect(settled.every((s) => s.status === "rejected" && /ECONNREFUSED/.test(String(s.reason)))).toBe(true);
    expect(writes).toBe(1);
  });

  test("a caller's isolate predicate decides which failures are split", async () => {
    let writes = 0;
    const gate = deferred();
    const group = createGroupCommit<number, number>(
      100,
      async (take) => {
        writes += 1;
        if (writes === 1) await gate.promise;
        const items = take();
        if (items.includes(3)) throw new Error("never split");
        return items;
      },
      { isolate: () => false },
    );
    const first = group.submit(0);
    const batch = [1, 2, 3, 4].map((n) => group.submit(n));
    gate.release();
    const settled = await Promise.allSettled([first, ...batch]);
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected", "rejected", "rejected", "rejected"]);
    expect(writes).toBe(1);
  });
});

test("with a weight, a batch holds items while their weight fits; an item heavier than the bound is a batch of its own", async () => {
  const batches: number[][] = [];
  const gate = deferred();
  const group = createGroupCommit<number, number>(100, async (take) => {
    const items = take();
    batches.push(items);
    if (batches.length === 1) await gate.promise;
    return items;
  }, { weight: (n) => n, maxWeight: 10 });
  const all = [1, 4, 5, 2, 30, 3, 3, 3, 3].map((n) => group.submit(n));
  gate.release();
  expect(await Promise.all(all)).toEqual([1, 4, 5, 2, 30, 3, 3, 3, 3]);
  expect(batches).toEqual([[1], [4, 5], [2], [30], [3, 3, 3], [3]]);
});
