/**
 * Tiger's change log (src/pipeline/tiger/change-log.ts) keeps a change as its tuple and one number: `between`
 * gives back each change's revision and kind as delivered (writes, deletes, expiries), over revision ranges.
 */
import { describe, expect, it } from "vitest";
import { ChangeLog } from "../../src/pipeline/tiger/change-log.js";
import type { StoredChange } from "../../src/tuples/types.js";

describe("Tiger's ChangeLog kinds", () => {
  it("gives back writes, deletes and expiries with their revisions", () => {
    const tuple = (i: number) => ({ i }) as unknown as StoredChange["tuple"];
    const changes: StoredChange[] = [
      { revision: 1, op: "write", tuple: tuple(1) },
      { revision: 1, op: "delete", tuple: tuple(2) },
      { revision: 2, op: "delete", tuple: tuple(3), expired: true },
      { revision: 2, op: "write", tuple: tuple(4) },
      { revision: 5, op: "delete", tuple: tuple(5) },
    ];
    const log = new ChangeLog(100);
    log.append(changes.slice(0, 2));
    log.append(changes.slice(2));
    expect(log.between(0, 5)).toStrictEqual(changes);
    expect(log.between(1, 4)).toStrictEqual(changes.slice(2, 4));
    expect(log.between(2, 5)).toStrictEqual(changes.slice(4));
    expect(log.between(5, 9)).toStrictEqual([]);
    expect(log.between(1, 5)[0]!.tuple).toBe(changes[2]!.tuple);
  });
});
