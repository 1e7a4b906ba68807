/**
 * The erasure-coded tier (the tiered store's warm tier): each object stored as k + m Reed-Solomon shard files
 * (default RS(10,4): 1.4x the object's bytes) spread over N directories, stand-ins for disks or nodes. With
 * N ≥ k + m every shard of an object sits in a different directory, so losing any m directories loses nothing;
 * with fewer directories some hold two shards of an object and tolerate less.
 *
 * Shard files are laid out in shard-file.ts; a shard whose header or bytes fail their checksum is treated as
 * lost. Each file is written under a temporary name, fsynced and renamed, so a shard is either complete or absent.
 * Placement: shard i of key K goes to directory (h(K) + i) mod N, h(K) = the key's first 32 bits; a reader
 * looks in the other directories only when a shard is not where it belongs.
 */
import { open, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { IHasher } from "hash-wasm";
import { ioError, removeFile, syncDirectory, TEMP_SUFFIX, writeFileAtomic } from "../../io/durable-files.js";
import { NexusError } from "../../util/errors.js";
import type { EncodedObject, ShardCodec } from "./shard-codec.js";
import {
  consensus,
  crc32c,
  crc32cHasher,
  decodeShardHeader,
  encodeShardHeader,
  SHARD_HEADER_BYTES,
  type ShardHeader,
  sameShape,
} from "./shard-file.js";

const KEY_PATTERN = /^[0-9a-f]{64}$/;

export interface ErasureCodedTierOptions {
  /** Directories to spread shards over (k + m or more for full fault tolerance). */
  dirs: string[];
  /** k, data shards per object (default 10). */
  dataShards?: number;
  /** m, parity shards per object (default 4). */
  parityShards?: number;
  /** fsync shard files and their directories (default true). */
  fsync?: boolean;
}

/** What a read found, shard by shard. */
export interface ShardReadReport {
  bytes: Uint8Array;
  /** Shard indexes absent from every directory. */
  missing: number[];
  /** Shard indexes present but failing a checksum (or naming another object). */
  corrupt: number[];
}

export class ErasureCodedTier {
  readonly dirs: readonly string[];
  readonly dataShards: number;
  readonly parityShards: number;
  readonly #fsync: boolean;
  readonly #codec: ShardCodec;

  constructor(options: ErasureCodedTierOptions, codec: ShardCodec) {
    const dirs = options?.dirs;
    if (!Array.isArray(dirs) || dirs.length === 0 || dirs.some((d) => typeof d !== "string" || d === "")) {
      throw new NexusError("invalid_argument", "warm.dirs must be a non-empty array of directory paths", {
        dirs,
      });
    }
    if (new Set(dirs).size !== dirs.length) {
      throw new NexusError("invalid_argument", "warm.dirs lists the same directory twice", { dirs });
    }
    const k = options.dataShards ?? 10;
    const m = options.parityShards ?? 4;
    if (!Number.isInteger(k) || !Number.isInteger(m) || k < 1 || m < 1 || k + m > 256) {
      throw new NexusError(
        "invalid_argument",
        `warm tier needs integers dataShards ≥ 1, parityShards ≥ 1, sum ≤ 256; got ${k} and ${m}`,
        { dataShards: k, parityShards: m },
      );
    }
    this.dirs = [...dirs];
    this.dataShards = k;
    this.parityShards = m;
    this.#fsync = options.fsync ?? true;
    this.#codec = codec;
  }

  /** How many whole directories can be lost without losing an object (with this many directories). */
  get tolerableDirectoryLosses(): number {
    const n = this.dataShards + this.parityShards;
    const perDir = Math.ceil(n / this.dirs.length);
    return Math.floor(this.parityShards / perDir);
  }

  /** Encodes and writes every shard; `onShard` hears each index once its file is durable. */
  async write(
    key: string,
    bytes: Uint8Array,
    onShard?: (index: number) => void,
  ): Promise<{ shardSize: number; parallel: boolean }> {
    assertKey(key);
    const k = this.dataShards;
    const m = this.parityShards;
    const hasher = await crc32cHasher();
    const encoded = await this.#codec.encode(bytes, k, m);
    const written = encoded.shards.map(async (_, index) => {
      await writeFileAtomic(
        this.#path(key, index),
        this.#shardFile(hasher, key, bytes.length, encoded, index),
        {
          fsync: this.#fsync,
          syncDir: this.#fsync,
        },
      );
      onShard?.(index);
    });
    try {
      await settleAll(written);
    } finally {
      encoded.release();
    }
    return { shardSize: encoded.shardSize, parallel: encoded.parallel };
  }

  /** The object's bytes (rebuilding lost shards in memory) and which shards were missing or corrupt. */
  async read(key: string): Promise<ShardReadReport> {
    assertKey(key);
    const hasher = await crc32cHasher();
    const k0 = this.dataShards;
    const found = new Map<number, { header: ShardHeader; payload: Uint8Array }>();
    const missing = new Set<number>();
    const corrupt = new Set<number>();
    let search = false;
    const load = async (index: number) => {
      const result = await this.#readShard(hasher, key, index, search);
      if (result === "missing") missing.add(index);
      else if (result === "corrupt") corrupt.add(index);
      else {
        missing.delete(index);
        found.set(index, result);
      }
    };
    // Data shards first, each where it belongs: when they are all good, parity is never read.
    await Promise.all(Array.from({ length: k0 }, (_, i) => load(i)));
    if (found.size + corrupt.size === 0 && !(await this.#anyShardFile(key))) {
      throw new NexusError("not_found", `no shard of ${key} in the warm tier`, { key });
    }
    // From here on a shard not in its own directory is looked for in the others (the list may have changed).
    search = true;
    if (found.size < k0) await Promise.all([...missing].map(load));
    let shape = consensus(found);
    const k = shape?.dataShards ?? k0;
    const m = shape?.parityShards ?? this.parityShards;
    const dataComplete = Array.from({ length: k }, (_, i) => i).every((i) => found.has(i));
    if (!dataComplete || k !== k0) {
      // Indexes below k0 were all tried already.
      const rest = Array.from({ length: Math.max(0, k + m - k0) }, (_, i) => k0 + i);
      await Promise.all(rest.map(load));
      shape = consensus(found);
    }
    if (shape === undefined) {
      if (corrupt.size > 0) {
        throw new NexusError(
          "too_many_losses",
          `${key} cannot be read from the warm tier: every shard found fails its checksum`,
          { key, shardsLeft: 0, shardsNeeded: k0, missing: sorted(missing), corrupt: sorted(corrupt) },
        );
      }
      throw new NexusError("not_found", `no shard of ${key} in the warm tier`, { key });
    }
    // Shards that disagree with the consensus on shape are as good as corrupt.
    for (const [index, shard] of found) {
      if (!sameShape(shard.header, shape)) {
        found.delete(index);
        corrupt.add(index);
      }
    }
    const n = shape.dataShards + shape.parityShards;
    const shards: (Uint8Array | null)[] = Array.from({ length: n }, (_, i) => found.get(i)?.payload ?? null);
    const usable = shards.filter((s) => s !== null).length;
    if (usable < shape.dataShards) {
      throw new NexusError(
        "too_many_losses",
        `${key} cannot be read from the warm tier: ${n - usable} of ${n} shards are missing or corrupt, at most ${shape.parityShards} can be rebuilt`,
        {
          key,
          shardsLeft: usable,
          shardsNeeded: shape.dataShards,
          missing: sorted(missing),
          corrupt: sorted(corrupt),
        },
      );
    }
    const bytes = this.#codec.decode(shards, shape.dataShards, shape.parityShards, shape.size);
    return {
      bytes,
      missing: sorted(missing).filter((i) => i < n),
      corrupt: sorted(corrupt).filter((i) => i < n),
    };
  }

  /** Whether all k + m shards are in place with valid headers agreeing on the object (bytes not checked). */
  async isComplete(key: string): Promise<boolean> {
    assertKey(key);
    const hasher = await crc32cHasher();
    const n = this.dataShards + this.parityShards;
    const headers = await Promise.all(
      Array.from({ length: n }, (_, i) => this.#readHeader(hasher, this.#path(key, i))),
    );
    const first = headers[0];
    if (first === undefined) return false;
    return headers.every(
      (h, i) =>
        h !== undefined &&
        h.key === key &&
        h.index === i &&
        sameShape(h, first) &&
        h.dataShards === this.dataShards &&
        h.parityShards === this.parityShards,
    );
  }

  /**
   * How many shards of `key` sit in their own directories with valid headers (bytes not checked): k or more
   * means the object can very likely be read; a cheap check that reads 64 bytes per shard.
   */
  async validShardCount(key: string): Promise<number> {
    assertKey(key);
    const hasher = await crc32cHasher();
    const n = this.dataShards + this.parityShards;
    const headers = await Promise.all(
      Array.from({ length: n }, (_, i) => this.#readHeader(hasher, this.#path(key, i))),
    );
    return headers.filter((h, i) => h !== undefined && h.key === key && h.index === i).length;
  }

  /** Whether any shard of `key` exists (in its own directory). */
  async hasAny(key: string): Promise<boolean> {
    assertKey(key);
    const n = this.dataShards + this.parityShards;
    const exists = await Promise.all(Array.from({ length: n }, (_, i) => fileExists(this.#path(key, i))));
    return exists.some(Boolean);
  }

  /** Rewrites the given shards of `key` from the others (after losses or corruption). */
  async repair(key: string, indexes: readonly number[]): Promise<number> {
    if (indexes.length === 0) return 0;
    const { bytes } = await this.read(key);
    const hasher = await crc32cHasher();
    const k = this.dataShards;
    const m = this.parityShards;
    const encoded = await this.#codec.encode(bytes, k, m);
    const rewritten = settleAll(
      indexes.map(async (index) => {
        await writeFileAtomic(
          this.#path(key, index),
          this.#shardFile(hasher, key, bytes.length, encoded, index),
          {
            fsync: this.#fsync,
          },
        );
      }),
    );
    try {
      await rewritten;
    } finally {
      encoded.release();
    }
    return indexes.length;
  }

  /** Removes every shard of `key` (and temporary files of unfinished writes); returns how many files. */
  async remove(key: string): Promise<number> {
    assertKey(key);
    let removed = 0;
    const fanOut = key.slice(0, 2);
    await Promise.all(
      this.dirs.map(async (dir) => {
        const folder = join(dir, fanOut);
        let names: string[];
        try {
          names = await readdir(folder);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
          throw ioError(`could not list ${folder}`, folder, error);
        }
        let here = 0;
        for (const name of names) {
          if (!name.startsWith(`${key}.`)) continue;
          if (await removeFile(join(folder, name))) here++;
        }
        if (here > 0 && this.#fsync) await syncDirectory(folder);
        removed += here;
      }),
    );
    return removed;
  }

  /** Files and bytes the warm tier occupies on disk (allocated blocks), for measuring its real overhead. */
  async diskUsage(): Promise<{ files: number; bytes: number; allocatedBytes: number }> {
    let files = 0;
    let bytes = 0;
    let allocatedBytes = 0;
    for (const dir of this.dirs) {
      let fans: string[];
      try {
        fans = await readdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw error;
      }
      for (const fan of fans) {
        let names: string[];
        try {
          names = await readdir(join(dir, fan));
        } catch {
          continue;
        }
        for (const name of names) {
          if (name.endsWith(TEMP_SUFFIX)) continue;
          const info = await stat(join(dir, fan, name)).catch(() => undefined);
          if (!info?.isFile()) continue;
          files++;
          bytes += info.size;
          allocatedBytes += info.blocks * 512;
        }
      }
    }
    return { files, bytes, allocatedBytes };
  }

  // ---- internals -----------------------------------------------------------------------------------------

  /** Shard `index` of an encoded object as its file's parts: the header, then the shard's bytes. */
  #shardFile(
    hasher: IHasher,
    key: string,
    size: number,
    encoded: EncodedObject,
    index: number,
  ): Uint8Array[] {
    const shard = encoded.shards[index]!;
    const header = encodeShardHeader(hasher, {
      dataShards: this.dataShards,
      parityShards: this.parityShards,
      index,
      size,
      shardSize: encoded.shardSize,
      crc: crc32c(hasher, shard),
      key,
    });
    return [header, shard];
  }

  #dirIndex(key: string, index: number): number {
    const start = Number.parseInt(key.slice(0, 8), 16) % this.dirs.length;
    return (start + index) % this.dirs.length;
  }

  #path(key: string, index: number, dirIndex = this.#dirIndex(key, index)): string {
    return join(this.dirs[dirIndex]!, key.slice(0, 2), `${key}.${index}`);
  }

  async #readShard(
    hasher: IHasher,
    key: string,
    index: number,
    search: boolean,
  ): Promise<{ header: ShardHeader; payload: Uint8Array } | "missing" | "corrupt"> {
    const home = this.#dirIndex(key, index);
    let file = await readIfExists(this.#path(key, index, home));
    for (let d = 0; search && file === undefined && d < this.dirs.length; d++) {
      if (d !== home) file = await readIfExists(this.#path(key, index, d));
    }
    if (file === undefined) return "missing";
    const header = decodeShardHeader(hasher, file);
    if (header === undefined || header.key !== key || header.index !== index) return "corrupt";
    const payload = file.subarray(SHARD_HEADER_BYTES);
    if (payload.length !== header.shardSize || crc32c(hasher, payload) !== header.crc) return "corrupt";
    return { header, payload };
  }

  /** Whether any file of `key` is in any directory (one listing per directory). */
  async #anyShardFile(key: string): Promise<boolean> {
    const lists = await Promise.all(
      this.dirs.map((dir) => readdir(join(dir, key.slice(0, 2))).catch(() => [] as string[])),
    );
    return lists.some((names) =>
      names.some((name) => name.startsWith(`${key}.`) && !name.endsWith(TEMP_SUFFIX)),
    );
  }

  async #readHeader(hasher: IHasher, path: string): Promise<ShardHeader | undefined> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw ioError(`could not open ${path}`, path, error);
    }
    try {
      const head = new Uint8Array(SHARD_HEADER_BYTES);
      const { bytesRead } = await handle.read(head, 0, SHARD_HEADER_BYTES, 0);
      const header = bytesRead === SHARD_HEADER_BYTES ? decodeShardHeader(hasher, head) : undefined;
      if (header === undefined) return undefined;
      const { size } = await handle.stat();
      return size === SHARD_HEADER_BYTES + header.shardSize ? header : undefined;
    } finally {
      await handle.close();
    }
  }
}

function sorted(indexes: Set<number>): number[] {
  return [...indexes].sort((a, b) => a - b);
}

function assertKey(key: string): void {
  if (typeof key !== "string" || !KEY_PATTERN.test(key)) {
    throw new NexusError(
      "invalid_argument",
      `object key must be 64 lowercase hex digits, got ${JSON.stringify(key)}`,
      {
        key,
      },
    );
  }
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw ioError(`could not read ${path}`, path, error);
  }
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Waits for every promise, then rethrows the first failure (so no write is still running when we throw). */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
