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
const SPLIT_AT = 1 << 14;

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
   * The shard of the last key hashed: a store looks a new key up and then sets it (a tuple's object), and the
   * set found the shard again by a second hash of the whole key.
   */
  #lastKey = "";
  /** Starts as the empty key's own shard: a map split before any key was hashed still finds "" where set put it. */
  #lastShard = shardOf("");

  get(key: string): V | undefined {
    const one = this.#one;
    return one !== undefined ? one.get(key) : this.#shards![this.#shardOf(key)]!.get(key);
  }

  set(key: string, value: V): this {
    const one = this.#one;
    if (one === undefined) {
      this.#shards![this.#shardOf(key)]!.set(key, value);
    } else {
      one.set(key, value);
      if (one.size >= SPLIT_AT) this.#split(one);
    }
    return this;
  }

  delete(key: string): boolean {
    const one = this.#one;
    return one !== undefined ? one.delete(key) : this.#shards![this.#shardOf(key)]!.delete(key);
  }

  #shardOf(key: string): number {
    if (key === this.#lastKey) return this.#lastShard;
    const shard = shardOf(key);
    this.#lastKey = key;
    this.#lastShard = shard;
    return shard;
  }

  /** Calls `fn` with each entry: the one map's in insertion order, or shard after shard. */
  forEach(fn: (value: V, key: string) => void): void {
    if (this.#one !== undefined) this.#one.forEach(fn);
    else for (const shard of this.#shards!) shard.forEach(fn);
  }

  get size(): number {
    if (this.#one !== undefined) return this.#one.size;
    let size = 0;
    for (const shard of this.#shards!) size += shard.size;
    return size;
  }

  #split(one: Map<string, V>): void {
    const shards = Array.from({ length: SHARDS }, () => new Map<string, V>());
    // forEach, not for-of: an entry array per key was 2 MB of garbage for the 16,384 keys moved.
    one.forEach((value, key) => {
      shards[shardOf(key)]!.set(key, value);
    });
    this.#shards = shards;
    this.#one = undefined;
  }
}
