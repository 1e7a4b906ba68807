/**
 * Per tenant, what the shared result cache (shared-cache.ts) needs from the PostgreSQL changelog: for a question
 * (model, check class, subject), the revision of the last change that could alter its answer — by the in-process
 * cache's rule (src/changes/influence.ts changeReach): a change reaches the check classes that read its class, for
 * every subject, or only for its own subject when that is a plain object no tuple-to-userset can follow on.
 *
 * Why that makes a key: an answer about tenant T at revision r depends only on T's changes up to r that reach its
 * question (a check reads its own tenant's tuples only — unless the tenant holds a tuple whose subject is in another
 * tenant, a cross-tenant grant, so such tenants are marked and left out). If every such change is at or below some
 * K ≤ r, the answer at r equals the answer at K. So any member may key the answer by K — any upper bound of those
 * changes that is itself ≤ r: two members using the same K give the same answer, whatever their r. Members need not
 * agree on K (a member that began tracking later uses a coarser one, which only costs a miss), so no shared counter
 * and no atomic check is needed: each member derives K from the changelog it follows.
 *
 * Per (tenant, model) a member records, from the moment it starts tracking it: the tenant's last change then (a
 * floor: every older change is taken to reach every question), and after it the last change reaching each class,
 * for any subject or per subject. A tenant's last change is read from the changelog once (`max(revision)` over its
 * partition, or the changelog's floor when trimming removed it), then kept current by following the changelog: a
 * listener of a ChangeFeed over the store (changes/feed.ts, woken by the store's NOTIFY) applies each page of whole
 * revisions as it arrives. A feed stops when a changelog read fails (PostgreSQL unreachable): a new one is opened
 * from the watermark after a pause, so no change is skipped. Tenants that hold expiring tuples are marked: their
 * answers change with time, not only with revisions, so the shared cache leaves them out too.
 */

import { ChangeFeed } from "../changes/feed.js";
import { changeReach, type InfluenceMap, influenceOf } from "../changes/influence.js";
import { compileModelAsync } from "../model/index.js";
import type { PostgresTupleStore } from "../postgres/index.js";
import type { StoredChange } from "../tuples/types.js";
import { isNexusError } from "../util/errors.js";

/** What a question's answer may be keyed by (see the file comment). */
export interface QuestionState {
  /** An upper bound of the revisions of the tenant's changes (up to the watermark) that reach the question. */
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
  /** The first read from the changelog, while it runs. */
  loading: Promise<void> | undefined;
  /** Per model id: the track, or its setup while it runs (the follower records changes into settled tracks only). */
  readonly models: Map<string, ModelTrack | Promise<ModelTrack>>;
}

interface ModelTrack {
  /** undefined when the model could not be compiled here: every change then reaches every question. */
  readonly influence: InfluenceMap | undefined;
  /** Changes at or below this reach every question (the tenant's last change when tracking began or restarted). */
  floor: number;
  /** Per check class, the last change reaching it for every subject. */
  readonly anySubject: Map<string, number>;
  /** Per `class NUL subject`, the last change reaching it for that subject only. */
  readonly perSubject: Map<string, number>;
}

/** Most tenants tracked; past it the map is cleared and tenants are read again when next used. */
const MAX_TRACKED = 100_000;
/** Most per-class or per-subject records per (tenant, model); past it the track restarts from a new floor. */
const MAX_RECORDS = 20_000;
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

  /**
   * For a check of `cls` (`type#relation`) about `user` under model `model`: an upper bound of the revisions of the
   * tenant's changes known (up to the watermark) that reach it, and whether the tenant is left out.
   */
  async question(tenant: string, model: string, cls: string, user: string): Promise<QuestionState> {
    const entry = this.#entry(tenant);
    await entry.loading;
    let track = entry.models.get(model);
    if (track === undefined) {
      track = this.#track(tenant, model, entry);
      entry.models.set(model, track);
    }
    if (track instanceof Promise) track = await track;
    const lastChange = Math.max(
      track.floor,
      track.anySubject.get(cls) ?? -1,
      track.perSubject.get(`${cls}\u0000${user}`) ?? -1,
    );
    return { lastChange, excluded: entry.excluded };
  }

  #entry(tenant: string): Tracked {
    const known = this.#tracked.get(tenant);
    if (known !== undefined) return known;
    // Tracked from now: the follower records changes that land while the query runs; the larger one wins.
    const entry: Tracked = { lastChange: -1, excluded: false, loading: undefined, models: new Map() };
    if (this.#tracked.size >= MAX_TRACKED) this.#tracked.clear();
    this.#tracked.set(tenant, entry);
    entry.loading = this.#load(tenant, entry);
    // A failed read is forgotten (callers see the error; the next one reads again).
    entry.loading.then(
      () => {
        entry.loading = undefined;
      },
      () => {
        if (this.#tracked.get(tenant) === entry) this.#tracked.delete(tenant);
      },
    );
    return entry;
  }

  async #load(tenant: string, entry: Tracked): Promise<void> {
    const s = this.#store.schema;
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
  }

  /** Starts tracking (tenant, model): from here on the follower records which questions each change reaches. */
  async #track(tenant: string, model: string, entry: Tracked): Promise<ModelTrack> {
    let influence: InfluenceMap | undefined;
    try {
      // As the server's engines read a stored model (src/server/engines.ts); models are immutable, so this holds.
      const stored = await this.#store.models.get(tenant, model);
      if (stored !== undefined) {
        influence = influenceOf(await compileModelAsync(JSON.parse(stored.source) as object, "openfga"));
      }
    } catch {
      // PostgreSQL unreachable: a track for this question only (its floor bounds every change so far), set up
      // again next time.
      entry.models.delete(model);
      return { influence: undefined, floor: entry.lastChange, anySubject: new Map(), perSubject: new Map() };
    }
    // Taken after the awaits, and put in place in the same step: every change the follower applied before is in
    // entry.lastChange, every later one is recorded into the track.
    const track: ModelTrack = {
      influence,
      floor: entry.lastChange,
      anySubject: new Map(),
      perSubject: new Map(),
    };
    entry.models.set(model, track);
    return track;
  }

  async close(): Promise<void> {
    this.#stop.abort();
    for (const waiter of [...this.#waiters]) waiter.wake();
    await this.#loop?.catch(() => undefined);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Follows a feed over the store from the watermark until close(); opens a new one when a feed stops. */
  async #follow(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted && !this.#store.closed) {
      let feed: ChangeFeed;
      try {
        feed = await ChangeFeed.open(this.#store, { after: this.#watermark, pageSize: PAGE });
      } catch (error) {
        if (signal.aborted || this.#store.closed) return;
        if (isNexusError(error, "invalid_token")) {
          this.#reset(await this.#store.currentRevision().catch(() => this.#watermark));
        } else {
          // The database is unreachable: try again shortly (readers wait meanwhile, within their deadline).
          await pause(200, signal);
        }
        continue;
      }
      // From the watermark: should the feed have delivered a page before this listener joined, it is replayed.
      const unsubscribe = feed.subscribe(
        {
          onChanges: (changes, watermark) => this.#apply(changes, watermark),
          // The changelog was trimmed past the watermark: the feed continues from `revision`.
          onReset: (revision) => this.#reset(revision),
        },
        { after: this.#watermark },
      );
      // Waits until the feed stops (a failed read, the store closing), its replay to this listener fails, or close().
      let failed = false;
      const ended = new AbortController();
      const end = (): void => ended.abort();
      signal.addEventListener("abort", end, { once: true });
      unsubscribe.replayed().catch(() => {
        failed = true;
        end();
      });
      await feed.caughtUp(Number.MAX_SAFE_INTEGER, ended.signal).catch(() => undefined);
      signal.removeEventListener("abort", end);
      unsubscribe();
      failed ||= feed.stats().error !== undefined;
      await feed.close().catch(() => undefined);
      if (failed && !signal.aborted && !this.#store.closed) await pause(200, signal);
    }
  }

  /** Records one page of the feed: which questions of the tracked tenants its changes reach. */
  #apply(changes: readonly StoredChange[], watermark: number): void {
    for (const change of changes) {
      const entry = this.#tracked.get(change.tuple.tenant);
      if (entry === undefined) continue;
      entry.lastChange = Math.max(entry.lastChange, change.revision);
      const t = change.tuple;
      if (t.expiresAt !== undefined || t.subjectTenant !== t.tenant) entry.excluded = true;
      for (const track of entry.models.values())
        if (!(track instanceof Promise)) record(track, change, entry);
    }
    this.#advance(watermark);
  }

  /** Changes up to `revision` were missed: forgets every tenant (each is read again) and goes on from there. */
  #reset(revision: number): void {
    this.#tracked.clear();
    this.#advance(revision);
  }

  #advance(revision: number): void {
    if (revision <= this.#watermark) return;
    this.#watermark = revision;
    for (const waiter of [...this.#waiters]) if (waiter.revision <= revision) waiter.wake();
  }
}

/**
 * Records which questions of one model `change` reaches (tracks still being set up take the tenant's last change,
 * raised before this, as their floor instead).
 */
function record(track: ModelTrack, change: StoredChange, entry: Tracked): void {
  if (track.influence === undefined) {
    track.floor = Math.max(track.floor, change.revision);
    return;
  }
  const reach = changeReach(track.influence, change.tuple);
  if (track.anySubject.size + track.perSubject.size + reach.classes.length > MAX_RECORDS) {
    // Full: restart from the tenant's last change (coarser keys until new changes are recorded, never wrong ones).
    track.anySubject.clear();
    track.perSubject.clear();
    track.floor = Math.max(track.floor, entry.lastChange);
    return;
  }
  for (const cls of reach.classes) {
    if (reach.subject === undefined) raise(track.anySubject, cls, change.revision);
    else raise(track.perSubject, `${cls}\u0000${reach.subject}`, change.revision);
  }
}

/** Waits `ms`, or less when `signal` aborts (close() then need not wait out a retry pause). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

function raise(at: Map<string, number>, key: string, revision: number): void {
  const before = at.get(key);
  if (before === undefined || before < revision) at.set(key, revision);
}
