/**
 * Checkpoints: the whole state of a file tuple store at one revision (live tuples, the retained changelog, commit
 * times, model versions), so opening reads one file plus the log written since instead of all history.
 *
 * Written atomically: to CHECKPOINT.tmp, synced, renamed over CHECKPOINT, directory synced. A crash at any point
 * leaves either the old checkpoint or the new one, whole; the segments the new one replaces are removed only
 * after the rename is durable. Records go out in chunks, so a large state never becomes one huge string.
 */
import { readFileSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { closeFile, ioError, openFile, syncData, syncDir, writeAt } from "../../io/fs-io.js";
import type { MemoryStoreState } from "../memory.js";
import type { StoredModel } from "../models.js";
import type { StoredChange } from "../types.js";
import {
  type CheckpointCounts,
  decodeChange,
  decodeCheckpointState,
  decodeCommit,
  decodeCounts,
  decodeList,
  decodeModel,
  decodeTuple,
  encodeChange,
  encodeCommit,
  encodeModel,
  encodeTuple,
  fromBytes,
  toBytes,
} from "./codec.js";
import {
  CHECKPOINT_MAGIC,
  CHECKPOINT_NAME,
  CHECKPOINT_TEMP_NAME,
  type Crc32c,
  encodeFileHeader,
  encodeRecord,
  MAX_PAYLOAD,
  RecordKind,
} from "./layout.js";
import { corrupt, scanFile } from "./recovery.js";

/** Tuples, changes or models per chunk record. */
const CHUNK = 4096;

export interface Checkpoint {
  readonly storeId: string;
  /** The first log segment not in the checkpoint: replay starts there. */
  readonly fromSegment: number;
  readonly state: MemoryStoreState;
  readonly models: readonly StoredModel[];
}

export async function writeCheckpoint(dir: string, checkpoint: Checkpoint, crc: Crc32c): Promise<void> {
  const temp = join(dir, CHECKPOINT_TEMP_NAME);
  const path = join(dir, CHECKPOINT_NAME);
  const { state, models } = checkpoint;
  let fd: number;
  try {
    fd = await openFile(temp, "w");
  } catch (error) {
    throw ioError(error, "cannot create checkpoint", temp);
  }
  try {
    let at = 0;
    const put = async (bytes: Uint8Array): Promise<void> => {
      await writeAt(fd, [bytes], at);
      at += bytes.length;
    };
    await put(
      encodeFileHeader(
        CHECKPOINT_MAGIC,
        { segment: checkpoint.fromSegment, storeId: checkpoint.storeId },
        crc,
      ),
    );
    await put(
      encodeRecord(
        RecordKind.CheckpointState,
        toBytes({ revision: state.revision, changelogFloor: state.changelogFloor }),
        crc,
      ),
    );
    /** Writes `items` as records of `kind`, CHUNK items each, split further where one would pass MAX_PAYLOAD. */
    const putList = async <T>(kind: RecordKind, items: readonly T[], encode: (item: T) => unknown) => {
      const putChunk = async (chunk: readonly T[]): Promise<void> => {
        const payload = toBytes(chunk.map(encode));
        if (payload.length > MAX_PAYLOAD && chunk.length > 1) {
          const half = chunk.length >>> 1;
          await putChunk(chunk.slice(0, half));
          await putChunk(chunk.slice(half));
        } else {
          await put(encodeRecord(kind, payload, crc));
        }
      };
      for (let i = 0; i < items.length; i += CHUNK) await putChunk(items.slice(i, i + CHUNK));
    };
    await putList(RecordKind.CheckpointTuples, state.tuples, encodeTuple);
    const liveIndex = new Map(state.tuples.map((t, i) => [t, i]));
    await putList(RecordKind.CheckpointChanges, state.changes, (c) => encodeChange(c, liveIndex));
    await putList(RecordKind.CheckpointCommits, state.commits, encodeCommit);
    await putList(RecordKind.CheckpointModels, models, encodeModel);
    const counts: CheckpointCounts = {
      tuples: state.tuples.length,
      changes: state.changes.length,
      models: models.length,
    };
    await put(encodeRecord(RecordKind.CheckpointEnd, toBytes(counts), crc));
    await syncData(fd);
  } catch (error) {
    await closeFile(fd).catch(() => {});
    await rm(temp, { force: true }).catch(() => {});
    throw ioError(error, "cannot write checkpoint", temp);
  }
  await closeFile(fd);
  try {
    await rename(temp, path);
    await syncDir(dir);
  } catch (error) {
    throw ioError(error, "cannot install checkpoint", path);
  }
}

/** Reads CHECKPOINT, or undefined when there is none. Anything short of a whole, valid checkpoint is corrupt. */
export function readCheckpoint(dir: string, crc: Crc32c): Checkpoint | undefined {
  const path = join(dir, CHECKPOINT_NAME);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw ioError(error, "cannot read checkpoint", path);
  }
  const scanned = scanFile(bytes, CHECKPOINT_MAGIC, path, crc, false)!;
  const records = scanned.records;
  let revision = -1;
  let changelogFloor = 0;
  const tuples: ReturnType<typeof decodeTuple>[] = [];
  const changes: StoredChange[] = [];
  const commits: { revision: number; time: number }[] = [];
  const models: StoredModel[] = [];
  let counts: CheckpointCounts | undefined;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    try {
      const value = fromBytes(record.payload);
      const expected = i === 0 ? RecordKind.CheckpointState : undefined;
      if (expected !== undefined && record.kind !== expected)
        throw new Error("does not start with its state");
      if (counts !== undefined) throw new Error("records after its end");
      switch (record.kind) {
        case RecordKind.CheckpointState:
          if (i !== 0) throw new Error("a second state record");
          ({ revision, changelogFloor } = decodeCheckpointState(value));
          break;
        case RecordKind.CheckpointTuples:
          for (const t of decodeList(value, decodeTuple, "tuple chunk")) tuples.push(t);
          break;
        case RecordKind.CheckpointChanges:
          for (const c of decodeList(value, (v) => decodeChange(v, tuples), "change chunk")) changes.push(c);
          break;
        case RecordKind.CheckpointCommits:
          for (const c of decodeList(value, decodeCommit, "commit chunk")) commits.push(c);
          break;
        case RecordKind.CheckpointModels:
          for (const m of decodeList(value, decodeModel, "model chunk")) models.push(m);
          break;
        case RecordKind.CheckpointEnd:
          counts = decodeCounts(value);
          break;
        default:
          throw new Error(`unknown record kind ${record.kind}`);
      }
    } catch (error) {
      throw corrupt(path, record.offset, (error as Error).message);
    }
  }
  if (counts === undefined) throw corrupt(path, scanned.end, "the checkpoint has no end record");
  if (
    counts.tuples !== tuples.length ||
    counts.changes !== changes.length ||
    counts.models !== models.length
  ) {
    throw corrupt(path, scanned.end, "the checkpoint's counts do not match its records");
  }
  return {
    storeId: scanned.header.storeId,
    fromSegment: scanned.header.segment,
    state: { revision, tuples, changes, changelogFloor, commits },
    models,
  };
}
