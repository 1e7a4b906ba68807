import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  Interner,
  type InternKernel,
  type InternKernelExports,
  MemoTable,
} from "../../src/kernels/intern.js";
import { NexusError } from "../../src/util/errors.js";
import { seededRandom as mulberry32 } from "../../src/util/random.js";
import { instantiateKernel, ready } from "../../src/wasm/loader.js";
import { hashBytes } from "../twins/hash.js";
import { ABSENT, InternerTwin, MemoTableTwin } from "../twins/intern.js";

beforeAll(() => ready());

type Outcome = { ok: unknown } | { error: string };

/** What a call did: its result, or the NexusError code it threw (anything else is a failure of the test). */
function outcome(run: () => unknown): Outcome {
  try {
    const value = run();
    return { ok: value instanceof Uint32Array ? Array.from(value) : value };
  } catch (error) {
    if (error instanceof NexusError) return { error: error.code };
    throw error;
  }
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof NexusError ? error.code : `not a NexusError: ${String(error)}`;
  }
  return undefined;
}

function picture(table: MemoTable): string[] {
  const { keys, values } = table.entries();
  const out: string[] = [];
  for (let i = 0; i < values.length; i++) {
    out.push(`${Array.from(keys.subarray(i * table.arity, (i + 1) * table.arity)).join(",")}=${values[i]}`);
  }
  return out.sort();
}

const unicodeTexts = [
  "",
  "a",
  "user:alice",
  "\u0000",
  "\u0000\u0000",
  "ключ",
  "鍵",
  "مفتاح",
  "🔑",
  "👩‍👩‍👧",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  "\u00e9", // é precomposed
  "e\u0301", // é decomposed: another string
  "\uffff",
  "\u{10ffff}",
  "x".repeat(1000),
  "🔑".repeat(300),
];

// Strings drawn so that the same few recur (hits, repeats inside a batch), plus every UTF-8 width, and sometimes
// a lone surrogate (fast-check's "binary" unit), which both sides must reject.
const text = fc.oneof(
  { arbitrary: fc.constantFrom(...unicodeTexts), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 30 }).map((i) => `document:${i}#viewer`), weight: 3 },
  { arbitrary: fc.string({ maxLength: 10 }), weight: 2 },
  { arbitrary: fc.string({ unit: "grapheme", maxLength: 6 }), weight: 2 },
  { arbitrary: fc.string({ unit: "binary", maxLength: 4 }), weight: 1 },
);

type InternerOp =
  | { op: "intern" | "lookup"; s: string }
  | { op: "internMany" | "lookupMany"; strings: string[] }
  | { op: "resolve"; symbol: number };

const internerOp: fc.Arbitrary<InternerOp> = fc.oneof(
  fc.record({ op: fc.constantFrom("intern" as const, "lookup" as const), s: text }),
  fc.record({
    op: fc.constantFrom("internMany" as const, "lookupMany" as const),
    strings: fc.array(text, { maxLength: 24 }),
  }),
  fc.record({
    op: fc.constant("resolve" as const),
    symbol: fc.oneof(fc.nat(80), fc.constantFrom(-1, 1.5, Number.NaN, 2 ** 32, 0xffffffff)),
  }),
);

function applyInterner(target: Interner | InternerTwin, op: InternerOp): Outcome {
  switch (op.op) {
    case "intern":
      return outcome(() => target.intern(op.s));
    case "lookup":
      return outcome(() => target.lookup(op.s));
    case "internMany":
      return outcome(() => target.internMany(op.strings));
    case "lookupMany":
      return outcome(() => target.lookupMany(op.strings));
    case "resolve":
      return outcome(() => target.resolve(op.symbol));
  }
}

describe("Interner vs its twin", () => {
  it("agrees after every step of random intern / lookup / resolve / batch sequences", () => {
    fc.assert(
      fc.property(fc.nat(), fc.array(internerOp, { maxLength: 60 }), (seed, ops) => {
        using interner = new Interner({ seed });
        const twin = new InternerTwin();
        for (const op of ops) {
          expect(applyInterner(interner, op)).toEqual(applyInterner(twin, op));
          expect(interner.size).toBe(twin.size);
        }
        for (let symbol = 0; symbol < twin.size; symbol++) {
          expect(interner.resolve(symbol)).toBe(twin.resolve(symbol));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("interns Unicode, the empty string and long strings, one by one and batched", () => {
    const long = ["a".repeat(100_000), "é".repeat(40_000), "🔑".repeat(20_000), `${"b".repeat(70_000)}ж`];
    const texts = [...unicodeTexts, ...long];
    using single = new Interner();
    using batched = new Interner();
    const ids = texts.map((s) => single.intern(s));
    expect(ids).toEqual(texts.map((_, i) => i));
    expect(Array.from(batched.internMany([...texts, ...texts]))).toEqual([...ids, ...ids]);
    for (const [i, s] of texts.entries()) {
      expect(single.resolve(i)).toBe(s);
      expect(batched.resolve(i)).toBe(s);
      expect(single.lookup(s)).toBe(i);
    }
    expect(single.lookup("e\u0300")).toBeUndefined();
    expect(single.lookup("a".repeat(99_999))).toBeUndefined();
    expect(Array.from(batched.lookupMany(["🔑", "nope", ""]))).toEqual([8, Interner.ABSENT, 0]);
    expect(single.has("鍵")).toBe(true);
  });

  it("tells apart strings whose 32-bit hash tags collide", () => {
    // Found offline with the hash twin: equal low 32 bits of hashBytes(utf8, 42), so equal tags and home slots
    // where the lengths are equal too (the tag's low byte is the length): the first and the last pair.
    const pairs = [
      ["k56563", "k97705"],
      ["k28303", "long-key-75618"],
      ["long-key-223154", "long-key-263542"],
    ];
    const utf8 = new TextEncoder();
    for (const [a, b] of pairs) {
      expect(hashBytes(utf8.encode(a!), 42n) & 0xffffffffn).toBe(
        hashBytes(utf8.encode(b!), 42n) & 0xffffffffn,
      );
    }
    using interner = new Interner({ seed: 42 });
    const flat = pairs.flat();
    expect(Array.from(interner.internMany(flat))).toEqual(flat.map((_, i) => i));
    for (const [i, s] of flat.entries()) {
      expect(interner.lookup(s)).toBe(i);
      expect(interner.resolve(i)).toBe(s);
    }
    using other = new Interner({ seed: 42 });
    expect(other.intern("k56563")).toBe(0);
    expect(other.lookup("k97705")).toBeUndefined();
    expect(other.intern("k97705")).toBe(1);
  });

  it("tells apart long strings (255 bytes or more) whose tags collide, of different lengths", () => {
    // Found offline with the hash twin: equal hash bits 8-31 (hashBytes(utf8, 42)); the tag's low byte is the
    // length, 255 for both, so their tags and home slots are equal and only the lengths and bytes differ.
    const pad = "p".repeat(256);
    const pairs = [
      [`${pad}890`, `${pad}${"q".repeat(40)}4499`],
      [`${pad}3784`, `${pad}${"q".repeat(40)}10359`],
    ];
    const utf8 = new TextEncoder();
    for (const [a, b] of pairs) {
      expect(a!.length).not.toBe(b!.length);
      expect((hashBytes(utf8.encode(a!), 42n) >> 8n) & 0xffffffn).toBe(
        (hashBytes(utf8.encode(b!), 42n) >> 8n) & 0xffffffn,
      );
    }
    using interner = new Interner({ seed: 42 });
    for (const [a, b] of pairs) {
      const sa = interner.intern(a!);
      expect(interner.lookup(b!)).toBeUndefined();
      expect(interner.lookup(b!.slice(0, -1))).toBeUndefined();
      const sb = interner.intern(b!);
      expect(sb).not.toBe(sa);
      expect(interner.lookup(a!)).toBe(sa);
      expect(interner.lookup(b!)).toBe(sb);
      expect(Array.from(interner.lookupMany([b!, a!, `${a!}x`]))).toEqual([sb, sa, Interner.ABSENT]);
      expect(interner.resolve(sb)).toBe(b);
    }
  });

  it("keeps symbols dense and stable through many growths", () => {
    using interner = new Interner({ seed: 7 });
    const texts = Array.from({ length: 30_000 }, (_, i) => (i % 5 === 0 ? `путь/${i}` : `user:${i}`));
    const first = interner.internMany(texts.slice(0, 10_000));
    for (let i = 10_000; i < 20_000; i++) expect(interner.intern(texts[i]!)).toBe(i);
    const rest = interner.internMany(texts);
    expect(Array.from(rest)).toEqual(texts.map((_, i) => i));
    expect(Array.from(first)).toEqual(Array.from(rest.subarray(0, 10_000)));
    expect(interner.size).toBe(30_000);
    expect(interner.resolve(29_995)).toBe("путь/29995");
    expect(interner.memoryBytes).toBeGreaterThan(30_000 * 8);
  });

  it("reserves capacity up front and starts empty", () => {
    using interner = new Interner({ capacity: 1000 });
    const before = interner.memoryBytes;
    interner.internMany(Array.from({ length: 700 }, (_, i) => `${i}`));
    expect(interner.size).toBe(700);
    expect(interner.memoryBytes - before).toBeLessThan(8 * 1024); // only arena chunks were added
  });
});

type MemoOp =
  | { op: "get" | "has" | "delete"; key: number[] }
  | { op: "set"; key: number[]; value: number }
  | { op: "getMany" | "deleteMany"; keys: number[][] }
  | { op: "setMany"; keys: number[][]; values: number[] }
  | { op: "clear" }
  | { op: "badKey"; key: number[] };

// Few distinct ids, so keys repeat and clusters form; sign-bit and all-ones ids to catch i32/u32 slips.
const id = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 5 }), weight: 6 },
  { arbitrary: fc.constantFrom(0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff), weight: 1 },
);
const value = fc.oneof(
  { arbitrary: fc.nat(1000), weight: 8 },
  { arbitrary: fc.constantFrom(0x80000000, 0xfffffffe), weight: 1 },
  { arbitrary: fc.constant(ABSENT), weight: 1 }, // rejected by both sides
);

function memoOp(arity: 2 | 3 | 4): fc.Arbitrary<MemoOp> {
  const key = fc.array(id, { minLength: arity, maxLength: arity });
  const keys = fc.array(key, { maxLength: 12 });
  return fc.oneof(
    { arbitrary: fc.record({ op: fc.constantFrom("get" as const, "has" as const), key }), weight: 3 },
    { arbitrary: fc.record({ op: fc.constant("set" as const), key, value }), weight: 5 },
    { arbitrary: fc.record({ op: fc.constant("delete" as const), key }), weight: 3 },
    {
      arbitrary: fc.record({ op: fc.constantFrom("getMany" as const, "deleteMany" as const), keys }),
      weight: 1,
    },
    {
      arbitrary: keys.chain((ks) =>
        fc.record({
          op: fc.constant("setMany" as const),
          keys: fc.constant(ks),
          values: fc.array(value, { minLength: ks.length, maxLength: ks.length }),
        }),
      ),
      weight: 2,
    },
    { arbitrary: fc.record({ op: fc.constant("clear" as const) }), weight: 1 },
    {
      arbitrary: fc.record({
        op: fc.constant("badKey" as const),
        key: fc.array(fc.oneof(id, fc.constantFrom(-1, 0.5, 2 ** 32)), { minLength: 1, maxLength: 5 }),
      }),
      weight: 1,
    },
  );
}

const packed = (keys: number[][]) => Uint32Array.from(keys.flat());

function applyMemo(table: MemoTable, twin: MemoTableTwin, op: MemoOp): [Outcome, Outcome] {
  switch (op.op) {
    case "get":
      return [outcome(() => table.get(...(op.key as [number, number]))), outcome(() => twin.get(op.key))];
    case "has":
      return [outcome(() => table.has(op.key)), outcome(() => twin.has(op.key))];
    case "delete":
      return [
        outcome(() => table.delete(...(op.key as [number, number]))),
        outcome(() => twin.delete(op.key)),
      ];
    case "set": {
      const args = [...op.key, op.value] as [number, number, number];
      return [outcome(() => void table.set(...args)), outcome(() => twin.set(op.key, op.value))];
    }
    case "getMany":
      return [outcome(() => table.getMany(packed(op.keys))), outcome(() => twin.getMany(packed(op.keys)))];
    case "deleteMany":
      return [
        outcome(() => table.deleteMany(packed(op.keys))),
        outcome(() => twin.deleteMany(packed(op.keys))),
      ];
    case "setMany": {
      const values = Uint32Array.from(op.values);
      return [
        outcome(() => table.setMany(packed(op.keys), values)),
        outcome(() => twin.setMany(packed(op.keys), values)),
      ];
    }
    case "clear":
      return [outcome(() => table.clear()), outcome(() => twin.clear())];
    case "badKey":
      // Any key shape: right or wrong arity, right or wrong element types; both sides must agree.
      return [outcome(() => table.get(op.key)), outcome(() => twin.get(op.key))];
  }
}

describe("MemoTable vs its twin", () => {
  it("agrees after every step of random get / set / delete / clear / batch sequences (arity 2-4)", () => {
    fc.assert(
      fc.property(
        fc
          .constantFrom(2 as const, 3 as const, 4 as const)
          .chain((arity) =>
            fc.tuple(fc.constant(arity), fc.nat(), fc.array(memoOp(arity), { maxLength: 80 })),
          ),
        ([arity, seed, ops]) => {
          using table = new MemoTable(arity, { seed });
          const twin = new MemoTableTwin(arity);
          for (const op of ops) {
            const [wasm, model] = applyMemo(table, twin, op);
            expect(wasm).toEqual(model);
            expect(table.size).toBe(twin.size);
            expect(picture(table)).toEqual(twin.picture());
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("agrees on big random batches with heavy deletion (long clusters, many growths)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(2 as const, 3 as const, 4 as const),
        fc.nat(),
        fc.integer({ min: 1, max: 60 }),
        (arity, seed, range) => {
          using table = new MemoTable(arity, { seed });
          const twin = new MemoTableTwin(arity);
          const rng = mulberry32(seed);
          for (let round = 0; round < 6; round++) {
            const n = 1 + Math.floor(rng() * 3000);
            const keys = Uint32Array.from({ length: n * arity }, () => Math.floor(rng() * range));
            const values = Uint32Array.from({ length: n }, () => Math.floor(rng() * 0xfffffffe));
            expect(table.setMany(keys, values)).toBe(twin.setMany(keys, values));
            const gone = keys.subarray(0, Math.floor(n / 2) * arity);
            expect(table.deleteMany(gone)).toBe(twin.deleteMany(gone));
            const probe = Uint32Array.from({ length: 500 * arity }, () => Math.floor(rng() * range));
            expect(Array.from(table.getMany(probe))).toEqual(Array.from(twin.getMany(probe)));
            expect(table.size).toBe(twin.size);
            if (round === 3) {
              table.clear();
              twin.clear();
            }
          }
          expect(picture(table)).toEqual(twin.picture());
        },
      ),
      { numRuns: 25 },
    );
  });

  it("clears in O(1) and keeps its capacity; the generation wrap cannot revive stale entries", () => {
    const kernel = instantiateKernel<InternKernelExports>("intern");
    using table = new MemoTable(2, { kernel });
    for (let i = 0; i < 100; i++) table.set(i, i, i);
    const capacity = table.capacity;
    table.clear();
    expect(table.size).toBe(0);
    expect(table.capacity).toBe(capacity);
    expect(table.get(5, 5)).toBeUndefined();
    table.set(5, 5, 55);
    expect(table.get(5, 5)).toBe(55);

    // Written at generation 2, made stale by jumping to the last generation, then the wrap to generation 1.
    kernel.exports.memo_set_generation(table.pointer, 0xffffffff);
    expect(table.size).toBe(0);
    table.set(1, 1, 11);
    table.clear(); // wraps: zero-fills, generation 1
    expect(kernel.exports.memo_generation(table.pointer)).toBe(1);
    expect(table.size).toBe(0);
    expect(table.get(5, 5)).toBeUndefined();
    expect(table.get(1, 1)).toBeUndefined();
    for (let i = 0; i < 100; i++) expect(table.get(i, i)).toBeUndefined();
    table.set(2, 2, 22);
    expect(picture(table)).toEqual(["2,2=22"]);
  });

  it("accepts keys as arguments or as one array, and full-range u32 keys and values", () => {
    using table = new MemoTable(3);
    table.set(0xffffffff, 0x80000000, 0, 0xfffffffe);
    table.set([1, 2, 3], 4);
    expect(table.get(0xffffffff, 0x80000000, 0)).toBe(0xfffffffe);
    expect(table.get([0xffffffff, 0x80000000, 0])).toBe(0xfffffffe);
    expect(table.get(1, 2, 3)).toBe(4);
    expect(table.has([1, 2, 3])).toBe(true);
    expect(table.delete([1, 2, 3])).toBe(true);
    expect(table.delete(1, 2, 3)).toBe(false);
    expect(table.size).toBe(1);
  });

  it("reserves up front so a fill allocates nothing more", () => {
    using table = new MemoTable(4, { capacity: 10_000 });
    const capacity = table.capacity;
    const bytes = table.memoryBytes;
    const keys = Uint32Array.from({ length: 40_000 }, (_, i) => i);
    expect(
      table.setMany(
        keys,
        Uint32Array.from({ length: 10_000 }, (_, i) => i),
      ),
    ).toBe(10_000);
    expect(table.capacity).toBe(capacity);
    expect(table.memoryBytes).toBe(bytes);
    expect(bytes / table.size).toBeLessThanOrEqual(24 * 2);
  });
});

describe("several interners and tables in one instance", () => {
  it("stay correct while memory grows under them", () => {
    const kernel = instantiateKernel<InternKernelExports>("intern");
    const pagesBefore = kernel.memory.buffer.byteLength;
    const interner = new Interner({ kernel, seed: 1 });
    const small = new MemoTable(2, { kernel, seed: 2 });
    const texts = Array.from({ length: 2000 }, (_, i) => `group:${i}#member`);
    const ids = interner.internMany(texts);
    for (let i = 0; i < 2000; i++) small.set(ids[i]!, i, i * 3);

    const big = new MemoTable(3, { kernel, seed: 3 });
    const twinBig = new MemoTableTwin(3);
    const n = 150_000;
    const keys = Uint32Array.from({ length: 3 * n }, (_, i) => (i * 2654435761) >>> 8);
    const values = Uint32Array.from({ length: n }, (_, i) => i);
    big.setMany(keys, values);
    twinBig.setMany(keys, values);
    const more = Array.from({ length: 20_000 }, (_, i) => `user:${i}@example.com/ファイル`);
    const moreIds = interner.internMany(more);
    expect(kernel.memory.buffer.byteLength).toBeGreaterThan(pagesBefore + 4 * 1024 * 1024);

    for (let i = 0; i < 2000; i++) {
      expect(interner.resolve(ids[i]!)).toBe(texts[i]);
      expect(small.get(ids[i]!, i)).toBe(i * 3);
    }
    expect(interner.resolve(moreIds[19_999]!)).toBe(more[19_999]);
    expect(big.size).toBe(twinBig.size);
    const probe = keys.subarray(0, 3000);
    expect(Array.from(big.getMany(probe))).toEqual(Array.from(twinBig.getMany(probe)));

    big.dispose();
    small.dispose();
    interner.dispose();
    // Freed memory is reused: filling and disposing the same structures again and again stops growing memory.
    const sizes: number[] = [];
    for (let round = 0; round < 5; round++) {
      using table = new MemoTable(3, { kernel });
      table.setMany(keys, values);
      using names = new Interner({ kernel });
      names.internMany(more);
      sizes.push(kernel.memory.buffer.byteLength);
    }
    expect(sizes[4]).toBe(sizes[1]);
  });
});

describe("typed errors", () => {
  it("rejects bad keys, values, arities and shapes with invalid_argument", () => {
    using t2 = new MemoTable(2);
    using t4 = new MemoTable(4);
    const bad = (run: () => unknown) => expect(codeOf(run)).toBe("invalid_argument");
    bad(() => t2.get(-1, 0));
    bad(() => t2.get(0, 1.5));
    bad(() => t2.get(0, Number.NaN));
    bad(() => t2.get(0, 2 ** 32));
    bad(() => t2.get("1" as unknown as number, 0));
    bad(() => t2.get(1, 2, 3)); // arity 2 given 3 keys
    bad(() => t2.get([1, 2, 3]));
    bad(() => t2.get([1]));
    bad(() => t4.get(1, 2, 3));
    bad(() => t2.set(1, 2, ABSENT));
    bad(() => t2.set(1, 2, -5));
    bad(() => t2.set(1, 2, 0.5));
    bad(() => (t2.set as (...args: number[]) => unknown)(1, 2));
    bad(() => (t2.set as (...args: number[]) => unknown)(1, 2, 3, 4));
    bad(() => t4.set(1, 2, 3, 4)); // arity 4 needs 4 keys and a value
    bad(() => t2.getMany(new Uint32Array(3)));
    bad(() => t2.getMany([1, 2] as unknown as Uint32Array));
    bad(() => t2.getMany(new Uint32Array(4), new Uint32Array(1)));
    bad(() => t2.setMany(new Uint32Array(4), new Uint32Array(1)));
    bad(() => t2.setMany(new Uint32Array(4), Uint32Array.of(1, ABSENT)));
    expect(t2.size).toBe(0); // the rejected batch wrote nothing
    bad(() => new MemoTable(5 as 2));
    bad(() => new MemoTable(2, { capacity: -1 }));
    bad(() => new MemoTable(2, { seed: 1.5 }));
    bad(() => t2.reserve(-1));

    using interner = new Interner();
    bad(() => interner.intern(5 as unknown as string));
    bad(() => interner.intern("a\ud800b"));
    bad(() => interner.lookup("\udc00"));
    bad(() => interner.internMany(["ok", "x\udfff"]));
    bad(() => interner.internMany(["ok", null as unknown as string]));
    bad(() => interner.internMany("abc" as unknown as string[]));
    expect(interner.size).toBe(0); // nothing from the rejected batches
    bad(() => interner.resolve(0));
    interner.intern("x");
    bad(() => interner.resolve(1));
    bad(() => interner.resolve(-1));
    bad(() => interner.resolve(0.5));
    bad(() => interner.lookupMany(["a"], new Uint32Array(0)));
    bad(() => new Interner({ kernel: { name: "fake", exports: {} } as unknown as InternKernel }));
  });

  it("names the offending argument", () => {
    using t3 = new MemoTable(3);
    expect(() => t3.get(1, -2, 3)).toThrowError(/key 1 must be a u32 integer .* got -2/);
    expect(() => t3.get(1, 2)).toThrowError(/arity 3, so get takes 3 arguments .* got 2/);
    expect(() => t3.set(1, 2, 3, ABSENT)).toThrowError(/reserved/);
    using interner = new Interner();
    expect(() => interner.intern("ab\ud800")).toThrowError(/lone surrogate at 2/);
  });

  it("throws disposed after dispose (which is idempotent)", () => {
    const table = new MemoTable(2);
    const interner = new Interner();
    table.dispose();
    table.dispose();
    interner[Symbol.dispose]();
    interner.dispose();
    expect(table.disposed).toBe(true);
    const gone = (run: () => unknown) => expect(codeOf(run)).toBe("disposed");
    gone(() => table.get(1, 2));
    gone(() => table.set(1, 2, 3));
    gone(() => table.delete(1, 2));
    gone(() => table.clear());
    gone(() => table.size);
    gone(() => table.getMany(new Uint32Array(2)));
    gone(() => table.setMany(new Uint32Array(2), new Uint32Array(1)));
    gone(() => table.memoryBytes);
    gone(() => interner.intern("a"));
    gone(() => interner.lookup("a"));
    gone(() => interner.internMany(["a"]));
    gone(() => interner.resolve(0));
    gone(() => interner.size);
  });

  it("turns a failed memory.grow into out_of_memory and leaves the structure unchanged", () => {
    const real = instantiateKernel<InternKernelExports>("intern");
    const failing = (name: keyof InternKernelExports) =>
      ({
        ...real,
        exports: {
          ...real.exports,
          [name]: () => {
            throw new WebAssembly.RuntimeError("unreachable");
          },
        },
      }) as InternKernel;
    using interner = new Interner({ kernel: failing("interner_intern") });
    interner.internMany(["a", "b"]);
    expect(codeOf(() => interner.intern("c"))).toBe("out_of_memory");
    expect(interner.size).toBe(2);
    expect(interner.lookup("c")).toBeUndefined();
    using table = new MemoTable(2, { kernel: failing("memo_set_many") });
    table.set(1, 1, 1);
    expect(codeOf(() => table.setMany(Uint32Array.of(2, 2), Uint32Array.of(2)))).toBe("out_of_memory");
    expect(picture(table)).toEqual(["1,1=1"]);
    expect(codeOf(() => new MemoTable(2, { kernel: failing("memo_new") }))).toBe("out_of_memory");
  });

  it("requires ready() before using the shared kernel", async () => {
    // ready() has run in this file; the contract is covered by the loader tests. Here: the shared kernel is used.
    using table = new MemoTable(2);
    expect(table.kernel.name).toBe("intern");
  });
});

describe("resources", () => {
  it("leaves nothing running", async () => {
    const before = process.getActiveResourcesInfo().length;
    for (let i = 0; i < 50; i++) {
      using interner = new Interner();
      using table = new MemoTable(3);
      table.set(interner.intern(`a${i}`), 1, 2, 3);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  });
});
