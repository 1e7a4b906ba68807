/**
 * The filesystem's permission events: it follows the tuple changelog from the change stream's cursor, and every
 * change this filesystem did not make itself (another writer's share, a group membership) becomes a `permission`
 * event of a tenant with a tree. Own changes are known by revision (noteOwnWrite, the stream's records and the
 * journal, so a restart knows them too); the operation a crash cut is known by its tuples. A changelog that no
 * longer reaches back to the cursor (or another tuple store) gives one event without a path per tenant.
 *
 * It reads the changelog as a listener of the engine's one change feed (engine.changeFeed(), changes/feed.ts),
 * subscribed from the stream's cursor through followChanges (changes/stream.ts): the feed replays what it missed
 * and then hands it each page of whole revisions as it reaches every other follower.
 */

import { followChanges } from "../changes/stream.js";
import type { Engine } from "../engine/engine.js";
import { identityKey } from "../tuples/tuple.js";
import type { Revision, StoredChange } from "../tuples/types.js";
import { isNexusError } from "../util/errors.js";
import type { EventSource, FsEventLog, NewFsEvent } from "./events.js";
import { pathOfObject } from "./paths.js";
import { changeOf, revisionOf, tupleId } from "./tuple-keys.js";

export interface PermissionFollowerParts {
  readonly engine: Engine;
  readonly events: FsEventLog;
  /** Ends the follower (the filesystem's close). */
  readonly signal: AbortSignal;
  /** Whether the tenant has a tree (changes of other tenants make no event). */
  readonly hasTree: (tenant: string) => boolean;
  readonly tenants: () => string[];
  /** Revisions of tuple writes that were the filesystem's own (from the journal and the stream's records). */
  readonly ownRevisions: Set<number>;
  /** Tuples the operation a crash cut may have changed, at revisions up to `below` (all its own). */
  readonly recovered: { tuples: Set<string>; below: number };
  /** The stream's cursor belonged to another tuple store: report that anything may have changed. */
  readonly lostCursor: boolean;
}

export class PermissionFollower {
  /** Settles when the follower has stopped (on the signal, a closed store, or an unexpected error). */
  readonly done: Promise<void>;
  readonly #engine: Engine;
  readonly #events: FsEventLog;
  readonly #signal: AbortSignal;
  readonly #hasTree: (tenant: string) => boolean;
  readonly #tenants: () => string[];
  /** Revisions of tuple writes this filesystem made (skipped: the operation's own event says more). */
  readonly #ownRevisions: Set<number>;
  /** The own tuple write in flight: the follower waits for its revision before it judges a change. */
  #ownWriting: Promise<unknown> = Promise.resolve();
  readonly #recovered: { tuples: Set<string>; below: number };
  /** Changes already in the stream past the cursor (`revision:tuple`): a restart does not report them again. */
  readonly #reported = new Set<string>();
  #cursorWaiters: { revision: number; resolve: () => void }[] = [];
  #following = true;

  constructor(parts: PermissionFollowerParts) {
    this.#engine = parts.engine;
    this.#events = parts.events;
    this.#signal = parts.signal;
    this.#hasTree = parts.hasTree;
    this.#tenants = parts.tenants;
    this.#ownRevisions = parts.ownRevisions;
    this.#recovered = parts.recovered;
    for (const r of parts.events.loaded) {
      if (r.tr !== undefined && r.tr > parts.events.cursor && r.e.change !== undefined) {
        this.#reported.add(`${r.tr}:${tupleId({ ...r.e.change, tenant: r.e.tenant })}`);
      }
    }
    this.done = this.#follow(parts.lostCursor)
      .catch(() => {})
      .finally(() => {
        this.#following = false;
        this.#wakeCursorWaiters(Number.POSITIVE_INFINITY);
      });
  }

  /**
   * Marks a tuple write as the filesystem's own. The follower may read the write's changes before the writer
   * sees its token: it waits for the returned promise (the revision recorded) before it judges any change.
   */
  noteOwnWrite(writing: Promise<{ token: string }>): Promise<unknown> {
    this.#ownWriting = writing.then(
      ({ token }) => this.#ownRevisions.add(revisionOf(token)),
      () => {},
    );
    return this.#ownWriting;
  }

  /** Follows the feed from the cursor until the signal, a closed store or a closed engine ends it. */
  async #follow(lost: boolean): Promise<void> {
    const store = this.#engine.store;
    const signal = this.#signal;
    if (lost) await this.#lostChanges();
    const feed = await this.#engine.changeFeed();
    let cursor = this.#events.cursor;
    while (!signal.aborted && !store.closed) {
      const now = await store.currentRevision();
      if (cursor > now) {
        // A cursor past the store's newest revision is not a revision of this store: what it saw is lost.
        cursor = await this.#restartAt(now);
        continue;
      }
      try {
        for await (const page of followChanges(store, { after: cursor, signal, feed })) {
          cursor = await this.#judge(page, cursor);
        }
        // The signal, the store closing or the feed closing (the engine's close) ended the pages.
        return;
      } catch (e) {
        // The changelog no longer reaches back to the cursor (the feed reset, "beyond_retention").
        if (!isNexusError(e, "invalid_token")) throw e;
        cursor = await this.#restartAt(await store.currentRevision());
      }
    }
  }

  /**
   * Reports a page's changes that were not the filesystem's own and moves the cursor past them. Changes at or
   * before `cursor` were judged already (a subscription that starts past the feed's watermark is handed them).
   * @returns the new cursor.
   */
  async #judge(page: readonly StoredChange[], cursor: Revision): Promise<Revision> {
    const last = page[page.length - 1]!.revision;
    if (last <= cursor) return cursor;
    await this.#ownWriting;
    const items: { event: NewFsEvent; source: EventSource }[] = [];
    for (const change of page) {
      if (change.revision <= cursor) continue;
      if (this.#ownRevisions.has(change.revision)) continue;
      const t = change.tuple;
      const key = identityKey(t);
      if (change.revision <= this.#recovered.below && this.#recovered.tuples.has(key)) continue;
      if (this.#reported.delete(`${change.revision}:${key}`)) continue;
      if (!this.#hasTree(t.tenant)) continue;
      const path = pathOfObject(t.object);
      items.push({
        event: {
          kind: "permission",
          tenant: t.tenant,
          ...(path !== undefined ? { path } : {}),
          change: changeOf(change.op, {
            user: t.user,
            relation: t.relation,
            object: t.object,
            tenant: t.tenant,
            ...(t.subjectTenant !== t.tenant ? { subjectTenant: t.subjectTenant } : {}),
          }),
        },
        source: { tr: change.revision },
      });
    }
    for (const r of this.#ownRevisions) if (r <= last) this.#ownRevisions.delete(r);
    if (items.length > 0) await this.#events.pushDurable(items, last);
    else this.#events.setCursor(last);
    this.#wakeCursorWaiters(last);
    return last;
  }

  /** Reports that changes up to `revision` were lost and makes it the cursor. @returns `revision`. */
  async #restartAt(revision: Revision): Promise<Revision> {
    await this.#lostChanges(revision);
    this.#events.setCursor(revision);
    this.#wakeCursorWaiters(revision);
    return revision;
  }

  /** One permission event without a path per tenant: the stream could not follow some tuple changes. */
  async #lostChanges(cursor?: number): Promise<void> {
    const items = this.#tenants().map((tenant) => ({
      event: { kind: "permission", tenant } as NewFsEvent,
      source: {},
    }));
    if (items.length > 0) await this.#events.pushDurable(items, cursor);
  }

  /** Resolves once the follower has judged every tuple change committed so far (at once when it has stopped). */
  async caughtUp(): Promise<void> {
    if (this.#signal.aborted || !this.#following) return;
    const target = await this.#engine.store.currentRevision().catch(() => 0);
    if (this.#events.cursor >= target) return;
    await new Promise<void>((resolve) => this.#cursorWaiters.push({ revision: target, resolve }));
  }

  #wakeCursorWaiters(cursor: number): void {
    this.#cursorWaiters = this.#cursorWaiters.filter((w) => {
      if (w.revision > cursor) return true;
      w.resolve();
      return false;
    });
  }
}
