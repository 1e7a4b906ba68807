/**
 * One volume file and its index log: creation (superblock first, made durable before the name appears), appends
 * at the tail, positioned reads that survive a compaction swapping the file underneath, and syncing.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";
import {
  closeFile,
  ioError,
  openFile,
  readAt,
  syncData,
  syncDir,
  truncateFile,
  writeAt,
} from "../../io/fs-io.js";
import { NexusError } from "../../util/errors.js";
import {
  type Crc32c,
  decodeIdxHeader,
  decodeSuperblock,
  encodeIdxHeader,
  encodeSuperblock,
  IDX_HEADER_SIZE,
  IdxSealer,
  idxFileName,
  SUPERBLOCK_SIZE,
  type Superblock,
  volumeFileName,
} from "./layout.js";

export function newGeneration(): bigint {
  return randomBytes(8).readBigUInt64LE(0);
}

/** Writes a fresh volume (superblock) and its .idx (header) at the given paths, synced. Returns the superblock. */
export function writeEmptyVolume(
  volumePath: string,
  idxPath: string,
  volumeId: number,
  flags: number,
  crc: Crc32c,
): Superblock {
  const sb: Superblock = { volumeId, generation: newGeneration(), created: Date.now(), flags };
  writeSynced(volumePath, encodeSuperblock(sb, crc));
  writeSynced(idxPath, encodeIdxHeader(sb.generation));
  return sb;
}

function writeSynced(path: string, bytes: Uint8Array): void {
  const fd = fs.openSync(path, "w", 0o644);
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, 0);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export class Volume {
  readonly id: number;
  readonly dir: string;
  #fd: number;
  #idxFd: number;
  generation: bigint;
  /** Where the next needle goes (the file's valid length). */
  end: number;
  /** Where the next .idx entry goes. */
  idxEnd: number;
  /** On-disk bytes of the live data needles this volume holds. */
  liveBytes = 0;
  /** Live data needles. */
  liveNeedles = 0;
  /** Whether writes since the last sync are pending. */
  dirty = false;
  /**
   * The first failed fdatasync of the volume or its .idx. Linux reports a writeback error once: a later fdatasync
   * returns 0 without the bytes written before it being durable, so a write synced by it was acknowledged on
   * nothing. Every later sync fails with this error, until a compaction adopts rewritten, synced files.
   */
  #syncFailed: NexusError | undefined;
  /** An .idx append failed: the log stops here and is completed from the volume on the next open. */
  idxBroken = false;
  /** Seals the .idx in groups; recovery hands it the log's unsealed last group. */
  sealer: IdxSealer;
  /** Why the superblock was rewritten on open (it failed its checks), or undefined. */
  readonly repairedSuperblock: string | undefined;
  #pins = new Map<number, number>();
  #retired = new Set<number>();
  #drained: (() => void)[] = [];
  #idxDirty = false;
  #closed = false;

  private constructor(
    dir: string,
    id: number,
    fd: number,
    idxFd: number,
    sb: Superblock,
    end: number,
    idxEnd: number,
    crc: Crc32c,
    repairedSuperblock?: string,
  ) {
    this.dir = dir;
    this.sealer = new IdxSealer(crc);
    this.repairedSuperblock = repairedSuperblock;
    this.id = id;
    this.#fd = fd;
    this.#idxFd = idxFd;
    this.generation = sb.generation;
    this.end = end;
    this.idxEnd = idxEnd;
  }

  get path(): string {
    return join(this.dir, volumeFileName(this.id));
  }

  get idxPath(): string {
    return join(this.dir, idxFileName(this.id));
  }

  /** The descriptors, for recovery (synchronous scans at open). */
  get fd(): number {
    return this.#fd;
  }
  get idxFd(): number {
    return this.#idxFd;
  }

  /** Creates volume `id` in `dir`: written under temporary names, synced, then renamed into place. */
  static async create(dir: string, id: number, crc: Crc32c): Promise<Volume> {
    const volumePath = join(dir, volumeFileName(id));
    const idxPath = join(dir, idxFileName(id));
    try {
      const sb = writeEmptyVolume(`${volumePath}.new`, `${idxPath}.new`, id, 0, crc);
      fs.renameSync(`${idxPath}.new`, idxPath);
      fs.renameSync(`${volumePath}.new`, volumePath);
      await syncDir(dir);
      const fd = await openFile(volumePath, "r+");
      const idxFd = await openFile(idxPath, "r+");
      return new Volume(dir, id, fd, idxFd, sb, SUPERBLOCK_SIZE, IDX_HEADER_SIZE, crc);
    } catch (e) {
      throw ioError(e, "cannot create volume", volumePath);
    }
  }

  /**
   * Opens volume `id` and checks its superblock. The caller replays and reconciles the .idx (recovery.ts), then
   * sets `end` and `idxEnd`. A missing .idx is created empty (with the volume's generation).
   *
   * A superblock that fails its checks (bit rot: bad magic, checksum, a file cut inside it) is rewritten with the
   * id the file name gives and the generation its .idx names (a new one when the .idx is unusable), and reported
   * through `repairedSuperblock`: one damaged block must not make every needle unreadable. A
   * valid superblock of an unknown format version, or naming another volume, is refused (corrupt).
   */
  static open(dir: string, id: number, crc: Crc32c): Volume {
    const volumePath = join(dir, volumeFileName(id));
    const idxPath = join(dir, idxFileName(id));
    const fd = fs.openSync(volumePath, "r+");
    try {
      const head = new Uint8Array(SUPERBLOCK_SIZE);
      const n = fs.readSync(fd, head, 0, SUPERBLOCK_SIZE, 0);
      let sb = decodeSuperblock(head.subarray(0, n), crc);
      let repaired: string | undefined;
      if (typeof sb === "string" && !sb.startsWith("unsupported format version")) {
        repaired = sb;
        // The .idx header names the generation it was written for: keep it, so that the log still serves (every
        // entry of it is then checked against its needle, see recovery.ts); else a new one (the log is rebuilt).
        const idxHead = new Uint8Array(IDX_HEADER_SIZE);
        const got = fs.existsSync(idxPath) ? fs.readFileSync(idxPath).subarray(0, IDX_HEADER_SIZE) : idxHead;
        const generation = decodeIdxHeader(got) ?? newGeneration();
        sb = { volumeId: id, generation, created: Date.now(), flags: 0 };
        fs.writeSync(fd, encodeSuperblock(sb, crc), 0, SUPERBLOCK_SIZE, 0);
        fs.fdatasyncSync(fd);
      }
      if (typeof sb === "string") {
        throw new NexusError("corrupt", `volume ${volumePath} has no valid superblock (${sb})`, {
          path: volumePath,
          reason: sb,
        });
      }
      if (sb.volumeId !== id) {
        throw new NexusError("corrupt", `volume ${volumePath} says it is volume ${sb.volumeId}`, {
          path: volumePath,
        });
      }
      const idxFd = fs.openSync(idxPath, fs.existsSync(idxPath) ? "r+" : "w+", 0o644);
      return new Volume(dir, id, fd, idxFd, sb, SUPERBLOCK_SIZE, IDX_HEADER_SIZE, crc, repaired);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** One positioned read of `length` bytes at `offset`. Returns fewer bytes only past the end of the file. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    const fd = this.#pin();
    try {
      // Its own ArrayBuffer (not a slice of Node's shared pool), uninitialized: the read fills it.
      const buffer = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
      const n = await readAt(fd, buffer, offset);
      return n === length ? buffer : buffer.subarray(0, n);
    } catch (e) {
      throw ioError(e, "cannot read volume", this.path);
    } finally {
      this.#unpin(fd);
    }
  }

  /** Appends `buffers` (one needle or several) at the tail; on failure the tail is cut back. Returns the offset. */
  async append(buffers: readonly Uint8Array[], length: number): Promise<number> {
    const at = this.end;
    try {
      await writeAt(this.#fd, buffers, at);
    } catch (e) {
      await truncateFile(this.#fd, at).catch(() => {});
      throw ioError(e, "cannot append to volume", this.path);
    }
    this.end = at + length;
    this.dirty = true;
    return at;
  }

  /** Appends one .idx slot, and the seal of its group when it fills one (best effort: the log is rebuilt from
   * the volume when it lags). */
  async appendIdx(slot: Uint8Array): Promise<void> {
    if (this.idxBroken) return;
    const at = this.idxEnd;
    const bytes = this.sealer.add(slot);
    try {
      await writeAt(this.#idxFd, [bytes], at);
      this.idxEnd = at + bytes.length;
      this.#idxDirty = true;
    } catch {
      // The log must never skip a needle: stop appending; the next open rescans the volume past the log.
      this.idxBroken = true;
      await truncateFile(this.#idxFd, at).catch(() => {});
    }
  }

  /** Cuts the volume back to `end` (a write that could not be completed). */
  async truncate(end: number): Promise<void> {
    await truncateFile(this.#fd, end);
    this.end = end;
  }

  async sync(): Promise<void> {
    if (this.#syncFailed !== undefined) throw this.#syncFailed;
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await syncData(this.#fd);
    } catch (e) {
      this.dirty = true;
      this.#syncFailed = ioError(e, "cannot sync volume", this.path);
      throw this.#syncFailed;
    }
  }

  async syncIdx(): Promise<void> {
    if (this.#syncFailed !== undefined) throw this.#syncFailed;
    if (!this.#idxDirty) return;
    this.#idxDirty = false;
    try {
      await syncData(this.#idxFd);
    } catch (e) {
      this.#idxDirty = true;
      this.#syncFailed = ioError(e, "cannot sync volume index", this.idxPath);
      throw this.#syncFailed;
    }
  }

  /**
   * Appends a needle whose body is copied from `source` (a staging file, read from offset 0) in pieces, between
   * `header` and `footer`; on failure the tail is cut back. Returns the offset.
   */
  async appendFrom(header: Uint8Array, source: number, size: number, footer: Uint8Array): Promise<number> {
    const at = this.end;
    const piece = Buffer.allocUnsafe(Math.min(size, 1 << 20));
    try {
      await writeAt(this.#fd, [header], at);
      for (let done = 0; done < size; ) {
        const n = await readAt(source, piece.subarray(0, Math.min(piece.length, size - done)), done);
        if (n === 0) throw new NexusError("io_error", "the staging file ended early", { size, done });
        await writeAt(this.#fd, [piece.subarray(0, n)], at + header.length + done);
        done += n;
      }
      await writeAt(this.#fd, [footer], at + header.length + size);
    } catch (e) {
      await truncateFile(this.#fd, at).catch(() => {});
      throw ioError(e, "cannot append to volume", this.path);
    }
    this.end = at + header.length + size + footer.length;
    this.dirty = true;
    return at;
  }

  /**
   * Adopts the files a compaction renamed into place, given their already open descriptors: synchronous, so that
   * the caller can update its index in the same step. The old descriptors close once the reads using them finish.
   */
  adopt(fd: number, idxFd: number, generation: bigint, end: number, idxEnd: number, sealer: IdxSealer): void {
    this.sealer = sealer;
    this.#retire(this.#fd);
    this.#retire(this.#idxFd);
    this.#fd = fd;
    this.#idxFd = idxFd;
    this.generation = generation;
    this.end = end;
    this.idxEnd = idxEnd;
    this.dirty = false;
    this.idxBroken = false;
    this.#syncFailed = undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#retire(this.#fd);
    this.#retire(this.#idxFd);
    // Reads still in flight close their descriptor when they finish: wait for them.
    while (this.#pins.size > 0) await new Promise<void>((resolve) => this.#drained.push(resolve));
  }

  #pin(): number {
    if (this.#closed) throw new NexusError("closed", `volume ${this.path} is closed`);
    const fd = this.#fd;
    this.#pins.set(fd, (this.#pins.get(fd) ?? 0) + 1);
    return fd;
  }

  #unpin(fd: number): void {
    const n = (this.#pins.get(fd) ?? 1) - 1;
    if (n > 0) this.#pins.set(fd, n);
    else {
      this.#pins.delete(fd);
      if (this.#retired.delete(fd)) fs.closeSync(fd);
      if (this.#pins.size === 0) for (const wake of this.#drained.splice(0)) wake();
    }
  }

  #retire(fd: number): void {
    if (this.#pins.has(fd)) this.#retired.add(fd);
    else fs.closeSync(fd);
  }
}

/** Closes a descriptor, ignoring errors (cleanup paths). */
export async function closeQuietly(fd: number | undefined): Promise<void> {
  if (fd !== undefined) await closeFile(fd).catch(() => {});
}
