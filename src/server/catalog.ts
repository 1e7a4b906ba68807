/**
 * The server's catalog: what OpenFGA keeps beside tuples and models — each store's name and its created / updated /
 * deleted times, and the assertions written for a model. Tuples and model versions live in the TupleStore (a store
 * is a tenant there); this is the small rest.
 *
 * Held in memory and, when persisted, written whole after every change, one write at a time in the order the
 * changes were made; a change is acknowledged only once it is written. In a file the write is atomic (temp file,
 * fsync, rename, fsync of the directory), so a crash leaves either the old catalog or the new one; in PostgreSQL
 * (catalog-postgres.ts) it is one row, which several servers may share: a change is then made under that row's
 * lock on the latest saved catalog (`update`), and `refresh()` reads what other servers changed.
 */
import { open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { monotonicFactory } from "ulid";
import { NexusError } from "../util/errors.js";

export interface StoreRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  /** Set once the store is deleted; a deleted store is answered as not found. */
  readonly deletedAtMs?: number;
}

/** An assertion as OpenFGA keeps it (the request's JSON, validated). */
export type AssertionRecord = Readonly<Record<string, unknown>>;

interface CatalogFile {
  readonly version: 1;
  readonly stores: StoreRecord[];
  /** `${storeId}/${modelId}` -> assertions. */
  readonly assertions: Record<string, AssertionRecord[]>;
}

/** Where a catalog is kept: its whole text, read once at open and replaced after every change. */
export interface CatalogPersistence {
  /** The saved text, or undefined when nothing was saved yet. */
  load(): Promise<string | undefined>;
  save(text: string): Promise<void>;
  close(): Promise<void>;
  /**
   * Shared persistence (several servers, one catalog): runs `change` on the latest saved text under a lock that
   * serialises changes across processes, and saves what it returns.
   */
  update?(change: (saved: string | undefined) => string): Promise<void>;
  /** Shared persistence: the saved text when another process changed it since this one last read or wrote it. */
  changed?(): Promise<string | undefined>;
}

export interface CatalogOptions {
  /** Where the catalog is kept (absent: memory only). */
  readonly persistence?: CatalogPersistence;
  readonly clock?: () => number;
}

export class Catalog {
  readonly #stores = new Map<string, StoreRecord>();
  readonly #assertions = new Map<string, AssertionRecord[]>();
  readonly #persistence: CatalogPersistence | undefined;
  readonly #clock: () => number;
  readonly #nextId = monotonicFactory();
  /** The last save (or refresh) in flight; each starts after the previous one. */
  #saving: Promise<void> = Promise.resolve();
  /** A refresh waiting for the saves before it. */
  #queuedRefresh: Promise<void> | undefined;

  private constructor(options: CatalogOptions) {
    this.#persistence = options.persistence;
    this.#clock = options.clock ?? Date.now;
  }

  /** Opens a catalog, reading what was saved. @throws NexusError "corrupt" when the saved text is not a catalog. */
  static async open(options: CatalogOptions = {}): Promise<Catalog> {
    const catalog = new Catalog(options);
    const text = await options.persistence?.load();
    if (text !== undefined) catalog.#replace(text);
    return catalog;
  }

  /**
   * Reads what other servers sharing the persistence changed (nothing to do for a catalog of its own). Runs after
   * this process's changes in flight — a read overlapping one could bring back the catalog from before it — and
   * callers arriving while one waits to start share it.
   */
  refresh(): Promise<void> {
    const changed = this.#persistence?.changed?.bind(this.#persistence);
    if (changed === undefined) return Promise.resolve();
    if (this.#queuedRefresh !== undefined) return this.#queuedRefresh;
    const run = this.#saving
      .catch(() => undefined)
      .then(async () => {
        this.#queuedRefresh = undefined;
        const text = await changed();
        if (text !== undefined) this.#replace(text);
      });
    this.#queuedRefresh = run;
    this.#saving = run.catch(() => undefined);
    return run;
  }

  async createStore(name: string): Promise<StoreRecord> {
    return this.#change(() => {
      const now = this.#clock();
      const record: StoreRecord = { id: this.#nextId(now), name, createdAtMs: now, updatedAtMs: now };
      this.#stores.set(record.id, record);
      return record;
    });
  }

  /** A live (not deleted) store, or undefined. */
  getStore(id: string): StoreRecord | undefined {
    const record = this.#stores.get(id);
    return record === undefined || record.deletedAtMs !== undefined ? undefined : record;
  }

  /** Live stores in id (creation) order after `after`, optionally only those named `name`. */
  listStores(options: { after?: string; limit: number; name?: string }): StoreRecord[] {
    const out: StoreRecord[] = [];
    const ids = [...this.#stores.keys()].sort();
    for (const id of ids) {
      if (options.after !== undefined && id <= options.after) continue;
      const record = this.#stores.get(id)!;
      if (record.deletedAtMs !== undefined) continue;
      if (options.name !== undefined && record.name !== options.name) continue;
      out.push(record);
      if (out.length === options.limit) break;
    }
    return out;
  }

  /** Marks a store deleted. Returns false when it was not a live store. */
  async deleteStore(id: string): Promise<boolean> {
    if (this.#persistence?.update === undefined && this.getStore(id) === undefined) return false;
    return this.#change(() => {
      const record = this.getStore(id);
      if (record === undefined) return false;
      const now = this.#clock();
      this.#stores.set(id, { ...record, updatedAtMs: now, deletedAtMs: now });
      for (const key of [...this.#assertions.keys()])
        if (key.startsWith(`${id}/`)) this.#assertions.delete(key);
      return true;
    });
  }

  async setAssertions(storeId: string, modelId: string, assertions: AssertionRecord[]): Promise<void> {
    await this.#change(() => {
      this.#assertions.set(`${storeId}/${modelId}`, assertions);
    });
  }

  getAssertions(storeId: string, modelId: string): AssertionRecord[] {
    return this.#assertions.get(`${storeId}/${modelId}`) ?? [];
  }

  /** Resolves once every change made so far is saved. */
  async flush(): Promise<void> {
    await this.#saving.catch(() => undefined);
  }

  /** Waits for pending saves, then releases the persistence. */
  async close(): Promise<void> {
    await this.flush();
    await this.#persistence?.close();
  }

  /**
   * Applies a change and saves. On shared persistence the change is applied to the latest saved catalog under its
   * lock, so changes made by several servers never overwrite each other; otherwise it is applied at once and the
   * whole catalog saved after the saves before it.
   */
  #change<T>(apply: () => T): Promise<T> {
    const persistence = this.#persistence;
    if (persistence === undefined) return Promise.resolve(apply());
    const update = persistence.update?.bind(persistence);
    let result: T;
    let next: Promise<void>;
    if (update !== undefined) {
      next = this.#saving
        .catch(() => undefined)
        .then(() =>
          update((saved) => {
            if (saved !== undefined) this.#replace(saved);
            result = apply();
            return this.#text();
          }),
        );
    } else {
      result = apply();
      const text = this.#text();
      next = this.#saving.catch(() => undefined).then(() => persistence.save(text));
    }
    this.#saving = next;
    return next.then(() => result);
  }

  #text(): string {
    const data: CatalogFile = {
      version: 1,
      stores: [...this.#stores.values()],
      assertions: Object.fromEntries(this.#assertions),
    };
    return JSON.stringify(data);
  }

  /** Replaces the catalog held with a saved one. @throws NexusError "corrupt" when the text is not a catalog. */
  #replace(text: string): void {
    let data: CatalogFile;
    try {
      data = JSON.parse(text) as CatalogFile;
      if (data.version !== 1 || !Array.isArray(data.stores)) throw new Error("not a catalog");
    } catch (error) {
      throw new NexusError("corrupt", `the saved server catalog is unreadable: ${(error as Error).message}`);
    }
    this.#stores.clear();
    this.#assertions.clear();
    for (const store of data.stores) this.#stores.set(store.id, store);
    for (const [key, list] of Object.entries(data.assertions ?? {})) this.#assertions.set(key, list);
  }
}

/** A catalog kept in `file`. */
export function fileCatalog(file: string): CatalogPersistence {
  return {
    async load() {
      try {
        return await readFile(file, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
    },
    save: (text) => writeAtomically(file, text),
    async close() {},
  };
}

/** Replaces `file` with `text` so that a crash leaves the old content or the new, never a mix. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp`;
  const handle = await open(temp, "w");
  try {
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  const dir = await open(dirname(file), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
