/**
 * `MemoTable`: (u32, u32[, u32[, u32]]) -> u32 value, with O(1) `clear()`, in the linear memory of the `intern`
 * kernel (assembly/tables/memo.ts) or of one that re-exports its functions. Values are u32 except
 * `MemoTable.ABSENT` (0xFFFFFFFF), which the batched calls use for "no value" and which `set` rejects.
 * Runtime-neutral: no `node:` imports.
 */
import { describe, NexusError } from "../util/errors.js";
import type { MemoryViews } from "../wasm/loader.js";
import { internAbi } from "./abi/intern.js";
import {
  ABSENT,
  ABSENT_I32,
  checkOptions,
  copyOut,
  create,
  describeArray,
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

/** memo_set_many's answer when values[i] is ABSENT: BAD_VALUE - i. */
const { BAD_VALUE } = internAbi.constants;

export interface MemoTableOptions {
  /** Entries to make room for up front (default 0: the table grows as needed). */
  capacity?: number;
  /** Hash seed, a non-negative safe integer; default random. */
  seed?: number;
  /** The kernel instance to live in (default: the shared `intern` instance; requires `await ready()`). */
  kernel?: InternKernel;
}

export type MemoArity = 2 | 3 | 4;

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
    const value = this.#keyed("get", a, b, c, d);
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
    return this.#keyed("delete", a, b, c, d) !== ABSENT_I32;
  }

  /**
   * memo_get* or memo_delete* for this table's arity: the raw result (ABSENT_I32 when the key is not there). A key
   * given as one array, or with an argument that is not a u32, is checked and spread by #keyArray first.
   */
  #keyed(op: "get" | "delete", a: number | readonly number[], b?: number, c?: number, d?: number): number {
    const t = this.#live();
    const k = a as number;
    const x = this.#exports;
    switch (this.arity) {
      case 2:
        if (k >>> 0 !== k || b! >>> 0 !== b || c !== undefined || d !== undefined) {
          const key = this.#keyArray(op, a, [b, c, d]);
          return this.#keyed(op, key[0]!, key[1]!);
        }
        return op === "get" ? x.memo_get2(t, k, b!) : x.memo_delete2(t, k, b!);
      case 3:
        if (k >>> 0 !== k || b! >>> 0 !== b || c! >>> 0 !== c || d !== undefined) {
          const key = this.#keyArray(op, a, [b, c, d]);
          return this.#keyed(op, key[0]!, key[1]!, key[2]!);
        }
        return op === "get" ? x.memo_get3(t, k, b!, c!) : x.memo_delete3(t, k, b!, c!);
      default:
        if (k >>> 0 !== k || b! >>> 0 !== b || c! >>> 0 !== c || d! >>> 0 !== d) {
          const key = this.#keyArray(op, a, [b, c, d]);
          return this.#keyed(op, key[0]!, key[1]!, key[2]!, key[3]!);
        }
        return op === "get" ? x.memo_get4(t, k, b!, c!, d!) : x.memo_delete4(t, k, b!, c!, d!);
    }
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
    if (status <= BAD_VALUE) throw badValue(ABSENT, "MemoTable.setMany", BAD_VALUE - status);
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
