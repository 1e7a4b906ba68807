/**
 * The volume store's options (checked by validateOptions into the Settings the store runs on) and the shapes of
 * what it returns: put results, stats, scrub progress and results.
 */
import type { FsyncPolicy } from "../../io/fs-io.js";
import { WorkerPool } from "../../parallel/pool.js";
import { NexusError } from "../../util/errors.js";
import type { CompactHooks } from "./compaction.js";
import type { CorruptNeedle } from "./recovery.js";

export type { FsyncPolicy } from "../../io/fs-io.js";

export interface StoreOptions {
  /** The store directory (created when missing). One writer at a time: a second gets NexusError "locked". */
  dir: string;
  /** A volume takes new needles until it reaches this many bytes (default 1 GiB; 4 KiB .. 28 GiB). */
  volumeSize?: number;
  /**
   * When a put or delete is acknowledged: "always" syncs each write before the next starts, "batch" (default)
   * acknowledges after a sync shared by the writes in flight (group commit), "never" leaves it to the OS (writes
   * survive a crash of the process, not of the machine). Every policy syncs on rollover and close.
   */
  fsync?: FsyncPolicy;
  /** Garbage ratio from which compact() rewrites a volume (default 0.3). */
  compactThreshold?: number;
  /** Compact in the background when a delete takes a volume past compactThreshold (default false). */
  autoCompact?: boolean;
  /** Worker pool for hashing large batches (default: one the store starts on demand and ends in close()). */
  pool?: WorkerPool;
  /** Blobs from putStream are kept in memory up to this size, then spilled to a staging file (default 8 MiB). */
  streamBufferBytes?: number;
  /** Test hooks (not part of the API). */
  testing?: {
    /** Keep only this many low bits of the index key, to make prefix collisions happen. */
    prefixBits?: number;
    onCompactStep?: CompactHooks["onStep"];
  };
}

export interface PutResult {
  /** BLAKE3-256 of the content, 64 lowercase hex characters. */
  key: string;
  size: number;
  /** True when the content was already stored (its reference count went up). */
  deduped: boolean;
}

export interface StoreStats {
  /** Live blobs (distinct contents). */
  needles: number;
  /** On-disk bytes of live needles (headers and padding included). */
  liveBytes: number;
  /** On-disk bytes compaction can reclaim (dead needles, reference records). */
  garbageBytes: number;
  volumes: number;
  /** Bytes of WASM memory the needle index holds: indexFixedBytes plus what its entries take. */
  indexBytes: number;
  /**
   * The index's memory when empty (code data, lookup buffers, the first pages): paid once per store, whatever
   * it holds.
   */
  indexFixedBytes: number;
  /**
   * The marginal RAM cost of a needle: (indexBytes - indexFixedBytes) / needles. WASM memory grows in 64 KiB
   * pages, so in a small store it is 0 or lumpy; it settles near 15 B from about a million needles.
   */
  indexBytesPerNeedle: number;
  /** indexBytes / needles: the fixed part included, so it is large for a small store (hundreds of bytes). */
  bytesPerNeedle: number;
  /** Needles found corrupt so far (reported, never served); see corruptNeedles(). */
  corruptNeedles: number;
}

export interface ScrubProgress {
  /** Live needles checked so far, of `total` (the live set when the pass began). */
  checked: number;
  total: number;
  bytesChecked: number;
  /** Needles found corrupt so far in this pass. */
  corrupt: number;
}

export interface ScrubOptions {
  /** Called every 256 needles or 4 MiB checked, and once at the end. */
  onProgress?: (progress: ScrubProgress) => void;
  /** Stops the pass (the result says `stopped`). */
  signal?: AbortSignal;
  /** Also check each blob against its BLAKE3 key (slower; the CRC32C check always runs). */
  verifyHash?: boolean;
}

export interface ScrubResult {
  checked: number;
  bytesChecked: number;
  /** The needles found corrupt in this pass (also in corruptNeedles()). A put of their content repairs them. */
  corrupt: CorruptNeedle[];
  stopped: boolean;
}

export interface GetOptions {
  /** Also check the content against its BLAKE3 key (the CRC32C check always runs). */
  verifyHash?: boolean;
}

const DEFAULT_VOLUME_SIZE = 2 ** 30;
const MIN_VOLUME_SIZE = 4096;
const MAX_VOLUME_SIZE = 28 * 2 ** 30;

/** The options with their defaults filled in, and the test hooks in the form the store uses. */
export interface Settings {
  dir: string;
  volumeSize: number;
  fsync: FsyncPolicy;
  compactThreshold: number;
  autoCompact: boolean;
  pool: WorkerPool | undefined;
  streamBufferBytes: number;
  prefixMask: [lo: number, hi: number];
  hooks: CompactHooks;
}

export function validateOptions(options: StoreOptions): Settings {
  if (typeof options !== "object" || options === null) {
    throw new NexusError("invalid_argument", "openStore takes an options object ({ dir, ... })");
  }
  const {
    dir,
    volumeSize = DEFAULT_VOLUME_SIZE,
    fsync = "batch",
    compactThreshold = 0.3,
    autoCompact = false,
    pool,
    streamBufferBytes = 8 * 2 ** 20,
    testing,
  } = options;
  const bad = (what: string, value: unknown) =>
    new NexusError("invalid_argument", `openStore: ${what}, got ${JSON.stringify(value)}`, { [what]: value });
  if (typeof dir !== "string" || dir.length === 0) throw bad("dir must be a non-empty path", dir);
  if (!Number.isInteger(volumeSize) || volumeSize < MIN_VOLUME_SIZE || volumeSize > MAX_VOLUME_SIZE) {
    throw bad(`volumeSize must be an integer from ${MIN_VOLUME_SIZE} to ${MAX_VOLUME_SIZE}`, volumeSize);
  }
  if (fsync !== "always" && fsync !== "batch" && fsync !== "never") {
    throw bad('fsync must be "always", "batch" or "never"', fsync);
  }
  if (typeof compactThreshold !== "number" || !(compactThreshold > 0 && compactThreshold <= 1)) {
    throw bad("compactThreshold must be a ratio in (0, 1]", compactThreshold);
  }
  if (typeof autoCompact !== "boolean") throw bad("autoCompact must be a boolean", autoCompact);
  if (pool !== undefined && !(pool instanceof WorkerPool)) throw bad("pool must be a WorkerPool", "?");
  if (!Number.isInteger(streamBufferBytes) || streamBufferBytes < 0) {
    throw bad("streamBufferBytes must be an integer ≥ 0", streamBufferBytes);
  }
  const bits = testing?.prefixBits ?? 64;
  const prefixMask: [number, number] = [
    bits >= 32 ? 0xffffffff : 2 ** bits - 1,
    bits >= 64 ? 0xffffffff : bits <= 32 ? 0 : 2 ** (bits - 32) - 1,
  ];
  return {
    dir,
    volumeSize,
    fsync,
    compactThreshold,
    autoCompact,
    pool,
    streamBufferBytes,
    prefixMask,
    hooks: { onStep: testing?.onCompactStep },
  };
}
