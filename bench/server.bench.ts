/**
 * `nexus-fast serve` under load: autocannon against check, batch-check (50 checks a request, as the SDK sends them)
 * and list-objects at concurrency 1, 16 and 64, over the filesystem workload grown to ~100k tuples (99,485: six
 * folder levels, ten files a leaf folder) in the OpenFGA language; beside it, the same questions asked of an engine
 * in this process (tinybench), so the HTTP overhead is visible.
 *
 * The server runs in its own process (one Node thread: "one core"), started from the sources by this file with
 * `--serve`; autocannon drives it from this process. Questions cycle through the workload's 1,000 sampled ones.
 *
 *   node --import tsx bench/server.bench.ts        (BENCH_DURATION=seconds per autocannon run, default 3)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { createEngine } from "../src/engine/engine.js";
import { loadOpenFgaDsl } from "../src/model/dsl.js";
import { openFgaDslToJson } from "../src/model/openfga.js";
import { startServer } from "../src/server/index.js";
import { runSuite } from "./harness.js";
import { buildFilesystemWorkload } from "./workloads/filesystem.js";

// OpenFGA DSL below is compiled synchronously; its parser loads on demand (src/model/dsl.ts).
await loadOpenFgaDsl();

/** The Nexus preset (bench/workloads/filesystem.ts) in OpenFGA's language, for the subjects the workload writes. */
const MODEL = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
    define admin: [user, group#member]
    define viewer: admin or member
    define read: viewer or member or admin
    define write: admin
    define manage: admin
type file
  relations
    define parent: [file]
    define direct_owner: [user, group]
    define direct_editor: [user, group]
    define direct_viewer: [user, group]
    define shared_viewer: [user, group#member]
    define shared_editor: [user, group#member]
    define shared_owner: [user, group#member]
    define owner: direct_owner or owner from parent or member from direct_owner or shared_owner
    define editor: direct_editor or editor from parent or member from direct_editor or shared_editor or shared_owner
    define viewer: direct_viewer or viewer from parent or member from direct_viewer or shared_viewer or shared_editor or shared_owner
    define read: editor or viewer or owner
    define write: editor or owner
    define execute: owner`;

const LIMITS = { maxTuplesPerWrite: 1000, maxListObjects: 200_000, maxChecksPerBatch: 10_000 };

if (process.argv[2] === "--serve") {
  const server = await startServer({ port: 0, limits: LIMITS });
  process.stdout.write(`${server.url}\n`);
  process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
} else {
  await main();
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_DURATION ?? 3);
  const workload = buildFilesystemWorkload({
    folderDepth: Number(process.env.BENCH_FOLDER_DEPTH ?? 6),
    filesPerLeafFolder: 10,
    questions: 1000,
  });
  const questions = workload.questions;
  console.log(`workload: ${workload.tuples.length} tuples, ${questions.length} questions`);

  // The in-process engine, loaded first. list-objects asks which files the deepest user may write (about 2,900:
  // editor grants on third-level folders; reading reaches half the tree, ~49,000 files).
  const engine = await createEngine({ model: MODEL });
  for (let i = 0; i < workload.tuples.length; i += 1000) {
    await engine.write({ writes: workload.tuples.slice(i, i + 1000) });
  }
  const listUser = workload.deepUser;
  const LIST_RELATION = "write";

  // --- the server, in its own process ---
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(import.meta.url), "--serve"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((resolve) => {
    child.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()));
  });
  const post = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const response = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const json = (await response.json()) as Record<string, unknown>;
    if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
  const storeId = (await post("/stores", { name: "bench" })).id as string;
  const modelId = (await post(`/stores/${storeId}/authorization-models`, openFgaDslToJson(MODEL)))
    .authorization_model_id as string;
  let loadMs = performance.now();
  for (let i = 0; i < workload.tuples.length; i += 1000) {
    await post(`/stores/${storeId}/write`, { writes: { tuple_keys: workload.tuples.slice(i, i + 1000) } });
  }
  loadMs = performance.now() - loadMs;
  const listed = (
    (await post(`/stores/${storeId}/list-objects`, { user: listUser, relation: LIST_RELATION, type: "file" }))
      .objects as string[]
  ).length;

  let next = 0;
  const question = () => questions[next++ % questions.length]!;
  const bodies = {
    check: () =>
      JSON.stringify({
        authorization_model_id: modelId,
        tuple_key: question(),
      }),
    "batch-check 50": () =>
      JSON.stringify({
        authorization_model_id: modelId,
        checks: Array.from({ length: 50 }, (_, i) => ({ tuple_key: question(), correlation_id: `${i}` })),
      }),
    "list-objects": () =>
      JSON.stringify({
        authorization_model_id: modelId,
        user: listUser,
        relation: LIST_RELATION,
        type: "file",
      }),
  } as const;
  const paths = { check: "check", "batch-check 50": "batch-check", "list-objects": "list-objects" } as const;
  const rows: Record<string, string | number>[] = [];
  const http: Record<string, number> = {};
  for (const endpoint of Object.keys(bodies) as (keyof typeof bodies)[]) {
    for (const connections of [1, 16, 64]) {
      const result = await autocannon({
        url: `${url}/stores/${storeId}/${paths[endpoint]}`,
        method: "POST",
        headers: { "content-type": "application/json" },
        connections,
        duration: endpoint === "list-objects" ? Math.max(seconds, 5) : seconds,
        requests: [{ method: "POST", setupRequest: (request) => ({ ...request, body: bodies[endpoint]() }) }],
      });
      const perRequest = endpoint === "batch-check 50" ? 50 : 1;
      rows.push({
        endpoint,
        connections,
        // Listings take seconds: keep a decimal where a run completes only a few requests.
        "requests/s": rate(result.requests.total / (result.duration || 1)),
        "checks/s":
          endpoint === "list-objects"
            ? ""
            : Math.round((result.requests.total / (result.duration || 1)) * perRequest),
        "p50 ms": result.latency.p50,
        "p99 ms": result.latency.p99,
        errors: result.errors + result.non2xx + result.timeouts,
      });
      http[`${endpoint} c${connections} requests/s`] = rate(result.requests.total / (result.duration || 1));
      http[`${endpoint} c${connections} p99 ms`] = result.latency.p99;
    }
  }
  child.kill("SIGTERM");
  console.log(
    `\n## server over HTTP (one server process; ${workload.tuples.length} tuples loaded in ${Math.round(loadMs)} ms; list-objects lists ${listed})`,
  );
  console.table(rows);

  // --- the same questions in this process ---
  let k = 0;
  const batch = () => Array.from({ length: 50 }, () => questions[k++ % questions.length]!);
  await runSuite(
    "server",
    [
      { name: "in-process check", fn: () => engine.check(questions[k++ % questions.length]!) },
      { name: "in-process checkBulk 50", fn: () => engine.checkBulk(batch()), opsPerCall: 50 },
      {
        name: "in-process listObjects",
        fn: () => engine.listObjects({ user: listUser, relation: LIST_RELATION, type: "file" }),
      },
    ],
    {
      // A listing takes seconds: a few timed calls, not tinybench's default 64.
      iterations: 4,
      goals: [{ case: "in-process check", minOpsPerSec: 20_000 }],
      facts: {
        tuples: workload.tuples.length,
        "list-objects results": listed,
        ...http,
        "goal: ≥20K checks/s over HTTP with p99 < 5 ms (check, best concurrency)": goalText(rows),
      },
    },
  );
  await engine.close();
}

function rate(perSecond: number): number {
  return perSecond >= 10 ? Math.round(perSecond) : Math.round(perSecond * 10) / 10;
}

function goalText(rows: Record<string, string | number>[]): string {
  const checks = rows.filter((r) => r.endpoint === "check");
  const best = checks.reduce((a, b) => ((b["requests/s"] as number) > (a["requests/s"] as number) ? b : a));
  const met = (best["requests/s"] as number) >= 20_000 && (best["p99 ms"] as number) < 5;
  return `${best["requests/s"]}/s, p99 ${best["p99 ms"]} ms at ${best.connections} connections: ${met ? "met" : "NOT met"}`;
}
