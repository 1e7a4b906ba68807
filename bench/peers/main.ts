/**
 * The peer benchmark (issue 13): nexus-fast's default engine against a hand-written walker, SpiceDB embedded and
 * casbin on the same workload (bench/peers/workload.ts), each peer in a fresh process, answers cross-checked
 * (any disagreement fails the run), printed as one table with ratios against the walker.
 *
 *   npm run bench -- peers                       # 100k tuples, all four peers
 *   npm run bench -- peers --size 10k            # 10k | 100k | 1m, or a number of files per leaf folder
 *   npm run bench -- peers --size 1m             # 1M: walker and nexus-fast only (the others take too long)
 *   npm run bench -- peers --peers walker,nexus-fast
 *   npm run bench -- peers --warm-process        # each peer's process first runs every row on a 10k instance
 *   npm run bench -- peers --runs 3              # 3 rounds, the peers taking turns; medians of the rounds
 *
 * With --runs N each round runs every peer once, one after another, and each value printed is the median of the
 * rounds; a ratio is the median of the rounds' ratios, each taken between the walker and the peer of one round
 * (the two ran minutes apart at most, under the same load), with the range of the rounds' ratios beside it. On a
 * shared 2-core VM one run's first-pass rows move by a factor of two between runs; the rounds' median is what the
 * README quotes.
 *
 * Timings are per call with performance.now(), not tinybench samples: a first pass must ask each question once.
 * Take `flock /tmp/bench.lock` around it.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PEERS, type PeerName } from "./peers.js";
import { SIZES } from "./workload.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const args = process.argv.slice(2);
const option = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
};
const sizeName = (option("--size") ?? "100k").toLowerCase();
const filesPerFolder = SIZES[sizeName] ?? Number(sizeName);
if (!Number.isInteger(filesPerFolder) || filesPerFolder < 1) {
  throw new Error(`--size must be one of ${Object.keys(SIZES).join(", ")} or a number of files per folder`);
}
const peers = (option("--peers")?.split(",") ??
  (filesPerFolder >= 1000 ? ["walker", "nexus-fast"] : [...PEERS])) as PeerName[];
for (const p of peers) if (!PEERS.includes(p)) throw new Error(`unknown peer ${p} (${PEERS.join(", ")})`);
if (peers[0] !== "walker") peers.unshift("walker");
/** JIT-warm processes (child.ts): each process first runs every row on a separate 10k instance of its peer. */
const warmProcess = args.includes("--warm-process");
const runs = Number(option("--runs") ?? 1);
if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs must be a whole number, at least 1");

type Row = { first: number[]; second: number[]; answers: string[] };
interface Result {
  peer: PeerName;
  tuples: number;
  openMs: number;
  loadMs: number;
  rssLoad: number;
  rssFirst: number;
  maxStallLoadMs: number;
  maxStallChecksMs: number;
  single: { first: number[]; second: number[]; answers: string };
  folders: Row;
  bulks: Row;
  lists?: { first: number[]; second: number[]; answers: { user: string; count: number; digest: string }[] };
  stats?: unknown;
}

/**
 * Two facts of the machine, measured before the rounds, that move every row from one session to the next: the
 * first touch of fresh memory (a 4 KiB page's fault; 9.8-10.2 µs on one session's VM, where a load growing the heap
 * by 40 MB then spends ~100 ms on faults alone) and a fixed loop of integer work (20M multiply-xor steps).
 */
function machineFacts(): { firstTouchUsPerPage: number; loopMs: number } {
  const bytes = 32 * 1024 * 1024;
  let started = performance.now();
  const fresh = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4096) fresh[i] = 1;
  const firstTouchUsPerPage = ((performance.now() - started) * 1000) / (bytes / 4096);
  started = performance.now();
  let h = 0x811c9dc5;
  for (let i = 0; i < 20_000_000; i++) h = Math.imul(h ^ i, 0x01000193);
  const loopMs = performance.now() - started;
  // The loop's result is used, so it cannot be dropped as dead code.
  if (h === fresh.length) console.error("");
  return { firstTouchUsPerPage, loopMs };
}
const machine = machineFacts();
const loadBefore = loadavg();
/** rounds[i][j]: round i's result of peers[j] (the walker first). */
const rounds: Result[][] = [];
const dir = join(tmpdir(), `nexus-peers-${process.pid}`);
mkdirSync(dir, { recursive: true });
try {
  for (let round = 0; round < runs; round++) {
    const results: Result[] = [];
    for (const peer of peers) {
      const out = join(dir, `${peer}.json`);
      console.error(
        `peers: ${peer} at ${filesPerFolder} files per folder${runs > 1 ? ` (round ${round + 1} of ${runs})` : ""}...`,
      );
      const run = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "--expose-gc",
          join(here, "child.ts"),
          peer,
          String(filesPerFolder),
          out,
          ...(warmProcess ? ["warm"] : []),
        ],
        { cwd: root, stdio: ["ignore", "inherit", "inherit"] },
      );
      if (run.status !== 0) throw new Error(`peer ${peer} failed (exit ${run.status})`);
      results.push(JSON.parse(readFileSync(out, "utf8")) as Result);
    }
    crossCheck(results);
    rounds.push(results);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const results = rounds[rounds.length - 1]!;

/** Cross-check: every peer's answers equal the walker's (a slow peer answers a prefix of the same questions). */
function crossCheck(results: readonly Result[]): void {
  const walker = results[0]!;
  for (const r of results.slice(1)) {
    const differ = (what: string, i: number) => {
      throw new Error(`ANSWERS DIFFER: ${r.peer} vs walker on ${what} ${i}`);
    };
    for (let i = 0; i < r.single.answers.length; i++)
      if (r.single.answers[i] !== walker.single.answers[i]) differ("check", i);
    for (const row of ["folders", "bulks"] as const) {
      for (const [i, a] of r[row].answers.entries()) if (a !== walker[row].answers[i]) differ(row, i);
    }
    r.lists?.answers.forEach((a, i) => {
      const w = walker.lists!.answers[i]!;
      if (a.count !== w.count || a.digest !== w.digest)
        differ(`listObjects of ${a.user}: ${a.count} vs ${w.count}`, i);
    });
  }
}
const walker = results[0]!;

// --- The table.
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const p95 = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.95) - 1]!;
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const time = (ms: number): string =>
  ms >= 1000
    ? `${(ms / 1000).toFixed(2)} s`
    : ms >= 1
      ? `${ms.toFixed(ms >= 100 ? 0 : 2)} ms`
      : `${(ms * 1000).toFixed(ms >= 0.01 ? 1 : 2)} µs`;
const mb = (bytes: number): string => `${bytes >= 0 ? "+" : ""}${(bytes / 2 ** 20).toFixed(0)} MB`;
/** walker ÷ peer: above 1 the peer is faster (or smaller) than the walker. */
const ratio = (w: number, p: number): string => {
  if (p === 0) return w === 0 ? "=" : "—"; // both measured nothing (no event-loop delay), or the peer nothing
  const x = w / p;
  return `${x >= 10 ? x.toFixed(0) : x >= 0.1 ? x.toFixed(2) : x.toPrecision(2)}×`;
};

interface Line {
  row: string;
  /** The values the ratio is taken on (one per part), and how a part prints. */
  parts: (r: Result) => number[] | undefined;
  format: (xs: number[], r: Result) => string;
  /** No ratio: a row the walker has nothing to compare with (its start-up is a constructor call). */
  plain?: boolean;
}
const listed = walker.lists!.answers.map((a) => a.count);
const lines: Line[] = [
  {
    row: "start-up before the first write (createEngine; not in the load row)",
    parts: (r) => [r.openMs],
    format: ([x]) => time(x!),
    plain: true,
  },
  {
    row: `load ${walker.tuples.toLocaleString("en")} tuples`,
    parts: (r) => [r.loadMs],
    format: ([x]) => time(x!),
  },
  {
    row: "RSS growth: after the load / after the first checks (B/tuple)",
    parts: (r) => [r.rssLoad, r.rssFirst],
    format: ([a, b], r) => `${mb(a!)} / ${mb(b!)} (${(b! / r.tuples).toFixed(0)} B)`,
  },
  {
    row: "max event-loop delay: during the load / during the first checks",
    parts: (r) => [r.maxStallLoadMs, r.maxStallChecksMs],
    format: (xs) => xs.map(time).join(" / "),
  },
  {
    row: "single check, first pass, median / p95 / mean",
    parts: (r) => [median(r.single.first), p95(r.single.first), mean(r.single.first)],
    format: (xs) => xs.map(time).join(" / "),
  },
  {
    row: "single check, second pass, median",
    parts: (r) => [median(r.single.second)],
    format: ([x]) => time(x!),
  },
  {
    row: `list a folder (checkBulk of its ${results[0]!.folders.answers[0]!.length} files), first / second, median`,
    parts: (r) => [median(r.folders.first), median(r.folders.second)],
    format: (xs) => xs.map(time).join(" / "),
  },
  {
    row: "checkBulk of 1,000, first / second, median",
    parts: (r) => [median(r.bulks.first), median(r.bulks.second)],
    format: (xs) => xs.map(time).join(" / "),
  },
  {
    row: `listObjects (${Math.min(...listed).toLocaleString("en")}–${Math.max(...listed).toLocaleString("en")} results), first / second, median per user`,
    parts: (r) => (r.lists ? [median(r.lists.first), median(r.lists.second)] : undefined),
    format: (xs) => xs.map(time).join(" / "),
  },
];

/** The median over the rounds of each part of `line` for peer `j` (undefined when the peer has no such row). */
const medianParts = (line: Line, j: number): number[] | undefined => {
  const each = rounds.map((rs) => line.parts(rs[j]!));
  if (each.some((p) => p === undefined)) return undefined;
  return each[0]!.map((_, k) => median(each.map((p) => p![k]!)));
};
/** The rounds' ratios of part `k` (walker ÷ peer `j`, each within one round): their median, and their range. */
const roundRatios = (line: Line, j: number, k: number): string => {
  const xs = rounds.map((rs) => {
    const w = line.parts(rs[0]!)![k]!;
    const p = line.parts(rs[j]!)![k]!;
    return p === 0 ? (w === 0 ? 1 : Number.POSITIVE_INFINITY) : w / p;
  });
  const m = median(xs);
  const shown = ratio(m, 1);
  return runs > 1 ? `${shown} [${ratio(Math.min(...xs), 1)}–${ratio(Math.max(...xs), 1)}]` : shown;
};
const header = `| row | ${results.map((r) => r.peer).join(" | ")} |`;
const table = [header, `|---|${results.map(() => "---|").join("")}`];
for (const line of lines) {
  const cells = results.map((r, j) => {
    const parts = medianParts(line, j);
    if (parts === undefined) return "—";
    const text = line.format(parts, r);
    if (j === 0 || line.plain) return text;
    if (runs === 1) {
      const w = line.parts(walker)!;
      return `${text} (${parts.map((p, k) => ratio(w[k]!, p)).join(" / ")})`;
    }
    return `${text} (${parts.map((_, k) => roundRatios(line, j, k)).join(" / ")})`;
  });
  table.push(`| ${line.row} | ${cells.join(" | ")} |`);
}
const loadAfter = loadavg();
console.log(
  `\n## peers: ${walker.tuples.toLocaleString("en")} tuples (${filesPerFolder} files per leaf folder)` +
    (warmProcess ? ", JIT-warm processes (every row first run on a separate 10k instance)" : "") +
    (runs > 1 ? `, median of ${runs} rounds (ratios: the median of the rounds' ratios [their range])` : ""),
);
console.log(table.join("\n"));
console.log(
  `\nratios are walker ÷ peer (above 1×: faster or smaller than the walker); every peer's answers equal the walker's` +
    ` (${walker.single.answers.length} checks, ${walker.folders.answers.length} folders, ${walker.bulks.answers.length} bulks of 1,000, ${listed.length} listings; slow peers a prefix).` +
    `\nload average before / after: ${loadBefore.map((x) => x.toFixed(2)).join(" ")} / ${loadAfter.map((x) => x.toFixed(2)).join(" ")}; node ${process.version}` +
    `; machine: first touch of memory ${machine.firstTouchUsPerPage.toFixed(2)} µs a 4 KiB page, integer loop ${machine.loopMs.toFixed(1)} ms`,
);
const nexus = results.find((r) => r.peer === "nexus-fast");
if (nexus?.stats !== undefined)
  console.log(`nexus-fast stats: ${JSON.stringify((nexus.stats as { wasm?: unknown }).wasm)}`);

const out = join(root, "bench", "results");
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, `peers-${sizeName}${warmProcess ? "-warm" : ""}.json`),
  `${JSON.stringify({ date: new Date().toISOString(), loadBefore, loadAfter, machine, runs, table, results: rounds.flat().map(({ single, folders, bulks, lists, ...r }) => ({ ...r, single: { first: single.first, second: single.second }, folders: { first: folders.first, second: folders.second }, bulks: { first: bulks.first, second: bulks.second }, lists: lists && { first: lists.first, second: lists.second, answers: lists.answers } })) }, null, 2)}\n`,
);
