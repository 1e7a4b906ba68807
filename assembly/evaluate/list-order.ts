// The order list objects returns its results in (Engine.listObjects' answers are sorted by JavaScript's default
// string comparison), kept in the kernel across calls: symbols are never freed and their texts never change, so
// every symbol listed once gets a rank among all the symbols listed so far, and a listing is put in order by its
// results' ranks (a bitmap over the ranks, read in order). Only the symbols a listing meets for the first time
// are sorted (by their bytes in the interner) and merged into the ranked ones. The sort is a most-significant-first
// radix sort on 8 bytes at a time (a byte-wise multikey quicksort cost ~200 ns a text on a 20k-text first
// listing, more than the walk): each text's next 8 bytes are read as one big-endian u64 key, the keys are sorted by
// a least-significant-byte radix sort over the bytes where some keys differ (the others need no pass), and each
// run of equal keys goes on to the next 8 bytes, after the texts of the run that end inside these 8 (their keys are
// padded: see sortRange); small ranges go to a multikey quicksort. The sort moves symbols, never texts or records
// (a text is read through the interner's entries): it is bound by memory, 24 bytes of scratch a symbol (was 48 with
// records). With the two-sided merge (merge), the order of a first listing of the peer workload's ids, measured
// alone: 20k objects 1.4 -> 1.0 ms, 30k more among them 1.7 -> 1.2 ms.
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
// Below this many symbols a range is sorted by insertion.
// @ts-ignore: decorator
@inline const SMALL: u32 = 12;
// Below this many symbols a range is sorted by the multikey quicksort instead of the radix sort.
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
// The new symbols while they are sorted, and the radix sort's scratch, indexed alike (a range sorts in its own
// slots, so a run sorted recursively leaves the rest of its parent's keys alone): the symbols and their keys, the
// arrays a pass writes (passes go back and forth), and the 8 byte histograms of a range. A symbol's text is read
// through the interner's entries: no record of it is built or moved.
let syms: usize = 0;
let symsNext: usize = 0;
let keys: usize = 0;
let keysNext: usize = 0;
let sortCap: u32 = 0;
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

/** Bytes the order holds (ranks, ranked symbols, merge and sort scratch, the fresh block, the bitmap). */
export function orderMemoryBytes(): usize {
  return (
    ((<usize>ranksCap + <usize>orderCap + <usize>spareCap + <usize>bitsCap) << 2) +
    <usize>sortCap * 24 +
    (counts != 0 ? 8 * 256 * 4 : 0) +
    freshCap
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
  return load<u32>(entries + <usize>symbol * I_ENTRY_BYTES, 4);
}

// @ts-ignore: decorator
@inline
function symAt(i: u32): u32 {
  return load<u32>(syms + ((<usize>i) << 2));
}

/**
 * Puts the `count` distinct symbols at `results` in the order of their texts in interner `interner` (in place),
 * ranking those never ranked before: how many were new (listed at list_objects_fresh()), or -1, changing
 * nothing, when a new one's text holds a character above U+FFFF (the caller then sorts the texts itself).
 */
export function list_objects_order(interner: usize, results: usize, count: u32): i32 {
  entries = load<usize>(interner, I_ENTRIES);
  if (count > sortCap) {
    if (syms != 0) {
      heap.free(syms);
      heap.free(symsNext);
      heap.free(keys);
      heap.free(keysNext);
    }
    sortCap = count;
    syms = heap.alloc((<usize>count) << 2);
    symsNext = heap.alloc((<usize>count) << 2);
    keys = heap.alloc((<usize>count) << 3);
    keysNext = heap.alloc((<usize>count) << 3);
  }
  // The new symbols, and the prefix all their texts share (a listing's texts share a long one, `file:` and a
  // folder's id: skipped at once, not a byte per level).
  let n: u32 = 0;
  let top: u32 = 0;
  let firstBytes: usize = 0;
  let firstLength: u32 = 0;
  let prefix: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const symbol = load<u32>(results + ((<usize>i) << 2));
    if (symbol < ranksCap && load<u32>(ranks + ((<usize>symbol) << 2)) != 0) continue;
    const bytes = textBytes(symbol);
    const length = textLength(symbol);
    if (!belowAstral(bytes, length)) return -1;
    if (n == 0) {
      firstBytes = bytes;
      firstLength = length;
      prefix = length;
    } else {
      if (length < prefix) prefix = length;
      // 8 bytes at a time while both texts have them (the first differing byte is the lowest set byte of the XOR:
      // memory is little-endian), then a byte at a time; only up to the prefix so far.
      const both = length < firstLength ? length : firstLength;
      let d: u32 = 0;
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
    store<u32>(syms + ((<usize>n) << 2), symbol);
    if (symbol > top) top = symbol;
    n++;
  }
  if (n > 0) {
    sortRange(0, n, prefix);
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

// --- sorting the new symbols ---

/** The 8 bytes of a text from `depth` as a big-endian key, padded with zero bytes past its end. */
// @ts-ignore: decorator
@inline
function keyAt(bytes: usize, length: u32, depth: u32): u64 {
  if (length >= depth + 8) return bswap<u64>(load<u64>(bytes + depth));
  if (length <= depth) return 0;
  // The text's last 8 bytes, its bytes from `depth` shifted to the top (the bytes before `depth` shift out).
  if (length >= 8) return bswap<u64>(load<u64>(bytes + length - 8)) << (<u64>(8 - (length - depth)) << 3);
  let key: u64 = 0;
  for (let b: u32 = 0; b < 8; b++) {
    key <<= 8;
    if (depth + b < length) key |= <u64>load<u8>(bytes + depth + b);
  }
  return key;
}

/** Sorts the symbols in slots [lo, lo + n), whose texts are equal before byte `depth` (and all at least that long). */
function sortRange(lo: u32, n: u32, depth: u32): void {
  // One run is sorted by going round this loop, the others by a call each: the run left for the loop is the largest,
  // so a call sorts at most half of its caller's range and the calls nest at most log2(n) deep, however long a
  // prefix the texts share (a call per run nested once per 8 shared bytes, and 32 KB ids ran out of stack).
  for (;;) {
    if (n < RADIX_MIN) {
      sortSymbols(lo, n, depth);
      return;
    }
    if (counts == 0) counts = heap.alloc(8 * 256 * 4);
    let k0 = keys + ((<usize>lo) << 3);
    let s0 = syms + ((<usize>lo) << 2);
    // The keys, and which of their bytes vary (the bits where some key differs from the first): only those bytes
    // get a histogram and a pass.
    let first: u64 = 0;
    let varying: u64 = 0;
    for (let i: u32 = 0; i < n; i++) {
      const symbol = load<u32>(s0 + ((<usize>i) << 2));
      const key = keyAt(textBytes(symbol), textLength(symbol), depth);
      if (i == 0) first = key;
      varying |= key ^ first;
      store<u64>(k0 + ((<usize>i) << 3), key);
    }
    // Least significant byte first, over the bytes that vary.
    let k1 = keysNext + ((<usize>lo) << 3);
    let s1 = symsNext + ((<usize>lo) << 2);
    let swapped = false;
    for (let p: u32 = 0; p < 8; p++) {
      const shift = <u64>p << 3;
      if (((varying >> shift) & 0xff) == 0) continue;
      const c = counts + ((<usize>p) << 10);
      memory.fill(c, 0, 256 * 4);
      for (let i: u32 = 0; i < n; i++) {
        const slot = c + ((<usize>(<u32>(load<u64>(k0 + ((<usize>i) << 3)) >> shift) & 0xff)) << 2);
        store<u32>(slot, load<u32>(slot) + 1);
      }
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
        store<u32>(s1 + ((<usize>at) << 2), load<u32>(s0 + ((<usize>i) << 2)));
      }
      const tk = k0;
      k0 = k1;
      k1 = tk;
      const ts = s0;
      s0 = s1;
      s1 = ts;
      swapped = !swapped;
    }
    if (swapped) {
      // The sorted range is in the pass arrays: back to the symbols' own slots (the runs below sort there).
      memory.copy(keys + ((<usize>lo) << 3), k0, (<usize>n) << 3);
      memory.copy(syms + ((<usize>lo) << 2), s0, (<usize>n) << 2);
      k0 = keys + ((<usize>lo) << 3);
    }
    // Runs of equal keys. A text ending inside these 8 bytes has a key padded with zero bytes, so a text with the
    // same key holds zero bytes where the padding is: the shorter text is a prefix of the longer, and comes first.
    // The texts ending inside the 8 bytes go to the front of the run, shortest first (two of one length and one key
    // would be one text, and texts are distinct); the rest, equal through these 8 bytes, go on to the next 8.
    const end = depth + 8;
    let largestLo: u32 = 0;
    let largestN: u32 = 0;
    let i: u32 = 0;
    while (i < n) {
      const key = load<u64>(k0 + ((<usize>i) << 3));
      let j = i + 1;
      while (j < n && load<u64>(k0 + ((<usize>j) << 3)) == key) j++;
      if (j - i > 1) {
        let full = lo + i;
        for (let x = lo + i; x < lo + j; x++) {
          if (textLength(symAt(x)) >= end) continue;
          // Insertion by length among the short ones moved so far (few: one, when no text holds a zero byte).
          if (x != full) swap(full, x);
          let y = full;
          while (y > lo + i && textLength(symAt(y - 1)) > textLength(symAt(y))) {
            swap(y - 1, y);
            y--;
          }
          full++;
        }
        const runN = lo + j - full;
        if (runN > largestN) {
          if (largestN > 1) sortRange(largestLo, largestN, end);
          largestLo = full;
          largestN = runN;
        } else if (runN > 1) sortRange(full, runN, end);
      }
      i = j;
    }
    if (largestN < 2) return;
    lo = largestLo;
    n = largestN;
    depth = end;
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

/**
 * Sorts the few symbols in slots [lo, lo + n), whose texts are equal before byte `depth`, by insertion on their
 * 8-byte keys from `depth` (kept in their slots of `keys`, free here: a caller sorting a range has read its keys
 * before it sorts the range's parts), comparing the texts only where two keys are equal (a padded key).
 */
function insertionSort(lo: u32, n: u32, depth: u32): void {
  const k = keys + ((<usize>lo) << 3);
  const s = syms + ((<usize>lo) << 2);
  for (let i: u32 = 0; i < n; i++) {
    const symbol = load<u32>(s + ((<usize>i) << 2));
    store<u64>(k + ((<usize>i) << 3), keyAt(textBytes(symbol), textLength(symbol), depth));
  }
  for (let i: u32 = 1; i < n; i++) {
    const key = load<u64>(k + ((<usize>i) << 3));
    const symbol = load<u32>(s + ((<usize>i) << 2));
    let j = i;
    while (j > 0) {
      const before = load<u64>(k + ((<usize>(j - 1)) << 3));
      if (before < key) break;
      const other = load<u32>(s + ((<usize>(j - 1)) << 2));
      if (
        before == key &&
        compareFrom(textBytes(other), textLength(other), textBytes(symbol), textLength(symbol), depth) <= 0
      )
        break;
      store<u64>(k + ((<usize>j) << 3), before);
      store<u32>(s + ((<usize>j) << 2), other);
      j--;
    }
    store<u64>(k + ((<usize>j) << 3), key);
    store<u32>(s + ((<usize>j) << 2), symbol);
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
    // The symbols equal to the pivot at this byte: on to the next byte (none past the end: they are one text).
    if (v < 0) return;
    lo = lo + less;
    n = n - less - greater;
    depth++;
  }
}

// --- merging them into the ranked symbols ---

/** Merges the `n` sorted new symbols into the order, ranking every symbol again. */
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
  // Two sorted runs merged by galloping on both sides (as TimSort): the new symbols before the next old one, then
  // the old ones before the next new one, each found in a number of comparisons that grows with the log of the
  // run's length. New symbols falling between old ones in long runs (a listing's files, folder by folder) cost a
  // few comparisons a run; new and old interleaved one by one, two a symbol.
  let i: u32 = 0;
  let j: u32 = 0;
  let k: u32 = 0;
  while (j < n) {
    // The new symbols before the old one ranked i (all of them when no old one is left).
    let next = n;
    if (i < orderLen) {
      const old = load<u32>(order + ((<usize>i) << 2));
      next = firstNewAfter(j, n, textBytes(old), textLength(old));
    }
    for (; j < next; j++, k++) {
      const symbol = symAt(j);
      store<u32>(spare + ((<usize>k) << 2), symbol);
      store<u32>(ranks + ((<usize>symbol) << 2), k + 1);
    }
    if (j == n) break;
    // The old symbols before the new one j.
    const symbol = symAt(j);
    const upto = firstOldAfter(i, textBytes(symbol), textLength(symbol));
    k = moveOld(i, upto, k);
    i = upto;
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

/** The first old symbol ranked at or after `from` whose text is after `bytes`/`length` (texts are distinct). */
function firstOldAfter(from: u32, bytes: usize, length: u32): u32 {
  let lo = from;
  let hi = from;
  let step: u32 = 1;
  while (hi < orderLen) {
    const symbol = load<u32>(order + ((<usize>hi) << 2));
    if (compareFrom(textBytes(symbol), textLength(symbol), bytes, length, 0) > 0) break;
    lo = hi + 1;
    hi = step > orderLen - from ? orderLen : from + step;
    step <<= 1;
  }
  while (lo < hi) {
    const mid = lo + ((hi - lo) >> 1);
    const symbol = load<u32>(order + ((<usize>mid) << 2));
    if (compareFrom(textBytes(symbol), textLength(symbol), bytes, length, 0) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first new symbol in slots [from, n) whose text is after `bytes`/`length` (texts are distinct). */
function firstNewAfter(from: u32, n: u32, bytes: usize, length: u32): u32 {
  let lo = from;
  let hi = from;
  let step: u32 = 1;
  while (hi < n) {
    const symbol = symAt(hi);
    if (compareFrom(textBytes(symbol), textLength(symbol), bytes, length, 0) > 0) break;
    lo = hi + 1;
    hi = step > n - from ? n : from + step;
    step <<= 1;
  }
  while (lo < hi) {
    const mid = lo + ((hi - lo) >> 1);
    const symbol = symAt(mid);
    if (compareFrom(textBytes(symbol), textLength(symbol), bytes, length, 0) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Moves the old ranked symbols [from, to) to the merged order from position `k` on, ranking them: the next k. */
function moveOld(from: u32, to: u32, k: u32): u32 {
  if (from == to) return k;
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
  memory.copy(fresh + 4, syms, (<usize>n) << 2);
}
