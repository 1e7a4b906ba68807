/**
 * Three real `nexus-fast serve --postgres … --cluster …` processes over one PostgreSQL schema (this run's own) and
 * one Redis (the machine's, under this run's key prefix), on loopback:
 * - OpenFGA's matrix through the unchanged @openfga/sdk, each request sent to a random member (a balancer in front);
 * - a write acknowledged by one member is read by every other at once; a changes token from one member continues
 *   on another; a watch on one member streams every write made through the others, in order, without gap;
 * - a member killed mid-load: no request fails after the SDK's retry, every answer is right, the ring drops it;
 * - every member stopped and three new ones started: stores, models, tuples and assertions are all there.
 * The matrix runs every 10th test by default (about 30 runs; each builds engines on its store's owner and asks over
 * HTTP and SQL); CLUSTER_CONFORMANCE=full runs all of it.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { OpenFgaClient } from "@openfga/sdk";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runConformanceFile } from "../../src/conformance/runner.js";
import { modelJson, sdkEngineFactory } from "../server/helpers.js";
import {
  cleanup,
  dropPrefix,
  eventually,
  health,
  type Member,
  metric,
  PG_URL,
  redisAvailable,
  startBalancer,
  startMember,
  stopMember,
  uniqueName,
} from "./helpers.js";

/** An API answer's JSON, read by the assertions. */
// biome-ignore lint/suspicious/noExplicitAny: the assertions check the shape
type Answer = any;
const folder = fileURLToPath(new URL("../../../shared/conformance/openfga/", import.meta.url));
const available = await redisAvailable();
const full = process.env.CLUSTER_CONFORMANCE === "full";

const MODEL = modelJson(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define owner: [user]
    define viewer: [user, group#member] or owner`);

const schema = uniqueName("cluster");
const prefix = `${uniqueName("cluster")}:`;
let members: Member[] = [];
let live: string[] = [];
let balancer: { url: string; close(): Promise<void> };

/** A request answered by `url` itself (the header marks it forwarded, so the member does not forward it again). */
async function pinned(
  url: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Answer }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { "content-type": "application/json", "x-nexus-forwarded": "test" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  return { status: response.status, json: text === "" ? undefined : JSON.parse(text.split("\n")[0]!) };
}

function sdk(storeId?: string): OpenFgaClient {
  return new OpenFgaClient({
    apiUrl: balancer.url,
    ...(storeId !== undefined ? { storeId } : {}),
    retryParams: { maxRetry: 5, minWaitInMs: 50 },
  });
}

async function startAll(n: number): Promise<void> {
  members = await Promise.all(Array.from({ length: n }, () => startMember({ schema, prefix })));
  live = members.map((m) => m.url);
  await eventually(
    async () => (await Promise.all(live.map(health))).every((h) => h.cluster?.members === n),
    20_000,
    `${n} members to see each other`,
  );
}

describe.skipIf(!available)("a cluster of three members over one PostgreSQL and one Redis", () => {
  beforeAll(async () => {
    try {
      await startAll(3);
      balancer = await startBalancer(() => live);
    } catch (error) {
      await cleanup();
      throw error;
    }
  }, 180_000);

  afterAll(async () => {
    await balancer?.close();
    await Promise.all(members.map((m) => stopMember(m)));
    await cleanup();
    await dropPrefix(prefix);
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }, 120_000);

  it.skipIf(!existsSync(folder))(
    `passes OpenFGA's matrix through the SDK, a random member per request${full ? "" : " (every 10th test)"}`,
    async () => {
      for (const name of ["consolidated_1_1_tests.yaml", "abac_tests.yaml"]) {
        const text = readFileSync(`${folder}${name}`, "utf8");
        const names = (parse(text) as { tests: { name: string }[] }).tests.map((t) => t.name);
        const chosen = new Set(full ? names : names.filter((_, i) => i % 10 === 0));
        const started = performance.now();
        const report = await runConformanceFile(text, {
          createEngine: sdkEngineFactory({ url: balancer.url }),
          filter: (test) => chosen.has(test),
        });
        const summary = report.failures.map(
          (f) => `${f.test} [${f.variant}] stage ${f.stage} ${f.kind}#${f.index}: ${f.message}`,
        );
        console.log(
          `${name} on 3 members: ${chosen.size} tests, ${report.runs} runs, ${report.passed}/${report.assertions} assertions in ${Math.round(performance.now() - started)} ms`,
        );
        expect(summary, `seed ${report.seed}`).toEqual([]);
        expect(report.passed).toBe(report.assertions);
        expect(report.assertions).toBeGreaterThan(10);
      }
      // The requests were spread: every member forwarded some to owners.
      for (const url of live)
        expect(await metric(url, 'nexus_cluster_requests{kind="forwarded"}')).toBeGreaterThan(0);
    },
    full ? 3_600_000 : 600_000,
  );

  it("reads a write acknowledged by one member on every other at once; tokens and watch streams work across members", async () => {
    const [a, b, c] = live as [string, string, string];
    const store = (await pinned(a, "POST", "/stores", { name: "across" })).json.id as string;
    // The store and its model were made by two different members; the third answers about them at once.
    const model = await pinned(b, "POST", `/stores/${store}/authorization-models`, MODEL);
    expect(model.status).toBe(201);
    const check = (url: string, user: string, object: string) =>
      pinned(url, "POST", `/stores/${store}/check`, { tuple_key: { user, relation: "viewer", object } });
    for (let round = 0; round < 6; round++) {
      const [writer, reader1, reader2] = [live[round % 3]!, live[(round + 1) % 3]!, live[(round + 2) % 3]!];
      const object = `doc:${round}`;
      const write = await pinned(writer, "POST", `/stores/${store}/write`, {
        writes: { tuple_keys: [{ user: "user:anne", relation: "viewer", object }] },
      });
      expect(write.status).toBe(200);
      expect((await check(reader1, "user:anne", object)).json.allowed).toBe(true);
      expect((await check(reader2, "user:anne", object)).json.allowed).toBe(true);
      const removed = await pinned(reader1, "POST", `/stores/${store}/write`, {
        deletes: { tuple_keys: [{ user: "user:anne", relation: "viewer", object }] },
      });
      expect(removed.status).toBe(200);
      expect((await check(reader2, "user:anne", object)).json.allowed).toBe(false);
      expect((await check(writer, "user:anne", object)).json.allowed).toBe(false);
    }

    // A changes token from one member continues on another.
    const first = await pinned(a, "GET", `/stores/${store}/changes`);
    const token = first.json.continuation_token as string;
    await pinned(b, "POST", `/stores/${store}/write`, {
      writes: { tuple_keys: [{ user: "user:bob", relation: "viewer", object: "doc:next" }] },
    });
    const next = await pinned(
      c,
      "GET",
      `/stores/${store}/changes?continuation_token=${encodeURIComponent(token)}`,
    );
    expect(next.json.changes.map((ch: Answer) => ch.tuple_key.user)).toEqual(["user:bob"]);

    // A watch on one member sees every write made through the others, in order, without gap or duplicate.
    const watchToken = next.json.continuation_token as string;
    const abort = new AbortController();
    const watch = await fetch(
      `${c}/stores/${store}/watch?continuation_token=${encodeURIComponent(watchToken)}`,
      {
        signal: abort.signal,
      },
    );
    const lines: Answer[] = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let partial = "";
      for await (const chunk of watch.body as unknown as AsyncIterable<Uint8Array>) {
        partial += decoder.decode(chunk, { stream: true });
        const parts = partial.split("\n");
        partial = parts.pop()!;
        for (const part of parts) if (part !== "") lines.push(JSON.parse(part));
        if (lines.length >= 30) break;
      }
    })().catch(() => undefined);
    const client = sdk(store);
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        client.write({ writes: [{ user: `user:w${i}`, relation: "viewer", object: "doc:watched" }] }),
      ),
    );
    await eventually(() => lines.length >= 30, 15_000, "30 watch lines");
    abort.abort();
    await reading;
    expect(new Set(lines.map((l) => l.result.tuple_key.user)).size).toBe(30);
    const revisions = lines.map((l) =>
      Number(JSON.parse(Buffer.from(l.result.continuation_token, "base64url").toString()).r ?? 0),
    );
    expect(lines).toHaveLength(30);
    for (let i = 1; i < revisions.length; i++)
      expect(revisions[i]!).toBeGreaterThanOrEqual(revisions[i - 1]!);
  }, 120_000);

  it("loses no request when a member is killed mid-load (after the SDK's retry), and the ring drops it", async () => {
    const admin = sdk();
    const stores: string[] = [];
    for (let i = 0; i < 6; i++) stores.push((await admin.createStore({ name: `load-${i}` })).id);
    const expected = new Map<string, boolean>();
    for (const store of stores) {
      const client = sdk(store);
      await client.writeAuthorizationModel(MODEL as never);
      await client.write({
        writes: [
          { user: "user:anne", relation: "member", object: "group:eng" },
          { user: "group:eng#member", relation: "viewer", object: "doc:plan" },
          { user: "user:carl", relation: "owner", object: "doc:plan" },
        ],
      });
      expected.set(`${store} user:anne`, true);
      expected.set(`${store} user:carl`, true);
      expected.set(`${store} user:dave`, false);
    }
    const victim = members[2]!;
    let failures = 0;
    let wrong = 0;
    let done = 0;
    let stop = false;
    const clients = new Map(stores.map((store) => [store, sdk(store)]));
    const worker = async (w: number): Promise<void> => {
      for (let i = w; !stop; i++) {
        const store = stores[i % stores.length]!;
        const user = ["user:anne", "user:carl", "user:dave"][i % 3]!;
        try {
          const answer = await clients.get(store)!.check({ user, relation: "viewer", object: "doc:plan" });
          if (answer.allowed !== expected.get(`${store} ${user}`)) wrong++;
          done++;
        } catch (error) {
          failures++;
          console.error("request failed:", (error as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, 1_500));
    const before = done;
    victim.child.kill("SIGKILL");
    // The application's balancer stops sending to it; requests already sent to it are retried by the SDK.
    live = live.filter((u) => u !== victim.url);
    await victim.exited;
    await new Promise((r) => setTimeout(r, 4_000));
    stop = true;
    await Promise.all(workers);
    console.log(
      `load across a kill: ${done} checks (${before} before the kill), ${failures} failed, ${wrong} wrong`,
    );
    expect(failures).toBe(0);
    expect(wrong).toBe(0);
    expect(done).toBeGreaterThan(before);
    await eventually(
      async () => (await Promise.all(live.map(health))).every((h) => h.cluster?.members === 2),
      10_000,
      "the survivors to drop the killed member",
    );
    members = members.filter((m) => m !== victim);
    // After the ring changed, every store is answered by the two survivors.
    for (const store of stores) {
      expect(
        (await sdk(store).check({ user: "user:anne", relation: "viewer", object: "doc:plan" })).allowed,
      ).toBe(true);
    }
  }, 120_000);

  it("keeps stores, models, tuples and assertions when every member is stopped and new ones start", async () => {
    const admin = sdk();
    const store = (await admin.createStore({ name: "durable" })).id;
    const client = sdk(store);
    const modelId = (await client.writeAuthorizationModel(MODEL as never)).authorization_model_id;
    await client.write({ writes: [{ user: "user:erin", relation: "viewer", object: "doc:kept" }] });
    await client.writeAssertions(
      [{ user: "user:erin", relation: "viewer", object: "doc:kept", expectation: true }],
      { authorizationModelId: modelId },
    );
    const storesBefore = (await admin.listStores()).stores.map((s) => s.id).sort();
    const tuplesBefore = (await client.read()).tuples.length;

    const codes = await Promise.all(members.map((m) => stopMember(m, "SIGTERM")));
    expect(codes.every((code) => code === 0)).toBe(true);
    await startAll(3);

    expect((await admin.listStores()).stores.map((s) => s.id).sort()).toEqual(storesBefore);
    expect((await client.read()).tuples.length).toBe(tuplesBefore);
    expect((await client.readLatestAuthorizationModel()).authorization_model?.id).toBe(modelId);
    expect((await client.check({ user: "user:erin", relation: "viewer", object: "doc:kept" })).allowed).toBe(
      true,
    );
    const assertions = await client.readAssertions({ authorizationModelId: modelId });
    expect(assertions.assertions?.map((a) => a.tuple_key.user)).toEqual(["user:erin"]);
  }, 240_000);
});
