/**
 * A blocked Bloom filter over the `bloom` WASM kernel (assembly/bloom.ts): every key's k bits live in one 512-bit
 * block, so an add or a lookup touches one cache line. Runtime-neutral (no `node:` imports).
 *
 * Keys are strings or bytes; a string is the same key as its UTF-8 encoding (WHATWG, so a lone surrogate encodes
 * as U+FFFD). All filters of a realm share one kernel instance and allocate their bits from its linear memory;
 * `dispose()` returns them (a FinalizationRegistry also frees a filter that is dropped undisposed).
 *
 * Sizing is in bloom-plan.ts (how many blocks and bits a key a capacity and rate need), the kernel and key
 * encoding in bloom-keys.ts; this file holds the filter and its serialized form.
 */
import { NexusError } from "../util/errors.js";
import type { Kernel } from "../wasm/loader.js";
import { bloomAbi } from "./abi/bloom.js";
import {
  addKey,
  allocate,
  type BloomExports,
  type BloomKey,
  bloomKernel,
  CHUNK_BYTES,
  CHUNK_KEYS,
  checkArray,
  checkKeys,
  chunkLayout,
  containsJoined,
  containsJoinedPair,
  containsKey,
  kernelInstance,
  packAsciiStrings,
  packChunk,
  packParts,
  releaseOversizedScratch,
  runChunk,
  scratch,
  worstCaseBytes,
} from "./bloom-keys.js";
import {
  BLOCK_BYTES,
  BLOOM_BLOCK_BITS,
  BLOOM_MAX_BLOCKS,
  BLOOM_MAX_HASHES,
  blockedFpRate,
  checkCapacity,
  checkFpRate,
  planBloomFilter,
} from "./bloom-plan.js";

export type { BloomExports, BloomKey } from "./bloom-keys.js";
export {
  BLOOM_BLOCK_BITS,
  BLOOM_MAX_BLOCKS,
  BLOOM_MAX_HASHES,
  type BloomPlan,
  blockedFpRate,
  planBloomFilter,
} from "./bloom-plan.js";

/** Bytes the kernel allocates besides the bits: a 64-byte header and up to 64 bytes to align the bits. */
const FILTER_OVERHEAD_BYTES = bloomAbi.constants.FILTER_OVERHEAD;

// ---------------------------------------------------------------------------------------------------------------
// Serialized form (little-endian), version 1:
//   0  u8[4] magic "NXBF"       4  u8 version (1)     5  u8 hashes (k)     6  u16 reserved (0)
//   8  u32 blocks               12 u32 reserved (0)   16 f64 capacity      24 f64 fpRate
//   32 u64 checksum of the bits (the kernel's 64-bit hash; detects corruption, not tampering)
//   40 bits: blocks × 64 bytes, block after block; bit p of a block is bit (p & 7) of its byte (p >> 3)

const MAGIC = [0x4e, 0x58, 0x42, 0x46]; // "NXBF"
const FORMAT_VERSION = 1;
const HEADER_BYTES = 40;

/** Set only while `deserialize` constructs: the stored layout replaces planning. */
let restoring: { blocks: number; hashes: number; expectedFpRate: number } | undefined;

const finalizer =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry<number>((handle) => kernelInstance?.exports.destroy(handle))
    : undefined;

/**
 * A Bloom filter: `mightContain` never answers false for a key that was added, and answers true for a key that
 * was not with probability ≤ `fpRate` while at most `capacity` distinct keys have been added.
 * Create it after `await ready()`; call `dispose()` (or `using`) to free its memory.
 */
export class BloomFilter implements Disposable {
  /** Distinct keys the filter is sized for. */
  readonly capacity: number;
  /** The false-positive rate requested at capacity. */
  readonly fpRate: number;
  /** Number of 512-bit blocks. */
  readonly blocks: number;
  /** Bits set per key. */
  readonly hashes: number;
  /** The sizing model's false-positive rate at capacity (≤ fpRate). */
  readonly expectedFpRate: number;
  readonly #kernel: Kernel<BloomExports>;
  #handle: number;

  constructor(capacity: number, fpRate: number) {
    checkCapacity(capacity);
    checkFpRate(fpRate);
    const kernel = bloomKernel();
    const layout = restoring ?? planBloomFilter(capacity, fpRate);
    this.capacity = capacity;
    this.fpRate = fpRate;
    this.blocks = layout.blocks;
    this.hashes = layout.hashes;
    this.expectedFpRate = layout.expectedFpRate;
    this.#kernel = kernel;
    this.#handle = allocate(
      kernel,
      () => kernel.exports.create(layout.blocks, layout.hashes),
      layout.blocks * BLOCK_BYTES + FILTER_OVERHEAD_BYTES,
    );
    finalizer?.register(this, this.#handle, this);
  }

  /** Bytes of the kernel's linear memory this filter holds (its bits plus a 128-byte header and alignment). */
  get memoryBytes(): number {
    return this.blocks * BLOCK_BYTES + FILTER_OVERHEAD_BYTES;
  }

  /** Fraction of bits set (≈ 1 - e^{-k·n/m} after n distinct keys; about one half at capacity). */
  get fillRatio(): number {
    const handle = this.#live();
    return Number(this.#kernel.exports.popCount(handle)) / (this.blocks * BLOOM_BLOCK_BITS);
  }

  get disposed(): boolean {
    return this.#handle === 0;
  }

  add(key: BloomKey): void {
    const handle = this.#live();
    addKey(this.#kernel, handle, key);
  }

  mightContain(key: BloomKey): boolean {
    const handle = this.#live();
    return containsKey(this.#kernel, handle, key);
  }

  /**
   * `mightContain(a + b + c)` without building the key (a caller whose keys are a shared prefix and a name passes
   * both): the same answer, one kernel call, no string made for ASCII parts.
   */
  mightContainJoined(a: string, b: string, c = ""): boolean {
    const handle = this.#live();
    if (typeof a !== "string" || typeof b !== "string" || typeof c !== "string") {
      throw new NexusError(
        "invalid_argument",
        "BloomFilter.mightContainJoined: every part must be a string",
        {
          parts: [typeof a, typeof b, typeof c],
        },
      );
    }
    return containsJoined(this.#kernel, handle, a, b, c);
  }

  /**
   * `mightContain(a1 + b1)` and `mightContain(a2 + b2)` in one kernel call, without building the keys: bit 0 of the
   * result is set when the first key may be present, bit 1 when the second may. The two lookups overlap in memory.
   */
  mightContainJoinedPair(a1: string, b1: string, a2: string, b2: string): number {
    const handle = this.#live();
    if (
      typeof a1 !== "string" ||
      typeof b1 !== "string" ||
      typeof a2 !== "string" ||
      typeof b2 !== "string"
    ) {
      throw new NexusError(
        "invalid_argument",
        "BloomFilter.mightContainJoinedPair: every part must be a string",
        {
          parts: [typeof a1, typeof b1, typeof a2, typeof b2],
        },
      );
    }
    return containsJoinedPair(this.#kernel, handle, a1, b1, a2, b2);
  }

  /**
   * Adds every key: one kernel call per batch (or per chunk of up to 8,192 keys / 256 KiB of key bytes, so a huge
   * batch does not grow linear memory for good). Keys are validated first: a bad one adds nothing.
   */
  addMany(keys: readonly BloomKey[]): void {
    const handle = this.#live();
    this.#batch(handle, keys, "BloomFilter.addMany", undefined);
  }

  /**
   * Looks up every key, with one kernel call per batch (chunked as `addMany`). Returns a Uint8Array with 1 where
   * the key may be present and 0 where it is certainly absent: `out` when given (at least `keys.length` bytes;
   * results at [0, keys.length)), else a new one. A Uint8Array rather than boolean[]: no per-key allocation.
   */
  mightContainMany(keys: readonly BloomKey[], out?: Uint8Array): Uint8Array {
    const handle = this.#live();
    return this.#batch(handle, keys, "BloomFilter.mightContainMany", out);
  }

  /**
   * `addMany` of keys given in parts, `width` strings a key (key i is parts[width * i] + ... + parts[width * i +
   * width - 1]): the same bits, without building a string a key (a caller whose keys are a shared prefix and a
   * name passes both). Every part is checked first: a bad one adds nothing.
   */
  addParts(parts: readonly string[], width: number): void {
    const handle = this.#live();
    this.#parts(handle, parts, width, "BloomFilter.addParts", undefined);
  }

  /** `mightContainMany` of keys given in parts, as `addParts` takes them; one result a key. */
  mightContainParts(parts: readonly string[], width: number, out?: Uint8Array): Uint8Array {
    const handle = this.#live();
    return this.#parts(handle, parts, width, "BloomFilter.mightContainParts", out);
  }

  /** Removes every key. */
  clear(): void {
    this.#kernel.exports.clear(this.#live());
  }

  /** The filter as bytes (layout above); `BloomFilter.deserialize` restores it in any runtime. */
  serialize(): Uint8Array {
    const handle = this.#live();
    const bitBytes = this.blocks * BLOCK_BYTES;
    const checksum = BigInt.asUintN(64, this.#kernel.exports.checksum(handle));
    const bytes = new Uint8Array(HEADER_BYTES + bitBytes);
    const view = new DataView(bytes.buffer);
    bytes.set(MAGIC, 0);
    view.setUint8(4, FORMAT_VERSION);
    view.setUint8(5, this.hashes);
    view.setUint32(8, this.blocks, true);
    view.setFloat64(16, this.capacity, true);
    view.setFloat64(24, this.fpRate, true);
    view.setBigUint64(32, checksum, true);
    bytes.set(this.#kernel.views.u8.subarray(handle, handle + bitBytes), HEADER_BYTES);
    return bytes;
  }

  /** Restores a serialized filter; bytes that are not one (or are damaged) throw NexusError "corrupt". */
  static deserialize(bytes: Uint8Array): BloomFilter {
    if (!(bytes instanceof Uint8Array)) {
      throw new NexusError("invalid_argument", "BloomFilter.deserialize: bytes must be a Uint8Array", {
        bytes: typeof bytes,
      });
    }
    const corrupt = (why: string, details: Record<string, unknown> = {}) =>
      new NexusError("corrupt", `BloomFilter.deserialize: ${why}`, { length: bytes.length, ...details });
    if (bytes.length < HEADER_BYTES) {
      throw corrupt(`truncated: ${bytes.length} bytes, the header alone is ${HEADER_BYTES}`);
    }
    if (MAGIC.some((b, i) => bytes[i] !== b)) throw corrupt("not a serialized Bloom filter (bad magic)");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const version = view.getUint8(4);
    if (version !== FORMAT_VERSION) {
      throw corrupt(`unsupported format version ${version} (this build reads ${FORMAT_VERSION})`, {
        version,
      });
    }
    const hashes = view.getUint8(5);
    const blocks = view.getUint32(8, true);
    const capacity = view.getFloat64(16, true);
    const fpRate = view.getFloat64(24, true);
    const stored = view.getBigUint64(32, true);
    if (view.getUint16(6, true) !== 0 || view.getUint32(12, true) !== 0)
      throw corrupt("reserved bytes are set");
    if (hashes < 1 || hashes > BLOOM_MAX_HASHES)
      throw corrupt(`hash count ${hashes} out of range`, { hashes });
    if (blocks < 1 || blocks > BLOOM_MAX_BLOCKS)
      throw corrupt(`block count ${blocks} out of range`, { blocks });
    if (!Number.isSafeInteger(capacity) || capacity < 1 || !(fpRate > 0 && fpRate < 1)) {
      throw corrupt(`bad parameters (capacity ${capacity}, fpRate ${fpRate})`, { capacity, fpRate });
    }
    const expected = HEADER_BYTES + blocks * BLOCK_BYTES;
    if (bytes.length !== expected) {
      throw corrupt(
        bytes.length < expected
          ? `truncated: ${bytes.length} bytes, expected ${expected}`
          : `${bytes.length - expected} trailing bytes after the filter`,
        { expected },
      );
    }
    restoring = { blocks, hashes, expectedFpRate: blockedFpRate(capacity, blocks, hashes) };
    let filter: BloomFilter;
    try {
      filter = new BloomFilter(capacity, fpRate);
    } finally {
      restoring = undefined;
    }
    const handle = filter.#handle;
    filter.#kernel.views.u8.set(bytes.subarray(HEADER_BYTES), handle);
    if (BigInt.asUintN(64, filter.#kernel.exports.checksum(handle)) !== stored) {
      filter.dispose();
      throw corrupt("checksum mismatch: the bits are damaged");
    }
    return filter;
  }

  /** Frees the filter's memory. Idempotent; any other use afterwards throws NexusError "disposed". */
  dispose(): void {
    if (this.#handle === 0) return;
    finalizer?.unregister(this);
    this.#kernel.exports.destroy(this.#handle);
    this.#handle = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #live(): number {
    const handle = this.#handle;
    if (handle === 0) throw new NexusError("disposed", "this BloomFilter was disposed");
    return handle;
  }

  #parts(
    handle: number,
    parts: readonly string[],
    width: number,
    where: string,
    out: Uint8Array | undefined,
  ): Uint8Array {
    const lookup = where === "BloomFilter.mightContainParts";
    checkArray(parts, where);
    if (!Number.isInteger(width) || width < 1 || parts.length % width !== 0) {
      throw new NexusError(
        "invalid_argument",
        `${where}: width must be a positive integer dividing the ${parts.length} parts, got ${width}`,
        { width, parts: parts.length },
      );
    }
    for (let i = 0; i < parts.length; i++) {
      if (typeof parts[i] !== "string") {
        throw new NexusError("invalid_argument", `${where}: parts[${i}] is not a string`, { index: i });
      }
    }
    const n = parts.length / width;
    if (out !== undefined && (!(out instanceof Uint8Array) || out.length < n)) {
      throw new NexusError("invalid_argument", `${where}: out must be a Uint8Array of at least ${n} bytes`, {
        outLength: out instanceof Uint8Array ? out.length : typeof out,
      });
    }
    const result = lookup ? (out ?? new Uint8Array(n)) : new Uint8Array(0);
    const kernel = this.#kernel;
    for (let first = 0; first < n; ) {
      const end = Math.min(n, first + CHUNK_KEYS);
      if (packParts(kernel, parts, width, first, end)) {
        runChunk(kernel, handle, first, end - first, lookup, result);
      } else {
        // Not ASCII, or long keys: build this chunk's keys and take the general path.
        const keys: string[] = [];
        for (let i = first; i < end; i++) {
          let key = "";
          for (let j = 0; j < width; j++) key += parts[width * i + j]!;
          keys.push(key);
        }
        const got = this.#batch(
          handle,
          keys,
          lookup ? "BloomFilter.mightContainMany" : "BloomFilter.addMany",
          undefined,
        );
        if (lookup) result.set(got, first);
      }
      first = end;
    }
    releaseOversizedScratch(kernel);
    return result;
  }

  #batch(handle: number, keys: readonly BloomKey[], where: string, out: Uint8Array | undefined): Uint8Array {
    const lookup = where === "BloomFilter.mightContainMany";
    checkArray(keys, where);
    const n = keys.length;
    if (out !== undefined && (!(out instanceof Uint8Array) || out.length < n)) {
      throw new NexusError("invalid_argument", `${where}: out must be a Uint8Array of at least ${n} bytes`, {
        outLength: out instanceof Uint8Array ? out.length : typeof out,
      });
    }
    const result = lookup ? (out ?? new Uint8Array(n)) : new Uint8Array(0);
    if (n === 0) return result;
    const kernel = this.#kernel;
    if (packAsciiStrings(kernel, keys)) {
      runChunk(kernel, handle, 0, n, lookup, result);
      return result;
    }
    // General path: validate every key first, then reserve the largest chunk, so nothing can fail once the first
    // chunk is committed.
    const shape = checkKeys(keys, where);
    scratch(
      kernel,
      chunkLayout(Math.min(n, CHUNK_KEYS)).data + Math.max(Math.min(CHUNK_BYTES, shape.worst), shape.largest),
    );
    const oneChunk = n <= CHUNK_KEYS && shape.worst <= CHUNK_BYTES;
    for (let first = 0; first < n; ) {
      let end = n;
      if (!oneChunk) {
        let worst = worstCaseBytes(keys[first]!);
        end = first + 1;
        while (end < n && end - first < CHUNK_KEYS) {
          const size = worstCaseBytes(keys[end]!);
          if (worst + size > CHUNK_BYTES) break;
          worst += size;
          end++;
        }
      }
      packChunk(kernel, keys, first, end, shape.allStrings);
      runChunk(kernel, handle, first, end - first, lookup, result);
      first = end;
    }
    releaseOversizedScratch(kernel);
    return result;
  }
}
