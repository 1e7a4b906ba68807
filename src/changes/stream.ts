/**
 * A change feed subscription read as an async iterable: the pages of whole revisions after `after`, in order, each
 * once, for a consumer that awaits between pages (a watch stream, a view being maintained). The feed pushes pages
 * synchronously; they wait in a queue until the consumer takes them. A consumer that falls more than
 * MAX_QUEUED_CHANGES behind is unsubscribed, and once it has read its queue it subscribes again after the last
 * revision it holds (the feed replays from the store's changelog), so a slow reader costs bounded memory.
 *
 * Given no feed, the iterable opens a ChangeFeed of its own over the store (closed when the iteration ends), so
 * there is one way to follow the changelog either way.
 *
 * Ends (the `for await` loop finishes) when `signal` aborts, the store closes or the feed is closed. Throws
 * NexusError "invalid_token" (reason "beyond_retention") when the changelog no longer reaches back to where the
 * consumer is (the feed reset: changes were missed), and the store's own error when reading it fails otherwise.
 */

import type { Revision, StoredChange, TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import { ChangeFeed, type Unsubscribe } from "./feed.js";

export interface FollowChangesOptions {
  /** Yield the changes after this revision. */
  readonly after: Revision;
  /** Ends the iteration. */
  readonly signal: AbortSignal;
  /** The feed to subscribe to (default: one opened over `store` for this iteration alone). */
  readonly feed?: ChangeFeed;
}

/** How many unread changes a consumer may fall behind before its subscription pauses (about 10 MB of changes). */
export const MAX_QUEUED_CHANGES = 50_000;

/** The longest a waiting consumer's feed may go silent; only used to notice a feed that stopped. */
const NO_END = Number.MAX_SAFE_INTEGER;

export async function* followChanges(
  store: TupleStore,
  options: FollowChangesOptions,
): AsyncGenerator<readonly StoredChange[], void, undefined> {
  const { after, signal } = options;
  if (signal.aborted || store.closed) return;
  const owned = options.feed === undefined ? await ChangeFeed.open(store, { after }) : undefined;
  const feed = options.feed ?? owned!;
  const queue: (readonly StoredChange[])[] = [];
  let head = 0;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  // The revision of the last change queued: where a paused subscription resumes.
  let cursor = after;
  let queued = 0;
  const listener = {
    onChanges(changes: readonly StoredChange[]) {
      if (changes.length === 0) return;
      queue.push(changes);
      queued += changes.length;
      cursor = changes[changes.length - 1]!.revision;
      if (queued > MAX_QUEUED_CHANGES) pause();
      notify();
    },
    onReset(revision: Revision) {
      failure ??= new NexusError(
        "invalid_token",
        `the changelog no longer reaches back to the stream's position (it continues at revision ${revision})`,
        { reason: "beyond_retention" },
      );
      notify();
    },
  };
  const subscribe = (): Unsubscribe => {
    const subscription = feed.subscribe(listener, { after: cursor });
    subscription.replayed().catch((error: unknown) => {
      failure ??= error;
      notify();
    });
    return subscription;
  };
  let unsubscribe: Unsubscribe | undefined = subscribe();
  const pause = (): void => {
    unsubscribe?.();
    unsubscribe = undefined;
  };
  // Resolves when the feed stops (closed, the store closed, or an error in its loop).
  const stopped = new AbortController();
  feed.caughtUp(NO_END, stopped.signal).then(notify, () => {});
  signal.addEventListener("abort", notify);
  try {
    for (;;) {
      if (signal.aborted || store.closed) return;
      if (head < queue.length) {
        const page = queue[head]!;
        queue[head++] = [];
        queued -= page.length;
        if (head === queue.length) {
          queue.length = 0;
          head = 0;
        }
        yield page;
        continue;
      }
      if (
        unsubscribe === undefined &&
        failure === undefined &&
        !signal.aborted &&
        !store.closed &&
        feed.running
      ) {
        unsubscribe = subscribe();
        continue;
      }
      if (failure !== undefined) throw failure;
      if (!feed.running) {
        const error = feed.stats().error;
        if (error === undefined) return;
        throw new NexusError("internal", `the change feed stopped: ${error}`);
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    signal.removeEventListener("abort", notify);
    stopped.abort();
    unsubscribe?.();
    await owned?.close();
  }
}
