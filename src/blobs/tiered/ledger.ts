/**
 * The tier ledger (called the access tracker in error messages and on disk): for every object the tiered store
 * knows, its size, tier, creation and last-access times, reads since it entered its tier, and any tier move in
 * progress. The tiering policy reads it to demote (age, idle time) and promote (reads of warm or cold data), and
 * its journal of moves is what crash recovery replays. (The permission engine's warming has an unrelated
 * AccessTracker of checks; this one counts reads of stored objects.)
 *
 * On disk: `tracker.snapshot` plus an append-only `tracker.log`, both JSON lines, each line the whole state of
 * one key (or its removal). Replaying a line is idempotent, so a crash between writing a new snapshot and
 * truncating the log loses nothing; a torn last line is skipped. Reads and writes are batched (flushed after
 * `flushDelayMs`, on flush() and on close()); the start of a tier move is fsynced before the move touches any
 * tier, so a crash mid-move always finds its record.
 */
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ioError, processAlive, syncDirectory, writeFileAtomic } from "../../io/durable-files.js";
import { NexusError } from "../../util/errors.js";

export type Tier = "hot" | "warm" | "cold";
/** Where a move goes: a tier, or out of the store (delete). */
export type MoveTarget = Tier | "deleted";

export const TIERS: readonly Tier[] = ["hot", "warm", "cold"];

export interface TrackedObject {
  readonly key: string;
  /** Bytes of the object. */
  size: number;
  /** The tier holding the object (during a move: the tier it is leaving). */
  tier: Tier;
  /** ms since the epoch (per the tracker's clock). */
  createdAt: number;
  lastAccessAt: number;
  /** Reads since the object entered its tier: what promotion looks at. */
  readsInTier: number;
  /** Puts of these bytes not yet matched by a delete (the store is content-addressed: equal puts share). */
  refs: number;
  /** A move begun and not yet finished. */
  pending: { from: Tier; to: MoveTarget } | undefined;
}

export interface TierLedgerOptions {
  /** Directory for the snapshot, log and lock (created if missing). */
  dir: string;
  /** Clock (ms); tests pass a fake one. Default Date.now. */
  now?: () => number;
  /** Batched access records are written at most this long after they happen (default 1000 ms). */
  flushDelayMs?: number;
  /** fsync the log at the start of each move and at flush (default true). */
  fsync?: boolean;
}

interface Record {
  k: string;
  /** removed */
  x?: 1;
  s?: number;
  t?: Tier;
  c?: number;
  a?: number;
  r?: number;
  n?: number;
  p?: [Tier, MoveTarget];
}

const SNAPSHOT = "tracker.snapshot";
const LOG = "tracker.log";
const LOCK = "LOCK";
/** Rewrite the snapshot when the log grows past this many bytes. */
const COMPACT_LOG_BYTES = 8 * 1024 * 1024;

export class TierLedger implements AsyncDisposable {
  readonly dir: string;
  readonly now: () => number;
  readonly #entries = new Map<string, TrackedObject>();
  readonly #dirty = new Set<string>();
  readonly #flushDelayMs: number;
  readonly #fsync: boolean;
  #log: Awaited<ReturnType<typeof open>> | undefined;
  #logBytes = 0;
  #chain: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #commit: Promise<void> | undefined;
  #closed = false;
  /** Lines that could not be parsed at open (a torn tail is normal after a crash). */
  skippedLines = 0;

  private constructor(options: TierLedgerOptions) {
    this.dir = options.dir;
    this.now = options.now ?? Date.now;
    this.#flushDelayMs = options.flushDelayMs ?? 1000;
    this.#fsync = options.fsync ?? true;
  }

  /** Loads the ledger in `dir`, taking its lock (`locked` if another live process holds it). */
  static async open(options: TierLedgerOptions): Promise<TierLedger> {
    if (typeof options?.dir !== "string" || options.dir.length === 0) {
      throw new NexusError("invalid_argument", "the tiered store needs a `dir` for its access tracker", {
        dir: options?.dir,
      });
    }
    const tracker = new TierLedger(options);
    await mkdir(options.dir, { recursive: true });
    await tracker.#lock();
    try {
      await tracker.#load();
      await tracker.#writeSnapshot();
      tracker.#log = await open(join(options.dir, LOG), "a");
    } catch (error) {
      await rm(join(options.dir, LOCK), { force: true });
      throw error;
    }
    return tracker;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): Readonly<TrackedObject> | undefined {
    return this.#entries.get(key);
  }

  values(): IterableIterator<Readonly<TrackedObject>> {
    return this.#entries.values();
  }

  /** A put of `key`: a new object in the hot tier, or one more reference to a known one. Counts as an access. */
  recordPut(key: string, size: number): void {
    this.#assertOpen();
    const entry = this.#entries.get(key);
    if (entry === undefined) this.#entries.set(key, newEntry(key, size, "hot", this.now()));
    else {
      entry.refs++;
      entry.lastAccessAt = this.now();
    }
    this.#markDirty(key);
  }

  /** Starts tracking an object found in `tier` that the tracker did not know (no-op when it does). */
  adopt(key: string, size: number, tier: Tier): void {
    this.#assertOpen();
    if (this.#entries.has(key)) return;
    this.#entries.set(key, newEntry(key, size, tier, this.now()));
    this.#markDirty(key);
  }

  /** Drops one reference; returns how many remain (0: the object should go). */
  release(key: string): number {
    this.#assertOpen();
    const entry = this.#entries.get(key);
    if (entry === undefined) return 0;
    entry.refs = Math.max(0, entry.refs - 1);
    this.#markDirty(key);
    return entry.refs;
  }

  recordRead(key: string): void {
    this.#assertOpen();
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    entry.lastAccessAt = this.now();
    entry.readsInTier++;
    this.#markDirty(key);
  }

  /** Durably notes that `key` starts moving from `from` to `to`; resolves before the move may touch a tier. */
  async begin(key: string, from: Tier, to: MoveTarget): Promise<void> {
    this.#assertOpen();
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      throw new NexusError("not_found", `the tiered store does not track ${key}`, { key });
    }
    entry.tier = from;
    entry.pending = { from, to };
    this.#dirty.delete(key);
    await this.#append([entry], this.#fsync);
  }

  /** Notes that the move of `key` ended with the object in `tier` (or gone). */
  async finish(key: string, tier: MoveTarget): Promise<void> {
    this.#assertOpen();
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#dirty.delete(key);
    if (tier === "deleted") {
      this.#entries.delete(key);
      await this.#append([{ key, removed: true }], false);
      return;
    }
    if (entry.tier !== tier) entry.readsInTier = 0;
    entry.tier = tier;
    entry.pending = undefined;
    await this.#append([entry], false);
  }

  /**
   * Makes every change so far durable. Callers arriving together share one write and fsync (group commit).
   */
  commit(): Promise<void> {
    this.#commit ??= Promise.resolve().then(() => {
      this.#commit = undefined;
      return this.flush();
    });
    return this.#commit;
  }

  /** Writes batched access records now (and fsyncs them). */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#log === undefined) return;
    const entries: TrackedObject[] = [];
    for (const key of this.#dirty) {
      const entry = this.#entries.get(key);
      if (entry !== undefined) entries.push(entry);
    }
    this.#dirty.clear();
    await this.#append(entries, this.#fsync);
    if (this.#logBytes > COMPACT_LOG_BYTES) await this.compact();
  }

  /** Replaces snapshot + log with a fresh snapshot of the current state. */
  compact(): Promise<void> {
    return this.#serial(async () => {
      await this.#writeSnapshot();
      await this.#log?.truncate(0);
      this.#logBytes = 0;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
      await this.compact();
    } finally {
      this.#closed = true;
      await this.#chain.catch(() => {});
      await this.#log?.close();
      this.#log = undefined;
      await rm(join(this.dir, LOCK), { force: true });
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals -----------------------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", `the access tracker at ${this.dir} is closed`);
  }

  #markDirty(key: string): void {
    this.#dirty.add(key);
    if (this.#timer === undefined && !this.#closed) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        // A failed background flush keeps its records dirty for the next one; nothing to report here.
        this.flush().catch(() => {});
      }, this.#flushDelayMs);
    }
  }

  #append(
    entries: readonly (TrackedObject | { key: string; removed: true })[],
    sync: boolean,
  ): Promise<void> {
    if (entries.length === 0 && !sync) return Promise.resolve();
    const text = entries.map((e) => `${JSON.stringify(toRecord(e))}\n`).join("");
    return this.#serial(async () => {
      const log = this.#log;
      if (log === undefined) throw new NexusError("closed", `the access tracker at ${this.dir} is closed`);
      try {
        if (text.length > 0) {
          const bytes = Buffer.from(text);
          await log.write(bytes, 0, bytes.length);
          this.#logBytes += bytes.length;
        }
        if (sync) await log.datasync();
      } catch (error) {
        throw ioError("could not write the access log", join(this.dir, LOG), error);
      }
    });
  }

  /** Runs log operations one at a time, in order. */
  #serial(fn: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(fn);
    this.#chain = next.catch(() => {});
    return next;
  }

  async #lock(): Promise<void> {
    const path = join(this.dir, LOCK);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(path, "wx");
        await handle.writeFile(String(process.pid));
        await handle.close();
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw ioError("could not lock", path, error);
      }
      const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
        throw new NexusError(
          "locked",
          `the tiered store at ${this.dir} is in use by process ${owner}${owner === process.pid ? " (this one)" : ""}`,
          { dir: this.dir, pid: owner },
        );
      }
      // The owner died without closing: take the lock over.
      await rm(path, { force: true });
    }
    throw new NexusError("locked", `could not lock ${this.dir}`, { dir: this.dir });
  }

  async #load(): Promise<void> {
    for (const name of [SNAPSHOT, LOG]) {
      let text: string;
      try {
        text = await readFile(join(this.dir, name), "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw ioError(`could not read ${name}`, join(this.dir, name), error);
      }
      for (const line of text.split("\n")) {
        if (line.length === 0) continue;
        let record: Record;
        try {
          record = JSON.parse(line) as Record;
        } catch {
          this.skippedLines++;
          continue;
        }
        this.#apply(record);
      }
    }
  }

  #apply(record: Record): void {
    if (typeof record?.k !== "string") {
      this.skippedLines++;
      return;
    }
    if (record.x === 1) {
      this.#entries.delete(record.k);
      return;
    }
    this.#entries.set(record.k, {
      key: record.k,
      size: record.s ?? 0,
      tier: record.t ?? "hot",
      createdAt: record.c ?? 0,
      lastAccessAt: record.a ?? 0,
      readsInTier: record.r ?? 0,
      refs: record.n ?? 1,
      pending: record.p ? { from: record.p[0], to: record.p[1] } : undefined,
    });
  }

  async #writeSnapshot(): Promise<void> {
    const lines: string[] = [];
    for (const entry of this.#entries.values()) lines.push(`${JSON.stringify(toRecord(entry))}\n`);
    await writeFileAtomic(join(this.dir, SNAPSHOT), [Buffer.from(lines.join(""))], { fsync: this.#fsync });
    if (this.#log === undefined) {
      // At open: the old log is now folded into the snapshot.
      await rm(join(this.dir, LOG), { force: true });
      await syncDirectory(this.dir);
    }
  }
}

function newEntry(key: string, size: number, tier: Tier, now: number): TrackedObject {
  return { key, size, tier, createdAt: now, lastAccessAt: now, readsInTier: 0, refs: 1, pending: undefined };
}

function toRecord(entry: TrackedObject | { key: string; removed: true }): Record {
  if ("removed" in entry) return { k: entry.key, x: 1 };
  const record: Record = {
    k: entry.key,
    s: entry.size,
    t: entry.tier,
    c: entry.createdAt,
    a: entry.lastAccessAt,
    r: entry.readsInTier,
    n: entry.refs,
  };
  if (entry.pending) record.p = [entry.pending.from, entry.pending.to];
  return record;
}

// Exported for tests of the on-disk format.
export const trackerFiles = { snapshot: SNAPSHOT, log: LOG, lock: LOCK } as const;
