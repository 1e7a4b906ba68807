// TieredStore.putStream: a stream goes to the hot tier through the volume store's putStream (never gathered
// whole), counts as a put (dedup, references), and brings demoted content back hot, as put does.
import { afterEach, describe, expect, it } from "vitest";
import { FsBlobStore } from "../../src/blobs/tiered/blob-store.js";
import type { HotStore } from "../../src/blobs/tiered/options.js";
import { openTieredStore } from "../../src/blobs/tiered/store.js";
import {
  type Layout,
  makeLayout,
  objectBytes,
  openHot,
  openLayout,
  removeLayout,
  sameBytes,
} from "./tiered-fixtures.js";

const layouts: Layout[] = [];
function layout(): Layout {
  const l = makeLayout();
  layouts.push(l);
  return l;
}
afterEach(async () => {
  await Promise.all(layouts.splice(0).map(removeLayout));
});

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, Math.min(bytes.length, i + size));
}

describe("TieredStore.putStream", () => {
  it("streams into the hot tier without put(), dedups with put, and reads back from every tier", async () => {
    const l = layout();
    const hot = await openHot(l.hotDir, "never");
    const calls = { put: 0, putStream: 0 };
    const counting: HotStore = {
      put: (b) => {
        calls.put++;
        return hot.put(b);
      },
      putStream: (s) => {
        calls.putStream++;
        return hot.putStream!(s);
      },
      get: (k) => hot.get(k),
      has: (k) => hot.has(k),
      delete: (k) => hot.delete(k),
      close: () => hot.close(),
    };
    await using store = await openTieredStore({
      dir: l.dir,
      hot: counting,
      cold: new FsBlobStore({ dir: l.coldDir, fsync: false }),
      warm: { dirs: l.warmDirs },
      fsync: false,
    });
    // Larger than the volume store's 8 MiB in-memory limit: it stages the stream in a file.
    const bytes = objectBytes(9 * 1024 * 1024 + 17, 7);
    const { key, size } = await store.putStream(chunked(bytes, 64 * 1024));
    expect(size).toBe(bytes.length);
    expect(calls).toEqual({ put: 0, putStream: 1 });
    expect(await store.locate(key)).toBe("hot");
    expect((await store.put(bytes)).key).toBe(key);
    expect(store.tracked(key)?.refs).toBe(2);
    for (const tier of ["warm", "cold"] as const) {
      await store.moveTo(key, tier);
      expect(sameBytes(await store.get(key), bytes)).toBe(true);
    }
    // Stored again while cold: the streamed copy is hot, the cold one goes.
    const again = await store.putStream(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes.subarray(0, 1000));
          controller.enqueue(bytes.subarray(1000));
          controller.close();
        },
      }),
    );
    expect(again.key).toBe(key);
    expect(await store.locate(key)).toBe("hot");
    expect(store.stats().objects).toEqual({ hot: 1, warm: 0, cold: 0 });
    expect(store.tracked(key)?.refs).toBe(3);
    for (let i = 0; i < 3; i++) expect(await store.delete(key)).toBe(true);
    expect(await store.has(key)).toBe(false);
  });

  it("gathers the chunks for a hot store without putStream, and refuses a chunk that is not bytes", async () => {
    const l = layout();
    const hot = await openHot(l.hotDir, "never");
    const plain: HotStore = {
      put: (b) => hot.put(b),
      get: (k) => hot.get(k),
      has: (k) => hot.has(k),
      delete: (k) => hot.delete(k),
      close: () => hot.close(),
    };
    await using store = await openTieredStore({
      dir: l.dir,
      hot: plain,
      cold: new FsBlobStore({ dir: l.coldDir, fsync: false }),
      warm: { dirs: l.warmDirs },
      fsync: false,
    });
    const bytes = objectBytes(300_000, 3);
    const { key, size } = await store.putStream(chunked(bytes, 4096));
    expect(size).toBe(300_000);
    expect(sameBytes(await store.get(key), bytes)).toBe(true);
    async function* bad(): AsyncGenerator<Uint8Array> {
      yield "text" as unknown as Uint8Array;
    }
    await expect(store.putStream(bad())).rejects.toMatchObject({ code: "invalid_argument" });
    await using second = await openLayout(layout(), { fsync: false });
    await expect(second.putStream(bad())).rejects.toMatchObject({ code: "invalid_argument" });
  });
});
