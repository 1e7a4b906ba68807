/**
 * On-disk layout of the file tuple store (format version 1). All integers are little-endian.
 *
 * A store directory holds:
 *   LOCK                 the single-writer lock (storage/lock.ts: the owner's pid)
 *   NNNNNNNNNN.log       log segments, numbered from 1: a header, then records in commit order, append-only
 *   CHECKPOINT           the newest checkpoint: the whole state at one revision (optional)
 *   CHECKPOINT.tmp       a checkpoint being written (removed on open: CHECKPOINT is only ever renamed into place)
 *
 * Segment header (32 bytes, at offset 0):
 *    0   8  magic "NXTLOG\0\x01"
 *    8   2  format version (1)
 *   10   2  reserved (0)
 *   12   4  segment number (the file name repeats it)
 *   16   8  store id: 8 random bytes chosen when the store was created; TupleStore.id is their hex
 *   24   4  reserved (0)
 *   28   4  CRC32C of bytes 0..27
 *
 * Record (from offset 32 on, one after another without padding):
 *    0   4  magic "NXTR"
 *    4   1  kind (RecordKind below)
 *    5   3  reserved (0)
 *    8   4  payload length n (≤ MAX_PAYLOAD)
 *   12   4  CRC32C of the payload
 *   16   4  CRC32C of bytes 0..15 (the header: its length can be trusted before the payload is read)
 *   20   n  payload: UTF-8 JSON (codec.ts)
 * A record occupies RECORD_HEADER_SIZE + n bytes. One write batch is one record, so a record that fails a check
 * takes the whole batch with it and a batch is never half there.
 *
 * Segment kinds: 1 write batch (one revision), 2 model version. Checkpoint kinds: 16 state (revision and
 * changelog floor), 17 tuples (a chunk of live tuples), 18 changes (a chunk of the retained changelog),
 * 19 commits (a chunk of commit times), 20 models (a chunk of model versions), 21 end (counts of the above; a
 * checkpoint without it is incomplete).
 *
 * Checkpoint file: a header like a segment's with magic "NXTCKP\0\x01" whose segment number is the first segment
 * to replay after it (every earlier segment is already in the checkpoint), then checkpoint records.
 *
 * What recovery believes (recovery.ts): every record of a segment before the last, and of a checkpoint, must pass
 * every check, else the store refuses to open (corrupt). In the last segment a torn tail, which is what an append
 * cut short by a crash leaves, is cut off: fewer bytes left than a record header, only zero bytes left, or a
 * record whose header checks out but whose payload runs past the end of the file. Anything else there (a header
 * or payload checksum that fails with all the bytes present) is corruption, not a torn append, and refuses to
 * open.
 */

export const FORMAT_VERSION = 1;
export const SEGMENT_HEADER_SIZE = 32;
export const RECORD_HEADER_SIZE = 20;
/** The largest payload one record holds (a write batch larger than this is refused). */
export const MAX_PAYLOAD = 64 * 1024 * 1024;

export const SEGMENT_MAGIC = new Uint8Array([0x4e, 0x58, 0x54, 0x4c, 0x4f, 0x47, 0x00, 0x01]); // "NXTLOG\0\1"
export const CHECKPOINT_MAGIC = new Uint8Array([0x4e, 0x58, 0x54, 0x43, 0x4b, 0x50, 0x00, 0x01]); // "NXTCKP\0\1"
export const RECORD_MAGIC = 0x5254584e; // "NXTR" read as a little-endian u32

export const RecordKind = {
  Batch: 1,
  Model: 2,
  CheckpointState: 16,
  CheckpointTuples: 17,
  CheckpointChanges: 18,
  CheckpointCommits: 19,
  CheckpointModels: 20,
  CheckpointEnd: 21,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

export const CHECKPOINT_NAME = "CHECKPOINT";
export const CHECKPOINT_TEMP_NAME = "CHECKPOINT.tmp";
export const SEGMENT_NAME = /^(\d{10})\.log$/;

export function segmentName(n: number): string {
  return `${String(n).padStart(10, "0")}.log`;
}

export type Crc32c = (bytes: Uint8Array) => number;

export interface FileHeader {
  /** The segment number (segment file) or the first segment to replay (checkpoint). */
  readonly segment: number;
  /** The store id, 16 hex digits. */
  readonly storeId: string;
}

export function encodeFileHeader(
  magic: Uint8Array,
  header: FileHeader,
  crc: Crc32c,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(SEGMENT_HEADER_SIZE);
  const view = new DataView(out.buffer);
  out.set(magic, 0);
  view.setUint16(8, FORMAT_VERSION, true);
  view.setUint32(12, header.segment, true);
  out.set(Buffer.from(header.storeId, "hex"), 16);
  view.setUint32(28, crc(out.subarray(0, 28)), true);
  return out;
}

/** Decodes a segment or checkpoint header, or says why it is not one. */
export function decodeFileHeader(magic: Uint8Array, bytes: Uint8Array, crc: Crc32c): FileHeader | string {
  if (bytes.length < SEGMENT_HEADER_SIZE) return "shorter than a header";
  for (let i = 0; i < 8; i++) if (bytes[i] !== magic[i]) return "bad magic";
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_SIZE);
  if (view.getUint32(28, true) !== crc(bytes.subarray(0, 28))) return "header checksum mismatch";
  const version = view.getUint16(8, true);
  if (version !== FORMAT_VERSION) return `unsupported format version ${version}`;
  return {
    segment: view.getUint32(12, true),
    storeId: Buffer.from(bytes.subarray(16, 24)).toString("hex"),
  };
}

/** One framed record: header and payload in one buffer, ready to append. */
export function encodeRecord(kind: RecordKind, payload: Uint8Array, crc: Crc32c): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(RECORD_HEADER_SIZE + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, RECORD_MAGIC, true);
  view.setUint8(4, kind);
  view.setUint32(8, payload.length, true);
  view.setUint32(12, crc(payload), true);
  view.setUint32(16, crc(out.subarray(0, 16)), true);
  out.set(payload, RECORD_HEADER_SIZE);
  return out;
}

export interface RecordHeader {
  readonly kind: number;
  readonly length: number;
  readonly payloadCrc: number;
}

/** Decodes a record header (20 bytes at `at`), or says why it is not one. */
export function decodeRecordHeader(bytes: Uint8Array, at: number, crc: Crc32c): RecordHeader | string {
  if (bytes.length - at < RECORD_HEADER_SIZE) return "shorter than a record header";
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, RECORD_HEADER_SIZE);
  if (view.getUint32(0, true) !== RECORD_MAGIC) return "bad record magic";
  if (view.getUint32(16, true) !== crc(bytes.subarray(at, at + 16))) return "record header checksum mismatch";
  const length = view.getUint32(8, true);
  if (length > MAX_PAYLOAD) return `record payload length ${length} over the limit`;
  return { kind: view.getUint8(4), length, payloadCrc: view.getUint32(12, true) };
}
