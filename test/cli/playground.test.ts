/**
 * `nexus-fast playground` as a user runs it: the real CLI in a child process serves the built page on 127.0.0.1,
 * prints its URL, and stops cleanly (exit 0, port released) on SIGTERM. The page itself is tested in Chromium
 * (test/browser/playground.test.ts). Needs the built CLI and page (`npm run build`; `npm ci` runs it).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { PlaygroundServer } from "../../src/cli/commands/playground.js";
import { main } from "../../src/cli/program.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const built = existsSync(join(repoRoot, "dist/playground/bundle.js"));
const emptyDir = mkdtempSync(join(tmpdir(), "nexus-fast-playground-empty-"));
afterAll(() => rmSync(emptyDir, { recursive: true, force: true }));

describe("nexus-fast playground", () => {
  it("says how to build the page when it is missing, and rejects stray arguments", async () => {
    await expect(PlaygroundServer.start({ port: 0, dir: emptyDir })).rejects.toMatchObject({
      code: "not_found",
      message: expect.stringContaining("npm run build"),
    });
    const err: string[] = [];
    expect(await main(["playground", "extra"], { out: () => {}, err: (t) => err.push(t) })).toBe(2);
    expect(err.join("")).toContain('unexpected argument "extra"');
    const out: string[] = [];
    expect(await main(["help", "playground"], { out: (t) => out.push(t), err: () => {} })).toBe(0);
    expect(out.join("")).toContain("Usage: nexus-fast playground");
    if (built) {
      // A port already taken is a usage error naming it, not a stack trace (the built CLI finds the built page).
      await using taken = await PlaygroundServer.start({ port: 0, dir: join(repoRoot, "dist/playground") });
      const port = new URL(taken.url).port;
      const child = spawn(process.execPath, ["dist/cli/main.js", "playground", "--port", port], {
        cwd: repoRoot,
      });
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      expect(await new Promise((resolve) => child.once("exit", resolve))).toBe(2);
      expect(stderr).toContain(`port ${port} on 127.0.0.1 is in use`);
    }
  });

  it("serves the built page from the CLI and stops on SIGTERM", async () => {
    if (!built) throw new Error("dist/playground/bundle.js is missing: run `npm run build` first");
    const child = spawn(process.execPath, ["dist/cli/main.js", "playground", "--port", "0"], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let text = "";
        child.stdout.on("data", (chunk: Buffer) => {
          text += chunk.toString();
          const match = /http:\/\/127\.0\.0\.1:\d+\//.exec(text);
          if (match) resolve(match[0]);
        });
        child.once("exit", (code) => reject(new Error(`exited ${code} before printing a URL: ${text}`)));
      });
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("nexus-fast playground");
      const bundle = await fetch(`${url}bundle.js`);
      expect(bundle.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
      expect((await fetch(`${url}package.json`)).status).toBe(404);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      await expect(fetch(url)).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
