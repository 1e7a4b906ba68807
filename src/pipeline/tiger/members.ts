/**
 * The JS-side copy of a Tiger bitmap's members. The roaring bitmap (WASM) is the canonical structure: it is what
 * is serialised and whose memory is reported. Testing one id against it is a call into WASM, so each bitmap also
 * keeps its members here, where a test is a typed-array read: a bitset over the (tenant, type)'s id space when
 * that is no bigger than a hash set of the members, else an open-addressed hash set.
 */
const EMPTY = -1;
const GOLDEN = 0x9e3779b1;

/**
 * A bitmap's members as a JS-side copy for tests: a bitset over ids [0, n) when that is no bigger than a hash
 * set of them, else an open-addressed hash set (linear probing, load ≤ 1/2, backward-shift deletion). Chosen when
 * the bitmap is built; afterwards it grows as ids are added.
 */
export class Members {
  /** The bitset (bit id of word id >>> 5), or undefined for the hash set. Read directly by filter's loop. */
  bits: Uint32Array | undefined;
  #table: Int32Array | undefined;
  #shift = 32;
  #count = 0;

  private constructor() {}

  /** Members of `ids` (sorted ascending) in a space of `universe` ids. */
  static of(ids: Uint32Array, universe: number): Members {
    const members = new Members();
    const words = Math.ceil(Math.max(universe, (ids[ids.length - 1] ?? -1) + 1) / 32);
    if (words <= slotsFor(ids.length)) {
      const bits = new Uint32Array(Math.max(1, words));
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        bits[id >>> 5]! |= 1 << (id & 31);
      }
      members.bits = bits;
    } else {
      members.#rehash(slotsFor(ids.length));
      for (let i = 0; i < ids.length; i++) members.add(ids[i]!);
    }
    return members;
  }

  get bytes(): number {
    return (this.bits ?? this.#table)!.byteLength;
  }

  has(id: number): boolean {
    const bits = this.bits;
    if (bits !== undefined) return id < bits.length * 32 && ((bits[id >>> 5]! >>> (id & 31)) & 1) === 1;
    const table = this.#table!;
    const mask = table.length - 1;
    for (let i = Math.imul(id, GOLDEN) >>> this.#shift; ; i = (i + 1) & mask) {
      const v = table[i]!;
      if (v === id) return true;
      if (v === EMPTY) return false;
    }
  }

  add(id: number): void {
    const bits = this.bits;
    if (bits !== undefined) {
      if (id >= bits.length * 32) {
        const grown = new Uint32Array(Math.max(bits.length * 2, (id >>> 5) + 1));
        grown.set(bits);
        this.bits = grown;
      }
      this.bits![id >>> 5]! |= 1 << (id & 31);
      return;
    }
    if (this.has(id)) return;
    if (2 * (this.#count + 1) > this.#table!.length) this.#rehash(this.#table!.length * 2);
    this.#insert(id);
  }

  delete(id: number): void {
    const bits = this.bits;
    if (bits !== undefined) {
      if (id < bits.length * 32) bits[id >>> 5]! &= ~(1 << (id & 31));
      return;
    }
    const table = this.#table!;
    const mask = table.length - 1;
    let i = Math.imul(id, GOLDEN) >>> this.#shift;
    for (;;) {
      const v = table[i]!;
      if (v === EMPTY) return;
      if (v === id) break;
      i = (i + 1) & mask;
    }
    // Backward shift: move later entries of the probe run into the hole when their home slot allows it.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const v = table[j]!;
      if (v === EMPTY) break;
      const home = Math.imul(v, GOLDEN) >>> this.#shift;
      const stays = i < j ? home > i && home <= j : home > i || home <= j;
      if (!stays) {
        table[i] = v;
        i = j;
      }
    }
    table[i] = EMPTY;
    this.#count--;
  }

  #insert(id: number): void {
    const table = this.#table!;
    const mask = table.length - 1;
    let i = Math.imul(id, GOLDEN) >>> this.#shift;
    while (table[i] !== EMPTY) i = (i + 1) & mask;
    table[i] = id;
    this.#count++;
  }

  #rehash(slots: number): void {
    const old = this.#table;
    this.#table = new Int32Array(slots).fill(EMPTY);
    this.#shift = 32 - Math.log2(slots);
    this.#count = 0;
    if (old !== undefined) for (const v of old) if (v !== EMPTY) this.#insert(v);
  }
}

/** Hash-set slots for `count` members (a power of two, at least twice the count). */
function slotsFor(count: number): number {
  let slots = 16;
  while (slots < 2 * count) slots *= 2;
  return slots;
}
