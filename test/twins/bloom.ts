// TypeScript twin of assembly/bloom.ts: the same hash (test/twins/hash.ts), block choice, bit positions and bit
// layout, written plainly with BigInt, so a differential test can compare the kernel's bits byte for byte.
// Parameters (blocks, hashes) come from planBloomFilter, the one sizing rule both share. Test-only (slow).
import { hashBytes } from "./hash.js";

const MASK = (1n << 64n) - 1n;
const SEED = 0x426c6f6f6d426c6bn; // "BloomBlk"
const BLOCK_BYTES = 64;

// splitmix64 outputs from seed 0x426c6f6f6d426c6b, forced odd (same table as the kernel).
const SALTS = [
  0xba79998b7f72b7d7n,
  0x01ddddc067771023n,
  0x27ef165f6ca6d773n,
  0xe4be457016bd79b9n,
  0xb268ff6dce1b9c0bn,
  0x3a70d8ca77c142d1n,
  0x3406d18fe7b84df3n,
  0x7635f93b03d69aabn,
  0x134376d0afa0dd53n,
  0x9d87cdd3c51700d7n,
  0xd3337ecf56140805n,
  0x4388cf60c5b83e69n,
  0x8804490e0af84625n,
  0x812c05b2ce2e2ed1n,
  0x4926984f352701fdn,
  0xf9be30e86e8194bdn,
  0x08eb4127e449f231n,
  0x5162b726dedc3f09n,
  0x86f36961023dd2fdn,
  0x9da70b4bc140594dn,
  0x0933c213874ea4ffn,
  0xda2131eef7fc2139n,
  0xaf3d97a68d4a96c3n,
  0x20df127c73828409n,
  0xee230ff169d923afn,
  0x1a8d4fdfefc9d6c1n,
  0x4df102b0d39bb63dn,
  0x4cbf323e3bc6f681n,
  0x7d40285c69b01cbbn,
  0x6efd2850f2f1f1fdn,
  0xda6a4b1144773bf1n,
  0x4d4b01bcd44543c7n,
];

const encoder = new TextEncoder();

export class BloomTwin {
  /** blocks × 64 bytes; bit p of block b is bit (p & 7) of byte b * 64 + (p >> 3) (little-endian u64 words). */
  readonly bits: Uint8Array;

  constructor(
    readonly blocks: number,
    readonly hashes: number,
  ) {
    this.bits = new Uint8Array(blocks * BLOCK_BYTES);
  }

  add(key: string | Uint8Array): void {
    for (const [byte, mask] of this.#positions(key)) this.bits[byte]! |= mask;
  }

  mightContain(key: string | Uint8Array): boolean {
    for (const [byte, mask] of this.#positions(key)) if ((this.bits[byte]! & mask) === 0) return false;
    return true;
  }

  addMany(keys: readonly (string | Uint8Array)[]): void {
    for (const key of keys) this.add(key);
  }

  mightContainMany(keys: readonly (string | Uint8Array)[]): Uint8Array {
    return Uint8Array.from(keys, (key) => (this.mightContain(key) ? 1 : 0));
  }

  clear(): void {
    this.bits.fill(0);
  }

  /** (byte index, bit mask) of each of the key's bits. */
  #positions(key: string | Uint8Array): [number, number][] {
    const h = hashBytes(typeof key === "string" ? encoder.encode(key) : key, SEED);
    const block = Number(((h >> 32n) * BigInt(this.blocks)) >> 32n);
    const out: [number, number][] = [];
    for (let i = 0; i < this.hashes; i++) {
      const pos = Number(((h * SALTS[i]!) & MASK) >> 55n);
      out.push([block * BLOCK_BYTES + (pos >> 3), 1 << (pos & 7)]);
    }
    return out;
  }
}
