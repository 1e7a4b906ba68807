// Crash tests with real processes: a child moves an object between tiers and is killed (SIGKILL) at each step
// of the move, or at random moments of an endless sequence of moves. After each kill the bytes must be readable
// from at least one tier as the child left them (before any recovery), and reopening the store must finish or
// undo the move and leave the object in exactly one tier.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FsBlobStore } from "../../src/blobs/tiered/blob-store.js";
import { ErasureCodedTier } from "../../src/blobs/tiered/erasure-coded-tier.js";
import type { MoveStep, Tier } from "../../src/blobs/tiered/options.js";
import { ShardCodec } from "../../src/blobs/tiered/shard-codec.js";
import { ready } from "../../src/wasm/loader.js";
import {
  type Layout,
  makeLayout,
  objectBytes,
  openHot,
  openLayout,
  removeLayout,
  sameBytes,
} from "./tiered-fixtures.js";

const CHILD = fileURLToPath(new URL("./tiered-crash-child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SIZE = 200_003;

interface Scenario {
  from: Tier;
  to: Tier;
  killAt: MoveStep;
  shardCount?: number;
}

const scenarios: Scenario[] = [];
for (const [from, to] of [
  ["hot", "warm"],
  ["warm", "cold"],
  ["cold", "hot"],
  ["warm", "hot"],
  ["hot", "cold"],
] as const) {
  for (const killAt of ["begin", "written", "source-removed"] as const) scenarios.push({ from, to, killAt });
  if (to === "warm") {
    scenarios.push({ from, to, killAt: "shard-written", shardCount: 1 });
    scenarios.push({ from, to, killAt: "shard-written", shardCount: 10 });
  }
}

const codec = new ShardCodec();
beforeAll(async () => {
  await ready();
});
afterAll(() => codec.close());

/** Puts the object and moves it to `tier` in this process, then closes the store. */
async function prepare(layout: Layout, bytes: Uint8Array, tier: Tier): Promise<string> {
  const store = await openLayout(layout);
  const { key } = await store.put(bytes);
  if (tier !== "hot") await store.moveTo(key, tier);
  await store.close();
  return key;
}

function runChild(args: object): {
  child: ChildProcess;
  exit: Promise<{ signal: string | null; stdout: string }>;
} {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, JSON.stringify(args)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => {
    stdout += d;
  });
  child.stderr!.on("data", (d) => {
    stderr += d;
  });
  const exit = new Promise<{ signal: string | null; stdout: string }>((resolve) => {
    child.on("exit", (code, signal) => {
      if (signal === null && code !== 0) console.error(`child exited ${code}: ${stderr}`);
      resolve({ signal, stdout });
    });
  });
  return { child, exit };
}

/** Which tiers can supply the exact bytes right now, read straight from each tier (no recovery). */
async function tiersWithBytes(layout: Layout, key: string, bytes: Uint8Array): Promise<Tier[]> {
  const found: Tier[] = [];
  const hot = await openHot(layout.hotDir);
  try {
    if (sameBytes(await hot.get(key), bytes)) found.push("hot");
  } catch {}
  await hot.close();
  try {
    const warm = new ErasureCodedTier({ dirs: layout.warmDirs }, codec);
    if (sameBytes((await warm.read(key)).bytes, bytes)) found.push("warm");
  } catch {}
  try {
    if (sameBytes(await new FsBlobStore({ dir: layout.coldDir }).get(key), bytes)) found.push("cold");
  } catch {}
  return found;
}

/** Reopens (recovering), checks the bytes and that exactly one tier holds the object. */
async function recoverAndCheck(
  layout: Layout,
  key: string,
  bytes: Uint8Array,
  allowed: Tier[],
): Promise<Tier> {
  const store = await openLayout(layout);
  try {
    expect(store.recovery.unreadable).toEqual([]);
    expect(store.tracked(key)?.pending).toBeUndefined();
    expect(sameBytes(await store.get(key), bytes)).toBe(true);
    const tier = store.tracked(key)!.tier;
    expect(allowed).toContain(tier);
    const holders = await tiersWithBytesQuick(store, layout, key);
    expect(holders).toEqual([tier]);
    return tier;
  } finally {
    await store.close();
  }
}

/** Tiers holding anything of the object (any shard counts for warm), through the open store's tiers. */
async function tiersWithBytesQuick(
  store: Awaited<ReturnType<typeof openLayout>>,
  layout: Layout,
  key: string,
): Promise<Tier[]> {
  const holders: Tier[] = [];
  if ((await store.locate(key)) === "hot") holders.push("hot");
  if (await store.warm.hasAny(key)) holders.push("warm");
  if (await new FsBlobStore({ dir: layout.coldDir }).has(key)) holders.push("cold");
  return holders;
}

/** Runs tasks with at most `limit` at once (children are processes: the machine has 2 cores). */
async function limited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = items.slice();
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (queue.length > 0) await fn(queue.shift()!);
    }),
  );
}

describe("tiered store crash safety (real child processes, SIGKILL)", () => {
  it(`survives a kill at every step of every move (${scenarios.length} kills)`, async () => {
    const failures: string[] = [];
    await limited(scenarios, 3, async (s) => {
      const name = `${s.from}->${s.to} killed at ${s.killAt}${s.shardCount ? ` #${s.shardCount}` : ""}`;
      const layout = makeLayout();
      try {
        const bytes = objectBytes(SIZE, scenarios.indexOf(s) + 1);
        const key = await prepare(layout, bytes, s.from);
        const { exit } = runChild({
          root: layout.root,
          key,
          action: "move",
          to: s.to,
          killAt: s.killAt,
          shardCount: s.shardCount,
        });
        const { signal } = await exit;
        if (signal !== "SIGKILL") throw new Error(`child was not killed (signal ${signal})`);
        const readable = await tiersWithBytes(layout, key, bytes);
        if (readable.length === 0) throw new Error("no tier has the bytes after the kill");
        const tier = await recoverAndCheck(layout, key, bytes, [s.from, s.to]);
        // Past "written" the destination is whole: recovery must complete the move, not undo it.
        if (s.killAt === "written" || s.killAt === "source-removed") expect(tier).toBe(s.to);
        if (s.killAt === "begin") expect(tier).toBe(s.from);
      } catch (error) {
        failures.push(`${name}: ${(error as Error).message}`);
      } finally {
        await removeLayout(layout);
      }
    });
    expect(failures).toEqual([]);
  });

  it("survives kills at random moments of endless moves", async () => {
    const layout = makeLayout();
    try {
      const bytes = objectBytes(SIZE, 99);
      const key = await prepare(layout, bytes, "hot");
      for (let round = 0; round < 4; round++) {
        const { child, exit } = runChild({ root: layout.root, key, action: "cycle" });
        // Wait for the first finished move (the child is up and moving), then kill at a random moment.
        await new Promise<void>((resolve) => {
          const onData = (d: Buffer) => {
            if (String(d).includes("moved")) {
              child.stdout!.off("data", onData);
              resolve();
            }
          };
          child.stdout!.on("data", onData);
          child.on("exit", () => resolve());
        });
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 60));
        child.kill("SIGKILL");
        const { signal, stdout } = await exit;
        expect(signal).toBe("SIGKILL");
        expect(stdout).toContain("moved");
        expect((await tiersWithBytes(layout, key, bytes)).length).toBeGreaterThan(0);
        await recoverAndCheck(layout, key, bytes, ["hot", "warm", "cold"]);
      }
    } finally {
      await removeLayout(layout);
    }
  });
});
