/**
 * One peer in its own process: load the workload, then every row of the peer table, timing each call with
 * performance.now(). First passes ask questions no earlier row asked (so no cache has seen them); second passes
 * repeat the same calls. Writes the timings and the answers (for the parent's cross-check) as JSON to argv[4].
 * Usage: node --import tsx --expose-gc bench/peers/child.ts <peer> <filesPerFolder> <out.json> [warm]
 * With `warm`, the process first runs every row on a separate instance of the peer over the 10k workload
 * (other tuples, other questions) and closes it: the measured instance's caches are as cold as ever, but V8 has
 * compiled the peer's code. The difference from a fresh process is what JIT warm-up costs each row. (The RSS
 * rows read lower in such a process: the heap already grew for the rehearsal.)
 */
import { writeFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { openPeer, type PeerName } from "./peers.js";
import { buildWorkload, folderFiles, listingUsers, type Question, questions, SIZES } from "./workload.js";

const [name, filesArg, outPath, warmArg] = process.argv.slice(2) as [PeerName, string, string, string?];
const filesPerFolder = Number(filesArg);
const slow = name === "spicedb" || name === "casbin";

/** How many calls each row makes (the slow peers take milliseconds a check: fewer, and a prefix of the same). */
const COUNTS = {
  single: slow ? 200 : 2000,
  folders: slow ? 10 : 30,
  bulks: slow ? 1 : 5,
  lists: slow ? 2 : 3,
};

const gc = (): void => {
  for (let i = 0; i < 3; i++) globalThis.gc?.();
};
const rss = (): number => {
  gc();
  return process.memoryUsage().rss;
};

if (warmArg === "warm") await rehearse();

/** Every row once over the 10k workload, on an instance of its own that is closed after (see the header). */
async function rehearse(): Promise<void> {
  const small = buildWorkload(SIZES["10k"]!);
  const rehearsal = await openPeer(name);
  await rehearsal.load(small.tuples);
  for (let pass = 0; pass < 2; pass++) {
    for (const q of questions(small, COUNTS.single, 91)) {
      await rehearsal.check(q);
      await new Promise(setImmediate);
    }
    for (const [i, q] of questions(small, COUNTS.folders, 92).entries()) {
      const leaf = small.leaves[(i * 37 + 11) % small.leaves.length]!;
      await rehearsal.checkBulk(folderFiles(small, leaf).map((object) => ({ user: q.user, object })));
    }
    for (let i = 0; i < COUNTS.bulks; i++) await rehearsal.checkBulk(questions(small, 1000, 93 + i));
    for (const user of listingUsers().slice(0, COUNTS.lists)) await rehearsal.listFiles?.(user);
  }
  await rehearsal.close();
}

const workload = buildWorkload(filesPerFolder);
// Start-up (createEngine, SpiceDB's start) is timed on its own: whatever a peer does once before its first write
// (compiling kernels, warming code) shows here, not hidden between the rows.
const openStarted = performance.now();
const peer = await openPeer(name);
const openMs = performance.now() - openStarted;
// One histogram for the load and a fresh one for the first checks: a histogram disabled and enabled again records
// the whole gap in between as one delay at its first tick, and the gap here is the bench's own forced GCs in rss().
const loadStall = monitorEventLoopDelay({ resolution: 5 });
const checkStall = monitorEventLoopDelay({ resolution: 5 });

async function timed<T>(fn: () => T | Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

const rssBefore = rss();
loadStall.enable();
const [, loadMs] = await timed(() => peer.load(workload.tuples));
// The forced full GCs of rss() are the bench's, not the peer's: not counted as event-loop delay.
loadStall.disable();
const rssAfterLoad = rss();
checkStall.enable();

// Single checks, first pass: each question once, in order.
const singles = questions(workload, COUNTS.single, 1);
const firstTimes: number[] = [];
const singleAnswers: boolean[] = [];
for (const q of singles) {
  const [answer, ms] = await timed(() => peer.check(q));
  singleAnswers.push(answer);
  firstTimes.push(ms);
  // Back to the event loop between calls (untimed), so the delay histogram sees each call's own task.
  await new Promise(setImmediate);
}
checkStall.disable();
const rssAfterFirst = rss();
const secondTimes: number[] = [];
for (const [i, q] of singles.entries()) {
  const [answer, ms] = await timed(() => peer.check(q));
  if (answer !== singleAnswers[i])
    throw new Error(`${name}: check ${i} changed its answer on the second pass`);
  secondTimes.push(ms);
}

// A folder's listing filtered by checkBulk of its files, for a random user each.
const folderUsers = questions(workload, COUNTS.folders, 2);
const folderBulks: Question[][] = folderUsers.map((q, i) => {
  const leaf = workload.leaves[(i * 37 + 11) % workload.leaves.length]!;
  return folderFiles(workload, leaf).map((object) => ({ user: q.user, object }));
});
const bulkRow = async (bulks: Question[][]) => {
  const first: number[] = [];
  const second: number[] = [];
  const answers: boolean[][] = [];
  for (const qs of bulks) {
    const [a, ms] = await timed(() => peer.checkBulk(qs));
    answers.push(a);
    first.push(ms);
  }
  for (const [i, qs] of bulks.entries()) {
    const [a, ms] = await timed(() => peer.checkBulk(qs));
    if (a.join() !== answers[i]!.join())
      throw new Error(`${name}: bulk ${i} changed its answers on the second pass`);
    second.push(ms);
  }
  return { first, second, answers: answers.map((a) => a.map((b) => (b ? "1" : "0")).join("")) };
};
const folders = await bulkRow(folderBulks);
const bulks = await bulkRow(
  Array.from({ length: COUNTS.bulks }, (_, i) => questions(workload, 1000, 100 + i)),
);

// listObjects per user: users reaching 1, 2 and 3 level-1 folders (10k–30k results at 100k tuples).
let lists:
  | { first: number[]; second: number[]; answers: { user: string; count: number; digest: string }[] }
  | undefined;
if (peer.listFiles !== undefined) {
  const listUsers = listingUsers().slice(0, COUNTS.lists);
  lists = { first: [], second: [], answers: [] };
  for (const user of listUsers) {
    const [files, ms] = await timed(() => peer.listFiles!(user));
    lists.first.push(ms);
    lists.answers.push({ user, count: files.length, digest: digest(files) });
  }
  for (const [i, user] of listUsers.entries()) {
    const [files, ms] = await timed(() => peer.listFiles!(user));
    if (digest(files) !== lists.answers[i]!.digest)
      throw new Error(`${name}: listing changed on the second pass`);
    lists.second.push(ms);
  }
}

function digest(list: readonly string[]): string {
  // FNV-1a over the joined list: enough to tell two listings apart.
  let h = 0x811c9dc5;
  for (const s of list) {
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 10, 0x01000193);
  }
  return (h >>> 0).toString(16);
}

const result = {
  peer: name,
  filesPerFolder,
  tuples: workload.tuples.length,
  openMs,
  loadMs,
  rssLoad: rssAfterLoad - rssBefore,
  rssFirst: rssAfterFirst - rssBefore,
  maxStallLoadMs: loadStall.max / 1e6,
  maxStallChecksMs: checkStall.max / 1e6,
  single: {
    first: firstTimes,
    second: secondTimes,
    answers: singleAnswers.map((b) => (b ? "1" : "0")).join(""),
  },
  folders,
  bulks,
  lists,
  stats: peer.stats?.(),
};
await peer.close();
writeFileSync(outPath, JSON.stringify(result));
