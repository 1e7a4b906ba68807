/**
 * Worker task: BLAKE3 keys and CRC32C checksums of a batch of blobs (runs on the shared WorkerPool, see
 * hashing.ts). One hasher pair per worker thread, created on its first task.
 */
import { type Checksums, createChecksums } from "../../io/checksum.js";

let checks: Promise<Checksums> | undefined;

export interface HashBatchResult {
  /** 32 bytes per blob, in order. */
  keys: Uint8Array;
  /** CRC32C per blob. */
  crcs: Uint32Array;
}

export async function hashBatch(payload: { blobs: Uint8Array[] }): Promise<HashBatchResult> {
  checks ??= createChecksums();
  const c = await checks;
  const keys = new Uint8Array(payload.blobs.length * 32);
  const crcs = new Uint32Array(payload.blobs.length);
  payload.blobs.forEach((blob, i) => {
    keys.set(c.blake3(blob), i * 32);
    crcs[i] = c.crc32c(blob);
  });
  return { keys, crcs };
}
