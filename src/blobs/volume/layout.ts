/**
 * On-disk layout of a nexus-fast store (volumes: format version 1; .idx logs: version 2). All integers are
 * little-endian.
 *
 * A store directory holds:
 *   LOCK                  the single-writer lock (the owner's pid)
 *   NNNNNN.vol            volumes: a superblock, then needles, append-only
 *   NNNNNN.idx            one index log per volume (rebuildable from the volume)
 *   NNNNNN.vol.compact    a compaction in progress (removed on open: the volume it copies is intact)
 *   NNNNNN.idx.compact    the new index log of a compaction whose volume was already swapped in
 *
 * Volume superblock (64 bytes, at offset 0):
 *    0   8  magic "NXSVOL\0\x01"
 *    8   2  format version (1)
 *   10   2  flags (bit 0: written by compaction)
 *   12   4  volume id (1..16383; the file name repeats it)
 *   16   8  generation: random, new for every file written; the .idx header repeats it
 *   24   8  created, ms since the Unix epoch
 *   32  28  reserved (0)
 *   60   4  CRC32C of bytes 0..59
 *
 * Needle (at an 8-byte-aligned offset ≥ 64; offsets are stored /8 in 32 bits, so a volume reaches 32 GiB):
 *    0   4  magic "NDL1" (the cookie that lets a scan find needles again after a damaged one)
 *    4   1  kind: 1 data, 2 reference (+1 to the count of the data needle of this key in this volume),
 *           3 tombstone (-1), 4 purge (the count drops to 0: the copy here was found corrupt and replaced)
 *    5   1  flags (0)
 *    6   2  reserved (0)
 *    8  32  key: BLAKE3-256 of the data
 *   40   4  size: data bytes (0 for reference, tombstone, purge)
 *   44   4  refs: references a data needle starts with (1; compaction writes the live count)
 *   48   8  append time, ms since the Unix epoch
 *   56   4  reserved (0)
 *   60   4  header checksum: CRC32C of bytes 0..59
 *   64   n  data
 *  64+n  4  data checksum: CRC32C of the data
 *           zero padding to the next multiple of 8
 * A needle occupies needleLength(n) = align8(68 + n) bytes. References and tombstones go to the volume that holds
 * the data needle they count, so each volume (with its .idx) is self-contained: its needles alone give the
 * reference count of every key it holds.
 *
 * Index log (.idx, version 2): a 16-byte header, then 16-byte slots in volume order, sealed in groups:
 *   header:  0 4 magic "NXIX"   4 2 version (2)   6 2 reserved   8 8 generation of its volume
 *   entry:   0 8 the key's first 8 bytes (as in the needle)   8 4 offset/8   12 4 size-or-kind:
 *            < 2^31: a data needle of that size with refs 1; 2^31 | size: a data needle whose refs are in its
 *            header; 0xFFFFFFFE reference; 0xFFFFFFFF tombstone; 0xFFFFFFFD purge.
 *   gap:     0 4 length in bytes   4 4 (0)   8 4 offset/8   12 4 0xFFFFFFFB: a damaged region recovery could not
 *            read as needles (kept, reported on every open, never served), so that the log stays continuous.
 *   seal:    0 4 CRC32C of the group's slots   4 4 their count   8 4 0xFFFFFFFF   12 4 0xFFFFFFFC: closes a
 *            group of IDX_SEAL_EVERY entries and gaps (the slots since the header or the previous seal).
 * The log is written after its needle and synced lazily. On open it is replayed: a slot is believed when its
 * offset continues the previous one exactly and its needle fits the file; a sealed group is believed only when
 * its seal's checksum holds (else the log is believed up to the group's start); the entries of the unsealed
 * group at the end are each checked against their needle's header. Needles past the believed log are scanned
 * from the volume itself. (A version-1 log has no seals: it is rebuilt from its volume.)
 *
 * Torn write or corruption (recovery.ts). A put appends its needle first, then its .idx entry, so:
 *   - torn write, cut off the file: an incomplete record at the tail, and only there: fewer than 64 bytes left,
 *     or a valid header whose needle runs past the end of the file, or (a header, or a valid header and then)
 *     nothing but zero bytes to the end (space the file system allotted that the write never reached). It was never acknowledged (an acknowledged put
 *     was synced whole before its promise resolved).
 *   - corruption, kept and reported (corruptNeedles(), `corrupt` on get, never returned): everything else, i.e.
 *     a complete record that fails a check: a valid header with a data checksum that fails (wherever the needle
 *     is, the last one included), a header that fails its checksum where the .idx says a needle is, a byte-exact
 *     copy of another needle where the .idx says a different one is (a misdirected write), or a region with no
 *     valid header (skipped to the next valid needle, or to the end of the file, and logged as a gap).
 * A data needle with a valid header and bad data stays in the index, so that get answers `corrupt` (not
 * `not_found`) and a put of the same content writes a good copy and purges this one.
 */
import { NexusError } from "../../util/errors.js";

export const SUPERBLOCK_SIZE = 64;
export const HEADER_SIZE = 64;
export const FOOTER_SIZE = 4;
export const IDX_ENTRY_SIZE = 16;
export const IDX_HEADER_SIZE = 16;
export const FORMAT_VERSION = 1;
/** Version of the .idx log (2: sealed groups and gaps). */
export const IDX_VERSION = 2;
/** Entries and gaps per sealed group of the .idx. */
export const IDX_SEAL_EVERY = 256;
/** Largest blob one needle holds (the .idx size field keeps its top bit for a flag). */
export const MAX_BLOB_SIZE = 2 ** 31 - 1024;
/** Volumes end before 32 GiB: offsets are stored /8 in 32 bits. */
export const MAX_VOLUME_BYTES = 2 ** 35;

export const SUPERBLOCK_MAGIC = new Uint8Array([0x4e, 0x58, 0x53, 0x56, 0x4f, 0x4c, 0x00, 0x01]); // "NXSVOL\0\1"
export const NEEDLE_MAGIC = 0x314c444e; // "NDL1" read as a little-endian u32
export const IDX_MAGIC = 0x5849584e; // "NXIX"

export const NeedleKind = { Data: 1, Reference: 2, Tombstone: 3, Purge: 4 } as const;
export type NeedleKind = (typeof NeedleKind)[keyof typeof NeedleKind];

export const IDX_REFERENCE = 0xfffffffe;
export const IDX_TOMBSTONE = 0xffffffff;
export const IDX_PURGE = 0xfffffffd;
export const IDX_GAP = 0xfffffffb;
export const IDX_SEAL = 0xfffffffc;
/** The offset/8 of a seal slot: no needle starts there (a volume ends before 32 GiB). */
export const IDX_SEAL_OFFSET = 0xffffffff;
export const IDX_REFS_IN_HEADER = 0x80000000;

export const SUPERBLOCK_FLAG_COMPACTED = 1;

export function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

export function needleLength(size: number): number {
  return align8(HEADER_SIZE + size + FOOTER_SIZE);
}

export interface Superblock {
  volumeId: number;
  generation: bigint;
  created: number;
  flags: number;
}

export interface NeedleHeader {
  kind: NeedleKind;
  key: Uint8Array; // 32 bytes (a view into the buffer it was read from)
  size: number;
  refs: number;
  time: number;
}

export type Crc32c = (bytes: Uint8Array) => number;

export function encodeSuperblock(sb: Superblock, crc: Crc32c): Uint8Array {
  const out = new Uint8Array(SUPERBLOCK_SIZE);
  const view = new DataView(out.buffer);
  out.set(SUPERBLOCK_MAGIC, 0);
  view.setUint16(8, FORMAT_VERSION, true);
  view.setUint16(10, sb.flags, true);
  view.setUint32(12, sb.volumeId, true);
  view.setBigUint64(16, sb.generation, true);
  view.setBigUint64(24, BigInt(sb.created), true);
  view.setUint32(60, crc(out.subarray(0, 60)), true);
  return out;
}

/** Decodes a superblock, or says why it is not one. */
export function decodeSuperblock(bytes: Uint8Array, crc: Crc32c): Superblock | string {
  if (bytes.length < SUPERBLOCK_SIZE) return "shorter than a superblock";
  for (let i = 0; i < 8; i++) if (bytes[i] !== SUPERBLOCK_MAGIC[i]) return "bad magic";
  const view = new DataView(bytes.buffer, bytes.byteOffset, SUPERBLOCK_SIZE);
  if (view.getUint32(60, true) !== crc(bytes.subarray(0, 60))) return "superblock checksum mismatch";
  const version = view.getUint16(8, true);
  if (version !== FORMAT_VERSION) return `unsupported format version ${version}`;
  return {
    flags: view.getUint16(10, true),
    volumeId: view.getUint32(12, true),
    generation: view.getBigUint64(16, true),
    created: Number(view.getBigUint64(24, true)),
  };
}

/** Writes a needle header into `out` (64 bytes at `at`). */
export function encodeHeader(
  out: Uint8Array,
  at: number,
  kind: NeedleKind,
  key: Uint8Array,
  size: number,
  refs: number,
  time: number,
  crc: Crc32c,
): void {
  const view = new DataView(out.buffer, out.byteOffset + at, HEADER_SIZE);
  view.setUint32(0, NEEDLE_MAGIC, true);
  view.setUint8(4, kind);
  view.setUint8(5, 0);
  view.setUint16(6, 0, true);
  out.set(key.subarray(0, 32), at + 8);
  view.setUint32(40, size, true);
  view.setUint32(44, refs, true);
  view.setBigUint64(48, BigInt(time), true);
  view.setUint32(56, 0, true);
  view.setUint32(60, crc(out.subarray(at, at + 60)), true);
}

/** Decodes the header at `at`, or says why it is not a valid one. */
export function decodeHeader(bytes: Uint8Array, at: number, crc: Crc32c): NeedleHeader | string {
  if (bytes.length - at < HEADER_SIZE) return "truncated header";
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, HEADER_SIZE);
  if (view.getUint32(0, true) !== NEEDLE_MAGIC) return "bad needle magic";
  if (view.getUint32(60, true) !== crc(bytes.subarray(at, at + 60))) return "header checksum mismatch";
  const kind = view.getUint8(4) as NeedleKind;
  if (kind < NeedleKind.Data || kind > NeedleKind.Purge) return `unknown needle kind ${kind}`;
  const size = view.getUint32(40, true);
  if (kind !== NeedleKind.Data && size !== 0) return "a reference record with a size";
  if (size > MAX_BLOB_SIZE) return "size out of range";
  return {
    kind,
    key: bytes.subarray(at + 8, at + 40),
    size,
    refs: view.getUint32(44, true),
    time: Number(view.getBigUint64(48, true)),
  };
}

export function encodeIdxHeader(generation: bigint): Uint8Array {
  const out = new Uint8Array(IDX_HEADER_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, IDX_MAGIC, true);
  view.setUint16(4, IDX_VERSION, true);
  view.setBigUint64(8, generation, true);
  return out;
}

/** The generation an .idx header names, or undefined when it is not a valid header. */
export function decodeIdxHeader(bytes: Uint8Array): bigint | undefined {
  if (bytes.length < IDX_HEADER_SIZE) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, IDX_HEADER_SIZE);
  if (view.getUint32(0, true) !== IDX_MAGIC || view.getUint16(4, true) !== IDX_VERSION) return undefined;
  return view.getBigUint64(8, true);
}

/** The .idx size-or-kind field of a needle. */
export function idxSizeField(kind: NeedleKind, size: number, refs: number): number {
  switch (kind) {
    case NeedleKind.Data:
      return refs === 1 ? size : (IDX_REFS_IN_HEADER | size) >>> 0;
    case NeedleKind.Reference:
      return IDX_REFERENCE;
    case NeedleKind.Tombstone:
      return IDX_TOMBSTONE;
    case NeedleKind.Purge:
      return IDX_PURGE;
  }
}

export function encodeIdxEntry(
  out: Uint8Array,
  at: number,
  key: Uint8Array,
  off8: number,
  field: number,
): void {
  out.set(key.subarray(0, 8), at);
  const view = new DataView(out.buffer, out.byteOffset + at + 8, 8);
  view.setUint32(0, off8, true);
  view.setUint32(4, field, true);
}

/** A gap slot: `length` bytes at `offset` that recovery could not read as needles. */
export function encodeIdxGap(out: Uint8Array, at: number, offset: number, length: number): void {
  const view = new DataView(out.buffer, out.byteOffset + at, IDX_ENTRY_SIZE);
  view.setUint32(0, length, true);
  view.setUint32(4, 0, true);
  view.setUint32(8, offset / 8, true);
  view.setUint32(12, IDX_GAP, true);
}

/**
 * Groups .idx slots and seals each group of IDX_SEAL_EVERY with a checksum slot, so that a flipped key byte in
 * the log (which the offsets cannot show) is caught on open. One per .idx being appended to.
 */
export class IdxSealer {
  #group: Uint8Array[];
  readonly #crc: Crc32c;

  /** `pending`: the slots of the log's last, unsealed group (from recovery), oldest first. */
  constructor(crc: Crc32c, pending: readonly Uint8Array[] = []) {
    this.#crc = crc;
    this.#group = [...pending];
  }

  /** The bytes to append for one 16-byte entry or gap: the slot itself, followed by a seal when it fills a group. */
  add(slot: Uint8Array): Uint8Array {
    this.#group.push(Uint8Array.from(slot));
    if (this.#group.length < IDX_SEAL_EVERY) return slot;
    const out = new Uint8Array(2 * IDX_ENTRY_SIZE);
    out.set(slot, 0);
    const group = Buffer.concat(this.#group);
    const view = new DataView(out.buffer, IDX_ENTRY_SIZE, IDX_ENTRY_SIZE);
    view.setUint32(0, this.#crc(group), true);
    view.setUint32(4, this.#group.length, true);
    view.setUint32(8, IDX_SEAL_OFFSET, true);
    view.setUint32(12, IDX_SEAL, true);
    this.#group = [];
    return out;
  }

  /** Several slots added one by one; returns what to append. */
  addAll(slots: readonly Uint8Array[]): Uint8Array {
    return Buffer.concat(slots.map((s) => this.add(s)));
  }
}

export function volumeFileName(id: number): string {
  return `${String(id).padStart(6, "0")}.vol`;
}

export function idxFileName(id: number): string {
  return `${String(id).padStart(6, "0")}.idx`;
}

export const VOLUME_NAME = /^(\d{6})\.vol$/;

/** A 64-character lowercase hex key -> its 32 bytes. Throws invalid_argument naming the bad key. */
export function parseKey(key: unknown): Uint8Array {
  if (typeof key !== "string" || key.length !== 64 || !/^[0-9a-fA-F]{64}$/.test(key)) {
    throw new NexusError(
      "invalid_argument",
      `a storage key is 64 hex characters (a BLAKE3-256 hash), got ${describeKey(key)}`,
      { key },
    );
  }
  return Uint8Array.from(Buffer.from(key, "hex"));
}

function describeKey(key: unknown): string {
  if (typeof key !== "string") return typeof key;
  return key.length > 80 ? `${JSON.stringify(key.slice(0, 77))}… (${key.length} chars)` : JSON.stringify(key);
}

export function keyHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, 32).toString("hex");
}

export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return false;
  return true;
}
