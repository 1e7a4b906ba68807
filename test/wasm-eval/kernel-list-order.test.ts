/**
 * The order list objects returns its results in (assembly/evaluate/list-order.ts list_objects_order), against
 * Array.prototype.sort, at the kernel's own interface: texts interned in a fresh kernel, listings of symbol sets
 * given in rounds (new symbols merged among the ranked ones), each put in order in place. Sizes reach past the
 * radix sort's threshold, and the texts share long prefixes, end inside an 8-byte key (a padded key equal to a
 * longer text's), differ only past 8 bytes, and hold multi-byte characters around the UTF-8/UTF-16 disagreement;
 * the fresh block lists every new symbol in rank order; a new text above U+FFFF changes nothing.
 * Texts with NUL bytes too (never an object id, but the kernel must not order them wrongly).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ready } from "../../src/wasm/loader.js";
import { instantiateEvaluateKernel } from "../../src/wasm-eval/kernel.js";
import { warmKernelListing } from "../../src/wasm-eval/list-objects.js";
import { Symbols } from "../../src/wasm-eval/symbols.js";

/** A fresh kernel whose listings order the given texts' symbols. */
function orderer() {
  const kernel = instantiateEvaluateKernel();
  const symbols = new Symbols(kernel);
  const e = kernel.exports;
  return {
    symbols,
    /** Orders the texts' symbols as the kernel does: the texts in its order, and the fresh block's texts. */
    order(texts: readonly string[]): { ordered: string[]; fresh: string[] } | -1 {
      const list = texts.map((t) => symbols.intern(t, 1));
      const ptr = e.alloc(Math.max(4, list.length * 4)) >>> 0;
      try {
        kernel.views.u32.set(list, ptr >>> 2);
        const n = e.list_objects_order(symbols.internerPointer, ptr, list.length);
        if (n < 0) {
          // Nothing changed: the results are as given.
          expect(Array.from(kernel.views.u32.subarray(ptr >>> 2, (ptr >>> 2) + list.length))).toEqual(list);
          return -1;
        }
        const u32 = kernel.views.u32;
        const ordered = Array.from(u32.subarray(ptr >>> 2, (ptr >>> 2) + list.length), (s) =>
          symbols.text(s),
        );
        const at = e.list_objects_fresh() >>> 0;
        expect(u32[at >>> 2]).toBe(n);
        const fresh = Array.from(u32.subarray((at >>> 2) + 1, (at >>> 2) + 1 + n), (s) => symbols.text(s));
        return { ordered, fresh };
      } finally {
        e.free(ptr);
      }
    },
    dispose: () => symbols.dispose(),
  };
}

// Pieces whose joins share long prefixes, end inside or just past an 8-byte key, and hold 2- and 3-byte
// characters (U+E000-U+FFFF sort below astral ones in UTF-16 but above them in UTF-8). And NUL: object ids
// never hold it (validation refuses it), but the kernel orders any bytes, and a text ending inside a key then
// has the same padded key as a longer one holding NULs there.
const PIECES = [
  "a",
  "b",
  "ab",
  "abcdefgh",
  "abcdefghi",
  "0",
  "00000000",
  "9",
  "_",
  "/",
  "é",
  "中",
  "\uE000",
  "\uFFEE",
  "\u0000",
];
const idArb = fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 7 }).map((p) => p.join(""));

describe("list objects' order in the kernel = Array.prototype.sort", () => {
  it("listings in rounds, from a few texts to thousands, with shared prefixes and multi-byte characters", async () => {
    await ready();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("doc:", "document:folder/sub/", ""),
        fc.array(fc.uniqueArray(idArb, { minLength: 1, maxLength: 1500, size: "max" }), {
          minLength: 1,
          maxLength: 4,
        }),
        async (prefix, rounds) => {
          const o = orderer();
          try {
            const ranked = new Set<string>();
            for (const ids of rounds) {
              const texts = ids.map((id) => `${prefix}${id}`);
              const got = o.order(texts);
              expect(got).not.toBe(-1);
              const { ordered, fresh } = got as { ordered: string[]; fresh: string[] };
              expect(ordered).toEqual([...texts].sort());
              expect(fresh).toEqual(texts.filter((t) => !ranked.has(t)).sort());
              for (const t of texts) ranked.add(t);
            }
            // Every text ranked so far, listed at once: one order across the rounds.
            expect((o.order([...ranked]) as { ordered: string[] }).ordered).toEqual([...ranked].sort());
          } finally {
            o.dispose();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("numbered ids (the peer workload's shape) in large listings, and a few new ones among many ranked", async () => {
    await ready();
    const o = orderer();
    try {
      const name = (i: number) =>
        `file:${i % 10}_${Math.floor(i / 10) % 10}_${Math.floor(i / 100) % 10}_${i}`;
      const all = Array.from({ length: 30_000 }, (_, i) => name(i));
      const first = all.filter((_, i) => i % 3 !== 0).reverse();
      expect((o.order(first) as { ordered: string[] }).ordered).toEqual([...first].sort());
      for (const k of [0, 3, 29_997]) {
        // One new text among 20,000 ranked ones, and the listing it joins.
        const listing = [...first.slice(0, 100), all[k]!];
        const got = o.order(listing) as { ordered: string[]; fresh: string[] };
        expect(got.fresh).toEqual([all[k]]);
        expect(got.ordered).toEqual([...listing].sort());
      }
      expect((o.order(all) as { ordered: string[] }).ordered).toEqual([...all].sort());
    } finally {
      o.dispose();
    }
  });

  it("texts ending inside an 8-byte key among longer ones with the same padded key (NUL bytes)", async () => {
    await ready();
    // "p", "p\0", ... "p" + 7 NULs share the padded key of "p" + 8 NULs + anything: one run, which must be sorted
    // from where the texts differ, not from past the key.
    const texts = [
      ...Array.from({ length: 8 }, (_, k) => `doc:p${"\u0000".repeat(k)}`),
      ...Array.from({ length: 80 }, (_, k) => `doc:p${"\u0000".repeat(8)}${k % 3 === 0 ? "\u0000" : ""}${k}`),
      // The same again one key further on.
      ...Array.from({ length: 24 }, (_, k) => `doc:p${"\u0000".repeat(16)}${k}`),
    ];
    for (let seed = 1; seed <= 20; seed++) {
      const o = orderer();
      try {
        // A different arrival order each time (the quicksort's pivots are random too).
        const shuffled = texts
          .map((t, i) => [t, (i * 2654435761 + seed * 40503) % 4093] as const)
          .sort((a, b) => a[1] - b[1])
          .map(([t]) => t);
        expect((o.order(shuffled) as { ordered: string[] }).ordered).toEqual([...texts].sort());
      } finally {
        o.dispose();
      }
    }
  });

  it("texts sharing a 200 KB middle in two groups past the radix threshold, without running out of stack", async () => {
    // Review finding: the sort took a call per run per 8 shared bytes, and ids sharing ~32 KB overflowed the WASM
    // stack (the engine then listed on its slow path for good). The largest run now goes round a loop.
    await ready();
    const o = orderer();
    try {
      const texts: string[] = [];
      for (const group of ["A", "B"]) {
        const middle = group + "m".repeat(200_000);
        for (let i = 0; i < 70; i++) texts.push(middle + String(1000 + i));
      }
      const result = o.order([...texts].reverse());
      expect(result).not.toBe(-1);
      if (result === -1) return;
      expect(result.ordered).toEqual([...texts].sort());
    } finally {
      o.dispose();
    }
  });

  it("a new text above U+FFFF leaves the order to the caller and ranks nothing", async () => {
    await ready();
    const o = orderer();
    try {
      const texts = Array.from({ length: 200 }, (_, i) => `doc:${i}`);
      expect(o.order([...texts, "doc:\u{1F600}"])).toBe(-1);
      // Nothing was ranked by the refused call: all 200 are still new.
      expect((o.order(texts) as { fresh: string[] }).fresh).toHaveLength(200);
    } finally {
      o.dispose();
    }
  });

  it("the warm-up runs on an instance of its own: listings in another kernel before and after are unchanged", async () => {
    await ready();
    const o = orderer();
    try {
      const texts = Array.from({ length: 500 }, (_, i) => `doc:w:${(i * 7919) % 9973}_${i}`);
      const first = o.order(texts.slice(0, 250)) as { ordered: string[] };
      warmKernelListing();
      warmKernelListing();
      const second = o.order(texts) as { ordered: string[]; fresh: string[] };
      expect(first.ordered).toEqual(texts.slice(0, 250).sort());
      expect(second.ordered).toEqual([...texts].sort());
      expect(second.fresh).toEqual(texts.slice(250).sort());
    } finally {
      o.dispose();
    }
  });
});
