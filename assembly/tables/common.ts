// What the interner (interner.ts) and the memo tables (memo.ts) share: the "no value" word, the largest block they
// allocate, how a slot array is sized, the zero slot array every empty structure starts with, and byte equality.
//
// A batch call that would pass a structure's hard limit returns LIMIT_REACHED and changes nothing; memo_set_many
// returns BAD_VALUE - i when values[i] is ABSENT. Both are shared with src/kernels/abi/intern.ts.

// "No symbol" / "no value": symbols never reach it, memo values may not be it. Shared with src/kernels/abi/intern.ts.
// @ts-ignore: decorator
@inline export const ABSENT: u32 = 0xffffffff;
// Largest single allocation we ask TLSF for (its BLOCK_MAXSIZE is 1 GiB minus the block overhead).
// @ts-ignore: decorator
@inline export const MAX_BLOCK: u64 = (1 << 30) - 64;
// Smallest slot array once a structure holds anything.
// @ts-ignore: decorator
@inline export const MIN_CAPACITY: u32 = 8;

// A capacity-1 slot array of zeros shared by every empty structure, so that creating one costs only its header.
// A zero slot reads as empty in both layouts (interner: symbol+1 == 0; memo: generation 0 is never current). It is
// never written, except memo_clear's zero-fill on generation wrap, which writes zeros over zeros.
export const EMPTY_SLOTS: usize = memory.data(24, 16);

/** Power-of-two slot count (≥ MIN_CAPACITY) whose load bound (3/4) admits `n` entries; 0 if over `maxSlots`. */
export function capacityFor(n: u64, maxSlots: u64): u32 {
  let cap: u64 = MIN_CAPACITY;
  while ((cap * 3) >> 2 < n) cap <<= 1;
  return cap > maxSlots ? 0 : <u32>cap;
}

/** Byte equality of two ranges, 8 bytes a step (unaligned loads are fine in WebAssembly). */
// @ts-ignore: decorator
@inline
export function bytesEqual(a: usize, b: usize, n: usize): bool {
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

// @ts-ignore: decorator
@inline export const LIMIT_REACHED: i32 = -1;
// @ts-ignore: decorator
@inline export const BAD_VALUE: i32 = -2;
