/**
 * The README's permission example runs as written, with the engine's defaults: the first `ts` block of the
 * "Permissions" section is executed (its `nexus-fast` import bound to src/), every query's answer is recorded, and
 * the answers must equal the `// true` / `// -> [...]` comments, in order.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createEngine, type Engine, type EngineOptions } from "../../src/engine/engine.js";
import { NexusError } from "../../src/util/errors.js";

const QUERIES = new Set(["check", "checkBulk", "listObjects", "listUsers", "filter", "expand", "read"]);

function permissionExample(): string {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Permissions"));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (match === null) throw new Error("README: no ts block under ## Permissions");
  return match[1]!;
}

/** The answers the comments promise, in order: `// true`, `// false`, `// -> <JSON>`. */
function promised(code: string): unknown[] {
  const out: unknown[] = [];
  for (const m of code.matchAll(/\/\/ (?:-> )?(true|false|\[.*\])\s*$/gm)) out.push(JSON.parse(m[1]!));
  return out;
}

describe("README", () => {
  it("the permission example answers what its comments say, with defaults", async () => {
    const code = permissionExample();
    const expected = promised(code);
    expect(expected.length).toBeGreaterThanOrEqual(4);
    const answers: unknown[] = [];
    const engines: Engine[] = [];
    // The engine the example creates, with every query's answer recorded.
    const recording = async (options: EngineOptions): Promise<Engine> => {
      const engine = await createEngine(options);
      engines.push(engine);
      return new Proxy(engine, {
        get(target, key) {
          const value = Reflect.get(target, key, target);
          if (typeof value !== "function") return value;
          if (typeof key === "string" && QUERIES.has(key)) {
            return async (...args: unknown[]) => {
              const answer = await value.apply(target, args);
              answers.push(answer);
              return answer;
            };
          }
          return value.bind(target);
        },
      });
    };
    const body = code.replace(/^import .* from "nexus-fast";$/m, "");
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
      ...args: string[]
    ) => (...args: unknown[]) => Promise<void>;
    await new AsyncFunction("createEngine", "NexusError", body)(recording, NexusError);
    expect(answers).toEqual(expected);
    expect(engines).toHaveLength(1);
    expect(engines[0]!.closed).toBe(true);
  });
});
