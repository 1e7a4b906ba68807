/**
 * The TupleStore contract: a revisioned, tenant-partitioned tuple store with snapshot reads and a changelog.
 * The in-memory store (memory.ts) and the durable file store (file/store.ts) implement it, and a PostgreSQL store
 * will too; test/tuples/contract.ts is the suite every one of them passes. Everything is async so a store may do
 * I/O; reads are batched so a store can answer many keys with one query.
 *
 * Revisions: every committed write batch gets the next revision (1, 2, 3, ...; 0 is the empty store). A snapshot
 * at revision r sees exactly the tuples written at or before r and not deleted at or before r. Expiry is not a
 * revision: readers drop tuples whose `expiresAt` has passed by their own clock.
 */
import type { ModelVersions } from "./models.js";
import type { RelationTuple, TupleIdentity } from "./tuple.js";

export type Revision = number;

/** Tuples on one object's relation, in one tenant. */
export interface ObjectRelationKey {
  readonly tenant: string;
  readonly object: string;
  readonly relation: string;
}

/**
 * Tuples whose subject is `user` in `subjectTenant`, in any tenant (cross-tenant grants included), optionally
 * only those on objects of `objectType` and/or on `relation`.
 */
export interface SubjectKey {
  readonly subjectTenant: string;
  /** The subject string: `user:anne`, `user:*`, `group:eng#member`. */
  readonly user: string;
  readonly objectType?: string;
  readonly relation?: string;
}

/** Tuples on every object of a type, for one relation, in one tenant. */
export interface TypeRelationKey {
  readonly tenant: string;
  readonly objectType: string;
  readonly relation: string;
}

/** A filter for listing a tenant's tuples (each field optional, all given fields must match). */
export interface ReadFilter {
  readonly tenant: string;
  readonly object?: string;
  readonly objectType?: string;
  readonly relation?: string;
  readonly user?: string;
}

/** A consistent view of the store at one revision. Release it when done so old versions can be collected. */
export interface TupleSnapshot {
  readonly revision: Revision;
  /** One result list per key, in key order. */
  readByObject(keys: readonly ObjectRelationKey[]): Promise<RelationTuple[][]>;
  readBySubject(keys: readonly SubjectKey[]): Promise<RelationTuple[][]>;
  readByTypeRelation(keys: readonly TypeRelationKey[]): Promise<RelationTuple[][]>;
  read(filter: ReadFilter): Promise<RelationTuple[]>;
  release(): void;
}

export interface WriteBatch {
  readonly writes: readonly RelationTuple[];
  readonly deletes: readonly TupleIdentity[];
  /** "error" (default): writing a tuple that exists rejects the batch. "ignore": an identical tuple is skipped. */
  readonly onDuplicate?: "error" | "ignore";
  /** "error" (default): deleting a tuple that does not exist rejects the batch. "ignore": it is skipped. */
  readonly onMissing?: "error" | "ignore";
}

export interface WriteResult {
  readonly revision: Revision;
  /** Tuples written and deleted (skipped duplicates / missing deletes not counted). */
  readonly written: number;
  readonly deleted: number;
}

export type ChangeOp = "write" | "delete";

/** One entry of the changelog. */
export interface StoredChange {
  readonly revision: Revision;
  readonly op: ChangeOp;
  readonly tuple: RelationTuple;
  /** The delete was the store removing an expired tuple, not a caller's delete. */
  readonly expired?: boolean;
}

export interface TupleStore {
  /** Identifies the store's revision sequence; tokens carry it, so a token from another store is rejected. */
  readonly id: string;
  /** The latest committed revision. */
  currentRevision(): Promise<Revision>;
  /** The latest revision committed at or before `timeMs` (the store's clock), 0 if none. */
  revisionAt(timeMs: number): Promise<Revision>;
  /**
   * A snapshot at `revision` (≤ current).
   * @throws NexusError "invalid_token" when the revision is newer than the store or older than it retains.
   */
  snapshot(revision: Revision): Promise<TupleSnapshot>;
  /**
   * Applies a batch atomically at a new revision: all of it or none of it. The batch's arrays are read until the
   * promise settles (a large batch is validated in slices): do not change them before.
   * @throws NexusError "invalid_write" naming the first tuple that exists (write) or is missing (delete), or a
   *   tuple that appears twice in the batch.
   */
  write(batch: WriteBatch): Promise<WriteResult>;
  /**
   * Changes with revision > `after`, in revision order: about `limit` of them, never splitting a revision (the
   * page ends with a revision's last change).
   * @throws NexusError "invalid_token" when changes after `after` are no longer retained.
   */
  changesAfter(after: Revision, limit: number): Promise<StoredChange[]>;
  /** Resolves once the current revision exceeds `after`, or the store closes, or `signal` aborts. */
  waitForRevision(after: Revision, signal?: AbortSignal): Promise<void>;
  /**
   * The store's authorization model versions (models.ts), kept with its tuples. Every store users open has them;
   * a store that only replays another's changelog (src/wasm-eval/replica.ts) has none.
   */
  readonly models?: ModelVersions;
  readonly closed: boolean;
  close(): Promise<void>;
}
