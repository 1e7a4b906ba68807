import { readFileSync } from "node:fs";
import { instantiateSync } from "@assemblyscript/loader";
import binaryen from "binaryen";
import fc from "fast-check";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { type ErasureExports, ReedSolomon } from "../../src/kernels/erasure.js";
import { NexusError } from "../../src/util/errors.js";
import { type Kernel, MemoryViews, ready, simdSupported } from "../../src/wasm/loader.js";
import * as twin from "../twins/erasure.js";

const wasmFile = (name: string) => new URL(`../../dist/wasm/${name}.wasm`, import.meta.url);

/** A private instance of one specific build, bypassing the loader's SIMD choice. */
function kernelBuild(file: string): Kernel<ErasureExports> {
  const module = new WebAssembly.Module(readFileSync(wasmFile(file)));
  const { instance } = instantiateSync(module, {});
  const exports = instance.exports as unknown as ErasureExports & { memory: WebAssembly.Memory };
  return { name: "erasure", exports, memory: exports.memory, views: new MemoryViews(exports.memory) };
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

function randomShards(count: number, size: number, seed: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => randomBytes(size, seed * 7919 + i + 1));
}

/** Every subset of {0..n-1} with 1..max elements. */
function lossPatterns(n: number, max: number): number[][] {
  const out: number[][] = [];
  const walk = (start: number, chosen: number[]) => {
    if (chosen.length > 0) out.push(chosen.slice());
    if (chosen.length === max) return;
    for (let i = start; i < n; i++) {
      chosen.push(i);
      walk(i + 1, chosen);
      chosen.pop();
    }
  };
  walk(0, []);
  return out;
}

function drop(shards: Uint8Array[], lost: number[]): (Uint8Array | null)[] {
  return shards.map((s, i) => (lost.includes(i) ? null : s));
}

beforeAll(async () => {
  await ready();
});

const builds: [string, () => Kernel<ErasureExports> | undefined][] = [
  ["simd", () => (simdSupported() ? kernelBuild("erasure") : undefined)],
  ["scalar", () => kernelBuild("erasure.scalar")],
];

describe("erasure builds", () => {
  it("the scalar build uses no SIMD instruction, the loader picks SIMD here", () => {
    const features =
      binaryen.Features.MVP |
      binaryen.Features.BulkMemory |
      binaryen.Features.SignExt |
      binaryen.Features.MutableGlobals |
      binaryen.Features.NontrappingFPToInt;
    const module = binaryen.readBinaryWithFeatures(readFileSync(wasmFile("erasure.scalar")), features);
    expect(module.validate()).toBeTruthy();
    module.dispose();
    expect(simdSupported()).toBe(true);
  });

  it("the loader picks the scalar build where SIMD is missing", async () => {
    // planBytes tells the builds apart: 32 bytes per coefficient (SIMD) vs 1 KiB per input per 4 rows (scalar).
    expect(kernelBuild("erasure").exports.planBytes(4, 10)).toBe(1280);
    expect(kernelBuild("erasure.scalar").exports.planBytes(4, 10)).toBe(10240);
    vi.resetModules();
    const validate = vi.spyOn(WebAssembly, "validate").mockReturnValue(false);
    try {
      const loader = await import("../../src/wasm/loader.js");
      await loader.ready();
      const kernel = loader.instantiateKernel<ErasureExports>("erasure");
      expect(kernel.exports.planBytes(4, 10)).toBe(10240);
    } finally {
      validate.mockRestore();
      vi.resetModules();
    }
  });
});

describe.each(builds)("ReedSolomon on the %s build", (_name, build) => {
  let kernel: Kernel<ErasureExports>;
  beforeAll(() => {
    const k = build();
    if (k === undefined) throw new Error("SIMD is not supported here");
    kernel = k;
  });
  const open = (k: number, m: number, chunkSize?: number) =>
    new ReedSolomon(k, m, { kernel, ...(chunkSize ? { chunkSize } : {}) });

  it("multiplies and inverts exactly like the twin, for every pair of field elements", () => {
    const x = kernel.exports;
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        if (x.gfMul(a, b) !== twin.gfMul(a, b)) throw new Error(`gfMul(${a}, ${b})`);
      }
      if (a > 0) expect(x.gfInv(a)).toBe(twin.gfInv(a));
    }
  });

  it("encodes like the twin for random k, m and sizes (every loop tail)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 17 }),
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 2 ** 31 }),
        (k, m, size, seed) => {
          using rs = open(k, m, 64);
          const data = randomShards(k, size, seed);
          const parity = rs.encode(data);
          expect(parity).toEqual(twin.encode(k, m, data));
          expect(rs.verify([...data, ...parity])).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("reconstructs like the twin for random loss patterns", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 90 }),
        fc.integer({ min: 1, max: 2 ** 31 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (k, m, size, seed, picks) => {
          using rs = open(k, m);
          const data = randomShards(k, size, seed);
          const all = [...data, ...rs.encode(data)];
          const lost = [...new Set(picks.map((p) => p % (k + m)))].slice(0, m);
          const shards = drop(all, lost);
          expect(rs.reconstruct(shards)).toEqual(twin.reconstruct(k, m, shards));
          expect(rs.reconstruct(shards)).toEqual(all);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("RS(10,4): all 1,470 patterns of 1 to 4 lost shards rebuild the exact bytes", () => {
    const patterns = lossPatterns(14, 4);
    expect(patterns.length).toBe(1470);
    using rs = open(10, 4);
    // 1 byte (tail only); 53 bytes: one 32-byte step, one 16-byte step and a 5-byte tail in the SIMD loop;
    // 4103 bytes: many full steps and an odd tail.
    for (const size of [1, 53, 4103]) {
      const data = randomShards(10, size, 42 + size);
      const all = [...data, ...rs.encode(data)];
      for (const lost of patterns) {
        const rebuilt = rs.reconstruct(drop(all, lost));
        for (const i of lost) {
          if (!equal(rebuilt[i]!, all[i]!))
            throw new Error(`${size} B: shard ${i} wrong after ${lost.join(",")}`);
        }
        const dataOnly = rs.reconstructData(drop(all, lost));
        expect(dataOnly.length).toBe(10);
        for (let i = 0; i < 10; i++) {
          if (!equal(dataOnly[i]!, all[i]!))
            throw new Error(`${size} B: data shard ${i} wrong after ${lost}`);
        }
      }
    }
  });

  it("rebuilds exact bytes for shard sizes from 1 byte to several MiB", () => {
    using rs = open(10, 4);
    const sizes = [1, 2, 3, 15, 16, 17, 31, 33, 63, 65, 1023, rs.chunkSize - 1, rs.chunkSize + 1, 100_003];
    const patterns = [[0, 1, 2, 3], [0, 5, 10, 13], [10, 11, 12, 13], [9], [2, 11]];
    for (const size of sizes) {
      const data = randomShards(10, size, size);
      const all = [...data, ...rs.encode(data)];
      for (const lost of patterns) expectSame(rs.reconstruct(drop(all, lost)), all);
    }
  });

  it("rebuilds a 3 MiB + 7 byte shard set after losing 4 shards", () => {
    using rs = open(10, 4);
    const size = 3 * 1024 * 1024 + 7;
    const data = randomShards(10, size, 7);
    const all = [...data, ...rs.encode(data)];
    for (const lost of [
      [1, 3, 5, 7],
      [6, 7, 12, 13],
    ]) {
      const rebuilt = rs.reconstruct(drop(all, lost));
      for (const i of lost) expect(equal(rebuilt[i]!, all[i]!)).toBe(true);
    }
  });

  it("handles the extremes of k + m ≤ 256", () => {
    for (const [k, m] of [
      [1, 1],
      [1, 255],
      [255, 1],
      [200, 56],
    ] as const) {
      using rs = open(k, m);
      const data = randomShards(k, 19, k * 1000 + m);
      const all = [...data, ...rs.encode(data)];
      const lost = Array.from({ length: Math.min(m, 6) }, (_, i) => (i * 37) % (k + m));
      expect(rs.reconstruct(drop(all, lost))).toEqual(all);
    }
  });

  it("verify spots a changed byte in any shard", () => {
    using rs = open(10, 4);
    const data = randomShards(10, 5000, 3);
    const all = [...data, ...rs.encode(data)];
    expect(rs.verify(all)).toBe(true);
    for (const i of [0, 9, 10, 13]) {
      const copy = all.map((s) => s.slice());
      copy[i]![4321]! ^= 0x40;
      expect(rs.verify(copy)).toBe(false);
    }
  });

  it("encodes into caller-supplied parity arrays", () => {
    using rs = open(4, 2);
    const data = randomShards(4, 100, 9);
    const out = [new Uint8Array(100), new Uint8Array(100)];
    expect(rs.encode(data, out)).toBe(out);
    expect(out).toEqual(twin.encode(4, 2, data));
  });

  it("gives a typed error for more than m losses and for bad input", () => {
    using rs = open(10, 4);
    const data = randomShards(10, 10, 1);
    const all = [...data, ...rs.encode(data)];
    const err = catchError(() => rs.reconstruct(drop(all, [0, 1, 2, 3, 4])));
    expect(err.code).toBe("too_many_losses");
    expect(err.message).toMatch(/5 of 14 shards are missing but at most 4/);
    expect(err.details).toMatchObject({ missing: [0, 1, 2, 3, 4], maxLosses: 4 });
    expect(catchError(() => rs.encode(data.slice(1))).code).toBe("invalid_argument");
    expect(catchError(() => rs.encode([...data.slice(1), new Uint8Array(11)])).message).toMatch(
      /same length/,
    );
    expect(catchError(() => rs.reconstruct(all.slice(1))).code).toBe("invalid_argument");
    expect(catchError(() => rs.encode(data, [new Uint8Array(10)])).code).toBe("invalid_argument");
    expect(catchError(() => open(0, 4)).message).toMatch(/dataShards/);
    expect(catchError(() => open(200, 57)).message).toMatch(/≤ 256/);
    expect(catchError(() => open(10, 4, 100)).message).toMatch(/chunkSize/);
  });

  it("frees its kernel memory on close and refuses work afterwards", () => {
    const before = kernel.memory.buffer.byteLength;
    for (let i = 0; i < 200; i++) {
      const rs = open(10, 4);
      const data = randomShards(10, 64, i);
      rs.reconstruct(drop([...data, ...rs.encode(data)], [i % 14]));
      rs.close();
    }
    expect(kernel.memory.buffer.byteLength).toBeLessThanOrEqual(before + 2 * 65536);
    const rs = open(2, 1);
    rs.close();
    rs.close();
    expect(catchError(() => rs.encode([new Uint8Array(1), new Uint8Array(1)])).code).toBe("closed");
  });
});

describe("ReedSolomon through the loader", () => {
  it("uses the shared kernel after ready()", () => {
    using rs = new ReedSolomon(10, 4);
    const data = randomShards(10, 1000, 11);
    const parity = rs.encode(data);
    expect(parity).toEqual(twin.encode(10, 4, data));
    expect(rs.parityMatrix.length).toBe(40);
  });
});

/** Byte equality of shard lists (toEqual walks large typed arrays element by element: far too slow). */
function expectSame(actual: Uint8Array[], expected: Uint8Array[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((shard, i) => {
    if (!equal(shard, expected[i]!)) throw new Error(`shard ${i} differs`);
  });
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function catchError(fn: () => unknown): NexusError {
  try {
    fn();
  } catch (error) {
    if (error instanceof NexusError) return error;
    throw error;
  }
  throw new Error("expected a NexusError");
}
