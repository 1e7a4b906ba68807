import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FsBlobStore } from "../../src/blobs/tiered/blob-store.js";
import { NexusError } from "../../src/util/errors.js";

const roots: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "nexus-blob-"));
  roots.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(roots.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe("FsBlobStore", () => {
  it("stores, reads, replaces and deletes blobs", async () => {
    await using blobs = new FsBlobStore({ dir: tempDir() });
    const bytes = new Uint8Array([1, 2, 3]);
    await blobs.put("abc", bytes);
    expect(await blobs.has("abc")).toBe(true);
    expect(await blobs.get("abc")).toEqual(bytes);
    await blobs.put("abc", new Uint8Array([9]));
    expect(await blobs.get("abc")).toEqual(new Uint8Array([9]));
    await blobs.put("z", new Uint8Array(0));
    expect(await blobs.get("z")).toEqual(new Uint8Array(0));
    expect(await blobs.delete("abc")).toBe(true);
    expect(await blobs.delete("abc")).toBe(false);
    expect(await blobs.has("abc")).toBe(false);
    await expect(blobs.get("abc")).rejects.toMatchObject({ code: "not_found" });
  });

  it("rejects keys that are not plain file names", async () => {
    await using blobs = new FsBlobStore({ dir: tempDir() });
    for (const key of ["", "../x", "a/b", ".hidden", "x".repeat(201)]) {
      await expect(blobs.put(key, new Uint8Array(1))).rejects.toMatchObject({ code: "invalid_argument" });
    }
    expect(() => new FsBlobStore({ dir: "" })).toThrowError(NexusError);
  });

  it("sweeps temporary files of dead writers, keeps those of live ones", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "ab"), { recursive: true });
    // pid 2^22 + 1 is above Linux's default pid_max range in containers: treated as dead.
    writeFileSync(join(dir, "ab", "abc.4194305-deadbeef.tmp"), "torn");
    writeFileSync(join(dir, "ab", `abd.${process.pid}-cafebabe.tmp`), "in progress");
    await using blobs = new FsBlobStore({ dir });
    expect(await blobs.has("abc")).toBe(false);
    expect(readdirSync(join(dir, "ab")).sort()).toEqual([`abd.${process.pid}-cafebabe.tmp`]);
  });

  it("refuses work after close", async () => {
    const blobs = new FsBlobStore({ dir: tempDir() });
    await blobs.close();
    await expect(blobs.put("a1", new Uint8Array(1))).rejects.toMatchObject({ code: "closed" });
  });
});
