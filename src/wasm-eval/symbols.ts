/**
 * Interned object symbols of one evaluator kernel, with each symbol's type id recorded in the kernel (the
 * evaluator needs a reached object's type to find its relations). Objects `type:id` and wildcards `type:*` are
 * symbols; symbols are never freed (an id seen once is likely to be seen again), so memory grows with the
 * distinct objects ever written. Runtime-neutral.
 */
import { Interner } from "../kernels/intern.js";
import { ABSENT } from "./compile.js";
import type { EvaluateKernel } from "./kernel.js";

const CACHE_LIMIT = 65_536;

export class Symbols implements Disposable {
  readonly #kernel: EvaluateKernel;
  readonly #interner: Interner;
  /**
   * Recently used strings -> symbols on the JavaScript side: a request's object and subject are looked up on
   * every check, and a Map hit costs less than encoding the string into WASM memory. Bounded: cleared when full.
   */
  readonly #cache = new Map<string, number>();
  /** The last string interned or looked up, and its symbol (symbols are never freed, so it stays right). */
  #lastText: string | undefined;
  #lastSymbol = 0;
  /** Symbols below this have their type recorded. */
  #typed = 0;
  #pair = 0;
  /** symbol -> type id (the kernel's table, mirrored: encoding a request reads it on every check). */
  #types = new Uint32Array(1024);
  /** type id -> the symbol of the type's wildcard `type:*`, ABSENT until one is interned. */
  readonly #wildcards: number[] = [];

  constructor(kernel: EvaluateKernel) {
    this.#kernel = kernel;
    this.#interner = new Interner({ kernel });
  }

  get size(): number {
    return this.#interner.size;
  }

  /** Bytes in the kernel's memory: the interner and the symbol-type table. */
  get memoryBytes(): number {
    return this.#interner.memoryBytes + (this.#kernel.exports.symbols_memory_bytes() >>> 0);
  }

  /** The symbol of `text` (an object or wildcard of type `typeId`), interning it if new. */
  intern(text: string, typeId: number): number {
    // Consecutive tuples often share a subject (a folder's files, a group's members): a repeat skips the Map.
    if (text === this.#lastText) return this.#lastSymbol;
    const cached = this.#cache.get(text);
    if (cached !== undefined) {
      this.#lastText = text;
      this.#lastSymbol = cached;
      return cached;
    }
    const symbol = this.#interner.intern(text);
    if (symbol >= this.#typed) {
      const e = this.#kernel.exports;
      if (this.#pair === 0) this.#pair = e.alloc(8) >>> 0;
      const u32 = this.#kernel.views.u32;
      u32[this.#pair >>> 2] = symbol;
      u32[(this.#pair >>> 2) + 1] = typeId;
      e.symbols_set_types(this.#pair, 1);
      this.#typed = symbol + 1;
      if (symbol >= this.#types.length) {
        const grown = new Uint32Array(Math.max(this.#types.length * 2, symbol + 1));
        grown.set(this.#types);
        this.#types = grown;
      }
      this.#types[symbol] = typeId;
      if (text.endsWith(":*")) {
        while (this.#wildcards.length <= typeId) this.#wildcards.push(ABSENT);
        this.#wildcards[typeId] = symbol;
      }
    }
    this.#remember(text, symbol);
    return symbol;
  }

  /** The type id of an interned symbol. */
  typeOf(symbol: number): number {
    return this.#types[symbol]!;
  }

  /** The symbol of type `typeId`'s wildcard (`type:*`), ABSENT if it was never interned. */
  wildcardOf(typeId: number): number {
    return this.#wildcards[typeId] ?? ABSENT;
  }

  /** The symbol of `text`, or undefined if it was never interned. */
  lookup(text: string): number | undefined {
    const cached = this.#cache.get(text);
    if (cached !== undefined) return cached;
    const symbol = this.#interner.lookup(text);
    if (symbol !== undefined) this.#remember(text, symbol);
    return symbol;
  }

  /** Address of the interner in the kernel's memory (list objects copies many symbols' texts out in one call). */
  get internerPointer(): number {
    return this.#interner.pointer;
  }

  /** The text of an interned symbol (decoded from the kernel's interner: list objects maps its results back). */
  text(symbol: number): string {
    return this.#interner.resolve(symbol);
  }

  #remember(text: string, symbol: number): void {
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(text, symbol);
    this.#lastText = text;
    this.#lastSymbol = symbol;
  }

  dispose(): void {
    this.#cache.clear();
    this.#lastText = undefined;
    this.#interner.dispose();
    if (this.#pair !== 0) this.#kernel.exports.free(this.#pair);
    this.#pair = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
