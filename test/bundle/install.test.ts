/**
 * The install story in the README, as a user runs it: pack the built package (scripts/pack.mjs), install the
 * tarball into a fresh app (its dependencies come from the registry, as a user's would), and use the public
 * subpaths from that app in a separate Node process: a check and a listing through the root entry, a storage round trip through
 * `nexus-fast/storage`. Needs dist/ (`npm run build`; the tarball carries dist/, not the sources).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { assertDistBuilt, repoRoot } from "../runtimes/dist.js";

const run = promisify(execFile);
const app = mkdtempSync(join(tmpdir(), "nexus-fast-app-"));

afterAll(() => rmSync(app, { recursive: true, force: true }));

const script = `
import { createEngine } from "nexus-fast";
import { openStore } from "nexus-fast/storage";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

const engine = await createEngine({ model: \`model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]\` });
await engine.write({ writes: [{ user: "user:anne", relation: "viewer", object: "doc:readme" }] });
const allowed = await engine.check({ user: "user:anne", relation: "viewer", object: "doc:readme" });
const listed = await engine.listObjects({ user: "user:anne", relation: "viewer", type: "doc" });
await engine.close();

const dir = mkdtempSync(join(tmpdir(), "nexus-fast-app-blobs-"));
const store = await openStore({ dir });
const { key } = await store.put(new TextEncoder().encode("hello"));
const back = new TextDecoder().decode(await store.get(key));
await store.close();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ allowed, listed, back }));
`;

describe("the packed tarball in a new app", () => {
  it("installs and answers a check, a listing and a storage round trip", async () => {
    assertDistBuilt({ scenario: false });
    // scripts/pack.mjs, as the README says: the tarball carries dist/ and a package.json without the checkout's
    // scripts, so the app installs it without building and without being asked to approve a `prepare`.
    const { stdout: packed } = await run(process.execPath, ["scripts/pack.mjs", "--pack-destination", app], {
      cwd: repoRoot,
    });
    const filename = basename(packed.trim());
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    writeFileSync(join(app, "main.mjs"), script);
    const install = await run("npm", ["install", "--no-fund", "--no-audit", `./${filename}`], { cwd: app });
    expect(install.stderr).not.toMatch(/ERR!/);
    // npm 11 names every package whose install scripts the app has not approved: nexus-fast has none to approve.
    expect(install.stderr.split("\n").filter((line) => /install-scripts\s+nexus-fast@/.test(line))).toEqual(
      [],
    );
    const { stdout } = await run(process.execPath, ["main.mjs"], { cwd: app });
    expect(JSON.parse(stdout)).toEqual({ allowed: true, listed: ["doc:readme"], back: "hello" });
  }, 300_000);
});
