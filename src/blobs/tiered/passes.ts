/**
 * The tiered store's maintenance passes. A tiering pass plans moves from the ledger and the policy (policy.ts),
 * carries them out promotions first, then rewrites the damaged shards reads noted (Tiers.needsRepair). A scrub
 * checks every object in the tier that holds it and repairs what it can. Both run beside reads and writes, each
 * object under the store's per-key lock, and stop early when the store closes or their signal aborts.
 */
import { isNexusError, type NexusError } from "../../util/errors.js";
import { TIERS, type Tier, type TierLedger } from "./ledger.js";
import type {
  MoveProgress,
  TieredScrubOptions,
  TieredScrubProgress,
  TieredScrubResult,
  TieringPassOptions,
  TieringPassResult,
} from "./options.js";
import { planMoves, type TieringPolicy } from "./policy.js";
import type { Tiers } from "./tiers.js";

/** What the passes need of the store. */
export interface MaintainedStore {
  readonly ledger: TierLedger;
  readonly tiers: Tiers;
  readonly policy: Readonly<Required<TieringPolicy>>;
  closed(): boolean;
  /** Runs fn with `key` locked against other moves of the same key. */
  withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** Moves one object (journaled, settled on failure). */
  move(key: string, to: Tier, onStep?: (progress: MoveProgress) => void): Promise<void>;
}

/** One tiering pass now: plans moves from the ledger and the policy, repairs damaged warm objects. */
export async function runTieringPass(
  store: MaintainedStore,
  options: TieringPassOptions = {},
): Promise<TieringPassResult> {
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
  await store.ledger.flush();
  const moves = planMoves(store.ledger.values(), store.ledger.now(), store.policy);
  const repairs = [...store.tiers.needsRepair.entries()];
  const total = moves.length + repairs.length;
  options.onProgress?.({ phase: "plan", index: 0, total });
  let index = 0;
  for (const { key, to } of moves) {
    if (options.signal?.aborted || store.closed()) {
      result.stopped = true;
      break;
    }
    index++;
    const entry = store.ledger.get(key);
    if (entry === undefined || entry.pending !== undefined || entry.tier === to) continue;
    const from = entry.tier;
    const size = entry.size;
    try {
      await store.move(key, to, (p) => options.onProgress?.({ phase: "move", index, total, ...p }));
      if (TIERS.indexOf(to as Tier) > TIERS.indexOf(from)) result.demoted++;
      else result.promoted++;
      result.bytesMoved += size;
    } catch (error) {
      result.failed++;
      options.onMoveFailed?.(key, error);
    }
  }
  for (const [key, shards] of repairs) {
    if (result.stopped || options.signal?.aborted || store.closed()) {
      result.stopped = true;
      break;
    }
    index++;
    try {
      await store.withKeyLock(key, async () => {
        if (store.ledger.get(key)?.tier === "warm") await store.tiers.warm.repair(key, shards);
      });
      store.tiers.needsRepair.delete(key);
      result.repaired++;
      options.onProgress?.({ phase: "repair", index, total, key });
    } catch (error) {
      result.failed++;
      options.onMoveFailed?.(key, error);
    }
  }
  await store.ledger.flush();
  result.durationMs = performance.now() - started;
  return result;
}

/**
 * Checks every object the store tracks, in the tier that holds it, and repairs what it can: a warm object
 * with lost or corrupt shards (while k survive) gets them re-encoded from the survivors; a hot or cold copy that
 * fails its check, or a warm object past repair, is reported (`lost`) with the code get() gives for it. The hot
 * tier holds one copy, so its repair is a put of the content. Reads and writes go on meanwhile.
 */
export async function scrubTiers(
  store: MaintainedStore,
  options: TieredScrubOptions = {},
): Promise<TieredScrubResult> {
  const keys = [...store.ledger.values()].filter((e) => e.pending === undefined).map((e) => e.key);
  const result: TieredScrubResult = { checked: 0, repaired: [], lost: [], stopped: false };
  for (const key of keys) {
    if (options.signal?.aborted || store.closed()) {
      result.stopped = true;
      break;
    }
    let outcome = "ok" as TieredScrubProgress["outcome"] | "skipped";
    let tier = undefined as Tier | undefined;
    await store.withKeyLock(key, async () => {
      const entry = store.ledger.get(key);
      if (entry === undefined || entry.pending !== undefined) {
        outcome = "skipped"; // deleted or moving meanwhile
        return;
      }
      tier = entry.tier;
      try {
        if (tier === "warm") {
          const report = await store.tiers.warm.read(key);
          const damaged = [...report.missing, ...report.corrupt];
          if (damaged.length > 0) {
            await store.tiers.warm.repair(key, damaged);
            store.tiers.needsRepair.delete(key);
            result.repaired.push({ key, shards: damaged });
            outcome = "repaired";
          }
        } else {
          await store.tiers.read(tier, key);
        }
      } catch (error) {
        if (isNexusError(error, "closed")) throw error;
        const loss =
          isNexusError(error, "corrupt") || isNexusError(error, "too_many_losses")
            ? (error as NexusError)
            : await store.tiers.lossError(key, tier, error);
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
