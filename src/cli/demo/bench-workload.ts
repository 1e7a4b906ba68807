/**
 * The demo's "same workload as the bench" section: the peer benchmark's workload (src/cli/demo/workload.ts, the one
 * generator bench/peers/ uses) on nexus-fast's default engine, measured as bench/peers/child.ts measures the
 * nexus-fast peer (bench/peers/peers.ts): `createEngine({ model })` at default options, writes of 10,000 tuples,
 * every read passing the last write's token; each call timed with performance.now(); first passes ask each question
 * once, second passes repeat the same calls; a yield to the event loop between single checks. It prints the rows of
 * the README's peer table, so a reader can put the two side by side. The answers are held to the reference
 * evaluator (checks) and to the workload's own answers (listings).
 *
 * What differs from the bench: the bench runs each peer in a fresh process, this runs inside the demo's, after its
 * other parts (the JIT is warm); and the bench reports RSS and event-loop delay, which a shared process cannot
 * attribute.
 */
import { createEngine } from "../../engine/engine.js";
import type { Io } from "../io.js";
import { formatCount, renderTable } from "../table.js";
import {
  answerers,
  describeMany,
  formatCheckRate,
  formatDuration,
  mean,
  median,
  p95,
  timed,
} from "./measure.js";
import {
  buildWorkload,
  folderFiles,
  listingUsers,
  model,
  type Question,
  questions,
  WorkloadAnswers,
} from "./workload.js";

/** bench/peers/peers.ts's NEXUS_WRITE_BATCH: the load goal of issue 13 is stated for writes of 10,000. */
const WRITE_BATCH = 10_000;

/** How many calls each row makes (bench/peers/child.ts's COUNTS for nexus-fast). */
export interface BenchCounts {
  readonly single: number;
  readonly folders: number;
  readonly bulks: number;
  readonly lists: number;
}
export const BENCH_COUNTS: BenchCounts = { single: 2000, folders: 30, bulks: 5, lists: 3 };

export interface BenchWorkloadResult {
  readonly tuples: number;
  /** Calls whose answers differ from the reference's (or the workload's own listing); 0 when all agree. */
  readonly wrong: number;
}

export async function runBenchWorkload(
  io: Io,
  options: { filesPerFolder: number; sizeName: string; counts?: BenchCounts },
): Promise<BenchWorkloadResult> {
  const { filesPerFolder, sizeName } = options;
  const counts = options.counts ?? BENCH_COUNTS;
  const workload = buildWorkload(filesPerFolder);
  const tuples = workload.tuples;
  io.out(
    `\nSame workload as the bench (npm run bench -- peers --size ${sizeName}): ${formatCount(tuples.length)} tuples, ` +
      `${filesPerFolder} files per leaf folder`,
  );
  io.out(
    "  createEngine({ model }) at default options, writes of 10,000, reads pass the last write's token; each call timed\n" +
      "  alone (performance.now()); first passes ask each question once, second passes repeat them (as bench/peers/child.ts)",
  );

  await using engine = await createEngine({ model });
  let consistency: { atLeastAsFresh: string } | undefined;
  const [, loadMs] = await timed(async () => {
    for (let i = 0; i < tuples.length; i += WRITE_BATCH) {
      const { token } = await engine.write({ writes: tuples.slice(i, i + WRITE_BATCH) });
      consistency = { atLeastAsFresh: token };
    }
  });
  // What answered the section's calls (engine.stats() around all of them; read outside every timing).
  const statsBefore = engine.stats();
  const check = (q: Question) =>
    engine.check({ user: q.user, relation: "view", object: q.object, consistency });
  const checkBulk = (qs: readonly Question[]) =>
    engine.checkBulk(qs.map((q) => ({ user: q.user, relation: "view", object: q.object, consistency })));

  // Single checks: each question once, back to the event loop between calls (untimed), then the same again.
  const singles = questions(workload, counts.single, 1);
  const first: number[] = [];
  const second: number[] = [];
  const singleAnswers: boolean[] = [];
  for (const q of singles) {
    const [answer, ms] = await timed(() => check(q));
    singleAnswers.push(answer);
    first.push(ms);
    await new Promise(setImmediate);
  }
  let wrong = 0;
  for (const [i, q] of singles.entries()) {
    const [answer, ms] = await timed(() => check(q));
    if (answer !== singleAnswers[i]) wrong++;
    second.push(ms);
  }

  // checkBulk rows: every batch once, then every batch again.
  const bulkRow = async (batches: Question[][]) => {
    const firstMs: number[] = [];
    const secondMs: number[] = [];
    const answers: boolean[][] = [];
    for (const qs of batches) {
      const [a, ms] = await timed(() => checkBulk(qs));
      answers.push(a);
      firstMs.push(ms);
    }
    for (const [i, qs] of batches.entries()) {
      const [a, ms] = await timed(() => checkBulk(qs));
      if (a.join() !== answers[i]!.join()) wrong++;
      secondMs.push(ms);
    }
    return { first: firstMs, second: secondMs, answers };
  };
  const folderBatches = questions(workload, counts.folders, 2).map((q, i) => {
    const leaf = workload.leaves[(i * 37 + 11) % workload.leaves.length]!;
    return folderFiles(workload, leaf).map((object) => ({ user: q.user, object }));
  });
  const folders = await bulkRow(folderBatches);
  const bulkBatches = Array.from({ length: counts.bulks }, (_, i) => questions(workload, 1000, 100 + i));
  const bulks = await bulkRow(bulkBatches);

  // listObjects per user: users reaching 1, 2 and 3 level-1 folders.
  const listUsers = listingUsers().slice(0, counts.lists);
  const listFirst: number[] = [];
  const listSecond: number[] = [];
  const listed: string[][] = [];
  const list = (user: string) => engine.listObjects({ user, relation: "view", type: "file", consistency });
  for (const user of listUsers) {
    const [files, ms] = await timed(() => list(user));
    listed.push(files);
    listFirst.push(ms);
  }
  for (const [i, user] of listUsers.entries()) {
    const [files, ms] = await timed(() => list(user));
    if (files.join() !== listed[i]!.join()) wrong++;
    listSecond.push(ms);
  }

  const by = answerers(statsBefore, engine.stats());

  // --- The answers, held to the reference evaluator (no WASM, no caches) over the same store, and the listings
  // to the workload's own answers (the reference lists by the same reverse expansion as the engine).
  const asked = [...singles, ...folderBatches.flat(), ...bulkBatches.flat()];
  const given = [...singleAnswers, ...folders.answers.flat(), ...bulks.answers.flat()];
  {
    await using reference = await createEngine({
      model,
      store: engine.store,
      evaluator: "reference",
      cache: false,
    });
    const expected = await reference.checkBulk(
      asked.map((q) => ({ user: q.user, relation: "view", object: q.object, consistency })),
    );
    wrong += expected.filter((a, i) => a !== given[i]).length;
  }
  const answers = new WorkloadAnswers(workload);
  wrong += listUsers.filter((user, i) => answers.listFiles(user).join() !== listed[i]!.join()).length;

  const pair = (a: number[], b: number[]) => `${formatDuration(median(a))} / ${formatDuration(median(b))}`;
  const sizes = listed.map((l) => l.length);
  const folderSize = folderBatches[0]?.length ?? 0;
  const rows: string[][] = [
    [`load ${formatCount(tuples.length)} tuples`, formatDuration(loadMs)],
    [
      "single check, first pass, median / p95 / mean",
      [median(first), p95(first), mean(first)].map(formatDuration).join(" / "),
    ],
    ["single check, second pass, median", formatDuration(median(second))],
    [
      `list a folder (checkBulk of its ${folderSize} files), first / second, median`,
      pair(folders.first, folders.second),
    ],
    [
      "checkBulk of 1,000, first / second, median",
      `${pair(bulks.first, bulks.second)} (${formatCheckRate(1000, median(bulks.first))} / ${formatCheckRate(1000, median(bulks.second))})`,
    ],
    [
      `listObjects (${formatCount(Math.min(...sizes))}–${formatCount(Math.max(...sizes))} results), first / second, median per user`,
      pair(listFirst, listSecond),
    ],
  ];
  io.out(
    renderTable([{ title: "row" }, { title: "nexus-fast" }], rows)
      .split("\n")
      .map((l) => `  ${l}`)
      .join("\n"),
  );
  io.out(`  the calls above were ${describeMany(by)}`);
  io.out(
    wrong === 0
      ? `  answers: ${formatCount(asked.length)} checks (${formatCount(singles.length)} single, ${folderBatches.length} folders, ${bulkBatches.length} bulks of 1,000) ` +
          `as the reference evaluator's, ${listUsers.length} listings as the workload's own answers`
      : `  ${formatCount(wrong)} answers differ from the reference evaluator's or the workload's own (WRONG)`,
  );
  return { tuples: tuples.length, wrong };
}
