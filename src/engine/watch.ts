/**
 * Change streams: every change of a tenant after a revision, in revision order, with no gap and no duplicate.
 * A stream is a listener of the engine's one change feed (src/changes/feed.ts): subscribed with `{ after }`, it is
 * first replayed the changelog from its own revision, then joins the live fan-out. It queues its tenant's changes
 * for the consumer; past MAX_QUEUED unread changes it leaves the feed and, once the consumer has read the queue,
 * subscribes again after the last revision it holds (the feed replays the gap from the changelog), so a slow
 * consumer costs bounded memory. The stream ends (the `for await` loop finishes) when the engine closes, the
 * store closes, or the caller's AbortSignal aborts. No timer is involved.
 */

import { ChangeFeed, type ChangeListener, type Unsubscribe } from "../changes/feed.js";
import { decodeToken, encodeToken } from "../tuples/token.js";
import { type TupleKey, toTupleKey } from "../tuples/tuple.js";
import type { Revision, StoredChange, TupleStore } from "../tuples/types.js";
import { anySignal } from "../util/any-signal.js";
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

/** Unread changes a stream holds before it leaves the feed until its consumer catches up. */
const MAX_QUEUED = 4096;

/**
 * `tenant`'s changes after `after` from `source`: the caller's change feed, or a store (a feed is then opened for
 * this stream alone and closed with it; the engine always passes its feed).
 */
export async function* changeStream(
  source: ChangeFeed | TupleStore,
  tenant: string,
  after: Revision,
  stop: AbortSignal,
): AsyncGenerator<Change, void, undefined> {
  const own = source instanceof ChangeFeed ? undefined : await ChangeFeed.open(source, { after });
  const feed = own ?? (source as ChangeFeed);
  const store = feed.store;
  let queue: StoredChange[] = [];
  let head = 0;
  /** Every change up to this revision has been queued (or was not this tenant's). */
  let cursor = after;
  let reset = false;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  let unsubscribe: Unsubscribe | undefined;
  const listener: ChangeListener = {
    onChanges(changes, watermark) {
      for (const change of changes) {
        // A listener joining the live fan-out ahead of the feed sees revisions it asked to skip.
        if (change.revision > cursor && change.tuple.tenant === tenant) queue.push(change);
      }
      if (watermark > cursor) cursor = watermark;
      if (queue.length - head >= MAX_QUEUED) {
        unsubscribe?.();
        unsubscribe = undefined;
      }
      notify();
    },
    onReset() {
      reset = true;
      notify();
    },
  };
  // The store closing (or the caller stopping) wakes a waiting stream: this wait ends on nothing else. `done`
  // withdraws it when the consumer leaves the loop early.
  const done = new AbortController();
  void store.waitForRevision(Number.MAX_SAFE_INTEGER, anySignal([stop, done.signal])).then(notify, notify);
  try {
    unsubscribe = feed.subscribe(listener, { after });
    while (!stop.aborted && !store.closed) {
      if (head === queue.length) {
        queue = [];
        head = 0;
        if (reset) {
          // The changelog no longer reaches the cursor: the store's own error says so ("invalid_token"), as a read
          // of the changelog from there would.
          reset = false;
          unsubscribe?.();
          await store.changesAfter(cursor, 0);
          unsubscribe = feed.subscribe(listener, { after: cursor });
          continue;
        }
        unsubscribe ??= feed.subscribe(listener, { after: cursor });
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      const change = queue[head++]!;
      yield {
        revision: change.revision,
        token: encodeToken(store.id, change.revision),
        op: change.op,
        tuple: toTupleKey(change.tuple),
        // The feed never splits a revision, so the next queued change tells whether this one ends it.
        endOfRevision: (head < queue.length ? queue[head]!.revision : undefined) !== change.revision,
        ...(change.expired ? { expired: true } : {}),
      };
    }
  } finally {
    unsubscribe?.();
    done.abort();
    await own?.close();
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
