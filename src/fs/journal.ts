/**
 * The metadata journal: the commit point of every file operation. Each record is one line, `crc32 <TAB> json`,
 * appended (and synced when asked) before the operation counts as done. Opening replays the newest checkpoint,
 * then the journal written after it, and cuts a torn tail (a line cut short or failing its checksum by a crash
 * mid-append): nothing past it was ever acknowledged.
 *
 * Checkpoints bound replay: the caller's snapshot is written to `checkpoint-<gen>.json` (plus whatever files the
 * caller writes, named by the generation), synced, then `CURRENT` is replaced atomically (write, sync, rename) to
 * name generation gen; only then does journal `journal-<gen>.log` start and older generations get deleted. A
 * crash at any step leaves `CURRENT` naming a complete generation.
 */
import { closeSync, fsyncSync, openSync } from "node:fs";
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { NexusError } from "../util/errors.js";

export interface Opened<S> {
  readonly journal: Journal;
  /** The newest checkpoint's snapshot (undefined for a new directory). */
  readonly snapshot: S | undefined;
  /** Records appended after that checkpoint, in order. */
  readonly records: unknown[];
  /** The checkpoint's generation; files named after it belong to it. */
  readonly generation: number;
}

export class Journal implements AsyncDisposable {
  readonly dir: string;
  #file: FileHandle;
  #generation: number;
  #records = 0;
  #bytes = 0;
  #closed = false;

  private constructor(dir: string, file: FileHandle, generation: number) {
    this.dir = dir;
    this.#file = file;
    this.#generation = generation;
  }

  /** Opens (creating) the journal in `dir`, returning the last checkpoint and the records after it. */
  static async open<S>(dir: string): Promise<Opened<S>> {
    await mkdir(dir, { recursive: true });
    let generation = 0;
    let snapshot: S | undefined;
    const current = await readFile(join(dir, "CURRENT"), "utf8").catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return undefined;
      throw e;
    });
    if (current !== undefined) {
      generation = Number(current.trim());
      if (!Number.isSafeInteger(generation) || generation < 1) {
        throw new NexusError("corrupt", `${join(dir, "CURRENT")} does not name a checkpoint`, { dir });
      }
      const text = await readFile(join(dir, `checkpoint-${generation}.json`), "utf8");
      const parsed = parseLine(text.trimEnd());
      if (parsed === undefined) {
        throw new NexusError("corrupt", `checkpoint ${generation} in ${dir} fails its checksum`, {
          dir,
          generation,
        });
      }
      snapshot = parsed as S;
    }
    const path = join(dir, `journal-${generation}.log`);
    const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return "";
      throw e;
    });
    const records: unknown[] = [];
    let good = 0;
    while (good < text.length) {
      const end = text.indexOf("\n", good);
      if (end < 0) break; // a line without its newline was cut short
      const record = parseLine(text.slice(good, end));
      if (record === undefined) break;
      records.push(record);
      good = end + 1;
    }
    const file = await open(path, "a+");
    const goodBytes = Buffer.byteLength(text.slice(0, good));
    if (goodBytes < Buffer.byteLength(text)) {
      await file.truncate(goodBytes);
      await file.sync();
    }
    const journal = new Journal(dir, file, generation);
    journal.#records = records.length;
    journal.#bytes = goodBytes;
    await removeOlder(dir, generation);
    return { journal, snapshot, records, generation };
  }

  get generation(): number {
    return this.#generation;
  }

  /** Records since the last checkpoint. */
  get records(): number {
    return this.#records;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Appends one record; with `sync` it is on disk when this resolves. */
  async append(record: unknown, sync: boolean): Promise<void> {
    this.#assertOpen();
    const line = formatLine(record);
    await this.#file.write(line);
    if (sync) await this.#file.sync();
    this.#records++;
    this.#bytes += Buffer.byteLength(line);
  }

  /**
   * Starts a new generation from `snapshot`. `writeFiles(generation)` writes (and syncs) the caller's own files
   * for it first. Nothing else may append while this runs.
   */
  async checkpoint(snapshot: unknown, writeFiles: (generation: number) => Promise<void>): Promise<void> {
    this.#assertOpen();
    const next = this.#generation + 1;
    await writeFiles(next);
    await writeSynced(join(this.dir, `checkpoint-${next}.json`), `${formatLine(snapshot)}`);
    const file = await open(join(this.dir, `journal-${next}.log`), "a+");
    await writeSynced(join(this.dir, "CURRENT"), `${next}\n`);
    syncDir(this.dir);
    await this.#file.close();
    this.#file = file;
    this.#generation = next;
    this.#records = 0;
    this.#bytes = 0;
    await removeOlder(this.dir, next);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#file.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "the journal is closed");
  }
}

/** One record as a journal line: `crc32 <TAB> json <LF>`. */
export function formatLine(record: unknown): string {
  const json = JSON.stringify(record);
  return `${crc32(json).toString(16)}\t${json}\n`;
}

/** A journal line's record (without its newline), or undefined when it is torn or fails its checksum. */
export function parseLine(line: string): unknown {
  const tab = line.indexOf("\t");
  if (tab < 0) return undefined;
  const json = line.slice(tab + 1);
  if (crc32(json).toString(16) !== line.slice(0, tab)) return undefined;
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

/** Writes `file` through a temporary name, synced, so it is either whole or absent. */
export async function writeSynced(file: string, data: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, "w");
  try {
    await fh.write(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Deletes the files of generations before `generation` (any file named `*-<n>.*` with n < generation). */
async function removeOlder(dir: string, generation: number): Promise<void> {
  for (const name of await readdir(dir)) {
    const m = /-(\d+)(?:-[^.]*)?\.[a-z]+(?:\.tmp)?$/.exec(name);
    if (m !== null && Number(m[1]) < generation) await rm(join(dir, name), { force: true });
  }
}
