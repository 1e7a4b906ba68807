/**
 * Compaction of one volume: copy its live needles to a new file while puts and deletes go on, replay what was
 * appended meanwhile, and swap the files atomically. Steps and what a crash at each leaves behind:
 *
 *   1. snapshot (under the write lock): seal the volume if it is the active one; note its live needles and end.
 *   2. copy (no lock): write NNNNNN.vol.compact and NNNNNN.idx.compact: live needles only, each with its current
 *      reference count in its header (references and tombstones before the snapshot are folded away).
 *      crash -> on open the .compact files are deleted; the volume is untouched.
 *   3. catch up (no lock, then again under the lock): the records appended to the volume since the snapshot
 *      (references, tombstones, purges: data never goes to a sealed volume) are copied verbatim.
 *   4. swap (under the lock): sync both files, rename NNNNNN.vol.compact over NNNNNN.vol (the commit point),
 *      then NNNNNN.idx.compact over NNNNNN.idx, syncing the directory after each.
 *      crash after the first rename -> on open the .idx.compact is renamed into place (or, if it is lost, the
 *      .idx no longer matches the volume's generation and is rebuilt from the volume).
 *   5. the store points the index at the new offsets, in the same synchronous step as the descriptor swap.
 *
 * A live needle found corrupt while copying is never dropped: its references still need it (get must keep
 * answering `corrupt`, and a put of the content must find it to purge and replace it). The volume is left as it
 * is (reported in `skipped`), and compacts once the needle is repaired by a put or deleted.
 */
import * as fs from "node:fs";
import type { Checksums } from "../../io/checksum.js";
import { closeFile, openFile, syncData, syncDir, writeAt } from "../../io/fs-io.js";
import { NexusError } from "../../util/errors.js";
import {
  decodeHeader,
  encodeIdxEntry,
  FOOTER_SIZE,
  HEADER_SIZE,
  IDX_ENTRY_SIZE,
  IDX_HEADER_SIZE,
  IdxSealer,
  idxSizeField,
  keyHex,
  NeedleKind,
  needleLength,
  SUPERBLOCK_FLAG_COMPACTED,
  SUPERBLOCK_SIZE,
} from "./layout.js";
import type { CorruptNeedle } from "./recovery.js";
import { type Volume, writeEmptyVolume } from "./volume.js";

export type CompactStep = "copying" | "copied" | "synced" | "volume-swapped" | "index-swapped" | "done";

export interface CompactProgress {
  volume: number;
  phase: "copy" | "catch-up" | "swap" | "done";
  /** Bytes of live needles copied so far, of bytesTotal. */
  bytesDone: number;
  bytesTotal: number;
  needlesCopied: number;
}

export interface CompactOptions {
  /** Called as a volume's compaction advances (at most about every 4 MiB copied, and at each phase). */
  onProgress?: (progress: CompactProgress) => void;
  /** Garbage ratio from which a volume is compacted (default: the store's compactThreshold). */
  threshold?: number;
  /** Stops the compaction cleanly (the volume being copied is left as it was). */
  signal?: AbortSignal;
}

export interface CompactResult {
  /** Volumes rewritten. */
  volumes: number[];
  bytesReclaimed: number;
  needlesCopied: number;
  /** Live needles found corrupt while copying (reported and kept: their volume is skipped). */
  corrupt: number;
  /** Volumes left as they were because a live needle in them is corrupt. */
  skipped: number[];
}

export interface CompactHooks {
  /** Test hook: runs at each step (a crash test kills the process here). */
  onStep?: ((step: CompactStep, volume: number) => void | Promise<void>) | undefined;
}

/** A live data needle of the volume, as the store's index knows it at the snapshot. */
export interface LiveNeedle {
  offset: number;
  length: number;
  /** The index key halves (for needles found through the kernel index). */
  lo: number;
  hi: number;
  /** The full key, for needles kept in the collision overflow. */
  hex?: string;
  refs: number;
}

export interface CompactContext {
  volume: Volume;
  checks: Checksums;
  hooks: CompactHooks;
  signal: AbortSignal;
  onProgress: ((progress: CompactProgress) => void) | undefined;
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Makes sure no new data needle goes to this volume (rolls the store over when it is the active one). */
  seal(): Promise<void>;
  /** The volume's live needles, sorted by offset (called under the write lock). */
  liveNeedles(): LiveNeedle[];
  /** Points the index at the new offsets (synchronous). */
  moved(moves: { needle: LiveNeedle; to: number }[]): void;
  reportCorrupt(needle: CorruptNeedle): void;
}

const FLUSH_BYTES = 4 * 1024 * 1024;

/** Finishes or undoes compactions a crash interrupted (see the steps above). Runs on open, before any volume. */
export function recoverInterruptedCompactions(dir: string): void {
  const names = new Set(fs.readdirSync(dir));
  for (const name of names) {
    if (name.endsWith(".vol.compact")) {
      // Not committed: the original volume is intact.
      fs.rmSync(`${dir}/${name}`, { force: true });
      fs.rmSync(`${dir}/${name.replace(/\.vol\.compact$/, ".idx.compact")}`, { force: true });
    }
  }
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith(".idx.compact")) {
      // The volume was swapped: its new log goes into place (recovery checks its generation anyway).
      fs.renameSync(`${dir}/${name}`, `${dir}/${name.replace(/\.compact$/, "")}`);
    }
  }
}

export async function compactVolume(
  ctx: CompactContext,
): Promise<{ bytesReclaimed: number; needlesCopied: number; corrupt: number; skipped: boolean }> {
  const v = ctx.volume;
  const crc = ctx.checks.crc32c;
  const step = async (s: CompactStep) => {
    await ctx.hooks.onStep?.(s, v.id);
  };
  const checkAbort = () => {
    if (ctx.signal.aborted) {
      throw new NexusError("aborted", `compaction of volume ${v.id} was stopped`, { volume: v.id });
    }
  };

  // 1. Snapshot.
  const { live, snapshotEnd } = await ctx.exclusive(async () => {
    await ctx.seal();
    return { live: ctx.liveNeedles(), snapshotEnd: v.end };
  });
  checkAbort();

  const tmpVolume = `${v.path}.compact`;
  const tmpIdx = `${v.idxPath}.compact`;
  const sb = writeEmptyVolume(tmpVolume, tmpIdx, v.id, SUPERBLOCK_FLAG_COMPACTED, crc);
  let fd: number | undefined = await openFile(tmpVolume, "r+");
  let idxFd: number | undefined = await openFile(tmpIdx, "r+");
  let out = SUPERBLOCK_SIZE;
  let idxOut = IDX_HEADER_SIZE;
  let pending: Uint8Array[] = [];
  let pendingIdx: Uint8Array[] = [];
  let pendingBytes = 0;
  let renamed = false;
  let adopted = false;
  const moves: { needle: LiveNeedle; to: number }[] = [];
  let corrupt = 0;
  const sealer = new IdxSealer(crc);

  const flush = async () => {
    if (pending.length === 0) return;
    const bytes = pendingBytes;
    const idxBytes = pendingIdx.reduce((n, e) => n + e.length, 0);
    await writeAt(fd!, pending, out - bytes);
    await writeAt(idxFd!, pendingIdx, idxOut - idxBytes);
    pending = [];
    pendingIdx = [];
    pendingBytes = 0;
  };
  const emit = async (needle: Uint8Array, key: Uint8Array, field: number) => {
    const entry = new Uint8Array(IDX_ENTRY_SIZE);
    encodeIdxEntry(entry, 0, key, out / 8, field);
    const slots = sealer.add(entry);
    pending.push(needle);
    pendingIdx.push(slots);
    pendingBytes += needle.length;
    out += needle.length;
    idxOut += slots.length;
    if (pendingBytes >= FLUSH_BYTES) await flush();
  };
  /** Copies the records appended to the volume since `from`; returns where it stopped. */
  const catchUp = async (from: number): Promise<number> => {
    let pos = from;
    while (pos < v.end) {
      const bytes = await v.read(pos, Math.min(v.end - pos, FLUSH_BYTES));
      let at = 0;
      while (at + HEADER_SIZE <= bytes.length) {
        const h = decodeHeader(bytes, at, crc);
        if (typeof h === "string") {
          throw new NexusError("corrupt", `volume ${v.id}: unreadable record at ${pos + at} (${h})`, {
            volume: v.id,
            offset: pos + at,
          });
        }
        const length = needleLength(h.size);
        if (at + length > bytes.length) break;
        if (h.kind === NeedleKind.Data) {
          throw new NexusError("internal", `volume ${v.id} received a data needle while sealed`, {
            volume: v.id,
          });
        }
        await emit(bytes.slice(at, at + length), h.key, idxSizeField(h.kind, 0, 1));
        at += length;
      }
      if (at === 0) break;
      pos += at;
    }
    return pos;
  };

  try {
    // 2. Copy the live needles.
    const bytesTotal = live.reduce((n, l) => n + l.length, 0);
    let bytesDone = 0;
    let lastReport = 0;
    const report = (phase: CompactProgress["phase"]) =>
      ctx.onProgress?.({ volume: v.id, phase, bytesDone, bytesTotal, needlesCopied: moves.length });
    report("copy");
    for (const needle of live) {
      checkAbort();
      const bytes = await v.read(needle.offset, needle.length);
      const h = bytes.length === needle.length ? decodeHeader(bytes, 0, crc) : "needle cut short";
      let reason: string | undefined;
      if (typeof h === "string") reason = h;
      else if (h.kind !== NeedleKind.Data || needleLength(h.size) !== needle.length)
        reason = "header does not match";
      else {
        const stored = new DataView(bytes.buffer, bytes.byteOffset + HEADER_SIZE + h.size, FOOTER_SIZE);
        if (crc(bytes.subarray(HEADER_SIZE, HEADER_SIZE + h.size)) !== stored.getUint32(0, true)) {
          reason = "data checksum mismatch";
        }
      }
      if (reason !== undefined || typeof h === "string") {
        ctx.reportCorrupt({
          volume: v.id,
          offset: needle.offset,
          reason: reason ?? "corrupt",
          ...(typeof h === "object" ? { key: keyHex(h.key) } : {}),
        });
        corrupt++;
        continue;
      }
      if (corrupt > 0) continue; // the volume stays as it is: only look for more damage to report
      if (h.refs !== needle.refs) {
        const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
        view.setUint32(44, needle.refs, true);
        view.setUint32(60, crc(bytes.subarray(0, 60)), true);
      }
      moves.push({ needle, to: out });
      await emit(bytes, h.key, idxSizeField(NeedleKind.Data, h.size, needle.refs));
      bytesDone += needle.length;
      if (moves.length === 1) {
        await flush();
        await step("copying");
      }
      if (bytesDone - lastReport >= FLUSH_BYTES) {
        lastReport = bytesDone;
        report("copy");
      }
    }
    if (corrupt > 0) {
      report("done");
      return { bytesReclaimed: 0, needlesCopied: 0, corrupt, skipped: true };
    }
    if (moves.length === 0) await step("copying");
    checkAbort();

    // 3. Catch up with what arrived meanwhile.
    report("catch-up");
    let caughtUp = await catchUp(snapshotEnd);
    await flush();
    await step("copied");
    checkAbort();

    // 4. Swap, under the lock.
    const before = await ctx.exclusive(async () => {
      checkAbort();
      report("swap");
      caughtUp = await catchUp(caughtUp);
      if (caughtUp !== v.end) {
        throw new NexusError("internal", `volume ${v.id}: catch-up stopped at ${caughtUp} of ${v.end}`);
      }
      await flush();
      await syncData(fd!);
      await syncData(idxFd!);
      await step("synced");
      const oldEnd = v.end;
      fs.renameSync(tmpVolume, v.path);
      renamed = true;
      await syncDir(v.dir);
      await step("volume-swapped");
      fs.renameSync(tmpIdx, v.idxPath);
      await syncDir(v.dir);
      await step("index-swapped");
      v.adopt(fd!, idxFd!, sb.generation, out, idxOut, sealer);
      // The volume owns the descriptors from here on, whatever follows: nothing here may close or adopt them again.
      adopted = true;
      fd = undefined;
      idxFd = undefined;
      movedInIndex(ctx, moves);
      return oldEnd;
    });
    report("done");
    await step("done");
    return {
      bytesReclaimed: Math.max(0, before - out),
      needlesCopied: moves.length,
      corrupt: 0,
      skipped: false,
    };
  } catch (e) {
    if (renamed && !adopted) {
      // Past the commit point: the new file is the volume now, whatever failed after.
      if (fs.existsSync(tmpIdx)) {
        try {
          fs.renameSync(tmpIdx, v.idxPath);
        } catch {
          // the next open rebuilds the .idx from the volume
        }
      }
      v.adopt(fd!, idxFd!, sb.generation, out, idxOut, sealer);
      adopted = true;
      fd = undefined;
      idxFd = undefined;
      movedInIndex(ctx, moves);
    }
    throw e;
  } finally {
    if (fd !== undefined) await closeFile(fd).catch(() => {});
    if (idxFd !== undefined) await closeFile(idxFd).catch(() => {});
    if (!renamed) {
      fs.rmSync(tmpVolume, { force: true });
      fs.rmSync(tmpIdx, { force: true });
    }
  }
}

/**
 * Compacts, one after another, every volume whose garbage ratio reaches `threshold` (stops between volumes when
 * `signal` aborts). `contextFor` gives the store's side of one volume's compaction; a volume left empty goes
 * through `removeIfEmpty`.
 */
export async function compactVolumes(
  volumes: ReadonlyMap<number, Volume>,
  threshold: number,
  signal: AbortSignal,
  contextFor: (volume: Volume) => CompactContext,
  removeIfEmpty: (volume: Volume) => Promise<void>,
): Promise<CompactResult> {
  const total: CompactResult = {
    volumes: [],
    bytesReclaimed: 0,
    needlesCopied: 0,
    corrupt: 0,
    skipped: [],
  };
  const candidates = [...volumes.values()]
    .filter((v) => {
      const size = v.end - SUPERBLOCK_SIZE;
      return size > 0 && (size - v.liveBytes) / size >= threshold && size - v.liveBytes > 0;
    })
    .map((v) => v.id);
  for (const id of candidates) {
    if (signal.aborted) break;
    const volume = volumes.get(id)!;
    const r = await compactVolume(contextFor(volume));
    if (r.skipped) total.skipped.push(id);
    else total.volumes.push(id);
    if (volume.end === SUPERBLOCK_SIZE) await removeIfEmpty(volume);
    total.bytesReclaimed += r.bytesReclaimed;
    total.needlesCopied += r.needlesCopied;
    total.corrupt += r.corrupt;
  }
  return total;
}

/**
 * ctx.moved(moves), once the volume has adopted the compacted file. An index that breaks here (a kernel trap:
 * "index_broken") is not the compaction's failure: the store rebuilds a broken index from the volume files, which
 * are the compacted ones now, so the moves are in the rebuilt index without being applied here.
 */
function movedInIndex(ctx: CompactContext, moves: { needle: LiveNeedle; to: number }[]): void {
  try {
    ctx.moved(moves);
  } catch (error) {
    if (!(error instanceof NexusError && error.code === "index_broken")) throw error;
  }
}
