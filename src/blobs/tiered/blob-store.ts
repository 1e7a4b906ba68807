/**
 * The cold tier's interface: a flat key -> bytes store such as an object store bucket. The tiered store needs
 * only these operations, so any backend (S3, GCS, another disk) fits behind it. FsBlobStore is the filesystem
 * implementation: one file per blob, written atomically.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  ioError,
  removeFile,
  sweepTempFiles,
  syncDirectory,
  writeFileAtomic,
} from "../../io/durable-files.js";
import { NexusError } from "../../util/errors.js";

export interface BlobStore {
  /** Stores `bytes` under `key`, replacing any blob there; resolved only once the blob is durable. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** The blob's bytes; a NexusError with code `not_found` when there is none. */
  get(key: string): Promise<Uint8Array>;
  has(key: string): Promise<boolean>;
  /** Removes the blob; resolves true if it existed. */
  delete(key: string): Promise<boolean>;
  close?(): Promise<void>;
}

export interface FsBlobStoreOptions {
  /** Root directory (created if missing). */
  dir: string;
  /** fsync each blob and its directory before put resolves (default true). */
  fsync?: boolean;
}

/** Keys become file names: letters, digits, `-`, `_` and `.`, not starting with a dot, at most 200 characters. */
const KEY_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/**
 * Blobs as files under `dir`, fanned out by the key's first two characters (`dir/ab/abcdef...`). A crashed
 * write leaves only a temporary file, swept on the first operation after opening.
 */
export class FsBlobStore implements BlobStore, AsyncDisposable {
  readonly dir: string;
  readonly #fsync: boolean;
  #ready: Promise<void> | undefined;
  #closed = false;

  constructor(options: FsBlobStoreOptions) {
    if (typeof options?.dir !== "string" || options.dir.length === 0) {
      throw new NexusError("invalid_argument", "FsBlobStore needs a `dir` (a directory path)", {
        dir: options?.dir,
      });
    }
    this.dir = options.dir;
    this.#fsync = options.fsync ?? true;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.#open();
    if (!(bytes instanceof Uint8Array)) {
      throw new NexusError("invalid_argument", `blob ${key} must be a Uint8Array`, { key });
    }
    await writeFileAtomic(this.#path(key), [bytes], { fsync: this.#fsync });
  }

  async get(key: string): Promise<Uint8Array> {
    await this.#open();
    const path = this.#path(key);
    try {
      const buffer = await readFile(path);
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        throw new NexusError("not_found", `no blob with key ${key}`, { key });
      }
      throw ioError(`could not read blob ${key}`, path, error);
    }
  }

  async has(key: string): Promise<boolean> {
    await this.#open();
    try {
      return (await stat(this.#path(key))).isFile();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw ioError(`could not check blob ${key}`, this.#path(key), error);
    }
  }

  async delete(key: string): Promise<boolean> {
    await this.#open();
    const path = this.#path(key);
    const existed = await removeFile(path);
    if (existed && this.#fsync) await syncDirectory(join(path, ".."));
    return existed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#ready?.catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #open(): Promise<void> {
    if (this.#closed)
      return Promise.reject(new NexusError("closed", `the blob store at ${this.dir} is closed`));
    this.#ready ??= sweepTempFiles(this.dir).then(() => {});
    return this.#ready;
  }

  #path(key: string): string {
    if (typeof key !== "string" || !KEY_PATTERN.test(key)) {
      throw new NexusError(
        "invalid_argument",
        `blob key ${JSON.stringify(key)} must be 1-200 characters of [A-Za-z0-9._-], not starting with "."`,
        { key },
      );
    }
    return join(this.dir, key.length >= 2 ? key.slice(0, 2) : "_", key);
  }
}
