/**
 * The PostgreSQL TupleStore: the memory store's contract (src/tuples/types.ts) over tables that several processes
 * share (migrations.ts lists them).
 *
 * Writes (write.ts) take revisions one at a time under a row lock on the counter, so revisions are gap-free and
 * totally ordered across processes; this process also queues its own writes, so they do not hold pooled
 * connections while waiting for the lock.
 *
 * Expiry and time are the memory store's: a write removes the tuples expired by `clock()` (changelog deletes with
 * `expired: true`); commit times come from the writer's clock, never going backwards across writers.
 *
 * Watch: every commit NOTIFYs its revision (watch.ts wakes waiters, with polling as the safety net). Garbage
 * collection (collector.ts) runs in the background after writes when due, one collector across processes.
 */

import { describeTuple, identityKey, type TupleIdentity } from "../tuples/tuple.js";
import type {
  Revision,
  StoredChange,
  TupleSnapshot,
  TupleStore,
  WriteBatch,
  WriteResult,
} from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";
import { changesAfter } from "./changelog.js";
import { type CollectionReport, collect } from "./collector.js";
import {
  DEFAULT_PARTITIONS,
  type PostgresStoreOptions,
  poolFor,
  type ResolvedOptions,
  resolveOptions,
} from "./config.js";
import { Database, type PostgresHealth } from "./database.js";
import { toNexusError } from "./errors.js";
import { migrate } from "./migrations.js";
import { PostgresModelVersions } from "./models.js";
import { PostgresSnapshot } from "./snapshot.js";
import { RevisionWatch } from "./watch.js";
import { type PendingBatch, TupleWriter, type WriteOutcome } from "./write.js";

/** A write waiting in this process's queue. */
interface QueuedWrite extends PendingBatch {
  readonly resolve: (result: WriteResult) => void;
  readonly reject: (error: unknown) => void;
}

/** At most this many batches, and about this many tuples, go into one transaction. */
const MAX_GROUP = 64;
const MAX_GROUP_TUPLES = 10_000;

/**
 * Opens (creating or migrating its schema when needed) a TupleStore in PostgreSQL.
 * @throws NexusError "invalid_argument" for bad options or a connection string that is not a postgres URL;
 *   "unavailable" / "timeout" when the server cannot be reached.
 */
export async function openPostgresTupleStore(options: PostgresStoreOptions): Promise<PostgresTupleStore> {
  const resolved = resolveOptions(options);
  const { pool, owned } = poolFor(options);
  const db = new Database(pool, resolved.schema, owned);
  try {
    await db.transaction("migrating the schema", (client) =>
      migrate(client, {
        schema: resolved.schema,
        partitions: resolved.partitions ?? DEFAULT_PARTITIONS,
        storeId: randomId(),
      }),
    );
    const rows = await db.rows<[string, number]>(
      `SELECT store_id, partitions FROM ${resolved.schema}.store_meta`,
      [],
      "opening the store",
    );
    const [storeId, partitions] = rows[0]!;
    if (resolved.partitions !== undefined && resolved.partitions !== partitions) {
      throw new NexusError(
        "invalid_argument",
        `schema ${resolved.schema} was created with ${partitions} partitions, not ${resolved.partitions} (the count is fixed at creation)`,
        { schema: resolved.schema, partitions, requested: resolved.partitions },
      );
    }
    return new PostgresTupleStore(db, owned, resolved, storeId, partitions);
  } catch (error) {
    if (owned) await db.end().catch(() => {});
    throw toNexusError(error, "opening the store", { max: db.max });
  }
}

export class PostgresTupleStore implements TupleStore, AsyncDisposable {
  readonly id: string;
  readonly models: PostgresModelVersions;
  /** The PostgreSQL schema holding the tables. */
  readonly schema: string;
  /** Hash partitions of the tuple and changelog tables. */
  readonly partitions: number;
  readonly #db: Database;
  readonly #ownsPool: boolean;
  readonly #options: ResolvedOptions;
  readonly #watch: RevisionWatch;
  readonly #writer: TupleWriter;
  readonly #channel: string;
  /** Open snapshots of this process, by revision (the collector keeps what they need). */
  readonly #leases = new Map<Revision, number>();
  #collecting: Promise<CollectionReport> | undefined;
  readonly #queue: QueuedWrite[] = [];
  #draining = false;
  #lastCollectMs = Number.NEGATIVE_INFINITY;
  #closed = false;

  /** @internal Use openPostgresTupleStore. */
  constructor(db: Database, ownsPool: boolean, options: ResolvedOptions, id: string, partitions: number) {
    this.#db = db;
    this.#ownsPool = ownsPool;
    this.#options = options;
    this.id = id;
    this.schema = db.schema;
    this.partitions = partitions;
    this.#channel = `nexus_fast_${db.schema}`;
    this.#writer = new TupleWriter(db, this.#channel);
    this.models = new PostgresModelVersions(
      (text, values) => db.rows(text, values, "reading or writing model versions"),
      db.schema,
      options.clock,
    );
    this.#watch = new RevisionWatch({
      pool: db.pool,
      channel: this.#channel,
      readRevision: () => this.currentRevision(),
      pollIntervalMs: options.pollIntervalMs,
      applicationName: `nexus-fast listen ${db.schema}`,
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The pool queries go through (the caller's, or the one the store opened). */
  get pool(): import("pg").Pool {
    return this.#db.pool;
  }

  /** @internal The backend pid of the LISTEN connection, when connected (tests break it on purpose). */
  get listenerPid(): number | undefined {
    return this.#watch.listenerPid;
  }

  async currentRevision(): Promise<Revision> {
    const rows = await this.#db.rows<[string]>(
      `SELECT revision FROM ${this.schema}.store_meta`,
      [],
      "reading the revision",
    );
    const revision = Number(rows[0]![0]);
    this.#watch.advance(revision);
    return revision;
  }

  async revisionAt(timeMs: number): Promise<Revision> {
    const s = this.schema;
    const rows = await this.#db.rows<[string | null, string | null, string]>(
      `SELECT (SELECT revision FROM ${s}.commits WHERE committed_at_ms <= $1
               ORDER BY committed_at_ms DESC, revision DESC LIMIT 1),
              (SELECT min(revision) FROM ${s}.commits),
              (SELECT revision FROM ${s}.store_meta)`,
      [Number.isFinite(timeMs) ? Math.floor(timeMs) : timeMs > 0 ? Number.MAX_SAFE_INTEGER : 0],
      "reading commit times",
    );
    const [at, oldest, current] = rows[0]!;
    if (at !== null) return Number(at);
    if (oldest === null) return Number(current);
    // Before the first retained commit: 0 if the whole history is retained, else the oldest state kept.
    return Number(oldest) === 1 ? 0 : Number(oldest);
  }

  async snapshot(revision: Revision): Promise<TupleSnapshot> {
    this.#db.assertOpen();
    if (!Number.isSafeInteger(revision) || revision < 0) {
      throw new NexusError(
        "invalid_token",
        `revision ${describe(revision)} is not a revision of this store`,
        {
          revision,
        },
      );
    }
    const rows = await this.#db.rows<[string, string]>(
      `SELECT m.revision, r.version_horizon FROM ${this.schema}.store_meta m CROSS JOIN ${this.schema}.retention r`,
      [],
      "opening a snapshot",
    );
    const current = Number(rows[0]![0]);
    const horizon = Number(rows[0]![1]);
    if (revision > current) {
      throw new NexusError("invalid_token", `revision ${revision} is not a revision of this store`, {
        revision,
        current,
      });
    }
    if (revision < horizon) {
      throw new NexusError(
        "invalid_token",
        `revision ${revision} is older than this store retains (oldest readable: ${horizon})`,
        { revision, horizon, reason: "beyond_retention" },
      );
    }
    this.#leases.set(revision, (this.#leases.get(revision) ?? 0) + 1);
    return new PostgresSnapshot(this.#db, revision, () => {
      const count = this.#leases.get(revision) ?? 0;
      if (count <= 1) this.#leases.delete(revision);
      else this.#leases.set(revision, count - 1);
    });
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    this.#db.assertOpen();
    const deletes = batch.deletes ?? [];
    const writes = batch.writes ?? [];
    const seen = new Set<string>();
    for (const t of [...deletes, ...writes]) {
      const key = identityKey(t);
      if (seen.has(key)) throw duplicateInBatch(t);
      seen.add(key);
    }
    for (const w of writes) {
      if (w.condition?.context !== undefined && !isPlainJson(w.condition.context)) {
        throw new NexusError(
          "invalid_write",
          `cannot write ${describeTuple(w)}: its condition context is not plain JSON (the store keeps contexts as JSON)`,
          { tuple: { tenant: w.tenant, object: w.object, relation: w.relation, user: w.user } },
        );
      }
    }
    // This process's writes queue here and go to the database in groups (write.ts): writers serialise on the
    // counter lock anyway, so waiting here keeps them from holding every pooled connection (and from timing out
    // waiting for one), and a group shares one transaction.
    return new Promise<WriteResult>((resolve, reject) => {
      this.#queue.push({ batch, deletes, writes, resolve, reject });
      if (!this.#draining) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#queue.length > 0) {
        const group: QueuedWrite[] = [];
        let size = 0;
        while (this.#queue.length > 0 && group.length < MAX_GROUP && size < MAX_GROUP_TUPLES) {
          const next = this.#queue[0]!;
          size += next.deletes.length + next.writes.length;
          if (group.length > 0 && size > MAX_GROUP_TUPLES) break;
          group.push(this.#queue.shift()!);
        }
        await this.#apply(group);
      }
    } finally {
      this.#draining = false;
    }
  }

  async #apply(group: QueuedWrite[]): Promise<void> {
    if (this.#closed) {
      for (const w of group) w.reject(new NexusError("closed", "the PostgreSQL tuple store is closed"));
      return;
    }
    const now = Math.floor(this.#options.clock());
    let outcomes: (WriteOutcome | NexusError)[];
    try {
      outcomes = await this.#writer.writeGroup(group, now);
    } catch (error) {
      if (group.length === 1) {
        group[0]!.reject(error);
        return;
      }
      // The transaction failed as a whole: try each batch alone, so one batch cannot fail the others.
      for (const w of group) await this.#apply([w]);
      return;
    }
    let latest: WriteOutcome | undefined;
    for (const [i, outcome] of outcomes.entries()) {
      const w = group[i]!;
      if (outcome instanceof NexusError) {
        w.reject(outcome);
        continue;
      }
      if (outcome.retained !== undefined) latest = outcome;
      w.resolve({ revision: outcome.revision, written: outcome.written, deleted: outcome.deleted });
    }
    if (latest !== undefined) {
      this.#watch.advance(latest.revision);
      this.#maybeCollect(now, latest.retained!);
    }
  }

  changesAfter(after: Revision, limit: number): Promise<StoredChange[]> {
    return changesAfter(this.#db, after, limit);
  }

  waitForRevision(after: Revision, signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#watch.wait(after, signal);
  }

  /**
   * Runs one garbage collection now (changelog beyond retention, tuple versions no snapshot can need, old commit
   * times); `ran: false` when another process was collecting. Writes start one by themselves when due.
   */
  async collectGarbage(): Promise<CollectionReport> {
    this.#db.assertOpen();
    await this.#collecting?.catch(() => {});
    return this.#startCollect(this.#options.clock());
  }

  /** Whether the database answers, how fast, and how busy the pool is. Never throws. */
  health(): Promise<PostgresHealth> {
    return this.#db.health();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.markClosed();
    await this.#watch.close();
    await this.#collecting?.catch(() => {});
    if (this.#ownsPool) await this.#db.end();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Starts a background collection when the changelog holds more than its bound (with 1/16 slack, so a full
   * changelog is not collected after every write) or the last one is older than half the shorter retention.
   */
  #maybeCollect(now: number, retained: number): void {
    if (this.#collecting !== undefined) return;
    const o = this.#options;
    const overCount = retained > o.changelogMaxEntries + Math.floor(o.changelogMaxEntries / 16);
    const interval = Math.min(60_000, o.snapshotRetentionMs, o.changelogMaxAgeMs) / 2;
    if (!overCount && now - this.#lastCollectMs < interval) return;
    void this.#startCollect(now).catch(() => {
      // Collection is best effort: the next due write tries again.
    });
  }

  #startCollect(now: number): Promise<CollectionReport> {
    this.#lastCollectMs = now;
    const oldest = this.#leases.size === 0 ? undefined : Math.min(...this.#leases.keys());
    const run = collect(this.#db, this.#options, now, oldest);
    const tracked = run.finally(() => {
      if (this.#collecting === tracked) this.#collecting = undefined;
    });
    this.#collecting = tracked;
    return tracked;
  }
}

/** Whether JSON holds `value` exactly: null, booleans, finite numbers, strings, arrays and plain objects of them. */
function isPlainJson(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (value === null || typeof value === "boolean" || typeof value === "string") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isPlainJson(v, depth + 1));
  if (typeof value !== "object" || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value).every((v) => isPlainJson(v, depth + 1));
}

function duplicateInBatch(t: TupleIdentity): NexusError {
  return new NexusError("invalid_write", `${describeTuple(t)} appears more than once in the write`, {
    tuple: { tenant: t.tenant, object: t.object, relation: t.relation, user: t.user },
  });
}

function randomId(): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
