/**
 * One tenant's file tree in memory: file records in a MetadataTable (64-byte records addressed through the path
 * interner: content hash, size, mtime, and the version number in the caller's flag bits), plus what a record has
 * no room for: directories (explicit ones may be empty), each file's creator, creation time and its earlier
 * versions. The journal's committed operations are applied here, on open as when they happen, so a tree is
 * always the replay of its journal.
 */

import { MetadataTable } from "../blobs/metadata/metadata.js";
import { NexusError } from "../util/errors.js";
import { isWithin, joinPath, nameOf, objectOf, parentOf } from "./paths.js";

/** One stored content of a file. */
export interface Version {
  /** 1 for the first content, +1 per write. */
  readonly version: number;
  /** BLAKE3-256 hex of the content (its key in the volume store). */
  readonly hash: string;
  readonly size: number;
  /** When it was written, ms since the epoch. */
  readonly mtime: number;
}

/** One entry of a directory listing. */
export interface ListingEntry {
  readonly name: string;
  readonly path: string;
  readonly isDirectory: boolean;
  readonly size: number;
  readonly mtime: number;
  /** Content hash (files). */
  readonly hash?: string;
}

/** A directory's entries in name order, with their paths and permission objects (same indexes). */
export interface Listing {
  readonly names: readonly string[];
  readonly paths: readonly string[];
  readonly objects: readonly string[];
  readonly entries: readonly ListingEntry[];
}

const EMPTY_LISTING: Listing = { names: [], paths: [], objects: [], entries: [] };

/** What stat answers. */
export interface FileStat {
  readonly path: string;
  readonly tenant: string;
  readonly isDirectory: boolean;
  /** Bytes (0 for directories). */
  readonly size: number;
  readonly mtime: number;
  readonly ctime: number;
  /** The subject that created it (who became its owner). */
  readonly creator: string;
  /** The current version's content hash and number (files only). */
  readonly hash?: string;
  readonly version?: number;
}

interface Directory {
  ctime: number;
  mtime: number;
  creator: string;
  readonly children: Set<string>;
  /** Bumped on every change of an entry; `listing` is valid for `listingVersion`. */
  changes?: number;
  listing?: Listing;
  listingVersion?: number | undefined;
}

interface FileExtra {
  ctime: number;
  creator: string;
  /** Oldest first; the last is the current content. */
  versions: Version[];
}

/** A tree as a checkpoint holds it (the MetadataTable is saved beside it in its own file). */
export interface TreeSnapshot {
  readonly dirs: [path: string, ctime: number, mtime: number, creator: string][];
  readonly files: [path: string, ctime: number, creator: string, versions: Version[]][];
}

const ZERO_HASH = "0".repeat(64);

export class TenantTree {
  readonly tenant: string;
  table: MetadataTable;
  readonly #dirs = new Map<string, Directory>();
  readonly #files = new Map<string, FileExtra>();

  constructor(tenant: string, table = new MetadataTable()) {
    this.tenant = tenant;
    this.table = table;
    this.#dirs.set("/", { ctime: 0, mtime: 0, creator: "", children: new Set() });
  }

  get fileCount(): number {
    return this.#files.size;
  }

  kindOf(path: string): "file" | "directory" | undefined {
    if (this.#dirs.has(path)) return "directory";
    if (this.#files.has(path)) return "file";
    return undefined;
  }

  stat(path: string): FileStat | undefined {
    const dir = this.#dirs.get(path);
    if (dir !== undefined) {
      return {
        path,
        tenant: this.tenant,
        isDirectory: true,
        size: 0,
        mtime: dir.mtime,
        ctime: dir.ctime,
        creator: dir.creator,
      };
    }
    const extra = this.#files.get(path);
    if (extra === undefined) return undefined;
    const record = this.table.get(path);
    if (record === undefined || record.isDirectory) {
      throw new NexusError("internal", `${this.tenant}:${path} has no file record`, { path });
    }
    return {
      path,
      tenant: this.tenant,
      isDirectory: false,
      size: record.size,
      mtime: record.mtime,
      ctime: extra.ctime,
      creator: extra.creator,
      hash: record.contentHash,
      version: record.flags,
    };
  }

  /**
   * A listing's view of an entry, from memory (the same facts as the file's record: its current version), so a
   * 5,000-entry listing does not look 5,000 paths up in the table.
   */
  entry(path: string): { isDirectory: boolean; size: number; mtime: number; hash?: string } | undefined {
    const dir = this.#dirs.get(path);
    if (dir !== undefined) return { isDirectory: true, size: 0, mtime: dir.mtime };
    const versions = this.#files.get(path)?.versions;
    const current = versions?.[versions.length - 1];
    if (current === undefined) return undefined;
    return { isDirectory: false, size: current.size, mtime: current.mtime, hash: current.hash };
  }

  /** Names in directory `path`, sorted. */
  children(path: string): readonly string[] {
    return this.listing(path).names;
  }

  /**
   * A directory's entries, sorted by name: names, paths, permission objects and listing entries, kept until an
   * entry is added, removed, renamed or rewritten (a listing of 5,000 names should not rebuild them each time).
   */
  listing(path: string): Listing {
    const dir = this.#dirs.get(path);
    if (dir === undefined) return EMPTY_LISTING;
    if (dir.listing === undefined || dir.listingVersion !== dir.changes) {
      const names = [...dir.children].sort();
      const paths = names.map((name) => joinPath(path, name));
      dir.listing = {
        names,
        paths,
        objects: paths.map(objectOf),
        entries: paths.map((child, i) =>
          Object.freeze({ name: names[i]!, path: child, ...this.entry(child)! }),
        ),
      };
      dir.listingVersion = dir.changes;
    }
    return dir.listing;
  }

  /** Every path strictly below `dir`, parents before children. */
  descendants(dir: string): string[] {
    const out: string[] = [];
    const queue = [dir];
    for (let i = 0; i < queue.length; i++) {
      for (const name of this.#dirs.get(queue[i]!)?.children ?? []) {
        const child = joinPath(queue[i]!, name);
        out.push(child);
        if (this.#dirs.has(child)) queue.push(child);
      }
    }
    return out;
  }

  /** Versions of a file, oldest first. */
  versions(path: string): readonly Version[] {
    return this.#files.get(path)?.versions ?? [];
  }

  /** Every content hash the tree holds (each version of each file), with how often. */
  *heldHashes(): IterableIterator<string> {
    for (const extra of this.#files.values()) for (const v of extra.versions) yield v.hash;
  }

  // ---- committed operations (applied on commit and on replay) ------------------------------------------------

  mkdir(path: string, mtime: number, creator: string): void {
    const parent = this.#parentDir(path);
    if (this.kindOf(path) !== undefined) throw exists(this.tenant, path);
    this.#dirs.set(path, { ctime: mtime, mtime, creator, children: new Set() });
    parent.children.add(nameOf(path));
    parent.changes = (parent.changes ?? 0) + 1;
    parent.mtime = mtime;
  }

  /** A new content for `path` (creating the file). Returns the hashes it stopped holding (versions dropped). */
  putFile(
    path: string,
    content: { hash: string; size: number; mtime: number; creator: string },
    maxVersions: number,
  ): string[] {
    const parent = this.#parentDir(path);
    if (this.#dirs.has(path)) throw new NexusError("is_a_directory", `${path} is a directory`, { path });
    let extra = this.#files.get(path);
    if (extra === undefined) {
      extra = { ctime: content.mtime, creator: content.creator, versions: [] };
      this.#files.set(path, extra);
      parent.children.add(nameOf(path));
      parent.changes = (parent.changes ?? 0) + 1;
      parent.mtime = content.mtime;
    }
    parent.changes = (parent.changes ?? 0) + 1; // its listing entry (size, mtime, hash) changes
    const last = extra.versions[extra.versions.length - 1];
    const version: Version = {
      version: (last?.version ?? 0) + 1,
      hash: content.hash,
      size: content.size,
      mtime: content.mtime,
    };
    extra.versions.push(version);
    const dropped = extra.versions.splice(0, Math.max(0, extra.versions.length - maxVersions));
    this.table.set(path, {
      contentHash: version.hash,
      size: version.size,
      mtime: version.mtime,
      flags: version.version,
    });
    return dropped.map((v) => v.hash);
  }

  /** Removes a file or an empty directory. Returns the hashes it stopped holding. */
  remove(path: string, mtime: number): string[] {
    const parent = this.#parentDir(path);
    const dir = this.#dirs.get(path);
    let released: string[] = [];
    if (dir !== undefined) {
      if (dir.children.size > 0)
        throw new NexusError("not_empty", `directory ${path} is not empty`, { path });
      this.#dirs.delete(path);
      this.#prune(path);
    } else {
      const extra = this.#files.get(path);
      if (extra === undefined) throw notFound(this.tenant, path);
      this.#files.delete(path);
      this.table.delete(path);
      this.#prune(parentOf(path)!);
      released = extra.versions.map((v) => v.hash);
    }
    parent.children.delete(nameOf(path));
    parent.changes = (parent.changes ?? 0) + 1;
    parent.mtime = mtime;
    return released;
  }

  /** Moves a file or directory (with everything below it). A file at `to` is replaced; returns what it held. */
  rename(from: string, to: string, mtime: number): string[] {
    const fromParent = this.#parentDir(from);
    const toParent = this.#parentDir(to);
    const kind = this.kindOf(from);
    if (kind === undefined) throw notFound(this.tenant, from);
    if (kind === "directory" && isWithin(to, from)) {
      throw new NexusError("invalid_argument", `cannot move ${from} into itself (${to})`, { from, to });
    }
    let released: string[] = [];
    const target = this.kindOf(to);
    if (target === "directory") throw exists(this.tenant, to);
    if (target === "file") {
      if (kind === "directory") throw exists(this.tenant, to);
      released = this.remove(to, mtime);
    }
    const moved = [from, ...(kind === "directory" ? this.descendants(from) : [])];
    for (const old of moved) {
      const now = to + old.slice(from.length);
      const dir = this.#dirs.get(old);
      if (dir !== undefined) {
        this.#dirs.delete(old);
        this.#dirs.set(now, dir);
        continue;
      }
      const extra = this.#files.get(old)!;
      const record = this.table.get(old)!;
      this.#files.delete(old);
      this.table.delete(old);
      this.#files.set(now, extra);
      this.table.set(now, record);
    }
    // The table made directory records for the old paths' parents; drop the ones no longer needed, deepest first.
    for (const old of moved.reverse()) this.#prune(old);
    this.#prune(parentOf(from)!);
    fromParent.children.delete(nameOf(from));
    toParent.children.add(nameOf(to));
    fromParent.changes = (fromParent.changes ?? 0) + 1;
    toParent.changes = (toParent.changes ?? 0) + 1;
    fromParent.mtime = mtime;
    toParent.mtime = mtime;
    return released;
  }

  // ---- checkpoints ---------------------------------------------------------------------------------------------

  snapshot(): TreeSnapshot {
    const dirs: TreeSnapshot["dirs"] = [];
    for (const [path, d] of this.#dirs) dirs.push([path, d.ctime, d.mtime, d.creator]);
    const files: TreeSnapshot["files"] = [];
    for (const [path, f] of this.#files) files.push([path, f.ctime, f.creator, f.versions]);
    return { dirs, files };
  }

  static restore(tenant: string, snapshot: TreeSnapshot, table: MetadataTable): TenantTree {
    const tree = new TenantTree(tenant, table);
    // Parents come before children in insertion order, so each parent exists when its child is linked.
    for (const [path, ctime, mtime, creator] of snapshot.dirs) {
      const dir = tree.#dirs.get(path);
      if (dir !== undefined) Object.assign(dir, { ctime, mtime, creator });
      else tree.#dirs.set(path, { ctime, mtime, creator, children: new Set() });
    }
    for (const [path] of snapshot.dirs) if (path !== "/") tree.#parentDir(path).children.add(nameOf(path));
    for (const [path, ctime, creator, versions] of snapshot.files) {
      const current = versions[versions.length - 1];
      const record = table.get(path);
      if (current === undefined || record === undefined || record.contentHash !== current.hash) {
        throw new NexusError(
          "corrupt",
          `checkpoint of ${tenant}: ${path}'s record does not match its versions`,
          {
            path,
          },
        );
      }
      tree.#files.set(path, { ctime, creator, versions });
      tree.#parentDir(path).children.add(nameOf(path));
    }
    return tree;
  }

  /**
   * Drops the table's directory records from `path` up that hold nothing and are no directory of this tree: the
   * table creates them implicitly for a file's parents, and one left behind would refuse a file of that name.
   */
  #prune(path: string): void {
    for (let p: string | undefined = path; p !== undefined && p !== "/"; p = parentOf(p)) {
      const record = this.table.get(p);
      if (record === undefined || !record.isDirectory) return;
      if (this.table.list(p).length > 0) return;
      this.table.delete(p);
    }
  }

  #parentDir(path: string): Directory {
    const parent = parentOf(path);
    if (parent === undefined) {
      throw new NexusError("invalid_argument", "the root directory cannot be created, removed or moved", {
        path,
      });
    }
    const dir = this.#dirs.get(parent);
    if (dir === undefined) {
      if (this.#files.has(parent)) {
        throw new NexusError("not_a_directory", `${parent} is a file`, { path: parent });
      }
      throw notFound(this.tenant, parent);
    }
    return dir;
  }
}

export function notFound(tenant: string, path: string): NexusError {
  return new NexusError("not_found", `no ${path} in tenant ${tenant}`, { tenant, path });
}

function exists(tenant: string, path: string): NexusError {
  return new NexusError("already_exists", `${path} already exists in tenant ${tenant}`, { tenant, path });
}

export { ZERO_HASH };
