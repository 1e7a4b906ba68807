import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type IndexEntry,
  keyHalves,
  NeedleIndex,
  type NeedleLocation,
} from "../../src/blobs/volume/needle-index.js";
import { NexusError } from "../../src/util/errors.js";
import { ready } from "../../src/wasm/loader.js";
import { NeedleIndexTwin } from "../twins/needle.js";

beforeAll(() => ready());

type Op =
  | { kind: "set"; key: number; volume: number; off8: number; len8: number }
  | { kind: "remove"; key: number }
  | { kind: "get"; key: number }
  // A get() that misses, then set() of the same key: the kernel skips the second search (its miss memo).
  | { kind: "getThenSet"; key: number; volume: number; off8: number; len8: number }
  | { kind: "flush" };

// Keys from a small pool spread over the key space, with some sharing the top 16 bits (same directory bucket)
// and some sharing the low 48 bits (different buckets, same stored remainder).
function keyOf(n: number): [number, number] {
  const bucket = n % 7;
  const low = Math.imul(n >>> 3, 0x9e3779b1) >>> 0;
  const hi = ((bucket * 0x2471) << 16) | (n % 3 === 0 ? 0x1234 : (n * 31) & 0xffff);
  return [low, hi >>> 0];
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("set" as const),
      key: fc.nat(300),
      volume: fc.integer({ min: 1, max: 16383 }),
      off8: fc.nat(2 ** 32 - 1),
      len8: fc.integer({ min: 1, max: 2 ** 20 }),
    }),
    weight: 5,
  },
  { arbitrary: fc.record({ kind: fc.constant("remove" as const), key: fc.nat(300) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("get" as const), key: fc.nat(300) }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant("getThenSet" as const),
      key: fc.nat(300),
      volume: fc.integer({ min: 1, max: 16383 }),
      off8: fc.nat(2 ** 32 - 1),
      len8: fc.integer({ min: 1, max: 2 ** 20 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.constant({ kind: "flush" as const }), weight: 1 },
);

/** Entries as [lo, hi, volume, offset/8, length/8, ...], in iteration order. */
function flatEntries(entries: Iterable<IndexEntry>): Float64Array {
  const out: number[] = [];
  for (const e of entries) out.push(e.lo, e.hi, e.volume, e.offset / 8, e.length / 8);
  return Float64Array.from(out);
}

function sameArrays(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

describe("needle index kernel against its twin", () => {
  it("agrees on every operation, across merges", () => {
    // threshold 0: merges when L0 is full (by capacity), the default.
    const thresholdArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 64 }));
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400 }), thresholdArb, (ops, threshold) => {
        const index = NeedleIndex.createSync();
        index.setMergeThreshold(threshold);
        const twin = new NeedleIndexTwin();
        for (const op of ops) {
          if (op.kind === "flush") {
            index.flush();
            continue;
          }
          const [lo, hi] = keyOf(op.key);
          if (op.kind === "getThenSet") {
            expect(index.get(lo, hi)).toEqual(twin.get(lo, hi));
            const loc = { volume: op.volume, offset: op.off8 * 8, length: op.len8 * 8 };
            expect(index.set(lo, hi, loc)).toBe(twin.set(lo, hi, loc));
          } else if (op.kind === "set") {
            const loc = { volume: op.volume, offset: op.off8 * 8, length: op.len8 * 8 };
            expect(index.set(lo, hi, loc)).toBe(twin.set(lo, hi, loc));
          } else if (op.kind === "remove") {
            expect(index.remove(lo, hi)).toBe(twin.remove(lo, hi));
          } else {
            expect(index.get(lo, hi)).toEqual(twin.get(lo, hi));
          }
          expect(index.size).toBe(twin.size);
        }
        expect([...index.entries()]).toEqual(twin.entries());
        // Batched lookups agree with single ones.
        const keys = new Uint32Array(600);
        for (let n = 0; n < 300; n++) [keys[2 * n], keys[2 * n + 1]] = keyOf(n);
        const out = new Uint32Array(600);
        const found = index.lookupMany(keys, out);
        let expected = 0;
        for (let n = 0; n < 300; n++) {
          const loc = twin.get(keys[2 * n]!, keys[2 * n + 1]!);
          if (loc) {
            expected++;
            expect(out[2 * n]).toBe(loc.offset / 8);
            expect(out[2 * n + 1]! >>> 18).toBe(loc.volume);
          } else expect(out[2 * n + 1]).toBe(0);
        }
        expect(found).toBe(expected);
        index.close();
      }),
      { numRuns: 150 },
    );
  });

  it("builds the same index with its growing L0 as with a small fixed one, across long streams with duplicates and removals", () => {
    // What opening a store does: get() then set() of each logged needle, in log order, with re-puts and deletes.
    // `grown` merges when its L0 is full (L0 grows with the base: few merges, runs copied whole); `small` merges
    // every 4,000 inserts (the old fixed L0). Both must equal the twin.
    const seedArb = fc.integer({ min: 1, max: 2 ** 31 - 1 });
    fc.assert(
      fc.property(seedArb, (seed0) => {
        let seed = seed0;
        const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
        const poolSize = 520_000;
        const pool = new Uint32Array(2 * poolSize);
        for (let i = 0; i < pool.length; i++) pool[i] = rnd();
        // Some keys share their top bits (one directory bucket) or their low 48 bits.
        for (let i = 0; i < 2000; i++) {
          pool[2 * i + 1] = (pool[2 * i + 1]! & 0xffff) | 0x7a7a0000;
          pool[2 * (i + 2000)] = pool[2 * i]!;
          pool[2 * (i + 2000) + 1] = (pool[2 * i + 1]! & 0xffff) | ((pool[2 * (i + 2000) + 1]! >>> 16) << 16);
        }
        const grown = NeedleIndex.createSync();
        const small = NeedleIndex.createSync();
        small.setMergeThreshold(4000);
        const twin = new NeedleIndexTwin();
        let mismatches = 0; // counted, not expect()ed per operation: 600,000 expect calls would take seconds
        const agree = (a: unknown, b: unknown) => {
          if (a !== b) mismatches++;
        };
        const sameLoc = (a: NeedleLocation | undefined, b: NeedleLocation | undefined) => {
          if (a?.volume !== b?.volume || a?.offset !== b?.offset || a?.length !== b?.length) mismatches++;
        };
        for (let n = 0; n < poolSize; n++) {
          // Mostly a fresh key; else a re-put of an early key or of any key seen so far.
          const r = rnd();
          const pick = r % 10;
          const i = pick < 7 ? n : pick < 9 ? rnd() % Math.max(1, n >>> 2) : rnd() % (n + 1);
          const lo = pool[2 * i]!;
          const hi = pool[2 * i + 1]!;
          if (r % 23 === 0) {
            const gone = twin.remove(lo, hi);
            agree(grown.remove(lo, hi), gone);
            agree(small.remove(lo, hi), gone);
            continue;
          }
          const loc = { volume: 1 + (r % 9000), offset: (n % 2 ** 20) * 8, length: 8 * (1 + (r >>> 20)) };
          const was = twin.get(lo, hi);
          sameLoc(grown.get(lo, hi), was);
          if (r % 5 === 0) sameLoc(small.get(lo, hi), was);
          const isNew = twin.set(lo, hi, loc);
          agree(grown.set(lo, hi, loc), isNew);
          agree(small.set(lo, hi, loc), isNew);
        }
        expect(mismatches).toBe(0);
        expect(grown.pendingSlots).toBeGreaterThan(8192); // L0 grew with the base at least once
        expect(grown.size).toBe(twin.size);
        expect(small.size).toBe(twin.size);
        // Batched lookups over the whole pool, before and after the last merge.
        const outGrown = new Uint32Array(pool.length);
        const outSmall = new Uint32Array(pool.length);
        const found = grown.lookupMany(pool, outGrown);
        expect(small.lookupMany(pool, outSmall)).toBe(found);
        expect(sameArrays(outGrown, outSmall)).toBe(true);
        // Compared as flat arrays: toEqual over 400,000 objects takes vitest many seconds.
        const expected = flatEntries(twin.entries());
        expect(sameArrays(flatEntries(grown.entries()), expected)).toBe(true);
        expect(sameArrays(flatEntries(small.entries()), expected)).toBe(true);
        expect(grown.lookupMany(pool, outGrown)).toBe(found);
        expect(sameArrays(outGrown, outSmall)).toBe(true);
        grown.close();
        small.close();
      }),
      { numRuns: 1 }, // one long stream (≈3 s): the small cases above cover the rest
    );
  });

  it("holds 200,000 random keys under 16 bytes an entry beyond its fixed pages, and finds every one", () => {
    const index = NeedleIndex.createSync();
    const twin = new Map<string, number>();
    const hash = new Uint8Array(8);
    const n = 200_000;
    const keys = new Uint32Array(2 * n);
    let seed = 12345;
    for (let i = 0; i < n; i++) {
      for (let b = 0; b < 8; b++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        hash[b] = seed >>> 24;
      }
      const [lo, hi] = keyHalves(hash);
      keys[2 * i] = lo;
      keys[2 * i + 1] = hi;
      index.set(lo, hi, { volume: 1 + (i % 100), offset: i * 8, length: 4096 + 72 });
      twin.set(`${lo}:${hi}`, i);
    }
    expect(index.size).toBe(twin.size);
    const out = new Uint32Array(2 * n);
    expect(index.lookupMany(keys, out)).toBe(n);
    for (let i = 0; i < n; i += 997) expect(index.get(keys[2 * i]!, keys[2 * i + 1]!)?.offset).toBe(i * 8);
    index.flush();
    expect(index.memoryBytes / n).toBeLessThan(20); // fixed pages (≈640 KiB) weigh 3 B here; ≈15 at 1M
    for (let i = 0; i < n; i += 2) index.remove(keys[2 * i]!, keys[2 * i + 1]!);
    expect(index.size).toBe(n / 2);
    expect(index.get(keys[0]!, keys[1]!)).toBeUndefined();
    expect(index.get(keys[2]!, keys[3]!)?.offset).toBe(8);
    index.close();
  });

  it("keeps its L0 table consistent through removals inside probe clusters", () => {
    const index = NeedleIndex.createSync();
    index.setMergeThreshold(4096); // everything stays in L0: load 0.45, long clusters
    const twin = new NeedleIndexTwin();
    let seed = 99;
    const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
    const keys: [number, number][] = Array.from({ length: 3700 }, () => [rnd(), rnd()]);
    for (const [i, [lo, hi]] of keys.entries()) {
      const loc = { volume: 1 + (i % 9), offset: i * 8, length: 80 };
      expect(index.set(lo, hi, loc)).toBe(twin.set(lo, hi, loc));
    }
    for (let round = 0; round < 3; round++) {
      for (const [i, [lo, hi]] of keys.entries()) {
        if ((i + round) % 3 === 0) expect(index.remove(lo, hi)).toBe(twin.remove(lo, hi));
      }
      for (const [lo, hi] of keys) expect(index.get(lo, hi)).toEqual(twin.get(lo, hi));
      for (const [i, [lo, hi]] of keys.entries()) {
        if ((i + round) % 5 === 0) index.set(lo, hi, { volume: 2, offset: 8 * round, length: 88 });
        if ((i + round) % 5 === 0) twin.set(lo, hi, { volume: 2, offset: 8 * round, length: 88 });
      }
      expect(index.size).toBe(twin.size);
    }
    expect([...index.entries()]).toEqual(twin.entries());
    index.close();
  });

  it("keeps lengths of 2 MiB and more beside the kernel", () => {
    const index = NeedleIndex.createSync();
    index.set(1, 2, { volume: 3, offset: 64, length: 3 * 2 ** 30 });
    expect(index.get(1, 2)).toEqual({ volume: 3, offset: 64, length: 3 * 2 ** 30 });
    index.set(1, 2, { volume: 3, offset: 64, length: 128 });
    expect(index.get(1, 2)).toEqual({ volume: 3, offset: 64, length: 128 });
    expect(() => index.set(1, 2, { volume: 0, offset: 0, length: 8 })).toThrowError(NexusError);
    expect(() => index.set(1, 2, { volume: 1, offset: 3, length: 8 })).toThrowError(NexusError);
    index.close();
  });
});
