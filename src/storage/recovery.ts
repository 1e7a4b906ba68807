/**
 * Opening a volume after anything, a clean close or a crash: replay its .idx, check the log's tail against the
 * volume, scan the needles past the last indexed one, cut a torn tail, and bring the .idx up to date.
 *
 * Trust rules. An .idx entry is believed when its offset continues the previous needle exactly and its needle fits
 * the file; the last believed entry must also match its needle (header, key, size, data checksum), else it is
 * dropped and the one before is checked. Needles past the log are believed only when their header and data
 * checksums hold. A bad header in the scanned part is skipped by searching for the next needle (magic, header
 * checksum, data checksum and, for data, the BLAKE3 key itself); when none follows, the rest is a torn tail and
 * is cut. Nothing that fails a check is ever indexed: it is reported.
 *
 * Runs synchronously: it is part of opening a store, before anyone can use it.
 */
import * as fs from "node:fs";
import type { Checksums } from "./checksum.js";
import {
  decodeHeader,
  decodeIdxHeader,
  encodeIdxEntry,
  encodeIdxHeader,
  HEADER_SIZE,
  IDX_ENTRY_SIZE,
  IDX_HEADER_SIZE,
  IDX_PURGE,
  IDX_REFERENCE,
  IDX_REFS_IN_HEADER,
  IDX_TOMBSTONE,
  idxSizeField,
  NEEDLE_MAGIC,
  NeedleKind,
  needleLength,
  SUPERBLOCK_SIZE,
} from "./layout.js";
import type { Volume } from "./volume.js";

export interface ReplayRecord {
  kind: NeedleKind;
  /** The key's first 8 bytes as (lo, hi) u32 halves. */
  lo: number;
  hi: number;
  /** Byte offset of the needle in its volume. */
  offset: number;
  /** On-disk length of the needle. */
  length: number;
  /** Data bytes (0 for references, tombstones, purges). */
  size: number;
  /** References a data needle starts with. */
  refs: number;
  /** The full key, when the needle itself was read (scanned); undefined for needles known from the .idx. */
  key: Uint8Array | undefined;
}

export interface CorruptNeedle {
  volume: number;
  offset: number;
  /** The key, when the needle's header could still be read. */
  key?: string;
  reason: string;
}

export interface RecoveryResult {
  /** Needles replayed from the .idx. */
  indexed: number;
  /** Needles found by scanning the volume past the .idx. */
  scanned: number;
  /** Bytes cut off the end of the volume (a torn append). */
  cutBytes: number;
  /** Whether the .idx was unusable (missing, foreign, damaged) and was rewritten from the volume. */
  rebuiltIdx: boolean;
}

const WINDOW = 4 * 1024 * 1024;
const RECORD_LENGTH = needleLength(0);

/** A read-ahead window over a file, for sequential scans. */
class FileWindow {
  #buffer = Buffer.allocUnsafe(WINDOW);
  #start = 0;
  #length = 0;
  constructor(
    readonly fd: number,
    readonly size: number,
  ) {}

  /** Bytes [pos, pos + n) (fewer at the end of the file). */
  get(pos: number, n: number): Uint8Array {
    const end = Math.min(pos + n, this.size);
    if (pos >= this.#start && end <= this.#start + this.#length) {
      return this.#buffer.subarray(pos - this.#start, end - this.#start);
    }
    if (end - pos > this.#buffer.length) {
      const big = Buffer.allocUnsafe(end - pos);
      const got = readFully(this.fd, big, pos);
      return big.subarray(0, got);
    }
    this.#start = pos;
    this.#length = readFully(this.fd, this.#buffer, pos);
    return this.#buffer.subarray(0, Math.min(this.#length, end - pos));
  }
}

function readFully(fd: number, buffer: Uint8Array, position: number): number {
  let done = 0;
  while (done < buffer.length) {
    const n = fs.readSync(fd, buffer, done, buffer.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

function kindOfField(field: number): NeedleKind {
  if (field === IDX_REFERENCE) return NeedleKind.Reference;
  if (field === IDX_TOMBSTONE) return NeedleKind.Tombstone;
  if (field === IDX_PURGE) return NeedleKind.Purge;
  return NeedleKind.Data;
}

function lengthOfField(field: number): number {
  return kindOfField(field) === NeedleKind.Data ? needleLength(field & ~IDX_REFS_IN_HEADER) : RECORD_LENGTH;
}

/** Checks the needle at `offset` fully: header, kind, size, the key's first 8 bytes, data checksum. */
function needleMatches(
  win: FileWindow,
  offset: number,
  field: number,
  prefix: Uint8Array,
  checks: Checksums,
): boolean {
  const length = lengthOfField(field);
  const bytes = win.get(offset, length);
  if (bytes.length < length) return false;
  const h = decodeHeader(bytes, 0, checks.crc32c);
  if (typeof h === "string" || h.kind !== kindOfField(field)) return false;
  for (let i = 0; i < 8; i++) if (h.key[i] !== prefix[i]) return false;
  if (h.kind === NeedleKind.Data && h.size !== (field & ~IDX_REFS_IN_HEADER) >>> 0) return false;
  return (
    checks.crc32c(bytes.subarray(HEADER_SIZE, HEADER_SIZE + h.size)) === u32(bytes, HEADER_SIZE + h.size)
  );
}

export function recoverVolume(
  volume: Volume,
  checks: Checksums,
  onRecord: (record: ReplayRecord) => void,
  onCorrupt: (needle: CorruptNeedle) => void,
): RecoveryResult {
  const fd = volume.fd;
  const fileSize = fs.fstatSync(fd).size;
  const win = new FileWindow(fd, fileSize);

  // 1. The .idx: believed entries, in order.
  const idxSize = fs.fstatSync(volume.idxFd).size;
  const idx = Buffer.allocUnsafe(idxSize);
  readFully(volume.idxFd, idx, 0);
  const idxUsable = decodeIdxHeader(idx) === volume.generation;
  const total = idxUsable ? Math.floor((idxSize - IDX_HEADER_SIZE) / IDX_ENTRY_SIZE) : 0;
  const starts = new Float64Array(total);
  let expected = SUPERBLOCK_SIZE;
  let believed = 0;
  for (let i = 0; i < total; i++) {
    const at = IDX_HEADER_SIZE + i * IDX_ENTRY_SIZE;
    const offset = u32(idx, at + 8) * 8;
    const length = lengthOfField(u32(idx, at + 12));
    if (offset !== expected || offset + length > fileSize) break;
    starts[i] = offset;
    expected = offset + length;
    believed = i + 1;
  }
  // 2. The log's tail must match the volume.
  while (believed > 0) {
    const at = IDX_HEADER_SIZE + (believed - 1) * IDX_ENTRY_SIZE;
    if (needleMatches(win, starts[believed - 1]!, u32(idx, at + 12), idx.subarray(at, at + 8), checks)) break;
    believed--;
  }
  expected =
    believed > 0
      ? starts[believed - 1]! + lengthOfField(u32(idx, IDX_HEADER_SIZE + (believed - 1) * 16 + 12))
      : 64;

  // 3. Replay the believed entries.
  for (let i = 0; i < believed; i++) {
    const at = IDX_HEADER_SIZE + i * IDX_ENTRY_SIZE;
    const field = u32(idx, at + 12);
    const kind = kindOfField(field);
    let refs = 1;
    if (kind === NeedleKind.Data && (field & IDX_REFS_IN_HEADER) !== 0) {
      const h = decodeHeader(win.get(starts[i]!, HEADER_SIZE), 0, checks.crc32c);
      if (typeof h === "object") refs = h.refs;
    }
    onRecord({
      kind,
      lo: u32(idx, at),
      hi: u32(idx, at + 4),
      offset: starts[i]!,
      length: lengthOfField(field),
      size: kind === NeedleKind.Data ? (field & ~IDX_REFS_IN_HEADER) >>> 0 : 0,
      refs,
      key: undefined,
    });
  }

  // 4. Scan the volume past the log.
  const added: Uint8Array[] = [];
  let scanned = 0;
  let pos = expected;
  while (pos < fileSize) {
    const head = win.get(pos, HEADER_SIZE);
    if (head.length < HEADER_SIZE) break; // a torn header
    const h = decodeHeader(head, 0, checks.crc32c);
    if (typeof h === "object") {
      const length = needleLength(h.size);
      if (pos + length > fileSize) break; // a torn needle
      const bytes = win.get(pos, length);
      const key = Uint8Array.from(bytes.subarray(8, 40));
      const dataCrc = checks.crc32c(bytes.subarray(HEADER_SIZE, HEADER_SIZE + h.size));
      if (dataCrc === u32(bytes, HEADER_SIZE + h.size)) {
        onRecord({
          kind: h.kind,
          lo: u32(key, 0),
          hi: u32(key, 4),
          offset: pos,
          length,
          size: h.size,
          refs: h.refs,
          key,
        });
        const entry = new Uint8Array(IDX_ENTRY_SIZE);
        encodeIdxEntry(entry, 0, key, pos / 8, idxSizeField(h.kind, h.size, h.refs));
        added.push(entry);
        scanned++;
        pos += length;
        continue;
      }
      if (pos + length === fileSize) break; // the last needle, torn inside its data
      onCorrupt({ volume: volume.id, offset: pos, key: hex(key), reason: "data checksum mismatch" });
      pos += length;
      continue;
    }
    const next = resync(win, pos + 8, fileSize, checks);
    if (next === undefined) break;
    onCorrupt({
      volume: volume.id,
      offset: pos,
      reason: `${h}; skipped ${next - pos} bytes to the next needle`,
    });
    pos = next;
  }
  const cutBytes = fileSize - pos;
  if (cutBytes > 0) fs.ftruncateSync(fd, pos);

  // 5. Bring the .idx up to date.
  const rebuiltIdx = !idxUsable;
  if (rebuiltIdx) {
    fs.ftruncateSync(volume.idxFd, 0);
    writeAll(volume.idxFd, [encodeIdxHeader(volume.generation), ...added], 0);
  } else {
    const keep = IDX_HEADER_SIZE + believed * IDX_ENTRY_SIZE;
    if (idxSize !== keep) fs.ftruncateSync(volume.idxFd, keep);
    writeAll(volume.idxFd, added, keep);
  }
  volume.end = pos;
  volume.idxEnd = IDX_HEADER_SIZE + (believed + scanned) * IDX_ENTRY_SIZE;
  if (cutBytes > 0 || added.length > 0 || rebuiltIdx) {
    fs.fdatasyncSync(fd);
    fs.fdatasyncSync(volume.idxFd);
  }
  return { indexed: believed, scanned, cutBytes, rebuiltIdx };
}

/** The next offset ≥ from (8-aligned) holding a needle that passes every check, or undefined. */
function resync(win: FileWindow, from: number, fileSize: number, checks: Checksums): number | undefined {
  for (let q = from; q + HEADER_SIZE <= fileSize; q += 8) {
    const head = win.get(q, HEADER_SIZE);
    if (u32(head, 0) !== NEEDLE_MAGIC) continue;
    const h = decodeHeader(head, 0, checks.crc32c);
    if (typeof h === "string") continue;
    const length = needleLength(h.size);
    if (q + length > fileSize) continue;
    const bytes = win.get(q, length);
    const data = bytes.subarray(HEADER_SIZE, HEADER_SIZE + h.size);
    if (checks.crc32c(data) !== u32(bytes, HEADER_SIZE + h.size)) continue;
    if (h.kind === NeedleKind.Data && hex(checks.blake3(data)) !== hex(bytes.subarray(8, 40))) continue;
    return q;
  }
  return undefined;
}

function writeAll(fd: number, parts: readonly Uint8Array[], position: number): void {
  if (parts.length === 0) return;
  const all = Buffer.concat(parts);
  let done = 0;
  while (done < all.length) done += fs.writeSync(fd, all, done, all.length - done, position + done);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
