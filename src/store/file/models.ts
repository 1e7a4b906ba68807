/**
 * Model versions of a file tuple store: kept in memory for reads, each new version written to the store's log
 * (as its own record kind) before add() resolves, restored from checkpoints and the log on open.
 *
 * Ids stay increasing across restarts even when the clock went back: a new id is never at or below the newest
 * id the store holds.
 */
import { decodeTime } from "ulid";
import {
  checkModelSource,
  type ModelListOptions,
  type ModelVersions,
  modelIdFactory,
  type NewModel,
  pageModels,
  type StoredModel,
} from "../models.js";

/** Runs `mint` in the store's write order, makes its version durable, and gives it back. */
export type PersistModel = (mint: () => StoredModel) => Promise<StoredModel>;

export class LoggedModelVersions implements ModelVersions {
  /** Per tenant, oldest first. */
  readonly #versions = new Map<string, StoredModel[]>();
  readonly #byId = new Map<string, StoredModel>();
  /** Every version, in id order (what a checkpoint keeps). */
  readonly #all: StoredModel[] = [];
  readonly #clock: () => number;
  readonly #persist: PersistModel;
  readonly #nextId = modelIdFactory();

  constructor(clock: () => number, persist: PersistModel) {
    this.#clock = clock;
    this.#persist = persist;
  }

  async add(model: NewModel): Promise<StoredModel> {
    const { tenant, source, format } = checkModelSource(model);
    return this.#persist(() => {
      const createdAtMs = this.#clock();
      const newest = this.#all[this.#all.length - 1]?.id;
      const floor = newest === undefined ? 0 : decodeTime(newest);
      let id = this.#nextId(Math.max(createdAtMs, floor));
      if (newest !== undefined && id <= newest) id = this.#nextId(floor + 1);
      return { tenant, id, createdAtMs, source, ...(format === undefined ? {} : { format }) };
    });
  }

  /** Adds a version that is durable already (persisted, or read back from disk). */
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
