/**
 * The demo's numbers are labelled with the call they time and the layer that answered, its "same workload as the
 * bench" section prints the rows of the README's peer table, and its answers agree with the reference evaluator.
 */
import { describe, expect, it } from "vitest";
import { BENCH_COUNTS } from "../../src/cli/demo/bench-workload.js";
import { answerers, describeMany, describeOne, formatDuration } from "../../src/cli/demo/measure.js";
import {
  buildWorkload,
  listingUsers,
  model,
  questions,
  WorkloadAnswers,
} from "../../src/cli/demo/workload.js";
import { main } from "../../src/cli/program.js";
import { createEngine } from "../../src/engine/engine.js";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, {
    out: (t) => {
      out += `${t}\n`;
    },
    err: (t) => {
      err += `${t}\n`;
    },
  });
  return { code, out, err };
}

const TIME = String.raw`\d[\d.]* (?:µs|ms|s)`;
const RATE = String.raw`[\d.]+[KM]? checks/s`;
/** What an "answered by" cell may say (src/cli/demo/measure.ts). */
const ANSWERER = String.raw`(?:WASM|result cache|Bloom filter|cross-tenant index|Tiger bitmap|reference(?: \([^)]+\))?)`;

describe("nexus-fast demo: what it prints", () => {
  it("labels every number with the call it times, and prints the bench's rows for the bench's workload", async () => {
    const { code, out, err } = await run(
      "demo",
      ...["--files", "200", "--bulk", "50", "--fs-files", "4", "--bench-size", "2"],
    );
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).not.toContain("WRONG");

    // The scenario: writes, the numbered questions (each with its time and who answered), ls, listObjects, bulk.
    expect(out).toMatch(new RegExp(`engine\\.write of [\\d,]+ tuples in \\d+ calls .*: ${TIME} \\(`));
    expect(out).toMatch(new RegExp(`First check in this process: ${TIME} on a one-tuple engine`));
    expect(out).toContain("Questions (each one engine.check, timed alone)");
    const numbered = out.split("\n").filter((l) => /^\s+\d+\s{2}(acme|globex)/.test(l));
    expect(numbered).toHaveLength(13);
    for (const line of numbered) {
      expect(line).toMatch(new RegExp(`(allowed|denied)\\s+${TIME}  ${ANSWERER}  `));
    }
    expect(out).toMatch(new RegExp(`checkBulk of \\d+: ${TIME} \\(${RATE}\\), answered by `));
    expect(out).toMatch(
      new RegExp(`listObjects of 305 results: ${TIME} \\([^)]+\\); asked again: ${TIME}\\n`),
    );
    expect(out).toMatch(new RegExp(`checkBulk of 50: ${TIME} \\(${RATE}\\), answered by \\d+ `));
    expect(out).toMatch(new RegExp(`the same call again: ${TIME} \\(answered by `));
    expect(out).toMatch(/the same 50 answers as the reference evaluator \(its checkBulk of 50: /);
    expect(out).toMatch(new RegExp(`engine\\.write deleting \\S+: ${TIME} \\(token `));

    // The bench section: the README peer table's rows, each with its measured values.
    const workload = buildWorkload(2);
    expect(out).toContain(
      `Same workload as the bench (npm run bench -- peers --size 2): ${workload.tuples.length.toLocaleString("en-US")} tuples, 2 files per leaf folder`,
    );
    const rows: [string, number][] = [
      [`load ${workload.tuples.length.toLocaleString("en-US")} tuples`, 1],
      ["single check, first pass, median / p95 / mean", 3],
      ["single check, second pass, median", 1],
      ["list a folder (checkBulk of its 2 files), first / second, median", 2],
      ["checkBulk of 1,000, first / second, median", 2],
    ];
    for (const [row, values] of rows) {
      const times = Array.from({ length: values }, () => TIME).join(" / ");
      expect(out).toMatch(new RegExp(`\\n  ${row.replace(/[()/]/g, "\\$&")}\\s+${times}`));
    }
    expect(out).toMatch(new RegExp(`\\(${RATE} / ${RATE}\\)`));
    expect(out).toMatch(
      new RegExp(
        `\\n  listObjects \\([\\d,]+–[\\d,]+ results\\), first / second, median per user\\s+${TIME} / ${TIME}`,
      ),
    );
    // Who answered the section's calls: no check of this workload leaves the WASM evaluator and the caches.
    const section = /the calls above were answered by (.*)\n/.exec(out);
    expect(section?.[1]).toMatch(/WASM/);
    expect(section?.[1]).not.toMatch(/reference/);
    const checks = BENCH_COUNTS.single + BENCH_COUNTS.folders * 2 + BENCH_COUNTS.bulks * 1000;
    expect(out).toContain(
      `answers: ${checks.toLocaleString("en-US")} checks (2,000 single, 30 folders, 5 bulks of 1,000) as the reference evaluator's, ${listingUsers().length} listings as the workload's own answers`,
    );

    // The closing line is unchanged, and still last.
    expect(out.trimEnd().split("\n").at(-1)).toMatch(
      /^All 36 results as the model requires: 13 numbered answers, the ls listing, the list objects, the bulk check and 20 filesystem steps\.$/,
    );
  });

  it("leaves the bench section out with --bench-size 0, and refuses a size it cannot use", async () => {
    const none = await run(
      "demo",
      ...["--files", "50", "--bulk", "10", "--fs-files", "2", "--bench-size", "0"],
    );
    expect(none.code).toBe(0);
    expect(none.out).not.toContain("Same workload as the bench");
    const bad = await run("demo", "--bench-size", "huge");
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("--bench-size must be one of 10k, 100k, 1m");
  });
});

describe("the bench workload's own answers", () => {
  it("equal the reference evaluator's, for checks and listings", async () => {
    const workload = buildWorkload(3);
    const answers = new WorkloadAnswers(workload);
    await using reference = await createEngine({ model, evaluator: "reference", cache: false });
    await reference.write({ writes: workload.tuples });
    const qs = [
      ...questions(workload, 300, 1),
      // Files with a direct viewer, and folders, as well as random files.
      ...workload.tuples
        .filter((t) => t.relation === "viewer")
        .map((t) => ({ user: "user:u1", object: t.object })),
    ];
    const expected = await reference.checkBulk(
      qs.map((q) => ({ user: q.user, relation: "view", object: q.object })),
    );
    expect(qs.map((q) => answers.check(q))).toEqual(expected);
    expect(expected.some(Boolean)).toBe(true);
    expect(expected.some((a) => !a)).toBe(true);
    for (const user of [...listingUsers(), "user:u1", "user:u399"]) {
      const listed = await reference.listObjects({ user, relation: "view", type: "file" });
      expect(answers.listFiles(user)).toEqual(listed);
    }
  });
});

describe("the demo's measuring helpers", () => {
  it("say which layer answered, from engine.stats() around the call", async () => {
    await using engine = await createEngine({ model });
    const { token } = await engine.write({
      writes: [
        { user: "user:a", relation: "viewer", object: "folder:f" },
        { user: "folder:f", relation: "parent", object: "file:x" },
      ],
    });
    const ask = {
      user: "user:a",
      relation: "view",
      object: "file:x",
      consistency: { atLeastAsFresh: token },
    };
    const first = engine.stats();
    expect(await engine.check(ask)).toBe(true);
    const afterFirst = engine.stats();
    expect(await engine.check(ask)).toBe(true);
    const afterSecond = engine.stats();
    expect(describeOne(answerers(first, afterFirst))).not.toBe("result cache");
    expect(describeOne(answerers(afterFirst, afterSecond))).toBe("result cache");
    expect(describeMany(answerers(first, afterSecond))).toMatch(/^answered by .*1 result cache/);
  });

  it("print durations as the peer table does", () => {
    expect(formatDuration(0.00203)).toBe("2.03 µs");
    expect(formatDuration(0.0132)).toBe("13.2 µs");
    expect(formatDuration(12.54)).toBe("12.54 ms");
    expect(formatDuration(1013)).toBe("1.01 s");
  });
});
