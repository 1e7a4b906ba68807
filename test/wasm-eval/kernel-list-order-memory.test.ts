/**
 * What the order list objects returns its results in (assembly/evaluate/list-order.ts) reserves in the kernel's
 * memory: the rank table is indexed by symbol (4 B a symbol up to the highest listed), but the ranked symbols and
 * the new symbols of a listing are sized by how many symbols are held, not by the highest one. Review finding: all
 * three shared one capacity of every symbol up to the highest listed, so a listing of five objects whose symbols
 * happened to be high (~200k here, ~1.1M in a large store) reserved 12 B a symbol, most of it never touched, and
 * under a memory cap (workerd's 128 MB) made memory.grow fail sooner. Also: results given twice (list_objects
 * never returns them so; a precondition) are refused, not ordered wrongly or sorted forever.
 * Measured by the kernel's own count (list_objects_memory_bytes), not by the memory's size: the heap grows memory
 * by doubling it and had room from the interner's freed blocks, so the size did not change here before or after.
 */
import { describe, expect, it } from "vitest";
import { evaluateAbi } from "../../src/kernels/abi/evaluate.js";
import { ready } from "../../src/wasm/loader.js";
import { instantiateEvaluateKernel } from "../../src/wasm-eval/kernel.js";
import { Symbols } from "../../src/wasm-eval/symbols.js";

const { LIST_ORDER_REPEATED } = evaluateAbi.constants;

/** Symbols interned before any listing (texts numbered so that text order is not symbol order). */
const SYMBOLS = 200_000;
const text = (i: number) => `doc:${(i * 7919) % 10_007}_${i}`;

function kernelWithSymbols() {
  const kernel = instantiateEvaluateKernel();
  const symbols = new Symbols(kernel);
  const texts = Array.from({ length: SYMBOLS }, (_, i) => text(i));
  const out = symbols.internMany(texts, new Uint32Array(SYMBOLS), new Uint32Array(SYMBOLS));
  expect(out[SYMBOLS - 1]).toBe(SYMBOLS - 1);
  const e = kernel.exports;
  /** Orders the symbols as list_objects_order does: its answer and the symbols as left in place. */
  const order = (list: readonly number[]): { n: number; ordered: number[] } => {
    const ptr = e.alloc(Math.max(4, list.length * 4)) >>> 0;
    try {
      kernel.views.u32.set(list, ptr >>> 2);
      const n = e.list_objects_order(symbols.internerPointer, ptr, list.length);
      return { n, ordered: Array.from(kernel.views.u32.subarray(ptr >>> 2, (ptr >>> 2) + list.length)) };
    } finally {
      e.free(ptr);
    }
  };
  const sorted = (list: readonly number[]) => [...list].sort((a, b) => (text(a) < text(b) ? -1 : 1));
  return { kernel, symbols, order, sorted };
}

describe("list objects' order: memory reserved", () => {
  it("a listing of a few objects with the highest symbols reserves about 4 B a symbol, not 12", async () => {
    await ready();
    const { kernel, symbols, order, sorted } = kernelWithSymbols();
    try {
      const e = kernel.exports;
      // No listing yet: nothing held for listings (list_objects never ran, so this is the order's alone).
      expect(e.list_objects_memory_bytes() >>> 0).toBeLessThan(1024);
      const highest = [SYMBOLS - 1, SYMBOLS - 3, SYMBOLS - 2, SYMBOLS - 50, SYMBOLS - 7];
      const got = order(highest);
      expect(got.n).toBe(highest.length);
      expect(got.ordered).toEqual(sorted(highest));
      const held = e.list_objects_memory_bytes() >>> 0;
      // The rank table: 4 B a symbol up to the highest, its capacity doubled from 1,024 (2^18 here). Everything
      // else (ranked symbols, new symbols, the bitmap over ranks) is the listing's size, a few KB: was 8 B a
      // symbol more (3.1 MB in all).
      const rankTable = 4 * 2 ** 18;
      expect(held).toBeGreaterThanOrEqual(rankTable);
      expect(held - rankTable).toBeLessThan(16 * 1024);
    } finally {
      symbols.dispose();
    }
  });

  it("the ranked and new symbols grow with the listings, the rank table with the highest symbol: orders unchanged", async () => {
    await ready();
    const { kernel, symbols, order, sorted } = kernelWithSymbols();
    try {
      const e = kernel.exports;
      const rounds: number[][] = [
        // High symbols first: the rank table grows, the ranked symbols stay small.
        [SYMBOLS - 1, SYMBOLS - 5, 150_000, 199_000],
        // Many low ones: the ranked symbols grow past several capacities (their order moved each time), the
        // rank table stays.
        Array.from({ length: 5000 }, (_, i) => (i * 37) % 9000),
        Array.from({ length: 20_000 }, (_, i) => 60_000 - 3 * i),
        // Old and new ones mixed, and a listing of only ranked ones.
        Array.from({ length: 3000 }, (_, i) => i * 61),
        Array.from({ length: 2000 }, (_, i) => (i * 37) % 9000),
      ];
      const ranked = new Set<number>();
      for (const round of rounds) {
        const got = order(round);
        expect(got.n).toBe(round.filter((s) => !ranked.has(s)).length);
        expect(got.ordered).toEqual(sorted(round));
        for (const s of round) ranked.add(s);
        // The rank table (2^18 entries) and the rest by how many are ranked (at most doubled, and a listing's
        // new ones): never 12 B a symbol.
        const held = e.list_objects_memory_bytes() >>> 0;
        expect(held - 4 * 2 ** 18).toBeLessThan(3 * 4 * 2 * Math.max(1024, ranked.size) + 16 * 1024);
      }
      const all = [...ranked];
      expect(order(all).ordered).toEqual(sorted(all));
    } finally {
      symbols.dispose();
    }
  });

  it("a symbol given twice is refused (LIST_ORDER_REPEATED), the results left as given, later orders right", async () => {
    await ready();
    const { symbols, order, sorted } = kernelWithSymbols();
    try {
      const first = Array.from({ length: 300 }, (_, i) => i * 11);
      expect(order(first).ordered).toEqual(sorted(first));
      // A ranked symbol twice (found once the new ones are ranked: none here), a new one twice, and a new one 100 times (past the radix sort's threshold of 64:
      // identical texts never came apart there).
      const cases = [
        [...first.slice(0, 20), first[7]!],
        [...first.slice(0, 20), 6001, 6002, 6001],
        [...first.slice(0, 20), ...Array.from({ length: 100 }, () => 7001), 7002],
      ];
      for (const given of cases) {
        const got = order(given);
        expect(got.n).toBe(LIST_ORDER_REPEATED);
        expect(got.ordered).toEqual(given);
      }
      // Nothing was ranked by the refused calls, and every order is still right.
      const next = [...first, 6001, 6002, 7001, 7002];
      const got = order(next);
      expect(got.n).toBe(4);
      expect(got.ordered).toEqual(sorted(next));
    } finally {
      symbols.dispose();
    }
  });
});
