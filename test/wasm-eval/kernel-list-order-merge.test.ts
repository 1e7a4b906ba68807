/**
 * The order's merge (assembly/evaluate/list-order.ts merge: galloping on both sides) and its handling of runs of
 * equal 8-byte keys holding texts that end inside them, against Array.prototype.sort: listings whose new texts fall
 * among the ranked ones in blocks of every length (one by one, in long runs, before all and after all), over ids of
 * a few widths that share prefixes, end inside a key, and hold NUL bytes (the padding's value).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ready } from "../../src/wasm/loader.js";
import { instantiateEvaluateKernel } from "../../src/wasm-eval/kernel.js";
import { Symbols } from "../../src/wasm-eval/symbols.js";

function orderer(litter?: (kernel: ReturnType<typeof instantiateEvaluateKernel>) => void) {
  const kernel = instantiateEvaluateKernel();
  litter?.(kernel);
  const symbols = new Symbols(kernel);
  const e = kernel.exports;
  return {
    /** The texts' symbols in the kernel's order, and the fresh block's texts. */
    order(texts: readonly string[]): { ordered: string[]; fresh: string[] } {
      const list = texts.map((t) => symbols.intern(t, 1));
      const ptr = e.alloc(Math.max(4, list.length * 4)) >>> 0;
      try {
        kernel.views.u32.set(list, ptr >>> 2);
        const n = e.list_objects_order(symbols.internerPointer, ptr, list.length);
        expect(n).toBeGreaterThanOrEqual(0);
        const u32 = kernel.views.u32;
        const ordered = Array.from(u32.subarray(ptr >>> 2, (ptr >>> 2) + list.length), (s) =>
          symbols.text(s),
        );
        const at = e.list_objects_fresh() >>> 0;
        const fresh = Array.from(u32.subarray((at >>> 2) + 1, (at >>> 2) + 1 + n), (s) => symbols.text(s));
        return { ordered, fresh };
      } finally {
        e.free(ptr);
      }
    },
    dispose: () => symbols.dispose(),
  };
}

describe("list objects' order: the merge and runs of equal keys", () => {
  it("new texts among ranked ones in blocks of any length, in rounds", async () => {
    await ready();
    await fc.assert(
      fc.asyncProperty(
        // A pool of sorted distinct ids; each round lists a random subset (blocks of the pool, so new ones arrive
        // in runs of random lengths between ranked ones).
        fc.uniqueArray(
          fc.tuple(
            fc.constantFrom("", "a", "ab_", "abcdefg", "abcdefgh", "abcdefgh_1", "\u0000", "é"),
            fc.nat(3000),
            fc.constantFrom("", "\u0000", "x", "_9"),
          ),
          { minLength: 1, maxLength: 2500, size: "max", selector: ([a, b, c]) => `${a}${b}${c}` },
        ),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 400 })), { minLength: 1, maxLength: 6 }),
        async (parts, rounds) => {
          const pool = parts.map(([a, b, c]) => `doc:${a}${b}${c}`);
          const o = orderer();
          try {
            const ranked = new Set<string>();
            for (const [seed, block] of rounds) {
              // Every other block of `block` texts, from an offset: runs of new and of skipped texts.
              const offset = seed % pool.length;
              const texts = pool.filter((_, i) => Math.floor((i + offset) / block) % 2 === 0);
              // In an order of their own (the walk's order is not the text order).
              const given = texts.map((t, i) => [t, (i * 2654435761 + seed) % 65521] as const);
              given.sort((x, y) => x[1] - y[1]);
              const { ordered, fresh } = o.order(given.map(([t]) => t));
              expect(ordered).toEqual([...texts].sort());
              expect(fresh).toEqual(texts.filter((t) => !ranked.has(t)).sort());
              for (const t of texts) ranked.add(t);
            }
            expect(o.order([...ranked]).ordered).toEqual([...ranked].sort());
          } finally {
            o.dispose();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("a run of equal padded keys holding texts of every length inside the key", async () => {
    await ready();
    // "k", "k\0", ..., "k" + 7 NULs all have the padded key of "k" + 8 NULs + more: the short ones go first, by
    // length, and the long ones sort on from the next 8 bytes (more than the radix sort's threshold of them).
    const short = Array.from({ length: 8 }, (_, n) => `id:k${"\u0000".repeat(n)}`);
    const long = Array.from(
      { length: 300 },
      (_, i) => `id:k${"\u0000".repeat(7)}${i % 7 === 0 ? "\u0000" : ""}${i}`,
    );
    const o = orderer();
    try {
      const texts = [...long.slice(150), ...short.reverse(), ...long.slice(0, 150)];
      expect(o.order(texts).ordered).toEqual([...texts].sort());
    } finally {
      o.dispose();
    }
  });

  it("the rank table is never cleared: freed memory holding rank-like words ranks nothing, across its growth", async () => {
    await ready();
    // Before the order's first call, a large block filled with small words (each would read as a rank, and the
    // ranked arrays as symbols 1..7) is freed, so the rank table and the ranked symbols are laid over it. A rank
    // counts only where the order holds that symbol at that rank: every listing must still find all its new texts.
    const o = orderer((kernel) => {
      const bytes = 1 << 22;
      const at = kernel.exports.alloc(bytes) >>> 0;
      const u32 = kernel.views.u32;
      for (let i = 0; i < bytes >>> 2; i++) u32[(at >>> 2) + i] = (i % 7) + 1;
      kernel.exports.free(at);
    });
    try {
      const ranked = new Set<string>();
      // Rounds past 1,024, 2,048 and 4,096 symbols: the capacity grows and the rank table is rebuilt from the order.
      for (const [from, to] of [
        [0, 600],
        [300, 1500],
        [1400, 3000],
        [0, 5000],
      ] as const) {
        const texts = Array.from(
          { length: to - from },
          (_, i) => `doc:${((from + i) * 7919) % 5003}_${from + i}`,
        );
        const { ordered, fresh } = o.order([...texts].reverse());
        expect(ordered).toEqual([...texts].sort());
        expect(fresh).toEqual(texts.filter((t) => !ranked.has(t)).sort());
        for (const t of texts) ranked.add(t);
      }
    } finally {
      o.dispose();
    }
  });

  it("few texts (the insertion sort): equal padded keys told apart by their texts, in every arrival order", async () => {
    await ready();
    const texts = [
      "id:p",
      "id:p\u0000",
      "id:p\u0000\u0000\u0000",
      `id:p${"\u0000".repeat(8)}`,
      `id:p${"\u0000".repeat(8)}a`,
      `id:p${"\u0000".repeat(7)}b`,
      "id:pa",
      "id:p\u0000a",
      "id:q",
    ];
    for (let seed = 1; seed <= 30; seed++) {
      const o = orderer();
      try {
        const given = texts
          .map((t, i) => [t, (i * 2654435761 + seed * 40503) % 4093] as const)
          .sort((a, b) => a[1] - b[1])
          .map(([t]) => t);
        expect(o.order(given).ordered).toEqual([...texts].sort());
      } finally {
        o.dispose();
      }
    }
  });
});
