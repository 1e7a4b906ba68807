/**
 * The cross-tenant grant index: the grant table (grant-table.ts) built from the changelog and kept exact by the
 * change feed, with its queries (`grantsTo`: "shared with me", `grantsOn`: "shared from here") and the walk a
 * denial rests on (`reach`). It stands on its own — store, program and change feed are all it needs — so whoever
 * offers the grant queries can own it whether or not a cache layer is on; CrossTenantResolver (resolver.ts) is the
 * check layer that asks it.
 *
 * Building: the index subscribes to the feed with a replay from revision 0. When the changelog still reaches back
 * that far every tenant is covered, and last-change revisions are exact, so it answers any revision. Otherwise the
 * feed says so (onReset during the replay) and the index reads a snapshot of the tenants named in `tenants` (and
 * those it has seen), answering only for them, from that revision on; pages the feed delivers meanwhile are
 * buffered and applied after. A feed reset later rebuilds it the same way, on a fresh subscription.
 *
 * Without a feed of its own (`source` absent) the index reads the changelog once through a short-lived private
 * feed, and follows whatever feed it is subscribed to later as a listener: a first page that does not continue
 * from its revision makes it catch up the same way, buffering the feed meanwhile.
 *
 * Owner: the index owns its subscription and its build task; close() unsubscribes, waits for the task and drops
 * the table. Whoever opened the index closes it.
 */

import { ChangeFeed, type ChangeListener, type ChangeSource, type Unsubscribe } from "../../changes/feed.js";
import type { Program } from "../../model/program.js";
import { objectOf, requestObject, subjectOf } from "../../request/requests.js";
import type { TupleKey } from "../../tuples/tuple.js";
import type { Revision, StoredChange, TupleStore } from "../../tuples/types.js";
import { describe, NexusError } from "../../util/errors.js";
import { GrantTable, type Reach, type ReachQuestion } from "./grant-table.js";
import {
  type CrossTenantOptions,
  type GrantsOnQuery,
  type GrantsToQuery,
  instantOf,
  tenantField,
  validateOptions,
} from "./queries.js";

/** What the index is built from and follows. */
export interface CrossTenantIndexContext {
  readonly program: Program;
  readonly store: TupleStore;
  /**
   * The change feed to follow. Given, the index subscribes itself at open with no gap; without it, whoever
   * subscribes the index later may do so at any time (the first page makes it catch up from the store).
   */
  readonly source?: ChangeSource;
}

/** The index's own figures; the layer reports them among its stats. */
export interface CrossTenantIndexStats {
  /** False once closed or after a failed build (until a reset rebuilds it). */
  readonly enabled: boolean;
  readonly grants: number;
  readonly tenantPairs: number;
  readonly hops: number;
  readonly rebuilds: number;
  readonly catchUps: number;
  /** Every change up to this revision is in the index. */
  readonly revision: Revision;
  /** The index answers for revisions from here (-1: for none). */
  readonly answersFrom: number;
  readonly coverage: string;
  /** Changes that altered the table since open (each may change an answer). */
  readonly updates: number;
  readonly note?: string;
}

type Need = "rebuild" | "catch-up";
type Page = { readonly changes: readonly StoredChange[]; readonly watermark: Revision };

/** A build in progress: the table the feed's pages go to until it is installed. */
interface Build {
  readonly table: GrantTable;
  /** Every change up to here is in `table`. */
  seen: Revision;
  /** Set when the changelog turned out not to reach back to revision 0: the build reads a snapshot instead. */
  trimmed: boolean;
  /** Pages delivered while the snapshot is read (applied after it). */
  buffer: Page[] | undefined;
}

export class CrossTenantIndex implements ChangeListener, AsyncDisposable {
  readonly #program: Program;
  readonly #store: TupleStore;
  readonly #source: ChangeSource | undefined;
  readonly #clock: () => number;
  readonly #named: readonly string[];
  /** Every tenant a change has named (read from a snapshot when a rebuild cannot replay the changelog). */
  readonly #tenantNames = new Set<string>();
  #table: GrantTable;
  /** Every change up to this revision is in the table. */
  #seen: Revision = 0;
  /** The table answers for revisions from here (0 after a replay from revision 0). */
  #from: Revision = Number.POSITIVE_INFINITY;
  /** The table covers every tenant (built by replaying the changelog from revision 0). */
  #complete = false;
  /** The tenants it covers when not complete. */
  #covered = new Set<string>();
  #answering = false;
  /** Without a source: pages delivered while a build or catch-up ran, applied when it ends. */
  #buffer: Page[] | undefined;
  /** Without a source: whether the next page continues right after what the table has seen. */
  #contiguous = false;
  #building: Build | undefined;
  /** The subscription to the source of the latest build (each build subscribes afresh, replaying from 0). */
  #subscription: Unsubscribe | undefined;
  #generation = 0;
  #need: Need | undefined;
  #task: Promise<void> | undefined;
  #updates = 0;
  #rebuilds = 0;
  #catchUps = 0;
  #note = "";
  #failed = false;
  #closed = false;

  private constructor(context: CrossTenantIndexContext, options: CrossTenantOptions) {
    this.#program = context.program;
    this.#store = context.store;
    this.#source = context.source;
    this.#clock = options.clock ?? Date.now;
    this.#named = options.tenants ?? [];
    this.#table = new GrantTable(context.program);
  }

  /**
   * Builds the index (changelog replay, else a snapshot of the named tenants) and, with `context.source`, follows
   * it. A store it cannot read leaves the index not answering (stats say why).
   * @throws NexusError "invalid_argument" for bad options.
   */
  static async open(
    context: CrossTenantIndexContext,
    options: CrossTenantOptions = {},
  ): Promise<CrossTenantIndex> {
    validateOptions(options);
    const index = new CrossTenantIndex(context, options);
    if (context.source === undefined) index.#buffer = [];
    index.#request("rebuild");
    await index.#task;
    return index;
  }

  /** Every change up to this revision is in the index (grantsTo / grantsOn answer as of it). */
  get revision(): Revision {
    return this.#seen;
  }

  /** Whether the index covers every tenant (false when it was seeded from a snapshot of named tenants). */
  get complete(): boolean {
    return this.#complete;
  }

  /** Whether `reach` may answer for a question pinned to `revision` now (built, and the revision within range). */
  answersAt(revision: Revision): boolean {
    return this.#answering && revision >= this.#from && revision <= this.#seen;
  }

  /**
   * Whether a chain of live grants, of the tuple classes in `reads`, may take `question` to its subject (the walk
   * of grant-table.ts over the tenants the index covers); "unknown" where the index cannot tell.
   */
  reach(question: ReachQuestion, reads: ReadonlySet<string>): Reach {
    if (!this.answersAt(question.revision)) return "unknown";
    return this.#table.reach(question, reads, this.#complete ? undefined : this.#covered);
  }

  /**
   * Live grants naming `user` of `subjectTenant` (and its type's wildcard), in one tenant or all, sorted by
   * tenant, object, relation, subject tenant, subject (frozen objects).
   * @throws NexusError "invalid_argument" / "type_not_found" for a bad query; "not_ready" while the index is
   *   rebuilding or does not cover a tenant asked about.
   */
  grantsTo(query: GrantsToQuery): TupleKey[] {
    requestObject(query, "a grantsTo query");
    const subjectTenant = tenantField(query.subjectTenant, "subjectTenant");
    const tenant = query.tenant === undefined ? undefined : tenantField(query.tenant, "tenant");
    const { subject, user } = subjectOf(this.#program, query.user);
    const now = instantOf(query.now, this.#clock);
    this.#assertQueryable(tenant);
    const users = [user];
    if (query.includeWildcard !== false && subject.kind === "object") users.push(`${subject.type}:*`);
    const table = this.#table;
    const tenants = tenant !== undefined ? [tenant] : (table.granting.get(subjectTenant) ?? []);
    return table.sorted(table.namingIdentities(tenants, subjectTenant, users, now));
  }

  /**
   * Live grants on `object` of `tenant` (to one subject tenant or all), sorted by relation, subject tenant,
   * subject (frozen objects). @throws as grantsTo.
   */
  grantsOn(query: GrantsOnQuery): TupleKey[] {
    requestObject(query, "a grantsOn query");
    const tenant = tenantField(query.tenant, "tenant");
    objectOf(this.#program, query.object);
    const subjectTenant =
      query.subjectTenant === undefined ? undefined : tenantField(query.subjectTenant, "subjectTenant");
    if (query.relation !== undefined && typeof query.relation !== "string") {
      throw new NexusError("invalid_argument", `relation must be a string, got ${describe(query.relation)}`);
    }
    const now = instantOf(query.now, this.#clock);
    this.#assertQueryable(tenant);
    const table = this.#table;
    return table.sorted(table.onIdentities(tenant, query.object, subjectTenant, query.relation, now));
  }

  /**
   * A page of the feed this index was subscribed to by someone else (an index opened without `source`). An
   * index that follows its own source takes its pages there and ignores these.
   */
  onChanges(changes: readonly StoredChange[], watermark: Revision): void {
    if (this.#closed || this.#failed || this.#source !== undefined) return;
    if (this.#buffer !== undefined) {
      this.#buffer.push({ changes, watermark });
      return;
    }
    if (!this.#contiguous) {
      // Subscribed after open: changes between the build and this page may have gone to the feed's other
      // listeners only. Catch up from the store, buffering the feed meanwhile.
      this.#buffer = [{ changes, watermark }];
      this.#request("catch-up");
      return;
    }
    this.#applyPage(changes, watermark);
  }

  /** Changes were missed: nothing is known until a rebuild. */
  onReset(): void {
    if (this.#closed) return;
    this.#failed = false;
    // Without a source the feed continues after the reset revision, which the rebuild reads at or after, so pages
    // from now on are contiguous with it.
    if (this.#source === undefined) this.#contiguous = true;
    this.#request("rebuild");
  }

  stats(): CrossTenantIndexStats {
    const table = this.#table;
    const closed = this.#closed;
    return {
      enabled: !closed && !this.#failed,
      grants: closed ? 0 : table.grants.size,
      tenantPairs: closed ? 0 : table.pairs,
      hops: closed ? 0 : table.hops,
      rebuilds: this.#rebuilds,
      catchUps: this.#catchUps,
      revision: this.#seen,
      answersFrom: Number.isFinite(this.#from) ? this.#from : -1,
      coverage: this.#complete ? "all tenants" : `${this.#covered.size} tenants`,
      updates: this.#updates,
      ...(this.#note !== "" ? { note: this.#note } : {}),
    };
  }

  /** Stops following changes, waits for a build in progress and drops the table. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#answering = false;
    this.#subscription?.();
    this.#subscription = undefined;
    await this.#task;
    this.#buffer = undefined;
    this.#building = undefined;
    this.#table = new GrantTable(this.#program);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The pages and resets of the subscription opened by build number `generation`. */
  #listener(generation: number): ChangeListener {
    return {
      onChanges: (changes, watermark) => {
        if (generation === this.#generation && !this.#closed && !this.#failed) {
          this.#onSourcePage(changes, watermark);
        }
      },
      onReset: () => {
        if (generation !== this.#generation || this.#closed) return;
        const build = this.#building;
        if (build !== undefined && !build.trimmed) {
          // The replay found the changelog trimmed (or the feed lost track while the build ran): the build reads a
          // snapshot instead, and the pages from here on wait for it.
          build.trimmed = true;
          build.buffer = [];
          return;
        }
        this.onReset();
      },
    };
  }

  #onSourcePage(changes: readonly StoredChange[], watermark: Revision): void {
    const build = this.#building;
    if (build === undefined) {
      this.#applyPage(changes, watermark);
    } else if (build.buffer !== undefined) {
      build.buffer.push({ changes, watermark });
    } else if (!build.trimmed) {
      this.#applyToBuild(build, changes, watermark);
    }
  }

  #applyToBuild(build: Build, changes: readonly StoredChange[], watermark: Revision): void {
    for (const change of changes) {
      this.#tenantNames.add(change.tuple.tenant);
      build.table.apply(change);
    }
    build.seen = watermark;
  }

  #applyPage(changes: readonly StoredChange[], watermark: Revision): void {
    const seen = this.#seen;
    const table = this.#table;
    // Moved before the loop, which reads `seen` above: the loop's code, optimized while it ran over a load's first
    // page, had no feedback for a statement after it and was deoptimized there at the end of page after page.
    if (watermark > seen) this.#seen = watermark;
    // A page's changes mostly share a tenant: the set is asked once per run of one, not once per change.
    let tenant: string | undefined;
    for (const change of changes) {
      if (change.revision <= seen) continue;
      const t = change.tuple;
      if (t.tenant !== tenant) {
        tenant = t.tenant;
        this.#tenantNames.add(tenant);
      }
      // A same-tenant tuple is never a grant (GrantTable.apply leaves it).
      if (t.subjectTenant !== t.tenant && table.apply(change)) this.#updates++;
    }
  }

  #request(need: Need): void {
    if (need === "rebuild") {
      this.#need = "rebuild";
      this.#answering = false;
    } else if (this.#need === undefined) {
      this.#need = "catch-up";
    }
    if (this.#source === undefined) this.#buffer ??= [];
    if (this.#task === undefined) {
      this.#task = this.#sync().finally(() => {
        this.#task = undefined;
      });
    }
  }

  /** Runs what was asked (rebuilds, catch-ups) until nothing is left, then applies the buffered pages. */
  async #sync(): Promise<void> {
    try {
      while (!this.#closed && this.#need !== undefined) {
        const need = this.#need;
        this.#need = undefined;
        if (need === "rebuild") await this.#rebuild();
        else if (!(await this.#catchUp())) this.#request("rebuild");
      }
      if (this.#closed) return;
      const buffer = this.#buffer ?? [];
      this.#buffer = undefined;
      for (const page of buffer) this.#applyPage(page.changes, page.watermark);
      this.#answering = Number.isFinite(this.#from);
    } catch (error) {
      this.#failed = true;
      this.#answering = false;
      this.#buffer = undefined;
      this.#building = undefined;
      this.#need = undefined;
      this.#note = `index unavailable: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /** A newer rebuild was asked for, or the index closed: the build in progress gives way. */
  #superseded(): boolean {
    return this.#closed || this.#need === "rebuild";
  }

  /** Without a source: reads the changes after `seen` through a private feed; false when no longer kept. */
  async #catchUp(): Promise<boolean> {
    this.#catchUps++;
    const kept = await this.#readChangelog(this.#seen, (changes, watermark) => {
      if (!this.#superseded()) this.#applyPage(changes, watermark);
    });
    if (!kept) return false;
    if (!this.#superseded()) this.#contiguous = true;
    return true;
  }

  /** Builds a new table: from the whole changelog when kept, else from a snapshot of the known tenants. */
  async #rebuild(): Promise<void> {
    this.#answering = false;
    const generation = ++this.#generation;
    this.#subscription?.();
    this.#subscription = undefined;
    const build: Build = { table: new GrantTable(this.#program), seen: 0, trimmed: false, buffer: undefined };
    this.#building = build;
    try {
      const source = this.#source;
      if (source !== undefined) {
        const listener = this.#listener(generation);
        const subscription = source.subscribe(listener, { after: 0 });
        this.#subscription = subscription;
        await subscription.replayed();
        if (this.#superseded()) return;
        // Joined the live fan-out: every change up to the feed's watermark has reached the build.
        if (!build.trimmed) build.seen = Math.max(build.seen, source.watermark);
      } else {
        const kept = await this.#readChangelog(0, (changes, watermark) => {
          this.#applyToBuild(build, changes, watermark);
        });
        if (this.#superseded()) return;
        if (!kept) build.trimmed = true;
      }
      if (!build.trimmed) {
        this.#building = undefined;
        this.#install(build.table, build.seen, 0, true, new Set());
        return;
      }
      build.buffer ??= [];
      const revision = await this.#store.currentRevision();
      const tenants = new Set([...this.#named, ...this.#tenantNames]);
      const table = new GrantTable(this.#program);
      const snapshot = await this.#store.snapshot(revision);
      try {
        for (const tenant of tenants) {
          const tuples = await snapshot.read({ tenant });
          if (this.#superseded()) return;
          for (const t of tuples) if (t.subjectTenant !== t.tenant) table.put(t, 0);
        }
      } finally {
        snapshot.release();
      }
      if (tenants.size === 0) {
        this.#note = "the changelog does not reach back to revision 0 and no tenants were named to read";
      }
      this.#building = undefined;
      this.#install(table, revision, revision, false, tenants);
      for (const page of build.buffer) this.#applyPage(page.changes, page.watermark);
    } finally {
      if (this.#building === build) this.#building = undefined;
    }
  }

  /**
   * Delivers the changes after `after`, up to the store's current revision, through a short-lived feed of the
   * index's own (an index without a source); false when the changelog does not reach back to `after`.
   */
  async #readChangelog(after: Revision, deliver: ChangeListener["onChanges"]): Promise<boolean> {
    let feed: ChangeFeed;
    try {
      feed = await ChangeFeed.open(this.#store, { after });
    } catch (error) {
      if (isBeyondRetention(error)) return false;
      throw error;
    }
    let kept = true;
    try {
      // The feed's loop may have delivered a first page before this subscription: ask for a replay from `after`.
      const subscription = feed.subscribe(
        {
          onChanges: deliver,
          onReset: () => {
            kept = false;
          },
        },
        { after },
      );
      await subscription.replayed();
      await feed.caughtUp();
      const failure = feed.stats().error;
      if (failure !== undefined) throw new Error(failure);
    } finally {
      await feed.close();
    }
    return kept;
  }

  #install(table: GrantTable, seen: Revision, from: Revision, complete: boolean, covered: Set<string>): void {
    this.#table = table;
    this.#seen = seen;
    this.#from = from;
    this.#complete = complete;
    this.#covered = covered;
    this.#rebuilds++;
  }

  #assertQueryable(tenant: string | undefined): void {
    if (this.#closed) throw new NexusError("closed", "the cross-tenant index is closed");
    if (!this.#answering) {
      throw new NexusError(
        "not_ready",
        `the cross-tenant index is ${this.#failed ? `unavailable (${this.#note})` : "rebuilding"}`,
      );
    }
    if (this.#complete) return;
    if (tenant === undefined) {
      throw new NexusError(
        "not_ready",
        "the cross-tenant index covers only the tenants it was seeded with (the changelog no longer reaches back to revision 0): name a tenant",
      );
    }
    if (!this.#covered.has(tenant)) {
      throw new NexusError(
        "not_ready",
        `the cross-tenant index does not cover tenant ${describe(tenant)} (name it in crossTenant.tenants)`,
        { tenant },
      );
    }
  }
}

function isBeyondRetention(error: unknown): boolean {
  return error instanceof NexusError && error.details?.reason === "beyond_retention";
}
