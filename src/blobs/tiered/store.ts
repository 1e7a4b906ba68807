/**
 * The tiered store: hot objects in the volume store, warm ones as RS(k,m) shards over N directories (1.4x
 * the bytes for RS(10,4) instead of 3x for replicas), cold ones in a BlobStore. Reads find the bytes in whatever
 * tier holds them; the ledger (ledger.ts) records each object's tier and use, the policy (policy.ts) turns that
 * into demotions (idle time, age) and promotions (reads of warm or cold data), and a background tiering job
 * (job.ts) runs the tiering pass (passes.ts, beside the scrub). Reading and writing each tier is in tiers.ts.
 *
 * A move never loses data, whatever step a crash interrupts: it is journaled (fsynced) before it touches a tier,
 * the destination is written completely and durably before the source is removed, and on open every unfinished
 * move is rolled forward (destination complete: remove the source) or back (remove the partial destination).
 * Between those steps the object is readable from at least one tier, and reads look in every tier.
 */

import { sweepTempFiles } from "../../io/durable-files.js";
import { WorkerPool } from "../../parallel/pool.js";
import { isNexusError, NexusError } from "../../util/errors.js";
import { ready } from "../../wasm/loader.js";
import { toAsyncIterable } from "../byte-stream.js";
import type { BlobStore } from "./blob-store.js";
import { ErasureCodedTier } from "./erasure-coded-tier.js";
import { TieringJob, type TieringJobOptions } from "./job.js";
import { type MoveTarget, TIERS, type Tier, TierLedger, type TrackedObject } from "./ledger.js";
import {
  definedOnly,
  type HotStore,
  ledgerOptions,
  type MoveOptions,
  type MoveProgress,
  type MoveStep,
  type RecoveryReport,
  type TieredScrubOptions,
  type TieredScrubResult,
  type TieredStats,
  type TieredStoreOptions,
  type TieringPassOptions,
  type TieringPassResult,
  validateOptions,
} from "./options.js";
import { type MaintainedStore, runTieringPass, scrubTiers } from "./passes.js";
import { DEFAULT_POLICY, type TieringPolicy } from "./policy.js";
import { ShardCodec } from "./shard-codec.js";
import { Tiers } from "./tiers.js";

/** Opens (and recovers) a tiered store. */
export async function openTieredStore(options: TieredStoreOptions): Promise<TieredStore> {
  validateOptions(options);
  await ready();
  const ledger = await TierLedger.open(ledgerOptions(options));
  let store: TieredStore;
  try {
    store = new TieredStore(options, ledger);
  } catch (error) {
    await ledger.close().catch(() => {});
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
  readonly warm: ErasureCodedTier;
  /** What open found and fixed. */
  recovery: RecoveryReport = { rolledForward: 0, rolledBack: 0, unreadable: [], tempFilesRemoved: 0 };

  readonly #hot: HotStore;
  readonly #cold: BlobStore;
  readonly #ledger: TierLedger;
  readonly #codec: ShardCodec;
  readonly #locks = new Map<string, Promise<void>>();
  readonly #tiers: Tiers;
  readonly #sharedPool: WorkerPool | undefined;
  #ownPool: WorkerPool | undefined;
  #job: TieringJob | undefined;
  /** Counts finished moves: a read that raced one sees the count change and looks again. */
  #moves = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** @internal Use openTieredStore(). */
  constructor(options: TieredStoreOptions, ledger: TierLedger) {
    this.policy = { ...DEFAULT_POLICY, ...definedOnly(options.policy ?? {}) };
    this.#hot = options.hot;
    this.#cold = options.cold;
    this.#ledger = ledger;
    this.#sharedPool = options.pool;
    this.#codec = new ShardCodec({ pool: () => this.#pool() });
    this.warm = new ErasureCodedTier({ fsync: options.fsync, ...options.warm }, this.#codec);
    this.#tiers = new Tiers(options.hot, this.warm, options.cold);
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
      const entry = this.#ledger.get(key);
      if (entry !== undefined && entry.tier !== "hot") {
        if (!(await this.#hot.has(key))) await rewriteHot();
        const from = entry.tier;
        await this.#ledger.begin(key, from, "hot");
        await this.#tiers.remove(from, key);
        await this.#ledger.finish(key, "hot");
        this.#moves++;
      }
      this.#ledger.recordPut(key, size);
    });
    await this.#ledger.commit();
  }

  /** The object's bytes, from whichever tier holds them. `not_found` when none does. */
  async get(key: string): Promise<Uint8Array> {
    this.#assertOpen();
    assertKey(key);
    let failure: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const entry = this.#ledger.get(key);
      const moves = this.#moves;
      for (const tier of probeOrder(entry)) {
        try {
          const bytes = await this.#tiers.read(tier, key);
          if (entry === undefined) this.#ledger.adopt(key, bytes.length, tier);
          this.#ledger.recordRead(key);
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
    const entry = this.#ledger.get(key);
    if (entry !== undefined) throw await this.#tiers.lossError(key, entry.tier, failure);
    if (failure !== undefined) throw failure;
    throw new NexusError("not_found", `no object with key ${key} in any tier`, { key });
  }

  async has(key: string): Promise<boolean> {
    this.#assertOpen();
    assertKey(key);
    return (await this.locate(key)) !== undefined;
  }

  /** The first tier that holds the object (by the ledger's hint, checked against the tier), or undefined. */
  async locate(key: string): Promise<Tier | undefined> {
    this.#assertOpen();
    assertKey(key);
    for (const tier of probeOrder(this.#ledger.get(key))) {
      if (await this.#tiers.has(tier, key)) return tier;
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
      const entry = this.#ledger.get(key);
      if (entry !== undefined && this.#ledger.release(key) > 0) {
        await this.#ledger.commit();
        return true;
      }
      if (entry !== undefined) await this.#ledger.begin(key, entry.tier, "deleted");
      let existed = false;
      for (const tier of TIERS) existed = (await this.#tiers.remove(tier, key)) || existed;
      if (entry !== undefined) await this.#ledger.finish(key, "deleted");
      this.#tiers.needsRepair.delete(key);
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
    if (this.#ledger.get(key) === undefined) {
      const found = await this.locate(key);
      if (found === undefined)
        throw new NexusError("not_found", `no object with key ${key} in any tier`, { key });
      const bytes = await this.#tiers.read(found, key);
      this.#ledger.adopt(key, bytes.length, found);
    }
    await this.#move(key, tier, options.onStep);
  }

  /** One tiering pass now: plans moves from the ledger and the policy, repairs damaged warm objects. */
  async runTieringPass(options: TieringPassOptions = {}): Promise<TieringPassResult> {
    this.#assertOpen();
    return runTieringPass(this.#maintained(), options);
  }

  /**
   * Checks every object the store tracks, in the tier that holds it, and repairs what it can: a warm object
   * with lost or corrupt shards (while k survive) gets them re-encoded from the survivors; a hot or cold copy that
   * fails its check, or a warm object past repair, is reported (`lost`) with the code get() gives for it. The hot
   * tier holds one copy, so its repair is a put of the content. Reads and writes go on meanwhile.
   */
  async scrub(options: TieredScrubOptions = {}): Promise<TieredScrubResult> {
    this.#assertOpen();
    return scrubTiers(this.#maintained(), options);
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
    for (const entry of this.#ledger.values()) {
      objects[entry.tier]++;
      bytes[entry.tier] += entry.size;
      if (entry.pending) pendingMoves++;
    }
    return {
      objects,
      bytes,
      pendingMoves,
      needsRepair: this.#tiers.needsRepair.size,
      tolerableDirectoryLosses: this.warm.tolerableDirectoryLosses,
    };
  }

  /** What the ledger knows of one object (tier, size, times, reads), or undefined. */
  tracked(key: string): Readonly<TrackedObject> | undefined {
    return this.#ledger.get(key);
  }

  /** Stops the tiering job, flushes the ledger and closes every tier. Idempotent. */
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
    const pending = [...this.#ledger.values()].filter((e) => e.pending !== undefined);
    for (const entry of pending) {
      const { from, to } = entry.pending!;
      const outcome = await this.#settle(entry.key, from, to);
      if (outcome === "forward") report.rolledForward++;
      else if (outcome === "back") report.rolledBack++;
      else report.unreadable.push(entry.key);
    }
    await this.#ledger.flush();
    this.recovery = report;
    return report;
  }

  // ---- internals -----------------------------------------------------------------------------------------

  /** The store as the maintenance passes (passes.ts) see it. */
  #maintained(): MaintainedStore {
    return {
      ledger: this.#ledger,
      tiers: this.#tiers,
      policy: this.policy,
      closed: () => this.#closed,
      withKeyLock: (key, fn) => this.#withKeyLock(key, fn),
      move: (key, to, onStep) => this.#move(key, to, onStep),
    };
  }

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
    await attempt(() => this.#ledger.close());
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
      for (const tier of TIERS) await this.#tiers.remove(tier, key);
      await this.#ledger.finish(key, "deleted");
      return "forward";
    }
    if (await this.#tiers.complete(to, key)) {
      await this.#tiers.remove(from, key);
      await this.#ledger.finish(key, to);
      return "forward";
    }
    if (await this.#tiers.has(from, key)) {
      await this.#tiers.remove(to, key);
      await this.#ledger.finish(key, from);
      return "back";
    }
    if (to === "warm" && (await this.#tiers.readable("warm", key))) {
      // The source is gone (a lost disk, not our doing) but enough shards made it: complete them.
      const { missing, corrupt } = await this.warm.read(key);
      await this.warm.repair(key, [...missing, ...corrupt]);
      await this.#ledger.finish(key, "warm");
      return "forward";
    }
    await this.#ledger.finish(key, from);
    return "lost";
  }

  #move(key: string, to: Tier, onStep?: (progress: MoveProgress) => void): Promise<void> {
    return this.#withKeyLock(key, async () => {
      const entry = this.#ledger.get(key);
      if (entry === undefined)
        throw new NexusError("not_found", `the tiered store does not track ${key}`, { key });
      const from = entry.tier;
      if (from === to) return;
      const step = (s: MoveStep, shard?: number) =>
        onStep?.(shard === undefined ? { key, from, to, step: s } : { key, from, to, step: s, shard });
      await this.#ledger.begin(key, from, to);
      try {
        step("begin");
        const bytes = await this.#tiers.read(from, key);
        step("read");
        await this.#tiers.write(to, key, bytes, (shard) => step("shard-written", shard));
        step("written");
        await this.#tiers.remove(from, key);
        this.#tiers.needsRepair.delete(key);
        step("source-removed");
        await this.#ledger.finish(key, to);
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

/** The ledger's tier first (cheapest right guess), then the rest from hot to cold. */
function probeOrder(entry: Readonly<TrackedObject> | undefined): Tier[] {
  if (entry === undefined) return [...TIERS];
  return [entry.tier, ...TIERS.filter((t) => t !== entry.tier)];
}
