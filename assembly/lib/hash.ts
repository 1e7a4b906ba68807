// 64-bit hash of a byte range, shared by every kernel that hashes keys (Bloom filter, interner, tables).
// Eight bytes a round (multiply-xorshift), a little-endian tail, murmur3's fmix64 to finish: fast and well mixed,
// not cryptographic. The TypeScript twin is test/twins/hash.ts; both must agree bit for bit.

const P1: u64 = 0x9e3779b97f4a7c15;
const P2: u64 = 0xbf58476d1ce4e5b9;
const P3: u64 = 0x94d049bb133111eb;

// @ts-ignore: decorator
@inline
export function fmix64(x: u64): u64 {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccd;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53;
  x ^= x >> 33;
  return x;
}

// @ts-ignore: decorator
@inline
function round(h: u64, k: u64): u64 {
  k *= P2;
  k ^= k >> 31;
  return rotl<u64>((h ^ k) * P3, 27);
}

export function hashBytes(ptr: usize, len: usize, seed: u64): u64 {
  let h: u64 = seed ^ ((len as u64) * P1);
  let i: usize = 0;
  while (i + 8 <= len) {
    h = round(h, load<u64>(ptr + i));
    i += 8;
  }
  if (i < len) {
    let k: u64 = 0;
    let shift: u64 = 0;
    while (i < len) {
      k |= (load<u8>(ptr + i) as u64) << shift;
      shift += 8;
      i++;
    }
    h = round(h, k ^ P1);
  }
  return fmix64(h);
}

/** Hash of a tuple of u32s (memo-table keys), same mixing. */
// @ts-ignore: decorator
@inline
export function hashU32x2(a: u32, b: u32, seed: u64): u64 {
  return fmix64(round(seed ^ P1, ((b as u64) << 32) | (a as u64)));
}
