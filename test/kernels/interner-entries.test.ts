/**
 * The interner's entries array (assembly/tables/interner.ts) holds 4 bytes a symbol, its text's address: the byte
 * length is read from the record, just before the text, not kept a second time in the entry. Texts of every length
 * class (empty, short, long, multi-byte) still resolve and order through it.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { Interner } from "../../src/kernels/interner.js";
import { ready } from "../../src/wasm/loader.js";

beforeAll(() => ready());

describe("interner entries", () => {
  it("take 4 bytes a symbol", () => {
    const interner = new Interner({ capacity: 1000, seed: 1 });
    // Header 64, 2,048 slots of 8 bytes (1,000 under the 3/4 load bound), 1,000 entries of 4 bytes (8 before),
    // an arena chunk for the 1,000 records' 8-byte headers (and its own 16).
    expect(interner.memoryBytes).toBe(64 + 2048 * 8 + 1000 * 4 + (1000 * 8 + 16));
    interner.dispose();
  });

  it("resolve every text through the record's length", () => {
    const interner = new Interner({ seed: 2 });
    const texts = [
      "",
      "a",
      "file:r_1_2_3_456",
      "caf\u00e9",
      "\u{1f600}x",
      "y".repeat(300),
      "z".repeat(70_000),
    ];
    for (let i = 0; i < 2000; i++) texts.push(`doc:${i}_${"q".repeat(i % 37)}`);
    const symbols = interner.internMany(texts);
    for (const [i, text] of texts.entries()) expect(interner.resolve(symbols[i]!)).toBe(text);
    interner.dispose();
  });

  it("make a large table's next slot array ahead of its rehash, which then only places the entries", () => {
    // 2^17 slots (the grow bound 98,304): past half full the next array (2^18 slots, 2 MiB) is made and zeroed a
    // share at a time; the rehash at the bound takes it.
    const interner = new Interner({ capacity: 90_000, seed: 3 });
    const texts = Array.from({ length: 100_000 }, (_, i) => `doc:${i}`);
    const symbols = new Uint32Array(texts.length);
    symbols.set(interner.internMany(texts.slice(0, 60_000)));
    const below = interner.memoryBytes;
    symbols.set(interner.internMany(texts.slice(60_000, 90_000)), 60_000);
    // Since: the next array (2^18 slots of 8 bytes) and the 30,000 entries and records (well under 64 B each).
    const grown = interner.memoryBytes - below;
    expect(grown).toBeGreaterThanOrEqual(2 ** 18 * 8);
    expect(grown).toBeLessThan(2 ** 18 * 8 + 30_000 * 64);
    symbols.set(interner.internMany(texts.slice(90_000)), 90_000);
    // Rehashed into it: every text is found at its symbol, and the array made ahead is the table now.
    expect(interner.lookupMany(texts)).toEqual(symbols);
    expect(new Set(symbols).size).toBe(texts.length);
    for (const i of [0, 65_536, 98_303, 99_999]) expect(interner.resolve(symbols[i]!)).toBe(texts[i]);
    interner.dispose();
  });
});
