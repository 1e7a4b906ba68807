/**
 * Where a filesystem's permission tuples live when it creates its own engine: the durable file tuple store
 * (nexus-fast/file-store) in `<dir>/tuples`, so a filesystem reopened on the same `dir` keeps its permissions.
 * One factory, so the choice is made in one place.
 */
import { openFileTupleStore } from "../tuples/file/index.js";
import type { TupleStore } from "../tuples/types.js";

export interface OpenedTupleStore {
  readonly store: TupleStore;
  /** Whether tuples written to it survive a restart of the process. */
  readonly durable: boolean;
}

export async function openTupleStoreIn(dir: string, fsync: boolean): Promise<OpenedTupleStore> {
  return { store: await openFileTupleStore({ dir, fsync: fsync ? "always" : "never" }), durable: true };
}
