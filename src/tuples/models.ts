/**
 * Authorization model versions kept beside a store's tuples. A version is immutable once written: it has a ULID
 * id (so ids sort by creation time, which is what OpenFGA's clients expect), the time it was written and the model
 * source exactly as given. Compiling the source is the caller's job; a store only keeps it.
 *
 * Every TupleStore that persists tuples persists its model versions with them (the file and PostgreSQL stores);
 * the in-memory store keeps them in memory (`MemoryModelVersions`).
 */
import { monotonicFactory } from "ulid";
import { describe, NexusError } from "../util/errors.js";

export interface StoredModel {
  /** The tenant the version belongs to (an OpenFGA store served by `nexus-fast serve` is a tenant). */
  readonly tenant: string;
  /** A ULID, unique within the store, increasing with creation time. */
  readonly id: string;
  /** Epoch milliseconds when the version was written. */
  readonly createdAtMs: number;
  /** The model as given: OpenFGA DSL or JSON text, a SpiceDB schema, Nexus configs as JSON. */
  readonly source: string;
  /** The language the caller named ("openfga", "spicedb", "nexus"), if it named one. */
  readonly format?: string;
}

export interface ModelListOptions {
  /** At most this many versions (default: all). */
  readonly limit?: number;
  /** Only versions older than this id (the last id of the previous page). */
  readonly before?: string;
}

export interface NewModel {
  readonly tenant: string;
  readonly source: string;
  readonly format?: string;
}

/** Each tenant has its own sequence of versions; ids are unique across the whole store. */
export interface ModelVersions {
  /** Appends a new immutable version for `model.tenant` and returns it. */
  add(model: NewModel): Promise<StoredModel>;
  /** The tenant's version with this id, or undefined. */
  get(tenant: string, id: string): Promise<StoredModel | undefined>;
  /** The tenant's versions, newest first. */
  list(tenant: string, options?: ModelListOptions): Promise<StoredModel[]>;
  /** The tenant's newest version, or undefined when none was written. */
  latest(tenant: string): Promise<StoredModel | undefined>;
}

/** A ULID generator that never goes backwards within this process, even when the clock does. */
export function modelIdFactory(): (timeMs: number) => string {
  const next = monotonicFactory();
  return (timeMs) => next(timeMs);
}

/** Checks an add() argument; shared by every implementation so they reject the same inputs. */
export function checkModelSource(model: unknown): NewModel {
  const m = model as { tenant?: unknown; source?: unknown; format?: unknown } | null;
  if (typeof m !== "object" || m === null || typeof m.tenant !== "string" || m.tenant.length === 0) {
    throw new NexusError("invalid_argument", `a model version needs a tenant, got ${describe(model)}`);
  }
  if (typeof m !== "object" || m === null || typeof m.source !== "string" || m.source.length === 0) {
    throw new NexusError(
      "invalid_argument",
      `a model version needs a non-empty source string, got ${describe(model)}`,
    );
  }
  if (m.format !== undefined && typeof m.format !== "string") {
    throw new NexusError(
      "invalid_argument",
      `a model version's format must be a string, got ${describe(m.format)}`,
    );
  }
  return m.format === undefined
    ? { tenant: m.tenant, source: m.source }
    : { tenant: m.tenant, source: m.source, format: m.format };
}

/** Lists `versions` (oldest first, as stored) newest first with `options` applied. */
export function pageModels(versions: readonly StoredModel[], options: ModelListOptions = {}): StoredModel[] {
  let end = versions.length;
  if (options.before !== undefined) {
    const before = options.before;
    // Ids increase with position, so the page starts below the first id not older than `before`.
    let lo = 0;
    let hi = versions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((versions[mid] as StoredModel).id < before) lo = mid + 1;
      else hi = mid;
    }
    end = lo;
  }
  const limit = options.limit ?? end;
  const out: StoredModel[] = [];
  for (let i = end - 1; i >= 0 && out.length < limit; i--) out.push(versions[i] as StoredModel);
  return out;
}

/**
 * The read side every implementation shares: versions indexed per tenant and by id, in the order they were
 * inserted (which is id order). Subclasses decide how `add` mints and keeps a version, then `insert` it.
 */
export abstract class IndexedModelVersions implements ModelVersions {
  /** Per tenant, oldest first. */
  readonly #versions = new Map<string, StoredModel[]>();
  readonly #byId = new Map<string, StoredModel>();
  /** Every version, in id order. */
  readonly #all: StoredModel[] = [];

  abstract add(model: NewModel): Promise<StoredModel>;

  /** Indexes a version that is kept already (in memory, persisted, or read back from disk). */
  insert(stored: StoredModel): void {
    const versions = this.#versions.get(stored.tenant);
    if (versions === undefined) this.#versions.set(stored.tenant, [stored]);
    else versions.push(stored);
    this.#byId.set(stored.id, stored);
    this.#all.push(stored);
  }

  /** Every version, oldest first. */
  all(): readonly StoredModel[] {
    return this.#all;
  }

  async get(tenant: string, id: string): Promise<StoredModel | undefined> {
    const stored = this.#byId.get(id);
    return stored?.tenant === tenant ? stored : undefined;
  }

  async list(tenant: string, options?: ModelListOptions): Promise<StoredModel[]> {
    return pageModels(this.#versions.get(tenant) ?? [], options);
  }

  async latest(tenant: string): Promise<StoredModel | undefined> {
    const versions = this.#versions.get(tenant);
    return versions?.[versions.length - 1];
  }
}

/** Model versions held in memory, for the in-memory store. */
export class MemoryModelVersions extends IndexedModelVersions {
  readonly #clock: () => number;
  readonly #nextId = modelIdFactory();

  constructor(clock: () => number = Date.now) {
    super();
    this.#clock = clock;
  }

  async add(model: NewModel): Promise<StoredModel> {
    const { tenant, source, format } = checkModelSource(model);
    const createdAtMs = this.#clock();
    const stored: StoredModel = {
      tenant,
      id: this.#nextId(createdAtMs),
      createdAtMs,
      source,
      ...(format === undefined ? {} : { format }),
    };
    this.insert(stored);
    return stored;
  }
}
