export { alloc, free } from "./lib/memory";

// Needle index: 64-bit key (a BLAKE3 prefix) -> (volume, offset/8, length/8), at about 15 bytes of linear memory per
// entry. The TypeScript twin is test/twins/needle.ts.
//
// Layout. The bulk of the index ("base") is one logical array sorted by key, cut into chunks of one 64 KiB page
// each (4681 entries of 14 bytes). A directory of 2^16 u32 gives the first base index of every top-16-bit bucket,
// so an entry keeps only the low 48 bits of its key; BLAKE3 keys are uniform, so a lookup interpolates inside
// its bucket and finds the key within a probe or two. New keys go to a small open-addressing table ("L0"); when
// it fills, it is sorted and merged into the base in one streaming pass that writes fresh chunk pages and frees
// each input page as soon as it is consumed (at most a few pages in flight). Deletes of base entries mark them
// dead in place; the next merge drops them.
//
// Memory. Every large structure lives in whole pages this module obtains with memory.grow and recycles through
// its own free list: the AssemblyScript allocator doubles linear memory when it grows, which would double the
// bytes per entry. heap.alloc is used once at init (so the allocator claims only the first page); callers must
// not use alloc/free of this kernel for large buffers.
//
// Base entry (14 bytes, little-endian):
//   [0..6)   key, low 48 bits (the top 16 are the directory bucket)
//   [6..10)  offset/8 in the volume (u32: a volume reaches 32 GiB)
//   [10..14) volume (14 bits) << 18 | length/8 (18 bits); 0 = dead. Length LEN_LARGE means "look it up elsewhere"
//            (needles of 2 MiB and more: the caller keeps their length).
// L0 slot (16 bytes): key u64, offset/8 u32, packed u32 (0 = empty).

const PAGE: usize = 65536;
const ENTRY: usize = 14;
const CHUNK_ENTRIES: u32 = 4681; // floor(65536 / 14)
const DIR_BITS: u32 = 16;
const DIR_SIZE: u32 = 1 << DIR_BITS;
const KEY48: u64 = 0xffffffffffff;
const L0_BITS: u32 = 13;
const L0_SLOTS: u32 = 1 << L0_BITS;
const L0_MASK: u32 = L0_SLOTS - 1;
const L0_MAX_LIMIT: u32 = 4096;
const BATCH: u32 = 4096;
const VOLUME_BITS: u32 = 14;
const LEN_BITS: u32 = 18;
export const LEN_LARGE: u32 = (1 << LEN_BITS) - 1;
export const MAX_VOLUME: u32 = (1 << VOLUME_BITS) - 1;

let initialized = false;
let freePages: usize = 0; // singly linked through the first 4 bytes of each free page
let freePageCount: u32 = 0;
let dir: usize = 0; // DIR_SIZE u32
let table: usize = 0; // u32 page address per base chunk
let tablePages: u32 = 0;
let baseCount: u32 = 0;
let baseDead: u32 = 0;
let l0: usize = 0;
let l0Count: u32 = 0;
let l0Max: u32 = L0_MAX_LIMIT;
let sortBuf: usize = 0; // L0_MAX_LIMIT records of 16 bytes: key u64, slot u32, pad
let batchKeys: usize = 0; // BATCH keys (u64)
let batchOut: usize = 0; // BATCH results: offset/8 u32, packed u32
let resultOff8: u32 = 0;
let scratch: usize = 0; // GROUP pairs of u32 for lookupBatch's first phase
let sink: u32 = 0; // keeps phase 1's loads from being optimized away
const GROUP: u32 = 32;

function grabPages(n: u32): usize {
  const before = memory.grow(<i32>n);
  if (before < 0) unreachable();
  return (<usize>before) * PAGE;
}

function takePage(): usize {
  if (freePages != 0) {
    const page = freePages;
    freePages = load<u32>(page);
    freePageCount--;
    return page;
  }
  return grabPages(1);
}

function givePage(page: usize): void {
  store<u32>(page, <u32>freePages);
  freePages = page;
  freePageCount++;
}

/** Sets up the index (idempotent). Must run before any other call. */
export function init(): void {
  if (initialized) return;
  initialized = true;
  // The allocator's only use: it claims its first page now, never the pages grown below.
  scratch = heap.alloc(<usize>GROUP * 8);
  dir = grabPages((DIR_SIZE * 4) / <u32>PAGE);
  l0 = grabPages((L0_SLOTS * 16) / <u32>PAGE);
  sortBuf = grabPages(1);
  batchKeys = grabPages(1);
  batchOut = batchKeys + BATCH * 8;
  table = grabPages(1);
  tablePages = 1;
}

// @ts-ignore: decorator
@inline
function entryPtr(i: u32): usize {
  const chunk = i / CHUNK_ENTRIES;
  return <usize>load<u32>(table + (<usize>chunk << 2)) + <usize>(i - chunk * CHUNK_ENTRIES) * ENTRY;
}

// @ts-ignore: decorator
@inline
function key48At(p: usize): u64 {
  return load<u64>(p) & KEY48;
}

// @ts-ignore: decorator
@inline
function bucketEnd(b: u32): u32 {
  return b + 1 < DIR_SIZE ? load<u32>(dir + (<usize>(b + 1) << 2)) : baseCount;
}

/** Index of `key` in the base (dead or alive), or -1. */
function baseFind(key: u64): i32 {
  const b = <u32>(key >> 48);
  const lo = load<u32>(dir + (<usize>b << 2));
  const hi = bucketEnd(b);
  if (lo >= hi) return -1;
  const k = key & KEY48;
  const n = hi - lo;
  let i = lo + <u32>(((k >> 16) * <u64>n) >> 32);
  let kk = key48At(entryPtr(i));
  if (kk == k) return <i32>i;
  if (kk < k) {
    while (++i < hi) {
      kk = key48At(entryPtr(i));
      if (kk == k) return <i32>i;
      if (kk > k) return -1;
    }
  } else {
    while (i > lo) {
      kk = key48At(entryPtr(--i));
      if (kk == k) return <i32>i;
      if (kk < k) return -1;
    }
  }
  return -1;
}

// @ts-ignore: decorator
@inline
function l0Home(key: u64): u32 {
  return <u32>((key * 0x9e3779b97f4a7c15) >> (64 - L0_BITS));
}

/** Slot address of `key` in L0, or 0. */
function l0Find(key: u64): usize {
  let s = l0Home(key);
  while (true) {
    const p = l0 + (<usize>s << 4);
    if (load<u32>(p, 12) == 0) return 0;
    if (load<u64>(p) == key) return p;
    s = (s + 1) & L0_MASK;
  }
  return 0;
}

function l0Remove(p: usize): void {
  // Backward-shift deletion keeps linear probing free of tombstones.
  let hole = <u32>((p - l0) >> 4);
  let s = (hole + 1) & L0_MASK;
  while (true) {
    const q = l0 + (<usize>s << 4);
    if (load<u32>(q, 12) == 0) break;
    const home = l0Home(load<u64>(q));
    // Move q into the hole when its home does not lie cyclically in (hole, s].
    if (((s - home) & L0_MASK) >= ((s - hole) & L0_MASK)) {
      memory.copy(l0 + (<usize>hole << 4), q, 16);
      hole = s;
    }
    s = (s + 1) & L0_MASK;
  }
  store<u32>(l0 + (<usize>hole << 4), 0, 12);
  l0Count--;
}

// @ts-ignore: decorator
@inline
function makeKey(lo: u32, hi: u32): u64 {
  return ((<u64>hi) << 32) | <u64>lo;
}

/**
 * Sets key -> (volume, offset/8, length/8). Returns 1 when the key was absent, 0 when an entry was replaced.
 * volume must be 1..MAX_VOLUME and len8 1..LEN_LARGE (checked by the caller).
 */
export function set(lo: u32, hi: u32, volume: u32, off8: u32, len8: u32): i32 {
  const key = makeKey(lo, hi);
  const packed = (volume << LEN_BITS) | len8;
  const i = baseFind(key);
  if (i >= 0) {
    const p = entryPtr(<u32>i);
    const wasDead = load<u32>(p, 10) == 0;
    store<u32>(p, off8, 6);
    store<u32>(p, packed, 10);
    if (wasDead) {
      baseDead--;
      return 1;
    }
    return 0;
  }
  const found = l0Find(key);
  if (found != 0) {
    store<u32>(found, off8, 8);
    store<u32>(found, packed, 12);
    return 0;
  }
  let s = l0Home(key);
  while (load<u32>(l0 + (<usize>s << 4), 12) != 0) s = (s + 1) & L0_MASK;
  const p = l0 + (<usize>s << 4);
  store<u64>(p, key);
  store<u32>(p, off8, 8);
  store<u32>(p, packed, 12);
  l0Count++;
  if (l0Count >= l0Max) merge();
  return 1;
}

/** Looks key up: returns the packed (volume << 18 | length/8), 0 when absent; resultOffset8() gives the offset/8. */
export function get(lo: u32, hi: u32): u32 {
  const key = makeKey(lo, hi);
  if (l0Count != 0) {
    const p = l0Find(key);
    if (p != 0) {
      resultOff8 = load<u32>(p, 8);
      return load<u32>(p, 12);
    }
  }
  const i = baseFind(key);
  if (i < 0) return 0;
  const p = entryPtr(<u32>i);
  resultOff8 = load<u32>(p, 6);
  return load<u32>(p, 10);
}

export function resultOffset8(): u32 {
  return resultOff8;
}

/** Removes key; returns 1 when it was present. */
export function remove(lo: u32, hi: u32): i32 {
  const key = makeKey(lo, hi);
  if (l0Count != 0) {
    const p = l0Find(key);
    if (p != 0) {
      l0Remove(p);
      return 1;
    }
  }
  const i = baseFind(key);
  if (i < 0) return 0;
  const p = entryPtr(<u32>i);
  if (load<u32>(p, 10) == 0) return 0;
  store<u32>(p, 0, 10);
  baseDead++;
  if (baseDead >= 4096 && baseDead > baseCount >> 3) merge();
  return 1;
}

/**
 * Looks up the first n (≤ batchCapacity) keys written at batchKeysPtr(); writes (offset/8 u32, packed u32) for each
 * at batchOutPtr() (packed 0 = absent). Returns how many were found.
 */
export function lookupBatch(n: u32): u32 {
  let found: u32 = 0;
  const useL0 = l0Count != 0;
  for (let g: u32 = 0; g < n; g += GROUP) {
    const m = min<u32>(GROUP, n - g);
    // Phase 1: the first probe of every key in the group, with no branch on what it loads, so the CPU overlaps
    // their cache misses (random entries of a large base miss the cache nearly every time).
    for (let j: u32 = 0; j < m && baseCount != 0; j++) {
      const key = load<u64>(batchKeys + (<usize>(g + j) << 3));
      const b = <u32>(key >> 48);
      const lo = load<u32>(dir + (<usize>b << 2));
      const hi = bucketEnd(b);
      const span = hi - lo;
      const guess = lo + <u32>((((key & KEY48) >> 16) * <u64>span) >> 32);
      const safe = select<u32>(guess, 0, span != 0);
      store<u32>(scratch + (<usize>j << 3), safe);
      store<u32>(scratch + (<usize>j << 3), load<u32>(entryPtr(safe), 0), 4);
    }
    // Phase 2: finish each lookup; its entries are in cache now.
    for (let j: u32 = 0; j < m; j++) {
      const key = load<u64>(batchKeys + (<usize>(g + j) << 3));
      const out = batchOut + (<usize>(g + j) << 3);
      let packed: u32 = 0;
      let off8: u32 = 0;
      let p: usize = 0;
      if (useL0) p = l0Find(key);
      if (p != 0) {
        off8 = load<u32>(p, 8);
        packed = load<u32>(p, 12);
      } else {
        const i = baseFind(key);
        if (i >= 0) {
          const q = entryPtr(<u32>i);
          off8 = load<u32>(q, 6);
          packed = load<u32>(q, 10);
        }
      }
      store<u32>(out, off8);
      store<u32>(out, packed, 4);
      found += <u32>(packed != 0);
    }
  }
  sink = load<u32>(scratch);
  return found;
}

export function batchKeysPtr(): usize {
  return batchKeys;
}
export function batchOutPtr(): usize {
  return batchOut;
}
export function batchCapacity(): u32 {
  return BATCH;
}

/** Live entries. */
export function count(): u32 {
  return baseCount - baseDead + l0Count;
}

/** Pages this index holds in its free list (spare, reused by the next merge). */
export function sparePages(): u32 {
  return freePageCount;
}

/** How many L0 entries trigger a merge (1..4096; tests use small values to exercise merges). */
export function setMergeThreshold(n: u32): void {
  l0Max = n < 1 ? 1 : n > L0_MAX_LIMIT ? L0_MAX_LIMIT : n;
  if (l0Count >= l0Max) merge();
}

/** Merges L0 into the base now (before iterating with readRange). */
export function flush(): void {
  if (l0Count != 0 || baseDead != 0) merge();
}

/** Drops every entry (pages go to the free list). */
export function clear(): void {
  const chunks = (baseCount + CHUNK_ENTRIES - 1) / CHUNK_ENTRIES;
  for (let c: u32 = 0; c < chunks; c++) givePage(<usize>load<u32>(table + (<usize>c << 2)));
  baseCount = 0;
  baseDead = 0;
  memory.fill(dir, 0, <usize>DIR_SIZE * 4);
  memory.fill(l0, 0, <usize>L0_SLOTS * 16);
  l0Count = 0;
}

/**
 * Writes up to n (≤ batchCapacity / 2) base entries from index `start` at batchOutPtr() as 16-byte records
 * (key u64, offset/8 u32, packed u32); dead entries are included with packed 0. Call flush() first so that every
 * entry is in the base. Returns how many were written (0 at the end).
 */
export function readRange(start: u32, n: u32): u32 {
  if (start >= baseCount) return 0;
  if (n > BATCH / 2) n = BATCH / 2;
  if (n > baseCount - start) n = baseCount - start;
  // The bucket of `start`: the last b with dir[b] <= start.
  let lo: u32 = 0;
  let hi: u32 = DIR_SIZE - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (load<u32>(dir + (<usize>mid << 2)) <= start) lo = mid;
    else hi = mid - 1;
  }
  let b = lo;
  let end = bucketEnd(b);
  for (let j: u32 = 0; j < n; j++) {
    const i = start + j;
    while (i >= end) {
      b++;
      end = bucketEnd(b);
    }
    const p = entryPtr(i);
    const out = batchOut + (<usize>j << 4);
    store<u64>(out, ((<u64>b) << 48) | key48At(p));
    store<u32>(out, load<u32>(p, 6), 8);
    store<u32>(out, load<u32>(p, 10), 12);
  }
  return n;
}

export function baseSize(): u32 {
  return baseCount;
}

// ---- merge -------------------------------------------------------------------------------------------------

function sortRecords(lo: i32, hi: i32): void {
  // Quicksort of 16-byte records by their u64 key, on [lo, hi]; recursion on the smaller side bounds the depth.
  while (hi - lo > 16) {
    const pivot = load<u64>(sortBuf + (<usize>((lo + hi) >>> 1) << 4));
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (load<u64>(sortBuf + (<usize>i << 4)) < pivot) i++;
      while (load<u64>(sortBuf + (<usize>j << 4)) > pivot) j--;
      if (i <= j) {
        swapRecords(i, j);
        i++;
        j--;
      }
    }
    if (j - lo < hi - i) {
      sortRecords(lo, j);
      lo = i;
    } else {
      sortRecords(i, hi);
      hi = j;
    }
  }
  for (let i = lo + 1; i <= hi; i++) {
    const k = load<u64>(sortBuf + (<usize>i << 4));
    const v = load<u64>(sortBuf + (<usize>i << 4), 8);
    let j = i - 1;
    while (j >= lo && load<u64>(sortBuf + (<usize>j << 4)) > k) {
      memory.copy(sortBuf + (<usize>(j + 1) << 4), sortBuf + (<usize>j << 4), 16);
      j--;
    }
    store<u64>(sortBuf + (<usize>(j + 1) << 4), k);
    store<u64>(sortBuf + (<usize>(j + 1) << 4), v, 8);
  }
}

// @ts-ignore: decorator
@inline
function swapRecords(i: i32, j: i32): void {
  const a = sortBuf + (<usize>i << 4);
  const b = sortBuf + (<usize>j << 4);
  const k = load<u64>(a);
  const v = load<u64>(a, 8);
  store<u64>(a, load<u64>(b));
  store<u64>(a, load<u64>(b, 8), 8);
  store<u64>(b, k);
  store<u64>(b, v, 8);
}

let outTable: usize = 0;
let outCount: u32 = 0;
let outPage: usize = 0;
let outBucket: i32 = -1;

// @ts-ignore: decorator
@inline
function emit(key: u64, off8: u32, packed: u32): void {
  const slot = outCount % CHUNK_ENTRIES;
  if (slot == 0) {
    outPage = takePage();
    store<u32>(outTable + (<usize>(outCount / CHUNK_ENTRIES) << 2), <u32>outPage);
  }
  const b = <i32>(key >> 48);
  // dir[x] for the buckets this entry opens; never ahead of the input's bucket (see merge()).
  while (outBucket < b) {
    outBucket++;
    store<u32>(dir + (<usize>outBucket << 2), outCount);
  }
  const p = outPage + <usize>slot * ENTRY;
  store<u32>(p, <u32>key);
  store<u16>(p, <u16>(key >> 32), 4);
  store<u32>(p, off8, 6);
  store<u32>(p, packed, 10);
  outCount++;
}

function merge(): void {
  // 1. L0, sorted by key.
  let n: i32 = 0;
  for (let s: u32 = 0; s < L0_SLOTS; s++) {
    const p = l0 + (<usize>s << 4);
    if (load<u32>(p, 12) != 0) {
      store<u64>(sortBuf + (<usize>n << 4), load<u64>(p));
      store<u32>(sortBuf + (<usize>n << 4), s, 8);
      n++;
    }
  }
  if (n > 1) sortRecords(0, n - 1);

  // 2. A chunk table for the result (a fresh run of pages when it needs more than one).
  const total = baseCount - baseDead + <u32>n;
  const chunks = (total + CHUNK_ENTRIES - 1) / CHUNK_ENTRIES;
  const pagesNeeded = max<u32>(1, (chunks * 4 + <u32>PAGE - 1) / <u32>PAGE);
  outTable = pagesNeeded == 1 ? takePage() : grabPages(pagesNeeded);
  outCount = 0;
  outBucket = -1;

  // 3. Stream both inputs in key order. The directory is rewritten in place: emit() writes dir[x] only for
  // buckets up to the one being emitted, which is never past the input's current bucket, and the input reads
  // dir[ib + 1] before any write can reach it.
  let i: u32 = 0;
  let ib: u32 = 0;
  let ibEnd = bucketEnd(0);
  let j: i32 = 0;
  while (true) {
    // Next live base entry.
    while (i < baseCount) {
      if (i >= ibEnd) {
        ib++;
        ibEnd = bucketEnd(ib);
        continue;
      }
      if (load<u32>(entryPtr(i), 10) != 0) break;
      i = advanceInput(i);
    }
    const haveBase = i < baseCount;
    const haveL0 = j < n;
    if (!haveBase && !haveL0) break;
    let baseKey: u64 = 0;
    if (haveBase) baseKey = ((<u64>ib) << 48) | key48At(entryPtr(i));
    if (haveL0 && (!haveBase || load<u64>(sortBuf + (<usize>j << 4)) < baseKey)) {
      const slot = l0 + (<usize>load<u32>(sortBuf + (<usize>j << 4), 8) << 4);
      emit(load<u64>(slot), load<u32>(slot, 8), load<u32>(slot, 12));
      j++;
    } else {
      const p = entryPtr(i);
      emit(baseKey, load<u32>(p, 6), load<u32>(p, 10));
      i = advanceInput(i);
    }
  }
  // Input pages not yet released (the last, partly read one), then the old table.
  const oldChunks = (baseCount + CHUNK_ENTRIES - 1) / CHUNK_ENTRIES;
  if (baseCount > 0) {
    const consumed = i / CHUNK_ENTRIES; // chunks already given back by advanceInput
    for (let c = consumed; c < oldChunks; c++) givePage(<usize>load<u32>(table + (<usize>c << 2)));
  }
  for (let t: u32 = 0; t < tablePages; t++) givePage(table + <usize>t * PAGE);
  while (outBucket < <i32>DIR_SIZE - 1) {
    outBucket++;
    store<u32>(dir + (<usize>outBucket << 2), outCount);
  }
  table = outTable;
  tablePages = pagesNeeded;
  baseCount = outCount;
  baseDead = 0;
  memory.fill(l0, 0, <usize>L0_SLOTS * 16);
  l0Count = 0;
}

/** i + 1, giving back input chunk pages as soon as their last entry has been read. */
// @ts-ignore: decorator
@inline
function advanceInput(i: u32): u32 {
  const next = i + 1;
  if (next % CHUNK_ENTRIES == 0) givePage(<usize>load<u32>(table + (<usize>(next / CHUNK_ENTRIES - 1) << 2)));
  return next;
}
