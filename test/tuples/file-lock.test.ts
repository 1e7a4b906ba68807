// The file store's single-writer lock (src/io/lock.ts): one writer per directory however the directory is
// spelled and however many opens race for it, in this process or in several; a lock left by a dead process is
// taken over by exactly one contender; a lock being written, or held by this process, is never taken as stale.
import { readdirSync, readFileSync, realpathSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, relative } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type FileTupleStore, openFileTupleStore } from "../../src/tuples/file/index.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";
import { isNexusError, type NexusError } from "../../src/util/errors.js";
import { Child } from "../blobs/child.js";
import { tempDir } from "../blobs/helpers.js";

const dirs: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of dirs.splice(0)) cleanup();
});

function freshDir(): string {
  const { dir, cleanup } = tempDir("nexus-lock-");
  dirs.push(cleanup);
  return dir;
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function t(object: string, user: string): RelationTuple {
  const n = normalizeTuple({ object, relation: "viewer", user }, "default");
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

async function tupleCount(dir: string): Promise<number> {
  const store = await openFileTupleStore({ dir });
  try {
    const snapshot = await store.snapshot(await store.currentRevision());
    const n = (await snapshot.read({ tenant: "default" })).length;
    snapshot.release();
    return n;
  } finally {
    await store.close();
  }
}

/** Opens every promise; returns the stores that opened and the codes of those refused. */
async function settle(
  opens: Promise<FileTupleStore>[],
): Promise<{ stores: FileTupleStore[]; codes: string[] }> {
  const stores: FileTupleStore[] = [];
  const codes: string[] = [];
  for (const r of await Promise.allSettled(opens)) {
    if (r.status === "fulfilled") {
      stores.push(r.value);
      cleanups.push(() => r.value.close());
    } else codes.push(isNexusError(r.reason) ? r.reason.code : String(r.reason));
  }
  return { stores, codes };
}

describe("one directory, one writer in this process", () => {
  it.each(["new", "existing"])(
    "lets one of concurrent opens of a %s directory in, refuses the rest",
    async (kind) => {
      const dir = freshDir();
      if (kind === "existing") await (await openFileTupleStore({ dir })).close();
      const { stores, codes } = await settle([1, 2, 3].map(() => openFileTupleStore({ dir })));
      expect(stores).toHaveLength(1);
      expect(codes).toEqual(["locked", "locked"]);
      await stores[0]!.write({ writes: [t("doc:a", "user:alice")], deletes: [] });
      await stores[0]!.close();
      expect(await tupleCount(dir)).toBe(1);
    },
  );

  it("knows the directory through a symlink and a relative path", async () => {
    const base = freshDir();
    const dir = join(base, "real");
    const link = join(base, "link");
    await (await openFileTupleStore({ dir })).close();
    symlinkSync(dir, link);
    const store = await openFileTupleStore({ dir });
    cleanups.push(() => store.close());
    for (const other of [link, join(link, "."), relative(process.cwd(), dir)]) {
      const e = await openFileTupleStore({ dir: other }).catch((x: NexusError) => x);
      expect(e, other).toMatchObject({ code: "locked" });
      expect((e as NexusError).message).toContain("already open for writing in this process");
    }
  });

  it("refuses a LOCK holding this process (another thread's open), and takes over one of an earlier process given the same pid", async () => {
    const dir = freshDir();
    const store = await openFileTupleStore({ dir });
    const ours = readFileSync(join(dir, "LOCK"), "utf8");
    await store.close();
    writeFileSync(join(dir, "LOCK"), ours);
    const e = await openFileTupleStore({ dir }).catch((x: NexusError) => x);
    expect(e).toMatchObject({ code: "locked" });
    expect((e as NexusError).message).toContain(`pid ${process.pid}`);
    // The same pid started at another time: a process before this one (pid 1 in a restarted container).
    const [pid, start, host] = ours.trim().split(" ");
    writeFileSync(join(dir, "LOCK"), `${pid} ${Number(start) - 1} ${host}\n`);
    await (await openFileTupleStore({ dir })).close();
  });
});

describe("a LOCK left behind", () => {
  it("that is empty is being written: refused while young, taken over once old", async () => {
    const dir = freshDir();
    await (await openFileTupleStore({ dir })).close();
    const lock = join(dir, "LOCK");
    writeFileSync(lock, "");
    expect(await openFileTupleStore({ dir }).catch((x: NexusError) => x.code)).toBe("locked");
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    await (await openFileTupleStore({ dir })).close();
  });

  it("by another machine is never taken over, and the error says what to do", async () => {
    const dir = freshDir();
    writeFileSync(join(dir, "LOCK"), `4242 123 not-${hostname()}\n`);
    const e = await openFileTupleStore({ dir }).catch((x: NexusError) => x);
    expect(e).toMatchObject({ code: "locked", details: { host: `not-${hostname()}`, pid: 4242 } });
    expect((e as NexusError).message).toContain(`remove ${join(realpathSync(dir), "LOCK")}`);
  });

  // Two rounds of six processes: the old rename-aside takeover let two of them in on some runs.
  it("by a killed process is taken over by exactly one of several processes trying at once", async () => {
    const dir = freshDir();
    for (let round = 0; round < 3; round++) {
      // The previous holder (a fresh one in round 0) is killed: its LOCK stays, naming a dead pid.
      const start = String(Date.now() + (round === 0 ? 0 : 2000));
      if (round === 0) {
        const holder = new Child("../../tuples/fixtures/file-opener", [dir, start]);
        cleanups.push(() => holder.kill());
        await holder.waitFor((l) => l === "open");
        await holder.kill();
        continue;
      }
      const contenders = [1, 2, 3, 4, 5, 6].map(
        () => new Child("../../tuples/fixtures/file-opener", [dir, start]),
      );
      for (const c of contenders) cleanups.push(() => c.kill());
      await Promise.all(contenders.map((c) => c.waitFor((l) => l === "open" || l.startsWith("refused"))));
      const outcomes = contenders.map((c) => c.lines.at(-1)).sort();
      expect(outcomes).toEqual([
        "open",
        "refused locked",
        "refused locked",
        "refused locked",
        "refused locked",
        "refused locked",
      ]);
      for (const c of contenders) await c.kill();
    }
    expect(readdirSync(dir).filter((name) => name.startsWith("LOCK."))).toEqual([]);
    await (await openFileTupleStore({ dir })).close();
  });
});
