/**
 * Opening NexusFS: the permission engine (a default one over tuples in `dir/tuples` unless one is given), the
 * change stream, the tiered store of contents, and the journal. Opening loads the last checkpoint, replays the
 * journal after it, and finishes the one operation a crash may have cut (rolled back before its commit, forward
 * after it; see filesystem.ts), then releases contents no record holds.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { MetadataTable } from "../blobs/metadata/metadata.js";
import { FsBlobStore } from "../blobs/tiered/blob-store.js";
import { openTieredStore, type TieredStore } from "../blobs/tiered/store.js";
import { openStore } from "../blobs/volume/store.js";
import { createEngine } from "../engine/engine.js";
import { nexusFilesystemModel } from "../model/preset.js";
import type { TupleStore } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";
import { FsEventLog } from "./events.js";
import { FileSystem } from "./filesystem.js";
import { Journal } from "./journal.js";
import {
  applyCommit,
  type BeginRecord,
  type Checkpoint,
  type CommitRecord,
  type EndRecord,
  eventOf,
  type JournalRecord,
} from "./journal-records.js";
import { TenantTree } from "./tree.js";
import { identityOf, revisionOf, tupleId } from "./tuple-keys.js";
import { openTupleStoreIn } from "./tuple-store.js";
import { type FileSystemOptions, MAX_FILE_BYTES } from "./types.js";

/**
 * Opens (creating) the filesystem in `dir`: loads the last checkpoint, replays the journal after it, and
 * finishes the operation a crash may have cut (see the module comment).
 */
export async function openFileSystem(options: FileSystemOptions): Promise<FileSystem> {
  if (
    options === null ||
    typeof options !== "object" ||
    typeof options.dir !== "string" ||
    options.dir === ""
  ) {
    throw new NexusError("invalid_argument", "openFileSystem needs { dir }");
  }
  for (const [name, value, min] of [
    ["maxVersions", options.maxVersions, 1],
    ["maxFileBytes", options.maxFileBytes, 0],
    ["checkpointEvery", options.checkpointEvery, 1],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < min)) {
      throw new NexusError("invalid_argument", `${name} must be an integer ≥ ${min}, got ${describe(value)}`);
    }
  }
  if ((options.maxFileBytes ?? 0) > MAX_FILE_BYTES) {
    throw new NexusError("invalid_argument", `maxFileBytes is at most ${MAX_FILE_BYTES}`, {
      limit: MAX_FILE_BYTES,
    });
  }
  const dir = options.dir;
  await mkdir(dir, { recursive: true });
  let engine = options.engine;
  let tuplesDurable = false;
  let tupleStore: TupleStore | undefined;
  const ownsEngine = engine === undefined;
  if (engine === undefined) {
    const tuples = await openTupleStoreIn(join(dir, "tuples"), options.fsync ?? true);
    tuplesDurable = tuples.durable;
    tupleStore = tuples.store;
    try {
      engine = await createEngine({ model: nexusFilesystemModel, store: tuples.store });
    } catch (e) {
      await tuples.store.close();
      throw e;
    }
  }
  let store: TieredStore | undefined;
  let journal: Journal | undefined;
  let events: FsEventLog | undefined;
  try {
    events = await FsEventLog.open(join(dir, "events"), {
      fsync: options.fsync ?? true,
      ...(options.eventRetention !== undefined ? { retention: options.eventRetention } : {}),
    });
    store = await openContents(dir, options);
    const opened = await Journal.open<Checkpoint>(join(dir, "meta"));
    journal = opened.journal;
    const trees = new Map<string, TenantTree>();
    let seq = 0;
    if (opened.snapshot !== undefined) {
      seq = opened.snapshot.seq;
      for (const t of opened.snapshot.tenants) {
        const table = await MetadataTable.load(join(dir, "meta", t.table));
        trees.set(t.name, TenantTree.restore(t.name, t.tree, table));
      }
    }
    const held = new Map<string, number>();
    for (const tree of trees.values()) for (const h of tree.heldHashes()) held.set(h, (held.get(h) ?? 0) + 1);
    const maxVersions = options.maxVersions ?? 10;
    // Replay: apply every commit; remember the last operation that did not end.
    let open: { begin?: BeginRecord; commit?: CommitRecord } | undefined;
    let openSeq = -1;
    for (const r of opened.records as JournalRecord[]) {
      seq = Math.max(seq, r.seq);
      if (r.t === "begin") {
        open = { begin: r };
        openSeq = r.seq;
      } else if (r.t === "commit") {
        const tree = trees.get(r.tenant) ?? new TenantTree(r.tenant);
        trees.set(r.tenant, tree);
        applyCommit(tree, r, held, maxVersions);
        open = openSeq === r.seq ? { ...open, commit: r } : { commit: r };
        openSeq = r.seq;
      } else if (r.t === "end" && r.seq === openSeq) {
        open = undefined;
      }
    }
    // The change stream: the tuple revisions that were this filesystem's own writes (the journal and the
    // stream's records name them), and every commit whose event a crash kept out of the stream.
    const ownRevisions = new Set<number>();
    for (const r of events.loaded) if (r.rev !== undefined) ownRevisions.add(r.rev);
    for (const r of opened.records as JournalRecord[]) {
      if ((r.t === "commit" || r.t === "end") && r.rev !== undefined) ownRevisions.add(r.rev);
    }
    const lostCursor = events.cursorStore !== undefined && events.cursorStore !== engine.store.id;
    if (events.cursorStore !== engine.store.id) {
      // A new stream starts at the tuple store's present; another tuple store's revisions mean nothing here.
      events.resetCursor(await engine.store.currentRevision(), engine.store.id);
    }
    const recovered = { tuples: new Set<string>(), below: await engine.store.currentRevision() };
    for (const r of opened.records as JournalRecord[]) {
      if (r.t === "commit" && !events.reported(r.seq)) {
        const source = { seq: r.seq, ...(r.rev !== undefined ? { rev: r.rev } : {}) };
        if (r.p !== undefined) events.restore(r.p, eventOf(r), source);
        else events.push(eventOf(r), source);
      }
    }
    events.sealHoles();
    let rolledBack = false;
    let rolledForward = false;
    let releasedKeys = 0;
    if (open !== undefined) {
      const keys = new Set(open.begin?.keys ?? []);
      // Whatever tuple changes the cut operation made are its own, not permission events.
      for (const t of [
        ...(open.begin?.wrote ?? []),
        ...(open.begin?.deleted ?? []),
        ...(open.commit?.deleteAfter ?? []),
      ]) {
        recovered.tuples.add(tupleId(t));
      }
      if (open.commit === undefined && open.begin !== undefined) {
        // Cut before its commit: undo the tuple changes it may have made.
        rolledBack = true;
        const { wrote, deleted } = open.begin;
        if (wrote.length > 0 || deleted.length > 0) {
          const { token } = await engine.write({
            ...(deleted.length ? { writes: deleted } : {}),
            ...(wrote.length ? { deletes: wrote.map(identityOf) } : {}),
            onDuplicate: "ignore",
            onMissing: "ignore",
          });
          ownRevisions.add(revisionOf(token));
        }
      } else if (open.commit !== undefined) {
        // Cut after its commit: finish what comes after it.
        rolledForward = true;
        if (open.commit.deleteAfter.length > 0) {
          const { token } = await engine.write({
            deletes: open.commit.deleteAfter.map(identityOf),
            onMissing: "ignore",
          });
          ownRevisions.add(revisionOf(token));
        }
        if (open.commit.op === "put") keys.add(open.commit.hash);
      }
      for (const key of keys) {
        // At most one store reference per content is the filesystem's; none is owed when no record holds it.
        for (let i = 0; i < 2 && !held.has(key) && (await store.has(key)); i++) {
          await store.delete(key);
          releasedKeys++;
        }
      }
      await journal.append({ t: "end", seq: openSeq } satisfies EndRecord, true);
    }
    // Removes and version drops release contents after the commit; a crash between leaves them stored. Their
    // hashes are in the replayed commits: drop any no record holds.
    for (const r of opened.records as JournalRecord[]) {
      if (r.t !== "commit") continue;
      if (r.op === "put" && !held.has(r.hash) && (await store.has(r.hash))) {
        await store.delete(r.hash);
        releasedKeys++;
      }
    }
    await rm(join(dir, "staging"), { recursive: true, force: true });
    const interval = options.tiers?.intervalMs ?? 60_000;
    if (interval !== false) store.startTiering({ intervalMs: interval, runAtStart: false });
    return new FileSystem({
      engine,
      ownsEngine,
      tupleStore,
      tuplesDurable,
      dir,
      store,
      journal,
      trees,
      held,
      seq,
      options,
      recovery: { replayed: opened.records.length, rolledBack, rolledForward, releasedKeys },
      events,
      ownRevisions,
      recovered,
      lostCursor,
    });
  } catch (e) {
    await events?.close();
    await journal?.close();
    await store?.close();
    if (ownsEngine) await engine.close();
    await tupleStore?.close();
    throw e;
  }
}

/** The tiered store of a filesystem's contents (see FileSystemOptions.tiers). */
async function openContents(dir: string, options: FileSystemOptions): Promise<TieredStore> {
  const tiers = options.tiers ?? {};
  const fsync = options.fsync ?? true;
  const interval = tiers.intervalMs;
  if (interval !== undefined && interval !== false && !(Number.isFinite(interval) && interval >= 0)) {
    throw new NexusError(
      "invalid_argument",
      `tiers.intervalMs must be a number ≥ 0 or false, got ${describe(interval)}`,
    );
  }
  const hot = await openStore({ dir: join(dir, "blobs"), fsync: fsync ? "batch" : "never" });
  const cold = tiers.cold ?? new FsBlobStore({ dir: join(dir, "cold"), fsync });
  try {
    return await openTieredStore({
      dir: join(dir, "tiers"),
      hot,
      cold,
      warm: {
        dirs: [
          ...(tiers.warmDirs ??
            Array.from({ length: 14 }, (_, i) => join(dir, "warm", String(i).padStart(2, "0")))),
        ],
      },
      ...(tiers.policy !== undefined ? { policy: tiers.policy } : {}),
      fsync,
    });
  } catch (e) {
    await hot.close();
    await cold.close?.();
    throw e;
  }
}
