/**
 * Staging a file's content before its write waits its turn: bytes and text are hashed in memory; a stream is
 * hashed while it spills to a file under `dir/staging`, so a large file is never held whole. The size limit is
 * enforced as the content arrives.
 */
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { createBLAKE3 } from "hash-wasm";
import { toAsyncIterable } from "../blobs/byte-stream.js";
import { NexusError } from "../util/errors.js";
import type { FileData } from "./types.js";

/** A staged content: hashed, and either in memory or in a staging file. */
export interface Staged {
  hash: string;
  size: number;
  bytes?: Uint8Array;
  file?: string;
}

export class ContentStager {
  readonly #dir: string;
  readonly #maxFileBytes: number;
  #hasher: Awaited<ReturnType<typeof createBLAKE3>> | undefined;

  /** `dir`: where streams spill (created on the first one). */
  constructor(dir: string, maxFileBytes: number) {
    this.#dir = dir;
    this.#maxFileBytes = maxFileBytes;
  }

  async stage(data: FileData): Promise<Staged> {
    if (typeof data === "string") data = new TextEncoder().encode(data);
    if (data instanceof Uint8Array) {
      // One hasher serves every in-memory content (hashing it is synchronous); streams get their own.
      this.#hasher ??= await createBLAKE3(256);
      const hasher = this.#hasher;
      if (data.length > this.#maxFileBytes) {
        throw new NexusError("invalid_argument", `a file is at most ${this.#maxFileBytes} bytes`, {
          limit: this.#maxFileBytes,
        });
      }
      return { hash: hasher.init().update(data).digest("hex"), size: data.length, bytes: data };
    }
    const hasher = await createBLAKE3(256);
    const chunks = toAsyncIterable(data);
    await mkdir(this.#dir, { recursive: true });
    const file = join(this.#dir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    const fh = await open(file, "w");
    let size = 0;
    try {
      hasher.init();
      for await (const chunk of chunks) {
        if (!(chunk instanceof Uint8Array)) {
          throw new NexusError("invalid_argument", "every chunk of a stream is a Uint8Array", {
            chunk: typeof chunk,
          });
        }
        size += chunk.length;
        if (size > this.#maxFileBytes) {
          throw new NexusError("invalid_argument", `a file is at most ${this.#maxFileBytes} bytes`, {
            limit: this.#maxFileBytes,
          });
        }
        hasher.update(chunk);
        await fh.write(chunk);
      }
    } catch (e) {
      await fh.close();
      await rm(file, { force: true });
      throw e;
    }
    await fh.close();
    return { hash: hasher.digest("hex"), size, file };
  }
}

/** A staged content's bytes, from memory or its staging file. */
export async function stagedBytes(staged: Staged): Promise<Uint8Array> {
  return staged.bytes ?? new Uint8Array(await readFile(staged.file!));
}
