/**
 * The shared tinybench harness. A suite lists its cases and which case is compared with which peer; every case
 * runs in the same process and run, and the printed table gives ops/s per operation, p50 per call and the ratio
 * against the peer. Results are written to bench/results/<suite>.json (ignored by git).
 *
 * Throughput is the median of the samples (ops/s per operation). `opsPerCall` lets a case do a batch of N operations per timed call, so that the timer's own cost (≈30-100 ns)
 * does not swamp operations that take nanoseconds: ops/s is then per operation.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Bench } from "tinybench";

export interface BenchCase {
  name: string;
  fn: () => unknown;
  /** Operations performed by one call of fn (default 1). */
  opsPerCall?: number;
}

export interface Comparison {
  /** The case being measured. */
  subject: string;
  /** The baseline or peer it is compared with, measured in the same run. */
  peer: string;
  /** The goal, as a minimum ratio subject/peer (printed as met or not, never enforced). */
  goalRatio?: number;
}

export interface Goal {
  case: string;
  /** Minimum operations per second. */
  minOpsPerSec?: number;
  /** Maximum p50 latency per call, in microseconds. */
  maxP50Micros?: number;
}

export interface SuiteOptions {
  /** Milliseconds each case is sampled (default 500; BENCH_TIME overrides for quick runs). */
  time?: number;
  /** Minimum timed calls per case (tinybench's default is 64): lower it for peers that take seconds a call. */
  iterations?: number;
  comparisons?: Comparison[];
  goals?: Goal[];
  /** Extra facts to print and save (memory per entry, hit rates, ...). */
  facts?: Record<string, string | number>;
}

export interface CaseResult {
  name: string;
  opsPerSec: number;
  p50Micros: number;
  p99Micros: number;
  samples: number;
}

export async function runSuite(suite: string, cases: BenchCase[], options: SuiteOptions = {}) {
  const time = Number(process.env.BENCH_TIME ?? options.time ?? 500);
  const bench = new Bench({
    name: suite,
    time,
    warmup: true,
    warmupTime: Math.min(200, time / 2),
    ...(options.iterations === undefined
      ? {}
      : { iterations: options.iterations, warmupIterations: Math.min(16, options.iterations) }),
  });
  for (const c of cases) bench.add(c.name, c.fn);
  await bench.run();

  const results: CaseResult[] = [];
  for (const task of bench.tasks) {
    const r = task.result;
    const spec = cases.find((c) => c.name === task.name)!;
    if (r.state !== "completed") {
      const error = "error" in r ? String(r.error) : r.state;
      throw new Error(`bench case "${task.name}" did not complete: ${error}`);
    }
    const perCall = spec.opsPerCall ?? 1;
    results.push({
      name: task.name,
      // The median, not the mean: on a shared machine a few preempted samples would dominate the mean.
      opsPerSec: r.throughput.p50 * perCall,
      p50Micros: r.latency.p50 * 1000,
      p99Micros: r.latency.p99 * 1000,
      samples: r.latency.samplesCount,
    });
  }

  const byName = new Map(results.map((r) => [r.name, r]));
  console.log(`\n## ${suite}`);
  console.table(
    results.map((r) => ({
      case: r.name,
      "ops/s": formatRate(r.opsPerSec),
      "p50/call": formatMicros(r.p50Micros),
      "p99/call": formatMicros(r.p99Micros),
    })),
  );
  const comparisons = (options.comparisons ?? []).map((c) => {
    const subject = byName.get(c.subject);
    const peer = byName.get(c.peer);
    if (!subject || !peer) throw new Error(`comparison names an unknown case: ${c.subject} vs ${c.peer}`);
    const ratio = subject.opsPerSec / peer.opsPerSec;
    const verdict =
      c.goalRatio === undefined
        ? ""
        : ratio >= c.goalRatio
          ? ` (goal ≥${c.goalRatio}×: met)`
          : ` (goal ≥${c.goalRatio}×: NOT met)`;
    console.log(`  ${c.subject} vs ${c.peer}: ${ratio.toFixed(ratio < 10 ? 2 : 0)}×${verdict}`);
    return { ...c, ratio };
  });
  const goals = (options.goals ?? []).map((g) => {
    const r = byName.get(g.case);
    if (!r) throw new Error(`goal names an unknown case: ${g.case}`);
    const met =
      (g.minOpsPerSec === undefined || r.opsPerSec >= g.minOpsPerSec) &&
      (g.maxP50Micros === undefined || r.p50Micros <= g.maxP50Micros);
    const text = [
      g.minOpsPerSec !== undefined ? `≥${formatRate(g.minOpsPerSec)} ops/s` : "",
      g.maxP50Micros !== undefined ? `p50 ≤${formatMicros(g.maxP50Micros)}` : "",
    ].filter(Boolean);
    console.log(`  goal ${g.case} ${text.join(", ")}: ${met ? "met" : "NOT met"}`);
    return { ...g, met };
  });
  for (const [k, v] of Object.entries(options.facts ?? {})) console.log(`  ${k}: ${v}`);

  const out = {
    suite,
    date: new Date().toISOString(),
    node: process.version,
    time,
    results,
    comparisons,
    goals,
    facts: options.facts ?? {},
  };
  const dir = join(dirname(fileURLToPath(import.meta.url)), "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${suite}.json`), `${JSON.stringify(out, null, 2)}\n`);
  return out;
}

export function formatRate(opsPerSec: number): string {
  if (opsPerSec >= 1e9) return `${(opsPerSec / 1e9).toFixed(2)}G`;
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)}M`;
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(1)}K`;
  return opsPerSec.toFixed(1);
}

export function formatMicros(micros: number): string {
  if (micros >= 1000) return `${(micros / 1000).toFixed(2)} ms`;
  if (micros >= 1) return `${micros.toFixed(2)} µs`;
  return `${(micros * 1000).toFixed(0)} ns`;
}
