/**
 * The durable embedded TupleStore: an in-memory store (memory.ts) serves every read; every write batch and model
 * version is first appended to a log on disk (layout.ts, log.ts), so the store comes back exactly as it was after
 * a restart or a crash (reopen.ts, recovery.ts), and periodic checkpoints (checkpoint.ts) keep opening fast.
 *
 * A write: validated against the current state (MemoryTupleStore.prepareWrite), encoded as one record, appended,
 * then applied in memory at its revision (applyWrite). Writes go through one queue, so the log's order is the
 * revisions' order and nothing changes the state between validation and apply. Readers see revisions up to the
 * store's *visible* revision only; when a revision becomes visible and when its write is acknowledged depends on
 * `fsync`:
 *   "always" (default): after an fdatasync that covers the record. Writes in flight share one fdatasync (group
 *     commit): the next write is validated against the state that includes the ones before it, so it does not
 *     wait for their sync to start its own. A write that resolved, or that a reader saw, survives a crash of the
 *     process and of the machine.
 *   "batch": visible at once, acknowledged after an fdatasync shared with the writes in flight. Readers in this
 *     process may see a write a moment before it is durable.
 *   "never": visible and acknowledged once appended: it survives the process being killed (the bytes are in the
 *     operating system), not a machine crash.
 * Model versions are rarer: each is synced (under "always" and "batch") before add() resolves and before any
 * reader can see it.
 * After an I/O error the store refuses further writes (NexusError "io_error") until it is reopened: the state on
 * disk is then unknown, and recovery, not guesswork, decides it. Reads go on.
 *
 * Checkpoints: once the log since the last checkpoint holds `checkpointBytes`, the store starts a new segment and
 * writes the state as of that moment in the background; when the checkpoint is durable, the older segments go.
 */
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { createChecksums } from "../../io/checksum.js";
import { type FsyncPolicy, ioError } from "../../io/fs-io.js";
import { GroupSync } from "../../io/group-sync.js";
import { acquireLock, type DirectoryLock } from "../../io/lock.js";
import { describe, NexusError } from "../../util/errors.js";
import { MemoryTupleStore } from "../memory.js";
import type { StoredModel } from "../models.js";
import type { Revision, StoredChange, TupleSnapshot, TupleStore, WriteBatch, WriteResult } from "../types.js";
import { RevisionWaiters } from "../waiters.js";
import { writeCheckpoint } from "./checkpoint.js";
import { encodeBatch, encodeModel, toBytes } from "./codec.js";
import { type Crc32c, encodeRecord, MAX_PAYLOAD, RecordKind } from "./layout.js";
import { LogSegment } from "./log.js";
import { LoggedModelVersions } from "./models.js";
import { recoverDirectory, removeSegmentsBefore } from "./reopen.js";

export type { FsyncPolicy };

export interface FileTupleStoreOptions {
  /** The store directory (created when missing). One writer at a time: a second gets NexusError "locked". */
  dir: string;
  /** When a write is acknowledged (see above; default "always"). */
  fsync?: FsyncPolicy;
  /** Epoch milliseconds (default Date.now); commit times, expiry and model times use it. */
  clock?: () => number;
  /** As MemoryStoreOptions: old versions stay readable this long (default 10 000 ms). */
  snapshotRetentionMs?: number;
  /** As MemoryStoreOptions: the changelog keeps at most this many changes (default 100 000)... */
  changelogMaxEntries?: number;
  /** ...and none older than this (default 1 hour). */
  changelogMaxAgeMs?: number;
  /**
   * A checkpoint is written once the log since the last one holds this many bytes (default 16 MiB; 0: only when
   * checkpoint() is called).
   */
  checkpointBytes?: number;
}

export interface FileTupleStoreStats {
  readonly fsync: FsyncPolicy;
  /** The revision the newest checkpoint holds (0: none yet). */
  readonly checkpointRevision: Revision;
  /** Bytes of log records written since the newest checkpoint began (what an open replays beyond it). */
  readonly logBytesSinceCheckpoint: number;
  /** What the last checkpoint attempt failed with, if it failed (the log still holds everything). */
  readonly checkpointError?: string;
  /** What opening the store found: records replayed from the log and bytes of torn tail cut off. */
  readonly recovered: { readonly records: number; readonly tornBytes: number };
}

interface Settings {
  readonly dir: string;
  readonly fsync: FsyncPolicy;
  readonly clock: () => number;
  readonly checkpointBytes: number;
}

const LOAD = Symbol("load");

/** Opens (creating when missing) the file tuple store in `options.dir`. */
export async function openFileTupleStore(options: FileTupleStoreOptions): Promise<FileTupleStore> {
  const given: Partial<FileTupleStoreOptions> = options ?? {};
  const { dir, fsync = "always", clock = Date.now, checkpointBytes = 16 * 1024 * 1024 } = given;
  if (typeof dir !== "string" || dir === "") {
    throw new NexusError("invalid_argument", `dir must be a directory path, got ${describe(dir)}`);
  }
  if (fsync !== "always" && fsync !== "batch" && fsync !== "never") {
    throw new NexusError(
      "invalid_argument",
      `fsync must be "always", "batch" or "never", got ${describe(fsync)}`,
    );
  }
  if (typeof checkpointBytes !== "number" || Number.isNaN(checkpointBytes) || checkpointBytes < 0) {
    throw new NexusError(
      "invalid_argument",
      `checkpointBytes must be a number ≥ 0, got ${describe(checkpointBytes)}`,
    );
  }
  const memory = new MemoryTupleStore({
    clock,
    ...(given.snapshotRetentionMs !== undefined ? { snapshotRetentionMs: given.snapshotRetentionMs } : {}),
    ...(given.changelogMaxEntries !== undefined ? { changelogMaxEntries: given.changelogMaxEntries } : {}),
    ...(given.changelogMaxAgeMs !== undefined ? { changelogMaxAgeMs: given.changelogMaxAgeMs } : {}),
  });
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    await memory.close();
    throw ioError(error, "cannot create store directory", dir);
  }
  let lock: DirectoryLock;
  try {
    lock = await acquireLock(dir);
  } catch (error) {
    await memory.close();
    throw error;
  }
  try {
    const { crc32c } = await createChecksums();
    const store = new FileTupleStore({ dir, fsync, clock, checkpointBytes }, memory, lock, crc32c);
    await store[LOAD]();
    return store;
  } catch (error) {
    await memory.close();
    await lock.release();
    throw error;
  }
}

export class FileTupleStore implements TupleStore, AsyncDisposable {
  readonly dir: string;
  readonly models: LoggedModelVersions;
  readonly #s: Settings;
  readonly #memory: MemoryTupleStore;
  readonly #lock: DirectoryLock;
  readonly #crc: Crc32c;
  readonly #syncer: GroupSync;
  #id = "";
  #segment: LogSegment | undefined;
  /** The mutation queue: a promise chain, FIFO; an error does not break it. */
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Set by an I/O error on the write path: every later write fails with it. */
  #failure: NexusError | undefined;
  #checkpointRevision: Revision = 0;
  #bytesSinceCheckpoint = 0;
  #checkpointRun: Promise<void> | undefined;
  #checkpointError: string | undefined;
  #recovered = { records: 0, tornBytes: 0 };
  /** The newest revision readers may see (see above); the in-memory store may be ahead of it. */
  #visible: Revision = 0;
  readonly #waiters = new RevisionWaiters();

  /** Use openFileTupleStore(). */
  constructor(settings: Settings, memory: MemoryTupleStore, lock: DirectoryLock, crc: Crc32c) {
    this.dir = settings.dir;
    this.#s = settings;
    this.#memory = memory;
    this.#lock = lock;
    this.#crc = crc;
    // A round after the store failed fails too: its fdatasync could not vouch for the records before it.
    this.#syncer = new GroupSync(async () => {
      this.#assertHealthy();
      await this.#segment!.sync();
    });
    this.models = new LoggedModelVersions(settings.clock, (mint) => this.#addModel(mint));
  }

  get id(): string {
    return this.#id;
  }

  get closed(): boolean {
    return this.#closed;
  }

  stats(): FileTupleStoreStats {
    return {
      fsync: this.#s.fsync,
      checkpointRevision: this.#checkpointRevision,
      logBytesSinceCheckpoint: this.#bytesSinceCheckpoint,
      ...(this.#checkpointError !== undefined ? { checkpointError: this.#checkpointError } : {}),
      recovered: { ...this.#recovered },
    };
  }

  async currentRevision(): Promise<Revision> {
    this.#assertOpen();
    return this.#visible;
  }

  async revisionAt(timeMs: number): Promise<Revision> {
    this.#assertOpen();
    return Math.min(await this.#memory.revisionAt(timeMs), this.#visible);
  }

  async snapshot(revision: Revision): Promise<TupleSnapshot> {
    this.#assertOpen();
    if (typeof revision === "number" && revision > this.#visible) throw notYet(revision, this.#visible);
    return this.#memory.snapshot(revision);
  }

  async changesAfter(after: Revision, limit: number): Promise<StoredChange[]> {
    this.#assertOpen();
    if (typeof after === "number" && after > this.#visible) throw notYet(after, this.#visible);
    const page = await this.#memory.changesAfter(after, limit);
    // Revisions past the visible one are left out whole (the page stays cut at a revision's end).
    let end = page.length;
    while (end > 0 && page[end - 1]!.revision > this.#visible) end--;
    return end === page.length ? page : page.slice(0, end);
  }

  waitForRevision(after: Revision, signal?: AbortSignal): Promise<void> {
    if (this.#closed || this.#visible > after) return Promise.resolve();
    return this.#waiters.wait(signal);
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    this.#assertOpen();
    const { result, appended } = await this.#exclusive(async () => {
      this.#assertHealthy();
      const prepared = this.#memory.prepareWrite(batch, this.#s.clock());
      if (prepared === undefined) {
        return { result: { revision: this.#visible, written: 0, deleted: 0 }, appended: false };
      }
      try {
        const payload = encodeBatch(prepared);
        if (payload.length > MAX_PAYLOAD) {
          throw new NexusError(
            "invalid_write",
            `the write is ${payload.length} bytes encoded; one write holds at most ${MAX_PAYLOAD} (split it)`,
            { bytes: payload.length, limit: MAX_PAYLOAD },
          );
        }
        await this.#append(encodeRecord(RecordKind.Batch, payload, this.#crc), false);
      } catch (error) {
        // Not in the log, so not applied: the staged batch comes out of the memory store again.
        this.#memory.abortWrite(prepared);
        throw error;
      }
      return { result: this.#memory.applyWrite(prepared), appended: true };
    });
    if (appended) await this.#afterAppend(result.revision);
    return result;
  }

  /**
   * Writes a checkpoint now (waiting for one in progress first), so the next open reads it and only the log
   * written after it.
   */
  async checkpoint(): Promise<void> {
    this.#assertOpen();
    while (this.#checkpointRun !== undefined) await this.#checkpointRun;
    this.#startCheckpoint();
    await this.#checkpointRun;
    if (this.#checkpointError !== undefined) {
      throw new NexusError("io_error", `checkpoint failed: ${this.#checkpointError}`, { dir: this.dir });
    }
  }

  async close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- write path ----------------------------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "the tuple store is closed");
  }

  #assertHealthy(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Runs `fn` alone among mutations (FIFO). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Appends a record to the open segment, syncing it when `sync` says so. Any failure stops writes. */
  async #append(record: Uint8Array, sync: boolean): Promise<void> {
    try {
      await this.#segment!.append(record);
      if (sync) await this.#segment!.sync();
    } catch (error) {
      throw this.#fail(error);
    }
    this.#bytesSinceCheckpoint += record.length;
  }

  /**
   * After the queue: the shared sync and publishing the write's revision (in the order fsync asks for), then a
   * checkpoint when one is due. `revision` is undefined for a model version (synced already).
   */
  async #afterAppend(revision: Revision | undefined): Promise<void> {
    if (revision !== undefined) {
      if (this.#s.fsync !== "always") this.#publish(revision);
      if (this.#s.fsync !== "never") {
        try {
          // Released by a sync round that started after this write's record was appended: it covers the record
          // and every record before it, so publishing this revision publishes only durable ones.
          await this.#syncer.request();
        } catch (error) {
          throw this.#fail(error);
        }
      }
      this.#publish(revision);
    }
    if (this.#bytesSinceCheckpoint >= this.#s.checkpointBytes && this.#s.checkpointBytes > 0) {
      this.#startCheckpoint();
    }
  }

  /** Lets readers see revisions up to `revision` and wakes those waiting for them. */
  #publish(revision: Revision): void {
    if (revision <= this.#visible) return;
    this.#visible = revision;
    this.#waiters.wakeAll();
  }

  #fail(error: unknown): NexusError {
    const wrapped = ioError(error, "write failed on", this.dir);
    this.#failure ??= new NexusError(
      "io_error",
      `the tuple store in ${this.dir} stopped taking writes after an I/O error (${wrapped.message}); reopen it`,
      { dir: this.dir },
      { cause: error },
    );
    return wrapped;
  }

  async #addModel(mint: () => StoredModel): Promise<StoredModel> {
    this.#assertOpen();
    const stored = await this.#exclusive(async () => {
      this.#assertHealthy();
      const model = mint();
      const payload = toBytes(encodeModel(model));
      if (payload.length > MAX_PAYLOAD) {
        throw new NexusError(
          "invalid_argument",
          `the model is ${payload.length} bytes; at most ${MAX_PAYLOAD}`,
        );
      }
      // Synced before anyone can see it: a model version is rare, and one inserted before its sync could be
      // shown to a reader and then lost.
      await this.#append(encodeRecord(RecordKind.Model, payload, this.#crc), this.#s.fsync !== "never");
      this.models.insert(model);
      return model;
    });
    await this.#afterAppend(undefined);
    return stored;
  }

  // ---- checkpoints ---------------------------------------------------------------------------------------------

  #startCheckpoint(): void {
    if (this.#checkpointRun !== undefined || this.#closed) return;
    this.#checkpointRun = this.#runCheckpoint().finally(() => {
      this.#checkpointRun = undefined;
    });
  }

  async #runCheckpoint(): Promise<void> {
    try {
      // The cut, alone among mutations: the old segment synced (it stops being the last one, so it must be
      // whole), a new segment started, and the state exported as of the last record in the old one.
      const cut = await this.#exclusive(async () => {
        this.#assertHealthy();
        const old = this.#segment!;
        try {
          await old.sync();
        } catch (error) {
          throw this.#fail(error);
        }
        // A segment that cannot be created fails this checkpoint only: writes go on in the old one.
        const next = await LogSegment.create(this.dir, old.number + 1, this.#id, this.#crc);
        this.#segment = next;
        await this.#syncer.idle();
        await old.close().catch(() => {});
        this.#bytesSinceCheckpoint = 0;
        return {
          storeId: this.#id,
          fromSegment: next.number,
          state: this.#memory.exportState(),
          models: [...this.models.all()],
        };
      });
      await writeCheckpoint(this.dir, cut, this.#crc);
      this.#checkpointRevision = cut.state.revision;
      this.#checkpointError = undefined;
      await removeSegmentsBefore(this.dir, cut.fromSegment);
    } catch (error) {
      this.#checkpointError = (error as Error).message;
    }
  }

  // ---- open and close ------------------------------------------------------------------------------------------

  /** Recovers the state from the checkpoint and the log (reopen.ts); opens the last segment for appending. */
  async [LOAD](): Promise<void> {
    const found = await recoverDirectory(this.dir, this.#crc, this.#memory, this.models);
    this.#checkpointRevision = found.checkpointRevision;
    this.#recovered = found.recovered;
    this.#bytesSinceCheckpoint = found.logBytes;
    this.#id = found.storeId ?? randomBytes(8).toString("hex");
    this.#visible = await this.#memory.currentRevision();
    this.#segment =
      found.appendTo !== undefined
        ? await LogSegment.openForAppend(this.dir, found.appendTo.number, found.appendTo.end)
        : await LogSegment.create(this.dir, found.firstSegment, this.#id, this.#crc);
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    this.#waiters.wakeAll();
    try {
      await this.#tail;
      while (this.#checkpointRun !== undefined) await this.#checkpointRun;
      await this.#syncer.idle().catch(() => {});
      await this.#segment?.close();
    } finally {
      await this.#memory.close();
      await this.#lock.release();
    }
  }
}

function notYet(revision: Revision, visible: Revision): NexusError {
  return new NexusError("invalid_token", `revision ${describe(revision)} is not a revision of this store`, {
    revision,
    current: visible,
  });
}
