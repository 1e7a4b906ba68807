/**
 * Opening a store directory: the state as the last acknowledged write left it, from the newest checkpoint (if any)
 * and then every record of the log segments after it, replayed into the in-memory store in order. Segments the
 * checkpoint covers are removed; a torn tail (an append cut short by a crash) is cut off the last segment, durably;
 * anything else that does not read back whole refuses to open (NexusError "corrupt", recovery.ts). A replayed
 * batch must prepare to exactly what was logged, or the log does not follow from the state before it.
 */
import * as fs from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { ioError, syncDir } from "../../io/fs-io.js";
import type { MemoryTupleStore } from "../memory.js";
import type { StoredModel } from "../models.js";
import type { Revision } from "../types.js";
import { readCheckpoint } from "./checkpoint.js";
import { decodeBatch, decodeModel, fromBytes } from "./codec.js";
import {
  CHECKPOINT_TEMP_NAME,
  type Crc32c,
  RecordKind,
  SEGMENT_HEADER_SIZE,
  SEGMENT_MAGIC,
  SEGMENT_NAME,
  segmentName,
} from "./layout.js";
import { corrupt, type ScannedRecord, scanFile } from "./recovery.js";

/** Where replayed model versions go (the store's LoggedModelVersions). */
export interface ModelSink {
  insert(model: StoredModel): void;
}

export interface RecoveredDirectory {
  /** The store id the checkpoint or the first segment names (undefined: a new store). */
  readonly storeId: string | undefined;
  /** The revision the checkpoint holds (0: none). */
  readonly checkpointRevision: Revision;
  /** Bytes of log records after the checkpoint (what this open replayed). */
  readonly logBytes: number;
  readonly recovered: { records: number; tornBytes: number };
  /** The last segment, to append to; undefined when there is none (create `firstSegment`). */
  readonly appendTo: { readonly number: number; readonly end: number } | undefined;
  readonly firstSegment: number;
}

/** Recovers `dir` into `memory` (an empty store) and `models`. */
export async function recoverDirectory(
  dir: string,
  crc: Crc32c,
  memory: MemoryTupleStore,
  models: ModelSink,
): Promise<RecoveredDirectory> {
  let checkpointRevision: Revision = 0;
  let logBytes = 0;
  const recovered = { records: 0, tornBytes: 0 };
  await rm(join(dir, CHECKPOINT_TEMP_NAME), { force: true });
  const checkpoint = readCheckpoint(dir, crc);
  let storeId = checkpoint?.storeId;
  const first = checkpoint?.fromSegment ?? 1;
  if (checkpoint !== undefined) {
    memory.restoreState(checkpoint.state);
    for (const model of checkpoint.models) models.insert(model);
    checkpointRevision = checkpoint.state.revision;
  }
  // Segments before the checkpoint's first are in it already (a cleanup cut short left them).
  await removeSegmentsBefore(dir, first);
  const numbers = segmentNumbers(await readdir(dir));
  for (let i = 0; i < numbers.length; i++) {
    if (numbers[i] !== first + i) {
      throw corrupt(
        join(dir, segmentName(first + i)),
        0,
        checkpoint === undefined && i === 0
          ? "the first log segment is missing and there is no checkpoint"
          : "a log segment is missing",
      );
    }
  }
  let appendTo: { number: number; end: number } | undefined;
  for (let i = 0; i < numbers.length; i++) {
    const number = numbers[i]!;
    const path = join(dir, segmentName(number));
    const last = i === numbers.length - 1;
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path);
    } catch (error) {
      throw ioError(error, "cannot read log segment", path);
    }
    const scanned = scanFile(bytes, SEGMENT_MAGIC, path, crc, last);
    if (scanned === undefined) {
      // The newest segment's creation was cut short before its header was durable: it holds nothing.
      await rm(path, { force: true });
      break;
    }
    if (scanned.header.segment !== number)
      throw corrupt(path, 0, `its header names segment ${scanned.header.segment}`);
    storeId ??= scanned.header.storeId;
    if (scanned.header.storeId !== storeId) {
      throw corrupt(path, 0, `it belongs to store ${scanned.header.storeId}, not ${storeId}`);
    }
    for (const record of scanned.records) replay(record, path, memory, models);
    recovered.records += scanned.records.length;
    logBytes += scanned.end - SEGMENT_HEADER_SIZE;
    if (scanned.tornBytes > 0) {
      cutTail(path, scanned.end);
      recovered.tornBytes += scanned.tornBytes;
    }
    appendTo = { number, end: scanned.end };
  }
  return { storeId, checkpointRevision, logBytes, recovered, appendTo, firstSegment: first };
}

function replay(record: ScannedRecord, path: string, memory: MemoryTupleStore, models: ModelSink): void {
  try {
    const value = fromBytes(record.payload);
    if (record.kind === RecordKind.Batch) {
      const batch = decodeBatch(value);
      const prepared = memory.prepareWrite({ writes: batch.writes, deletes: batch.deletes }, batch.time);
      if (
        prepared === undefined ||
        prepared.revision !== batch.revision ||
        prepared.writes.length !== batch.writes.length ||
        prepared.deletes.length !== batch.deletes.length
      ) {
        if (prepared !== undefined) memory.abortWrite(prepared);
        throw new Error(`the batch of revision ${batch.revision} does not follow the state before it`);
      }
      memory.applyWrite(prepared);
    } else if (record.kind === RecordKind.Model) {
      models.insert(decodeModel(value));
    } else {
      throw new Error(`unknown record kind ${record.kind}`);
    }
  } catch (error) {
    throw corrupt(path, record.offset, (error as Error).message);
  }
}

function segmentNumbers(names: readonly string[]): number[] {
  return names
    .map((name) => SEGMENT_NAME.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Removes the log segments numbered below `first` (they are in a checkpoint), durably. */
export async function removeSegmentsBefore(dir: string, first: number): Promise<void> {
  const stale = segmentNumbers(await readdir(dir)).filter((n) => n < first);
  if (stale.length === 0) return;
  for (const n of stale) await rm(join(dir, segmentName(n)), { force: true });
  await syncDir(dir);
}

/** Cuts a torn tail off a segment, durably. */
function cutTail(path: string, length: number): void {
  const fd = fs.openSync(path, "r+");
  try {
    fs.ftruncateSync(fd, length);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
