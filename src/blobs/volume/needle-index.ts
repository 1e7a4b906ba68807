/**
 * The needle index: a 64-bit key (the first 8 bytes of a needle's BLAKE3 hash, little-endian) -> where the needle
 * lives (volume, offset, length), held in WASM memory at about 15 bytes an entry (assembly/needle.ts). Each index
 * owns a private kernel instance, so its memory goes away with it.
 *
 * Keys cross the JS/WASM boundary as two u32 halves (lo, hi) to avoid BigInt. Offsets and lengths are in units of
 * 8 bytes (needles are 8-byte aligned). Lengths of 2 MiB and more do not fit the kernel's 18-bit field: they are
 * kept here, in a small map keyed by location (such needles are few by construction).
 *
 * A trap inside the kernel (memory.grow failed: `unreachable`; or a bug) can stop it halfway through a merge, with
 * input pages already back on its free list and reused while the directory still points at them. Nothing the
 * kernel answers after that can be trusted, so the first trap marks the index broken, and that call and every
 * later one throw NexusError "index_broken" instead of answering. The owner rebuilds the index from its source
 * (the volume store replays its volumes: store.ts).
 */
import { needleAbi } from "../../kernels/abi/needle.js";
import { NexusError } from "../../util/errors.js";
import { instantiateKernel, type Kernel, ready } from "../../wasm/loader.js";

/** Raw exports of assembly/needle.ts (the list is src/kernels/abi/needle.ts). */
export interface NeedleKernelExports {
  init(): void;
  set(lo: number, hi: number, volume: number, off8: number, len8: number): number;
  get(lo: number, hi: number): number;
  resultOffset8(): number;
  remove(lo: number, hi: number): number;
  lookupBatch(n: number): number;
  batchKeysPtr(): number;
  batchOutPtr(): number;
  count(): number;
  setMergeThreshold(n: number): void;
  setPageLimit(pages: number): void;
  l0Capacity(): number;
  flush(): void;
  clear(): void;
  readRange(start: number, n: number): number;
  baseSize(): number;
}

/** Where a needle lives. Offsets and lengths are bytes (multiples of 8). */
export interface NeedleLocation {
  volume: number;
  offset: number;
  length: number;
}

export interface IndexEntry extends NeedleLocation {
  /** The 64-bit key as (lo, hi) u32 halves. */
  lo: number;
  hi: number;
}

/** The kernel's location word: packed = volume << LEN_BITS | length/8, LEN_LARGE meaning "kept here". */
const { LEN_BITS, LEN_LARGE, BATCH } = needleAbi.constants;
/** u32 words of one lookupBatch result (offset/8, packed) and of one readRange record (lo, hi, offset/8, packed). */
const RESULT_WORDS = needleAbi.constants.RESULT_BYTES / 4;
const RANGE_WORDS = needleAbi.constants.RANGE_RECORD_BYTES / 4;
const LEN_MASK = (1 << LEN_BITS) - 1;
/** Largest volume id the index can hold. */
export const MAX_VOLUME_ID: number = needleAbi.constants.MAX_VOLUME;
/** Largest offset (exclusive): offsets are stored /8 in 32 bits. */
export const MAX_OFFSET = 2 ** 35;

export class NeedleIndex {
  readonly #kernel: Kernel<NeedleKernelExports>;
  readonly #k: NeedleKernelExports;
  /** Lengths (bytes) of needles too long for the kernel's field, by location key (volume * 2^32 + off8). */
  readonly #large = new Map<number, number>();
  #closed = false;
  /** The kernel call that trapped, and its error; undefined while the index is sound. */
  #broken: { operation: string; cause: unknown } | undefined;

  private constructor(kernel: Kernel<NeedleKernelExports>) {
    this.#kernel = kernel;
    this.#k = kernel.exports;
    this.#k.init();
  }

  static async create(): Promise<NeedleIndex> {
    await ready();
    return NeedleIndex.createSync();
  }

  /** After `await ready()`. */
  static createSync(): NeedleIndex {
    return new NeedleIndex(instantiateKernel<NeedleKernelExports>("needle"));
  }

  /** Whether a kernel trap broke the index: every call but memoryBytes and close() throws "index_broken". */
  get broken(): boolean {
    return this.#broken !== undefined;
  }

  get size(): number {
    if (this.#broken) throw this.#brokenError("size");
    try {
      return this.#k.count();
    } catch (e) {
      throw this.#break("size", e);
    }
  }

  /** Bytes of linear memory the index holds (all of it: entries, directory, buffers, spare pages). */
  get memoryBytes(): number {
    return this.#kernel.memory.buffer.byteLength;
  }

  /** Sets key -> location; true when the key was new. */
  set(lo: number, hi: number, loc: NeedleLocation): boolean {
    const { volume, offset, length } = loc;
    if (!Number.isInteger(volume) || volume < 1 || volume > MAX_VOLUME_ID) {
      throw new NexusError("invalid_argument", `volume id must be 1..${MAX_VOLUME_ID}, got ${volume}`, {
        volume,
      });
    }
    if (offset % 8 !== 0 || offset < 0 || offset >= MAX_OFFSET || length % 8 !== 0 || length <= 0) {
      throw new NexusError("invalid_argument", `needle location must be 8-byte aligned and below 32 GiB`, {
        offset,
        length,
      });
    }
    const off8 = offset / 8;
    const len8 = length / 8;
    const where = volume * 2 ** 32 + off8;
    let stored = len8;
    if (len8 >= LEN_LARGE) {
      stored = LEN_LARGE;
      this.#large.set(where, length);
    }
    // A location reused by a shorter needle (after compaction) must not keep a stale long length.
    else if (this.#large.size > 0) this.#large.delete(where);
    if (this.#broken) throw this.#brokenError("set");
    try {
      // Can merge (taking pages): the call most likely to trap.
      return this.#k.set(lo >>> 0, hi >>> 0, volume, off8, stored) === 1;
    } catch (e) {
      throw this.#break("set", e);
    }
  }

  get(lo: number, hi: number): NeedleLocation | undefined {
    if (this.#broken) throw this.#brokenError("get");
    let packed: number;
    let off8: number;
    try {
      packed = this.#k.get(lo >>> 0, hi >>> 0);
      if (packed === 0) return undefined;
      off8 = this.#k.resultOffset8();
    } catch (e) {
      throw this.#break("get", e);
    }
    return this.#decode(packed >>> 0, off8 >>> 0);
  }

  has(lo: number, hi: number): boolean {
    if (this.#broken) throw this.#brokenError("has");
    try {
      return this.#k.get(lo >>> 0, hi >>> 0) !== 0;
    } catch (e) {
      throw this.#break("has", e);
    }
  }

  remove(lo: number, hi: number): boolean {
    if (this.#broken) throw this.#brokenError("remove");
    try {
      const packed = this.#k.get(lo >>> 0, hi >>> 0);
      if (packed === 0) return false;
      if ((packed & LEN_MASK) === LEN_LARGE) {
        this.#large.delete((packed >>> LEN_BITS) * 2 ** 32 + (this.#k.resultOffset8() >>> 0));
      }
      // Can merge (dropping dead entries): it takes pages like set().
      return this.#k.remove(lo >>> 0, hi >>> 0) === 1;
    } catch (e) {
      throw this.#break("remove", e);
    }
  }

  /**
   * Looks up many keys at once: `keys` holds (lo, hi) pairs; `out` receives (offset/8, packed) pairs where
   * packed = volume << 18 | length/8 (an absent key gives (0, 0); length/8 = LEN_LARGE means call get() for the
   * length).
   * Returns how many keys were found. This is the fast path (one kernel call per 4096 keys).
   */
  lookupMany(keys: Uint32Array, out: Uint32Array = new Uint32Array(keys.length)): number {
    if (keys.length % 2 !== 0 || out.length < keys.length) {
      throw new NexusError(
        "invalid_argument",
        "lookupMany takes (lo, hi) pairs and an output of the same length",
        {
          keys: keys.length,
          out: out.length,
        },
      );
    }
    if (this.#broken) throw this.#brokenError("lookupMany");
    const k = this.#k;
    let found = 0;
    try {
      const keysAt = k.batchKeysPtr() >>> 2;
      const outAt = k.batchOutPtr() >>> 2;
      for (let start = 0; start < keys.length; start += BATCH * 2) {
        const end = Math.min(keys.length, start + BATCH * 2);
        const u32 = this.#kernel.views.u32;
        u32.set(keys.subarray(start, end), keysAt);
        const n = (end - start) / 2;
        found += k.lookupBatch(n);
        out.set(this.#kernel.views.u32.subarray(outAt, outAt + n * RESULT_WORDS), start);
      }
    } catch (e) {
      throw this.#break("lookupMany", e);
    }
    return found;
  }

  /** Every live entry, in key order (merges pending inserts first). Do not mutate the index while iterating. */
  *entries(): IterableIterator<IndexEntry> {
    const k = this.#k;
    if (this.#broken) throw this.#brokenError("entries");
    let total: number;
    let outAt: number;
    try {
      k.flush(); // a merge: it takes pages
      total = k.baseSize();
      outAt = k.batchOutPtr() >>> 2;
    } catch (e) {
      throw this.#break("entries", e);
    }
    for (let start = 0; start < total; ) {
      // Checked again at each batch: a caller may have broken the index between two of them.
      if (this.#broken) throw this.#brokenError("entries");
      let rows: Uint32Array;
      let n: number;
      try {
        n = k.readRange(start, BATCH / 2);
        rows = this.#kernel.views.u32.slice(outAt, outAt + n * RANGE_WORDS);
      } catch (e) {
        throw this.#break("entries", e);
      }
      if (n === 0) break;
      for (let j = 0; j < n; j++) {
        const at = j * RANGE_WORDS;
        const packed = rows[at + 3]!;
        if (packed === 0) continue;
        const loc = this.#decode(packed, rows[at + 2]!);
        yield { lo: rows[at]!, hi: rows[at + 1]!, ...loc };
      }
      start += n;
    }
  }

  /** Merges pending inserts now (lookups are then as fast as they get; entries() does it itself). */
  flush(): void {
    if (this.#broken) throw this.#brokenError("flush");
    try {
      this.#k.flush();
    } catch (e) {
      throw this.#break("flush", e);
    }
  }

  /**
   * Tests only: caps how many pending inserts (L0) trigger a merge (≥ 1; 0 restores the default, which is L0's
   * capacity: it grows with the index so that building an index of N entries costs O(N) entry moves).
   */
  setMergeThreshold(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      throw new NexusError("invalid_argument", `merge threshold must be an integer ≥ 0, got ${n}`, { n });
    }
    if (this.#broken) throw this.#brokenError("setMergeThreshold");
    try {
      this.#k.setMergeThreshold(n); // merges at once when L0 already holds n entries
    } catch (e) {
      throw this.#break("setMergeThreshold", e);
    }
  }

  /**
   * Tests only: growing the kernel's linear memory past `pages` pages of 64 KiB (all of it, as memoryBytes / 65536
   * counts) traps as a failed memory.grow does, which breaks the index; 0 (the default) removes the limit.
   */
  setPageLimit(pages: number): void {
    if (!Number.isInteger(pages) || pages < 0 || pages > 65536) {
      throw new NexusError("invalid_argument", `page limit must be an integer 0..65536, got ${pages}`, {
        pages,
      });
    }
    if (this.#broken) throw this.#brokenError("setPageLimit");
    this.#k.setPageLimit(pages);
  }

  /** Tests only: slots in L0's table (pending inserts; it grows with the index). */
  get pendingSlots(): number {
    if (this.#broken) throw this.#brokenError("pendingSlots");
    return this.#k.l0Capacity();
  }

  clear(): void {
    if (this.#broken) throw this.#brokenError("clear");
    try {
      this.#k.clear();
    } catch (e) {
      throw this.#break("clear", e);
    }
    this.#large.clear();
  }

  /** Releases the kernel's memory (by dropping the instance). A broken index only stops answering. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#large.clear();
    // clear() walks the chunk table, which a trap may have left pointing anywhere: not run on a broken index.
    if (!this.#broken) this.#k.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Marks the index broken by a throw from the kernel during `operation`; returns the error to throw. */
  #break(operation: string, cause: unknown): NexusError {
    this.#broken ??= { operation, cause };
    return this.#brokenError(operation);
  }

  /** The error every call on a broken index throws (the first trap is its cause). */
  #brokenError(operation: string): NexusError {
    const broken = this.#broken!;
    const reason = broken.cause instanceof Error ? broken.cause.message : String(broken.cause);
    return new NexusError(
      "index_broken",
      `needle index: ${operation} refused: the kernel trapped in ${broken.operation} (${reason}), so the index ` +
        "answers nothing more; rebuild it from its source",
      { operation, brokenBy: broken.operation },
      { cause: broken.cause },
    );
  }

  #decode(packed: number, off8: number): NeedleLocation {
    const volume = packed >>> LEN_BITS;
    const len8 = packed & LEN_MASK;
    const length = len8 === LEN_LARGE ? (this.#large.get(volume * 2 ** 32 + off8) ?? len8 * 8) : len8 * 8;
    return { volume, offset: off8 * 8, length };
  }
}

/** The index key of a 32-byte BLAKE3 hash: its first 8 bytes as a little-endian u64, as (lo, hi). */
export function keyHalves(hash: Uint8Array, offset = 0): [lo: number, hi: number] {
  const lo =
    (hash[offset]! | (hash[offset + 1]! << 8) | (hash[offset + 2]! << 16) | (hash[offset + 3]! << 24)) >>> 0;
  const hi =
    (hash[offset + 4]! | (hash[offset + 5]! << 8) | (hash[offset + 6]! << 16) | (hash[offset + 7]! << 24)) >>>
    0;
  return [lo, hi];
}
