/**
 * `nexus-fast demo` (what `npm start` runs): builds the demo scenario (demo/scenario.ts) on the
 * Nexus preset model, then asks it questions, lists a directory, runs a bulk check, revokes a grant and lets an
 * expiring one lapse, printing each answer next to what the model must answer and how long it took; then runs the
 * peer benchmark's workload the way the bench does (demo/bench-workload.ts) and the agent filesystem. Exit 1 if any
 * answer is wrong.
 *
 * Every time printed is one whole call through the public engine API at default options, as a user's app would
 * make it (demo/measure.ts): nothing is built or warmed outside the timed call, and each line says which layer
 * answered (engine.stats() around the call), so a slow number shows its path.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEngine } from "../../engine/engine.js";
import { nexusFilesystemModel } from "../../model/preset.js";
import type { TupleKey } from "../../tuples/tuple.js";
import { intOption, parse, stringOption, UsageError } from "../args.js";
import { runBenchWorkload } from "../demo/bench-workload.js";
import { runFilesystemDemo } from "../demo/filesystem.js";
import { bulkLine, describeMany, describeOne, formatDuration, measured, timed } from "../demo/measure.js";
import { buildDemoScenario, type DemoQuestion, type DemoTuple } from "../demo/scenario.js";
import { SIZES } from "../demo/workload.js";
import type { Io } from "../io.js";
import { formatCount, formatMs, formatRate, renderTable } from "../table.js";

/** Large writes go in batches, as a client would send them. */
const WRITE_BATCH = 5_000;

const short = (s: string) => s.replace(/^(user|file|group):/, "");

function tupleKey(t: DemoTuple, tenant: string): TupleKey {
  return {
    user: t.user,
    relation: t.relation,
    object: t.object,
    tenant,
    ...(t.expiresAt !== undefined ? { expiresAt: new Date(t.expiresAt) } : {}),
  };
}

export async function runDemo(args: string[], io: Io): Promise<number> {
  const parsed = parse(args, {
    files: { type: "string" },
    bulk: { type: "string" },
    seed: { type: "string" },
    "expire-ms": { type: "string" },
    "fs-files": { type: "string" },
    data: { type: "string" },
    "bench-size": { type: "string" },
  });
  const files = intOption(parsed, "files", 5000, 16);
  const bulk = intOption(parsed, "bulk", 1000);
  const seed = intOption(parsed, "seed", 7, 0);
  const expireMs = intOption(parsed, "expire-ms", 3000, 0);
  // The filesystem part writes as many files as the permission part has, up to 1,000 (each write is synced).
  const fsFiles = intOption(parsed, "fs-files", Math.min(1000, files), 2);
  const dataDir = stringOption(parsed, "data");
  // The bench section's size: a name of bench/peers (10k, 100k, 1m), files per leaf folder, or 0 to leave it out.
  // 100k is the size of the README's peer table, so its rows compare line by line; the section takes about 5 s
  // on the 2-core machine (10k: about 3 s).
  const benchSize = (stringOption(parsed, "bench-size") ?? "100k").toLowerCase();
  const benchFiles = SIZES[benchSize] ?? Number(benchSize);
  if (!Number.isInteger(benchFiles) || benchFiles < 0) {
    throw new UsageError(
      `--bench-size must be one of ${Object.keys(SIZES).join(", ")}, a number of files per folder, or 0`,
    );
  }

  const scenario = buildDemoScenario({ files, seed, expiresAt: Date.now() + expireMs });
  const engine = await createEngine({ model: nexusFilesystemModel, format: "nexus" });
  let wrong = 0;
  let fsChecks = 0;
  try {
    io.out("nexus-fast demo: a multi-tenant agent filesystem on the Nexus preset model");
    io.out("");

    // --- The first check in a process pays for V8 compiling the WASM kernel's code (lazily, on first call) and
    // warming the JS paths: shown on its own, on a one-tuple engine, before the scenario's writes (so no idle time
    // falls between those writes and #1: #1 is the first check right after them, as in an app that loads, then asks).
    const warmMs = await firstCheckInProcess();
    io.out(
      `First check in this process: ${formatDuration(warmMs)} on a one-tuple engine\n` +
        indent(
          "(V8 compiles the WASM kernel's and the check path's code on first call: no later check pays it)",
        ),
    );

    // --- Build
    let token = "";
    let tupleCount = 0;
    let writes = 0;
    let expiresAt = 0;
    const [, writeMs] = await timed(async () => {
      for (const tenant of scenario.tenants) {
        for (let i = 0; i < tenant.tuples.length; i += WRITE_BATCH) {
          const batch = tenant.tuples.slice(i, i + WRITE_BATCH).map((t) => tupleKey(t, tenant.name));
          ({ token } = await engine.write({ writes: batch, tenant: tenant.name }));
          tupleCount += batch.length;
          writes++;
        }
      }
      ({ token } = await engine.write({
        writes: [
          {
            ...tupleKey(scenario.share.tuple, scenario.share.objectTenant),
            subjectTenant: scenario.share.subjectTenant,
          },
        ],
      }));
      tupleCount++;
      writes++;
      // The expiring grant goes last, its lifetime counted from now (see scenario.ts).
      expiresAt = Date.now() + expireMs;
      ({ token } = await engine.write({
        writes: [tupleKey({ ...scenario.expiring, expiresAt }, "acme")],
      }));
      tupleCount++;
      writes++;
    });
    io.out("\nBuilt");
    io.out(
      indent(
        renderTable(
          [
            { title: "tenant" },
            { title: "teams", align: "right" },
            { title: "people", align: "right" },
            { title: "folders", align: "right" },
            { title: "files", align: "right" },
            { title: "tuples", align: "right" },
          ],
          scenario.tenants.map((t) => [
            t.name,
            formatCount(t.teams),
            formatCount(t.people),
            formatCount(t.folders),
            formatCount(t.files),
            formatCount(t.tuples.length),
          ]),
        ),
      ),
    );
    io.out(
      indent(
        `+ 1 cross-tenant grant (acme's roadmap shared with globex's dave), 1 expiring grant (erin, ${formatMs(expireMs)})\n` +
          `engine.write of ${formatCount(tupleCount)} tuples in ${writes} calls (at most ${formatCount(WRITE_BATCH)} a call): ${formatDuration(writeMs)} ` +
          `(${formatRate((tupleCount / writeMs) * 1000).replace("/s", " tuples/s")}; the first writes of a process include V8 compiling the write path)`,
      ),
    );

    // Every read below presents the latest write's token, so it sees every write before it.
    const ask = async (q: DemoQuestion) =>
      measured(engine, () =>
        engine.check({
          tenant: q.tenant,
          ...(q.subjectTenant ? { subjectTenant: q.subjectTenant } : {}),
          user: q.user,
          relation: q.relation,
          object: q.object,
          consistency: { atLeastAsFresh: token },
        }),
      );
    const row = (n: number, q: DemoQuestion, [answer, ms, by]: Awaited<ReturnType<typeof ask>>): string[] => {
      if (answer !== q.expected) wrong++;
      return [
        String(n),
        q.subjectTenant ? `${q.subjectTenant}→${q.tenant}` : q.tenant,
        short(q.user),
        q.relation,
        short(q.object),
        answer === q.expected ? (answer ? "allowed" : "denied") : `${answer ? "allowed" : "denied"} (WRONG)`,
        formatDuration(ms),
        describeOne(by),
        q.why,
      ];
    };
    const questionColumns = [
      { title: "#", align: "right" as const },
      { title: "tenant" },
      { title: "user" },
      { title: "may" },
      { title: "object" },
      { title: "answer" },
      { title: "check", align: "right" as const },
      { title: "answered by" },
      { title: "because" },
    ];

    // --- Questions, each one engine.check as an app would call it, #1 right after the writes. The writes brought
    // the WASM graphs up to date (engine.write does); a check that waited for the caches to take the writes says so.
    const rows: string[][] = [];
    for (const [i, q] of scenario.questions.entries()) rows.push(row(i + 1, q, await ask(q)));
    io.out("\nQuestions (each one engine.check, timed alone)");
    io.out(indent(renderTable(questionColumns, rows)));

    // --- ls: check read on every entry of a directory, in one bulk call
    const { listing } = scenario;
    const [visible, lsMs, lsBy] = await measured(engine, () =>
      engine.checkBulk(
        listing.entries.map((object) => ({
          tenant: listing.tenant,
          user: listing.user,
          relation: "read",
          object,
          consistency: { atLeastAsFresh: token },
        })),
      ),
    );
    const shown = listing.entries.filter((_, i) => visible[i]);
    io.out(`\nDirectory listing: ls ${listing.dir} as ${short(listing.user)}`);
    io.out(
      indent(
        `${bulkLine("checkBulk", listing.entries.length, lsMs)}, ${describeMany(lsBy)}\n` +
          `${shown.length} of ${listing.entries.length} entries readable${showing(16, shown.length)}\n` +
          wrapNames(shown.slice(0, 16).map((f) => f.slice(f.lastIndexOf("/") + 1))),
      ),
    );
    if (shown.length !== listing.entries.length) wrong++;

    // --- list objects
    const listAlice = () =>
      engine.listObjects({
        tenant: "acme",
        user: "user:alice",
        relation: "read",
        type: "file",
        consistency: { atLeastAsFresh: token },
      });
    const [readable, listMs, listBy] = await measured(engine, listAlice);
    // Asked again: what an app repeating the question sees.
    const [again, againMs] = await timed(listAlice);
    const readableFiles = readable.filter((o) => !o.startsWith("file:/acme/hr")).length;
    io.out("\nList objects: what may alice read in acme?");
    io.out(
      indent(
        `listObjects of ${formatCount(readable.length)} results: ${formatDuration(listMs)} (${describeOne(listBy)}); asked again: ${formatDuration(againMs)}\n` +
          `${formatCount(readable.length)} files and folders (everything under /acme/projects, nothing in /acme/hr)${showing(6, readable.length)}\n` +
          wrapNames(readable.slice(0, 6).map(short)),
      ),
    );
    if (readableFiles !== readable.length || again.join() !== readable.join()) wrong++;

    // --- bulk check
    let state = seed + 1;
    const next = () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 4294967296;
    };
    const bulkQuestions = Array.from({ length: bulk }, () => ({
      tenant: "acme",
      user: scenario.acmePeople[Math.floor(next() * scenario.acmePeople.length)]!,
      relation: next() < 0.7 ? "read" : "write",
      object: scenario.acmeFiles[Math.floor(next() * scenario.acmeFiles.length)]!,
      consistency: { atLeastAsFresh: token },
    }));
    const [bulkAnswers, bulkMs, bulkBy] = await measured(engine, () => engine.checkBulk(bulkQuestions));
    // The same call again: what an app repeating it sees.
    const [bulkAgain, bulkAgainMs, bulkAgainBy] = await measured(engine, () =>
      engine.checkBulk(bulkQuestions),
    );
    const allowedCount = bulkAnswers.filter(Boolean).length;
    // The answers are held to the reference evaluator (no WASM, no caches) over the same store.
    const [referenceAnswers, referenceMs] = await timed(async () => {
      await using reference = await createEngine({
        model: nexusFilesystemModel,
        format: "nexus",
        store: engine.store,
        evaluator: "reference",
        cache: false,
      });
      return await reference.checkBulk(bulkQuestions);
    });
    const differing = bulkAnswers.filter((a, i) => a !== referenceAnswers[i] || a !== bulkAgain[i]).length;
    if (differing > 0) wrong++;
    io.out("\nBulk check: random people × files × read/write in acme");
    io.out(
      indent(
        `${bulkLine("checkBulk", bulk, bulkMs)}, ${describeMany(bulkBy)}\n` +
          `the same call again: ${formatDuration(bulkAgainMs)} (${describeMany(bulkAgainBy)})\n` +
          `${formatCount(allowedCount)} allowed, ${formatCount(bulk - allowedCount)} denied: ` +
          (differing === 0
            ? `the same ${formatCount(bulk)} answers as the reference evaluator (${bulkLine("its checkBulk", bulk, referenceMs)}, on an engine with evaluator "reference" and no cache)`
            : `${formatCount(differing)} answers differ from the reference evaluator (WRONG)`),
      ),
    );
    if (bulkBy.routed.size > 0 && benchFiles > 0) {
      io.out(
        indent(
          "(the bench's workload, below, has no expiring, conditional or cross-tenant tuple: none of its checks go to the reference)",
        ),
      );
    }

    // --- revoke
    const revoked = scenario.revoke.tuple;
    const [revokeResult, revokeMs] = await timed(() =>
      engine.write({
        deletes: [{ user: revoked.user, relation: revoked.relation, object: revoked.object }],
        tenant: "acme",
      }),
    );
    token = revokeResult.token;
    const afterRevoke = await ask(scenario.revoke.question);
    io.out("\nRevoke");
    io.out(
      indent(
        `engine.write deleting ${short(revoked.object)}#${revoked.relation}@${short(revoked.user)}: ${formatDuration(revokeMs)} (token ${token.slice(0, 12)}…)\n` +
          renderTable(questionColumns, [
            row(scenario.questions.length + 1, scenario.revoke.question, afterRevoke),
          ]),
      ),
    );

    // --- expiry
    const remaining = expiresAt - Date.now();
    io.out(
      `\nExpiry: erin's grant (${formatMs(expireMs)}) ${remaining > 0 ? `lapses in ${formatMs(remaining)}, waiting` : `lapsed ${formatMs(-remaining)} ago`}`,
    );
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining + 5));
    const afterExpiry = await ask(scenario.expiryQuestion);
    io.out(
      indent(
        renderTable(questionColumns, [
          row(scenario.questions.length + 2, scenario.expiryQuestion, afterExpiry),
        ]),
      ),
    );

    // The scenario's engine is done: closed now, so its background work (change feed, warming) and its caches do
    // not share the process with the bench section's engine (the bench runs each engine alone). Idempotent.
    await engine.close();

    // --- the peer benchmark's workload, measured as the bench measures it (its answers held to the reference)
    let benchWrong = 0;
    if (benchFiles > 0) {
      ({ wrong: benchWrong } = await runBenchWorkload(io, {
        filesPerFolder: benchFiles,
        sizeName: SIZES[benchSize] !== undefined ? benchSize : String(benchFiles),
      }));
    }

    // --- the agent filesystem on the embedded default (a fresh temporary data dir unless --data names one)
    const dir = dataDir ?? (await mkdtemp(join(tmpdir(), "nexus-fast-demo-")));
    try {
      const fsDemo = await runFilesystemDemo(io, { dir, files: fsFiles });
      wrong += fsDemo.wrong;
      fsChecks = fsDemo.checks;
    } finally {
      if (dataDir === undefined) await rm(dir, { recursive: true, force: true });
    }

    // What was held to an expectation: the numbered answers (#1 to #N), the ls listing, the list objects, the
    // bulk check (against the reference) and the filesystem's steps (one row each).
    const numbered = scenario.questions.length + 2;
    const total = numbered + 3 + fsChecks;
    const parts = `${numbered} numbered answers, the ls listing, the list objects, the bulk check and ${fsChecks} filesystem steps`;
    io.out(
      wrong === 0
        ? `\nAll ${total} results as the model requires: ${parts}.`
        : `\n${wrong} of ${total} results differ from what the model requires (${parts}).`,
    );
    // The bench section's answers are not among the scenario's results above; a difference there printed WRONG.
    return wrong === 0 && benchWrong === 0 ? 0 : 1;
  } finally {
    await engine.close();
  }
}

/** The time of a process's first check, on a throwaway engine with one tuple (it warms what every engine shares). */
async function firstCheckInProcess(): Promise<number> {
  await using engine = await createEngine({ model: nexusFilesystemModel, format: "nexus" });
  const { token } = await engine.write({
    tenant: "warm-up",
    writes: [{ user: "user:w", relation: "direct_viewer", object: "file:/w" }],
  });
  const [, ms] = await timed(() =>
    engine.check({
      tenant: "warm-up",
      user: "user:w",
      relation: "read",
      object: "file:/w",
      consistency: { atLeastAsFresh: token },
    }),
  );
  return ms;
}

/** ", showing the first k" when a list printed below is cut. */
function showing(k: number, n: number): string {
  return n > k ? `, showing ${Math.min(k, n)} of ${formatCount(n)}:` : ":";
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => (l ? `  ${l}` : l))
    .join("\n");
}

/** Names laid out in rows of at most ~100 characters, like `ls`. */
function wrapNames(names: readonly string[], width = 100): string {
  const lines: string[] = [];
  let line = "";
  for (const name of names) {
    if (line && line.length + 2 + name.length > width) {
      lines.push(line);
      line = "";
    }
    line = line ? `${line}  ${name}` : name;
  }
  if (line) lines.push(line);
  return lines.join("\n");
}
