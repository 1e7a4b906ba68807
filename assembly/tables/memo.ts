// Memo tables: (u32 × arity) -> u32, arity 2, 3 or 4; open addressing with linear probing.
//
// Header (40 bytes):
//   0  usize slots       capacity × stride bytes
//   4  u32   mask        capacity - 1
//   8  u32   size        live entries
//  12  u32   growAt      size bound of the current slot array (3/4 of capacity)
//  16  u32   generation  current generation (never 0)
//  20  u32   arity       2, 3 or 4
//  24  u32   stride      slot bytes: 8 + 4 × arity
//  32  u64   seed        hash seed
// Slot: [u32 generation][u32 value][u32 key 0 .. key arity-1]. A slot is live iff its generation is the table's;
// anything else reads as empty, so clear() is O(1): bump the generation. When the generation would wrap, the slot
// array is zeroed once (every 2^32 - 1 clears) so a stale slot can never come back to life.
//
// Deletion is backward-shift (Knuth's algorithm R), not tombstones: a memo cache is invalidated entry by entry
// for its whole life, and tombstones would make absent-key probes (the common case of a cache) longer until a
// rehash purged them. With backward shift no deleted slot survives, the load factor counts live entries only, and
// a probe never walks over a dead slot. Its cost, re-hashing the few entries of the cluster after the hole, is
// bounded by the 3/4 load bound. Values are u32 except ABSENT (0xFFFFFFFF), which means "no value".
import { hashU32x2 } from "../lib/hash";
import { ABSENT, BAD_VALUE, capacityFor, EMPTY_SLOTS, LIMIT_REACHED, MAX_BLOCK, MIN_CAPACITY } from "./common";

// @ts-ignore: decorator
@inline const M_SLOTS: usize = 0;
// @ts-ignore: decorator
@inline const M_MASK: usize = 4;
// @ts-ignore: decorator
@inline const M_SIZE: usize = 8;
// @ts-ignore: decorator
@inline const M_GROW_AT: usize = 12;
// @ts-ignore: decorator
@inline const M_GENERATION: usize = 16;
// @ts-ignore: decorator
@inline const M_ARITY: usize = 20;
// @ts-ignore: decorator
@inline const M_STRIDE: usize = 24;
// @ts-ignore: decorator
@inline const M_SEED: usize = 32;
// @ts-ignore: decorator
@inline const M_HEADER: usize = 40;

/** A new, empty memo table of `arity` (2, 3 or 4) u32 keys; 0 if the arity is invalid. Only the header is allocated. */
export function memo_new(arity: u32, seedLo: u32, seedHi: u32): usize {
  if (arity < 2 || arity > 4) return 0;
  const t = heap.alloc(M_HEADER);
  memory.fill(t, 0, M_HEADER);
  store<usize>(t, EMPTY_SLOTS, M_SLOTS);
  store<u32>(t, 1, M_GENERATION);
  store<u32>(t, arity, M_ARITY);
  store<u32>(t, 8 + 4 * arity, M_STRIDE);
  store<u64>(t, ((<u64>seedHi) << 32) | (<u64>seedLo), M_SEED);
  return t;
}

export function memo_free(t: usize): void {
  const slots = load<usize>(t, M_SLOTS);
  if (slots != EMPTY_SLOTS) heap.free(slots);
  heap.free(t);
}

export function memo_size(t: usize): u32 {
  return load<u32>(t, M_SIZE);
}

/** Slot capacity (for tests and memory accounting). */
export function memo_capacity(t: usize): u32 {
  return load<u32>(t, M_MASK) + 1;
}

/** Bytes this table holds in linear memory. */
export function memo_memory_bytes(t: usize): usize {
  const slots = load<usize>(t, M_SLOTS);
  if (slots == EMPTY_SLOTS) return M_HEADER;
  return M_HEADER + (<usize>load<u32>(t, M_MASK) + 1) * load<u32>(t, M_STRIDE);
}

export function memo_generation(t: usize): u32 {
  return load<u32>(t, M_GENERATION);
}

/**
 * Test hook: sets the current generation (never 0), as if that many clears had happened, so that the wrap-around
 * path can be tested. Entries whose generation differs become stale, exactly as after a clear.
 */
export function memo_set_generation(t: usize, generation: u32): void {
  if (generation == 0) return;
  store<u32>(t, generation, M_GENERATION);
  store<u32>(t, memo_count_live(t), M_SIZE);
}

function memo_count_live(t: usize): u32 {
  const slots = load<usize>(t, M_SLOTS);
  const capacity = load<u32>(t, M_MASK) + 1;
  const stride = <usize>load<u32>(t, M_STRIDE);
  const generation = load<u32>(t, M_GENERATION);
  let live: u32 = 0;
  for (let i: u32 = 0; i < capacity; i++) if (load<u32>(slots + <usize>i * stride) == generation) live++;
  return live;
}

// @ts-ignore: decorator
@inline
function memo_hash(seed: u64, a: u32, b: u32, c: u32, d: u32, arity: u32): u32 {
  let h = hashU32x2(a, b, seed);
  if (arity > 2) h = hashU32x2(c, d, h); // d is 0 for arity 3
  return <u32>h;
}

/** Hash of the keys stored in slot `s`. */
// @ts-ignore: decorator
@inline
function memo_slot_hash(seed: u64, s: usize, arity: u32): u32 {
  return memo_hash(
    seed,
    load<u32>(s, 8),
    load<u32>(s, 12),
    arity > 2 ? load<u32>(s, 16) : 0,
    arity > 3 ? load<u32>(s, 20) : 0,
    arity,
  );
}

/**
 * Finds the key: the address of its slot if present, else (address of the empty slot where it would go) | 1.
 * Slots are 4-byte aligned, so bit 0 is free for the flag. `arity` is a constant at every call site, so each
 * inlined copy compares exactly its key width.
 */
// @ts-ignore: decorator
@inline
function memo_locate_in(
  slots: usize,
  mask: u32,
  generation: u32,
  seed: u64,
  a: u32,
  b: u32,
  c: u32,
  d: u32,
  arity: u32,
): usize {
  const stride: usize = 8 + 4 * <usize>arity;
  const k01: u64 = ((<u64>b) << 32) | a;
  const k23: u64 = ((<u64>d) << 32) | c;
  let i = memo_hash(seed, a, b, c, d, arity) & mask;
  while (true) {
    const s = slots + <usize>i * stride;
    if (load<u32>(s) != generation) return s | 1;
    if (load<u64>(s, 8) == k01) {
      if (arity == 2) return s;
      if (arity == 3 && load<u32>(s, 16) == c) return s;
      if (arity == 4 && load<u64>(s, 16) == k23) return s;
    }
    i = (i + 1) & mask;
  }
}

// @ts-ignore: decorator
@inline
function memo_locate(t: usize, a: u32, b: u32, c: u32, d: u32, arity: u32): usize {
  return memo_locate_in(
    load<usize>(t, M_SLOTS),
    load<u32>(t, M_MASK),
    load<u32>(t, M_GENERATION),
    load<u64>(t, M_SEED),
    a,
    b,
    c,
    d,
    arity,
  );
}

/** Copies one memo slot (explicit loads, so the optimizer cannot turn a 16-byte copy into SIMD). */
// @ts-ignore: decorator
@inline
function memo_copy_slot(dst: usize, src: usize, arity: u32): void {
  store<u64>(dst, load<u64>(src));
  store<u64>(dst, load<u64>(src, 8), 8);
  if (arity == 3) store<u32>(dst, load<u32>(src, 16), 16);
  if (arity == 4) store<u64>(dst, load<u64>(src, 16), 16);
}

/**
 * Grows the slot array, if needed, so that `n` entries fit under the load bound: afterwards inserting up to
 * n - size new keys allocates nothing. Returns false, changing nothing, past the hard limit (one 1 GiB block).
 */
export function memo_reserve(t: usize, n: u32): bool {
  if (n <= load<u32>(t, M_GROW_AT)) return true;
  const stride = load<u32>(t, M_STRIDE);
  const capacity = capacityFor(n, MAX_BLOCK / stride);
  if (capacity == 0) return false;
  const arity = load<u32>(t, M_ARITY);
  if (arity == 2) memo_rehash(t, capacity, 2);
  else if (arity == 3) memo_rehash(t, capacity, 3);
  else memo_rehash(t, capacity, 4);
  return true;
}

// @ts-ignore: decorator
@inline
function memo_rehash(t: usize, capacity: u32, arity: u32): void {
  const stride: usize = 8 + 4 * <usize>arity;
  const bytes = <usize>capacity * stride;
  const slots = heap.alloc(bytes);
  memory.fill(slots, 0, bytes);
  const mask = capacity - 1;
  const seed = load<u64>(t, M_SEED);
  const generation = load<u32>(t, M_GENERATION);
  const old = load<usize>(t, M_SLOTS);
  const oldCapacity = load<u32>(t, M_MASK) + 1;
  for (let i: u32 = 0; i < oldCapacity; i++) {
    const s = old + <usize>i * stride;
    if (load<u32>(s) != generation) continue;
    let j = memo_slot_hash(seed, s, arity) & mask;
    while (load<u32>(slots + <usize>j * stride) == generation) j = (j + 1) & mask;
    memo_copy_slot(slots + <usize>j * stride, s, arity);
  }
  store<usize>(t, slots, M_SLOTS);
  store<u32>(t, mask, M_MASK);
  store<u32>(t, (capacity >> 2) * 3, M_GROW_AT);
  if (old != EMPTY_SLOTS) heap.free(old);
}

// @ts-ignore: decorator
@inline
function memo_get_n(t: usize, a: u32, b: u32, c: u32, d: u32, arity: u32): u32 {
  const s = memo_locate(t, a, b, c, d, arity);
  return s & 1 ? ABSENT : load<u32>(s, 4);
}

/** Sets the value (not ABSENT: the caller checks). Returns 1 if inserted, 0 if updated, -1 at the hard limit. */
// @ts-ignore: decorator
@inline
function memo_set_n(t: usize, a: u32, b: u32, c: u32, d: u32, value: u32, arity: u32): i32 {
  let s = memo_locate(t, a, b, c, d, arity);
  if (!(s & 1)) {
    store<u32>(s, value, 4);
    return 0;
  }
  const size = load<u32>(t, M_SIZE);
  if (size >= load<u32>(t, M_GROW_AT)) {
    if (!memo_reserve(t, size + 1)) return LIMIT_REACHED;
    s = memo_locate(t, a, b, c, d, arity);
  }
  s &= ~(<usize>1);
  store<u32>(s, load<u32>(t, M_GENERATION));
  store<u32>(s, value, 4);
  store<u64>(s, ((<u64>b) << 32) | a, 8);
  if (arity == 3) store<u32>(s, c, 16);
  if (arity == 4) store<u64>(s, ((<u64>d) << 32) | c, 16);
  store<u32>(t, size + 1, M_SIZE);
  return 1;
}

/** Removes the entry in live slot `s`, shifting back the entries of its cluster that may move into the hole. */
// @ts-ignore: decorator
@inline
function memo_remove_slot(t: usize, s: usize, arity: u32): void {
  const stride: usize = 8 + 4 * <usize>arity;
  const slots = load<usize>(t, M_SLOTS);
  const mask = load<u32>(t, M_MASK);
  const generation = load<u32>(t, M_GENERATION);
  const seed = load<u64>(t, M_SEED);
  let hole = <u32>((s - slots) / stride);
  let j = hole;
  while (true) {
    j = (j + 1) & mask;
    const sj = slots + <usize>j * stride;
    if (load<u32>(sj) != generation) break;
    const home = memo_slot_hash(seed, sj, arity) & mask;
    // The entry may fill the hole unless its home lies cyclically in (hole, j].
    if (((j - home) & mask) >= ((j - hole) & mask)) {
      memo_copy_slot(slots + <usize>hole * stride, sj, arity);
      hole = j;
    }
  }
  store<u32>(slots + <usize>hole * stride, 0);
  store<u32>(t, load<u32>(t, M_SIZE) - 1, M_SIZE);
}

/** Deletes the key; returns its value, or ABSENT if it was not present. */
// @ts-ignore: decorator
@inline
function memo_delete_n(t: usize, a: u32, b: u32, c: u32, d: u32, arity: u32): u32 {
  const s = memo_locate(t, a, b, c, d, arity);
  if (s & 1) return ABSENT;
  const value = load<u32>(s, 4);
  memo_remove_slot(t, s, arity);
  return value;
}

// The per-arity entry points: the caller (TypeScript, or another kernel) guarantees the table's arity matches.

export function memo_get2(t: usize, a: u32, b: u32): u32 {
  return memo_get_n(t, a, b, 0, 0, 2);
}
export function memo_get3(t: usize, a: u32, b: u32, c: u32): u32 {
  return memo_get_n(t, a, b, c, 0, 3);
}
export function memo_get4(t: usize, a: u32, b: u32, c: u32, d: u32): u32 {
  return memo_get_n(t, a, b, c, d, 4);
}
export function memo_set2(t: usize, a: u32, b: u32, value: u32): i32 {
  return memo_set_n(t, a, b, 0, 0, value, 2);
}
export function memo_set3(t: usize, a: u32, b: u32, c: u32, value: u32): i32 {
  return memo_set_n(t, a, b, c, 0, value, 3);
}
export function memo_set4(t: usize, a: u32, b: u32, c: u32, d: u32, value: u32): i32 {
  return memo_set_n(t, a, b, c, d, value, 4);
}
export function memo_delete2(t: usize, a: u32, b: u32): u32 {
  return memo_delete_n(t, a, b, 0, 0, 2);
}
export function memo_delete3(t: usize, a: u32, b: u32, c: u32): u32 {
  return memo_delete_n(t, a, b, c, 0, 3);
}
export function memo_delete4(t: usize, a: u32, b: u32, c: u32, d: u32): u32 {
  return memo_delete_n(t, a, b, c, d, 4);
}

/** Forgets every entry in O(1) (a new generation); the capacity is kept for the next fill. */
export function memo_clear(t: usize): void {
  const generation = load<u32>(t, M_GENERATION);
  if (generation == 0xffffffff) {
    memory.fill(load<usize>(t, M_SLOTS), 0, (<usize>load<u32>(t, M_MASK) + 1) * load<u32>(t, M_STRIDE));
    store<u32>(t, 1, M_GENERATION);
  } else {
    store<u32>(t, generation + 1, M_GENERATION);
  }
  store<u32>(t, 0, M_SIZE);
}

// @ts-ignore: decorator
@inline
function memo_key(keys: usize, i: u32, k: u32, arity: u32): u32 {
  return load<u32>(keys + ((<usize>i * arity + k) << 2));
}

// @ts-ignore: decorator
@inline
function memo_get_many_n(t: usize, keys: usize, count: u32, out: usize, arity: u32): u32 {
  const slots = load<usize>(t, M_SLOTS);
  const mask = load<u32>(t, M_MASK);
  const generation = load<u32>(t, M_GENERATION);
  const seed = load<u64>(t, M_SEED);
  let hits: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const s = memo_locate_in(
      slots,
      mask,
      generation,
      seed,
      memo_key(keys, i, 0, arity),
      memo_key(keys, i, 1, arity),
      arity > 2 ? memo_key(keys, i, 2, arity) : 0,
      arity > 3 ? memo_key(keys, i, 3, arity) : 0,
      arity,
    );
    let value = ABSENT;
    if (!(s & 1)) {
      value = load<u32>(s, 4);
      hits++;
    }
    store<u32>(out + ((<usize>i) << 2), value);
  }
  return hits;
}

/** Looks up `count` keys packed at `keys` (arity u32s each), writing values or ABSENT to `out`; returns hits. */
export function memo_get_many(t: usize, keys: usize, count: u32, out: usize): u32 {
  const arity = load<u32>(t, M_ARITY);
  if (arity == 2) return memo_get_many_n(t, keys, count, out, 2);
  if (arity == 3) return memo_get_many_n(t, keys, count, out, 3);
  return memo_get_many_n(t, keys, count, out, 4);
}

// @ts-ignore: decorator
@inline
function memo_set_many_n(t: usize, keys: usize, values: usize, count: u32, arity: u32): i32 {
  const size = load<u32>(t, M_SIZE);
  if (<u64>size + count > <u64>load<u32>(t, M_GROW_AT)) {
    // Count the keys not present yet (an upper bound: a key repeated in the batch counts each time), then reserve
    // once, so the set pass below cannot allocate and so cannot fail half-way.
    let missing: u64 = 0;
    for (let i: u32 = 0; i < count; i++) {
      const s = memo_locate(
        t,
        memo_key(keys, i, 0, arity),
        memo_key(keys, i, 1, arity),
        arity > 2 ? memo_key(keys, i, 2, arity) : 0,
        arity > 3 ? memo_key(keys, i, 3, arity) : 0,
        arity,
      );
      missing += <u64>(s & 1);
    }
    if (<u64>size + missing > 0xffffffff || !memo_reserve(t, <u32>(<u64>size + missing))) return LIMIT_REACHED;
  }
  let inserted: i32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    inserted += memo_set_n(
      t,
      memo_key(keys, i, 0, arity),
      memo_key(keys, i, 1, arity),
      arity > 2 ? memo_key(keys, i, 2, arity) : 0,
      arity > 3 ? memo_key(keys, i, 3, arity) : 0,
      load<u32>(values + ((<usize>i) << 2)),
      arity,
    );
  }
  return inserted;
}

/**
 * Sets `count` keys packed at `keys` to the u32 values at `values`, in order (a repeated key keeps its last
 * value). Returns how many keys were new; LIMIT_REACHED at the hard limit; BAD_VALUE - i if values[i] is ABSENT. On a negative
 * return nothing was written.
 */
export function memo_set_many(t: usize, keys: usize, values: usize, count: u32): i32 {
  for (let i: u32 = 0; i < count; i++) {
    if (load<u32>(values + ((<usize>i) << 2)) == ABSENT) return BAD_VALUE - <i32>i;
  }
  const arity = load<u32>(t, M_ARITY);
  if (arity == 2) return memo_set_many_n(t, keys, values, count, 2);
  if (arity == 3) return memo_set_many_n(t, keys, values, count, 3);
  return memo_set_many_n(t, keys, values, count, 4);
}

// @ts-ignore: decorator
@inline
function memo_delete_many_n(t: usize, keys: usize, count: u32, arity: u32): u32 {
  let removed: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const value = memo_delete_n(
      t,
      memo_key(keys, i, 0, arity),
      memo_key(keys, i, 1, arity),
      arity > 2 ? memo_key(keys, i, 2, arity) : 0,
      arity > 3 ? memo_key(keys, i, 3, arity) : 0,
      arity,
    );
    if (value != ABSENT) removed++;
  }
  return removed;
}

/** Deletes `count` keys packed at `keys`; returns how many were present. */
export function memo_delete_many(t: usize, keys: usize, count: u32): u32 {
  const arity = load<u32>(t, M_ARITY);
  if (arity == 2) return memo_delete_many_n(t, keys, count, 2);
  if (arity == 3) return memo_delete_many_n(t, keys, count, 3);
  return memo_delete_many_n(t, keys, count, 4);
}

/** Copies every live entry: keys (arity u32s each) to `keys`, values to `values`, in slot order; returns count. */
export function memo_copy_entries(t: usize, keys: usize, values: usize): u32 {
  const slots = load<usize>(t, M_SLOTS);
  const capacity = load<u32>(t, M_MASK) + 1;
  const arity = load<u32>(t, M_ARITY);
  const stride = <usize>load<u32>(t, M_STRIDE);
  const generation = load<u32>(t, M_GENERATION);
  let n: u32 = 0;
  for (let i: u32 = 0; i < capacity; i++) {
    const s = slots + <usize>i * stride;
    if (load<u32>(s) != generation) continue;
    memory.copy(keys + ((<usize>n * arity) << 2), s + 8, (<usize>arity) << 2);
    store<u32>(values + ((<usize>n) << 2), load<u32>(s, 4));
    n++;
  }
  return n;
}

/**
 * The first word of the home slot of key (a, b) in a 2-key table: one load at an address the key alone gives, so
 * that a later memo_get2 of the key finds its slot in cache (the evaluator touches a batch's nodes ahead). Not a
 * lookup: the key may sit further along its probe run, or be absent.
 */
// @ts-ignore: decorator
@inline
export function memoTouch2(t: usize, a: u32, b: u32): u32 {
  const i = memo_hash(load<u64>(t, M_SEED), a, b, 0, 0, 2) & load<u32>(t, M_MASK);
  return load<u32>(load<usize>(t, M_SLOTS) + <usize>i * 16);
}
