/**
 * `Interner`: string -> dense u32 symbol (0, 1, 2, ... in first-seen order, stable for the interner's life), with
 * reverse lookup, in the linear memory of the `intern` kernel (assembly/tables/interner.ts) or of one that
 * re-exports its functions. Strings are compared as UTF-8 bytes, so they must be well-formed UTF-16: a lone
 * surrogate would encode to U+FFFD and silently alias another string, so it is rejected instead.
 * Runtime-neutral: no `node:` imports.
 */
import { describe, NexusError } from "../util/errors.js";
import { isWellFormed, LONE_SURROGATE } from "../util/well-formed.js";
import type { MemoryViews } from "../wasm/loader.js";
import { internAbi } from "./abi/intern.js";
import {
  ABSENT,
  ABSENT_I32,
  checkOptions,
  copyOut,
  create,
  disposedError,
  finalizer,
  hostKernel,
  type InternKernel,
  type InternKernelExports,
  kernelFailure,
  outputFor,
  type Scratch,
  scratchFor,
  seedWords,
} from "./intern-host.js";

/** Interner header fields read directly by `resolve` (byte offsets; see the layout in assembly/tables/interner.ts). */
const { I_SIZE, I_ENTRIES, I_ENTRY_BYTES } = internAbi.constants;
/** Strings up to this many UTF-16 units are encoded by a JS loop, longer ones by TextEncoder.encodeInto. */
const SHORT_STRING = 32;

export interface InternerOptions {
  /** Symbols to make room for up front (default 0: the interner grows as needed). */
  capacity?: number;
  /**
   * Hash seed, a non-negative safe integer, for a reproducible layout. Default: random, so that strings chosen by
   * an adversary cannot be made to collide.
   */
  seed?: number;
  /** The kernel instance to live in (default: the shared `intern` instance; requires `await ready()`). */
  kernel?: InternKernel;
}

export class Interner implements Disposable {
  /** What `lookupMany` writes for a string that is not interned. */
  static readonly ABSENT = ABSENT;

  readonly kernel: InternKernel;
  readonly #exports: InternKernelExports;
  readonly #views: MemoryViews;
  readonly #scratch: Scratch;
  #ptr: number;

  constructor(options: InternerOptions = {}) {
    checkOptions(options, "Interner");
    this.kernel = hostKernel(options.kernel);
    this.#exports = this.kernel.exports;
    this.#views = this.kernel.views;
    this.#scratch = scratchFor(this.kernel);
    const [seedLo, seedHi] = seedWords(options.seed);
    this.#ptr = create("Interner", () => this.#exports.interner_new(seedLo, seedHi));
    const capacity = options.capacity ?? 0;
    if (capacity > 0) {
      let ok: number;
      try {
        ok = this.#exports.interner_reserve(this.#ptr, Math.min(capacity, ABSENT - 1), 0);
      } catch (error) {
        this.#exports.interner_free(this.#ptr);
        throw kernelFailure(error, "new Interner");
      }
      if (!ok) {
        this.#exports.interner_free(this.#ptr);
        throw new NexusError("out_of_memory", `Interner capacity ${capacity} is over the interner's limit`, {
          capacity,
        });
      }
    }
    finalizer?.register(this, { exports: this.#exports, ptr: this.#ptr, kind: "interner" }, this);
  }

  /** Address of the interner's header in the kernel's memory, for WASM functions of the same kernel. */
  get pointer(): number {
    return this.#live();
  }

  get disposed(): boolean {
    return this.#ptr === 0;
  }

  /** Number of symbols; the next new string gets this symbol. */
  get size(): number {
    return this.#exports.interner_size(this.#live()) >>> 0;
  }

  /** Bytes held in the kernel's linear memory (slots, per-symbol entries, string bytes). */
  get memoryBytes(): number {
    return this.#exports.interner_memory_bytes(this.#live()) >>> 0;
  }

  /** The string's symbol, interning it if new. */
  intern(s: string): number {
    const t = this.#live();
    const len = this.#encodeOne(s, "Interner.intern");
    let symbol: number;
    try {
      symbol = this.#exports.interner_intern(t, this.#scratch.ptr, len);
    } catch (error) {
      throw kernelFailure(error, "Interner.intern");
    }
    this.#scratch.trim();
    if (symbol === ABSENT_I32) throw this.#full(1);
    return symbol >>> 0;
  }

  /** The string's symbol, or undefined if it was never interned. Never inserts. */
  lookup(s: string): number | undefined {
    const t = this.#live();
    const len = this.#encodeOne(s, "Interner.lookup");
    const symbol = this.#exports.interner_lookup(t, this.#scratch.ptr, len);
    this.#scratch.trim();
    return symbol === ABSENT_I32 ? undefined : symbol >>> 0;
  }

  has(s: string): boolean {
    return this.lookup(s) !== undefined;
  }

  /**
   * Interns every string (in order: new strings get consecutive symbols, a repeat gets the first one's) in one
   * WASM call; returns the symbols in `out` (length ≥ strings.length) or a new array. All or nothing: an invalid
   * string or a full interner throws before anything is interned.
   */
  internMany(strings: readonly string[], out?: Uint32Array): Uint32Array {
    const t = this.#live();
    const result = outputFor(out, checkArray(strings, "Interner.internMany"), "Interner.internMany");
    const count = strings.length;
    const total = this.#pack(strings, "Interner.internMany");
    const base = this.#scratch.ptr;
    let added: number;
    try {
      added = this.#exports.interner_intern_batch(t, base + 8 * count, base, count, total, base + 4 * count);
    } catch (error) {
      throw kernelFailure(error, "Interner.internMany");
    }
    if (added < 0) throw this.#full(count);
    copyOut(this.#views, base + 4 * count, count, result);
    this.#scratch.trim();
    return result;
  }

  /** Symbols of every string in one WASM call; `Interner.ABSENT` for a string that was never interned. */
  lookupMany(strings: readonly string[], out?: Uint32Array): Uint32Array {
    const t = this.#live();
    const result = outputFor(out, checkArray(strings, "Interner.lookupMany"), "Interner.lookupMany");
    const count = strings.length;
    this.#pack(strings, "Interner.lookupMany");
    const base = this.#scratch.ptr;
    this.#exports.interner_lookup_batch(t, base + 8 * count, base, count, base + 4 * count);
    copyOut(this.#views, base + 4 * count, count, result);
    this.#scratch.trim();
    return result;
  }

  /** The string of a symbol. An unknown symbol is a NexusError "invalid_argument". */
  resolve(symbol: number): string {
    const t = this.#live();
    // Read straight from the header and the entry (layout: assembly/tables/interner.ts): no WASM call on this path.
    const u32 = this.#views.u32;
    const size = u32[(t + I_SIZE) >>> 2]!;
    if (symbol >>> 0 !== symbol || symbol >= size) {
      throw new NexusError(
        "invalid_argument",
        `Interner.resolve: ${describe(symbol)} is not a symbol of this interner (it holds ${size})`,
        { symbol, size },
      );
    }
    const bytes = u32[(u32[(t + I_ENTRIES) >>> 2]! + I_ENTRY_BYTES * symbol) >>> 2]!;
    // The byte length is the u32 before the bytes, unaligned: read a byte at a time.
    const u8 = this.#views.u8;
    const length =
      (u8[bytes - 4]! | (u8[bytes - 3]! << 8) | (u8[bytes - 2]! << 16) | (u8[bytes - 1]! << 24)) >>> 0;
    return decodeUtf8(u8, bytes, length);
  }

  /** Frees the interner's memory. Idempotent; any later use throws NexusError "disposed". */
  dispose(): void {
    if (this.#ptr === 0) return;
    finalizer?.unregister(this);
    this.#exports.interner_free(this.#ptr);
    this.#ptr = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #live(): number {
    if (this.#ptr === 0) throw disposedError("Interner");
    return this.#ptr;
  }

  #full(adding: number): NexusError {
    const size = this.#exports.interner_size(this.#ptr) >>> 0;
    return new NexusError(
      "out_of_memory",
      `Interner is full: ${size} symbols, cannot add ${adding} more (limits: about 100 million symbols, 4 GiB of memory)`,
      { size, adding },
    );
  }

  /** Writes one string's UTF-8 at the scratch buffer; returns its byte length. */
  #encodeOne(s: string, where: string): number {
    if (typeof s !== "string") throw notAString(s, where);
    const n = s.length;
    // Short strings: a plain loop beats the fixed cost of an encodeInto call.
    if (n > SHORT_STRING) return this.#encodeOneLong(s, where);
    const p = this.#scratch.take(n);
    const u8 = this.#views.u8;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return this.#encodeOneLong(s, where);
      u8[p + i] = c;
    }
    return n;
  }

  #encodeOneLong(s: string, where: string): number {
    const n = s.length;
    this.#scratch.take(3 * n);
    const written = encoder.encodeInto(s, this.#scratch.bytes()).written;
    if (written !== n) assertWellFormed(s, where); // not all ASCII: refuse lone surrogates
    return written;
  }

  /**
   * Packs strings into the scratch buffer as [u32 byte length × n][u32 out × n][bytes ...]; returns the byte total.
   * ASCII first: lengths are the strings' lengths and the bytes come from one encodeInto of the joined batch (one
   * native call instead of a loop per character). If any string is wider, the batch is encoded string by string.
   */
  #pack(strings: readonly string[], where: string): number {
    const count = strings.length;
    let units = 0;
    for (let i = 0; i < count; i++) {
      const s = strings[i];
      if (typeof s !== "string") throw notAString(s, where, i);
      units += s.length;
    }
    const head = 8 * count;
    const base = this.#scratch.take(head + units);
    const u32 = this.#views.u32;
    const lens = base >>> 2;
    for (let i = 0; i < count; i++) u32[lens + i] = strings[i]!.length;
    if (units === 0) return 0;
    const joined = count === 1 ? strings[0]! : strings.join("");
    const bytes = this.#views.u8.subarray(base + head, base + head + units);
    const { read, written } = encoder.encodeInto(joined, bytes);
    // Every UTF-16 unit became exactly one byte only if every one was ASCII.
    if (read === units && written === units) return units;
    return this.#packWide(strings, where, units);
  }

  /** #pack for a batch with non-ASCII strings: per string, growing the buffer for the worst case when needed. */
  #packWide(strings: readonly string[], where: string, units: number): number {
    const count = strings.length;
    const head = 8 * count;
    let base = this.#scratch.ptr;
    let u8 = this.#views.u8;
    let u32 = this.#views.u32;
    let pos = base + head;
    let unitsLeft = units;
    for (let i = 0; i < count; i++) {
      const s = strings[i]!;
      const n = s.length;
      unitsLeft -= n;
      let start = pos;
      let j = 0;
      for (; j < n; j++) {
        const c = s.charCodeAt(j);
        if (c >= 0x80) break;
        u8[pos + j] = c;
      }
      if (j === n) {
        pos += n;
      } else {
        assertWellFormed(s, where, i);
        const need = start - base + 3 * n + unitsLeft;
        if (need > this.#scratch.capacity) {
          const offset = start - base;
          base = this.#scratch.grow(need, offset);
          u8 = this.#views.u8;
          u32 = this.#views.u32;
          start = base + offset;
        }
        pos = start + encoder.encodeInto(s, u8.subarray(start, start + 3 * n)).written;
      }
      u32[(base >>> 2) + i] = pos - start;
    }
    return pos - (base + head);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function notAString(value: unknown, where: string, index?: number): NexusError {
  const at = index === undefined ? "" : ` at index ${index}`;
  return new NexusError("invalid_argument", `${where}: expected a string${at}, got ${describe(value)}`, {
    index,
  });
}

function checkArray(strings: readonly string[], where: string): number {
  if (!Array.isArray(strings)) {
    throw new NexusError(
      "invalid_argument",
      `${where}: expected an array of strings, got ${describe(strings)}`,
    );
  }
  return strings.length;
}

// Lone surrogates would encode to U+FFFD and make two different strings one symbol.
function assertWellFormed(s: string, where: string, index?: number): void {
  if (isWellFormed(s)) return;
  const at = LONE_SURROGATE.exec(s)?.index ?? -1;
  throw new NexusError(
    "invalid_argument",
    `${where}: string${index === undefined ? "" : ` ${index}`} ${describe(s)} is not well-formed UTF-16 ` +
      `(lone surrogate at ${at}), so it has no UTF-8 form`,
    { index, position: at },
  );
}

const charCodes: number[] = [];

function decodeUtf8(u8: Uint8Array, ptr: number, len: number): string {
  // Short ASCII (the common id): copy the codes into a reused array and build the string in one call, which is
  // cheaper than TextDecoder's fixed cost. Anything else goes to TextDecoder.
  if (len <= 64) {
    charCodes.length = len;
    let i = 0;
    for (; i < len; i++) {
      const c = u8[ptr + i]!;
      if (c >= 0x80) break;
      charCodes[i] = c;
    }
    if (i === len) return String.fromCharCode.apply(null, charCodes);
  }
  return decoder.decode(u8.subarray(ptr, ptr + len));
}
