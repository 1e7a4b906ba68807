/**
 * The cross-tenant grant table: every cross-tenant grant (a tuple whose `subjectTenant` differs from its `tenant`)
 * that the model allows, indexed per (tenant, subject tenant) pair by object and by subject, plus the hops (grants
 * evaluation follows into their subject's tenant) per tenant and tuple class, each with the revision of its last
 * change. Synchronous and in memory; CrossTenantIndex (grant-index.ts) fills it from the changelog and keeps it
 * current.
 *
 * `reach` is the walk a denial rests on. Take a question in tenant T for a subject of tenant S ≠ T (the reasoning is
 * read off the reference evaluator, src/reference/check.ts):
 * - evaluation starts in T, and moves to another tenant only by following a tuple whose subject lives there: a
 *   userset subject (`group:eng#member`) or a plain object read as a tuple-to-userset parent. A same-tenant tuple
 *   keeps it in T, so only cross-tenant tuples move it: call them hops (tenant X → the tuple's subject tenant);
 * - in a tenant X ≠ S a tuple matches the subject (exactly or by its type's wildcard) only when its subject tenant
 *   is S, i.e. it is an (X, S) grant naming the subject or its wildcard; the userset-subject rule ("`group:g#member`
 *   is in `group:g#member`") holds only in S itself;
 * - every tuple the evaluation reads, in any tenant, belongs to a tuple class the question's (type, relation) may
 *   read (src/changes/influence.ts: the closure ignores tenants).
 * So TRUE needs a chain of live hops, of classes the question may read, from T to some tenant X, and then either a
 * hop into S or a live (X, S) grant naming the subject or its wildcard. `reach` walks those hops (a tenant graph,
 * tiny in practice). A grant with a condition counts as live (it may hold); expiry needs no write: a grant counts
 * while `expiresAt` > the question's instant, as the reader's rule.
 *
 * Revisions: a question pinned to revision r is answered only when nothing the walk reads changed after r: every
 * pair and every tenant whose hops it reads records the revision of its last change, and each must be ≤ r. A pair
 * or tenant left without grants hands its last-change revision to its tenant (or to the table), so a question
 * about it stays exact too.
 */

import { analyze, type ProgramAnalysis } from "../../model/analysis.js";
import type { Program } from "../../model/program.js";
import { isValidTuple } from "../../model/tuple-rules.js";
import {
  identityKey,
  type RelationTuple,
  type Subject,
  type TupleKey,
  toTupleKey,
} from "../../tuples/tuple.js";
import type { Revision, StoredChange } from "../../tuples/types.js";

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

/**
 * A question the walk answers: may a chain of live grants take it from `tenant` to the subject in `subjectTenant`?
 * (A resolved check is one.)
 */
export interface ReachQuestion {
  readonly tenant: string;
  readonly subjectTenant: string;
  readonly subject: Subject;
  /** The subject's string form: `user:bob`, `group:eng#member`. */
  readonly user: string;
  readonly revision: Revision;
  /** The question's instant (epoch ms), for expiry. */
  readonly now: number;
}

/**
 * What the walk found: "none" (no chain of live grants exists: the answer is FALSE), "may-grant" (one may), or
 * "unknown" (a tenant the walk reached is not covered, or changed after the question's revision).
 */
export type Reach = "none" | "may-grant" | "unknown";

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

/** Grants by pair, object and subject, hops by tenant and class, last-change revisions. */
export class GrantTable {
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

  /**
   * Walks the hops from `q.tenant` over the tuple classes in `reads` (see the header). `covered`: the tenants the
   * table holds every grant of (undefined: all).
   */
  reach(q: ReachQuestion, reads: ReadonlySet<string>, covered: ReadonlySet<string> | undefined): Reach {
    const r = q.revision;
    const now = q.now;
    const target = q.subjectTenant;
    const subject = q.subject;
    const wildcard = subject.kind === "userset" ? undefined : `${subject.type}:*`;
    let tenant = q.tenant;
    let visited: Set<string> | undefined;
    let queue: string[] | undefined;
    for (;;) {
      if (covered !== undefined && !covered.has(tenant)) return "unknown";
      const grants = this.tenants.get(tenant);
      if (grants === undefined) {
        if (this.retiredTenantChange > r) return "unknown";
      } else {
        const pair = grants.pairs.get(target);
        if (grants.lastHopChange > r || (pair?.lastChange ?? grants.retiredPairChange) > r) return "unknown";
        if (
          pair !== undefined &&
          (names(pair, q.user, reads, now) || (wildcard !== undefined && names(pair, wildcard, reads, now)))
        ) {
          return "may-grant";
        }
        for (const [cls, bucket] of grants.hops) {
          if (!reads.has(cls)) continue;
          for (const hop of bucket.values()) {
            if (!live(hop, now)) continue;
            const next = hop.subjectTenant;
            if (next === target) return "may-grant";
            if (visited === undefined || queue === undefined) {
              visited = new Set([q.tenant]);
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
      if (next === undefined) return "none";
      tenant = next;
    }
  }

  /** Identities of the live grants naming any of `users` in the (tenant, subjectTenant) pairs of `tenants`. */
  namingIdentities(
    tenants: Iterable<string>,
    subjectTenant: string,
    users: readonly string[],
    now: number,
  ): string[] {
    const out: string[] = [];
    for (const t of tenants) {
      const pair = this.tenants.get(t)?.pairs.get(subjectTenant);
      if (pair === undefined) continue;
      for (const u of users) {
        for (const bucket of pair.bySubject.get(u)?.values() ?? []) {
          for (const [identity, grant] of bucket) if (live(grant, now)) out.push(identity);
        }
      }
    }
    return out;
  }

  /** Identities of the live grants on `object` of `tenant`, to one subject tenant or all, on one relation or all. */
  onIdentities(
    tenant: string,
    object: string,
    subjectTenant: string | undefined,
    relation: string | undefined,
    now: number,
  ): string[] {
    const pairs = this.tenants.get(tenant)?.pairs;
    const out: string[] = [];
    if (pairs === undefined) return out;
    const chosen = subjectTenant !== undefined ? [pairs.get(subjectTenant)] : [...pairs.values()];
    for (const pair of chosen) {
      for (const [identity, grant] of pair?.byObject.get(object) ?? []) {
        if (live(grant, now) && (relation === undefined || grant.relation === relation)) out.push(identity);
      }
    }
    return out;
  }

  /** The grants of these identities in identity order (tenant, object, relation, subject tenant, subject). */
  sorted(identities: string[]): TupleKey[] {
    identities.sort();
    return identities.map((identity) => publicForm(this.grants.get(identity)!));
  }

  /** Whether evaluation follows this grant into its subject's tenant. */
  #isHop(t: RelationTuple): boolean {
    return (
      t.subject.kind === "userset" ||
      (t.subject.kind === "object" && this.#analysis.isTupleset(t.objectType, t.relation))
    );
  }
}

/** Whether the pair holds a live grant naming `user` on a class the question may read. */
function names(pair: PairGrants, user: string, reads: ReadonlySet<string>, now: number): boolean {
  const byClass = pair.bySubject.get(user);
  if (byClass === undefined) return false;
  for (const [cls, bucket] of byClass) if (reads.has(cls) && anyLive(bucket, now)) return true;
  return false;
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
