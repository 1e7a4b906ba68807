/**
 * The tiered store: hot objects in the volume store, warm ones as RS(k,m) shards over N directories (1.4x
 * the bytes for RS(10,4) instead of 3x for replicas), cold ones in a BlobStore. Reads find the bytes in whatever
 * tier holds them; an access tracker decides demotion (idle time, age) and promotion (reads of warm or cold
 * data); a background tiering job carries the moves out.
 *
 * A move never loses data, whatever step a crash interrupts: it is journaled (fsynced) before it touches a tier,
 * the destination is written completely and durably before the source is removed, and on open every unfinished
 * move is rolled forward (destination complete: remove the source) or back (remove the partial destination).
 * Between those steps the object is readable from at least one tier, and reads look in every tier.
 */

import { createBLAKE3, type IHasher } from "hash-wasm";
import { WorkerPool } from "../parallel/pool.js";
import { isNexusError, NexusError } from "../util/errors.js";
import { ready } from "../wasm/loader.js";
import { AccessTracker, type MoveTarget, TIERS, type Tier, type TrackedObject } from "./access-tracker.js";
import type { BlobStore } from "./blob-store.js";
import { toAsyncIterable } from "./byte-stream.js";
import { ShardCodec } from "./tiered-codec.js";
import { sweepTempFiles } from "./tiered-fs.js";
import { TieringJob, type TieringJobOptions } from "./tiered-job.js";
import { WarmTier, type WarmTierOptions } from "./tiered-warm.js";

export type { MoveTarget, Tier } from "./access-tracker.js";
export { TieringJob, type TieringJobEvents, type TieringJobOptions } from "./tiered-job.js";

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

export interface TieringPolicy {
  /** A hot object neither read nor written for this long moves to the warm tier (default 1 day). */
  warmAfterIdleMs?: number;
  /** An object idle this long moves to the cold tier, from hot or warm (default 30 days). */
  coldAfterIdleMs?: number;
  /** A hot object older than this moves down however often it is read (default: no limit). */
  maxHotAgeMs?: number;
  /** A warm or cold object read this many times since it moved there, and not idle, moves back to hot (default 2). */
  promoteAfterReads?: number;
  /**
   * Objects smaller than this skip the warm tier and wait in hot until they are cold: 14 shard files of a tiny
   * object cost more disk (headers, file-system blocks) than 3 replicas would (default 64 KiB).
   */
  minWarmSize?: number;
}

export interface TieredStoreOptions {
  /** Directory for the tiered store's own state: the access tracker and its journal of moves, and a lock. */
  dir: string;
  /** The hot tier, e.g. `await openStore({ dir })`. Owned from now on: closed by close(). */
  hot: HotStore;
  /** The warm tier: shard directories and the code (default RS(10,4)). */
  warm: WarmTierOptions;
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

const DAY = 24 * 60 * 60 * 1000;
/** A guard against a hot store whose delete never reports the key gone. */
const MAX_HOT_REFERENCES = 1 << 24;
const DEFAULT_POLICY: Required<TieringPolicy> = {
  warmAfterIdleMs: DAY,
  coldAfterIdleMs: 30 * DAY,
  maxHotAgeMs: Number.POSITIVE_INFINITY,
  promoteAfterReads: 2,
  minWarmSize: 64 * 1024,
};

/** Opens (and recovers) a tiered store. */
export async function openTieredStore(options: TieredStoreOptions): Promise<TieredStore> {
  validateOptions(options);
  await ready();
  const tracker = await AccessTracker.open(trackerOptions(options));
  let store: TieredStore;
  try {
    store = new TieredStore(options, tracker);
  } catch (error) {
    await tracker.close().catch(() => {});
    throw error;
  }
  try {
    await store.recover();
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  return store;
}

export class TieredStore implements AsyncDisposable {
  readonly policy: Readonly<Required<TieringPolicy>>;
  readonly warm: WarmTier;
  /** What open found and fixed. */
  recovery: RecoveryReport = { rolledForward: 0, rolledBack: 0, unreadable: [], tempFilesRemoved: 0 };

  readonly #hot: HotStore;
  readonly #cold: BlobStore;
  readonly #tracker: AccessTracker;
  readonly #codec: ShardCodec;
  readonly #locks = new Map<string, Promise<void>>();
  readonly #needsRepair = new Map<string, number[]>();
  readonly #sharedPool: WorkerPool | undefined;
  #ownPool: WorkerPool | undefined;
  #job: TieringJob | undefined;
  #blake3: Promise<IHasher> | undefined;
  /** Counts finished moves: a read that raced one sees the count change and looks again. */
  #moves = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** @internal Use openTieredStore(). */
  constructor(options: TieredStoreOptions, tracker: AccessTracker) {
    this.policy = { ...DEFAULT_POLICY, ...definedOnly(options.policy ?? {}) };
    this.#hot = options.hot;
    this.#cold = options.cold;
    this.#tracker = tracker;
    this.#sharedPool = options.pool;
    this.#codec = new ShardCodec({ pool: () => this.#pool() });
    this.warm = new WarmTier({ fsync: options.fsync, ...options.warm }, this.#codec);
  }

  /**
   * Stores bytes in the hot tier and returns their key (BLAKE3 hex). Equal bytes share one object with a
   * reference count, as in the volume store: each put needs a delete before the object goes.
   */
  async put(bytes: Uint8Array): Promise<{ key: string }> {
    this.#assertOpen();
    if (!(bytes instanceof Uint8Array)) {
      throw new NexusError("invalid_argument", "put needs a Uint8Array", { type: typeof bytes });
    }
    const { key } = await this.#hot.put(bytes);
    await this.#recordPut(key, bytes.length, () => this.#hot.put(bytes));
    return { key };
  }

  /**
   * Stores a stream of chunks in the hot tier, as put does, without holding the content whole when the hot
   * store has putStream (the volume store stages a large stream in a file). Chunks must be Uint8Arrays.
   */
  async putStream(
    source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  ): Promise<{ key: string; size: number }> {
    this.#assertOpen();
    if (this.#hot.putStream === undefined) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of toAsyncIterable(source)) {
        if (!(chunk instanceof Uint8Array)) {
          throw new NexusError("invalid_argument", "putStream: every chunk must be a Uint8Array", {
            chunk: typeof chunk,
          });
        }
        chunks.push(chunk);
      }
      const bytes = Buffer.concat(chunks);
      const { key } = await this.put(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return { key, size: bytes.byteLength };
    }
    const { key, size } = await this.#hot.putStream(source);
    // The hot copy was just written; should a move take it away before the lock, it is in the tier it went to.
    await this.#recordPut(key, size, async () => {
      throw new NexusError("internal", `${key} left the hot tier while it was being stored again`, { key });
    });
    return { key, size };
  }

  /**
   * Counts a put whose bytes the hot store has just taken. Content stored again after it was demoted is hot
   * again: the new hot copy wins (`rewriteHot` stores it once more should the hot copy be gone) and the
   * lower-tier copy goes.
   */
  async #recordPut(key: string, size: number, rewriteHot: () => Promise<unknown>): Promise<void> {
    await this.#withKeyLock(key, async () => {
      const entry = this.#tracker.get(key);
      if (entry !== undefined && entry.tier !== "hot") {
        if (!(await this.#hot.has(key))) await rewriteHot();
        const from = entry.tier;
        await this.#tracker.begin(key, from, "hot");
        await this.#removeFrom(from, key);
        await this.#tracker.finish(key, "hot");
        this.#moves++;
      }
      this.#tracker.recordPut(key, size);
    });
    await this.#tracker.commit();
  }

  /** The object's bytes, from whichever tier holds them. `not_found` when none does. */
  async get(key: string): Promise<Uint8Array> {
    this.#assertOpen();
    assertKey(key);
    let failure: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const entry = this.#tracker.get(key);
      const moves = this.#moves;
      for (const tier of probeOrder(entry)) {
        try {
          const bytes = await this.#readFrom(tier, key);
          if (entry === undefined) this.#tracker.adopt(key, bytes.length, tier);
          this.#tracker.recordRead(key);
          return bytes;
        } catch (error) {
          if (!isNexusError(error, "not_found")) failure ??= error;
        }
      }
      // A move may have taken the bytes from one tier to another between our probes: look again after it.
      const inFlight = this.#locks.get(key);
      if (inFlight !== undefined) await inFlight.catch(() => {});
      else if (this.#moves === moves) break;
    }
    const entry = this.#tracker.get(key);
    if (entry !== undefined) throw await this.#lossError(key, entry.tier, failure);
    if (failure !== undefined) throw failure;
    throw new NexusError("not_found", `no object with key ${key} in any tier`, { key });
  }

  async has(key: string): Promise<boolean> {
    this.#assertOpen();
    assertKey(key);
    return (await this.locate(key)) !== undefined;
  }

  /** The first tier that holds the object (by the tracker's hint, checked against the tier), or undefined. */
  async locate(key: string): Promise<Tier | undefined> {
    this.#assertOpen();
    assertKey(key);
    for (const tier of probeOrder(this.#tracker.get(key))) {
      if (await this.#tierHas(tier, key)) return tier;
    }
    return undefined;
  }

  /**
   * Drops one reference to the object (see put); the last one removes it from every tier. False when the
   * store does not have it.
   */
  async delete(key: string): Promise<boolean> {
    this.#assertOpen();
    assertKey(key);
    return this.#withKeyLock(key, async () => {
      const entry = this.#tracker.get(key);
      if (entry !== undefined && this.#tracker.release(key) > 0) {
        await this.#tracker.commit();
        return true;
      }
      if (entry !== undefined) await this.#tracker.begin(key, entry.tier, "deleted");
      let existed = false;
      for (const tier of TIERS) existed = (await this.#removeFrom(tier, key)) || existed;
      if (entry !== undefined) await this.#tracker.finish(key, "deleted");
      this.#needsRepair.delete(key);
      this.#moves++;
      return existed || entry !== undefined;
    });
  }

  /** Moves one object to `tier` now, whatever the policy says. */
  async moveTo(key: string, tier: Tier, options: MoveOptions = {}): Promise<void> {
    this.#assertOpen();
    assertKey(key);
    if (!TIERS.includes(tier)) {
      throw new NexusError("invalid_argument", `unknown tier ${JSON.stringify(tier)}`, {
        tier,
        known: TIERS,
      });
    }
    if (this.#tracker.get(key) === undefined) {
      const found = await this.locate(key);
      if (found === undefined)
        throw new NexusError("not_found", `no object with key ${key} in any tier`, { key });
      const bytes = await this.#readFrom(found, key);
      this.#tracker.adopt(key, bytes.length, found);
    }
    await this.#move(key, tier, options.onStep);
  }

  /** One tiering pass now: plans moves from the tracker and the policy, repairs damaged warm objects. */
  async runTieringPass(options: TieringPassOptions = {}): Promise<TieringPassResult> {
    this.#assertOpen();
    const started = performance.now();
    const result: TieringPassResult = {
      demoted: 0,
      promoted: 0,
      repaired: 0,
      failed: 0,
      bytesMoved: 0,
      durationMs: 0,
      stopped: false,
    };
    await this.#tracker.flush();
    const moves = this.#plan();
    const repairs = [...this.#needsRepair.entries()];
    const total = moves.length + repairs.length;
    options.onProgress?.({ phase: "plan", index: 0, total });
    let index = 0;
    for (const { key, to } of moves) {
      if (options.signal?.aborted || this.#closed) {
        result.stopped = true;
        break;
      }
      index++;
      const entry = this.#tracker.get(key);
      if (entry === undefined || entry.pending !== undefined || entry.tier === to) continue;
      const from = entry.tier;
      const size = entry.size;
      try {
        await this.#move(key, to, (p) => options.onProgress?.({ phase: "move", index, total, ...p }));
        if (TIERS.indexOf(to as Tier) > TIERS.indexOf(from)) result.demoted++;
        else result.promoted++;
        result.bytesMoved += size;
      } catch (error) {
        result.failed++;
        options.onMoveFailed?.(key, error);
      }
    }
    for (const [key, shards] of repairs) {
      if (result.stopped || options.signal?.aborted || this.#closed) {
        result.stopped = true;
        break;
      }
      index++;
      try {
        await this.#withKeyLock(key, async () => {
          if (this.#tracker.get(key)?.tier === "warm") await this.warm.repair(key, shards);
        });
        this.#needsRepair.delete(key);
        result.repaired++;
        options.onProgress?.({ phase: "repair", index, total, key });
      } catch (error) {
        result.failed++;
        options.onMoveFailed?.(key, error);
      }
    }
    await this.#tracker.flush();
    result.durationMs = performance.now() - started;
    return result;
  }

  /**
   * Checks every object the store tracks, in the tier that holds it, and repairs what it can: a warm object
   * with lost or corrupt shards (while k survive) gets them re-encoded from the survivors; a hot or cold copy that
   * fails its check, or a warm object past repair, is reported (`lost`) with the code get() gives for it. The hot
   * tier holds one copy, so its repair is a put of the content. Reads and writes go on meanwhile.
   */
  async scrub(options: TieredScrubOptions = {}): Promise<TieredScrubResult> {
    this.#assertOpen();
    const keys = [...this.#tracker.values()].filter((e) => e.pending === undefined).map((e) => e.key);
    const result: TieredScrubResult = { checked: 0, repaired: [], lost: [], stopped: false };
    for (const key of keys) {
      if (options.signal?.aborted || this.#closed) {
        result.stopped = true;
        break;
      }
      let outcome = "ok" as TieredScrubProgress["outcome"] | "skipped";
      let tier = undefined as Tier | undefined;
      await this.#withKeyLock(key, async () => {
        const entry = this.#tracker.get(key);
        if (entry === undefined || entry.pending !== undefined) {
          outcome = "skipped"; // deleted or moving meanwhile
          return;
        }
        tier = entry.tier;
        try {
          if (tier === "warm") {
            const report = await this.warm.read(key);
            const damaged = [...report.missing, ...report.corrupt];
            if (damaged.length > 0) {
              await this.warm.repair(key, damaged);
              this.#needsRepair.delete(key);
              result.repaired.push({ key, shards: damaged });
              outcome = "repaired";
            }
          } else {
            await this.#readFrom(tier, key);
          }
        } catch (error) {
          if (isNexusError(error, "closed")) throw error;
          const loss =
            isNexusError(error, "corrupt") || isNexusError(error, "too_many_losses")
              ? (error as NexusError)
              : await this.#lossError(key, tier, error);
          result.lost.push({ key, tier, code: loss.code, details: loss.details });
          outcome = "lost";
        }
      });
      if (outcome === "skipped" || tier === undefined) continue;
      result.checked++;
      options.onProgress?.({ checked: result.checked, total: keys.length, key, tier, outcome });
    }
    return result;
  }

  /** Starts the background tiering job (one per store): a pass every `intervalMs`. */
  startTiering(options: TieringJobOptions = {}): TieringJob {
    this.#assertOpen();
    if (this.#job !== undefined && !this.#job.closed) {
      throw new NexusError(
        "invalid_argument",
        "a tiering job is already running on this store; close it first",
      );
    }
    this.#job = new TieringJob(this, options);
    return this.#job;
  }

  stats(): TieredStats {
    this.#assertOpen();
    const objects: Record<Tier, number> = { hot: 0, warm: 0, cold: 0 };
    const bytes: Record<Tier, number> = { hot: 0, warm: 0, cold: 0 };
    let pendingMoves = 0;
    for (const entry of this.#tracker.values()) {
      objects[entry.tier]++;
      bytes[entry.tier] += entry.size;
      if (entry.pending) pendingMoves++;
    }
    return {
      objects,
      bytes,
      pendingMoves,
      needsRepair: this.#needsRepair.size,
      tolerableDirectoryLosses: this.warm.tolerableDirectoryLosses,
    };
  }

  /** What the tracker knows of one object (tier, size, times, reads), or undefined. */
  tracked(key: string): Readonly<TrackedObject> | undefined {
    return this.#tracker.get(key);
  }

  /** Stops the tiering job, flushes the tracker and closes every tier. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal Completes or undoes moves a crash interrupted; run by openTieredStore. */
  async recover(): Promise<RecoveryReport> {
    const report: RecoveryReport = { rolledForward: 0, rolledBack: 0, unreadable: [], tempFilesRemoved: 0 };
    for (const dir of this.warm.dirs) report.tempFilesRemoved += await sweepTempFiles(dir, 1);
    const pending = [...this.#tracker.values()].filter((e) => e.pending !== undefined);
    for (const entry of pending) {
      const { from, to } = entry.pending!;
      const outcome = await this.#settle(entry.key, from, to);
      if (outcome === "forward") report.rolledForward++;
      else if (outcome === "back") report.rolledBack++;
      else report.unreadable.push(entry.key);
    }
    await this.#tracker.flush();
    this.recovery = report;
    return report;
  }

  // ---- internals -----------------------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "the tiered store is closed");
  }

  #pool(): WorkerPool {
    if (this.#sharedPool !== undefined) return this.#sharedPool;
    this.#ownPool ??= new WorkerPool();
    return this.#ownPool;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const errors: unknown[] = [];
    const attempt = async (fn: () => unknown) => {
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    };
    await attempt(() => this.#job?.close());
    // Let moves in progress (from put, delete, moveTo) finish rather than cut them short.
    await attempt(() => Promise.allSettled([...this.#locks.values()]));
    await attempt(() => this.#tracker.close());
    await attempt(() => this.#hot.close());
    await attempt(() => this.#cold.close?.());
    await attempt(() => this.#ownPool?.close());
    this.#codec.close();
    if (errors.length > 0) throw errors[0];
  }

  /** Runs fn with `key` locked against other moves of the same key. */
  async #withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    while (this.#locks.has(key)) await this.#locks.get(key)!.catch(() => {});
    const run = fn();
    const done = run.then(
      () => {},
      () => {},
    );
    this.#locks.set(key, done);
    try {
      return await run;
    } finally {
      if (this.#locks.get(key) === done) this.#locks.delete(key);
    }
  }

  /**
   * Ends an interrupted move: forward when the destination is whole (remove what is left of the source), back
   * when the source still has the object (remove what was written of the destination). Used at open for moves
   * a crash cut short, and at once for a move that failed.
   */
  async #settle(key: string, from: Tier, to: MoveTarget): Promise<"forward" | "back" | "lost"> {
    if (to === "deleted") {
      for (const tier of TIERS) await this.#removeFrom(tier, key);
      await this.#tracker.finish(key, "deleted");
      return "forward";
    }
    if (await this.#tierComplete(to, key)) {
      await this.#removeFrom(from, key);
      await this.#tracker.finish(key, to);
      return "forward";
    }
    if (await this.#tierHas(from, key)) {
      await this.#removeFrom(to, key);
      await this.#tracker.finish(key, from);
      return "back";
    }
    if (to === "warm" && (await this.#readable("warm", key))) {
      // The source is gone (a lost disk, not our doing) but enough shards made it: complete them.
      const { missing, corrupt } = await this.warm.read(key);
      await this.warm.repair(key, [...missing, ...corrupt]);
      await this.#tracker.finish(key, "warm");
      return "forward";
    }
    await this.#tracker.finish(key, from);
    return "lost";
  }

  #move(key: string, to: Tier, onStep?: (progress: MoveProgress) => void): Promise<void> {
    return this.#withKeyLock(key, async () => {
      const entry = this.#tracker.get(key);
      if (entry === undefined)
        throw new NexusError("not_found", `the tiered store does not track ${key}`, { key });
      const from = entry.tier;
      if (from === to) return;
      const step = (s: MoveStep, shard?: number) =>
        onStep?.(shard === undefined ? { key, from, to, step: s } : { key, from, to, step: s, shard });
      await this.#tracker.begin(key, from, to);
      try {
        step("begin");
        const bytes = await this.#readFrom(from, key);
        step("read");
        await this.#writeTo(to, key, bytes, (shard) => step("shard-written", shard));
        step("written");
        await this.#removeFrom(from, key);
        this.#needsRepair.delete(key);
        step("source-removed");
        await this.#tracker.finish(key, to);
      } catch (error) {
        // Undo (or complete) now rather than leave the object marked as moving; if even that fails, the
        // journal still says so and the next open settles it.
        await this.#settle(key, from, to).catch(() => {});
        throw error;
      } finally {
        this.#moves++;
      }
      step("done");
    });
  }

  /**
   * The error for an object the tracker says `tier` holds but no tier could return: never not_found. The warm
   * tier says how many shards are left (too_many_losses); a single-copy tier (hot, cold) says its copy is corrupt
   * or gone (corrupt).
   */
  async #lossError(key: string, tier: Tier, failure: unknown): Promise<NexusError> {
    if (tier === "warm") {
      if (isNexusError(failure, "too_many_losses")) return failure as NexusError;
      const needed = this.warm.dataShards;
      const left = await this.warm.validShardCount(key).catch(() => 0);
      return new NexusError(
        "too_many_losses",
        `${key} is in the warm tier but cannot be read: ${left} of ${needed + this.warm.parityShards} shards left, ${needed} needed`,
        { key, tier, shardsLeft: left, shardsNeeded: needed },
      );
    }
    if (isNexusError(failure, "corrupt")) return failure as NexusError;
    return new NexusError("corrupt", `${key} is in the ${tier} tier but its copy there is gone`, {
      key,
      tier,
      reason: failure instanceof Error ? failure.message : "not found",
    });
  }

  #plan(): { key: string; to: Tier }[] {
    const now = this.#tracker.now();
    const p = this.policy;
    const moves: { key: string; to: Tier }[] = [];
    for (const entry of this.#tracker.values()) {
      if (entry.pending !== undefined) continue;
      const idle = now - entry.lastAccessAt;
      const age = now - entry.createdAt;
      const warmOk = entry.size >= p.minWarmSize;
      const inUse = idle < p.warmAfterIdleMs && entry.readsInTier >= p.promoteAfterReads;
      let to: Tier | undefined;
      if (entry.tier === "hot") {
        if (idle >= p.coldAfterIdleMs) to = "cold";
        else if (idle >= p.warmAfterIdleMs || age >= p.maxHotAgeMs) to = warmOk ? "warm" : undefined;
        if (to === undefined && age >= p.maxHotAgeMs && !warmOk) to = "cold";
      } else if (entry.tier === "warm") {
        if (inUse) to = "hot";
        else if (idle >= p.coldAfterIdleMs) to = "cold";
      } else if (inUse) {
        to = "hot";
      }
      if (to !== undefined) moves.push({ key: entry.key, to });
    }
    // Promotions first: they serve readers waiting now.
    return moves.sort((a, b) => (a.to === "hot" ? 0 : 1) - (b.to === "hot" ? 0 : 1));
  }

  async #readFrom(tier: Tier, key: string): Promise<Uint8Array> {
    if (tier === "hot") return this.#hot.get(key);
    if (tier === "warm") {
      const report = await this.warm.read(key);
      const damaged = [...report.missing, ...report.corrupt];
      if (damaged.length > 0) this.#needsRepair.set(key, damaged);
      return report.bytes;
    }
    const bytes = await this.#cold.get(key);
    // The blob store is outside our control: check the content against its address.
    this.#blake3 ??= createBLAKE3();
    const hasher = await this.#blake3;
    hasher.init();
    hasher.update(bytes);
    if (hasher.digest("hex") !== key) {
      throw new NexusError("corrupt", `the cold tier's copy of ${key} does not match its BLAKE3 key`, {
        key,
      });
    }
    return bytes;
  }

  async #writeTo(
    tier: Tier,
    key: string,
    bytes: Uint8Array,
    onShard: (index: number) => void,
  ): Promise<void> {
    if (tier === "hot") {
      const { key: written } = await this.#hot.put(bytes);
      if (written !== key) {
        throw new NexusError("corrupt", `bytes read for ${key} hash to ${written}; not moved`, {
          key,
          written,
        });
      }
    } else if (tier === "warm") {
      await this.warm.write(key, bytes, onShard);
    } else {
      await this.#cold.put(key, bytes);
    }
  }

  async #removeFrom(tier: Tier, key: string): Promise<boolean> {
    if (tier === "hot") {
      // The volume store counts references; the object leaves the hot tier only when all are dropped.
      let removed = false;
      for (let i = 0; await this.#hot.delete(key); i++) {
        removed = true;
        if (i >= MAX_HOT_REFERENCES) {
          throw new NexusError("internal", `the hot store still has ${key} after ${i} deletes`, { key });
        }
      }
      return removed;
    }
    if (tier === "warm") return (await this.warm.remove(key)) > 0;
    return this.#cold.delete(key);
  }

  /** Whether the tier holds the object (for warm: at least k shards with valid headers). */
  async #tierHas(tier: Tier, key: string): Promise<boolean> {
    if (tier === "hot") return this.#hot.has(key);
    if (tier === "warm") return (await this.warm.validShardCount(key)) >= this.warm.dataShards;
    return this.#cold.has(key);
  }

  /** Whether the tier holds a whole, durable copy (what a move must reach before removing its source). */
  async #tierComplete(tier: Tier, key: string): Promise<boolean> {
    if (tier === "warm") return this.warm.isComplete(key);
    return this.#tierHas(tier, key);
  }

  async #readable(tier: Tier, key: string): Promise<boolean> {
    if (tier !== "warm") return this.#tierHas(tier, key);
    if (!(await this.warm.hasAny(key))) return false;
    try {
      await this.warm.read(key);
      return true;
    } catch {
      return false;
    }
  }
}

// ---- helpers -----------------------------------------------------------------------------------------------

const KEY_PATTERN = /^[0-9a-f]{64}$/;

function assertKey(key: string): void {
  if (typeof key !== "string" || !KEY_PATTERN.test(key)) {
    throw new NexusError(
      "invalid_argument",
      `object key must be 64 lowercase hex digits (BLAKE3), got ${JSON.stringify(key)}`,
      { key },
    );
  }
}

/** The tracker's tier first (cheapest right guess), then the rest from hot to cold. */
function probeOrder(entry: Readonly<TrackedObject> | undefined): Tier[] {
  if (entry === undefined) return [...TIERS];
  return [entry.tier, ...TIERS.filter((t) => t !== entry.tier)];
}

function validateOptions(options: TieredStoreOptions): void {
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

function trackerOptions(options: TieredStoreOptions) {
  return {
    dir: options.dir,
    ...(options.now ? { now: options.now } : {}),
    ...(options.fsync !== undefined ? { fsync: options.fsync } : {}),
  };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
