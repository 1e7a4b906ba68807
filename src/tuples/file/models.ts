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
  IndexedModelVersions,
  modelIdFactory,
  type NewModel,
  type StoredModel,
} from "../models.js";

/** Runs `mint` in the store's write order, makes its version durable, and gives it back. */
export type PersistModel = (mint: () => StoredModel) => Promise<StoredModel>;

export class LoggedModelVersions extends IndexedModelVersions {
  readonly #clock: () => number;
  readonly #persist: PersistModel;
  readonly #nextId = modelIdFactory();

  constructor(clock: () => number, persist: PersistModel) {
    super();
    this.#clock = clock;
    this.#persist = persist;
  }

  async add(model: NewModel): Promise<StoredModel> {
    const { tenant, source, format } = checkModelSource(model);
    return this.#persist(() => {
      const createdAtMs = this.#clock();
      const all = this.all();
      const newest = all[all.length - 1]?.id;
      const floor = newest === undefined ? 0 : decodeTime(newest);
      let id = this.#nextId(Math.max(createdAtMs, floor));
      if (newest !== undefined && id <= newest) id = this.#nextId(floor + 1);
      return { tenant, id, createdAtMs, source, ...(format === undefined ? {} : { format }) };
    });
  }
}
