/**
 * The peer workload of issue 13, deterministic and parameterised by files per leaf folder:
 * - 50 chains of 5 nested groups (`group:c<i>_<d>#member` is a member of `group:c<i>_<d-1>`), 20 users per chain
 *   (4 in each of its groups, so a user may sit 5 groups deep), drawn from a pool of 400 users so a user is in
 *   1–5 chains (2.5 on average);
 * - a folder tree root → 10 → 10 → 10 (1,111 folders, 1,000 leaves), `filesPerFolder` files in each leaf;
 * - each chain's top group views one level-1 folder (chain i → `folder:r_<i mod 10>`: 5 chains per folder);
 * - 1% of files (every 100th) has a direct user viewer.
 * `view = viewer or view from parent` on folders and files. filesPerFolder 100 gives 103,360 tuples, 1,000 gives
 * 1,012,360, 8 gives 10,440.
 *
 * Questions are drawn by a seeded PRNG, so every engine (each in its own process) asks the same ones.
 *
 * One generator for the peer benchmark (bench/peers/workload.ts re-exports it) and the demo's "same workload as
 * the bench" section (src/cli/demo/bench-workload.ts), so the two measure the same tuples and questions.
 */
import { seededRandom } from "../../util/random.js";

export interface Tuple {
  readonly object: string;
  readonly relation: "member" | "parent" | "viewer";
  readonly user: string;
}

export interface Question {
  readonly user: string;
  readonly object: string;
}

export const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member]
    define view: viewer or view from parent
type file
  relations
    define parent: [folder]
    define viewer: [user, group#member]
    define view: viewer or view from parent
`;

export const CHAINS = 50;
export const CHAIN_DEPTH = 5;
export const USERS_PER_CHAIN = 20;
export const USER_POOL = 400;
export const FANOUT = 10;

/** Named sizes: files per leaf folder. */
export const SIZES: Readonly<Record<string, number>> = { "10k": 8, "100k": 100, "1m": 1000 };

export interface Workload {
  readonly filesPerFolder: number;
  readonly tuples: readonly Tuple[];
  readonly leaves: readonly string[];
  readonly users: readonly string[];
}

export const userName = (u: number): string => `user:u${u}`;
export const fileName = (leaf: string, k: number): string => `file:${leaf.slice(7)}_${k}`;

export function buildWorkload(filesPerFolder: number): Workload {
  const tuples: Tuple[] = [];
  for (let c = 0; c < CHAINS; c++) {
    for (let d = 1; d < CHAIN_DEPTH; d++) {
      tuples.push({ object: `group:c${c}_${d - 1}`, relation: "member", user: `group:c${c}_${d}#member` });
    }
    for (let k = 0; k < USERS_PER_CHAIN; k++) {
      // 7 and 13 are coprime with 400: the 20 users of a chain are distinct.
      const u = (c * 7 + k * 13) % USER_POOL;
      tuples.push({ object: `group:c${c}_${k % CHAIN_DEPTH}`, relation: "member", user: userName(u) });
    }
  }
  const leaves: string[] = [];
  for (let a = 0; a < FANOUT; a++) {
    tuples.push({ object: `folder:r_${a}`, relation: "parent", user: "folder:r" });
    for (let b = 0; b < FANOUT; b++) {
      tuples.push({ object: `folder:r_${a}_${b}`, relation: "parent", user: `folder:r_${a}` });
      for (let c = 0; c < FANOUT; c++) {
        const leaf = `folder:r_${a}_${b}_${c}`;
        tuples.push({ object: leaf, relation: "parent", user: `folder:r_${a}_${b}` });
        leaves.push(leaf);
      }
    }
  }
  for (let c = 0; c < CHAINS; c++) {
    tuples.push({ object: `folder:r_${c % FANOUT}`, relation: "viewer", user: `group:c${c}_0#member` });
  }
  let n = 0;
  for (const leaf of leaves) {
    for (let k = 0; k < filesPerFolder; k++) {
      const file = fileName(leaf, k);
      tuples.push({ object: file, relation: "parent", user: leaf });
      if (n++ % 100 === 0) tuples.push({ object: file, relation: "viewer", user: userName(n % USER_POOL) });
    }
  }
  const users = Array.from({ length: USER_POOL }, (_, u) => userName(u));
  return { filesPerFolder, tuples, leaves, users };
}

/** `count` random (user, file) questions; `seed` picks the set (first-pass sets must not repeat). */
export function questions(w: Workload, count: number, seed: number): Question[] {
  const random = seededRandom(seed);
  const out: Question[] = [];
  for (let i = 0; i < count; i++) {
    const leaf = w.leaves[Math.floor(random() * w.leaves.length)]!;
    const user = w.users[Math.floor(random() * w.users.length)]!;
    out.push({ user, object: fileName(leaf, Math.floor(random() * w.filesPerFolder)) });
  }
  return out;
}

/**
 * Users to list files for: the first with 1, 2 and 3 distinct level-1 folders reachable through their chains
 * (about 10k, 20k and 30k files at 100k tuples).
 */
export function listingUsers(): string[] {
  const folders = new Map<number, Set<number>>();
  for (let c = 0; c < CHAINS; c++) {
    for (let k = 0; k < USERS_PER_CHAIN; k++) {
      const u = (c * 7 + k * 13) % USER_POOL;
      const set = folders.get(u) ?? new Set<number>();
      set.add(c % FANOUT);
      folders.set(u, set);
    }
  }
  const picked: string[] = [];
  for (const want of [1, 2, 3]) {
    const u = [...folders.keys()].sort((a, b) => a - b).find((x) => folders.get(x)!.size === want);
    if (u !== undefined) picked.push(userName(u));
  }
  return picked;
}

/** The files of one leaf folder, in order (a directory listing to filter). */
export const folderFiles = (w: Workload, leaf: string): Question["object"][] =>
  Array.from({ length: w.filesPerFolder }, (_, k) => fileName(leaf, k));

/**
 * What the workload's model answers, worked out from its tuples without any engine (the demo holds nexus-fast's
 * listings to it): `user` views an object when it, or a group it is a member of (directly or through nested
 * groups), is a viewer of the object or of a folder above it.
 */
export class WorkloadAnswers {
  readonly #parent = new Map<string, string>();
  readonly #viewers = new Map<string, string[]>();
  /** Group of a member: `user:u1` or `group:c0_1#member` → the groups (`group:c0_0`) it is a member of. */
  readonly #memberOf = new Map<string, string[]>();
  readonly #files: string[] = [];

  constructor(w: Workload) {
    const add = (map: Map<string, string[]>, key: string, value: string) => {
      const list = map.get(key);
      if (list === undefined) map.set(key, [value]);
      else list.push(value);
    };
    for (const t of w.tuples) {
      if (t.relation === "parent") {
        this.#parent.set(t.object, t.user);
        if (t.object.startsWith("file:")) this.#files.push(t.object);
      } else if (t.relation === "viewer") add(this.#viewers, t.object, t.user);
      else add(this.#memberOf, t.user, t.object);
    }
  }

  /** The subjects that stand for `user`: itself and `group:g#member` of every group it is in. */
  #subjects(user: string): Set<string> {
    const subjects = new Set([user]);
    const queue = [user];
    for (let i = 0; i < queue.length; i++) {
      for (const group of this.#memberOf.get(queue[i]!) ?? []) {
        const member = `${group}#member`;
        if (!subjects.has(member)) {
          subjects.add(member);
          queue.push(member);
        }
      }
    }
    return subjects;
  }

  #views(subjects: ReadonlySet<string>, object: string): boolean {
    for (let at: string | undefined = object; at !== undefined; at = this.#parent.get(at)) {
      if (this.#viewers.get(at)?.some((v) => subjects.has(v))) return true;
    }
    return false;
  }

  check(q: Question): boolean {
    return this.#views(this.#subjects(q.user), q.object);
  }

  /** Every file `user` views, sorted (what listObjects must answer). */
  listFiles(user: string): string[] {
    const subjects = this.#subjects(user);
    return this.#files.filter((f) => this.#views(subjects, f)).sort();
  }
}
