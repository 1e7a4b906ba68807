/**
 * The volume store when its needle index breaks (a trap inside the WASM kernel, made here by the kernel's page
 * limit test hook): the store rebuilds the index from its volume files before anything else, and no acknowledged
 * blob is lost or served wrong. A put or delete whose record reached its volume before the index broke took effect
 * and succeeds (the rebuild reads it back); a call that broke the index otherwise fails with "index_broken". If
 * the rebuild breaks too, the store fails closed until it is reopened.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { type NeedleStore, openStore } from "../../src/blobs/index.js";
import { NeedleIndex } from "../../src/blobs/volume/needle-index.js";
import { isNexusError, type NexusError } from "../../src/util/errors.js";
import { ready } from "../../src/wasm/loader.js";
import { bytesOf, tempDir } from "./helpers.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * An index that merges every 16 new keys and cannot grow its memory: a fresh index has no spare page, so its
 * first merge (the 16th new key) traps.
 */
async function trappingIndex(): Promise<NeedleIndex> {
  await ready();
  const index = NeedleIndex.createSync();
  index.setMergeThreshold(16);
  index.setPageLimit(index.memoryBytes / 65536);
  return index;
}

async function rejection(p: Promise<unknown>): Promise<NexusError> {
  try {
    await p;
  } catch (e) {
    expect(isNexusError(e), String(e)).toBe(true);
    return e as NexusError;
  }
  throw new Error("expected a rejection");
}

const blob = (i: number) => bytesOf(i + 1, 100 + i * 13);

/**
 * Opens a store in a fresh directory (defaults but the index) and brings its index to the edge: 15 new keys in
 * L0, a deduplicated put (blob 0 has two references) and a delete (blob 1 is gone). Returns the keys of blobs
 * 0..16; the put of blob 16 is the 16th new key, whose merge traps.
 */
async function storeAtTheEdge(): Promise<{ dir: string; store: NeedleStore; keys: string[] }> {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const store = await openStore({ dir });
  cleanups.push(() => store.close());
  const keys: string[] = [];
  for (let i = 0; i < 15; i++) keys.push((await store.put(blob(i))).key);
  expect((await store.put(blob(0))).deduped).toBe(true);
  expect(await store.delete(keys[1]!)).toBe(true);
  keys.push((await store.put(blob(15))).key);
  return { dir, store, keys };
}

/** Every acknowledged blob reads back whole; the deleted one is gone; blob 0 still has two references. */
async function expectAcknowledged(store: NeedleStore, keys: string[]): Promise<void> {
  for (let i = 0; i <= 15; i++) {
    if (i === 1) expect(await store.has(keys[1]!)).toBe(false);
    else expect(await store.get(keys[i]!)).toEqual(blob(i));
  }
  expect((await rejection(store.get(keys[1]!))).code).toBe("not_found");
  expect(await store.delete(keys[0]!)).toBe(true);
  expect(await store.get(keys[0]!)).toEqual(blob(0)); // one reference left
}

describe("volume store with a broken needle index", () => {
  it("a put that breaks the index once its needle is written succeeds; the index is rebuilt from the volumes", async () => {
    // Review finding: the put failed as "may or may not have taken effect" although its needle was written, and the
    // caller's retry then counted the blob's reference twice (a delete never freed it).
    const create = vi.spyOn(NeedleIndex, "create").mockImplementationOnce(trappingIndex);
    const { dir, store, keys } = await storeAtTheEdge();
    const put16 = await store.put(blob(16));
    expect(put16.deduped).toBe(false);
    await expectAcknowledged(store, keys);
    expect(await store.get(put16.key)).toEqual(blob(16));
    const again16 = put16;
    expect(create).toHaveBeenCalledTimes(2); // the open, then the rebuild (a sound index: no hooks)
    expect(store.stats().needles).toBe(16); // blobs 0 and 2..16
    const scrubbed = await store.scrub();
    expect(scrubbed).toMatchObject({ checked: 16, corrupt: [] });
    expect(store.stats().liveBytes).toBeGreaterThan(0);
    expect(store.stats().garbageBytes).toBeGreaterThan(0); // blob 1, and the records
    keys.push(again16.key);
    for (let i = 17; i < 60; i++) keys.push((await store.put(blob(i))).key);
    expect(store.stats().needles).toBe(59);
    const compacted = await store.compact({ threshold: 0 }); // the rebuilt live counts and locations at work
    expect(compacted).toMatchObject({ volumes: [1], corrupt: 0, skipped: [] });
    expect(compacted.bytesReclaimed).toBeGreaterThan(0);
    for (let i = 0; i < 60; i++) if (i !== 1) expect(await store.get(keys[i]!)).toEqual(blob(i));

    await store.close();
    const again = await openStore({ dir });
    cleanups.push(() => again.close());
    expect(again.stats().needles).toBe(59);
    expect(await again.has(keys[1]!)).toBe(false);
    for (let i = 0; i < 60; i++) if (i !== 1) expect(await again.get(keys[i]!)).toEqual(blob(i));
    expect(await again.delete(keys[16]!)).toBe(true); // its one reference
    expect(await again.has(keys[16]!)).toBe(false);
  });

  it("a trap as a compaction moves its needles in the index: the compaction stands, the index is rebuilt", async () => {
    // Found in review: the swap adopted the compacted file, then the index's move trapped; the failure path adopted
    // it a second time (closing the descriptor it had just adopted) and closed both descriptors again, so the
    // rebuild failed on a closed file (EBADF) and every later call failed until a reopen.
    let index!: NeedleIndex;
    vi.spyOn(NeedleIndex, "create").mockImplementationOnce(async () => {
      await ready();
      index = NeedleIndex.createSync();
      return index;
    });
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const store = await openStore({
      dir,
      testing: {
        onCompactStep: (step) => {
          if (step !== "index-swapped") return;
          // Break the index now, as a trap would: every merge from here on needs a page it cannot have.
          index.setPageLimit(index.memoryBytes / 65536);
          index.setMergeThreshold(1);
          for (let i = 0; i < 100_000 && !index.broken; i++) {
            try {
              index.set(i + 1, 0x7fff0000, { volume: 1, offset: 8, length: 8 });
            } catch {
              // index_broken: what the compaction's moves meet next
            }
          }
          expect(index.broken).toBe(true);
        },
      },
    });
    cleanups.push(() => store.close());
    const keys: string[] = [];
    for (let i = 0; i < 300; i++) keys.push((await store.put(blob(i))).key);
    for (let i = 0; i < 300; i += 2) expect(await store.delete(keys[i]!)).toBe(true);
    const compacted = await store.compact({ threshold: 0 });
    expect(compacted.bytesReclaimed).toBeGreaterThan(0);
    for (let i = 1; i < 300; i += 2) expect(await store.get(keys[i]!)).toEqual(blob(i));
    for (let i = 0; i < 300; i += 2) expect(await store.has(keys[i]!)).toBe(false);
    expect((await store.put(blob(1000))).deduped).toBe(false);
    await store.close();
    const again = await openStore({ dir });
    cleanups.push(() => again.close());
    for (let i = 1; i < 300; i += 2) expect(await again.get(keys[i]!)).toEqual(blob(i));
    expect(again.stats().needles).toBe(151);
  });

  it("fails closed when the rebuild breaks too; a reopen rebuilds the index", async () => {
    vi.spyOn(NeedleIndex, "create").mockImplementation(trappingIndex);
    const { dir, store, keys } = await storeAtTheEdge();
    // Its needle is written before the index breaks: it succeeds, and the rebuild it queues breaks too.
    expect((await store.put(blob(16))).deduped).toBe(false);
    const calls = await Promise.allSettled([
      store.get(keys[0]!),
      store.has(keys[2]!),
      store.put(blob(20)),
      store.delete(keys[3]!),
      store.compact({ threshold: 0 }),
    ]);
    for (const call of calls) {
      expect(call.status).toBe("rejected");
      const e = (call as PromiseRejectedResult).reason as NexusError;
      expect(isNexusError(e, "index_broken"), String(e)).toBe(true);
      expect(e.message).toContain("could not rebuild its broken needle index");
    }
    expect(() => store.stats()).toThrow(/index/);
    await store.close();

    vi.restoreAllMocks();
    const again = await openStore({ dir });
    cleanups.push(() => again.close());
    await expectAcknowledged(again, keys);
    expect(await again.get(keys[3]!)).toEqual(blob(3)); // its delete was refused
  });
});
