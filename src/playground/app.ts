/**
 * The playground page: the whole engine (model compiler, tuple store, WASM kernels, evaluators) bundled into the
 * page, so every answer is computed here and nothing is sent to a server. Run builds a fresh engine from the
 * model and tuples, answers each query line with its time (a check with its proof tree, an expand with its
 * tree), and runs the store tests. Share writes the state into the URL hash (see share.ts).
 * Built by scripts/build-playground.mjs into dist/playground/; served by `nexus-fast playground`.
 */
import { parse as parseYaml } from "yaml";
import {
  createEngine,
  type Engine,
  isReady,
  type ModelFormat,
  ready,
  runStoreTest,
  type StoreTestReport,
} from "../index.js";
import { OPENFGA_EXAMPLE, SPICEDB_EXAMPLE } from "./examples.js";
import { InputError, isRecord, parseQueries, parseTuples, type Query } from "./parse.js";
import { errorText, expandTree, type ProofNode, proveCheck } from "./proof.js";
import { decodeState, encodeState, type PlaygroundState } from "./share.js";

const WRITE_CHUNK = 100;

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element as T;
}

const fields = {
  format: byId<HTMLSelectElement>("format"),
  model: byId<HTMLTextAreaElement>("model"),
  tuples: byId<HTMLTextAreaElement>("tuples"),
  queries: byId<HTMLTextAreaElement>("queries"),
  tests: byId<HTMLTextAreaElement>("tests"),
};
const answersList = byId<HTMLUListElement>("answers");
const timingsTable = byId<HTMLTableElement>("timings");
const testResults = byId<HTMLDivElement>("test-results");
const status = byId<HTMLSpanElement>("status");
const runButton = byId<HTMLButtonElement>("run");
const shareButton = byId<HTMLButtonElement>("share");
const shareUrl = byId<HTMLInputElement>("share-url");

let current: Engine | undefined;
let running: Promise<void> = Promise.resolve();

function readState(): PlaygroundState {
  return {
    format: fields.format.value,
    model: fields.model.value,
    tuples: fields.tuples.value,
    queries: fields.queries.value,
    tests: fields.tests.value,
  };
}

function writeState(state: PlaygroundState): void {
  fields.format.value = state.format;
  fields.model.value = state.model;
  fields.tuples.value = state.tuples;
  fields.queries.value = state.queries;
  fields.tests.value = state.tests;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: { class?: string; text?: string } = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (attrs.class !== undefined) node.className = attrs.class;
  if (attrs.text !== undefined) node.textContent = attrs.text;
  for (const child of children) node.append(child);
  return node;
}

function ms(start: number): string {
  const t = performance.now() - start;
  return t < 10 ? `${t.toFixed(2)} ms` : `${t.toFixed(1)} ms`;
}

function renderTree(node: ProofNode): HTMLUListElement {
  const list = el("ul", { class: "tree" });
  list.append(renderNode(node));
  return list;
}

function renderNode(node: ProofNode): HTMLLIElement {
  const item = el("li");
  if (node.holds !== undefined) {
    item.append(el("span", { class: node.holds ? "mark-yes" : "mark-no", text: node.holds ? "✓ " : "✗ " }));
  }
  item.append(el("span", { class: node.hit ? "subject hit" : "subject", text: node.label }));
  if (node.note !== undefined) item.append(el("span", { class: "time", text: node.note }));
  if (node.children.length > 0) {
    const children = el("ul");
    for (const child of node.children) children.append(renderNode(child));
    item.append(children);
  }
  return item;
}

async function answer(
  engine: Engine,
  query: Query,
): Promise<{ text: string; cls: string; tree?: ProofNode }> {
  switch (query.kind) {
    case "check": {
      const request = { user: query.user, relation: query.relation, object: query.object };
      const result = await engine.checkDetailed(request);
      if (result.conditional !== undefined) {
        return {
          text: `conditional (missing ${result.conditional.missingParameters.join(", ")})`,
          cls: "conditional",
        };
      }
      return { text: result.allowed ? "allowed" : "denied", cls: result.allowed ? "allowed" : "denied" };
    }
    case "list-objects": {
      const objects = await engine.listObjects({
        user: query.user,
        relation: query.relation,
        type: query.type,
      });
      return { text: objects.length === 0 ? "(none)" : objects.join(", "), cls: "list" };
    }
    case "list-users": {
      const users = await engine.listUsers({
        object: query.object,
        relation: query.relation,
        userFilters: [query.filter],
      });
      return { text: users.length === 0 ? "(none)" : users.join(", "), cls: "list" };
    }
    case "expand": {
      const tree = await engine.expand({ object: query.object, relation: query.relation });
      return { text: "tree", cls: "list", tree: expandTree(tree.root) };
    }
  }
}

async function runAll(): Promise<void> {
  const state = readState();
  answersList.replaceChildren();
  timingsTable.replaceChildren();
  testResults.replaceChildren();
  const timing = (what: string, time: string): void => {
    timingsTable.append(el("tr", {}, el("td", { text: what }), el("td", { text: time })));
  };
  status.textContent = "running…";
  await current?.close();
  current = undefined;
  try {
    const tuples = parseTuples(state.tuples);
    let start = performance.now();
    if (!isReady()) {
      // Once per page: compiling the WASM kernels would otherwise be counted as the first model's time.
      const loaded = await ready().then(
        () => true,
        () => false,
      );
      timing(loaded ? "compile the WASM kernels (first run only)" : "WASM kernels unavailable", ms(start));
      start = performance.now();
    }
    const engine = await createEngine({
      model: state.model,
      ...(state.format !== "" ? { format: state.format as ModelFormat } : {}),
    });
    current = engine;
    timing(`compile model (${engine.program.format ?? "model"}) and open engine`, ms(start));
    start = performance.now();
    for (let i = 0; i < tuples.length; i += WRITE_CHUNK) {
      await engine.write({ writes: tuples.slice(i, i + WRITE_CHUNK) });
    }
    timing(`write ${tuples.length} tuples`, ms(start));
    for (const { line, query, error } of parseQueries(state.queries)) {
      const row = el("li", {}, el("span", { class: "query", text: line }));
      answersList.append(row);
      if (query === undefined) {
        row.append(el("div", { class: "error", text: error ?? "bad query" }));
        continue;
      }
      start = performance.now();
      try {
        const result = await answer(engine, query);
        const took = ms(start);
        timing(line, took);
        row.append(el("span", { class: `answer ${result.cls}`, text: result.tree ? "" : result.text }));
        row.append(el("span", { class: "time", text: took }));
        if (result.tree !== undefined) {
          row.append(renderTree(result.tree));
        } else if (query.kind === "check") {
          const details = el("details", { class: "proof" }, el("summary", { text: "proof tree" }));
          row.append(details);
          details.addEventListener(
            "toggle",
            () => {
              const begin = performance.now();
              void proveCheck(engine, query).then(
                (tree) => {
                  details.append(
                    renderTree(tree),
                    el("div", { class: "time", text: `proof in ${ms(begin)}` }),
                  );
                  details.dataset.ready = "true";
                },
                (error) => details.append(el("div", { class: "error", text: errorText(error) })),
              );
            },
            { once: true },
          );
        }
      } catch (error) {
        row.append(el("div", { class: "error", text: errorText(error) }));
      }
    }
    if (state.tests.trim() !== "") {
      start = performance.now();
      const report = await runTests(state, tuples);
      timing(`tests (${report.assertions} assertions)`, ms(start));
      renderReport(report);
    }
    status.textContent = `ran ${new Date().toLocaleTimeString()} · evaluator ${engine.stats().evaluator}`;
  } catch (error) {
    const text = error instanceof InputError ? error.message : errorText(error);
    answersList.append(el("li", {}, el("div", { class: "error", text })));
    status.textContent = "error";
  }
  document.body.dataset.runs = String(Number(document.body.dataset.runs ?? "0") + 1);
}

async function runTests(state: PlaygroundState, tuples: readonly object[]): Promise<StoreTestReport> {
  const parsed: unknown = parseYaml(state.tests);
  const tests = isRecord(parsed) && Array.isArray(parsed.tests) ? parsed.tests : parsed;
  if (!Array.isArray(tests))
    throw new InputError("tests: expected a list of tests (OpenFGA store-test format)");
  return runStoreTest(
    { model: state.model, tuples, tests },
    state.format !== "" ? { format: state.format as ModelFormat } : {},
  );
}

function renderReport(report: StoreTestReport): void {
  testResults.append(
    el("div", {
      class: report.passed ? "allowed" : "denied",
      text: `${report.assertions - report.failed} of ${report.assertions} assertions passed`,
    }),
  );
  const list = el("ul", { class: "answers" });
  for (const test of report.tests) {
    if (test.error !== undefined)
      list.append(el("li", { class: "error", text: `${test.name}: ${test.error}` }));
    for (const result of test.results) {
      const request = Object.values(result.request)
        .filter((v) => typeof v === "string")
        .join(" ");
      const text = result.passed
        ? `✓ ${test.name}: ${result.kind} ${request}`
        : `✗ ${test.name}: ${result.kind} ${request}: expected ${JSON.stringify(result.expected)}, got ${
            result.error ?? JSON.stringify(result.actual)
          }`;
      list.append(el("li", { class: result.passed ? "query" : "query denied", text }));
    }
  }
  testResults.append(list);
}

function run(): Promise<void> {
  running = running.then(runAll, runAll);
  return running;
}

async function share(): Promise<void> {
  const hash = await encodeState(readState());
  history.replaceState(null, "", `#${hash}`);
  shareUrl.value = location.href;
  shareUrl.select();
}

runButton.addEventListener("click", () => void run());
shareButton.addEventListener("click", () => void share());
byId("example-openfga").addEventListener("click", () => writeState(OPENFGA_EXAMPLE));
byId("example-spicedb").addEventListener("click", () => writeState(SPICEDB_EXAMPLE));
for (const field of [fields.model, fields.tuples, fields.queries, fields.tests]) {
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) void run();
  });
}

writeState((await decodeState(location.hash)) ?? OPENFGA_EXAMPLE);
void run();
