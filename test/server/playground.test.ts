/**
 * `nexus-fast serve` hands out the playground page at /playground/ (src/server/routes/playground.ts): public even
 * when preshared keys guard the API (a page load sends no bearer key), only its two files, and the API stays
 * guarded. The page itself is tested in Chromium (test/browser/playground.test.ts). Needs dist/playground
 * (`npm run build`).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PLAYGROUND_DIR } from "../../src/playground/files.js";
import { startTestServer } from "./helpers.js";

describe("the server's /playground", () => {
  it("serves the page and its bundle without a key, and nothing else around it", async () => {
    if (!existsSync(join(PLAYGROUND_DIR, "bundle.js"))) {
      throw new Error("dist/playground/bundle.js is missing: run `npm run build` first");
    }
    await using server = await startTestServer({ presharedKeys: ["secret"], logLevel: "silent" });
    const base = server.url.replace(/\/$/, "");

    const bare = await fetch(`${base}/playground`, { redirect: "manual" });
    expect(bare.status).toBe(301);
    expect(bare.headers.get("location")).toBe("/playground/");

    const page = await fetch(`${base}/playground/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await page.text()).toContain('<script type="module" src="./bundle.js">');
    const bundle = await fetch(`${base}/playground/bundle.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get("content-type")).toBe("text/javascript; charset=utf-8");

    // Only those files are public; the API still needs the key.
    expect((await fetch(`${base}/playground/app.js`)).status).toBe(401);
    expect((await fetch(`${base}/stores`)).status).toBe(401);
    expect((await fetch(`${base}/stores`, { headers: { authorization: "Bearer secret" } })).status).toBe(200);
  });
});
