/**
 * Reed-Solomon RS(10,4): encode and reconstruct (4 lost data shards) at 4 KiB, 64 KiB and 1 MiB shards, against
 * @ronomon/reed-solomon (C, native addon) and @digitaldefiance/reed-solomon-erasure.wasm (Rust compiled to
 * WASM), all in the same run on one thread. Rates are data bytes per second (k x shard size per call): the
 * table's "ops/s" column reads as bytes/s, so "2.50G" is 2.5 GB/s.
 *
 * @ronomon runs on libuv's thread pool and calls back; calls are awaited one at a time, so it too uses one
 * core at a time (its callback hop is part of what a caller pays). Our reconstruct allocates the rebuilt
 * shards (its API returns them); the peers rebuild in place.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { instantiateSync } from "@assemblyscript/loader";
import { ReedSolomonErasure } from "@digitaldefiance/reed-solomon-erasure.wasm";
import { ErasureCodedTier } from "../src/blobs/tiered/erasure-coded-tier.js";
import { ShardCodec } from "../src/blobs/tiered/shard-codec.js";
import { type ErasureExports, ReedSolomon } from "../src/kernels/erasure.js";
import { WorkerPool } from "../src/parallel/pool.js";
import { setParallelThreshold } from "../src/parallel/thresholds.js";
import { type Kernel, MemoryViews, ready, simdSupported } from "../src/wasm/loader.js";
import { type BenchCase, type Comparison, type Goal, runSuite } from "./harness.js";

const K = 10;
const M = 4;
const LOST = [0, 3, 6, 9];
const SIZES: [string, number][] = [
  ["4KiB", 4 * 1024],
  ["64KiB", 64 * 1024],
  ["1MiB", 1024 * 1024],
];

interface Ronomon {
  create(k: number, m: number): unknown;
  encode(
    context: unknown,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    callback: (error: Error | undefined) => void,
  ): void;
}

function loadRonomon(): Ronomon | undefined {
  try {
    return createRequire(import.meta.url)("@ronomon/reed-solomon") as Ronomon;
  } catch (error) {
    console.log(
      `@ronomon/reed-solomon unavailable (${(error as Error).message}); run \`npm rebuild @ronomon/reed-solomon\``,
    );
    return undefined;
  }
}

/** The scalar build, instantiated directly (the loader picks the SIMD one on this runtime). */
function scalarKernel(): Kernel<ErasureExports> {
  const bytes = readFileSync(new URL("../dist/wasm/erasure.scalar.wasm", import.meta.url));
  const { instance } = instantiateSync(new WebAssembly.Module(bytes), {});
  const exports = instance.exports as unknown as ErasureExports & { memory: WebAssembly.Memory };
  return { name: "erasure", exports, memory: exports.memory, views: new MemoryViews(exports.memory) };
}

function fill(bytes: Uint8Array, seed: number): Uint8Array {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < bytes.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    bytes[i] = s & 0xff;
  }
  return bytes;
}

function bitmask(indexes: Iterable<number>): number {
  let mask = 0;
  for (const i of indexes) mask |= 1 << i;
  return mask;
}

await ready();
const ronomon = loadRonomon();
// Its ESM build's fromCurrentDirectorySync() uses __dirname, which ESM lacks: hand it the bytes instead.
const peerWasm = ReedSolomonErasure.fromBytes(
  readFileSync(createRequire(import.meta.url).resolve("@digitaldefiance/reed-solomon-erasure.wasm/wasm")),
);
const rs = new ReedSolomon(K, M);
const rsScalar = new ReedSolomon(K, M, { kernel: scalarKernel() });

const cases: BenchCase[] = [];
const comparisons: Comparison[] = [];
const goals: Goal[] = [];
for (const [label, size] of SIZES) {
  const bytesPerCall = K * size;
  // One contiguous buffer of k + m shards serves every implementation (ours reads subarrays of it).
  const all = fill(new Uint8Array((K + M) * size), size);
  const shards = Array.from({ length: K + M }, (_, i) => all.subarray(i * size, (i + 1) * size));
  const data = shards.slice(0, K);
  const parity = shards.slice(K);
  rs.encode(data, parity);
  const lost = shards.map((s, i) => (LOST.includes(i) ? null : s));
  const rebuilt = rs.reconstruct(lost);
  if (!LOST.every((i) => Buffer.compare(rebuilt[i]!, shards[i]!) === 0)) throw new Error("self-check failed");

  cases.push(
    { name: `nexus encode ${label}`, fn: () => rs.encode(data, parity), opsPerCall: bytesPerCall },
    { name: `nexus reconstruct ${label}`, fn: () => rs.reconstruct(lost), opsPerCall: bytesPerCall },
    {
      name: `nexus scalar encode ${label}`,
      fn: () => rsScalar.encode(data, parity),
      opsPerCall: bytesPerCall,
    },
  );

  const wasmBuffer = all.slice();
  const available = shards.map((_, i) => !LOST.includes(i));
  cases.push(
    {
      name: `rust-wasm encode ${label}`,
      fn: () => peerWasm.encode(wasmBuffer, K, M),
      opsPerCall: bytesPerCall,
    },
    {
      name: `rust-wasm reconstruct ${label}`,
      fn: () => peerWasm.reconstruct(wasmBuffer, K, M, available),
      opsPerCall: bytesPerCall,
    },
  );
  comparisons.push(
    { subject: `nexus encode ${label}`, peer: `rust-wasm encode ${label}`, goalRatio: 1 },
    { subject: `nexus reconstruct ${label}`, peer: `rust-wasm reconstruct ${label}`, goalRatio: 1 },
  );

  if (ronomon) {
    const context = ronomon.create(K, M);
    const buffer = Buffer.from(all.subarray(0, K * size));
    const parityBuffer = Buffer.from(all.subarray(K * size));
    const run = (sources: number, targets: number) =>
      new Promise<void>((resolve, reject) =>
        ronomon.encode(context, sources, targets, buffer, 0, K * size, parityBuffer, 0, M * size, (e) =>
          e ? reject(e) : resolve(),
        ),
      );
    const dataMask = bitmask(data.keys());
    const parityMask = bitmask([10, 11, 12, 13]);
    const lostMask = bitmask(LOST);
    const survivorMask = bitmask(shards.keys()) & ~lostMask;
    cases.push(
      {
        name: `ronomon encode ${label}`,
        fn: () => run(dataMask, parityMask),
        opsPerCall: bytesPerCall,
      },
      {
        name: `ronomon reconstruct ${label}`,
        fn: () => run(survivorMask, lostMask),
        opsPerCall: bytesPerCall,
      },
    );
    comparisons.push(
      { subject: `nexus encode ${label}`, peer: `ronomon encode ${label}` },
      { subject: `nexus reconstruct ${label}`, peer: `ronomon reconstruct ${label}` },
    );
  }
  if (size >= 64 * 1024) {
    goals.push(
      { case: `nexus encode ${label}`, minOpsPerSec: 2.5e9 },
      { case: `nexus reconstruct ${label}`, minOpsPerSec: 1.5e9 },
    );
  }
}

// Whole objects through the warm tier's codec: one thread, and the worker pool (2 threads) for large objects.
const OBJECT = 32 * 1024 * 1024;
const object = fill(new Uint8Array(OBJECT), 77);
const pool = new WorkerPool({ maxThreads: 2 });
const serialCodec = new ShardCodec();
const parallelCodec = new ShardCodec({ pool: () => pool });
setParallelThreshold("erasure", 4 * 1024 * 1024);
// Start the workers (and their kernels) before timing: thread start-up is paid once per pool, not per call.
await parallelCodec.encode(object, K, M);
cases.push(
  { name: "object encode 32MiB 1 thread", fn: () => serialCodec.encode(object, K, M), opsPerCall: OBJECT },
  { name: "object encode 32MiB pool(2)", fn: () => parallelCodec.encode(object, K, M), opsPerCall: OBJECT },
);
comparisons.push({ subject: "object encode 32MiB pool(2)", peer: "object encode 32MiB 1 thread" });

/** Bytes the warm tier allocates on disk per byte of object, for objects of `size` bytes. */
async function diskOverhead(size: number, count: number): Promise<number> {
  const root = mkdtempSync(join(tmpdir(), "nexus-erasure-bench-"));
  try {
    const dirs = Array.from({ length: K + M }, (_, i) => join(root, `disk${i}`));
    const warm = new ErasureCodedTier({ dirs, fsync: false }, serialCodec);
    for (let i = 0; i < count; i++) {
      const bytes = fill(new Uint8Array(size), i + 1);
      await warm.write(i.toString(16).padStart(64, "0"), bytes);
    }
    const usage = await warm.diskUsage();
    return usage.allocatedBytes / (size * count);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
const overhead: Record<string, string> = {};
for (const [label, size, count] of [
  ["64KiB", 64 * 1024, 64],
  ["1MiB", 1024 * 1024, 16],
  ["16MiB", 16 * 1024 * 1024, 2],
] as const) {
  overhead[`warm tier on-disk bytes per object byte, ${label} objects`] =
    `${(await diskOverhead(size, count)).toFixed(3)}x`;
}

const result = await runSuite("erasure", cases, {
  comparisons,
  goals,
  facts: {
    "rate unit": "data bytes/s (k x shard size per call); G = 1e9",
    "simd build": simdSupported() ? "yes" : "no (scalar fallback)",
    "@ronomon/reed-solomon native binding": ronomon ? "loaded" : "missing",
    "chunk size (bytes per shard per kernel call)": rs.chunkSize,
    ...overhead,
  },
});
console.log("\nGB/s (data bytes):");
for (const r of result.results) console.log(`  ${r.name.padEnd(32)} ${(r.opsPerSec / 1e9).toFixed(2)} GB/s`);
rs.close();
rsScalar.close();
serialCodec.close();
parallelCodec.close();
await pool.close();
