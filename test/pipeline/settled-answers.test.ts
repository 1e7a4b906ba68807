/**
 * Checks answered without waiting (a cache hit, a first-pass kernel answer) hand back a settled promise of their
 * own. They were once two shared frozen promises (less garbage a check), which killed the process under async
 * hooks: Node writes an async id onto the promise a `then` or `await` chains from, and with AsyncLocalStorage
 * (or any createHook) switched on after the promise was made, writing onto a frozen one throws inside the hook,
 * which Node treats as fatal. Review finding; the AsyncLocalStorage test failed before the fix.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";

const MODEL = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]`;

describe("settled check answers", () => {
  it("first-pass and repeated checks answer their own question, each with a promise of its own", async () => {
    await using engine = await createEngine({ model: MODEL });
    const { token } = await engine.write({
      writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }],
    });
    const consistency = { atLeastAsFresh: token };
    const ask = (user: string, object: string) =>
      engine.check({ user, relation: "viewer", object, consistency });
    for (let pass = 0; pass < 3; pass++) {
      const yes = ask("user:anne", "doc:1");
      const no = ask("user:bob", "doc:1");
      const other = ask("user:anne", "doc:2");
      expect(await Promise.all([yes, no, other])).toEqual([true, false, false]);
      expect(no).not.toBe(other);
    }
  });

  it("a cached check awaited inside AsyncLocalStorage.run answers (the process survives)", () => {
    const script = `
import { AsyncLocalStorage } from "node:async_hooks";
import { createEngine } from "./src/engine/engine.ts";
const engine = await createEngine({ model: ${JSON.stringify(MODEL)} });
const { token } = await engine.write({ writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }] });
const q = { user: "user:anne", relation: "viewer", object: "doc:1", consistency: { atLeastAsFresh: token } };
await engine.check(q);
const als = new AsyncLocalStorage();
const allowed = await als.run({ request: 1 }, async () => await engine.check(q));
const first = await als.run({ request: 2 }, async () => await engine.check({ ...q, user: "user:bob" }));
console.log("allowed=" + allowed + " bob=" + first);
await engine.close();`;
    const out = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: process.cwd(),
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(out.stderr).not.toContain("not extensible");
    expect(out.stdout).toContain("allowed=true bob=false");
    expect(out.status).toBe(0);
  }, 90_000);
});
