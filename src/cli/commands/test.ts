/**
 * `nexus-fast test`: runs OpenFGA store files' tests. Prints failures (every assertion with --verbose) and a
 * summary; exit 0 when all pass, 1 when any fails, 2 when a file cannot be read or understood.
 */
import { parse, UsageError } from "../args.js";
import type { Io } from "../io.js";
import { runStoreFile } from "../store-file.js";
import { formatMs } from "../table.js";

export async function runTest(args: string[], io: Io): Promise<number> {
  const parsed = parse(args, { verbose: { type: "boolean" } });
  if (parsed.positionals.length === 0) throw new UsageError("expected at least one store file");
  const verbose = parsed.values.verbose === true;
  let passed = 0;
  let failed = 0;
  let tests = 0;
  const started = performance.now();
  for (const path of parsed.positionals) {
    const result = await runStoreFile(path);
    tests += result.tests;
    io.out(`${result.name} (${path})`);
    const byTest = new Map<string, typeof result.results>();
    for (const r of result.results) byTest.set(r.test, [...(byTest.get(r.test) ?? []), r]);
    for (const [test, results] of byTest) {
      const bad = results.filter((r) => !r.passed);
      io.out(
        `  ${bad.length === 0 ? "PASS" : "FAIL"} ${test}: ${results.length - bad.length}/${results.length}`,
      );
      for (const r of verbose ? results : bad) {
        io.out(
          r.passed
            ? `    ok   ${r.what} = ${r.actual}`
            : `    FAIL ${r.what}: expected ${r.expected}, got ${r.actual}`,
        );
      }
    }
    passed += result.results.filter((r) => r.passed).length;
    failed += result.results.filter((r) => !r.passed).length;
  }
  io.out(
    `\n${tests} test(s), ${passed + failed} assertion(s): ${passed} passed, ${failed} failed (${formatMs(performance.now() - started)})`,
  );
  return failed === 0 ? 0 : 1;
}
