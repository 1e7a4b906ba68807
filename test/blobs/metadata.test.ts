import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { MetadataTable } from "../../src/blobs/metadata/metadata.js";
import { PathInterner } from "../../src/blobs/metadata/path-interner.js";
import { NexusError } from "../../src/util/errors.js";
import { tempDir } from "./helpers.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const hash = (n: number) => n.toString(16).padStart(64, "0");

describe("PathInterner", () => {
  it("stores each prefix once and finds paths back", () => {
    const t = new PathInterner();
    const a = t.intern("/a/b/c.txt");
    const b = t.intern("/a/b/d.txt");
    expect(t.size).toBe(5); // root, a, b, c.txt, d.txt
    expect(t.lookup("/a/b/c.txt")).toBe(a);
    expect(t.lookup("/a/b/")).toBe(t.parentOf(a));
    expect(t.pathOf(b)).toBe("/a/b/d.txt");
    expect(t.lookup("/a/x")).toBeUndefined();
    expect(() => t.intern("a/b")).toThrowError(NexusError);
    expect(() => t.intern("/a//b")).toThrowError(/empty/);
    expect(() => t.intern("/a/../b")).toThrowError(NexusError);
  });

  it("round-trips any set of paths through its arrays (fast-check)", () => {
    const name = fc.stringMatching(/^[a-zé0-9._-]{1,6}$/).filter((s) => s !== "." && s !== "..");
    fc.assert(
      fc.property(fc.array(fc.array(name, { minLength: 1, maxLength: 4 }), { maxLength: 60 }), (paths) => {
        const t = new PathInterner(4);
        const ids = paths.map((p) => t.intern(`/${p.join("/")}`));
        const { parent, nameStart, pool } = t.exportArrays();
        const u = PathInterner.fromArrays(parent, nameStart, pool);
        paths.forEach((p, i) => {
          expect(t.pathOf(ids[i]!)).toBe(`/${p.join("/")}`);
          expect(u.lookup(`/${p.join("/")}`)).toBe(ids[i]);
        });
        expect(new Set(paths.map((p) => p.join("/"))).size + 1).toBeLessThanOrEqual(t.size);
      }),
    );
  });
});

describe("MetadataTable", () => {
  it("keeps 64-byte records, lists directories, and saves and loads them", async () => {
    const m = new MetadataTable();
    m.set("/docs/a.txt", { contentHash: hash(1), size: 10, mtime: 1_700_000_000_000, flags: 7 });
    m.set("/docs/b.txt", { contentHash: hash(2), size: 2 ** 40, mtime: 5, flags: 0 });
    m.set("/docs/sub/c.txt", { contentHash: hash(3), size: 0, mtime: 6, flags: 0 });
    expect(m.size).toBe(3);
    expect(m.get("/docs/a.txt")).toMatchObject({
      contentHash: hash(1),
      size: 10,
      mtime: 1_700_000_000_000,
      flags: 7,
    });
    expect(m.list("/docs")).toEqual(["a.txt", "b.txt", "sub"]);
    expect(m.list("/")).toEqual(["docs"]);
    expect(m.get("/docs")?.isDirectory).toBe(true);
    expect(() => m.set("/docs/a.txt/x", { contentHash: hash(4), size: 1, mtime: 1, flags: 0 })).toThrowError(
      /is a file/,
    );
    expect(() => m.delete("/docs/sub")).toThrowError(/not empty/);
    expect(m.delete("/docs/sub/c.txt")).toBe(true);
    expect(m.delete("/docs/sub")).toBe(true);
    expect(m.list("/docs")).toEqual(["a.txt", "b.txt"]);
    expect(() => m.list("/docs/a.txt")).toThrowError(NexusError);
    expect(() => m.set("/x", { contentHash: "nope", size: 1, mtime: 1, flags: 0 })).toThrowError(NexusError);

    const { dir, cleanup } = tempDir("nexus-meta-");
    cleanups.push(cleanup);
    const file = join(dir, "meta.bin");
    await m.save(file);
    const loaded = await MetadataTable.load(file);
    expect([...loaded.files()]).toEqual([...m.files()]);
    expect(loaded.list("/docs")).toEqual(["a.txt", "b.txt"]);
    loaded.set("/docs/new.txt", { contentHash: hash(9), size: 1, mtime: 1, flags: 0 });
    expect(loaded.size).toBe(3);

    const bytes = Buffer.from(await import("node:fs/promises").then((f) => f.readFile(file)));
    bytes[40]! ^= 1;
    writeFileSync(file, bytes);
    await expect(MetadataTable.load(file)).rejects.toMatchObject({ code: "corrupt" });
  });

  it("costs about 100 bytes a file at 100,000 files, names included", () => {
    const m = new MetadataTable();
    for (let i = 0; i < 100_000; i++) {
      m.set(`/data/user${i % 100}/project${(i >> 7) % 10}/file-${i}.dat`, {
        contentHash: hash(i),
        size: i,
        mtime: i,
        flags: 0,
      });
    }
    m.trim();
    expect(m.bytes / m.size).toBeLessThan(110);
    expect(m.get("/data/user42/project3/file-442.dat")?.size).toBe(442);
  });
});
