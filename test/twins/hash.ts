// TypeScript twin of assembly/lib/hash.ts (BigInt arithmetic: slow, for differential tests only).
const MASK = (1n << 64n) - 1n;
const P1 = 0x9e3779b97f4a7c15n;
const P2 = 0xbf58476d1ce4e5b9n;
const P3 = 0x94d049bb133111ebn;

export function fmix64(x: bigint): bigint {
  x ^= x >> 33n;
  x = (x * 0xff51afd7ed558ccdn) & MASK;
  x ^= x >> 33n;
  x = (x * 0xc4ceb9fe1a85ec53n) & MASK;
  x ^= x >> 33n;
  return x;
}

function rotl(x: bigint, r: bigint): bigint {
  return ((x << r) | (x >> (64n - r))) & MASK;
}

function round(h: bigint, k: bigint): bigint {
  k = (k * P2) & MASK;
  k ^= k >> 31n;
  return rotl(((h ^ k) * P3) & MASK, 27n);
}

export function hashBytes(bytes: Uint8Array, seed = 0n): bigint {
  const len = BigInt(bytes.length);
  let h = (seed ^ ((len * P1) & MASK)) & MASK;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 0;
  for (; i + 8 <= bytes.length; i += 8) h = round(h, view.getBigUint64(i, true));
  if (i < bytes.length) {
    let k = 0n;
    let shift = 0n;
    for (; i < bytes.length; i++, shift += 8n) k |= BigInt(bytes[i]!) << shift;
    h = round(h, k ^ P1);
  }
  return fmix64(h);
}

export function hashU32x2(a: number, b: number, seed = 0n): bigint {
  return fmix64(round(seed ^ P1, (BigInt(b >>> 0) << 32n) | BigInt(a >>> 0)));
}
