/**
 * The change stream over HTTP is filtered per user, on a real `nexus-fast serve --fs DIR` process: two users in
 * each of two tenants watch at once, and each sees only events on paths it may read, permission events naming
 * it, and redacted "something changed" events for group grants (no path, no subject); hidden stretches show as
 * `position` lines, so a caching client's synced() still returns.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { FsClient } from "../../src/fs/client.js";
import type { FsEvent } from "../../src/fs/events.js";
import type { Caller } from "../../src/fs/filesystem.js";
import { HttpFileSystem } from "../../src/fs/http.js";
import { ALICE, BOB, CAROL, DAVE, tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const root = fileURLToPath(new URL("../../", import.meta.url));

function serve(dir: string): Promise<{ child: ChildProcess; url: string; exit: Promise<unknown> }> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(root, "src/cli/main.ts"),
      "serve",
      "--memory",
      "--port",
      "0",
      "--fs",
      dir,
      "--fs-owner",
      `${ALICE.user}@acme`,
      "--fs-owner",
      `${CAROL.user}@globex`,
      "--preshared-key",
      "k1",
      "--log-level",
      "info",
    ],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  const exit = new Promise((resolve) => child.on("exit", resolve));
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (match) resolve({ child, url: match[1]!, exit });
    });
    child.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
}

/** Collects a caller's filtered stream in the background. */
function collect(remote: HttpFileSystem, caller: Caller, after: string) {
  const stop = new AbortController();
  const events: FsEvent[] = [];
  const done = (async () => {
    try {
      for await (const e of remote.watch({ after, signal: stop.signal, caller })) events.push(e);
    } catch (e) {
      if (!stop.signal.aborted) throw e;
    }
  })();
  return {
    events,
    stop: () => {
      stop.abort();
      return done;
    },
  };
}

it("shows each user only the events it may see, over a real server process", async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const server = await serve(dir);
  cleanups.push(async () => {
    server.child.kill("SIGTERM");
    await server.exit;
  });
  const remote = await HttpFileSystem.connect({ url: server.url, key: "k1" });
  const start = await remote.currentToken();
  const watchers = new Map([ALICE, BOB, CAROL, DAVE].map((c) => [c.user, collect(remote, c, start)]));

  await remote.mkdir(ALICE, "/docs");
  await remote.write(ALICE, "/docs/a", "a");
  await remote.mkdir(ALICE, "/secret");
  await remote.write(ALICE, "/secret/s", "s");
  await remote.share(ALICE, "/docs/a", { user: BOB.user, relation: "viewer" });
  await remote.write(ALICE, "/docs/a", "a2");
  await remote.share(ALICE, "/docs/a", { user: CAROL.user, relation: "viewer", tenant: "globex" });
  await remote.mkdir(CAROL, "/g");
  await remote.write(CAROL, "/g/x", "x");
  await remote.share(CAROL, "/g", { user: DAVE.user, relation: "editor" });
  await remote.write(DAVE, "/g/y", "y");
  await remote.share(ALICE, "/secret", { user: "group:eng", relation: "viewer" });
  await remote.rename(ALICE, "/secret/s", "/secret/t");
  await remote.remove(ALICE, "/docs/a");
  await remote.write(ALICE, "/end", "end");

  // Every watcher has reached the end (its own event, or a position line past it).
  const end = await remote.currentToken();
  const position = (t: string) => Number(t.slice(t.lastIndexOf(".") + 1));
  for (let i = 0; i < 200; i++) {
    const behind = [...watchers.values()].some(
      (w) => !w.events.some((e) => position(e.token) >= position(end)),
    );
    if (!behind) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  for (const w of watchers.values()) await w.stop();
  const seen = (c: Caller) =>
    watchers
      .get(c.user)!
      .events.filter((e) => e.kind !== "position")
      .map((e) => [e.kind, e.tenant, e.path ?? "-", e.change?.user ?? "-"].join(" "));

  expect(seen(ALICE)).toEqual([
    "created acme /docs -",
    "created acme /docs/a -",
    "created acme /secret -",
    "created acme /secret/s -",
    "permission acme /docs/a user:bob",
    "written acme /docs/a -",
    "permission acme /docs/a user:carol",
    "permission acme /secret group:eng",
    "renamed acme /secret/t -",
    "removed acme /docs/a -",
    "created acme /end -",
  ]);
  // Bob: his grant, what happens to the file it lets him read (its other grants too), its removal; a group
  // grant elsewhere only as "something changed".
  expect(seen(BOB)).toEqual([
    "permission acme /docs/a user:bob",
    "written acme /docs/a -",
    "permission acme /docs/a user:carol",
    "permission acme - -",
    "removed acme /docs/a -",
  ]);
  // Carol: her own tenant, and the acme file shared with her across tenants.
  expect(seen(CAROL)).toEqual([
    "permission acme /docs/a user:carol",
    "created globex /g -",
    "created globex /g/x -",
    "permission globex /g user:dave",
    "created globex /g/y -",
    "permission acme - -",
    "removed acme /docs/a -",
  ]);
  // Dave holds nothing in acme: he does not even learn that something changed there.
  expect(seen(DAVE)).toEqual(["permission globex /g user:dave", "created globex /g/y -"]);
  // No event names a path its watcher may not read; grantees never leave the server.
  for (const w of watchers.values()) for (const e of w.events) expect(e.grantees).toBeUndefined();
  const redacted = watchers
    .get(BOB.user)!
    .events.find((e) => e.kind === "permission" && e.path === undefined);
  expect(redacted).toEqual({ token: redacted!.token, kind: "permission", tenant: "acme" });

  // A caching client over the filtered stream: synced() returns though the last events are hidden from it.
  const dave = new FsClient(remote, DAVE);
  cleanups.push(() => dave.close());
  await remote.write(ALICE, "/hidden", "h");
  await dave.synced();
  // The stream needs a caller.
  const anonymous = remote.watch({ after: start });
  await expect(anonymous.next()).rejects.toMatchObject({ code: "invalid_argument" });
}, 60_000);
