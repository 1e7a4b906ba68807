/**
 * Change streams: every change of a tenant after a revision, in revision order, with no gap and no duplicate.
 * The stream pages through the store's changelog and, once caught up, waits for the next write; it ends (the
 * `for await` loop finishes) when the engine closes or the caller's AbortSignal aborts. No timer is involved.
 */

import { encodeToken } from "../tuples/token.js";
import { type TupleKey, toTupleKey } from "../tuples/tuple.js";
import type { Revision, TupleStore } from "../tuples/types.js";

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

const PAGE = 512;

export async function* changeStream(
  store: TupleStore,
  tenant: string,
  after: Revision,
  stop: AbortSignal,
): AsyncGenerator<Change, void, undefined> {
  let cursor = after;
  while (!stop.aborted && !store.closed) {
    const changes = await store.changesAfter(cursor, PAGE);
    const mine = changes.filter((c) => c.tuple.tenant === tenant);
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
    if (changes.length > 0) {
      cursor = changes[changes.length - 1]!.revision;
      continue;
    }
    await store.waitForRevision(cursor, stop);
  }
}
