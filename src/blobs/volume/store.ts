/**
 * The needle store (the volume store): content-addressed blobs in append-only volumes (layout.ts, volume.ts),
 * found through the live set (live-set.ts: the WASM needle index plus reference counts), made durable by the
 * fsync policy, recovered on open (recovery.ts), checked by scrub (scrub.ts) and compacted (compaction.ts).
 *
 * Concurrency: reads run freely; every mutation (put, delete, the short steps of a compaction) goes through one
 * queue, so a single writer appends to a volume at a time. Under fsync "batch", writers that finished appending
 * share one fdatasync (group-sync.ts) before their promises resolve.
 *
 * A broken needle index (its WASM kernel trapped, e.g. memory could not grow in a merge: needle-index.ts) answers
 * nothing more. The store never serves from it: the call that broke it fails with "index_broken", and the next
 * step of the queue first rebuilds the index from the volume files, as opening the store does (reads wait for
 * it). Every acknowledged write is in the volumes, so none is lost. If the rebuild fails too, the store fails
 * closed: every call throws "index_broken" until it is reopened, which rebuilds the index again.
 */

import * as fs from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type Checksums, createChecksums } from "../../io/checksum.js";
import { ioError } from "../../io/fs-io.js";
import { GroupSync } from "../../io/group-sync.js";
import { acquireLock, type DirectoryLock } from "../../io/lock.js";
import { WorkerPool } from "../../parallel/pool.js";
import { isNexusError, NexusError } from "../../util/errors.js";
import {
  type CompactOptions,
  type CompactResult,
  compactVolumes,
  recoverInterruptedCompactions,
} from "./compaction.js";
import { hashBlobs } from "./hashing.js";
import {
  decodeHeader,
  encodeHeader,
  encodeIdxEntry,
  FOOTER_SIZE,
  HEADER_SIZE,
  IDX_ENTRY_SIZE,
  idxSizeField,
  keyHex,
  MAX_BLOB_SIZE,
  MAX_VOLUME_BYTES,
  NeedleKind,
  needleLength,
  parseKey,
  SUPERBLOCK_SIZE,
  sameKey,
  VOLUME_NAME,
} from "./layout.js";
import { LiveSet, type Located } from "./live-set.js";
import { checkStored } from "./needle-check.js";
import { NeedleIndex, type NeedleLocation } from "./needle-index.js";
import {
  type GetOptions,
  type PutResult,
  type ScrubOptions,
  type ScrubResult,
  type Settings,
  type StoreOptions,
  type StoreStats,
  validateOptions,
} from "./options.js";
import { type CorruptNeedle, recoverVolume } from "./recovery.js";
import { scrubLive } from "./scrub.js";
import { spoolStream } from "./stream-spool.js";
import type { Volume } from "./volume.js";
import { VolumeSet } from "./volume-set.js";

export type {
  FsyncPolicy,
  GetOptions,
  PutResult,
  ScrubOptions,
  ScrubProgress,
  ScrubResult,
  StoreOptions,
  StoreStats,
} from "./options.js";

const RECORD_LENGTH = needleLength(0);
const MAX_CORRUPT_KEPT = 1000;

/** Opens (creating when needed) the store in options.dir, recovering it from whatever state it was left in. */
export async function openStore(options: StoreOptions): Promise<NeedleStore> {
  const settings = validateOptions(options);
  try {
    await mkdir(settings.dir, { recursive: true });
  } catch (e) {
    throw ioError(e, "cannot create store directory", settings.dir);
  }
  const lock = await acquireLock(settings.dir);
  try {
    const [checks, index] = await Promise.all([createChecksums(), NeedleIndex.create()]);
    const store = new NeedleStore(settings, lock, checks, index);
    await store[LOAD]();
    return store;
  } catch (e) {
    await lock.release();
    throw e;
  }
}

const LOAD = Symbol("load");

export class NeedleStore implements AsyncDisposable {
  readonly dir: string;
  readonly #s: Settings;
  readonly #lock: DirectoryLock;
  readonly #checks: Checksums;
  /** Replaced (with #live) when a kernel trap broke it: #healIndex(). */
  #index: NeedleIndex;
  readonly #indexFixedBytes: number;
  readonly #volumes: VolumeSet;
  #live: LiveSet;
  /** Set when rebuilding a broken index failed: the store fails closed with it until reopened. */
  #indexFailure: NexusError | undefined;
  readonly #corrupt: CorruptNeedle[] = [];
  #corruptCount = 0;
  #tail: Promise<unknown> = Promise.resolve();
  readonly #syncer: GroupSync;
  #closed = false;
  #closing: Promise<void> | undefined;
  #ownPool: WorkerPool | undefined;
  #compaction: Promise<CompactResult> | undefined;
  #compactionAbort: AbortController | undefined;
  #lastCompactionError: unknown;

  /** Use openStore(). */
  constructor(settings: Settings, lock: DirectoryLock, checks: Checksums, index: NeedleIndex) {
    this.dir = settings.dir;
    this.#s = settings;
    this.#lock = lock;
    this.#checks = checks;
    this.#index = index;
    this.#indexFixedBytes = index.memoryBytes;
    this.#volumes = new VolumeSet(settings.dir, settings.volumeSize, checks.crc32c);
    this.#live = new LiveSet(index, this.#volumes.byId, settings.prefixMask, checks.crc32c);
    this.#syncer = new GroupSync(() => this.#volumes.syncDirty());
  }

  async [LOAD](): Promise<void> {
    const dir = this.#s.dir;
    fs.rmSync(join(dir, "staging"), { recursive: true, force: true });
    recoverInterruptedCompactions(dir);
    const ids = fs
      .readdirSync(dir)
      .map((name) => VOLUME_NAME.exec(name)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith(".new")) fs.rmSync(join(dir, name), { force: true });
    }
    try {
      for (const id of ids) {
        const volume = this.#volumes.open(id);
        recoverVolume(
          volume,
          this.#checks,
          (record) => this.#live.replay(volume, record),
          (needle) => this.#reportCorrupt(needle),
        );
      }
      await this.#volumes.ensureActive();
    } catch (e) {
      await Promise.all([...this.#volumes.byId.values()].map((v) => v.close()));
      throw e instanceof NexusError ? e : ioError(e, "cannot open store", dir);
    }
  }

  // ---- public API ------------------------------------------------------------------------------------------

  /** Stores `bytes` (once per distinct content) and returns its key, the BLAKE3-256 hex of the content. */
  async put(bytes: Uint8Array): Promise<PutResult> {
    this.#assertOpen();
    assertBlob(bytes, "put");
    const key = this.#checks.blake3(bytes);
    const crc = this.#checks.crc32c(bytes);
    const result = await this.#exclusive(() => this.#putHashed([bytes], bytes.length, key, crc));
    await this.#durable(result.wrote);
    return result.put;
  }

  /**
   * Stores many blobs; their hashing goes to the worker pool from getParallelThreshold("hash") blobs up.
   * Results are in input order.
   */
  async putMany(blobs: readonly Uint8Array[]): Promise<PutResult[]> {
    this.#assertOpen();
    if (!Array.isArray(blobs))
      throw new NexusError("invalid_argument", "putMany takes an array of Uint8Array");
    for (const [i, b] of blobs.entries()) assertBlob(b, `putMany[${i}]`);
    const hashed = await hashBlobs(blobs, this.#checks, () => this.#pool());
    const results = await this.#exclusive(async () => {
      const out: { put: PutResult; wrote: Volume[] }[] = [];
      for (let i = 0; i < blobs.length; i++) {
        const blob = blobs[i]!;
        out.push(await this.#putHashed([blob], blob.length, hashed[i]!.key, hashed[i]!.crc));
      }
      return out;
    });
    await this.#durable(results.flatMap((r) => r.wrote));
    return results.map((r) => r.put);
  }

  /**
   * Stores a blob given as a stream of chunks, never holding it whole: past streamBufferBytes it is hashed while
   * it spills to a staging file, then copied into the volume under the write lock.
   */
  async putStream(source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): Promise<PutResult> {
    this.#assertOpen();
    const blob = await spoolStream(source, join(this.#s.dir, "staging"), this.#s.streamBufferBytes);
    try {
      this.#assertOpen();
      const result = await this.#exclusive(() => this.#putHashed(blob.body, blob.size, blob.key, blob.crc));
      await this.#durable(result.wrote);
      return result.put;
    } finally {
      await blob.release();
    }
  }

  /** The content stored under `key`, checked against its checksums; NexusError "not_found" or "corrupt". */
  async get(key: string, options: GetOptions = {}): Promise<Uint8Array> {
    const k = parseKey(key);
    this.#assertOpen();
    const loc = this.#index.broken ? await this.#lookupRebuilt(k) : this.#live.lookup(k);
    if (loc === undefined) throw notFound(key);
    const bytes = await this.#volumes.byId.get(loc.volume)!.read(loc.offset, loc.length);
    const fail = (reason: string) => {
      this.#reportCorrupt({ volume: loc.volume, offset: loc.offset, key, reason });
      return new NexusError("corrupt", `blob ${key} is corrupt (${reason}); it is not served`, {
        key,
        volume: loc.volume,
        offset: loc.offset,
        reason,
      });
    };
    if (bytes.length < loc.length) throw fail("needle cut short");
    const h = decodeHeader(bytes, 0, this.#checks.crc32c);
    if (typeof h === "string") throw fail(h);
    if (!sameKey(h.key, k)) {
      if (this.#live.sharesPrefix(h, k, loc)) throw notFound(key); // another blob sharing the 64-bit prefix
      throw fail("the index points at another needle");
    }
    if (h.kind !== NeedleKind.Data) throw fail("the index points at a reference record");
    if (needleLength(h.size) !== loc.length) throw fail("size does not match the index");
    const data = bytes.subarray(HEADER_SIZE, HEADER_SIZE + h.size);
    const view = new DataView(bytes.buffer, bytes.byteOffset + HEADER_SIZE + h.size, FOOTER_SIZE);
    if (this.#checks.crc32c(data) !== view.getUint32(0, true)) throw fail("data checksum mismatch");
    if (options.verifyHash && !sameKey(this.#checks.blake3(data), k))
      throw fail("content does not hash to its key");
    return data;
  }

  /** Whether `key` is stored and readable (its needle header is read and checked). */
  async has(key: string): Promise<boolean> {
    const k = parseKey(key);
    this.#assertOpen();
    const loc = this.#index.broken ? await this.#lookupRebuilt(k) : this.#live.lookup(k);
    if (loc === undefined) return false;
    const h = await this.#readHeader(loc);
    if (typeof h === "string") {
      this.#reportCorrupt({ volume: loc.volume, offset: loc.offset, key, reason: h });
      return false;
    }
    return h.kind === NeedleKind.Data && sameKey(h.key, k);
  }

  /** Drops one reference to `key`; the content is garbage once none is left. False when it was not stored. */
  async delete(key: string): Promise<boolean> {
    const k = parseKey(key);
    this.#assertOpen();
    const result = await this.#exclusive(async () => {
      const loc = this.#live.lookup(k);
      if (loc === undefined) return undefined;
      const h = await this.#readHeader(loc);
      if (typeof h === "object" && !sameKey(h.key, k) && this.#live.sharesPrefix(h, k, loc)) return undefined;
      const volume = await this.#appendRecord(NeedleKind.Tombstone, k, loc);
      const count = this.#live.count(loc) - 1;
      if (count > 0) this.#live.setCount(loc, count);
      else this.#applyRecorded(() => this.#live.remove(k, loc));
      return volume;
    });
    if (result === undefined) return false;
    await this.#durable([result]);
    this.#maybeAutoCompact(result);
    return true;
  }

  /**
   * Rewrites every volume whose garbage ratio reaches the threshold (default: the store's compactThreshold),
   * while puts and deletes go on. Interruptible: close() or options.signal stop it cleanly, and a crash at any
   * step is recovered on the next open.
   */
  async compact(options: CompactOptions = {}): Promise<CompactResult> {
    this.#assertOpen();
    const threshold = options.threshold ?? this.#s.compactThreshold;
    if (typeof threshold !== "number" || !(threshold >= 0 && threshold <= 1)) {
      throw new NexusError(
        "invalid_argument",
        `compact: threshold must be a ratio in [0, 1], got ${threshold}`,
        {
          threshold,
        },
      );
    }
    while (this.#compaction) await this.#compaction.catch(() => {});
    const abort = new AbortController();
    this.#compactionAbort = abort;
    const onAbort = () => abort.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const run = this.#compactAll(threshold, options, abort.signal);
    this.#compaction = run;
    try {
      return await run;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      if (this.#compaction === run) {
        this.#compaction = undefined;
        this.#compactionAbort = undefined;
      }
    }
  }

  stats(): StoreStats {
    let liveBytes = 0;
    let garbageBytes = 0;
    for (const v of this.#volumes.byId.values()) {
      liveBytes += v.liveBytes;
      garbageBytes += v.end - SUPERBLOCK_SIZE - v.liveBytes;
    }
    const needles = this.#live.size;
    const indexBytes = this.#index.memoryBytes;
    const grown = Math.max(0, indexBytes - this.#indexFixedBytes);
    return {
      needles,
      liveBytes,
      garbageBytes,
      volumes: this.#volumes.byId.size,
      indexBytes,
      indexFixedBytes: this.#indexFixedBytes,
      indexBytesPerNeedle: needles === 0 ? 0 : grown / needles,
      bytesPerNeedle: needles === 0 ? 0 : indexBytes / needles,
      corruptNeedles: this.#corruptCount,
    };
  }

  /**
   * Reads every live needle back and checks it (header, key, data checksum; BLAKE3 with verifyHash), while puts
   * and deletes go on. Corrupt needles are reported (here and in corruptNeedles()) and stay in place: the store
   * keeps one copy, so the repair is a put of the same content (which purges the bad copy), e.g. from a tier
   * or a replica that still has it.
   */
  async scrub(options: ScrubOptions = {}): Promise<ScrubResult> {
    this.#assertOpen();
    if (this.#index.broken) await this.#exclusive(async () => {}); // the rebuild first, as for reads
    const store = this;
    try {
      return await scrubLive(
        {
          // The live set of now: a rebuild after a trap replaces it while the scrub goes on.
          get live() {
            return store.#live;
          },
          closed: () => this.#closed,
          readHeader: (loc) => this.#readHeader(loc),
          checkStored: (loc, key, verifyHash) => this.#checkStored(loc, key, verifyHash),
          reportCorrupt: (needle) => this.#reportCorrupt(needle),
        },
        options,
      );
    } catch (e) {
      // The scrub walks the index (merging it first) outside the write queue: a trap there is handled here.
      throw this.#indexBrokenBy(e);
    }
  }

  /** Needles found corrupt since open (at most the last 1000), for operators and repair tools. */
  corruptNeedles(): readonly CorruptNeedle[] {
    return [...this.#corrupt];
  }

  /** The error of the last background compaction (autoCompact), if it failed. */
  get lastCompactionError(): unknown {
    return this.#lastCompactionError;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Finishes pending writes, stops a running compaction, syncs, and releases files, workers and the lock. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- writing ---------------------------------------------------------------------------------------------

  async #putHashed(
    body: readonly Uint8Array[] | number,
    size: number,
    key: Uint8Array,
    crc: number,
  ): Promise<{ put: PutResult; wrote: Volume[] }> {
    const hex = keyHex(key);
    const loc = this.#live.lookup(key);
    let refs = 1;
    let overflow = false;
    if (loc !== undefined) {
      // The stored copy is checked whole (header and data checksum): a re-upload is the client's only repair,
      // so dedup must never count a reference to a copy that cannot be read back.
      const stored = await this.#checkStored(loc, key);
      if (stored === "good") {
        const volume = await this.#appendRecord(NeedleKind.Reference, key, loc);
        this.#live.setCount(loc, this.#live.count(loc) + 1);
        return { put: { key: hex, size, deduped: true }, wrote: [volume] };
      }
      if (stored === "other" && !loc.overflow) {
        overflow = true; // a different blob holds this 64-bit prefix
      } else {
        // The stored copy is corrupt or gone: purge it and store this one with all its references.
        this.#reportCorrupt({ volume: loc.volume, offset: loc.offset, key: hex, reason: stored });
        refs = this.#live.count(loc) + 1;
        await this.#appendRecord(NeedleKind.Purge, key, loc);
        this.#applyRecorded(() => this.#live.remove(key, loc));
        overflow = loc.overflow;
      }
    }
    const length = needleLength(size);
    const volume = await this.#volumes.forNeedle(length);
    const header = new Uint8Array(HEADER_SIZE);
    encodeHeader(header, 0, NeedleKind.Data, key, size, refs, Date.now(), this.#checks.crc32c);
    const footer = new Uint8Array(length - HEADER_SIZE - size);
    new DataView(footer.buffer).setUint32(0, crc, true);
    const offset =
      typeof body === "number"
        ? await volume.appendFrom(header, body, size, footer)
        : await volume.append([header, ...body, footer], length);
    await this.#appendIdx(volume, key, offset, idxSizeField(NeedleKind.Data, size, refs));
    const placed: Located = { volume: volume.id, offset, length, overflow };
    this.#applyRecorded(() => this.#live.add(key, placed, refs));
    if (this.#s.fsync === "always") await volume.sync();
    return { put: { key: hex, size, deduped: false }, wrote: [volume] };
  }

  /**
   * Applies to the live set a change whose record the volume already holds. When that breaks the index (a kernel
   * trap), the change still took effect: the rebuild, queued now and run before the store's next step, reads it
   * back from the records. So the operation succeeds rather than failing as "may or may not have taken effect"
   * (a put retried after such a failure counted its blob's reference twice, and a repairing put whose purge broke
   * the index lost the blob: the purge was recorded, the new copy never written).
   */
  #applyRecorded(apply: () => void): void {
    try {
      apply();
    } catch (e) {
      if (!isNexusError(e, "index_broken") || !this.#index.broken) throw e;
      this.#exclusive(async () => {}).catch(() => {});
    }
  }

  /** Appends a reference, tombstone or purge record to the volume that holds `target`. */
  async #appendRecord(kind: NeedleKind, key: Uint8Array, target: NeedleLocation): Promise<Volume> {
    const volume = this.#volumes.byId.get(target.volume)!;
    if (volume.end + RECORD_LENGTH > MAX_VOLUME_BYTES) {
      throw new NexusError("io_error", `volume ${volume.id} is full (32 GiB): compact it`, {
        volume: volume.id,
      });
    }
    const record = new Uint8Array(RECORD_LENGTH);
    encodeHeader(record, 0, kind, key, 0, 1, Date.now(), this.#checks.crc32c);
    const offset = await volume.append([record], RECORD_LENGTH);
    await this.#appendIdx(volume, key, offset, idxSizeField(kind, 0, 1));
    if (this.#s.fsync === "always") await volume.sync();
    return volume;
  }

  async #appendIdx(volume: Volume, key: Uint8Array, offset: number, field: number): Promise<void> {
    const entry = new Uint8Array(IDX_ENTRY_SIZE);
    encodeIdxEntry(entry, 0, key, offset / 8, field);
    await volume.appendIdx(entry);
  }

  /**
   * Runs `fn` alone among mutations (a promise chain: FIFO, an error does not break the chain), on a sound index:
   * a broken one is rebuilt first.
   */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const step = async (): Promise<T> => {
      await this.#healIndex();
      try {
        return await fn();
      } catch (e) {
        throw this.#indexBrokenBy(e);
      }
    };
    const run = this.#tail.then(step, step);
    this.#tail = run.catch(() => {});
    return run;
  }

  /**
   * The error of a step during which the index broke (a kernel trap inside it), saying what the store does about
   * it; the rebuild is queued at once, so that stats() and reads see a sound index again soon. Other errors pass.
   */
  #indexBrokenBy(e: unknown): unknown {
    if (!isNexusError(e, "index_broken") || e === this.#indexFailure || !this.#index.broken) return e;
    this.#exclusive(async () => {}).catch(() => {});
    return new NexusError(
      "index_broken",
      `${e.message}. The store rebuilds its index from the volume files before its next operation; this ` +
        "operation may or may not have taken effect, as after a crash at that point",
      { ...e.details, dir: this.dir },
      { cause: e },
    );
  }

  /** The lookup of `key` after the rebuild of a broken index (queued behind the writes before it). */
  async #lookupRebuilt(key: Uint8Array): Promise<Located | undefined> {
    await this.#exclusive(async () => {});
    return this.#live.lookup(key);
  }

  /**
   * Rebuilds the index when a kernel trap broke it (a no-op on a sound one); throws "index_broken" when that
   * failed, now or before.
   */
  async #healIndex(): Promise<void> {
    if (this.#indexFailure) throw this.#indexFailure;
    if (!this.#index.broken) return;
    try {
      await this.#rebuildIndex();
    } catch (e) {
      this.#indexFailure = new NexusError(
        "index_broken",
        `the store at ${this.dir} could not rebuild its broken needle index (${e instanceof Error ? e.message : String(e)}); ` +
          "it serves nothing until it is reopened",
        { dir: this.dir },
        { cause: e },
      );
      throw this.#indexFailure;
    }
  }

  /**
   * Replaces the broken index and its live set with ones built from the volume files the way opening the store
   * builds them: each volume in id order, its .idx and then the needles past it (recoverVolume). It runs as a
   * step of the write queue, so no put, delete or compaction step runs meanwhile, and every write the queue
   * finished is in the files: the result is the index a reopen would build. The volumes' live counts are rebuilt
   * with it (kept as they were if the rebuild fails).
   */
  async #rebuildIndex(): Promise<void> {
    const index = await NeedleIndex.create();
    const live = new LiveSet(index, this.#volumes.byId, this.#s.prefixMask, this.#checks.crc32c);
    const volumes = [...this.#volumes.byId.values()].sort((a, b) => a.id - b.id);
    const counts = volumes.map((v) => [v.liveBytes, v.liveNeedles] as const);
    for (const v of volumes) {
      v.liveBytes = 0;
      v.liveNeedles = 0;
    }
    try {
      for (const volume of volumes) {
        recoverVolume(
          volume,
          this.#checks,
          (record) => live.replay(volume, record),
          (needle) => this.#reportCorrupt(needle),
        );
      }
    } catch (e) {
      volumes.forEach((v, i) => {
        [v.liveBytes, v.liveNeedles] = counts[i]!;
      });
      index.close();
      throw e;
    }
    const broken = this.#index;
    this.#index = index;
    this.#live = live;
    broken.close();
  }

  /** Makes the writes of an acknowledged operation durable per the fsync policy. */
  async #durable(wrote: readonly Volume[]): Promise<void> {
    if (this.#s.fsync === "batch" && wrote.length > 0) await this.#syncer.request();
  }

  // ---- reading back --------------------------------------------------------------------------------------------

  #checkStored(loc: Located, key: Uint8Array, verifyHash = false): Promise<string> {
    return checkStored(
      this.#volumes.byId.get(loc.volume),
      loc,
      key,
      this.#checks,
      (h, k, l) => this.#live.sharesPrefix(h, k, l),
      verifyHash,
    );
  }

  async #readHeader(loc: NeedleLocation) {
    const bytes = await this.#volumes.byId.get(loc.volume)!.read(loc.offset, HEADER_SIZE);
    return decodeHeader(bytes, 0, this.#checks.crc32c);
  }

  #reportCorrupt(needle: CorruptNeedle): void {
    const known = this.#corrupt.some((c) => c.volume === needle.volume && c.offset === needle.offset);
    if (known) return;
    this.#corruptCount++;
    this.#corrupt.push(needle);
    if (this.#corrupt.length > MAX_CORRUPT_KEPT) this.#corrupt.shift();
  }

  // ---- compaction ------------------------------------------------------------------------------------------

  #compactAll(threshold: number, options: CompactOptions, signal: AbortSignal): Promise<CompactResult> {
    return compactVolumes(
      this.#volumes.byId,
      threshold,
      signal,
      (volume) => ({
        volume,
        checks: this.#checks,
        hooks: this.#s.hooks,
        signal,
        onProgress: options.onProgress,
        exclusive: (fn) => this.#exclusive(fn),
        seal: () => this.#volumes.seal(volume),
        liveNeedles: () => this.#live.liveIn(volume.id),
        moved: (moves) => this.#live.applyMoves(volume, moves),
        reportCorrupt: (n) => this.#reportCorrupt(n),
      }),
      (volume) => this.#exclusive(() => this.#volumes.removeEmpty(volume)),
    );
  }

  #maybeAutoCompact(volume: Volume): void {
    if (!this.#s.autoCompact || this.#closed || this.#compaction || volume === this.#volumes.active) return;
    const size = volume.end - SUPERBLOCK_SIZE;
    if (size <= 0 || (size - volume.liveBytes) / size < this.#s.compactThreshold) return;
    this.compact().catch((e) => {
      if (!(e instanceof NexusError && (e.code === "aborted" || e.code === "closed")))
        this.#lastCompactionError = e;
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  #pool(): WorkerPool {
    if (this.#s.pool) return this.#s.pool;
    this.#ownPool ??= new WorkerPool();
    return this.#ownPool;
  }

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", `the store at ${this.dir} is closed`, { dir: this.dir });
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#compactionAbort?.abort(new NexusError("closed", "the store is closing"));
    await this.#compaction?.catch(() => {});
    await this.#tail;
    await this.#syncer.idle();
    const errors = await this.#volumes.close();
    this.#index.close();
    await this.#ownPool?.close();
    await this.#lock.release();
    if (errors.length > 0) throw errors[0];
  }
}

function notFound(key: string): NexusError {
  return new NexusError("not_found", `no blob stored under key ${key}`, { key });
}

function assertBlob(bytes: unknown, what: string): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) {
    throw new NexusError("invalid_argument", `${what}: expected a Uint8Array, got ${describeType(bytes)}`);
  }
  if (bytes.length > MAX_BLOB_SIZE) {
    throw new NexusError(
      "invalid_argument",
      `${what}: a blob is at most ${MAX_BLOB_SIZE} bytes (use putStream)`,
      {
        size: bytes.length,
        limit: MAX_BLOB_SIZE,
      },
    );
  }
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return typeof value;
}
