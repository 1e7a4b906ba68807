/**
 * A string-keyed map that splits into SHARDS maps once it holds SPLIT_AT keys. V8 grows a Map's hash table by
 * doubling it in one step, rehashing every entry inside the set() that crossed the size: measured here, the set
 * that took one Map past 2^20 string keys took 70 ms (a task of its own, past the ~50 ms the store allows itself
 * between turns of the event loop), against at most 4 ms when the same keys went into 16 maps. A store's
 * per-relation map of objects reaches that size at a million tuples; small maps (most of them: one per tenant and
 * relation) stay a single Map.
 *
 * A key's shard is an FNV-1a hash of all of it, computed only once the map has split: ids of one width that end
 * alike (`user:0001234@example.com`) put every key in one shard under a hash of a few characters, which brings
 * the one-step doubling back in full; the whole-key hash spread five id shapes within 6.4% of even, at about
 * 60 ns a key more than two characters cost (2% of a load at a million tuples).
 */
const SHARDS = 16;
/**
 * Keys a map holds before it splits. Below it a Map's longest doubling (at 2^16 keys, into 2^17) took 11 ms here;
 * the next one, at 2^17, would be twice that, and one split of 2^17 keys in one go took 70 ms. So the split is
 * spread over the sets that follow it (MOVE_EACH keys a set). Until then a lookup is one Map's: no key hashed in
 * JS (a store of 100,000 objects stays one Map; split at 2^14, its load's lookups cost 2-3x a Map's).
 */
const SPLIT_AT = 1 << 17;
/** Keys moved from the one map into the shards per set() while a split is under way. */
const MOVE_EACH = 16;

/** The shard of a key once split (exported for its test). */
export function shardOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h ^ (h >>> 16)) & (SHARDS - 1);
}

export class ShardedMap<V> {
  /** The one map, until it is split. */
  #one: Map<string, V> | undefined = new Map();
  /** The shards, once split. */
  #shards: Map<string, V>[] | undefined;
  /**
   * While a split is under way: the one map, holding the keys not moved yet (never a key a shard holds), and its
   * keys as they were when the split began, moved in that order from #moved on (a key deleted or set again since
   * has left the one map and is skipped).
   */
  #old: Map<string, V> | undefined;
  #oldKeys: string[] = [];
  #moved = 0;
  /**
   * The shard of the last key hashed: a store looks a new key up and then sets it (a tuple's object), and the
   * set found the shard again by a second hash of the whole key.
   */
  #lastKey = "";
  /** Starts as the empty key's own shard: a map split before any key was hashed still finds "" where set put it. */
  #lastShard = shardOf("");

  get(key: string): V | undefined {
    const one = this.#one;
    if (one !== undefined) return one.get(key);
    const value = this.#shards![this.#shardOf(key)]!.get(key);
    // A shard and the old map never hold the same key: a key missing from its shard may not be moved yet.
    return value === undefined && this.#old !== undefined ? this.#old.get(key) : value;
  }

  set(key: string, value: V): this {
    const one = this.#one;
    if (one === undefined) {
      this.#shards![this.#shardOf(key)]!.set(key, value);
      if (this.#old !== undefined) {
        this.#old.delete(key);
        this.#moveSome();
      }
    } else {
      one.set(key, value);
      if (one.size >= SPLIT_AT) this.#split(one);
    }
    return this;
  }

  delete(key: string): boolean {
    const one = this.#one;
    if (one !== undefined) return one.delete(key);
    const deleted = this.#shards![this.#shardOf(key)]!.delete(key);
    return this.#old !== undefined ? this.#old.delete(key) || deleted : deleted;
  }

  #shardOf(key: string): number {
    if (key === this.#lastKey) return this.#lastShard;
    const shard = shardOf(key);
    this.#lastKey = key;
    this.#lastShard = shard;
    return shard;
  }

  get size(): number {
    if (this.#one !== undefined) return this.#one.size;
    let size = this.#old?.size ?? 0;
    for (const shard of this.#shards!) size += shard.size;
    return size;
  }

  /** Begins the split: the shards start empty, the one map's keys move over the sets that follow. */
  #split(one: Map<string, V>): void {
    this.#shards = Array.from({ length: SHARDS }, () => new Map<string, V>());
    this.#old = one;
    this.#oldKeys = Array.from(one.keys());
    this.#moved = 0;
    this.#one = undefined;
  }

  /** Moves the next MOVE_EACH keys of the split under way into their shards; ends the split after the last. */
  #moveSome(): void {
    const old = this.#old!;
    const keys = this.#oldKeys;
    const shards = this.#shards!;
    const end = Math.min(keys.length, this.#moved + MOVE_EACH);
    for (let i = this.#moved; i < end; i++) {
      const key = keys[i]!;
      const value = old.get(key);
      if (value === undefined && !old.has(key)) continue;
      shards[shardOf(key)]!.set(key, value as V);
      old.delete(key);
    }
    this.#moved = end;
    if (end === keys.length) {
      this.#old = undefined;
      this.#oldKeys = [];
    }
  }
}
