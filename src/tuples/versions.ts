/**
 * The in-memory store's multi-version tuple index. Every tuple version lives in three indexes, all nested maps keyed
 * by the strings the tuple already holds (no per-tuple key strings are built or kept):
 * - by object: tenant → relation → object type → object → the versions on that object's relation (a Slot). This
 *   is also the identity index (a tuple's identity is its slot plus (subjectTenant, user)), and, walked whole, the
 *   index by type and relation (every tuple of a tenant, of a type, of a type's relation);
 * - by subject: subjectTenant → user → versions.
 * Live versions with an expiry sit in a min-heap on it, so a write can remove the expired ones cheaply. Deleted
 * versions stay until the store's horizon passes their deletion (`collect`): no reader can ask for them any more.
 *
 * Memory is what this file is about: a live tuple costs itself (the stored tuple is its own version, with two
 * revision fields) and one entry in each index, and most slots hold a single version with no list around it.
 *
 * A write is staged before it is committed (stage → commit, or rollback): each written tuple goes into the indexes
 * at once as a version created at the write's revision, one past the current one, which no reader can ask for, so
 * it stays invisible until the store moves its revision; the one map lookup that finds a tuple's slot both checks
 * the identity and inserts it, and a tuple named twice in a batch meets its own staged version. A rollback takes
 * the staged versions out again, newest first (each is then the last one of every list it joined).
 */

import { ShardedMap } from "./sharded-map.js";
import { type RelationTuple, StoredTuple, type TupleIdentity, UNCLAIMED } from "./tuple.js";
import type { ObjectRelationKey, ReadFilter, Revision, SubjectKey, TypeRelationKey } from "./types.js";

/**
 * One version of a tuple: the stored tuple itself, visible at revisions in [revisionCreated, revisionDeleted);
 * revisionDeleted is LIVE while it is live (src/tuples/tuple.ts keeps both in private fields).
 */
type Version = StoredTuple;

/**
 * `tuple` as a new version created at `created`: the tuple object itself when it is a StoredTuple no store holds
 * (a write's normalized tuples, a file's replayed ones, whose objectType is their object's type by construction),
 * else a copy (a plain RelationTuple, or a tuple some store holds already: one object is never two versions, whose
 * revisions would then be one pair).
 *
 * The revisions are always small integers (smallInt): once one field of a map has held a non-integer number (a
 * revision decoded as a double), V8 boxes that field in a 16-byte heap number in every object of the map. A store
 * filled after a file store's replay held two such boxes per tuple.
 */
function newVersion(tuple: RelationTuple, created: Revision): Version {
  const version =
    tuple instanceof StoredTuple && tuple.revisionCreated === UNCLAIMED
      ? tuple
      : new StoredTuple(
          tuple.tenant,
          tuple.object,
          objectTypeOf(tuple),
          tuple.relation,
          tuple.user,
          tuple.subject,
          tuple.subjectTenant,
          tuple.condition,
          tuple.expiresAt,
        );
  version.revisionCreated = smallInt(created);
  return version;
}

/**
 * The type lookups by object find `tuple`'s slots under: the type in its object (a StoredTuple's objectType is that
 * by construction; a plain tuple given to the store may carry none, or another).
 */
function objectTypeOf(tuple: RelationTuple): string {
  return tuple instanceof StoredTuple
    ? tuple.objectType
    : tuple.object.slice(0, Math.max(0, tuple.object.indexOf(":")));
}

/** `n` as V8 keeps a small integer (unboxed) when it is a 32-bit integer; any other number as it is. */
export function smallInt(n: number): number {
  const i = n | 0;
  return i === n ? i : n;
}

/**
 * "Not deleted": 0 is never a deletion revision (revision 0 is the empty store), and a small integer keeps the
 * field a small integer in V8 (Infinity would box a heap number in every Version).
 */
const LIVE = 0;

/**
 * Where commit records what a write changed (the store's changelog). An object, not a callback made per write: the
 * commit loop optimized in a load's first write inlined that write's closure, and the second write's new closure
 * deoptimized it ("wrong call target") in the middle of its 10,000 tuples.
 */
export interface CommitLog {
  push(revision: Revision, op: "write" | "delete", tuple: RelationTuple, expired?: boolean): void;
}

/** stage(): the identity was staged already by the same write. */
export const IN_BATCH: unique symbol = Symbol("in batch");

/**
 * A write being staged at `revision` (one past the store's current revision): the versions it added, in order, and
 * by the index of a version in `added`, the live one it ends (an expired tuple written again; its `deleted` is set
 * to `revision` already, which no reader at an earlier revision notices). Only the few that end one are in
 * `replaced`: a list with an entry per added version was an undefined pushed per tuple of every write.
 */
export class Staging {
  readonly revision: Revision;
  readonly added: Version[] = objectList<Version>();
  readonly replaced = new Map<number, Version>();
  constructor(revision: Revision) {
    this.revision = smallInt(revision);
  }
}

/**
 * An empty list whose elements are already of V8's kind for objects. A fresh `[]` holds small integers until its
 * first object is pushed: code optimized on the last write's list (objects) met each new write's list in the other
 * kind and was deoptimized at its first push ("wrong map", then "not a Smi"), write after write.
 */
export function objectList<T extends object>(): T[] {
  const list = [{}] as T[];
  list.pop();
  return list;
}

const visible = (v: Version, revision: Revision): boolean =>
  v.revisionCreated <= revision && (v.revisionDeleted === LIVE || revision < v.revisionDeleted);

/**
 * The versions on one (tenant, object, relation): one Version alone (the common case), or a Bucket once there are
 * more. A Bucket past BUCKET_MAP versions also keeps its live versions by subject, so a write into a large set
 * (a group of 10,000 members) finds its identity without a scan.
 */
type Slot = Version | Bucket;

const BUCKET_MAP = 16;

class Bucket {
  versions: Version[];
  /** Live versions by subjectKey, once the bucket is large. */
  live: Map<string, Version> | undefined;
  constructor(versions: Version[]) {
    this.versions = versions;
  }
}

/** The subject's key within a slot: the user string, prefixed by its tenant only for cross-tenant subjects. */
const subjectKey = (tenant: string, subjectTenant: string, user: string): string =>
  subjectTenant === tenant ? user : `${subjectTenant}\u0000${user}`;

const sameSubject = (t: RelationTuple, subjectTenant: string, user: string): boolean =>
  t.user === user && t.subjectTenant === subjectTenant;

/** What the indexes' string-keyed levels offer, a Map or a ShardedMap. */
interface Keyed<V> {
  get(key: string): V | undefined;
  set(key: string, value: V): unknown;
  delete(key: string): boolean;
  readonly size: number;
}

/** map.get(key), a new list set there first when missing. */
function childList<V>(map: Keyed<V[]>, key: string): V[] {
  let value = map.get(key);
  if (value === undefined) {
    value = [];
    map.set(key, value);
  }
  return value;
}

/**
 * The slots of one (tenant, relation): a map of objects per object type, so the slots of one type and relation
 * are one map to walk (a list of every version per (type, relation) kept beside them was ~10 B a tuple at a
 * million). A lookup by object alone finds its type's map by prefix: a relation is defined on a few types.
 */
class RelationSlots {
  readonly types: string[] = [];
  readonly maps: ShardedMap<Slot>[] = [];

  /** The map of `object`'s type (the type that, with a `:` after it, begins it), if there is one. */
  of(object: string): ShardedMap<Slot> | undefined {
    const types = this.types;
    for (let i = 0; i < types.length; i++) {
      const type = types[i]!;
      if (object.charCodeAt(type.length) === COLON && object.startsWith(type)) return this.maps[i];
    }
    return undefined;
  }

  /** The map of `objectType`, made when `create`. */
  ofType(objectType: string, create: boolean): ShardedMap<Slot> | undefined {
    const i = this.types.indexOf(objectType);
    if (i >= 0) return this.maps[i];
    if (!create) return undefined;
    const objects = new ShardedMap<Slot>();
    this.types.push(objectType);
    this.maps.push(objects);
    return objects;
  }

  /** Drops the maps left empty; whether none is left. */
  dropEmpty(): boolean {
    for (let i = this.maps.length - 1; i >= 0; i--) {
      if (this.maps[i]!.size === 0) {
        this.maps.splice(i, 1);
        this.types.splice(i, 1);
      }
    }
    return this.maps.length === 0;
  }
}

const COLON = 58;
/** Ended versions the expiry heap holds before it may be compacted (see #endedExpiring). */
const EXPIRING_COMPACT_AT = 1024;

export class VersionIndex {
  /** tenant → relation → object type → object → versions. */
  readonly #byObject = new Map<string, Map<string, RelationSlots>>();
  /** subjectTenant → user → versions. */
  readonly #bySubject = new Map<string, ShardedMap<Version[]>>();
  /**
   * Versions with an expiry, as a binary min-heap on expiresAt: every live one, and ended ones (deleted or
   * replaced before they expired) until they reach the top or the heap is compacted.
   */
  #expiring: Version[] = [];
  /**
   * Ended versions still in #expiring. A stored tuple is its own version, so an ended one left there keeps its
   * whole tuple alive until its expiry, which may be weeks away: a store granting and revoking long-lived access
   * would grow without bound. Once they are half the heap (and at least EXPIRING_COMPACT_AT), it is rebuilt
   * without them, which costs O(n log n) for every n/2 such ends.
   */
  #endedExpiring = 0;
  /** Deleted, not yet collected versions, in deletion order. */
  #dead: Version[] = [];
  #deadHead = 0;
  #liveCount = 0;

  /** Live tuples (including expired ones not yet removed). */
  get size(): number {
    return this.#liveCount;
  }

  /** Tuple versions held, live and deleted-but-not-collected. */
  get versionCount(): number {
    return this.#liveCount + (this.#dead.length - this.#deadHead);
  }

  /** The live tuple with this identity. */
  live(identity: TupleIdentity): RelationTuple | undefined {
    return this.#liveVersion(identity);
  }

  /** Every tuple visible at `revision` that is live (a checkpoint's state at the current revision). */
  liveTuples(revision: Revision): RelationTuple[] {
    const out: RelationTuple[] = [];
    const live = (v: Version): void => {
      if (v.revisionDeleted === LIVE && v.revisionCreated <= revision) out.push(v);
    };
    for (const relations of this.#byObject.values()) {
      for (const slots of relations.values()) {
        for (const objects of slots.maps)
          objects.forEach((slot) => {
            forEachVersion(slot, live);
          });
      }
    }
    return out;
  }

  /** Adds `tuple` as live from `revision` on (a restored store: no live version of its identity is held). */
  insert(tuple: RelationTuple, revision: Revision): void {
    const version = newVersion(tuple, revision);
    const objects = this.#objects(tuple.tenant, tuple.relation, objectTypeOf(tuple), true)!;
    this.#add(version, tuple, objects, objects.get(tuple.object));
    if (tuple.expiresAt !== undefined) heapPush(this.#expiring, version);
    this.#liveCount++;
  }

  /**
   * Stages `tuple` in `staging` unless a live version of its identity is held: then that version's tuple is
   * returned (IN_BATCH when `staging` added it), and nothing changes; the caller decides (a duplicate, or an
   * expired tuple it replaces with stageReplacing). One lookup of the tuple's slot does both.
   */
  stage(staging: Staging, tuple: RelationTuple): RelationTuple | undefined | typeof IN_BATCH {
    const objects = this.#objects(tuple.tenant, tuple.relation, objectTypeOf(tuple), true)!;
    const slot = objects.get(tuple.object);
    if (slot !== undefined) {
      const old = findLive(slot, tuple.tenant, tuple.subjectTenant, tuple.user);
      if (old !== undefined) return old.revisionCreated === staging.revision ? IN_BATCH : old;
    }
    const version = newVersion(tuple, staging.revision);
    this.#add(version, tuple, objects, slot);
    staging.added.push(version);
    return undefined;
  }

  /** Stages `tuple` in place of the live version of its identity (stage() returned its tuple), ending that one. */
  stageReplacing(staging: Staging, tuple: RelationTuple): void {
    const objects = this.#objects(tuple.tenant, tuple.relation, objectTypeOf(tuple), true)!;
    const slot = objects.get(tuple.object)!;
    const old = findLive(slot, tuple.tenant, tuple.subjectTenant, tuple.user)!;
    old.revisionDeleted = staging.revision;
    if (slot instanceof Bucket) slot.live?.delete(subjectKey(tuple.tenant, tuple.subjectTenant, tuple.user));
    const version = newVersion(tuple, staging.revision);
    this.#add(version, tuple, objects, slot);
    staging.replaced.set(staging.added.length, old);
    staging.added.push(version);
  }

  /**
   * Makes `staging`'s versions live (the store moves to its revision now): counts them, and keeps those that
   * expire and those they end. Records each staged tuple in `log`, in order, at the staging's revision: first the
   * expired tuple it replaces, if any, as an expiry, then its write.
   */
  commit(staging: Staging, log: CommitLog): void {
    const { added, replaced, revision } = staging;
    const replacing = replaced.size > 0;
    // Counted before the loop, not after it: the loop's code, optimized while it runs (a write's one call), had no
    // type feedback for a statement after it and was deoptimized there at the end of every write.
    this.#liveCount += added.length;
    for (let i = 0; i < added.length; i++) {
      const version = added[i]!;
      const old = replacing ? replaced.get(i) : undefined;
      if (old !== undefined) {
        this.#liveCount--;
        this.#dead.push(old);
        // Replaced because it expired: it is still in the expiry heap, ended.
        this.#endedInExpiring();
        // An expired tuple with the same identity is replaced: its delete is recorded as an expiry.
        log.push(revision, "delete", old, true);
      }
      if (version.expiresAt !== undefined) heapPush(this.#expiring, version);
      log.push(revision, "write", version);
    }
  }

  /** Takes `staging`'s versions out again, newest first, as if it never happened. */
  rollback(staging: Staging): void {
    const { added, replaced } = staging;
    for (let i = added.length - 1; i >= 0; i--) {
      const t = added[i]!;
      // No store holds it any more: a later write may take the same object again.
      t.revisionCreated = UNCLAIMED;
      const version = t;
      const relations = this.#byObject.get(t.tenant)!;
      const slots = relations.get(t.relation)!;
      const objects = slots.ofType(t.objectType, false)!;
      const slot = objects.get(t.object)!;
      const key = subjectKey(t.tenant, t.subjectTenant, t.user);
      if (slot === version) {
        objects.delete(t.object);
        if (objects.size === 0 && slots.dropEmpty()) {
          relations.delete(t.relation);
          if (relations.size === 0) this.#byObject.delete(t.tenant);
        }
      } else if (slot instanceof Bucket) {
        slot.versions.pop();
        if (slot.live?.get(key) === version) slot.live.delete(key);
        if (slot.versions.length === 1) objects.set(t.object, slot.versions[0]!);
      }
      const old = replaced.get(i);
      if (old !== undefined) {
        old.revisionDeleted = LIVE;
        const now = objects.get(t.object);
        if (now instanceof Bucket && now.live !== undefined) now.live.set(key, old);
      }
      const users = this.#bySubject.get(t.subjectTenant)!;
      const byUser = users.get(t.user)!;
      byUser.pop();
      if (byUser.length === 0) {
        users.delete(t.user);
        if (users.size === 0) this.#bySubject.delete(t.subjectTenant);
      }
    }
    added.length = 0;
    replaced.clear();
    this.#forget();
  }

  /**
   * Puts `version` (of `tuple`) into every index: `objects` is its (tenant, relation) map, `slot` its slot there
   * (undefined: none). Not a default parameter: a default is evaluated whenever the argument is undefined, so every
   * new object (stage found no slot) was looked up a second time, a second miss in a map of 100,000 strings per
   * tuple of a load (2.03 ShardedMap.get a tuple over the 100k peer load; now 1.03).
   */
  #add(version: Version, tuple: RelationTuple, objects: ShardedMap<Slot>, slot: Slot | undefined): void {
    if (slot === undefined) objects.set(tuple.object, version);
    else if (slot instanceof Bucket) addToBucket(slot, tuple.tenant, version);
    else objects.set(tuple.object, slotWith(slot, tuple.tenant, version));
    this.#subjectList(tuple.subjectTenant, tuple.user).push(version);
  }

  /** Ends the live version with this identity at `revision`; returns its tuple (undefined: none is live). */
  delete(identity: TupleIdentity, revision: Revision): RelationTuple | undefined {
    const version = this.#liveVersion(identity);
    if (version === undefined) return undefined;
    this.#end(version, revision);
    if (version.expiresAt !== undefined) this.#endedInExpiring();
    return version;
  }

  /** Ends, at `revision`, every live version whose expiry is at or before `now`; returns their tuples in order. */
  expire(now: number, revision: Revision): RelationTuple[] {
    const heap = this.#expiring;
    const out: RelationTuple[] = [];
    while (heap.length > 0 && heap[0]!.expiresAt! <= now) {
      const version = heapPop(heap);
      if (version.revisionDeleted === LIVE) {
        this.#end(version, revision);
        out.push(version);
      } else {
        this.#endedExpiring--;
      }
    }
    return out;
  }

  /** Whether enough deleted versions wait for collect() to be worth a pass over the indexes they are in. */
  get collectionDue(): boolean {
    const pending = this.#dead.length - this.#deadHead;
    return pending >= 256 || pending * 8 >= this.#liveCount;
  }

  /** Drops the versions deleted at or before `horizon` (no reader can ask for a revision before it). */
  collect(horizon: Revision): void {
    this.#forget();
    const gone = (v: Version): boolean => v.revisionDeleted !== LIVE && v.revisionDeleted <= horizon;
    // Each list a collected version is in is filtered once, however many of its versions go.
    const objectKeys = new Map<ShardedMap<Slot>, Set<string>>();
    const lists = new Map<Version[], () => void>();
    while (this.#deadHead < this.#dead.length && gone(this.#dead[this.#deadHead]!)) {
      const t = this.#dead[this.#deadHead++]!;
      const objects = this.#byObject.get(t.tenant)?.get(t.relation)?.ofType(t.objectType, false);
      if (objects !== undefined) {
        let keys = objectKeys.get(objects);
        if (keys === undefined) {
          keys = new Set();
          objectKeys.set(objects, keys);
        }
        keys.add(t.object);
      }
      const users = this.#bySubject.get(t.subjectTenant);
      const byUser = users?.get(t.user);
      if (byUser !== undefined && !lists.has(byUser)) {
        lists.set(byUser, () => prune(users!, t.user, byUser, gone));
      }
    }
    for (const [objects, keys] of objectKeys) {
      for (const object of keys) {
        const slot = objects.get(object);
        if (slot === undefined) continue;
        if (!(slot instanceof Bucket)) {
          if (gone(slot)) objects.delete(object);
          continue;
        }
        const kept = slot.versions.filter((v) => !gone(v));
        if (kept.length === slot.versions.length) continue;
        if (kept.length === 0) objects.delete(object);
        else if (kept.length === 1) objects.set(object, kept[0]!);
        else slot.versions = kept;
      }
    }
    for (const prunes of lists.values()) prunes();
    this.#dropEmpty();
    if (this.#deadHead > 1024 && this.#deadHead * 2 > this.#dead.length) {
      this.#dead = this.#dead.slice(this.#deadHead);
      this.#deadHead = 0;
    }
  }

  clear(): void {
    this.#forget();
    this.#byObject.clear();
    this.#bySubject.clear();
    this.#expiring = [];
    this.#endedExpiring = 0;
    this.#dead = [];
    this.#deadHead = 0;
    this.#liveCount = 0;
  }

  // --- reads at a revision ---

  readByObject(revision: Revision, keys: readonly ObjectRelationKey[]): RelationTuple[][] {
    return keys.map((k) => {
      const out: RelationTuple[] = [];
      const slot = this.#byObject.get(k.tenant)?.get(k.relation)?.of(k.object)?.get(k.object);
      if (slot !== undefined) addVisible(out, slot, revision);
      return out;
    });
  }

  readBySubject(revision: Revision, keys: readonly SubjectKey[]): RelationTuple[][] {
    return keys.map((k) => {
      const all = pickVisible(this.#bySubject.get(k.subjectTenant)?.get(k.user), revision);
      if (k.objectType === undefined && k.relation === undefined) return all;
      return all.filter(
        (t) =>
          (k.objectType === undefined || t.objectType === k.objectType) &&
          (k.relation === undefined || t.relation === k.relation),
      );
    });
  }

  readByTypeRelation(revision: Revision, keys: readonly TypeRelationKey[]): RelationTuple[][] {
    return keys.map((k) => {
      const out: RelationTuple[] = [];
      this.#byObject
        .get(k.tenant)
        ?.get(k.relation)
        ?.ofType(k.objectType, false)
        ?.forEach((slot) => {
          addVisible(out, slot, revision);
        });
      return out;
    });
  }

  read(revision: Revision, filter: ReadFilter): RelationTuple[] {
    const { tenant, object, objectType, relation, user } = filter;
    const out: RelationTuple[] = [];
    if (object !== undefined) {
      // One object: its slot on each relation (or on the one asked for), which matches object and relation.
      const relations = this.#byObject.get(tenant);
      if (relations === undefined) return out;
      const slots =
        relation !== undefined
          ? [relations.get(relation)?.of(object)?.get(object)]
          : [...relations.values()].map((objects) => objects.of(object)?.get(object));
      for (const slot of slots) if (slot !== undefined) addVisible(out, slot, revision);
      return out.filter(
        (t) =>
          (objectType === undefined || t.objectType === objectType) &&
          (user === undefined || t.user === user),
      );
    }
    // Every map of the tenant's relations and types (or of the ones asked for): each tuple is in exactly one, and
    // the maps picked already match objectType and relation.
    const relations = this.#byObject.get(tenant);
    if (relations === undefined) return out;
    const add = (v: Version): void => {
      if (visible(v, revision) && (user === undefined || v.user === user)) out.push(v);
    };
    for (const [name, slots] of relations) {
      if (relation !== undefined && name !== relation) continue;
      for (let i = 0; i < slots.types.length; i++) {
        if (objectType !== undefined && slots.types[i] !== objectType) continue;
        slots.maps[i]!.forEach((slot) => {
          forEachVersion(slot, add);
        });
      }
    }
    return out;
  }

  // The last map or list each index handed out: the tuples of a batch mostly share their tenant and relation,
  // their type, often their subject, so most lookups end here. collect() and clear() forget them.
  #lastTenant = "";
  #lastRelation = "";
  #lastType = "";
  #lastObjects: ShardedMap<Slot> | undefined;
  #lastSubjectTenant = "";
  #lastUser = "";
  #lastSubjectList: Version[] | undefined;

  #forget(): void {
    this.#lastObjects = undefined;
    this.#lastSubjectList = undefined;
  }

  /** The slots of (tenant, relation, objectType), made when `create`. */
  #objects(
    tenant: string,
    relation: string,
    objectType: string,
    create: boolean,
  ): ShardedMap<Slot> | undefined {
    if (
      this.#lastObjects !== undefined &&
      this.#lastRelation === relation &&
      this.#lastType === objectType &&
      this.#lastTenant === tenant
    ) {
      return this.#lastObjects;
    }
    let relations = this.#byObject.get(tenant);
    if (relations === undefined) {
      if (!create) return undefined;
      relations = new Map();
      this.#byObject.set(tenant, relations);
    }
    let slots = relations.get(relation);
    if (slots === undefined) {
      if (!create) return undefined;
      slots = new RelationSlots();
      relations.set(relation, slots);
    }
    const objects = slots.ofType(objectType, create);
    if (objects === undefined) return undefined;
    this.#lastTenant = tenant;
    this.#lastRelation = relation;
    this.#lastType = objectType;
    this.#lastObjects = objects;
    return objects;
  }

  /** The list of (subjectTenant, user), made when missing. */
  #subjectList(subjectTenant: string, user: string): Version[] {
    if (
      this.#lastSubjectList !== undefined &&
      this.#lastUser === user &&
      this.#lastSubjectTenant === subjectTenant
    ) {
      return this.#lastSubjectList;
    }
    let users = this.#bySubject.get(subjectTenant);
    if (users === undefined) {
      users = new ShardedMap();
      this.#bySubject.set(subjectTenant, users);
    }
    const list = childList(users, user);
    this.#lastSubjectTenant = subjectTenant;
    this.#lastUser = user;
    this.#lastSubjectList = list;
    return list;
  }

  #liveVersion(identity: TupleIdentity): Version | undefined {
    const slot = this.#byObject
      .get(identity.tenant)
      ?.get(identity.relation)
      ?.of(identity.object)
      ?.get(identity.object);
    if (slot === undefined) return undefined;
    return findLive(slot, identity.tenant, identity.subjectTenant, identity.user);
  }

  #end(version: Version, revision: Revision): void {
    version.revisionDeleted = smallInt(revision);
    this.#liveCount--;
    this.#dead.push(version);
    const t = version;
    const slot = this.#objects(t.tenant, t.relation, t.objectType, false)?.get(t.object);
    if (slot instanceof Bucket && slot.live !== undefined) {
      slot.live.delete(subjectKey(t.tenant, t.subjectTenant, t.user));
    }
  }

  /** Versions in the expiry heap: live ones with an expiry, and ended ones not yet dropped from it. */
  get expiringCount(): number {
    return this.#expiring.length;
  }

  /** Counts a version ended while in the expiry heap; rebuilds the heap without ended ones when they are half. */
  #endedInExpiring(): void {
    this.#endedExpiring++;
    const heap = this.#expiring;
    if (this.#endedExpiring < EXPIRING_COMPACT_AT || 2 * this.#endedExpiring < heap.length) return;
    // An array sorted on the key is a binary min-heap. Only ended versions go: this runs inside applyWrite, after
    // its staging was cleared, so no version ended here can be made live again by a rollback (one that could
    // would then never expire).
    this.#expiring = heap
      .filter((v) => v.revisionDeleted === LIVE)
      .sort((a, b) => a.expiresAt! - b.expiresAt!);
    this.#endedExpiring = 0;
  }

  /** Removes maps that collect() left empty. */
  #dropEmpty(): void {
    for (const [tenant, relations] of this.#byObject) {
      for (const [name, slots] of relations) if (slots.dropEmpty()) relations.delete(name);
      if (relations.size === 0) this.#byObject.delete(tenant);
    }
    for (const [tenant, users] of this.#bySubject) if (users.size === 0) this.#bySubject.delete(tenant);
  }
}

function findLive(slot: Slot, tenant: string, subjectTenant: string, user: string): Version | undefined {
  if (!(slot instanceof Bucket)) {
    return slot.revisionDeleted === LIVE && sameSubject(slot, subjectTenant, user) ? slot : undefined;
  }
  if (slot.live !== undefined) return slot.live.get(subjectKey(tenant, subjectTenant, user));
  for (const v of slot.versions) {
    if (v.revisionDeleted === LIVE && sameSubject(v, subjectTenant, user)) return v;
  }
  return undefined;
}

/** A slot holding `one` and then `version`. */
function slotWith(one: Version, tenant: string, version: Version): Bucket {
  const bucket = new Bucket([one]);
  addToBucket(bucket, tenant, version);
  return bucket;
}

function addToBucket(bucket: Bucket, tenant: string, version: Version): void {
  bucket.versions.push(version);
  if (bucket.live === undefined && bucket.versions.length > BUCKET_MAP) {
    bucket.live = new Map();
    for (const v of bucket.versions) {
      if (v.revisionDeleted === LIVE) bucket.live.set(subjectKey(tenant, v.subjectTenant, v.user), v);
    }
  } else if (bucket.live !== undefined) {
    const t = version;
    bucket.live.set(subjectKey(tenant, t.subjectTenant, t.user), version);
  }
}

function addVisible(out: RelationTuple[], slot: Slot, revision: Revision): void {
  if (!(slot instanceof Bucket)) {
    if (visible(slot, revision)) out.push(slot);
    return;
  }
  for (const v of slot.versions) if (visible(v, revision)) out.push(v);
}

/** Calls `fn` with each version of `slot`, in order. */
function forEachVersion(slot: Slot, fn: (v: Version) => void): void {
  if (!(slot instanceof Bucket)) fn(slot);
  else for (const v of slot.versions) fn(v);
}

function pickVisible(versions: readonly Version[] | undefined, revision: Revision): RelationTuple[] {
  const out: RelationTuple[] = [];
  if (versions === undefined) return out;
  for (const v of versions) if (visible(v, revision)) out.push(v);
  return out;
}

/** Drops the versions `gone` says are collected from `list` (index.get(key)), and the list once it is empty. */
function prune(index: Keyed<Version[]>, key: string, list: Version[], gone: (v: Version) => boolean): void {
  const kept = list.filter((v) => !gone(v));
  if (kept.length === 0) index.delete(key);
  else index.set(key, kept);
}

function heapPush(heap: Version[], v: Version): void {
  heap.push(v);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]!.expiresAt! <= v.expiresAt!) break;
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
      let smallestValue = last.expiresAt!;
      if (l < n && heap[l]!.expiresAt! < smallestValue) {
        smallest = l;
        smallestValue = heap[l]!.expiresAt!;
      }
      if (r < n && heap[r]!.expiresAt! < smallestValue) smallest = r;
      if (smallest === i) break;
      heap[i] = heap[smallest]!;
      i = smallest;
    }
    heap[i] = last;
  }
  return top;
}
