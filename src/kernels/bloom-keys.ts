/**
 * The `bloom` kernel shared by every filter of a realm, and how keys reach it: one scratch area in the kernel's
 * memory that a key or a batch of keys is encoded into (UTF-8 for strings; bytes as they are) before the call.
 * Batches are validated first and packed in chunks, so a huge batch does not grow linear memory for good.
 * Runtime-neutral: no `node:` imports.
 */
import { NexusError } from "../util/errors.js";
import { type Kernel, sharedKernel } from "../wasm/loader.js";

/** Raw exports of assembly/bloom.ts (addresses and lengths are byte offsets into the kernel's memory). */
export interface BloomExports {
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
  /** The bits' address (the handle itself); only bench/bloom.bench.ts calls it, to time a bare call. */
  bits(filter: number): number;
}

export let kernelInstance: Kernel<BloomExports> | undefined;

/** The shared kernel; NexusError "not_ready" (from the loader) before `await ready()`. */
export function bloomKernel(): Kernel<BloomExports> {
  if (kernelInstance === undefined) kernelInstance = sharedKernel<BloomExports>("bloom");
  return kernelInstance;
}

/** Most keys in one kernel call; a batch of more is split (each chunk one call, all keys validated first). */
export const CHUNK_KEYS = 8192;
/** Budget for one chunk's encoded keys (worst case), so a huge batch does not grow linear memory for good. */
export const CHUNK_BYTES = 256 * 1024;
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

export function releaseOversizedScratch(kernel: Kernel<BloomExports>): void {
  if (scratchCap <= SCRATCH_KEEP) return;
  kernel.exports.free(scratchPtr);
  scratchPtr = 0;
  scratchCap = 0;
  scratchView = new Uint8Array(0);
}

/** The scratch area, holding at least `bytes`. May allocate: views taken before this call may be detached. */
export function scratch(kernel: Kernel<BloomExports>, bytes: number): Uint8Array {
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
export function allocate(kernel: Kernel<BloomExports>, call: () => number, bytes: number): number {
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
export function worstCaseBytes(key: BloomKey): number {
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

export function checkArray(keys: unknown, where: string): asserts keys is readonly unknown[] {
  if (!Array.isArray(keys)) {
    throw new NexusError("invalid_argument", `${where}: keys must be an array of strings or Uint8Arrays`, {
      keys: typeof keys,
    });
  }
}

/** Validates every key before any is added (a failed batch adds nothing). */
export function checkKeys(keys: readonly unknown[], where: string): BatchShape {
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
export function chunkLayout(count: number): { out: number; data: number } {
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
export function packAsciiStrings(kernel: Kernel<BloomExports>, keys: readonly unknown[]): boolean {
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
 * Packs keys [first, end) given in parts (key i is parts[width * i] + ... + parts[width * i + width - 1]) into the
 * scratch area like packAsciiStrings, without building the keys: the chunk's parts are joined by one
 * Array#join (one flat string, where a `+=` per key built a rope that encodeInto then flattened) and written by
 * one encodeInto. Returns false, having written nothing that matters, when a part is not ASCII or the chunk has
 * more than CHUNK_BYTES of them; the caller then builds the keys.
 */
export function packParts(
  kernel: Kernel<BloomExports>,
  parts: readonly string[],
  width: number,
  first: number,
  end: number,
): boolean {
  const n = end - first;
  if (endsBuffer.length < n) endsBuffer = new Uint32Array(Math.max(n, CHUNK_KEYS));
  const ends = endsBuffer;
  let length = 0;
  for (let i = 0, p = first * width; i < n; i++) {
    for (let j = 0; j < width; j++, p++) length += parts[p]!.length;
    ends[i] = length;
  }
  if (length > CHUNK_BYTES) return false;
  const layout = chunkLayout(n);
  const view = scratch(kernel, layout.data + length);
  const whole = first === 0 && end * width === parts.length;
  const joined = (whole ? parts : parts.slice(first * width, end * width)).join("");
  // Exactly `length` bytes of room: a non-ASCII char needs more, so encodeInto stops short.
  const { read, written } = encoder.encodeInto(joined, view.subarray(layout.data, layout.data + length));
  if (read !== length || written !== length) return false;
  new Uint32Array(view.buffer, scratchPtr, n).set(ends.subarray(0, n));
  return true;
}

/**
 * Packs keys[first, end) into the scratch area (room for their worst case reserved): bytes at the chunk's data
 * offset, end offsets at the area's start (u32 each). Strings are tried as one ASCII string first, as above.
 */
export function packChunk(
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

/** Adds one key: staged in the scratch area, then one kernel call. */
export function addKey(kernel: Kernel<BloomExports>, handle: number, key: BloomKey): void {
  const len = stageKey(kernel, key, "BloomFilter.add");
  kernel.exports.add(handle, scratchPtr, len);
  if (scratchCap > SCRATCH_KEEP) releaseOversizedScratch(kernel);
}

/** Looks up one key: staged in the scratch area, then one kernel call. */
export function containsKey(kernel: Kernel<BloomExports>, handle: number, key: BloomKey): boolean {
  const len = stageKey(kernel, key, "BloomFilter.mightContain");
  const hit = kernel.exports.mightContain(handle, scratchPtr, len) !== 0;
  if (scratchCap > SCRATCH_KEEP) releaseOversizedScratch(kernel);
  return hit;
}

/**
 * Keys up to this many UTF-16 units are staged part by part by containsJoined (a charCodeAt loop); longer ones are
 * joined and encoded by one encodeInto. Measured on Node 20 (a 10-char prefix and a name): the loop beats building
 * the key up to ≈40 chars in all, and a part's own encodeInto (a subarray per call) never does.
 */
const JOINED_LOOP = 40;

/**
 * Looks up the key a + b + c without building it: when the parts are ASCII and short, their chars are copied one
 * after the other into the scratch area (the joined key's UTF-8 bytes), then one kernel call. Anything else (a
 * non-ASCII char, a long key) goes through the general path with the joined string: encoded part by part, a lone
 * surrogate at a part's end and one at the next part's start would become two U+FFFD where the joined key has one
 * code point.
 */
export function containsJoined(
  kernel: Kernel<BloomExports>,
  handle: number,
  a: string,
  b: string,
  c: string,
): boolean {
  const na = a.length;
  const nb = b.length;
  const n = na + nb + c.length;
  if (n > JOINED_LOOP) return containsKey(kernel, handle, a + b + c);
  const view = scratch(kernel, n);
  let bits = 0;
  for (let i = 0; i < na; i++) {
    const ch = a.charCodeAt(i);
    bits |= ch;
    view[i] = ch;
  }
  for (let i = 0; i < nb; i++) {
    const ch = b.charCodeAt(i);
    bits |= ch;
    view[na + i] = ch;
  }
  for (let i = na + nb; i < n; i++) {
    const ch = c.charCodeAt(i - na - nb);
    bits |= ch;
    view[i] = ch;
  }
  // A non-ASCII char anywhere: the bytes written are not the key's.
  if (bits >= 0x80) return containsKey(kernel, handle, a + b + c);
  return kernel.exports.mightContain(handle, scratchPtr, n) !== 0;
}

/**
 * Copies a + b into `view` from `at` when both are ASCII; returns the end, or -1 when a char is not ASCII (the
 * bytes written are then not the key's). The caller reserved room for a.length + b.length bytes.
 */
function copyAscii(view: Uint8Array, a: string, b: string, at: number): number {
  let bits = 0;
  const na = a.length;
  for (let i = 0; i < na; i++) {
    const ch = a.charCodeAt(i);
    bits |= ch;
    view[at + i] = ch;
  }
  at += na;
  const nb = b.length;
  for (let i = 0; i < nb; i++) {
    const ch = b.charCodeAt(i);
    bits |= ch;
    view[at + i] = ch;
  }
  return bits < 0x80 ? at + nb : -1;
}

/**
 * Looks up the keys a1 + b1 and a2 + b2 in one kernel call: bit 0 of the result is set when the first may be
 * present, bit 1 when the second may. The two probes are independent loads the CPU overlaps (a lookup in a filter
 * out of cache mostly waits for its line), where two calls wait one after the other. Staged as containsJoined;
 * long or non-ASCII keys take two general lookups.
 */
export function containsJoinedPair(
  kernel: Kernel<BloomExports>,
  handle: number,
  a1: string,
  b1: string,
  a2: string,
  b2: string,
): number {
  const n1 = a1.length + b1.length;
  const n = n1 + a2.length + b2.length;
  if (n <= 2 * JOINED_LOOP) {
    // [end of key 1: u32][end of key 2: u32][out: 2 bytes][pad to 16][key bytes]: chunkLayout(2).
    const view = scratch(kernel, PAIR_DATA + n);
    if (copyAscii(view, a1, b1, PAIR_DATA) >= 0 && copyAscii(view, a2, b2, PAIR_DATA + n1) >= 0) {
      // Ends are little-endian u32s below 2^8 here.
      view[0] = n1;
      view[1] = 0;
      view[2] = 0;
      view[3] = 0;
      view[4] = n;
      view[5] = 0;
      view[6] = 0;
      view[7] = 0;
      const base = scratchPtr;
      kernel.exports.mightContainMany(handle, base + PAIR_DATA, base, 2, base + PAIR_OUT);
      // The call allocates nothing: the view is still attached.
      return view[PAIR_OUT]! | (view[PAIR_OUT + 1]! << 1);
    }
  }
  return (containsKey(kernel, handle, a1 + b1) ? 1 : 0) | (containsKey(kernel, handle, a2 + b2) ? 2 : 0);
}

const PAIR_OUT = chunkLayout(2).out;
const PAIR_DATA = chunkLayout(2).data;

/** One kernel call over the chunk packed in the scratch area (keys first .. first + count - 1). */
export function runChunk(
  kernel: Kernel<BloomExports>,
  handle: number,
  first: number,
  count: number,
  lookup: boolean,
  result: Uint8Array,
): void {
  const layout = chunkLayout(count);
  const base = scratchPtr;
  if (lookup) {
    kernel.exports.mightContainMany(handle, base + layout.data, base, count, base + layout.out);
    result.set(scratchView.subarray(layout.out, layout.out + count), first);
  } else {
    kernel.exports.addMany(handle, base + layout.data, base, count);
  }
}
