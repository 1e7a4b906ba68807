import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TierLedger, trackerFiles } from "../../src/blobs/tiered/ledger.js";

const roots: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "nexus-tracker-"));
  roots.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(roots.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const readLog = (dir: string) => readFile(join(dir, trackerFiles.log), "utf8");

const KEY_A = "a".repeat(64);
const KEY_B = "b".repeat(64);

describe("TierLedger", () => {
  it("records writes, reads and moves, and reloads them", async () => {
    const dir = tempDir();
    let now = 1000;
    const tracker = await TierLedger.open({ dir, now: () => now });
    tracker.recordPut(KEY_A, 10);
    tracker.recordPut(KEY_B, 20);
    now = 2000;
    tracker.recordRead(KEY_A);
    tracker.recordRead(KEY_A);
    await tracker.begin(KEY_B, "hot", "warm");
    await tracker.finish(KEY_B, "warm");
    await tracker.close();

    const again = await TierLedger.open({ dir, now: () => now });
    expect(again.get(KEY_A)).toMatchObject({ size: 10, tier: "hot", createdAt: 1000, lastAccessAt: 2000 });
    expect(again.get(KEY_A)?.readsInTier).toBe(2);
    expect(again.get(KEY_B)).toMatchObject({ tier: "warm", readsInTier: 0, pending: undefined });
    expect(again.get(KEY_A)?.refs).toBe(1);
    again.recordPut(KEY_A, 10);
    expect(again.get(KEY_A)?.refs).toBe(2);
    expect(again.release(KEY_A)).toBe(1);
    again.adopt(KEY_A, 99, "cold");
    expect(again.get(KEY_A)).toMatchObject({ size: 10, tier: "hot" });
    await again.commit();
    await again.finish(KEY_A, "deleted");
    await again.close();
    const third = await TierLedger.open({ dir });
    expect(third.get(KEY_A)).toBeUndefined();
    expect(third.size).toBe(1);
    await third.close();
  });

  it("keeps the start of a move even when the process dies right after it", async () => {
    const dir = tempDir();
    const tracker = await TierLedger.open({ dir });
    tracker.recordPut(KEY_A, 5);
    await tracker.flush();
    await tracker.begin(KEY_A, "hot", "cold");
    // Simulate a crash: no close(); the log on disk is all a new process sees (the lock's pid is ours, alive,
    // so a second open here must say `locked`).
    await expect(TierLedger.open({ dir })).rejects.toMatchObject({ code: "locked" });
    writeFileSync(join(dir, trackerFiles.lock), "4194305");
    const reopened = await TierLedger.open({ dir });
    expect(reopened.get(KEY_A)?.pending).toEqual({ from: "hot", to: "cold" });
    await reopened.close();
    await tracker.close().catch(() => {});
  });

  it("skips a torn last line", async () => {
    const dir = tempDir();
    mkdirSync(dir, { recursive: true });
    appendFileSync(
      join(dir, trackerFiles.log),
      `${JSON.stringify({ k: KEY_A, s: 3, t: "cold", c: 1, a: 2, r: 0 })}\n{"k":"bbbb`,
    );
    const tracker = await TierLedger.open({ dir });
    expect(tracker.get(KEY_A)?.tier).toBe("cold");
    expect(tracker.skippedLines).toBe(1);
    await tracker.close();
  });

  it("flushes batched reads on its own and leaves no timer after close", async () => {
    const dir = tempDir();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    const tracker = await TierLedger.open({ dir, flushDelayMs: 10 });
    tracker.recordPut(KEY_A, 1);
    await new Promise((r) => setTimeout(r, 50));
    const reopened = await readLog(dir);
    expect(reopened).toContain(KEY_A);
    tracker.recordRead(KEY_A);
    await tracker.close();
    expect(timers()).toBeLessThanOrEqual(before);
  });
});
