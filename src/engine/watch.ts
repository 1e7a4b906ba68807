/**
 * Change streams: every change of a tenant after a revision, in revision order, with no gap and no duplicate. A
 * stream is a listener of the engine's one change feed (src/changes/feed.ts), read through followChanges: it is
 * first replayed the changelog after its own revision, then joins the live fan-out. It ends (the `for await` loop
 * finishes) when the engine closes, the store closes, or the caller's AbortSignal aborts. No timer is involved.
 */

import { ChangeFeed } from "../changes/feed.js";
import { followChanges } from "../changes/stream.js";
import { decodeToken, encodeToken } from "../tuples/token.js";
import { type TupleKey, toTupleKey } from "../tuples/tuple.js";
import type { Revision, TupleStore } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";

/** One change, as watch yields it. */
export interface Change {
  /** The revision of the write that made the change. */
  readonly revision: Revision;
  /**
   * A token for that revision. Passed as `after`, a new watch resumes behind the whole revision, so checkpoint
   * a change's token once `endOfRevision` is true (a revision's changes are delivered together).
   */
  readonly token: string;
  /** This is the last change of its revision (for this tenant). */
  readonly endOfRevision: boolean;
  readonly op: "write" | "delete";
  readonly tuple: TupleKey;
  /** The delete removed a tuple whose `expiresAt` had passed. */
  readonly expired?: boolean;
}

/**
 * `tenant`'s changes after `after`, read from `source` through followChanges (src/changes/stream.ts): the engine's
 * change feed, or a store (followChanges then opens a feed for this stream alone and closes it with the stream).
 */
export async function* changeStream(
  source: ChangeFeed | TupleStore,
  tenant: string,
  after: Revision,
  stop: AbortSignal,
): AsyncGenerator<Change, void, undefined> {
  const feed = source instanceof ChangeFeed ? source : undefined;
  const store = feed?.store ?? (source as TupleStore);
  for await (const page of followChanges(store, {
    after,
    signal: stop,
    ...(feed !== undefined ? { feed } : {}),
  })) {
    // A stream joining the feed's live fan-out ahead of the feed's watermark is handed revisions it did not ask for.
    const mine = page.filter((c) => c.revision > after && c.tuple.tenant === tenant);
    for (let i = 0; i < mine.length; i++) {
      if (stop.aborted) return;
      const change = mine[i]!;
      yield {
        revision: change.revision,
        token: encodeToken(store.id, change.revision),
        op: change.op,
        tuple: toTupleKey(change.tuple),
        // Pages never split a revision, so the next change of this page tells whether this one ends it.
        endOfRevision: mine[i + 1]?.revision !== change.revision,
        ...(change.expired ? { expired: true } : {}),
      };
    }
  }
}

/**
 * The revision a watch starts after: `after`'s (a token of this store), else the store's current one.
 * @throws NexusError "invalid_token" when `after` is garbage, from another store, ahead of the store, or older
 *   than the changelog keeps (found now, not at the first change).
 */
export async function watchStart(store: TupleStore, after: string | undefined): Promise<Revision> {
  if (after === undefined) return store.currentRevision();
  const token = decodeToken(after);
  if (token.storeId !== store.id || token.revision > (await store.currentRevision())) {
    throw new NexusError("invalid_token", `watch token ${describe(after, 60)} was not issued by this store`);
  }
  await store.changesAfter(token.revision, 0);
  return token.revision;
}
