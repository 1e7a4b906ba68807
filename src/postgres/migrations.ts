/**
 * The store's tables, created and upgraded by versioned migrations. `schema_version` lists the versions applied;
 * opening a store applies the missing ones in order, in one transaction, under an advisory lock keyed on the
 * schema name, so two processes opening at once do not both migrate (the second waits, then finds nothing to do).
 * A schema newer than this library knows is refused rather than written with old rules.
 *
 * Tables (all in the store's schema):
 * - `store_meta`: one row: the store id (tokens carry it), the partition count, and the revision counter. Writers
 *   lock this row for the length of their transaction (`UPDATE ... SET revision = revision + 1`), so revisions are
 *   gap-free and commit in order: revision n+1 cannot commit before n has.
 * - `retention`: one row the garbage collector owns: the changelog floor and the tuple-version horizon.
 * - `tuples`: every tuple version, `PARTITION BY HASH (tenant)`. A version is visible at revision r when
 *   `created_rev <= r` and (`deleted_rev` is null or `> r`) — the memory store's MVCC, in columns.
 * - `changelog`: one row per change (revision, position in the revision, op, the tuple), `PARTITION BY HASH
 *   (tenant)`.
 * - `commits`: (revision, commit time, changes so far), for revisionAt and the changelog's size.
 * - `models`: authorization model versions (ULID ids).
 *
 * Indexes, checked with EXPLAIN (bench/postgres.bench.ts prints the plans; README gives the row counts):
 * - `tuples (tenant, object_type, relation, object_id)`: by-object reads (all four equal) and by-type-relation
 *   reads (the first three), one index for both; the partition is chosen by `tenant`.
 * - `tuples (subject_tenant, "user", object_type, relation)`: by-subject reads, one probe per partition.
 * - unique `(tenant, object_type, relation, object_id, subject_tenant, "user") WHERE deleted_rev IS NULL`: at most
 *   one live version of a tuple, and the writer's existence checks.
 * - partial `(expires_at_ms) WHERE deleted_rev IS NULL AND expires_at_ms IS NOT NULL`: expired tuples to remove.
 * - partial `(deleted_rev) WHERE deleted_rev IS NOT NULL`: versions the collector may drop.
 * - `changelog (revision, seq)`: changesAfter pages (a merge of the partitions' index scans) and trimming.
 */
import type pg from "pg";
import { NexusError } from "../util/errors.js";

export interface MigrationContext {
  /** The schema, already checked to be a plain lower-case identifier. */
  readonly schema: string;
  readonly partitions: number;
  /** The new store's id (used only when the schema is created). */
  readonly storeId: string;
}

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly statements: (context: MigrationContext) => string[];
}

/** Tuple columns shared by `tuples` and `changelog`. */
const TUPLE_COLUMNS = `
  tenant text NOT NULL,
  object_type text NOT NULL,
  object_id text NOT NULL,
  relation text NOT NULL,
  subject_tenant text NOT NULL,
  "user" text NOT NULL,
  condition_name text,
  condition_context json,
  expires_at_ms bigint`;

function partitionsOf(table: string, { schema, partitions }: MigrationContext): string[] {
  return Array.from(
    { length: partitions },
    (_, i) =>
      `CREATE TABLE ${schema}.${table}_p${i} PARTITION OF ${schema}.${table} FOR VALUES WITH (MODULUS ${partitions}, REMAINDER ${i})`,
  );
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "tuples and changelog partitioned by tenant, revision counter, commits, model versions",
    statements: (c) => {
      const s = c.schema;
      return [
        `CREATE TABLE ${s}.store_meta (
          id boolean PRIMARY KEY DEFAULT true CHECK (id),
          store_id text NOT NULL,
          partitions integer NOT NULL,
          revision bigint NOT NULL DEFAULT 0,
          committed_at_ms bigint NOT NULL DEFAULT 0,
          changes_total bigint NOT NULL DEFAULT 0
        )`,
        `INSERT INTO ${s}.store_meta (store_id, partitions) VALUES ('${c.storeId}', ${c.partitions})`,
        `CREATE TABLE ${s}.retention (
          id boolean PRIMARY KEY DEFAULT true CHECK (id),
          changelog_floor bigint NOT NULL DEFAULT 0,
          changelog_floor_total bigint NOT NULL DEFAULT 0,
          version_horizon bigint NOT NULL DEFAULT 0
        )`,
        `INSERT INTO ${s}.retention DEFAULT VALUES`,
        `CREATE TABLE ${s}.tuples (${TUPLE_COLUMNS},
          created_rev bigint NOT NULL,
          deleted_rev bigint
        ) PARTITION BY HASH (tenant)`,
        ...partitionsOf("tuples", c),
        `CREATE INDEX tuples_by_object ON ${s}.tuples (tenant, object_type, relation, object_id)`,
        `CREATE INDEX tuples_by_subject ON ${s}.tuples (subject_tenant, "user", object_type, relation)`,
        `CREATE UNIQUE INDEX tuples_live ON ${s}.tuples
          (tenant, object_type, relation, object_id, subject_tenant, "user") WHERE deleted_rev IS NULL`,
        `CREATE INDEX tuples_expiring ON ${s}.tuples (expires_at_ms)
          WHERE deleted_rev IS NULL AND expires_at_ms IS NOT NULL`,
        `CREATE INDEX tuples_deleted ON ${s}.tuples (deleted_rev) WHERE deleted_rev IS NOT NULL`,
        `CREATE TABLE ${s}.changelog (
          revision bigint NOT NULL,
          seq integer NOT NULL,
          op "char" NOT NULL CHECK (op IN ('w', 'd', 'x')),${TUPLE_COLUMNS}
        ) PARTITION BY HASH (tenant)`,
        ...partitionsOf("changelog", c),
        `CREATE INDEX changelog_by_revision ON ${s}.changelog (revision, seq)`,
        `CREATE TABLE ${s}.commits (
          revision bigint PRIMARY KEY,
          committed_at_ms bigint NOT NULL,
          changes_total bigint NOT NULL
        )`,
        `CREATE INDEX commits_by_time ON ${s}.commits (committed_at_ms, revision)`,
        `CREATE INDEX commits_by_total ON ${s}.commits (changes_total)`,
        `CREATE TABLE ${s}.models (
          id text PRIMARY KEY,
          tenant text NOT NULL,
          created_at_ms bigint NOT NULL,
          source text NOT NULL,
          format text
        )`,
        `CREATE INDEX models_by_tenant ON ${s}.models (tenant, id)`,
        // Statistics for the one-row tables, so plans joining them do not assume a thousand rows.
        `ANALYZE ${s}.store_meta, ${s}.retention`,
      ];
    },
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export interface MigrationResult {
  /** The schema's version after migrating. */
  readonly version: number;
  /** Versions this call applied (empty when another process had, or nothing was missing). */
  readonly applied: number[];
}

/**
 * Brings `context.schema` to LATEST_VERSION. Runs in one transaction: a failure leaves the schema as it was.
 * @throws NexusError "invalid_argument" when the schema is newer than this library.
 */
export async function migrate(client: pg.PoolClient, context: MigrationContext): Promise<MigrationResult> {
  const s = context.schema;
  await client.query("BEGIN");
  try {
    // One migrator per schema at a time, across processes; released at COMMIT/ROLLBACK.
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`nexus-fast migrate ${s}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_version (
      version integer PRIMARY KEY,
      description text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number | null }>(
      `SELECT max(version) AS version FROM ${s}.schema_version`,
    );
    const current = rows[0]?.version ?? 0;
    if (current > LATEST_VERSION) {
      throw new NexusError(
        "invalid_argument",
        `schema ${s} is at version ${current}, newer than this library knows (${LATEST_VERSION}): upgrade nexus-fast`,
        { schema: s, version: current, known: LATEST_VERSION },
      );
    }
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (migration.version <= current) continue;
      for (const statement of migration.statements(context)) await client.query(statement);
      await client.query(`INSERT INTO ${s}.schema_version (version, description) VALUES ($1, $2)`, [
        migration.version,
        migration.description,
      ]);
      applied.push(migration.version);
    }
    await client.query("COMMIT");
    return { version: Math.max(current, LATEST_VERSION), applied };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}
