/**
 * Crash safety of a NexusFS on real files and a real process killed with SIGKILL: at random points, and at each
 * step of each kind of mutation. After reopening: every acknowledged operation is there, every visible file has
 * its bytes, no stored content lacks a record that holds it, no tuple names a path that is gone, and permissions
 * (in the durable tuple store) survived. The writer demotes some contents to the warm and cold tiers as it goes, so
 * a kill can also cut a tier move. The change stream is checked too: one event per acknowledged operation, no
 * gap, no duplicate.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { FsEvent } from "../../src/fs/events.js";
import type { FileSystem } from "../../src/fs/filesystem.js";
import { openFileSystem } from "../../src/fs/open.js";
import { Child } from "../blobs/child.js";
import { tempDir } from "./helpers.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ALICE = { user: "user:alice", tenant: "acme" };

/** Replays the child's acknowledged lines into the expected state: path -> { seed, size }. */
function expected(lines: string[]) {
  const files = new Map<string, { seed: number; size: number; hash: string }>();
  const shared = new Set<string>();
  for (const line of lines) {
    const [what, a, b, c, d] = line.split(" ");
    if (what === "put") files.set(a!, { hash: b!, seed: Number(c), size: Number(d) });
    if (what === "rm") {
      files.delete(a!);
      shared.delete(a!);
    }
    if (what === "mv") {
      files.set(b!, files.get(a!)!);
      files.delete(a!);
      if (shared.delete(a!)) shared.add(b!);
    }
    if (what === "share") shared.add(a!);
  }
  return { files, shared };
}

async function verify(fs: FileSystem, lines: string[]) {
  const { files, shared } = expected(lines);
  const alice = fs.as(ALICE);
  const listed = (await alice.list("/w")).map((e) => e.path);
  // Every acknowledged file is there with its bytes, except at most one the cut operation (if it committed)
  // replaced, moved or removed after its last acknowledged line.
  let changedByCut = 0;
  for (const [path, { seed, size, hash }] of files) {
    const stat = await alice.stat(path).catch(() => undefined);
    if (stat?.hash !== hash) {
      changedByCut++;
      continue;
    }
    expect(await alice.read(path)).toEqual(new Uint8Array(size).fill(seed % 251));
  }
  expect(changedByCut).toBeLessThanOrEqual(1);
  const unexpected = listed.filter((p) => !files.has(p));
  expect(unexpected.length, `unexpected ${unexpected}`).toBeLessThanOrEqual(1);
  const missing = [...files.keys()].filter((p) => !listed.includes(p));
  expect(missing.length, `missing ${missing}`).toBeLessThanOrEqual(1);
  // Every visible file has its bytes.
  for (const path of listed) await alice.read(path);
  // Every stored content is held by a record, and every held content is stored.
  // Contents live in the tiered store (the writer demotes some to warm and cold as it goes).
  const stats = fs.stats();
  const { hot, warm, cold } = stats.store.objects;
  expect(hot + warm + cold).toBe(stats.contents);
  expect(stats.store.pendingMoves).toBe(0);
  const scrub = await fs.contents.scrub();
  expect(scrub.lost).toEqual([]);
  expect(scrub.checked).toBe(stats.contents);
  // No tuple names a path that is gone (the root's owner aside).
  const tuples = await fs.engine.read({ tenant: "acme", object: "file:" });
  for (const t of tuples) {
    const path = t.object.slice(5);
    expect(path === "/" || path === "/w" || listed.includes(path), `tuple on ${path}`).toBe(true);
  }
  // Permissions survived the crash: bob reads what was shared with him (acknowledged).
  const bob = fs.as({ user: "user:bob", tenant: "acme" });
  for (const path of shared) if (files.has(path) && listed.includes(path)) await bob.read(path);
  expect(fs.tuplesDurable).toBe(true);
  // The change stream survived the kill: from its start, the root's owner grant, "/w", then one event per
  // acknowledged operation in order, and at most one more (the cut operation, when it committed).
  const streamed: FsEvent[] = [];
  const end = await fs.currentToken();
  for await (const e of fs.watch({ after: `${end.split(".")[0]}.0` })) {
    streamed.push(e);
    if (e.token === end) break;
  }
  const want: string[][] = [
    ["permission", "/"],
    ["created", "/w"],
  ];
  const live = new Set<string>();
  for (const line of lines) {
    const [what, a, b] = line.split(" ");
    if (what === "put") want.push([live.has(a!) ? "written" : "created", a!]);
    if (what === "put") live.add(a!);
    if (what === "rm") want.push(["removed", a!]);
    if (what === "rm") live.delete(a!);
    if (what === "mv") want.push(["renamed", b!]);
    if (what === "mv") live.delete(a!);
    if (what === "mv") live.add(b!);
    if (what === "share") want.push(["permission", a!]);
  }
  const got = streamed.map((e) => [e.kind, e.path ?? ""]);
  expect(got.slice(0, want.length)).toEqual(want);
  expect(got.length - want.length).toBeLessThanOrEqual(1);
  expect(got.length - want.length).toBeGreaterThanOrEqual(0);
}

async function crashOnce(step: string, at: number, ackTarget: number) {
  const { dir, cleanup } = tempDir("nexus-fs-crash-");
  cleanups.push(cleanup);
  const child = new Child("../../fs/fixtures/fs-writer", [dir, step, String(at)]);
  cleanups.push(() => child.kill());
  await child.waitFor((l) => l === "ready", 60_000);
  if (step === "") {
    await child.waitFor(() => child.lines.length >= ackTarget, 60_000);
    await child.kill();
  } else {
    await child.exited;
  }
  const fs = await openFileSystem({ dir });
  cleanups.push(() => fs.close());
  await verify(fs, child.lines.slice(1));
  // It goes on working.
  await fs.as(ALICE).write("/w/after", "after");
  expect(await fs.as(ALICE).readText("/w/after")).toBe("after");
  return fs.recovery;
}

describe("a NexusFS writer killed with SIGKILL", () => {
  it("at random points keeps every acknowledged operation, and nothing half-done", async () => {
    for (let round = 0; round < 2; round++) await crashOnce("", 0, 20 + Math.floor(Math.random() * 40));
  }, 180_000);

  // Operation numbers of the fixture's cycle: 0 put (new), 3 share, 4 put (new version), 5 rm, 6 mv.
  it.each([
    ["begun", 7],
    ["stored", 7],
    ["tuples", 7],
    ["committed", 7],
    ["after", 7],
    ["committed", 12],
    ["after", 12],
    ["begun", 13],
    ["tuples", 13],
    ["committed", 13],
    ["after", 13],
  ])(
    "at step %s of operation %i",
    async (step, at) => {
      const recovery = await crashOnce(step, at, 0);
      if (step === "begun" || step === "stored" || step === "tuples") expect(recovery.rolledBack).toBe(true);
      else expect(recovery.rolledForward).toBe(true);
    },
    60_000,
  );
});
