/**
 * Interned symbols and memo tables, backed by the `intern` WASM kernel (assembly/intern.ts).
 *
 * - `Interner`: string -> dense u32 symbol (0, 1, 2, ... in first-seen order, stable for the interner's life), with
 *   reverse lookup. Strings are compared as UTF-8 bytes, so they must be well-formed UTF-16: a lone surrogate would
 *   encode to U+FFFD and silently alias another string, so it is rejected instead.
 * - `MemoTable`: (u32, u32[, u32[, u32]]) -> u32 value, with O(1) `clear()`. Values are u32 except
 *   `MemoTable.ABSENT` (0xFFFFFFFF), which the batched calls use for "no value" and which `set` rejects.
 *
 * Both live in raw linear memory of a kernel instance (by default the realm's shared `intern` instance; pass
 * `kernel` to host them in another kernel that re-exports these functions, e.g. the evaluator, whose WASM code can
 * then use the same structures through `pointer`). Single calls cost one WASM call; batched calls pack their input
 * into a per-kernel scratch buffer and cost one WASM call per batch. Runtime-neutral: no `node:` imports.
 */
import { describe, NexusError } from "../util/errors.js";
import { type Kernel, type MemoryViews, sharedKernel } from "../wasm/loader.js";

/** The exports of a kernel that hosts interners and memo tables (the `intern` kernel, or one that re-exports it). */
export interface InternKernelExports {
  readonly memory: WebAssembly.Memory;
  alloc(size: number): number;
  free(ptr: number): void;
  interner_new(seedLo: number, seedHi: number): number;
  interner_free(interner: number): void;
  interner_size(interner: number): number;
  interner_capacity(interner: number): number;
  interner_memory_bytes(interner: number): number;
  interner_reserve(interner: number, extraSymbols: number, extraBytes: number): number;
  interner_intern(interner: number, key: number, len: number): number;
  interner_lookup(interner: number, key: number, len: number): number;
  interner_intern_batch(
    interner: number,
    bytes: number,
    lens: number,
    count: number,
    totalBytes: number,
    out: number,
  ): number;
  interner_lookup_batch(interner: number, bytes: number, lens: number, count: number, out: number): number;
  interner_symbol_ptr(interner: number, symbol: number): number;
  interner_symbol_len(interner: number, symbol: number): number;
  memo_new(arity: number, seedLo: number, seedHi: number): number;
  memo_free(table: number): void;
  memo_size(table: number): number;
  memo_arity(table: number): number;
  memo_capacity(table: number): number;
  memo_memory_bytes(table: number): number;
  memo_generation(table: number): number;
  memo_set_generation(table: number, generation: number): void;
  memo_reserve(table: number, entries: number): number;
  memo_get2(table: number, a: number, b: number): number;
  memo_get3(table: number, a: number, b: number, c: number): number;
  memo_get4(table: number, a: number, b: number, c: number, d: number): number;
  memo_set2(table: number, a: number, b: number, value: number): number;
  memo_set3(table: number, a: number, b: number, c: number, value: number): number;
  memo_set4(table: number, a: number, b: number, c: number, d: number, value: number): number;
  memo_delete2(table: number, a: number, b: number): number;
  memo_delete3(table: number, a: number, b: number, c: number): number;
  memo_delete4(table: number, a: number, b: number, c: number, d: number): number;
  memo_clear(table: number): void;
  memo_get_many(table: number, keys: number, count: number, out: number): number;
  memo_set_many(table: number, keys: number, values: number, count: number): number;
  memo_delete_many(table: number, keys: number, count: number): number;
  memo_copy_entries(table: number, keys: number, values: number): number;
}

export type InternKernel = Kernel<InternKernelExports>;

/** The u32 that means "no symbol" / "no value" in batched results (0xFFFFFFFF; -1 as WASM returns it). */
const ABSENT = 0xffffffff;
const ABSENT_I32 = -1;
/** Interner header fields read directly by `resolve` (byte offsets; see the layout in assembly/intern.ts). */
const I_SIZE = 8;
const I_ENTRIES = 16;
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

export interface MemoTableOptions {
  /** Entries to make room for up front (default 0: the table grows as needed). */
  capacity?: number;
  /** Hash seed, a non-negative safe integer; default random. */
  seed?: number;
  /** The kernel instance to live in (default: the shared `intern` instance; requires `await ready()`). */
  kernel?: InternKernel;
}

export type MemoArity = 2 | 3 | 4;

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
    // Read straight from the header and the entry (layout: assembly/intern.ts): no WASM call on this path.
    const u32 = this.#views.u32;
    const size = u32[(t + I_SIZE) >>> 2]!;
    if (symbol >>> 0 !== symbol || symbol >= size) {
      throw new NexusError(
        "invalid_argument",
        `Interner.resolve: ${describe(symbol)} is not a symbol of this interner (it holds ${size})`,
        { symbol, size },
      );
    }
    const entry = (u32[(t + I_ENTRIES) >>> 2]! >>> 2) + 2 * symbol;
    return decodeUtf8(this.#views.u8, u32[entry]!, u32[entry + 1]!);
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

export class MemoTable implements Disposable {
  /** What `getMany` writes for an absent key; the one u32 that `set` rejects as a value. */
  static readonly ABSENT = ABSENT;

  readonly arity: MemoArity;
  readonly kernel: InternKernel;
  readonly #exports: InternKernelExports;
  readonly #views: MemoryViews;
  readonly #scratch: Scratch;
  #ptr: number;

  constructor(arity: MemoArity, options: MemoTableOptions = {}) {
    if (arity !== 2 && arity !== 3 && arity !== 4) {
      throw new NexusError("invalid_argument", `MemoTable arity must be 2, 3 or 4, got ${describe(arity)}`, {
        arity,
      });
    }
    checkOptions(options, "MemoTable");
    this.arity = arity;
    this.kernel = hostKernel(options.kernel);
    this.#exports = this.kernel.exports;
    this.#views = this.kernel.views;
    this.#scratch = scratchFor(this.kernel);
    const [seedLo, seedHi] = seedWords(options.seed);
    this.#ptr = create("MemoTable", () => this.#exports.memo_new(arity, seedLo, seedHi));
    const capacity = options.capacity ?? 0;
    if (capacity > 0) {
      try {
        this.reserve(capacity);
      } catch (error) {
        this.#exports.memo_free(this.#ptr);
        this.#ptr = 0;
        throw error;
      }
    }
    finalizer?.register(this, { exports: this.#exports, ptr: this.#ptr, kind: "memo" }, this);
  }

  /** Address of the table's header in the kernel's memory, for WASM functions of the same kernel. */
  get pointer(): number {
    return this.#live();
  }

  get disposed(): boolean {
    return this.#ptr === 0;
  }

  get size(): number {
    return this.#exports.memo_size(this.#live()) >>> 0;
  }

  /** Slots in the table (a power of two; entries stay at or below 3/4 of it). */
  get capacity(): number {
    return this.#exports.memo_capacity(this.#live()) >>> 0;
  }

  /** Bytes held in the kernel's linear memory. `clear()` keeps them for the next fill. */
  get memoryBytes(): number {
    return this.#exports.memo_memory_bytes(this.#live()) >>> 0;
  }

  /** The value of a key, or undefined. A key is `arity` u32s, as arguments or as one array: `get([a, b, c])`. */
  get(key: readonly number[]): number | undefined;
  get(a: number, b: number, c?: number, d?: number): number | undefined;
  get(a: number | readonly number[], b?: number, c?: number, d?: number): number | undefined {
    const t = this.#live();
    const k = a as number;
    let value: number;
    switch (this.arity) {
      case 2:
        if (k >>> 0 !== k || b! >>> 0 !== b || c !== undefined || d !== undefined) {
          const key = this.#keyArray("get", a, [b, c, d]);
          return this.get(key[0]!, key[1]!);
        }
        value = this.#exports.memo_get2(t, k, b);
        break;
      case 3:
        if (k >>> 0 !== k || b! >>> 0 !== b || c! >>> 0 !== c || d !== undefined) {
          const key = this.#keyArray("get", a, [b, c, d]);
          return this.get(key[0]!, key[1]!, key[2]!);
        }
        value = this.#exports.memo_get3(t, k, b, c);
        break;
      default:
        if (k >>> 0 !== k || b! >>> 0 !== b || c! >>> 0 !== c || d! >>> 0 !== d) {
          const key = this.#keyArray("get", a, [b, c, d]);
          return this.get(key[0]!, key[1]!, key[2]!, key[3]!);
        }
        value = this.#exports.memo_get4(t, k, b, c, d);
    }
    return value === ABSENT_I32 ? undefined : value >>> 0;
  }

  has(key: readonly number[]): boolean;
  has(a: number, b: number, c?: number, d?: number): boolean;
  has(a: number | readonly number[], b?: number, c?: number, d?: number): boolean {
    if (typeof a !== "number") {
      const key = this.#keyArray("has", a, [b, c, d]);
      return this.get(key[0]!, key[1]!, key[2], key[3]) !== undefined;
    }
    return this.get(a, b!, c, d) !== undefined;
  }

  /**
   * Sets the value of a key: `set(a, b, value)`, `set(a, b, c, value)` or `set(a, b, c, d, value)` by arity, or
   * `set([a, b, c], value)`. The value is a u32 other than `MemoTable.ABSENT`.
   */
  set(key: readonly number[], value: number): this;
  set(a: number, b: number, value: number): this;
  set(a: number, b: number, c: number, value: number): this;
  set(a: number, b: number, c: number, d: number, value: number): this;
  set(a: number | readonly number[], b: number, c?: number, d?: number, e?: number): this {
    const t = this.#live();
    const k = a as number;
    let status: number;
    try {
      switch (this.arity) {
        case 2:
          if (k >>> 0 !== k || b >>> 0 !== b || d !== undefined || e !== undefined || c === undefined) {
            const key = this.#keyArray("set", a, [b, c, d, e]);
            return this.set(key[0]!, key[1]!, key[2]!);
          }
          if (c >>> 0 !== c || c === ABSENT) throw badValue(c, "MemoTable.set");
          status = this.#exports.memo_set2(t, k, b, c);
          break;
        case 3:
          if (k >>> 0 !== k || b >>> 0 !== b || c! >>> 0 !== c || e !== undefined || d === undefined) {
            const key = this.#keyArray("set", a, [b, c, d, e]);
            return this.set(key[0]!, key[1]!, key[2]!, key[3]!);
          }
          if (d >>> 0 !== d || d === ABSENT) throw badValue(d, "MemoTable.set");
          status = this.#exports.memo_set3(t, k, b, c, d);
          break;
        default:
          if (k >>> 0 !== k || b >>> 0 !== b || c! >>> 0 !== c || d! >>> 0 !== d || e === undefined) {
            const key = this.#keyArray("set", a, [b, c, d, e]);
            return this.set(key[0]!, key[1]!, key[2]!, key[3]!, key[4]!);
          }
          if (e >>> 0 !== e || e === ABSENT) throw badValue(e, "MemoTable.set");
          status = this.#exports.memo_set4(t, k, b, c, d, e);
      }
    } catch (error) {
      throw kernelFailure(error, "MemoTable.set");
    }
    if (status < 0) throw this.#full(1);
    return this;
  }

  /** Removes a key (as arguments or one array); true if it was present. */
  delete(key: readonly number[]): boolean;
  delete(a: number, b: number, c?: number, d?: number): boolean;
  delete(a: number | readonly number[], b?: number, c?: number, d?: number): boolean {
    const t = this.#live();
    const k = a as number;
    let value: number;
    switch (this.arity) {
      case 2:
        if (k >>> 0 !== k || b! >>> 0 !== b || c !== undefined || d !== undefined) {
          const key = this.#keyArray("delete", a, [b, c, d]);
          return this.delete(key[0]!, key[1]!);
        }
        value = this.#exports.memo_delete2(t, k, b);
        break;
      case 3:
        if (k >>> 0 !== k || b! >>> 0 !== b || c! >>> 0 !== c || d !== undefined) {
          const key = this.#keyArray("delete", a, [b, c, d]);
          return this.delete(key[0]!, key[1]!, key[2]!);
        }
        value = this.#exports.memo_delete3(t, k, b, c);
        break;
      default:
        if (k >>> 0 !== k || b! >>> 0 !== b || c! >>> 0 !== c || d! >>> 0 !== d) {
          const key = this.#keyArray("delete", a, [b, c, d]);
          return this.delete(key[0]!, key[1]!, key[2]!, key[3]!);
        }
        value = this.#exports.memo_delete4(t, k, b, c, d);
    }
    return value !== ABSENT_I32;
  }

  /** Forgets every entry in O(1) (a generation bump); the capacity is kept for the next fill. */
  clear(): void {
    this.#exports.memo_clear(this.#live());
  }

  /** Makes room for `entries` entries in all, so that filling up to that many allocates nothing more. */
  reserve(entries: number): void {
    const t = this.#live();
    if (!Number.isSafeInteger(entries) || entries < 0) {
      throw new NexusError(
        "invalid_argument",
        `MemoTable.reserve: entries must be a non-negative integer, got ${describe(entries)}`,
        { entries },
      );
    }
    let ok: number;
    try {
      ok = entries > ABSENT ? 0 : this.#exports.memo_reserve(t, entries);
    } catch (error) {
      throw kernelFailure(error, "MemoTable.reserve");
    }
    if (!ok) throw this.#full(entries - (this.#exports.memo_size(t) >>> 0));
  }

  /**
   * Looks up many keys in one WASM call. `keys` holds `arity` u32s per key, back to back; the value of key i (or
   * `MemoTable.ABSENT`) goes to out[i]. Returns `out` (length ≥ the key count) or a new array.
   */
  getMany(keys: Uint32Array, out?: Uint32Array): Uint32Array {
    const t = this.#live();
    const count = this.#keyCount(keys, "getMany");
    const result = outputFor(out, count, "MemoTable.getMany");
    const base = this.#scratch.take(keys.byteLength + 4 * count);
    this.#views.u32.set(keys, base >>> 2);
    this.#exports.memo_get_many(t, base, count, base + keys.byteLength);
    copyOut(this.#views, base + keys.byteLength, count, result);
    this.#scratch.trim();
    return result;
  }

  /**
   * Sets many keys in one WASM call, in order (a repeated key keeps its last value). `keys` as in `getMany`,
   * `values` one u32 per key. All or nothing: an ABSENT value or a full table throws before anything is written.
   * Returns how many keys were new.
   */
  setMany(keys: Uint32Array, values: Uint32Array): number {
    const t = this.#live();
    const count = this.#keyCount(keys, "setMany");
    if (!(values instanceof Uint32Array) || values.length !== count) {
      throw new NexusError(
        "invalid_argument",
        `MemoTable.setMany: values must be a Uint32Array of ${count} (one per key), got ${describeArray(values)}`,
        { expected: count },
      );
    }
    const base = this.#scratch.take(keys.byteLength + values.byteLength);
    const u32 = this.#views.u32;
    u32.set(keys, base >>> 2);
    u32.set(values, (base + keys.byteLength) >>> 2);
    let status: number;
    try {
      status = this.#exports.memo_set_many(t, base, base + keys.byteLength, count);
    } catch (error) {
      throw kernelFailure(error, "MemoTable.setMany");
    } finally {
      this.#scratch.trim();
    }
    if (status <= -2) throw badValue(ABSENT, "MemoTable.setMany", -2 - status);
    if (status < 0) throw this.#full(count);
    return status;
  }

  /** Deletes many keys (packed as in `getMany`) in one WASM call; returns how many were present. */
  deleteMany(keys: Uint32Array): number {
    const t = this.#live();
    const count = this.#keyCount(keys, "deleteMany");
    const base = this.#scratch.take(keys.byteLength);
    this.#views.u32.set(keys, base >>> 2);
    const removed = this.#exports.memo_delete_many(t, base, count) >>> 0;
    this.#scratch.trim();
    return removed;
  }

  /** A copy of every entry: keys (`arity` u32s each, back to back) and values, in unspecified order. */
  entries(): { keys: Uint32Array; values: Uint32Array } {
    const t = this.#live();
    const count = this.#exports.memo_size(t) >>> 0;
    const keyBytes = 4 * this.arity * count;
    const base = this.#scratch.take(keyBytes + 4 * count);
    this.#exports.memo_copy_entries(t, base, base + keyBytes);
    const u32 = this.#views.u32;
    const keys = u32.slice(base >>> 2, (base + keyBytes) >>> 2);
    const values = u32.slice((base + keyBytes) >>> 2, (base + keyBytes) / 4 + count);
    this.#scratch.trim();
    return { keys, values };
  }

  /** Frees the table's memory. Idempotent; any later use throws NexusError "disposed". */
  dispose(): void {
    if (this.#ptr === 0) return;
    finalizer?.unregister(this);
    this.#exports.memo_free(this.#ptr);
    this.#ptr = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #live(): number {
    if (this.#ptr === 0) throw disposedError("MemoTable");
    return this.#ptr;
  }

  #keyCount(keys: Uint32Array, method: string): number {
    if (!(keys instanceof Uint32Array) || keys.length % this.arity !== 0) {
      throw new NexusError(
        "invalid_argument",
        `MemoTable.${method}: keys must be a Uint32Array of ${this.arity} u32s per key, got ${describeArray(keys)}`,
        { arity: this.arity },
      );
    }
    return keys.length / this.arity;
  }

  /**
   * Called when a call's arguments are not `arity` u32 keys (plus the value for `set`). If the key was passed as
   * one array, returns its elements (then the value) for the caller to retry with; otherwise throws the precise
   * complaint: the wrong number of arguments for the arity, or the first key that is not a u32.
   */
  #keyArray(method: string, first: unknown, rest: unknown[]): number[] {
    const valued = method === "set" ? 1 : 0;
    if (Array.isArray(first) && rest.every((x, i) => (i < valued ? x !== undefined : x === undefined))) {
      const key: unknown[] = first;
      if (key.length !== this.arity) {
        throw new NexusError(
          "invalid_argument",
          `MemoTable.${method}: this table has arity ${this.arity}, got a key of ${key.length} elements`,
          { arity: this.arity, given: key.length },
        );
      }
      const index = key.findIndex((x) => typeof x !== "number" || x >>> 0 !== x);
      if (index >= 0) throw keyError(method, index, key[index]);
      return (valued ? [...key, rest[0]] : key) as number[];
    }
    const args = [first, ...rest];
    const expected = this.arity + valued;
    let given = args.length;
    while (given > 0 && args[given - 1] === undefined) given--;
    if (given !== expected) {
      throw new NexusError(
        "invalid_argument",
        `MemoTable.${method}: this table has arity ${this.arity}, so ${method} takes ${expected} arguments` +
          `${valued ? " (the keys, then the value)" : ""} or ${valued ? "a key array and the value" : "one key array"}; got ${given}`,
        { arity: this.arity, given },
      );
    }
    const index = args.findIndex((x, i) => i < this.arity && (typeof x !== "number" || x >>> 0 !== x));
    throw keyError(method, index, args[index]);
  }

  #full(adding: number): NexusError {
    const size = this.#exports.memo_size(this.#ptr) >>> 0;
    return new NexusError(
      "out_of_memory",
      `MemoTable is full: ${size} entries, cannot add ${adding} more (one slot array is at most 1 GiB)`,
      { size, adding },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Shared plumbing

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function hostKernel(kernel: InternKernel | undefined): InternKernel {
  const host = kernel ?? sharedKernel<InternKernelExports>("intern");
  const exports = host?.exports as Partial<InternKernelExports> | undefined;
  if (typeof exports?.interner_new !== "function" || typeof exports.memo_get_many !== "function") {
    throw new NexusError(
      "invalid_argument",
      `kernel ${describe(host?.name)} does not export the intern functions (re-export assembly/intern.ts)`,
      { kernel: host?.name },
    );
  }
  return host;
}

function checkOptions(options: InternerOptions | MemoTableOptions, what: string): void {
  if (typeof options !== "object" || options === null) {
    throw new NexusError("invalid_argument", `${what} options must be an object, got ${describe(options)}`);
  }
  const { capacity } = options;
  if (capacity !== undefined && (!Number.isSafeInteger(capacity) || capacity < 0)) {
    throw new NexusError(
      "invalid_argument",
      `${what} capacity must be a non-negative integer, got ${describe(capacity)}`,
      { capacity },
    );
  }
}

/** Runs a constructor call into the kernel, turning a trap into a typed error. */
function create(what: string, make: () => number): number {
  let ptr: number;
  try {
    ptr = make();
  } catch (error) {
    throw kernelFailure(error, `new ${what}`);
  }
  if (ptr === 0) throw new NexusError("internal", `${what}: the kernel refused to create it`);
  return ptr;
}

// Seeds come from a small pool refilled from the platform's CSPRNG (one getRandomValues call per 32 structures).
const seedPool = new Uint32Array(64);
let seedNext = seedPool.length;

function seedWords(seed: number | undefined): [number, number] {
  if (seed !== undefined) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new NexusError(
        "invalid_argument",
        `seed must be a non-negative safe integer, got ${describe(seed)}`,
        {
          seed,
        },
      );
    }
    return [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
  }
  if (seedNext === seedPool.length) {
    const crypto = (globalThis as { crypto?: { getRandomValues?(array: Uint32Array): Uint32Array } }).crypto;
    if (typeof crypto?.getRandomValues === "function") crypto.getRandomValues(seedPool);
    else for (let i = 0; i < seedPool.length; i++) seedPool[i] = (Math.random() * 2 ** 32) >>> 0;
    seedNext = 0;
  }
  const lo = seedPool[seedNext++]!;
  const hi = seedPool[seedNext++]!;
  return [lo, hi];
}

/**
 * A per-kernel scratch buffer in linear memory for packing batches (and single strings). Calls are synchronous,
 * so every object living in a kernel shares it. A buffer grown past TRIM_BYTES by a big batch is given back after.
 */
class Scratch {
  ptr = 0;
  capacity = 0;
  #bytes: Uint8Array | undefined;
  constructor(private readonly exports: InternKernelExports) {}

  /** A buffer of at least `bytes` bytes (16-byte aligned); its contents are not kept. */
  take(bytes: number): number {
    if (bytes > this.capacity) this.#replace(bytes, 0);
    return this.ptr;
  }

  /** Grows to at least `bytes` bytes keeping the first `keep`; returns the (new) address. */
  grow(bytes: number, keep: number): number {
    if (bytes > this.capacity) this.#replace(bytes, keep);
    return this.ptr;
  }

  /** A byte view of the whole buffer (cached until the buffer moves or memory grows). */
  bytes(): Uint8Array {
    const buffer = this.exports.memory.buffer;
    let view = this.#bytes;
    if (
      view === undefined ||
      view.buffer !== buffer ||
      view.byteOffset !== this.ptr ||
      view.length !== this.capacity
    ) {
      view = new Uint8Array(buffer, this.ptr, this.capacity);
      this.#bytes = view;
    }
    return view;
  }

  trim(): void {
    if (this.capacity > TRIM_BYTES) {
      this.exports.free(this.ptr);
      this.ptr = 0;
      this.capacity = 0;
    }
  }

  #replace(bytes: number, keep: number): void {
    const capacity = Math.max(MIN_SCRATCH, bytes <= TRIM_BYTES ? 2 ** Math.ceil(Math.log2(bytes)) : bytes);
    let ptr: number;
    try {
      ptr = this.exports.alloc(capacity) >>> 0;
    } catch (error) {
      throw kernelFailure(error, `allocating a ${capacity}-byte batch buffer`);
    }
    if (keep > 0) {
      const u8 = new Uint8Array(this.exports.memory.buffer);
      u8.copyWithin(ptr, this.ptr, this.ptr + keep);
    }
    if (this.ptr !== 0) this.exports.free(this.ptr);
    this.ptr = ptr;
    this.capacity = capacity;
  }
}

const MIN_SCRATCH = 256;
const TRIM_BYTES = 1 << 20;
const scratches = new WeakMap<WebAssembly.Memory, Scratch>();

function scratchFor(kernel: InternKernel): Scratch {
  let scratch = scratches.get(kernel.memory);
  if (scratch === undefined) {
    scratch = new Scratch(kernel.exports);
    scratches.set(kernel.memory, scratch);
  }
  return scratch;
}

/** Frees the WASM side of an interner or table whose JS object was collected without dispose(). */
interface Owned {
  exports: InternKernelExports;
  ptr: number;
  kind: "interner" | "memo";
}
const finalizer =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry<Owned>((owned) => {
        if (owned.kind === "interner") owned.exports.interner_free(owned.ptr);
        else owned.exports.memo_free(owned.ptr);
      })
    : undefined;

/** Translates a trap from an allocating call: memory.grow failed (TLSF traps with `unreachable`), or a bug. */
function kernelFailure(error: unknown, action: string): unknown {
  if (error instanceof NexusError) return error;
  if (error instanceof WebAssembly.RuntimeError) {
    if (/unreachable/i.test(error.message)) {
      return new NexusError(
        "out_of_memory",
        `${action}: WebAssembly memory could not grow (nothing was changed)`,
        { action },
        { cause: error },
      );
    }
    return new NexusError(
      "internal",
      `${action}: kernel trapped: ${error.message}`,
      { action },
      { cause: error },
    );
  }
  if (error instanceof Error && error.message.startsWith("abort:")) {
    return new NexusError("out_of_memory", `${action}: ${error.message}`, { action }, { cause: error });
  }
  return error;
}

function disposedError(what: string): NexusError {
  return new NexusError("disposed", `this ${what} was disposed; create a new one`);
}

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
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function assertWellFormed(s: string, where: string, index?: number): void {
  const wellFormed = (s as { isWellFormed?: () => boolean }).isWellFormed;
  if (typeof wellFormed === "function" ? wellFormed.call(s) : !LONE_SURROGATE.test(s)) return;
  const at = LONE_SURROGATE.exec(s)?.index ?? -1;
  throw new NexusError(
    "invalid_argument",
    `${where}: string${index === undefined ? "" : ` ${index}`} ${describe(s)} is not well-formed UTF-16 ` +
      `(lone surrogate at ${at}), so it has no UTF-8 form`,
    { index, position: at },
  );
}

function keyError(method: string, index: number, key: unknown): NexusError {
  return new NexusError(
    "invalid_argument",
    `MemoTable.${method}: key ${index} must be a u32 integer (0 to 4294967295), got ${describe(key)}`,
    { index, key },
  );
}

function badValue(value: unknown, where: string, index?: number): NexusError {
  const at = index === undefined ? "" : ` at index ${index}`;
  const why =
    value === ABSENT
      ? "4294967295 (MemoTable.ABSENT) is reserved for 'no value'"
      : `expected a u32 integer below 4294967295, got ${describe(value)}`;
  return new NexusError("invalid_argument", `${where}: bad value${at}: ${why}`, { index, value });
}

function describeArray(value: unknown): string {
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as Uint8Array).length})`;
  return describe(value);
}

function outputFor(out: Uint32Array | undefined, count: number, where: string): Uint32Array {
  if (out === undefined) return new Uint32Array(count);
  if (!(out instanceof Uint32Array) || out.length < count) {
    throw new NexusError(
      "invalid_argument",
      `${where}: out must be a Uint32Array of at least ${count}, got ${describeArray(out)}`,
      { expected: count },
    );
  }
  return out;
}

function copyOut(views: MemoryViews, ptr: number, count: number, out: Uint32Array): void {
  const from = ptr >>> 2;
  out.set(views.u32.subarray(from, from + count));
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
