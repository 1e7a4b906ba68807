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
    // Header 56, 2,048 slots of 8 bytes (1,000 under the 3/4 load bound), 1,000 entries of 4 bytes (8 before),
    // an arena chunk for the 1,000 records' 8-byte headers (and its own 16).
    expect(interner.memoryBytes).toBe(56 + 2048 * 8 + 1000 * 4 + (1000 * 8 + 16));
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
});
