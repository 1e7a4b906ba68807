/**
 * Positioned file I/O on raw descriptors, as promises (the callback API has less overhead than FileHandle, and a
 * store closes its descriptors itself). Short reads and writes are continued until done.
 */
import * as fs from "node:fs";
import { NexusError } from "../util/errors.js";

/** When a durable writer calls fsync: after every acknowledged write, once per group of concurrent writes, or never (the OS decides). */
export type FsyncPolicy = "always" | "batch" | "never";

export function openFile(path: string, flags: string | number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(path, flags, 0o644, (e, fd) => (e ? reject(e) : resolve(fd))),
  );
}

export function closeFile(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (e) => (e ? reject(e) : resolve())));
}

/** Reads up to buffer.length bytes at `position`; returns how many were read (fewer only at end of file). */
export async function readAt(fd: number, buffer: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < buffer.length) {
    const n = await new Promise<number>((resolve, reject) =>
      fs.read(fd, buffer, done, buffer.length - done, position + done, (e, bytes) =>
        e ? reject(e) : resolve(bytes),
      ),
    );
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Writes every buffer, in order, starting at `position`. */
export async function writeAt(fd: number, buffers: readonly Uint8Array[], position: number): Promise<void> {
  let pending = buffers.filter((b) => b.length > 0);
  while (pending.length > 0) {
    const written = await new Promise<number>((resolve, reject) =>
      fs.writev(fd, pending as NodeJS.ArrayBufferView[], position, (e, n) => (e ? reject(e) : resolve(n))),
    );
    if (written <= 0) throw new NexusError("io_error", "a write made no progress", { position });
    position += written;
    let skip = written;
    const rest: Uint8Array[] = [];
    for (const b of pending) {
      if (skip >= b.length) skip -= b.length;
      else {
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    pending = rest;
  }
}

export function syncData(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

export function truncateFile(fd: number, length: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, length, (e) => (e ? reject(e) : resolve())));
}

export function fileSize(fd: number): Promise<number> {
  return new Promise((resolve, reject) => fs.fstat(fd, (e, st) => (e ? reject(e) : resolve(st.size))));
}

/** Makes a directory's entries (new files, renames) durable. */
export async function syncDir(dir: string): Promise<void> {
  const fd = await openFile(dir, "r");
  try {
    await new Promise<void>((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
  } catch (e) {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
    if ((e as NodeJS.ErrnoException).code !== "EINVAL" && (e as NodeJS.ErrnoException).code !== "EISDIR")
      throw e;
  } finally {
    await closeFile(fd);
  }
}

/** Wraps an operating-system error as a NexusError("io_error") naming the file. */
export function ioError(error: unknown, what: string, path: string): NexusError {
  if (error instanceof NexusError) return error;
  const e = error as NodeJS.ErrnoException;
  return new NexusError(
    "io_error",
    `${what} ${path}: ${e.message ?? String(e)}`,
    { path, code: e.code },
    {
      cause: error,
    },
  );
}
