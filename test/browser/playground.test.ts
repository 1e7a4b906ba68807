/**
 * The playground page (src/playground/, built into dist/playground/ by `npm run build`) in real headless
 * Chromium, served by `nexus-fast playground`'s own server: it opens with the example and answers it, takes a
 * model, tuples and queries typed over the example, answers check / list-objects / list-users / expand, opens a
 * check's proof tree, shares its state through the URL and comes back from that URL the same, reports bad input
 * on the page, and leaves nothing running. A screenshot of the answered page goes to the OS temp dir.
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PlaygroundServer } from "../../src/cli/commands/playground.js";
import { distDir } from "../runtimes/dist.js";
import { activeResources, processesMentioning, settle } from "../runtimes/resources.js";
import { Chromium, chromiumPath } from "./chromium.js";

const pageDir = join(distDir, "playground");
const screenshotPath = join(tmpdir(), "nexus-fast-playground.png");

let resourcesBefore: Map<string, number>;
let server: PlaygroundServer | undefined;
let browser: Chromium | undefined;
const pageErrors: string[] = [];

beforeAll(async () => {
  for (const file of ["index.html", "bundle.js"]) {
    if (!existsSync(join(pageDir, file))) {
      throw new Error(`dist/playground/${file} is missing: run \`npm run build\` (build:playground) first`);
    }
  }
  resourcesBefore = activeResources();
  server = await PlaygroundServer.start({ port: 0, dir: pageDir });
  if (existsSync(chromiumPath)) browser = await Chromium.launch();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(url: string): Promise<Page> {
  const tab = await browser!.context.newPage();
  tab.on("pageerror", (error) => pageErrors.push(error.message));
  await tab.goto(url);
  return tab;
}

/** Waits until the page has finished `runs` runs (the page counts them on <body data-runs>). */
async function ranTimes(tab: Page, runs: number): Promise<void> {
  await tab.waitForSelector(`body[data-runs="${runs}"]`, { timeout: 30_000 });
}

async function answers(tab: Page): Promise<{ query: string; answer: string }[]> {
  return tab.$$eval("#answers > li", (items) =>
    items.map((item) => ({
      query: item.querySelector(".query")?.textContent ?? "",
      answer: (item.querySelector(".answer")?.textContent || item.querySelector(".error")?.textContent) ?? "",
    })),
  );
}

const MODEL = `definition user {}

definition team {
  relation member: user | team#member
}

definition doc {
  relation owner: user
  relation reader: user | team#member
  permission edit = owner
  permission view = reader + edit
}
`;
const TUPLES = `user:zoe member team:ops
team:ops#member reader doc:plan
user:yan owner doc:memo
`;
const QUERIES = `check user:zoe view doc:plan
check user:zoe edit doc:plan
list-objects user:yan view doc
list-users doc:plan view user
expand doc:plan view
`;
const TESTS = `- name: typed
  check:
    - user: user:zoe
      object: doc:plan
      assertions: { view: true, edit: false }
`;

describe.skipIf(!existsSync(chromiumPath))("the playground in headless Chromium", () => {
  let shared = "";

  it("opens with the example model and answers it in the page", async () => {
    const tab = await open(server!.url);
    await ranTimes(tab, 1);
    const rows = await answers(tab);
    expect(rows[0]).toEqual({ query: "check user:anne viewer document:roadmap", answer: "allowed" });
    expect(rows[1]).toEqual({ query: "check user:carl viewer document:roadmap", answer: "denied" });
    expect(rows[2]!.answer).toBe("document:notes, document:roadmap");
    expect(await tab.textContent("#test-results")).toMatch(/^6 of 6 assertions passed/);
    // The engine compiled and answered here: the WASM evaluator loaded from the kernels inlined in the bundle.
    expect(await tab.textContent("#status")).toMatch(/evaluator wasm/);
    // The first run times compiling the kernels apart from the model, so the model's time is its own.
    const timings = await tab.$$eval("#timings td:first-child", (cells) => cells.map((c) => c.textContent));
    expect(timings.slice(0, 3)).toEqual([
      "compile the WASM kernels (first run only)",
      "compile model (openfga) and open engine",
      "write 8 tuples",
    ]);
    await tab.close();
  });

  it("answers a typed SpiceDB model, tuples, queries and tests; opens a proof tree; shares by URL", async () => {
    const tab = await open(server!.url);
    await ranTimes(tab, 1);
    await tab.fill("#model", MODEL);
    await tab.fill("#tuples", TUPLES);
    await tab.fill("#queries", QUERIES);
    await tab.fill("#tests", TESTS);
    await tab.click("#run");
    await ranTimes(tab, 2);

    const rows = await answers(tab);
    expect(rows.slice(0, 4)).toEqual([
      { query: "check user:zoe view doc:plan", answer: "allowed" },
      { query: "check user:zoe edit doc:plan", answer: "denied" },
      { query: "list-objects user:yan view doc", answer: "doc:memo" },
      { query: "list-users doc:plan view user", answer: "user:zoe" },
    ]);
    // expand shows one level of doc:plan#view, as OpenFGA's Expand does: the union of reader and edit.
    const expandText = await tab.textContent("#answers > li:nth-child(5) .tree");
    expect(expandText).toContain("doc:plan#view: union");
    expect(expandText).toContain("computed doc:plan#reader");
    expect(expandText).toContain("computed doc:plan#edit");
    expect(await tab.textContent("#test-results")).toMatch(/^2 of 2 assertions passed/);
    // A timing for the model, the tuples, each query and the tests.
    expect(await tab.$$eval("#timings tr", (trs) => trs.length)).toBe(2 + 5 + 1);

    // The proof tree of the allowed check: doc:plan#view ✓ → union → computed reader ✓ → team:ops#member ✓ → user:zoe.
    await tab.click("#answers > li:nth-child(1) details summary");
    await tab.waitForSelector("#answers > li:nth-child(1) details[data-ready]");
    const proof = await tab.textContent("#answers > li:nth-child(1) details .tree");
    expect(proof).toMatch(/^✓ doc:plan#view/);
    expect(proof).toContain("✓ team:ops#member");
    expect(await tab.textContent("#answers > li:nth-child(1) details .subject.hit")).toBe("user:zoe");
    // The denied check's proof: the root fails, and no subject is reached.
    await tab.click("#answers > li:nth-child(2) details summary");
    await tab.waitForSelector("#answers > li:nth-child(2) details[data-ready]");
    expect(await tab.textContent("#answers > li:nth-child(2) details .tree")).toMatch(/^✗ doc:plan#edit/);
    expect(await tab.$$("#answers > li:nth-child(2) details .subject.hit")).toHaveLength(0);

    await tab.screenshot({ path: screenshotPath, fullPage: true });

    await tab.click("#share");
    await tab.waitForFunction(() => (document.getElementById("share-url") as HTMLInputElement).value !== "");
    shared = await tab.inputValue("#share-url");
    expect(shared).toMatch(/#z:[A-Za-z0-9_-]+$/);
    await tab.close();

    // A fresh tab from the shared URL has the same inputs and reaches the same answers on its own.
    const again = await open(shared);
    await ranTimes(again, 1);
    expect(await again.inputValue("#model")).toBe(MODEL);
    expect(await again.inputValue("#tuples")).toBe(TUPLES);
    expect(await again.inputValue("#queries")).toBe(QUERIES);
    expect(await again.inputValue("#tests")).toBe(TESTS);
    expect((await answers(again)).slice(0, 4)).toEqual(rows.slice(0, 4));
    await again.close();
  });

  it("runs the SpiceDB example (YAML tuples), and opens the example from a damaged share URL", async () => {
    const tab = await open(`${server!.url}#z:not-deflate`);
    await ranTimes(tab, 1);
    expect(await tab.inputValue("#queries")).toContain("check user:anne viewer document:roadmap");
    await tab.click("#example-spicedb");
    await tab.click("#run");
    await ranTimes(tab, 2);
    const rows = await answers(tab);
    expect(rows.slice(0, 4)).toEqual([
      { query: "check user:ada read repo:engine", answer: "allowed" },
      { query: "check user:eve read repo:engine", answer: "denied" },
      { query: "list-objects user:bob read repo", answer: "repo:engine" },
      { query: "list-users repo:engine read user", answer: "user:ada, user:bob" },
    ]);
    expect(await tab.textContent("#test-results")).toMatch(/^3 of 3 assertions passed/);
    expect(await tab.textContent("#timings")).toContain("compile model (spicedb)");
    await tab.close();
  });

  it("reports bad input on the page and keeps working", async () => {
    const tab = await open(server!.url);
    await ranTimes(tab, 1);
    await tab.fill("#tuples", "user:anne member group:eng\nthis line is not a tuple\n");
    await tab.click("#run");
    await ranTimes(tab, 2);
    expect((await answers(tab))[0]!.answer).toBe(
      'tuples line 2: expected "user relation object", got "this line is not a tuple"',
    );

    await tab.fill("#tuples", "user:anne member group:eng\n");
    await tab.fill(
      "#model",
      "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [usr]\n",
    );
    await tab.click("#run");
    await ranTimes(tab, 3);
    expect((await answers(tab))[0]!.answer).toMatch(/^invalid_model: /);

    await tab.click("#example-openfga");
    await tab.fill("#queries", "check user:anne viewer nosuchtype:x\nfrobnicate a b\n");
    await tab.click("#run");
    await ranTimes(tab, 4);
    const rows = await answers(tab);
    expect(rows[0]!.answer).toMatch(/^type_not_found: /);
    expect(rows[1]!.answer).toMatch(/^unknown query "frobnicate"/);
    await tab.close();
    expect(pageErrors).toEqual([]);
  });

  it("serves only the page and its bundle, then closes leaving nothing running", async () => {
    for (const path of ["/app.js", "/../package.json", "/%2e%2e/package.json", "/index.html/x"]) {
      expect((await fetch(`${server!.url.slice(0, -1)}${path}`)).status).toBe(404);
    }
    const page = await fetch(server!.url);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await page.text()).toContain('<script type="module" src="./bundle.js">');
    const profile = browser!.userDataDir;
    await browser!.close();
    await server!.close();
    expect(server!.listening).toBe(false);
    expect(await settle(resourcesBefore)).toEqual({ leaks: [], children: [] });
    expect(processesMentioning(profile)).toEqual([]);
  });
});
