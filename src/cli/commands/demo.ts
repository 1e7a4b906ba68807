/**
 * `nexus-fast demo`: the README's main job. Builds the demo scenario (demo/scenario.ts) on the Nexus preset model,
 * then asks it questions, lists a directory, runs a bulk check, revokes a grant and lets an expiring one lapse,
 * printing each answer next to what the model must answer and how long it took. Exit 1 if any answer is wrong.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEngine } from "../../engine.js";
import { nexusFilesystemModel } from "../../model/preset.js";
import type { TupleKey } from "../../store/tuple.js";
import { intOption, parse, stringOption } from "../args.js";
import { runFilesystemDemo } from "../demo/filesystem.js";
import { buildDemoScenario, type DemoQuestion, type DemoTuple } from "../demo/scenario.js";
import type { Io } from "../program.js";
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

    // --- Questions
    const rows: string[][] = [];
    for (const [i, q] of scenario.questions.entries()) {
      const [answer, ms] = await ask(q);
      rows.push(row(i + 1, q, answer, ms));
    }
    io.out("\nQuestions");
    io.out(indent(renderTable(questionColumns, rows)));

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
        `${shown.length} of ${listing.entries.length} entries readable (checkBulk, ${formatMs(lsMs)})\n` +
          wrapNames(shown.slice(0, 16).map((f) => f.slice(f.lastIndexOf("/") + 1))) +
          (shown.length > 16 ? `  … (+${shown.length - 16} more)` : ""),
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
        `${formatCount(readable.length)} files and folders (everything under /acme/projects, nothing in /acme/hr) in ${formatMs(listMs)}`,
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
    io.out("\nBulk check: random people × files × read/write in acme");
    io.out(
      indent(
        `${formatCount(bulk)} checks: ${formatCount(allowedCount)} allowed, ${formatCount(bulk - allowedCount)} denied in ${formatMs(bulkMs)} (${formatRate((bulk / bulkMs) * 1000)})`,
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

    const total = scenario.questions.length + 4 + fsChecks;
    io.out(
      wrong === 0
        ? `\nAll ${total} results as the model requires.`
        : `\n${wrong} of ${total} results differ from what the model requires.`,
    );
    return wrong === 0 ? 0 : 1;
  } finally {
    await engine.close();
  }
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
