/**
 * The two hashes of the storage engine, from hash-wasm: BLAKE3-256 names content (the key), CRC32C guards every
 * header and every payload against corruption. Hashers are stateful WASM instances: a one-shot call runs
 * synchronously from init() to digest(), so one instance serves every caller of a thread; streams get their own.
 */
import { createBLAKE3, createCRC32, type IHasher } from "hash-wasm";

/** The Castagnoli polynomial (reflected), for CRC32C. */
export const CRC32C_POLYNOMIAL = 0x82f63b78;

export interface Checksums {
  /** BLAKE3-256 of `bytes` (32 bytes, a fresh array). */
  blake3(bytes: Uint8Array): Uint8Array;
  /** CRC32C of `bytes` as an unsigned 32-bit number. */
  crc32c(bytes: Uint8Array): number;
}

export async function createChecksums(): Promise<Checksums> {
  const [b3, crc] = await Promise.all([createBLAKE3(256), createCRC32(CRC32C_POLYNOMIAL)]);
  return {
    blake3: (bytes) => b3.init().update(bytes).digest("binary"),
    crc32c: (bytes) => digestCrc(crc.init().update(bytes)),
  };
}

/** A hasher pair for one stream: update with every chunk, then finish. */
export interface StreamHasher {
  update(chunk: Uint8Array): void;
  finish(): { key: Uint8Array; crc: number };
}

export async function createStreamHasher(): Promise<StreamHasher> {
  const [b3, crc] = await Promise.all([createBLAKE3(256), createCRC32(CRC32C_POLYNOMIAL)]);
  b3.init();
  crc.init();
  return {
    update(chunk) {
      b3.update(chunk);
      crc.update(chunk);
    },
    finish: () => ({ key: b3.digest("binary"), crc: digestCrc(crc) }),
  };
}

function digestCrc(hasher: IHasher): number {
  const d = hasher.digest("binary");
  // hash-wasm gives the CRC big-endian.
  return ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
}

/** An incremental CRC32C for one stream of chunks (a blob too large to check in one read). */
export async function createCrc32cStream(): Promise<{ update(chunk: Uint8Array): void; finish(): number }> {
  const crc = await createCRC32(CRC32C_POLYNOMIAL);
  crc.init();
  return {
    update: (chunk) => {
      crc.update(chunk);
    },
    finish: () => digestCrc(crc),
  };
}
