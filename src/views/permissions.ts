/**
 * The computed-permission change stream: as tuple changes alter who has `relation` on objects of `type`, yield
 * (subject, object, gained | lost, revision). Derived incrementally from the store's changelog and exact: at every
 * revision R the stream's accumulated set equals
 *
 *   P(R) = { (s, o) : s ∈ S(R), o an object of `type` in the tenant, check(s, relation, o) is true at R }
 *
 * where S(R) is the watched `user` alone when one is given (any subject form: `user:anne`, `user:*`,
 * `group:eng#member`), else every plain subject (`type:id`: no wildcard, no userset) that is the subject of at
 * least one tuple of the tenant at R (in the tenant's own subject tenant). Wildcards and usersets are therefore
 * never rows of their own: a `user:*` grant appears as a row for each plain subject of that type that has tuples,
 * and a `group:eng#member` grant as a row for each member (a subject whose last tuple is deleted leaves S and
 * loses every row).
 *
 * Rules of evaluation: no condition context (a pair whose check depends on a missing parameter, or fails with
 * "resolution_too_complex", is not in P); a tuple with an expiry counts until the store records its expiry as a
 * delete in the changelog (the evaluation runs at a fixed instant, so P is a function of the revision alone).
 *
 * Incremental: for the changes of one revision, only the pairs they can reach are re-checked, at that revision:
 * - the objects: those whose evaluation can reach a changed tuple list (src/pipeline/tiger/ `objectsAffectedBy`,
 *   the same backward walk the Tiger bitmaps are maintained by), and only when the change's class is one the
 *   watched relation reads (src/changes/influence.ts);
 * - the subjects: the change's own subject when the influence map proves the tuple subject-bound (a plain
 *   subject no tuple-to-userset follows on), else every subject in S;
 * - a subject entering S gets its full set (reverse expansion, then a check per candidate), one leaving loses all.
 *
 * Gapless from a token: a stream after revision T first computes P(T) from a snapshot at T, then applies each later
 * revision's changes in order, as the change feed delivers them from T on (src/changes/stream.ts); each revision
 * yields one batch of differences (sorted, no duplicates). Revisions the store no longer keeps (changelog or
 * snapshot) are "invalid_token".
 *
 * Owner: the consumer. Breaking out of the loop, `signal`, or the engine closing ends it.
 */

import type { ChangeFeed } from "../changes/feed.js";
import { influenceOf } from "../changes/influence.js";
import { followChanges } from "../changes/stream.js";
import type { Program } from "../model/program.js";
import { type CheckQuery, checkOutcome, TRUE } from "../reference/check.js";
import { Evaluation } from "../reference/evaluation.js";
import { candidateObjects } from "../reference/list-objects.js";
import { TupleReader } from "../reference/reader.js";
import { relationOfType, requestObject, subjectOf, tenantOf, typeOf } from "../request/requests.js";
import { decodeToken, encodeToken } from "../tuples/token.js";
import type { RelationTuple, Subject } from "../tuples/tuple.js";
import type { Revision, StoredChange, TupleSnapshot, TupleStore } from "../tuples/types.js";
import { anySignal } from "../util/any-signal.js";
import { describe, NexusError } from "../util/errors.js";

export interface PermissionWatchRequest {
  /** The object type whose permission is watched. */
  readonly type: string;
  /** The (computed) relation of `type` watched. */
  readonly relation: string;
  /** One subject to watch (default: every plain subject with tuples; see the module comment). */
  readonly user?: string;
  readonly tenant?: string;
  /** Yield the differences after this token's revision (default: from the current revision on). */
  readonly after?: string;
  /** Start with every pair holding at the start revision, as "gained" at that revision (default false). */
  readonly initial?: boolean;
  /** Ends the stream. */
  readonly signal?: AbortSignal;
}

export interface PermissionChange {
  readonly user: string;
  readonly object: string;
  readonly change: "gained" | "lost";
  readonly revision: Revision;
  /** The token of `revision` (resume with `after: token`). */
  readonly token: string;
}

/** The differences one revision made (possibly none). */
export interface PermissionRevision {
  readonly revision: Revision;
  readonly token: string;
  readonly changes: readonly PermissionChange[];
}

/** What a stream evaluates with: the engine's program and store, its depth limit, and its closing signal. */
export interface PermissionSource {
  readonly program: Program;
  readonly store: TupleStore;
  readonly maxDepth: number;
  /** Aborts every stream of this source (the engine closing). */
  readonly stop: AbortSignal;
  /**
   * The engine's change feed, which streams subscribe to from their start revision (default: each stream opens a
   * feed of its own over the store).
   */
  readonly feed?: ChangeFeed;
}

const FIELDS: ReadonlySet<string> = new Set([
  "type",
  "relation",
  "user",
  "tenant",
  "after",
  "initial",
  "signal",
]);
/** The evaluation instant: fixed, so expiry takes effect only through the changelog (see the module comment). */
const INSTANT = 0;

/** The stream, one change at a time. */
export async function* watchPermissions(
  source: PermissionSource,
  request: PermissionWatchRequest,
): AsyncGenerator<PermissionChange, void, undefined> {
  for await (const batch of watchPermissionRevisions(source, request)) yield* batch.changes;
}

/** The stream, one batch per revision (empty batches included: the consumer learns how far it has been applied). */
export async function* watchPermissionRevisions(
  source: PermissionSource,
  request: PermissionWatchRequest,
): AsyncGenerator<PermissionRevision, void, undefined> {
  const watch = await PermissionWatch.open(source, request);
  const stop = anySignal([source.stop, request.signal]);
  if (request.initial === true) yield watch.initialBatch();
  const changes = followChanges(source.store, {
    after: watch.revision,
    signal: stop,
    ...(source.feed !== undefined ? { feed: source.feed } : {}),
  });
  for await (const page of changes) {
    for (let start = 0; start < page.length; ) {
      let end = start;
      while (end < page.length && page[end]!.revision === page[start]!.revision) end++;
      const batch = await watch.apply(page.slice(start, end));
      if (stop.aborted) return;
      yield batch;
      start = end;
    }
  }
}

/** The state of one stream: the accumulated set at `revision`, and the subjects' tuple counts. */
class PermissionWatch {
  readonly #source: PermissionSource;
  readonly #tenant: string;
  readonly #type: string;
  readonly #relation: string;
  /** The watched subject, or undefined for every plain subject with tuples. */
  readonly #user: { subject: Subject; user: string } | undefined;
  /** The tuple classes the watched relation reads. */
  readonly #reads: ReadonlySet<string>;
  /** subject → objects it holds the relation on (subjects of S with no object are absent). */
  readonly #held = new Map<string, Set<string>>();
  /** plain subject → how many tuples of the tenant name it (only without a watched user). */
  readonly #counts = new Map<string, number>();
  #revision: Revision;

  private constructor(
    source: PermissionSource,
    tenant: string,
    type: string,
    relation: string,
    user: { subject: Subject; user: string } | undefined,
    after: Revision,
  ) {
    this.#source = source;
    this.#tenant = tenant;
    this.#type = type;
    this.#relation = relation;
    this.#user = user;
    this.#reads = influenceOf(source.program).readsOf(type, relation);
    this.#revision = after;
  }

  /** Validates the request and computes P at the start revision. */
  static async open(source: PermissionSource, request: PermissionWatchRequest): Promise<PermissionWatch> {
    if (source.stop.aborted) throw new NexusError("closed", "the engine is closed");
    requestObject(request, "a permission watch request", FIELDS);
    const { program, store } = source;
    const type = typeOf(program, request.type);
    relationOfType(program, type, request.relation);
    const tenant = tenantOf(request.tenant);
    const user = request.user === undefined ? undefined : subjectOf(program, request.user);
    if (request.initial !== undefined && typeof request.initial !== "boolean") {
      throw new NexusError("invalid_argument", `initial must be a boolean, got ${describe(request.initial)}`);
    }
    let after: Revision;
    if (request.after === undefined) {
      after = await store.currentRevision();
    } else {
      const token = decodeToken(request.after);
      if (token.storeId !== store.id || token.revision > (await store.currentRevision())) {
        throw new NexusError(
          "invalid_token",
          `permission watch token ${describe(request.after, 60)} was not issued by this store`,
        );
      }
      after = token.revision;
      // Fail now, not at the first page, when the changelog no longer reaches back that far.
      await store.changesAfter(after, 0);
    }
    const watch = new PermissionWatch(source, tenant, type, request.relation, user, after);
    await watch.#start();
    return watch;
  }

  get revision(): Revision {
    return this.#revision;
  }

  /** Every pair held at the start revision, as "gained". */
  initialBatch(): PermissionRevision {
    const at = { revision: this.#revision, token: encodeToken(this.#source.store.id, this.#revision) };
    const changes: PermissionChange[] = [];
    for (const [user, objects] of this.#held) {
      for (const object of objects) changes.push(this.#change(user, object, "gained", at));
    }
    return { ...at, changes: sortChanges(changes) };
  }

  async #start(): Promise<void> {
    await this.#atRevision(this.#revision, async (ev, snapshot) => {
      if (this.#user !== undefined) {
        const objects = await this.#fullSet(ev, snapshot, this.#user.subject, this.#user.user);
        if (objects.size > 0) this.#held.set(this.#user.user, objects);
        return;
      }
      for (const t of await snapshot.read({ tenant: this.#tenant })) {
        const s = this.#subjectOf(t);
        if (s !== undefined) this.#counts.set(s, (this.#counts.get(s) ?? 0) + 1);
      }
      for (const user of this.#counts.keys()) {
        const objects = await this.#fullSet(ev, snapshot, plainSubject(user), user);
        if (objects.size > 0) this.#held.set(user, objects);
      }
    });
  }

  /** Applies the changes of one revision; returns its differences. */
  async apply(changes: readonly StoredChange[]): Promise<PermissionRevision> {
    const revision = changes[0]!.revision;
    const at = { revision, token: encodeToken(this.#source.store.id, revision) };
    const out: PermissionChange[] = [];
    // Subjects entering and leaving S (only when every subject is watched).
    const entering = new Set<string>();
    const leaving = new Set<string>();
    if (this.#user === undefined) {
      const before = new Map<string, number>();
      for (const change of changes) {
        const s = this.#subjectOf(change.tuple);
        if (s === undefined) continue;
        const count = this.#counts.get(s) ?? 0;
        if (!before.has(s)) before.set(s, count);
        this.#counts.set(s, count + (change.op === "write" ? 1 : -1));
      }
      for (const [s, was] of before) {
        const now = this.#counts.get(s)!;
        if (now <= 0) this.#counts.delete(s);
        if (was <= 0 && now > 0) entering.add(s);
        else if (was > 0 && now <= 0) leaving.add(s);
      }
    }
    for (const user of leaving) {
      for (const object of this.#held.get(user) ?? []) out.push(this.#change(user, object, "lost", at));
      this.#held.delete(user);
    }
    const relevant = changes.filter((c) => this.#reads.has(`${c.tuple.objectType}#${c.tuple.relation}`));
    if (relevant.length > 0 || entering.size > 0) {
      await this.#atRevision(revision, async (ev, snapshot) => {
        for (const user of entering) {
          const objects = await this.#fullSet(ev, snapshot, plainSubject(user), user);
          if (objects.size > 0) this.#held.set(user, objects);
          for (const object of objects) out.push(this.#change(user, object, "gained", at));
        }
        if (relevant.length === 0) return;
        // On demand: tiger.ts brings roaring-wasm, which a browser bundle then fetches only when it is needed.
        const { objectsAffectedBy } = await import("../pipeline/tiger/index.js");
        const objects = await objectsAffectedBy(
          ev.reader,
          relevant.map((c) => c.tuple),
          { tenant: this.#tenant, objectType: this.#type, relation: this.#relation },
        );
        if (objects.length === 0) return;
        for (const [user, subject] of this.#affectedSubjects(relevant)) {
          if (entering.has(user) || leaving.has(user)) continue;
          let held = this.#held.get(user);
          for (const object of objects) {
            const holds = await this.#holds(ev, subject, user, object);
            if (holds === (held?.has(object) ?? false)) continue;
            if (holds) {
              if (held === undefined) {
                held = new Set();
                this.#held.set(user, held);
              }
              held.add(object);
            } else {
              held!.delete(object);
            }
            out.push(this.#change(user, object, holds ? "gained" : "lost", at));
          }
          if (held !== undefined && held.size === 0) this.#held.delete(user);
        }
      });
    }
    this.#revision = revision;
    return { ...at, changes: sortChanges(out) };
  }

  /** The subjects whose answers `changes` may alter, each with its parsed form. */
  #affectedSubjects(changes: readonly StoredChange[]): Map<string, Subject> {
    const influence = influenceOf(this.#source.program);
    const named = new Set<string>();
    let everyone = false;
    for (const { tuple: t } of changes) {
      if (t.subject.kind === "object" && influence.subjectBound(t.objectType, t.relation, t.subject.type)) {
        named.add(t.user);
      } else {
        everyone = true;
        break;
      }
    }
    const out = new Map<string, Subject>();
    if (this.#user !== undefined) {
      if (everyone || named.has(this.#user.user)) out.set(this.#user.user, this.#user.subject);
      return out;
    }
    const users = everyone ? this.#counts.keys() : [...named].filter((u) => this.#counts.has(u));
    for (const user of users) out.set(user, plainSubject(user));
    return out;
  }

  /** The tuple's subject when it counts toward S: plain, of this tenant's own subjects. */
  #subjectOf(t: RelationTuple): string | undefined {
    return t.tenant === this.#tenant && t.subjectTenant === this.#tenant && t.subject.kind === "object"
      ? t.user
      : undefined;
  }

  async #atRevision(
    revision: Revision,
    run: (ev: Evaluation, snapshot: TupleSnapshot) => Promise<void>,
  ): Promise<void> {
    const snapshot = await this.#source.store.snapshot(revision);
    try {
      const reader = new TupleReader(snapshot, this.#source.program, [], INSTANT);
      await run(new Evaluation(reader, { maxDepth: this.#source.maxDepth }), snapshot);
    } finally {
      snapshot.release();
    }
  }

  #query(subject: Subject, user: string, object: string): CheckQuery {
    return {
      tenant: this.#tenant,
      object,
      relation: this.#relation,
      subject,
      user,
      subjectTenant: this.#tenant,
    };
  }

  async #holds(ev: Evaluation, subject: Subject, user: string, object: string): Promise<boolean> {
    return (await checkOutcome(ev, this.#query(subject, user, object))) === TRUE;
  }

  /** Every object of the type the subject holds the relation on. */
  async #fullSet(
    ev: Evaluation,
    snapshot: TupleSnapshot,
    subject: Subject,
    user: string,
  ): Promise<Set<string>> {
    let candidates: Iterable<string>;
    try {
      candidates = await candidateObjects(ev, {
        tenant: this.#tenant,
        type: this.#type,
        relation: this.#relation,
        subject,
        user,
        subjectTenant: this.#tenant,
      });
    } catch {
      // The reverse expansion stopped at an undecidable condition: every object of the type with a tuple of its
      // own is a candidate (an object holds a relation only through some tuple on it).
      const tuples = await snapshot.read({ tenant: this.#tenant, objectType: this.#type });
      candidates = new Set(tuples.map((t) => t.object));
    }
    const out = new Set<string>();
    for (const object of candidates) if (await this.#holds(ev, subject, user, object)) out.add(object);
    return out;
  }

  #change(user: string, object: string, change: "gained" | "lost", at: Stamp): PermissionChange {
    return { user, object, change, revision: at.revision, token: at.token };
  }
}

interface Stamp {
  readonly revision: Revision;
  readonly token: string;
}

function plainSubject(user: string): Subject {
  const colon = user.indexOf(":");
  return { kind: "object", type: user.slice(0, colon), id: user.slice(colon + 1) };
}

function sortChanges(changes: PermissionChange[]): PermissionChange[] {
  return changes.sort((a, b) =>
    a.user < b.user ? -1 : a.user > b.user ? 1 : a.object < b.object ? -1 : a.object > b.object ? 1 : 0,
  );
}
