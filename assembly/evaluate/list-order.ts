// The order list objects returns its results in (Engine.listObjects' answers are sorted by JavaScript's default
// string comparison), kept in the kernel across calls: symbols are never freed and their texts never change, so
// every symbol listed once gets a rank among all the symbols listed so far, and a listing is put in order by its
// results' ranks (a bitmap over the ranks, read in order). Only the symbols a listing meets for the first time
// are sorted (by their bytes in the interner) and merged into the ranked ones.
//
// Memory touched, not instructions, is what a first listing pays for: a page of fresh WASM memory costs its first
// touch (a page fault; measured 14-45 us a 4 KB page on the bench machine, a VM), and a first listing of 20k new
// objects touched ~290 such pages (sort scratch of 24 bytes a symbol, a rank table filled for every symbol, the
// merge's second array, a copy of the new symbols), ~4-6 ms of its ~5 ms order. So:
// - the rank table (symbol -> rank + 1) is never cleared: an entry counts only where the order holds that symbol
//   at that rank (a sparse set), so only the entries of listed symbols are ever written or read;
// - the new symbols are sorted in place, by an MSD radix sort a byte at a time (American flag sort) read
//   straight from the texts (no key arrays), small ranges by a multikey quicksort and insertion;
// - the merge runs from the back into the ranked symbols' own array (no second array), galloping on both sides;
// - the new symbols, sorted, are what list_objects_fresh() returns ([u32 count][symbols]: the word before them);
// - no array is reallocated but to grow, so a later listing reuses the pages an earlier one touched.
//
// Memory reserved. Only the rank table is indexed by symbol: 4 bytes a symbol up to the highest listed so far
// (its capacity doubling from 1,024; rebuilt from the order when it grows). The ranked symbols (and the bitmap
// over their ranks) are sized by how many symbols are ranked, and the new symbols' block by the largest listing
// so far (a listing's new symbols are among its results), each doubling from 1,024 when a listing needs more; the
// ranked symbols are copied to their new array then (the new symbols are a call's only: nothing to copy). Until
// a review, all three shared one capacity of every symbol up to the highest listed, 12 bytes a symbol: a listing
// of five objects whose symbols happened to be near 1.1M reserved 25 MB (a 2^21 capacity), nearly all of it never
// touched, and under a memory cap (workerd's 128 MB) made memory.grow fail sooner; now 8 MB and a few KB. A
// first listing's pages touched are as before: each array is allocated once at its size before the listing
// writes it (the order grows after the new symbols are counted, to hold them all), and a later listing that
// grows the order copies only the symbols ranked (its merge rewrites those after the first new one anyway).
//
// The results must be distinct symbols (list_objects returns each object once). A symbol given twice would be
// ranked twice and sorted with itself (identical texts never come apart in the radix sort: a loop without end),
// so it is refused, for a few instructions a result: a new symbol's rank table entry is set, until the merge
// ranks it, to a rank past the order naming its slot among the new symbols (the sparse set again, so nothing to
// clear), which finds it again before anything is sorted; a ranked one is found set already in the bitmap.
//
// Byte order is UTF-8 order, which is code point order; JavaScript compares UTF-16 code units. The two agree
// except between a character above U+FFFF (4 UTF-8 bytes, lead byte 0xF0-0xF4) and one in U+E000-U+FFFF: so a
// text holding a byte >= 0xF0 is not ranked here (list_objects_order answers -1 and the caller sorts in
// TypeScript), and every ranked text is free of them, which keeps the ranks exact.

// The interner's layout (assembly/tables/interner.ts; src/kernels/abi/intern.ts): the header field holding the
// entries array, and the bytes of one entry ([usize bytes pointer]; the byte length is the u32 before the bytes).
// @ts-ignore: decorator
@inline const I_ENTRIES: usize = 16;
// @ts-ignore: decorator
@inline const I_ENTRY_BYTES: usize = 4;
// Below this many symbols a range is sorted by insertion.
// @ts-ignore: decorator
@inline const SMALL: u32 = 12;
// Below this many symbols a range is sorted by the multikey quicksort instead of the radix sort.
// @ts-ignore: decorator
@inline const RADIX_MIN: u32 = 64;
// Buckets of a radix pass: a text that ends at the byte, then the 256 byte values.
// @ts-ignore: decorator
@inline const BUCKETS: usize = 257;
// A radix level's scratch: each bucket's end and the next free slot in it.
// @ts-ignore: decorator
@inline const LEVEL_BYTES: usize = BUCKETS * 8;
// Radix levels that can nest: a nested call sorts at most half its caller's range (sortRange), so 32 for any u32
// count, and one for the outermost.
// @ts-ignore: decorator
@inline const LEVELS: usize = 33;
// Smallest capacity (in symbols) of the rank table, the ranked symbols and the new symbols.
// @ts-ignore: decorator
@inline const MIN_CAPACITY: u32 = 1024;
// list_objects_order's answers other than a count (src/kernels/abi/evaluate.ts): a new text holds a character
// above U+FFFF (the caller sorts), or a symbol was given twice.
// @ts-ignore: decorator
@inline const LIST_ORDER_ASTRAL: i32 = -1;
// @ts-ignore: decorator
@inline const LIST_ORDER_REPEATED: i32 = -2;

// symbol -> rank + 1, meaningful only where order holds the symbol at that rank (never cleared: see above), for
// every symbol below ranksCap.
let ranks: usize = 0;
let ranksCap: u32 = 0;
// The ranked symbols in order, room for orderCap.
let order: usize = 0;
let orderCap: u32 = 0;
let orderLen: u32 = 0;
// [u32 count][new symbols]: the new symbols of a call, sorted in place (syms = fresh + 4), room for freshCap.
let fresh: usize = 0;
let syms: usize = 0;
let freshCap: u32 = 0;
// The radix sort's levels (allocated at the first range that needs them).
let levels: usize = 0;
// The bitmap over the ranks, bitsCap words (orderCap bits).
let bits: usize = 0;
let bitsCap: u32 = 0;
// The interner's entries during a call.
let entries: usize = 0;
let seed: u32 = 0x9e3779b9;

/** Bytes the order holds (rank table, ranked and new symbols, the radix levels, the bitmap). */
export function orderMemoryBytes(): usize {
  return (
    ((<usize>ranksCap + <usize>orderCap + <usize>bitsCap) << 2) +
    (fresh != 0 ? 4 + ((<usize>freshCap) << 2) : 0) +
    (levels != 0 ? LEVELS * LEVEL_BYTES : 0)
  );
}

/** Address of the symbols ranked for the first time by the last list_objects_order (layout above). */
export function list_objects_fresh(): usize {
  return fresh;
}

// @ts-ignore: decorator
@inline
function textBytes(symbol: u32): usize {
  return load<usize>(entries + <usize>symbol * I_ENTRY_BYTES);
}

// @ts-ignore: decorator
@inline
function textLength(symbol: u32): u32 {
  return load<u32>(textBytes(symbol) - 4);
}

// @ts-ignore: decorator
@inline
function symAt(i: u32): u32 {
  return load<u32>(syms + ((<usize>i) << 2));
}

// @ts-ignore: decorator
@inline
function setSym(i: u32, symbol: u32): void {
  store<u32>(syms + ((<usize>i) << 2), symbol);
}

/** Ranks the symbol at position `at` of the order. */
// @ts-ignore: decorator
@inline
function place(at: u32, symbol: u32): void {
  store<u32>(order + ((<usize>at) << 2), symbol);
  store<u32>(ranks + ((<usize>symbol) << 2), at + 1);
}

/**
 * Puts the `count` symbols at `results` in the order of their texts in interner `interner` (in place), ranking
 * those never ranked before: how many were new (listed at list_objects_fresh()), or, leaving the results as given:
 * LIST_ORDER_ASTRAL (-1), ranking nothing, when a new one's text holds a character above U+FFFF (the caller then
 * sorts the texts itself); LIST_ORDER_REPEATED (-2) when a symbol is given twice. Precondition: the symbols are
 * distinct (list_objects returns each object once); the answer -2 is the check of it (see the file's comment),
 * after which the order is still exact but a call's new symbols may or may not have been ranked.
 */
export function list_objects_order(interner: usize, results: usize, count: u32): i32 {
  entries = load<usize>(interner, I_ENTRIES);
  let top: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const symbol = load<u32>(results + ((<usize>i) << 2));
    if (symbol > top) top = symbol;
  }
  reserveRanks(top);
  reserveFresh(count);
  // The new symbols: those whose rank table entry names no rank at which the order holds them.
  let n: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const symbol = load<u32>(results + ((<usize>i) << 2));
    const entry = ranks + ((<usize>symbol) << 2);
    const r = load<u32>(entry);
    if (r <= orderLen) {
      if (r != 0 && load<u32>(order + ((<usize>(r - 1)) << 2)) == symbol) continue;
    } else if (r - orderLen <= n && symAt(r - orderLen - 1) == symbol) {
      // Marked below: given twice.
      store<u32>(fresh, 0);
      return LIST_ORDER_REPEATED;
    }
    if (!belowAstral(textBytes(symbol), textLength(symbol))) {
      store<u32>(fresh, 0);
      return LIST_ORDER_ASTRAL;
    }
    // A rank past the order, naming the symbol's slot: a mark until the merge ranks it.
    store<u32>(entry, orderLen + n + 1);
    setSym(n++, symbol);
  }
  store<u32>(fresh, n);
  if (n > 0) {
    reserveOrder(orderLen + n);
    // The prefix all the new texts share (a listing's share a long one, `file:` and a folder's id) is skipped at
    // once, not a byte per level.
    sortRange(0, n, commonPrefix(0, n, 0), 0);
    merge(n);
  }
  // The results by rank: a bitmap over the ranks, read in order. A bit set twice is a ranked symbol given twice.
  const words = (orderLen + 31) >> 5;
  memory.fill(bits, 0, (<usize>words) << 2);
  let twice: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const rank = load<u32>(ranks + ((<usize>load<u32>(results + ((<usize>i) << 2))) << 2)) - 1;
    const w = bits + ((<usize>(rank >> 5)) << 2);
    const word = load<u32>(w);
    const bit: u32 = 1 << (rank & 31);
    twice |= word & bit;
    store<u32>(w, word | bit);
  }
  if (twice != 0) return LIST_ORDER_REPEATED;
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

/** A capacity of at least `need` symbols: `cap` (at least MIN_CAPACITY) doubled as often as that takes. */
function grownCapacity(cap: u32, need: u64): u32 {
  let next: u64 = cap < MIN_CAPACITY ? MIN_CAPACITY : <u64>cap;
  while (next < need) next <<= 1;
  return <u32>next;
}

/**
 * Makes the rank table cover symbol `top`. The new table is not cleared but rebuilt from the order (the entries
 * of ranked symbols only): a realloc would copy the whole table, untouched pages included.
 */
function reserveRanks(top: u32): void {
  if (top < ranksCap) return;
  const next = grownCapacity(ranksCap, <u64>top + 1);
  const nextRanks = heap.alloc((<usize>next) << 2);
  if (ranks != 0) heap.free(ranks);
  ranks = nextRanks;
  ranksCap = next;
  for (let r: u32 = 0; r < orderLen; r++) {
    store<u32>(ranks + ((<usize>load<u32>(order + ((<usize>r) << 2))) << 2), r + 1);
  }
}

/** Makes the new symbols' block hold `count` symbols (a call's new symbols are among its results). */
function reserveFresh(count: u32): void {
  if (fresh != 0 && count <= freshCap) return;
  const next = grownCapacity(freshCap, <u64>count);
  const nextFresh = heap.alloc(4 + ((<usize>next) << 2));
  if (fresh != 0) heap.free(fresh);
  fresh = nextFresh;
  syms = nextFresh + 4;
  freshCap = next;
  store<u32>(fresh, 0);
}

/**
 * Makes the ranked symbols' array (and the bitmap over their ranks) hold `need` symbols: the ranked ones are
 * copied, the rest of the array is not touched (nor is the new bitmap: a call clears the words it uses).
 */
function reserveOrder(need: u32): void {
  if (need <= orderCap) return;
  const next = grownCapacity(orderCap, <u64>need);
  const nextOrder = heap.alloc((<usize>next) << 2);
  const nextBits = heap.alloc((<usize>((next + 31) >> 5)) << 2);
  if (order != 0) {
    memory.copy(nextOrder, order, (<usize>orderLen) << 2);
    heap.free(order);
    heap.free(bits);
  }
  order = nextOrder;
  bits = nextBits;
  orderCap = next;
  bitsCap = (next + 31) >> 5;
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

// --- sorting the new symbols ---

/**
 * How many bytes the texts of the symbols in slots [lo, lo + n) share, given that they share the first `depth`:
 * each compared with the first 8 bytes at a time (the first differing byte is the lowest set byte of the XOR:
 * memory is little-endian), only up to the prefix so far.
 */
function commonPrefix(lo: u32, n: u32, depth: u32): u32 {
  const first = symAt(lo);
  const firstBytes = textBytes(first);
  const firstLength = textLength(first);
  let prefix = firstLength;
  for (let i = lo + 1; i < lo + n; i++) {
    const symbol = symAt(i);
    const bytes = textBytes(symbol);
    const length = textLength(symbol);
    if (length < prefix) prefix = length;
    const both = length < firstLength ? length : firstLength;
    let d = depth;
    while (d < prefix) {
      if (d + 8 <= both) {
        const x = load<u64>(firstBytes + d) ^ load<u64>(bytes + d);
        if (x != 0) {
          d += <u32>ctz(x) >> 3;
          break;
        }
        d += 8;
      } else {
        if (load<u8>(firstBytes + d) != load<u8>(bytes + d)) break;
        d++;
      }
    }
    if (d < prefix) prefix = d;
  }
  return prefix;
}

/** The radix bucket of a text at byte `depth`: 0 when it ends before it, else the byte + 1. */
// @ts-ignore: decorator
@inline
function bucketOf(symbol: u32, depth: u32): u32 {
  return depth < textLength(symbol) ? <u32>load<u8>(textBytes(symbol) + depth) + 1 : 0;
}

/**
 * Sorts the symbols in slots [lo, lo + n), whose texts are equal before byte `depth`, in place: a radix pass on the
 * byte at `depth` (count, then move each symbol into its bucket by swaps), then each bucket from the next byte.
 * A byte all the texts share is skipped with all the others they share (commonPrefix), so a long shared middle
 * costs a comparison 8 bytes at a time, not a pass a byte. `level` is the call's nesting (its scratch).
 */
function sortRange(lo: u32, n: u32, depth: u32, level: u32): void {
  // One bucket is sorted by going round this loop, the others by a call each: the bucket left for the loop is the
  // largest, so a call sorts at most half its caller's range and the calls nest at most log2(n) deep.
  for (;;) {
    if (n < RADIX_MIN) {
      sortSymbols(lo, n, depth);
      return;
    }
    if (levels == 0) levels = heap.alloc(LEVELS * LEVEL_BYTES);
    const ends = levels + <usize>level * LEVEL_BYTES;
    const next = ends + BUCKETS * 4;
    memory.fill(ends, 0, BUCKETS * 4);
    for (let i = lo; i < lo + n; i++) {
      const slot = ends + ((<usize>bucketOf(symAt(i), depth)) << 2);
      store<u32>(slot, load<u32>(slot) + 1);
    }
    if (load<u32>(ends + ((<usize>bucketOf(symAt(lo), depth)) << 2)) == n) {
      // One bucket holds them all (a byte one: distinct texts equal before `depth`, so at most one ends there).
      depth = commonPrefix(lo, n, depth + 1);
      continue;
    }
    let sum = lo;
    for (let b: usize = 0; b < BUCKETS; b++) {
      const x = load<u32>(ends + (b << 2));
      store<u32>(next + (b << 2), sum);
      sum += x;
      store<u32>(ends + (b << 2), sum);
    }
    // Each slot of a bucket not yet filled takes the symbol there, which goes to its own bucket's next slot,
    // displacing the one there, until one belonging here comes back.
    for (let b: usize = 0; b < BUCKETS; b++) {
      const end = load<u32>(ends + (b << 2));
      let at = load<u32>(next + (b << 2));
      while (at < end) {
        let symbol = symAt(at);
        let d = <usize>bucketOf(symbol, depth);
        while (d != b) {
          const slot = next + (d << 2);
          const to = load<u32>(slot);
          store<u32>(slot, to + 1);
          const displaced = symAt(to);
          setSym(to, symbol);
          symbol = displaced;
          d = <usize>bucketOf(symbol, depth);
        }
        setSym(at, symbol);
        at++;
      }
      store<u32>(next + (b << 2), at);
    }
    // Bucket 0 holds at most one text (it ends at `depth`): in place. The byte buckets go on from the next byte.
    let largestLo: u32 = 0;
    let largestN: u32 = 0;
    let start = load<u32>(ends);
    for (let b: usize = 1; b < BUCKETS; b++) {
      const end = load<u32>(ends + (b << 2));
      const m = end - start;
      if (m > largestN) {
        if (largestN > 1) sortRange(largestLo, largestN, depth + 1, level + 1);
        largestLo = start;
        largestN = m;
      } else if (m > 1) sortRange(start, m, depth + 1, level + 1);
      start = end;
    }
    if (largestN < 2) return;
    lo = largestLo;
    n = largestN;
    depth++;
  }
}

// --- the multikey quicksort (Bentley & Sedgewick), for small ranges ---

/** The byte at `depth` of the text of the symbol in slot `i`, or -1 past its end. */
// @ts-ignore: decorator
@inline
function byteAt(i: u32, depth: u32): i32 {
  const symbol = symAt(i);
  return depth < textLength(symbol) ? <i32>load<u8>(textBytes(symbol) + depth) : -1;
}

// @ts-ignore: decorator
@inline
function swap(i: u32, j: u32): void {
  const a = syms + ((<usize>i) << 2);
  const b = syms + ((<usize>j) << 2);
  const x = load<u32>(a);
  store<u32>(a, load<u32>(b));
  store<u32>(b, x);
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

/** Sorts the few symbols in slots [lo, lo + n), whose texts are equal before byte `depth`, by insertion. */
function insertionSort(lo: u32, n: u32, depth: u32): void {
  for (let i = lo + 1; i < lo + n; i++) {
    const symbol = symAt(i);
    const bytes = textBytes(symbol);
    const length = textLength(symbol);
    let j = i;
    while (j > lo) {
      const other = symAt(j - 1);
      if (compareFrom(textBytes(other), textLength(other), bytes, length, depth) <= 0) break;
      setSym(j, other);
      j--;
    }
    setSym(j, symbol);
  }
}

/** Sorts the symbols in slots [lo, lo + n), whose texts are equal before byte `depth`. */
function sortSymbols(lo: u32, n: u32, depth: u32): void {
  while (n > 1) {
    if (n < SMALL) {
      insertionSort(lo, n, depth);
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
    sortSymbols(lo, less, depth);
    sortSymbols(end - greater, greater, depth);
    // The symbols equal to the pivot at this byte: on to the next byte (none past the end: they are one text), or
    // past every byte they share when all were equal here.
    if (v < 0) return;
    const all = less == 0 && greater == 0;
    lo = lo + less;
    n = n - less - greater;
    depth = all ? commonPrefix(lo, n, depth + 1) : depth + 1;
  }
}

// --- merging them into the ranked symbols ---

/**
 * Merges the `n` sorted new symbols into the order, from the back into the order's own array (its capacity holds
 * both): the old symbols after the last new one not yet placed move up as one block, then the new ones after the
 * last old one not yet placed go in below them, each found by galloping down from the end (as TimSort), so new
 * symbols falling in long runs between old ones cost a few comparisons a run. The old symbols before the first
 * new one stay where they are, ranks and all; every other symbol is ranked at its new place.
 */
function merge(n: u32): void {
  let i = orderLen;
  let j = n;
  let k = orderLen + n;
  while (j > 0) {
    const symbol = symAt(j - 1);
    const p = firstAfter(order, i, textBytes(symbol), textLength(symbol));
    if (p < i) {
      const moved = i - p;
      k -= moved;
      memory.copy(order + ((<usize>k) << 2), order + ((<usize>p) << 2), (<usize>moved) << 2);
      for (let x = k; x < k + moved; x++) {
        store<u32>(ranks + ((<usize>load<u32>(order + ((<usize>x) << 2))) << 2), x + 1);
      }
      i = p;
    }
    let q: u32 = 0;
    if (i > 0) {
      const old = load<u32>(order + ((<usize>(i - 1)) << 2));
      q = firstAfter(syms, j, textBytes(old), textLength(old));
    }
    while (j > q) {
      j--;
      k--;
      place(k, symAt(j));
    }
  }
  orderLen += n;
}

/**
 * The first of the sorted symbols [0, end) at `base` whose text is after `bytes`/`length` (texts are distinct):
 * galloping down from the end (1, 2, 4, ... back), then a binary search.
 */
function firstAfter(base: usize, end: u32, bytes: usize, length: u32): u32 {
  let lo: u32 = 0;
  let hi = end;
  let back: u32 = 1;
  while (back <= end) {
    const probe = end - back;
    const symbol = load<u32>(base + ((<usize>probe) << 2));
    if (compareFrom(textBytes(symbol), textLength(symbol), bytes, length, 0) < 0) {
      lo = probe + 1;
      break;
    }
    hi = probe;
    back <<= 1;
  }
  while (lo < hi) {
    const mid = lo + ((hi - lo) >> 1);
    const symbol = load<u32>(base + ((<usize>mid) << 2));
    if (compareFrom(textBytes(symbol), textLength(symbol), bytes, length, 0) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
