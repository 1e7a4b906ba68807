/**
 * The permission checks of NexusFS (what each operation checks is listed in filesystem.ts): one question to the
 * engine per check, at least as fresh as the filesystem's last tuple write; refusals that do not reveal whether
 * an entry exists; listings filtered by `read` in one or two engine.filter calls; and which change events a
 * caller may see.
 */
import type { Engine } from "../engine/engine.js";
import { NexusError } from "../util/errors.js";
import { denied } from "./caller.js";
import type { FsEvent } from "./events.js";
import { objectOf, parentOf, pathOfObject } from "./paths.js";
import { notFound, type TenantTree } from "./tree.js";
import type { Caller, DirEntry } from "./types.js";

export class PermissionChecks {
  /** The relation a listing needs: `traverse` where the model has it, else `read`. */
  readonly traverse: string;
  readonly #engine: Engine;
  readonly #tree: (tenant: string) => TenantTree;
  readonly #token: () => string | undefined;
  readonly #closed: () => boolean;

  /**
   * `tree`: a tenant's tree (an empty one when it has none); `token`: the filesystem's last write token (checks
   * read at least that fresh); `closed`: whether the filesystem has closed (events are then hidden).
   */
  constructor(
    engine: Engine,
    tree: (tenant: string) => TenantTree,
    token: () => string | undefined,
    closed: () => boolean,
  ) {
    this.#engine = engine;
    this.#tree = tree;
    this.#token = token;
    this.#closed = closed;
    this.traverse = engine.program.types.get("file")?.relations.has("traverse") ? "traverse" : "read";
  }

  /**
   * What of an event one caller may see, judged when it is delivered:
   * - created, written: the caller may read the path;
   * - removed: the caller may read its directory, or had a grant on the entry itself (`grantees`: the caller,
   *   or a wildcard of its type such as `user:*`, from its tenant);
   * - renamed: the caller may read the new path, or the old path's directory;
   * - permission: the change names the caller (or a wildcard of its type), or the caller may read the path.
   * A change whose subject is a group, a userset or another wildcard (it may reach the caller through a
   * membership), a removed entry such a subject had a grant on, and a change with no path are passed on
   * redacted, as "something changed" in that tenant (a client drops its caches), naming neither path nor
   * subject, to callers of that tenant and to callers of other tenants who hold a grant there (no one else
   * learns that the tenant changed). Anything else is hidden. `grantees` never leaves here.
   */
  async visibleTo(c: Required<Caller>, e: FsEvent): Promise<FsEvent | undefined> {
    if (this.#closed()) return undefined;
    const may = async (path: string | undefined) =>
      path !== undefined && (await this.allowed(c, "read", e.tenant, path).catch(() => false));
    const redacted = async (): Promise<FsEvent | undefined> =>
      c.tenant === e.tenant || (await this.#holdsGrantIn(c, e.tenant))
        ? { token: e.token, kind: "permission", tenant: e.tenant }
        : undefined;
    switch (e.kind) {
      case "created":
      case "written":
        return (await may(e.path)) ? e : undefined;
      case "removed": {
        const { grantees, ...rest } = e;
        const reach = (grantees ?? []).map((g) => {
          // A grantee from another tenant is written `tenant/user` (a subject has no / before its type's colon).
          const slash = g.indexOf("/");
          const across = slash >= 0 && slash < g.indexOf(":");
          return reaches(c, across ? g.slice(slash + 1) : g, across ? g.slice(0, slash) : e.tenant);
        });
        if (reach.includes("named") || (await may(parentOf(e.path!)))) return rest;
        return reach.includes("maybe") ? redacted() : undefined;
      }
      case "renamed":
        return (await may(e.path)) || (await may(parentOf(e.from!))) ? e : undefined;
      case "permission": {
        const change = e.change;
        const reach =
          change === undefined ? "maybe" : reaches(c, change.user, change.subjectTenant ?? e.tenant);
        if (reach === "named") return e;
        if (await may(e.path)) return e;
        return reach === "maybe" || e.path === undefined ? redacted() : undefined;
      }
      default:
        return undefined;
    }
  }

  /**
   * Whether a caller from another tenant is the subject of any tuple in `tenant` (a share, a group membership):
   * only then can a redacted change there reach it, and only then may it learn that the tenant changed.
   */
  async #holdsGrantIn(c: Required<Caller>, tenant: string): Promise<boolean> {
    const tuples = await this.#engine
      .read({
        tenant,
        user: c.user,
        ...(this.#token() !== undefined ? { consistency: this.consistency() } : {}),
      })
      .catch(() => []);
    return tuples.some((t) => t.subjectTenant === c.tenant);
  }

  /** The subject part of a request for caller `c` in `tenant`, at least as fresh as the last write. */
  subject(c: Required<Caller>, tenant: string) {
    const token = this.#token();
    return {
      user: c.user,
      tenant,
      ...(c.tenant !== tenant ? { subjectTenant: c.tenant } : {}),
      ...(token !== undefined ? { consistency: { atLeastAsFresh: token } } : {}),
    };
  }

  /** Reads at least as fresh as the filesystem's last tuple write (undefined before its first). */
  consistency() {
    const token = this.#token();
    return token !== undefined ? { atLeastAsFresh: token } : undefined;
  }

  allowed(c: Required<Caller>, relation: string, tenant: string, path: string): Promise<boolean> {
    return this.#engine.check({ ...this.subject(c, tenant), relation, object: objectOf(path) });
  }

  /**
   * Refuses unless allowed. A missing entry has no tuples, so it is refused too; it is reported not_found only
   * to a caller who may read the nearest directory that exists (its absence is no secret from them).
   */
  async require(c: Required<Caller>, relation: string, tenant: string, path: string): Promise<void> {
    if (await this.allowed(c, relation, tenant, path)) return;
    const tree = this.#tree(tenant);
    if (tree.kindOf(path) === undefined) {
      let dir = parentOf(path);
      while (dir !== undefined && tree.kindOf(dir) === undefined) dir = parentOf(dir);
      if (
        dir !== undefined &&
        tree.kindOf(dir) === "directory" &&
        (await this.allowed(c, "read", tenant, dir))
      ) {
        throw notFound(tenant, path);
      }
    }
    throw denied(c, relation, tenant, path);
  }

  /** `write` on the file when it exists, else on its parent (what creating it needs). */
  async mayWriteFile(c: Required<Caller>, tenant: string, p: string): Promise<boolean> {
    const kind = this.#tree(tenant).kindOf(p);
    if (kind === "directory") throw new NexusError("is_a_directory", `${p} is a directory`, { path: p });
    if (p === "/") throw new NexusError("is_a_directory", "/ is a directory", { path: p });
    return this.allowed(c, "write", tenant, kind === "file" ? p : parentOf(p)!);
  }

  /** `traverse` on the directory, or anything readable below it (Nexus shows such a directory too). */
  async mayTraverse(c: Required<Caller>, tenant: string, dir: string): Promise<boolean> {
    if (await this.allowed(c, this.traverse, tenant, dir)) return true;
    return this.#readableBelow(c, tenant, dir);
  }

  async #readableBelow(c: Required<Caller>, tenant: string, dir: string): Promise<boolean> {
    const below = this.#tree(tenant).descendants(dir);
    if (below.length === 0) return false;
    const allowed = await this.#engine.filter({
      ...this.subject(c, tenant),
      relation: "read",
      objects: below.map(objectOf),
    });
    return allowed.length > 0;
  }

  /** The paths the caller may read, in input order. */
  async readable(c: Required<Caller>, tenant: string, paths: readonly string[]): Promise<string[]> {
    if (paths.length === 0) return [];
    const allowed = await this.#engine.filter({
      ...this.subject(c, tenant),
      relation: "read",
      objects: paths.map(objectOf),
    });
    return allowed.map((o) => pathOfObject(o)!);
  }

  /**
   * Which entries of one directory the caller may see (their indexes, in order): readable ones, and
   * directories with anything readable below. One filter over the entries (the listing's objects, the same
   * strings each time, so the engine's lookups hit), then at most one more over everything below the
   * subdirectories the first did not let through.
   */
  async visible(
    c: Required<Caller>,
    tenant: string,
    listing: {
      readonly paths: readonly string[];
      readonly objects: readonly string[];
      readonly entries: readonly DirEntry[];
    },
  ): Promise<number[]> {
    const { paths, objects, entries } = listing;
    if (paths.length === 0) return [];
    const subject = this.subject(c, tenant);
    const allowed = await this.#engine.filter({ ...subject, relation: "read", objects });
    const visible = new Uint8Array(paths.length);
    const closedDirs: number[] = [];
    // filter answers in input order: walk both lists together.
    let next = 0;
    for (let i = 0; i < paths.length; i++) {
      if (allowed[next] === objects[i]) {
        next++;
        visible[i] = 1;
      } else if (entries[i]!.isDirectory) {
        closedDirs.push(i);
      }
    }
    if (closedDirs.length > 0) {
      const tree = this.#tree(tenant);
      const below: string[] = [];
      const owner: number[] = [];
      for (const i of closedDirs) {
        for (const d of tree.descendants(paths[i]!)) {
          below.push(objectOf(d));
          owner.push(i);
        }
      }
      if (below.length > 0) {
        const readable = await this.#engine.filter({ ...subject, relation: "read", objects: below });
        let k = 0;
        for (let j = 0; j < below.length && k < readable.length; j++) {
          if (readable[k] === below[j]) {
            k++;
            visible[owner[j]!] = 1;
          }
        }
      }
    }
    const out: number[] = [];
    for (let i = 0; i < visible.length; i++) if (visible[i] === 1) out.push(i);
    return out;
  }
}

/**
 * Whether a tuple's subject (`user`, of `subjectTenant`) is caller `c` or a wildcard of its type ("named"), may
 * reach it through a membership or another wildcard ("maybe"), or never does ("no").
 */
function reaches(c: Required<Caller>, user: string, subjectTenant: string): "named" | "maybe" | "no" {
  if (user.includes("#") || user.startsWith("group:")) return "maybe";
  if (subjectTenant === c.tenant) {
    if (user === c.user) return "named";
    if (user === `${c.user.slice(0, c.user.indexOf(":"))}:*`) return "named";
  }
  return user.endsWith(":*") ? "maybe" : "no";
}
