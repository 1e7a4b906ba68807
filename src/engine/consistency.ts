/**
 * Which snapshot a read uses (DESIGN.md, "Consistency"):
 * - "minimize_latency" (default): the state at the start of the current quantization window (now rounded down
 *   to a multiple of the window), so it is at most one window old and never older; requests in one window share
 *   a revision, which is what lets caches key on it. A window of 0 reads the latest revision.
 * - "fully_consistent": the latest revision, so every acknowledged write is seen.
 * - { atLeastAsFresh: token }: the quantized revision or the token's, whichever is newer, so every write up to
 *   the token is seen.
 */
import { describe, NexusError } from "../errors.js";
import { decodeToken } from "../store/token.js";
import type { Revision, TupleSnapshot, TupleStore } from "../store/types.js";

export type Consistency = "minimize_latency" | "fully_consistent" | { readonly atLeastAsFresh: string };

export interface ConsistencyOptions {
  readonly store: TupleStore;
  readonly now: number;
  readonly quantizationWindowMs: number;
}

/** The revision a read with `consistency` uses. @throws NexusError "invalid_argument" | "invalid_token" */
export async function revisionFor(consistency: unknown, options: ConsistencyOptions): Promise<Revision> {
  const { store, now, quantizationWindowMs } = options;
  const current = await store.currentRevision();
  const quantized = async (): Promise<Revision> =>
    quantizationWindowMs > 0
      ? Math.min(
          current,
          await store.revisionAt(Math.floor(now / quantizationWindowMs) * quantizationWindowMs),
        )
      : current;
  if (consistency === undefined || consistency === "minimize_latency") return quantized();
  if (consistency === "fully_consistent") return current;
  if (typeof consistency === "object" && consistency !== null && "atLeastAsFresh" in consistency) {
    const token = decodeToken((consistency as { atLeastAsFresh: unknown }).atLeastAsFresh);
    if (token.storeId !== store.id || token.revision > current) {
      throw new NexusError(
        "invalid_token",
        `consistency token ${describe((consistency as { atLeastAsFresh: unknown }).atLeastAsFresh, 60)} was not issued by this store`,
        { revision: token.revision },
      );
    }
    return Math.max(token.revision, await quantized());
  }
  throw new NexusError(
    "invalid_argument",
    `consistency must be "minimize_latency", "fully_consistent" or { atLeastAsFresh: token }, got ${describe(consistency)}`,
    { consistency },
  );
}

/** Opens a snapshot at the chosen revision; if the store no longer retains it, the latest one (never older). */
export async function openSnapshot(
  consistency: unknown,
  options: ConsistencyOptions,
): Promise<TupleSnapshot> {
  const revision = await revisionFor(consistency, options);
  try {
    return await options.store.snapshot(revision);
  } catch (error) {
    if (error instanceof NexusError && error.details?.reason === "beyond_retention") {
      return options.store.snapshot(await options.store.currentRevision());
    }
    throw error;
  }
}
