/**
 * OpenFGA's matrix (src/conformance/runner.ts, as test/conformance/openfga.test.ts runs it) with every test run
 * over the PostgreSQL store, with the default engine. One schema serves the whole matrix: each run gets a view of
 * the store that starts empty (the previous run's tuples deleted through the store's own write path) and whose
 * close() ends that run's waiters, so opening a pool per run does not dominate the time.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runConformanceFile } from "../../src/conformance/runner.js";
import { openPostgresTupleStore, type PostgresTupleStore } from "../../src/postgres/index.js";
import type {
  Revision,
  StoredChange,
  TupleSnapshot,
  TupleStore,
  WriteBatch,
  WriteResult,
} from "../../src/tuples/types.js";
import { NexusError } from "../../src/util/errors.js";
import { dropSchema, freshSchema, PG_URL } from "./helpers.js";

const folder = fileURLToPath(new URL("../../../shared/conformance/openfga/", import.meta.url));
const present = existsSync(folder);
const schema = freshSchema("conformance");
let store: PostgresTupleStore;

beforeAll(async () => {
  store = await openPostgresTupleStore({ connectionString: PG_URL, schema });
});
afterAll(async () => {
  await store?.close();
  await dropSchema(schema);
});

/** One test run's view of the shared store. */
class RunStore implements TupleStore {
  readonly #inner: PostgresTupleStore;
  readonly #stop = new AbortController();

  constructor(inner: PostgresTupleStore) {
    this.#inner = inner;
  }

  static async open(inner: PostgresTupleStore): Promise<RunStore> {
    const snapshot = await inner.snapshot(await inner.currentRevision());
    const left = await snapshot.read({ tenant: "default" });
    snapshot.release();
    if (left.length > 0) await inner.write({ writes: [], deletes: left, onMissing: "ignore" });
    return new RunStore(inner);
  }

  get id(): string {
    return this.#inner.id;
  }
  get models() {
    return this.#inner.models;
  }
  get closed(): boolean {
    return this.#stop.signal.aborted;
  }
  #open(): void {
    if (this.closed) throw new NexusError("closed", "the run's store is closed");
  }
  currentRevision(): Promise<Revision> {
    this.#open();
    return this.#inner.currentRevision();
  }
  revisionAt(timeMs: number): Promise<Revision> {
    this.#open();
    return this.#inner.revisionAt(timeMs);
  }
  snapshot(revision: Revision): Promise<TupleSnapshot> {
    this.#open();
    return this.#inner.snapshot(revision);
  }
  write(batch: WriteBatch): Promise<WriteResult> {
    this.#open();
    return this.#inner.write(batch);
  }
  changesAfter(after: Revision, limit: number): Promise<StoredChange[]> {
    this.#open();
    return this.#inner.changesAfter(after, limit);
  }
  waitForRevision(after: Revision, signal?: AbortSignal): Promise<void> {
    const stop = signal === undefined ? this.#stop.signal : AbortSignal.any([signal, this.#stop.signal]);
    return this.#inner.waitForRevision(after, stop);
  }
  async close(): Promise<void> {
    this.#stop.abort();
  }
}

/**
 * The full matrix takes minutes over a database (each of ~300 runs builds engines, writes and asks through SQL);
 * by default every 10th test of each file runs (about 30 runs), PG_CONFORMANCE=full runs all of them.
 */
const full = process.env.PG_CONFORMANCE === "full";

describe.skipIf(!present)("OpenFGA conformance over the PostgreSQL store", () => {
  for (const name of ["consolidated_1_1_tests.yaml", "abac_tests.yaml"]) {
    it(
      `passes every assertion of ${name}${full ? "" : " (every 10th test)"}`,
      async () => {
        const text = readFileSync(`${folder}${name}`, "utf8");
        const names = (parse(text) as { tests: { name: string }[] }).tests.map((t) => t.name);
        const chosen = new Set(full ? names : names.filter((_, i) => i % 10 === 0));
        const started = performance.now();
        const report = await runConformanceFile(text, {
          openStore: () => RunStore.open(store),
          filter: (test) => chosen.has(test),
        });
        const summary = report.failures.map(
          (f) => `${f.test} [${f.variant}] stage ${f.stage} ${f.kind}#${f.index}: ${f.message}`,
        );
        console.log(
          `${name} over PostgreSQL: ${chosen.size} tests, ${report.runs} runs, ${report.assertions} assertions in ${Math.round(performance.now() - started)} ms`,
        );
        expect(summary, `seed ${report.seed}`).toEqual([]);
        expect(report.passed).toBe(report.assertions);
        expect(report.assertions).toBeGreaterThan(full ? 100 : 10);
      },
      full ? 1_800_000 : 60_000,
    );
  }
});
