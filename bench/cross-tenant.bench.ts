/**
 * The cross-tenant grant index (src/pipeline/cross-tenant.ts), each case with the layer and without it in the same
 * run, on the Nexus preset:
 * - tenant "acme" holds the filesystem workload (bench/workloads/filesystem.ts: teams nested 5 deep, folders 4
 *   deep); tenant "globex" has 2,000 users, each a member of a globex team (so the Bloom layer's "unknown subject"
 *   rule, which sits before this one in the chain, does not already deny them);
 * - acme shares files with globex: 10,000 `shared-viewer` grants to 200 globex users (50 each), plus 20
 *   `shared-editor` grants to initech's teams (`group:t#member` of tenant initech: hops the index must walk).
 *
 * 1. Same-tenant checks (acme's own questions) through the layer vs straight to the evaluator: the layer costs one
 *    comparison, shown both over the reference evaluator and over a stub evaluator (so the layer's own cost is
 *    not hidden by the evaluation's).
 * 2. Cross-tenant checks: globex users on acme files, 90% of them without a grant in acme (answered by the index,
 *    no evaluation), 10% with grants (evaluated), vs the reference alone.
 * 3. grantsTo (a user's 50 live grants among 10,020) vs reading them from a store snapshot by subject; grantsOn.
 *
 * Run: BENCH_TIME=300 node --import tsx --expose-gc bench/cross-tenant.bench.ts
 */

import { TupleDepthBound } from "../src/changes/depth.js";
import { ChangeFeed } from "../src/changes/feed.js";
import { influenceOf } from "../src/changes/influence.js";
import { createEngine } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { depthGuardOf } from "../src/pipeline/chain.js";
import { CrossTenantResolver } from "../src/pipeline/cross-tenant/index.js";
import { ReferenceResolver } from "../src/pipeline/reference.js";
import type {
  BatchOutcome,
  CheckResolver,
  LayerStats,
  Resolution,
  ResolvedCheck,
} from "../src/pipeline/types.js";
import { questionKey } from "../src/request/key.js";
import { formatSubject, parseSubject, type TupleKey } from "../src/tuples/tuple.js";
import { type BenchCase, runSuite } from "./harness.js";
import { buildFilesystemWorkload, prng } from "./workloads/filesystem.js";

const GLOBEX_USERS = 2000;
const USERS_WITH_GRANTS = 200;
const GRANTS_PER_USER = 50;
const BATCH = 50;

const workload = buildFilesystemWorkload({ questions: 1000, seed: 11 });
const random = prng(5);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const clock = { now: 1_700_000_000_000 };
const engine = await createEngine({
  model: nexusFilesystemModel,
  format: "nexus",
  clock: () => clock.now,
  quantizationWindowMs: 0,
});
const writes: TupleKey[] = workload.tuples.map((t) => ({ ...t, tenant: "acme" }));
const globexUsers = Array.from({ length: GLOBEX_USERS }, (_, i) => `user:g${i}`);
globexUsers.forEach((user, i) => {
  writes.push({ tenant: "globex", user, relation: "member", object: `group:team${i % 20}` });
});
const grantsOf = new Map<string, string[]>();
for (let u = 0; u < USERS_WITH_GRANTS; u++) {
  const user = globexUsers[u]!;
  const files = new Set<string>();
  while (files.size < GRANTS_PER_USER) files.add(pick(workload.files));
  grantsOf.set(user, [...files]);
  for (const object of files) {
    writes.push({ tenant: "acme", subjectTenant: "globex", user, relation: "shared-viewer", object });
  }
}
for (let i = 0; i < 20; i++) {
  writes.push({
    tenant: "acme",
    subjectTenant: "initech",
    user: `group:t${i}#member`,
    relation: "shared-editor",
    object: pick(workload.folders),
  });
}
for (let i = 0; i < writes.length; i += 5000) await engine.write({ writes: writes.slice(i, i + 5000) });
const { program, store } = engine;

const feed = await ChangeFeed.open(store);
const reference = new ReferenceResolver({ program, store });
const builtAt = performance.now();
// The data-level depth bound lets the index deny on the Nexus preset's recursive relations (as in the chain).
const depth = await TupleDepthBound.open(store, feed);
const depthGuard = depthGuardOf(influenceOf(program), depth, 25);
const layer = await CrossTenantResolver.open(new ReferenceResolver({ program, store }), {
  program,
  store,
  source: feed,
  depthGuard,
});
const buildMs = performance.now() - builtAt;

/** A constant evaluator: isolates what the layer itself costs. */
class Stub implements CheckResolver {
  readonly layer = "stub";
  readonly #answer: Promise<Resolution> = Promise.resolve({
    allowed: true,
    revision: 0,
    validUntil: Number.POSITIVE_INFINITY,
  });
  resolve(): Promise<Resolution> {
    return this.#answer;
  }
  async resolveMany(checks: readonly ResolvedCheck[]): Promise<BatchOutcome[]> {
    return checks.map(() => ({ allowed: true, revision: 0, validUntil: Number.POSITIVE_INFINITY }));
  }
  stats(): LayerStats[] {
    return [];
  }
  async close(): Promise<void> {}
}
const stub = new Stub();
const overStub = await CrossTenantResolver.open(stub, { program, store, source: feed, depthGuard });

const revision = await store.currentRevision();
await feed.caughtUp(revision);

function resolved(
  tenant: string,
  subjectTenant: string,
  q: { user: string; relation: string; object: string },
) {
  const subject = parseSubject(q.user)!;
  const user = formatSubject(subject);
  return {
    tenant,
    subjectTenant,
    object: q.object,
    objectType: q.object.slice(0, q.object.indexOf(":")),
    relation: q.relation,
    subject,
    user,
    revision,
    now: clock.now,
    context: undefined,
    contextualTuples: [],
    key: questionKey(tenant, subjectTenant, q.object, q.relation, user, ""),
  } satisfies ResolvedCheck;
}

const sameTenant = workload.questions.slice(0, BATCH).map((q) => resolved("acme", "acme", q));
const crossTenant = Array.from({ length: BATCH }, (_, i) => {
  // One in ten from a user holding grants (half of those on the very file asked about).
  const withGrants = i % 10 === 0;
  const user = withGrants ? globexUsers[i % USERS_WITH_GRANTS]! : globexUsers[USERS_WITH_GRANTS + i]!;
  const onShared = withGrants && i % 20 === 0;
  const object = onShared ? grantsOf.get(user)![0]! : pick(workload.files);
  return resolved("acme", "globex", { user, relation: onShared ? "read" : pick(["read", "write"]), object });
});

// The layer must answer exactly as the reference.
for (const checks of [sameTenant, crossTenant]) {
  const [a, b] = [await layer.resolveMany(checks), await reference.resolveMany(checks)];
  a.forEach((outcome, i) => {
    const x = outcome instanceof Error ? outcome.message : outcome.allowed;
    const y = b[i] instanceof Error ? (b[i] as Error).message : (b[i] as Resolution).allowed;
    if (x !== y) throw new Error(`answer ${i} differs: layer ${x}, reference ${y}`);
  });
}
const allowedCross = (await reference.resolveMany(crossTenant)).filter(
  (o) => !(o instanceof Error) && o.allowed,
).length;

async function each(resolver: CheckResolver, checks: readonly ResolvedCheck[]): Promise<void> {
  for (const check of checks) await resolver.resolve(check);
}

const grantee = globexUsers[7]!;
const sharedFile = grantsOf.get(grantee)![0]!;
const snapshot = await store.snapshot(revision);
const cases: BenchCase[] = [
  { name: "same-tenant check, reference", fn: () => each(reference, sameTenant), opsPerCall: BATCH },
  { name: "same-tenant check, layer + reference", fn: () => each(layer, sameTenant), opsPerCall: BATCH },
  { name: "same-tenant pass-through, stub", fn: () => each(stub, sameTenant), opsPerCall: BATCH },
  { name: "same-tenant pass-through, layer + stub", fn: () => each(overStub, sameTenant), opsPerCall: BATCH },
  { name: "cross-tenant check, reference", fn: () => each(reference, crossTenant), opsPerCall: BATCH },
  { name: "cross-tenant check, layer + reference", fn: () => each(layer, crossTenant), opsPerCall: BATCH },
  {
    name: "cross-tenant batch, reference",
    fn: () => reference.resolveMany(crossTenant),
    opsPerCall: BATCH,
  },
  {
    name: "cross-tenant batch, layer + reference",
    fn: () => layer.resolveMany(crossTenant),
    opsPerCall: BATCH,
  },
  {
    name: "grantsTo (50 of 10,020 grants)",
    fn: () => layer.grantsTo({ subjectTenant: "globex", user: grantee }),
  },
  {
    name: "store readBySubject (same 50)",
    fn: async () =>
      (await snapshot.readBySubject([{ subjectTenant: "globex", user: grantee }]))[0]!.filter(
        (t) => t.tenant !== t.subjectTenant,
      ),
  },
  { name: "grantsOn (one file)", fn: () => layer.grantsOn({ tenant: "acme", object: sharedFile }) },
];

// Counters over exactly one pass of the cross-tenant questions.
const before = layer.stats()[0]!;
await each(layer, crossTenant);
const after = layer.stats()[0]!;

await runSuite("cross-tenant", cases, {
  comparisons: [
    { subject: "same-tenant check, layer + reference", peer: "same-tenant check, reference" },
    { subject: "same-tenant pass-through, layer + stub", peer: "same-tenant pass-through, stub" },
    { subject: "cross-tenant check, layer + reference", peer: "cross-tenant check, reference" },
    { subject: "cross-tenant batch, layer + reference", peer: "cross-tenant batch, reference" },
    { subject: "grantsTo (50 of 10,020 grants)", peer: "store readBySubject (same 50)" },
  ],
  facts: {
    "acme tuples": workload.tuples.length,
    "cross-tenant grants": USERS_WITH_GRANTS * GRANTS_PER_USER + 20,
    "index build (changelog replay, ms)": buildMs.toFixed(1),
    "index grants / tenant pairs / hops": `${after.extra?.grants} / ${after.extra?.tenantPairs} / ${after.extra?.hops}`,
    "cross-tenant questions allowed": `${allowedCross} of ${BATCH}`,
    "cross-tenant questions answered by the index": `${after.hits - before.hits} of ${BATCH}`,
  },
});

snapshot.release();
await overStub.close();
await layer.close();
await depth.close();
await feed.close();
await engine.close();
