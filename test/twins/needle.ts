// TypeScript twin of assembly/needle.ts (through src/blobs/needle-index.ts): a Map from the 64-bit key to the
// location, for differential tests only.
import type { IndexEntry, NeedleLocation } from "../../src/blobs/volume/needle-index.js";

export class NeedleIndexTwin {
  readonly #map = new Map<bigint, NeedleLocation>();

  get size(): number {
    return this.#map.size;
  }

  set(lo: number, hi: number, loc: NeedleLocation): boolean {
    const key = toKey(lo, hi);
    const isNew = !this.#map.has(key);
    this.#map.set(key, { ...loc });
    return isNew;
  }

  get(lo: number, hi: number): NeedleLocation | undefined {
    const loc = this.#map.get(toKey(lo, hi));
    return loc && { ...loc };
  }

  remove(lo: number, hi: number): boolean {
    return this.#map.delete(toKey(lo, hi));
  }

  /** Entries in key order (unsigned 64-bit), as the kernel yields them. */
  entries(): IndexEntry[] {
    // Sorted by (hi, lo) as numbers: the same order as the u64 key, and far faster than comparing BigInts.
    return [...this.#map.entries()]
      .map(([key, loc]) => ({ lo: Number(key & 0xffffffffn), hi: Number(key >> 32n), ...loc }))
      .sort((a, b) => a.hi - b.hi || a.lo - b.lo);
  }
}

function toKey(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
