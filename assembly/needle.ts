// Needle index: 64-bit key (a BLAKE3 prefix) -> (volume, offset/8, length/8), at about 15 bytes of linear memory per
// entry. The TypeScript twin is test/twins/needle.ts.
//
// Layout. The bulk of the index ("base") is one logical array sorted by key, cut into chunks of one 64 KiB page
// each (4681 entries of 14 bytes). A directory of 2^16 u32 gives the first base index of every top-16-bit bucket,
// so an entry keeps only the low 48 bits of its key; BLAKE3 keys are uniform, so a lookup interpolates inside
// its bucket and finds the key within a probe or two. New keys go to an open-addressing table ("L0"); when it
// fills, it is sorted in place and merged into the base in one streaming pass that copies the base's runs
// between L0 keys with memory.copy into fresh chunk pages and frees each input page as soon as it is consumed (at
// most a few pages in flight). Deletes of base entries mark them dead in place; the next merge drops them.
//
// Merge cost. A merge moves the whole base, so L0's capacity grows with the base (its table takes at most ≈0.75
// bytes per base entry): a merge comes every ≈base/40 inserts, and building an index of N entries one set() at a
// time (what opening a store does) moves O(N) entries in all instead of O(N²/4096).
//
// Memory. Every large structure lives in whole pages this module obtains with memory.grow and recycles through
// its own free list: the AssemblyScript allocator doubles linear memory when it grows, which would double the
// bytes per entry. heap.alloc is used once at init (so the allocator claims only the first page), and the kernel
// exports no alloc/free: the TypeScript side passes keys and reads results through the batch buffers only.
//
// Base entry (14 bytes, little-endian):
//   [0..6)   key, low 48 bits (the top 16 are the directory bucket)
//   [6..10)  offset/8 in the volume (u32: a volume reaches 32 GiB)
//   [10..14) volume (14 bits) << 18 | length/8 (18 bits); 0 = dead. Length LEN_LARGE means "look it up elsewhere"
//            (needles of 2 MiB and more: the caller keeps their length).
// L0 slot (16 bytes): key u64, offset/8 u32, packed u32 (0 = empty). Linear probing, load ≤ 3/4.

const PAGE: usize = 65536;
const ENTRY: usize = 14;
const CHUNK_ENTRIES: u32 = 4681; // floor(65536 / 14)
const DIR_BITS: u32 = 16;
const DIR_SIZE: u32 = 1 << DIR_BITS;
const KEY48: u64 = 0xffffffffffff;
const L0_MIN_BITS: u32 = 13;
const L0_MAX_BITS: u32 = 24;
// Shared with src/kernels/abi/needle.ts (the TypeScript side packs batches and decodes results with them).
const BATCH: u32 = 4096; // keys one lookupBatch call takes; readRange returns at most half as many records
const VOLUME_BITS: u32 = 14;
const LEN_BITS: u32 = 18;
const LEN_LARGE: u32 = (1 << LEN_BITS) - 1;
const MAX_VOLUME: u32 = (1 << VOLUME_BITS) - 1;
const RESULT_BYTES: usize = 8; // lookupBatch's result a key: offset/8 u32, packed u32
const RANGE_RECORD_BYTES: usize = 16; // readRange's record: key u64, offset/8 u32, packed u32

let initialized = false;
let freePages: usize = 0; // singly linked through the first 4 bytes of each free page
let dir: usize = 0; // DIR_SIZE u32
let table: usize = 0; // u32 page address per base chunk
let tablePages: u32 = 0;
let baseCount: u32 = 0;
let baseDead: u32 = 0;
let l0: usize = 0;
let l0Bits: u32 = L0_MIN_BITS;
let l0Slots: u32 = 1 << L0_MIN_BITS;
let l0Mask: u32 = l0Slots - 1;
let l0Count: u32 = 0;
let l0Max: u32 = (l0Slots >> 2) * 3;
let l0Override: u32 = 0; // setMergeThreshold's value (tests); 0 = by capacity
let pageLimit: u32 = 0; // setPageLimit's value (tests); 0 = no limit but memory.grow's own
// The key of the last get() that found nothing, neither in L0 nor in the base (dead entries count as found).
// Only set() of that key can make it present, so set() trusts the memo once and drops it.
let missKey: u64 = 0;
let missValid = false;
let batchKeys: usize = 0; // BATCH keys (u64)
let batchOut: usize = 0; // BATCH results: offset/8 u32, packed u32
let resultOff8: u32 = 0;
let scratch: usize = 0; // GROUP records of 16 bytes for lookupBatch's first passes
let sortCounts: usize = 0; // 8 levels of 256 heads + 256 ends (u32) for sortRecords
const GROUP: u32 = 32;

function grabPages(n: u32): usize {
  // setPageLimit's test trap: the same `unreachable` a failed memory.grow hits below.
  if (pageLimit != 0 && <u32>memory.size() + n > pageLimit) unreachable();
  const before = memory.grow(<i32>n);
  if (before < 0) unreachable();
  return (<usize>before) * PAGE;
}

function takePage(): usize {
  if (freePages != 0) {
    const page = freePages;
    freePages = load<u32>(page);
    return page;
  }
  return grabPages(1);
}

function givePage(page: usize): void {
  store<u32>(page, <u32>freePages);
  freePages = page;
}

/** Sets up the index (idempotent). Must run before any other call. */
export function init(): void {
  if (initialized) return;
  initialized = true;
  // The allocator's only use: it claims its first page now, never the pages grown below.
  scratch = heap.alloc(<usize>GROUP * 16 + 16);
  sortCounts = heap.alloc(8 << 11);
  dir = grabPages((DIR_SIZE * 4) / <u32>PAGE);
  l0 = grabPages((l0Slots * 16) / <u32>PAGE);
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
  return searchFrom(lo + <u32>(((k >> 16) * <u64>(hi - lo)) >> 32), lo, hi, k);
}

/** Index of the 48-bit remainder k in the bucket [lo, hi) (non-empty), searching outward from i; or -1. */
function searchFrom(i: u32, lo: u32, hi: u32, k: u64): i32 {
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
  return <u32>((key * 0x9e3779b97f4a7c15) >> (64 - l0Bits));
}

/** Slot address of `key` in L0, or 0. */
function l0Find(key: u64): usize {
  let s = l0Home(key);
  while (true) {
    const p = l0 + (<usize>s << 4);
    if (load<u32>(p, 12) == 0) return 0;
    if (load<u64>(p) == key) return p;
    s = (s + 1) & l0Mask;
  }
  return 0;
}

function l0Remove(p: usize): void {
  // Backward-shift deletion keeps linear probing free of tombstones.
  let hole = <u32>((p - l0) >> 4);
  let s = (hole + 1) & l0Mask;
  while (true) {
    const q = l0 + (<usize>s << 4);
    if (load<u32>(q, 12) == 0) break;
    const home = l0Home(load<u64>(q));
    // Move q into the hole when its home does not lie cyclically in (hole, s].
    if (((s - home) & l0Mask) >= ((s - hole) & l0Mask)) {
      memory.copy(l0 + (<usize>hole << 4), q, 16);
      hole = s;
    }
    s = (s + 1) & l0Mask;
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
  // get() then set() of a new key (what replaying a store's log does) searches the base once, not twice.
  const known = missValid && key == missKey;
  missValid = false;
  const i = known ? -1 : baseFind(key);
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
  const found: usize = known ? 0 : l0Find(key);
  if (found != 0) {
    store<u32>(found, off8, 8);
    store<u32>(found, packed, 12);
    return 0;
  }
  let s = l0Home(key);
  while (load<u32>(l0 + (<usize>s << 4), 12) != 0) s = (s + 1) & l0Mask;
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
  if (i < 0) {
    missKey = key;
    missValid = true;
    return 0;
  }
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
 * Looks up the first n (≤ BATCH) keys written at batchKeysPtr(); writes (offset/8 u32, packed u32) for each
 * at batchOutPtr() (both 0 when absent). Returns how many were found.
 */
export function lookupBatch(n: u32): u32 {
  let found: u32 = 0;
  const useL0 = l0Count != 0;
  const useBase = baseCount != 0;
  for (let g: u32 = 0; g < n; g += GROUP) {
    const m = min<u32>(GROUP, n - g);
    const keys = batchKeys + (<usize>g << 3);
    // Random entries of a large base miss the cache nearly every time, and so do directory slots; a lookup is
    // two dependent misses (directory, then entry). The passes below do each level for the whole group with no
    // branch on what they load, so the CPU overlaps the group's misses instead of taking them one by one.
    // Pass 1: the directory span of every key's bucket.
    if (useBase) {
      for (let j: u32 = 0; j < m; j++) {
        const b = <u32>(load<u64>(keys + (<usize>j << 3)) >> 48);
        const at = dir + (<usize>b << 2);
        const lo = load<u32>(at);
        // dir[b + 1] reads past the directory for the last bucket (into L0, still in bounds): select drops it.
        const hi = select<u32>(load<u32>(at, 4), baseCount, b + 1 < DIR_SIZE);
        const s = scratch + (<usize>j << 4);
        store<u32>(s, lo, 4);
        store<u32>(s, hi, 8);
      }
      // Pass 2: the interpolated position of every key in its bucket, and a touch of its entry's cache line.
      let touched: u32 = 0;
      for (let j: u32 = 0; j < m; j++) {
        const key = load<u64>(keys + (<usize>j << 3));
        const s = scratch + (<usize>j << 4);
        const lo = load<u32>(s, 4);
        const span = load<u32>(s, 8) - lo;
        const guess = lo + <u32>((((key & KEY48) >> 16) * <u64>span) >> 32);
        const i = select<u32>(guess, 0, span != 0);
        const p = entryPtr(i);
        store<u32>(s, i);
        store<u32>(s, <u32>p, 12);
        touched ^= load<u32>(p);
        if (useL0) touched ^= load<u32>(l0 + (<usize>l0Home(key) << 4), 12);
      }
      store<u32>(scratch + (<usize>GROUP << 4), touched); // an effect, so the touching loads stay
    }
    // Pass 3: finish each lookup; its lines are in cache now.
    for (let j: u32 = 0; j < m; j++) {
      const key = load<u64>(keys + (<usize>j << 3));
      const out = batchOut + <usize>(g + j) * RESULT_BYTES;
      let packed: u32 = 0;
      let off8: u32 = 0;
      let p: usize = 0;
      if (useL0) p = l0Find(key);
      if (p != 0) {
        off8 = load<u32>(p, 8);
        packed = load<u32>(p, 12);
      } else if (useBase) {
        const s = scratch + (<usize>j << 4);
        const lo = load<u32>(s, 4);
        const hi = load<u32>(s, 8);
        if (lo < hi) {
          const k = key & KEY48;
          let q = <usize>load<u32>(s, 12);
          if (key48At(q) != k) {
            const i = searchFrom(load<u32>(s), lo, hi, k);
            q = i >= 0 ? entryPtr(<u32>i) : 0;
          }
          if (q != 0) {
            off8 = load<u32>(q, 6);
            packed = load<u32>(q, 10);
          }
        }
      }
      store<u32>(out, select<u32>(off8, 0, packed != 0)); // a dead base entry keeps its old offset: not ours
      store<u32>(out, packed, 4);
      found += <u32>(packed != 0);
    }
  }
  return found;
}

export function batchKeysPtr(): usize {
  return batchKeys;
}
export function batchOutPtr(): usize {
  return batchOut;
}

/** Live entries. */
export function count(): u32 {
  return baseCount - baseDead + l0Count;
}

/** Caps how many L0 entries trigger a merge (≥ 1; tests use small values to exercise merges; 0 = by capacity). */
export function setMergeThreshold(n: u32): void {
  l0Override = n;
  l0Max = l0Limit();
  if (l0Count >= l0Max) merge();
}

/**
 * Tests only: makes growing linear memory past `pages` pages (64 KiB each, the whole memory) trap as a failed
 * memory.grow does, so that a test can break the index at a chosen point (a merge's output pages, L0's growth).
 * 0 = no limit (the default). Only growth counts: a page taken from the free list never traps.
 */
export function setPageLimit(pages: u32): void {
  pageLimit = pages;
}

function l0Limit(): u32 {
  const capacity = (l0Slots >> 2) * 3;
  return l0Override != 0 && l0Override < capacity ? l0Override : capacity;
}

/** Merges L0 into the base now (before iterating with readRange). */
export function flush(): void {
  if (l0Count != 0 || baseDead != 0) merge();
}

/** Drops every entry (pages go to the free list; L0 keeps its size). */
export function clear(): void {
  const chunks = (baseCount + CHUNK_ENTRIES - 1) / CHUNK_ENTRIES;
  for (let c: u32 = 0; c < chunks; c++) givePage(<usize>load<u32>(table + (<usize>c << 2)));
  baseCount = 0;
  baseDead = 0;
  memory.fill(dir, 0, <usize>DIR_SIZE * 4);
  memory.fill(l0, 0, <usize>l0Slots * 16);
  l0Count = 0;
}

/** Slots in L0's table (tests: its growth with the base). */
export function l0Capacity(): u32 {
  return l0Slots;
}

/**
 * Writes up to n (≤ BATCH / 2) base entries from index `start` at batchOutPtr() as 16-byte records
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
    const out = batchOut + <usize>j * RANGE_RECORD_BYTES;
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

// @ts-ignore: decorator
@inline
function rec(j: u32): usize {
  return l0 + (<usize>j << 4);
}

/**
 * Sorts L0's 16-byte records [lo, hi) by their u64 key: an in-place MSD radix sort (American flag sort) on 8-bit
 * digits from `shift` down, finishing small buckets by insertion. Hash keys spread evenly, so two digit passes
 * leave buckets of about one record; keys that share leading bits only take more passes (at most 8).
 */
function sortRecords(lo: u32, hi: u32, shift: u32, depth: u32): void {
  if (hi - lo <= 24) {
    insertionSort(lo, hi);
    return;
  }
  const heads = sortCounts + (<usize>depth << 11); // 256 u32 heads, then 256 u32 ends
  const ends = heads + 1024;
  memory.fill(heads, 0, 1024);
  for (let i = lo; i < hi; i++) {
    const at = heads + (<usize>(<u32>(load<u64>(rec(i)) >> shift) & 255) << 2);
    store<u32>(at, load<u32>(at) + 1);
  }
  let sum = lo;
  for (let d: usize = 0; d < 256; d++) {
    const c = load<u32>(heads + (d << 2));
    store<u32>(heads + (d << 2), sum);
    sum += c;
    store<u32>(ends + (d << 2), sum);
  }
  // Cycle leader: take the record at digit d's head; while it belongs elsewhere, swap it into that digit's head.
  for (let d: u32 = 0; d < 256; d++) {
    const headAt = heads + (<usize>d << 2);
    const end = load<u32>(ends + (<usize>d << 2));
    let h = load<u32>(headAt);
    while (h < end) {
      let k = load<u64>(rec(h));
      let v = load<u64>(rec(h), 8);
      let dd = <u32>(k >> shift) & 255;
      while (dd != d) {
        const at = heads + (<usize>dd << 2);
        const j = load<u32>(at);
        store<u32>(at, j + 1);
        const r = rec(j);
        const k2 = load<u64>(r);
        const v2 = load<u64>(r, 8);
        store<u64>(r, k);
        store<u64>(r, v, 8);
        k = k2;
        v = v2;
        dd = <u32>(k >> shift) & 255;
      }
      store<u64>(rec(h), k);
      store<u64>(rec(h), v, 8);
      h++;
    }
    store<u32>(headAt, h);
  }
  if (shift == 0) return;
  let start = lo;
  for (let d: usize = 0; d < 256; d++) {
    const end = load<u32>(ends + (d << 2));
    if (end - start > 1) sortRecords(start, end, shift - 8, depth + 1);
    start = end;
  }
}

function insertionSort(lo: u32, hi: u32): void {
  for (let i = lo + 1; i < hi; i++) {
    const k = load<u64>(rec(i));
    const v = load<u64>(rec(i), 8);
    let j = i;
    while (j > lo && load<u64>(rec(j - 1)) > k) {
      memory.copy(rec(j), rec(j - 1), 16);
      j--;
    }
    store<u64>(rec(j), k);
    store<u64>(rec(j), v, 8);
  }
}

let outTable: usize = 0;
let outCount: u32 = 0;
let outPage: usize = 0;
let outBucket: i32 = -1;

/** Where the next output entry goes (taking a fresh page when a chunk starts). */
// @ts-ignore: decorator
@inline
function outSlot(): usize {
  const slot = outCount % CHUNK_ENTRIES;
  if (slot == 0) {
    outPage = takePage();
    store<u32>(outTable + (<usize>(outCount / CHUNK_ENTRIES) << 2), <u32>outPage);
  }
  return outPage + <usize>slot * ENTRY;
}

// @ts-ignore: decorator
@inline
function writeEntry(p: usize, key: u64, off8: u32, packed: u32): void {
  store<u32>(p, <u32>key);
  store<u16>(p, <u16>(key >> 32), 4);
  store<u32>(p, off8, 6);
  store<u32>(p, packed, 10);
}

/** Appends one entry to the output, writing dir[x] for the buckets it opens (the entry-by-entry merge). */
// @ts-ignore: decorator
@inline
function emit(key: u64, off8: u32, packed: u32): void {
  const p = outSlot();
  const b = <i32>(key >> 48);
  // dir[x] for the buckets this entry opens; never ahead of the input's bucket (see mergeEntries()).
  while (outBucket < b) {
    outBucket++;
    store<u32>(dir + (<usize>outBucket << 2), outCount);
  }
  writeEntry(p, key, off8, packed);
  outCount++;
}

function merge(): void {
  // 1. L0's records, packed to the front of its table (slot s moves to n ≤ s, already read) and sorted by key.
  let n: u32 = 0;
  for (let s: u32 = 0; s < l0Slots; s++) {
    const p = l0 + (<usize>s << 4);
    if (load<u32>(p, 12) != 0) {
      if (n != s) memory.copy(rec(n), p, 16);
      n++;
    }
  }
  if (n > 1) sortRecords(0, n, 56, 0);

  // 2. A chunk table for the result (a fresh run of pages when it needs more than one).
  const total = baseCount - baseDead + n;
  const chunks = (total + CHUNK_ENTRIES - 1) / CHUNK_ENTRIES;
  const pagesNeeded = max<u32>(1, (chunks * 4 + <u32>PAGE - 1) / <u32>PAGE);
  outTable = pagesNeeded == 1 ? takePage() : grabPages(pagesNeeded);
  outCount = 0;

  // 3. Stream base and L0 into the output, giving back each input page once consumed.
  const consumedTo = baseDead == 0 ? mergeRuns(n) : mergeEntries(n);

  // Input pages not yet released (the last, partly read one), then the old table.
  const oldChunks = (baseCount + CHUNK_ENTRIES - 1) / CHUNK_ENTRIES;
  if (baseCount > 0) {
    const consumed = consumedTo / CHUNK_ENTRIES; // chunks already given back
    for (let c = consumed; c < oldChunks; c++) givePage(<usize>load<u32>(table + (<usize>c << 2)));
  }
  for (let t: u32 = 0; t < tablePages; t++) givePage(table + <usize>t * PAGE);
  table = outTable;
  tablePages = pagesNeeded;
  baseCount = outCount;
  baseDead = 0;
  memory.fill(l0, 0, <usize>l0Slots * 16);
  l0Count = 0;
  growL0();
}

/**
 * The merge when the base has no dead entry: the base's runs between consecutive L0 keys are copied with
 * memory.copy (split at chunk boundaries), and the directory is shifted afterwards by the L0 keys before each
 * bucket. Returns the base entries consumed (all).
 */
function mergeRuns(n: u32): u32 {
  let i: u32 = 0;
  for (let j: u32 = 0; j < n; j++) {
    const r = rec(j);
    const key = load<u64>(r);
    const pos = lowerBound(key, i);
    copyRun(i, pos);
    i = pos;
    writeEntry(outSlot(), key, load<u32>(r, 8), load<u32>(r, 12));
    outCount++;
  }
  copyRun(i, baseCount);
  // dir[b] counted the base entries before bucket b; add the L0 keys before it.
  let j: u32 = 0;
  for (let b: u32 = 0; b < DIR_SIZE; b++) {
    while (j < n && <u32>(load<u64>(rec(j)) >> 48) < b) j++;
    const at = dir + (<usize>b << 2);
    store<u32>(at, load<u32>(at) + j);
  }
  return baseCount;
}

/** The first base index ≥ from whose key is above `key` (which the base does not hold). */
function lowerBound(key: u64, from: u32): u32 {
  const b = <u32>(key >> 48);
  let i = max<u32>(load<u32>(dir + (<usize>b << 2)), from);
  const hi = bucketEnd(b);
  const k = key & KEY48;
  // Linear: buckets are short, and these are the entries copyRun reads next anyway.
  while (i < hi && key48At(entryPtr(i)) < k) i++;
  return i;
}

/** Copies base entries [from, to) to the output, giving back each input page once its last entry is copied. */
function copyRun(from: u32, to: u32): void {
  while (from < to) {
    const chunk = from / CHUNK_ENTRIES;
    const inChunk = from - chunk * CHUNK_ENTRIES;
    const dst = outSlot();
    const room = CHUNK_ENTRIES - outCount % CHUNK_ENTRIES;
    const len = min<u32>(to - from, min<u32>(CHUNK_ENTRIES - inChunk, room));
    const src = <usize>load<u32>(table + (<usize>chunk << 2));
    memory.copy(dst, src + <usize>inChunk * ENTRY, <usize>len * ENTRY);
    from += len;
    outCount += len;
    if (inChunk + len == CHUNK_ENTRIES) givePage(src);
  }
}

/**
 * The entry-by-entry merge, dropping dead base entries. The directory is rewritten in place: emit() writes dir[x]
 * only for buckets up to the one being emitted, which is never past the input's current bucket, and the input
 * reads dir[ib + 1] before any write can reach it. Returns the base entries consumed (all).
 */
function mergeEntries(n: u32): u32 {
  outBucket = -1;
  let i: u32 = 0;
  let ib: u32 = 0;
  let ibEnd = bucketEnd(0);
  let j: u32 = 0;
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
    if (haveL0 && (!haveBase || load<u64>(rec(j)) < baseKey)) {
      const r = rec(j);
      emit(load<u64>(r), load<u32>(r, 8), load<u32>(r, 12));
      j++;
    } else {
      const p = entryPtr(i);
      emit(baseKey, load<u32>(p, 6), load<u32>(p, 10));
      i = advanceInput(i);
    }
  }
  while (outBucket < <i32>DIR_SIZE - 1) {
    outBucket++;
    store<u32>(dir + (<usize>outBucket << 2), outCount);
  }
  return i;
}

/** i + 1, giving back input chunk pages as soon as their last entry has been read. */
// @ts-ignore: decorator
@inline
function advanceInput(i: u32): u32 {
  const next = i + 1;
  if (next % CHUNK_ENTRIES == 0) givePage(<usize>load<u32>(table + (<usize>(next / CHUNK_ENTRIES - 1) << 2)));
  return next;
}

/**
 * Grows L0's table (empty now) to the largest power of two of slots taking at most 3/4 byte per base entry, so
 * that merges, each O(base), come every ≈base/40 inserts. The old table's pages join the free list (the base's
 * next chunks reuse them: linear memory never shrinks).
 */
function growL0(): void {
  let bits = l0Bits;
  const budget = (<u64>baseCount * 3) >> 2;
  while (bits < L0_MAX_BITS && ((<u64>16) << (bits + 1)) <= budget) bits++;
  if (bits != l0Bits) {
    const oldPages = (l0Slots * 16) / <u32>PAGE;
    for (let t: u32 = 0; t < oldPages; t++) givePage(l0 + <usize>t * PAGE);
    l0Bits = bits;
    l0Slots = 1 << bits;
    l0Mask = l0Slots - 1;
    l0 = grabPages((l0Slots * 16) / <u32>PAGE); // fresh pages read as zero: an empty table
  }
  l0Max = l0Limit();
}
