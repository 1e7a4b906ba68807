/**
 * Progress bars (src/cli/progress.ts) are drawn only on a terminal: a pipe, a file or CI sees no escape code. The
 * commands with long work (write of a big tuple file, storage compact / scrub / tier) report the same facts in a
 * result line, and a real pseudo-terminal (util-linux `script`) shows the bar.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { openStore } from "../../src/blobs/volume/store.js";
import { main } from "../../src/cli/program.js";
import { startProgress } from "../../src/cli/progress.js";
import { createEngine } from "../../src/engine/engine.js";
import { openFileSystem } from "../../src/fs/open.js";
import { openFileTupleStore } from "../../src/tuples/file/index.js";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, {
    out: (t) => {
      out += `${t}\n`;
    },
    err: (t) => {
      err += `${t}\n`;
    },
  });
  return { code, out, err };
}

function fakeStream(isTTY: boolean) {
  const written: string[] = [];
  return {
    written,
    stream: {
      isTTY,
      columns: 100,
      write(text: string) {
        written.push(text);
        return true;
      },
      cursorTo() {
        return true;
      },
      clearLine() {
        return true;
      },
      moveCursor() {
        return true;
      },
      clearScreenDown() {
        return true;
      },
      on() {},
      removeListener() {},
    },
  };
}

const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nexus-fast-progress-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("progress bars", () => {
  it("write nothing where the stream is not a terminal, or TERM is dumb", () => {
    for (const [tty, env] of [
      [false, {}],
      [true, { TERM: "dumb" }],
    ] as const) {
      const { stream, written } = fakeStream(tty);
      const bar = startProgress("scrub", 10, { stream, env });
      bar.update(5);
      bar.stop();
      expect(written).toEqual([]);
    }
  });

  it("draw a bar with its label and numbers on a terminal, and leave no timer after stop", async () => {
    const before = timers();
    const { stream, written } = fakeStream(true);
    const bar = startProgress("compact", 2048, { stream, env: {}, unit: "bytes" });
    expect(written.join("")).toContain("0 B/2.0 KiB");
    await new Promise((resolve) => setTimeout(resolve, 200)); // redraws are throttled (8 a second)
    bar.update(1024, 2048, "volume 1 copy");
    await new Promise((resolve) => setTimeout(resolve, 200));
    bar.stop();
    bar.stop();
    const text = written.join("");
    expect(text).toContain("compact [");
    expect(text).toContain("1.0 KiB/2.0 KiB");
    expect(text).toContain("volume 1 copy");
    expect(text).toContain("\u001b[");
    expect(timers()).toBeLessThanOrEqual(before);
  });
});

describe("long CLI work, off a terminal", () => {
  it("storage compact and scrub on a volume store: result lines, and not one escape code on stderr", async () => {
    const vol = join(dir, "vol");
    {
      await using store = await openStore({ dir: vol, volumeSize: 1 << 20 });
      const keys: string[] = [];
      for (let i = 0; i < 600; i++) {
        const bytes = new Uint8Array(2048);
        bytes[0] = i & 255;
        bytes[1] = i >> 8;
        keys.push((await store.put(bytes)).key);
      }
      for (const key of keys.slice(0, 450)) await store.delete(key);
    }
    const stderr = vi.spyOn(process.stderr, "write");
    try {
      const compacted = await run("storage", "compact", "--store", vol);
      expect(compacted.code).toBe(0);
      expect(compacted.out).toMatch(/compacted [1-9]\d* volume\(s\)/);
      const scrubbed = await run("storage", "scrub", "--store", vol, "--verify-hash");
      expect(scrubbed.code).toBe(0);
      expect(scrubbed.out).toContain("150 needle(s) checked");
      expect(scrubbed.out).toContain("0 corrupt");
      expect(stderr).not.toHaveBeenCalled();
    } finally {
      stderr.mockRestore();
    }
    expect((await run("storage", "scrub", "--store", join(dir, "missing"))).code).toBe(2);
    expect((await run("storage", "scrub")).code).toBe(2);
    expect((await run("storage", "polish", "--store", vol)).code).toBe(2);
    expect((await run("storage", "tier", "--store", vol)).code).toBe(2);
  });

  it("storage scrub, tier and compact on a NexusFS data directory", async () => {
    const data = join(dir, "fs");
    {
      await using fs = await openFileSystem({ dir: data, tiers: { intervalMs: false } });
      await fs.initTenant({ tenant: "acme", owners: ["user:alice"] });
      const alice = fs.as({ user: "user:alice", tenant: "acme" });
      for (let i = 0; i < 5; i++) await alice.write(`/f${i}.txt`, `contents ${i}`);
    }
    const scrubbed = await run("storage", "scrub", "--data", data);
    expect(scrubbed.err).toBe("");
    expect(scrubbed.out).toContain("5 object(s) checked, 0 repaired, 0 lost");
    const tiered = await run("storage", "tier", "--data", data);
    expect(tiered.out).toMatch(/tiering pass: \d+ demoted/);
    expect(tiered.code).toBe(0);
    expect((await run("storage", "compact", "--data", data)).code).toBe(0);
  });

  it("write validates a big file before its first batch, then writes it in batches", async () => {
    const lines = ["user_type,user_id,relation,object_type,object_id"];
    for (let i = 0; i < 20_500; i++) lines.push(`user,u${i % 700},direct_viewer,file,/d${i % 50}/f${i}`);
    const good = join(dir, "big.csv");
    writeFileSync(good, `${lines.join("\n")}\n`);
    const bad = join(dir, "big-bad.csv");
    writeFileSync(bad, `${lines.join("\n")}\nuser,x,no_such_relation,file,/x\n`);
    const data = join(dir, "tuples");
    const refused = await run("write", "--data", data, "--tuples", bad);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain("no_such_relation");
    {
      await using store = await openFileTupleStore({ dir: data });
      expect(await store.currentRevision()).toBe(0); // nothing written
    }
    const written = await run("write", "--data", data, "--tuples", good);
    expect(written.code).toBe(0);
    expect(written.out).toContain("after 20500 write(s)");
    await using store = await openFileTupleStore({ dir: data });
    expect(await store.currentRevision()).toBe(2); // two batches
    await using engine = await createEngine({
      model: (await import("../../src/model/preset.js")).nexusFilesystemModel,
      store,
    });
    expect((await engine.read({ object: "file:" })).length).toBe(20_500);
  }, 60_000);
});

describe("long CLI work, in real processes", () => {
  const vol = () => join(dir, "vol-proc");
  beforeAll(async () => {
    await using store = await openStore({ dir: vol() });
    for (let i = 0; i < 50; i++) await store.put(new TextEncoder().encode(`blob ${i}`));
  });
  const command = ["--import", "tsx", "src/cli/main.ts", "storage", "scrub", "--store"];

  it("prints no escape code when stderr is a pipe", () => {
    const result = spawnSync(process.execPath, [...command, vol()], { encoding: "utf8" });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("50 needle(s) checked");
    expect(result.stderr).not.toContain("\u001b");
    expect(result.stderr).not.toContain("\r");
  });

  const hasScript = spawnSync("script", ["--version"]).status === 0;
  it.skipIf(!hasScript)("draws the bar on a pseudo-terminal (util-linux script)", () => {
    const line = [process.execPath, ...command, vol()].map((a) => `'${a}'`).join(" ");
    const result = spawnSync("script", ["-qec", line, "/dev/null"], {
      encoding: "utf8",
      env: { ...process.env, TERM: "xterm" },
    });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("scrub [");
    expect(result.stdout).toContain("\u001b[");
    expect(result.stdout).toContain("50 needle(s) checked");
  });
});
