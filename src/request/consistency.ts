/**
 * Which snapshot a read uses (DESIGN.md, "Consistency"). The rule, in one sentence: a read sees every write this
 * engine has acknowledged, and a write made elsewhere (another engine or process sharing the store) at most one
 * quantization window after it was committed.
 *
 * - "minimize_latency" (default): max(the quantized revision, the latest revision this reader knows). The
 *   quantized revision is the state at the start of the current window (now rounded down to a multiple of the
 *   window): it bounds how stale a read may be for changes this engine has not seen. The known revision
 *   (`KnownRevision`: the engine's own acknowledged writes, and whatever its change feed has delivered) makes
 *   every write this engine acknowledged visible at once, at no cost (no store call). A window of 0 reads the
 *   latest revision.
 * - "fully_consistent": the latest revision, so every acknowledged write is seen.
 * - { atLeastAsFresh: token }: the newest of the token's revision and minimize_latency's, so every write up to
 *   the token is seen.
 */

import { decodeToken } from "../tuples/token.js";
import type { Revision, TupleSnapshot, TupleStore } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";
import { onlyKnownFields, REQUEST_FIELDS } from "./requests.js";

export type Consistency = "minimize_latency" | "fully_consistent" | { readonly atLeastAsFresh: string };

/**
 * The latest revision a reader knows to exist: revisions it wrote and revisions its change feed delivered. Only
 * moves forward. Shared by an engine and its check chain, so both read what either has seen.
 */
export class KnownRevision {
  #latest: Revision;

  constructor(initial: Revision = 0) {
    this.#latest = initial;
  }

  get latest(): Revision {
    return this.#latest;
  }

  /** Records that `revision` exists (an acknowledged write, or a change delivered by the feed). */
  advance(revision: Revision): void {
    if (revision > this.#latest) this.#latest = revision;
  }
}

export interface ConsistencyOptions {
  readonly store: TupleStore;
  readonly now: number;
  readonly quantizationWindowMs: number;
  /** The latest revision the reader knows (its own writes, its feed); default 0. */
  readonly known?: Revision;
}

/** The revision a read with `consistency` uses. @throws NexusError "invalid_argument" | "invalid_token" */
export async function revisionFor(consistency: unknown, options: ConsistencyOptions): Promise<Revision> {
  const { store } = options;
  if (consistency === undefined || consistency === "minimize_latency") return minimizeLatency(options);
  if (consistency === "fully_consistent") return store.currentRevision();
  if (isTokenConsistency(consistency)) {
    const revision = await tokenRevision(consistency, store);
    return Math.max(revision, await minimizeLatency(options));
  }
  throw new NexusError(
    "invalid_argument",
    `consistency must be "minimize_latency", "fully_consistent" or { atLeastAsFresh: token }, got ${describe(consistency)}`,
    { consistency },
  );
}

/** Whether `consistency` is the `{ atLeastAsFresh }` form (its fields and token are checked by tokenRevision). */
export function isTokenConsistency(consistency: unknown): consistency is object {
  return typeof consistency === "object" && consistency !== null && "atLeastAsFresh" in consistency;
}

/**
 * The revision an `{ atLeastAsFresh: token }` names, once checked: no other field, a well-formed token, issued by
 * this store for a revision it has reached. @throws NexusError "invalid_argument" / "invalid_token".
 */
export async function tokenRevision(consistency: object, store: TupleStore): Promise<Revision> {
  onlyKnownFields(consistency, REQUEST_FIELDS.consistencyToken, "consistency");
  const given = (consistency as { atLeastAsFresh: unknown }).atLeastAsFresh;
  const token = decodeToken(given);
  if (token.storeId !== store.id || token.revision > (await store.currentRevision())) {
    throw new NexusError(
      "invalid_token",
      `consistency token ${describe(given, 60)} was not issued by this store`,
      {
        revision: token.revision,
      },
    );
  }
  return token.revision;
}

/**
 * What two requests share when their consistency resolves to the same revision at one instant: the preference
 * itself, or the token of an `atLeastAsFresh` (so a batch resolves each distinct consistency once).
 */
export function consistencyKey(consistency: unknown): unknown {
  return typeof consistency === "object" && consistency !== null
    ? `token:${String((consistency as { atLeastAsFresh?: unknown }).atLeastAsFresh)}`
    : consistency;
}

/** The start of the window `now` falls in (the instant whose state a quantized read sees). */
export function windowStart(now: number, quantizationWindowMs: number): number {
  return Math.floor(now / quantizationWindowMs) * quantizationWindowMs;
}

async function minimizeLatency(options: ConsistencyOptions): Promise<Revision> {
  const { store, now, quantizationWindowMs: window } = options;
  const quantized =
    window > 0 ? await store.revisionAt(windowStart(now, window)) : await store.currentRevision();
  return Math.max(quantized, options.known ?? 0);
}

/** Opens a snapshot at the chosen revision; if the store no longer retains it, the latest one (never older). */
export async function openSnapshot(
  consistency: unknown,
  options: ConsistencyOptions,
): Promise<TupleSnapshot> {
  const revision = await revisionFor(consistency, options);
  return snapshotAtLeast(options.store, revision);
}

/** A snapshot at `revision`; if the store no longer retains it, the latest one (never older). */
export async function snapshotAtLeast(store: TupleStore, revision: Revision): Promise<TupleSnapshot> {
  try {
    return await store.snapshot(revision);
  } catch (error) {
    if (error instanceof NexusError && error.details?.reason === "beyond_retention") {
      return store.snapshot(await store.currentRevision());
    }
    throw error;
  }
}
