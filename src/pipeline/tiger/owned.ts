/**
 * The bitmaps the Tiger layer owns, and the id spaces their bits index. Roaring bitmaps live in WASM memory that
 * JavaScript's collector does not free, so every one is counted from allocation to `dispose` (`live`, the leak
 * audit's count): a replaced or evicted bitmap is disposed at once, the rest when the layer closes.
 */
import { RoaringBitmap32 } from "roaring-wasm";
import { type Materialised, SEP, type Slot } from "./bitmap.js";
import { IdSpace } from "./id-space.js";

/** Roaring's serialization format for the layer's bytes and its memory accounting. */
export const FORMAT = "portable";

export class OwnedBitmaps {
  readonly #max: number;
  readonly #all = new Set<Materialised>();
  /** `tenant NUL type` → its objects' ids. Ids are never reused, so a bitmap's bits keep their meaning. */
  readonly #spaces = new Map<string, IdSpace>();
  /** Bitmaps allocated and not yet disposed. */
  live = 0;
  evicted = 0;

  /** `max`: most bitmaps kept by `evictBeyondMax`. */
  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#all.size;
  }

  values(): IterableIterator<Materialised> {
    return this.#all.values();
  }

  spaces(): IterableIterator<IdSpace> {
    return this.#spaces.values();
  }

  /** The id space of (tenant, type), created when new. */
  space(tenant: string, type: string): IdSpace {
    const key = tenant + SEP + type;
    let space = this.#spaces.get(key);
    if (space === undefined) {
      space = new IdSpace(tenant, type);
      this.#spaces.set(key, space);
    }
    return space;
  }

  /** A new bitmap of `ids` (sorted ascending), owned from now on. */
  create(ids: Uint32Array): RoaringBitmap32 {
    const bitmap = new RoaringBitmap32();
    this.live++;
    bitmap.addMany(ids);
    bitmap.runOptimize();
    return bitmap;
  }

  /** Reads a bitmap from roaring's portable bytes, owned from now on. */
  deserialize(bytes: Uint8Array): RoaringBitmap32 {
    const bitmap = RoaringBitmap32.deserialize(FORMAT, bytes);
    this.live++;
    return bitmap;
  }

  dispose(bitmap: RoaringBitmap32): void {
    if (bitmap.dispose()) this.live--;
  }

  /** Makes `m` the bitmap of `slot`; returns whether it replaced one (which is disposed). */
  install(slot: Slot, m: Materialised): boolean {
    const replaced = slot.bitmap;
    if (replaced !== undefined) {
      this.#all.delete(replaced);
      this.dispose(replaced.bitmap);
    }
    slot.bitmap = m;
    this.#all.add(m);
    return replaced !== undefined;
  }

  /** Disposes the least recently used bitmap when more than `max` are kept (a scan, once per materialisation). */
  evictBeyondMax(): void {
    if (this.#all.size <= this.#max) return;
    let oldest: Materialised | undefined;
    for (const m of this.#all) if (oldest === undefined || m.lastUsed < oldest.lastUsed) oldest = m;
    if (oldest === undefined) return;
    this.#all.delete(oldest);
    oldest.slot.bitmap = undefined;
    this.dispose(oldest.bitmap);
    this.evicted++;
  }

  /** Disposes every bitmap; with `spaces`, the id spaces are replaced by them (restoring serialized bytes). */
  clear(spaces?: ReadonlyMap<string, IdSpace>): void {
    for (const m of this.#all) this.dispose(m.bitmap);
    this.#all.clear();
    if (spaces !== undefined) {
      this.#spaces.clear();
      for (const [key, space] of spaces) this.#spaces.set(key, space);
    }
  }

  /** Object ids given out, over every id space. */
  objectIds(): number {
    let ids = 0;
    for (const space of this.#spaces.values()) ids += space.size;
    return ids;
  }

  /** Bytes of the roaring bitmaps (their serialized size, which is what roaring allocates). */
  roaringBytes(): number {
    let bytes = 0;
    for (const m of this.#all) bytes += m.bitmap.getSerializationSizeInBytes(FORMAT);
    return bytes;
  }

  /** Bytes of the JS-side member copies. */
  copyBytes(): number {
    let bytes = 0;
    for (const m of this.#all) bytes += m.members.bytes;
    return bytes;
  }
}
