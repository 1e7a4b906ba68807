/**
 * Taking in a blob given as a stream of chunks without holding it whole: the chunks are hashed (BLAKE3 key,
 * CRC32C) as they arrive and kept in memory up to `bufferBytes`; past that, everything goes to a staging file
 * the store then copies into a volume. The size limit is enforced as the chunks arrive.
 */
import * as fs from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createStreamHasher } from "../../io/checksum.js";
import { closeFile, openFile, writeAt } from "../../io/fs-io.js";
import { NexusError } from "../../util/errors.js";
import { toAsyncIterable } from "../byte-stream.js";
import { MAX_BLOB_SIZE } from "./layout.js";

export interface SpooledBlob {
  key: Uint8Array;
  crc: number;
  size: number;
  /** The chunks in memory, or the descriptor of the staging file holding them. */
  body: Uint8Array[] | number;
  /** Closes and removes the staging file, if there is one. */
  release(): Promise<void>;
}

/** Reads `source` to its end; `stagingDir` is created when the first blob spills. */
export async function spoolStream(
  source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  stagingDir: string,
  bufferBytes: number,
): Promise<SpooledBlob> {
  const iterable = toAsyncIterable(source);
  const hasher = await createStreamHasher();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let staging: { path: string; fd: number } | undefined;
  const release = async () => {
    if (staging) {
      await closeFile(staging.fd).catch(() => {});
      fs.rmSync(staging.path, { force: true });
    }
  };
  try {
    for await (const chunk of iterable) {
      if (!(chunk instanceof Uint8Array)) {
        throw new NexusError("invalid_argument", "putStream: every chunk must be a Uint8Array", {
          chunk: typeof chunk,
        });
      }
      size += chunk.length;
      if (size > MAX_BLOB_SIZE) {
        throw new NexusError("invalid_argument", `putStream: a blob is at most ${MAX_BLOB_SIZE} bytes`, {
          limit: MAX_BLOB_SIZE,
        });
      }
      hasher.update(chunk);
      if (staging === undefined && size <= bufferBytes) {
        chunks.push(chunk);
        continue;
      }
      if (staging === undefined) {
        await mkdir(stagingDir, { recursive: true });
        const path = join(stagingDir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
        staging = { path, fd: await openFile(path, "w+") };
        await writeAt(staging.fd, chunks, 0);
        chunks.length = 0;
      }
      await writeAt(staging.fd, [chunk], size - chunk.length);
    }
    const { key, crc } = hasher.finish();
    return { key, crc, size, body: staging === undefined ? chunks : staging.fd, release };
  } catch (e) {
    await release();
    throw e;
  }
}
