// The file tuple store: the TupleStore contract, and what only a durable store owes: everything back after a
// reopen (tuples, revisions, changelog, models, the store id), checkpoints, a torn tail cut at every byte,
// corruption refused rather than dropped, one writer per directory, and acknowledged writes surviving kill -9 of
// a real writer process.
import { readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { type FileTupleStore, type FsyncPolicy, openFileTupleStore } from "../../src/tuples/file/index.js";
import { RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE } from "../../src/tuples/file/layout.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import { identityKey, type RelationTuple, type TupleKey } from "../../src/tuples/tuple.js";
import { isNexusError, type NexusError } from "../../src/util/errors.js";
import { Child } from "../blobs/child.js";
import { tempDir } from "../blobs/helpers.js";
import { describeTupleStoreContract } from "./contract.js";
import { batchFor, stateAfter } from "./fixtures/batches.js";

const dirs: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of dirs.splice(0)) cleanup();
});

function freshDir(): string {
  const { dir, cleanup } = tempDir("nexus-tuples-");
  dirs.push(cleanup);
  return dir;
}

describeTupleStoreContract("file", async (options) => openFileTupleStore({ dir: freshDir(), ...options }));

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function t(object: string, user: string, extra: Partial<TupleKey> = {}): RelationTuple {
  const n = normalizeTuple({ object, relation: "viewer", user, ...extra }, "default");
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

async function everything(store: FileTupleStore): Promise<RelationTuple[]> {
  const snapshot = await store.snapshot(await store.currentRevision());
  try {
    return (await snapshot.read({ tenant: "default" })).sort((a, b) =>
      identityKey(a) < identityKey(b) ? -1 : 1,
    );
  } finally {
    snapshot.release();
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return isNexusError(error) ? error.code : String(error);
  }
  return undefined;
}

function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".log"))
    .sort();
}

describe("FileTupleStore across reopens", () => {
  it("comes back with every tuple, revision, change, model version and its id", async () => {
    const dir = freshDir();
    const store = await openFileTupleStore({ dir });
    const context = { region: "eu", at: new Date(1_700_000_000_000), big: 2n ** 70n, missing: undefined };
    await store.write({
      writes: [
        t("doc:1", "user:a", { condition: { name: "c", context } }),
        t("doc:2", "group:eng#member", { expiresAt: new Date(Date.now() + 3_600_000) }),
        t("doc:3", "user:*"),
        t("file:/a b/ü#x", "user:b", { tenant: "other", subjectTenant: "default" }),
      ],
      deletes: [],
    });
    await store.write({ writes: [t("doc:4", "user:a")], deletes: [t("doc:3", "user:*")] });
    const model = await store.models.add({
      tenant: "default",
      source: "model\n  schema 1.1",
      format: "openfga",
    });
    const before = {
      id: store.id,
      revision: await store.currentRevision(),
      tuples: await everything(store),
      changes: await store.changesAfter(0, 100),
    };
    await store.close();

    const again = await openFileTupleStore({ dir });
    cleanups.push(() => again.close());
    expect(again.id).toBe(before.id);
    expect(await again.currentRevision()).toBe(before.revision);
    expect(await everything(again)).toEqual(before.tuples);
    expect(before.tuples[0]!.condition!.context).toEqual(context);
    expect(await again.changesAfter(0, 100)).toEqual(before.changes);
    expect(await again.models.get("default", model.id)).toEqual(model);
    expect(again.stats().recovered).toEqual({ records: 3, tornBytes: 0 });
    // Without a checkpoint the whole history was replayed: old revisions read as they were.
    const first = await again.snapshot(1);
    expect((await first.read({ tenant: "default" })).map((x) => x.object).sort()).toEqual([
      "doc:1",
      "doc:2",
      "doc:3",
    ]);
    first.release();
    // Writes continue where the log ended, and a new model id sorts after the old ones.
    expect((await again.write({ writes: [t("doc:5", "user:a")], deletes: [] })).revision).toBe(
      before.revision + 1,
    );
    expect((await again.models.add({ tenant: "default", source: "v2" })).id > model.id).toBe(true);
  });

  it("serves an engine whose tokens and watch cursors stay valid across a restart", async () => {
    const dir = freshDir();
    const model = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]`;
    const store = await openFileTupleStore({ dir });
    const engine = await createEngine({ model, store });
    const first = await engine.write({
      writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }],
    });
    await engine.write({ writes: [{ user: "user:bob", relation: "viewer", object: "doc:1" }] });
    await engine.close();
    await store.close();

    const again = await openFileTupleStore({ dir });
    cleanups.push(() => again.close());
    const restarted = await createEngine({ model, store: again });
    cleanups.push(() => restarted.close());
    const fresh = { consistency: { atLeastAsFresh: first.token } } as const;
    expect(await restarted.check({ user: "user:anne", relation: "viewer", object: "doc:1", ...fresh })).toBe(
      true,
    );
    expect(await restarted.check({ user: "user:carl", relation: "viewer", object: "doc:1", ...fresh })).toBe(
      false,
    );
    // A watch resumed from a token issued before the restart gets the change after it.
    const abort = new AbortController();
    const seen: string[] = [];
    for await (const change of restarted.watch({ after: first.token, signal: abort.signal })) {
      seen.push(`${change.op} ${change.tuple.user}`);
      abort.abort();
    }
    expect(seen).toEqual(["write user:bob"]);
  });

  it("keeps model ids increasing across a reopen even when the clock went back", async () => {
    const dir = freshDir();
    const first = await openFileTupleStore({ dir, clock: () => 1_800_000_000_000 });
    const a = await first.models.add({ tenant: "default", source: "v1" });
    await first.close();
    const second = await openFileTupleStore({ dir, clock: () => 1_700_000_000_000 });
    cleanups.push(() => second.close());
    const b = await second.models.add({ tenant: "default", source: "v2" });
    expect(b.id > a.id).toBe(true);
    expect(b.createdAtMs).toBe(1_700_000_000_000);
    expect((await second.models.list("default")).map((m) => m.source)).toEqual(["v2", "v1"]);
  });

  it("writes checkpoints that replace the log, keeping state, changelog and models exact", async () => {
    const dir = freshDir();
    const store = await openFileTupleStore({ dir, checkpointBytes: 4096, fsync: "batch" });
    for (let i = 0; i < 120; i++) {
      await store.write(batchFor(i));
      if (i % 25 === 0) await store.models.add({ tenant: `t${i % 2}`, source: `model ${i}` });
    }
    await store.checkpoint();
    const stats = store.stats();
    expect(stats.checkpointRevision).toBe(120);
    expect(stats.checkpointError).toBeUndefined();
    expect(segments(dir).length).toBe(1);
    for (let i = 120; i < 130; i++) await store.write(batchFor(i));
    const before = {
      tuples: await everything(store),
      changes: await store.changesAfter(60, 100_000),
      models: [await store.models.list("t0"), await store.models.list("t1")],
    };
    await store.close();

    const again = await openFileTupleStore({ dir });
    cleanups.push(() => again.close());
    // Only the log after the newest checkpoint was replayed (the last ten batches wrote more than 4 KiB, so
    // one more checkpoint may have been cut among them).
    expect(again.stats().recovered.records).toBeLessThanOrEqual(10);
    expect(await again.currentRevision()).toBe(130);
    // Revisions before the checkpoint are not kept: refused as beyond retention, and revisionAt never names one.
    expect(await codeOf(again.snapshot(100))).toBe("invalid_token");
    const oldest = await again.revisionAt(0);
    (await again.snapshot(oldest)).release();
    expect(await everything(again)).toEqual(before.tuples);
    expect([...stateAfter(130).keys()].sort()).toEqual(before.tuples.map(identityKey));
    expect(await again.changesAfter(60, 100_000)).toEqual(before.changes);
    expect([await again.models.list("t0"), await again.models.list("t1")]).toEqual(before.models);
  });

  it("keeps retention across checkpoints: changes beyond it stay refused after a reopen", async () => {
    const dir = freshDir();
    const store = await openFileTupleStore({ dir, changelogMaxEntries: 10 });
    for (let i = 0; i < 30; i++) await store.write({ writes: [t(`doc:${i}`, "user:a")], deletes: [] });
    await store.checkpoint();
    await store.close();
    const again = await openFileTupleStore({ dir, changelogMaxEntries: 10 });
    cleanups.push(() => again.close());
    expect((await again.changesAfter(25, 100)).map((c) => c.revision)).toEqual([26, 27, 28, 29, 30]);
    expect(await codeOf(again.changesAfter(2, 100))).toBe("invalid_token");
  });

  it("refuses a second writer on the same directory (locked) and lets one in after close", async () => {
    const dir = freshDir();
    const store = await openFileTupleStore({ dir });
    expect(await codeOf(openFileTupleStore({ dir }))).toBe("locked");
    await store.close();
    await (await openFileTupleStore({ dir })).close();
  });

  it("refuses a write it cannot store (invalid_write) without writing or changing anything", async () => {
    const dir = freshDir();
    const store = await openFileTupleStore({ dir });
    cleanups.push(() => store.close());
    await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
    const logBytes = store.stats().logBytesSinceCheckpoint;
    const unstorable = t("doc:2", "user:a", { condition: { name: "c", context: { f: () => 1 } } });
    const huge = t("doc:3", "user:a", {
      condition: { name: "c", context: { text: "x".repeat(65 * 2 ** 20) } },
    });
    for (const batch of [
      { writes: [t("doc:4", "user:a"), unstorable], deletes: [] },
      { writes: [huge], deletes: [t("doc:1", "user:a")] },
    ]) {
      expect(await codeOf(store.write(batch))).toBe("invalid_write");
    }
    expect(store.stats().logBytesSinceCheckpoint).toBe(logBytes);
    expect(await store.currentRevision()).toBe(1);
    expect((await everything(store)).map((x) => x.object)).toEqual(["doc:1"]);
    await store.write({ writes: [t("doc:5", "user:a")], deletes: [] });
    await store.close();
    const again = await openFileTupleStore({ dir });
    cleanups.push(() => again.close());
    expect((await everything(again)).map((x) => x.object)).toEqual(["doc:1", "doc:5"]);
  });

  it("rejects bad options with invalid_argument", async () => {
    expect(await codeOf(openFileTupleStore(undefined as never))).toBe("invalid_argument");
    for (const bad of [
      { dir: "" },
      { dir: freshDir(), fsync: "sometimes" },
      { dir: freshDir(), checkpointBytes: -1 },
    ]) {
      expect(await codeOf(openFileTupleStore(bad as never))).toBe("invalid_argument");
    }
  });
});

/** A closed store with three batches in its only segment; returns the segment path and its bytes. */
async function threeBatches() {
  const dir = freshDir();
  const store = await openFileTupleStore({ dir });
  const results = [];
  for (let i = 0; i < 3; i++) results.push(await store.write(batchFor(i)));
  await store.close();
  const path = join(dir, segments(dir)[0]!);
  const pristine = readFileSync(path);
  // Record offsets from the lengths in their headers.
  const offsets: number[] = [];
  for (
    let at = SEGMENT_HEADER_SIZE;
    at < pristine.length;
    at += RECORD_HEADER_SIZE + pristine.readUInt32LE(at + 8)
  ) {
    offsets.push(at);
  }
  return { dir, path, pristine, offsets };
}

describe("recovery", () => {
  it("cuts a torn tail at every byte of the last record and loses nothing before it", async () => {
    const s = await threeBatches();
    const last = s.offsets[2]!;
    const expected = [...stateAfter(2).keys()].sort();
    for (let cut = last; cut < s.pristine.length; cut++) {
      writeFileSync(s.path, s.pristine.subarray(0, cut));
      const store = await openFileTupleStore({ dir: s.dir });
      expect(await store.currentRevision(), `cut at ${cut}`).toBe(2);
      expect((await everything(store)).map(identityKey)).toEqual(expected);
      expect(store.stats().recovered.tornBytes).toBe(cut - last);
      await store.close();
      expect(statSync(s.path).size).toBe(last);
    }
    // Zero bytes after the last record (a file extended but not written) are a torn tail too.
    writeFileSync(s.path, Buffer.concat([s.pristine, Buffer.alloc(100)]));
    const store = await openFileTupleStore({ dir: s.dir });
    expect(await store.currentRevision()).toBe(3);
    // And the store goes on from there.
    await store.write(batchFor(3));
    await store.close();
    const again = await openFileTupleStore({ dir: s.dir });
    expect((await everything(again)).map(identityKey)).toEqual([...stateAfter(4).keys()].sort());
    await again.close();
  });

  it("refuses to open on a damaged record anywhere, naming the file and offset (corrupt), and releases the lock", async () => {
    const s = await threeBatches();
    const positions: number[] = [];
    for (let p = 0; p < s.pristine.length; p += p < SEGMENT_HEADER_SIZE + 2 * RECORD_HEADER_SIZE ? 1 : 7) {
      positions.push(p);
    }
    for (const p of positions) {
      const damaged = Buffer.from(s.pristine);
      damaged[p]! ^= 1 << (p % 8);
      writeFileSync(s.path, damaged);
      const error = await openFileTupleStore({ dir: s.dir }).catch((e: unknown) => e);
      expect(isNexusError(error, "corrupt"), `byte ${p}: ${String(error)}`).toBe(true);
      expect((error as NexusError).details).toMatchObject({ path: s.path });
    }
    writeFileSync(s.path, s.pristine);
    const store = await openFileTupleStore({ dir: s.dir });
    expect(await store.currentRevision()).toBe(3);
    await store.close();
  });

  it("refuses a damaged checkpoint and a missing segment (corrupt)", async () => {
    const dir = freshDir();
    const store = await openFileTupleStore({ dir });
    for (let i = 0; i < 20; i++) await store.write(batchFor(i));
    await store.checkpoint();
    for (let i = 20; i < 25; i++) await store.write(batchFor(i));
    await store.checkpoint();
    for (let i = 25; i < 30; i++) await store.write(batchFor(i));
    await store.close();
    const checkpoint = join(dir, "CHECKPOINT");
    const pristine = readFileSync(checkpoint);
    for (const p of [3, 40, Math.floor(pristine.length / 2), pristine.length - 1]) {
      const damaged = Buffer.from(pristine);
      damaged[p]! ^= 0x10;
      writeFileSync(checkpoint, damaged);
      expect(await codeOf(openFileTupleStore({ dir })), `byte ${p}`).toBe("corrupt");
    }
    writeFileSync(checkpoint, pristine.subarray(0, pristine.length - 5));
    expect(await codeOf(openFileTupleStore({ dir }))).toBe("corrupt");
    writeFileSync(checkpoint, pristine);
    // A checkpoint being written when the process died is ignored.
    writeFileSync(join(dir, "CHECKPOINT.tmp"), pristine.subarray(0, 100));
    const whole = await openFileTupleStore({ dir });
    expect((await everything(whole)).map(identityKey)).toEqual([...stateAfter(30).keys()].sort());
    await whole.close();
    // Without the checkpoint, the log alone no longer starts at segment 1.
    rmSync(checkpoint);
    expect(await codeOf(openFileTupleStore({ dir }))).toBe("corrupt");
  });

  it("recovers a segment whose creation was cut short", async () => {
    const dir = freshDir();
    const store = await openFileTupleStore({ dir });
    for (let i = 0; i < 5; i++) await store.write(batchFor(i));
    await store.checkpoint();
    await store.close();
    const [newest] = segments(dir).slice(-1);
    truncateSync(join(dir, newest!), 10);
    const again = await openFileTupleStore({ dir });
    expect(await again.currentRevision()).toBe(5);
    await again.write(batchFor(5));
    await again.close();
    const third = await openFileTupleStore({ dir });
    expect((await everything(third)).map(identityKey)).toEqual([...stateAfter(6).keys()].sort());
    await third.close();
  });
});

describe("a writer process killed at random points", () => {
  it.each<FsyncPolicy>(["always", "batch", "never"])(
    "keeps every acknowledged batch and model, and no batch half-applied (fsync %s)",
    async (fsync) => {
      const dir = freshDir();
      for (let round = 0; round < 2; round++) {
        const child = new Child("../../tuples/fixtures/file-writer", [dir, fsync, "8192"]);
        cleanups.push(() => child.kill());
        await child.waitFor((l) => l.startsWith("ready"));
        if (round === 0) {
          // A second writer is refused while the first is alive.
          expect(await codeOf(openFileTupleStore({ dir }))).toBe("locked");
        }
        const target = 20 + Math.floor(Math.random() * 150);
        await child.waitFor(() => child.lines.filter((l) => l.startsWith("ack ")).length >= target);
        await child.kill();

        const store = await openFileTupleStore({ dir });
        const revision = await store.currentRevision();
        for (const line of child.lines) {
          const [what, i, value] = line.split(" ");
          if (what === "ack") {
            expect(Number(value), line).toBe(Number(i) + 1);
            expect(Number(value), `acknowledged ${line}`).toBeLessThanOrEqual(revision);
          }
          if (what === "model") {
            expect((await store.models.get("default", value!))?.source, line).toBe(`model ${i}`);
          }
        }
        // Exactly the first `revision` batches, whole: nothing half-applied, nothing extra.
        const expected = [...stateAfter(revision).values()].sort((a, b) =>
          identityKey(a) < identityKey(b) ? -1 : 1,
        );
        expect(await everything(store)).toEqual(expected);
        await store.close();
      }
    },
  );

  it("lets the next writer in once the process holding the lock is gone", async () => {
    const dir = freshDir();
    const child = new Child("../../tuples/fixtures/file-writer", [dir, "never", "1000000"]);
    cleanups.push(() => child.kill());
    await child.waitFor((l) => l.startsWith("ready"));
    const error = await openFileTupleStore({ dir }).catch((e: NexusError) => e);
    expect(error).toMatchObject({ code: "locked" });
    expect((error as NexusError).message).toContain(String(child.process.pid));
    await child.kill();
    await (await openFileTupleStore({ dir })).close();
  });
});

describe("FileTupleStore: a write that never reaches the log", () => {
  it("is taken out of the memory store again, and the next write goes on", async () => {
    const store = await openFileTupleStore({ dir: freshDir(), fsync: "never" });
    cleanups.push(() => store.close());
    await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
    // Over the log's largest record: refused after it was validated (and staged) in memory.
    const huge = t("doc:2", "user:b", {
      condition: { name: "c", context: { blob: "x".repeat(65 * 1024 * 1024) } },
    });
    const refused = await store
      .write({ writes: [t("doc:3", "user:c"), huge], deletes: [t("doc:1", "user:a")] })
      .catch((e: NexusError) => e);
    expect(refused).toMatchObject({ code: "invalid_write" });
    expect((await everything(store)).map((x) => x.object)).toEqual(["doc:1"]);
    expect(await store.currentRevision()).toBe(1);
    // Nothing of it stayed staged: the same tuples are accepted now (a staged one would be "more than once" or
    // "prepared already").
    await store.write({
      writes: [t("doc:3", "user:c"), t("doc:2", "user:b")],
      deletes: [t("doc:1", "user:a")],
    });
    expect((await everything(store)).map((x) => x.object)).toEqual(["doc:2", "doc:3"]);
  });
});
