/**
 * Compact file metadata: one fixed 64-byte record per path in one contiguous buffer, addressed by the path's node
 * in a prefix-sharing interner (path-interner.ts), so a million files cost about 100 bytes each, names included,
 * instead of an inode and a dentry each.
 *
 * Record (64 bytes, little-endian):
 *    0  8  path hash: 64-bit hash of the full path's UTF-8 (two 32-bit FNV-1a/murmur lanes), for sharding and
 *          integrity checks
 *    8 32  content hash: the BLAKE3-256 key of the content in the blob store (zero for directories)
 *   40  8  size in bytes
 *   48  8  mtime, ms since the Unix epoch
 *   56  8  flags: bit 0 present, bit 1 directory; bits 32..63 are the caller's
 *
 * Saved files: "NXMETA01", u32 version, u32 nodes, u32 pool bytes, u32 reserved, then the records, the parent
 * and name-start arrays of the interner, its name pool, and a CRC32C of everything before it. Saving writes a
 * temporary file, syncs it and renames it over the old one.
 */
import { open, readFile, rename } from "node:fs/promises";
import { createChecksums } from "../../io/checksum.js";
import { NexusError } from "../../util/errors.js";
import { fmix32 } from "../../util/hash.js";
import { PathInterner } from "./path-interner.js";

export const RECORD_SIZE = 64;
export const FLAG_PRESENT = 1;
export const FLAG_DIRECTORY = 2;
const MAGIC = "NXMETA01";
const VERSION = 1;
const HEADER = 24;

export interface FileMeta {
  /** BLAKE3-256 hex of the content (64 zeros for directories). */
  contentHash: string;
  size: number;
  /** ms since the Unix epoch. */
  mtime: number;
  /** The caller's flags (32 bits). */
  flags: number;
}

export interface FileRecord extends FileMeta {
  path: string;
  isDirectory: boolean;
  pathHash: bigint;
}

export class MetadataTable {
  #paths: PathInterner;
  #records: Uint8Array;
  #view: DataView;
  #files = 0;

  constructor(options: { capacity?: number } = {}) {
    const capacity = Math.max(16, options.capacity ?? 1024);
    this.#paths = new PathInterner(capacity);
    this.#records = new Uint8Array(capacity * RECORD_SIZE);
    this.#view = new DataView(this.#records.buffer);
    this.#mark(0, FLAG_PRESENT | FLAG_DIRECTORY); // the root
  }

  /** Files (present, not directories). */
  get size(): number {
    return this.#files;
  }

  /** All bytes the table holds: records buffer and interner arrays (capacity included). */
  get bytes(): number {
    return this.#records.byteLength + this.#paths.bytes;
  }

  /** Sets the metadata of the file at `path` (creating its parent directories). Returns its record id. */
  set(path: string, meta: FileMeta): number {
    const hash = parseHash(meta.contentHash, path);
    for (const [name, value] of [
      ["size", meta.size],
      ["mtime", meta.mtime],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new NexusError(
          "invalid_argument",
          `${path}: ${name} must be a safe integer ≥ 0, got ${value}`,
          {
            path,
            [name]: value,
          },
        );
      }
    }
    const flags = meta.flags ?? 0;
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff) {
      throw new NexusError("invalid_argument", `${path}: flags must be a u32, got ${flags}`, { path, flags });
    }
    const id = this.#paths.intern(path);
    if (id === 0)
      throw new NexusError("invalid_argument", `the root "/" is a directory, not a file`, { path });
    this.#ensure(this.#paths.size);
    const missing: number[] = [];
    let p = this.#paths.parentOf(id);
    for (; p !== undefined && p !== 0 && !(this.#flags(p) & FLAG_PRESENT); p = this.#paths.parentOf(p))
      missing.push(p);
    if (p !== undefined && p !== 0 && !(this.#flags(p) & FLAG_DIRECTORY)) {
      throw new NexusError("invalid_argument", `${path}: ${this.#paths.pathOf(p)} is a file`, { path });
    }
    for (const dir of missing) this.#mark(dir, FLAG_PRESENT | FLAG_DIRECTORY);
    const had = this.#flags(id);
    if (had & FLAG_DIRECTORY && had & FLAG_PRESENT) {
      throw new NexusError("invalid_argument", `${path} is a directory`, { path });
    }
    if (!(had & FLAG_PRESENT)) this.#files++;
    const at = id * RECORD_SIZE;
    const v = this.#view;
    const [h1, h2] = pathHash(path);
    v.setUint32(at, h1, true);
    v.setUint32(at + 4, h2, true);
    this.#records.set(hash, at + 8);
    setU64(v, at + 40, meta.size);
    setU64(v, at + 48, meta.mtime);
    v.setUint32(at + 56, FLAG_PRESENT, true);
    v.setUint32(at + 60, flags, true);
    return id;
  }

  get(path: string): FileRecord | undefined {
    const id = this.#paths.lookup(path);
    if (id === undefined || !(this.#flags(id) & FLAG_PRESENT)) return undefined;
    return this.#record(id);
  }

  has(path: string): boolean {
    return this.get(path) !== undefined;
  }

  /** Removes a file (directories go when they are empty). Returns false when nothing was there. */
  delete(path: string): boolean {
    const id = this.#paths.lookup(path);
    if (id === undefined || id === 0 || !(this.#flags(id) & FLAG_PRESENT)) return false;
    if (this.#flags(id) & FLAG_DIRECTORY) {
      for (const c of this.#paths.children(id)) {
        if (this.#flags(c) & FLAG_PRESENT) {
          throw new NexusError("invalid_argument", `directory ${path} is not empty`, { path });
        }
      }
    } else this.#files--;
    this.#records.fill(0, id * RECORD_SIZE, (id + 1) * RECORD_SIZE);
    return true;
  }

  /** The names in directory `path`, sorted; throws not_found when it is not a directory. */
  list(path: string): string[] {
    const id = this.#paths.lookup(path);
    if (
      id === undefined ||
      (this.#flags(id) & (FLAG_PRESENT | FLAG_DIRECTORY)) !== (FLAG_PRESENT | FLAG_DIRECTORY)
    ) {
      throw new NexusError("not_found", `no directory ${path}`, { path });
    }
    const names: string[] = [];
    for (const c of this.#paths.children(id))
      if (this.#flags(c) & FLAG_PRESENT) names.push(this.#paths.nameOf(c));
    return names.sort();
  }

  /** Every present file, as records (in node order). */
  *files(): IterableIterator<FileRecord> {
    for (let id = 1; id < this.#paths.size; id++) {
      const f = this.#flags(id);
      if (f & FLAG_PRESENT && !(f & FLAG_DIRECTORY)) yield this.#record(id);
    }
  }

  /** Shrinks every buffer to what is used. */
  trim(): void {
    this.#paths.trim();
    this.#records = this.#records.slice(0, this.#paths.size * RECORD_SIZE);
    this.#view = new DataView(this.#records.buffer);
  }

  async save(file: string): Promise<void> {
    const { parent, nameStart, pool } = this.#paths.exportArrays();
    const n = parent.length;
    const parts = [
      header(n, pool.length),
      this.#records.subarray(0, n * RECORD_SIZE),
      bytesOf(parent),
      bytesOf(nameStart),
      pool,
    ];
    const crc = (await createChecksums()).crc32c(Buffer.concat(parts));
    const trailer = new Uint8Array(4);
    new DataView(trailer.buffer).setUint32(0, crc, true);
    const tmp = `${file}.${process.pid}.tmp`;
    const fh = await open(tmp, "w");
    try {
      for (const p of [...parts, trailer]) await fh.write(p);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  }

  static async load(file: string): Promise<MetadataTable> {
    const bytes = new Uint8Array(await readFile(file));
    const bad = (why: string) => new NexusError("corrupt", `metadata file ${file}: ${why}`, { file });
    if (bytes.length < HEADER + 4 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
      throw bad("not a nexus-fast metadata file");
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(8, true) !== VERSION) throw bad(`unsupported version ${view.getUint32(8, true)}`);
    const n = view.getUint32(12, true);
    const poolBytes = view.getUint32(16, true);
    const end = HEADER + n * RECORD_SIZE + n * 4 + (n + 1) * 4 + poolBytes;
    if (bytes.length !== end + 4) throw bad("its length does not match its header");
    if ((await createChecksums()).crc32c(bytes.subarray(0, end)) !== view.getUint32(end, true)) {
      throw bad("checksum mismatch");
    }
    const parentAt = HEADER + n * RECORD_SIZE;
    const nameStartAt = parentAt + n * 4;
    const poolAt = nameStartAt + (n + 1) * 4;
    const records = bytes.slice(HEADER, parentAt);
    const parent = new Uint32Array(bytes.slice(parentAt, nameStartAt).buffer);
    const nameStart = new Uint32Array(bytes.slice(nameStartAt, poolAt).buffer);
    const pool = bytes.slice(poolAt, poolAt + poolBytes);
    const t = new MetadataTable({ capacity: 16 });
    t.#paths = PathInterner.fromArrays(parent, nameStart, pool);
    t.#records = records;
    t.#view = new DataView(records.buffer);
    for (let id = 1; id < n; id++) {
      const f = t.#flags(id);
      if (f & FLAG_PRESENT && !(f & FLAG_DIRECTORY)) t.#files++;
    }
    return t;
  }

  #flags(id: number): number {
    return this.#view.getUint32(id * RECORD_SIZE + 56, true);
  }

  #mark(id: number, flags: number): void {
    this.#records.fill(0, id * RECORD_SIZE, (id + 1) * RECORD_SIZE);
    const [h1, h2] = pathHash(this.#paths.pathOf(id));
    this.#view.setUint32(id * RECORD_SIZE, h1, true);
    this.#view.setUint32(id * RECORD_SIZE + 4, h2, true);
    this.#view.setUint32(id * RECORD_SIZE + 56, flags, true);
  }

  #ensure(nodes: number): void {
    if (nodes * RECORD_SIZE <= this.#records.length) return;
    const grown = new Uint8Array(
      Math.max(nodes, Math.ceil((this.#records.length / RECORD_SIZE) * 1.5)) * RECORD_SIZE,
    );
    grown.set(this.#records);
    this.#records = grown;
    this.#view = new DataView(grown.buffer);
  }

  #record(id: number): FileRecord {
    const at = id * RECORD_SIZE;
    const v = this.#view;
    const flags = v.getUint32(at + 56, true);
    return {
      path: this.#paths.pathOf(id),
      pathHash: v.getBigUint64(at, true),
      contentHash: Buffer.from(this.#records.buffer, this.#records.byteOffset + at + 8, 32).toString("hex"),
      size: getU64(v, at + 40),
      mtime: getU64(v, at + 48),
      flags: v.getUint32(at + 60, true),
      isDirectory: (flags & FLAG_DIRECTORY) !== 0,
    };
  }
}

function parseHash(hash: string | Uint8Array, path: string): Uint8Array {
  if (hash instanceof Uint8Array && hash.length === 32) return hash;
  if (typeof hash === "string" && /^[0-9a-fA-F]{64}$/.test(hash)) return Buffer.from(hash, "hex");
  throw new NexusError("invalid_argument", `${path}: contentHash must be 64 hex characters or 32 bytes`, {
    path,
  });
}

function setU64(v: DataView, at: number, n: number): void {
  v.setUint32(at, n >>> 0, true);
  v.setUint32(at + 4, Math.floor(n / 2 ** 32), true);
}

function getU64(v: DataView, at: number): number {
  return v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32;
}

function header(nodes: number, poolBytes: number): Uint8Array {
  const out = new Uint8Array(HEADER);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const v = new DataView(out.buffer);
  v.setUint32(8, VERSION, true);
  v.setUint32(12, nodes, true);
  v.setUint32(16, poolBytes, true);
  return out;
}

function bytesOf(a: Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The 64-bit path hash as two 32-bit lanes (FNV-1a with different bases, murmur-finished). */
export function pathHash(path: string): [number, number] {
  const bytes = new TextEncoder().encode(path);
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < bytes.length; i++) {
    a = Math.imul(a ^ bytes[i]!, 0x01000193);
    b = Math.imul(b ^ bytes[i]!, 0x01000193) ^ (b >>> 15);
  }
  return [fmix(a), fmix(b ^ bytes.length)];
}

function fmix(h: number): number {
  return fmix32(h) >>> 0;
}
