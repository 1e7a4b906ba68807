/**
 * The in-memory store's multi-version tuple index: every tuple version carries the revision that created it and the
 * one that deleted it (Infinity while live), so a read at revision r sees the versions with created ≤ r < deleted,
 * whatever was written since. Indexed by object relation, by subject, by (type, relation) and by tenant; live
 * versions with an expiry sit in a min-heap on it, so a write can remove the expired ones cheaply. Deleted versions
 * stay until the store's horizon passes their deletion (`collect`): no reader can ask for them any more.
 */
import { identityKey, type RelationTuple } from "./tuple.js";
import type { ObjectRelationKey, ReadFilter, Revision, SubjectKey, TypeRelationKey } from "./types.js";

interface Version {
  readonly tuple: RelationTuple;
  readonly created: Revision;
  deleted: Revision;
  collected: boolean;
}

const SEP = "\u0000";

function visible(v: Version, revision: Revision): boolean {
  return v.created <= revision && revision < v.deleted;
}

export class VersionIndex {
  readonly #live = new Map<string, Version>();
  readonly #byObject = new Map<string, Version[]>();
  readonly #bySubject = new Map<string, Version[]>();
  readonly #byTypeRelation = new Map<string, Version[]>();
  readonly #byTenant = new Map<string, Version[]>();
  /** Live versions with an expiry, as a binary min-heap on expiresAt. */
  readonly #expiring: Version[] = [];
  /** Deleted, not yet collected versions, in deletion order. */
  #dead: Version[] = [];
  #deadHead = 0;

  /** Live tuples (including expired ones not yet removed). */
  get size(): number {
    return this.#live.size;
  }

  /** Tuple versions held, live and deleted-but-not-collected. */
  get versionCount(): number {
    return this.#live.size + (this.#dead.length - this.#deadHead);
  }

  /** The live tuple with this identity key (identityKey). */
  live(key: string): RelationTuple | undefined {
    return this.#live.get(key)?.tuple;
  }

  /** Every live tuple. */
  liveTuples(): RelationTuple[] {
    return [...this.#live.values()].map((v) => v.tuple);
  }

  /** Adds `tuple` as live from `revision` on. */
  insert(tuple: RelationTuple, revision: Revision): void {
    const version: Version = {
      tuple,
      created: revision,
      deleted: Number.POSITIVE_INFINITY,
      collected: false,
    };
    this.#live.set(identityKey(tuple), version);
    push(this.#byObject, tuple.tenant + SEP + tuple.object + SEP + tuple.relation, version);
    push(this.#bySubject, tuple.subjectTenant + SEP + tuple.user, version);
    push(this.#byTypeRelation, tuple.tenant + SEP + tuple.objectType + SEP + tuple.relation, version);
    push(this.#byTenant, tuple.tenant, version);
    if (tuple.expiresAt !== undefined) heapPush(this.#expiring, version);
  }

  /** Ends the live version with this identity key at `revision`; returns its tuple (undefined: none is live). */
  delete(key: string, revision: Revision): RelationTuple | undefined {
    const version = this.#live.get(key);
    if (version === undefined) return undefined;
    this.#end(version, revision);
    return version.tuple;
  }

  /** Ends, at `revision`, every live version whose expiry is at or before `now`; returns their tuples in order. */
  expire(now: number, revision: Revision): RelationTuple[] {
    const heap = this.#expiring;
    const out: RelationTuple[] = [];
    while (heap.length > 0 && heap[0]!.tuple.expiresAt! <= now) {
      const version = heapPop(heap);
      if (version.deleted === Number.POSITIVE_INFINITY) {
        this.#end(version, revision);
        out.push(version.tuple);
      }
    }
    return out;
  }

  /** Whether enough deleted versions wait for collect() to be worth a pass over the indexes they are in. */
  get collectionDue(): boolean {
    const pending = this.#dead.length - this.#deadHead;
    return pending >= 256 || pending * 8 >= this.#live.size;
  }

  /** Drops the versions deleted at or before `horizon` (no reader can ask for a revision before it). */
  collect(horizon: Revision): void {
    const touched = {
      object: new Set<string>(),
      subject: new Set<string>(),
      type: new Set<string>(),
      tenant: new Set<string>(),
    };
    while (this.#deadHead < this.#dead.length && this.#dead[this.#deadHead]!.deleted <= horizon) {
      const version = this.#dead[this.#deadHead++]!;
      version.collected = true;
      const t = version.tuple;
      touched.object.add(t.tenant + SEP + t.object + SEP + t.relation);
      touched.subject.add(t.subjectTenant + SEP + t.user);
      touched.type.add(t.tenant + SEP + t.objectType + SEP + t.relation);
      touched.tenant.add(t.tenant);
    }
    sweep(this.#byObject, touched.object);
    sweep(this.#bySubject, touched.subject);
    sweep(this.#byTypeRelation, touched.type);
    sweep(this.#byTenant, touched.tenant);
    if (this.#deadHead > 1024 && this.#deadHead * 2 > this.#dead.length) {
      this.#dead = this.#dead.slice(this.#deadHead);
      this.#deadHead = 0;
    }
  }

  clear(): void {
    this.#live.clear();
    this.#byObject.clear();
    this.#bySubject.clear();
    this.#byTypeRelation.clear();
    this.#byTenant.clear();
    this.#expiring.length = 0;
    this.#dead = [];
    this.#deadHead = 0;
  }

  // --- reads at a revision ---

  readByObject(revision: Revision, keys: readonly ObjectRelationKey[]): RelationTuple[][] {
    return keys.map((k) =>
      pickVisible(this.#byObject.get(k.tenant + SEP + k.object + SEP + k.relation), revision),
    );
  }

  readBySubject(revision: Revision, keys: readonly SubjectKey[]): RelationTuple[][] {
    return keys.map((k) => {
      const all = pickVisible(this.#bySubject.get(k.subjectTenant + SEP + k.user), revision);
      if (k.objectType === undefined && k.relation === undefined) return all;
      return all.filter(
        (t) =>
          (k.objectType === undefined || t.objectType === k.objectType) &&
          (k.relation === undefined || t.relation === k.relation),
      );
    });
  }

  readByTypeRelation(revision: Revision, keys: readonly TypeRelationKey[]): RelationTuple[][] {
    return keys.map((k) =>
      pickVisible(this.#byTypeRelation.get(k.tenant + SEP + k.objectType + SEP + k.relation), revision),
    );
  }

  read(revision: Revision, filter: ReadFilter): RelationTuple[] {
    let candidates: Version[] | undefined;
    if (filter.object !== undefined && filter.relation !== undefined) {
      candidates = this.#byObject.get(filter.tenant + SEP + filter.object + SEP + filter.relation);
    } else if (filter.objectType !== undefined && filter.relation !== undefined) {
      candidates = this.#byTypeRelation.get(filter.tenant + SEP + filter.objectType + SEP + filter.relation);
    } else {
      candidates = this.#byTenant.get(filter.tenant);
    }
    return pickVisible(candidates, revision).filter(
      (t) =>
        (filter.object === undefined || t.object === filter.object) &&
        (filter.objectType === undefined || t.objectType === filter.objectType) &&
        (filter.relation === undefined || t.relation === filter.relation) &&
        (filter.user === undefined || t.user === filter.user),
    );
  }

  #end(version: Version, revision: Revision): void {
    version.deleted = revision;
    this.#live.delete(identityKey(version.tuple));
    this.#dead.push(version);
  }
}

function pickVisible(versions: readonly Version[] | undefined, revision: Revision): RelationTuple[] {
  const out: RelationTuple[] = [];
  if (versions === undefined) return out;
  for (const v of versions) if (visible(v, revision)) out.push(v.tuple);
  return out;
}

function push(index: Map<string, Version[]>, key: string, version: Version): void {
  const list = index.get(key);
  if (list === undefined) index.set(key, [version]);
  else list.push(version);
}

function sweep(index: Map<string, Version[]>, keys: Set<string>): void {
  for (const key of keys) {
    const list = index.get(key);
    if (list === undefined) continue;
    const kept = list.filter((v) => !v.collected);
    if (kept.length === 0) index.delete(key);
    else index.set(key, kept);
  }
}

function heapPush(heap: Version[], v: Version): void {
  heap.push(v);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]!.tuple.expiresAt! <= v.tuple.expiresAt!) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = v;
}

function heapPop(heap: Version[]): Version {
  const top = heap[0]!;
  const last = heap.pop()!;
  if (heap.length > 0) {
    let i = 0;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      let smallestValue = last.tuple.expiresAt!;
      if (l < n && heap[l]!.tuple.expiresAt! < smallestValue) {
        smallest = l;
        smallestValue = heap[l]!.tuple.expiresAt!;
      }
      if (r < n && heap[r]!.tuple.expiresAt! < smallestValue) smallest = r;
      if (smallest === i) break;
      heap[i] = heap[smallest]!;
      i = smallest;
    }
    heap[i] = last;
  }
  return top;
}
