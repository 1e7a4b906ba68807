/**
 * The depth graph's node ids (src/changes/depth-graph.ts): (tenant, object) → a small integer, by a 64-bit
 * fingerprint of the pair in an open-addressing table of typed arrays.
 *
 * Why fingerprints and not a Map keyed by the object string: the graph follows every write, and at a million
 * objects a Map of strings was the largest part of its cost (a lookup and an insert per new object, each touching
 * the string, a bucket and an entry scattered over the heap; the table's growth copied it in the young generation)
 * and a million more pointers for every major GC to trace, in the task that stalls the event loop. Here a lookup
 * hashes the characters once and reads one table slot; nothing the index holds is traced.
 *
 * Why it stays exact for what the graph answers: two pairs with the same fingerprint share a node. Sharing a node
 * only merges paths, never shortens one: a path of the true graph maps onto a walk of the merged one, which is a
 * path as long (or, where the merge closes a cycle, makes the bound the cap, i.e. unbounded). So the longest chain
 * of the merged graph is at least the true one, and the depth bound it gives stays an upper bound; a collision can
 * only cost a shortcut, never an answer. Deletes stay consistent too: every delete the graph is given is of a tuple
 * it was given before (the change feed replays the changelog, or a snapshot seeds it), which put the same edge in.
 * With 64 bits a collision among a million objects has a chance of about 3 in 100 million; the seed is drawn per
 * index, so tuples cannot be crafted to collide.
 *
 * Two kinds of entry, with ids of their own: nodes (ids 0, 1, ... index the graph's node arrays) and leaves (a
 * source with one out-edge and no in-edge, which the graph keeps in two words instead of a node and an edge: a
 * file of a load). To the graph an id is one number: a node's id as it is, leaf l as -2 - l (never NONE, -1).
 */

import { fmix32 } from "../util/hash.js";

const NONE = -1;
/**
 * The table is 64 tables, picked by the fingerprint's top 6 bits: each doubles on its own, so a doubling at a
 * million nodes moves some 16,000 entries within a few hundred kB, where one table moved half a million entries
 * into 16 MB (100-150 ms in one task on the bench machine).
 */
const SHARD_SHIFT = 26;
const SHARDS = 1 << (32 - SHARD_SHIFT);
/** Slots a table starts with. */
const SHARD_FIRST = 32;
const freshTables = (): Int32Array<ArrayBuffer>[] =>
  Array.from({ length: SHARDS }, () => new Int32Array(2 * SHARD_FIRST));

/** fmix32 of MurmurHash3: spreads every input bit over the word. */
const mix = fmix32;

export class NodeIndex {
  /** Tenant name → its seed (distinct per tenant: the same object in two tenants is two nodes). */
  readonly #tenantSeeds = new Map<string, number>();
  #lastTenant: string | undefined;
  #lastSeed = 0;
  readonly #salt = (Math.random() * 0x1_0000_0000) | 0;

  /**
   * Per table, slot i: [2i] the fingerprint's first word, [2i + 1] the entry's id + 1 as the graph numbers it (a
   * node's id + 1 > 0, a leaf's -1 - l < 0; 0 when empty). At most half full.
   */
  #tables = freshTables();
  /** Per table: its slots - 1 (a power of two less one). */
  #masks = new Int32Array(SHARDS).fill(SHARD_FIRST - 1);
  /** Per table: its entries. */
  #fill = new Int32Array(SHARDS);
  #size = 0;
  /**
   * Per id: the fingerprint's second word, which confirms a match of the first (kept in the slot). Only the
   * second: a delete hashes the pair again, so a word per node, a few MB at a million, is not kept for it.
   */
  #second: Int32Array<ArrayBuffer> = new Int32Array(0);
  #slots = 0;
  #free: number[] = [];
  /** The same for leaves: the second word per leaf id, leaf ids handed out, freed leaf ids. */
  #leafSecond: Int32Array<ArrayBuffer> = new Int32Array(0);
  #leafSlots = 0;
  #freeLeaves: number[] = [];
  /** The fingerprint of the last pair hashed. */
  #a = 0;
  #b = 0;
  /** Whether the last add() made its id. */
  isNew = false;

  /** Node ids handed out so far, live or free: every node id is below it. */
  get slots(): number {
    return this.#slots;
  }
  /** Leaf ids handed out so far, live or free: every leaf's l is below it. */
  get leafSlots(): number {
    return this.#leafSlots;
  }
  /** Live ids. */
  get size(): number {
    return this.#size;
  }
  get memoryBytes(): number {
    let bytes = this.#second.byteLength + this.#leafSecond.byteLength + this.#masks.byteLength * 2;
    for (const table of this.#tables) bytes += table.byteLength;
    return bytes;
  }

  /** The id of (tenant, object) (a node's, or -2 - l for leaf l), or NONE (-1). */
  find(tenant: string, object: string): number {
    let seed: number | undefined;
    if (tenant === this.#lastTenant) seed = this.#lastSeed;
    else {
      seed = this.#tenantSeeds.get(tenant);
      if (seed === undefined) return NONE;
    }
    this.#hash(seed, object);
    const shard = this.#a >>> SHARD_SHIFT;
    const table = this.#tables[shard]!;
    return table[this.#probe(table, this.#masks[shard]!) + 1]! - 1;
  }

  /**
   * The id of (tenant, object), made when new (`isNew` then says so, until the next call): a node's, or a leaf's
   * (-2 - l) when `leaf`. An entry found is returned as it is, of either kind.
   */
  add(tenant: string, object: string, leaf = false): number {
    this.isNew = false;
    this.#hash(this.#seedOf(tenant), object);
    const shard = this.#a >>> SHARD_SHIFT;
    let table = this.#tables[shard]!;
    // Grown before the probe, so the slot found stays valid (at worst one node early).
    if ((this.#fill[shard]! + 1) * 4 > table.length) table = this.#rehash(shard);
    const slot = this.#probe(table, this.#masks[shard]!);
    const found = table[slot + 1]!;
    if (found !== 0) return found - 1;
    const id = leaf ? this.#newLeaf() : this.#newNode();
    table[slot] = this.#a;
    table[slot + 1] = id + 1;
    this.#fill[shard] = this.#fill[shard]! + 1;
    this.#size++;
    this.isNew = true;
    return id;
  }

  /**
   * Turns the leaf of (tenant, object), which must be one, into a node: the same entry, now holding a node id,
   * which is returned. The leaf's id is free from here on.
   */
  promote(tenant: string, object: string, leafId: number): number {
    this.#hash(this.#seedOf(tenant), object);
    const shard = this.#a >>> SHARD_SHIFT;
    const table = this.#tables[shard]!;
    const slot = this.#probe(table, this.#masks[shard]!);
    const id = this.#newNode();
    table[slot + 1] = id + 1;
    this.#freeLeaves.push(-2 - leafId);
    return id;
  }

  /** A node id for the fingerprint last hashed. */
  #newNode(): number {
    const id = this.#free.pop() ?? this.#slots++;
    if (id >= this.#second.length) {
      // Doubling from 24, as the graph's node arrays do (src/changes/depth-graph.ts `grow`): less churn of buffers.
      const second = new Int32Array(Math.max(24, this.#second.length * 2));
      second.set(this.#second);
      this.#second = second;
    }
    this.#second[id] = this.#b;
    return id;
  }

  /** A leaf id (-2 - l) for the fingerprint last hashed. */
  #newLeaf(): number {
    const l = this.#freeLeaves.pop() ?? this.#leafSlots++;
    if (l >= this.#leafSecond.length) {
      const second = new Int32Array(Math.max(32, this.#leafSecond.length * 2));
      second.set(this.#leafSecond);
      this.#leafSecond = second;
    }
    this.#leafSecond[l] = this.#b;
    return -2 - l;
  }

  /** Frees `id`, the live id of (tenant, object), a node's or a leaf's; a later add may hand it out again. */
  delete(tenant: string, object: string, id: number): void {
    this.#hash(this.#seedOf(tenant), object);
    const shard = this.#a >>> SHARD_SHIFT;
    const table = this.#tables[shard]!;
    const mask = this.#masks[shard]!;
    let i = this.#a & mask;
    while (table[2 * i + 1] !== id + 1) i = (i + 1) & mask;
    // Backward-shift deletion: no tombstones.
    for (let j = (i + 1) & mask; table[2 * j + 1] !== 0; j = (j + 1) & mask) {
      const home = table[2 * j]! & mask;
      // Move j into the hole at i when its home does not lie cyclically in (i, j].
      if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
        table[2 * i] = table[2 * j]!;
        table[2 * i + 1] = table[2 * j + 1]!;
        i = j;
      }
    }
    table[2 * i] = 0;
    table[2 * i + 1] = 0;
    this.#fill[shard] = this.#fill[shard]! - 1;
    if (id >= 0) this.#free.push(id);
    else this.#freeLeaves.push(-2 - id);
    this.#size--;
  }

  clear(): void {
    this.#tenantSeeds.clear();
    this.#lastTenant = undefined;
    this.#tables = freshTables();
    this.#masks.fill(SHARD_FIRST - 1);
    this.#fill.fill(0);
    this.#size = 0;
    this.#second = new Int32Array(0);
    this.#slots = 0;
    this.#free = [];
    this.#leafSecond = new Int32Array(0);
    this.#leafSlots = 0;
    this.#freeLeaves = [];
  }

  #seedOf(tenant: string): number {
    // Nearly every tuple of a write is in the tenant of the one before.
    if (tenant === this.#lastTenant) return this.#lastSeed;
    let seed = this.#tenantSeeds.get(tenant);
    if (seed === undefined) {
      seed = mix(this.#salt ^ Math.imul(this.#tenantSeeds.size + 1, 0x9e3779b1));
      this.#tenantSeeds.set(tenant, seed);
    }
    this.#lastTenant = tenant;
    this.#lastSeed = seed;
    return seed;
  }

  /** Two independent 32-bit hashes of the object's characters, seeded by its tenant: the fingerprint. */
  #hash(seed: number, text: string): void {
    let a = seed ^ text.length;
    let b = ~seed;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x5bd1e995);
      a ^= a >>> 15;
      b = Math.imul(b ^ c, 0x01000193);
    }
    this.#a = mix(a);
    this.#b = mix(b ^ 0x6a09e667);
  }

  /** The offset (2 × slot) in `table` holding the last fingerprint hashed, or of the empty slot where it would go. */
  #probe(table: Int32Array, mask: number): number {
    const a = this.#a;
    const b = this.#b;
    const second = this.#second;
    const leafSecond = this.#leafSecond;
    for (let i = a & mask; ; i = (i + 1) & mask) {
      const at = 2 * i;
      const id = table[at + 1]!;
      if (id === 0) return at;
      if (table[at] === a && (id > 0 ? second[id - 1] : leafSecond[-1 - id]) === b) return at;
    }
  }

  /** Doubles table `shard`; returns the new table. */
  #rehash(shard: number): Int32Array<ArrayBuffer> {
    const old = this.#tables[shard]!;
    // Twice the slots: the old array holds two words a slot, so its length is the new slot count.
    const table = new Int32Array(2 * old.length);
    const mask = old.length - 1;
    for (let at = 0; at < old.length; at += 2) {
      const id = old[at + 1]!;
      if (id === 0) continue;
      let i = old[at]! & mask;
      while (table[2 * i + 1] !== 0) i = (i + 1) & mask;
      table[2 * i] = old[at]!;
      table[2 * i + 1] = id;
    }
    this.#tables[shard] = table;
    this.#masks[shard] = mask;
    return table;
  }
}
