/**
 * What a worker needs to hold a tenant's compiled graph at exactly the revision a batch asks for, without the
 * store: a base snapshot (the tenant's tuples at a base revision, JSON-encoded once into a SharedArrayBuffer that
 * every task shares instead of copying) and the tenant's changes after it. The worker replays them through a
 * `ReplayStore`, a read-only TupleStore over that data, into an ordinary WasmEvaluator, so it builds and advances
 * its graph with exactly the code the main thread uses. Runtime-neutral.
 */

import type { ChangeListener, SubscribeOptions, Unsubscribe } from "../changes/feed.js";
import type { RelationTuple } from "../tuples/tuple.js";
import type {
  ObjectRelationKey,
  ReadFilter,
  Revision,
  StoredChange,
  SubjectKey,
  TupleSnapshot,
  TupleStore,
  TypeRelationKey,
  WriteResult,
} from "../tuples/types.js";
import { NexusError } from "../util/errors.js";

/** A tenant's base snapshot, shared with workers. */
export interface ReplicaBase {
  /** Unique per base (workers cache their graphs by it). */
  readonly id: string;
  readonly tenant: string;
  readonly revision: Revision;
  /** UTF-8 JSON of the tuples (SharedArrayBuffer where available, so tasks share it without a copy). */
  readonly bytes: SharedArrayBuffer | ArrayBuffer;
  readonly length: number;
}

let nextBase = 0;

export function encodeBase(
  tenant: string,
  revision: Revision,
  tuples: readonly RelationTuple[],
): ReplicaBase {
  const encoded = new TextEncoder().encode(JSON.stringify(tuples));
  const bytes =
    typeof SharedArrayBuffer === "function"
      ? new SharedArrayBuffer(encoded.length)
      : new ArrayBuffer(encoded.length);
  new Uint8Array(bytes).set(encoded);
  const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${nextBase++}`;
  return { id, tenant, revision, bytes, length: encoded.length };
}

export function decodeBase(base: ReplicaBase): RelationTuple[] {
  // TextDecoder refuses views of shared memory: copy first.
  const copy = new Uint8Array(base.length);
  copy.set(new Uint8Array(base.bytes, 0, base.length));
  return JSON.parse(new TextDecoder().decode(copy)) as RelationTuple[];
}

/**
 * A read-only TupleStore over a base snapshot and the changes after it (only what WasmEvaluator reads), and the
 * change source the worker's evaluator follows (ChangeSource: src/wasm-eval/tenant-graphs.ts).
 */
export class ReplayStore implements TupleStore {
  readonly id = "replica";
  readonly closed = false;
  /** As a change source: always delivering (appends reach the listeners synchronously). */
  readonly running = true;
  readonly #tenant: string;
  readonly #baseRevision: Revision;
  readonly #tuples: readonly RelationTuple[];
  readonly #changes: StoredChange[] = [];
  readonly #listeners = new Set<ChangeListener>();
  /** Every change of the tenant up to here has been appended. */
  #watermark: Revision;

  constructor(base: ReplicaBase) {
    this.#tenant = base.tenant;
    this.#baseRevision = base.revision;
    this.#watermark = base.revision;
    this.#tuples = decodeBase(base);
  }

  /** The replica holds every change of its tenant up to this revision. */
  get watermark(): Revision {
    return this.#watermark;
  }

  /**
   * Delivers the changes after `after` (default: the watermark) to `listener` at once, then every later append;
   * a revision before the base gets onReset (the replica does not reach back).
   */
  subscribe(listener: ChangeListener, options: SubscribeOptions = {}): Unsubscribe {
    const after = options.after ?? this.#watermark;
    if (after < this.#baseRevision) listener.onReset(this.#watermark);
    else if (after < this.#watermark) {
      listener.onChanges(
        this.#changes.filter((c) => c.revision > after),
        this.#watermark,
      );
    }
    this.#listeners.add(listener);
    const unsubscribe = (): void => {
      this.#listeners.delete(listener);
    };
    return Object.assign(unsubscribe, { replayed: () => Promise.resolve() });
  }

  /** Everything the replica has is delivered at once. */
  async caughtUp(): Promise<void> {}

  get baseRevision(): Revision {
    return this.#baseRevision;
  }

  /** The newest revision the replica knows. */
  get knownRevision(): Revision {
    return this.#changes.length === 0
      ? this.#baseRevision
      : this.#changes[this.#changes.length - 1]!.revision;
  }

  /**
   * Appends changes (in revision order; those at or below the known revision are already here): the tenant's
   * changes up to `upTo`, which becomes the watermark. Listeners get them at once.
   */
  append(changes: readonly StoredChange[], upTo: Revision): void {
    const known = this.knownRevision;
    const fresh = changes.filter((c) => c.revision > known);
    for (const c of fresh) this.#changes.push(c);
    if (upTo <= this.#watermark && fresh.length === 0) return;
    if (upTo > this.#watermark) this.#watermark = upTo;
    for (const listener of this.#listeners) listener.onChanges(fresh, this.#watermark);
  }

  async currentRevision(): Promise<Revision> {
    return this.knownRevision;
  }

  async revisionAt(): Promise<Revision> {
    return this.knownRevision;
  }

  async snapshot(revision: Revision): Promise<TupleSnapshot> {
    if (revision !== this.#baseRevision) {
      throw new NexusError(
        "invalid_token",
        `a replica only has the snapshot at revision ${this.#baseRevision}`,
        {
          revision,
        },
      );
    }
    const tuples = this.#tuples;
    const tenant = this.#tenant;
    const unsupported = (): never => {
      throw new NexusError("internal", "a replica snapshot only lists its tenant's tuples");
    };
    return {
      revision,
      readByObject: async (_: readonly ObjectRelationKey[]) => unsupported(),
      readBySubject: async (_: readonly SubjectKey[]) => unsupported(),
      readByTypeRelation: async (_: readonly TypeRelationKey[]) => unsupported(),
      read: async (filter: ReadFilter) => (filter.tenant === tenant ? [...tuples] : []),
      release: () => {},
    };
  }

  async write(): Promise<WriteResult> {
    throw new NexusError("internal", "a replica is read-only");
  }

  async changesAfter(after: Revision, limit: number): Promise<StoredChange[]> {
    if (after < this.#baseRevision) {
      throw new NexusError("invalid_token", `the replica starts at revision ${this.#baseRevision}`, {
        after,
      });
    }
    let start = 0;
    while (start < this.#changes.length && this.#changes[start]!.revision <= after) start++;
    let end = Math.min(this.#changes.length, start + Math.max(1, limit));
    while (end < this.#changes.length && this.#changes[end]!.revision === this.#changes[end - 1]!.revision)
      end++;
    return this.#changes.slice(start, end);
  }

  async waitForRevision(): Promise<void> {}

  async close(): Promise<void> {}
}
