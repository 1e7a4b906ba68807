/**
 * A blocked Bloom filter over the `bloom` WASM kernel (assembly/bloom.ts): every key's k bits live in one 512-bit
 * block, so an add or a lookup touches one cache line. Runtime-neutral (no `node:` imports).
 *
 * Keys are strings or bytes; a string is the same key as its UTF-8 encoding (WHATWG, so a lone surrogate encodes
 * as U+FFFD). All filters of a realm share one kernel instance and allocate their bits from its linear memory;
 * `dispose()` returns them (a FinalizationRegistry also frees a filter that is dropped undisposed).
 *
 * Sizing: a blocked filter needs more bits than the textbook `m = -n ln p / ln² 2`, because keys do not spread
 * evenly over blocks (a block's load is Binomial(n, 1/blocks)) and an overloaded block answers "maybe" more often.
 * `planBloomFilter` computes the expected false-positive rate of exactly this layout — the load distribution of a
 * block, and for each load the exact distribution of set bits in 512 bits (an occupancy DP), each key setting k
 * independent uniform positions — and picks the fewest blocks (then the smallest k) whose expected rate at
 * capacity is ≤ fpRate. Bits a key, this layout vs textbook: 4.84 vs 4.79 at 10%, 9.92 vs 9.59 at 1% (k = 6),
 * 15.5 vs 14.4 at 0.1%, 38.8 vs 28.8 at 1e-6 (k = 16). Measured rates at capacity land within a few % of the
 * model's (test/kernels/bloom.test.ts checks them).
 */
import { NexusError } from "../util/errors.js";
import { type Kernel, sharedKernel } from "../wasm/loader.js";

/** Raw exports of assembly/bloom.ts (addresses and lengths are byte offsets into the kernel's memory). */
interface BloomExports {
  alloc(size: number): number;
  free(ptr: number): void;
  create(blocks: number, k: number): number;
  destroy(filter: number): void;
  clear(filter: number): void;
  add(filter: number, ptr: number, len: number): void;
  mightContain(filter: number, ptr: number, len: number): number;
  addMany(filter: number, data: number, ends: number, count: number): void;
  mightContainMany(filter: number, data: number, ends: number, count: number, out: number): number;
  popCount(filter: number): bigint;
  checksum(filter: number): bigint;
}

/** Bits in one block: one 64-byte cache line. */
export const BLOOM_BLOCK_BITS = 512;
/** Most bits a key sets (the kernel has 32 salts). */
export const BLOOM_MAX_HASHES = 32;
/** Most blocks one filter may have: 1 GiB of bits, the largest single allocation the kernel's allocator makes. */
export const BLOOM_MAX_BLOCKS = 2 ** 24 - 1;

const BLOCK_BYTES = BLOOM_BLOCK_BITS / 8;
/** Bytes the kernel allocates besides the bits: a 64-byte header and up to 64 bytes to align the bits. */
const FILTER_OVERHEAD_BYTES = 128;

export interface BloomPlan {
  /** Number of 512-bit blocks. */
  readonly blocks: number;
  /** Bits set per key. */
  readonly hashes: number;
  /** Filter bits per key at capacity. */
  readonly bitsPerKey: number;
  /** The model's false-positive rate with `capacity` distinct keys added (≤ the requested rate). */
  readonly expectedFpRate: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Sizing

/** After this many key bits thrown into one block, P(any of its 512 bits unset) < 1e-25: treat it as full. */
const SATURATION_THROWS = 64 * BLOOM_BLOCK_BITS;

/**
 * For one k: inner[i] = P(a random key's k bits are all set | the block holds i keys), extended on demand.
 * `occupancy[x]` is the distribution of set bits after the throws so far; `powers[x]` = (x / 512)^k.
 */
interface InnerTable {
  readonly k: number;
  readonly occupancy: Float64Array;
  readonly powers: Float64Array;
  readonly inner: number[];
}
const innerTables = new Map<number, InnerTable>();

function innerRate(k: number, keysInBlock: number): number {
  if (keysInBlock * k >= SATURATION_THROWS) return 1;
  let table = innerTables.get(k);
  if (table === undefined) {
    const occupancy = new Float64Array(BLOOM_BLOCK_BITS + 1);
    occupancy[0] = 1;
    const powers = new Float64Array(BLOOM_BLOCK_BITS + 1);
    for (let x = 0; x <= BLOOM_BLOCK_BITS; x++) powers[x] = (x / BLOOM_BLOCK_BITS) ** k;
    table = { k, occupancy, powers, inner: [0] };
    innerTables.set(k, table);
  }
  const { occupancy, powers, inner } = table;
  const w = BLOOM_BLOCK_BITS;
  while (inner.length <= keysInBlock) {
    // One more key: k more uniform throws. Descending x updates in place (occupancy[x - 1] is still the old one).
    const maxSet = Math.min(w, inner.length * k);
    for (let t = 0; t < k; t++) {
      for (let x = maxSet; x >= 1; x--) {
        occupancy[x] = (occupancy[x]! * x + occupancy[x - 1]! * (w - x + 1)) / w;
      }
      occupancy[0] = 0;
    }
    let rate = 0;
    for (let x = 1; x <= maxSet; x++) rate += occupancy[x]! * powers[x]!;
    inner.push(Math.min(1, rate));
  }
  return inner[keysInBlock]!;
}

/**
 * Expected false-positive rate of `blocks` blocks holding `n` distinct keys at k bits a key. With `stopAbove`,
 * returns as soon as the partial sum exceeds it (the caller only needs to know that it does).
 */
export function blockedFpRate(n: number, blocks: number, k: number, stopAbove = 1): number {
  if (blocks === 1) return innerRate(k, n);
  // A block's load is Binomial(n, 1/blocks); sum P(load = i) * inner(i), in log space (the early terms underflow).
  const p = 1 / blocks;
  const logRatio = Math.log(p) - Math.log1p(-p);
  const mean = n * p;
  let logPmf = n * Math.log1p(-p);
  let rate = 0;
  let mass = 0;
  for (let i = 0; i <= n; i++) {
    const pmf = Math.exp(logPmf);
    if (i * k >= SATURATION_THROWS) return rate + Math.max(0, 1 - mass);
    rate += pmf * innerRate(k, i);
    mass += pmf;
    if (rate > stopAbove) return rate;
    if (i > mean) {
      const nextRatio = ((n - i) / (i + 1)) * Math.exp(logRatio);
      // Past the mean the terms shrink at least geometrically: the tail is < pmf * r / (1 - r).
      if (nextRatio < 0.5 && pmf < rate * 1e-9) return rate + pmf;
    }
    logPmf += Math.log(n - i) - Math.log(i + 1) + logRatio;
  }
  return rate;
}

/**
 * The smallest filter of this layout whose expected false-positive rate with `capacity` keys is ≤ `fpRate`:
 * the fewest blocks over all k (then the smallest k). Blocks needed is unimodal in k, with its minimum at or below
 * the textbook optimum log2(1/fpRate) (block-load variance favours fewer bits a key as the rate drops), so the
 * search walks from there. Plans are cached: filters are usually made with a few recurring parameter pairs.
 */
export function planBloomFilter(capacity: number, fpRate: number): BloomPlan {
  checkCapacity(capacity);
  checkFpRate(fpRate);
  const cacheKey = `${capacity}/${fpRate}`;
  const cached = plans.get(cacheKey);
  if (cached !== undefined) return cached;
  const blocksFor = (k: number) =>
    k >= 1 && k <= BLOOM_MAX_HASHES
      ? (fewestBlocks(capacity, fpRate, k) ?? Number.POSITIVE_INFINITY)
      : Number.POSITIVE_INFINITY;
  let k = Math.min(BLOOM_MAX_HASHES, Math.max(1, Math.round(Math.log2(1 / fpRate))));
  let blocks = blocksFor(k);
  // Down while no worse (ties favour fewer probes), then up while strictly better.
  // (An infeasible k, needing more than the most blocks, keeps walking: fewer bits a key may fit.)
  while (k > 1) {
    const below = blocksFor(k - 1);
    if (below > blocks) break;
    k--;
    blocks = below;
  }
  for (let above = blocksFor(k + 1); above < blocks; above = blocksFor(k + 1)) {
    k++;
    blocks = above;
  }
  if (!Number.isFinite(blocks)) {
    throw new NexusError(
      "invalid_argument",
      `a Bloom filter for capacity ${capacity} at fpRate ${fpRate} needs more than ${BLOOM_MAX_BLOCKS * BLOCK_BYTES} bytes, the most one filter can hold`,
      { capacity, fpRate, maxBytes: BLOOM_MAX_BLOCKS * BLOCK_BYTES },
    );
  }
  const plan: BloomPlan = {
    blocks,
    hashes: k,
    bitsPerKey: (blocks * BLOOM_BLOCK_BITS) / capacity,
    expectedFpRate: blockedFpRate(capacity, blocks, k),
  };
  if (plans.size >= 256) plans.delete(plans.keys().next().value!);
  plans.set(cacheKey, plan);
  return plan;
}
const plans = new Map<string, BloomPlan>();

function fewestBlocks(n: number, target: number, k: number): number | undefined {
  const meets = (blocks: number) => blockedFpRate(n, blocks, k, target) <= target;
  // Start from the classic filter's size for this k (a blocked filter never needs fewer bits), then bracket.
  const classicBits = (-k * n) / Math.log1p(-(target ** (1 / k)));
  if (classicBits > BLOOM_MAX_BLOCKS * BLOOM_BLOCK_BITS || !meets(BLOOM_MAX_BLOCKS)) return undefined;
  let lo = Math.max(1, Math.floor((classicBits / BLOOM_BLOCK_BITS) * 0.9));
  while (lo > 1 && meets(lo)) lo = Math.max(1, Math.floor(lo / 2));
  if (meets(lo)) return lo;
  let hi = Math.min(BLOOM_MAX_BLOCKS, Math.max(lo + 1, Math.ceil((classicBits / BLOOM_BLOCK_BITS) * 1.25)));
  while (!meets(hi)) {
    lo = hi;
    hi = Math.min(BLOOM_MAX_BLOCKS, hi * 2);
  }
  // Invariant: !meets(lo) && meets(hi).
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (meets(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

function checkCapacity(capacity: unknown): asserts capacity is number {
  if (typeof capacity !== "number" || !Number.isSafeInteger(capacity) || capacity < 1) {
    throw new NexusError(
      "invalid_argument",
      `Bloom filter capacity must be an integer ≥ 1, got ${String(capacity)}`,
      {
        capacity,
      },
    );
  }
}

function checkFpRate(fpRate: unknown): asserts fpRate is number {
  if (typeof fpRate !== "number" || !(fpRate > 0 && fpRate < 1)) {
    throw new NexusError(
      "invalid_argument",
      `Bloom filter fpRate must be a number with 0 < fpRate < 1, got ${String(fpRate)}`,
      { fpRate },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Kernel, scratch buffer and key encoding

let kernelInstance: Kernel<BloomExports> | undefined;

/** The shared kernel; NexusError "not_ready" (from the loader) before `await ready()`. */
function bloomKernel(): Kernel<BloomExports> {
  if (kernelInstance === undefined) kernelInstance = sharedKernel<BloomExports>("bloom");
  return kernelInstance;
}

/** Most keys in one kernel call; a batch of more is split (each chunk one call, all keys validated first). */
const CHUNK_KEYS = 8192;
/** Budget for one chunk's encoded keys (worst case), so a huge batch does not grow linear memory for good. */
const CHUNK_BYTES = 256 * 1024;
/**
 * Strings up to this many UTF-16 units are copied char by char; longer ones go through TextEncoder.encodeInto.
 * Measured on Node 20: a charCodeAt loop costs ≈2-4 ns a char (more on rope strings built by `+`/templates),
 * encodeInto ≈45 ns a call plus ≈0.3 ns a char, so they cross near 16.
 */
const SHORT_STRING = 16;

/** One scratch area in the kernel's memory, reused by every call: [ends: u32 × n][out: u8 × n][pad][key bytes]. */
let scratchPtr = 0;
let scratchCap = 0;
/** View of the scratch area; empty after a reallocation, and detached (byteLength 0) after memory.grow. */
let scratchView = new Uint8Array(0);

/** A scratch area grown past this (by one huge key) is given back after the call that needed it. */
const SCRATCH_KEEP = 4 * CHUNK_BYTES;

function releaseOversizedScratch(kernel: Kernel<BloomExports>): void {
  if (scratchCap <= SCRATCH_KEEP) return;
  kernel.exports.free(scratchPtr);
  scratchPtr = 0;
  scratchCap = 0;
  scratchView = new Uint8Array(0);
}

/** The scratch area, holding at least `bytes`. May allocate: views taken before this call may be detached. */
function scratch(kernel: Kernel<BloomExports>, bytes: number): Uint8Array {
  if (bytes > scratchCap || scratchPtr === 0) {
    const cap = Math.max(4096, bytes, Math.min(scratchCap * 2, CHUNK_BYTES * 2));
    if (scratchPtr !== 0) kernel.exports.free(scratchPtr);
    scratchPtr = 0;
    scratchCap = 0;
    scratchView = new Uint8Array(0);
    scratchPtr = allocate(kernel, () => kernel.exports.alloc(cap), cap);
    scratchCap = cap;
  }
  if (scratchView.byteLength === 0)
    scratchView = new Uint8Array(kernel.memory.buffer, scratchPtr, scratchCap);
  return scratchView;
}

/** Runs an allocating kernel call, turning a trap (linear memory cannot grow) into NexusError "out_of_memory". */
function allocate(kernel: Kernel<BloomExports>, call: () => number, bytes: number): number {
  try {
    return call();
  } catch (error) {
    if (error instanceof WebAssembly.RuntimeError) {
      throw new NexusError(
        "out_of_memory",
        `the Bloom kernel could not allocate ${bytes} bytes (its linear memory holds ${kernel.memory.buffer.byteLength})`,
        { bytes, memoryBytes: kernel.memory.buffer.byteLength },
        { cause: error },
      );
    }
    throw error;
  }
}

const encoder = new TextEncoder();

export type BloomKey = string | Uint8Array;

/** Upper bound of a key's UTF-8 size: a UTF-16 code unit never takes more than 3 bytes. */
function worstCaseBytes(key: BloomKey): number {
  return typeof key === "string" ? key.length * 3 : key.length;
}

/** Encodes one key at the start of the scratch area; returns its length in bytes. */
function stageKey(kernel: Kernel<BloomExports>, key: BloomKey, where: string): number {
  if (typeof key === "string") {
    const n = key.length;
    const view = scratch(kernel, n * 3);
    if (n > SHORT_STRING) return encoder.encodeInto(key, view).written;
    for (let i = 0; i < n; i++) {
      const c = key.charCodeAt(i);
      if (c >= 0x80) return encoder.encodeInto(key, view).written;
      view[i] = c;
    }
    return n;
  }
  checkKey(key, where);
  return writeKey(scratch(kernel, key.length), key, 0);
}

/** Writes a key's UTF-8 bytes at offset `at` of `view` (room for its worst case reserved); returns the end. */
function writeKey(view: Uint8Array, key: BloomKey, at: number): number {
  if (typeof key !== "string") {
    const n = key.length;
    // TypedArray#set costs ≈40 ns a call whatever the size; a short loop is cheaper.
    if (n > SHORT_STRING) view.set(key, at);
    else for (let i = 0; i < n; i++) view[at + i] = key[i]!;
    return at + n;
  }
  const n = key.length;
  if (n > SHORT_STRING) return at + encoder.encodeInto(key, view.subarray(at)).written;
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x80) return at + encoder.encodeInto(key, view.subarray(at)).written;
    view[at + i] = c;
  }
  return at + n;
}

function checkKey(key: unknown, where: string): asserts key is BloomKey {
  if (typeof key !== "string" && !(key instanceof Uint8Array)) {
    throw new NexusError(
      "invalid_argument",
      `${where}: a Bloom filter key must be a string or a Uint8Array, got ${key === null ? "null" : typeof key}`,
      { key: typeof key },
    );
  }
}

interface BatchShape {
  /** Sum of the keys' worst-case UTF-8 sizes. */
  readonly worst: number;
  /** Largest worst-case size of one key. */
  readonly largest: number;
  readonly allStrings: boolean;
}

function checkArray(keys: unknown, where: string): asserts keys is readonly unknown[] {
  if (!Array.isArray(keys)) {
    throw new NexusError("invalid_argument", `${where}: keys must be an array of strings or Uint8Arrays`, {
      keys: typeof keys,
    });
  }
}

/** Validates every key before any is added (a failed batch adds nothing). */
function checkKeys(keys: readonly unknown[], where: string): BatchShape {
  let worst = 0;
  let largest = 0;
  let allStrings = true;
  for (let i = 0; i < keys.length; i++) {
    const key: unknown = keys[i];
    let size: number;
    if (typeof key === "string") {
      size = key.length * 3;
    } else if (key instanceof Uint8Array) {
      allStrings = false;
      size = key.length;
    } else {
      checkKey(key, `${where}: keys[${i}]`); // throws
      size = 0;
    }
    worst += size;
    if (size > largest) largest = size;
  }
  return { worst, largest, allStrings };
}

/** Where a chunk's parts start inside the scratch area. */
function chunkLayout(count: number): { out: number; data: number } {
  return { out: count * 4, data: (count * 5 + 7) & ~7 };
}

/** End offsets of the keys of a batch, built in JS before the scratch area is sized. */
let endsBuffer = new Uint32Array(1024);

/**
 * The common batch, packed in one pass: every key a string, all of them ASCII, fitting one chunk. The strings
 * are concatenated (a rope: cheap) and written by ONE encodeInto, which costs ≈45 ns a call plus ≈0.3 ns a byte,
 * where a call a key or a charCodeAt loop costs 2-4× more. Returns false, having written nothing that matters,
 * when the batch is anything else (a non-string, a non-ASCII char, too many bytes): the general path takes over.
 */
function packAsciiStrings(kernel: Kernel<BloomExports>, keys: readonly unknown[]): boolean {
  const n = keys.length;
  if (n > CHUNK_KEYS) return false;
  if (endsBuffer.length < n) endsBuffer = new Uint32Array(CHUNK_KEYS);
  const ends = endsBuffer;
  let joined = "";
  let length = 0;
  for (let i = 0; i < n; i++) {
    const key = keys[i];
    if (typeof key !== "string") return false;
    joined += key;
    length += key.length;
    ends[i] = length;
  }
  if (length > CHUNK_BYTES) return false;
  const layout = chunkLayout(n);
  const view = scratch(kernel, layout.data + length);
  // Exactly `length` bytes of room: a non-ASCII char needs more, so encodeInto stops short and we fall back.
  const { read, written } = encoder.encodeInto(joined, view.subarray(layout.data, layout.data + length));
  if (read !== joined.length || written !== length) return false;
  new Uint32Array(view.buffer, scratchPtr, n).set(ends.subarray(0, n));
  return true;
}

/**
 * Packs keys[first, end) into the scratch area (room for their worst case reserved): bytes at the chunk's data
 * offset, end offsets at the area's start (u32 each). Strings are tried as one ASCII string first, as above.
 */
function packChunk(
  kernel: Kernel<BloomExports>,
  keys: readonly BloomKey[],
  first: number,
  end: number,
  allStrings: boolean,
): void {
  const data = chunkLayout(end - first).data;
  const view = scratch(kernel, 0);
  const ends = new Uint32Array(view.buffer, scratchPtr, end - first);
  if (allStrings) {
    let joined = "";
    let length = 0;
    for (let i = first; i < end; i++) {
      const key = keys[i] as string;
      joined += key;
      length += key.length;
      ends[i - first] = length;
    }
    const { read, written } = encoder.encodeInto(joined, view.subarray(data));
    if (read === joined.length && written === length) return;
  }
  let at = data;
  for (let i = first; i < end; i++) {
    at = writeKey(view, keys[i]!, at);
    ends[i - first] = at - data;
  }
}

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
    const len = stageKey(this.#kernel, key, "BloomFilter.add");
    this.#kernel.exports.add(handle, scratchPtr, len);
    if (scratchCap > SCRATCH_KEEP) releaseOversizedScratch(this.#kernel);
  }

  mightContain(key: BloomKey): boolean {
    const handle = this.#live();
    const len = stageKey(this.#kernel, key, "BloomFilter.mightContain");
    const hit = this.#kernel.exports.mightContain(handle, scratchPtr, len) !== 0;
    if (scratchCap > SCRATCH_KEEP) releaseOversizedScratch(this.#kernel);
    return hit;
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
      this.#run(handle, 0, n, lookup, result);
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
      this.#run(handle, first, end - first, lookup, result);
      first = end;
    }
    releaseOversizedScratch(kernel);
    return result;
  }

  /** One kernel call over the chunk packed in the scratch area (keys first .. first + count - 1). */
  #run(handle: number, first: number, count: number, lookup: boolean, result: Uint8Array): void {
    const layout = chunkLayout(count);
    const base = scratchPtr;
    if (lookup) {
      this.#kernel.exports.mightContainMany(handle, base + layout.data, base, count, base + layout.out);
      result.set(scratchView.subarray(layout.out, layout.out + count), first);
    } else {
      this.#kernel.exports.addMany(handle, base + layout.data, base, count);
    }
  }
}
