/**
 * Streamed puts accept either a Node/async iterable of chunks or a WHATWG ReadableStream (what `fetch` and
 * `Blob.stream()` give); this turns both into one async iterable so the put paths read one shape.
 */
import { describe, NexusError } from "../util/errors.js";

export type ByteSource = AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;

export function toAsyncIterable(source: ByteSource): AsyncIterable<Uint8Array> {
  if (source && typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function") {
    return source as AsyncIterable<Uint8Array>;
  }
  if (source && typeof (source as ReadableStream<Uint8Array>).getReader === "function") {
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    return {
      async *[Symbol.asyncIterator]() {
        try {
          while (true) {
            const { done, value } = await reader.read();
            if (done) return;
            yield value;
          }
        } finally {
          reader.releaseLock();
        }
      },
    };
  }
  throw new NexusError(
    "invalid_argument",
    `putStream takes an async iterable or a ReadableStream of Uint8Array, got ${describe(source)}`,
  );
}
