/**
 * `nexus-fast demo` (what `npm start` runs): builds the demo scenario (demo/scenario.ts) on the
 * Nexus preset model, then asks it questions, lists a directory, runs a bulk check, revokes a grant and lets an
 * expiring one lapse, printing each answer next to what the model must answer and how long it took. Exit 1 if any
 * answer is wrong.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEngine, type Engine } from "../../engine/engine.js";
import { nexusFilesystemModel } from "../../model/preset.js";
import type { TupleKey } from "../../tuples/tuple.js";
import { intOption, parse, stringOption } from "../args.js";
import { runFilesystemDemo } from "../demo/filesystem.js";
import { buildDemoScenario, type DemoQuestion, type DemoTuple } from "../demo/scenario.js";
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

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

export async function runDemo(args: string[], io: Io): Promise<number> {
  const parsed = parse(args, {
    files: { type: "string" },
    bulk: { type: "string" },
    seed: { type: "string" },
    "expire-ms": { type: "string" },
    "fs-files": { type: "string" },
    data: { type: "string" },
  });
  const files = intOption(parsed, "files", 5000, 16);
  const bulk = intOption(parsed, "bulk", 1000);
  const seed = intOption(parsed, "seed", 7, 0);
  const expireMs = intOption(parsed, "expire-ms", 3000, 0);
  // The filesystem part writes as many files as the permission part has, up to 1,000 (each write is synced).
  const fsFiles = intOption(parsed, "fs-files", Math.min(1000, files), 2);
  const dataDir = stringOption(parsed, "data");

  const scenario = buildDemoScenario({ files, seed, expiresAt: Date.now() + expireMs });
  const engine = await createEngine({ model: nexusFilesystemModel, format: "nexus" });
  let wrong = 0;
  let fsChecks = 0;
  try {
    io.out("nexus-fast demo: a multi-tenant agent filesystem on the Nexus preset model");
    io.out("");

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
    io.out("Built");
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
          `${formatCount(tupleCount)} tuples written in ${writes} writes, ${formatMs(writeMs)} (${formatRate((tupleCount / writeMs) * 1000).replace("/s", " tuples/s")})`,
      ),
    );

    // Every read below presents the latest write's token, so it sees every write before it.
    const ask = async (q: DemoQuestion) =>
      timed(() =>
        engine.check({
          tenant: q.tenant,
          ...(q.subjectTenant ? { subjectTenant: q.subjectTenant } : {}),
          user: q.user,
          relation: q.relation,
          object: q.object,
          consistency: { atLeastAsFresh: token },
        }),
      );
    const row = (n: number, q: DemoQuestion, answer: boolean, ms: number): string[] => {
      if (answer !== q.expected) wrong++;
      return [
        String(n),
        q.subjectTenant ? `${q.subjectTenant}→${q.tenant}` : q.tenant,
        short(q.user),
        q.relation,
        short(q.object),
        answer === q.expected ? (answer ? "allowed" : "denied") : `${answer ? "allowed" : "denied"} (WRONG)`,
        formatMs(ms),
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
      { title: "time", align: "right" as const },
      { title: "because" },
    ];

    // --- The first check in a process pays for V8 compiling the WASM kernel's code (lazily, on first call) and
    // warming the JS paths: shown on its own, on a one-tuple engine, so #1 below is a check like the others.
    const warmMs = await firstCheckInProcess();
    io.out(
      `\nFirst check in this process: ${formatMs(warmMs)} on a one-tuple engine\n` +
        indent(
          "(V8 compiles the WASM kernel's and the check path's code on first call: no later check pays it)",
        ),
    );

    // --- Questions. The first check of a tenant compiles its tuples into the WASM evaluator's graph (once; later
    // checks reuse it and follow the changelog): that build is timed on its own so the first row can say so.
    const rows: string[][] = [];
    let firstNote = "";
    for (const [i, q] of scenario.questions.entries()) {
      let buildMs = 0;
      if (i === 0) {
        const caughtUp = await graphCatchUp(engine, q.tenant, token);
        if (caughtUp !== undefined) {
          buildMs = caughtUp.ms;
          firstNote = `#1's time includes ${formatMs(caughtUp.ms)} ${caughtUp.what}: paid once by the first check after the writes, reused by the others`;
        }
      }
      const [answer, ms] = await ask(q);
      rows.push(row(i + 1, q, answer, buildMs + ms));
    }
    io.out("\nQuestions");
    io.out(indent(renderTable(questionColumns, rows)));
    if (firstNote !== "") io.out(indent(firstNote));

    // --- ls: check read on every entry of a directory, in one bulk call
    const { listing } = scenario;
    const [visible, lsMs] = await timed(() =>
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
        `${shown.length} of ${listing.entries.length} entries readable (checkBulk, ${formatMs(lsMs)})${showing(16, shown.length)}\n` +
          wrapNames(shown.slice(0, 16).map((f) => f.slice(f.lastIndexOf("/") + 1))),
      ),
    );
    if (shown.length !== listing.entries.length) wrong++;

    // --- list objects
    const [readable, listMs] = await timed(() =>
      engine.listObjects({
        tenant: "acme",
        user: "user:alice",
        relation: "read",
        type: "file",
        consistency: { atLeastAsFresh: token },
      }),
    );
    const readableFiles = readable.filter((o) => !o.startsWith("file:/acme/hr")).length;
    io.out("\nList objects: what may alice read in acme?");
    io.out(
      indent(
        `${formatCount(readable.length)} files and folders (everything under /acme/projects, nothing in /acme/hr) in ${formatMs(listMs)}${showing(6, readable.length)}\n` +
          wrapNames(readable.slice(0, 6).map(short)),
      ),
    );
    if (readableFiles !== readable.length) wrong++;

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
    const [bulkAnswers, bulkMs] = await timed(() => engine.checkBulk(bulkQuestions));
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
    const differing = bulkAnswers.filter((a, i) => a !== referenceAnswers[i]).length;
    if (differing > 0) wrong++;
    io.out("\nBulk check: random people × files × read/write in acme");
    io.out(
      indent(
        `${formatCount(bulk)} checks: ${formatCount(allowedCount)} allowed, ${formatCount(bulk - allowedCount)} denied in ${formatMs(bulkMs)} (${formatRate((bulk / bulkMs) * 1000)})\n` +
          (differing === 0
            ? `the same ${formatCount(bulk)} answers as the reference evaluator (${formatMs(referenceMs)} there)`
            : `${formatCount(differing)} answers differ from the reference evaluator (WRONG)`),
      ),
    );

    // --- revoke
    const revoked = scenario.revoke.tuple;
    const [revokeResult, revokeMs] = await timed(() =>
      engine.write({
        deletes: [{ user: revoked.user, relation: revoked.relation, object: revoked.object }],
        tenant: "acme",
      }),
    );
    token = revokeResult.token;
    const [afterRevoke, afterRevokeMs] = await ask(scenario.revoke.question);
    io.out("\nRevoke");
    io.out(
      indent(
        `delete ${short(revoked.object)}#${revoked.relation}@${short(revoked.user)} in ${formatMs(revokeMs)} (token ${token.slice(0, 12)}…)\n` +
          renderTable(questionColumns, [
            row(scenario.questions.length + 1, scenario.revoke.question, afterRevoke, afterRevokeMs),
          ]),
      ),
    );

    // --- expiry
    const remaining = expiresAt - Date.now();
    io.out(
      `\nExpiry: erin's grant (${formatMs(expireMs)}) ${remaining > 0 ? `lapses in ${formatMs(remaining)}, waiting` : `lapsed ${formatMs(-remaining)} ago`}`,
    );
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining + 5));
    const [afterExpiry, afterExpiryMs] = await ask(scenario.expiryQuestion);
    io.out(
      indent(
        renderTable(questionColumns, [
          row(scenario.questions.length + 2, scenario.expiryQuestion, afterExpiry, afterExpiryMs),
        ]),
      ),
    );

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
    return wrong === 0 ? 0 : 1;
  } finally {
    await engine.close();
  }
}

/**
 * Brings the WASM evaluator's graph of `tenant` up to the token's revision now, timed, and says what that took
 * (a build from a snapshot, or changes applied to a graph built earlier); undefined without the WASM evaluator or
 * when the graph was current already.
 */
async function graphCatchUp(
  engine: Engine,
  tenant: string,
  token: string,
): Promise<{ ms: number; what: string } | undefined> {
  const fast = engine.wasmEvaluator;
  if (fast === undefined) return undefined;
  const revision = await engine.revisionFor({ atLeastAsFresh: token });
  const { graphBuilds, changesApplied } = fast.stats;
  const [, ms] = await timed(() => fast.graphAt(tenant, revision));
  const built = fast.stats.graphBuilds - graphBuilds;
  const applied = fast.stats.changesApplied - changesApplied;
  if (built === 0 && applied === 0) return undefined;
  const what = [
    built > 0 ? `compiling ${tenant}'s tuples into the WASM evaluator's graph` : "",
    applied > 0 ? `applying ${formatCount(applied)} change(s) to ${tenant}'s WASM graph` : "",
  ].filter((w) => w !== "");
  return { ms, what: what.join(" and ") };
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
