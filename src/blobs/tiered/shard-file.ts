/**
 * The shard file of the erasure-coded (warm) tier, version 1: a 64-byte header, then the shard's bytes.
 * Little-endian:
 *   0  magic "NXEC"        4  version (1)     5  k      6  m      7  shard index
 *   8  object size (u64)  16  shard size (u32)      20  CRC32C of the shard bytes
 *  24  object key (32 bytes, the BLAKE3 digest)     56  reserved (0)
 *  60  CRC32C of bytes 0..59
 * A header that fails its checksum decodes to undefined: the tier then treats the shard as lost, never trusted.
 */
import { createCRC32, type IHasher } from "hash-wasm";

export const SHARD_HEADER_BYTES = 64;
const MAGIC = 0x4345584e; // "NXEC" read as a little-endian u32
const VERSION = 1;
const CRC32C_POLYNOMIAL = 0x82f63b78;

export interface ShardHeader {
  dataShards: number;
  parityShards: number;
  index: number;
  size: number;
  shardSize: number;
  crc: number;
  key: string;
}

let crcHasher: Promise<IHasher> | undefined;
/** CRC32C (Castagnoli), hash-wasm's CRC32 with the Castagnoli polynomial. */
export async function crc32cHasher(): Promise<IHasher> {
  crcHasher ??= createCRC32(CRC32C_POLYNOMIAL);
  return crcHasher;
}

export function crc32c(hasher: IHasher, bytes: Uint8Array): number {
  hasher.init();
  hasher.update(bytes);
  const digest = hasher.digest("binary");
  return ((digest[0]! << 24) | (digest[1]! << 16) | (digest[2]! << 8) | digest[3]!) >>> 0;
}

export function encodeShardHeader(hasher: IHasher, header: ShardHeader): Uint8Array {
  const bytes = new Uint8Array(SHARD_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  bytes[4] = VERSION;
  bytes[5] = header.dataShards;
  bytes[6] = header.parityShards;
  bytes[7] = header.index;
  view.setBigUint64(8, BigInt(header.size), true);
  view.setUint32(16, header.shardSize, true);
  view.setUint32(20, header.crc, true);
  bytes.set(Buffer.from(header.key, "hex"), 24);
  view.setUint32(60, crc32c(hasher, bytes.subarray(0, 60)), true);
  return bytes;
}

/** The header, or undefined when it is not a valid version-1 shard header. */
export function decodeShardHeader(hasher: IHasher, bytes: Uint8Array): ShardHeader | undefined {
  if (bytes.length < SHARD_HEADER_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, SHARD_HEADER_BYTES);
  if (view.getUint32(0, true) !== MAGIC || bytes[4] !== VERSION) return undefined;
  if (view.getUint32(60, true) !== crc32c(hasher, bytes.subarray(0, 60))) return undefined;
  return {
    dataShards: bytes[5]!,
    parityShards: bytes[6]!,
    index: bytes[7]!,
    size: Number(view.getBigUint64(8, true)),
    shardSize: view.getUint32(16, true),
    crc: view.getUint32(20, true),
    key: Buffer.from(bytes.subarray(24, 56)).toString("hex"),
  };
}

/** The shape (k, m, sizes) most valid shards agree on. */
export function consensus(found: Map<number, { header: ShardHeader }>): ShardHeader | undefined {
  const votes = new Map<string, { header: ShardHeader; count: number }>();
  for (const { header } of found.values()) {
    const id = `${header.dataShards}/${header.parityShards}/${header.size}/${header.shardSize}`;
    const vote = votes.get(id);
    if (vote) vote.count++;
    else votes.set(id, { header, count: 1 });
  }
  let best: { header: ShardHeader; count: number } | undefined;
  for (const vote of votes.values()) if (best === undefined || vote.count > best.count) best = vote;
  return best?.header;
}

export function sameShape(a: ShardHeader, b: ShardHeader): boolean {
  return (
    a.dataShards === b.dataShards &&
    a.parityShards === b.parityShards &&
    a.size === b.size &&
    a.shardSize === b.shardSize
  );
}
