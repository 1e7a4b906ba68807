/**
 * BloomFilter.mightContainJoined / mightContainJoinedPair look keys up from their parts (the Bloom negative layer's
 * per-check probes): every answer must be mightContain's of the joined key, and the twin's, whatever the parts hold
 * (non-ASCII, lone surrogates split between parts, long keys) and whatever happened to the kernel's memory between
 * calls. A wrong "absent" here would be a wrong denial in the layer.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { BloomFilter } from "../../src/kernels/bloom.js";
import { isNexusError, type NexusErrorCode } from "../../src/util/errors.js";
import { ready } from "../../src/wasm/loader.js";
import { BloomTwin } from "../twins/bloom.js";

/** Any UTF-16 string, lone surrogates included. */
const utf16 = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) });
const partArb = fc.oneof(
  fc.constantFrom("o\u0000default\u0000", "s\u0000acme\u0000", "", ":*", "\ud83d", "\ude00", "é"),
  fc.string({ maxLength: 12 }),
  fc.string({ minLength: 30, maxLength: 60 }),
  utf16,
);
const tripleArb = fc.tuple(partArb, partArb, partArb);

function expectCode(fn: () => unknown, code: NexusErrorCode): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(isNexusError(thrown, code), `expected NexusError "${code}", got ${String(thrown)}`).toBe(true);
}

describe("BloomFilter joined lookups", () => {
  beforeAll(async () => {
    await ready();
  });

  it("mightContainJoined(a, b, c) is mightContain(a + b + c), and the twin's answer", () => {
    fc.assert(
      fc.property(
        fc.array(tripleArb, { maxLength: 40 }),
        fc.array(tripleArb, { maxLength: 40 }),
        (added, probes) => {
          // A small filter, so that absent keys are often reported absent (the interesting answer).
          using filter = new BloomFilter(200, 0.01);
          const twin = new BloomTwin(filter.blocks, filter.hashes);
          const keys = added.map((p) => p.join(""));
          filter.addParts(added.flat(), 3);
          twin.addMany(keys);
          for (const [a, b, c] of [...added, ...probes]) {
            const joined = a + b + c;
            const expected = twin.mightContain(joined);
            expect(filter.mightContain(joined)).toBe(expected);
            expect(filter.mightContainJoined(a, b, c)).toBe(expected);
            if (c === "") expect(filter.mightContainJoined(a, b)).toBe(expected);
          }
          for (const [a, b, c] of added) expect(filter.mightContainJoined(a, b, c)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("mightContainJoinedPair answers both keys as mightContain does, in bits 0 and 1", () => {
    const pairArb = fc.tuple(partArb, partArb, partArb, partArb);
    fc.assert(
      fc.property(
        fc.array(pairArb, { maxLength: 40 }),
        fc.array(pairArb, { maxLength: 40 }),
        (added, probes) => {
          using filter = new BloomFilter(200, 0.01);
          const twin = new BloomTwin(filter.blocks, filter.hashes);
          for (const [a1, b1, a2, b2] of added) {
            filter.add(a1 + b1);
            filter.add(a2 + b2);
            twin.add(a1 + b1);
            twin.add(a2 + b2);
          }
          for (const [a1, b1, a2, b2] of [...added, ...probes]) {
            const expected = (twin.mightContain(a1 + b1) ? 1 : 0) | (twin.mightContain(a2 + b2) ? 2 : 0);
            expect(filter.mightContainJoinedPair(a1, b1, a2, b2)).toBe(expected);
          }
          for (const [a1, b1, a2, b2] of added) expect(filter.mightContainJoinedPair(a1, b1, a2, b2)).toBe(3);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a surrogate pair split between parts is the joined key's code point, not two replacement chars", () => {
    using filter = new BloomFilter(1000, 0.001);
    const whole = "user:\ud83d\ude00";
    filter.add(whole);
    // Encoded part by part, "\ud83d" and "\ude00" would each be U+FFFD: a different key.
    expect(filter.mightContain("user:\ufffd\ufffd")).toBe(false);
    expect(filter.mightContainJoined("user:\ud83d", "\ude00")).toBe(true);
    expect(filter.mightContainJoined("user:", "\ud83d", "\ude00")).toBe(true);
    expect(filter.mightContainJoinedPair("user:\ud83d", "\ude00", "absent", "")).toBe(1);
    expect(filter.mightContainJoinedPair("absent", "", "user:", "\ud83d\ude00")).toBe(2);
  });

  it("answers right after the kernel's memory grew (views taken before are detached)", () => {
    using filter = new BloomFilter(1000, 0.01);
    const names = Array.from({ length: 200 }, (_, i) => `doc:${i}`);
    filter.addParts(
      names.flatMap((n) => ["o\u0000t\u0000", n]),
      2,
    );
    expect(names.every((n) => filter.mightContainJoined("o\u0000t\u0000", n))).toBe(true);
    for (let round = 0; round < 3; round++) {
      // ~6 MiB more each round: linear memory grows.
      using big = new BloomFilter(5_000_000, 0.01);
      big.add("x");
      expect(names.every((n) => filter.mightContainJoined("o\u0000t\u0000", n))).toBe(true);
      expect(
        names.every((n) => filter.mightContainJoinedPair("o\u0000t\u0000", n, "o\u0000t\u0000", n) === 3),
      ).toBe(true);
    }
  });

  it("rejects parts that are not strings, and a disposed filter", () => {
    const filter = new BloomFilter(100, 0.01);
    expectCode(() => filter.mightContainJoined("a", 1 as unknown as string), "invalid_argument");
    expectCode(() => filter.mightContainJoined("a", "b", null as unknown as string), "invalid_argument");
    expectCode(
      () => filter.mightContainJoinedPair("a", "b", "c", undefined as unknown as string),
      "invalid_argument",
    );
    filter.dispose();
    expectCode(() => filter.mightContainJoined("a", "b"), "disposed");
    expectCode(() => filter.mightContainJoinedPair("a", "b", "c", "d"), "disposed");
  });
});
