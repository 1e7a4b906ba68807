/**
 * writeOfInSlices validates a write as writeOf does, yielding to the event loop between slices: on random writes
 * (valid ones, and ones with a bad tuple or delete anywhere) it must give writeOf's tuples or writeOf's error, and a
 * large write must let other tasks run while it is validated.
 */
import { describe, expect, it } from "vitest";
import { writeOf, writeOfInSlices } from "../../src/engine/tuples.js";
import type { WriteRequest } from "../../src/engine/types.js";
import { compileModelAsync } from "../../src/model/index.js";
import { seededRandom } from "../../src/util/random.js";

const MODEL = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define parent: [doc]
    define viewer: [user, user:*, group#member]
`;

async function outcome(run: () => unknown): Promise<unknown> {
  try {
    return { value: await run() };
  } catch (error) {
    return { error: (error as Error).message, code: (error as { code?: string }).code };
  }
}

describe("writeOfInSlices", () => {
  it("gives writeOf's tuples or error on random writes, bad tuples anywhere", async () => {
    const program = await compileModelAsync(MODEL);
    const random = seededRandom(13);
    const good = (i: number) =>
      random() < 0.5
        ? { object: `doc:d${i}`, relation: "parent", user: `doc:p${i % 7}` }
        : {
            object: `group:g${i % 9}`,
            relation: "member",
            user: random() < 0.5 ? `user:u${i}` : "group:x#member",
          };
    const bad = [
      { object: "doc:1", relation: "nope", user: "user:a" },
      { object: "doc", relation: "viewer", user: "user:a" },
      { object: "doc:1", relation: "viewer", user: "bad:1" },
      { object: "doc:1", relation: "viewer", user: "user:a", colour: "red" },
      null,
    ];
    for (let round = 0; round < 30; round++) {
      const n = Math.floor(random() * 2000);
      const writes: unknown[] = Array.from({ length: n }, (_, i) => good(i));
      const deletes: unknown[] = Array.from({ length: Math.floor(random() * 600) }, (_, i) => good(i + 5000));
      if (random() < 0.4 && n > 0) writes[Math.floor(random() * n)] = bad[Math.floor(random() * bad.length)];
      if (random() < 0.2 && deletes.length > 0) deletes[Math.floor(random() * deletes.length)] = bad[1];
      const request = { writes, deletes, ...(random() < 0.2 ? { tenant: "t1" } : {}) } as WriteRequest;
      const want = await outcome(() => writeOf(program, request));
      const got = await outcome(() => writeOfInSlices(program, request, 0));
      expect(got, `round ${round}`).toEqual(want);
    }
    for (const request of [{ writes: [] }, { writes: "x" }, { writes: [good(1)], onDuplicate: "maybe" }]) {
      expect(await outcome(() => writeOfInSlices(program, request as unknown as WriteRequest))).toEqual(
        await outcome(() => writeOf(program, request as unknown as WriteRequest)),
      );
    }
  });

  it("lets other tasks run while a large write is validated", async () => {
    const program = await compileModelAsync(MODEL);
    const writes = Array.from({ length: 20_000 }, (_, i) => ({
      object: `doc:d${i}`,
      relation: "parent",
      user: `doc:p${i % 100}`,
    }));
    let ticks = 0;
    let done = false;
    const tick = () => {
      ticks++;
      if (!done) setImmediate(tick);
    };
    setImmediate(tick);
    const result = await writeOfInSlices(program, { writes }, 0);
    done = true;
    expect(result.writes.length).toBe(20_000);
    expect(ticks).toBeGreaterThan(20);
  });

  it("yields with setTimeout where there is no setImmediate (browsers, workerd)", async () => {
    const program = await compileModelAsync(MODEL);
    const writes = Array.from({ length: 5_000 }, (_, i) => ({
      object: `doc:d${i}`,
      relation: "parent",
      user: "doc:p",
    }));
    const immediate = globalThis.setImmediate;
    (globalThis as { setImmediate?: unknown }).setImmediate = undefined;
    try {
      const result = await writeOfInSlices(program, { writes }, 0);
      expect(result.writes.length).toBe(5_000);
    } finally {
      globalThis.setImmediate = immediate;
    }
  });
});
