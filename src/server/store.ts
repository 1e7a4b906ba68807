/**
 * The one TupleStore a server runs on, chosen by its options: a data directory (the durable file tuple store, every
 * acknowledged write fsynced, with the catalog file beside it) or memory (nothing survives a restart).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { openFileTupleStore } from "../store/file/index.js";
import { MemoryTupleStore } from "../store/memory.js";
import type { TupleStore } from "../store/types.js";

export interface ServerStoreOptions {
  /** A data directory: tuples and model versions in `DIR/tuples`, the catalog in `DIR/catalog.json`. */
  readonly data?: string;
}

export interface OpenedServerStore {
  readonly store: TupleStore;
  /** Where the catalog is kept (undefined: in memory). */
  readonly catalogFile: string | undefined;
}

export async function openServerStore(options: ServerStoreOptions): Promise<OpenedServerStore> {
  if (options.data === undefined) return { store: new MemoryTupleStore(), catalogFile: undefined };
  await mkdir(options.data, { recursive: true });
  const store = await openFileTupleStore({ dir: join(options.data, "tuples"), fsync: "always" });
  return { store, catalogFile: join(options.data, "catalog.json") };
}
