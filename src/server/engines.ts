/**
 * The engines the server evaluates with: one per model version (an engine is bound to one model), all over the one
 * shared TupleStore, created on first use and kept in a bounded least-recently-used set. An engine is closed when
 * it falls out of the set and no request is using it (requests hold it through `use`), and all of them on close().
 */
import { createEngine, type Engine, type EngineStats } from "../engine/engine.js";
import type { StoredModel } from "../tuples/models.js";
import type { TupleStore } from "../tuples/types.js";

interface Entry {
  readonly modelId: string;
  readonly engine: Promise<Engine>;
  users: number;
  evicted: boolean;
  /**
   * A revision the engine is sure to read at least (a lower bound of its own "known revision": the store's
   * revision before it was created, then its own writes). A default read by the engine sees every write up to it.
   */
  known: number;
}

export interface EngineRegistryOptions {
  readonly store: TupleStore;
  /** Engines kept open at most (more only while requests still use them). Default 64. */
  readonly maxEngines?: number;
}

export class EngineRegistry implements AsyncDisposable {
  readonly #store: TupleStore;
  readonly #max: number;
  /** Insertion order is recency order: a use moves the entry to the end. */
  readonly #entries = new Map<string, Entry>();
  readonly #closing = new Set<Promise<void>>();
  #closed = false;
  /** Engines created since start (for metrics). */
  created = 0;

  constructor(options: EngineRegistryOptions) {
    this.#store = options.store;
    this.#max = options.maxEngines ?? 64;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Runs `fn` with the engine of `model`, creating it if needed; the engine stays open until `fn` settles. */
  async use<T>(model: StoredModel, fn: (engine: Engine) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error("the engine registry is closed");
    let entry = this.#entries.get(model.id);
    if (entry === undefined) {
      const created: Entry = {
        modelId: model.id,
        engine: this.#create(model, (revision) => {
          created.known = revision;
        }),
        users: 0,
        evicted: false,
        known: -1,
      };
      entry = created;
      this.created++;
      // A model that fails to compile is not kept, so the error is not cached forever.
      entry.engine.catch(() => {
        if (this.#entries.get(model.id) === entry) this.#entries.delete(model.id);
      });
    } else {
      this.#entries.delete(model.id);
    }
    this.#entries.set(model.id, entry);
    entry.users++;
    this.#evict();
    try {
      return await fn(await entry.engine);
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) this.#close(entry);
    }
  }

  /** Every open engine's counters (for metrics). */
  async stats(): Promise<EngineStats[]> {
    const out: EngineStats[] = [];
    for (const entry of this.#entries.values()) {
      const engine = await entry.engine.catch(() => undefined);
      if (engine !== undefined && !engine.closed) out.push(engine.stats());
    }
    return out;
  }

  /** Closes every engine (requests still running should be finished first). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const entry of this.#entries.values()) this.#close(entry);
    this.#entries.clear();
    await Promise.allSettled([...this.#closing]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #create(model: StoredModel, known: (revision: number) => void): Promise<Engine> {
    const revision = await this.#store.currentRevision();
    const engine = await createEngine({
      model: JSON.parse(model.source) as object,
      format: "openfga",
      store: this.#store,
    });
    known(revision);
    return engine;
  }

  /** Whether the engine of `modelId` (if open) reads at least `revision` by default. */
  knows(modelId: string, revision: number): boolean {
    const entry = this.#entries.get(modelId);
    return entry !== undefined && entry.known >= revision;
  }

  /** Records a write the engine of `modelId` acknowledged (it reads its own writes by default). */
  wrote(modelId: string, revision: number): void {
    const entry = this.#entries.get(modelId);
    if (entry !== undefined && entry.known >= 0 && revision > entry.known) entry.known = revision;
  }

  /** Drops least recently used entries beyond the bound; those in use close when their last request ends. */
  #evict(): void {
    for (const [id, entry] of this.#entries) {
      if (this.#entries.size <= this.#max) break;
      this.#entries.delete(id);
      entry.evicted = true;
      if (entry.users === 0) this.#close(entry);
    }
  }

  #close(entry: Entry): void {
    const closing = entry.engine.then(
      (engine) => engine.close(),
      () => undefined,
    );
    this.#closing.add(closing);
    const forget = (): void => void this.#closing.delete(closing);
    closing.then(forget, forget);
  }
}
