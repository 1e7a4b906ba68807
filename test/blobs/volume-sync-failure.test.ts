// The volume store after a failed fdatasync (injected). Linux reports a writeback error once, so the next
// fdatasync returns 0 without the bytes written before it being durable: no put after the failure may be
// acknowledged on its strength. Reads of what was stored before go on.
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { openStore } from "../../src/blobs/index.js";
import { tempDir } from "./helpers.js";

const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);

const failNext = { sync: false };
vi.mock("../../src/io/fs-io.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/io/fs-io.js")>();
  return {
    ...real,
    syncData: async (fd: number) => {
      if (!failNext.sync) return real.syncData(fd);
      failNext.sync = false;
      throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
    },
  };
});

const dirs: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of dirs.splice(0)) cleanup();
});
afterEach(() => {
  failNext.sync = false;
});

describe("a failed fdatasync of a volume", () => {
  it("fails that put and every later one (the next fdatasync would return 0); reads go on", async () => {
    const { dir, cleanup } = tempDir("nexus-volsync-");
    dirs.push(cleanup);
    const store = await openStore({ dir });
    const kept = await store.put(bytesOf("kept before"));
    failNext.sync = true;
    await expect(store.put(bytesOf("covered by the failed sync"))).rejects.toMatchObject({
      code: "io_error",
    });
    // The kernel would now answer fdatasync with 0: the store must not take that as durability.
    await expect(store.put(bytesOf("after the failure"))).rejects.toMatchObject({ code: "io_error" });
    expect(Buffer.from(await store.get(kept.key)).toString()).toBe("kept before");
    await store.close().catch(() => {});
    // Reopened (recovery reads what reached the files), it takes writes again.
    const again = await openStore({ dir });
    try {
      expect(Buffer.from(await again.get(kept.key)).toString()).toBe("kept before");
      const fresh = await again.put(bytesOf("after reopening"));
      expect(Buffer.from(await again.get(fresh.key)).toString()).toBe("after reopening");
    } finally {
      await again.close();
    }
  });
});
