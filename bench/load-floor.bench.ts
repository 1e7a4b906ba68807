/**
 * How fast can any store load the 100k peer workload (bench/peers/)? The load goal is 2× the hand-written
 * walker. This suite measures, in one process and run, each case starting from tuples whose strings are new (a
 * string's hash is computed once and kept in it, so a second load of the same strings would be cheaper than any
 * real one):
 * - the walker of the peer bench (bench/peers/walker.ts): two maps of maps of lists, no validation, no identity
 *   check, no revisions;
 * - an "id floor": the least a store that answers exactly must do per tuple: intern the object and the user once
 *   each (a Map of strings to ids, where every later structure keys by id), refuse a repeated identity (one
 *   open-addressing table over the three ids), link the tuple into forward and reverse lists of typed arrays, and
 *   note its revision. No model validation, no change feed, nothing for the WASM graph: less than a store needs;
 * - nexus-fast's default engine (createEngine, writes of 10,000).
 * Building the tuples is timed alone too, and the other cases include it: subtract it to compare the loads.
 *
 * Run: BENCH_TIME=1 node --import tsx --expose-gc bench/load-floor.bench.ts
 */
import { buildWorkload, model, type Tuple } from "../src/cli/demo/workload.js";
import { createEngine } from "../src/engine/engine.js";
import { runSuite } from "./harness.js";
import { Walker } from "./peers/walker.js";

const FILES_PER_FOLDER = 100;
const BATCH = 10_000;

/** The least a store answering exactly does per tuple (see the header); ids index typed arrays. */
class IdFloor {
  readonly #ids = new Map<string, number>();
  readonly #relations = new Map<string, number>();
  #mask = (1 << 18) - 1;
  #keys = new Int32Array((this.#mask + 1) * 3).fill(-1);
  #count = 0;
  #forward = new Int32Array(1 << 18).fill(-1);
  #reverse = new Int32Array(1 << 18).fill(-1);
  readonly #nextForward = new Int32Array(1 << 18);
  readonly #nextReverse = new Int32Array(1 << 18);
  readonly #subject = new Int32Array(1 << 18);
  readonly #revision = new Int32Array(1 << 18);

  #id(text: string): number {
    let id = this.#ids.get(text);
    if (id === undefined) {
      id = this.#ids.size;
      this.#ids.set(text, id);
    }
    return id;
  }

  write(tuples: readonly Tuple[], revision: number): void {
    const keys = this.#keys;
    const mask = this.#mask;
    for (const t of tuples) {
      if (t.object.indexOf(":") <= 0) throw new Error(`malformed object ${t.object}`);
      const object = this.#id(t.object);
      const user = this.#id(t.user);
      let relation = this.#relations.get(t.relation);
      if (relation === undefined) {
        relation = this.#relations.size;
        this.#relations.set(t.relation, relation);
      }
      let slot = (Math.imul(object, 0x9e3779b1) ^ Math.imul(user * 31 + relation, 0x85ebca6b)) & mask;
      let repeated = false;
      while (keys[slot * 3] !== -1) {
        if (keys[slot * 3] === object && keys[slot * 3 + 1] === relation && keys[slot * 3 + 2] === user) {
          repeated = true;
          break;
        }
        slot = (slot + 1) & mask;
      }
      if (repeated) continue;
      keys[slot * 3] = object;
      keys[slot * 3 + 1] = relation;
      keys[slot * 3 + 2] = user;
      const e = this.#count++;
      this.#subject[e] = user;
      this.#revision[e] = revision;
      this.#nextForward[e] = this.#forward[object]!;
      this.#forward[object] = e;
      this.#nextReverse[e] = this.#reverse[user]!;
      this.#reverse[user] = e;
    }
  }
}

const fresh = (): readonly Tuple[] => buildWorkload(FILES_PER_FOLDER).tuples;

await runSuite(
  "load-floor",
  [
    { name: "build the 103,360 tuples alone", fn: () => fresh() },
    {
      name: "build + walker load",
      fn: () => {
        const walker = new Walker();
        const tuples = fresh();
        for (let i = 0; i < tuples.length; i += BATCH) walker.write(tuples.slice(i, i + BATCH));
      },
    },
    {
      name: "build + id floor load",
      fn: () => {
        const floor = new IdFloor();
        const tuples = fresh();
        for (let i = 0, revision = 1; i < tuples.length; i += BATCH, revision++) {
          floor.write(tuples.slice(i, i + BATCH), revision);
        }
      },
    },
    {
      name: "build + nexus-fast load (createEngine included)",
      fn: async () => {
        const engine = await createEngine({ model });
        try {
          const tuples = fresh();
          for (let i = 0; i < tuples.length; i += BATCH)
            await engine.write({ writes: tuples.slice(i, i + BATCH) });
        } finally {
          await engine.close();
        }
      },
    },
  ],
  {
    time: 3000,
    iterations: 8,
    comparisons: [
      { subject: "build + id floor load", peer: "build + walker load", goalRatio: 2 },
      {
        subject: "build + nexus-fast load (createEngine included)",
        peer: "build + walker load",
        goalRatio: 2,
      },
    ],
  },
);
