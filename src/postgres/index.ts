/**
 * `nexus-fast/postgres` (Node): a TupleStore in PostgreSQL that many processes share. Give it to engines as
 * `createEngine({ model, store })`; each engine keeps its in-memory graph and caches, loaded from the database and
 * advanced from the changelog.
 */
export type { ChangeCode } from "./changelog.js";
export type { CollectionReport } from "./collector.js";
export {
  DEFAULT_PARTITIONS,
  POOL_DEFAULTS,
  type PostgresPoolOptions,
  type PostgresStoreOptions,
} from "./config.js";
export type { PostgresHealth } from "./database.js";
export { LATEST_VERSION as SCHEMA_VERSION } from "./migrations.js";
export { PostgresModelVersions } from "./models.js";
export { openPostgresTupleStore, PostgresTupleStore } from "./store.js";
export * from "./views.js";
