/**
 * Shared by the PostgreSQL tests: the server to use (NEXUS_PG_URL, default the local `test` database with trust
 * auth, which `.ci/run` starts), and fresh schemas — every test file works in schemas of its own, dropped after.
 */
import pg from "pg";

export const PG_URL = process.env.NEXUS_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other test run uses. */
export function freshSchema(label: string): string {
  return `nxt_${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Runs SQL on a connection of its own (for checks and clean-up outside the store). */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}
