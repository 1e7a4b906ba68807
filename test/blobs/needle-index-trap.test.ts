/**
 * A trap inside the needle-index kernel (memory.grow failed: `unreachable`) can stop a merge halfway, with input
 * pages already reused while the directory and chunk table still point at them. NeedleIndex must then refuse to
 * answer: that call and every later one throw NexusError "index_broken", never a location. setPageLimit (a test
 * hook of assembly/needle.ts) makes the kernel trap when it would grow its memory.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { NeedleIndex, type NeedleLocation } from "../../src/blobs/volume/needle-index.js";
import { isNexusError, type NexusError } from "../../src/util/errors.js";
import { ready } from "../../src/wasm/loader.js";

beforeAll(() => ready());

const PAGE = 65536;
const CHUNK_ENTRIES = 4681; // base entries in one 64 KiB page (assembly/needle.ts)

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}

function expectBroken(f: () => unknown, operation: string): NexusError {
  const e = thrown(f);
  expect(isNexusError(e, "index_broken"), String(e)).toBe(true);
  expect((e as NexusError).details).toMatchObject({ operation });
  return e as NexusError;
}

describe("needle index after a kernel trap", () => {
  it("a trap in a merge fails that set() with index_broken, and every later call too: never a location", () => {
    const index = NeedleIndex.createSync();
    index.setMergeThreshold(64);
    let seed = 12345;
    const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
    const keys: [lo: number, hi: number, loc: NeedleLocation][] = [];
    const add = () => {
      const loc = { volume: 1 + (keys.length % 7), offset: 8 * keys.length, length: 96 };
      const key: [number, number, NeedleLocation] = [rnd(), rnd(), loc];
      keys.push(key);
      index.set(key[0], key[1], loc);
    };
    for (let i = 0; i < 20_000; i++) add(); // a base of 5 chunks, 4 of them full
    index.flush();
    const base = keys.length;
    // From here on the kernel cannot grow: merges live on the pages of its free list until the base needs one
    // more chunk than it ever had. That merge has streamed the whole base (its full input pages given back and
    // reused as output) when it traps, before the chunk table and directory are switched over.
    index.setPageLimit(index.memoryBytes / PAGE);
    const failure = thrown(() => {
      for (;;) add();
    });
    const inserted = keys.length - base;
    expect(isNexusError(failure, "index_broken"), String(failure)).toBe(true);
    expect((failure as NexusError).details).toEqual({ operation: "set", brokenBy: "set" });
    expect((failure as NexusError).cause).toBeInstanceOf(WebAssembly.RuntimeError);
    expect(inserted % 64).toBe(0); // the insert that filled L0 and ran the merge
    expect(Math.ceil(keys.length / CHUNK_ENTRIES)).toBeGreaterThan(Math.ceil(base / CHUNK_ENTRIES));
    expect(index.broken).toBe(true);

    // Every key, known or not, gets the error instead of an answer.
    let answers = 0;
    for (const [lo, hi] of keys) {
      for (const call of [() => index.get(lo, hi), () => index.has(lo, hi)]) {
        const e = thrown(() => {
          call();
          answers++;
        });
        expect(isNexusError(e, "index_broken")).toBe(true);
      }
    }
    expect(answers).toBe(0);
    const [lo, hi, loc] = keys[0]!;
    const e = expectBroken(() => index.get(lo, hi), "get");
    expect(e.details).toEqual({ operation: "get", brokenBy: "set" });
    expect(e.cause).toBe((failure as NexusError).cause);
    expectBroken(() => index.set(lo, hi, loc), "set");
    expectBroken(() => index.set(rnd(), rnd(), loc), "set");
    expectBroken(() => index.remove(lo, hi), "remove");
    const few = new Uint32Array(2 * 8);
    for (let i = 0; i < 8; i++) few.set(keys[i]!.slice(0, 2) as number[], 2 * i);
    const out = new Uint32Array(2 * 8);
    expectBroken(() => index.lookupMany(few, out), "lookupMany");
    expect(out.every((w) => w === 0)).toBe(true);
    expectBroken(() => index.entries().next(), "entries");
    expectBroken(() => index.flush(), "flush");
    expectBroken(() => index.size, "size");
    expectBroken(() => index.clear(), "clear");
    expectBroken(() => index.setMergeThreshold(0), "setMergeThreshold");
    expectBroken(() => index.setPageLimit(0), "setPageLimit");
    expect(index.memoryBytes).toBeGreaterThan(0);
    index.close(); // releases what it holds without touching the kernel's tables
    expectBroken(() => index.get(lo, hi), "get");
  });

  it("a trap in the first merge of a fresh index (no spare page at all) breaks it the same way", () => {
    const index = NeedleIndex.createSync();
    index.setMergeThreshold(16);
    index.setPageLimit(index.memoryBytes / PAGE);
    for (let i = 1; i < 16; i++) index.set(i, i * 977, { volume: 1, offset: 8 * i, length: 64 });
    const e = thrown(() => index.set(16, 16 * 977, { volume: 1, offset: 128, length: 64 }));
    expect(isNexusError(e, "index_broken")).toBe(true);
    for (let i = 1; i <= 16; i++) expectBroken(() => index.get(i, i * 977), "get");
    index.close();
  });

  it("page limit 0 is the default; a limit only stops growth, and bad limits are refused", () => {
    const index = NeedleIndex.createSync();
    index.setMergeThreshold(64);
    index.setPageLimit(index.memoryBytes / PAGE + 64);
    for (let i = 0; i < 20_000; i++) index.set(i + 1, i * 7919, { volume: 1, offset: 8 * i, length: 64 });
    index.setPageLimit(0);
    for (let i = 20_000; i < 60_000; i++)
      index.set(i + 1, i * 7919, { volume: 1, offset: 8 * i, length: 64 });
    expect(index.size).toBe(60_000);
    expect(index.get(59_001, 59_000 * 7919)).toEqual({ volume: 1, offset: 8 * 59_000, length: 64 });
    expect(index.broken).toBe(false);
    for (const bad of [-1, 1.5, 65537, Number.NaN]) {
      const e = thrown(() => index.setPageLimit(bad));
      expect(isNexusError(e, "invalid_argument")).toBe(true);
    }
    index.close();
  });
});
