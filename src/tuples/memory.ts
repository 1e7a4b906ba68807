/**
 * The in-memory TupleStore: multi-version tuples, so snapshot reads are cheap and consistent.
 *
 * Every tuple version carries the revision that created it and the one that deleted it (Infinity while live); a
 * snapshot at revision r sees the versions with created ≤ r < deleted. Deleted versions stay until no reader can
 * need them: a version deleted at d is collected once d ≤ the horizon, the oldest of (a) any open snapshot and
 * (b) the revision current `snapshotRetentionMs` ago (which must cover the engines' quantization window).
 *
 * A write batch is validated completely before anything changes, then applied at one new revision, so a failed
 * batch leaves nothing behind. Tuples past their `expiresAt` are removed by the next write (recorded in the
 * changelog as deletes with `expired: true`); until then readers skip them by their own clock.
 *
 * The changelog keeps at most `changelogMaxEntries` changes, none older than `changelogMaxAgeMs`; asking for
 * changes after a revision it no longer covers is "invalid_token" (the gap can no longer be filled).
 *
 * Nothing here starts a timer: waiting watchers are plain promises resolved by writes and by close().
 */
import { describe, NexusError } from "../util/errors.js";
import { MemoryModelVersions } from "./models.js";
import {
  describeTuple,
  identityKey,
  type RelationTuple,
  sameCondition,
  type TupleIdentity,
} from "./tuple.js";
import type {
  ObjectRelationKey,
  ReadFilter,
  Revision,
  StoredChange,
  SubjectKey,
  TupleSnapshot,
  TupleStore,
  TypeRelationKey,
  WriteBatch,
  WriteResult,
} from "./types.js";
import { RevisionWaiters } from "./waiters.js";

export interface MemoryStoreOptions {
  /** Epoch milliseconds (default Date.now); commit times and expiry use it. */
  clock?: () => number;
  /** Old versions stay readable this long, for quantized snapshots (default 10 000 ms). */
  snapshotRetentionMs?: number;
  /** The changelog keeps at most this many changes (default 100 000)... */
  changelogMaxEntries?: number;
  /** ...and none older than this (default 1 hour; the latest revision's changes are always kept). */
  changelogMaxAgeMs?: number;
}

/**
 * A write batch validated against the store's current state, not yet applied (prepareWrite → applyWrite). The file
 * store persists it in between; a replay prepares the same tuples at the same time and gets the same result.
 * @internal
 */
export interface PreparedWrite {
  readonly revision: Revision;
  /** The commit time (the store's clock when the batch was prepared). */
  readonly time: number;
  /** Tuples the batch writes (skipped duplicates left out). */
  readonly writes: readonly RelationTuple[];
  /** Live tuples the batch deletes (skipped missing deletes left out). */
  readonly deletes: readonly RelationTuple[];
}

/**
 * Everything a store needs to go on from its latest revision: the live tuples, the retained changelog and commit
 * times. Older revisions are not in it: a store restored from it serves snapshots from `revision` on.
 * @internal
 */
export interface MemoryStoreState {
  readonly revision: Revision;
  readonly tuples: readonly RelationTuple[];
  readonly changes: readonly StoredChange[];
  readonly changelogFloor: Revision;
  readonly commits: readonly { readonly revision: Revision; readonly time: number }[];
}

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

export class MemoryTupleStore implements TupleStore, AsyncDisposable {
  readonly id: string;
  readonly models: MemoryModelVersions;
  readonly #clock: () => number;
  readonly #snapshotRetentionMs: number;
  readonly #changelogMaxEntries: number;
  readonly #changelogMaxAgeMs: number;

  #revision: Revision = 0;
  #closed = false;
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
  /** Versions older than this revision may be gone; snapshots below it are refused. */
  #horizon: Revision = 0;
  /** The revision a restored store started from (restoreState): revisionAt never answers below it. */
  #base: Revision = 0;
  readonly #leases = new Map<Revision, number>();

  #changes: StoredChange[] = [];
  #changesHead = 0;
  /** Changes with revision ≤ this are no longer retained. */
  #changelogFloor: Revision = 0;
  /** (revision, commit time), ascending; trimmed to what revisionAt can be asked. */
  #commits: { revision: Revision; time: number }[] = [];
  #commitsHead = 0;

  readonly #waiters = new RevisionWaiters();

  constructor(options: MemoryStoreOptions = {}) {
    const {
      clock = Date.now,
      snapshotRetentionMs = 10_000,
      changelogMaxEntries = 100_000,
      changelogMaxAgeMs = 3_600_000,
    } = options;
    for (const [name, value] of Object.entries({
      snapshotRetentionMs,
      changelogMaxEntries,
      changelogMaxAgeMs,
    })) {
      if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
        throw new NexusError("invalid_argument", `${name} must be a number ≥ 0, got ${describe(value)}`, {
          [name]: value,
        });
      }
    }
    this.#clock = clock;
    this.#snapshotRetentionMs = snapshotRetentionMs;
    this.#changelogMaxEntries = changelogMaxEntries;
    this.#changelogMaxAgeMs = changelogMaxAgeMs;
    this.id = randomId();
    this.models = new MemoryModelVersions(clock);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Live tuples (including expired ones not yet removed), for tests and metrics. */
  get size(): number {
    return this.#live.size;
  }

  /** Tuple versions held, live and deleted-but-not-collected, for tests and metrics. */
  get versionCount(): number {
    return this.#live.size + (this.#dead.length - this.#deadHead);
  }

  async currentRevision(): Promise<Revision> {
    this.#assertOpen();
    return this.#revision;
  }

  async revisionAt(timeMs: number): Promise<Revision> {
    this.#assertOpen();
    return Math.max(this.#revisionAt(timeMs), this.#base);
  }

  async snapshot(revision: Revision): Promise<TupleSnapshot> {
    this.#assertOpen();
    if (!Number.isSafeInteger(revision) || revision < 0 || revision > this.#revision) {
      throw new NexusError(
        "invalid_token",
        `revision ${describe(revision)} is not a revision of this store`,
        {
          revision,
          current: this.#revision,
        },
      );
    }
    if (revision < this.#horizon) {
      throw new NexusError(
        "invalid_token",
        `revision ${revision} is older than this store retains (oldest readable: ${this.#horizon})`,
        { revision, horizon: this.#horizon, reason: "beyond_retention" },
      );
    }
    this.#leases.set(revision, (this.#leases.get(revision) ?? 0) + 1);
    return new MemorySnapshot(this, revision);
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    this.#assertOpen();
    const prepared = this.prepareWrite(batch);
    if (prepared === undefined) return { revision: this.#revision, written: 0, deleted: 0 };
    return this.applyWrite(prepared);
  }

  /**
   * Validates `batch` against the current state at time `now` without changing anything: the writes and deletes
   * it would apply at the next revision, or undefined when it would change nothing.
   * @throws NexusError "invalid_write" as write() does.
   * @internal
   */
  prepareWrite(batch: WriteBatch, now: number = this.#clock()): PreparedWrite | undefined {
    this.#assertOpen();
    const seen = new Set<string>();
    const deletes: RelationTuple[] = [];
    const writes: RelationTuple[] = [];

    for (const d of batch.deletes) {
      const key = identityKey(d);
      if (seen.has(key)) throw duplicateInBatch(d);
      seen.add(key);
      const live = this.#live.get(key);
      if (live === undefined) {
        if (batch.onMissing === "ignore") continue;
        throw new NexusError("invalid_write", `cannot delete ${describeTuple(d)}: it does not exist`, {
          tuple: { ...d },
        });
      }
      deletes.push(live.tuple);
    }
    for (const w of batch.writes) {
      const key = identityKey(w);
      if (seen.has(key)) throw duplicateInBatch(w);
      seen.add(key);
      const live = this.#live.get(key);
      if (live !== undefined) {
        const expired = live.tuple.expiresAt !== undefined && live.tuple.expiresAt <= now;
        if (!expired) {
          if (batch.onDuplicate === "ignore" && sameTuple(live.tuple, w)) continue;
          throw new NexusError(
            "invalid_write",
            `cannot write ${describeTuple(w)}: it already exists${batch.onDuplicate === "ignore" ? " with another condition or expiry" : ""}`,
            { tuple: { tenant: w.tenant, object: w.object, relation: w.relation, user: w.user } },
          );
        }
      }
      writes.push(w);
    }
    if (deletes.length === 0 && writes.length === 0) return undefined;
    return { revision: this.#revision + 1, time: now, writes, deletes };
  }

  /**
   * Applies a batch prepared against the current state (nothing may have been written since prepareWrite).
   * @internal
   */
  applyWrite(prepared: PreparedWrite): WriteResult {
    this.#assertOpen();
    const { revision, time: now } = prepared;
    if (revision !== this.#revision + 1) {
      throw new NexusError(
        "internal",
        `a write prepared for revision ${revision} cannot apply at revision ${this.#revision + 1}`,
      );
    }
    // Everything was checked by prepareWrite: apply at the new revision.
    for (const tuple of prepared.deletes) this.#delete(this.#live.get(identityKey(tuple))!, revision, false);
    for (const tuple of prepared.writes) {
      const replaces = this.#live.get(identityKey(tuple));
      if (replaces !== undefined) this.#delete(replaces, revision, true);
      this.#insert(tuple, revision);
    }
    this.#purgeExpired(now, revision);
    this.#revision = revision;
    const lastTime =
      this.#commits.length > this.#commitsHead ? this.#commits[this.#commits.length - 1]!.time : 0;
    this.#commits.push({ revision, time: Math.max(now, lastTime) });
    this.#trim(now);
    this.#waiters.wakeAll();
    return { revision, written: prepared.writes.length, deleted: prepared.deletes.length };
  }

  /**
   * The state at the current revision, for a checkpoint. Shares the (immutable) tuples; copies the lists.
   * @internal
   */
  exportState(): MemoryStoreState {
    this.#assertOpen();
    return {
      revision: this.#revision,
      tuples: [...this.#live.values()].map((v) => v.tuple),
      changes: this.#changes.slice(this.#changesHead),
      changelogFloor: this.#changelogFloor,
      commits: this.#commits.slice(this.#commitsHead),
    };
  }

  /**
   * Makes a new, empty store continue from `state` (exportState of an earlier store): reads are served from
   * `state.revision` on, older snapshots are refused as beyond retention.
   * @internal
   */
  restoreState(state: MemoryStoreState): void {
    this.#assertOpen();
    if (this.#revision !== 0 || this.#live.size > 0) {
      throw new NexusError("internal", "restoreState needs a store nothing was written to");
    }
    for (const tuple of state.tuples) this.#insert(tuple, state.revision, false);
    this.#revision = state.revision;
    this.#horizon = state.revision;
    this.#base = state.revision;
    this.#changes = [...state.changes];
    this.#changelogFloor = state.changelogFloor;
    this.#commits = [...state.commits];
  }

  async changesAfter(after: Revision, limit: number): Promise<StoredChange[]> {
    this.#assertOpen();
    if (!Number.isSafeInteger(after) || after < 0 || after > this.#revision) {
      throw new NexusError("invalid_token", `revision ${describe(after)} is not a revision of this store`, {
        revision: after,
      });
    }
    if (after < this.#changelogFloor) {
      throw new NexusError(
        "invalid_token",
        `changes after revision ${after} are no longer retained (the changelog starts after revision ${this.#changelogFloor})`,
        { revision: after, floor: this.#changelogFloor, reason: "beyond_retention" },
      );
    }
    // Binary search the first change after `after`.
    let lo = this.#changesHead;
    let hi = this.#changes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#changes[mid]!.revision <= after) lo = mid + 1;
      else hi = mid;
    }
    // Never split a revision: extend the page to the end of its last revision.
    let end = Math.min(this.#changes.length, lo + Math.max(1, limit));
    while (end < this.#changes.length && this.#changes[end]!.revision === this.#changes[end - 1]!.revision)
      end++;
    return this.#changes.slice(lo, end);
  }

  waitForRevision(after: Revision, signal?: AbortSignal): Promise<void> {
    if (this.#closed || this.#revision > after) return Promise.resolve();
    return this.#waiters.wait(signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.wakeAll();
    this.#live.clear();
    this.#byObject.clear();
    this.#bySubject.clear();
    this.#byTypeRelation.clear();
    this.#byTenant.clear();
    this.#expiring.length = 0;
    this.#dead = [];
    this.#changes = [];
    this.#commits = [];
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- reads (called by MemorySnapshot) ---

  /** @internal */
  readByObject(revision: Revision, keys: readonly ObjectRelationKey[]): RelationTuple[][] {
    this.#assertOpen();
    return keys.map((k) =>
      pickVisible(this.#byObject.get(k.tenant + SEP + k.object + SEP + k.relation), revision),
    );
  }

  /** @internal */
  readBySubject(revision: Revision, keys: readonly SubjectKey[]): RelationTuple[][] {
    this.#assertOpen();
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

  /** @internal */
  readByTypeRelation(revision: Revision, keys: readonly TypeRelationKey[]): RelationTuple[][] {
    this.#assertOpen();
    return keys.map((k) =>
      pickVisible(this.#byTypeRelation.get(k.tenant + SEP + k.objectType + SEP + k.relation), revision),
    );
  }

  /** @internal */
  read(revision: Revision, filter: ReadFilter): RelationTuple[] {
    this.#assertOpen();
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

  /** @internal */
  release(revision: Revision): void {
    const count = this.#leases.get(revision) ?? 0;
    if (count <= 1) this.#leases.delete(revision);
    else this.#leases.set(revision, count - 1);
  }

  // --- internals ---

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "the tuple store is closed");
  }

  #insert(tuple: RelationTuple, revision: Revision, logged = true): void {
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
    if (logged) this.#changes.push({ revision, op: "write", tuple });
  }

  #delete(version: Version, revision: Revision, expired: boolean): void {
    version.deleted = revision;
    this.#live.delete(identityKey(version.tuple));
    this.#dead.push(version);
    this.#changes.push(
      expired
        ? { revision, op: "delete", tuple: version.tuple, expired: true }
        : { revision, op: "delete", tuple: version.tuple },
    );
  }

  #purgeExpired(now: number, revision: Revision): void {
    const heap = this.#expiring;
    while (heap.length > 0 && heap[0]!.tuple.expiresAt! <= now) {
      const version = heapPop(heap);
      if (version.deleted === Number.POSITIVE_INFINITY) this.#delete(version, revision, true);
    }
  }

  #revisionAt(timeMs: number): Revision {
    const commits = this.#commits;
    let lo = this.#commitsHead;
    let hi = commits.length;
    if (lo === hi) return this.#revision;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (commits[mid]!.time <= timeMs) lo = mid + 1;
      else hi = mid;
    }
    // lo - 1 is the last commit at or before timeMs; before the first retained commit, clamp to it (older
    // states may be collected already) unless the store's whole history is retained.
    if (lo === this.#commitsHead) return this.#commitsHead === 0 ? 0 : commits[this.#commitsHead]!.revision;
    return commits[lo - 1]!.revision;
  }

  /** Trims the changelog and commit times, and collects versions no reader can need. */
  #trim(now: number): void {
    // Changelog: at most maxEntries changes, none older than maxAge.
    const changes = this.#changes;
    const ageFloor = this.#revisionAt(now - this.#changelogMaxAgeMs);
    while (this.#changesHead < changes.length) {
      const oldest = changes[this.#changesHead]!;
      const tooMany = changes.length - this.#changesHead > this.#changelogMaxEntries;
      if (!tooMany && (oldest.revision > ageFloor || oldest.revision === this.#revision)) break;
      // Drop a whole revision at a time, so a retained revision is always complete.
      const rev = oldest.revision;
      while (this.#changesHead < changes.length && changes[this.#changesHead]!.revision === rev)
        this.#changesHead++;
      this.#changelogFloor = rev;
    }
    if (this.#changesHead > 1024 && this.#changesHead * 2 > changes.length) {
      this.#changes = changes.slice(this.#changesHead);
      this.#changesHead = 0;
    }

    // Commit times: keep those within the retention window plus the one just before it.
    const windowStart = now - Math.max(this.#snapshotRetentionMs, this.#changelogMaxAgeMs);
    const commits = this.#commits;
    while (commits.length - this.#commitsHead > 1 && commits[this.#commitsHead + 1]!.time <= windowStart) {
      this.#commitsHead++;
    }
    if (this.#commitsHead > 1024 && this.#commitsHead * 2 > commits.length) {
      this.#commits = commits.slice(this.#commitsHead);
      this.#commitsHead = 0;
    }

    // Versions: collect those deleted at or before the horizon.
    let horizon = this.#revisionAt(now - this.#snapshotRetentionMs);
    for (const leased of this.#leases.keys()) horizon = Math.min(horizon, leased);
    if (horizon <= this.#horizon) return;
    const pending = this.#dead.length - this.#deadHead;
    if (pending < 256 && pending * 8 < this.#live.size) return;
    this.#horizon = horizon;
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
}

class MemorySnapshot implements TupleSnapshot {
  readonly revision: Revision;
  readonly #store: MemoryTupleStore;
  #released = false;

  constructor(store: MemoryTupleStore, revision: Revision) {
    this.#store = store;
    this.revision = revision;
  }

  async readByObject(keys: readonly ObjectRelationKey[]): Promise<RelationTuple[][]> {
    return this.#store.readByObject(this.revision, keys);
  }

  async readBySubject(keys: readonly SubjectKey[]): Promise<RelationTuple[][]> {
    return this.#store.readBySubject(this.revision, keys);
  }

  async readByTypeRelation(keys: readonly TypeRelationKey[]): Promise<RelationTuple[][]> {
    return this.#store.readByTypeRelation(this.revision, keys);
  }

  async read(filter: ReadFilter): Promise<RelationTuple[]> {
    return this.#store.read(this.revision, filter);
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#store.release(this.revision);
  }
}

function duplicateInBatch(t: TupleIdentity): NexusError {
  return new NexusError("invalid_write", `${describeTuple(t)} appears more than once in the write`, {
    tuple: { tenant: t.tenant, object: t.object, relation: t.relation, user: t.user },
  });
}

function sameTuple(a: RelationTuple, b: RelationTuple): boolean {
  return sameCondition(a.condition, b.condition) && a.expiresAt === b.expiresAt;
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

function randomId(): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
