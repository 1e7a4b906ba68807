// NexusFS on whole paths, each against a peer in the same run:
// - read 4 KiB with its permission check vs fs.readFile + a hand-written check (an app's own ACL: a Map of
//   path -> owner/viewers walked up the parents, what one writes without a permission engine);
// - listing a 5,000-entry directory filtered per user (Nexus's 6.9 s filter_list case; goal ≤ 5 ms) vs readdir
//   + the hand-written check per entry: for a viewer of everything (through the parent) and of half (direct
//   grants);
// - write throughput, synced (4 KiB new versions) vs fs.writeFile + fsync;
// - the caching client vs the uncached filesystem on a replayed agent trace (hit rates, latency per op).
// Set-up writes the 5,000 files through a filesystem opened with fsync off (it is not what is measured).
// Usage: BENCH_TIME=200 node --import tsx --expose-gc bench/fs.bench.ts
import { mkdtempSync, rmSync } from "node:fs";
import { mkdir, open, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FsClient } from "../src/fs/client.js";
import { openFileSystem } from "../src/fs/open.js";
import { runSuite } from "./harness.js";
import { AGENTS, agentTrace, contentOf, setUpTrace } from "./workloads/agent-trace.js";

const root = mkdtempSync(join(tmpdir(), "nexus-fs-bench-"));
const N = 5000;
const SIZE = 4096;
const ALICE = { user: "user:alice", tenant: "acme" };
const BOB = { user: "user:bob", tenant: "acme" };
const EVE = { user: "user:eve", tenant: "acme" };

// ---- NexusFS: /big holds 5,000 files; bob views all of it (one grant on /big), eve the even half (2,500 grants)
let started = performance.now();
const fs = await openFileSystem({ dir: join(root, "nexus"), fsync: false });
await fs.initTenant({ tenant: "acme", owners: [ALICE.user] });
const alice = fs.as(ALICE);
await alice.mkdir("/big");
const body = (i: number) => contentOf(i, 0, SIZE);
for (let i = 0; i < N; i++) await alice.write(`/big/f${i}.txt`, body(i));
await alice.share("/big", { user: BOB.user, relation: "viewer" });
for (let i = 0; i < N; i += 2) await alice.share(`/big/f${i}.txt`, { user: EVE.user, relation: "viewer" });
console.log(
  `set-up: ${N} files and ${N / 2 + 1} grants in ${((performance.now() - started) / 1000).toFixed(1)} s`,
);

// ---- the peer: the same files on the local filesystem, and a hand-written ACL
const plain = join(root, "plain", "big");
await mkdir(plain, { recursive: true });
for (let i = 0; i < N; i++) await writeFile(join(plain, `f${i}.txt`), body(i));
interface Acl {
  owner: string;
  viewers: Set<string>;
}
const acl = new Map<string, Acl>([["/", { owner: ALICE.user, viewers: new Set() }]]);
acl.set("/big", { owner: ALICE.user, viewers: new Set([BOB.user]) });
for (let i = 0; i < N; i++) {
  acl.set(`/big/f${i}.txt`, { owner: ALICE.user, viewers: new Set(i % 2 === 0 ? [EVE.user] : []) });
}
function handCheck(user: string, path: string): boolean {
  for (let p: string | undefined = path; p !== undefined; ) {
    const entry = acl.get(p);
    if (entry !== undefined && (entry.owner === user || entry.viewers.has(user))) return true;
    if (p === "/") break;
    const slash = p.lastIndexOf("/");
    p = slash === 0 ? "/" : p.slice(0, slash);
  }
  return false;
}

// ---- writes: a synced filesystem (the default) and synced plain writes
const synced = await openFileSystem({ dir: join(root, "synced"), engine: fs.engine });
await synced.initTenant({ tenant: "acme", owners: [ALICE.user] });
const writer = synced.as(ALICE);
for (let i = 0; i < 64; i++) await writer.write(`/w${i}`, body(i));
await mkdir(join(root, "plain-w"), { recursive: true });

// ---- the agent trace: cached clients vs the filesystem itself
const traceFs = await openFileSystem({ dir: join(root, "trace"), engine: fs.engine, fsync: false });
const trace = agentTrace({ dirs: 20, filesPerDir: 25, ops: 20_000 });
await setUpTrace(traceFs, trace, SIZE);
const clients = AGENTS.map((a) => new FsClient(traceFs, a));
const writes = new Map<string, number>();
async function replay(i: number, cached: boolean): Promise<void> {
  const op = trace.ops[i % trace.ops.length]!;
  const agent = AGENTS[op.agent]!;
  const client = clients[op.agent]!;
  try {
    if (op.op === "write") {
      const n = (writes.get(op.path) ?? 0) + 1;
      writes.set(op.path, n);
      const data = contentOf(trace.files.indexOf(op.path), n, SIZE);
      await (cached ? client.write(op.path, data) : traceFs.write(agent, op.path, data));
    } else if (op.op === "read") await (cached ? client.read(op.path) : traceFs.read(agent, op.path));
    else if (op.op === "stat") await (cached ? client.stat(op.path) : traceFs.stat(agent, op.path));
    else await (cached ? client.list(op.path) : traceFs.list(agent, op.path));
  } catch {
    // Refusals are answers too (agent 1 may not write the odd directories).
  }
}
// Per-op latency of reads over one pass of the trace, each way.
const latency = { cached: [] as number[], uncached: [] as number[] };
for (const cached of [false, true]) {
  for (let i = 0; i < 5000; i++) {
    const t = performance.now();
    await replay(i, cached);
    if (trace.ops[i]!.op === "read") latency[cached ? "cached" : "uncached"].push(performance.now() - t);
  }
}
const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)]!;

let r = 0;
let w = 0;
let t = 0;
let tc = 0;
const pick = () => {
  r = (r * 1103515245 + 12345) >>> 0;
  return `f${r % N}.txt`;
};
started = performance.now();
await runSuite(
  "fs",
  [
    { name: "NexusFS read 4 KiB (checked, bob)", fn: () => fs.read(BOB, `/big/${pick()}`) },
    {
      name: "fs.readFile 4 KiB + hand-written check",
      fn: async () => {
        const name = pick();
        if (!handCheck(BOB.user, `/big/${name}`)) throw new Error("denied");
        return readFile(join(plain, name));
      },
    },
    { name: "NexusFS list 5,000 filtered (bob: all)", fn: () => fs.list(BOB, "/big") },
    { name: "NexusFS list 5,000 filtered (eve: half)", fn: () => fs.list(EVE, "/big") },
    {
      name: "readdir 5,000 + hand-written check (eve)",
      fn: async () => (await readdir(plain)).filter((name) => handCheck(EVE.user, `/big/${name}`)),
    },
    { name: "NexusFS write 4 KiB (synced)", fn: () => writer.write(`/w${w++ % 64}`, body(w)) },
    {
      name: "fs.writeFile 4 KiB + fsync",
      fn: async () => {
        const fh = await open(join(root, "plain-w", `w${w++ % 64}`), "w");
        await fh.write(body(w));
        await fh.sync();
        await fh.close();
      },
    },
    { name: "trace op (caching client)", fn: () => replay(tc++, true) },
    { name: "trace op (no client cache)", fn: () => replay(t++, false) },
  ],
  {
    comparisons: [
      { subject: "NexusFS read 4 KiB (checked, bob)", peer: "fs.readFile 4 KiB + hand-written check" },
      {
        subject: "NexusFS list 5,000 filtered (eve: half)",
        peer: "readdir 5,000 + hand-written check (eve)",
      },
      { subject: "NexusFS write 4 KiB (synced)", peer: "fs.writeFile 4 KiB + fsync" },
      { subject: "trace op (caching client)", peer: "trace op (no client cache)" },
    ],
    goals: [
      { case: "NexusFS list 5,000 filtered (bob: all)", maxP50Micros: 5000 },
      { case: "NexusFS list 5,000 filtered (eve: half)", maxP50Micros: 5000 },
    ],
    facts: (() => {
      const s = clients.map((c) => c.stats());
      const sum = (f: (x: (typeof s)[0]) => number) => s.reduce((n, x) => n + f(x), 0);
      const rate = (h: number, m: number) => `${((h / Math.max(1, h + m)) * 100).toFixed(1)}%`;
      return {
        "client read hit rate (stat+content from cache)": rate(
          sum((x) => x.read.hits),
          sum((x) => x.read.misses),
        ),
        "client stat hit rate": rate(
          sum((x) => x.stat.hits),
          sum((x) => x.stat.misses),
        ),
        "client listing hit rate": rate(
          sum((x) => x.list.hits),
          sum((x) => x.list.misses),
        ),
        "client content hit rate": rate(
          sum((x) => x.content.hits),
          sum((x) => x.content.misses),
        ),
        "client invalidations (by events)": sum((x) => x.invalidations),
        "trace read p50 / p99, uncached (ms)": `${pct(latency.uncached, 0.5).toFixed(3)} / ${pct(latency.uncached, 0.99).toFixed(3)}`,
        "trace read p50 / p99, caching client (ms)": `${pct(latency.cached, 0.5).toFixed(3)} / ${pct(latency.cached, 0.99).toFixed(3)}`,
      };
    })(),
  },
);
console.log(`suite time: ${((performance.now() - started) / 1000).toFixed(1)} s`);
for (const c of clients) await c.close();
await traceFs.close();
await synced.close();
await fs.close();
rmSync(root, { recursive: true, force: true });
