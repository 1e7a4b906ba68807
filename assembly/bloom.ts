export { alloc, free } from "./lib/memory";
import { hashBytes } from "./lib/hash";

// Blocked Bloom filter (Putze, Sanders, Singler 2007): every key sets all of its k bits inside ONE 512-bit block
// (one cache line), so an add or a lookup touches one line instead of k. Costs a few % more bits than a classic
// filter for the same false-positive rate; src/kernels/bloom-plan.ts sizes the filter with that cost included.
//
// Key -> bits, one 64-bit hash h = hashBytes(utf8, SEED):
//   block     = (hi32(h) * blocks) >> 32                      (Lemire's multiply-shift range reduction)
//   bit i<k   = (h * SALTS[i]) >> 55                          (top 9 bits: 0..511 inside the block)
// h * SALTS[i] is a bijection of h for an odd salt, so each position is uniform; different salts make them
// behave as independent (the sizing model assumes independent positions, and measurement agrees).
// Bits are little-endian u64 words: bit p of a block is bit (p & 63) of word (p >> 6). The TypeScript twin
// (test/twins/bloom.ts) and the serialized format depend on this layout: change it only with a format version.
//
// A filter handle is the address of its bits (64-byte aligned). The 64 bytes before it hold its header:
//   f - 4: blocks (u32)   f - 8: k (u32)   f - 12: address returned by heap.alloc (for free)

const SEED: u64 = 0x426c6f6f6d426c6b; // "BloomBlk"
const CHECKSUM_SEED: u64 = 0x426c6f6f6d53756d; // "BloomSum"
// Shared with src/kernels/abi/bloom.ts (the TypeScript side sizes filters and its memory with them).
const BLOCK_BITS: u32 = 512; // one 64-byte cache line
const MAX_K: u32 = 32;
const FILTER_OVERHEAD: usize = 128; // bytes besides the bits: the 64-byte header, up to 64 to align the bits

// splitmix64 outputs from seed 0x426c6f6f6d426c6b, forced odd.
const SALTS = memory.data<u64>([
  0xba79998b7f72b7d7, 0x01ddddc067771023, 0x27ef165f6ca6d773, 0xe4be457016bd79b9,
  0xb268ff6dce1b9c0b, 0x3a70d8ca77c142d1, 0x3406d18fe7b84df3, 0x7635f93b03d69aab,
  0x134376d0afa0dd53, 0x9d87cdd3c51700d7, 0xd3337ecf56140805, 0x4388cf60c5b83e69,
  0x8804490e0af84625, 0x812c05b2ce2e2ed1, 0x4926984f352701fd, 0xf9be30e86e8194bd,
  0x08eb4127e449f231, 0x5162b726dedc3f09, 0x86f36961023dd2fd, 0x9da70b4bc140594d,
  0x0933c213874ea4ff, 0xda2131eef7fc2139, 0xaf3d97a68d4a96c3, 0x20df127c73828409,
  0xee230ff169d923af, 0x1a8d4fdfefc9d6c1, 0x4df102b0d39bb63d, 0x4cbf323e3bc6f681,
  0x7d40285c69b01cbb, 0x6efd2850f2f1f1fd, 0xda6a4b1144773bf1, 0x4d4b01bcd44543c7,
]);

// @ts-ignore: decorator
@inline
function blockAddress(f: usize, blocks: u32, h: u64): usize {
  return f + (<usize>(((h >> 32) * (blocks as u64)) >> 32) << 6);
}

// @ts-ignore: decorator
@inline
function insertHash(f: usize, blocks: u32, k: u32, h: u64): void {
  const block = blockAddress(f, blocks, h);
  for (let i: u32 = 0; i < k; i++) {
    const pos = <u32>((h * load<u64>(SALTS + ((i as usize) << 3))) >> 55);
    const word = block + ((pos >> 6) << 3);
    store<u64>(word, load<u64>(word) | ((1 as u64) << (pos & 63)));
  }
}

// @ts-ignore: decorator
@inline
function containsHash(f: usize, blocks: u32, k: u32, h: u64): u32 {
  const block = blockAddress(f, blocks, h);
  // All k probes, no early exit: they read one cache line, and an exit at a data-dependent probe mispredicts
  // about once a key. Measured on batches: +16% with half the keys absent, -8% with all present.
  let missing: u64 = 0;
  for (let i: u32 = 0; i < k; i++) {
    const pos = <u32>((h * load<u64>(SALTS + ((i as usize) << 3))) >> 55);
    missing |= ~load<u64>(block + ((pos >> 6) << 3)) & ((1 as u64) << (pos & 63));
  }
  return <u32>(missing == 0);
}

/** A new, empty filter of `blocks` 512-bit blocks and `k` bits a key; returns its handle (the bits' address). */
export function create(blocks: u32, k: u32): usize {
  if (blocks == 0 || k == 0 || k > MAX_K) unreachable();
  const bytes = (blocks as usize) * (BLOCK_BITS >> 3);
  const raw = heap.alloc(bytes + FILTER_OVERHEAD);
  const f = (raw + 64 + 63) & ~(63 as usize);
  store<u32>(f - 4, blocks);
  store<u32>(f - 8, k);
  store<usize>(f - 12, raw);
  memory.fill(f, 0, bytes);
  return f;
}

export function destroy(f: usize): void {
  heap.free(load<usize>(f - 12));
}

/** Address of the bit array (blocks * 64 bytes); bench/bloom.bench.ts times it as the cheapest export call. */
export function bits(f: usize): usize {
  return f;
}

export function clear(f: usize): void {
  memory.fill(f, 0, (load<u32>(f - 4) as usize) << 6);
}

export function add(f: usize, ptr: usize, len: usize): void {
  insertHash(f, load<u32>(f - 4), load<u32>(f - 8), hashBytes(ptr, len, SEED));
}

export function mightContain(f: usize, ptr: usize, len: usize): u32 {
  return containsHash(f, load<u32>(f - 4), load<u32>(f - 8), hashBytes(ptr, len, SEED));
}

// Batches hash a group of keys first, then probe them: the hashes are independent long multiply chains that the
// CPU overlaps when no probe sits between them (measured ≈15-25% faster than hash-probe-hash-probe).
const GROUP: u32 = 8;
const HASHES = memory.data(8 * GROUP);

/** Hashes keys first .. first + n - 1 into HASHES; returns the end offset of the last one. */
// @ts-ignore: decorator
@inline
function hashGroup(data: usize, ends: usize, first: u32, n: u32, start: u32): u32 {
  for (let j: u32 = 0; j < n; j++) {
    const end = load<u32>(ends + (((first + j) as usize) << 2));
    store<u64>(HASHES + ((j as usize) << 3), hashBytes(data + start, end - start, SEED));
    start = end;
  }
  return start;
}

/** Adds `count` keys packed as bytes at `data`; key i is data[ends[i-1] .. ends[i]) (ends[-1] = 0). */
export function addMany(f: usize, data: usize, ends: usize, count: u32): void {
  const blocks = load<u32>(f - 4);
  const k = load<u32>(f - 8);
  let start: u32 = 0;
  for (let i: u32 = 0; i < count; i += GROUP) {
    const n = min(GROUP, count - i);
    start = hashGroup(data, ends, i, n, start);
    for (let j: u32 = 0; j < n; j++) insertHash(f, blocks, k, load<u64>(HASHES + ((j as usize) << 3)));
  }
}

/** Looks up `count` packed keys (layout as addMany), writing 1 (maybe present) or 0 (absent) to out[i]. */
export function mightContainMany(f: usize, data: usize, ends: usize, count: u32, out: usize): u32 {
  const blocks = load<u32>(f - 4);
  const k = load<u32>(f - 8);
  let start: u32 = 0;
  let hits: u32 = 0;
  for (let i: u32 = 0; i < count; i += GROUP) {
    const n = min(GROUP, count - i);
    start = hashGroup(data, ends, i, n, start);
    for (let j: u32 = 0; j < n; j++) {
      const hit = containsHash(f, blocks, k, load<u64>(HASHES + ((j as usize) << 3)));
      store<u8>(out + i + j, hit as u8);
      hits += hit;
    }
  }
  return hits;
}

/** Number of set bits (for fill-ratio and cardinality estimates). */
export function popCount(f: usize): u64 {
  const end = f + ((load<u32>(f - 4) as usize) << 6);
  let n: u64 = 0;
  for (let p = f; p < end; p += 8) n += popcnt<u64>(load<u64>(p));
  return n;
}

/** 64-bit hash of the bit array, stored in the serialized form so corruption is detected, not trusted. */
export function checksum(f: usize): u64 {
  return hashBytes(f, (load<u32>(f - 4) as usize) << 6, CHECKSUM_SEED);
}
