// The order list objects returns its results in (Engine.listObjects' answers are sorted by JavaScript's default
// string comparison), kept in the kernel across calls: symbols are never freed and their texts never change, so
// every symbol listed once gets a rank among all the symbols listed so far, and a listing is put in order by its
// results' ranks (a bitmap over the ranks, read in order). Only the symbols a listing meets for the first time
// are sorted (by their bytes in the interner) and merged into the ranked ones. The sort is a most-significant-first
// radix sort on 8 bytes at a time (a byte-wise multikey quicksort cost ~200 ns a text on a 20k-text first
// listing, more than the walk): each text's next 8 bytes are read as one big-endian u64 key, the keys are sorted by
// a least-significant-byte radix sort (passes where every key has the same byte are skipped), and each run of
// equal keys goes on to the next 8 bytes; small ranges, and runs holding a text that ends inside the 8 bytes (its
// key is padded, so it only sorts among texts it differs from), go to a multikey quicksort from where they differ.
//
// Byte order is UTF-8 order, which is code point order; JavaScript compares UTF-16 code units. The two agree
// except between a character above U+FFFF (4 UTF-8 bytes, lead byte 0xF0-0xF4) and one in U+E000-U+FFFF: so a
// text holding a byte >= 0xF0 is not ranked here (list_objects_order answers -1 and the caller sorts in
// TypeScript), and every ranked text is free of them, which keeps the ranks exact.
//
// The symbols a call ranked for the first time are at list_objects_fresh(): [u32 count][count × u32 symbols], in
// rank order (the TypeScript side maps results to texts through its own symbol -> string table, src/wasm-eval/
// symbols.ts, so no text is copied out).

// The interner's layout (assembly/tables/interner.ts; src/kernels/abi/intern.ts): the header field holding the
// entries array, and the bytes of one entry ([usize bytes pointer][u32 byte length]).
// @ts-ignore: decorator
@inline const I_ENTRIES: usize = 16;
// @ts-ignore: decorator
@inline const I_ENTRY_BYTES: usize = 8;
// A new symbol's record while it is sorted: [usize bytes][u32 length][u32 symbol].
// @ts-ignore: decorator
@inline const RECORD: usize = 12;
// Below this many records a range is sorted by insertion.
// @ts-ignore: decorator
@inline const SMALL: u32 = 12;
// Below this many records a range is sorted by the multikey quicksort instead of the radix sort.
// @ts-ignore: decorator
@inline const RADIX_MIN: u32 = 64;

// symbol -> rank + 1 (0: not ranked).
let ranks: usize = 0;
let ranksCap: u32 = 0;
// The ranked symbols in order, and the array the next merge writes (the two swap).
let order: usize = 0;
let orderLen: u32 = 0;
let orderCap: u32 = 0;
let spare: usize = 0;
let spareCap: u32 = 0;
// The new symbols' records, and the radix sort's scratch (indexed like the records: a range sorts in its own
// slots, so a run sorted recursively leaves the rest of its parent's keys alone): keys and record indices (two of
// each, passes go back and forth), the records in their new order, and the 8 byte histograms of a range.
let records: usize = 0;
let recordsCap: u32 = 0;
let keys: usize = 0;
let keysNext: usize = 0;
let indices: usize = 0;
let indicesNext: usize = 0;
let moved: usize = 0;
let counts: usize = 0;
// What list_objects_fresh() returns (capacity in bytes).
let fresh: usize = 0;
let freshCap: usize = 0;
// The bitmap over the ranks.
let bits: usize = 0;
let bitsCap: u32 = 0;
// The interner's entries during a call.
let entries: usize = 0;
let seed: u32 = 0x9e3779b9;

/** Bytes the order holds (ranks, ranked symbols, merge and sort scratch, the new symbols' texts, the bitmap). */
export function orderMemoryBytes(): usize {
  return (
    ((<usize>ranksCap + <usize>orderCap + <usize>spareCap + <usize>bitsCap) << 2) +
    <usize>recordsCap * (RECORD * 2 + 24) +
    (counts != 0 ? 8 * 256 * 4 : 0) +
    freshCap
  );
}

/** Address of the symbols ranked for the first time by the last list_objects_order (layout above). */
export function list_objects_fresh(): usize {
  return fresh;
}

/**
 * Puts the `count` distinct symbols at `results` in the order of their texts in interner `interner` (in place),
 * ranking those never ranked before: how many were new (listed at list_objects_fresh()), or -1, changing
 * nothing, when a new one's text holds a character above U+FFFF (the caller then sorts the texts itself).
 */
export function list_objects_order(interner: usize, results: usize, count: u32): i32 {
  entries = load<usize>(interner, I_ENTRIES);
  if (count > recordsCap) {
    if (records != 0) {
      heap.free(records);
      heap.free(moved);
      heap.free(keys);
      heap.free(keysNext);
      heap.free(indices);
      heap.free(indicesNext);
    }
    recordsCap = count;
    records = heap.alloc(<usize>count * RECORD);
    moved = heap.alloc(<usize>count * RECORD);
    keys = heap.alloc((<usize>count) << 3);
    keysNext = heap.alloc((<usize>count) << 3);
    indices = heap.alloc((<usize>count) << 2);
    indicesNext = heap.alloc((<usize>count) << 2);
  }
  let n: u32 = 0;
  let top: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const symbol = load<u32>(results + ((<usize>i) << 2));
    if (symbol < ranksCap && load<u32>(ranks + ((<usize>symbol) << 2)) != 0) continue;
    const entry = entries + <usize>symbol * I_ENTRY_BYTES;
    const bytes = load<usize>(entry);
    const length = load<u32>(entry, 4);
    if (!belowAstral(bytes, length)) return -1;
    const r = records + <usize>n * RECORD;
    store<usize>(r, bytes);
    store<u32>(r, length, 4);
    store<u32>(r, symbol, 8);
    if (symbol > top) top = symbol;
    n++;
  }
  if (n > 0) {
    // Texts of one listing share a long prefix (`file:`, a folder's id): skipped at once, not a byte per level.
    sortRange(0, n, commonPrefix(n));
    merge(n, top);
    writeFresh(n);
  } else {
    if (fresh == 0) {
      fresh = heap.alloc(4);
      freshCap = 4;
    }
    store<u32>(fresh, 0);
  }
  // The results by rank: a bitmap over the ranks, read in order.
  const words = (orderLen + 31) >> 5;
  if (words > bitsCap) {
    if (bits != 0) heap.free(bits);
    bitsCap = words;
    bits = heap.alloc((<usize>words) << 2);
  }
  memory.fill(bits, 0, (<usize>words) << 2);
  for (let i: u32 = 0; i < count; i++) {
    const rank = load<u32>(ranks + ((<usize>load<u32>(results + ((<usize>i) << 2))) << 2)) - 1;
    const w = bits + ((<usize>(rank >> 5)) << 2);
    store<u32>(w, load<u32>(w) | (1 << (rank & 31)));
  }
  let at = results;
  for (let w: u32 = 0; w < words; w++) {
    let x = load<u32>(bits + ((<usize>w) << 2));
    while (x != 0) {
      const rank = (w << 5) + <u32>ctz(x);
      store<u32>(at, load<u32>(order + ((<usize>rank) << 2)));
      at += 4;
      x &= x - 1;
    }
  }
  return <i32>n;
}

/** Whether a text holds no byte >= 0xF0 (no character above U+FFFF): 8 bytes at a time while all are ASCII. */
function belowAstral(bytes: usize, length: u32): bool {
  let b: u32 = 0;
  for (; b + 8 <= length; b += 8) {
    if ((load<u64>(bytes + b) & 0x8080808080808080) != 0) break;
  }
  for (; b < length; b++) if (load<u8>(bytes + b) >= 0xf0) return false;
  return true;
}

// --- sorting the new symbols' records ---

/** The 8 bytes of a text from `depth` as a big-endian key, padded with zero bytes past its end. */
// @ts-ignore: decorator
@inline
function keyAt(bytes: usize, length: u32, depth: u32): u64 {
  if (length >= depth + 8) return bswap<u64>(load<u64>(bytes + depth));
  let key: u64 = 0;
  for (let b: u32 = 0; b < 8; b++) {
    key <<= 8;
    if (depth + b < length) key |= <u64>load<u8>(bytes + depth + b);
  }
  return key;
}

/** Sorts records [lo, lo + n), whose texts are equal before byte `depth` (and all at least `depth` long). */
function sortRange(lo: u32, n: u32, depth: u32): void {
  if (n < RADIX_MIN) {
    sortRecords(lo, n, depth);
    return;
  }
  if (counts == 0) counts = heap.alloc(8 * 256 * 4);
  memory.fill(counts, 0, 8 * 256 * 4);
  let k0 = keys + ((<usize>lo) << 3);
  let i0 = indices + ((<usize>lo) << 2);
  for (let i: u32 = 0; i < n; i++) {
    const r = rec(lo + i);
    const key = keyAt(load<usize>(r), load<u32>(r, 4), depth);
    store<u64>(k0 + ((<usize>i) << 3), key);
    store<u32>(i0 + ((<usize>i) << 2), lo + i);
    for (let p: u32 = 0; p < 8; p++) {
      const c = counts + ((<usize>((p << 8) | <u32>((key >> (<u64>p << 3)) & 0xff))) << 2);
      store<u32>(c, load<u32>(c) + 1);
    }
  }
  // Least significant byte first; a pass where every key has the same byte changes nothing.
  let k1 = keysNext + ((<usize>lo) << 3);
  let i1 = indicesNext + ((<usize>lo) << 2);
  for (let p: u32 = 0; p < 8; p++) {
    const c = counts + ((<usize>p) << 10);
    const shift = <u64>p << 3;
    if (load<u32>(c + ((<usize>(<u32>(load<u64>(k0) >> shift) & 0xff)) << 2)) == n) continue;
    let sum: u32 = 0;
    for (let d: usize = 0; d < 256; d++) {
      const x = load<u32>(c + (d << 2));
      store<u32>(c + (d << 2), sum);
      sum += x;
    }
    for (let i: u32 = 0; i < n; i++) {
      const key = load<u64>(k0 + ((<usize>i) << 3));
      const slot = c + ((<usize>(<u32>(key >> shift) & 0xff)) << 2);
      const at = load<u32>(slot);
      store<u32>(slot, at + 1);
      store<u64>(k1 + ((<usize>at) << 3), key);
      store<u32>(i1 + ((<usize>at) << 2), load<u32>(i0 + ((<usize>i) << 2)));
    }
    const tk = k0;
    k0 = k1;
    k1 = tk;
    const ti = i0;
    i0 = i1;
    i1 = ti;
  }
  // The records in key order.
  const out = moved + <usize>lo * RECORD;
  for (let i: u32 = 0; i < n; i++) {
    const from = rec(load<u32>(i0 + ((<usize>i) << 2)));
    const to = out + <usize>i * RECORD;
    store<u64>(to, load<u64>(from));
    store<u32>(to, load<u32>(from, 8), 8);
  }
  memory.copy(rec(lo), out, <usize>n * RECORD);
  // Runs of equal keys: on to the next 8 bytes where every text in the run has them, else from `depth` (a
  // padded key can equal a longer text's; the quicksort tells them apart by length).
  let i: u32 = 0;
  while (i < n) {
    const key = load<u64>(k0 + ((<usize>i) << 3));
    let shortest = load<u32>(rec(lo + i), 4);
    let j = i + 1;
    while (j < n && load<u64>(k0 + ((<usize>j) << 3)) == key) {
      const length = load<u32>(rec(lo + j), 4);
      if (length < shortest) shortest = length;
      j++;
    }
    if (j - i > 1) {
      if (shortest >= depth + 8) sortRange(lo + i, j - i, depth + 8);
      else sortRecords(lo + i, j - i, depth);
    }
    i = j;
  }
}

// --- the multikey quicksort (Bentley & Sedgewick), for small ranges ---

// @ts-ignore: decorator
@inline
function rec(i: u32): usize {
  return records + <usize>i * RECORD;
}

/** The byte at `depth` of record `i`'s text, or -1 past its end. */
// @ts-ignore: decorator
@inline
function byteAt(i: u32, depth: u32): i32 {
  const r = rec(i);
  return depth < load<u32>(r, 4) ? <i32>load<u8>(load<usize>(r) + depth) : -1;
}

// @ts-ignore: decorator
@inline
function swap(i: u32, j: u32): void {
  const a = rec(i);
  const b = rec(j);
  const a0 = load<u64>(a);
  const a1 = load<u32>(a, 8);
  store<u64>(a, load<u64>(b));
  store<u32>(a, load<u32>(b, 8), 8);
  store<u64>(b, a0);
  store<u32>(b, a1, 8);
}

function swapRange(i: u32, j: u32, n: u32): void {
  for (let k: u32 = 0; k < n; k++) swap(i + k, j + k);
}

/** Compares two texts (bytes and lengths) from byte `depth` on, both equal before it. */
function compareFrom(aBytes: usize, aLength: u32, bBytes: usize, bLength: u32, depth: u32): i32 {
  const n = aLength < bLength ? aLength : bLength;
  let d = depth;
  // 8 bytes at a time while both texts have them (big-endian: the first differing byte decides).
  for (; d + 8 <= n; d += 8) {
    const x = load<u64>(aBytes + d);
    const y = load<u64>(bBytes + d);
    if (x != y) return bswap<u64>(x) < bswap<u64>(y) ? -1 : 1;
  }
  for (; d < n; d++) {
    const x = <i32>load<u8>(aBytes + d);
    const y = <i32>load<u8>(bBytes + d);
    if (x != y) return x - y;
  }
  return <i32>aLength - <i32>bLength;
}

/** Sorts records [lo, lo + n), whose texts are equal before byte `depth`. */
function sortRecords(lo: u32, n: u32, depth: u32): void {
  while (n > 1) {
    if (n < SMALL) {
      for (let i: u32 = lo + 1; i < lo + n; i++) {
        for (let j = i; j > lo; j--) {
          const a = rec(j - 1);
          const b = rec(j);
          if (compareFrom(load<usize>(a), load<u32>(a, 4), load<usize>(b), load<u32>(b, 4), depth) <= 0) break;
          swap(j - 1, j);
        }
      }
      return;
    }
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    swap(lo, lo + seed % n);
    const v = byteAt(lo, depth);
    let a = lo + 1;
    let b = a;
    let c = lo + n - 1;
    let d = c;
    for (;;) {
      while (b <= c) {
        const r = byteAt(b, depth) - v;
        if (r > 0) break;
        if (r == 0) {
          swap(a, b);
          a++;
        }
        b++;
      }
      while (b <= c) {
        const r = byteAt(c, depth) - v;
        if (r < 0) break;
        if (r == 0) {
          swap(c, d);
          d--;
        }
        c--;
      }
      if (b > c) break;
      swap(b, c);
      b++;
      c--;
    }
    const end = lo + n;
    let r = min(a - lo, b - a);
    swapRange(lo, b - r, r);
    r = min(d - c, end - 1 - d);
    swapRange(b, end - r, r);
    const less = b - a;
    const greater = d - c;
    sortRecords(lo, less, depth);
    sortRecords(end - greater, greater, depth);
    // The records equal to the pivot at this byte: on to the next byte (none past the end: they are one text).
    if (v < 0) return;
    lo = lo + less;
    n = n - less - greater;
    depth++;
  }
}

/** The length of the prefix all `n` records' texts share. */
function commonPrefix(n: u32): u32 {
  const first = rec(0);
  const bytes = load<usize>(first);
  let length = load<u32>(first, 4);
  for (let i: u32 = 1; i < n && length > 0; i++) {
    const r = rec(i);
    const other = load<usize>(r);
    const m = load<u32>(r, 4);
    if (m < length) length = m;
    let d: u32 = 0;
    while (d < length && load<u8>(bytes + d) == load<u8>(other + d)) d++;
    length = d;
  }
  return length;
}

// --- merging them into the ranked symbols ---

/** Merges the `n` sorted records into the order, ranking every symbol again. */
function merge(n: u32, top: u32): void {
  if (top >= ranksCap) {
    let cap: u32 = ranksCap < 1024 ? 1024 : ranksCap;
    while (cap <= top) cap <<= 1;
    const next = heap.alloc((<usize>cap) << 2);
    memory.fill(next, 0, (<usize>cap) << 2);
    if (ranks != 0) {
      memory.copy(next, ranks, (<usize>ranksCap) << 2);
      heap.free(ranks);
    }
    ranks = next;
    ranksCap = cap;
  }
  const total = orderLen + n;
  if (total > spareCap) {
    if (spare != 0) heap.free(spare);
    spareCap = total + (total >> 1);
    spare = heap.alloc((<usize>spareCap) << 2);
  }
  // Each new record's place among the old ones by galloping from the last place (few comparisons whether the new
  // ones are interleaved with the old or fall between them in long runs); the old ones before it move as a block.
  let i: u32 = 0;
  let k: u32 = 0;
  for (let j: u32 = 0; j < n; j++) {
    const r = rec(j);
    const bytes = load<usize>(r);
    const length = load<u32>(r, 4);
    // The first old symbol at or after i whose text is after the new one's (texts are distinct).
    let lo = i;
    let step: u32 = 1;
    let hi = i;
    while (hi < orderLen && oldBefore(hi, bytes, length)) {
      lo = hi + 1;
      hi = step > orderLen - i ? orderLen : i + step;
      step <<= 1;
    }
    while (lo < hi) {
      const mid = lo + ((hi - lo) >> 1);
      if (oldBefore(mid, bytes, length)) lo = mid + 1;
      else hi = mid;
    }
    k = moveOld(i, lo, k);
    i = lo;
    const symbol = load<u32>(r, 8);
    store<u32>(spare + ((<usize>k) << 2), symbol);
    store<u32>(ranks + ((<usize>symbol) << 2), k + 1);
    k++;
  }
  moveOld(i, orderLen, k);
  const t = order;
  const tc = orderCap;
  order = spare;
  orderCap = spareCap;
  orderLen = total;
  spare = t;
  spareCap = tc;
}

/** Whether the text of the old symbol ranked `at` is before the text `bytes`/`length`. */
// @ts-ignore: decorator
@inline
function oldBefore(at: u32, bytes: usize, length: u32): bool {
  const entry = entries + <usize>load<u32>(order + ((<usize>at) << 2)) * I_ENTRY_BYTES;
  return compareFrom(load<usize>(entry), load<u32>(entry, 4), bytes, length, 0) < 0;
}

/** Moves the old ranked symbols [from, to) to the merged order from position `k` on, ranking them: the next k. */
function moveOld(from: u32, to: u32, k: u32): u32 {
  if (k == from) {
    // None new before them: their ranks stand.
    memory.copy(spare + ((<usize>k) << 2), order + ((<usize>from) << 2), (<usize>(to - from)) << 2);
    return to;
  }
  for (let i = from; i < to; i++, k++) {
    const symbol = load<u32>(order + ((<usize>i) << 2));
    store<u32>(spare + ((<usize>k) << 2), symbol);
    store<u32>(ranks + ((<usize>symbol) << 2), k + 1);
  }
  return k;
}

/** Writes the new symbols, in rank order, to the fresh block. */
function writeFresh(n: u32): void {
  const bytes: usize = 4 + ((<usize>n) << 2);
  if (bytes > freshCap) {
    if (fresh != 0) heap.free(fresh);
    freshCap = bytes + (bytes >> 1);
    fresh = heap.alloc(freshCap);
  }
  store<u32>(fresh, n);
  for (let j: u32 = 0; j < n; j++) store<u32>(fresh + 4 + ((<usize>j) << 2), load<u32>(rec(j), 8));
}
