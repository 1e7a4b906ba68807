/**
 * The computed-permission stream (src/views/permissions.ts) on the whole path: one write, then that revision's
 * differences for every subject, against the peer a user without the stream would run: the same write, then a
 * full recomputation (listObjects of doc#viewer for every subject with tuples). Workload: 100 users in 10 groups,
 * 300 docs in 30 folders, viewers granted to users, groups and folders; each write toggles one grant.
 *
 * Run: node --import tsx bench/views.bench.ts (BENCH_TIME=200 for a quick run).
 */
import { createEngine, type Engine, type PermissionRevision } from "../src/engine/engine.js";
import type { TupleKey } from "../src/tuples/tuple.js";
import { seededRandom } from "../src/util/random.js";
import { runSuite } from "./harness.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user]
type folder
  relations
    define viewer: [user, group#member]
type doc
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent`;

const USERS = Array.from({ length: 100 }, (_, i) => `user:u${i}`);
const GROUPS = Array.from({ length: 10 }, (_, i) => `group:g${i}`);
const FOLDERS = Array.from({ length: 30 }, (_, i) => `folder:f${i}`);
const DOCS = Array.from({ length: 300 }, (_, i) => `doc:d${i}`);

async function loaded(): Promise<Engine> {
  const engine = await createEngine({ model });
  const writes: TupleKey[] = [];
  for (const [i, user] of USERS.entries()) {
    writes.push({ user, relation: "member", object: GROUPS[i % GROUPS.length]! });
  }
  for (const [i, doc] of DOCS.entries()) {
    writes.push({ user: FOLDERS[i % FOLDERS.length]!, relation: "parent", object: doc });
  }
  for (const [i, folder] of FOLDERS.entries()) {
    writes.push({ user: `${GROUPS[i % GROUPS.length]!}#member`, relation: "viewer", object: folder });
  }
  await engine.write({ writes });
  return engine;
}

/** A write that toggles one grant (a user or a group on a doc, or a user on a folder). */
function toggler(engine: Engine, seed: number): () => Promise<void> {
  const random = seededRandom(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const live = new Set<string>();
  return async () => {
    const r = random();
    const tuple: TupleKey =
      r < 0.5
        ? { user: pick(USERS), relation: "viewer", object: pick(DOCS) }
        : r < 0.8
          ? { user: `${pick(GROUPS)}#member`, relation: "viewer", object: pick(DOCS) }
          : { user: pick(USERS), relation: "viewer", object: pick(FOLDERS) };
    const key = `${tuple.object}#${tuple.relation}@${tuple.user}`;
    if (live.delete(key)) await engine.write({ deletes: [tuple] });
    else {
      live.add(key);
      await engine.write({ writes: [tuple] });
    }
  };
}

const streamed = await loaded();
const stream: AsyncGenerator<PermissionRevision> = streamed.watchPermissionRevisions({
  type: "doc",
  relation: "viewer",
});
// The first next() opens the stream (the set at the current revision) and waits for the next revision.
const first = stream.next();
const writeStreamed = toggler(streamed, 1);
let changes = 0;
let revisions = 0;

const recomputed = await loaded();
const writeRecomputed = toggler(recomputed, 1);
const subjects = async (): Promise<string[]> =>
  [...new Set((await recomputed.read()).map((t) => t.user))].filter((u) => !u.includes("#"));

await writeStreamed();
await first;

await runSuite(
  "views",
  [
    {
      name: "write → stream's differences (all subjects)",
      fn: async () => {
        await writeStreamed();
        const batch = await stream.next();
        revisions++;
        if (!batch.done) changes += batch.value.changes.length;
      },
    },
    {
      name: "write → listObjects for every subject (peer)",
      fn: async () => {
        await writeRecomputed();
        for (const user of await subjects()) {
          await recomputed.listObjects({ user, relation: "viewer", type: "doc" });
        }
      },
    },
  ],
  {
    iterations: 10,
    comparisons: [
      {
        subject: "write → stream's differences (all subjects)",
        peer: "write → listObjects for every subject (peer)",
      },
    ],
    facts: { users: USERS.length, docs: DOCS.length },
  },
);
console.log(`  changes per revision (mean): ${(changes / Math.max(1, revisions)).toFixed(1)}`);
await stream.return(undefined);
await streamed.close();
await recomputed.close();
