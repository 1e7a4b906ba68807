// A bounded cache over raw memory: 4-way set-associative, CLOCK replacement, and invalidation by stamps. The
// evaluator's kept facts (graph/facts.ts) and object plans (graph/plans.ts) are both this table with different
// keys: one implementation so that their growth, eviction and invalidation rules cannot drift apart.
//
// Slot (16 bytes; a bucket is 4 slots, one cache line):
//   [u32 key0 (ABSENT = empty)][u32 key1][u32 key2 or payload][u32 stamp << 10 | referenced << 9 | value]
// A table keys on 2 or 3 words. With 2, the third word is a payload the owner chooses (with `owns`, a heap block
// whose first u32 is its size in bytes, or one of the PAYLOAD_MARKERS values that are not addresses); the low 9
// bits of the last word are a small value either way.
//
// Stamps: an entry counts only while its stamp equals the table's base plus the epoch its owner gives for the
// entry's group (the graph keeps one epoch per node and bumps it on a change below the node). Forgetting every
// entry is base + 1, O(1); base and epochs only grow, so an entry that stopped counting never counts again. Both
// stay below STAMP_HALF (the owner wipes before), so a stamp fits its 22 bits.
//
// Size: the table grows by doubling up to a capacity the caller passes (entries, a power of two ≥ 4); at the
// capacity a new entry replaces one in its bucket, CLOCK-style: a slot whose reference bit is clear (not read
// since the hand last passed) goes first, and passing a slot clears its bit, so entries in use survive and
// nothing is dropped wholesale.
//
// Header: [usize slots][u32 bucket mask][u32 held][u32 fill bound][u32 base][u32 hand][u32 key words][u32 owns]
//         [u64 seed][u32 payload bytes][u32 0].
import { hashU32x2 } from "./hash";

// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const T_SLOTS: usize = 0;
// @ts-ignore: decorator
@inline const T_MASK: usize = 4;
// @ts-ignore: decorator
@inline const T_HELD: usize = 8;
// @ts-ignore: decorator
@inline const T_GROW_AT: usize = 12;
// @ts-ignore: decorator
@inline const T_BASE: usize = 16;
// @ts-ignore: decorator
@inline const T_HAND: usize = 20;
// @ts-ignore: decorator
@inline const T_KEY_WORDS: usize = 24;
// @ts-ignore: decorator
@inline const T_OWNS: usize = 28;
// @ts-ignore: decorator
@inline const T_SEED: usize = 32;
// @ts-ignore: decorator
@inline const T_PAYLOAD_BYTES: usize = 40;
// @ts-ignore: decorator
@inline const T_HEADER: usize = 48;
// @ts-ignore: decorator
@inline const WAYS: u32 = 4;
// @ts-ignore: decorator
@inline const BUCKET_BYTES: usize = 64;
// @ts-ignore: decorator
@inline const FIRST_BUCKETS: u32 = 64;
// @ts-ignore: decorator
@inline const REFERENCED: u32 = 1 << 9;

/** Base and epochs stay below this, so stamps (their sums) fit 22 bits; the owner wipes before either reaches it. */
export const STAMP_HALF: u32 = 1 << 21;
/** Payload words below this are markers, not heap blocks: an owning table never frees them. */
export const PAYLOAD_MARKERS: u32 = 2;

/** The largest power of two ≤ limit, at least one bucket's worth (4): a capacity for tablePut. */
export function tableCapacity(limit: u32): u32 {
  let cap: u32 = WAYS;
  while (cap <= limit >> 1) cap <<= 1;
  return cap;
}

/** A new, empty table keyed on `keyWords` (2 or 3) words; `owns`: the payload word is a block the table frees. */
export function tableNew(keyWords: u32, owns: bool, seedLo: u32, seedHi: u32): usize {
  const t = heap.alloc(T_HEADER);
  memory.fill(t, 0, T_HEADER);
  store<u32>(t, keyWords, T_KEY_WORDS);
  store<u32>(t, owns ? 1 : 0, T_OWNS);
  store<u64>(t, ((<u64>seedHi) << 32) | (<u64>seedLo), T_SEED);
  return t;
}

/** Frees the table, its slots and every payload it owns. */
export function tableFree(t: usize): void {
  tableWipe(t);
  const slots = load<usize>(t, T_SLOTS);
  if (slots != 0) heap.free(slots);
  heap.free(t);
}

/** Bucket count (0 before the first entry). */
// @ts-ignore: decorator
@inline
function buckets(t: usize): u32 {
  return load<usize>(t, T_SLOTS) == 0 ? 0 : load<u32>(t, T_MASK) + 1;
}

// @ts-ignore: decorator
@inline
function bucketOf(t: usize, keyWords: u32, k0: u32, k1: u32, k2: u32): usize {
  const seed = load<u64>(t, T_SEED);
  const h = keyWords == 2 ? <u32>hashU32x2(k0, k1, seed) : <u32>hashU32x2(k0, k2, hashU32x2(k1, 0, seed));
  return load<usize>(t, T_SLOTS) + <usize>(h & load<u32>(t, T_MASK)) * BUCKET_BYTES;
}

// @ts-ignore: decorator
@inline
function holds(s: usize, keyWords: u32, k0: u32, k1: u32, k2: u32): bool {
  return load<u32>(s) == k0 && load<u32>(s, 4) == k1 && (keyWords == 2 || load<u32>(s, 8) == k2);
}

/**
 * The slot holding the key (current or not; see tableLive), or 0. `keyWords` is the table's own (the caller
 * passes it as a constant, so the lookup compiles to the one key form); `k2` is ignored by a 2-word table.
 */
// @ts-ignore: decorator
@inline
export function tableFind(t: usize, keyWords: u32, k0: u32, k1: u32, k2: u32): usize {
  if (load<usize>(t, T_SLOTS) == 0) return 0;
  const bucket = bucketOf(t, keyWords, k0, k1, k2);
  for (let w: u32 = 0; w < WAYS; w++) {
    const s = bucket + ((<usize>w) << 4);
    if (holds(s, keyWords, k0, k1, k2)) return s;
  }
  return 0;
}

/** Whether the found slot still counts under its group's `epoch`; if so marks it referenced (for CLOCK). */
// @ts-ignore: decorator
@inline
export function tableLive(t: usize, s: usize, epoch: u32): bool {
  const v = load<u32>(s, 12);
  if (v >>> 10 != load<u32>(t, T_BASE) + epoch) return false;
  if ((v & REFERENCED) == 0) store<u32>(s, v | REFERENCED, 12);
  return true;
}

/** A slot's small value (the low 9 bits of its last word). */
// @ts-ignore: decorator
@inline
export function slotValue(s: usize): u32 {
  return load<u32>(s, 12) & 0x1ff;
}

/** A 2-word table's payload word. */
// @ts-ignore: decorator
@inline
export function slotPayload(s: usize): u32 {
  return load<u32>(s, 8);
}

/**
 * Records an entry (key, or key and payload for a 2-word table; `value` < 512) under its group's current `epoch`,
 * the table holding at most `capacity` entries (a tableCapacity). Past the capacity (lowered since) the table
 * first shrinks to it, keeping the entries that fit when `keepOnShrink`.
 */
export function tablePut(
  t: usize,
  capacity: u32,
  keepOnShrink: bool,
  k0: u32,
  k1: u32,
  k2: u32,
  epoch: u32,
  value: u32,
): void {
  const n = buckets(t);
  if (n == 0 || (n << 2) > capacity) {
    tableResize(t, min<u32>(FIRST_BUCKETS, capacity >> 2), keepOnShrink);
  } else if (load<u32>(t, T_HELD) >= load<u32>(t, T_GROW_AT) && (n << 2) < capacity) {
    tableResize(t, n << 1, true);
  }
  const base = load<u32>(t, T_BASE);
  const keyWords = load<u32>(t, T_KEY_WORDS);
  const bucket = bucketOf(t, keyWords, k0, k1, k2);
  let slot: usize = 0;
  for (let w: u32 = 0; w < WAYS; w++) {
    const s = bucket + ((<usize>w) << 4);
    if (holds(s, keyWords, k0, k1, k2)) {
      slot = s;
      break;
    }
    // Empty, or stamped before the current base (so below base + any epoch): outdated for sure.
    if (slot == 0 && (load<u32>(s) == ABSENT || load<u32>(s, 12) >>> 10 < base)) slot = s;
  }
  if (slot == 0) {
    // CLOCK within the bucket: from the hand, the first slot not referenced since it was last passed.
    const hand = load<u32>(t, T_HAND);
    store<u32>(t, hand + 1, T_HAND);
    for (let i: u32 = 0; i < WAYS; i++) {
      const s = bucket + ((<usize>((hand + i) & (WAYS - 1))) << 4);
      const v = load<u32>(s, 12);
      if ((v & REFERENCED) == 0) {
        slot = s;
        break;
      }
      store<u32>(s, v & ~REFERENCED, 12);
    }
    if (slot == 0) slot = bucket + ((<usize>(hand & (WAYS - 1))) << 4);
  } else if (load<u32>(slot) == ABSENT || load<u32>(slot, 12) >>> 10 < base) {
    // A slot filled since the last clear: counted once, however often it is overwritten.
    store<u32>(t, load<u32>(t, T_HELD) + 1, T_HELD);
  }
  if (keyWords == 2 && load<u32>(t, T_OWNS) != 0) {
    if (load<u32>(slot) != ABSENT && load<u32>(slot, 8) != k2) release(t, slot);
    if (k2 >= PAYLOAD_MARKERS) store<u32>(t, load<u32>(t, T_PAYLOAD_BYTES) + load<u32>(<usize>k2), T_PAYLOAD_BYTES);
  }
  store<u32>(slot, k0);
  store<u32>(slot, k1, 4);
  store<u32>(slot, k2, 8);
  store<u32>(slot, ((base + epoch) << 10) | value, 12);
}

/**
 * Moves the table to `count` buckets, keeping the entries that still count for sure (stamped at or after the
 * base) when `keep`; an entry whose new bucket is full is dropped (the table is a cache), its payload released.
 * Allocates first: a trap leaves the table as it was.
 */
function tableResize(t: usize, count: u32, keep: bool): void {
  const bytes = <usize>count * BUCKET_BYTES;
  const next = heap.alloc(bytes);
  memory.fill(next, 0xff, bytes);
  const old = load<usize>(t, T_SLOTS);
  const end = old + <usize>buckets(t) * BUCKET_BYTES;
  const base = load<u32>(t, T_BASE);
  store<usize>(t, next, T_SLOTS);
  store<u32>(t, count - 1, T_MASK);
  store<u32>(t, 0, T_HELD);
  store<u32>(t, count * 3, T_GROW_AT); // 3/4 of the slots
  if (old == 0) return;
  const keyWords = load<u32>(t, T_KEY_WORDS);
  for (let s = old; s < end; s += 16) {
    const k0 = load<u32>(s);
    if (k0 == ABSENT) continue;
    let moved = false;
    if (keep && load<u32>(s, 12) >>> 10 >= base) {
      const bucket = bucketOf(t, keyWords, k0, load<u32>(s, 4), load<u32>(s, 8));
      for (let w: u32 = 0; w < WAYS; w++) {
        const d = bucket + ((<usize>w) << 4);
        if (load<u32>(d) != ABSENT) continue;
        store<u64>(d, load<u64>(s));
        store<u64>(d, load<u64>(s, 8), 8);
        store<u32>(t, load<u32>(t, T_HELD) + 1, T_HELD);
        moved = true;
        break;
      }
    }
    if (!moved) release(t, s);
  }
  heap.free(old);
}

/** Empties the table for real: every slot free (payloads released), base 0. */
export function tableWipe(t: usize): void {
  const slots = load<usize>(t, T_SLOTS);
  if (slots != 0) {
    const end = slots + <usize>buckets(t) * BUCKET_BYTES;
    for (let s = slots; s < end; s += 16) release(t, s);
    memory.fill(slots, 0xff, end - slots);
  }
  store<u32>(t, 0, T_BASE);
  store<u32>(t, 0, T_HELD);
}

/** Forgets every entry in O(1) (base + 1); false, changing nothing, when the base is spent and a wipe is due. */
export function tableForget(t: usize): bool {
  const base = load<u32>(t, T_BASE);
  if (base + 1 >= STAMP_HALF) return false;
  store<u32>(t, base + 1, T_BASE);
  store<u32>(t, 0, T_HELD);
  return true;
}

/** Slots filled since the last clear (an entry that stopped counting is held until its slot is reused). */
export function tableHeld(t: usize): u32 {
  return load<u32>(t, T_HELD);
}

/** Bytes of the table: header, slots and the payload blocks it owns. */
export function tableBytes(t: usize): usize {
  return T_HEADER + <usize>buckets(t) * BUCKET_BYTES + load<u32>(t, T_PAYLOAD_BYTES);
}

// ---------------------------------------------------------------------------------------------------------------
// Owned payloads. A reader may be using a payload (the evaluator replaying a plan) while the table drops it (a
// plan built deeper in the same check took its slot): between tableBeginUse and tableEndUse releases are only
// noted, and freed at the end. Kernel-wide, as a check is.
// ---------------------------------------------------------------------------------------------------------------

let deferring: bool = false;
let pending: usize = 0;
let pendingLen: u32 = 0;
let pendingCap: u32 = 0;

/** Frees the payload a slot owns, if any (later, while a reader is in). */
function release(t: usize, s: usize): void {
  if (load<u32>(t, T_OWNS) == 0 || load<u32>(s) == ABSENT) return;
  const p = load<u32>(s, 8);
  if (p < PAYLOAD_MARKERS) return;
  store<u32>(t, load<u32>(t, T_PAYLOAD_BYTES) - load<u32>(<usize>p), T_PAYLOAD_BYTES);
  if (!deferring) {
    heap.free(<usize>p);
    return;
  }
  if (pendingLen == pendingCap) {
    const cap = pendingCap == 0 ? 64 : pendingCap << 1;
    pending = pending == 0 ? heap.alloc((<usize>cap) << 2) : heap.realloc(pending, (<usize>cap) << 2);
    pendingCap = cap;
  }
  store<u32>(pending + ((<usize>pendingLen) << 2), p);
  pendingLen++;
}

/** A reader starts using payloads: releases wait until tableEndUse. */
export function tableBeginUse(): void {
  deferring = true;
}

/** The reader is done: frees the payloads released meanwhile. */
export function tableEndUse(): void {
  deferring = false;
  for (let i: u32 = 0; i < pendingLen; i++) heap.free(<usize>load<u32>(pending + ((<usize>i) << 2)));
  pendingLen = 0;
}
