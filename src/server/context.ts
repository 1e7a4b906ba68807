/**
 * What every route needs: the shared TupleStore (an OpenFGA store is a tenant in it, named by the store's ULID),
 * its model versions, the catalog (store names, assertions), the engines per model version, the limits, and the
 * per-store floor that gives requests without a consistency preference read-your-writes.
 */
import { ChangeFeed } from "../changes/feed.js";
import type { Consistency } from "../request/consistency.js";
import type { ModelVersions, StoredModel } from "../tuples/models.js";
import { encodeToken } from "../tuples/token.js";
import type { Revision, TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import type { Catalog, StoreRecord } from "./catalog.js";
import type { EngineRegistry } from "./engines.js";
import { ApiError, modelNotFound, storeNotFound } from "./errors.js";
import { consistencyIn, optionalString, ulidParam } from "./json.js";

export interface ServerLimits {
  /** Largest request body in bytes (default 1 MiB). */
  readonly bodyBytes: number;
  /** Longest a request may take, receiving and answering (default 10 000 ms; streams are not bounded). */
  readonly requestTimeoutMs: number;
  /** Checks in one batch-check request (default 10 000; OpenFGA caps it at 50). */
  readonly maxChecksPerBatch: number;
  /** Objects one list-objects answer may hold without paging (default 10 000; more is an explicit error). */
  readonly maxListObjects: number;
  /** Tuples written plus deleted in one write (default 100, OpenFGA's). */
  readonly maxTuplesPerWrite: number;
  /** Tuples one delete-by-filter may remove (default 10 000; more is an explicit error, nothing deleted). */
  readonly maxDeleteByFilter: number;
  /** Engines (model versions) kept open (default 64). */
  readonly maxEngines: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  bodyBytes: 1 << 20,
  requestTimeoutMs: 10_000,
  maxChecksPerBatch: 10_000,
  maxListObjects: 10_000,
  maxTuplesPerWrite: 100,
  maxDeleteByFilter: 10_000,
  maxEngines: 64,
};

interface Floor {
  readonly revision: Revision;
  readonly token: string;
}

/** How long requests starting together share one deadline timer. */
const DEADLINE_SLICE_MS = 50;

/**
 * Deadline signals: requests that start within the same 50 ms share one AbortSignal, aborted between the time
 * limit and 50 ms after it — one timer per slice instead of one per request (a signal of its own cost a check
 * several microseconds).
 */
export class Deadlines {
  readonly ms: number;
  #current: { readonly signal: AbortSignal; readonly until: number } | undefined;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(ms: number) {
    this.ms = ms;
  }

  signal(): AbortSignal {
    const now = performance.now();
    if (this.#current === undefined || now >= this.#current.until) {
      const controller = new AbortController();
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        controller.abort();
      }, this.ms + DEADLINE_SLICE_MS);
      this.#timers.add(timer);
      this.#current = { signal: controller.signal, until: now + DEADLINE_SLICE_MS };
    }
    return this.#current.signal;
  }

  /** Clears every timer (the server is closed). */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#current = undefined;
  }
}

export class ServerContext {
  readonly store: TupleStore;
  readonly models: ModelVersions;
  readonly catalog: Catalog;
  readonly engines: EngineRegistry;
  readonly limits: ServerLimits;
  /** Aborts when the server starts closing: long-lived streams end on it. */
  readonly closing = new AbortController();
  /** Per store: its last write through this server (the read-your-writes floor of its reads). */
  readonly #floors = new Map<string, Floor>();
  /** The revision when the server opened: the floor of stores not written since. */
  readonly #openFloor: Floor;
  /** Request deadlines (one timer per slice of time, shared by the requests that start in it). */
  readonly deadlines: Deadlines;
  /** Model versions are immutable: cached by id. */
  readonly #modelsById = new Map<string, StoredModel>();
  /** Per store, its newest model (every model is written through this server, which updates it). */
  readonly #latest = new Map<string, StoredModel>();
  /** Counts model writes and forgets: a latest-model lookup that overlapped one may have read an older model. */
  #modelChanges = 0;
  /** Revision -> commit time, found by bisecting store.revisionAt (commit times never change). */
  readonly #commitTimes = new Map<Revision, number>();
  /** The one change feed every watch stream of this server follows (opened at the first watch). */
  #feed: Promise<ChangeFeed> | undefined;

  constructor(
    parts: { store: TupleStore; catalog: Catalog; engines: EngineRegistry; limits: ServerLimits },
    openRevision: Revision,
  ) {
    this.store = parts.store;
    if (parts.store.models === undefined)
      throw new NexusError("invalid_argument", "the server's store must keep model versions");
    this.models = parts.store.models;
    this.catalog = parts.catalog;
    this.engines = parts.engines;
    this.limits = parts.limits;
    this.#openFloor = { revision: openRevision, token: encodeToken(parts.store.id, openRevision) };
    this.deadlines = new Deadlines(parts.limits.requestTimeoutMs);
  }

  /** The change feed watch streams follow: one per server, not one per stream. Closed by closeFeed(). */
  changeFeed(): Promise<ChangeFeed> {
    if (this.#feed === undefined) {
      const opening = ChangeFeed.open(this.store);
      this.#feed = opening;
      // A failed open is retried by the next watch.
      opening.catch(() => {
        if (this.#feed === opening) this.#feed = undefined;
      });
    }
    return this.#feed;
  }

  /** Stops the watch streams' change feed, if one was opened (the server is closing). */
  async closeFeed(): Promise<void> {
    const feed = await this.#feed?.catch(() => undefined);
    this.#feed = undefined;
    await feed?.close();
  }

  /** The live store with this id. @throws 400 for a malformed id, 404 for an unknown or deleted store. */
  storeOf(id: unknown): StoreRecord {
    const storeId = ulidParam(id, "store_id");
    const record = this.catalog.getStore(storeId);
    if (record === undefined) throw storeNotFound(storeId);
    return record;
  }

  /**
   * The model a request names (`authorization_model_id`), or the store's newest.
   * @throws 404 authorization_model_not_found; 400 latest_authorization_model_not_found when the store has none.
   */
  async modelOf(storeId: string, modelId: unknown): Promise<StoredModel> {
    const id = optionalString(modelId, "authorization_model_id");
    if (id !== undefined) {
      ulidParam(id, "authorization_model_id");
      let model = this.#modelsById.get(id);
      if (model === undefined) {
        model = await this.models.get(storeId, id);
        if (model !== undefined) this.#modelsById.set(id, model);
      }
      if (model === undefined || model.tenant !== storeId) throw modelNotFound(id);
      return model;
    }
    let latest = this.#latest.get(storeId);
    if (latest === undefined) {
      const changes = this.#modelChanges;
      latest = await this.models.latest(storeId);
      if (latest === undefined) {
        throw new ApiError(
          400,
          "latest_authorization_model_not_found",
          `store ${storeId} has no authorization model; write one first`,
        );
      }
      // A model written (or a peer's write forgotten) while the store was asked may be newer than its answer.
      if (this.#modelChanges === changes) this.#latest.set(storeId, latest);
    }
    return latest;
  }

  /** Records a model just written, so it is the store's latest. */
  modelWritten(model: StoredModel): void {
    this.#modelChanges++;
    this.#modelsById.set(model.id, model);
    this.#latest.set(model.tenant, model);
  }

  /**
   * Records a write acknowledged for a store: its read-your-writes floor. `modelId` names the engine that wrote it
   * (which reads its own writes by default); absent when the server wrote to the store directly.
   */
  wrote(storeId: string, revision: number, modelId?: string): void {
    const floor = this.#floors.get(storeId);
    if (floor === undefined || revision > floor.revision) {
      this.#floors.set(storeId, { revision, token: encodeToken(this.store.id, revision) });
    }
    if (modelId !== undefined) this.engines.wrote(modelId, revision);
  }

  /**
   * The engine consistency for a request's `consistency` field (json.ts consistencyIn) on the engine of `modelId`.
   * Without a preference the read must see the store's last write: the engine's own default does when it knows
   * that revision (it wrote it, or was created after it), else the write's token is passed.
   */
  consistency(storeId: string, value: unknown, modelId: string): Consistency | undefined {
    const floor = this.#floors.get(storeId) ?? this.#openFloor;
    return consistencyIn(value, this.engines.knows(modelId, floor.revision) ? undefined : floor.token);
  }

  /** Forgets a store's floor and latest model (the store was deleted, or changed by another cluster member). */
  forget(storeId: string): void {
    this.#modelChanges++;
    this.#floors.delete(storeId);
    this.#latest.delete(storeId);
  }

  /** When `revision` was committed (epoch ms): the first instant at which revisionAt reaches it. */
  async commitTime(revision: Revision): Promise<number> {
    const known = this.#commitTimes.get(revision);
    if (known !== undefined) return known;
    let lo = 0;
    let hi = Date.now() + 60_000;
    if ((await this.store.revisionAt(hi)) < revision) return Date.now();
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await this.store.revisionAt(mid)) >= revision) hi = mid;
      else lo = mid + 1;
    }
    if (this.#commitTimes.size >= 10_000) this.#commitTimes.clear();
    this.#commitTimes.set(revision, lo);
    return lo;
  }
}
