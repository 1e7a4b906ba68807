/**
 * How the demo measures, so its numbers are the ones a user's app would see: a whole call through the public engine
 * API, timed with performance.now() around the awaited promise (nothing warmed or built outside the call), and,
 * from the difference of engine.stats() around it, which layer gave the answers (so a slow number says why).
 */
import type { Engine, EngineStats } from "../../engine/engine.js";
import { formatCount } from "../table.js";

/** Runs `fn` once, returning its value and its wall time in milliseconds. */
export async function timed<T>(fn: () => T | Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

/** A duration to three significant digits, as bench/peers/main.ts prints the peer table (2.03 µs, 12.54 ms). */
export function formatDuration(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 1) return `${ms.toFixed(ms >= 100 ? 0 : 2)} ms`;
  return `${(ms * 1000).toFixed(ms >= 0.01 ? 1 : 2)} µs`;
}

/** Checks per second, compact: 1.1M checks/s, 5.8K checks/s. */
export function formatCheckRate(checks: number, ms: number): string {
  const perSecond = (checks / ms) * 1000;
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(1)}M checks/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}K checks/s`;
  return `${perSecond.toFixed(0)} checks/s`;
}

/** "checkBulk of 1,000: 0.90 ms (1.1M checks/s)". */
export function bulkLine(what: string, checks: number, ms: number): string {
  return `${what} of ${formatCount(checks)}: ${formatDuration(ms)} (${formatCheckRate(checks, ms)})`;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
export const p95 = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.95) - 1]!;
export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Who answers, by the chain's layer names (src/pipeline/): what each is called in the demo's lines. */
const LAYER_NAMES: Readonly<Record<string, string>> = {
  "result-cache": "result cache",
  "bloom-negative": "Bloom filter",
  "cross-tenant": "cross-tenant index",
  tiger: "Tiger bitmap",
  "wasm-evaluator": "WASM",
  evaluator: "reference",
};

/** Why the WASM evaluator handed checks to the reference (src/wasm-eval/evaluator.ts, RouteReason). */
const ROUTE_REASONS: Readonly<Record<string, string>> = {
  cross_tenant: "cross-tenant question",
  unsupported: "reads an expiring, conditional or cross-tenant tuple",
  stale_revision: "revision older than the WASM graph",
  unknown: "type or relation unknown to the kernel",
};

/** What answered the calls between two engine.stats(): answers per layer, and why any went to the reference. */
export interface Answerers {
  /** Answers per layer name (LAYER_NAMES), in the chain's order; empty when no layer counted (a reverse expansion). */
  readonly byLayer: ReadonlyMap<string, number>;
  /** Checks the WASM evaluator routed to the reference, by reason (ROUTE_REASONS). */
  readonly routed: ReadonlyMap<string, number>;
  /**
   * Changes of earlier writes the change feed delivered to the layers during the call: a read right after writes
   * waits for the caches to take them (so its answer is exact), and its time includes that.
   */
  readonly caughtUp: number;
}

export function answerers(before: EngineStats, after: EngineStats): Answerers {
  const byLayer = new Map<string, number>();
  const earlier = new Map((before.chain?.layers ?? []).map((l) => [l.layer, l]));
  for (const layer of after.chain?.layers ?? []) {
    const name = LAYER_NAMES[layer.layer];
    if (name === undefined) continue;
    const was = earlier.get(layer.layer);
    // The reference evaluator is the chain's last layer: what reaches it is evaluated there, not a hit.
    const n =
      layer.layer === "evaluator"
        ? layer.evaluations - (was?.evaluations ?? 0)
        : layer.hits - (was?.hits ?? 0);
    if (n > 0) byLayer.set(name, n);
  }
  const routed = new Map<string, number>();
  for (const [reason, n] of Object.entries(after.wasm?.routed ?? {})) {
    const d = n - ((before.wasm?.routed as Record<string, number> | undefined)?.[reason] ?? 0);
    if (d > 0) routed.set(ROUTE_REASONS[reason] ?? reason, d);
  }
  const caughtUp = (after.chain?.feed?.changes ?? 0) - (before.chain?.feed?.changes ?? 0);
  return { byLayer, routed, caughtUp };
}

/** Runs `fn` as `timed` does, and says which layers answered it (engine.stats() is read outside the timing). */
export async function measured<T>(engine: Engine, fn: () => Promise<T>): Promise<[T, number, Answerers]> {
  const before = engine.stats();
  const [value, ms] = await timed(fn);
  return [value, ms, answerers(before, engine.stats())];
}

/** One answer's source, short: "WASM", "result cache", "reference (cross-tenant question)". */
export function describeOne(a: Answerers): string {
  const [first] = a.byLayer.keys();
  const by =
    first === undefined
      ? "reverse expansion"
      : first === "reference" && a.routed.size > 0
        ? `reference (${[...a.routed.keys()].join("; ")})`
        : first;
  return `${by}${caughtUpNote(a)}`;
}

/** Many answers' sources: "answered by 872 WASM, 128 reference (sent to the reference …, 128: reads an expiring …)". */
export function describeMany(a: Answerers): string {
  if (a.byLayer.size === 0) return `reverse expansion, no check${caughtUpNote(a)}`;
  const parts = [...a.byLayer].map(([name, n]) => `${formatCount(n)} ${name}`);
  const reasons = [...a.routed].map(([why, n]) => `${formatCount(n)}: ${why}`);
  return `answered by ${parts.join(", ")}${reasons.length > 0 ? ` (sent to the reference by the WASM evaluator, ${reasons.join("; ")})` : ""}${caughtUpNote(a)}`;
}

/** "; first, the caches took 5,372 changes of the writes before it" when the call waited for them. */
function caughtUpNote(a: Answerers): string {
  return a.caughtUp > 0
    ? `; first, the caches took ${formatCount(a.caughtUp)} changes of the writes before it`
    : "";
}
