/**
 * Options of the PostgreSQL store and the connection pool it opens (pg.Pool), with the defaults stated here:
 *
 * | setting | default | why |
 * |---|---|---|
 * | `max` | 10 connections | pg's own default; one more is held by the LISTEN connection while anyone waits |
 * | `idleTimeoutMs` | 30 000 | idle connections are closed after 30 s, so a quiet process holds few |
 * | `connectTimeoutMs` | 5 000 | a new connection, or a request waiting for a busy pool, fails after 5 s |
 * | `statementTimeoutMs` | 30 000 | the server cancels a statement running longer (PostgreSQL `statement_timeout`) |
 * | `idleInTransactionTimeoutMs` | 60 000 | a stuck client cannot hold the revision counter's lock forever |
 * | `keepAlive` | on, first probe after 10 s | a dead peer is noticed by TCP, not by the next query |
 *
 * A caller may pass its own `pool` instead; the store then neither configures nor ends it.
 */
import pg from "pg";
import { describe, NexusError } from "../util/errors.js";

export interface PostgresPoolOptions {
  /** Most connections the pool opens (default 10). */
  readonly max?: number;
  /** An idle connection is closed after this long (default 30 000 ms). */
  readonly idleTimeoutMs?: number;
  /** Connecting, or waiting for a connection of a busy pool, fails after this long (default 5 000 ms). */
  readonly connectTimeoutMs?: number;
  /** The server cancels a statement running longer than this (default 30 000 ms; 0 = no limit). */
  readonly statementTimeoutMs?: number;
  /** The server ends a session idle inside a transaction this long (default 60 000 ms; 0 = no limit). */
  readonly idleInTransactionTimeoutMs?: number;
  /** TCP keep-alive on every connection (default true, first probe after 10 s). */
  readonly keepAlive?: boolean;
}

export interface PostgresStoreOptions extends PostgresPoolOptions {
  /** `postgres://user:password@host:port/database?...`; or give `pool`. */
  readonly connectionString?: string;
  /** A pool the caller owns (not configured, not ended by close()); or give `connectionString`. */
  readonly pool?: pg.Pool;
  /** The PostgreSQL schema holding the store's tables (default "nexus"; created when missing). */
  readonly schema?: string;
  /**
   * Hash partitions of the tuple and changelog tables, by tenant (default 64). Fixed when the schema is created;
   * opening an existing schema with another count is "invalid_argument".
   */
  readonly partitions?: number;
  /** Epoch milliseconds (default Date.now): commit times and expiry. Every process over one schema must agree. */
  readonly clock?: () => number;
  /** Deleted tuple versions stay readable this long, for quantized snapshots (default 10 000 ms). */
  readonly snapshotRetentionMs?: number;
  /** The changelog keeps at most about this many changes (default 100 000)... */
  readonly changelogMaxEntries?: number;
  /** ...and none older than this (default 1 hour; the latest revision's changes are always kept). */
  readonly changelogMaxAgeMs?: number;
  /** Waiters re-read the current revision this often, in case a notification was lost (default 1 000 ms). */
  readonly pollIntervalMs?: number;
}

/** The options after defaults and checks. */
export interface ResolvedOptions {
  readonly schema: string;
  /** undefined: whatever the schema has, 64 when creating it. */
  readonly partitions: number | undefined;
  readonly clock: () => number;
  readonly snapshotRetentionMs: number;
  readonly changelogMaxEntries: number;
  readonly changelogMaxAgeMs: number;
  readonly pollIntervalMs: number;
}

export const DEFAULT_PARTITIONS = 64;
export const MAX_PARTITIONS = 1024;

export const POOL_DEFAULTS = {
  max: 10,
  idleTimeoutMs: 30_000,
  connectTimeoutMs: 5_000,
  statementTimeoutMs: 30_000,
  idleInTransactionTimeoutMs: 60_000,
  keepAlive: true,
  keepAliveInitialDelayMs: 10_000,
} as const;

/** Lower-case SQL identifiers only, so a schema name never needs quoting rules to be safe. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

export function resolveOptions(options: PostgresStoreOptions): ResolvedOptions {
  if (typeof options !== "object" || options === null) {
    throw new NexusError(
      "invalid_argument",
      `PostgreSQL store options must be an object, got ${describe(options)}`,
    );
  }
  const schema = options.schema ?? "nexus";
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
    throw new NexusError(
      "invalid_argument",
      `schema must be a lower-case SQL identifier of at most 48 characters ([a-z_][a-z0-9_]*), got ${describe(schema)}`,
      { schema },
    );
  }
  const partitions = options.partitions;
  if (
    partitions !== undefined &&
    (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS)
  ) {
    throw new NexusError(
      "invalid_argument",
      `partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${describe(partitions)}`,
      { partitions },
    );
  }
  if (options.clock !== undefined && typeof options.clock !== "function") {
    throw new NexusError("invalid_argument", "clock must be a function returning epoch milliseconds");
  }
  const numbers = {
    snapshotRetentionMs: options.snapshotRetentionMs ?? 10_000,
    changelogMaxEntries: options.changelogMaxEntries ?? 100_000,
    changelogMaxAgeMs: options.changelogMaxAgeMs ?? 3_600_000,
    pollIntervalMs: options.pollIntervalMs ?? 1_000,
  };
  for (const [name, value] of Object.entries(numbers)) {
    if (
      typeof value !== "number" ||
      !Number.isFinite(value) ||
      value < (name === "pollIntervalMs" ? 10 : 0)
    ) {
      throw new NexusError(
        "invalid_argument",
        `${name} must be a finite number ≥ 0, got ${describe(value)}`,
        {
          [name]: value,
        },
      );
    }
  }
  return { schema, partitions, clock: options.clock ?? Date.now, ...numbers };
}

/**
 * The pool the store uses: the caller's (`owned: false`), or a new one from `connectionString` with the defaults
 * above. A connection string is checked here, so a typo is "invalid_argument" rather than a connection attempt to
 * a host named after it.
 */
export function poolFor(options: PostgresStoreOptions): { pool: pg.Pool; owned: boolean } {
  if (options.pool !== undefined) {
    if (options.connectionString !== undefined) {
      throw new NexusError("invalid_argument", "give either connectionString or pool, not both");
    }
    if (!(options.pool instanceof pg.Pool)) {
      throw new NexusError("invalid_argument", `pool must be a pg.Pool, got ${describe(options.pool)}`);
    }
    return { pool: options.pool, owned: false };
  }
  const url = options.connectionString;
  checkConnectionString(url);
  const setting = (name: keyof PostgresPoolOptions & keyof typeof POOL_DEFAULTS, min: number): number => {
    const value = options[name] ?? POOL_DEFAULTS[name];
    if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
      throw new NexusError(
        "invalid_argument",
        `${name} must be an integer ≥ ${min}, got ${describe(value)}`,
        {
          [name]: value,
        },
      );
    }
    return value;
  };
  const statementTimeoutMs = setting("statementTimeoutMs", 0);
  const idleInTransactionTimeoutMs = setting("idleInTransactionTimeoutMs", 0);
  const pool = new pg.Pool({
    connectionString: url,
    application_name: "nexus-fast",
    // JIT compiles plans whose estimates look large (a new partitioned table has no statistics) for 0.5-4 s, for
    // statements that run in milliseconds; no query of the store gains from it. Generic plans: every statement is
    // a named prepared statement whose per-key probes are fenced (snapshot.ts), so one plan per connection serves
    // (partitions pruned at execution) instead of re-planning over 64 partitions at every run (10-250 ms loaded).
    options: "-c jit=off -c plan_cache_mode=force_generic_plan",
    max: setting("max", 1),
    idleTimeoutMillis: setting("idleTimeoutMs", 0),
    connectionTimeoutMillis: setting("connectTimeoutMs", 0),
    keepAlive: options.keepAlive ?? POOL_DEFAULTS.keepAlive,
    keepAliveInitialDelayMillis: POOL_DEFAULTS.keepAliveInitialDelayMs,
    ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
    ...(idleInTransactionTimeoutMs > 0
      ? { idle_in_transaction_session_timeout: idleInTransactionTimeoutMs }
      : {}),
  });
  // An idle connection the server drops emits "error" on the pool; without a listener Node would crash the
  // process. The pool discards that connection by itself and the next query opens a new one.
  pool.on("error", () => {});
  return { pool, owned: true };
}

/** @throws NexusError "invalid_argument" unless `url` is a postgres:// or postgresql:// URL with a host. */
export function checkConnectionString(url: unknown): asserts url is string {
  if (typeof url !== "string" || url.length === 0) {
    throw new NexusError(
      "invalid_argument",
      `give connectionString (postgres://user@host:port/database) or pool, got ${describe(url)}`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new NexusError("invalid_argument", `connectionString is not a URL: ${redact(url)}`, {
      connectionString: redact(url),
    });
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new NexusError(
      "invalid_argument",
      `connectionString must start with postgres:// or postgresql://, got ${redact(url)}`,
      { connectionString: redact(url) },
    );
  }
  if (parsed.hostname === "" && !parsed.searchParams.has("host")) {
    throw new NexusError("invalid_argument", `connectionString names no host: ${redact(url)}`, {
      connectionString: redact(url),
    });
  }
  if (parsed.port !== "" && !(Number(parsed.port) > 0 && Number(parsed.port) < 65536)) {
    throw new NexusError("invalid_argument", `connectionString has a bad port: ${redact(url)}`, {
      connectionString: redact(url),
    });
  }
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return describe(parsed.toString(), 200);
  } catch {
    return describe(url.replace(/:[^:@/]*@/, ":***@"), 200);
  }
}
