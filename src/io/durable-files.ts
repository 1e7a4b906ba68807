/**
 * Durable whole-file writes (the tiered store's ledger snapshot, shard files and cold blobs use them): a file
 * appears under its final name complete or not at all (write to a temporary name, fsync, rename, fsync the
 * directory), and removal is made durable the same way. Temporary files carry the `.tmp` suffix and their
 * writer's pid, so that a crash's leftovers can be recognised and swept while a live writer's are left alone.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { NexusError } from "../util/errors.js";

export const TEMP_SUFFIX = ".tmp";

/** A unique temporary name next to `path`. */
export function tempPathFor(path: string): string {
  return `${path}.${process.pid}-${randomBytes(4).toString("hex")}${TEMP_SUFFIX}`;
}

/**
 * Writes `parts` (concatenated) to `path` atomically and durably. On failure nothing is left under `path` that
 * was not there before, and the temporary file is removed.
 */
export async function writeFileAtomic(
  path: string,
  parts: readonly Uint8Array[],
  options: { fsync?: boolean; syncDir?: boolean } = {},
): Promise<void> {
  const { fsync = true, syncDir = true } = options;
  await mkdir(dirname(path), { recursive: true });
  const temp = tempPathFor(path);
  try {
    const handle = await open(temp, "w");
    try {
      for (const part of parts) {
        let written = 0;
        while (written < part.length) {
          const { bytesWritten } = await handle.write(part, written, part.length - written);
          written += bytesWritten;
        }
      }
      if (fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    throw ioError(`could not write ${path}`, path, error);
  }
  if (fsync && syncDir) await syncDirectory(dirname(path));
}

/** Makes a directory's entries (renames, unlinks) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch (error) {
    // Some platforms cannot fsync a directory (EISDIR/EINVAL/EPERM); the rename is then as durable as it gets.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EINVAL" && code !== "EPERM" && code !== "ENOENT") {
      throw ioError(`could not sync directory ${dir}`, dir, error);
    }
  } finally {
    await handle?.close();
  }
}

/** Removes a file; true if it existed. */
export async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw ioError(`could not remove ${path}`, path, error);
  }
}

/** Removes temporary files left by crashed writers under `root` (recursively); returns how many. */
export async function sweepTempFiles(root: string, depth = 2): Promise<number> {
  let removed = 0;
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw ioError(`could not list ${root}`, root, error);
  }
  for (const entry of entries) {
    const path = join(root, entry.name);
    if (entry.isDirectory() && depth > 0) removed += await sweepTempFiles(path, depth - 1);
    else if (entry.isFile() && entry.name.endsWith(TEMP_SUFFIX) && !writerMayBeAlive(entry.name)) {
      if (await removeFile(path)) removed++;
    }
  }
  return removed;
}

/** A temporary file whose writer (the pid in its name) still runs may be a write in progress: leave it. */
function writerMayBeAlive(name: string): boolean {
  const match = /\.(\d+)-[0-9a-f]+\.tmp$/.exec(name);
  if (match === null) return false;
  return processAlive(Number(match[1]));
}

export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function ioError(message: string, path: string, cause: unknown): NexusError {
  if (cause instanceof NexusError) return cause;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new NexusError("io_error", `${message}: ${code ?? String(cause)}`, { path, errno: code }, { cause });
}
