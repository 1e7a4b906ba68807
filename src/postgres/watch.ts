/**
 * waitForRevision over PostgreSQL: every commit sends `NOTIFY <channel>, '<revision>'`; one connection LISTENs and
 * wakes this process's waiters. A notification only wakes: what changed is always read from the changelog, and the
 * current revision is re-read from the database (a) right after a waiter registers, (b) after every (re)connect of
 * the listening connection, and (c) every `pollIntervalMs` while anyone waits — so a notification lost (a dropped
 * connection, a server restart) delays a waiter by at most one poll, never forever.
 *
 * The listening connection is taken from the pool on the first wait and kept until close(); when it breaks it is
 * discarded and a new one is taken (backing off up to 5 s between attempts) while anyone still waits. The poll
 * timer runs only while someone waits. close() wakes every waiter and releases the connection and the timers.
 */
import type pg from "pg";
import type { Revision } from "../tuples/types.js";

export interface RevisionWatchOptions {
  readonly pool: pg.Pool;
  /** The NOTIFY channel (a plain identifier). */
  readonly channel: string;
  /** Reads the latest committed revision from the database. */
  readonly readRevision: () => Promise<Revision>;
  readonly pollIntervalMs: number;
  /** Shown as application_name of the listening connection (so operators and tests can find it). */
  readonly applicationName: string;
}

interface Waiter {
  readonly after: Revision;
  readonly wake: () => void;
}

export class RevisionWatch {
  readonly #options: RevisionWatchOptions;
  readonly #waiters = new Set<Waiter>();
  /** The highest revision this process knows is committed. */
  #known: Revision = 0;
  #client: pg.PoolClient | undefined;
  #connecting: Promise<void> | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;
  /** Times the listening connection was (re)established, for tests and stats. */
  connects = 0;

  constructor(options: RevisionWatchOptions) {
    this.#options = options;
  }

  /** The backend pid of the listening connection, if connected (for tests and operators). */
  get listenerPid(): number | undefined {
    return (this.#client as unknown as { processID?: number } | undefined)?.processID;
  }

  /** Tells the watch that `revision` is committed (a local write, a read of the counter). */
  advance(revision: Revision): void {
    if (revision <= this.#known) return;
    this.#known = revision;
    for (const waiter of [...this.#waiters]) if (waiter.after < revision) waiter.wake();
  }

  wait(after: Revision, signal?: AbortSignal): Promise<void> {
    if (this.#closed || signal?.aborted || this.#known > after) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter: Waiter = {
        after,
        wake: () => {
          this.#waiters.delete(waiter);
          signal?.removeEventListener("abort", waiter.wake);
          if (this.#waiters.size === 0) this.#stopPolling();
          resolve();
        },
      };
      this.#waiters.add(waiter);
      signal?.addEventListener("abort", waiter.wake, { once: true });
      this.#startPolling();
      void this.#listen();
      // Registered first, read second: a commit between the two is seen by the read or by the notification.
      void this.#check();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of [...this.#waiters]) waiter.wake();
    this.#stopPolling();
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    await this.#connecting?.catch(() => {});
    await this.#drop();
  }

  async #check(): Promise<void> {
    if (this.#closed || this.#waiters.size === 0) return;
    try {
      this.advance(await this.#options.readRevision());
    } catch {
      // The database is unreachable right now: the next poll tries again.
    }
  }

  #startPolling(): void {
    if (this.#pollTimer !== undefined || this.#closed) return;
    this.#pollTimer = setInterval(() => void this.#check(), this.#options.pollIntervalMs);
    this.#pollTimer.unref();
  }

  #stopPolling(): void {
    clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
  }

  #listen(): Promise<void> {
    if (this.#client !== undefined || this.#closed) return Promise.resolve();
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(): Promise<void> {
    let client: pg.PoolClient | undefined;
    try {
      client = await this.#options.pool.connect();
      const lost = (): void => this.#lost(client!);
      client.on("error", lost);
      client.on("end", lost);
      client.on("notification", (message) => {
        if (message.channel !== this.#options.channel) return;
        const revision = Number(message.payload);
        if (Number.isSafeInteger(revision)) this.advance(revision);
      });
      await client.query(`SET application_name = '${this.#options.applicationName}'`);
      await client.query(`LISTEN ${this.#options.channel}`);
      this.#client = client;
      // Closed meanwhile: close() awaits this connect, then drops the connection.
      if (this.#closed) return;
      this.#failures = 0;
      this.connects++;
      // Whatever was committed while nobody listened.
      await this.#check();
    } catch {
      if (client !== undefined) {
        client.removeAllListeners("notification");
        client.release(true);
      }
      this.#scheduleReconnect();
    }
  }

  #lost(client: pg.PoolClient): void {
    if (this.#client !== client) return;
    void this.#drop();
    this.#scheduleReconnect();
  }

  /** Discards the listening connection; resolves once its socket has closed. */
  #drop(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client === undefined) return Promise.resolve();
    client.removeAllListeners("notification");
    const closed = new Promise<void>((resolve) => client.once("end", () => resolve()));
    // Destroy rather than return it: a connection that LISTENs, or broke, is no use to other queries.
    try {
      client.release(true);
    } catch {
      // Already released by a failure.
    }
    return closed;
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer !== undefined) return;
    const delay = Math.min(5_000, 50 * 2 ** this.#failures++);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      // Nobody waits: connect again on the next wait.
      if (this.#waiters.size > 0) void this.#listen();
    }, delay);
    this.#reconnectTimer.unref();
  }
}
