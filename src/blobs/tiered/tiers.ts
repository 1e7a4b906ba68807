/**
 * The three tiers of a tiered store behind one interface: read, write, remove, and "does it hold the object"
 * for hot (the volume store), warm (the erasure-coded tier) and cold (a BlobStore). Reads check what they
 * return: warm shards by their checksums (damaged ones are noted in needsRepair for the next tiering pass), cold
 * bytes against their BLAKE3 key, since the blob store is outside the store's control.
 */
import { createBLAKE3, type IHasher } from "hash-wasm";
import { isNexusError, NexusError } from "../../util/errors.js";
import type { BlobStore } from "./blob-store.js";
import type { ErasureCodedTier } from "./erasure-coded-tier.js";
import type { Tier } from "./ledger.js";
import type { HotStore } from "./options.js";

/** A guard against a hot store whose delete never reports the key gone. */
const MAX_HOT_REFERENCES = 1 << 24;

export class Tiers {
  readonly warm: ErasureCodedTier;
  /** Warm objects with missing or corrupt shards (their indexes), waiting for a tiering pass to rewrite them. */
  readonly needsRepair = new Map<string, number[]>();
  readonly #hot: HotStore;
  readonly #cold: BlobStore;
  #blake3: Promise<IHasher> | undefined;

  constructor(hot: HotStore, warm: ErasureCodedTier, cold: BlobStore) {
    this.#hot = hot;
    this.warm = warm;
    this.#cold = cold;
  }

  /**
   * The error for an object the ledger says `tier` holds but no tier could return: never not_found. The warm
   * tier says how many shards are left (too_many_losses); a single-copy tier (hot, cold) says its copy is corrupt
   * or gone (corrupt).
   */
  async lossError(key: string, tier: Tier, failure: unknown): Promise<NexusError> {
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

  async read(tier: Tier, key: string): Promise<Uint8Array> {
    if (tier === "hot") return this.#hot.get(key);
    if (tier === "warm") {
      const report = await this.warm.read(key);
      const damaged = [...report.missing, ...report.corrupt];
      if (damaged.length > 0) this.needsRepair.set(key, damaged);
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

  async write(tier: Tier, key: string, bytes: Uint8Array, onShard: (index: number) => void): Promise<void> {
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

  async remove(tier: Tier, key: string): Promise<boolean> {
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
  async has(tier: Tier, key: string): Promise<boolean> {
    if (tier === "hot") return this.#hot.has(key);
    if (tier === "warm") return (await this.warm.validShardCount(key)) >= this.warm.dataShards;
    return this.#cold.has(key);
  }

  /** Whether the tier holds a whole, durable copy (what a move must reach before removing its source). */
  async complete(tier: Tier, key: string): Promise<boolean> {
    if (tier === "warm") return this.warm.isComplete(key);
    return this.has(tier, key);
  }

  async readable(tier: Tier, key: string): Promise<boolean> {
    if (tier !== "warm") return this.has(tier, key);
    if (!(await this.warm.hasAny(key))) return false;
    try {
      await this.warm.read(key);
      return true;
    } catch {
      return false;
    }
  }
}
