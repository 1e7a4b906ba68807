// TypeScript twin of the intern kernel as seen through src/kernels/intern.ts: plain Maps, the same observable
// semantics (dense symbols in first-seen order, sequential batches that are all-or-nothing, ABSENT rejected as a
// value, O(1) clear) and the same error codes. Test-only: the differential tests compare it with the WASM classes
// after every step, so a disagreement says which side is wrong.
import { NexusError } from "../../src/util/errors.js";

export const ABSENT = 0xffffffff;

function isU32(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

function invalid(message: string): NexusError {
  return new NexusError("invalid_argument", message);
}

/** Strings are keyed by their UTF-8 bytes, so only well-formed UTF-16 is accepted (a lone surrogate is an error). */
function checkString(s: unknown): string {
  if (typeof s !== "string") throw invalid(`expected a string, got ${typeof s}`);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      throw invalid(`lone surrogate at ${i}`);
    }
    if (c >= 0xdc00 && c <= 0xdfff) throw invalid(`lone surrogate at ${i}`);
  }
  return s;
}

export class InternerTwin {
  readonly #symbols = new Map<string, number>();
  readonly #strings: string[] = [];

  get size(): number {
    return this.#strings.length;
  }

  intern(s: string): number {
    checkString(s);
    let symbol = this.#symbols.get(s);
    if (symbol === undefined) {
      symbol = this.#strings.length;
      this.#strings.push(s);
      this.#symbols.set(s, symbol);
    }
    return symbol;
  }

  lookup(s: string): number | undefined {
    checkString(s);
    return this.#symbols.get(s);
  }

  internMany(strings: readonly string[]): Uint32Array {
    if (!Array.isArray(strings)) throw invalid("expected an array");
    strings.forEach(checkString); // all or nothing
    return Uint32Array.from(strings, (s) => this.intern(s));
  }

  lookupMany(strings: readonly string[]): Uint32Array {
    if (!Array.isArray(strings)) throw invalid("expected an array");
    strings.forEach(checkString);
    return Uint32Array.from(strings, (s) => this.#symbols.get(s) ?? ABSENT);
  }

  resolve(symbol: number): string {
    if (!isU32(symbol) || symbol >= this.#strings.length) throw invalid(`unknown symbol ${symbol}`);
    return this.#strings[symbol]!;
  }
}

export class MemoTableTwin {
  readonly #entries = new Map<string, { key: number[]; value: number }>();

  constructor(readonly arity: 2 | 3 | 4) {}

  get size(): number {
    return this.#entries.size;
  }

  #id(key: readonly number[]): string {
    if (key.length !== this.arity) throw invalid(`arity ${this.arity}, got ${key.length} keys`);
    for (const k of key) if (!isU32(k)) throw invalid(`bad key ${k}`);
    return key.join(",");
  }

  get(key: readonly number[]): number | undefined {
    return this.#entries.get(this.#id(key))?.value;
  }

  has(key: readonly number[]): boolean {
    return this.get(key) !== undefined;
  }

  set(key: readonly number[], value: number): void {
    const id = this.#id(key);
    if (!isU32(value) || value === ABSENT) throw invalid(`bad value ${value}`);
    this.#entries.set(id, { key: [...key], value });
  }

  delete(key: readonly number[]): boolean {
    return this.#entries.delete(this.#id(key));
  }

  clear(): void {
    this.#entries.clear();
  }

  #split(keys: Uint32Array): number[][] {
    if (keys.length % this.arity !== 0) throw invalid("keys length is not a multiple of the arity");
    const out: number[][] = [];
    for (let i = 0; i < keys.length; i += this.arity) out.push(Array.from(keys.subarray(i, i + this.arity)));
    return out;
  }

  getMany(keys: Uint32Array): Uint32Array {
    return Uint32Array.from(this.#split(keys), (key) => this.get(key) ?? ABSENT);
  }

  /** Sequential, all or nothing: an ABSENT value rejects the whole batch. Returns how many keys were new. */
  setMany(keys: Uint32Array, values: Uint32Array): number {
    const split = this.#split(keys);
    if (values.length !== split.length) throw invalid("one value per key");
    if (values.includes(ABSENT)) throw invalid("ABSENT value");
    let added = 0;
    split.forEach((key, i) => {
      if (!this.has(key)) added++;
      this.set(key, values[i]!);
    });
    return added;
  }

  deleteMany(keys: Uint32Array): number {
    let removed = 0;
    for (const key of this.#split(keys)) if (this.delete(key)) removed++;
    return removed;
  }

  /** Entries as "k0,k1,..=value" strings, sorted: an order-free picture to compare with the WASM table's. */
  picture(): string[] {
    return [...this.#entries.values()].map(({ key, value }) => `${key.join(",")}=${value}`).sort();
  }
}
