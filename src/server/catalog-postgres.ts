/**
 * The server catalog kept in PostgreSQL, beside the PostgreSQL TupleStore's tables: one row of
 * `<schema>.server_catalog` holding the catalog's JSON and a version counted up by every change. Several servers
 * may share it (a cluster): a change locks the row, applies itself to the JSON found there and writes it back in
 * one transaction (`update`), and a server reads the JSON again only when the version moved (`changed`).
 */
import pg from "pg";
import type { CatalogPersistence } from "./catalog.js";

export async function postgresCatalog(
  connectionString: string,
  schema = "nexus",
): Promise<CatalogPersistence> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new TypeError(`not a plain schema name: ${schema}`);
  const pool = new pg.Pool({ connectionString, max: 2 });
  const table = `${schema}.server_catalog`;
  try {
    // Servers starting together (a cluster) would race on CREATE ... IF NOT EXISTS: one at a time, by a lock.
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`nexus-fast catalog ${schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, doc text NOT NULL)`);
      await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0`);
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end();
    throw error;
  }
  /** The version last read or written by this process. */
  let seen = -1;
  const read = async (): Promise<string | undefined> => {
    const result = await pool.query<{ doc: string; version: string }>(
      `SELECT doc, version FROM ${table} WHERE id = 1`,
    );
    const row = result.rows[0];
    if (row === undefined) return undefined;
    seen = Number(row.version);
    // An empty document: the row an update created before its first change was written.
    return row.doc === "" ? undefined : row.doc;
  };
  return {
    load: read,
    async save(text) {
      const result = await pool.query<{ version: string }>(
        `INSERT INTO ${table} (id, doc, version) VALUES (1, $1, 1)
         ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc, version = ${table}.version + 1 RETURNING version`,
        [text],
      );
      seen = Number(result.rows[0]!.version);
    },
    async update(change) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        await client.query(`INSERT INTO ${table} (id, doc) VALUES (1, '') ON CONFLICT (id) DO NOTHING`);
        const found = await client.query<{ doc: string }>(`SELECT doc FROM ${table} WHERE id = 1 FOR UPDATE`);
        const doc = found.rows[0]!.doc;
        const text = change(doc === "" ? undefined : doc);
        const written = await client.query<{ version: string }>(
          `UPDATE ${table} SET doc = $1, version = version + 1 WHERE id = 1 RETURNING version`,
          [text],
        );
        await client.query("COMMIT");
        seen = Number(written.rows[0]!.version);
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async changed() {
      const result = await pool.query<{ version: string }>(`SELECT version FROM ${table} WHERE id = 1`);
      const version = result.rows[0] === undefined ? -1 : Number(result.rows[0].version);
      return version === seen ? undefined : read();
    },
    close: () => pool.end(),
  };
}
