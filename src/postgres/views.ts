/**
 * Materialized permission views: computed permissions kept in PostgreSQL tables, so other services can JOIN
 * against "who can read what" in SQL. Each view `{ type, relation }` is a table
 *
 *   <schema>.perm_<type>_<relation> (tenant, subject, object)   -- one row per pair the engine's check allows
 *
 * and each group relation `{ type, relation }` (e.g. group#member) adds its rows to one closure table
 *
 *   <schema>.member_closure (tenant, "group", relation, member) -- member has relation on group, transitively
 *
 * (the closure carries `relation` as well, so two group relations of one type do not mix). Which subjects are
 * rows, and how wildcards and usersets appear, is the rule of the permission stream (src/views/permissions.ts):
 * every plain subject that has a tuple in the tenant; a `user:*` grant is a row per such user.
 *
 * Maintenance: one `engine.watchPermissionRevisions` stream per (tenant, view); each revision's differences are
 * applied in one transaction together with the revision, recorded in `<schema>.perm_state` (stream, store_id,
 * revision). A restart resumes every stream after its recorded revision (gapless: the stream yields exactly the
 * differences since). A stream with no state, a state from another store, or one the changelog no longer reaches
 * is rebuilt: in one transaction, its rows become the whole set at the current revision (rows no longer in it are
 * deleted, missing ones inserted, unchanged ones left alone). Resuming needs the store to serve a snapshot at the
 * recorded revision (PostgreSQL store: `snapshotRetentionMs`, 10 s by default) and its changelog after it; a
 * longer stop therefore costs a rebuild (a full recomputation, writing only the differences). Revisions that
 * change nothing are not written, so after a restart a stream may re-read (and apply nothing from) a few.
 *
 * One materializer per schema at a time (two would both apply each revision; harmless for the rows, but wasted).
 * Table names: `perm_` + type + `_` + relation, lower-cased, every character outside [a-z0-9_] replaced by `_`;
 * two views mapping to one name, or a name over PostgreSQL's 63 bytes, is "invalid_argument".
 *
 * Owner: the caller closes it (close() / Symbol.asyncDispose): streams stop, the pool it opened ends.
 */
import type pg from "pg";
import type { Program } from "../model/program.js";
import { relationOfType, tenantOf, typeOf } from "../request/requests.js";
import { encodeToken } from "../tuples/token.js";
import type { Revision, TupleStore } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";
import type { PermissionRevision, PermissionWatchRequest } from "../views/permissions.js";
import { poolFor } from "./config.js";
import { toNexusError } from "./errors.js";

/** What the views read: an engine (createEngine) over any store. */
export interface PermissionEngine {
  readonly program: Program;
  readonly store: TupleStore;
  watchPermissionRevisions(
    request: PermissionWatchRequest,
  ): AsyncGenerator<PermissionRevision, void, undefined>;
}

export interface PermissionViewSpec {
  readonly type: string;
  readonly relation: string;
}

export interface MaterializeOptions {
  readonly engine: PermissionEngine;
  /** `postgres://...`, or give `pool` (which close() then leaves open). */
  readonly connectionString?: string;
  readonly pool?: pg.Pool;
  /** The schema holding the tables (created when missing): a lower-case SQL identifier. */
  readonly schema: string;
  readonly views: readonly PermissionViewSpec[];
  /** Group relations whose transitive membership goes into `member_closure`. */
  readonly groups?: readonly PermissionViewSpec[];
  /** The tenants materialized (default ["default"]). */
  readonly tenants?: readonly string[];
}

export interface PermissionViewsStats {
  readonly streams: readonly {
    readonly stream: string;
    readonly table: string;
    readonly revision: Revision;
  }[];
  /** Streams started from scratch (no state, another store's, or one the store no longer serves) since open. */
  readonly rebuilds: number;
  /** Set when a stream stopped on an error (the views then lag until restarted). */
  readonly error?: string;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;
const CLOSURE_TABLE = "member_closure";
const STATE_TABLE = "perm_state";

interface Stream {
  /** `perm/<tenant>/<type>#<relation>` or `closure/<tenant>/<type>#<relation>`. */
  readonly key: string;
  readonly tenant: string;
  readonly spec: PermissionViewSpec;
  readonly table: string;
  readonly closure: boolean;
  applied: Revision;
}

export class PermissionViews implements AsyncDisposable {
  readonly schema: string;
  readonly #engine: PermissionEngine;
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #streams: readonly Stream[];
  readonly #stop = new AbortController();
  readonly #tasks: Promise<void>[] = [];
  readonly #waiters = new Set<() => void>();
  #error: NexusError | undefined;
  #closed = false;
  #rebuilds = 0;

  private constructor(
    engine: PermissionEngine,
    pool: pg.Pool,
    ownsPool: boolean,
    schema: string,
    streams: Stream[],
  ) {
    this.#engine = engine;
    this.#pool = pool;
    this.#ownsPool = ownsPool;
    this.schema = schema;
    this.#streams = streams;
  }

  /** @internal Use materializePermissions(). */
  static async open(options: MaterializeOptions): Promise<PermissionViews> {
    const { engine, schema, streams } = planOf(options);
    const { pool, owned } = poolFor({
      ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : {}),
      ...(options.pool !== undefined ? { pool: options.pool } : {}),
      max: 2,
    });
    const views = new PermissionViews(engine, pool, owned, schema, streams);
    try {
      await views.#createTables();
    } catch (error) {
      if (owned) await pool.end();
      throw toNexusError(error, "creating the permission views");
    }
    for (const stream of streams) views.#tasks.push(views.#run(stream));
    return views;
  }

  /**
   * Resolves once every view has applied every change up to `revision` (default: the store's current one).
   * @throws the error that stopped a stream, or NexusError "closed".
   */
  async caughtUp(revision?: Revision): Promise<void> {
    const target = revision ?? (await this.#engine.store.currentRevision());
    for (;;) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#streams.every((s) => s.applied >= target)) return;
      if (this.#closed) throw new NexusError("closed", "the permission views are closed");
      await new Promise<void>((resolve) => this.#waiters.add(resolve));
    }
  }

  stats(): PermissionViewsStats {
    return {
      streams: this.#streams.map((s) => ({ stream: s.key, table: s.table, revision: s.applied })),
      rebuilds: this.#rebuilds,
      ...(this.#error !== undefined ? { error: this.#error.message } : {}),
    };
  }

  /** Stops every stream (a transaction under way completes), then ends the pool it opened. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop.abort();
    await Promise.all(this.#tasks);
    this.#wake();
    if (this.#ownsPool) await this.#pool.end();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #wake(): void {
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  async #createTables(): Promise<void> {
    const s = quote(this.schema);
    const statements = [
      `CREATE SCHEMA IF NOT EXISTS ${s}`,
      `CREATE TABLE IF NOT EXISTS ${s}.${STATE_TABLE} (
         stream text PRIMARY KEY, store_id text NOT NULL, revision bigint NOT NULL)`,
    ];
    for (const table of new Set(this.#streams.filter((x) => !x.closure).map((x) => x.table))) {
      statements.push(
        `CREATE TABLE IF NOT EXISTS ${s}.${quote(table)} (
           tenant text NOT NULL, subject text NOT NULL, object text NOT NULL, PRIMARY KEY (tenant, subject, object))`,
        `CREATE INDEX IF NOT EXISTS ${quote(`${table}_by_object`)} ON ${s}.${quote(table)} (tenant, object, subject)`,
      );
    }
    if (this.#streams.some((x) => x.closure)) {
      statements.push(
        `CREATE TABLE IF NOT EXISTS ${s}.${CLOSURE_TABLE} (
           tenant text NOT NULL, "group" text NOT NULL, relation text NOT NULL, member text NOT NULL,
           PRIMARY KEY (tenant, relation, "group", member))`,
        `CREATE INDEX IF NOT EXISTS ${CLOSURE_TABLE}_by_member ON ${s}.${CLOSURE_TABLE} (tenant, member, relation)`,
      );
    }
    // Concurrent CREATE ... IF NOT EXISTS can still race on the catalog: one transaction, under a lock of the schema.
    const client = await this.#pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`nexus-views:${this.schema}`]);
      for (const statement of statements) await client.query(statement);
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async #run(stream: Stream): Promise<void> {
    const signal = this.#stop.signal;
    try {
      const { store } = this.#engine;
      const state = await this.#pool.query<{ store_id: string; revision: string }>(
        `SELECT store_id, revision FROM ${quote(this.schema)}.${STATE_TABLE} WHERE stream = $1`,
        [stream.key],
      );
      const request = {
        type: stream.spec.type,
        relation: stream.spec.relation,
        tenant: stream.tenant,
        signal,
      };
      const row = state.rows[0];
      let batches: AsyncGenerator<PermissionRevision, void, undefined> | undefined;
      let first: IteratorResult<PermissionRevision, void> | undefined;
      if (row !== undefined && row.store_id === store.id) {
        stream.applied = Number(row.revision);
        batches = this.#engine.watchPermissionRevisions({
          ...request,
          after: encodeToken(store.id, stream.applied),
        });
        try {
          first = await batches.next();
        } catch (error) {
          // The changelog no longer reaches the recorded revision: rebuild below.
          if (!(error instanceof NexusError && error.code === "invalid_token")) throw error;
          batches = undefined;
        }
      }
      let rebuild = false;
      if (batches === undefined) {
        batches = this.#engine.watchPermissionRevisions({ ...request, initial: true });
        first = await batches.next();
        rebuild = true;
        this.#rebuilds++;
      }
      for (let next = first!; !next.done; next = await batches.next()) {
        if (next.value.changes.length > 0 || rebuild) await this.#apply(stream, next.value, rebuild);
        rebuild = false;
        stream.applied = next.value.revision;
        this.#wake();
        if (signal.aborted) break;
      }
      await batches.return();
      // The stream ended without close(): the engine closed under the views, which can then never catch up.
      if (!signal.aborted)
        this.#error ??= new NexusError("closed", `the engine closed under the view ${stream.key}`);
    } catch (error) {
      if (!signal.aborted) {
        this.#error ??= toNexusError(error, `maintaining the view ${stream.key}`);
      }
    } finally {
      this.#wake();
    }
  }

  /** One revision's differences and the revision itself, in one transaction. */
  async #apply(stream: Stream, batch: PermissionRevision, replace: boolean): Promise<void> {
    const s = quote(this.schema);
    const table = `${s}.${quote(stream.table)}`;
    const gainedSubjects: string[] = [];
    const gainedObjects: string[] = [];
    const lostSubjects: string[] = [];
    const lostObjects: string[] = [];
    for (const c of batch.changes) {
      if (c.change === "gained") {
        gainedSubjects.push(c.user);
        gainedObjects.push(c.object);
      } else {
        lostSubjects.push(c.user);
        lostObjects.push(c.object);
      }
    }
    const { tenant } = stream;
    const relation = stream.spec.relation;
    const client = await this.#pool.connect();
    try {
      await client.query("BEGIN");
      if (stream.closure) {
        if (replace) {
          // Only the rows no longer in the set go (unchanged rows are not rewritten); the insert below adds the rest.
          await client.query(
            `DELETE FROM ${table} WHERE tenant = $1 AND relation = $2 AND "group" LIKE $3
               AND (member, "group") NOT IN (SELECT * FROM unnest($4::text[], $5::text[]))`,
            [tenant, relation, `${likeEscape(stream.spec.type)}:%`, gainedSubjects, gainedObjects],
          );
        }
        if (lostSubjects.length > 0) {
          await client.query(
            `DELETE FROM ${table} WHERE tenant = $1 AND relation = $2
               AND (member, "group") IN (SELECT * FROM unnest($3::text[], $4::text[]))`,
            [tenant, relation, lostSubjects, lostObjects],
          );
        }
        if (gainedSubjects.length > 0) {
          await client.query(
            `INSERT INTO ${table} (tenant, relation, member, "group")
               SELECT $1, $2, m, g FROM unnest($3::text[], $4::text[]) AS u(m, g) ON CONFLICT DO NOTHING`,
            [tenant, relation, gainedSubjects, gainedObjects],
          );
        }
      } else {
        if (replace) {
          await client.query(
            `DELETE FROM ${table} WHERE tenant = $1
               AND (subject, object) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
            [tenant, gainedSubjects, gainedObjects],
          );
        }
        if (lostSubjects.length > 0) {
          await client.query(
            `DELETE FROM ${table} WHERE tenant = $1
               AND (subject, object) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
            [tenant, lostSubjects, lostObjects],
          );
        }
        if (gainedSubjects.length > 0) {
          await client.query(
            `INSERT INTO ${table} (tenant, subject, object)
               SELECT $1, s, o FROM unnest($2::text[], $3::text[]) AS u(s, o) ON CONFLICT DO NOTHING`,
            [tenant, gainedSubjects, gainedObjects],
          );
        }
      }
      await client.query(
        `INSERT INTO ${s}.${STATE_TABLE} (stream, store_id, revision) VALUES ($1, $2, $3)
           ON CONFLICT (stream) DO UPDATE SET store_id = EXCLUDED.store_id, revision = EXCLUDED.revision`,
        [stream.key, this.#engine.store.id, batch.revision],
      );
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
}

/**
 * Starts keeping the views' tables up to date (see the module comment); resolves once the tables exist (the first
 * rows follow: await `caughtUp()` before reading them).
 * @throws NexusError "invalid_argument" (options), "type_not_found" / "relation_not_found" (a view), or the
 *   PostgreSQL store's connection errors.
 */
export function materializePermissions(options: MaterializeOptions): Promise<PermissionViews> {
  return PermissionViews.open(options);
}

/** The options checked: the engine, the schema, and one stream per (tenant, view). */
function planOf(options: MaterializeOptions): {
  engine: PermissionEngine;
  schema: string;
  streams: Stream[];
} {
  if (typeof options !== "object" || options === null) {
    throw new NexusError("invalid_argument", `options must be an object, got ${describe(options)}`);
  }
  const { engine, schema } = options;
  if (typeof engine?.watchPermissionRevisions !== "function") {
    throw new NexusError("invalid_argument", "engine must be an Engine (createEngine)");
  }
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
    throw new NexusError(
      "invalid_argument",
      `schema must be a lower-case SQL identifier of at most 48 characters ([a-z_][a-z0-9_]*), got ${describe(schema)}`,
    );
  }
  const specs = (field: string, value: unknown): PermissionViewSpec[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      throw new NexusError("invalid_argument", `${field} must be an array, got ${describe(value)}`);
    }
    return value.map((spec: PermissionViewSpec, i) => {
      if (typeof spec !== "object" || spec === null) {
        throw new NexusError("invalid_argument", `${field}[${i}] must be { type, relation }`);
      }
      const type = typeOf(engine.program, spec.type, `${field}[${i}].type`);
      relationOfType(engine.program, type, spec.relation, `${field}[${i}].relation`);
      return { type, relation: spec.relation };
    });
  };
  const views = specs("views", options.views);
  const groups = specs("groups", options.groups);
  if (views.length + groups.length === 0) {
    throw new NexusError("invalid_argument", "give at least one view or group relation");
  }
  const tenantList = options.tenants ?? ["default"];
  if (!Array.isArray(tenantList) || tenantList.length === 0) {
    throw new NexusError("invalid_argument", "tenants must be a non-empty array of tenant names");
  }
  const tenants = [...new Set(tenantList.map((t) => tenantOf(t)))];
  const tables = new Map<string, string>();
  for (const v of views) {
    const table = tableName(v);
    const other = tables.get(table);
    if (other !== undefined && other !== `${v.type}#${v.relation}`) {
      throw new NexusError(
        "invalid_argument",
        `views ${other} and ${v.type}#${v.relation} would share the table ${table}`,
      );
    }
    tables.set(table, `${v.type}#${v.relation}`);
  }
  const streams: Stream[] = [];
  const seen = new Set<string>();
  for (const tenant of tenants) {
    for (const [closure, list] of [
      [false, views],
      [true, groups],
    ] as const) {
      for (const spec of list) {
        const key = `${closure ? "closure" : "perm"}/${tenant}/${spec.type}#${spec.relation}`;
        if (seen.has(key)) continue;
        seen.add(key);
        streams.push({
          key,
          tenant,
          spec,
          table: closure ? CLOSURE_TABLE : tableName(spec),
          closure,
          applied: -1,
        });
      }
    }
  }
  return { engine, schema, streams };
}

/** `perm_<type>_<relation>`, lower-cased, other characters as `_`. */
export function tableName(spec: PermissionViewSpec): string {
  const name = `perm_${spec.type}_${spec.relation}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  if (Buffer.byteLength(name) > 63) {
    throw new NexusError(
      "invalid_argument",
      `the table name ${name} for ${spec.type}#${spec.relation} is longer than PostgreSQL's 63 bytes`,
    );
  }
  return name;
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

function likeEscape(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
