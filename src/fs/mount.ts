/**
 * A real FUSE mount of a NexusFS, through `fuse-native` (libfuse 2, an optional dependency). One mount serves one
 * caller: every system call on it becomes that caller's checked operation, through a caching FsClient that the
 * change stream keeps exact. `ls` shows what the caller may see; `cat`, `cp`, `mv`, `rm`, `mkdir` are refused
 * (EACCES) exactly where the filesystem refuses them.
 *
 * FUSE callbacks run on the Node event loop: a process that has a mount must not block its loop on a system call
 * into that mount (execSync of `ls` on it deadlocks); use async child processes or another process.
 * Writes are buffered per open file and stored as one new version on flush or release (close). A file created
 * through the mount is checked when it is created and stored on its first flush, so `cp` and `echo >` make one
 * version holding the content.
 */
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createRequire } from "node:module";
import { promisify } from "node:util";
import { NexusError } from "../util/errors.js";
import { type FsBackend, FsClient, type FsClientOptions } from "./client.js";
import type { Caller, FileStat } from "./filesystem.js";

const run = promisify(execFile);

export interface MountOptions extends FsClientOptions {
  /** The filesystem (or a backend of the same shape). */
  readonly fs: FsBackend;
  /** An existing empty directory (created when `mkdir` is set). */
  readonly mountpoint: string;
  /** Whose mount it is. */
  readonly caller: Caller;
  /** Which tenant's tree it shows (default: the caller's own). */
  readonly tenant?: string;
  readonly mkdir?: boolean;
  /** libfuse debug output on stderr. */
  readonly debug?: boolean;
}

/** Why FUSE cannot be used here (undefined when it can). */
export function fuseUnavailableReason(): string | undefined {
  try {
    accessSync("/dev/fuse", constants.R_OK | constants.W_OK);
  } catch (e) {
    return `/dev/fuse is not usable (${(e as Error).message})`;
  }
  try {
    loadFuse();
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

// biome-ignore lint/suspicious/noExplicitAny: fuse-native ships no types
type FuseModule = any;

function loadFuse(): FuseModule {
  try {
    return createRequire(import.meta.url)("fuse-native");
  } catch (e) {
    throw new NexusError(
      "unavailable",
      `FUSE is unavailable: fuse-native (an optional dependency, needing libfuse2) did not load: ${(e as Error).message}`,
      {},
      { cause: e },
    );
  }
}

const ERRNO: Record<string, number> = {
  permission_denied: -13, // EACCES
  not_found: -2, // ENOENT
  already_exists: -17, // EEXIST
  not_a_directory: -20, // ENOTDIR
  is_a_directory: -21, // EISDIR
  not_empty: -39, // ENOTEMPTY
  invalid_argument: -22, // EINVAL
};
const EIO = -5;
const EBADF = -9;

/** An open file: its content, loaded on first use, and whether it was written. */
interface Handle {
  path: string;
  bytes: Uint8Array | undefined;
  length: number;
  dirty: boolean;
  /** Created through this handle and not stored yet: the file exists only here until flush or release. */
  created?: boolean;
}

export class Mount implements AsyncDisposable {
  readonly mountpoint: string;
  readonly client: FsClient;
  readonly #fuse: FuseModule;
  readonly #handles = new Map<number, Handle>();
  #nextFd = 1;
  #closed = false;

  private constructor(mountpoint: string, client: FsClient, fuse: FuseModule) {
    this.mountpoint = mountpoint;
    this.client = client;
    this.#fuse = fuse;
  }

  /** Mounts (see mount()). */
  static async mount(options: MountOptions): Promise<Mount> {
    const Fuse = loadFuse();
    const tenant = options.tenant === undefined ? {} : { tenant: options.tenant };
    const client = new FsClient(options.fs, options.caller, options);
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const self: { mount?: Mount } = {};
    const handles = () => self.mount!.#handles;
    const fail = (cb: (code: number) => void) => (e: unknown) => cb(errnoOf(e));
    const attr = (s: FileStat) => ({
      mtime: new Date(s.mtime),
      atime: new Date(s.mtime),
      ctime: new Date(s.ctime),
      nlink: s.isDirectory ? 2 : 1,
      size: s.size,
      mode: s.isDirectory ? 0o40755 : 0o100644,
      uid,
      gid,
    });
    const newHandle = (
      path: string,
      bytes: Uint8Array | undefined,
      dirty: boolean,
      created = false,
    ): number => {
      const fd = self.mount!.#nextFd++;
      handles().set(fd, { path, bytes, length: bytes?.length ?? 0, dirty, ...(created ? { created } : {}) });
      return fd;
    };
    /** A file created here and not stored yet, by path (its stat comes from the handle). */
    const pending = (path: string): Handle | undefined => {
      for (const h of handles().values()) if (h.created && h.path === path) return h;
      return undefined;
    };
    const localAttr = (path: string, h: Handle) => {
      const now = Date.now();
      return attr({
        path,
        tenant: "",
        isDirectory: false,
        size: h.length,
        mtime: now,
        ctime: now,
        creator: "",
      });
    };
    /** Stores a handle's content as one new version. */
    const store = async (h: Handle) => {
      await client.write(h.path, h.bytes!.slice(0, h.length), tenant);
      h.dirty = false;
      h.created = false;
    };
    const load = async (h: Handle): Promise<Uint8Array> => {
      if (h.bytes === undefined) {
        h.bytes = await client.read(h.path, tenant);
        h.length = h.bytes.length;
      }
      return h.bytes;
    };
    const ensure = (h: Handle, size: number) => {
      const have = h.bytes ?? new Uint8Array();
      if (have.length >= size) return;
      const grown = new Uint8Array(Math.max(size, have.length * 2, 4096));
      grown.set(have.subarray(0, h.length));
      h.bytes = grown;
    };
    const ops = {
      getattr: (path: string, cb: (code: number, stat?: unknown) => void) => {
        const h = pending(path);
        if (h !== undefined) return cb(0, localAttr(path, h));
        client.stat(path, tenant).then((s) => cb(0, attr(s)), fail(cb));
      },
      fgetattr: (path: string, fd: number, cb: (code: number, stat?: unknown) => void) => {
        const h = handles().get(fd);
        if (h?.dirty) return cb(0, localAttr(path, h));
        client.stat(path, tenant).then((s) => cb(0, attr(s)), fail(cb));
      },
      readdir: (path: string, cb: (code: number, names?: string[]) => void) => {
        client.list(path, tenant).then(
          (entries) =>
            cb(
              0,
              entries.map((e) => e.name),
            ),
          fail(cb),
        );
      },
      open: (path: string, flags: number, cb: (code: number, fd?: number) => void) => {
        const writing = (flags & 3) !== 0; // O_WRONLY or O_RDWR
        const truncating = (flags & 0o1000) !== 0; // O_TRUNC
        if (!writing) {
          // Opening for reading is a read: checked now (the content comes on the first read).
          client.read(path, tenant).then((bytes) => cb(0, newHandle(path, bytes, false)), fail(cb));
          return;
        }
        if (truncating) return cb(0, newHandle(path, new Uint8Array(), true));
        client.read(path, tenant).then((bytes) => cb(0, newHandle(path, bytes.slice(), false)), fail(cb));
      },
      create: (path: string, _mode: number, cb: (code: number, fd?: number) => void) => {
        // Checked now (write on the parent), stored on flush or release: `cp` and `echo >` make one version
        // holding the content, not an empty one first. Until then the file's stat comes from this handle.
        client
          .assertWritable(path, tenant)
          .then(() => cb(0, newHandle(path, new Uint8Array(), true, true)), fail(cb));
      },
      read: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
        const h = handles().get(fd);
        if (h === undefined) return cb(EBADF);
        load(h).then((bytes) => {
          const end = Math.min(h.length, pos + len);
          if (end <= pos) return cb(0);
          buf.set(bytes.subarray(pos, end));
          cb(end - pos);
        }, fail(cb));
      },
      write: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
        const h = handles().get(fd);
        if (h === undefined) return cb(EBADF);
        load(h).then(() => {
          ensure(h, pos + len);
          h.bytes!.set(buf.subarray(0, len), pos);
          h.length = Math.max(h.length, pos + len);
          h.dirty = true;
          cb(len);
        }, fail(cb));
      },
      ftruncate: (_path: string, fd: number, size: number, cb: (code: number) => void) => {
        const h = handles().get(fd);
        if (h === undefined) return cb(EBADF);
        load(h).then(() => {
          ensure(h, size);
          if (size > h.length) h.bytes!.fill(0, h.length, size);
          h.length = size;
          h.dirty = true;
          cb(0);
        }, fail(cb));
      },
      truncate: (path: string, size: number, cb: (code: number) => void) => {
        const open = [...handles().values()].find((h) => h.path === path);
        if (open !== undefined) {
          ensure(open, size);
          open.length = size;
          open.dirty = true;
          return cb(0);
        }
        client
          .read(path, tenant)
          .then((bytes) => {
            const out = new Uint8Array(size);
            out.set(bytes.subarray(0, size));
            return client.write(path, out, tenant);
          })
          .then(() => cb(0), fail(cb));
      },
      flush: (_path: string, fd: number, cb: (code: number) => void) => {
        const h = handles().get(fd);
        if (h === undefined || !h.dirty) return cb(0);
        // A shell's `>` closes a duplicate of the new file's descriptor before anything is written: a created
        // file with nothing in it yet waits for its release (which stores it, empty or not).
        if (h.created && h.length === 0) return cb(0);
        store(h).then(() => cb(0), fail(cb));
      },
      release: (_path: string, fd: number, cb: (code: number) => void) => {
        const h = handles().get(fd);
        handles().delete(fd);
        if (h === undefined || !h.dirty) return cb(0);
        store(h).then(() => cb(0), fail(cb));
      },
      unlink: (path: string, cb: (code: number) => void) => {
        client.remove(path, tenant).then(() => cb(0), fail(cb));
      },
      rmdir: (path: string, cb: (code: number) => void) => {
        client.remove(path, tenant).then(() => cb(0), fail(cb));
      },
      mkdir: (path: string, _mode: number, cb: (code: number) => void) => {
        client.mkdir(path, tenant).then(() => cb(0), fail(cb));
      },
      rename: (from: string, to: string, cb: (code: number) => void) => {
        client.rename(from, to, tenant).then(() => cb(0), fail(cb));
      },
      // Mode bits, owners and times are not NexusFS's: permissions are tuples. Accepted so cp and touch work.
      chmod: (_path: string, _mode: number, cb: (code: number) => void) => cb(0),
      chown: (_path: string, _uid: number, _gid: number, cb: (code: number) => void) => cb(0),
      utimens: (_path: string, _atime: unknown, _mtime: unknown, cb: (code: number) => void) => cb(0),
      statfs: (_path: string, cb: (code: number, stat?: unknown) => void) =>
        cb(0, {
          bsize: 4096,
          frsize: 4096,
          blocks: 1 << 20,
          bfree: 1 << 19,
          bavail: 1 << 19,
          files: 1 << 20,
          ffree: 1 << 19,
          favail: 1 << 19,
          fsid: 0,
          flag: 0,
          namemax: 255,
        }),
    };
    const fuse = new Fuse(options.mountpoint, ops, {
      mkdir: options.mkdir ?? false,
      force: true,
      debug: options.debug ?? false,
      fsname: "nexusfs",
    });
    const mount = new Mount(options.mountpoint, client, fuse);
    self.mount = mount;
    try {
      await new Promise<void>((resolve, reject) =>
        fuse.mount((e: Error | null) => (e ? reject(e) : resolve())),
      );
    } catch (e) {
      await client.close();
      throw new NexusError("unavailable", `cannot mount at ${options.mountpoint}: ${(e as Error).message}`, {
        mountpoint: options.mountpoint,
      });
    }
    return mount;
  }

  /** Unmounts (lazily, so a busy mount goes too) and stops the client. Idempotent. */
  async unmount(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await new Promise<void>((resolve, reject) =>
        this.#fuse.unmount((e: Error | null) => (e ? reject(e) : resolve())),
      );
    } catch {
      // fusermount missing or refused: as root, a lazy unmount clears it (never leave a stale mount).
      await run("umount", ["-l", this.mountpoint]).catch(() => {});
    } finally {
      await this.client.close();
    }
  }

  close(): Promise<void> {
    return this.unmount();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.unmount();
  }
}

/** Mounts `fs` at `mountpoint` as `caller` (throws NexusError "unavailable" where FUSE is not usable). */
export function mount(options: MountOptions): Promise<Mount> {
  return Mount.mount(options);
}

function errnoOf(e: unknown): number {
  return e instanceof NexusError ? (ERRNO[e.code] ?? EIO) : EIO;
}
