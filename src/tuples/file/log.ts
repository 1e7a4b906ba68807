/**
 * The open log segment: the file the store appends records to (layout.ts). One writer appends at a time (the
 * store's queue); syncs may be requested from anywhere and share one fdatasync when they overlap. An append that
 * fails is cut back off the file, so the segment never keeps a partial record it did not report.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { closeFile, ioError, openFile, syncData, syncDir, truncateFile, writeAt } from "../../io/fs-io.js";
import { type Crc32c, encodeFileHeader, SEGMENT_HEADER_SIZE, SEGMENT_MAGIC, segmentName } from "./layout.js";

export class LogSegment {
  readonly number: number;
  readonly path: string;
  readonly #fd: number;
  #size: number;
  #closed = false;
  /** The fdatasync running now, if any, and whether bytes were appended since it started. */
  #syncing: Promise<void> | undefined;
  #dirty = false;
  /** The first fdatasync failure: sticky (see sync()). */
  #failed: Error | undefined;

  private constructor(number: number, path: string, fd: number, size: number) {
    this.number = number;
    this.path = path;
    this.#fd = fd;
    this.#size = size;
  }

  /** Creates segment `number` with its header, durably (file and directory entry synced). */
  static async create(dir: string, number: number, storeId: string, crc: Crc32c): Promise<LogSegment> {
    const path = join(dir, segmentName(number));
    let fd: number;
    try {
      fd = await openFile(path, "wx");
    } catch (error) {
      throw ioError(error, "cannot create log segment", path);
    }
    const segment = new LogSegment(number, path, fd, 0);
    try {
      await segment.append(encodeFileHeader(SEGMENT_MAGIC, { segment: number, storeId }, crc));
      await segment.sync();
      await syncDir(dir);
    } catch (error) {
      // Not left behind half made: a later attempt creates the same number again.
      await segment.close().catch(() => {});
      await rm(path, { force: true }).catch(() => {});
      throw ioError(error, "cannot create log segment", path);
    }
    return segment;
  }

  /** Opens an existing segment (already recovered: `size` is where its last whole record ends). */
  static async openForAppend(dir: string, number: number, size: number): Promise<LogSegment> {
    const path = join(dir, segmentName(number));
    try {
      return new LogSegment(number, path, await openFile(path, "r+"), size);
    } catch (error) {
      throw ioError(error, "cannot open log segment", path);
    }
  }

  /** Bytes in the segment, header included. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of records in the segment (its header left out). */
  get recordBytes(): number {
    return Math.max(0, this.#size - SEGMENT_HEADER_SIZE);
  }

  /** Appends `bytes` at the end. On failure the file is cut back to its previous size and the error thrown. */
  async append(bytes: Uint8Array): Promise<void> {
    const at = this.#size;
    try {
      await writeAt(this.#fd, [bytes], at);
    } catch (error) {
      // Best effort: a failed cut leaves bytes recovery will treat as a torn tail or refuse (never applies).
      await truncateFile(this.#fd, at).catch(() => {});
      throw ioError(error, "cannot append to log segment", this.path);
    }
    this.#size = at + bytes.length;
    this.#dirty = true;
  }

  /**
   * Makes every byte appended before the call durable. After one fdatasync failed, every later one fails too:
   * the kernel reports a writeback error once and may have dropped the pages, so a later fdatasync returning 0
   * proves nothing about the bytes appended before it.
   */
  async sync(): Promise<void> {
    // A sync already running may have started before the latest append: wait for it, then sync again.
    while (this.#syncing !== undefined) await this.#syncing;
    if (this.#failed !== undefined) throw this.#failed;
    if (!this.#dirty || this.#closed) return;
    this.#dirty = false;
    const run = syncData(this.#fd).catch((error: unknown) => {
      this.#failed = ioError(error, "cannot sync log segment", this.path);
      throw this.#failed;
    });
    // Settles without rejecting: the caller handles `run`, and the waiters above see #failed.
    this.#syncing = run.then(
      () => {},
      () => {},
    );
    try {
      await run;
    } finally {
      this.#syncing = undefined;
    }
  }

  /** Syncs what is pending (unless a sync failed already: that was reported) and closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#failed === undefined) await this.sync();
    } finally {
      this.#closed = true;
      while (this.#syncing !== undefined) await this.#syncing;
      await closeFile(this.#fd);
    }
  }
}
