/**
 * The agent-filesystem part of `nexus-fast demo`: a NexusFS on the embedded default (contents, metadata and
 * permission tuples on disk in one data directory), two tenants with two users each. Agents write files, read
 * them, list directories filtered per user, share within and across tenants, revoke, read through a caching
 * client invalidated by push, and restart the filesystem to show that files and permissions persist. Each
 * answer is compared with what the permissions require.
 */
import { FsClient } from "../../fs/client.js";
import type { Caller, FileSystem } from "../../fs/filesystem.js";
import { openFileSystem } from "../../fs/open.js";
import type { Io } from "../io.js";
import { formatCount, formatMs, formatRate, renderTable } from "../table.js";

const ALICE = { user: "user:alice", tenant: "acme" };
const BOB = { user: "user:bob", tenant: "acme" };
const CAROL = { user: "user:carol", tenant: "globex" };
const DAVE = { user: "user:dave", tenant: "globex" };
const who = (c: Caller, tenant: string) =>
  `${c.user.slice(5)}${c.tenant !== tenant ? ` (${c.tenant}→${tenant})` : ` (${tenant})`}`;

export interface FilesystemDemoResult {
  readonly checks: number;
  readonly wrong: number;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

/** What an operation gave: "ok …" or the error code. */
async function outcome(p: Promise<unknown>): Promise<[string, number]> {
  const started = performance.now();
  try {
    const v = await p;
    const ms = performance.now() - started;
    if (v instanceof Uint8Array) return [`ok (${formatCount(v.length)} B)`, ms];
    if (Array.isArray(v))
      return [`ok (${formatCount(v.length)} ${v.length === 1 ? "entry" : "entries"})`, ms];
    return ["ok", ms];
  } catch (e) {
    return [(e as { code?: string }).code ?? String(e), performance.now() - started];
  }
}

export async function runFilesystemDemo(
  io: Io,
  options: { dir: string; files: number },
): Promise<FilesystemDemoResult> {
  const { dir, files } = options;
  let checks = 0;
  let wrong = 0;
  const rows: string[][] = [];
  const expect = async (
    step: string,
    caller: Caller,
    tenant: string,
    what: string,
    op: Promise<unknown>,
    expected: string,
  ) => {
    const [got, ms] = await outcome(op);
    checks++;
    const ok = got.split(" ")[0] === expected;
    if (!ok) wrong++;
    rows.push([
      step,
      who(caller, tenant),
      what,
      ok ? got : `${got} (WRONG, expected ${expected})`,
      formatMs(ms),
    ]);
  };

  io.out(`\nAgent filesystem (NexusFS on the embedded default, data in ${dir})`);
  let fs: FileSystem = await openFileSystem({ dir });
  try {
    await fs.initTenant({ tenant: "acme", owners: [ALICE.user] });
    await fs.initTenant({ tenant: "globex", owners: [CAROL.user] });
    const alice = fs.as(ALICE);
    await alice.mkdir("/projects/alpha", { recursive: true });
    await alice.mkdir("/projects/beta");
    await fs.as(CAROL).mkdir("/ops");
    await fs.as(CAROL).write("/ops/runbook.md", "# globex runbook\n");

    // --- writes
    const body = (i: number) => new TextEncoder().encode(`// file ${i}\n${"x".repeat(4000)}\n`);
    const half = Math.ceil(files / 2);
    const [, writeMs] = await timed(async () => {
      for (let i = 0; i < files; i++)
        await alice.write(`/projects/${i < half ? "alpha" : "beta"}/f${i}.ts`, body(i));
    });
    io.out(
      `  alice wrote ${formatCount(files)} files of 4 KiB into /projects/{alpha,beta} in ${formatMs(writeMs)} ` +
        `(${formatRate((files / writeMs) * 1000).replace("/s", " files/s")}, each checked, journaled and synced)`,
    );

    // --- shares
    await alice.share("/projects/alpha", { user: BOB.user, relation: "viewer" });
    await alice.share(`/projects/beta/f${files - 1}.ts`, {
      user: DAVE.user,
      relation: "viewer",
      tenant: "globex",
    });
    io.out(
      "  alice shared /projects/alpha with bob (viewer) and one beta file with dave of globex (cross-tenant)",
    );

    const a = `/projects/alpha/f0.ts`;
    const b = `/projects/beta/f${files - 1}.ts`;
    await expect("read", ALICE, "acme", a, alice.read(a), "ok");
    await expect("read", BOB, "acme", a, fs.as(BOB).read(a), "ok");
    await expect("read", BOB, "acme", b, fs.as(BOB).read(b), "permission_denied");
    await expect("write", BOB, "acme", a, fs.as(BOB).write(a, "bob was here"), "permission_denied");
    await expect("read", DAVE, "acme", b, fs.as(DAVE).read(b, { tenant: "acme" }), "ok");
    await expect("read", CAROL, "acme", a, fs.as(CAROL).read(a, { tenant: "acme" }), "permission_denied");
    await expect(
      "read",
      DAVE,
      "globex",
      "/ops/runbook.md",
      fs.as(DAVE).read("/ops/runbook.md"),
      "permission_denied",
    );
    await expect("ls", ALICE, "acme", "/projects/alpha", alice.list("/projects/alpha"), "ok");
    await expect("ls", BOB, "acme", "/projects/alpha", fs.as(BOB).list("/projects/alpha"), "ok");
    await expect("ls", BOB, "acme", "/projects/beta", fs.as(BOB).list("/projects/beta"), "permission_denied");
    const bobProjects = (await fs.as(BOB).list("/projects")).map((e) => e.name).join(",");
    checks++;
    if (bobProjects !== "alpha") wrong++;
    rows.push([
      "ls",
      who(BOB, "acme"),
      "/projects",
      `shows ${bobProjects}${bobProjects === "alpha" ? "" : " (WRONG)"}`,
      "",
    ]);
    await expect(
      "ls",
      DAVE,
      "acme",
      "/projects/beta",
      fs.as(DAVE).list("/projects/beta", { tenant: "acme" }),
      "ok",
    );
    await expect("glob", BOB, "acme", "/projects/**/f1*.ts", fs.as(BOB).glob("/projects/**/f1*.ts"), "ok");

    // --- the caching client: a repeat read is served from cache until an event says otherwise
    const client = new FsClient(fs, BOB);
    const [, cold] = await timed(() => client.read(a));
    const [, warm] = await timed(() => client.read(a));
    await alice.unshare("/projects/alpha", { user: BOB.user, relation: "viewer" });
    await client.synced();
    await expect("revoke", BOB, "acme", `${a} (cached client)`, client.read(a), "permission_denied");
    await expect("revoke", BOB, "acme", a, fs.as(BOB).read(a), "permission_denied");
    await expect(
      "revoke",
      BOB,
      "acme",
      "/projects/alpha",
      fs.as(BOB).list("/projects/alpha"),
      "permission_denied",
    );
    await client.close();
    io.out(
      `  bob's caching client: first read ${formatMs(cold)}, repeat ${formatMs(warm)} (from cache); ` +
        `after alice revoked, the pushed event stopped the cached read`,
    );

    // --- restart: everything acknowledged is on disk
    await fs.close();
    const [reopened, reopenMs] = await timed(() => openFileSystem({ dir }));
    fs = reopened;
    io.out(
      `  restarted the filesystem from ${dir} in ${formatMs(reopenMs)} (${formatCount(fs.stats().files)} files)`,
    );
    await expect("restart", ALICE, "acme", a, fs.as(ALICE).read(a), "ok");
    await expect("restart", BOB, "acme", a, fs.as(BOB).read(a), "permission_denied");
    await expect("restart", DAVE, "acme", b, fs.as(DAVE).read(b, { tenant: "acme" }), "ok");
    await expect("restart", CAROL, "globex", "/ops/runbook.md", fs.as(CAROL).read("/ops/runbook.md"), "ok");

    io.out(
      `\n${renderTable(
        [
          { title: "step" },
          { title: "as" },
          { title: "on" },
          { title: "answer" },
          { title: "time", align: "right" },
        ],
        rows,
      )
        .split("\n")
        .map((l) => `  ${l}`)
        .join("\n")}`,
    );
  } finally {
    await fs.close();
  }
  return { checks, wrong };
}
