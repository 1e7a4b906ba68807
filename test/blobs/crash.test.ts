// Crash safety on real files and real processes: a writer killed mid-append, a volume cut at every byte of its
// last needle, flipped bits in headers and data, a deleted or shortened .idx. Every acknowledged write must
// survive; nothing corrupt may ever be returned.
import { copyFileSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type FsyncPolicy, type NeedleStore, openStore } from "../../src/blobs/index.js";
import { needleLength } from "../../src/blobs/volume/layout.js";
import { createChecksums } from "../../src/io/checksum.js";
import { isNexusError, type NexusError } from "../../src/util/errors.js";
import { Child } from "./child.js";
import { bytesOf, tempDir } from "./helpers.js";

const crc32cOf = (await createChecksums()).crc32c;
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dirFor() {
  const { dir, cleanup } = tempDir("nexus-crash-");
  cleanups.push(cleanup);
  return dir;
}

/** get() must give the exact bytes, or a typed not_found / corrupt: never other bytes. */
async function readOutcome(store: NeedleStore, key: string, expected: Uint8Array): Promise<"ok" | string> {
  try {
    const got = await store.get(key);
    expect(Buffer.compare(got, expected), `wrong bytes served for ${key}`).toBe(0);
    return "ok";
  } catch (e) {
    if (isNexusError(e, "not_found") || isNexusError(e, "corrupt")) return (e as NexusError).code;
    throw e;
  }
}

describe("a writer process killed mid-append", () => {
  it.each<FsyncPolicy>(["always", "batch", "never"])(
    "keeps every acknowledged put and delete (fsync %s)",
    async (fsync) => {
      const dir = dirFor();
      const child = new Child("writer", [dir, fsync]);
      cleanups.push(() => child.kill());
      await child.waitFor((l) => l === "ready");
      // A second writer is refused while the first is alive.
      await expect(openStore({ dir })).rejects.toMatchObject({ code: "locked" });
      const target = 60 + Math.floor(Math.random() * 120);
      await child.waitFor(() => child.lines.filter((l) => l.startsWith("put ")).length >= target);
      await child.kill(); // SIGKILL: puts still in flight are cut wherever they are

      const puts = new Map<string, { seed: number; size: number }>();
      const deleting = new Set<string>();
      const deleted = new Set<string>();
      for (const line of child.lines) {
        const [what, a, b, c] = line.split(" ");
        if (what === "put") puts.set(c!, { seed: Number(a), size: Number(b) });
        if (what === "deleting") deleting.add(a!);
        if (what === "deleted") deleted.add(a!);
      }
      const store = await openStore({ dir }); // takes over the dead writer's lock
      cleanups.push(() => store.close());
      for (const [key, { seed, size }] of puts) {
        const outcome = await readOutcome(store, key, bytesOf(seed, size));
        if (deleted.has(key)) expect(outcome, `deleted ${key}`).toBe("not_found");
        else if (!deleting.has(key)) expect(outcome, `acknowledged ${key}`).toBe("ok");
        else expect(outcome).not.toBe("corrupt");
      }
      expect(store.stats().corruptNeedles).toBe(0);
      // The store goes on working where the writer stopped.
      const more = await store.put(bytesOf(99_999, 1234));
      expect(await store.get(more.key)).toEqual(bytesOf(99_999, 1234));
    },
  );

  it("lets the next writer in once the holder of the lock is gone", async () => {
    const dir = dirFor();
    const holder = new Child("holder", [dir]);
    cleanups.push(() => holder.kill());
    await holder.waitFor((l) => l.startsWith("ready"));
    const e = await openStore({ dir }).catch((x: NexusError) => x);
    expect(e).toMatchObject({ code: "locked" });
    expect((e as NexusError).message).toContain(String(holder.process.pid));
    await holder.kill();
    const store = await openStore({ dir });
    await store.close();
  });
});

/** A closed store with `n` blobs in one volume; returns the paths and the blobs. */
async function closedStore(n: number, size: (i: number) => number) {
  const dir = dirFor();
  const store = await openStore({ dir, fsync: "never" });
  const blobs = Array.from({ length: n }, (_, i) => bytesOf(1000 + i, size(i)));
  const keys: string[] = [];
  for (const b of blobs) keys.push((await store.put(b)).key);
  await store.close();
  const vol = join(dir, "000001.vol");
  const idx = join(dir, "000001.idx");
  const pristine = { vol: readFileSync(vol), idx: readFileSync(idx) };
  const restore = () => {
    writeFileSync(vol, pristine.vol);
    writeFileSync(idx, pristine.idx);
  };
  return { dir, vol, idx, blobs, keys, pristine, restore };
}

describe("a torn tail", () => {
  it("is cut at every byte of the last needle, with or without the .idx, and nothing else is lost", async () => {
    const s = await closedStore(4, (i) => 40 + i * 30);
    const lastLength = needleLength(s.blobs[3]!.length);
    const start = s.pristine.vol.length - lastLength;
    for (let cut = start; cut < s.pristine.vol.length; cut++) {
      s.restore();
      truncateSync(s.vol, cut);
      if (cut % 3 === 0) rmSync(s.idx);
      const store = await openStore({ dir: s.dir });
      for (let i = 0; i < 3; i++) expect(await readOutcome(store, s.keys[i]!, s.blobs[i]!)).toBe("ok");
      expect(await readOutcome(store, s.keys[3]!, s.blobs[3]!)).toBe("not_found");
      expect(store.stats()).toMatchObject({ needles: 3, corruptNeedles: 0, garbageBytes: 0 });
      await store.close();
      expect(statSync(s.vol).size).toBe(start); // the torn needle is gone from the file
    }
  });
});

describe("flipped bits", () => {
  it("in any byte of a needle are never served, and cost no other needle", async () => {
    const s = await closedStore(3, () => 150);
    const length = needleLength(150);
    const start = 64 + length; // the middle needle
    // Every header, checksum and padding byte; every 7th data byte.
    const positions = [];
    for (let p = start; p < start + length; p++)
      if (p < start + 64 || p >= start + 64 + 150 || p % 7 === 0) positions.push(p);
    for (const p of positions) {
      for (const withIdx of [true, false]) {
        s.restore();
        const vol = Buffer.from(s.pristine.vol);
        vol[p]! ^= 1 << (p % 8);
        writeFileSync(s.vol, vol);
        if (!withIdx) rmSync(s.idx);
        const store = await openStore({ dir: s.dir });
        expect(await readOutcome(store, s.keys[0]!, s.blobs[0]!)).toBe("ok");
        expect(await readOutcome(store, s.keys[2]!, s.blobs[2]!)).toBe("ok");
        const middle = await readOutcome(store, s.keys[1]!, s.blobs[1]!);
        const inPadding = p >= start + 64 + 150 + 4;
        if (inPadding) expect(middle).toBe("ok");
        else {
          expect(middle).not.toBe("ok");
          expect(store.stats().corruptNeedles).toBeGreaterThan(0);
          expect(store.corruptNeedles()[0]).toMatchObject({ volume: 1, offset: start });
        }
        await store.close();
      }
    }
  });

  it("in a superblock are reported and repaired: the superblock is rewritten, every needle is still served", async () => {
    const s = await closedStore(3, () => 10);
    for (const p of [0, 7, 8, 20, 40, 61]) {
      s.restore();
      const vol = Buffer.from(s.pristine.vol);
      vol[p]! ^= 4;
      writeFileSync(s.vol, vol);
      const store = await openStore({ dir: s.dir });
      for (let i = 0; i < 3; i++)
        expect(await readOutcome(store, s.keys[i]!, s.blobs[i]!), `byte ${p}`).toBe("ok");
      expect(store.corruptNeedles()[0]).toMatchObject({ volume: 1, offset: 0 });
      await store.close();
      const again = await openStore({ dir: s.dir }); // repaired for good: nothing to report now
      expect(again.stats().corruptNeedles).toBe(0);
      await again.close();
    }
  });

  it("a valid superblock of an unknown format version refuses to open (corrupt), naming the volume", async () => {
    const s = await closedStore(1, () => 10);
    const vol = Buffer.from(s.pristine.vol);
    vol.writeUInt16LE(9, 8);
    vol.writeUInt32LE(crc32cOf(vol.subarray(0, 60)), 60);
    writeFileSync(s.vol, vol);
    await expect(openStore({ dir: s.dir })).rejects.toMatchObject({ code: "corrupt" });
    s.restore();
    await (await openStore({ dir: s.dir })).close(); // and the lock was released
  });
});

describe("a damaged .idx", () => {
  it("deleted, shortened at every byte, or pointing astray: the volume restores it", async () => {
    const dir = dirFor();
    const store = await openStore({ dir, fsync: "never" });
    const blobs = Array.from({ length: 6 }, (_, i) => bytesOf(i, 100 + i * 50));
    const keys: string[] = [];
    for (const b of blobs) keys.push((await store.put(b)).key);
    await store.put(blobs[2]!); // two references
    await store.delete(keys[2]!); // one left
    await store.delete(keys[4]!); // gone
    await store.close();
    const idx = join(dir, "000001.idx");
    const pristine = readFileSync(idx);
    const variants: { name: string; apply: () => void }[] = [{ name: "deleted", apply: () => rmSync(idx) }];
    for (let len = 0; len < pristine.length; len++) {
      variants.push({ name: `cut at ${len}`, apply: () => writeFileSync(idx, pristine.subarray(0, len)) });
    }
    variants.push({
      name: "offset flipped",
      apply: () => {
        const b = Buffer.from(pristine);
        b[16 + 2 * 16 + 8]! ^= 2;
        writeFileSync(idx, b);
      },
    });
    for (const v of variants) {
      v.apply();
      const again = await openStore({ dir });
      for (let i = 0; i < 6; i++) {
        expect(await readOutcome(again, keys[i]!, blobs[i]!), `${v.name}: blob ${i}`).toBe(
          i === 4 ? "not_found" : "ok",
        );
      }
      expect(again.stats().needles, v.name).toBe(5);
      await again.close();
      // The rebuilt log is complete: reopening with it alone gives the same.
      copyFileSync(idx, `${idx}.check`);
      expect(readFileSync(idx).length).toBe(pristine.length);
      rmSync(`${idx}.check`);
      writeFileSync(idx, pristine);
    }
    // The reference count survived every rebuild: blob 2 has exactly one reference left.
    const last = await openStore({ dir });
    rmSync(idx);
    await last.delete(keys[2]!);
    expect(await last.has(keys[2]!)).toBe(false);
    await last.close();
  });
});
