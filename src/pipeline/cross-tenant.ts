/**
 * The cross-tenant grant index (P1-6): every cross-tenant grant (a tuple whose `subjectTenant` differs from its
 * `tenant`), indexed per (tenant, subject tenant) by object and by subject, with expiry, kept exact by the change
 * feed. As a layer it denies, without evaluation, cross-tenant questions no grant can reach; same-tenant questions
 * pass straight through (one comparison). Its queries (`grantsTo`, `grantsOn`) list live grants ("shared with me",
 * "shared from here").
 *
 * Why a denial is exact, read off the reference evaluator (src/reference/check.ts). Take a question in tenant T for a
 * subject of tenant S ≠ T:
 * - evaluation starts in T, and moves to another tenant only by following a tuple whose subject lives there: a
 *   userset subject (`group:eng#member`) or a plain object read as a tuple-to-userset parent. A same-tenant tuple
 *   keeps it in T, so only cross-tenant tuples move it: call them hops (tenant X → the tuple's subject tenant);
 * - in a tenant X ≠ S a tuple matches the subject (exactly or by its type's wildcard) only when its subject tenant
 *   is S, i.e. it is an (X, S) grant naming the subject or its wildcard; the userset-subject rule ("`group:g#member`
 *   is in `group:g#member`") holds only in S itself;
 * - every tuple the evaluation reads, in any tenant, belongs to a tuple class the question's (type, relation) may
 *   read (src/changes/influence.ts: the closure ignores tenants).
 * So TRUE needs a chain of live hops, of classes the question may read, from T to some tenant X, and then either a
 * hop into S or a live (X, S) grant naming the subject or its wildcard. The layer walks those hops (a tenant graph,
 * tiny in practice) and denies when no such chain exists. A grant with a condition counts as live (it may hold);
 * questions whose (type, relation) may evaluate a condition pass through, because the reference would report a
 * missing parameter on a same-tenant tuple rather than deny; so do questions whose (type, relation) can take as
 * many steps as the depth limit (src/changes/influence.ts maxHops: recursive relations), because the reference
 * may fail with "resolution_too_complex" there rather than deny.
 *
 * Revisions: the index holds the grants at revision `seen` (every change up to it applied). A question pinned to
 * an older revision r is answered only when nothing it depends on changed in (r, seen]: every tenant pair and every
 * tenant whose hops the walk reads records the revision of its last change, and each must be ≤ r. Questions newer
 * than `seen` pass through. A pair or tenant left without grants hands its last-change revision to its tenant (or
 * to the index), so a question about it stays exact too. Expiry needs no write: a grant counts while `expiresAt` >
 * the question's instant, as the reader's rule. Questions with contextual tuples (which may be grants) pass through.
 *
 * Building: at open the layer replays the changelog from revision 0 when the store still keeps it (every tenant is
 * then covered, and last-change revisions are exact, so it answers any revision); otherwise it reads a snapshot of
 * the tenants named in `tenants` (and those it has seen), and answers only for them, from that revision on. A feed
 * reset rebuilds it the same way; changes arriving meanwhile are buffered and applied after.
 *
 * Owner: the layer owns its subscription (when opened with `source`) and its rebuild task; close() unsubscribes,
 * waits for the task, drops the index and closes the next layer.
 */

import type { ChangeListener } from "../changes/feed.js";
import { type InfluenceMap, influenceOf } from "../changes/influence.js";
import { analyze, type ProgramAnalysis } from "../model/analysis.js";
import type { Program } from "../model/program.js";
import { isValidTuple } from "../model/tuple-rules.js";
import { objectOf, requestObject, subjectOf } from "../request/requests.js";
import { identityKey, isTenantName, type RelationTuple, type TupleKey, toTupleKey } from "../tuples/tuple.js";
import type { Revision, StoredChange, TupleStore } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";
import type { ChangeSource } from "./bloom-negative.js";
import {
  type BatchOutcome,
  type CheckResolver,
  type DepthGuard,
  LayerCounters,
  type LayerStats,
  type Resolution,
  type ResolvedCheck,
  resolveRest,
} from "./types.js";

export interface CrossTenantOptions {
  /**
   * Tenants to read from a snapshot when the changelog no longer reaches back to revision 0. Without them (and
   * without the changelog) the layer covers no tenant and passes every cross-tenant question through.
   */
  readonly tenants?: readonly string[];
  /** Epoch ms for `grantsTo` / `grantsOn` without `now` (default Date.now; the chain passes its clock). */
  readonly clock?: () => number;
}

export interface CrossTenantContext {
  readonly program: Program;
  readonly store: TupleStore;
  /** Default: influenceOf(program). */
  readonly influence?: InfluenceMap;
  /**
   * The change feed to follow. Given, the layer subscribes itself at open with no gap; without it, whoever
   * subscribes the layer later may do so at any time (the first page makes it catch up from the store).
   */
  readonly source?: ChangeSource;
  /** The evaluator's depth limit (default 25): denials apply only where no check can reach it. */
  readonly maxResolutionDepth?: number;
  /** Where no check can reach that limit (default: the (type, relation) cannot recurse that far). */
  readonly depthGuard?: DepthGuard;
}

/** Live grants naming a subject (what Nexus lists as "shared with me"). */
export interface GrantsToQuery {
  /** The subject's tenant. */
  readonly subjectTenant: string;
  /** The subject: `user:bob`, `user:*`, `group:eng#member`. */
  readonly user: string;
  /** Only grants written in this tenant (default: every tenant). */
  readonly tenant?: string;
  /** Include grants to the subject's type wildcard (`user:*`) for a plain subject (default true). */
  readonly includeWildcard?: boolean;
  /** The instant (epoch ms) at which grants must be live (default: the clock). */
  readonly now?: number;
}

/** Live grants on one object (what it is shared with). */
export interface GrantsOnQuery {
  readonly tenant: string;
  /** `type:id`. */
  readonly object: string;
  /** Only grants to subjects of this tenant (default: every other tenant). */
  readonly subjectTenant?: string;
  /** Only grants on this relation. */
  readonly relation?: string;
  readonly now?: number;
}

/** identity key → tuple. */
type Bucket = Map<string, RelationTuple>;

/** The grants of one (tenant, subject tenant) pair. */
interface PairGrants {
  /** object → grants on it. */
  readonly byObject: Map<string, Bucket>;
  /** subject string → tuple class (`type#relation`) → grants naming that subject. */
  readonly bySubject: Map<string, Map<string, Bucket>>;
  size: number;
  /** Revision of the last change to this pair's grants. */
  lastChange: Revision;
}

/** The grants written in one tenant. */
interface TenantGrants {
  readonly pairs: Map<string, PairGrants>;
  /** tuple class → the grants evaluation follows out of the tenant (hops). */
  readonly hops: Map<string, Bucket>;
  /** Revision of the last change to this tenant's hops. */
  lastHopChange: Revision;
  /** The latest last-change of pairs since emptied (a question about a pair with no entry must not be older). */
  retiredPairChange: Revision;
}

const PAGE = 4096;
const DENIED_FOREVER = Number.POSITIVE_INFINITY;

const live = (t: RelationTuple, now: number): boolean => t.expiresAt === undefined || t.expiresAt > now;
const classOf = (t: RelationTuple): string => `${t.objectType}#${t.relation}`;

function anyLive(bucket: Bucket, now: number): boolean {
  for (const t of bucket.values()) if (live(t, now)) return true;
  return false;
}

function removeFrom<K>(map: Map<K, Bucket>, key: K, identity: string): void {
  const bucket = map.get(key);
  if (bucket === undefined) return;
  bucket.delete(identity);
  if (bucket.size === 0) map.delete(key);
}

function addTo<K>(map: Map<K, Bucket>, key: K, identity: string, t: RelationTuple): void {
  let bucket = map.get(key);
  if (bucket === undefined) {
    bucket = new Map();
    map.set(key, bucket);
  }
  bucket.set(identity, t);
}

/** The index proper: grants by pair, object and subject, hops by tenant and class, last-change revisions. */
class GrantIndex {
  readonly tenants = new Map<string, TenantGrants>();
  /** subject tenant → tenants holding grants to it. */
  readonly granting = new Map<string, Set<string>>();
  /** identity key → grant. */
  readonly grants = new Map<string, RelationTuple>();
  pairs = 0;
  hops = 0;
  /** The latest change of tenants since emptied. */
  retiredTenantChange: Revision = 0;
  readonly #program: Program;
  readonly #analysis: ProgramAnalysis;

  constructor(program: Program) {
    this.#program = program;
    this.#analysis = analyze(program);
  }

  /** Applies one change of the changelog; true when the index changed. */
  apply(change: StoredChange): boolean {
    const t = change.tuple;
    if (t.subjectTenant === t.tenant) return false;
    if (change.op === "write") return this.put(t, change.revision);
    return this.remove(identityKey(t), change.revision);
  }

  /** Adds (or replaces) a grant; a tuple the model does not allow is never read, so it is left out. */
  put(t: RelationTuple, revision: Revision): boolean {
    const identity = identityKey(t);
    const removed = this.remove(identity, revision);
    if (t.subjectTenant === t.tenant || !isValidTuple(this.#program, t)) return removed;
    let tenant = this.tenants.get(t.tenant);
    if (tenant === undefined) {
      // A tenant emptied before may have lost hops or pairs since any revision up to retiredTenantChange.
      tenant = {
        pairs: new Map(),
        hops: new Map(),
        lastHopChange: this.retiredTenantChange,
        retiredPairChange: this.retiredTenantChange,
      };
      this.tenants.set(t.tenant, tenant);
    }
    let pair = tenant.pairs.get(t.subjectTenant);
    if (pair === undefined) {
      pair = { byObject: new Map(), bySubject: new Map(), size: 0, lastChange: revision };
      tenant.pairs.set(t.subjectTenant, pair);
      this.pairs++;
      let granting = this.granting.get(t.subjectTenant);
      if (granting === undefined) {
        granting = new Set();
        this.granting.set(t.subjectTenant, granting);
      }
      granting.add(t.tenant);
    }
    const cls = classOf(t);
    addTo(pair.byObject, t.object, identity, t);
    let byClass = pair.bySubject.get(t.user);
    if (byClass === undefined) {
      byClass = new Map();
      pair.bySubject.set(t.user, byClass);
    }
    addTo(byClass, cls, identity, t);
    pair.size++;
    pair.lastChange = revision;
    if (this.#isHop(t)) {
      addTo(tenant.hops, cls, identity, t);
      tenant.lastHopChange = revision;
      this.hops++;
    }
    this.grants.set(identity, t);
    return true;
  }

  remove(identity: string, revision: Revision): boolean {
    const t = this.grants.get(identity);
    if (t === undefined) return false;
    this.grants.delete(identity);
    const tenant = this.tenants.get(t.tenant)!;
    const pair = tenant.pairs.get(t.subjectTenant)!;
    const cls = classOf(t);
    removeFrom(pair.byObject, t.object, identity);
    const byClass = pair.bySubject.get(t.user)!;
    removeFrom(byClass, cls, identity);
    if (byClass.size === 0) pair.bySubject.delete(t.user);
    pair.size--;
    pair.lastChange = revision;
    if (this.#isHop(t)) {
      removeFrom(tenant.hops, cls, identity);
      tenant.lastHopChange = revision;
      this.hops--;
    }
    if (pair.size === 0) {
      tenant.pairs.delete(t.subjectTenant);
      tenant.retiredPairChange = Math.max(tenant.retiredPairChange, pair.lastChange);
      this.pairs--;
      const granting = this.granting.get(t.subjectTenant)!;
      granting.delete(t.tenant);
      if (granting.size === 0) this.granting.delete(t.subjectTenant);
      if (tenant.pairs.size === 0) {
        // Hops are grants too, so a tenant without pairs has none left.
        this.tenants.delete(t.tenant);
        this.retiredTenantChange = Math.max(
          this.retiredTenantChange,
          tenant.lastHopChange,
          tenant.retiredPairChange,
        );
      }
    }
    return true;
  }

  /** Whether evaluation follows this grant into its subject's tenant. */
  #isHop(t: RelationTuple): boolean {
    return (
      t.subject.kind === "userset" ||
      (t.subject.kind === "object" && this.#analysis.isTupleset(t.objectType, t.relation))
    );
  }
}

type Need = "rebuild" | "catch-up";

export class CrossTenantResolver implements CheckResolver, ChangeListener, AsyncDisposable {
  readonly layer = "cross-tenant";
  readonly #inner: CheckResolver;
  readonly #program: Program;
  readonly #store: TupleStore;
  readonly #influence: InfluenceMap;
  readonly #depthGuard: DepthGuard;
  readonly #clock: () => number;
  readonly #named: readonly string[];
  readonly #counters = new LayerCounters();
  /** Every tenant a change has named (read from a snapshot when a rebuild cannot replay the changelog). */
  readonly #tenantNames = new Set<string>();
  #index: GrantIndex;
  /** Every change up to this revision is in the index. */
  #seen: Revision = 0;
  /** The index answers for revisions from here (0 after a replay from revision 0). */
  #from: Revision = Number.POSITIVE_INFINITY;
  /** The index covers every tenant (built by replaying the changelog from revision 0). */
  #complete = false;
  /** The tenants it covers when not complete. */
  #covered = new Set<string>();
  #answering = false;
  /** Pages the feed delivered while a rebuild or catch-up ran, applied when it ends. */
  #buffer: { changes: readonly StoredChange[]; watermark: Revision }[] | undefined;
  /** Whether the next feed page continues right after what the index has seen. */
  #contiguous: boolean;
  #need: Need | undefined;
  #task: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  #sameTenant = 0;
  #bypassed = 0;
  #mayGrant = 0;
  #rebuilds = 0;
  #catchUps = 0;
  #note = "";
  #failed = false;
  #closed = false;

  private constructor(inner: CheckResolver, context: CrossTenantContext, options: CrossTenantOptions) {
    this.#inner = inner;
    this.#program = context.program;
    this.#store = context.store;
    this.#influence = context.influence ?? influenceOf(context.program);
    const maxDepth = context.maxResolutionDepth ?? 25;
    const influence = this.#influence;
    this.#depthGuard = context.depthGuard ?? ((c) => influence.maxHops(c.objectType, c.relation) < maxDepth);
    this.#clock = options.clock ?? Date.now;
    this.#named = options.tenants ?? [];
    this.#index = new GrantIndex(context.program);
    this.#contiguous = context.source !== undefined;
  }

  /**
   * Builds the index (changelog replay, else a snapshot of the named tenants) and, with `context.source`, starts
   * following it. A store it cannot read leaves the layer passing everything through (stats say why).
   * @throws NexusError "invalid_argument" for bad options.
   */
  static async open(
    inner: CheckResolver,
    context: CrossTenantContext,
    options: CrossTenantOptions = {},
  ): Promise<CrossTenantResolver> {
    requestObject(options, "cross-tenant options");
    if (options.tenants !== undefined) {
      if (!Array.isArray(options.tenants)) {
        throw new NexusError(
          "invalid_argument",
          `crossTenant.tenants must be an array, got ${describe(options.tenants)}`,
        );
      }
      options.tenants.forEach((tenant, i) => {
        if (!isTenantName(tenant)) {
          throw new NexusError(
            "invalid_argument",
            `crossTenant.tenants[${i}] must be a non-empty string without NUL, got ${describe(tenant)}`,
          );
        }
      });
    }
    if (options.clock !== undefined && typeof options.clock !== "function") {
      throw new NexusError(
        "invalid_argument",
        `crossTenant.clock must be a function, got ${describe(options.clock)}`,
      );
    }
    const layer = new CrossTenantResolver(inner, context, options);
    layer.#buffer = [];
    // Subscribing before the build starts: every change after the feed's watermark reaches the buffer, and the
    // build reads the store at or after that watermark, so nothing falls in between.
    if (context.source !== undefined) layer.#unsubscribe = context.source.subscribe(layer);
    layer.#request("rebuild");
    await layer.#task;
    return layer;
  }

  /** Every change up to this revision is in the index (grantsTo / grantsOn answer as of it). */
  get revision(): Revision {
    return this.#seen;
  }

  /** Whether the index covers every tenant (false when it was seeded from a snapshot of named tenants). */
  get complete(): boolean {
    return this.#complete;
  }

  resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    if (check.subjectTenant === check.tenant) {
      this.#sameTenant++;
      return this.#inner.resolve(check, signal);
    }
    this.#counters.requests++;
    if (this.#denies(check)) {
      this.#counters.hits++;
      return Promise.resolve(denial(check));
    }
    this.#counters.misses++;
    return this.#inner.resolve(check, signal);
  }

  resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    let cross = false;
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      if (c.subjectTenant !== c.tenant) {
        cross = true;
        break;
      }
    }
    if (!cross) {
      this.#sameTenant += checks.length;
      return this.#inner.resolveMany(checks, signal);
    }
    return this.#resolveMixed(checks, signal);
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
    const now = this.#instant(query.now);
    this.#assertQueryable(tenant);
    const users = [user];
    if (query.includeWildcard !== false && subject.kind === "object") users.push(`${subject.type}:*`);
    const tenants = tenant !== undefined ? [tenant] : [...(this.#index.granting.get(subjectTenant) ?? [])];
    const out: string[] = [];
    for (const t of tenants) {
      const pair = this.#index.tenants.get(t)?.pairs.get(subjectTenant);
      if (pair === undefined) continue;
      for (const u of users) {
        for (const bucket of pair.bySubject.get(u)?.values() ?? []) {
          for (const [identity, grant] of bucket) if (live(grant, now)) out.push(identity);
        }
      }
    }
    return this.#sorted(out);
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
    const now = this.#instant(query.now);
    this.#assertQueryable(tenant);
    const pairs = this.#index.tenants.get(tenant)?.pairs;
    const out: string[] = [];
    if (pairs !== undefined) {
      const chosen = subjectTenant !== undefined ? [pairs.get(subjectTenant)] : [...pairs.values()];
      for (const pair of chosen) {
        for (const [identity, grant] of pair?.byObject.get(query.object) ?? []) {
          if (live(grant, now) && (query.relation === undefined || grant.relation === query.relation)) {
            out.push(identity);
          }
        }
      }
    }
    return this.#sorted(out);
  }

  onChanges(changes: readonly StoredChange[], watermark: Revision): void {
    if (this.#closed || this.#failed) return;
    if (this.#buffer !== undefined) {
      this.#buffer.push({ changes, watermark });
      return;
    }
    if (!this.#contiguous) {
      // Subscribed after open without a source: changes between the build and this page may have gone to the
      // feed's other listeners only. Catch up from the store, buffering the feed meanwhile.
      this.#buffer = [{ changes, watermark }];
      this.#request("catch-up");
      return;
    }
    this.#applyPage(changes, watermark);
  }

  onReset(): void {
    if (this.#closed) return;
    // Changes were missed: nothing is known until a rebuild; the feed continues after the reset revision, which
    // the rebuild reads at or after, so pages from now on are contiguous with it.
    this.#failed = false;
    this.#contiguous = true;
    this.#request("rebuild");
  }

  stats(): LayerStats[] {
    const index = this.#index;
    const base = this.#counters.snapshot(this.layer, !this.#closed && !this.#failed, {
      grants: this.#closed ? 0 : index.grants.size,
      tenantPairs: this.#closed ? 0 : index.pairs,
      hops: this.#closed ? 0 : index.hops,
      sameTenant: this.#sameTenant,
      mayGrant: this.#mayGrant,
      bypassed: this.#bypassed,
      rebuilds: this.#rebuilds,
      catchUps: this.#catchUps,
      revision: this.#seen,
      answersFrom: Number.isFinite(this.#from) ? this.#from : -1,
      coverage: this.#complete ? "all tenants" : `${this.#covered.size} tenants`,
      ...(this.#note !== "" ? { note: this.#note } : {}),
    });
    return [
      {
        ...base,
        requests: base.requests + this.#sameTenant,
        misses: base.misses + this.#sameTenant,
      },
      ...this.#inner.stats(),
    ];
  }

  /** Stops following changes, waits for a rebuild in progress, drops the index, then closes the next layer. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#answering = false;
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
      await this.#task;
      this.#buffer = undefined;
      this.#index = new GrantIndex(this.#program);
    }
    await this.#inner.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #resolveMixed(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = new Array(checks.length);
    const passed: number[] = [];
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i]!;
      if (check.subjectTenant === check.tenant) {
        this.#sameTenant++;
        passed.push(i);
        continue;
      }
      this.#counters.requests++;
      if (this.#denies(check)) {
        this.#counters.hits++;
        outcomes[i] = denial(check);
      } else {
        this.#counters.misses++;
        passed.push(i);
      }
    }
    await resolveRest(this.#inner, checks, passed, outcomes, signal);
    return outcomes;
  }

  /** Whether no chain of live grants can take a cross-tenant question to a grant (see the header). */
  #denies(check: ResolvedCheck): boolean {
    const r = check.revision;
    if (
      !this.#answering ||
      r < this.#from ||
      r > this.#seen ||
      check.contextualTuples.length > 0 ||
      this.#influence.mayEvaluateConditions(check.objectType, check.relation) ||
      !this.#depthGuard(check)
    ) {
      this.#bypassed++;
      return false;
    }
    const index = this.#index;
    const now = check.now;
    const target = check.subjectTenant;
    const reads = this.#influence.readsOf(check.objectType, check.relation);
    const subject = check.subject;
    const wildcard = subject.kind === "userset" ? undefined : `${subject.type}:*`;
    let tenant = check.tenant;
    let visited: Set<string> | undefined;
    let queue: string[] | undefined;
    for (;;) {
      if (!this.#complete && !this.#covered.has(tenant)) {
        this.#bypassed++;
        return false;
      }
      const grants = index.tenants.get(tenant);
      if (grants === undefined) {
        if (index.retiredTenantChange > r) {
          this.#bypassed++;
          return false;
        }
      } else {
        const pair = grants.pairs.get(target);
        if (grants.lastHopChange > r || (pair?.lastChange ?? grants.retiredPairChange) > r) {
          this.#bypassed++;
          return false;
        }
        if (
          pair !== undefined &&
          (names(pair, check.user, reads, now) ||
            (wildcard !== undefined && names(pair, wildcard, reads, now)))
        ) {
          this.#mayGrant++;
          return false;
        }
        for (const [cls, bucket] of grants.hops) {
          if (!reads.has(cls)) continue;
          for (const hop of bucket.values()) {
            if (!live(hop, now)) continue;
            const next = hop.subjectTenant;
            if (next === target) {
              this.#mayGrant++;
              return false;
            }
            if (visited === undefined || queue === undefined) {
              visited = new Set([check.tenant]);
              queue = [];
            }
            if (!visited.has(next)) {
              visited.add(next);
              queue.push(next);
            }
          }
        }
      }
      const next = queue?.pop();
      if (next === undefined) return true;
      tenant = next;
    }
  }

  #applyPage(changes: readonly StoredChange[], watermark: Revision): void {
    const seen = this.#seen;
    const index = this.#index;
    for (const change of changes) {
      if (change.revision <= seen) continue;
      this.#tenantNames.add(change.tuple.tenant);
      if (index.apply(change)) this.#counters.invalidations++;
    }
    if (watermark > this.#seen) this.#seen = watermark;
  }

  #request(need: Need): void {
    if (need === "rebuild") {
      this.#need = "rebuild";
      this.#answering = false;
    } else if (this.#need === undefined) {
      this.#need = "catch-up";
    }
    this.#buffer ??= [];
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
      this.#need = undefined;
      this.#note = `index unavailable: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /** Reads the changes after `seen` from the store; false when the store no longer keeps them. */
  async #catchUp(): Promise<boolean> {
    this.#catchUps++;
    try {
      for (;;) {
        const page = await this.#store.changesAfter(this.#seen, PAGE);
        if (this.#closed || this.#need === "rebuild") return true;
        if (page.length === 0) break;
        this.#applyPage(page, page[page.length - 1]!.revision);
      }
    } catch (error) {
      if (isBeyondRetention(error)) return false;
      throw error;
    }
    this.#contiguous = true;
    return true;
  }

  /** Builds a new index: from the whole changelog when kept, else from a snapshot of the known tenants. */
  async #rebuild(): Promise<void> {
    this.#answering = false;
    const fresh = new GrantIndex(this.#program);
    let replayed: Revision | undefined;
    try {
      let cursor = 0;
      for (;;) {
        const page = await this.#store.changesAfter(cursor, PAGE);
        if (this.#closed || this.#need === "rebuild") return; // superseded: the loop in #sync runs another
        if (page.length === 0) break;
        for (const change of page) {
          this.#tenantNames.add(change.tuple.tenant);
          fresh.apply(change);
        }
        cursor = page[page.length - 1]!.revision;
      }
      replayed = cursor;
    } catch (error) {
      if (!isBeyondRetention(error)) throw error;
    }
    if (replayed !== undefined) {
      this.#install(fresh, replayed, 0, true, new Set());
      return;
    }
    const revision = await this.#store.currentRevision();
    const tenants = new Set([...this.#named, ...this.#tenantNames]);
    const snapshot = await this.#store.snapshot(revision);
    try {
      for (const tenant of tenants) {
        const tuples = await snapshot.read({ tenant });
        if (this.#closed || this.#need === "rebuild") return;
        for (const t of tuples) if (t.subjectTenant !== t.tenant) fresh.put(t, 0);
      }
    } finally {
      snapshot.release();
    }
    if (tenants.size === 0) {
      this.#note = "the changelog does not reach back to revision 0 and no tenants were named to read";
    }
    this.#install(fresh, revision, revision, false, tenants);
  }

  #install(index: GrantIndex, seen: Revision, from: Revision, complete: boolean, covered: Set<string>): void {
    this.#index = index;
    this.#seen = seen;
    this.#from = from;
    this.#complete = complete;
    this.#covered = covered;
    this.#rebuilds++;
  }

  /** The grants of these identities in identity order (tenant, object, relation, subject tenant, subject). */
  #sorted(identities: string[]): TupleKey[] {
    identities.sort();
    const grants = this.#index.grants;
    return identities.map((identity) => publicForm(grants.get(identity)!));
  }

  #instant(now: unknown): number {
    if (now === undefined) return this.#clock();
    if (typeof now !== "number" || Number.isNaN(now)) {
      throw new NexusError("invalid_argument", `now must be a number (epoch ms), got ${describe(now)}`);
    }
    return now;
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

/** Whether the pair holds a live grant naming `user` on a class the question may read. */
function names(pair: PairGrants, user: string, reads: ReadonlySet<string>, now: number): boolean {
  const byClass = pair.bySubject.get(user);
  if (byClass === undefined) return false;
  for (const [cls, bucket] of byClass) if (reads.has(cls) && anyLive(bucket, now)) return true;
  return false;
}

/** A denial holds until a change: expiry only ever removes grants. */
function denial(check: ResolvedCheck): Resolution {
  return { allowed: false, revision: check.revision, validUntil: DENIED_FOREVER };
}

function tenantField(value: unknown, field: string): string {
  if (!isTenantName(value)) {
    throw new NexusError(
      "invalid_argument",
      `${field} must be a non-empty string without NUL, got ${describe(value)}`,
      {
        [field]: value,
      },
    );
  }
  return value;
}

function isBeyondRetention(error: unknown): boolean {
  return error instanceof NexusError && error.details?.reason === "beyond_retention";
}

/** Stored tuples are immutable and shared, so each one's public form is made once (frozen: callers share it). */
const publicForms = new WeakMap<RelationTuple, TupleKey>();

function publicForm(t: RelationTuple): TupleKey {
  let key = publicForms.get(t);
  if (key === undefined) {
    key = Object.freeze(toTupleKey(t));
    publicForms.set(t, key);
  }
  return key;
}
