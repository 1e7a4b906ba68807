/**
 * engine.batchCheck against checkBulk, its peer in the same run: the same 1,000 questions of the Nexus filesystem
 * workload on one default engine (so both hit the same caches), and the same with `cache: false` (the evaluator's
 * cost). batchCheck names each item (correlation ids checked or generated) and shapes an answer object per item;
 * the ratio is what that costs. Also a paged listObjects (all pages of 100) against one listObjects.
 *
 * Run: BENCH_TIME=300 node --import tsx --expose-gc bench/batch.bench.ts
 */
import { createEngine, type Engine, type EngineOptions } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { type BenchCase, runSuite } from "./harness.js";
import { buildFilesystemWorkload } from "./workloads/filesystem.js";

const workload = buildFilesystemWorkload({ questions: 1000, seed: 7 });
const questions = workload.questions.slice(0, 1000);
const withIds = questions.map((q, i) => ({ ...q, correlationId: `q${i}` }));

async function engineWith(options: Partial<EngineOptions>): Promise<Engine> {
  const engine = await createEngine({ model: nexusFilesystemModel, format: "nexus", ...options });
  await engine.write({ writes: [...workload.tuples] });
  return engine;
}

const cached = await engineWith({});
const plain = await engineWith({ cache: false });

// The answers are the same first.
for (const engine of [cached, plain]) {
  const bulk = await engine.checkBulk(questions);
  const batch = await engine.batchCheck({ checks: withIds });
  if (batch.result.some((r, i) => r.error !== undefined || r.allowed !== bulk[i])) {
    throw new Error("batchCheck and checkBulk disagree");
  }
}
// Paging reads each listing once; the engine keeps the last 4 listings, so each call lists another of 8 users.
const users = workload.users.slice(0, 8);
let turn = 0;
const listingOf = (user: string) => ({ user, relation: "read", type: "file" });
const pagedAll = async (user: string): Promise<string[]> => {
  const out: string[] = [];
  let token = "";
  do {
    const page = await plain.listObjectsPage({ ...listingOf(user), pageSize: 100, continuationToken: token });
    out.push(...page.objects);
    token = page.continuationToken;
  } while (token !== "");
  return out;
};
let listed = 0;
for (const user of users) {
  const whole = await plain.listObjects(listingOf(user));
  if (JSON.stringify(await pagedAll(user)) !== JSON.stringify(whole))
    throw new Error("pages differ from the listing");
  listed += whole.length;
}
const meanListed = Math.round(listed / users.length);

const cases: BenchCase[] = [
  { name: "checkBulk 1,000 (default engine)", fn: () => cached.checkBulk(questions), opsPerCall: 1000 },
  {
    name: "batchCheck 1,000, ids given (default engine)",
    fn: () => cached.batchCheck({ checks: withIds }),
    opsPerCall: 1000,
  },
  {
    name: "batchCheck 1,000, ids generated (default engine)",
    fn: () => cached.batchCheck({ checks: questions }),
    opsPerCall: 1000,
  },
  { name: "checkBulk 1,000 (cache: false)", fn: () => plain.checkBulk(questions), opsPerCall: 1000 },
  {
    name: "batchCheck 1,000, ids given (cache: false)",
    fn: () => plain.batchCheck({ checks: withIds }),
    opsPerCall: 1000,
  },
  {
    name: `listObjects (8 users, ${meanListed} objects on average, cache: false)`,
    fn: () => plain.listObjects(listingOf(users[turn++ % users.length]!)),
  },
  {
    name: "listObjectsPage, all pages of 100 (cache: false)",
    fn: () => pagedAll(users[turn++ % users.length]!),
  },
];

await runSuite("batch", cases, {
  comparisons: [
    { subject: "batchCheck 1,000, ids given (default engine)", peer: "checkBulk 1,000 (default engine)" },
    { subject: "batchCheck 1,000, ids generated (default engine)", peer: "checkBulk 1,000 (default engine)" },
    { subject: "batchCheck 1,000, ids given (cache: false)", peer: "checkBulk 1,000 (cache: false)" },
    {
      subject: "listObjectsPage, all pages of 100 (cache: false)",
      peer: `listObjects (8 users, ${meanListed} objects on average, cache: false)`,
    },
  ],
});
await cached.close();
await plain.close();
