/**
 * Opening a volume after anything, a clean close or a crash: replay its .idx, check the log's unsealed tail
 * against the volume, scan the needles past the log, cut a torn tail, and bring the .idx up to date.
 *
 * Trust rules (the byte layout and the torn-or-corrupt rule are in layout.ts). A slot of the .idx is believed
 * when its offset continues the previous one exactly and its needle fits the file, and its group's seal holds;
 * each entry of the last, unsealed group is checked against its needle's header: a valid header describing
 * another needle means the log is wrong from there (it is rescanned), unless that header is a byte-exact copy of
 * a needle the log has elsewhere (a misdirected write over the volume: corruption); a header failing its checksum
 * where the log says a needle is means corruption (kept, reported). Past the log, needles are read from the volume: a
 * valid header with a bad data checksum is corruption (indexed, so get answers `corrupt`, and reported); a region
 * with no valid header is skipped to the next needle that passes every check (magic, header checksum, data
 * checksum and, for data, the BLAKE3 key) and logged as a gap. Only an incomplete record at the very end (a torn
 * write) is cut.
 *
 * Runs synchronously: it is part of opening a store, before anyone can use it.
 */
import * as fs from "node:fs";
import type { Checksums } from "../../io/checksum.js";
import {
  align8,
  decodeHeader,
  decodeIdxHeader,
  encodeIdxEntry,
  encodeIdxGap,
  encodeIdxHeader,
  HEADER_SIZE,
  IDX_ENTRY_SIZE,
  IDX_GAP,
  IDX_HEADER_SIZE,
  IDX_PURGE,
  IDX_REFERENCE,
  IDX_REFS_IN_HEADER,
  IDX_SEAL,
  IDX_SEAL_OFFSET,
  IDX_TOMBSTONE,
  IdxSealer,
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

/** A believed slot of the .idx. */
interface Slot {
  /** Its position among the slots. */
  index: number;
  offset: number;
  length: number;
  field: number;
}

/** The believed slots, in typed arrays (a volume's log can hold millions: no object per slot). */
class SlotList {
  readonly #index: Uint32Array;
  readonly #offset: Float64Array;
  readonly #length: Float64Array;
  readonly #field: Uint32Array;
  length = 0;

  constructor(capacity: number) {
    this.#index = new Uint32Array(capacity);
    this.#offset = new Float64Array(capacity);
    this.#length = new Float64Array(capacity);
    this.#field = new Uint32Array(capacity);
  }

  push(index: number, offset: number, length: number, field: number): void {
    const j = this.length++;
    this.#index[j] = index;
    this.#offset[j] = offset;
    this.#length[j] = length;
    this.#field[j] = field;
  }

  at(j: number): Slot {
    return {
      index: this.#index[j]!,
      offset: this.#offset[j]!,
      length: this.#length[j]!,
      field: this.#field[j]!,
    };
  }
}

/**
 * How the needle at `slot` compares with its entry (header only, plus the data checksum when `withData`):
 * "match", "corrupt" (the header or data fails a checksum: damage where the log says a needle is), "unwritten"
 * (zero bytes: space a torn write never reached) or "other" (a valid header describing another needle).
 */
function checkSlot(
  fd: number,
  slot: Slot,
  prefix: Uint8Array,
  checks: Checksums,
  withData: boolean,
): "match" | "corrupt" | "unwritten" | "other" {
  const bytes = readAt(fd, slot.offset, withData ? slot.length : HEADER_SIZE);
  const h = decodeHeader(bytes, 0, checks.crc32c);
  if (typeof h === "string") return allZero(readAt(fd, slot.offset, slot.length)) ? "unwritten" : "corrupt";
  if (h.kind !== kindOfField(slot.field)) return "other";
  for (let i = 0; i < 8; i++) if (h.key[i] !== prefix[i]) return "other";
  if (h.kind === NeedleKind.Data && h.size !== (slot.field & ~IDX_REFS_IN_HEADER) >>> 0) return "other";
  if (h.kind === NeedleKind.Data && ((slot.field & IDX_REFS_IN_HEADER) !== 0) !== (h.refs !== 1))
    return "other";
  if (!withData || h.kind !== NeedleKind.Data) return "match";
  const dataCrc = checks.crc32c(bytes.subarray(HEADER_SIZE, HEADER_SIZE + h.size));
  return dataCrc === u32(bytes, HEADER_SIZE + h.size) ? "match" : "corrupt";
}

function readAt(fd: number, position: number, length: number): Uint8Array {
  const buffer = Buffer.allocUnsafe(length);
  return buffer.subarray(0, readFully(fd, buffer, position));
}

function allZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Whether bytes [from, to) of the file are all zero (read in windows). */
function zeroUpTo(win: FileWindow, from: number, to: number): boolean {
  for (let pos = from; pos < to; pos += WINDOW) {
    if (!allZero(win.get(pos, Math.min(WINDOW, to - pos)))) return false;
  }
  return true;
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
  if (volume.repairedSuperblock !== undefined) {
    onCorrupt({
      volume: volume.id,
      offset: 0,
      reason: `superblock rewritten (${volume.repairedSuperblock})`,
    });
  }

  // 1. The .idx: believed slots, in order, group by group.
  const idxSize = fs.fstatSync(volume.idxFd).size;
  const idx = Buffer.allocUnsafe(idxSize);
  readFully(volume.idxFd, idx, 0);
  const idxUsable = decodeIdxHeader(idx) === volume.generation;
  const total = idxUsable ? Math.floor((idxSize - IDX_HEADER_SIZE) / IDX_ENTRY_SIZE) : 0;
  const slotAt = (i: number) => IDX_HEADER_SIZE + i * IDX_ENTRY_SIZE;
  const slots = new SlotList(total);
  let groupStart = 0; // the first slot of the group being read (after the header or the last seal)
  let groupSlots = 0; // slots.length when that group began
  let believedSlots = 0; // slots [0, believedSlots) of the .idx are kept as they are
  let expected = SUPERBLOCK_SIZE;
  const seals: number[] = []; // believed seal slots
  for (let i = 0; i < total; i++) {
    const at = slotAt(i);
    const off8 = u32(idx, at + 8);
    const field = u32(idx, at + 12);
    if (field === IDX_SEAL && off8 === IDX_SEAL_OFFSET) {
      const sealed = u32(idx, at + 4) === i - groupStart;
      if (!sealed || checks.crc32c(idx.subarray(slotAt(groupStart), at)) !== u32(idx, at)) {
        // A damaged group: believe the log up to its start, rescan the volume from there.
        slots.length = groupSlots;
        believedSlots = groupStart;
        break;
      }
      seals.push(i);
      groupStart = i + 1;
      groupSlots = slots.length;
      believedSlots = i + 1;
      continue;
    }
    const offset = off8 * 8;
    const length = field === IDX_GAP ? align8(u32(idx, at)) : lengthOfField(field);
    const end = field === IDX_GAP ? align8(fileSize) : fileSize; // a kept tail is padded to 8 bytes
    if (offset !== expected || length === 0 || offset + length > end) break;
    slots.push(i, offset, length, field);
    expected = offset + length;
    believedSlots = i + 1;
  }
  /**
   * Whether the valid header found where `slot` says another needle is, is a byte-exact copy of a needle the log
   * has elsewhere: a misdirected write over the volume (the log is right, the needle here is lost: corrupt),
   * rather than damage to the log (which the volume then corrects).
   */
  const copiedOver = (slot: Slot): boolean => {
    const head = readAt(fd, slot.offset, HEADER_SIZE);
    for (let k = 0; k < slots.length; k++) {
      const other = slots.at(k);
      if (other.offset === slot.offset || other.field === IDX_GAP) continue;
      const at = slotAt(other.index);
      let same = true;
      for (let i = 0; i < 8 && same; i++) same = idx[at + i] === head[8 + i];
      if (same && Buffer.compare(readAt(fd, other.offset, HEADER_SIZE), head) === 0) return true;
    }
    return false;
  };
  // 2. The unsealed last group: each entry must describe the needle it points at. After a superblock was rewritten
  // the log's generation is taken on trust, so every entry is checked.
  const firstChecked = volume.repairedSuperblock !== undefined ? 0 : groupSlots;
  for (let j = firstChecked; j < slots.length; j++) {
    const slot = slots.at(j);
    if (slot.field === IDX_GAP) continue;
    const prefix = idx.subarray(slotAt(slot.index), slotAt(slot.index) + 8);
    const outcome = checkSlot(fd, slot, prefix, checks, j === slots.length - 1);
    if (outcome === "match") continue;
    if (outcome === "corrupt" || (outcome === "other" && copiedOver(slot))) {
      const key = outcome === "corrupt" ? keyOf(fd, slot.offset, checks) : undefined;
      onCorrupt({
        volume: volume.id,
        offset: slot.offset,
        ...(key !== undefined ? { key } : {}),
        reason:
          outcome === "corrupt"
            ? "corrupt where the .idx has a needle"
            : "overwritten by a copy of another needle",
      });
      continue;
    }
    // "other": the log is wrong from here; "unwritten": a torn write the log ran ahead of.
    slots.length = j;
    believedSlots = slot.index;
    break;
  }
  if (believedSlots < groupStart) {
    // Cut inside a sealed group: its seal goes, and its slots kept are the unsealed group now.
    while (seals.length > 0 && seals[seals.length - 1]! >= believedSlots) seals.pop();
    groupStart = seals.length > 0 ? seals[seals.length - 1]! + 1 : 0;
  }
  const last = slots.length > 0 ? slots.at(slots.length - 1) : undefined;
  expected = last !== undefined ? last.offset + last.length : SUPERBLOCK_SIZE;

  // 3. Replay the believed entries.
  for (let j = 0; j < slots.length; j++) {
    const slot = slots.at(j);
    const at = slotAt(slot.index);
    const field = slot.field;
    if (field === IDX_GAP) {
      onCorrupt({
        volume: volume.id,
        offset: slot.offset,
        reason: `${u32(idx, at)} unreadable bytes (logged as a gap)`,
      });
      continue;
    }
    const kind = kindOfField(field);
    let refs = 1;
    if (kind === NeedleKind.Data && (field & IDX_REFS_IN_HEADER) !== 0) {
      const h = decodeHeader(readAt(fd, slot.offset, HEADER_SIZE), 0, checks.crc32c);
      if (typeof h === "object") refs = h.refs;
    }
    onRecord({
      kind,
      lo: u32(idx, at),
      hi: u32(idx, at + 4),
      offset: slot.offset,
      length: slot.length,
      size: kind === NeedleKind.Data ? (field & ~IDX_REFS_IN_HEADER) >>> 0 : 0,
      refs,
      key: undefined,
    });
  }
  // The last entry is checked whole (data included): damage there is reported now, not at the first read.
  if (last !== undefined && last.field !== IDX_GAP) {
    const at = slotAt(last.index);
    if (checkSlot(fd, last, idx.subarray(at, at + 8), checks, true) === "corrupt") {
      onCorrupt({
        volume: volume.id,
        offset: last.offset,
        key: keyOf(fd, last.offset, checks),
        reason: "data checksum mismatch",
      });
    }
  }

  // 4. Scan the volume past the log.
  const added: Uint8Array[] = [];
  let scanned = 0;
  let pos = expected;
  const add = (record: ReplayRecord) => {
    onRecord(record);
    const entry = new Uint8Array(IDX_ENTRY_SIZE);
    encodeIdxEntry(
      entry,
      0,
      record.key!,
      record.offset / 8,
      idxSizeField(record.kind, record.size, record.refs),
    );
    added.push(entry);
    scanned++;
  };
  while (pos < fileSize) {
    const head = win.get(pos, HEADER_SIZE);
    if (head.length < HEADER_SIZE) break; // torn: the header is incomplete
    const h = decodeHeader(head, 0, checks.crc32c);
    if (typeof h === "object") {
      const length = needleLength(h.size);
      if (pos + length > fileSize) break; // torn: the needle runs past the end of the file
      const bytes = win.get(pos, length);
      const key = Uint8Array.from(bytes.subarray(8, 40));
      const record: ReplayRecord = {
        kind: h.kind,
        lo: u32(key, 0),
        hi: u32(key, 4),
        offset: pos,
        length,
        size: h.size,
        refs: h.refs,
        key,
      };
      const dataCrc = checks.crc32c(bytes.subarray(HEADER_SIZE, HEADER_SIZE + h.size));
      if (dataCrc !== u32(bytes, HEADER_SIZE + h.size)) {
        if (zeroUpTo(win, pos + HEADER_SIZE, fileSize)) break; // torn: the data never reached the disk
        // Corruption of a complete needle: kept and indexed (get answers corrupt), reported.
        onCorrupt({ volume: volume.id, offset: pos, key: hex(key), reason: "data checksum mismatch" });
      }
      add(record);
      pos += length;
      continue;
    }
    if (zeroUpTo(win, pos, fileSize)) break; // torn: space the write never reached
    const next = resync(win, pos + 8, fileSize, checks);
    const end = next ?? align8(fileSize);
    onCorrupt({
      volume: volume.id,
      offset: pos,
      reason: `${h}; ${end - pos} unreadable bytes kept (logged as a gap)`,
    });
    const gap = new Uint8Array(IDX_ENTRY_SIZE);
    encodeIdxGap(gap, 0, pos, end - pos);
    added.push(gap);
    scanned++;
    pos = end;
  }
  if (pos > fileSize) {
    // A kept unreadable tail that does not end on 8 bytes: pad it, so that the next needle is aligned.
    fs.ftruncateSync(fd, pos);
  }
  const cutBytes = Math.max(0, fileSize - pos);
  if (cutBytes > 0) fs.ftruncateSync(fd, pos);

  // 5. Bring the .idx up to date, sealing as it goes.
  const rebuiltIdx = !idxUsable;
  let written: Uint8Array;
  let keep: number;
  if (rebuiltIdx) {
    const sealer = new IdxSealer(checks.crc32c);
    written = Buffer.concat([encodeIdxHeader(volume.generation), sealer.addAll(added)]);
    volume.sealer = sealer;
    keep = 0;
    fs.ftruncateSync(volume.idxFd, 0);
  } else {
    const pending: Uint8Array[] = [];
    for (let i = groupStart; i < believedSlots; i++) pending.push(idx.subarray(slotAt(i), slotAt(i + 1)));
    const sealer = new IdxSealer(checks.crc32c, pending);
    written = sealer.addAll(added);
    volume.sealer = sealer;
    keep = slotAt(believedSlots);
    if (idxSize !== keep) fs.ftruncateSync(volume.idxFd, keep);
  }
  writeAll(volume.idxFd, [written], keep);
  volume.end = pos;
  volume.idxEnd = keep + written.length;
  if (cutBytes > 0 || added.length > 0 || rebuiltIdx || idxSize !== keep) {
    fs.fdatasyncSync(fd);
    fs.fdatasyncSync(volume.idxFd);
  }
  return { indexed: slots.length, scanned, cutBytes, rebuiltIdx };
}

function keyOf(fd: number, offset: number, checks: Checksums): string | undefined {
  const h = decodeHeader(readAt(fd, offset, HEADER_SIZE), 0, checks.crc32c);
  return typeof h === "object" ? hex(h.key) : undefined;
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
