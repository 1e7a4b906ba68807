/**
 * The tiering policy: when an object moves between the tiered store's tiers, judged from what the ledger
 * (ledger.ts) records of it: idle time and age demote, reads of warm or cold data promote. planMoves is the
 * policy applied to every object at one instant; the store carries the moves out.
 */
import type { Tier, TrackedObject } from "./ledger.js";

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

const DAY = 24 * 60 * 60 * 1000;
export const DEFAULT_POLICY: Required<TieringPolicy> = {
  warmAfterIdleMs: DAY,
  coldAfterIdleMs: 30 * DAY,
  maxHotAgeMs: Number.POSITIVE_INFINITY,
  promoteAfterReads: 2,
  minWarmSize: 64 * 1024,
};

/** The moves the policy asks for at `now`, promotions first; objects with a move in progress are left alone. */
export function planMoves(
  entries: Iterable<Readonly<TrackedObject>>,
  now: number,
  p: Readonly<Required<TieringPolicy>>,
): { key: string; to: Tier }[] {
  const moves: { key: string; to: Tier }[] = [];
  for (const entry of entries) {
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
