/**
 * The store's access to PostgreSQL: queries in array row mode through the pool, transactions on one pooled
 * connection, every failure turned into a NexusError (errors.ts), and a health check. Nothing here knows the
 * store's tables except the health check's counter read.
 */
import type pg from "pg";
import { NexusError } from "../util/errors.js";
import { toNexusError } from "./errors.js";

export interface PostgresHealth {
  /** The database answered a query. */
  readonly ok: boolean;
  /** Round trip of the health query, in ms. */
  readonly latencyMs: number;
  /** The latest committed revision (when ok). */
  readonly revision?: number;
  /** The pool: connections open, idle, and requests waiting for one; its maximum. */
  readonly pool: {
    readonly total: number;
    readonly idle: number;
    readonly waiting: number;
    readonly max: number;
  };
  /** What failed (when not ok): the NexusError's code and message. */
  readonly error?: { readonly code: string; readonly message: string };
}

export class Database {
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly #names = new Map<string, string>();
  #closed = false;

  /** Connections of a pool we own, each with a promise of its socket closing. */
  readonly #connections = new Map<pg.Client, Promise<void>>();

  constructor(pool: pg.Pool, schema: string, owned: boolean) {
    this.pool = pool;
    this.schema = schema;
    if (owned) {
      pool.on("connect", (client) => {
        this.#connections.set(
          client,
          new Promise((resolve) =>
            client.once("end", () => {
              this.#connections.delete(client);
              resolve();
            }),
          ),
        );
      });
    }
  }

  /**
   * Ends a pool we own and waits until every connection's socket has closed (pool.end() alone resolves while
   * sockets are still closing, which would leave handles behind after close()).
   */
  async end(): Promise<void> {
    const closing = [...this.#connections.values()];
    await this.pool.end();
    await Promise.all(closing);
  }

  get max(): number {
    return (this.pool.options as { max?: number }).max ?? 10;
  }

  markClosed(): void {
    this.#closed = true;
  }

  assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "the PostgreSQL tuple store is closed");
  }

  /**
   * A statement as a named prepared statement (the name derived from the text): each connection plans it once
   * per name and, after a few runs, reuses a generic plan. Planning over 64 partitions took 40-200 ms a
   * statement on the development machine; a reused plan costs nothing.
   */
  statement(text: string, values: unknown[]): pg.QueryArrayConfig {
    let name = this.#names.get(text);
    if (name === undefined) {
      name = `nexus_${this.#names.size}_${fnv1a(text)}`;
      this.#names.set(text, name);
    }
    return { name, text, values, rowMode: "array" };
  }

  /** Runs one statement through the pool; rows as arrays. */
  async rows<R extends unknown[] = unknown[]>(text: string, values: unknown[], doing: string): Promise<R[]> {
    this.assertOpen();
    try {
      const result = await this.pool.query<R>(this.statement(text, values));
      return result.rows;
    } catch (error) {
      throw toNexusError(error, doing, { max: this.max });
    }
  }

  /**
   * Runs `body` on one pooled connection; the body begins and ends its transaction (BEGIN ... COMMIT or
   * ROLLBACK). If it throws, the transaction is rolled back; a connection that cannot even roll back is
   * destroyed, not returned to the pool.
   */
  async transaction<T>(doing: string, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw toNexusError(error, doing, { max: this.max });
    }
    let broken = false;
    try {
      return await body(client);
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch {
        broken = true;
      }
      throw toNexusError(error, doing, { max: this.max });
    } finally {
      client.release(broken);
    }
  }

  async health(): Promise<PostgresHealth> {
    const started = performance.now();
    const pool = {
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
      max: this.max,
    };
    try {
      const rows = await this.rows<[string]>(
        `SELECT revision FROM ${this.schema}.store_meta`,
        [],
        "health check",
      );
      return { ok: true, latencyMs: performance.now() - started, revision: Number(rows[0]?.[0] ?? 0), pool };
    } catch (error) {
      const e = toNexusError(error, "health check");
      return {
        ok: false,
        latencyMs: performance.now() - started,
        pool,
        error: { code: e.code, message: e.message },
      };
    }
  }
}

function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(36);
}
