/**
 * The records of the filesystem's journal (journal.ts writes them as JSON lines): `begin` names what a mutation
 * may change outside the journal (content it stores, tuples it writes or deletes), `commit` the change itself
 * (the file becomes visible), `end` that what came after the commit is done; a checkpoint holds every tenant's
 * tree. applyCommit replays a commit onto a tree (on open as when it happens); eventOf is the change-stream
 * event the commit makes.
 */
import type { TupleKey } from "../tuples/tuple.js";
import type { NewFsEvent } from "./events.js";
import type { TenantTree, TreeSnapshot } from "./tree.js";

export interface BeginRecord {
  t: "begin";
  seq: number;
  tenant: string;
  /** Content hashes this operation may store. */
  keys: string[];
  /** Tuples written before the commit (only those that did not exist). */
  wrote: TupleKey[];
  /** Tuples deleted before the commit. */
  deleted: TupleKey[];
}

export type CommitOp =
  | { op: "put"; path: string; hash: string; size: number; mtime: number; creator: string; created: boolean }
  | { op: "mkdir"; path: string; mtime: number; creator: string }
  | { op: "remove"; path: string; mtime: number }
  | { op: "rename"; from: string; to: string; mtime: number };

export type CommitRecord = CommitOp & {
  t: "commit";
  seq: number;
  tenant: string;
  /** Tuples deleted after the commit (a removed entry's). */
  deleteAfter: TupleKey[];
  /** The change stream position of its event (reserved before the commit, so it survives with it). */
  p?: number;
  /** The tuple changelog revision of the tuples written before the commit (the filesystem's own change). */
  rev?: number;
};

export interface EndRecord {
  t: "end";
  seq: number;
  /** The revision of the tuples deleted after the commit. */
  rev?: number;
}

export type JournalRecord = BeginRecord | CommitRecord | EndRecord;

export interface Checkpoint {
  seq: number;
  tenants: { name: string; table: string; tree: TreeSnapshot }[];
}

/** Applies a committed record to a tree, keeping the held counts; returns the hashes the tree let go of. */
export function applyCommit(
  tree: TenantTree,
  r: CommitRecord,
  held: Map<string, number>,
  maxVersions: number,
): string[] {
  let released: string[] = [];
  switch (r.op) {
    case "put":
      released = tree.putFile(r.path, r, maxVersions);
      held.set(r.hash, (held.get(r.hash) ?? 0) + 1);
      break;
    case "mkdir":
      tree.mkdir(r.path, r.mtime, r.creator);
      break;
    case "remove":
      released = tree.remove(r.path, r.mtime);
      break;
    case "rename":
      released = tree.rename(r.from, r.to, r.mtime);
      break;
  }
  for (const h of released) {
    const n = (held.get(h) ?? 0) - 1;
    if (n > 0) held.set(h, n);
    else held.delete(h);
  }
  return released;
}

/** The event a committed operation makes. */
export function eventOf(record: CommitRecord): NewFsEvent {
  const tenant = record.tenant;
  switch (record.op) {
    case "put":
      return {
        kind: record.created ? "created" : "written",
        tenant,
        path: record.path,
        isDirectory: false,
        hash: record.hash,
      };
    case "mkdir":
      return { kind: "created", tenant, path: record.path, isDirectory: true };
    case "remove": {
      // Who read the entry through a grant on it: told of its removal though they may read nothing else there.
      const grantees = [
        ...new Set(
          record.deleteAfter
            .filter((t) => t.relation !== "parent")
            .map((t) => (t.subjectTenant !== undefined ? `${t.subjectTenant}/${t.user}` : t.user)),
        ),
      ];
      return { kind: "removed", tenant, path: record.path, ...(grantees.length > 0 ? { grantees } : {}) };
    }
    case "rename":
      return { kind: "renamed", tenant, path: record.to, from: record.from };
  }
}
