/**
 * Per tenant, the revision of its last change, followed from the PostgreSQL changelog: the validity rule of the
 * shared result cache (shared-cache.ts). An answer about tenant T computed at revision q holds at any revision r
 * when T has no change in (K, max(q, r)] for some K ≤ min(q, r): both revisions then see the same tuples of T, and
 * a check reads its own tenant's tuples only — unless the tenant holds a tuple whose subject is in another tenant
 * (a cross-tenant grant, whose userset the other tenant's tuples resolve), so such tenants are marked and left out.
 *
 * A tenant's last change is read from the changelog once (`max(revision)` over its partition, or the changelog's
 * floor when trimming removed it), then kept current by following the changelog: the store's NOTIFY wakes the
 * follower, which reads the changes after its watermark. Tenants that hold expiring tuples are marked: their
 * answers change with time, not only with revisions, so the shared cache leaves them out too.
 */

import { isNexusError } from "../errors.js";
import type { PostgresTupleStore } from "../postgres/index.js";

export interface TenantState {
  /** The revision of the tenant's last change known (at or below the follower's watermark). */
  readonly lastChange: number;
  /**
   * Whether the tenant holds (or held, since this process followed it) tuples with an expiry or with a subject in
   * another tenant: its answers may change without a change of its own.
   */
  readonly excluded: boolean;
}

interface Tracked {
  lastChange: number;
  excluded: boolean;
}

/** Most tenants tracked; past it the map is cleared and tenants are read again when next used. */
const MAX_TRACKED = 100_000;
const PAGE = 1_000;

export class TenantChanges implements AsyncDisposable {
  readonly #store: PostgresTupleStore;
  readonly #tracked = new Map<string, Tracked>();
  /** Every change up to this revision has been applied to the tracked tenants. */
  #watermark = -1;
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  readonly #waiters = new Set<{ revision: number; wake: () => void }>();

  constructor(store: PostgresTupleStore) {
    this.#store = store;
  }

  get watermark(): number {
    return this.#watermark;
  }

  /** Starts following from the store's current revision. */
  async start(): Promise<void> {
    this.#watermark = await this.#store.currentRevision();
    this.#loop = this.#follow();
  }

  /** Resolves once every change up to `revision` is applied (or the follower is closed). */
  reach(revision: number): Promise<void> {
    if (this.#watermark >= revision || this.#stop.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        revision,
        wake: () => {
          this.#waiters.delete(waiter);
          resolve();
        },
      };
      this.#waiters.add(waiter);
    });
  }

  /** The tenant's state as of the watermark, reading it from the changelog the first time. */
  async state(tenant: string): Promise<TenantState> {
    const known = this.#tracked.get(tenant);
    if (known !== undefined) return known;
    // Tracked from now: the follower records changes that land while the query runs; the larger one wins.
    const entry: Tracked = { lastChange: -1, excluded: false };
    if (this.#tracked.size >= MAX_TRACKED) this.#tracked.clear();
    this.#tracked.set(tenant, entry);
    const s = this.#store.schema;
    try {
      const result = await this.#store.pool.query<{ last: string | null; floor: string; excluded: boolean }>(
        `SELECT (SELECT max(revision) FROM ${s}.changelog WHERE tenant = $1) AS last,
                (SELECT changelog_floor FROM ${s}.retention) AS floor,
                EXISTS (SELECT 1 FROM ${s}.tuples WHERE tenant = $1
                        AND (expires_at_ms IS NOT NULL OR subject_tenant <> tenant)) AS excluded`,
        [tenant],
      );
      const row = result.rows[0]!;
      entry.lastChange = Math.max(entry.lastChange, Number(row.last ?? 0), Number(row.floor));
      entry.excluded ||= row.excluded;
    } catch (error) {
      this.#tracked.delete(tenant);
      throw error;
    }
    return entry;
  }

  async close(): Promise<void> {
    this.#stop.abort();
    for (const waiter of [...this.#waiters]) waiter.wake();
    await this.#loop?.catch(() => undefined);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #follow(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        await this.#store.waitForRevision(this.#watermark, signal);
        if (signal.aborted) return;
        // The revision is read before the page: a page shorter than asked holds every change up to it.
        const current = await this.#store.currentRevision();
        const changes = await this.#store.changesAfter(this.#watermark, PAGE);
        for (const change of changes) {
          const entry = this.#tracked.get(change.tuple.tenant);
          if (entry === undefined) continue;
          entry.lastChange = Math.max(entry.lastChange, change.revision);
          const t = change.tuple;
          if (t.expiresAt !== undefined || t.subjectTenant !== t.tenant) entry.excluded = true;
        }
        const last = changes.length > 0 ? changes[changes.length - 1]!.revision : this.#watermark;
        this.#advance(changes.length < PAGE ? Math.max(current, last) : last);
      } catch (error) {
        if (signal.aborted || this.#store.closed) return;
        if (isNexusError(error, "invalid_token")) {
          // The changelog was trimmed past the watermark: forget every tenant (each is read again), go on from now.
          this.#tracked.clear();
          this.#advance(await this.#store.currentRevision().catch(() => this.#watermark));
          continue;
        }
        // The database is unreachable: try again shortly (readers wait meanwhile, within their deadline).
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  #advance(revision: number): void {
    if (revision <= this.#watermark) return;
    this.#watermark = revision;
    for (const waiter of [...this.#waiters]) if (waiter.revision <= revision) waiter.wake();
  }
}
