import { readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ErasureCodedTier } from "../../src/blobs/tiered/erasure-coded-tier.js";
import { ShardCodec } from "../../src/blobs/tiered/shard-codec.js";
import { SHARD_HEADER_BYTES } from "../../src/blobs/tiered/shard-file.js";
import { WorkerPool } from "../../src/parallel/pool.js";
import { resetParallelThresholds, setParallelThreshold } from "../../src/parallel/thresholds.js";
import { ready } from "../../src/wasm/loader.js";
import { type Layout, makeLayout, objectBytes, removeLayout, sameBytes } from "./tiered-fixtures.js";

const layouts: Layout[] = [];
function layout(warmCount = 14): Layout {
  const l = makeLayout(undefined, warmCount);
  layouts.push(l);
  return l;
}
afterEach(async () => {
  await Promise.all(layouts.splice(0).map(removeLayout));
});
beforeAll(async () => {
  await ready();
});

const KEY = "3f".repeat(32);
const codecs: ShardCodec[] = [];
function warmTier(dirs: string[], fsync = false): ErasureCodedTier {
  const codec = new ShardCodec();
  codecs.push(codec);
  return new ErasureCodedTier({ dirs, fsync }, codec);
}
afterEach(() => {
  for (const codec of codecs.splice(0)) codec.close();
});

/** The path of shard `index` of `key`, wherever it landed. */
function shardPath(dirs: string[], key: string, index: number): string {
  for (const dir of dirs) {
    const path = join(dir, key.slice(0, 2), `${key}.${index}`);
    try {
      readFileSync(path);
      return path;
    } catch {}
  }
  throw new Error(`shard ${index} not found`);
}

/** All 1,001 ways to choose 4 of 14 directories. */
function fourOf14(): number[][] {
  const out: number[][] = [];
  for (let a = 0; a < 14; a++)
    for (let b = a + 1; b < 14; b++)
      for (let c = b + 1; c < 14; c++) for (let d = c + 1; d < 14; d++) out.push([a, b, c, d]);
  return out;
}

describe("warm tier", () => {
  it("round-trips objects of every awkward size, one shard per directory", async () => {
    const { warmDirs } = layout();
    const warm = warmTier(warmDirs);
    for (const size of [0, 1, 9, 10, 11, 159, 160, 161, 65_537, 1_000_003]) {
      const key = size.toString(16).padStart(64, "0");
      const bytes = objectBytes(size, size + 1);
      await warm.write(key, bytes);
      expect(await warm.isComplete(key)).toBe(true);
      const report = await warm.read(key);
      expect(sameBytes(report.bytes, bytes)).toBe(true);
      expect(report).toMatchObject({ missing: [], corrupt: [] });
    }
    for (const dir of warmDirs) {
      // Every directory holds exactly one shard of each object.
      const files = readdirSync(dir, { recursive: true }).filter((f) => String(f).includes("."));
      expect(files.length).toBe(10);
    }
  });

  it("survives the loss of any 4 of 14 directories and says so clearly past that", async () => {
    const { warmDirs } = layout();
    const warm = warmTier(warmDirs);
    const bytes = objectBytes(300_001, 7);
    await warm.write(KEY, bytes);
    // Every choice of 4 lost directories, simulated by hiding them (a renamed directory is a lost disk).
    for (const lost of fourOf14()) {
      for (const i of lost) renameSync(warmDirs[i]!, `${warmDirs[i]}.lost`);
      const report = await warm.read(KEY);
      if (!sameBytes(report.bytes, bytes)) throw new Error(`wrong bytes after losing ${lost.join(",")}`);
      expect(report.missing.length).toBeLessThanOrEqual(4); // parity is read only when data is missing
      for (const i of lost) renameSync(`${warmDirs[i]}.lost`, warmDirs[i]!);
    }
    // Remove 4 whole directories for good, then a fifth.
    for (const i of [1, 4, 7, 12]) await rm(warmDirs[i]!, { recursive: true, force: true });
    expect(sameBytes((await warm.read(KEY)).bytes, bytes)).toBe(true);
    expect(warm.tolerableDirectoryLosses).toBe(4);
    await rm(warmDirs[0]!, { recursive: true, force: true });
    await expect(warm.read(KEY)).rejects.toMatchObject({
      code: "too_many_losses",
      message: expect.stringMatching(/5 of 14 shards are missing or corrupt, at most 4 can be rebuilt/),
    });
  });

  it("treats a corrupted shard as lost, not trusted, and repair rewrites it", async () => {
    const { warmDirs } = layout();
    const warm = warmTier(warmDirs);
    const bytes = objectBytes(50_000, 9);
    await warm.write(KEY, bytes);
    // Flip one payload byte of data shard 3 and one header byte of parity shard 11.
    const p3 = shardPath(warmDirs, KEY, 3);
    const s3 = readFileSync(p3);
    s3[SHARD_HEADER_BYTES + 100]! ^= 1;
    writeFileSync(p3, s3);
    const p11 = shardPath(warmDirs, KEY, 11);
    const s11 = readFileSync(p11);
    s11[9]! ^= 0x80;
    writeFileSync(p11, s11);
    const report = await warm.read(KEY);
    expect(sameBytes(report.bytes, bytes)).toBe(true);
    expect(report.corrupt).toEqual([3, 11]);
    expect(await warm.isComplete(KEY)).toBe(false);
    await warm.repair(KEY, report.corrupt);
    const again = await warm.read(KEY);
    expect(again).toMatchObject({ missing: [], corrupt: [] });
    expect(await warm.isComplete(KEY)).toBe(true);
  });

  it("reports not_found for an unknown key and removes every shard", async () => {
    const { warmDirs } = layout();
    const warm = warmTier(warmDirs);
    await expect(warm.read(KEY)).rejects.toMatchObject({ code: "not_found" });
    await warm.write(KEY, objectBytes(1000, 1));
    expect(await warm.remove(KEY)).toBe(14);
    expect(await warm.hasAny(KEY)).toBe(false);
    await expect(warm.read("nope")).rejects.toMatchObject({ code: "invalid_argument" });
  });

  it("finds shards in other directories when the directory list changed order", async () => {
    const { warmDirs } = layout();
    const bytes = objectBytes(10_000, 13);
    await warmTier(warmDirs).write(KEY, bytes);
    const reordered = warmTier([...warmDirs].reverse());
    expect(sameBytes((await reordered.read(KEY)).bytes, bytes)).toBe(true);
  });

  it("with fewer directories than shards, tolerates fewer directory losses (and says how many)", () => {
    const { warmDirs } = layout(7);
    expect(warmTier(warmDirs).tolerableDirectoryLosses).toBe(2);
    expect(() => warmTier([])).toThrow(/non-empty/);
    expect(() => warmTier(["a", "a"])).toThrow(/twice/);
  });

  it("costs 1.4x the object's bytes on disk for large objects", async () => {
    const { warmDirs } = layout();
    const warm = warmTier(warmDirs);
    const size = 8 * 1024 * 1024;
    await warm.write(KEY, objectBytes(size, 3));
    const usage = await warm.diskUsage();
    expect(usage.files).toBe(14);
    const overhead = usage.allocatedBytes / size;
    expect(overhead).toBeGreaterThanOrEqual(1.4);
    expect(overhead).toBeLessThan(1.41);
  });

  it("encodes large objects on the worker pool above the erasure threshold, byte-identical", async () => {
    const { warmDirs } = layout();
    const pool = new WorkerPool({ maxThreads: 2 });
    const codec = new ShardCodec({ pool: () => pool });
    const bytes = objectBytes(3 * 1024 * 1024 + 5, 11);
    try {
      setParallelThreshold("erasure", 1024 * 1024);
      const parallel = await codec.encode(bytes, 10, 4);
      expect(parallel.parallel).toBe(true);
      expect(pool.started).toBe(true);
      resetParallelThresholds("erasure");
      const serial = await codec.encode(bytes, 10, 4);
      expect(serial.parallel).toBe(false);
      parallel.shards.forEach((shard, i) => {
        expect(sameBytes(shard, serial.shards[i]!)).toBe(true);
      });
      setParallelThreshold("erasure", 1024 * 1024);
      const warm = new ErasureCodedTier({ dirs: warmDirs, fsync: false }, codec);
      const written = await warm.write(KEY, bytes);
      expect(written.parallel).toBe(true);
      expect(sameBytes((await warm.read(KEY)).bytes, bytes)).toBe(true);
    } finally {
      resetParallelThresholds("erasure");
      codec.close();
      await pool.close();
    }
  });
});
