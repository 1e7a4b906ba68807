/**
 * Node is the reference runtime: the scenario's answers are checked here for correctness, from the TypeScript
 * sources (in this process) and from the built package as plain Node resolves it (a child process). The browser
 * and workerd tests then only need to show they answer exactly like Node.
 */
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import * as sources from "../../src/index.js";
import { assertDistBuilt, distDir } from "./dist.js";
import { runScenarioInNode } from "./node-runner.js";
import { unwrap } from "./outcome.js";
import { runScenario, type ScenarioResult, unicodeKeys } from "./scenario.js";

let fromSources: ScenarioResult;

beforeAll(async () => {
  // The sources load their kernels from dist/wasm/ too.
  assertDistBuilt();
  fromSources = await runScenario(sources);
});

describe("the shared runtime scenario in Node", () => {
  it("Bloom filter: finds every added key, single and batched, and round-trips through serialize", () => {
    const { bloom } = fromSources;
    expect(bloom.singleAddedFound).toEqual(unicodeKeys.map(() => true));
    expect(bloom.bytesKeyFound).toBe(true);
    expect(bloom.utf8BytesOfStringKeyFound).toBe(true);
    expect(bloom.batchAddedFound).toBe(2_000);
    // 2,015 keys in a filter sized for 5,000 at 1%: false positives stay well under the target rate.
    expect(bloom.batchFalsePositives).toBeLessThan(20);
    expect(bloom.singleAbsent.filter(Boolean).length).toBeLessThanOrEqual(1);
    expect(bloom.batchAgreesWithSingle).toBe(true);
    expect(bloom.serializedLength).toBeGreaterThan(0);
    expect(bloom.roundTripSameAnswers).toBe(true);
    expect(bloom.roundTripSameBytes).toBe(true);
  });

  it("interner: stable ids, exact resolve (Unicode, NFC vs NFD distinct), batch consistent with single", () => {
    const { interner } = fromSources;
    const n = unicodeKeys.length;
    expect(new Set(interner.ids.slice(0, n)).size).toBe(n);
    // Repeats get the id of their first occurrence.
    expect(interner.ids.slice(n)).toEqual([
      interner.ids[unicodeKeys.indexOf("user:alice")],
      interner.ids[unicodeKeys.indexOf("鍵")],
      interner.ids[unicodeKeys.indexOf("e\u0301")],
    ]);
    expect(interner.ids[unicodeKeys.indexOf("e\u0301")]).not.toBe(
      interner.ids[unicodeKeys.indexOf("\u00e9")],
    );
    expect(interner.lookupMatches.every(Boolean)).toBe(true);
    expect(interner.lookupAbsent.every((id) => id === null)).toBe(true);
    expect(interner.resolveMatches.every(Boolean)).toBe(true);
    expect(interner.manyConsistent).toBe(true);
    expect(interner.manyDistinct).toBe(1_500 + n);
    expect(interner.size).toBe(1_500 + n);
  });

  it("memo table: set, overwrite, get, delete, clear", () => {
    expect(fromSources.memo).toEqual({
      gets: [1, 999, 598, null, null],
      sizeAfterSets: 200,
      deleted: [true, false, false],
      getsAfterDelete: [null, 999, 598, null, null],
      sizeAfterDelete: 199,
      getsAfterClear: [null, null, null, null, null],
      sizeAfterClear: 0,
    });
  });

  it("is deterministic within a runtime", async () => {
    expect(await runScenario(sources)).toEqual(fromSources);
  });

  it("answers the same from the built package, resolved by plain Node through package.json", async () => {
    const outcome = await runScenarioInNode();
    expect(outcome.resolved).toEqual({
      "nexus-fast": pathToFileURL(`${distDir}index.js`).href,
      "#wasm-source": pathToFileURL(`${distDir}wasm/source.node.js`).href,
    });
    const fromPackage = unwrap(outcome, "Node (built package)");
    // A difference here with correct answers above means dist/ is stale: run `npm run build`.
    expect(fromPackage).toEqual(fromSources);
  });
});
