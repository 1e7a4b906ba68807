/** RevisionReader: concurrent callers share reads, and no caller gets a read that started before it called. */
import { describe, expect, it } from "vitest";
import { RevisionReader } from "../../src/cluster/revision-reader.js";

describe("RevisionReader", () => {
  it("shares reads among concurrent callers, each answered by a read started after its call", async () => {
    let revision = 0;
    const started: number[] = [];
    const finish: (() => void)[] = [];
    const reader = new RevisionReader(() => {
      started.push(revision);
      const at = revision;
      return new Promise<number>((resolve) => finish.push(() => resolve(at)));
    });
    const first = reader.latest(); // starts read 1 at revision 0
    revision = 1; // a write acknowledged now must be seen by the callers below
    const second = reader.latest();
    const third = reader.latest();
    expect(started).toEqual([0]);
    finish.shift()!();
    expect(await first).toBe(0);
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toEqual([0, 1]); // one read for both waiting callers, started after they called
    finish.shift()!();
    expect(await second).toBe(1);
    expect(await third).toBe(1);
    expect(reader.reads).toBe(2);
    expect(reader.calls).toBe(3);
  });

  it("passes a failed read on to its callers and reads again next time", async () => {
    let fail = true;
    const reader = new RevisionReader(async () => {
      if (fail) throw new Error("down");
      return 7;
    });
    await expect(reader.latest()).rejects.toThrow("down");
    fail = false;
    expect(await reader.latest()).toBe(7);
  });
});
