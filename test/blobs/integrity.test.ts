// Issue 18: an acknowledged blob is never lost, not even to bit rot or a re-upload. The three defects found by
// probing (a re-upload defeated by dedup, bit rot in the last needle cut as a torn write, every warm shard
// directory gone read as not_found), the scrub passes that find and repair damage, and what stats() reports.
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type NeedleStore, openStore } from "../../src/blobs/index.js";
import { needleLength } from "../../src/blobs/volume/layout.js";
import { isNexusError } from "../../src/util/errors.js";
import { bytesOf, tempDir } from "./helpers.js";
import {
  type Layout,
  makeLayout,
  objectBytes,
  openLayout,
  removeLayout,
  sameBytes,
} from "./tiered-fixtures.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dirFor(): string {
  const { dir, cleanup } = tempDir("nexus-integrity-");
  cleanups.push(cleanup);
  return dir;
}

async function outcome(store: NeedleStore, key: string, expected: Uint8Array): Promise<string> {
  try {
    const got = await store.get(key);
    expect(Buffer.compare(got, expected), `wrong bytes served for ${key}`).toBe(0);
    return "ok";
  } catch (e) {
    if (isNexusError(e, "not_found") || isNexusError(e, "corrupt")) return e.code;
    throw e;
  }
}

/** Flips one byte of a file in place. */
function flip(path: string, at: number): void {
  const bytes = readFileSync(path);
  bytes[at]! ^= 0x5a;
  writeFileSync(path, bytes);
}

const FIRST = 64; // the first needle's offset (after the superblock)

describe("a re-upload repairs a corrupt stored copy (defect 1)", () => {
  it("put of the same bytes writes a fresh copy, refcounts stay right, and compaction keeps it", async () => {
    const dir = dirFor();
    const a = bytesOf(1, 1000);
    const b = bytesOf(2, 1000);
    let store = await openStore({ dir });
    const ka = (await store.put(a)).key;
    await store.put(a); // two references
    const kb = (await store.put(b)).key;
    await store.close();
    flip(join(dir, "000001.vol"), FIRST + 64 + 10); // a data byte of a, not the volume's last blob

    store = await openStore({ dir });
    expect(await outcome(store, ka, a)).toBe("corrupt");
    expect(await store.put(a)).toMatchObject({ key: ka, deduped: false });
    expect(await outcome(store, ka, a)).toBe("ok");
    expect(await outcome(store, kb, b)).toBe("ok");
    expect(store.corruptNeedles().some((n) => n.key === ka)).toBe(true);
    await store.compact({ threshold: 0 });
    expect(await outcome(store, ka, a)).toBe("ok");
    await store.close();

    // Three puts acknowledged: it takes three deletes, across a reopen, to remove it.
    store = await openStore({ dir });
    expect(await outcome(store, ka, a)).toBe("ok");
    expect(await store.delete(ka)).toBe(true);
    expect(await store.delete(ka)).toBe(true);
    expect(await outcome(store, ka, a)).toBe("ok");
    expect(await store.delete(ka)).toBe(true);
    expect(await outcome(store, ka, a)).toBe("not_found");
    expect(await outcome(store, kb, b)).toBe("ok");
    await store.close();
  });

  it("put of content whose stored copy is missing from disk writes a fresh copy", async () => {
    const dir = dirFor();
    const a = bytesOf(3, 500);
    const store = await openStore({ dir });
    const ka = (await store.put(a)).key;
    // The volume loses the needle under the open store (a disk returning short reads, an operator's truncate).
    writeFileSync(join(dir, "000001.vol"), readFileSync(join(dir, "000001.vol")).subarray(0, FIRST));
    expect(await outcome(store, ka, a)).toBe("corrupt");
    expect(await store.put(a)).toMatchObject({ deduped: false });
    expect(await outcome(store, ka, a)).toBe("ok");
    await store.close();
  });

  it("compact() never drops a corrupt needle that is still referenced: its volume is skipped", async () => {
    const dir = dirFor();
    const blobs = [bytesOf(4, 800), bytesOf(5, 800), bytesOf(6, 800)];
    let store = await openStore({ dir });
    const keys: string[] = [];
    for (const blob of blobs) keys.push((await store.put(blob)).key);
    await store.delete(keys[2]!); // garbage, so the volume is worth compacting
    await store.close();
    flip(join(dir, "000001.vol"), FIRST + 64 + 100);

    store = await openStore({ dir });
    const first = await store.compact({ threshold: 0 });
    expect(first).toMatchObject({ skipped: [1], corrupt: 1 });
    expect(first.volumes).not.toContain(1);
    expect(await outcome(store, keys[0]!, blobs[0]!)).toBe("corrupt"); // still known, never not_found
    expect(await outcome(store, keys[1]!, blobs[1]!)).toBe("ok");
    await store.put(blobs[0]!); // the repair
    const second = await store.compact({ threshold: 0 });
    expect(second.skipped).toEqual([]);
    expect(second.volumes).toContain(1);
    expect(await outcome(store, keys[0]!, blobs[0]!)).toBe("ok");
    expect(await outcome(store, keys[1]!, blobs[1]!)).toBe("ok");
    await store.close();
  });
});

describe("bit rot in the last needle is corruption, not a torn write (defect 2)", () => {
  for (const withIdx of [true, false]) {
    it(`is kept and reported, never cut (${withIdx ? "with" : "without"} the .idx)`, async () => {
      const dir = dirFor();
      const a = bytesOf(7, 1000);
      const b = bytesOf(8, 1000);
      let store = await openStore({ dir, fsync: "always" });
      const ka = (await store.put(a)).key;
      const kb = (await store.put(b)).key;
      await store.close();
      const vol = join(dir, "000001.vol");
      expect(statSync(vol).size).toBe(2208);
      const last = FIRST + needleLength(1000);
      flip(vol, last + 64 + 500);
      if (!withIdx) rmSync(join(dir, "000001.idx"));

      store = await openStore({ dir });
      expect(statSync(vol).size).toBe(2208); // nothing cut
      expect(store.corruptNeedles()).toEqual([expect.objectContaining({ volume: 1, offset: last, key: kb })]);
      expect(await outcome(store, kb, b)).toBe("corrupt");
      expect(await outcome(store, ka, a)).toBe("ok");
      expect(await store.put(b)).toMatchObject({ deduped: false });
      expect(await outcome(store, kb, b)).toBe("ok");
      await store.close();
      store = await openStore({ dir });
      expect(await outcome(store, kb, b)).toBe("ok");
      await store.close();
    });
  }

  it("a torn write (short record at the tail) is still cut", async () => {
    const dir = dirFor();
    let store = await openStore({ dir, fsync: "always" });
    await store.put(bytesOf(9, 1000));
    const kb = (await store.put(bytesOf(10, 1000))).key;
    await store.close();
    const vol = join(dir, "000001.vol");
    writeFileSync(vol, readFileSync(vol).subarray(0, 2208 - 100));
    store = await openStore({ dir });
    expect(statSync(vol).size).toBe(FIRST + needleLength(1000));
    expect(await outcome(store, kb, bytesOf(10, 1000))).toBe("not_found");
    expect(store.stats().corruptNeedles).toBe(0);
    await store.close();
  });
});

describe("the .idx log", () => {
  it("a flipped key byte in a sealed group is caught by its seal: the log is rescanned, nothing is lost", async () => {
    const dir = dirFor();
    let store = await openStore({ dir });
    const blobs = Array.from({ length: 300 }, (_, i) => bytesOf(900 + i, 20));
    const keys: string[] = [];
    for (const blob of blobs) keys.push((await store.put(blob)).key);
    await store.close();
    const idx = join(dir, "000001.idx");
    const pristine = readFileSync(idx);
    // Slots 0..255 form the first group, slot 256 seals it.
    expect(pristine.length).toBe(16 + 301 * 16);
    for (const slot of [0, 100, 255]) {
      for (let byte = 0; byte < 8; byte++) {
        const damaged = Buffer.from(pristine);
        damaged[16 + slot * 16 + byte]! ^= 0x10;
        writeFileSync(idx, damaged);
        store = await openStore({ dir });
        for (const i of [0, 100, 255, 299]) expect(await outcome(store, keys[i]!, blobs[i]!)).toBe("ok");
        expect(await outcome(store, keys[slot]!, blobs[slot]!), `slot ${slot} byte ${byte}`).toBe("ok");
        expect(store.stats().needles).toBe(300);
        await store.close();
        expect(readFileSync(idx).equals(pristine), "the log is rewritten as it was").toBe(true);
      }
    }
  });
});

describe("the tiered store never says not_found for an object it tracks (defect 3)", () => {
  const layouts: Layout[] = [];
  afterEach(async () => {
    for (const l of layouts.splice(0)) await removeLayout(l);
  });
  const layout = () => {
    const l = makeLayout();
    layouts.push(l);
    return l;
  };

  it("every warm directory gone: too_many_losses with 0 shards left (five gone: 9 left), and a re-put repairs", async () => {
    const l = layout();
    await using store = await openLayout(l);
    const bytes = objectBytes(40_000, 1);
    const { key } = await store.put(bytes);
    await store.moveTo(key, "warm");
    for (const i of [0, 1, 2, 3, 4]) await rm(l.warmDirs[i]!, { recursive: true, force: true });
    await expect(store.get(key)).rejects.toMatchObject({
      code: "too_many_losses",
      details: { shardsLeft: 9, shardsNeeded: 10 },
    });
    for (const dir of l.warmDirs) await rm(dir, { recursive: true, force: true });
    expect(store.tracked(key)?.tier).toBe("warm");
    await expect(store.get(key)).rejects.toMatchObject({
      code: "too_many_losses",
      details: { shardsLeft: 0, shardsNeeded: 10 },
    });
    await store.put(bytes);
    expect(sameBytes(await store.get(key), bytes)).toBe(true);
  });

  it("every shard corrupt: too_many_losses with 0 shards left", async () => {
    const l = layout();
    await using store = await openLayout(l);
    const { key } = await store.put(objectBytes(40_000, 2));
    await store.moveTo(key, "warm");
    for (let i = 0; i < 14; i++) {
      for (const dir of l.warmDirs) {
        const path = join(dir, key.slice(0, 2), `${key}.${i}`);
        if (existsSync(path)) flip(path, 100); // a data byte, past the 64-byte header
      }
    }
    await expect(store.get(key)).rejects.toMatchObject({
      code: "too_many_losses",
      details: { shardsLeft: 0 },
    });
  });

  it("a hot copy gone from the volume store is corrupt, not not_found", async () => {
    const l = layout();
    const bytes = objectBytes(5_000, 3);
    let key: string;
    {
      await using store = await openLayout(l);
      key = (await store.put(bytes)).key;
    }
    rmSync(join(l.hotDir, "000001.vol"));
    rmSync(join(l.hotDir, "000001.idx"));
    await using store = await openLayout(l);
    await expect(store.get(key)).rejects.toMatchObject({ code: "corrupt", details: { tier: "hot" } });
    await store.put(bytes);
    expect(sameBytes(await store.get(key), bytes)).toBe(true);
  });
});

describe("scrub", () => {
  it("NeedleStore.scrub reads every live needle, reports the corrupt ones with progress", async () => {
    const dir = dirFor();
    let store = await openStore({ dir });
    const blobs = Array.from({ length: 600 }, (_, i) => bytesOf(100 + i, 200 + i));
    const keys: string[] = [];
    for (const blob of blobs) keys.push((await store.put(blob)).key);
    await store.close();
    let offset = FIRST;
    for (let i = 0; i < 300; i++) offset += needleLength(blobs[i]!.length);
    flip(join(dir, "000001.vol"), offset + 64 + 3); // blob 300's data
    store = await openStore({ dir });
    const seen: { checked: number; total: number }[] = [];
    const result = await store.scrub({ onProgress: (p) => seen.push(p), verifyHash: true });
    expect(result).toMatchObject({ checked: 600, stopped: false });
    expect(result.corrupt).toEqual([
      expect.objectContaining({ volume: 1, offset, key: keys[300], reason: "data checksum mismatch" }),
    ]);
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.at(-1)).toMatchObject({ checked: 600, total: 600, corrupt: 1 });
    await store.put(blobs[300]!);
    expect((await store.scrub()).corrupt).toEqual([]);
    await store.close();
  });

  it("NeedleStore.scrub running beside a compaction and deletes reports nothing that is not damaged", async () => {
    const dir = dirFor();
    const store = await openStore({ dir, volumeSize: 64 * 1024 });
    const blobs = Array.from({ length: 800 }, (_, i) => bytesOf(3000 + i, 100 + (i % 200)));
    const keys: string[] = [];
    for (const blob of blobs) keys.push((await store.put(blob)).key);
    for (let i = 0; i < blobs.length; i += 2) await store.delete(keys[i]!);
    const stop = new AbortController();
    const [scrubbed] = await Promise.all([
      store.scrub(),
      store.compact({ threshold: 0 }),
      (async () => {
        for (let i = 1; i < 400; i += 4) await store.delete(keys[i]!);
      })(),
    ]);
    expect(scrubbed.corrupt).toEqual([]);
    expect(store.stats().corruptNeedles).toBe(0);
    for (let i = 3; i < blobs.length; i += 4) expect(await outcome(store, keys[i]!, blobs[i]!)).toBe("ok");
    stop.abort();
    expect(await store.scrub({ signal: stop.signal })).toMatchObject({ checked: 0, stopped: true });
    await store.close();
  });

  it("TieredStore.scrub re-encodes lost warm shards from the survivors and reports what it cannot save", async () => {
    const l = makeLayout();
    cleanups.push(() => removeLayout(l));
    await using store = await openLayout(l);
    const objects = Array.from({ length: 3 }, (_, i) => objectBytes(30_000 + i, 40 + i));
    const keys: string[] = [];
    for (const bytes of objects) {
      const { key } = await store.put(bytes);
      await store.moveTo(key, "warm");
      keys.push(key);
    }
    const hotOnly = objectBytes(1_000, 50);
    await store.put(hotOnly);
    for (const i of [2, 5, 9, 13]) await rm(l.warmDirs[i]!, { recursive: true, force: true });
    const progress: string[] = [];
    const result = await store.scrub({
      onProgress: (p) => progress.push(`${p.checked}/${p.total} ${p.outcome}`),
    });
    expect(result.checked).toBe(4);
    expect(result.lost).toEqual([]);
    expect(result.repaired.map((r) => r.key).sort()).toEqual([...keys].sort());
    for (const r of result.repaired) expect(r.shards).toHaveLength(4);
    expect(progress).toHaveLength(4);
    expect(progress.at(-1)).toMatch(/^4\/4 /);
    for (const [i, key] of keys.entries()) {
      expect(await store.warm.read(key)).toMatchObject({ missing: [], corrupt: [] });
      expect(sameBytes(await store.get(key), objects[i]!)).toBe(true);
    }
    // Past repair: five directories more are gone.
    for (const i of [0, 1, 3, 4, 6]) await rm(l.warmDirs[i]!, { recursive: true, force: true });
    const after = await store.scrub();
    expect(after.lost.map((x) => x.key).sort()).toEqual([...keys].sort());
    for (const lost of after.lost) expect(lost).toMatchObject({ tier: "warm", code: "too_many_losses" });
  });
});

describe("stats", () => {
  it("reports the index's fixed memory and the marginal cost per needle apart", async () => {
    const dir = dirFor();
    const store = await openStore({ dir });
    for (let i = 0; i < 50; i++) await store.put(bytesOf(500 + i, 100));
    const s = store.stats();
    expect(s.needles).toBe(50);
    expect(s.indexFixedBytes).toBeGreaterThan(0);
    expect(s.indexBytes).toBeGreaterThanOrEqual(s.indexFixedBytes);
    expect(s.bytesPerNeedle).toBeCloseTo(s.indexBytes / 50);
    expect(s.indexBytesPerNeedle).toBeCloseTo((s.indexBytes - s.indexFixedBytes) / 50);
    expect(s.indexBytesPerNeedle).toBeLessThan(s.bytesPerNeedle);
    await store.close();
  });
});
