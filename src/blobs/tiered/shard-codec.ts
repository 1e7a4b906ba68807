/**
 * Object <-> shards for the warm tier. An object of `size` bytes becomes k data shards of ceil(size / k) bytes
 * (the last ones zero-padded) plus m parity shards. Objects larger than the `erasure` parallel threshold are
 * encoded on the worker pool: the shard columns are split into one range per thread, each encoded in place in
 * shared memory (see erasure-task.ts).
 */

import { ReedSolomon } from "../../kernels/erasure.js";
import type { WorkerPool } from "../../parallel/pool.js";
import { getParallelThreshold } from "../../parallel/thresholds.js";
import { NexusError } from "../../util/errors.js";
import type { EncodeColumnsTask } from "./erasure-task.js";

export interface EncodedObject {
  shardSize: number;
  /** k data shards then m parity shards, each shardSize bytes. */
  shards: Uint8Array[];
  /** Whether the worker pool did the encoding. */
  parallel: boolean;
  /**
   * Hands the shards' memory back for reuse; call once done with them (the shards must not be used after).
   * A parallel encode's shards live in shared staging buffers that the next large encode reuses: fresh memory
   * costs a page fault per 4 KiB on first touch, which made the pool slower than one thread.
   */
  release(): void;
}

export interface ShardCodecOptions {
  /** Pool for large objects; when absent they are encoded on the calling thread. */
  pool?: () => WorkerPool | undefined;
}

const TASK = new URL("./erasure-task.js", import.meta.url);
/** Column ranges handed to workers are multiples of this (keeps the kernel on its 32-byte SIMD steps). */
const COLUMN_ALIGN = 4096;
/** Idle staging memory kept for reuse at most (larger encodes allocate and drop theirs). */
const MAX_IDLE_STAGING_BYTES = 96 * 1024 * 1024;

/** Shared memory for one parallel encode: the padded data shards and the parity shards. */
interface Staging {
  data: SharedArrayBuffer;
  parity: SharedArrayBuffer;
}

export class ShardCodec {
  readonly #coders = new Map<string, ReedSolomon>();
  readonly #pool: () => WorkerPool | undefined;
  readonly #idle: Staging[] = [];

  constructor(options: ShardCodecOptions = {}) {
    this.#pool = options.pool ?? (() => undefined);
  }

  static shardSize(size: number, dataShards: number): number {
    return Math.ceil(size / dataShards);
  }

  coder(dataShards: number, parityShards: number): ReedSolomon {
    const key = `${dataShards}/${parityShards}`;
    let coder = this.#coders.get(key);
    if (coder === undefined) {
      coder = new ReedSolomon(dataShards, parityShards);
      this.#coders.set(key, coder);
    }
    return coder;
  }

  async encode(bytes: Uint8Array, dataShards: number, parityShards: number): Promise<EncodedObject> {
    const shardSize = ShardCodec.shardSize(bytes.length, dataShards);
    const pool = bytes.length > getParallelThreshold("erasure") ? this.#pool() : undefined;
    if (pool !== undefined && shardSize >= 2 * COLUMN_ALIGN) {
      return this.#encodeParallel(pool, bytes, dataShards, parityShards, shardSize);
    }
    const data = splitData(bytes, dataShards, shardSize);
    const parity = this.coder(dataShards, parityShards).encode(data);
    return { shardSize, shards: [...data, ...parity], parallel: false, release: () => {} };
  }

  /**
   * The object's bytes from its shards (null = missing or corrupt); rebuilds missing data shards when needed.
   * Throws `too_many_losses` when fewer than k shards are usable.
   */
  decode(
    shards: readonly (Uint8Array | null)[],
    dataShards: number,
    parityShards: number,
    size: number,
  ): Uint8Array {
    const shardSize = ShardCodec.shardSize(size, dataShards);
    let data = shards.slice(0, dataShards);
    if (data.some((s) => s === null)) {
      data = this.coder(dataShards, parityShards).reconstructData(shards);
    }
    const out = new Uint8Array(size);
    for (let j = 0; j < dataShards; j++) {
      const start = j * shardSize;
      if (start >= size) break;
      const shard = data[j]!;
      out.set(start + shard.length <= size ? shard : shard.subarray(0, size - start), start);
    }
    return out;
  }

  close(): void {
    for (const coder of this.#coders.values()) coder.close();
    this.#coders.clear();
    this.#idle.length = 0;
  }

  #acquire(dataBytes: number, parityBytes: number): Staging {
    const at = this.#idle.findIndex(
      (s) => s.data.byteLength >= dataBytes && s.parity.byteLength >= parityBytes,
    );
    if (at >= 0) return this.#idle.splice(at, 1)[0]!;
    return { data: new SharedArrayBuffer(dataBytes), parity: new SharedArrayBuffer(parityBytes) };
  }

  #releaseStaging(staging: Staging): void {
    const bytes = (s: Staging) => s.data.byteLength + s.parity.byteLength;
    let idleBytes = this.#idle.reduce((sum, s) => sum + bytes(s), 0);
    if (bytes(staging) > MAX_IDLE_STAGING_BYTES) return;
    this.#idle.push(staging);
    idleBytes += bytes(staging);
    // Drop the smallest buffers first: the large ones are the expensive ones to fault in again.
    this.#idle.sort((a, b) => bytes(b) - bytes(a));
    while (idleBytes > MAX_IDLE_STAGING_BYTES) idleBytes -= bytes(this.#idle.pop()!);
  }

  async #encodeParallel(
    pool: WorkerPool,
    bytes: Uint8Array,
    k: number,
    m: number,
    shardSize: number,
  ): Promise<EncodedObject> {
    const staging = this.#acquire(k * shardSize, m * shardSize);
    const { data, parity } = staging;
    const dataView = new Uint8Array(data, 0, k * shardSize);
    dataView.set(bytes);
    // A reused buffer holds an earlier object's bytes past this one's end: the padding must be zeros.
    dataView.fill(0, bytes.length);
    const parts = Math.max(2, pool.maxThreads);
    const step = Math.ceil(shardSize / parts / COLUMN_ALIGN) * COLUMN_ALIGN;
    const tasks: Promise<number>[] = [];
    for (let from = 0; from < shardSize; from += step) {
      const task: EncodeColumnsTask = {
        data,
        parity,
        dataShards: k,
        parityShards: m,
        shardSize,
        from,
        to: Math.min(shardSize, from + step),
      };
      tasks.push(pool.run<number>(TASK, "encodeColumns", task));
    }
    let done = 0;
    try {
      done = (await Promise.all(tasks)).reduce((a, b) => a + b, 0);
    } catch (error) {
      // Other tasks may still be writing parity: this staging memory is not safe to reuse.
      await Promise.allSettled(tasks);
      throw error;
    }
    if (done !== shardSize) {
      throw new NexusError("internal", `parallel encode covered ${done} of ${shardSize} columns`);
    }
    const shards = [
      ...Array.from({ length: k }, (_, j) => new Uint8Array(data, j * shardSize, shardSize)),
      ...Array.from({ length: m }, (_, r) => new Uint8Array(parity, r * shardSize, shardSize)),
    ];
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#releaseStaging(staging);
    };
    return { shardSize, shards, parallel: true, release };
  }
}

/** The k data shards of an object: views where a shard lies inside it, zero-padded copies past its end. */
export function splitData(bytes: Uint8Array, dataShards: number, shardSize: number): Uint8Array[] {
  return Array.from({ length: dataShards }, (_, j) => {
    const start = j * shardSize;
    const end = start + shardSize;
    if (end <= bytes.length) return bytes.subarray(start, end);
    const padded = new Uint8Array(shardSize);
    if (start < bytes.length) padded.set(bytes.subarray(start));
    return padded;
  });
}
