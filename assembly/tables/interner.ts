// Interner: UTF-8 byte strings -> dense u32 symbols 0..n-1, stable for the interner's life, with reverse lookup.
//
// Header (56 bytes):
//   0  usize slots       capacity × u64: low u32 = tag, high u32 = address of the symbol's record in the arena
//                        (0 = empty). The tag is the string's 32-bit hash (hashBytes): its home slot is tag & mask,
//                        it filters byte comparisons, and it lets growth rehash without touching the strings. All
//                        32 bits are hash: a tag that gave up bits (to the length, say) leaves a table past 2^24
//                        slots reaching only part of itself from home slots, and ids of one length (UUIDs) then
//                        pile into long probe runs.
//   4  u32   mask        capacity - 1 (capacity is a power of two)
//   8  u32   size        symbols interned
//  12  u32   growAt      size bound of the current slot array (3/4 of capacity)
//  16  usize entries     symbol -> its bytes pointer (into its record: the byte length is the u32 before it), 4
//                        bytes a symbol (resolving a symbol and list ordering read it; a lookup does not). It held
//                        the length too, a copy of the record's: 4 MB more at 1M symbols.
//  20  u32   entryCap    symbols the entries array holds
//  24  usize chunk       newest arena chunk (each chunk: [usize previous chunk][u32 size][u32 0] then bytes)
//  28  usize cursor      next free arena byte
//  32  usize end         end of the newest chunk
//  36  u32   nextChunk   byte size of the next regular chunk (doubles from 1 KiB to 1 MiB)
//  40  u32   arenaBytes  bytes held by all chunks, headers included
//  44  usize nextSlots   the slot array the next rehash will fill, made ahead (0: none; see prepareRehash)
//  48  u64   seed        hash seed
//  56  u32   nextZeroed  bytes of nextSlots zeroed so far
// The arena is a list of chunks that never move, so a symbol's bytes pointer is stable for the interner's life.
// A symbol's record there is [u32 symbol][u32 byte length][bytes] (unaligned): the slot points at it, so a lookup
// reads the slot and then the record, where the symbol, the length and the bytes to compare are side by side. Through the entries array
// instead it was three dependent reads (slot, entry, bytes), each a cache miss for a string not asked about
// lately (the object of a first-pass check): 8 bytes a symbol more for one miss fewer.
// A batch or a string that does not fit the newest chunk opens a new one of at least its size; the old chunk's
// tail (shorter than what did not fit) is left unused, so the waste is below the bytes being added.
import { hashBytes } from "../lib/hash";
import { ABSENT, bytesEqual, capacityFor, EMPTY_SLOTS, LIMIT_REACHED, MAX_BLOCK, MIN_CAPACITY } from "./common";

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
// Bytes of one entries record: [usize bytes pointer] (the record's byte length is the u32 before the bytes).
// @ts-ignore: decorator
@inline const I_ENTRY_BYTES: usize = 4;
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
@inline const I_NEXT_SLOTS: usize = 44;
// @ts-ignore: decorator
@inline const I_SEED: usize = 48;
// @ts-ignore: decorator
@inline const I_NEXT_ZEROED: usize = 56;
// @ts-ignore: decorator
@inline const I_HEADER: usize = 64;
// Slot arrays at least this large (2^17 slots, 1 MiB) are made ahead of their rehash (prepareRehash).
// @ts-ignore: decorator
@inline const PREPARE_MIN_SLOTS: u32 = 1 << 17;
// @ts-ignore: decorator
@inline const CHUNK_HEADER: usize = 16;
// @ts-ignore: decorator
@inline const FIRST_CHUNK: u32 = 1024;
// @ts-ignore: decorator
@inline const MAX_REGULAR_CHUNK: u32 = 1 << 20;
// Arena bytes a record takes besides the string's: its symbol and its byte length.
// @ts-ignore: decorator
@inline const RECORD_HEADER: u32 = 8;
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
  const next = load<usize>(t, I_NEXT_SLOTS);
  if (next != 0) heap.free(next);
  heap.free(t);
}

export function interner_size(t: usize): u32 {
  return load<u32>(t, I_SIZE);
}

/** Bytes this interner holds in linear memory (header, slots, entries, arena chunks). */
export function interner_memory_bytes(t: usize): usize {
  const slots = load<usize>(t, I_SLOTS);
  const slotBytes: usize = slots == EMPTY_SLOTS ? 0 : (<usize>load<u32>(t, I_MASK) + 1) << 3;
  const nextBytes: usize = load<usize>(t, I_NEXT_SLOTS) == 0 ? 0 : slotBytes << 1;
  return (
    I_HEADER +
    slotBytes +
    nextBytes +
    (<usize>load<u32>(t, I_ENTRY_CAP)) * I_ENTRY_BYTES +
    load<u32>(t, I_ARENA_BYTES)
  );
}

/**
 * Makes room for `extraSymbols` more symbols and `extraBytes` more contiguous arena bytes, so that inserting them
 * allocates nothing. Returns false, changing nothing, if that would pass a hard limit. Each stage commits on its
 * own, so a trap (memory.grow failed) leaves a valid interner.
 */
export function interner_reserve(t: usize, extraSymbols: u32, extraBytes: u32): bool {
  // Every new symbol's record carries its symbol too.
  const recordBytes: u64 = <u64>extraBytes + <u64>extraSymbols * RECORD_HEADER;
  if (recordBytes > 0xffffffff) return false;
  extraBytes = <u32>recordBytes;
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
  else prepareRehash(t, <u32>need);
  if (newEntryCap != <u64>entryCap) {
    const old = load<usize>(t, I_ENTRIES);
    const bytes = <usize>newEntryCap * I_ENTRY_BYTES;
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
/**
 * Makes the next slot array (twice the size) ahead of its rehash and zeroes it a share at a time, from half full
 * to the grow bound, so that the rehash itself only places the entries. A rehash that allocated and zeroed its
 * array in one call touched every page of it at once: at 786,432 symbols a 16 MiB array, 4,096 new pages at ~15 µs
 * each on the bench machine, most of the 89 ms the event loop then waited in a 1M-tuple load. For tables of
 * PREPARE_MIN_SLOTS and more; smaller ones rehash in well under a millisecond.
 */
function prepareRehash(t: usize, need: u32): void {
  const capacity = load<u32>(t, I_MASK) + 1;
  if (capacity < PREPARE_MIN_SLOTS || capacity >= (MAX_BLOCK >> 3) >> 1) return;
  const start = capacity >> 1;
  const growAt = load<u32>(t, I_GROW_AT);
  if (need <= start || growAt <= start) return;
  const total: usize = (<usize>capacity) << 4;
  let next = load<usize>(t, I_NEXT_SLOTS);
  if (next == 0) {
    next = heap.alloc(total);
    store<usize>(t, next, I_NEXT_SLOTS);
    store<u32>(t, 0, I_NEXT_ZEROED);
  }
  // Zeroed in proportion to how far `need` has come from half full to the bound: all of it by the bound.
  const share = min<u64>(<u64>need - start, <u64>growAt - start);
  const target = <usize>((<u64>total * share) / (<u64>growAt - start)) & ~(<usize>7);
  const done = <usize>load<u32>(t, I_NEXT_ZEROED);
  if (target > done) {
    memory.fill(next + done, 0, target - done);
    store<u32>(t, <u32>target, I_NEXT_ZEROED);
  }
}

function interner_rehash(t: usize, capacity: u32): void {
  let slots = load<usize>(t, I_NEXT_SLOTS);
  const bytes: usize = (<usize>capacity) << 3;
  const oldBytes: usize = (<usize>load<u32>(t, I_MASK) + 1) << 3;
  if (slots != 0 && bytes == oldBytes << 1) {
    // Made ahead (prepareRehash): only what is not zeroed yet.
    const done = <usize>load<u32>(t, I_NEXT_ZEROED);
    if (done < bytes) memory.fill(slots + done, 0, bytes - done);
  } else {
    if (slots != 0) {
      // Made ahead for another size (a batch that more than doubled the table): forgotten before it is freed,
      // so a trap in the allocation below leaves no pointer to freed memory.
      store<usize>(t, 0, I_NEXT_SLOTS);
      heap.free(slots);
    }
    slots = heap.alloc(bytes);
    memory.fill(slots, 0, bytes);
  }
  store<usize>(t, 0, I_NEXT_SLOTS);
  store<u32>(t, 0, I_NEXT_ZEROED);
  const mask = capacity - 1;
  const old = load<usize>(t, I_SLOTS);
  const oldCapacity = load<u32>(t, I_MASK) + 1;
  for (let i: u32 = 0; i < oldCapacity; i++) {
    const s = load<u64>(old + ((<usize>i) << 3));
    if (s >>> 32 == 0) continue;
    let j = homeOf(<u32>s) & mask;
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

/** A tag's home slot is this & mask. */
// @ts-ignore: decorator
@inline
function homeOf(tag: u32): u32 {
  return tag;
}

/** Whether the record holds the `len` bytes at `key` (its length is beside its symbol, in the same line). */
// @ts-ignore: decorator
@inline
function recordEquals(record: usize, key: usize, len: u32): bool {
  return load<u32>(record, 4) == len && bytesEqual(record + RECORD_HEADER, key, len);
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
  let i = homeOf(tag) & mask;
  while (true) {
    const s = load<u64>(slots + ((<usize>i) << 3));
    const record = <usize>(s >>> 32);
    if (record == 0) return -1 - <i64>i;
    if (<u32>s == tag && recordEquals(record, key, len)) return <i64>load<u32>(record);
    i = (i + 1) & mask;
  }
}

/** Appends a string known to be absent at empty slot `slot`; room was reserved. Returns its new symbol. */
// @ts-ignore: decorator
@inline
function interner_insert_at(t: usize, slot: u32, key: usize, len: u32, tag: u32): u32 {
  const symbol = load<u32>(t, I_SIZE);
  const record = load<usize>(t, I_CURSOR);
  const bytes = record + RECORD_HEADER;
  store<u32>(record, symbol);
  store<u32>(record, len, 4);
  memory.copy(bytes, key, len);
  store<usize>(t, bytes + len, I_CURSOR);
  store<usize>(load<usize>(t, I_ENTRIES) + (<usize>symbol) * I_ENTRY_BYTES, bytes);
  store<u64>(load<usize>(t, I_SLOTS) + ((<usize>slot) << 3), ((<u64>record) << 32) | tag);
  store<u32>(t, symbol + 1, I_SIZE);
  return symbol;
}

/** True if one more string of `len` bytes can be inserted without allocating. */
// @ts-ignore: decorator
@inline
function interner_has_room(t: usize, symbols: u32, bytes: u64): bool {
  const need: u64 = <u64>load<u32>(t, I_SIZE) + symbols;
  bytes += <u64>symbols * RECORD_HEADER;
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
    if (misses > 0 && !interner_reserve(t, misses, <u32>missBytes)) return LIMIT_REACHED;
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

/**
 * What the touching passes of interner_lookup_batch read, kept so that the optimizer cannot drop their loads.
 */
let touched: u32 = 0;

/**
 * Looks up `count` packed strings (layout as interner_intern_batch), writing symbols or ABSENT; returns hits.
 *
 * A lookup reads two places in turn (the home slot, then the record it names: the symbol and its bytes), each a
 * cache miss for a string not asked about lately (a batch's objects), and one lookup's reads cannot start before
 * the previous one's finish when done one string at a time. So the batch goes over its strings in passes first:
 * the tags and home slots, then the records those slots name. Within a pass the reads of different strings do
 * not depend on each other and the processor overlaps their misses; the last pass, the lookup itself, then finds
 * them in cache. The touching passes only read, and only guide the cache: the answer is the lookup's.
 */
export function interner_lookup_batch(t: usize, bytes: usize, lens: usize, count: u32, out: usize): u32 {
  const slots = load<usize>(t, I_SLOTS);
  const mask = load<u32>(t, I_MASK);
  let sink: u32 = 0;
  let key = bytes;
  for (let i: u32 = 0; i < count; i++) {
    const len = load<u32>(lens + ((<usize>i) << 2));
    const tag = interner_tag(t, key, len);
    store<u32>(out + ((<usize>i) << 2), tag);
    sink ^= load<u32>(slots + ((<usize>(homeOf(tag) & mask)) << 3), 4);
    key += len;
  }
  for (let i: u32 = 0; i < count; i++) {
    const tag = load<u32>(out + ((<usize>i) << 2));
    const s = load<u64>(slots + ((<usize>(homeOf(tag) & mask)) << 3));
    const record = <usize>(s >>> 32);
    if (record != 0 && <u32>s == tag) sink ^= load<u32>(record);
  }
  touched = sink;
  let hits: u32 = 0;
  key = bytes;
  for (let i: u32 = 0; i < count; i++) {
    const len = load<u32>(lens + ((<usize>i) << 2));
    const found = interner_locate(t, key, len, load<u32>(out + ((<usize>i) << 2)));
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
