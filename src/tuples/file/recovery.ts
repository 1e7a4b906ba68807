/**
 * Reading a segment or checkpoint back (layout.ts): the records it holds, and for the last segment where a torn
 * tail starts. The trust rules are written down in layout.ts; in short, a record is used only when its header and
 * payload checksums hold, nothing after a failed record is ever used, and a failure that is not a torn append
 * refuses to open (NexusError "corrupt", naming the file and offset) rather than dropping acknowledged writes.
 *
 * Runs synchronously on whole files: it is part of opening a store, before anyone can use it.
 */
import { NexusError } from "../../util/errors.js";
import {
  type Crc32c,
  decodeFileHeader,
  decodeRecordHeader,
  type FileHeader,
  RECORD_HEADER_SIZE,
  SEGMENT_HEADER_SIZE,
} from "./layout.js";

export interface ScannedRecord {
  readonly kind: number;
  /** The payload (a view into the file's bytes). */
  readonly payload: Uint8Array;
  /** Byte offset of the record in its file. */
  readonly offset: number;
}

export interface ScannedFile {
  readonly header: FileHeader;
  readonly records: ScannedRecord[];
  /** Where the last whole record ends: the file's length, or where a torn tail starts. */
  readonly end: number;
  /** Bytes past `end` (a torn tail; always 0 unless `tornTailAllowed`). */
  readonly tornBytes: number;
}

/**
 * Scans a segment or checkpoint file. With `tornTailAllowed` (the newest segment), a torn tail is reported in
 * `tornBytes`; everywhere else it is corruption. A last segment too short to hold its header, or holding only
 * zero bytes, is reported as `undefined`: a segment whose creation was cut short, with nothing in it.
 */
export function scanFile(
  bytes: Uint8Array,
  magic: Uint8Array,
  path: string,
  crc: Crc32c,
  tornTailAllowed: boolean,
): ScannedFile | undefined {
  const header = decodeFileHeader(magic, bytes, crc);
  if (typeof header === "string") {
    if (tornTailAllowed && (bytes.length < SEGMENT_HEADER_SIZE || allZero(bytes, 0))) return undefined;
    throw corrupt(path, 0, header);
  }
  const records: ScannedRecord[] = [];
  let at = SEGMENT_HEADER_SIZE;
  while (at < bytes.length) {
    const problem = recordAt(bytes, at, crc, records);
    if (problem === undefined) {
      at =
        records[records.length - 1]!.offset +
        RECORD_HEADER_SIZE +
        records[records.length - 1]!.payload.length;
      continue;
    }
    if (tornTailAllowed && problem.torn) return { header, records, end: at, tornBytes: bytes.length - at };
    throw corrupt(path, at, problem.reason);
  }
  return { header, records, end: at, tornBytes: 0 };
}

/** Reads the record at `at` into `records`, or says why it cannot and whether that looks like a torn append. */
function recordAt(
  bytes: Uint8Array,
  at: number,
  crc: Crc32c,
  records: ScannedRecord[],
): { reason: string; torn: boolean } | undefined {
  const left = bytes.length - at;
  if (left < RECORD_HEADER_SIZE) return { reason: "a partial record header", torn: true };
  if (allZero(bytes, at)) return { reason: "zero bytes", torn: true };
  const header = decodeRecordHeader(bytes, at, crc);
  if (typeof header === "string") return { reason: header, torn: false };
  const end = at + RECORD_HEADER_SIZE + header.length;
  if (end > bytes.length) return { reason: "a record cut short", torn: true };
  const payload = bytes.subarray(at + RECORD_HEADER_SIZE, end);
  if (crc(payload) !== header.payloadCrc) return { reason: "record payload checksum mismatch", torn: false };
  records.push({ kind: header.kind, payload, offset: at });
  return undefined;
}

function allZero(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

export function corrupt(path: string, offset: number, reason: string): NexusError {
  return new NexusError(
    "corrupt",
    `tuple store file ${path} is damaged at byte ${offset} (${reason}); it holds acknowledged writes, so the store does not open without it: restore the file from a backup`,
    { path, offset, reason },
  );
}
