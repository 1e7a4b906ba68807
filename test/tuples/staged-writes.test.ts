/**
 * Large writes to the memory store are validated in slices that yield to the event loop, then committed in one
 * step. Readers in between see the revision before the write, whole; a refused write leaves nothing behind, however
 * far it got; writes issued meanwhile queue behind it and are validated against the state it leaves.
 */
import { describe, expect, it } from "vitest";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple, TupleKey } from "../../src/tuples/tuple.js";

function tuple(key: TupleKey): RelationTuple {
  const n = normalizeTuple(key, "default");
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

const file = (i: number) => tuple({ object: `file:f${i}`, relation: "parent", user: `folder:d${i % 50}` });
const member = (i: number) => tuple({ object: "group:all", relation: "member", user: `user:u${i}` });
const files = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => file(from + k));

/** A store whose writes yield every few tuples. */
const slicing = (clock?: () => number) =>
  new MemoryTupleStore({ writeSliceMs: 0, writeSliceTuples: 100, ...(clock ? { clock } : {}) });

const nextTask = () => new Promise<void>((resolve) => setImmediate(resolve));

async function everything(store: MemoryTupleStore): Promise<string[]> {
  const snapshot = await store.snapshot(await store.currentRevision());
  const tuples = await snapshot.read({ tenant: "default" });
  snapshot.release();
  return tuples.map((t) => `${t.object}#${t.relation}@${t.user}`).sort();
}

describe("memory store: writes validated in slices", () => {
  it("readers see the revision before the write until it commits, then all of it at once", async () => {
    await using store = slicing();
    await store.write({ writes: files(0, 10), deletes: [] });
    const before = await everything(store);
    const writing = store.write({
      writes: [...files(10, 5000), ...Array.from({ length: 300 }, (_, i) => member(i))],
      deletes: [files(0, 1)[0]!],
    });
    let tasks = 0;
    let result: Awaited<typeof writing> | undefined;
    void writing.then((r) => {
      result = r;
    });
    while (result === undefined) {
      if ((await store.currentRevision()) === 1) {
        expect(await everything(store)).toEqual(before);
        expect(await store.changesAfter(1, 100_000)).toEqual([]);
        expect(store.size).toBe(10);
        const snapshot = await store.snapshot(1);
        const [all] = await snapshot.readByObject([
          { tenant: "default", object: "group:all", relation: "member" },
        ]);
        const [byType] = await snapshot.readByTypeRelation([
          { tenant: "default", objectType: "file", relation: "parent" },
        ]);
        const [bySubject] = await snapshot.readBySubject([{ subjectTenant: "default", user: "folder:d3" }]);
        snapshot.release();
        expect(all).toEqual([]);
        expect(byType!.length).toBe(10);
        expect(bySubject!.map((t) => t.object)).toEqual(["file:f3"]);
      }
      tasks++;
      await nextTask();
    }
    // The write yielded many times, and committed in one step.
    expect(tasks).toBeGreaterThan(10);
    expect(result).toEqual({ revision: 2, written: 5290, deleted: 1 });
    expect(store.size).toBe(10 + 4990 + 300 - 1);
    const changes = await store.changesAfter(1, 1);
    expect(changes.length).toBe(5291);
    expect(changes.every((c) => c.revision === 2)).toBe(true);
  });

  it("a refused write leaves nothing behind, however far it got", async () => {
    let now = 1000;
    await using store = slicing(() => now);
    const expiring = tuple({ object: "group:all", relation: "member", user: "user:u7", expiresAt: 1500 });
    await store.write({
      writes: [...files(0, 100), ...Array.from({ length: 20 }, (_, i) => (i === 7 ? expiring : member(i)))],
      deletes: [],
    });
    now = 2000; // user:u7's membership has expired (not yet removed)
    const before = await everything(store);
    const versions = store.versionCount;
    // 3,000 new tuples, the expired membership written again (replacing it), a large group grown past its keyed
    // size, then a tuple that exists: refused at the very end.
    const batch = [
      ...files(100, 3100),
      member(7),
      ...Array.from({ length: 40 }, (_, i) => member(100 + i)),
      tuple({ object: "file:f5", relation: "parent", user: "folder:other" }), // a second version in its slot
      file(5),
    ];
    await expect(store.write({ writes: batch, deletes: [] })).rejects.toThrow("already exists");
    // And one named twice.
    await expect(store.write({ writes: [...files(100, 3100), file(2000)], deletes: [] })).rejects.toThrow(
      "appears more than once",
    );
    expect(await store.currentRevision()).toBe(1);
    expect(await everything(store)).toEqual(before);
    expect(store.size).toBe(120);
    expect(store.versionCount).toBe(versions);
    expect(await store.changesAfter(1, 100_000)).toEqual([]);
    // Nothing staged stays: the same tuples are accepted now, the expired one replaced (an expiry recorded).
    const ok = await store.write({ writes: batch.slice(0, -1), deletes: [] });
    expect(ok).toEqual({ revision: 2, written: 3042, deleted: 0 });
    const changes = await store.changesAfter(1, 100_000);
    expect(changes.filter((c) => c.op === "delete").map((c) => [c.tuple.user, c.expired])).toEqual([
      ["user:u7", true],
    ]);
    const snapshot = await store.snapshot(2);
    const [all] = await snapshot.readByObject([
      { tenant: "default", object: "group:all", relation: "member" },
    ]);
    snapshot.release();
    expect(all!.length).toBe(60);
    expect(all!.filter((t) => t.user === "user:u7").map((t) => t.expiresAt)).toEqual([undefined]);
    expect((await everything(store)).filter((t) => t.startsWith("file:f5#"))).toEqual([
      "file:f5#parent@folder:d5",
      "file:f5#parent@folder:other",
    ]);
    // The large group finds each identity (its keyed index was kept right through the rollback).
    await expect(store.write({ writes: [member(3)], deletes: [] })).rejects.toThrow("already exists");
    await expect(store.write({ writes: [member(120)], deletes: [] })).rejects.toThrow("already exists");
    await store.write({ writes: [], deletes: [member(7), member(139)] });
    expect(store.size).toBe(120 - 1 + 3042 - 2); // the expired membership ended by its replacement
  });

  it("writes issued meanwhile queue behind it, validated against the state it leaves", async () => {
    await using store = slicing();
    const big = store.write({ writes: files(0, 4000), deletes: [] });
    const duplicate = store.write({ writes: [file(3999)], deletes: [] });
    const small = store.write({ writes: [file(4000)], deletes: [file(17)] });
    const refused = store.write({ writes: files(5000, 8000), deletes: [file(123_456)] });
    const after = store.write({ writes: files(5000, 5500), deletes: [] });
    await expect(big).resolves.toEqual({ revision: 1, written: 4000, deleted: 0 });
    await expect(duplicate).rejects.toThrow("already exists");
    await expect(small).resolves.toEqual({ revision: 2, written: 1, deleted: 1 });
    await expect(refused).rejects.toThrow("does not exist");
    await expect(after).resolves.toEqual({ revision: 3, written: 500, deleted: 0 });
    expect(store.size).toBe(4500);
    // Once the line is empty, a small write is applied before write() returns, as it always was.
    void store.write({ writes: [file(9000)], deletes: [] });
    expect(store.size).toBe(4501);
  });

  it("a large write with default options completes where there is no setImmediate (browsers, workerd)", async () => {
    const immediate = globalThis.setImmediate;
    // Deleted for the store's own yields only; the test waits with setTimeout.
    (globalThis as { setImmediate?: unknown }).setImmediate = undefined;
    try {
      const store = new MemoryTupleStore();
      // 40k tuples take longer than one slice (4 ms) to validate on any machine: the write yields.
      const result = await store.write({ writes: files(0, 40_000), deletes: [] });
      expect(result).toEqual({ revision: 1, written: 40_000, deleted: 0 });
      expect(await store.write({ writes: [member(1)], deletes: [] })).toMatchObject({
        revision: 2,
        written: 1,
      });
      await store.close();
    } finally {
      globalThis.setImmediate = immediate;
    }
  });

  it("a write that fails between slices for any reason leaves nothing staged: the next write is taken", async () => {
    const store = slicing();
    const immediate = globalThis.setImmediate;
    let failed = false;
    // The first yield of the store throws (an unexpected failure, not a refused tuple).
    globalThis.setImmediate = ((..._args: unknown[]) => {
      globalThis.setImmediate = immediate;
      failed = true;
      throw new Error("no turn today");
    }) as unknown as typeof setImmediate;
    try {
      await expect(store.write({ writes: files(0, 3000), deletes: [] })).rejects.toThrow("no turn today");
    } finally {
      globalThis.setImmediate = immediate;
    }
    expect(failed).toBe(true);
    expect(await store.currentRevision()).toBe(0);
    expect(await store.write({ writes: files(0, 3000), deletes: [] })).toMatchObject({
      revision: 1,
      written: 3000,
    });
    expect((await everything(store)).length).toBe(3000);
    await store.close();
  });

  it("a write is timed when it commits, not when its validation began", async () => {
    let now = 1000;
    const store = slicing(() => now);
    await store.write({ writes: [member(1)], deletes: [] });
    now = 1500;
    const writing = store.write({ writes: files(0, 3000), deletes: [] });
    await nextTask();
    now = 3000; // time passes while it validates in slices
    expect(await store.revisionAt(2500)).toBe(1);
    await writing;
    expect(await store.currentRevision()).toBe(2);
    // At 2500 the store was still at revision 1, and stays so.
    expect(await store.revisionAt(2500)).toBe(1);
    expect(await store.revisionAt(3000)).toBe(2);
    await store.close();
  });

  it("a store closed while a write is validating refuses it", async () => {
    const store = slicing();
    const writing = store.write({ writes: files(0, 5000), deletes: [] });
    await nextTask();
    await store.close();
    await expect(writing).rejects.toThrow("closed");
  });

  it("prepareWrite stages a batch that applyWrite commits or abortWrite takes out", async () => {
    await using store = new MemoryTupleStore();
    await store.write({ writes: files(0, 5), deletes: [] });
    const prepared = store.prepareWrite({ writes: files(5, 10), deletes: [file(0)] })!;
    expect(() => store.prepareWrite({ writes: [file(11)], deletes: [] })).toThrow("prepared already");
    expect(await everything(store)).toHaveLength(5);
    store.abortWrite(prepared);
    expect(await everything(store)).toHaveLength(5);
    const again = store.prepareWrite({ writes: files(5, 10), deletes: [file(0)] })!;
    expect(store.applyWrite(again)).toEqual({ revision: 2, written: 5, deleted: 1 });
    expect(await everything(store)).toHaveLength(9);
    expect(() => store.applyWrite(prepared)).toThrow("cannot apply");
  });
});
