/**
 * The kernel that hosts interners and memo tables (the `intern` kernel, or one that re-exports its functions, as
 * the evaluator does), and what the two classes built on it share: the per-kernel scratch buffer batches are
 * packed into, hash seeds, the finalizer that frees a dropped structure, and how a kernel trap becomes a
 * NexusError. Runtime-neutral: no `node:` imports.
 */
import { describe, NexusError } from "../util/errors.js";
import { type Kernel, type MemoryViews, sharedKernel } from "../wasm/loader.js";
import { internAbi } from "./abi/intern.js";

/** The exports of a kernel that hosts interners and memo tables (the `intern` kernel, or one that re-exports it). */
export interface InternKernelExports {
  readonly memory: WebAssembly.Memory;
  alloc(size: number): number;
  free(ptr: number): void;
  interner_new(seedLo: number, seedHi: number): number;
  interner_free(interner: number): void;
  interner_size(interner: number): number;
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
  memo_new(arity: number, seedLo: number, seedHi: number): number;
  memo_free(table: number): void;
  memo_size(table: number): number;
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
export const ABSENT = internAbi.constants.ABSENT;
export const ABSENT_I32 = ABSENT | 0;

export function hostKernel(kernel: InternKernel | undefined): InternKernel {
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

export function checkOptions(options: { capacity?: number }, what: string): void {
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
export function create(what: string, make: () => number): number {
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

export function seedWords(seed: number | undefined): [number, number] {
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
export class Scratch {
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

export function scratchFor(kernel: InternKernel): Scratch {
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
export const finalizer =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry<Owned>((owned) => {
        if (owned.kind === "interner") owned.exports.interner_free(owned.ptr);
        else owned.exports.memo_free(owned.ptr);
      })
    : undefined;

/** Translates a trap from an allocating call: memory.grow failed (TLSF traps with `unreachable`), or a bug. */
export function kernelFailure(error: unknown, action: string): unknown {
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

export function disposedError(what: string): NexusError {
  return new NexusError("disposed", `this ${what} was disposed; create a new one`);
}

export function describeArray(value: unknown): string {
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as Uint8Array).length})`;
  return describe(value);
}

export function outputFor(out: Uint32Array | undefined, count: number, where: string): Uint32Array {
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

export function copyOut(views: MemoryViews, ptr: number, count: number, out: Uint32Array): void {
  const from = ptr >>> 2;
  out.set(views.u32.subarray(from, from + count));
}
