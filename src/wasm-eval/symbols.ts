/**
 * Interned object symbols of one evaluator kernel, with each symbol's type id recorded in the kernel (the
 * evaluator needs a reached object's type to find its relations). Objects `type:id` and wildcards `type:*` are
 * symbols; symbols are never freed (an id seen once is likely to be seen again), so memory grows with the
 * distinct objects ever written. Runtime-neutral.
 *
 * No JavaScript-side map of strings to symbols: the kernel's interner answers a lookup in about the time a large
 * Map takes for a string it has not hashed yet (a request's strings are new each time), and a Map of every
 * object held tens of bytes a symbol and pinned its string, while a bounded one (65,536 entries) churned and
 * was cleared and regrown every time a workload's objects passed its size. Only the last string is remembered
 * (consecutive questions and tuples often share an object or a subject). Loading goes through `internMany`:
 * one copy into the kernel and one call per part of a change page, not one of each per string.
 *
 * Each symbol's text is kept here too, in an array indexed by symbol: list objects maps its results (symbols) to
 * strings through it instead of decoding them out of the kernel's memory (30k new strings a listing, and the GC
 * that followed, were most of a first listing's time). The strings are the ones interned, mostly the stored
 * tuples' own `object` and `user` strings, so the array costs a slot a symbol (about 8 B/tuple at 100k tuples);
 * it pins a text the store no longer holds only when every tuple naming it is deleted. The text kept is the first
 * one interned; a later text with the same symbol has the same UTF-8 bytes, so (being well-formed UTF-16, which
 * the interner checks) the same code units: an equal string.
 */
import { Interner } from "../kernels/intern.js";
import { ABSENT } from "./compile.js";
import type { EvaluateKernel } from "./kernel.js";

/**
 * Subject texts whose symbols the subject memo keeps, at most: a batch's or a request's subject is one of few (the
 * users asking), looked up again and again, while its object is mostly new. Full, the memo starts over.
 */
const SUBJECT_MEMO = 4096;

export class Symbols implements Disposable {
  readonly #kernel: EvaluateKernel;
  readonly #interner: Interner;
  /** The last string interned or found, and its symbol (symbols are never freed, so it stays right). */
  #lastText: string | undefined;
  #lastSymbol = 0;
  /** Symbols below this have their type recorded. */
  #typed = 0;
  /** A buffer in the kernel's memory for (symbol, type) pairs, and how many pairs it holds. */
  #pairs = 0;
  #pairsCap = 0;
  /** symbol -> type id (the kernel's table, mirrored: encoding a request reads it on every check). */
  #types = new Uint32Array(1024);
  /** type id -> the symbol of the type's wildcard `type:*`, ABSENT until one is interned. */
  readonly #wildcards: number[] = [];
  /** symbol -> its text (filled in symbol order, so a packed array of strings with no holes). */
  readonly #texts: string[] = [];
  /**
   * Subject texts found lately -> their symbols (only texts that were interned: symbols are never freed or
   * renumbered, so a kept one stays right; a miss is not kept, as the next write may intern it).
   */
  readonly #subjects = new Map<string, number>();

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
    if (text === this.#lastText) return this.#lastSymbol;
    // Room first: nothing may fail between interning a new symbol and recording its type.
    this.#reservePairs(1);
    const symbol = this.#interner.intern(text);
    if (symbol >= this.#typed) {
      const u32 = this.#kernel.views.u32;
      u32[this.#pairs >>> 2] = symbol;
      u32[(this.#pairs >>> 2) + 1] = typeId;
      this.#kernel.exports.symbols_set_types(this.#pairs, 1);
      this.#typed = symbol + 1;
      this.#mirror(symbol, typeId, text);
    }
    this.#lastText = text;
    this.#lastSymbol = symbol;
    return symbol;
  }

  /**
   * Interns texts[0, count) (text i an object or wildcard of type typeIds[i]) in one copy into the kernel and one
   * call, writing the symbols to `out`; the same symbols as `intern` on each in order. Then records the types of
   * the new ones in one more call.
   */
  internMany(texts: readonly string[], typeIds: ArrayLike<number>, out: Uint32Array): Uint32Array {
    const count = texts.length;
    if (count === 0) return out;
    // Room first: nothing may fail between interning new symbols and recording their types.
    this.#reservePairs(count);
    this.#interner.internMany(texts, out);
    const typed = this.#typed;
    const size = this.#interner.size;
    if (size > typed) {
      // New symbols are numbered in batch order: the first text with each is where its type comes from.
      const u32 = this.#kernel.views.u32;
      const at = this.#pairs >>> 2;
      let next = typed;
      for (let i = 0; i < count && next < size; i++) {
        const symbol = out[i]!;
        if (symbol !== next) continue;
        const typeId = typeIds[i]!;
        u32[at + 2 * (next - typed)] = symbol;
        u32[at + 2 * (next - typed) + 1] = typeId;
        this.#mirror(symbol, typeId, texts[i]!);
        next++;
      }
      this.#kernel.exports.symbols_set_types(this.#pairs, size - typed);
      this.#typed = size;
    }
    return out;
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
    if (text === this.#lastText) return this.#lastSymbol;
    const symbol = this.#interner.lookup(text);
    // Only a hit is remembered: a miss may be interned by the next write.
    if (symbol !== undefined) {
      this.#lastText = text;
      this.#lastSymbol = symbol;
    }
    return symbol;
  }

  /**
   * `lookup` for a request's subject text, through the subject memo: the subjects asking are few and ask again
   * and again, and a Map hit costs a fraction of the interner's lookup (a copy into the kernel and a call).
   */
  lookupSubject(text: string): number | undefined {
    const kept = this.#subjects.get(text);
    if (kept !== undefined) return kept;
    const symbol = this.lookup(text);
    if (symbol !== undefined) this.rememberSubject(text, symbol);
    return symbol;
  }

  /** The subject memo's symbol for `text`, or undefined (not kept: look it up, then `rememberSubject`). */
  keptSubject(text: string): number | undefined {
    return this.#subjects.get(text);
  }

  /** Keeps `symbol` (looked up for `text`, not MISSING) in the subject memo. */
  rememberSubject(text: string, symbol: number): void {
    if (this.#subjects.size >= SUBJECT_MEMO) this.#subjects.clear();
    this.#subjects.set(text, symbol);
  }

  /** What `lookupMany` writes for a text that was never interned. */
  static readonly MISSING: number = Interner.ABSENT;

  /**
   * The symbols of many texts in one kernel call (`Symbols.MISSING` for a text never interned), into `out` when
   * given: a batch of checks looks its objects and subjects up together, about a fifth of the cost of a `lookup`
   * each (one copy into the kernel's memory and one call instead of one of each per string). May grow kernel
   * memory. The last-text memo is left as it was (a miss here may be interned by the next write).
   */
  lookupMany(texts: readonly string[], out?: Uint32Array): Uint32Array {
    return this.#interner.lookupMany(texts, out);
  }

  /** Address of the interner in the kernel's memory (list objects copies many symbols' texts out in one call). */
  get internerPointer(): number {
    return this.#interner.pointer;
  }

  /** The text of an interned symbol. */
  text(symbol: number): string {
    // Decoded from the interner only for a symbol the table missed (an interning that failed half way).
    return this.#texts[symbol] ?? this.#interner.resolve(symbol);
  }

  /**
   * symbol -> text, for every symbol below `size` (list objects reads it in a loop; read only, and not to be kept:
   * the array grows in place, it is not replaced).
   */
  get texts(): readonly string[] {
    return this.#texts;
  }

  /** Room for `pairs` (symbol, type) pairs in the kernel's memory (may grow memory: views change). */
  #reservePairs(pairs: number): void {
    if (pairs <= this.#pairsCap) return;
    const e = this.#kernel.exports;
    const cap = Math.max(pairs, 2 * this.#pairsCap, 64);
    const ptr = e.alloc(8 * cap) >>> 0;
    if (this.#pairs !== 0) e.free(this.#pairs);
    this.#pairs = ptr;
    this.#pairsCap = cap;
  }

  /** Mirrors a new symbol's type on this side (and notes a wildcard's symbol). */
  #mirror(symbol: number, typeId: number, text: string): void {
    if (symbol >= this.#types.length) {
      const grown = new Uint32Array(Math.max(this.#types.length * 2, symbol + 1));
      grown.set(this.#types);
      this.#types = grown;
    }
    this.#types[symbol] = typeId;
    const texts = this.#texts;
    // Symbols come in order (intern: one; internMany: its new ones in batch order), so this appends. Were one
    // skipped (a failed call), the text is still put at its symbol and the hole below falls back to decoding.
    if (symbol === texts.length) texts.push(text);
    else texts[symbol] = text;
    // A wildcard's id is exactly `*` (`user:*`); an id may itself hold `:` and end in `*` (`user:x:*` is a plain
    // user, as parseObject splits at the first colon), so the first colon must be the one before the `*`.
    if (text.endsWith(":*") && text.indexOf(":") === text.length - 2) {
      while (this.#wildcards.length <= typeId) this.#wildcards.push(ABSENT);
      this.#wildcards[typeId] = symbol;
    }
  }

  dispose(): void {
    this.#lastText = undefined;
    this.#subjects.clear();
    this.#texts.length = 0;
    this.#interner.dispose();
    if (this.#pairs !== 0) this.#kernel.exports.free(this.#pairs);
    this.#pairs = 0;
    this.#pairsCap = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
