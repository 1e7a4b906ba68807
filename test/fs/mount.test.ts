/**
 * A real FUSE mount per user (fuse-native, /dev/fuse, as root on these machines): ls, cat, cp, mv, rm and mkdir
 * run as real processes through the mount, permissions enforced per user in two tenants, and nothing is left
 * mounted afterwards. Commands run with execFile (async): FUSE callbacks need this process's event loop.
 */
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../../src/engine/engine.js";
import type { FileSystem } from "../../src/fs/filesystem.js";
import { fuseUnavailableReason, type Mount, mount } from "../../src/fs/mount.js";
import { ALICE, BOB, CAROL, DAVE, tempDir, twoTenants } from "./helpers.js";

const sh = promisify(execFile);
const unavailable = fuseUnavailableReason();
if (unavailable !== undefined) {
  console.warn(`\n*** FUSE MOUNT TESTS SKIPPED: ${unavailable} ***\n`);
}

/** Runs a command; resolves to its stdout, or "ERR <stderr>" when it fails. */
async function $(cmd: string, ...args: string[]): Promise<string> {
  try {
    return (await sh(cmd, args, { timeout: 20_000 })).stdout;
  } catch (e) {
    return `ERR ${(e as { stderr?: string }).stderr ?? e}`;
  }
}

async function mounted(): Promise<string> {
  return readFileSync("/proc/mounts", "utf8");
}

describe.skipIf(unavailable !== undefined)("a FUSE mount per user", () => {
  let dir: string;
  let cleanup: () => void;
  let fs: FileSystem;
  let engine: Engine;
  const mounts: Mount[] = [];
  const at: Record<string, string> = {};

  beforeAll(async () => {
    ({ dir, cleanup } = tempDir("nexus-fs-mount-"));
    ({ fs, engine } = await twoTenants(join(dir, "data")));
    await fs.as(CAROL).mkdir("/reports");
    await fs.as(CAROL).write("/reports/q1.txt", "globex q1\n");
    // alice, bob: acme's tree; carol: acme's tree as globex sees it (cross-tenant), dave: globex's own tree.
    for (const [name, caller, tenant] of [
      ["alice", ALICE, "acme"],
      ["bob", BOB, "acme"],
      ["carol", CAROL, "acme"],
      ["dave", DAVE, "globex"],
    ] as const) {
      at[name] = join(dir, `mnt-${name}`);
      mkdirSync(at[name]);
      mounts.push(await mount({ fs, caller, tenant, mountpoint: at[name] }));
    }
  }, 60_000);

  afterAll(async () => {
    for (const m of mounts) await m.unmount();
    const left = (await mounted()).split("\n").filter((l) => l.includes(dir));
    await fs?.close();
    await engine?.close();
    cleanup?.();
    expect(left).toEqual([]);
  }, 60_000);

  it("runs ls, cat, cp, mv, rm and mkdir with each user's permissions", async () => {
    const { alice, bob, carol, dave } = at as Record<string, string>;
    // alice builds a tree through her mount.
    expect(await $("mkdir", join(alice!, "docs"))).toBe("");
    const local = join(dir, "local.txt");
    writeFileSync(local, "hello from disk\n");
    expect(await $("cp", local, join(alice!, "docs", "a.txt"))).toBe("");
    expect(await $("cat", join(alice!, "docs", "a.txt"))).toBe("hello from disk\n");
    expect(await fs.as(ALICE).readText("/docs/a.txt")).toBe("hello from disk\n");
    expect((await $("ls", join(alice!, "docs"))).trim()).toBe("a.txt");
    expect(await $("mv", join(alice!, "docs", "a.txt"), join(alice!, "docs", "b.txt"))).toBe("");
    expect((await $("ls", join(alice!, "docs"))).trim()).toBe("b.txt");
    // A file made through the mount is one version holding its content: no empty version first.
    expect((await fs.as(ALICE).versions("/docs/b.txt")).map((v) => v.size)).toEqual([16]);
    expect(await $("sh", "-c", `echo made > ${join(alice!, "docs", "echo.txt")}`)).toBe("");
    expect(await $("cat", join(alice!, "docs", "echo.txt"))).toBe("made\n");
    expect((await fs.as(ALICE).versions("/docs/echo.txt")).map((v) => v.size)).toEqual([5]);
    // An empty new file is stored on its release, which the kernel sends just after the last close.
    expect(await $("touch", join(alice!, "docs", "empty"))).toBe("");
    for (let i = 0; i < 100 && !(await fs.as(ALICE).exists("/docs/empty")); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await fs.as(ALICE).versions("/docs/empty")).map((v) => v.size)).toEqual([0]);
    expect(await $("rm", join(alice!, "docs", "echo.txt"), join(alice!, "docs", "empty"))).toBe("");

    // bob sees nothing and may do nothing, until alice shares.
    expect(await $("ls", bob!)).toMatch(/^ERR .*Permission denied/);
    expect(await $("cat", join(bob!, "docs", "b.txt"))).toMatch(/^ERR .*Permission denied/);
    expect(await $("mkdir", join(bob!, "docs", "x"))).toMatch(/^ERR .*Permission denied/);
    await fs.as(ALICE).share("/docs/b.txt", { user: BOB.user, relation: "viewer" });
    await mounts[1]!.client.synced();
    expect((await $("ls", bob!)).trim()).toBe("docs");
    expect(await $("cat", join(bob!, "docs", "b.txt"))).toBe("hello from disk\n");
    expect(await $("cp", local, join(bob!, "docs", "c.txt"))).toMatch(/^ERR .*Permission denied/);
    expect(await $("sh", "-c", `echo x > ${join(bob!, "docs", "c.txt")}`)).toMatch(
      /^ERR .*Permission denied/,
    );
    expect(await fs.as(ALICE).exists("/docs/c.txt")).toBe(false);
    expect(await $("rm", join(bob!, "docs", "b.txt"))).toMatch(/^ERR .*Permission denied/);
    expect(await $("mv", join(bob!, "docs", "b.txt"), join(bob!, "docs", "z.txt"))).toMatch(
      /^ERR .*Permission denied/,
    );

    // carol (globex) sees acme's file only once it is shared across tenants, read-only.
    expect(await $("cat", join(carol!, "docs", "b.txt"))).toMatch(/^ERR .*Permission denied/);
    await fs.as(ALICE).share("/docs", { user: CAROL.user, relation: "viewer", tenant: "globex" });
    await mounts[2]!.client.synced();
    expect(await $("cat", join(carol!, "docs", "b.txt"))).toBe("hello from disk\n");
    expect(await $("cp", local, join(carol!, "docs", "c.txt"))).toMatch(/^ERR .*Permission denied/);
    // dave (globex) may not read carol's reports.
    expect(await $("ls", dave!)).toMatch(/^ERR .*Permission denied/);
    expect(await $("cat", join(dave!, "reports", "q1.txt"))).toMatch(/^ERR .*Permission denied/);

    // Revoking bob stops his reads through the mount.
    await fs.as(ALICE).unshare("/docs/b.txt", { user: BOB.user, relation: "viewer" });
    await mounts[1]!.client.synced();
    expect(await $("cat", join(bob!, "docs", "b.txt"))).toMatch(/^ERR .*(Permission denied|No such file)/);

    // alice removes; the entry is gone for everyone.
    expect(await $("rm", join(alice!, "docs", "b.txt"))).toBe("");
    await mounts[2]!.client.synced();
    expect((await $("ls", join(carol!, "docs"))).trim()).toBe("");
    expect(await $("rmdir", join(alice!, "docs"))).toBe("");
    expect((await $("ls", alice!)).trim()).toBe("");
  }, 120_000);
});
