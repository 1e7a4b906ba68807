/**
 * The server catalog kept in PostgreSQL, beside the PostgreSQL TupleStore's tables: one row of
 * `<schema>.server_catalog` holding the catalog's JSON, replaced in one statement per change.
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
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, doc text NOT NULL)`);
  } catch (error) {
    await pool.end();
    throw error;
  }
  return {
    async load() {
      const result = await pool.query<{ doc: string }>(`SELECT doc FROM ${table} WHERE id = 1`);
      return result.rows[0]?.doc;
    },
    async save(text) {
      await pool.query(
        `INSERT INTO ${table} (id, doc) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc`,
        [text],
      );
    },
    close: () => pool.end(),
  };
}
