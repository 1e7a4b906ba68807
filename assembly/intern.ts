// Interned symbols and memo tables over raw linear memory: the base that the compiled tuple graph, the evaluator's
// memo caches and the Leopard index build on. Every structure is a header in raw memory addressed by a pointer and
// every function takes that pointer, so another kernel can `import` these functions (or `export * from "./intern"`
// to host the TypeScript classes too) and keep symbols and memo tables in the same linear memory as its own data.
// No module-level state except one static, read-only "empty table" slot; no managed objects.
//
// Failure model: an allocation that memory.grow cannot satisfy traps (TLSF's `unreachable`). Every operation that
// may allocate does all of its allocation first, through a reserve step whose stages each leave a valid structure,
// and only then writes: a trap therefore leaves the structure exactly as it was (possibly with more capacity). A
// request beyond a structure's hard limits (one TLSF block is at most 1 GiB) returns a failure value instead.
//
// The kernel uses no SIMD on purpose: it is the base of the evaluator, which must load where SIMD is missing.
export { alloc, free } from "./lib/memory";
import { hashBytes, hashU32x2 } from "./lib/hash";

// "No symbol" / "no value": symbols never reach it, memo values may not be it.
// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;
// Largest single allocation we ask TLSF for (its BLOCK_MAXSIZE is 1 GiB minus the block overhead).
// @ts-ignore: decorator
@inline const MAX_BLOCK: u64 = (1 << 30) - 64;
// Smallest slot array once a structure holds anything.
// @ts-ignore: decorator
@inline const MIN_CAPACITY: u32 = 8;

// A capacity-1 slot array of zeros shared by every empty structure, so that creating one costs only its header.
// A zero slot reads as empty in both layouts (interner: symbol+1 == 0; memo: generation 0 is never current). It is
// never written, except memo_clear's zero-fill on generation wrap, which writes zeros over zeros.
const EMPTY_SLOTS: usize = memory.data(24, 16);

/** Power-of-two slot count (≥ MIN_CAPACITY) whose load bound (3/4) admits `n` entries; 0 if over `maxSlots`. */
function capacityFor(n: u64, maxSlots: u64): u32 {
  let cap: u64 = MIN_CAPACITY;
  while ((cap * 3) >> 2 < n) cap <<= 1;
  return cap > maxSlots ? 0 : <u32>cap;
}

/** Byte equality of two ranges, 8 bytes a step (unaligned loads are fine in WebAssembly). */
// @ts-ignore: decorator
@inline
function bytesEqual(a: usize, b: usize, n: usize): bool {
  while (n >= 8) {
    if (load<u64>(a) != load<u64>(b)) return false;
    a += 8;
    b += 8;
    n -= 8;
  }
  if (n >= 4) {
    if (load<u32>(a) != load<u32>(b)) return false;
    a += 4;
    b += 4;
    n -= 4;
  }
  while (n > 0) {
    if (load<u8>(a) != load<u8>(b)) return false;
    a++;
    b++;
    n--;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Interner: UTF-8 byte strings -> dense u32 symbols 0..n-1, stable for the interner's life, with reverse lookup.
//
// Header (56 bytes):
//   0  usize slots       capacity × u64: low u32 = hash tag (low 32 bits of hashBytes), high u32 = symbol + 1
//                        (0 = empty). The tag picks the home slot (tag & mask) and filters byte comparisons; it
//                        also lets growth rehash without touching the strings.
//   4  u32   mask        capacity - 1 (capacity is a power of two)
//   8  u32   size        symbols interned
//  12  u32   growAt      size bound of the current slot array (3/4 of capacity)
//  16  usize entries     symbol -> [usize bytes pointer][u32 byte length]: 8 bytes a symbol
//  20  u32   entryCap    symbols the entries array holds
//  24  usize chunk       newest arena chunk (each chunk: [usize previous chunk][u32 size][u32 0] then bytes)
//  28  usize cursor      next free arena byte
//  32  usize end         end of the newest chunk
//  36  u32   nextChunk   byte size of the next regular chunk (doubles from 1 KiB to 1 MiB)
//  40  u32   arenaBytes  bytes held by all chunks, headers included
//  48  u64   seed        hash seed
// The arena is a list of chunks that never move, so a symbol's bytes pointer is stable for the interner's life.
// A batch or a string that does not fit the newest chunk opens a new one of at least its size; the old chunk's
// tail (shorter than what did not fit) is left unused, so the waste is below the bytes being added.
// ---------------------------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline const I_SLOTS: usize = 0;
// @ts-ignore: decorator
@inline const I_MASK: usize = 4;
// @ts-ignore: decorator
@inline const I_SIZE: usize = 8;
// @ts-ignore: decorator
@inline const I_GROW_AT: usize = 12;
// @ts-ignore: decorator
@inline const I_ENTRIES: usize = 16;
// @ts-ignore: decorator
@inline const I_ENTRY_CAP: usize = 20;
// @ts-ignore: decorator
@inline const I_CHUNK: usize = 24;
// @ts-ignore: decorator
@inline const I_CURSOR: usize = 28;
// @ts-ignore: decorator
@inline const I_END: usize = 32;
// @ts-ignore: decorator
@inline const I_NEXT_CHUNK: usize = 36;
// @ts-ignore: decorator
@inline const I_ARENA_BYTES: usize = 40;
// @ts-ignore: decorator
@inline const I_SEED: usize = 48;
// @ts-ignore: decorator
@inline const I_HEADER: usize = 56;
// @ts-ignore: decorator
@inline const CHUNK_HEADER: usize = 16;
// @ts-ignore: decorator
@inline const FIRST_CHUNK: u32 = 1024;
// @ts-ignore: decorator
@inline const MAX_REGULAR_CHUNK: u32 = 1 << 20;
// Symbols stay below ABSENT and the entries array within one block.
// @ts-ignore: decorator
@inline const MAX_SYMBOLS: u64 = MAX_BLOCK >> 3;

/** A new, empty interner (only its header is allocated). */
export function interner_new(seedLo: u32, seedHi: u32): usize {
  const t = heap.alloc(I_HEADER);
  memory.fill(t, 0, I_HEADER);
  store<usize>(t, EMPTY_SLOTS, I_SLOTS);
  store<u32>(t, FIRST_CHUNK, I_NEXT_CHUNK);
  store<u64>(t, ((<u64>seedHi) << 32) | (<u64>seedLo), I_SEED);
  return t;
}

/** Frees the interner and everything it holds. */
export function interner_free(t: usize): void {
  let chunk = load<usize>(t, I_CHUNK);
  while (chunk != 0) {
    const previous = load<usize>(chunk);
    heap.free(chunk);
    chunk = previous;
  }
  const entries = load<usize>(t, I_ENTRIES);
  if (entries != 0) heap.free(entries);
  const slots = load<usize>(t, I_SLOTS);
  if (slots != EMPTY_SLOTS) heap.free(slots);
  heap.free(t);
}

export function interner_size(t: usize): u32 {
  return load<u32>(t, I_SIZE);
}

/** Slot capacity (for tests and memory accounting). */
export function interner_capacity(t: usize): u32 {
  return load<u32>(t, I_MASK) + 1;
}

/** Bytes this interner holds in linear memory (header, slots, entries, arena chunks). */
export function interner_memory_bytes(t: usize): usize {
  const slots = load<usize>(t, I_SLOTS);
  const slotBytes: usize = slots == EMPTY_SLOTS ? 0 : (<usize>load<u32>(t, I_MASK) + 1) << 3;
  return I_HEADER + slotBytes + ((<usize>load<u32>(t, I_ENTRY_CAP)) << 3) + load<u32>(t, I_ARENA_BYTES);
}

/**
 * Makes room for `extraSymbols` more symbols and `extraBytes` more contiguous arena bytes, so that inserting them
 * allocates nothing. Returns false, changing nothing, if that would pass a hard limit. Each stage commits on its
 * own, so a trap (memory.grow failed) leaves a valid interner.
 */
export function interner_reserve(t: usize, extraSymbols: u32, extraBytes: u32): bool {
  const size = load<u32>(t, I_SIZE);
  const need: u64 = <u64>size + extraSymbols;
  if (need > MAX_SYMBOLS) return false;
  const growSlots = need > <u64>load<u32>(t, I_GROW_AT);
  let newCapacity: u32 = 0;
  if (growSlots) {
    newCapacity = capacityFor(need, MAX_BLOCK >> 3);
    if (newCapacity == 0) return false;
  }
  const entryCap = load<u32>(t, I_ENTRY_CAP);
  let newEntryCap: u64 = entryCap;
  if (need > <u64>entryCap) {
    newEntryCap = max<u64>(max<u64>(need, <u64>entryCap << 1), <u64>MIN_CAPACITY);
    if (newEntryCap > MAX_SYMBOLS) newEntryCap = need;
  }
  const cursor = load<usize>(t, I_CURSOR);
  const newChunk = <u64>extraBytes > <u64>(load<usize>(t, I_END) - cursor);
  let chunkBytes: u64 = 0;
  if (newChunk) {
    chunkBytes = max<u64>(<u64>load<u32>(t, I_NEXT_CHUNK), <u64>extraBytes) + CHUNK_HEADER;
    if (chunkBytes > MAX_BLOCK || <u64>load<u32>(t, I_ARENA_BYTES) + chunkBytes > 0xffffffff) return false;
  }

  if (growSlots) interner_rehash(t, newCapacity);
  if (newEntryCap != <u64>entryCap) {
    const old = load<usize>(t, I_ENTRIES);
    const bytes = <usize>newEntryCap << 3;
    const entries = old == 0 ? heap.alloc(bytes) : heap.realloc(old, bytes);
    store<usize>(t, entries, I_ENTRIES);
    store<u32>(t, <u32>newEntryCap, I_ENTRY_CAP);
  }
  if (newChunk) {
    const chunk = heap.alloc(<usize>chunkBytes);
    store<usize>(chunk, load<usize>(t, I_CHUNK));
    store<u32>(chunk, <u32>chunkBytes, 4);
    store<u32>(chunk, 0, 8);
    store<usize>(t, chunk, I_CHUNK);
    store<usize>(t, chunk + CHUNK_HEADER, I_CURSOR);
    store<usize>(t, chunk + <usize>chunkBytes, I_END);
    store<u32>(t, load<u32>(t, I_ARENA_BYTES) + <u32>chunkBytes, I_ARENA_BYTES);
    const next = load<u32>(t, I_NEXT_CHUNK);
    if (next < MAX_REGULAR_CHUNK) store<u32>(t, next << 1, I_NEXT_CHUNK);
  }
  return true;
}

/** Moves every slot into a fresh array of `capacity` slots (by stored tag: the strings are not read). */
function interner_rehash(t: usize, capacity: u32): void {
  const slots = heap.alloc((<usize>capacity) << 3);
  memory.fill(slots, 0, (<usize>capacity) << 3);
  const mask = capacity - 1;
  const old = load<usize>(t, I_SLOTS);
  const oldCapacity = load<u32>(t, I_MASK) + 1;
  for (let i: u32 = 0; i < oldCapacity; i++) {
    const s = load<u64>(old + ((<usize>i) << 3));
    if (s >>> 32 == 0) continue;
    let j = (<u32>s) & mask;
    while (load<u32>(slots + ((<usize>j) << 3), 4) != 0) j = (j + 1) & mask;
    store<u64>(slots + ((<usize>j) << 3), s);
  }
  store<usize>(t, slots, I_SLOTS);
  store<u32>(t, mask, I_MASK);
  store<u32>(t, (capacity >> 2) * 3, I_GROW_AT);
  if (old != EMPTY_SLOTS) heap.free(old);
}

// @ts-ignore: decorator
@inline
function interner_tag(t: usize, key: usize, len: u32): u32 {
  return <u32>hashBytes(key, len, load<u64>(t, I_SEED));
}

/**
 * Finds the string: its symbol (≥ 0) if present, else -(empty slot index + 1), the slot where it would go.
 * Terminates because the slot array always keeps an empty slot (growAt < capacity).
 */
// @ts-ignore: decorator
@inline
function interner_locate(t: usize, key: usize, len: u32, tag: u32): i64 {
  const slots = load<usize>(t, I_SLOTS);
  const mask = load<u32>(t, I_MASK);
  const entries = load<usize>(t, I_ENTRIES);
  let i = tag & mask;
  while (true) {
    const s = load<u64>(slots + ((<usize>i) << 3));
    const symbolPlusOne = <u32>(s >>> 32);
    if (symbolPlusOne == 0) return -1 - <i64>i;
    if (<u32>s == tag) {
      const entry = entries + ((<usize>(symbolPlusOne - 1)) << 3);
      if (load<u32>(entry, 4) == len && bytesEqual(load<usize>(entry), key, len)) {
        return <i64>(symbolPlusOne - 1);
      }
    }
    i = (i + 1) & mask;
  }
}

/** Appends a string known to be absent at empty slot `slot`; room was reserved. Returns its new symbol. */
// @ts-ignore: decorator
@inline
function interner_insert_at(t: usize, slot: u32, key: usize, len: u32, tag: u32): u32 {
  const symbol = load<u32>(t, I_SIZE);
  const bytes = load<usize>(t, I_CURSOR);
  memory.copy(bytes, key, len);
  store<usize>(t, bytes + len, I_CURSOR);
  const entry = load<usize>(t, I_ENTRIES) + ((<usize>symbol) << 3);
  store<usize>(entry, bytes);
  store<u32>(entry, len, 4);
  store<u64>(load<usize>(t, I_SLOTS) + ((<usize>slot) << 3), ((<u64>(symbol + 1)) << 32) | tag);
  store<u32>(t, symbol + 1, I_SIZE);
  return symbol;
}

/** True if one more string of `len` bytes can be inserted without allocating. */
// @ts-ignore: decorator
@inline
function interner_has_room(t: usize, symbols: u32, bytes: u64): bool {
  const need: u64 = <u64>load<u32>(t, I_SIZE) + symbols;
  return (
    need <= <u64>load<u32>(t, I_GROW_AT) &&
    need <= <u64>load<u32>(t, I_ENTRY_CAP) &&
    bytes <= <u64>(load<usize>(t, I_END) - load<usize>(t, I_CURSOR))
  );
}

/** The symbol of the `len` bytes at `key`, interning them if new; ABSENT if the interner is at a hard limit. */
export function interner_intern(t: usize, key: usize, len: u32): u32 {
  const tag = interner_tag(t, key, len);
  let found = interner_locate(t, key, len, tag);
  if (found >= 0) return <u32>found;
  if (!interner_has_room(t, 1, len)) {
    if (!interner_reserve(t, 1, len)) return ABSENT;
    found = interner_locate(t, key, len, tag);
  }
  return interner_insert_at(t, <u32>(-1 - found), key, len, tag);
}

/** The symbol of the `len` bytes at `key`, or ABSENT; never inserts. */
export function interner_lookup(t: usize, key: usize, len: u32): u32 {
  const found = interner_locate(t, key, len, interner_tag(t, key, len));
  return found >= 0 ? <u32>found : ABSENT;
}

/**
 * Interns `count` strings packed back to back at `bytes`, their byte lengths at `lens` (u32 each, `totalBytes` in
 * all), writing each symbol to `out` (u32 each; must not overlap `lens`). Returns how many symbols are new, or -1
 * (nothing interned) at a hard limit. Duplicates within the batch get one symbol, numbered in batch order.
 */
export function interner_intern_batch(
  t: usize,
  bytes: usize,
  lens: usize,
  count: u32,
  totalBytes: u32,
  out: usize,
): i32 {
  const before = load<u32>(t, I_SIZE);
  if (!interner_has_room(t, count, totalBytes)) {
    // Not enough room for the worst case: count the misses first so growth is sized to what is new, then reserve
    // once, so the insert pass below cannot allocate (and so cannot fail half-way).
    let misses: u32 = 0;
    let missBytes: u64 = 0;
    let key = bytes;
    for (let i: u32 = 0; i < count; i++) {
      const len = load<u32>(lens + ((<usize>i) << 2));
      if (interner_locate(t, key, len, interner_tag(t, key, len)) < 0) {
        misses++;
        missBytes += len;
      }
      key += len;
    }
    if (misses > 0 && !interner_reserve(t, misses, <u32>missBytes)) return -1;
  }
  let key = bytes;
  for (let i: u32 = 0; i < count; i++) {
    const len = load<u32>(lens + ((<usize>i) << 2));
    const tag = interner_tag(t, key, len);
    const found = interner_locate(t, key, len, tag);
    store<u32>(
      out + ((<usize>i) << 2),
      found >= 0 ? <u32>found : interner_insert_at(t, <u32>(-1 - found), key, len, tag),
    );
    key += len;
  }
  return <i32>(load<u32>(t, I_SIZE) - before);
}

/** Looks up `count` packed strings (layout as interner_intern_batch), writing symbols or ABSENT; returns hits. */
export function interner_lookup_batch(t: usize, bytes: usize, lens: usize, count: u32, out: usize): u32 {
  let hits: u32 = 0;
  let key = bytes;
  for (let i: u32 = 0; i < count; i++) {
    const len = load<u32>(lens + ((<usize>i) << 2));
    const found = interner_locate(t, key, len, interner_tag(t, key, len));
    let symbol = ABSENT;
    if (found >= 0) {
      symbol = <u32>found;
      hits++;
    }
    store<u32>(out + ((<usize>i) << 2), symbol);
    key += len;
  }
  return hits;
}

/** Pointer to a symbol's UTF-8 bytes (stable for the interner's life). The caller checks symbol < size. */
export function interner_symbol_ptr(t: usize, symbol: u32): usize {
  return load<usize>(load<usize>(t, I_ENTRIES) + ((<usize>symbol) << 3));
}

/** Byte length of a symbol's string. The caller checks symbol < size. */
export function interner_symbol_len(t: usize, symbol: u32): u32 {
  return load<u32>(load<usize>(t, I_ENTRIES) + ((<usize>symbol) << 3), 4);
}

// ---------------------------------------------------------------------------------------------------------------
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
// ---------------------------------------------------------------------------------------------------------------

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

export function memo_arity(t: usize): u32 {
  return load<u32>(t, M_ARITY);
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
    if (!memo_reserve(t, size + 1)) return -1;
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
    if (<u64>size + missing > 0xffffffff || !memo_reserve(t, <u32>(<u64>size + missing))) return -1;
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
 * value). Returns how many keys were new; -1 at the hard limit; -2 - i if values[i] is ABSENT. On a negative
 * return nothing was written.
 */
export function memo_set_many(t: usize, keys: usize, values: usize, count: u32): i32 {
  for (let i: u32 = 0; i < count; i++) {
    if (load<u32>(values + ((<usize>i) << 2)) == ABSENT) return -2 - <i32>i;
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
