/**
 * What a tiered store is given and what it reports: the hot store's interface, the store's options (checked by
 * validateOptions), and the shapes of moves, tiering passes, scrubs, recovery and stats. Kept apart from the store
 * so that the tiering job (job.ts) and callers name these shapes without importing the store.
 */
import type { WorkerPool } from "../../parallel/pool.js";
import { NexusError } from "../../util/errors.js";
import type { BlobStore } from "./blob-store.js";
import type { ErasureCodedTierOptions } from "./erasure-coded-tier.js";
import type { MoveTarget, Tier } from "./ledger.js";
import { DEFAULT_POLICY, type TieringPolicy } from "./policy.js";

export type { MoveTarget, Tier } from "./ledger.js";
export type { TieringPolicy } from "./policy.js";

/** The hot tier: the volume store (`openStore`), or anything with the same content-addressed API. */
export interface HotStore {
  /** Stores bytes; the key is their BLAKE3 digest in hex. */
  put(bytes: Uint8Array): Promise<{ key: string }>;
  /**
   * Stores a stream of chunks without holding them whole (the volume store spills to a staging file). Optional:
   * without it, TieredStore.putStream gathers the chunks and calls put.
   */
  putStream?(
    source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  ): Promise<{ key: string; size: number }>;
  /** The bytes; a NexusError `not_found` when absent. */
  get(key: string): Promise<Uint8Array>;
  has(key: string): Promise<boolean> | boolean;
  /** Drops one reference (the volume store counts equal puts); false when the key is not stored. */
  delete(key: string): Promise<boolean>;
  close(): Promise<void> | void;
}

export interface TieredStoreOptions {
  /** Directory for the tiered store's own state: the access tracker and its journal of moves, and a lock. */
  dir: string;
  /** The hot tier, e.g. `await openStore({ dir })`. Owned from now on: closed by close(). */
  hot: HotStore;
  /** The warm tier: shard directories and the code (default RS(10,4)). */
  warm: ErasureCodedTierOptions;
  /** The cold tier. Owned from now on: closed by close() if it has a close(). */
  cold: BlobStore;
  policy?: TieringPolicy;
  /** Worker pool for encoding large objects in parallel; default: a private one, started only when needed. */
  pool?: WorkerPool;
  /** Clock in ms (default Date.now); tests pass a fake one. */
  now?: () => number;
  /** fsync journal records, shard files and directories (default true; false only for throwaway data). */
  fsync?: boolean;
}

/** One step of a move, reported as it completes. */
export type MoveStep = "begin" | "read" | "shard-written" | "written" | "source-removed" | "done";

export interface MoveProgress {
  key: string;
  from: Tier;
  to: MoveTarget;
  step: MoveStep;
  /** For `shard-written`: the shard's index. */
  shard?: number;
}

export interface MoveOptions {
  /** Hears every step synchronously as it completes (the crash tests stop the process from here). */
  onStep?: (progress: MoveProgress) => void;
}

export interface TieringProgress extends Partial<MoveProgress> {
  /** `plan`: the pass chose its moves; `move`: a step of move number `index`; `repair`: shards rewritten. */
  phase: "plan" | "move" | "repair";
  /** 1-based number of the move (or repair) in this pass. */
  index: number;
  total: number;
}

export interface TieringPassResult {
  demoted: number;
  promoted: number;
  repaired: number;
  failed: number;
  /** Object bytes moved between tiers. */
  bytesMoved: number;
  durationMs: number;
  /** The pass stopped early (its job was closed or its signal aborted). */
  stopped: boolean;
}

export interface TieringPassOptions {
  signal?: AbortSignal;
  onProgress?: (progress: TieringProgress) => void;
  onMoveFailed?: (key: string, error: unknown) => void;
}

export interface TieredScrubProgress {
  /** Objects checked so far, of `total` (those tracked when the pass began). */
  checked: number;
  total: number;
  key: string;
  tier: Tier;
  outcome: "ok" | "repaired" | "lost";
}

export interface TieredScrubOptions {
  /** Called after each object. */
  onProgress?: (progress: TieredScrubProgress) => void;
  signal?: AbortSignal;
}

export interface TieredScrubResult {
  checked: number;
  /** Warm objects whose lost or corrupt shards were re-encoded from the survivors. */
  repaired: { key: string; shards: number[] }[];
  /** Objects no tier can return: code `too_many_losses` (warm, details.shardsLeft) or `corrupt` (hot, cold). */
  lost: { key: string; tier: Tier | undefined; code: string; details: unknown }[];
  stopped: boolean;
}

export interface RecoveryReport {
  /** Unfinished moves completed at open (the destination was whole). */
  rolledForward: number;
  /** Unfinished moves undone at open (the partial destination removed). */
  rolledBack: number;
  /** Keys whose bytes no tier could supply after recovery. */
  unreadable: string[];
  /** Temporary files of interrupted writes removed. */
  tempFilesRemoved: number;
}

export interface TieredStats {
  objects: Record<Tier, number>;
  /** Object bytes by tier (logical, before erasure coding). */
  bytes: Record<Tier, number>;
  pendingMoves: number;
  /** Warm objects with missing or corrupt shards waiting for the next pass to rewrite them. */
  needsRepair: number;
  /** Whole warm directories that can be lost without losing an object. */
  tolerableDirectoryLosses: number;
}

export function validateOptions(options: TieredStoreOptions): void {
  if (options === null || typeof options !== "object") {
    throw new NexusError("invalid_argument", "openTieredStore needs an options object");
  }
  const { hot, cold, policy } = options;
  for (const method of ["put", "get", "has", "delete", "close"] as const) {
    if (typeof hot?.[method] !== "function") {
      throw new NexusError("invalid_argument", `hot must be a volume store (missing ${method}())`, {
        method,
      });
    }
  }
  for (const method of ["put", "get", "has", "delete"] as const) {
    if (typeof cold?.[method] !== "function") {
      throw new NexusError("invalid_argument", `cold must be a BlobStore (missing ${method}())`, { method });
    }
  }
  for (const [name, value] of Object.entries(policy ?? {})) {
    if (!(name in DEFAULT_POLICY)) {
      throw new NexusError("invalid_argument", `unknown tiering policy option ${JSON.stringify(name)}`, {
        name,
        known: Object.keys(DEFAULT_POLICY),
      });
    }
    if (value !== undefined && (typeof value !== "number" || Number.isNaN(value) || value < 0)) {
      throw new NexusError("invalid_argument", `policy.${name} must be a number ≥ 0, got ${String(value)}`, {
        name,
        value,
      });
    }
  }
}

/** The ledger's options, from the store's. */
export function ledgerOptions(options: TieredStoreOptions) {
  return {
    dir: options.dir,
    ...(options.now ? { now: options.now } : {}),
    ...(options.fsync !== undefined ? { fsync: options.fsync } : {}),
  };
}

export function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
