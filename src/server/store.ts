/**
 * The one TupleStore a server runs on, and where its catalog is kept, chosen by the options: a data directory
 * (the durable file tuple store, every acknowledged write fsynced, the catalog file beside it), a PostgreSQL URL
 * (the PostgreSQL TupleStore, the catalog in a table beside its tables), or memory (nothing survives a restart).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { openPostgresTupleStore } from "../postgres/index.js";
import { openFileTupleStore } from "../tuples/file/index.js";
import { MemoryTupleStore } from "../tuples/memory.js";
import type { TupleStore } from "../tuples/types.js";
import { type CatalogPersistence, fileCatalog } from "./catalog.js";
import { postgresCatalog } from "./catalog-postgres.js";

export interface ServerStoreOptions {
  /** A data directory: tuples and model versions in `DIR/tuples`, the catalog in `DIR/catalog.json`. */
  readonly data?: string;
  /** A PostgreSQL connection string. */
  readonly postgres?: string;
  /** The PostgreSQL schema (default "nexus"). */
  readonly postgresSchema?: string;
}

export interface OpenedServerStore {
  readonly store: TupleStore;
  /** Where the catalog is kept (undefined: in memory). */
  readonly catalog: CatalogPersistence | undefined;
}

export async function openServerStore(options: ServerStoreOptions): Promise<OpenedServerStore> {
  if (options.data !== undefined && options.postgres !== undefined) {
    throw new TypeError("give a data directory or a PostgreSQL URL, not both");
  }
  if (options.postgres !== undefined) {
    const schema = options.postgresSchema ?? "nexus";
    const store = await openPostgresTupleStore({ connectionString: options.postgres, schema });
    try {
      return { store, catalog: await postgresCatalog(options.postgres, schema) };
    } catch (error) {
      await store.close();
      throw error;
    }
  }
  if (options.data === undefined) return { store: new MemoryTupleStore(), catalog: undefined };
  await mkdir(options.data, { recursive: true });
  const store = await openFileTupleStore({ dir: join(options.data, "tuples"), fsync: "always" });
  return { store, catalog: fileCatalog(join(options.data, "catalog.json")) };
}
