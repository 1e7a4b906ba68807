/**
 * The volume store's live set: which needle holds each live blob, and how many references it has. A blob is
 * found by the first 64 bits of its key in the WASM needle index (needle-index.ts); a blob whose 64-bit prefix
 * collides with another live blob's is kept in a small overflow map by full key. Reference counts above 1 are
 * kept by location. Every change also moves its volume's live-byte and live-needle counts, which decide
 * compaction.
 *
 * On open the store replays each volume's needles here in order (replay); a compaction points moved needles at
 * their new offsets (applyMoves).
 */
import * as fs from "node:fs";
import type { LiveNeedle } from "./compaction.js";
import { decodeHeader, HEADER_SIZE, keyHex, type NeedleHeader, NeedleKind, sameKey } from "./layout.js";
import { keyHalves, type NeedleIndex, type NeedleLocation } from "./needle-index.js";
import type { ReplayRecord } from "./recovery.js";
import type { Volume } from "./volume.js";

/** Where a live blob is, and how it is found: through the kernel index, or the collision overflow. */
export interface Located extends NeedleLocation {
  overflow: boolean;
}

/** One live blob as a scrub lists it: its index key halves, or its full key when it is in the overflow. */
export interface LiveKey {
  lo: number;
  hi: number;
  hex?: string;
}

export class LiveSet {
  readonly #index: NeedleIndex;
  readonly #volumes: ReadonlyMap<number, Volume>;
  readonly #prefixMask: readonly [lo: number, hi: number];
  readonly #crc32c: (bytes: Uint8Array) => number;
  /** Reference counts above 1, by location (volume * 2^32 + offset/8). */
  readonly #refs = new Map<number, number>();
  /** Blobs whose 64-bit prefix collides with another live blob's, by full key. */
  readonly #overflow = new Map<string, NeedleLocation>();

  /**
   * `volumes`: the store's open volumes (shared, read here); `prefixMask`: the bits of the key the index keeps
   * (all 64 but in tests); `crc32c`: checks headers read back during replay.
   */
  constructor(
    index: NeedleIndex,
    volumes: ReadonlyMap<number, Volume>,
    prefixMask: readonly [lo: number, hi: number],
    crc32c: (bytes: Uint8Array) => number,
  ) {
    this.#index = index;
    this.#volumes = volumes;
    this.#prefixMask = prefixMask;
    this.#crc32c = crc32c;
  }

  /** Live blobs (distinct contents). */
  get size(): number {
    return this.#index.size + this.#overflow.size;
  }

  /** Every live blob, for a scrub to walk while writes go on. */
  keys(): LiveKey[] {
    const live: LiveKey[] = [];
    for (const e of this.#index.entries()) live.push({ lo: e.lo, hi: e.hi });
    for (const hex of this.#overflow.keys()) live.push({ lo: 0, hi: 0, hex });
    return live;
  }

  /** Where a blob listed by keys() is now (undefined when it died or its volume went). */
  find(n: LiveKey): Located | undefined {
    const found = n.hex !== undefined ? this.#overflow.get(n.hex) : this.#index.get(n.lo, n.hi);
    return found && this.#volumes.has(found.volume) ? { ...found, overflow: n.hex !== undefined } : undefined;
  }

  prefix(key: Uint8Array): [number, number] {
    const [lo, hi] = keyHalves(key);
    const [mlo, mhi] = this.#prefixMask;
    return [(lo & mlo) >>> 0, (hi & mhi) >>> 0];
  }

  lookup(key: Uint8Array): Located | undefined {
    if (this.#overflow.size > 0) {
      const o = this.#overflow.get(keyHex(key));
      if (o) return { ...o, overflow: true };
    }
    const [lo, hi] = this.prefix(key);
    const loc = this.#index.get(lo, hi);
    return loc && { ...loc, overflow: false };
  }

  count(loc: NeedleLocation): number {
    return this.#refs.get(locationKey(loc)) ?? 1;
  }

  setCount(loc: NeedleLocation, count: number): void {
    if (count > 1) this.#refs.set(locationKey(loc), count);
    else this.#refs.delete(locationKey(loc));
  }

  add(key: Uint8Array | undefined, loc: Located, refs: number, lohi?: [number, number]): void {
    if (loc.overflow)
      this.#overflow.set(keyHex(key!), { volume: loc.volume, offset: loc.offset, length: loc.length });
    else {
      const [lo, hi] = lohi ?? this.prefix(key!);
      this.#index.set(lo, hi, loc);
    }
    this.setCount(loc, refs);
    const v = this.#volumes.get(loc.volume)!;
    v.liveBytes += loc.length;
    v.liveNeedles++;
  }

  remove(key: Uint8Array | undefined, loc: Located, lohi?: [number, number]): void {
    if (loc.overflow) this.#overflow.delete(keyHex(key!));
    else {
      const [lo, hi] = lohi ?? this.prefix(key!);
      this.#index.remove(lo, hi);
    }
    this.#refs.delete(locationKey(loc));
    const v = this.#volumes.get(loc.volume);
    if (v) {
      v.liveBytes -= loc.length;
      v.liveNeedles--;
    }
  }

  /**
   * Whether a header found where the index points at `key` is another blob that merely shares the index's
   * 64-bit prefix (then `key` is not stored), rather than a sign that the index and the volume disagree.
   */
  sharesPrefix(h: NeedleHeader, key: Uint8Array, loc: Located): boolean {
    if (loc.overflow || h.kind !== NeedleKind.Data) return false;
    const [a, b] = this.prefix(h.key);
    const [c, d] = this.prefix(key);
    return a === c && b === d;
  }

  /** The full key of the needle at `loc`, read synchronously (open-time replay), or undefined when unreadable. */
  #readKeySync(loc: NeedleLocation): Uint8Array | undefined {
    const volume = this.#volumes.get(loc.volume);
    if (!volume) return undefined;
    const head = new Uint8Array(HEADER_SIZE);
    fs.readSync(volume.fd, head, 0, HEADER_SIZE, loc.offset);
    const h = decodeHeader(head, 0, this.#crc32c);
    return typeof h === "object" ? h.key : undefined;
  }

  /** Applies one needle of a volume being opened, in volume order. */
  replay(volume: Volume, r: ReplayRecord): void {
    const lohi: [number, number] = [(r.lo & this.#prefixMask[0]) >>> 0, (r.hi & this.#prefixMask[1]) >>> 0];
    const here: Located = { volume: volume.id, offset: r.offset, length: r.length, overflow: false };
    if (r.kind === NeedleKind.Data) {
      let key = r.key;
      if (this.#overflow.size > 0) {
        key ??= this.#readKeySync(here);
        const o = key && this.#overflow.get(keyHex(key));
        if (o) {
          // The same content live twice (a re-put after a purge, or torn bookkeeping): the later copy wins.
          this.remove(key, { ...o, overflow: true });
          this.add(key, { ...here, overflow: true }, r.refs);
          return;
        }
      }
      const existing = this.#index.get(lohi[0], lohi[1]);
      if (existing === undefined) {
        this.add(key, here, r.refs, lohi);
        return;
      }
      key ??= this.#readKeySync(here);
      const old = this.#readKeySync(existing);
      if (key && old && !sameKey(key, old)) {
        this.add(key, { ...here, overflow: true }, r.refs);
      } else {
        this.remove(old, { ...existing, overflow: false }, lohi);
        this.add(key, here, r.refs, lohi);
      }
      return;
    }
    // A reference, tombstone or purge: its data needle is earlier in this same volume.
    let target: Located | undefined;
    let key = r.key;
    const primary = this.#index.get(lohi[0], lohi[1]);
    if (primary && primary.volume === volume.id && primary.offset < r.offset) {
      target = { ...primary, overflow: false };
      if (this.#overflow.size > 0) {
        key ??= this.#readKeySync(here);
        const o = key && this.#overflow.get(keyHex(key));
        if (o && o.volume === volume.id) target = { ...o, overflow: true };
      }
    } else if (this.#overflow.size > 0) {
      key ??= this.#readKeySync(here);
      const o = key && this.#overflow.get(keyHex(key));
      if (o && o.volume === volume.id && o.offset < r.offset) target = { ...o, overflow: true };
    }
    if (target === undefined) return; // its data needle is gone (corrupt, or dead): nothing to count
    if (r.kind === NeedleKind.Reference) this.setCount(target, this.count(target) + 1);
    else {
      const count = r.kind === NeedleKind.Tombstone ? this.count(target) - 1 : 0;
      if (count > 0) this.setCount(target, count);
      else this.remove(key ?? this.#readKeySync(target), target, lohi);
    }
  }

  /** The live data needles of volume `id` with their counts, sorted by offset (called inside the write lock). */
  liveIn(id: number): LiveNeedle[] {
    const out: LiveNeedle[] = [];
    for (const e of this.#index.entries()) {
      if (e.volume === id)
        out.push({ offset: e.offset, length: e.length, lo: e.lo, hi: e.hi, refs: this.count(e) });
    }
    for (const [hex, loc] of this.#overflow) {
      if (loc.volume === id)
        out.push({ offset: loc.offset, length: loc.length, lo: 0, hi: 0, hex, refs: this.count(loc) });
    }
    return out.sort((a, b) => a.offset - b.offset);
  }

  /** Where the live-set keeps a needle of the snapshot now (undefined when it died or moved meanwhile). */
  #current(volumeId: number, n: LiveNeedle): NeedleLocation | undefined {
    const loc = n.hex !== undefined ? this.#overflow.get(n.hex) : this.#index.get(n.lo, n.hi);
    return loc && loc.volume === volumeId && loc.offset === n.offset ? loc : undefined;
  }

  /**
   * After a compaction swapped volume files: points every needle that is still live at its new offset (in
   * ascending order, so a new offset never lands on an old one not yet moved). Synchronous: it runs in the same
   * step as the descriptor swap.
   */
  applyMoves(volume: Volume, moves: { needle: LiveNeedle; to: number }[]): void {
    for (const { needle, to } of moves) {
      const loc = this.#current(volume.id, needle);
      if (loc === undefined) continue;
      const count = this.count(loc);
      this.#refs.delete(locationKey(loc));
      const next = { volume: volume.id, offset: to, length: loc.length };
      if (needle.hex !== undefined) this.#overflow.set(needle.hex, next);
      else this.#index.set(needle.lo, needle.hi, next);
      this.setCount(next, count);
    }
  }
}

function locationKey(loc: NeedleLocation): number {
  return loc.volume * 2 ** 32 + loc.offset / 8;
}
