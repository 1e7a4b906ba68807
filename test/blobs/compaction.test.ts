import { readdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import {
  type CompactProgress,
  type CompactStep,
  type NeedleStore,
  openStore,
} from "../../src/blobs/index.js";
import { createChecksums } from "../../src/io/checksum.js";
import { Child } from "./child.js";
import { bytesOf, tempDir } from "./helpers.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const blob = (seed: number) => bytesOf(seed, 600);
const checks = await createChecksums();
const keyOf = (seed: number) => Buffer.from(checks.blake3(blob(seed))).toString("hex");

/**
 * Seeds 0..39 stored, 0..9 twice (two references), 20..39 deleted: the first volumes are mostly garbage.
 * While a compaction copies, the fixture deletes 0..4 and 10..14 once and puts 15..19 and 100..104.
 */
async function prepare(): Promise<string> {
  const { dir, cleanup } = tempDir("nexus-compact-");
  cleanups.push(cleanup);
  const store = await openStore({ dir, volumeSize: 16 * 1024 });
  for (let s = 0; s < 40; s++) await store.put(blob(s));
  for (let s = 0; s < 10; s++) await store.put(blob(s));
  for (let s = 20; s < 40; s++) await store.delete(keyOf(s));
  await store.close();
  return dir;
}

/** Reference counts expected after the fixture's work (0 = absent). */
function expectedRefs(meanwhile: boolean): Map<number, number> {
  const refs = new Map<number, number>();
  for (let s = 0; s < 10; s++) refs.set(s, 2);
  for (let s = 10; s < 20; s++) refs.set(s, 1);
  for (let s = 20; s < 40; s++) refs.set(s, 0);
  if (meanwhile) {
    for (let s = 0; s < 5; s++) refs.set(s, 1);
    for (let s = 10; s < 15; s++) refs.set(s, 0);
    for (let s = 15; s < 20; s++) refs.set(s, 2);
    for (let s = 100; s < 105; s++) refs.set(s, 1);
  }
  return refs;
}

/** Checks contents, then reference counts (by deleting until gone). */
async function verify(store: NeedleStore, refs: Map<number, number>): Promise<void> {
  for (const [seed, n] of refs) {
    if (n === 0)
      await expect(store.get(keyOf(seed)), `seed ${seed}`).rejects.toMatchObject({ code: "not_found" });
    else expect(Buffer.compare(await store.get(keyOf(seed)), blob(seed)), `seed ${seed}`).toBe(0);
  }
  expect(store.stats().corruptNeedles).toBe(0);
  for (const [seed, n] of refs) {
    for (let i = 0; i < n; i++) {
      expect(await store.has(keyOf(seed)), `seed ${seed} reference ${i}`).toBe(true);
      expect(await store.delete(keyOf(seed))).toBe(true);
    }
    expect(await store.has(keyOf(seed)), `seed ${seed} after ${n} deletes`).toBe(false);
  }
}

describe("compaction", () => {
  it("reclaims garbage while puts and deletes go on, reporting progress", async () => {
    const dir = await prepare();
    let store!: NeedleStore;
    const events: CompactProgress[] = [];
    let worked = false;
    store = await openStore({
      dir,
      volumeSize: 16 * 1024,
      testing: {
        onCompactStep: async (step) => {
          if (step !== "copying" || worked) return;
          worked = true;
          for (let s = 0; s < 5; s++) await store.delete(keyOf(s));
          for (let s = 10; s < 15; s++) await store.delete(keyOf(s));
          for (let s = 15; s < 20; s++) await store.put(blob(s));
          for (let s = 100; s < 105; s++) await store.put(blob(s));
        },
      },
    });
    cleanups.push(() => store.close());
    const before = store.stats();
    const result = await store.compact({ threshold: 0.2, onProgress: (p) => events.push(p) });
    expect(result.volumes.length).toBeGreaterThan(0);
    expect(result.bytesReclaimed).toBeGreaterThan(0);
    expect(store.stats().garbageBytes).toBeLessThan(before.garbageBytes);
    expect(events.some((e) => e.phase === "copy")).toBe(true);
    const done = events.filter((e) => e.phase === "done");
    expect(done.length).toBe(result.volumes.length);
    for (const d of done) expect(d.bytesDone).toBe(d.bytesTotal);
    expect(readdirSync(dir).filter((n) => n.endsWith(".compact"))).toEqual([]);
    await verify(store, expectedRefs(true));
  });

  it("reopens to the same state after a compaction, and compacts an emptied store to nothing", async () => {
    const dir = await prepare();
    const store = await openStore({ dir, volumeSize: 16 * 1024 });
    await store.compact();
    await store.close();
    const again = await openStore({ dir, volumeSize: 16 * 1024 });
    cleanups.push(() => again.close());
    await verify(again, expectedRefs(false));
    await again.compact({ threshold: 0.01 });
    expect(again.stats()).toMatchObject({ needles: 0, liveBytes: 0 });
    expect(again.stats().volumes).toBeLessThanOrEqual(2);
  });

  it("stops cleanly when aborted or when the store closes, leaving the volume as it was", async () => {
    const dir = await prepare();
    const store = await openStore({ dir, volumeSize: 16 * 1024 });
    const abort = new AbortController();
    await expect(
      store.compact({ signal: abort.signal, onProgress: (p) => p.phase === "copy" && abort.abort() }),
    ).rejects.toMatchObject({ code: "aborted" });
    expect(readdirSync(dir).filter((n) => n.endsWith(".compact"))).toEqual([]);
    const running = store.compact().catch((e: unknown) => e);
    await store.close();
    await running;
    const again = await openStore({ dir, volumeSize: 16 * 1024 });
    cleanups.push(() => again.close());
    await verify(again, expectedRefs(false));
  });

  it("runs by itself when a delete takes a sealed volume past the threshold (autoCompact)", async () => {
    const dir = await prepare();
    const store = await openStore({ dir, volumeSize: 16 * 1024, autoCompact: true, compactThreshold: 0.5 });
    cleanups.push(() => store.close());
    const before = store.stats().garbageBytes;
    for (let s = 10; s < 20; s++) await store.delete(keyOf(s));
    for (let i = 0; i < 100 && store.stats().garbageBytes >= before; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(store.stats().garbageBytes).toBeLessThan(before);
    expect(store.lastCompactionError).toBeUndefined();
    for (let s = 0; s < 10; s++) expect(Buffer.compare(await store.get(keyOf(s)), blob(s))).toBe(0);
  });

  it("recovers a compaction killed at any step (real processes)", async () => {
    const steps: CompactStep[] = ["copying", "copied", "synced", "volume-swapped", "index-swapped", "done"];
    const runs = await Promise.all(
      steps.map(async (step) => {
        const dir = await prepare();
        const child = new Child("compactor", [dir, step]);
        cleanups.push(() => child.kill());
        await child.exited;
        return { step, dir, lines: child.lines };
      }),
    );
    for (const { step, dir, lines } of runs) {
      expect(lines, step).toContain("meanwhile done");
      expect(lines, step).toContain(`killed at ${step}`);
      const store = await openStore({ dir, volumeSize: 16 * 1024 });
      expect(
        readdirSync(dir).filter((n) => n.endsWith(".compact")),
        step,
      ).toEqual([]);
      await store.compact(); // and compaction works again from there
      await verify(store, expectedRefs(true));
      await store.close();
    }
  });
});
