import { rm } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { FsBlobStore } from "../../src/blobs/tiered/blob-store.js";
import type { TieringProgress } from "../../src/blobs/tiered/options.js";
import { openTieredStore } from "../../src/blobs/tiered/store.js";
import {
  type Layout,
  makeLayout,
  objectBytes,
  openHot,
  openLayout,
  removeLayout,
  sameBytes,
} from "./tiered-fixtures.js";

const layouts: Layout[] = [];
function layout(): Layout {
  const l = makeLayout();
  layouts.push(l);
  return l;
}
afterEach(async () => {
  await Promise.all(layouts.splice(0).map(removeLayout));
});

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

describe("tiered store", () => {
  it("reads transparently from whichever tier holds the bytes", async () => {
    const l = layout();
    await using store = await openLayout(l, { fsync: false });
    const bytes = objectBytes(123_457, 1);
    const { key } = await store.put(bytes);
    expect(await store.locate(key)).toBe("hot");
    for (const tier of ["warm", "cold", "hot", "cold", "warm", "hot"] as const) {
      await store.moveTo(key, tier);
      expect(await store.locate(key)).toBe(tier);
      expect(sameBytes(await store.get(key), bytes)).toBe(true);
    }
    expect(store.stats()).toMatchObject({
      objects: { hot: 1, warm: 0, cold: 0 },
      bytes: { hot: 123_457 },
      pendingMoves: 0,
    });
    await expect(store.get("0".repeat(64))).rejects.toMatchObject({ code: "not_found" });
    await expect(store.get("xyz")).rejects.toMatchObject({ code: "invalid_argument" });
  });

  it("demotes by idle time, skips warm for small objects, promotes on reads", async () => {
    const l = layout();
    let now = 1_000_000;
    await using store = await openLayout(l, {
      fsync: false,
      now: () => now,
      policy: { warmAfterIdleMs: HOUR, coldAfterIdleMs: DAY, promoteAfterReads: 2, minWarmSize: 1000 },
    });
    const big = objectBytes(20_000, 2);
    const small = objectBytes(100, 3);
    const { key: bigKey } = await store.put(big);
    const { key: smallKey } = await store.put(small);

    now += 30 * 60 * 1000;
    expect(await store.runTieringPass()).toMatchObject({ demoted: 0, promoted: 0 });
    now += HOUR;
    expect(await store.runTieringPass()).toMatchObject({ demoted: 1, bytesMoved: 20_000 });
    expect(await store.locate(bigKey)).toBe("warm");
    expect(await store.locate(smallKey)).toBe("hot");

    now += DAY;
    expect(await store.runTieringPass()).toMatchObject({ demoted: 2 });
    expect(await store.locate(bigKey)).toBe("cold");
    expect(await store.locate(smallKey)).toBe("cold");

    // Two reads of cold data bring it back to hot.
    expect(sameBytes(await store.get(bigKey), big)).toBe(true);
    expect(await store.runTieringPass()).toMatchObject({ promoted: 0 });
    expect(sameBytes(await store.get(bigKey), big)).toBe(true);
    expect(await store.runTieringPass()).toMatchObject({ promoted: 1 });
    expect(await store.locate(bigKey)).toBe("hot");
    expect(store.tracked(bigKey)).toMatchObject({ tier: "hot", readsInTier: 0 });
  });

  it("a hot object past maxHotAgeMs moves down however often it is read", async () => {
    const l = layout();
    let now = 0;
    await using store = await openLayout(l, { fsync: false, now: () => now, policy: { maxHotAgeMs: HOUR } });
    const { key } = await store.put(objectBytes(5000, 4));
    now += 2 * HOUR;
    await store.get(key);
    await store.runTieringPass();
    expect(await store.locate(key)).toBe("warm");
  });

  it("rewrites shards a read found missing on the next pass", async () => {
    const l = layout();
    await using store = await openLayout(l, { fsync: false });
    const bytes = objectBytes(77_777, 5);
    const { key } = await store.put(bytes);
    await store.moveTo(key, "warm");
    await rm(l.warmDirs[3]!, { recursive: true, force: true });
    await rm(l.warmDirs[8]!, { recursive: true, force: true });
    expect(sameBytes(await store.get(key), bytes)).toBe(true);
    expect(store.stats().needsRepair).toBe(1);
    expect(await store.warm.isComplete(key)).toBe(false);
    expect(await store.runTieringPass()).toMatchObject({ repaired: 1 });
    expect(await store.warm.isComplete(key)).toBe(true);
    expect(store.stats().needsRepair).toBe(0);
  });

  it("writing demoted bytes again brings them back to hot and drops the lower copy", async () => {
    const l = layout();
    await using store = await openLayout(l, { fsync: false });
    const bytes = objectBytes(9000, 6);
    const { key } = await store.put(bytes);
    await store.moveTo(key, "warm");
    expect((await store.put(bytes)).key).toBe(key);
    expect(await store.locate(key)).toBe("hot");
    expect(await store.warm.hasAny(key)).toBe(false);
  });

  it("delete removes the object from every tier", async () => {
    const l = layout();
    await using store = await openLayout(l, { fsync: false });
    const { key } = await store.put(objectBytes(4000, 7));
    await store.moveTo(key, "cold");
    expect(await store.delete(key)).toBe(true);
    expect(await store.has(key)).toBe(false);
    expect(await store.delete(key)).toBe(false);
    expect(store.stats().objects).toEqual({ hot: 0, warm: 0, cold: 0 });
  });

  it("counts references like the volume store, and a move takes every hot reference along", async () => {
    const l = layout();
    const bytes = objectBytes(8000, 12);
    let key: string;
    {
      await using store = await openLayout(l, { fsync: false });
      ({ key } = await store.put(bytes));
      await store.put(bytes);
      await store.put(bytes);
      expect(store.tracked(key)?.refs).toBe(3);
      await store.moveTo(key, "warm");
    }
    // The volume store held 3 references: all are gone from hot, the object lives in warm only.
    const hot = await openHot(l.hotDir);
    expect(await hot.has(key)).toBe(false);
    await hot.close();
    await using store = await openLayout(l, { fsync: false });
    expect(store.stats().objects).toEqual({ hot: 0, warm: 1, cold: 0 });
    expect(await store.delete(key)).toBe(true);
    expect(await store.delete(key)).toBe(true);
    expect(sameBytes(await store.get(key), bytes)).toBe(true);
    expect(await store.delete(key)).toBe(true);
    expect(await store.has(key)).toBe(false);
    expect(await store.warm.hasAny(key)).toBe(false);
    expect(await store.delete(key)).toBe(false);
  });

  it("a move that fails leaves the object where it was, not marked as moving", async () => {
    const l = layout();
    await using store = await openLayout(l, { fsync: false });
    const bytes = objectBytes(30_000, 14);
    const { key } = await store.put(bytes);
    await store.moveTo(key, "warm");
    for (const i of [0, 1, 2, 3, 4]) await rm(l.warmDirs[i]!, { recursive: true, force: true });
    await expect(store.moveTo(key, "cold")).rejects.toMatchObject({ code: "too_many_losses" });
    expect(store.tracked(key)).toMatchObject({ tier: "warm", pending: undefined });
    expect(await new FsBlobStore({ dir: l.coldDir }).has(key)).toBe(false);
    await expect(store.get(key)).rejects.toMatchObject({ code: "too_many_losses" });
  });

  it("settles journaled moves at open: a delete finishes, a whole destination wins", async () => {
    const l = layout();
    const keep = objectBytes(20_000, 15);
    const gone = objectBytes(20_000, 16);
    let keepKey: string;
    let goneKey: string;
    {
      await using store = await openLayout(l, { fsync: false });
      ({ key: keepKey } = await store.put(keep));
      ({ key: goneKey } = await store.put(gone));
      // A demotion whose shards were all written, then the process died: the journal says so.
      await store.warm.write(keepKey, keep);
    }
    {
      const { TierLedger } = await import("../../src/blobs/tiered/ledger.js");
      const tracker = await TierLedger.open({ dir: l.dir, fsync: false });
      await tracker.begin(keepKey, "hot", "warm");
      await tracker.begin(goneKey, "hot", "deleted");
      await tracker.close();
    }
    await using store = await openLayout(l, { fsync: false });
    expect(store.recovery).toMatchObject({ rolledForward: 2, rolledBack: 0, unreadable: [] });
    expect(store.tracked(keepKey)).toMatchObject({ tier: "warm", pending: undefined });
    expect(await store.has(goneKey)).toBe(false);
    expect(store.tracked(goneKey)).toBeUndefined();
    expect(sameBytes(await store.get(keepKey), keep)).toBe(true);
  });

  it("never trusts a cold copy that does not match its key", async () => {
    const l = layout();
    await using store = await openLayout(l, { fsync: false });
    const { key } = await store.put(objectBytes(3000, 8));
    await store.moveTo(key, "cold");
    const cold = new FsBlobStore({ dir: l.coldDir });
    await cold.put(key, objectBytes(3000, 9));
    await expect(store.get(key)).rejects.toMatchObject({ code: "corrupt" });
  });

  it("keeps tiers across close and reopen, and locks its directory while open", async () => {
    const l = layout();
    const bytes = objectBytes(50_000, 10);
    let key: string;
    {
      await using store = await openLayout(l);
      ({ key } = await store.put(bytes));
      await store.moveTo(key, "warm");
      await expect(openLayout(l)).rejects.toMatchObject({ code: "locked" });
    }
    await using store = await openLayout(l);
    expect(store.tracked(key)?.tier).toBe("warm");
    expect(store.recovery).toMatchObject({ rolledForward: 0, rolledBack: 0, unreadable: [] });
    expect(sameBytes(await store.get(key), bytes)).toBe(true);
  });

  it("runs a background tiering job with progress events, and leaves nothing running after close", async () => {
    const l = layout();
    const before = process.getActiveResourcesInfo().length;
    let now = 0;
    const store = await openLayout(l, { fsync: false, now: () => now, policy: { warmAfterIdleMs: 1000 } });
    const keys = [];
    for (let i = 0; i < 3; i++) keys.push((await store.put(objectBytes(10_000 + i, 20 + i))).key);
    now = 5000;
    const job = store.startTiering({ intervalMs: 20 });
    expect(() => store.startTiering()).toThrow(/already running/);
    const progress: TieringProgress[] = [];
    job.on("progress", (p) => progress.push(p));
    const result = await new Promise((resolve) => job.once("pass", resolve));
    expect(result).toMatchObject({ demoted: 3, failed: 0 });
    expect(progress[0]).toMatchObject({ phase: "plan", total: 3 });
    expect(progress.filter((p) => p.step === "shard-written").length).toBe(3 * 14);
    expect(progress.filter((p) => p.step === "done").map((p) => p.index)).toEqual([1, 2, 3]);
    await new Promise((resolve) => job.once("pass", resolve));
    expect(job.passes).toBeGreaterThanOrEqual(2);
    await job.close();
    await expect(job.runNow()).rejects.toMatchObject({ code: "closed" });
    for (const key of keys) expect(await store.locate(key)).toBe("warm");
    store.startTiering({ intervalMs: 10_000, runAtStart: false });
    await store.close();
    await store.close();
    await expect(store.get(keys[0]!)).rejects.toMatchObject({ code: "closed" });
    await new Promise((r) => setTimeout(r, 50));
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  });

  it("validates its options", async () => {
    const l = layout();
    const cold = new FsBlobStore({ dir: l.coldDir });
    const hot = await openHot(l.hotDir);
    const base = { dir: l.dir, hot, cold, warm: { dirs: l.warmDirs } };
    await expect(openTieredStore({ ...base, dir: "" })).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(openTieredStore({ ...base, warm: { dirs: [] } })).rejects.toThrow(/warm.dirs/);
    await expect(openTieredStore({ ...base, policy: { warmAfterIdleMs: -1 } })).rejects.toThrow(
      /policy.warmAfterIdleMs/,
    );
    await expect(openTieredStore({ ...base, policy: { nope: 1 } as never })).rejects.toThrow(
      /unknown tiering policy option/,
    );
    await expect(openTieredStore({ ...base, hot: {} as never })).rejects.toThrow(/volume store/);
    await hot.close();
  });
});
