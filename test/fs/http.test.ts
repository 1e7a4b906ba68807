/**
 * NexusFS over the server's HTTP file endpoints: the same checks for two users in each of two tenants, the
 * caching client over the network invalidated by the pushed change stream, streamed writes, and nothing left
 * running after the server and client close.
 */
import { afterEach, expect, it } from "vitest";
import { FsClient } from "../../src/fs/client.js";
import { HttpFileSystem } from "../../src/fs/http.js";
import { startServer } from "../../src/server/server.js";
import { ALICE, BOB, CAROL, DAVE, tempDir, text, twoTenants } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const code = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: { code?: string }) => e.code ?? String(e),
  );

it("serves every operation with the filesystem's checks, and pushes invalidations to caching clients", async () => {
  const before = process.getActiveResourcesInfo().length;
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const { fs, engine } = await twoTenants(dir);
  cleanups.push(
    () => engine.close(),
    () => fs.close(),
  );
  const server = await startServer({ port: 0, files: fs, presharedKeys: ["k1"] });
  cleanups.push(() => server.close());
  const remote = await HttpFileSystem.connect({ url: server.url, key: "k1" });
  expect(await code(HttpFileSystem.connect({ url: server.url, key: "wrong" }))).not.toBe("ok");

  await remote.mkdir(ALICE, "/docs");
  await remote.write(ALICE, "/docs/a.txt", "alpha");
  async function* chunks() {
    for (let i = 0; i < 4; i++) yield new Uint8Array(64 * 1024).fill(i);
  }
  expect((await remote.write(ALICE, "/docs/big.bin", chunks())).size).toBe(256 * 1024);
  expect((await remote.read(ALICE, "/docs/big.bin"))[200_000]).toBe(3);
  expect(text(await remote.read(ALICE, "/docs/a.txt"))).toBe("alpha");
  expect((await remote.list(ALICE, "/docs")).map((e) => e.name)).toEqual(["a.txt", "big.bin"]);
  expect(await code(remote.read(BOB, "/docs/a.txt"))).toBe("permission_denied");
  expect(await code(remote.write(BOB, "/docs/b.txt", "x"))).toBe("permission_denied");
  // Asked before a write that comes later (the mount's create): the same answers, nothing written.
  expect(await code(remote.assertWritable(BOB, "/docs/b.txt"))).toBe("permission_denied");
  expect(await code(remote.assertWritable(ALICE, "/docs/b.txt"))).toBe("ok");
  expect(await code(remote.assertWritable(ALICE, "/nowhere/b.txt"))).toBe("not_found");
  expect(await code(remote.assertWritable(ALICE, "/docs"))).toBe("is_a_directory");
  expect(await code(remote.stat(ALICE, "/docs/b.txt"))).toBe("not_found");
  expect(await code(remote.read(CAROL, "/docs/a.txt", { tenant: "acme" }))).toBe("permission_denied");
  expect(await code(remote.read(ALICE, "/docs/none"))).toBe("not_found");
  expect(await code(remote.mkdir(ALICE, "/docs"))).toBe("already_exists");
  await remote.mkdir(CAROL, "/g");
  await remote.write(CAROL, "/g/x", "globex");
  expect(await code(remote.read(DAVE, "/g/x"))).toBe("permission_denied");

  const bob = new FsClient(remote, BOB);
  const carol = new FsClient(remote, CAROL);
  cleanups.push(
    () => bob.close(),
    () => carol.close(),
  );
  await remote.share(ALICE, "/docs", { user: BOB.user, relation: "viewer" });
  await remote.share(ALICE, "/docs", { user: CAROL.user, relation: "viewer", tenant: "globex" });
  await bob.synced();
  expect(await bob.readText("/docs/a.txt")).toBe("alpha");
  expect(await bob.readText("/docs/a.txt")).toBe("alpha");
  expect(bob.stats().read.hits).toBe(1);
  expect(await carol.readText("/docs/a.txt", { tenant: "acme" })).toBe("alpha");
  // A write through HTTP by alice reaches bob's cache by push.
  await remote.write(ALICE, "/docs/a.txt", "alpha 2");
  await bob.synced();
  expect(await bob.readText("/docs/a.txt")).toBe("alpha 2");
  // Revocations too, in and across tenants.
  await remote.unshare(ALICE, "/docs", { user: BOB.user, relation: "viewer" });
  await bob.synced();
  expect(await code(bob.read("/docs/a.txt"))).toBe("permission_denied");
  await remote.unshare(ALICE, "/docs", { user: CAROL.user, relation: "viewer", tenant: "globex" });
  await carol.synced();
  expect(await code(carol.read("/docs/a.txt", { tenant: "acme" }))).toBe("permission_denied");
  // rename, glob, versions, remove
  await remote.rename(ALICE, "/docs/a.txt", "/docs/c.txt");
  expect(await remote.glob(ALICE, "/docs/*.txt")).toEqual(["/docs/c.txt"]);
  expect((await remote.versions(ALICE, "/docs/c.txt")).map((v) => v.version)).toEqual([1, 2]);
  await remote.append(ALICE, "/docs/c.txt", "!");
  expect(text(await remote.read(ALICE, "/docs/c.txt"))).toBe("alpha 2!");
  expect(await code(remote.remove(ALICE, "/docs"))).toBe("not_empty");
  await remote.remove(ALICE, "/docs", { recursive: true });
  expect(await remote.list(ALICE, "/")).toEqual([]);

  for (const c of cleanups.splice(0).reverse()) await c();
  await new Promise((r) => setTimeout(r, 50));
  expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
});
