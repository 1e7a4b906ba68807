import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { NexusError } from "../../src/errors.js";
import { keyHalves, NeedleIndex } from "../../src/storage/needle-index.js";
import { ready } from "../../src/wasm/loader.js";
import { NeedleIndexTwin } from "../twins/needle.js";

beforeAll(() => ready());

type Op =
  | { kind: "set"; key: number; volume: number; off8: number; len8: number }
  | { kind: "remove"; key: number }
  | { kind: "get"; key: number }
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
  { arbitrary: fc.constant({ kind: "flush" as const }), weight: 1 },
);

describe("needle index kernel against its twin", () => {
  it("agrees on every operation, across merges", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400 }), fc.integer({ min: 1, max: 64 }), (ops, threshold) => {
        const index = NeedleIndex.createSync();
        index.setMergeThreshold(threshold);
        const twin = new NeedleIndexTwin();
        for (const op of ops) {
          if (op.kind === "flush") {
            index.flush();
            continue;
          }
          const [lo, hi] = keyOf(op.key);
          if (op.kind === "set") {
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
