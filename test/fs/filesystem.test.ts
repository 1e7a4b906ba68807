/**
 * Every NexusFS operation with two users in each of two tenants (acme: alice, bob; globex: carol, dave): who may
 * and who may not, on real files in a temporary directory, through a real engine on the Nexus preset.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import type { FileSystem, FsSession } from "../../src/fs/filesystem.js";
import { openFileSystem } from "../../src/fs/open.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";
import { NexusError } from "../../src/util/errors.js";
import { ALICE, BOB, CAROL, DAVE, tempDir, text, twoTenants } from "./helpers.js";

let dir: string;
let cleanup: () => void;
let fs: FileSystem;
let engine: Engine;

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  ({ fs, engine } = await twoTenants(dir));
  const alice = fs.as(ALICE);
  await alice.mkdir("/docs");
  await alice.write("/docs/a.txt", "alpha");
  await alice.write("/docs/b.txt", "beta");
  const carol = fs.as(CAROL);
  await carol.mkdir("/reports");
  await carol.write("/reports/q1.txt", "globex q1");
});

afterEach(async () => {
  await fs.close();
  await engine.close();
  cleanup();
});

const code = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: { code?: string }) => e.code ?? String(e),
  );

describe("read, stat, write, append, versions", () => {
  it("lets the owner read and write, and nobody else until shared", async () => {
    const [alice, bob, carol, dave] = [fs.as(ALICE), fs.as(BOB), fs.as(CAROL), fs.as(DAVE)];
    expect(text(await alice.read("/docs/a.txt"))).toBe("alpha");
    expect(await code(bob.read("/docs/a.txt"))).toBe("permission_denied");
    expect(await code(bob.stat("/docs/a.txt"))).toBe("permission_denied");
    expect(await code(carol.read("/docs/a.txt", { tenant: "acme" }))).toBe("permission_denied");
    expect(await code(bob.write("/docs/a.txt", "mine"))).toBe("permission_denied");
    expect(await code(bob.write("/docs/new.txt", "mine"))).toBe("permission_denied");
    // Each tenant is its own tree: carol's /reports is not acme's.
    expect(await code(alice.read("/reports/q1.txt"))).toBe("not_found");
    expect(text(await carol.read("/reports/q1.txt"))).toBe("globex q1");
    expect(await code(dave.read("/reports/q1.txt"))).toBe("permission_denied");

    await alice.share("/docs/a.txt", { user: BOB.user, relation: "viewer" });
    expect(text(await bob.read("/docs/a.txt"))).toBe("alpha");
    expect(await code(bob.write("/docs/a.txt", "mine"))).toBe("permission_denied");
    await alice.share("/docs/a.txt", { user: BOB.user, relation: "editor" });
    const stat = await bob.write("/docs/a.txt", "alpha 2");
    expect(stat).toMatchObject({
      path: "/docs/a.txt",
      size: 7,
      version: 2,
      creator: ALICE.user,
      isDirectory: false,
    });
    await bob.append("/docs/a.txt", "+");
    expect(text(await alice.read("/docs/a.txt"))).toBe("alpha 2+");
    const versions = await bob.versions("/docs/a.txt");
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3]);
    expect(text(await bob.read("/docs/a.txt", { version: 1 }))).toBe("alpha");
    // Dave (globex) still cannot, carol neither.
    expect(await code(dave.read("/docs/a.txt", { tenant: "acme" }))).toBe("permission_denied");
    expect(await code(carol.versions("/docs/a.txt", { tenant: "acme" }))).toBe("permission_denied");
  });

  it("has no owner shortcut: a creator whose owner tuple is gone is refused", async () => {
    const alice = fs.as(ALICE);
    await engine.write({
      deletes: [{ user: ALICE.user, relation: "direct_owner", object: "file:/", tenant: "acme" }],
    });
    await engine.write({
      deletes: [{ user: ALICE.user, relation: "direct_owner", object: "file:/docs/a.txt", tenant: "acme" }],
    });
    const token = (
      await engine.write({
        deletes: [{ user: ALICE.user, relation: "direct_owner", object: "file:/docs", tenant: "acme" }],
      })
    ).token;
    expect(
      await engine.check({
        user: ALICE.user,
        relation: "read",
        object: "file:/docs/a.txt",
        tenant: "acme",
        consistency: { atLeastAsFresh: token },
      }),
    ).toBe(false);
    expect((await fs.as(ALICE).fs.engine.read({ tenant: "acme", object: "file:/docs/a.txt" })).length).toBe(
      1,
    ); // parent only
    expect(await code(alice.read("/docs/a.txt"))).toBe("permission_denied");
    expect(await code(alice.share("/docs/a.txt", { user: BOB.user, relation: "viewer" }))).toBe(
      "permission_denied",
    );
    expect(await code(alice.remove("/docs/a.txt"))).toBe("permission_denied");
  });

  it("streams a large write and stores identical contents once", async () => {
    const alice = fs.as(ALICE);
    const chunk = new Uint8Array(256 * 1024).map((_, i) => i * 7);
    async function* chunks() {
      for (let i = 0; i < 12; i++) yield chunk; // 3 MiB, never whole in memory on the way in
    }
    const before = fs.stats().contents;
    const stat = await alice.write("/docs/big.bin", chunks());
    expect(stat.size).toBe(12 * chunk.length);
    const back = await alice.read("/docs/big.bin");
    expect(back.length).toBe(stat.size);
    expect(back.subarray(chunk.length * 5, chunk.length * 6)).toEqual(chunk);
    await alice.write("/docs/copy.bin", back);
    expect(fs.stats().contents).toBe(before + 1);
    expect((await alice.stat("/docs/copy.bin")).hash).toBe(stat.hash);
    // A stream from someone who may not write is refused before it is consumed.
    let pulled = 0;
    async function* watched() {
      pulled++;
      yield chunk;
    }
    expect(await code(fs.as(BOB).write("/docs/x.bin", watched()))).toBe("permission_denied");
    expect(pulled).toBe(0);
  });

  it("keeps at most maxVersions contents per file and releases the dropped ones", async () => {
    const { dir: d2, cleanup: c2 } = tempDir();
    const other = await openFileSystem({ dir: d2, engine, maxVersions: 2 });
    try {
      await other.initTenant({ tenant: "acme", owners: [ALICE.user] });
      const alice = other.as(ALICE);
      for (const v of ["v1", "v2", "v3"]) await alice.write("/f", v);
      expect((await alice.versions("/f")).map((v) => v.version)).toEqual([2, 3]);
      expect(other.stats().contents).toBe(2);
      expect(other.stats().store.objects.hot).toBe(2);
      expect(await code(alice.read("/f", { version: 1 }))).toBe("not_found");
    } finally {
      await other.close();
      c2();
    }
  });
});

describe("contents in the tiered store", () => {
  it("reads a file demoted to warm (RS(10,4) shards) or cold, every version, after a reopen too", async () => {
    const alice = fs.as(ALICE);
    const bob = fs.as(BOB);
    const big = new Uint8Array(300_000).map((_, i) => (i * 31) % 256);
    async function* chunks() {
      for (let i = 0; i < big.length; i += 65_536) yield big.subarray(i, i + 65_536);
    }
    const v1 = await alice.write("/docs/big.bin", chunks());
    const v2 = await alice.write("/docs/big.bin", "second version");
    expect(await fs.contents.locate(v1.hash!)).toBe("hot");
    await fs.contents.moveTo(v1.hash!, "warm");
    await fs.contents.moveTo(v2.hash!, "cold");
    expect(fs.stats().store.objects).toMatchObject({ warm: 1, cold: 1 });
    expect(await alice.read("/docs/big.bin", { version: 1 })).toEqual(big);
    expect(text(await alice.read("/docs/big.bin"))).toBe("second version");
    // Tiers change where bytes are, not who may read them.
    expect(await code(bob.read("/docs/big.bin", { version: 1 }))).toBe("permission_denied");
    await fs.close();
    ({ fs } = await twoTenants(dir, { engine }));
    expect(await fs.contents.locate(v1.hash!)).toBe("warm");
    expect(await fs.as(ALICE).read("/docs/big.bin", { version: 1 })).toEqual(big);
    // The same content written again is held once (deduplicated where it lies); removing both files releases it
    // from every tier.
    const held = fs.stats().contents;
    await fs.as(ALICE).write("/docs/again.bin", big);
    expect(fs.stats().contents).toBe(held);
    expect(await fs.contents.locate(v1.hash!)).toBe("warm");
    await fs.as(ALICE).remove("/docs/again.bin");
    await fs.as(ALICE).remove("/docs/big.bin");
    expect(await fs.contents.has(v1.hash!)).toBe(false);
    expect(await fs.contents.has(v2.hash!)).toBe(false);
    expect(fs.stats().store.objects).toMatchObject({ warm: 0, cold: 0 });
  });

  it("moves contents by the tiering policy (here: warm as soon as idle) and reads them from there", async () => {
    const { dir: d2, cleanup: c2 } = tempDir();
    const other = await openFileSystem({
      dir: d2,
      engine,
      tiers: { intervalMs: false, policy: { warmAfterIdleMs: 0, minWarmSize: 0 } },
    });
    try {
      await other.initTenant({ tenant: "acme", owners: [ALICE.user] });
      const stat = await other.as(ALICE).write("/f", "idle content");
      expect(await other.contents.locate(stat.hash!)).toBe("hot");
      expect((await other.contents.runTieringPass()).demoted).toBe(1);
      expect(await other.contents.locate(stat.hash!)).toBe("warm");
      expect(await other.as(ALICE).readText("/f")).toBe("idle content");
      expect(await code(openFileSystem({ dir: d2, tiers: { intervalMs: -1 } }))).toBe("invalid_argument");
    } finally {
      await other.close();
      c2();
    }
  });
});

describe("cross-tenant shares", () => {
  it("shares a directory with another tenant's user, who reads below it until revoked", async () => {
    const [alice, carol, dave] = [fs.as(ALICE), fs.as(CAROL), fs.as(DAVE)];
    expect(await code(alice.share("/docs", { user: CAROL.user, relation: "viewer", tenant: "globex" }))).toBe(
      "ok",
    );
    expect(text(await carol.read("/docs/b.txt", { tenant: "acme" }))).toBe("beta");
    expect((await carol.list("/docs", { tenant: "acme" })).map((e) => e.name)).toEqual(["a.txt", "b.txt"]);
    expect(await code(carol.write("/docs/b.txt", "x", { tenant: "acme" }))).toBe("permission_denied");
    expect(await code(dave.read("/docs/b.txt", { tenant: "acme" }))).toBe("permission_denied");
    // An editor share lets carol create in acme; she owns what she creates through a shared-owner tuple.
    await alice.share("/docs", { user: CAROL.user, relation: "editor", tenant: "globex" });
    await carol.write("/docs/from-carol.txt", "hi", { tenant: "acme" });
    expect(text(await alice.read("/docs/from-carol.txt"))).toBe("hi");
    expect(
      await engine.read({ tenant: "acme", object: "file:/docs/from-carol.txt", relation: "shared-owner" }),
    ).toEqual([expect.objectContaining({ user: CAROL.user, subjectTenant: "globex" })]);
    // Revoking both grants takes it all away at once.
    await alice.unshare("/docs", { user: CAROL.user, relation: "viewer", tenant: "globex" });
    await alice.unshare("/docs", { user: CAROL.user, relation: "editor", tenant: "globex" });
    expect(await code(carol.read("/docs/b.txt", { tenant: "acme" }))).toBe("permission_denied");
    // What she created she still owns (shared-owner), so /docs still lists, with that alone.
    expect((await carol.list("/docs", { tenant: "acme" })).map((e) => e.name)).toEqual(["from-carol.txt"]);
    expect(
      await code(alice.unshare("/docs", { user: CAROL.user, relation: "viewer", tenant: "globex" })),
    ).toBe("not_found");
    // Only an owner shares: bob (viewer) cannot, nor can carol share globex's file on acme's behalf.
    await alice.share("/docs/a.txt", { user: BOB.user, relation: "viewer" });
    expect(
      await code(fs.as(BOB).share("/docs/a.txt", { user: DAVE.user, relation: "viewer", tenant: "globex" })),
    ).toBe("permission_denied");
  });
});

describe("list and glob", () => {
  it("shows each user only what they may read, and directories with something readable below", async () => {
    const [alice, bob, carol, dave] = [fs.as(ALICE), fs.as(BOB), fs.as(CAROL), fs.as(DAVE)];
    await alice.mkdir("/docs/deep/er", { recursive: true });
    await alice.write("/docs/deep/er/c.txt", "gamma");
    await alice.write("/top.txt", "top");
    expect((await alice.list("/docs")).map((e) => e.name)).toEqual(["a.txt", "b.txt", "deep"]);
    expect(await code(bob.list("/docs"))).toBe("permission_denied");
    expect(await code(bob.list("/"))).toBe("permission_denied");
    await alice.share("/docs/deep/er/c.txt", { user: BOB.user, relation: "viewer" });
    // Bob reaches c.txt: every directory above it shows, nothing else does.
    expect((await bob.list("/")).map((e) => e.name)).toEqual(["docs"]);
    expect((await bob.list("/docs")).map((e) => e.name)).toEqual(["deep"]);
    expect((await bob.list("/docs/deep/er")).map((e) => [e.name, e.size])).toEqual([["c.txt", 5]]);
    expect(await bob.glob("/**/*.txt")).toEqual(["/docs/deep/er/c.txt"]);
    expect(await alice.glob("/docs/*.txt")).toEqual(["/docs/a.txt", "/docs/b.txt"]);
    expect(await alice.glob("**/?.txt", { cwd: "/docs" })).toEqual([
      "/docs/a.txt",
      "/docs/b.txt",
      "/docs/deep/er/c.txt",
    ]);
    expect(await alice.glob("/docs/[!a].txt")).toEqual(["/docs/b.txt"]);
    // The other tenant: carol and dave see globex's tree only.
    expect((await carol.list("/")).map((e) => e.name)).toEqual(["reports"]);
    expect(await code(dave.list("/"))).toBe("permission_denied");
    expect(await code(dave.glob("/**"))).toBe("permission_denied");
    expect(await code(carol.list("/", { tenant: "acme" }))).toBe("permission_denied");
    await alice.share("/top.txt", { user: DAVE.user, relation: "viewer", tenant: "globex" });
    expect((await dave.list("/", { tenant: "acme" })).map((e) => e.name)).toEqual(["top.txt"]);
    expect(await code(alice.list("/docs/a.txt"))).toBe("not_a_directory");
  });

  it("lists through groups: a grant to a group reaches its members", async () => {
    const alice = fs.as(ALICE);
    await engine.write({
      writes: [{ user: BOB.user, relation: "member", object: "group:eng", tenant: "acme" }],
    });
    await alice.share("/docs", { user: "group:eng", relation: "viewer" });
    expect((await fs.as(BOB).list("/docs")).map((e) => e.name)).toEqual(["a.txt", "b.txt"]);
  });
});

describe("mkdir, rename, remove", () => {
  it("mkdir checks write on the parent, at every level it creates", async () => {
    const [alice, bob, carol] = [fs.as(ALICE), fs.as(BOB), fs.as(CAROL)];
    expect(await code(bob.mkdir("/docs/bobs"))).toBe("permission_denied");
    await alice.share("/docs", { user: BOB.user, relation: "editor" });
    await bob.mkdir("/docs/bobs/x/y", { recursive: true });
    expect((await bob.stat("/docs/bobs/x/y")).isDirectory).toBe(true);
    expect(await code(bob.mkdir("/elsewhere/z", { recursive: true }))).toBe("permission_denied");
    expect(await code(alice.mkdir("/docs"))).toBe("already_exists");
    expect(await code(alice.mkdir("/nope/deeper"))).toBe("not_found");
    expect(await code(alice.mkdir("/docs/a.txt/sub"))).toBe("not_a_directory");
    expect(await code(carol.mkdir("/docs/c", { tenant: "acme" }))).toBe("permission_denied");
    await carol.mkdir("/reports/2026");
    expect((await carol.list("/reports")).map((e) => e.name)).toEqual(["2026", "q1.txt"]);
  });

  it("rename checks both ends, moves permissions with the entry, and replaces a file", async () => {
    const [alice, bob, carol] = [fs.as(ALICE), fs.as(BOB), fs.as(CAROL)];
    await alice.mkdir("/inbox");
    await alice.share("/docs/a.txt", { user: BOB.user, relation: "editor" });
    // Bob may write the source but not the destination's directory.
    expect(await code(bob.rename("/docs/a.txt", "/inbox/a.txt"))).toBe("permission_denied");
    // Nor the other way round.
    await alice.share("/inbox", { user: BOB.user, relation: "editor" });
    expect(await code(bob.rename("/docs/b.txt", "/inbox/b.txt"))).toBe("permission_denied");
    await bob.rename("/docs/a.txt", "/inbox/a2.txt");
    expect(await code(bob.read("/docs/a.txt"))).toBe("permission_denied");
    expect(text(await bob.read("/inbox/a2.txt"))).toBe("alpha");
    // Directory moves carry everything below with its grants.
    await alice.mkdir("/docs/sub");
    await alice.write("/docs/sub/s.txt", "sub");
    await alice.share("/docs/sub/s.txt", { user: CAROL.user, relation: "viewer", tenant: "globex" });
    await alice.rename("/docs", "/archive");
    expect(text(await carol.read("/archive/sub/s.txt", { tenant: "acme" }))).toBe("sub");
    expect(await code(carol.read("/docs/sub/s.txt", { tenant: "acme" }))).toBe("permission_denied");
    expect(await code(alice.read("/docs/sub/s.txt"))).toBe("not_found");
    expect((await alice.list("/")).map((e) => e.name)).toEqual(["archive", "inbox"]);
    expect(await engine.read({ tenant: "acme", object: "file:/docs/sub/s.txt" })).toEqual([]);
    expect(
      (await engine.read({ tenant: "acme", object: "file:/archive/sub/s.txt", relation: "parent" })).map(
        (t) => t.user,
      ),
    ).toEqual(["file:/archive/sub"]);
    // Replacing a file needs write on it; the replaced content goes.
    await alice.write("/inbox/old.txt", "old");
    await alice.rename("/inbox/a2.txt", "/inbox/old.txt");
    expect(text(await alice.read("/inbox/old.txt"))).toBe("alpha");
    expect(await code(alice.rename("/archive", "/archive/inside"))).toBe("invalid_argument");
    expect(await code(alice.rename("/inbox/old.txt", "/archive"))).toBe("already_exists");
    expect(await code(carol.rename("/reports/q1.txt", "/reports/q2.txt", { tenant: "acme" }))).toBe(
      "permission_denied",
    );
    await carol.rename("/reports/q1.txt", "/reports/q2.txt");
    expect(text(await carol.read("/reports/q2.txt"))).toBe("globex q1");
  });

  it("remove checks write on the path; directories must be empty unless recursive", async () => {
    const [alice, bob, carol, dave] = [fs.as(ALICE), fs.as(BOB), fs.as(CAROL), fs.as(DAVE)];
    await alice.share("/docs/a.txt", { user: BOB.user, relation: "viewer" });
    expect(await code(bob.remove("/docs/a.txt"))).toBe("permission_denied");
    await alice.share("/docs/a.txt", { user: BOB.user, relation: "editor" });
    await bob.remove("/docs/a.txt");
    expect(await code(alice.read("/docs/a.txt"))).toBe("not_found");
    expect(await engine.read({ tenant: "acme", object: "file:/docs/a.txt" })).toEqual([]);
    expect(await code(alice.remove("/docs"))).toBe("not_empty");
    await alice.remove("/docs", { recursive: true });
    expect((await alice.list("/")).map((e) => e.name)).toEqual([]);
    expect(await code(dave.remove("/reports/q1.txt"))).toBe("permission_denied");
    await carol.remove("/reports/q1.txt");
    expect(fs.stats().files).toBe(0);
    expect(fs.stats().store.objects).toEqual({ hot: 0, warm: 0, cold: 0 });
  });

  it("refuses bad input with typed errors", async () => {
    const alice = fs.as(ALICE);
    expect(await code(alice.read("relative"))).toBe("invalid_argument");
    expect(await code(alice.read("/a/../b"))).toBe("invalid_argument");
    expect(await code(alice.write("/has#hash", "x"))).toBe("invalid_argument");
    expect(await code(alice.read("/docs"))).toBe("is_a_directory");
    expect(await code(alice.write("/docs", "x"))).toBe("is_a_directory");
    expect(await code(alice.remove("/"))).toBe("invalid_argument");
    expect(await code(alice.share("/docs", { user: BOB.user, relation: "admin" as "owner" }))).toBe(
      "invalid_argument",
    );
    expect(() => fs.as({ user: "nobody" })).toThrow(/caller/);
    expect(await code(fs.as(BOB).read("/missing"))).toBe("permission_denied");
  });
});

describe("persistence", () => {
  it("reopens with every file, version and directory, and the same permissions (same engine)", async () => {
    const alice = fs.as(ALICE);
    await alice.write("/docs/a.txt", "alpha 2");
    await alice.mkdir("/empty");
    await alice.share("/docs/b.txt", { user: BOB.user, relation: "viewer" });
    await fs.close();
    fs = await openFileSystem({ dir, engine });
    expect(fs.recovery).toMatchObject({ rolledBack: false, rolledForward: false });
    expect(text(await fs.as(ALICE).read("/docs/a.txt"))).toBe("alpha 2");
    expect((await fs.as(ALICE).versions("/docs/a.txt")).length).toBe(2);
    expect((await fs.as(ALICE).list("/")).map((e) => e.name)).toEqual(["docs", "empty"]);
    expect(text(await fs.as(BOB).read("/docs/b.txt"))).toBe("beta");
    expect(await code(fs.as(BOB).read("/docs/a.txt"))).toBe("permission_denied");
    expect(text(await fs.as(CAROL).read("/reports/q1.txt"))).toBe("globex q1");
  });

  it("checkpoints and replays the journal after the checkpoint", async () => {
    await fs.close();
    fs = await openFileSystem({ dir, engine, checkpointEvery: 5 });
    const alice = fs.as(ALICE);
    for (let i = 0; i < 12; i++) await alice.write(`/docs/n${i}.txt`, `n${i}`);
    await alice.rename("/docs/n3.txt", "/docs/m3.txt");
    await alice.remove("/docs/n4.txt");
    await fs.close();
    fs = await openFileSystem({ dir, engine });
    expect(await fs.as(ALICE).glob("/docs/*3.txt")).toEqual(["/docs/m3.txt"]);
    expect(await fs.as(ALICE).glob("/docs/n*.txt")).toHaveLength(10);
  });
});

describe("on the embedded default (its own engine and durable tuple store)", () => {
  it("keeps files and permissions across a restart, and leaves nothing running after close", async () => {
    const { dir: own, cleanup: done } = tempDir();
    try {
      const before = process.getActiveResourcesInfo().length;
      let mine = await openFileSystem({ dir: own });
      expect(mine.tuplesDurable).toBe(true);
      await mine.initTenant({ tenant: "acme", owners: [ALICE.user] });
      await mine.initTenant({ tenant: "globex", owners: [CAROL.user] });
      await mine.as(ALICE).write("/a.txt", "a");
      await mine.as(ALICE).share("/a.txt", { user: BOB.user, relation: "viewer" });
      await mine.as(ALICE).share("/a.txt", { user: DAVE.user, relation: "viewer", tenant: "globex" });
      await mine.as(CAROL).write("/c.txt", "c");
      await mine.close();
      mine = await openFileSystem({ dir: own });
      expect(text(await mine.as(BOB).read("/a.txt"))).toBe("a");
      expect(text(await mine.as(DAVE).read("/a.txt", { tenant: "acme" }))).toBe("a");
      expect(await code(mine.as(CAROL).read("/a.txt", { tenant: "acme" }))).toBe("permission_denied");
      expect(await code(mine.as(DAVE).read("/c.txt"))).toBe("permission_denied");
      expect(text(await mine.as(CAROL).read("/c.txt"))).toBe("c");
      await mine.close();
      await new Promise((r) => setTimeout(r, 20));
      expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
    } finally {
      done();
    }
  });
});

describe("reads racing a rename over the file", () => {
  /**
   * The same engine, whose answers to bob's checks (`lagChecks`) or to the filesystem's tuple writes
   * (`lagWrites`) arrive 100 ms late, as a remote or busy engine's would: the writes are applied at once.
   */
  async function laggy() {
    const { dir: d, cleanup: done } = tempDir();
    const real = await createEngine({ model: nexusFilesystemModel });
    const lag = { checks: false, writes: false };
    const later = () => new Promise((r) => setTimeout(r, 100));
    const slow = new Proxy(real, {
      get(target, key) {
        if (key === "check")
          return async (req: Parameters<Engine["check"]>[0]) => {
            const allowed = await target.check(req);
            if (lag.checks && req.user === BOB.user) await later();
            return allowed;
          };
        if (key === "write")
          return async (req: Parameters<Engine["write"]>[0]) => {
            const written = await target.write(req);
            if (lag.writes) await later();
            return written;
          };
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const fs2 = await openFileSystem({ dir: d, engine: slow });
    await fs2.initTenant({ tenant: "acme", owners: [ALICE.user] });
    const alice = fs2.as(ALICE);
    await alice.mkdir("/docs");
    await alice.write("/docs/public.txt", "public");
    await alice.write("/docs/secret.txt", "TOP SECRET");
    await alice.share("/docs/public.txt", { user: BOB.user, relation: "viewer" });
    const close = async () => {
      await fs2.close();
      await real.close();
      done();
    };
    return { fs2, lag, close, secret: (await alice.stat("/docs/secret.txt")).hash! };
  }

  /** What a read answered, or the code it was refused with. */
  const outcome = (p: Promise<unknown>) =>
    p.then(
      (got) => String(got),
      (e: { code?: string }) => e.code ?? String(e),
    );

  const reads = {
    read: (s: FsSession, p: string) => s.readText(p),
    readWithStat: async (s: FsSession, p: string) => {
      const { stat, bytes } = await s.fs.readWithStat(s.caller, p);
      return `${text(bytes)} ${stat.hash}`;
    },
    stat: async (s: FsSession, p: string) => (await s.stat(p)).hash,
    versions: async (s: FsSession, p: string) => (await s.versions(p)).map((v) => v.hash).join(),
    list: async (s: FsSession) => (await s.list("/docs")).map((e) => `${e.name} ${e.hash}`).join(),
  };

  for (const [name, op] of Object.entries(reads)) {
    it(`${name}: a check answered before the rename does not hand out the file that replaced it`, async () => {
      const { fs2, lag, close, secret } = await laggy();
      try {
        const bob = fs2.as(BOB);
        lag.checks = true;
        const reading = outcome(op(bob, "/docs/public.txt"));
        await new Promise((r) => setTimeout(r, 10));
        await fs2.rename(ALICE, "/docs/secret.txt", "/docs/public.txt");
        const got = await reading;
        lag.checks = false;
        // Either the state before the rename or a refusal (bob may not read what is there now); never the secret.
        expect(got).not.toMatch(/TOP SECRET/);
        expect(got).not.toContain(secret);
        expect(await code(bob.read("/docs/public.txt"))).toBe("permission_denied");
      } finally {
        await close();
      }
    });

    it(`${name}: tuples moved ahead of the tree do not open the old file`, async () => {
      const { fs2, lag, close, secret } = await laggy();
      try {
        const bob = fs2.as(BOB);
        // Bob's grant moves onto secret.txt's path before the tree says what is there now.
        lag.writes = true;
        const renaming = fs2.rename(ALICE, "/docs/public.txt", "/docs/secret.txt");
        await new Promise((r) => setTimeout(r, 30));
        const got = await outcome(op(bob, "/docs/secret.txt"));
        await renaming;
        lag.writes = false;
        expect(got).not.toMatch(/TOP SECRET/);
        expect(got).not.toContain(secret);
        expect(await bob.readText("/docs/secret.txt")).toBe("public");
      } finally {
        await close();
      }
    });
  }
});

describe("a mutation that fails half done leaves nothing behind", () => {
  it("refuses a path with a lone surrogate before storing anything", async () => {
    const alice = fs.as(ALICE);
    const before = fs.stats().contents;
    for (const path of ["/bad\uD800.txt", "/docs/\uDC00", "/docs/x\uDBFF"]) {
      expect(await code(alice.write(path, "payload never stored"))).toBe("invalid_argument");
      expect(await code(alice.mkdir(path))).toBe("invalid_argument");
    }
    // A pair is one character and stays allowed.
    expect((await alice.write("/docs/\uD83D\uDE00.txt", "ok")).size).toBe(2);
    expect(fs.stats().contents).toBe(before + 1);
    const { hash } = await alice.write("/docs/c.txt", "payload never stored");
    await alice.remove("/docs/c.txt");
    expect(await fs.contents.has(hash!)).toBe(false);
  });

  /**
   * The same engine, whose tuple writes fail when told: `refuse` refuses the request (nothing applied), `lose`
   * applies it and loses the answer once, `crash` does that and then fails every write (`down`).
   */
  async function flaky() {
    const { dir: d, cleanup: done } = tempDir();
    const real = await createEngine({ model: nexusFilesystemModel });
    const mode = { now: "ok" as "ok" | "refuse" | "lose" | "crash" | "down" };
    const unavailable = () => new NexusError("unavailable", "engine unavailable");
    const engine2 = new Proxy(real, {
      get(target, key) {
        if (key === "write")
          return async (req: Parameters<Engine["write"]>[0]) => {
            if (mode.now === "refuse") throw new NexusError("invalid_tuple", "refused");
            if (mode.now === "down") throw unavailable();
            const written = await target.write(req);
            if (mode.now === "lose" || mode.now === "crash") {
              mode.now = mode.now === "lose" ? "ok" : "down";
              throw unavailable();
            }
            return written;
          };
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const fs2 = await openFileSystem({ dir: d, engine: engine2 });
    await fs2.initTenant({ tenant: "acme", owners: [ALICE.user] });
    const alice = fs2.as(ALICE);
    await alice.mkdir("/docs");
    await alice.write("/docs/a.txt", "alpha");
    await alice.share("/docs/a.txt", { user: BOB.user, relation: "viewer" });
    const tuples = async (path: string) =>
      (await real.read({ tenant: "acme", object: `file:${path}` }))
        .map((t) => `${t.relation} ${t.user}`)
        .sort();
    return { fs2, d, real, mode, tuples, close: async () => real.close().then(done) };
  }

  it("releases the stored bytes and journals the end when the engine refuses the tuples", async () => {
    const { fs2, d, real, mode, tuples, close } = await flaky();
    try {
      const alice = fs2.as(ALICE);
      const before = fs2.stats().contents;
      mode.now = "refuse";
      expect(await code(alice.write("/docs/new.txt", "never kept"))).toBe("invalid_tuple");
      mode.now = "ok";
      expect(fs2.stats().contents).toBe(before);
      expect(fs2.stats().store.objects.hot).toBe(before);
      expect(await tuples("/docs/new.txt")).toEqual([]);
      // The filesystem goes on; the same content, written and removed, is gone from the store.
      const { hash } = await alice.write("/docs/new.txt", "never kept");
      await alice.remove("/docs/new.txt");
      expect(await fs2.contents.has(hash!)).toBe(false);
      await fs2.close();
      const again = await openFileSystem({ dir: d, engine: real });
      try {
        expect(again.recovery).toMatchObject({ rolledBack: false, rolledForward: false, releasedKeys: 0 });
        expect(await again.contents.has(hash!)).toBe(false);
      } finally {
        await again.close();
      }
    } finally {
      await fs2.close();
      await close();
    }
  });

  it("releases bytes a store took before its put failed", async () => {
    const { fs2, close } = await flaky();
    try {
      const alice = fs2.as(ALICE);
      const before = fs2.stats().store.objects.hot;
      // A store that keeps the bytes and then fails (a tier whose own bookkeeping failed after the write).
      const store = fs2.contents as { put: (bytes: Uint8Array) => Promise<unknown> };
      const put = store.put.bind(store);
      store.put = async (bytes) => {
        await put(bytes);
        throw new NexusError("io_error", "ledger commit failed");
      };
      try {
        expect(await code(alice.write("/docs/orphan.txt", "taken, then failed"))).toBe("io_error");
      } finally {
        store.put = put;
      }
      expect(fs2.stats().store.objects.hot).toBe(before);
      // And the filesystem goes on.
      await alice.write("/docs/after.txt", "fine");
      expect(await alice.read("/docs/after.txt")).toBeDefined();
    } finally {
      await fs2.close();
      await close();
    }
  });

  it("reverses the tuples a failed rename wrote, and stops mutations until reopen when even that fails", async () => {
    const { fs2, d, real, mode, tuples, close } = await flaky();
    try {
      const alice = fs2.as(ALICE);
      const grants = await tuples("/docs/a.txt");
      // The write is applied and its answer lost; the undo's write goes through.
      mode.now = "lose";
      expect(await code(alice.rename("/docs/a.txt", "/docs/b.txt"))).toBe("unavailable");
      expect(await tuples("/docs/a.txt")).toEqual(grants);
      expect(await tuples("/docs/b.txt")).toEqual([]);
      expect(await fs2.as(BOB).readText("/docs/a.txt")).toBe("alpha");
      // Now the undo fails too: nothing more runs until a reopen rolls the rename back.
      mode.now = "crash";
      expect(await code(alice.rename("/docs/a.txt", "/docs/b.txt"))).toBe("unavailable");
      mode.now = "ok";
      expect(await tuples("/docs/b.txt")).not.toEqual([]);
      expect(await code(alice.write("/docs/c.txt", "c"))).toBe("unavailable");
      expect(await code(alice.share("/docs", { user: BOB.user, relation: "viewer" }))).toBe("unavailable");
      await fs2.close();
      const again = await openFileSystem({ dir: d, engine: real });
      try {
        expect(again.recovery).toMatchObject({ rolledBack: true });
        expect(await tuples("/docs/a.txt")).toEqual(grants);
        expect(await tuples("/docs/b.txt")).toEqual([]);
        expect(await again.as(BOB).readText("/docs/a.txt")).toBe("alpha");
        await again.as(ALICE).write("/docs/c.txt", "c");
      } finally {
        await again.close();
      }
    } finally {
      await fs2.close();
      await close();
    }
  });
});
