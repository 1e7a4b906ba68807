/**
 * Hashing a batch of blobs: on this thread for small batches, split across the worker pool from
 * getParallelThreshold("hash") blobs up (setParallelThreshold("hash", n) moves the line; Infinity keeps it here).
 */

import type { Checksums } from "../../io/checksum.js";
import type { WorkerPool } from "../../parallel/pool.js";
import { getParallelThreshold } from "../../parallel/thresholds.js";
import type { HashBatchResult } from "./hash-task.js";

const task = new URL("./hash-task.js", import.meta.url);

export interface HashedBlob {
  key: Uint8Array;
  crc: number;
}

export async function hashBlobs(
  blobs: readonly Uint8Array[],
  local: Checksums,
  pool: () => WorkerPool,
): Promise<HashedBlob[]> {
  if (blobs.length < getParallelThreshold("hash")) {
    return blobs.map((blob) => ({ key: local.blake3(blob), crc: local.crc32c(blob) }));
  }
  const workers = pool();
  const parts = Math.max(1, Math.min(workers.maxThreads, Math.ceil(blobs.length / 16)));
  const per = Math.ceil(blobs.length / parts);
  const results = await Promise.all(
    Array.from({ length: parts }, (_, p) => {
      // A view would carry its whole underlying buffer to the worker: send exact copies of views.
      const slice = blobs
        .slice(p * per, (p + 1) * per)
        .map((b) => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice()));
      return workers.run<HashBatchResult>(task, "hashBatch", { blobs: slice });
    }),
  );
  const out: HashedBlob[] = [];
  for (const r of results) {
    for (let i = 0; i < r.crcs.length; i++)
      out.push({ key: r.keys.slice(i * 32, i * 32 + 32), crc: r.crcs[i]! });
  }
  return out;
}
