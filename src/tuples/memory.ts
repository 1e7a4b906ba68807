/**
 * The in-memory TupleStore: multi-version tuples (versions.ts), so snapshot reads are cheap and consistent, and a
 * retained changelog with commit times (changelog.ts).
 *
 * A snapshot at revision r reads the tuple versions live at r. Deleted versions stay until no reader can need
 * them: a version deleted at d is collected once d ≤ the horizon, the oldest of (a) any open snapshot and (b) the
 * revision current `snapshotRetentionMs` ago (which must cover the engines' quantization window).
 *
 * A write batch is validated completely before anything changes, then applied at one new revision, so a failed
 * batch leaves nothing behind. Validating stages the batch's tuples in the version index at the next revision,
 * which no reader can ask for until the write commits (versions.ts); a failed batch is rolled back. A large batch
 * is validated in slices of about `writeSliceMs`, yielding to the event loop between them, so writing 100,000
 * tuples does not stall every other request: writes queue behind it (one write is staged at a time), readers go
 * on reading the revision before it, and the commit then makes the whole batch visible in one step. Tuples past their `expiresAt` are removed by the next write (recorded in the
 * changelog as deletes with `expired: true`); until then readers skip them by their own clock.
 *
 * The changelog keeps at most `changelogMaxEntries` changes, none older than `changelogMaxAgeMs`; asking for
 * changes after a revision it no longer covers is "invalid_token" (the gap can no longer be filled).
 *
 * Nothing here starts a timer: waiting watchers are plain promises resolved by writes and by close().
 */
import { describe, NexusError } from "../util/errors.js";
import { yieldToLoop } from "../util/yield.js";
import { Changelog, type ChangelogState } from "./changelog.js";
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
import { IN_BATCH, Staging, smallInt, VersionIndex } from "./versions.js";
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
  /**
   * A write still validating after this many milliseconds yields to the event loop and goes on in further slices
   * of this length (default 4; the commit is one step whatever the batch's size).
   */
  writeSliceMs?: number;
  /** Tuples validated between looks at the clock (default 256; tests make slices small). @internal */
  writeSliceTuples?: number;
}

/**
 * A write batch validated against the store's current state, not yet applied (prepareWrite → applyWrite). The file
 * store persists it in between; a replay prepares the same tuples at the same time and gets the same result.
 * @internal
 */
export interface PreparedWrite {
  readonly revision: Revision;
  /** The commit time: the store's clock when prepareWrite staged the batch, or when write() committed it. */
  readonly time: number;
  /**
   * Tuples the batch writes (skipped duplicates left out): the batch's own list when it skipped none, so read it
   * before anything awaits; `written` keeps its length as prepared.
   */
  readonly writes: readonly RelationTuple[];
  /** How many tuples the batch writes, counted when it was prepared (what the write reports). */
  readonly written: number;
  /** Live tuples the batch deletes (skipped missing deletes left out). */
  readonly deletes: readonly RelationTuple[];
  /** The writes, staged in the version index (applyWrite commits them, abortWrite takes them out). */
  readonly staging: Staging;
}

/**
 * Everything a store needs to go on from its latest revision: the live tuples, the retained changelog and commit
 * times. Older revisions are not in it: a store restored from it serves snapshots from `revision` on.
 * @internal
 */
export interface MemoryStoreState extends ChangelogState {
  readonly revision: Revision;
  readonly tuples: readonly RelationTuple[];
}

export class MemoryTupleStore implements TupleStore, AsyncDisposable {
  readonly id: string;
  readonly models: MemoryModelVersions;
  readonly #clock: () => number;
  readonly #snapshotRetentionMs: number;
  readonly #writeSliceMs: number;
  readonly #writeSliceTuples: number;
  /** The write staged and not yet applied or aborted (at most one at a time). */
  #staged: PreparedWrite | Preparing | undefined;
  /** The last write in line behind a write validating in slices; undefined when none is. */
  #queue: Promise<void> | undefined;

  #revision: Revision = 0;
  #closed = false;
  readonly #versions = new VersionIndex();
  readonly #changelog: Changelog;
  /** Versions older than this revision may be gone; snapshots below it are refused. */
  #horizon: Revision = 0;
  /** The revision a restored store started from (restoreState): revisionAt never answers below it. */
  #base: Revision = 0;
  readonly #leases = new Map<Revision, number>();

  readonly #waiters = new RevisionWaiters();

  constructor(options: MemoryStoreOptions = {}) {
    const {
      clock = Date.now,
      snapshotRetentionMs = 10_000,
      changelogMaxEntries = 100_000,
      changelogMaxAgeMs = 3_600_000,
      writeSliceMs = 4,
      writeSliceTuples = 256,
    } = options;
    for (const [name, value] of Object.entries({
      snapshotRetentionMs,
      changelogMaxEntries,
      changelogMaxAgeMs,
      writeSliceMs,
    })) {
      if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
        throw new NexusError("invalid_argument", `${name} must be a number ≥ 0, got ${describe(value)}`, {
          [name]: value,
        });
      }
    }
    this.#clock = clock;
    this.#snapshotRetentionMs = snapshotRetentionMs;
    this.#writeSliceMs = writeSliceMs;
    this.#writeSliceTuples = Math.max(1, Math.floor(writeSliceTuples));
    this.#changelog = new Changelog({
      maxEntries: changelogMaxEntries,
      maxAgeMs: changelogMaxAgeMs,
      snapshotRetentionMs,
    });
    this.id = randomId();
    this.models = new MemoryModelVersions(clock);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Live tuples (including expired ones not yet removed), for tests and metrics. */
  get size(): number {
    return this.#versions.size;
  }

  /** Tuple versions held, live and deleted-but-not-collected, for tests and metrics. */
  get versionCount(): number {
    return this.#versions.versionCount;
  }

  /**
   * Tuples in the expiry queue, for tests and metrics: the live ones with an expiry, and ones deleted before
   * their expiry that the queue has not dropped yet (it does once they are half of it).
   */
  get expiringCount(): number {
    return this.#versions.expiringCount;
  }

  async currentRevision(): Promise<Revision> {
    this.#assertOpen();
    return this.#revision;
  }

  async revisionAt(timeMs: number): Promise<Revision> {
    this.#assertOpen();
    return Math.max(this.#changelog.revisionAt(timeMs, this.#revision), this.#base);
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
    if (this.#queue !== undefined) return this.#exclusive(() => this.#writeInSlices(batch));
    // Nothing in line: validate now, and finish now too unless the batch takes longer than a slice.
    const preparing = this.#begin(batch, this.#clock());
    if (this.#prepareSome(preparing, performance.now() + this.#writeSliceMs)) return this.#finish(preparing);
    return this.#exclusive(() => this.#continue(preparing));
  }

  /**
   * Validates `batch` against the current state at time `now` and stages it (nothing a reader can see changes):
   * the writes and deletes it would apply at the next revision, or undefined when it would change nothing. Every
   * PreparedWrite must be applied (applyWrite) or aborted (abortWrite) before the next write is prepared.
   * @throws NexusError "invalid_write" as write() does (nothing is left staged then).
   * @internal
   */
  prepareWrite(batch: WriteBatch, now: number = this.#clock()): PreparedWrite | undefined {
    this.#assertOpen();
    const preparing = this.#begin(batch, now);
    this.#prepareSome(preparing, Number.POSITIVE_INFINITY);
    return this.#prepared(preparing);
  }

  /**
   * Applies a batch prepared against the current state (nothing may have been written since prepareWrite).
   * @internal
   */
  applyWrite(prepared: PreparedWrite): WriteResult {
    this.#assertOpen();
    const { revision, time: now } = prepared;
    if (revision !== this.#revision + 1 || this.#staged !== prepared) {
      throw new NexusError(
        "internal",
        `a write prepared for revision ${revision} cannot apply at revision ${this.#revision + 1}`,
      );
    }
    this.#staged = undefined;
    // Everything was checked by prepareWrite: apply at the new revision.
    const versions = this.#versions;
    const changelog = this.#changelog;
    for (const tuple of prepared.deletes) {
      changelog.push(revision, "delete", versions.delete(tuple, revision)!);
    }
    versions.commit(prepared.staging, changelog);
    for (const tuple of versions.expire(now, revision)) {
      changelog.push(revision, "delete", tuple, true);
    }
    this.#revision = revision;
    changelog.commit(revision, now);
    this.#trim(now);
    this.#waiters.wakeAll();
    return { revision, written: prepared.written, deleted: prepared.deletes.length };
  }

  /**
   * Takes a prepared write out again (its log append failed): the store is as if it was never prepared.
   * @internal
   */
  abortWrite(prepared: PreparedWrite): void {
    if (this.#staged !== prepared) return;
    this.#staged = undefined;
    if (!this.#closed) this.#versions.rollback(prepared.staging);
  }

  /** Runs `run` once every write in line before it has finished. */
  #exclusive<T>(run: () => Promise<T>): Promise<T> {
    const result = (this.#queue ?? Promise.resolve()).then(run);
    const settled = result.then(
      () => {},
      () => {},
    );
    this.#queue = settled;
    void settled.then(() => {
      if (this.#queue === settled) this.#queue = undefined;
    });
    return result;
  }

  async #writeInSlices(batch: WriteBatch): Promise<WriteResult> {
    this.#assertOpen();
    const preparing = this.#begin(batch, this.#clock());
    return this.#continue(preparing);
  }

  /** Validates the rest of `preparing` slice by slice, yielding between slices, then applies it. */
  async #continue(preparing: Preparing): Promise<WriteResult> {
    try {
      for (;;) {
        await yieldToLoop();
        // close() dropped every index (the staging with them): nothing to roll back.
        if (this.#closed) throw new NexusError("closed", "the tuple store is closed");
        if (this.#prepareSome(preparing, performance.now() + this.#writeSliceMs)) break;
      }
      return this.#finish(preparing);
    } catch (error) {
      // Whatever failed (not only a refused tuple, which #prepareSome rolled back already), the store must take
      // the next write: nothing of this one may stay staged.
      if (this.#staged !== undefined && this.#staged.staging === preparing.staging) {
        this.#staged = undefined;
        if (!this.#closed) this.#versions.rollback(preparing.staging);
      }
      throw error;
    }
  }

  #finish(preparing: Preparing): WriteResult {
    // Committed at the clock's time now, not when validation began: a sliced write is visible from its commit on,
    // and revisionAt(t) for a t in between must keep naming the revision before it.
    const prepared = this.#prepared(preparing, this.#clock());
    if (prepared === undefined) return { revision: this.#revision, written: 0, deleted: 0 };
    return this.applyWrite(prepared);
  }

  /** A write of `batch` at `now`, to stage from its start. */
  #begin(batch: WriteBatch, now: number): Preparing {
    if (this.#staged !== undefined) {
      throw new NexusError("internal", "a write is prepared already: apply or abort it first");
    }
    const preparing = new Preparing(batch, now, new Staging(this.#revision + 1));
    this.#staged = preparing;
    return preparing;
  }

  /** The PreparedWrite of a completely validated batch (undefined, and nothing staged, when it changes nothing). */
  #prepared(preparing: Preparing, commitTime = preparing.now): PreparedWrite | undefined {
    const { deletes, staging, now } = preparing;
    // Every write staged (nothing skipped as a repeat): the batch's own list.
    const writes = preparing.writes ?? preparing.batch.writes;
    if (deletes.length === 0 && writes.length === 0) {
      this.#staged = undefined;
      return undefined;
    }
    const time = Math.max(now, commitTime);
    const prepared: PreparedWrite = {
      revision: staging.revision,
      time,
      writes,
      written: writes.length,
      deletes,
      staging,
    };
    this.#staged = prepared;
    return prepared;
  }

  /**
   * Validates and stages `preparing`'s batch from where it stopped, until it is done (true) or `deadline`
   * (performance.now() time, looked at every writeSliceTuples tuples) has passed (false). On an invalid tuple it rolls
   * back everything the batch staged, and throws.
   */
  #prepareSome(preparing: Preparing, deadline: number): boolean {
    try {
      return this.#stageSome(preparing, deadline);
    } catch (error) {
      this.#staged = undefined;
      this.#versions.rollback(preparing.staging);
      throw error;
    }
  }

  #stageSome(preparing: Preparing, deadline: number): boolean {
    const { batch, now, staging, named } = preparing;
    const versions = this.#versions;
    const deleteCount = batch.deletes.length;
    const timed = deadline !== Number.POSITIVE_INFINITY;
    const every = this.#writeSliceTuples;
    while (preparing.next < deleteCount) {
      const d = batch.deletes[preparing.next++]!;
      if (named!.add(d) === DUPLICATE) throw duplicateInBatch(d);
      const live = versions.live(d);
      if (live === undefined) {
        if (batch.onMissing === "ignore") continue;
        throw new NexusError("invalid_write", `cannot delete ${describeTuple(d)}: it does not exist`, {
          tuple: { ...d },
        });
      }
      preparing.deletes.push(live);
      if (timed && preparing.next % every === 0 && performance.now() >= deadline) return false;
    }
    const { writes } = batch;
    const ignore = batch.onDuplicate === "ignore";
    for (let i = preparing.next - deleteCount; i < writes.length; ) {
      const w = writes[i++]!;
      // A tuple the batch deletes too is named twice (a write named twice meets its own staged version).
      if (named !== undefined && named.add(w) === DUPLICATE) throw duplicateInBatch(w);
      const live = versions.stage(staging, w);
      if (live === undefined) {
        preparing.writes?.push(w);
      } else if (live === IN_BATCH) {
        throw duplicateInBatch(w);
      } else if (live.expiresAt !== undefined && live.expiresAt <= now) {
        // An expired tuple not yet removed: the write replaces it.
        versions.stageReplacing(staging, w);
        preparing.writes?.push(w);
      } else if (ignore && sameTuple(live, w)) {
        // A repeat skipped: from here on the written tuples are a list of their own.
        preparing.writes ??= writes.slice(0, i - 1);
      } else {
        throw new NexusError(
          "invalid_write",
          `cannot write ${describeTuple(w)}: it already exists${ignore ? " with another condition or expiry" : ""}`,
          { tuple: { tenant: w.tenant, object: w.object, relation: w.relation, user: w.user } },
        );
      }
      if (timed && i % every === 0 && performance.now() >= deadline) {
        preparing.next = deleteCount + i;
        return false;
      }
    }
    preparing.next = deleteCount + writes.length;
    return true;
  }

  /**
   * The state at the current revision, for a checkpoint. Shares the (immutable) tuples; copies the lists.
   * @internal
   */
  exportState(): MemoryStoreState {
    this.#assertOpen();
    return {
      revision: this.#revision,
      tuples: this.#versions.liveTuples(this.#revision),
      ...this.#changelog.exportState(),
    };
  }

  /**
   * Makes a new, empty store continue from `state` (exportState of an earlier store): reads are served from
   * `state.revision` on, older snapshots are refused as beyond retention.
   * @internal
   */
  restoreState(state: MemoryStoreState): void {
    this.#assertOpen();
    if (this.#revision !== 0 || this.#versions.size > 0) {
      throw new NexusError("internal", "restoreState needs a store nothing was written to");
    }
    for (const tuple of state.tuples) this.#versions.insert(tuple, state.revision);
    // A decoded revision may be a double-valued number: kept as a small integer, as every other revision is.
    const revision = smallInt(state.revision);
    this.#revision = revision;
    this.#horizon = revision;
    this.#base = revision;
    this.#changelog.restoreState(state);
  }

  async changesAfter(after: Revision, limit: number): Promise<StoredChange[]> {
    this.#assertOpen();
    if (!Number.isSafeInteger(after) || after < 0 || after > this.#revision) {
      throw new NexusError("invalid_token", `revision ${describe(after)} is not a revision of this store`, {
        revision: after,
      });
    }
    return this.#changelog.after(after, limit);
  }

  waitForRevision(after: Revision, signal?: AbortSignal): Promise<void> {
    if (this.#closed || this.#revision > after) return Promise.resolve();
    return this.#waiters.wait(signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#staged = undefined;
    this.#waiters.wakeAll();
    this.#versions.clear();
    this.#changelog.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- reads (called by MemorySnapshot) ---

  /** @internal */
  readByObject(revision: Revision, keys: readonly ObjectRelationKey[]): RelationTuple[][] {
    this.#assertOpen();
    return this.#versions.readByObject(revision, keys);
  }

  /** @internal */
  readBySubject(revision: Revision, keys: readonly SubjectKey[]): RelationTuple[][] {
    this.#assertOpen();
    return this.#versions.readBySubject(revision, keys);
  }

  /** @internal */
  readByTypeRelation(revision: Revision, keys: readonly TypeRelationKey[]): RelationTuple[][] {
    this.#assertOpen();
    return this.#versions.readByTypeRelation(revision, keys);
  }

  /** @internal */
  read(revision: Revision, filter: ReadFilter): RelationTuple[] {
    this.#assertOpen();
    return this.#versions.read(revision, filter);
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

  /** Trims the changelog and commit times, and collects versions no reader can need. */
  #trim(now: number): void {
    this.#changelog.trim(now, this.#revision);
    // Versions: collect those deleted at or before the horizon.
    let horizon = this.#changelog.revisionAt(now - this.#snapshotRetentionMs, this.#revision);
    for (const leased of this.#leases.keys()) horizon = Math.min(horizon, leased);
    if (horizon <= this.#horizon) return;
    if (!this.#versions.collectionDue) return;
    this.#horizon = horizon;
    this.#versions.collect(horizon);
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

/** A write batch being validated and staged: how far it got, and what it will change. */
class Preparing {
  readonly batch: WriteBatch;
  readonly now: number;
  readonly staging: Staging;
  /** The identities the batch deletes, and then writes (only when it deletes any). */
  readonly named: BatchIdentities | undefined;
  readonly deletes: RelationTuple[] = [];
  /**
   * The tuples the batch writes, once one of its writes was skipped (a repeat it may ignore); until then the
   * batch's writes so far, which a list of their own per write only copied.
   */
  writes: RelationTuple[] | undefined;
  /** The next of the batch's deletes, then writes, to validate. */
  next = 0;

  constructor(batch: WriteBatch, now: number, staging: Staging) {
    this.batch = batch;
    this.now = now;
    this.staging = staging;
    this.named = batch.deletes.length > 0 ? new BatchIdentities() : undefined;
  }
}

/**
 * The identities a batch names so far, to refuse one named twice. Keyed by the object string the tuple already
 * holds (no key string is built per tuple); the few tuples on one object are compared field by field.
 */
const DUPLICATE = 0;
const NEW_OBJECT = 1;
const KNOWN_OBJECT = 2;

class BatchIdentities {
  /** Per object: the one identity, a few in a list, or (past SMALL) the identity keys of all of them. */
  readonly #byObject = new Map<string, TupleIdentity | TupleIdentity[] | Set<string>>();

  /** Adds `t`: DUPLICATE when the batch named it already, else whether its object is new to the batch. */
  add(t: TupleIdentity): typeof DUPLICATE | typeof NEW_OBJECT | typeof KNOWN_OBJECT {
    const known = this.#byObject.get(t.object);
    if (known === undefined) {
      this.#byObject.set(t.object, t);
      return NEW_OBJECT;
    }
    if (known instanceof Set) {
      // Many tuples on one object (a group's 100,000 members): keyed, so the batch stays linear.
      const key = identityKey(t);
      if (known.has(key)) return DUPLICATE;
      known.add(key);
      return KNOWN_OBJECT;
    }
    const list = Array.isArray(known) ? known : [known];
    for (const k of list) {
      if (
        k.relation === t.relation &&
        k.user === t.user &&
        k.tenant === t.tenant &&
        k.subjectTenant === t.subjectTenant
      ) {
        return DUPLICATE;
      }
    }
    list.push(t);
    if (list.length > SMALL) this.#byObject.set(t.object, new Set(list.map(identityKey)));
    else if (list !== known) this.#byObject.set(t.object, list);
    return KNOWN_OBJECT;
  }
}

/** BatchIdentities compares up to this many identities on one object field by field. */
const SMALL = 8;

function duplicateInBatch(t: TupleIdentity): NexusError {
  return new NexusError("invalid_write", `${describeTuple(t)} appears more than once in the write`, {
    tuple: { tenant: t.tenant, object: t.object, relation: t.relation, user: t.user },
  });
}

function sameTuple(a: RelationTuple, b: RelationTuple): boolean {
  return sameCondition(a.condition, b.condition) && a.expiresAt === b.expiresAt;
}

function randomId(): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
