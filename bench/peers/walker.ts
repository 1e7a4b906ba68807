/**
 * The hand-written walker: the least a user could write by hand for the peer workload's model
 * (`view = viewer or view from parent`, nested `group#member`). Plain JS maps, no caches, no precomputation:
 * object → relation → subjects for checks, and the reverse (subject → relation → objects) for listing.
 */
import type { Tuple } from "./workload.js";

type Index = Map<string, Map<string, string[]>>;

function add(index: Index, key: string, relation: string, value: string): void {
  let byRelation = index.get(key);
  if (byRelation === undefined) {
    byRelation = new Map();
    index.set(key, byRelation);
  }
  const list = byRelation.get(relation);
  if (list === undefined) byRelation.set(relation, [value]);
  else list.push(value);
}

const MAX_DEPTH = 25;

export class Walker {
  /** object → relation → subjects (`user:u`, `group:g#member`, `folder:f`). */
  readonly #forward: Index = new Map();
  /** subject → relation → objects. */
  readonly #reverse: Index = new Map();

  write(tuples: readonly Tuple[]): void {
    for (const t of tuples) {
      add(this.#forward, t.object, t.relation, t.user);
      add(this.#reverse, t.user, t.relation, t.object);
    }
  }

  #subjects(object: string, relation: string): readonly string[] {
    return this.#forward.get(object)?.get(relation) ?? [];
  }

  /** Whether `user` is a member of `group` (directly or through nested `group#member`). */
  #member(group: string, user: string, depth: number): boolean {
    if (depth > MAX_DEPTH) throw new Error("resolution too deep");
    for (const s of this.#subjects(group, "member")) {
      if (s === user) return true;
      if (s.endsWith("#member") && this.#member(s.slice(0, -7), user, depth + 1)) return true;
    }
    return false;
  }

  /** `view` on a file or folder: a direct viewer (user or group member), or `view` on the parent. */
  check(user: string, object: string, depth = 0): boolean {
    if (depth > MAX_DEPTH) throw new Error("resolution too deep");
    for (const s of this.#subjects(object, "viewer")) {
      if (s === user) return true;
      if (s.endsWith("#member") && this.#member(s.slice(0, -7), user, depth + 1)) return true;
    }
    for (const parent of this.#subjects(object, "parent")) {
      if (this.check(user, parent, depth + 1)) return true;
    }
    return false;
  }

  /** Every file `user` may view, sorted: the user's groups upward, their grants, then down the folder tree. */
  listFiles(user: string): string[] {
    const subjects = [user];
    const seen = new Set(subjects);
    for (let i = 0; i < subjects.length; i++) {
      const s = subjects[i]!;
      for (const group of this.#reverse.get(s)?.get("member") ?? []) {
        const userset = `${group}#member`;
        if (!seen.has(userset)) {
          seen.add(userset);
          subjects.push(userset);
        }
      }
    }
    const found = new Set<string>();
    const visited = new Set<string>();
    const descend = (object: string): void => {
      if (visited.has(object)) return;
      visited.add(object);
      if (object.startsWith("file:")) found.add(object);
      for (const child of this.#reverse.get(object)?.get("parent") ?? []) descend(child);
    };
    for (const s of subjects) for (const object of this.#reverse.get(s)?.get("viewer") ?? []) descend(object);
    return [...found].sort();
  }
}
