import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  BLOOM_MAX_HASHES,
  BloomFilter,
  type BloomKey,
  blockedFpRate,
  planBloomFilter,
} from "../../src/kernels/bloom.js";
import { isNexusError, type NexusErrorCode } from "../../src/util/errors.js";
import { ready } from "../../src/wasm/loader.js";
import { BloomTwin } from "../twins/bloom.js";

const HEADER_BYTES = 40;
const encoder = new TextEncoder();

/** Any UTF-16 string, lone surrogates included (they encode as U+FFFD, in both the kernel and the twin). */
const utf16 = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) });
const keyArb: fc.Arbitrary<BloomKey> = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  utf16,
  fc.uint8Array({ maxLength: 80 }),
);
const keysArb = fc.array(keyArb, { maxLength: 200 });

function expectCode(fn: () => unknown, code: NexusErrorCode): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(isNexusError(thrown, code), `expected NexusError "${code}", got ${String(thrown)}`).toBe(true);
}

function twinOf(filter: BloomFilter): BloomTwin {
  return new BloomTwin(filter.blocks, filter.hashes);
}

function bitsOf(filter: BloomFilter): Uint8Array {
  return filter.serialize().subarray(HEADER_BYTES);
}

/** Byte equality that stays fast on megabyte arrays (deep equality walks them element by element). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  const at = actual.findIndex((byte, i) => byte !== expected[i]);
  expect(at, `first differing byte at ${at}`).toBe(-1);
}

describe("before ready()", () => {
  it("throws NexusError not_ready", () => {
    expectCode(() => new BloomFilter(100, 0.01), "not_ready");
  });
});

describe("BloomFilter", () => {
  beforeAll(async () => {
    await ready();
  });

  it("never answers false for an added key (single and batched, strings, bytes, any Unicode)", () => {
    fc.assert(
      fc.property(keysArb, keysArb, fc.integer({ min: 1, max: 5000 }), (single, batched, capacity) => {
        using filter = new BloomFilter(capacity, 0.01);
        for (const key of single) filter.add(key);
        filter.addMany(batched);
        for (const key of [...single, ...batched]) expect(filter.mightContain(key)).toBe(true);
        expect([...filter.mightContainMany([...single, ...batched])].every((hit) => hit === 1)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("treats a string and its UTF-8 bytes as the same key", () => {
    fc.assert(
      fc.property(fc.array(utf16, { maxLength: 50 }), (keys) => {
        using asStrings = new BloomFilter(1000, 0.01);
        using asBytes = new BloomFilter(1000, 0.01);
        asStrings.addMany(keys);
        for (const key of keys) asBytes.add(encoder.encode(key));
        expectSameBytes(bitsOf(asStrings), bitsOf(asBytes));
        for (const key of keys) expect(asStrings.mightContain(encoder.encode(key))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it("sets exactly the twin's bits and gives the twin's answers", () => {
    fc.assert(
      fc.property(
        keysArb,
        keysArb,
        fc.integer({ min: 1, max: 20_000 }),
        fc.constantFrom(0.3, 0.05, 0.01, 1e-4, 1e-7),
        (added, probes, capacity, fpRate) => {
          using filter = new BloomFilter(capacity, fpRate);
          const twin = twinOf(filter);
          filter.addMany(added.slice(0, 100));
          for (const key of added.slice(100)) filter.add(key);
          twin.addMany(added);
          expectSameBytes(bitsOf(filter), twin.bits);
          expectSameBytes(filter.mightContainMany(probes), twin.mightContainMany(probes));
          for (const key of probes) expect(filter.mightContain(key)).toBe(twin.mightContain(key));
        },
      ),
      { numRuns: 100 },
    );
  });

  it("splits large batches (many keys, huge keys, non-ASCII) without changing the result", () => {
    using filter = new BloomFilter(50_000, 0.01);
    const twin = twinOf(filter);
    const many = Array.from({ length: 20_000 }, (_, i) => (i % 3 === 0 ? `ключ-${i}-✓` : `key:${i}`));
    const longAscii = Array.from({ length: 200 }, (_, i) => `${i}:${"a".repeat(2000)}`); // > one chunk's bytes
    filter.addMany(longAscii);
    twin.addMany(longAscii);
    // A single key larger than the scratch area keeps (it grows for the call, then is given back).
    const giant = `${"y".repeat(1_000_000)}✓`;
    filter.add(giant);
    twin.add(giant);
    expect(filter.mightContain(giant)).toBe(true);
    expect(filter.mightContain("after the giant")).toBe(twin.mightContain("after the giant"));
    const huge: BloomKey[] = [
      "x".repeat(300_000),
      "é".repeat(100_000),
      new Uint8Array(400_000).fill(7),
      "tail",
    ];
    const batch = [...many, ...huge];
    filter.addMany(batch);
    twin.addMany(batch);
    expectSameBytes(bitsOf(filter), twin.bits);
    const probes = [...batch, ...Array.from({ length: 10_000 }, (_, i) => `absent:${i}`)];
    const out = new Uint8Array(probes.length + 5);
    expect(filter.mightContainMany(probes, out)).toBe(out);
    expectSameBytes(out.subarray(0, probes.length), twin.mightContainMany(probes));
    expect(out.subarray(0, batch.length).every((hit) => hit === 1)).toBe(true);
  });

  it("addParts / mightContainParts equal addMany / mightContainMany of the joined keys", () => {
    const partArb = fc.oneof(fc.constantFrom("o\u0000default\u0000", "s\u0000acme\u0000", ""), utf16);
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 3 })
          .chain((width) =>
            fc.tuple(fc.constant(width), fc.array(fc.array(partArb, { minLength: width, maxLength: width }))),
          ),
        ([width, keyParts]) => {
          using filter = new BloomFilter(1000, 0.01);
          const twin = twinOf(filter);
          const parts = keyParts.flat();
          const keys = keyParts.map((p) => p.join(""));
          filter.addParts(parts, width);
          twin.addMany(keys);
          expectSameBytes(bitsOf(filter), twin.bits);
          const probes = [...parts, "absent", "o\u0000default\u0000x"];
          const probeParts = probes.flatMap((p) => [p, ...Array.from({ length: width - 1 }, () => "")]);
          expectSameBytes(filter.mightContainParts(probeParts, width), filter.mightContainMany(probes));
          expectSameBytes(filter.mightContainParts(parts, width), twin.mightContainMany(keys));
        },
      ),
      { numRuns: 200 },
    );
    // Past one chunk's keys and bytes, and a non-ASCII chunk in the middle.
    using filter = new BloomFilter(50_000, 0.01);
    const twin = twinOf(filter);
    const parts = Array.from({ length: 40_000 }, (_, i) =>
      i % 2 === 0
        ? "o\u0000t\u0000"
        : i === 20_001
          ? "doc:ключ"
          : i % 1000 === 1
            ? "y".repeat(300_000)
            : `doc:${i}`,
    );
    const keys = Array.from({ length: 20_000 }, (_, i) => parts[2 * i]! + parts[2 * i + 1]!);
    filter.addParts(parts, 2);
    twin.addMany(keys);
    expectSameBytes(bitsOf(filter), twin.bits);
    const out = new Uint8Array(keys.length + 3);
    expect(filter.mightContainParts(parts, 2, out)).toBe(out);
    expect(out.subarray(0, keys.length).every((hit) => hit === 1)).toBe(true);
    expectSameBytes(out.subarray(0, keys.length), twin.mightContainMany(keys));
    // Bad arguments change nothing.
    const before = bitsOf(filter).slice();
    expectCode(() => filter.addParts(["a", "b", "c"], 2), "invalid_argument");
    expectCode(() => filter.addParts(["a", 7 as unknown as string], 2), "invalid_argument");
    expectCode(() => filter.addParts(["a"], 0), "invalid_argument");
    expectCode(() => filter.mightContainParts(["a", "b"], 1, new Uint8Array(1)), "invalid_argument");
    expectSameBytes(bitsOf(filter), before);
  });

  it("round-trips through serialize/deserialize", () => {
    fc.assert(
      fc.property(
        keysArb,
        fc.integer({ min: 1, max: 50_000 }),
        fc.double({ min: 1e-9, max: 0.5, noNaN: true }),
        fc.nat(16),
        (keys, capacity, fpRate, offset) => {
          using filter = new BloomFilter(capacity, fpRate);
          filter.addMany(keys);
          const bytes = filter.serialize();
          // Also from a view that does not start at its buffer's first byte.
          const shifted = new Uint8Array(bytes.length + offset);
          shifted.set(bytes, offset);
          using restored = BloomFilter.deserialize(shifted.subarray(offset));
          expectSameBytes(restored.serialize(), bytes);
          expect([restored.capacity, restored.fpRate, restored.blocks, restored.hashes]).toEqual([
            capacity,
            fpRate,
            filter.blocks,
            filter.hashes,
          ]);
          for (const key of keys) expect(restored.mightContain(key)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("rejects damaged serialized bytes with NexusError corrupt", () => {
    using filter = new BloomFilter(300, 0.01);
    filter.addMany(["a", "b", "c"]);
    const good = filter.serialize();
    for (let length = 0; length < good.length; length++) {
      expectCode(() => BloomFilter.deserialize(good.slice(0, length)), "corrupt");
    }
    const damaged = (edit: (view: DataView) => void) => {
      const bytes = good.slice();
      edit(new DataView(bytes.buffer));
      expectCode(() => BloomFilter.deserialize(bytes), "corrupt");
    };
    damaged((v) => v.setUint8(0, 0x41)); // magic
    damaged((v) => v.setUint8(4, 2)); // version
    damaged((v) => v.setUint8(5, 0)); // hashes
    damaged((v) => v.setUint8(5, BLOOM_MAX_HASHES + 1));
    damaged((v) => v.setUint16(6, 1, true)); // reserved
    damaged((v) => v.setUint32(8, filter.blocks + 1, true)); // blocks vs length
    damaged((v) => v.setUint32(8, 0, true));
    damaged((v) => v.setUint32(12, 9, true)); // reserved
    damaged((v) => v.setFloat64(16, 0.5, true)); // capacity
    damaged((v) => v.setFloat64(24, 1, true)); // fpRate
    damaged((v) => v.setUint8(32, v.getUint8(32) ^ 1)); // checksum
    damaged((v) => v.setUint8(HEADER_BYTES + 3, v.getUint8(HEADER_BYTES + 3) ^ 0x10)); // bits
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    expectCode(() => BloomFilter.deserialize(longer), "corrupt");
    expectCode(() => BloomFilter.deserialize([1, 2, 3] as unknown as Uint8Array), "invalid_argument");
  });

  it("keeps many live filters apart across memory growth, and reuses freed memory cleanly", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom(0.1, 0.01, 0.001)), {
          minLength: 5,
          maxLength: 25,
        }),
        fc.array(fc.array(keyArb, { maxLength: 20 }), { minLength: 30, maxLength: 60 }),
        (shapes, rounds) => {
          const live = shapes.map(([capacity, fpRate]) => {
            const filter = new BloomFilter(capacity, fpRate);
            return { filter, twin: twinOf(filter) };
          });
          try {
            rounds.forEach((keys, round) => {
              const slot = live[round % live.length]!;
              slot.filter.addMany(keys);
              slot.twin.addMany(keys);
              if (round % 7 === 3) {
                // Free one filter and put a new one in its place: it must start empty, whatever the memory held.
                slot.filter.dispose();
                const [capacity, fpRate] = shapes[round % shapes.length]!;
                slot.filter = new BloomFilter(capacity, fpRate);
                slot.twin = twinOf(slot.filter);
                expect(slot.filter.fillRatio).toBe(0);
              }
              if (round === 10) {
                // ~6 MiB more: linear memory grows, every view taken before is detached.
                using big = new BloomFilter(5_000_000, 0.01);
                big.addMany(keys);
              }
            });
            for (const { filter, twin } of live) expectSameBytes(bitsOf(filter), twin.bits);
          } finally {
            for (const { filter } of live) filter.dispose();
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it("is unusable after dispose (typed error), and dispose is idempotent", () => {
    const filter = new BloomFilter(100, 0.01);
    filter.add("x");
    filter.dispose();
    filter.dispose();
    expect(filter.disposed).toBe(true);
    for (const use of [
      () => filter.add("x"),
      () => filter.mightContain("x"),
      () => filter.addMany(["x"]),
      () => filter.mightContainMany(["x"]),
      () => filter.clear(),
      () => filter.serialize(),
      () => filter.fillRatio,
    ]) {
      expectCode(use, "disposed");
    }
    let scoped: BloomFilter | undefined;
    {
      using inner = new BloomFilter(100, 0.01);
      scoped = inner;
    }
    expect(scoped.disposed).toBe(true);
  });

  it("clears", () => {
    using filter = new BloomFilter(1000, 0.01);
    filter.addMany(Array.from({ length: 1000 }, (_, i) => `k${i}`));
    expect(filter.fillRatio).toBeGreaterThan(0.3);
    filter.clear();
    expect(filter.fillRatio).toBe(0);
    expect(filter.mightContain("k1")).toBe(false);
  });

  it.each([
    [100_000, 0.01],
    [100_000, 0.001],
    [50_000, 0.1],
    [20_000, 1e-4],
    [10, 0.01],
  ])(
    "measures a false-positive rate at capacity within 1.5× of the target (n=%d, p=%d)",
    (capacity, fpRate) => {
      using filter = new BloomFilter(capacity, fpRate);
      filter.addMany(Array.from({ length: capacity }, (_, i) => `member:${i}`));
      // Enough probes for ~2,000 expected false positives (≥200k), so the measurement's noise is a few %.
      const probes = Math.min(2_000_000, Math.max(200_000, Math.ceil(2000 / fpRate)));
      let positives = 0;
      const batch: string[] = [];
      for (let i = 0; i < probes; i += 4096) {
        batch.length = 0;
        for (let j = i; j < Math.min(probes, i + 4096); j++) batch.push(`stranger:${j}`);
        for (const hit of filter.mightContainMany(batch)) positives += hit;
      }
      const measured = positives / probes;
      const plan = planBloomFilter(capacity, fpRate);
      expect(plan.expectedFpRate).toBeLessThanOrEqual(fpRate);
      expect(measured, `measured ${measured} for target ${fpRate}`).toBeLessThanOrEqual(1.5 * fpRate);
      // Not oversized either: the model is tight, so the measurement lands near the model's rate.
      expect(measured).toBeGreaterThan(0.5 * plan.expectedFpRate);
    },
  );

  it("plans more bits than the textbook formula, growing with lower rates", () => {
    const at1 = planBloomFilter(1_000_000, 0.01);
    expect(at1.bitsPerKey).toBeGreaterThan(-Math.log(0.01) / Math.LN2 ** 2);
    expect(at1.bitsPerKey).toBeLessThan(11);
    expect(at1.expectedFpRate).toBeLessThanOrEqual(0.01);
    expect(blockedFpRate(1_000_000, at1.blocks - 1, at1.hashes)).toBeGreaterThan(0.01);
    expect(planBloomFilter(1_000_000, 1e-6).bitsPerKey).toBeGreaterThan(at1.bitsPerKey);
  });

  it("rejects bad arguments with NexusError invalid_argument", () => {
    for (const capacity of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, "10", null]) {
      expectCode(() => new BloomFilter(capacity as number, 0.01), "invalid_argument");
    }
    for (const fpRate of [0, 1, -0.1, 1.5, Number.NaN, "0.01", undefined]) {
      expectCode(() => new BloomFilter(100, fpRate as number), "invalid_argument");
    }
    expectCode(() => new BloomFilter(1e12, 1e-6), "invalid_argument"); // more than 1 GiB of bits
    using filter = new BloomFilter(100, 0.01);
    for (const key of [42, null, undefined, {}, [1, 2], new Uint16Array(2)]) {
      expectCode(() => filter.add(key as BloomKey), "invalid_argument");
      expectCode(() => filter.mightContain(key as BloomKey), "invalid_argument");
    }
    expectCode(() => filter.addMany("abc" as unknown as BloomKey[]), "invalid_argument");
    expectCode(() => filter.mightContainMany(["a", "b"], new Uint8Array(1)), "invalid_argument");
    // A bad key anywhere in a batch adds nothing.
    const batch = [...Array.from({ length: 20_000 }, (_, i) => `ok${i}`), 7] as unknown as BloomKey[];
    expectCode(() => filter.addMany(batch), "invalid_argument");
    expect(filter.fillRatio).toBe(0);
  });
});
