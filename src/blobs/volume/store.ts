/**
 * The needle store: content-addressed blobs in append-only volumes (layout.ts), found through the WASM needle
 * index (needle-index.ts), made durable by the fsync policy, recovered on open (recovery.ts) and compacted
 * (compaction.ts).
 *
 * Concurrency: reads run freely; every mutation (put, delete, the short steps of a compaction) goes through one
 * queue, so a single writer appends to a volume at a time. Under fsync "batch", writers that finished appending
 * share one fdatasync (group-sync.ts) before their promises resolve.
 */

import * as fs from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import {
  type Checksums,
  createChecksums,
  createCrc32cStream,
  createStreamHasher,
} from "../../io/checksum.js";
import { closeFile, type FsyncPolicy, ioError, openFile, syncDir, writeAt } from "../../io/fs-io.js";
import { GroupSync } from "../../io/group-sync.js";
import { acquireLock, type DirectoryLock } from "../../io/lock.js";
import { WorkerPool } from "../../parallel/pool.js";
import { NexusError } from "../../util/errors.js";
import { toAsyncIterable } from "../byte-stream.js";
import {
  type CompactHooks,
  type CompactOptions,
  type CompactResult,
  compactVolume,
  type LiveNeedle,
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
  type NeedleHeader,
  NeedleKind,
  needleLength,
  parseKey,
  SUPERBLOCK_SIZE,
  sameKey,
  VOLUME_NAME,
} from "./layout.js";
import { keyHalves, MAX_VOLUME_ID, NeedleIndex, type NeedleLocation } from "./needle-index.js";
import { type CorruptNeedle, type ReplayRecord, recoverVolume } from "./recovery.js";
import { Volume } from "./volume.js";

export type { FsyncPolicy } from "../../io/fs-io.js";

export interface StoreOptions {
  /** The store directory (created when missing). One writer at a time: a second gets NexusError "locked". */
  dir: string;
  /** A volume takes new needles until it reaches this many bytes (default 1 GiB; 4 KiB .. 28 GiB). */
  volumeSize?: number;
  /**
   * When a put or delete is acknowledged: "always" syncs each write before the next starts, "batch" (default)
   * acknowledges after a sync shared by the writes in flight (group commit), "never" leaves it to the OS (writes
   * survive a crash of the process, not of the machine). Every policy syncs on rollover and close.
   */
  fsync?: FsyncPolicy;
  /** Garbage ratio from which compact() rewrites a volume (default 0.3). */
  compactThreshold?: number;
  /** Compact in the background when a delete takes a volume past compactThreshold (default false). */
  autoCompact?: boolean;
  /** Worker pool for hashing large batches (default: one the store starts on demand and ends in close()). */
  pool?: WorkerPool;
  /** Blobs from putStream are kept in memory up to this size, then spilled to a staging file (default 8 MiB). */
  streamBufferBytes?: number;
  /** Test hooks (not part of the API). */
  testing?: {
    /** Keep only this many low bits of the index key, to make prefix collisions happen. */
    prefixBits?: number;
    onCompactStep?: CompactHooks["onStep"];
  };
}

export interface PutResult {
  /** BLAKE3-256 of the content, 64 lowercase hex characters. */
  key: string;
  size: number;
  /** True when the content was already stored (its reference count went up). */
  deduped: boolean;
}

export interface StoreStats {
  /** Live blobs (distinct contents). */
  needles: number;
  /** On-disk bytes of live needles (headers and padding included). */
  liveBytes: number;
  /** On-disk bytes compaction can reclaim (dead needles, reference records). */
  garbageBytes: number;
  volumes: number;
  /** Bytes of WASM memory the needle index holds: indexFixedBytes plus what its entries take. */
  indexBytes: number;
  /**
   * The index's memory when empty (code data, lookup buffers, the first pages): paid once per store, whatever
   * it holds.
   */
  indexFixedBytes: number;
  /**
   * The marginal RAM cost of a needle: (indexBytes - indexFixedBytes) / needles. WASM memory grows in 64 KiB
   * pages, so in a small store it is 0 or lumpy; it settles near 15 B from about a million needles.
   */
  indexBytesPerNeedle: number;
  /** indexBytes / needles: the fixed part included, so it is large for a small store (hundreds of bytes). */
  bytesPerNeedle: number;
  /** Needles found corrupt so far (reported, never served); see corruptNeedles(). */
  corruptNeedles: number;
}

export interface ScrubProgress {
  /** Live needles checked so far, of `total` (the live set when the pass began). */
  checked: number;
  total: number;
  bytesChecked: number;
  /** Needles found corrupt so far in this pass. */
  corrupt: number;
}

export interface ScrubOptions {
  /** Called every 256 needles or 4 MiB checked, and once at the end. */
  onProgress?: (progress: ScrubProgress) => void;
  /** Stops the pass (the result says `stopped`). */
  signal?: AbortSignal;
  /** Also check each blob against its BLAKE3 key (slower; the CRC32C check always runs). */
  verifyHash?: boolean;
}

export interface ScrubResult {
  checked: number;
  bytesChecked: number;
  /** The needles found corrupt in this pass (also in corruptNeedles()). A put of their content repairs them. */
  corrupt: CorruptNeedle[];
  stopped: boolean;
}

export interface GetOptions {
  /** Also check the content against its BLAKE3 key (the CRC32C check always runs). */
  verifyHash?: boolean;
}

const DEFAULT_VOLUME_SIZE = 2 ** 30;
const MIN_VOLUME_SIZE = 4096;
const MAX_VOLUME_SIZE = 28 * 2 ** 30;
const RECORD_LENGTH = needleLength(0);
const MAX_CORRUPT_KEPT = 1000;
/** Stored copies up to this size are checked in one read; larger ones in pieces. */
const CHECK_PIECE = 4 * 2 ** 20;

/** Where a live blob is, and how it is found: through the kernel index, or the collision overflow. */
interface Located extends NeedleLocation {
  overflow: boolean;
}

/** What a scrub found at one live needle. */
interface ScrubCheck {
  loc: Located;
  key: string | undefined;
  problem: string | undefined;
}

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

interface Settings {
  dir: string;
  volumeSize: number;
  fsync: FsyncPolicy;
  compactThreshold: number;
  autoCompact: boolean;
  pool: WorkerPool | undefined;
  streamBufferBytes: number;
  prefixMask: [lo: number, hi: number];
  hooks: CompactHooks;
}

function validateOptions(options: StoreOptions): Settings {
  if (typeof options !== "object" || options === null) {
    throw new NexusError("invalid_argument", "openStore takes an options object ({ dir, ... })");
  }
  const {
    dir,
    volumeSize = DEFAULT_VOLUME_SIZE,
    fsync = "batch",
    compactThreshold = 0.3,
    autoCompact = false,
    pool,
    streamBufferBytes = 8 * 2 ** 20,
    testing,
  } = options;
  const bad = (what: string, value: unknown) =>
    new NexusError("invalid_argument", `openStore: ${what}, got ${JSON.stringify(value)}`, { [what]: value });
  if (typeof dir !== "string" || dir.length === 0) throw bad("dir must be a non-empty path", dir);
  if (!Number.isInteger(volumeSize) || volumeSize < MIN_VOLUME_SIZE || volumeSize > MAX_VOLUME_SIZE) {
    throw bad(`volumeSize must be an integer from ${MIN_VOLUME_SIZE} to ${MAX_VOLUME_SIZE}`, volumeSize);
  }
  if (fsync !== "always" && fsync !== "batch" && fsync !== "never") {
    throw bad('fsync must be "always", "batch" or "never"', fsync);
  }
  if (typeof compactThreshold !== "number" || !(compactThreshold > 0 && compactThreshold <= 1)) {
    throw bad("compactThreshold must be a ratio in (0, 1]", compactThreshold);
  }
  if (typeof autoCompact !== "boolean") throw bad("autoCompact must be a boolean", autoCompact);
  if (pool !== undefined && !(pool instanceof WorkerPool)) throw bad("pool must be a WorkerPool", "?");
  if (!Number.isInteger(streamBufferBytes) || streamBufferBytes < 0) {
    throw bad("streamBufferBytes must be an integer ≥ 0", streamBufferBytes);
  }
  const bits = testing?.prefixBits ?? 64;
  const prefixMask: [number, number] = [
    bits >= 32 ? 0xffffffff : 2 ** bits - 1,
    bits >= 64 ? 0xffffffff : bits <= 32 ? 0 : 2 ** (bits - 32) - 1,
  ];
  return {
    dir,
    volumeSize,
    fsync,
    compactThreshold,
    autoCompact,
    pool,
    streamBufferBytes,
    prefixMask,
    hooks: { onStep: testing?.onCompactStep },
  };
}

const LOAD = Symbol("load");

export class NeedleStore implements AsyncDisposable {
  readonly dir: string;
  readonly #s: Settings;
  readonly #lock: DirectoryLock;
  readonly #checks: Checksums;
  readonly #index: NeedleIndex;
  readonly #indexFixedBytes: number;
  readonly #volumes = new Map<number, Volume>();
  #active!: Volume;
  /** Reference counts above 1, by location (volume * 2^32 + offset/8). */
  readonly #refs = new Map<number, number>();
  /** Blobs whose 64-bit prefix collides with another live blob's, by full key. */
  readonly #overflow = new Map<string, NeedleLocation>();
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
    this.#syncer = new GroupSync(() => this.#syncDirty());
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
        const volume = Volume.open(dir, id, this.#checks.crc32c);
        this.#volumes.set(id, volume);
        recoverVolume(
          volume,
          this.#checks,
          (record) => this.#replay(volume, record),
          (needle) => this.#reportCorrupt(needle),
        );
      }
      const last = ids.length > 0 ? this.#volumes.get(ids[ids.length - 1]!)! : await this.#createVolume(1);
      this.#active = last;
    } catch (e) {
      await Promise.all([...this.#volumes.values()].map((v) => v.close()));
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
    const iterable = toAsyncIterable(source);
    const hasher = await createStreamHasher();
    const chunks: Uint8Array[] = [];
    let size = 0;
    let staging: { path: string; fd: number } | undefined;
    try {
      for await (const chunk of iterable) {
        if (!(chunk instanceof Uint8Array)) {
          throw new NexusError("invalid_argument", "putStream: every chunk must be a Uint8Array", {
            chunk: typeof chunk,
          });
        }
        size += chunk.length;
        if (size > MAX_BLOB_SIZE) {
          throw new NexusError("invalid_argument", `putStream: a blob is at most ${MAX_BLOB_SIZE} bytes`, {
            limit: MAX_BLOB_SIZE,
          });
        }
        hasher.update(chunk);
        if (staging === undefined && size <= this.#s.streamBufferBytes) {
          chunks.push(chunk);
          continue;
        }
        if (staging === undefined) {
          const dir = join(this.#s.dir, "staging");
          await mkdir(dir, { recursive: true });
          const path = join(dir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
          staging = { path, fd: await openFile(path, "w+") };
          await writeAt(staging.fd, chunks, 0);
          chunks.length = 0;
        }
        await writeAt(staging.fd, [chunk], size - chunk.length);
      }
      const { key, crc } = hasher.finish();
      this.#assertOpen();
      const from = staging;
      const result = await this.#exclusive(() =>
        from === undefined
          ? this.#putHashed(chunks, size, key, crc)
          : this.#putHashed(from.fd, size, key, crc),
      );
      await this.#durable(result.wrote);
      return result.put;
    } finally {
      if (staging) {
        await closeFile(staging.fd).catch(() => {});
        fs.rmSync(staging.path, { force: true });
      }
    }
  }

  /** The content stored under `key`, checked against its checksums; NexusError "not_found" or "corrupt". */
  async get(key: string, options: GetOptions = {}): Promise<Uint8Array> {
    const k = parseKey(key);
    this.#assertOpen();
    const loc = this.#lookup(k);
    if (loc === undefined) throw notFound(key);
    const bytes = await this.#volumes.get(loc.volume)!.read(loc.offset, loc.length);
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
      if (this.#sharesPrefix(h, k, loc)) throw notFound(key); // another blob sharing the 64-bit prefix
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
    const loc = this.#lookup(k);
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
      const loc = this.#lookup(k);
      if (loc === undefined) return undefined;
      const h = await this.#readHeader(loc);
      if (typeof h === "object" && !sameKey(h.key, k) && this.#sharesPrefix(h, k, loc)) return undefined;
      const volume = await this.#appendRecord(NeedleKind.Tombstone, k, loc);
      const count = this.#count(loc) - 1;
      if (count > 0) this.#setCount(loc, count);
      else this.#removeLive(k, loc);
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
    for (const v of this.#volumes.values()) {
      liveBytes += v.liveBytes;
      garbageBytes += v.end - SUPERBLOCK_SIZE - v.liveBytes;
    }
    const needles = this.#index.size + this.#overflow.size;
    const indexBytes = this.#index.memoryBytes;
    const grown = Math.max(0, indexBytes - this.#indexFixedBytes);
    return {
      needles,
      liveBytes,
      garbageBytes,
      volumes: this.#volumes.size,
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
    const live: { lo: number; hi: number; hex?: string }[] = [];
    for (const e of this.#index.entries()) live.push({ lo: e.lo, hi: e.hi });
    for (const hex of this.#overflow.keys()) live.push({ lo: 0, hi: 0, hex });
    const result: ScrubResult = { checked: 0, bytesChecked: 0, corrupt: [], stopped: false };
    const progress = () =>
      options.onProgress?.({
        checked: result.checked,
        total: live.length,
        bytesChecked: result.bytesChecked,
        corrupt: result.corrupt.length,
      });
    let reported = 0;
    for (const n of live) {
      if (options.signal?.aborted || this.#closed) {
        result.stopped = true;
        break;
      }
      let checked: ScrubCheck | undefined;
      try {
        checked = await this.#scrubOne(n, options.verifyHash === true);
      } catch (e) {
        if (isClosing(e)) {
          result.stopped = true;
          break;
        }
        throw e;
      }
      if (checked === undefined) continue; // deleted meanwhile
      const { loc, key, problem } = checked;
      result.checked++;
      result.bytesChecked += loc.length;
      if (problem !== undefined) {
        const needle: CorruptNeedle = {
          volume: loc.volume,
          offset: loc.offset,
          ...(key !== undefined ? { key } : {}),
          reason: problem,
        };
        this.#reportCorrupt(needle);
        result.corrupt.push(needle);
      }
      if (result.checked % 256 === 0 || result.bytesChecked - reported >= CHECK_PIECE) {
        reported = result.bytesChecked;
        progress();
      }
    }
    progress();
    return result;
  }

  /**
   * Checks one live needle of a scrub: where the index has it now, and again if it moved (a compaction swapped
   * its volume) while it was being read, so that a move is never taken for damage. Undefined when it is gone.
   */
  async #scrubOne(
    n: { lo: number; hi: number; hex?: string },
    verifyHash: boolean,
  ): Promise<ScrubCheck | undefined> {
    const where = () => {
      const found = n.hex !== undefined ? this.#overflow.get(n.hex) : this.#index.get(n.lo, n.hi);
      return found && this.#volumes.has(found.volume)
        ? { ...found, overflow: n.hex !== undefined }
        : undefined;
    };
    let outcome: ScrubCheck | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const loc = where();
      if (loc === undefined) return undefined;
      let problem: string | undefined;
      let key = n.hex;
      const h = await this.#readHeader(loc);
      if (typeof h === "string") problem = h;
      else {
        key = keyHex(h.key);
        const [lo, hi] = this.#prefix(h.key);
        const indexed = n.hex !== undefined ? key === n.hex : lo === n.lo && hi === n.hi;
        if (!indexed) problem = "the index points at another needle";
        else if (h.kind !== NeedleKind.Data) problem = "the index points at a reference record";
        else {
          const state = await this.#checkStored(loc, h.key, verifyHash);
          if (state !== "good") problem = state;
        }
      }
      outcome = { loc, key, problem };
      const now = where();
      if (problem === undefined || (now?.volume === loc.volume && now.offset === loc.offset)) break;
    }
    return outcome;
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
    const loc = this.#lookup(key);
    let refs = 1;
    let overflow = false;
    if (loc !== undefined) {
      // The stored copy is checked whole (header and data checksum): a re-upload is the client's only repair,
      // so dedup must never count a reference to a copy that cannot be read back.
      const stored = await this.#checkStored(loc, key);
      if (stored === "good") {
        const volume = await this.#appendRecord(NeedleKind.Reference, key, loc);
        this.#setCount(loc, this.#count(loc) + 1);
        return { put: { key: hex, size, deduped: true }, wrote: [volume] };
      }
      if (stored === "other" && !loc.overflow) {
        overflow = true; // a different blob holds this 64-bit prefix
      } else {
        // The stored copy is corrupt or gone: purge it and store this one with all its references.
        this.#reportCorrupt({ volume: loc.volume, offset: loc.offset, key: hex, reason: stored });
        refs = this.#count(loc) + 1;
        await this.#appendRecord(NeedleKind.Purge, key, loc);
        this.#removeLive(key, loc);
        overflow = loc.overflow;
      }
    }
    const length = needleLength(size);
    const volume = await this.#volumeFor(length);
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
    this.#addLive(key, placed, refs);
    if (this.#s.fsync === "always") await volume.sync();
    return { put: { key: hex, size, deduped: false }, wrote: [volume] };
  }

  /** Appends a reference, tombstone or purge record to the volume that holds `target`. */
  async #appendRecord(kind: NeedleKind, key: Uint8Array, target: NeedleLocation): Promise<Volume> {
    const volume = this.#volumes.get(target.volume)!;
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

  /** The volume a needle of `length` bytes goes to: the active one, or a new one when it is full. */
  async #volumeFor(length: number): Promise<Volume> {
    const active = this.#active;
    const fits = active.end + length <= this.#s.volumeSize || active.end === SUPERBLOCK_SIZE;
    if (fits && active.end + length <= MAX_VOLUME_BYTES) return active;
    await active.sync();
    await active.syncIdx();
    const id = Math.max(...this.#volumes.keys()) + 1;
    this.#active = await this.#createVolume(id);
    return this.#active;
  }

  async #createVolume(id: number): Promise<Volume> {
    if (id > MAX_VOLUME_ID) {
      throw new NexusError("io_error", `the store has used every volume id (${MAX_VOLUME_ID})`, {
        dir: this.dir,
      });
    }
    const volume = await Volume.create(this.#s.dir, id, this.#checks.crc32c);
    this.#volumes.set(id, volume);
    return volume;
  }

  /** Runs `fn` alone among mutations (a promise chain: FIFO, an error does not break the chain). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Makes the writes of an acknowledged operation durable per the fsync policy. */
  async #durable(wrote: readonly Volume[]): Promise<void> {
    if (this.#s.fsync === "batch" && wrote.length > 0) await this.#syncer.request();
  }

  async #syncDirty(): Promise<void> {
    await Promise.all([...this.#volumes.values()].filter((v) => v.dirty).map((v) => v.sync()));
  }

  // ---- the live set ----------------------------------------------------------------------------------------

  #prefix(key: Uint8Array): [number, number] {
    const [lo, hi] = keyHalves(key);
    const [mlo, mhi] = this.#s.prefixMask;
    return [(lo & mlo) >>> 0, (hi & mhi) >>> 0];
  }

  #lookup(key: Uint8Array): Located | undefined {
    if (this.#overflow.size > 0) {
      const o = this.#overflow.get(keyHex(key));
      if (o) return { ...o, overflow: true };
    }
    const [lo, hi] = this.#prefix(key);
    const loc = this.#index.get(lo, hi);
    return loc && { ...loc, overflow: false };
  }

  #count(loc: NeedleLocation): number {
    return this.#refs.get(locationKey(loc)) ?? 1;
  }

  #setCount(loc: NeedleLocation, count: number): void {
    if (count > 1) this.#refs.set(locationKey(loc), count);
    else this.#refs.delete(locationKey(loc));
  }

  #addLive(key: Uint8Array | undefined, loc: Located, refs: number, lohi?: [number, number]): void {
    if (loc.overflow)
      this.#overflow.set(keyHex(key!), { volume: loc.volume, offset: loc.offset, length: loc.length });
    else {
      const [lo, hi] = lohi ?? this.#prefix(key!);
      this.#index.set(lo, hi, loc);
    }
    this.#setCount(loc, refs);
    const v = this.#volumes.get(loc.volume)!;
    v.liveBytes += loc.length;
    v.liveNeedles++;
  }

  #removeLive(key: Uint8Array | undefined, loc: Located, lohi?: [number, number]): void {
    if (loc.overflow) this.#overflow.delete(keyHex(key!));
    else {
      const [lo, hi] = lohi ?? this.#prefix(key!);
      this.#index.remove(lo, hi);
    }
    this.#refs.delete(locationKey(loc));
    const v = this.#volumes.get(loc.volume);
    if (v) {
      v.liveBytes -= loc.length;
      v.liveNeedles--;
    }
  }

  /**
   * Whether a header found where the index points at `key` is another blob that merely shares the index's
   * 64-bit prefix (then `key` is not stored), rather than a sign that the index and the volume disagree.
   */
  #sharesPrefix(h: NeedleHeader, key: Uint8Array, loc: Located): boolean {
    if (loc.overflow || h.kind !== NeedleKind.Data) return false;
    const [a, b] = this.#prefix(h.key);
    const [c, d] = this.#prefix(key);
    return a === c && b === d;
  }

  /**
   * Checks the stored copy at `loc` whole: "good", "other" (a different blob sharing the prefix), or why it
   * cannot be read back (corrupt, cut short, missing from disk).
   */
  async #checkStored(loc: Located, key: Uint8Array, verifyHash = false): Promise<string> {
    const volume = this.#volumes.get(loc.volume);
    if (volume === undefined) return "its volume is gone";
    const first = await volume.read(loc.offset, Math.min(loc.length, CHECK_PIECE));
    const h = decodeHeader(first, 0, this.#checks.crc32c);
    if (typeof h === "string") return first.length < HEADER_SIZE ? "missing from the volume" : h;
    if (!sameKey(h.key, key))
      return this.#sharesPrefix(h, key, loc) ? "other" : "the index points at another needle";
    if (h.kind !== NeedleKind.Data) return "the index points at a reference record";
    if (needleLength(h.size) !== loc.length) return "size does not match the index";
    const dataEnd = HEADER_SIZE + h.size;
    let stored: number;
    let computed: number;
    if (loc.length <= CHECK_PIECE) {
      if (first.length < loc.length) return "needle cut short";
      const data = first.subarray(HEADER_SIZE, dataEnd);
      computed = this.#checks.crc32c(data);
      stored = new DataView(first.buffer, first.byteOffset + dataEnd, FOOTER_SIZE).getUint32(0, true);
      if (verifyHash && computed === stored && !sameKey(this.#checks.blake3(data), key))
        return "content does not hash to its key";
    } else {
      const crc = await createCrc32cStream();
      const hash = verifyHash ? await createStreamHasher() : undefined;
      let pos = HEADER_SIZE;
      let piece: Uint8Array = first.subarray(HEADER_SIZE);
      let footer: Uint8Array = new Uint8Array(0);
      while (true) {
        const data = piece.subarray(0, Math.max(0, Math.min(piece.length, dataEnd - pos)));
        crc.update(data);
        hash?.update(data);
        footer = concat(footer, piece.subarray(data.length));
        pos += piece.length;
        if (pos >= HEADER_SIZE + h.size + FOOTER_SIZE) break;
        piece = await volume.read(loc.offset + pos, Math.min(loc.length - pos, CHECK_PIECE));
        if (piece.length === 0) return "needle cut short";
      }
      computed = crc.finish();
      stored = new DataView(footer.buffer, footer.byteOffset, FOOTER_SIZE).getUint32(0, true);
      if (verifyHash && computed === stored && !sameKey(hash!.finish().key, key))
        return "content does not hash to its key";
    }
    return computed === stored ? "good" : "data checksum mismatch";
  }

  async #readHeader(loc: NeedleLocation) {
    const bytes = await this.#volumes.get(loc.volume)!.read(loc.offset, HEADER_SIZE);
    return decodeHeader(bytes, 0, this.#checks.crc32c);
  }

  /** The full key of the needle at `loc`, read synchronously (open-time replay), or undefined when unreadable. */
  #readKeySync(loc: NeedleLocation): Uint8Array | undefined {
    const volume = this.#volumes.get(loc.volume);
    if (!volume) return undefined;
    const head = new Uint8Array(HEADER_SIZE);
    fs.readSync(volume.fd, head, 0, HEADER_SIZE, loc.offset);
    const h = decodeHeader(head, 0, this.#checks.crc32c);
    return typeof h === "object" ? h.key : undefined;
  }

  /** Applies one needle of a volume being opened, in volume order. */
  #replay(volume: Volume, r: ReplayRecord): void {
    const lohi: [number, number] = [
      (r.lo & this.#s.prefixMask[0]) >>> 0,
      (r.hi & this.#s.prefixMask[1]) >>> 0,
    ];
    const here: Located = { volume: volume.id, offset: r.offset, length: r.length, overflow: false };
    if (r.kind === NeedleKind.Data) {
      let key = r.key;
      if (this.#overflow.size > 0) {
        key ??= this.#readKeySync(here);
        const o = key && this.#overflow.get(keyHex(key));
        if (o) {
          // The same content live twice (a re-put after a purge, or torn bookkeeping): the later copy wins.
          this.#removeLive(key, { ...o, overflow: true });
          this.#addLive(key, { ...here, overflow: true }, r.refs);
          return;
        }
      }
      const existing = this.#index.get(lohi[0], lohi[1]);
      if (existing === undefined) {
        this.#addLive(key, here, r.refs, lohi);
        return;
      }
      key ??= this.#readKeySync(here);
      const old = this.#readKeySync(existing);
      if (key && old && !sameKey(key, old)) {
        this.#addLive(key, { ...here, overflow: true }, r.refs);
      } else {
        this.#removeLive(old, { ...existing, overflow: false }, lohi);
        this.#addLive(key, here, r.refs, lohi);
      }
      return;
    }
    // A reference, tombstone or purge: its data needle is earlier in this same volume.
    let target: Located | undefined;
    let key = r.key;
    const primary = this.#index.get(lohi[0], lohi[1]);
    if (primary && primary.volume === volume.id && primary.offset < r.offset) {
      target = { ...primary, overflow: false };
      if (this.#overflow.size > 0) {
        key ??= this.#readKeySync(here);
        const o = key && this.#overflow.get(keyHex(key));
        if (o && o.volume === volume.id) target = { ...o, overflow: true };
      }
    } else if (this.#overflow.size > 0) {
      key ??= this.#readKeySync(here);
      const o = key && this.#overflow.get(keyHex(key));
      if (o && o.volume === volume.id && o.offset < r.offset) target = { ...o, overflow: true };
    }
    if (target === undefined) return; // its data needle is gone (corrupt, or dead): nothing to count
    if (r.kind === NeedleKind.Reference) this.#setCount(target, this.#count(target) + 1);
    else {
      const count = r.kind === NeedleKind.Tombstone ? this.#count(target) - 1 : 0;
      if (count > 0) this.#setCount(target, count);
      else this.#removeLive(key ?? this.#readKeySync(target), target, lohi);
    }
  }

  #reportCorrupt(needle: CorruptNeedle): void {
    const known = this.#corrupt.some((c) => c.volume === needle.volume && c.offset === needle.offset);
    if (known) return;
    this.#corruptCount++;
    this.#corrupt.push(needle);
    if (this.#corrupt.length > MAX_CORRUPT_KEPT) this.#corrupt.shift();
  }

  // ---- compaction ------------------------------------------------------------------------------------------

  async #compactAll(threshold: number, options: CompactOptions, signal: AbortSignal): Promise<CompactResult> {
    const total: CompactResult = {
      volumes: [],
      bytesReclaimed: 0,
      needlesCopied: 0,
      corrupt: 0,
      skipped: [],
    };
    const candidates = [...this.#volumes.values()]
      .filter((v) => {
        const size = v.end - SUPERBLOCK_SIZE;
        return size > 0 && (size - v.liveBytes) / size >= threshold && size - v.liveBytes > 0;
      })
      .map((v) => v.id);
    for (const id of candidates) {
      if (signal.aborted) break;
      const volume = this.#volumes.get(id)!;
      const r = await compactVolume({
        volume,
        checks: this.#checks,
        hooks: this.#s.hooks,
        signal,
        onProgress: options.onProgress,
        exclusive: (fn) => this.#exclusive(fn),
        seal: async () => {
          if (this.#active === volume) {
            await volume.sync();
            await volume.syncIdx();
            this.#active = await this.#createVolume(Math.max(...this.#volumes.keys()) + 1);
          }
        },
        liveNeedles: () => this.#liveIn(id),
        moved: (moves) => this.#applyMoves(volume, moves),
        reportCorrupt: (n) => this.#reportCorrupt(n),
      });
      if (r.skipped) total.skipped.push(id);
      else total.volumes.push(id);
      if (volume.end === SUPERBLOCK_SIZE) await this.#exclusive(() => this.#removeEmptyVolume(volume));
      total.bytesReclaimed += r.bytesReclaimed;
      total.needlesCopied += r.needlesCopied;
      total.corrupt += r.corrupt;
    }
    return total;
  }

  /** Deletes a volume that compaction left empty (the .idx first: a lone volume file rebuilds its log). */
  async #removeEmptyVolume(volume: Volume): Promise<void> {
    if (volume === this.#active || volume.end !== SUPERBLOCK_SIZE) return;
    this.#volumes.delete(volume.id);
    await volume.close();
    fs.rmSync(volume.idxPath, { force: true });
    fs.rmSync(volume.path, { force: true });
    await syncDir(this.#s.dir);
  }

  /** The live data needles of volume `id` with their counts, sorted by offset (called inside the write lock). */
  #liveIn(id: number): LiveNeedle[] {
    const out: LiveNeedle[] = [];
    for (const e of this.#index.entries()) {
      if (e.volume === id)
        out.push({ offset: e.offset, length: e.length, lo: e.lo, hi: e.hi, refs: this.#count(e) });
    }
    for (const [hex, loc] of this.#overflow) {
      if (loc.volume === id)
        out.push({ offset: loc.offset, length: loc.length, lo: 0, hi: 0, hex, refs: this.#count(loc) });
    }
    return out.sort((a, b) => a.offset - b.offset);
  }

  /** Where the live-set keeps a needle of the snapshot now (undefined when it died or moved meanwhile). */
  #current(volumeId: number, n: LiveNeedle): NeedleLocation | undefined {
    const loc = n.hex !== undefined ? this.#overflow.get(n.hex) : this.#index.get(n.lo, n.hi);
    return loc && loc.volume === volumeId && loc.offset === n.offset ? loc : undefined;
  }

  /**
   * After a compaction swapped volume files: points every needle that is still live at its new offset (in
   * ascending order, so a new offset never lands on an old one not yet moved). Synchronous: it runs in the same
   * step as the descriptor swap.
   */
  #applyMoves(volume: Volume, moves: { needle: LiveNeedle; to: number }[]): void {
    for (const { needle, to } of moves) {
      const loc = this.#current(volume.id, needle);
      if (loc === undefined) continue;
      const count = this.#count(loc);
      this.#refs.delete(locationKey(loc));
      const next = { volume: volume.id, offset: to, length: loc.length };
      if (needle.hex !== undefined) this.#overflow.set(needle.hex, next);
      else this.#index.set(needle.lo, needle.hi, next);
      this.#setCount(next, count);
    }
  }

  #maybeAutoCompact(volume: Volume): void {
    if (!this.#s.autoCompact || this.#closed || this.#compaction || volume === this.#active) return;
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
    const errors: unknown[] = [];
    for (const v of this.#volumes.values()) {
      try {
        await v.sync();
        await v.syncIdx();
      } catch (e) {
        errors.push(e);
      }
      await v.close();
    }
    this.#index.close();
    await this.#ownPool?.close();
    await this.#lock.release();
    if (errors.length > 0) throw errors[0];
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function isClosing(e: unknown): boolean {
  return e instanceof NexusError && e.code === "closed";
}

function locationKey(loc: NeedleLocation): number {
  return loc.volume * 2 ** 32 + loc.offset / 8;
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
