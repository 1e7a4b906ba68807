/**
 * The cluster (issue 16): `nexus-fast serve --postgres … --cluster …` members over the machine's PostgreSQL and
 * Redis, in three parts.
 *
 * 1. The ring (in process): keys moved when one member joins or leaves N (against the ideal 1/(N+1) and 1/N), the
 *    spread of tenants over members, and the routing choice measured — by tenant versus by (tenant, object): how
 *    many members end up loading a tenant's graph, and the load spread under skewed (Zipf) tenant sizes.
 * 2. Throughput of 1, 2 and 3 members (real processes started from the sources): autocannon, one instance per
 *    member, sends checks about random stores of the workload to every member (so with N members (N−1)/N of them
 *    are forwarded one hop); the same machine also runs PostgreSQL, Redis and autocannon, so on 2 cores the
 *    machine, not the design, is the limit (the load average is printed).
 * 3. Cache hit rates with and without the shared cache: three members answer a question set (warm), a fourth joins
 *    and takes over a quarter of the stores, the set is asked again; what fraction was answered without evaluation
 *    (shared Redis hits, in-process result-cache hits) on the members, with `--no-shared-cache` as the peer.
 *
 * 5. Client-side caching (RESP3 tracking) of the shared answers, on (10,000 entries) against off: one member in this
 *    process, the hot question set already in Redis, checks through autocannon while a writer adds tuples about
 *    other subjects (which, by the in-process rule, leave the hot answers valid): checks/s, latency, shared hits,
 *    and how many of the shared cache's GETs the client-side cache answered without a round trip.
 *
 *   flock /tmp/bench.lock node --import tsx bench/cluster.bench.ts
 *   (BENCH_DURATION=seconds per autocannon run, default 5; BENCH_STORES=stores, default 24; BENCH_PARTS=12345)
 */
import { loadavg } from "node:os";
import autocannon from "autocannon";
import pg from "pg";
import { keyMovement, loadOf, Ring } from "../src/cluster/ring.js";
import { loadOpenFgaDsl } from "../src/model/dsl.js";
import { openFgaDslToJson } from "../src/model/openfga.js";
import {
  cleanup,
  dropPrefix,
  eventually,
  health,
  type Member,
  PG_URL,
  REDIS_URL,
  startMember,
  stopMember,
  uniqueName,
} from "../test/cluster/helpers.js";

const SECONDS = Number(process.env.BENCH_DURATION ?? 5);
const STORES = Number(process.env.BENCH_STORES ?? 24);
const CONNECTIONS = 24;

// OpenFGA DSL below is compiled synchronously; its parser loads on demand (src/model/dsl.ts).
await loadOpenFgaDsl();

const MODEL = openFgaDslToJson(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define viewer: [user, group#member]
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, group#member] or owner or viewer from parent`);

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");

// --- 1. The ring ------------------------------------------------------------------------------------------------

function ringPart(): void {
  const tenants = Array.from({ length: 100_000 }, (_, i) => `01J${i.toString(36).padStart(10, "0")}`);
  const rows = [];
  for (const n of [3, 10, 100]) {
    const members = Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 255}:8080-m${i}`);
    const before = new Ring(members);
    const joined = new Ring([...members, "10.9.9.9:8080-new"]);
    const left = new Ring(members.slice(1));
    const spread = [...loadOf(before, tenants).values()];
    const mean = tenants.length / n;
    rows.push({
      members: n,
      "join: moved": pct(keyMovement(before, joined, tenants)),
      "ideal 1/(N+1)": pct(1 / (n + 1)),
      "leave: moved": pct(keyMovement(before, left, tenants)),
      "ideal 1/N": pct(1 / n),
      "tenants max/mean": (Math.max(...spread) / mean).toFixed(3),
      "tenants min/mean": (Math.min(...spread) / mean).toFixed(3),
    });
  }
  console.log("\n1. Ring (hashring, 100 virtual nodes per member), 100,000 tenants");
  console.table(rows);

  // Routing by tenant versus by (tenant, object): 2,000 tenants with Zipf(1) sizes, 1,000,000 questions.
  const routing = [];
  for (const n of [3, 10]) {
    const ring = new Ring(Array.from({ length: n }, (_, i) => `m${i}`));
    const tenantCount = 2_000;
    const weights = Array.from({ length: tenantCount }, (_, i) => 1 / (i + 1));
    const total = weights.reduce((a, b) => a + b, 0);
    const byTenant = new Map<string, number>();
    const byObject = new Map<string, number>();
    const graphsByObject = new Map<number, Set<string>>();
    let rnd = 12345;
    const next = (): number => {
      rnd = (rnd * 1103515245 + 12345) & 0x7fffffff;
      return rnd / 0x7fffffff;
    };
    for (let q = 0; q < 1_000_000; q++) {
      let r = next() * total;
      let t = 0;
      while (r > weights[t]! && t < tenantCount - 1) r -= weights[t++]!;
      const tenant = `tenant-${t}`;
      const object = `doc:${Math.floor(next() * 10_000)}`;
      const a = ring.owner(tenant)!;
      byTenant.set(a, (byTenant.get(a) ?? 0) + 1);
      const b = ring.owner(`${tenant}/${object}`)!;
      byObject.set(b, (byObject.get(b) ?? 0) + 1);
      const set = graphsByObject.get(t) ?? new Set<string>();
      set.add(b);
      graphsByObject.set(t, set);
    }
    const spreadOf = (m: Map<string, number>): string =>
      (Math.max(...m.values()) / (1_000_000 / n)).toFixed(2);
    const graphs = [...graphsByObject.values()].reduce((a, s) => a + s.size, 0) / graphsByObject.size;
    routing.push({
      members: n,
      "by tenant: busiest/mean": spreadOf(byTenant),
      "by tenant: members loading a tenant": "1.00",
      "by (tenant, object): busiest/mean": spreadOf(byObject),
      "by (tenant, object): members loading a tenant": graphs.toFixed(2),
    });
  }
  console.log(
    "Routing choice: 1,000,000 questions over 2,000 tenants with Zipf(1) sizes (the largest tenant ≈12%)",
  );
  console.table(routing);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

// --- helpers for the process parts ------------------------------------------------------------------------------

interface Workload {
  readonly stores: string[];
  readonly body: () => string;
  readonly questions: string[];
}

async function post(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** STORES stores, each with 40 users, 8 groups, 20 folders and 200 docs (≈700 tuples), written through `url`. */
async function loadWorkload(url: string): Promise<Workload> {
  const stores: string[] = [];
  for (let s = 0; s < STORES; s++) {
    const store = (await post(url, "/stores", { name: `bench-${s}` })).id as string;
    stores.push(store);
    await post(url, `/stores/${store}/authorization-models`, MODEL);
    const tuples: { user: string; relation: string; object: string }[] = [];
    for (let g = 0; g < 8; g++) {
      for (let u = 0; u < 40; u += 1 + ((g + u) % 3))
        tuples.push({ user: `user:u${u}`, relation: "member", object: `group:g${g}` });
    }
    for (let f = 0; f < 20; f++) {
      tuples.push({ user: `group:g${f % 8}#member`, relation: "viewer", object: `folder:f${f}` });
      tuples.push({ user: `user:u${(f * 7) % 40}`, relation: "viewer", object: `folder:f${f}` });
    }
    for (let d = 0; d < 200; d++) {
      tuples.push({ user: `folder:f${d % 20}`, relation: "parent", object: `doc:d${d}` });
      tuples.push({ user: `user:u${(d * 13) % 40}`, relation: "owner", object: `doc:d${d}` });
    }
    for (let i = 0; i < tuples.length; i += 100) {
      await post(url, `/stores/${store}/write`, { writes: { tuple_keys: tuples.slice(i, i + 100) } });
    }
  }
  // 2,000 distinct questions, asked over and over (a hot set, as permission checks are).
  const questions: string[] = [];
  for (let i = 0; i < 2_000; i++) {
    const store = stores[i % stores.length]!;
    questions.push(
      `${store} ${JSON.stringify({ tuple_key: { user: `user:u${(i * 31) % 40}`, relation: "viewer", object: `doc:d${(i * 17) % 200}` } })}`,
    );
  }
  let i = 0;
  return {
    stores,
    questions,
    body: () => questions[i++ % questions.length]!,
  };
}

async function startMembers(
  n: number,
  schema: string,
  prefix: string,
  extra: string[] = [],
): Promise<Member[]> {
  const members = await Promise.all(Array.from({ length: n }, () => startMember({ schema, prefix, extra })));
  await waitForMembers(members, n);
  return members;
}

async function waitForMembers(members: readonly Member[], n: number): Promise<void> {
  await eventually(
    async () => (await Promise.all(members.map((m) => health(m.url)))).every((h) => h.cluster?.members === n),
    30_000,
    `${n} members`,
  );
}

/** autocannon against every member at once, CONNECTIONS split between them; checks a random question each. */
async function hammer(members: readonly Member[], work: Workload, seconds: number) {
  const per = Math.max(1, Math.floor(CONNECTIONS / members.length));
  const results = await Promise.all(
    members.map((m) =>
      autocannon({
        url: m.url,
        connections: per,
        duration: seconds,
        requests: [
          {
            method: "POST",
            setupRequest: (request) => {
              const line = work.body();
              const space = line.indexOf(" ");
              return {
                ...request,
                path: `/stores/${line.slice(0, space)}/check`,
                headers: { "content-type": "application/json" },
                body: line.slice(space + 1),
              };
            },
          },
        ],
      }),
    ),
  );
  const total = results.reduce((n, r) => n + r.requests.total, 0);
  const errors = results.reduce((n, r) => n + r.errors + r.non2xx, 0);
  const p99 = Math.max(...results.map((r) => r.latency.p99));
  const p50 = Math.max(...results.map((r) => r.latency.p50));
  return { rate: total / seconds, errors, p50, p99 };
}

async function metricsOf(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
}

// --- 2. Throughput of 1, 2, 3 members -----------------------------------------------------------------------------

async function throughputPart(): Promise<void> {
  const rows = [];
  // 0: the peer, one plain `serve --postgres` (no cluster: reads without a preference use the engine's own
  // read-your-writes, with no PostgreSQL round trip).
  for (const n of [0, 1, 2, 3]) {
    const schema = uniqueName("bench");
    const prefix = `${uniqueName("bench")}:`;
    try {
      const members =
        n === 0
          ? [await startMember({ schema, prefix, plain: true })]
          : await startMembers(n, schema, prefix);
      const work = await loadWorkload(members[0]!.url);
      // Ownership turns "stable" (node.ts) 2 × ttl (3 s) + the request time limit (10 s) after the last join.
      await new Promise((r) => setTimeout(r, 17_000));
      await hammer(members, work, 2); // warm: every store's engine built on its owner, caches filled
      const before = load();
      const run = await hammer(members, work, SECONDS);
      rows.push({
        members: n === 0 ? "plain server (peer)" : n,
        "checks/s": Math.round(run.rate),
        "p50 ms": run.p50,
        "p99 ms": run.p99,
        errors: run.errors,
        "load avg (1/5/15 min) before": before,
      });
      await Promise.all(members.map((m) => stopMember(m)));
    } finally {
      await cleanup();
      await dropPrefix(prefix);
      await dropSchema(schema);
    }
  }
  console.log(
    `\n2. Throughput: checks through every member (${CONNECTIONS} connections split between them, ${SECONDS} s, ${STORES} stores, 2,000 hot questions)`,
  );
  console.table(rows);
  const peer = rows[0]!["checks/s"];
  const ratios = rows.slice(1).map((r) => `${r.members} member(s): ${(r["checks/s"] / peer).toFixed(2)}×`);
  console.log(`ratios to the plain server: ${ratios.join(", ")}`);
}

// --- 3. Hit rates when a member joins, with and without the shared cache ----------------------------------------

async function hitRatePart(): Promise<void> {
  const rows = [];
  for (const shared of [true, false]) {
    const schema = uniqueName("benchhit");
    const prefix = `${uniqueName("benchhit")}:`;
    const extra = shared ? [] : ["--no-shared-cache"];
    try {
      const members = await startMembers(3, schema, prefix, extra);
      const work = await loadWorkload(members[0]!.url);
      // Warm: every question once, through its owner (forwarded by whichever member gets it).
      for (const q of work.questions) {
        const space = q.indexOf(" ");
        await post(
          members[Math.floor(Math.random() * 3)]!.url,
          `/stores/${q.slice(0, space)}/check`,
          JSON.parse(q.slice(space + 1)),
        );
      }
      const joined = await startMember({ schema, prefix, extra });
      const all = [...members, joined];
      await waitForMembers(all, 4);
      const before = await Promise.all(all.map((m) => metricsOf(m.url)));
      for (const q of work.questions) {
        const space = q.indexOf(" ");
        await post(
          all[Math.floor(Math.random() * 4)]!.url,
          `/stores/${q.slice(0, space)}/check`,
          JSON.parse(q.slice(space + 1)),
        );
      }
      const after = await Promise.all(all.map((m) => metricsOf(m.url)));
      const delta = (name: string): number =>
        after.reduce((n, m, i) => n + (m.get(name) ?? 0) - (before[i]!.get(name) ?? 0), 0);
      const sharedHits = delta('nexus_cluster_shared_cache{result="hits"}');
      const resultHits = delta('nexus_cache_layer_hits{layer="result-cache"}');
      const evaluated = delta('nexus_cache_layer_requests{layer="wasm-evaluator"}');
      const asked = work.questions.length;
      const ids = await Promise.all(all.map(async (m) => (await health(m.url)).cluster!.member));
      const ring = new Ring(ids);
      const joinedOwns = work.stores.filter((s) => ring.owner(s) === ids[3]).length;
      rows.push({
        "shared cache": shared ? "on" : "off",
        questions: asked,
        "stores moved to the new member": `${joinedOwns}/${work.stores.length}`,
        "shared (Redis) hits": pct(sharedHits / asked),
        "in-process result-cache hits": pct(resultHits / asked),
        "reached the evaluator": pct(evaluated / asked),
      });
      await Promise.all(all.map((m) => stopMember(m)));
    } finally {
      await cleanup();
      await dropPrefix(prefix);
      await dropSchema(schema);
    }
  }
  console.log("\n3. After a fourth member joins, the warm question set asked again through random members");
  console.table(rows);
}

// --- 5. Client-side caching of the shared answers, on and off ---------------------------------------------------

async function clientSideCachePart(): Promise<void> {
  const { startServer } = await import("../src/server/index.js");
  const rows = [];
  for (const entries of [10_000, 0]) {
    const schema = uniqueName("benchcsc");
    const prefix = `${uniqueName("benchcsc")}:`;
    const server = await startServer({
      port: 0,
      postgres: PG_URL,
      postgresSchema: schema,
      cluster: { redis: REDIS_URL, prefix, clientSideCacheEntries: entries },
    });
    try {
      const work = await loadWorkload(server.url);
      const node = server.cluster!;
      // Every question answered once (stored in Redis), then once more (read, so the client-side cache holds it).
      for (let round = 0; round < 2; round++) {
        for (const q of work.questions) {
          const space = q.indexOf(" ");
          await post(server.url, `/stores/${q.slice(0, space)}/check`, JSON.parse(q.slice(space + 1)));
        }
      }
      const shared0 = { ...node.sharedCache!.stats };
      const csc0 = node.clientSideCacheStats() ?? { hits: 0, misses: 0 };
      // Writes about subjects the hot questions never ask about, meanwhile (one every 20 ms).
      let writing = true;
      let writes = 0;
      const writer = (async () => {
        while (writing) {
          const store = work.stores[writes % work.stores.length]!;
          await post(server.url, `/stores/${store}/write`, {
            writes: {
              tuple_keys: [{ user: `user:w${writes}`, relation: "viewer", object: `doc:d${writes % 200}` }],
            },
          });
          writes++;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const before = load();
      const run = await hammer([{ url: server.url } as Member], work, SECONDS);
      writing = false;
      await writer;
      const shared = node.sharedCache!.stats;
      const csc = node.clientSideCacheStats();
      const lookups = shared.hits + shared.misses - shared0.hits - shared0.misses;
      rows.push({
        "client-side cache": entries > 0 ? `on (${entries})` : "off",
        "checks/s": Math.round(run.rate),
        "p50 ms": run.p50,
        "p99 ms": run.p99,
        errors: run.errors,
        "writes meanwhile": writes,
        "shared hits": pct((shared.hits - shared0.hits) / Math.max(1, lookups)),
        "GETs answered in process":
          csc === undefined
            ? "-"
            : pct((csc.hits - csc0.hits) / Math.max(1, csc.hits + csc.misses - csc0.hits - csc0.misses)),
        "load avg before": before,
      });
    } finally {
      await server.close();
      await dropPrefix(prefix);
      await dropSchema(schema);
    }
  }
  console.log(
    `\n5. One member, hot set in Redis, ${SECONDS} s of checks while another subject's tuples are written: client-side caching on vs off`,
  );
  console.table(rows);
  const [on, off] = rows as [(typeof rows)[0], (typeof rows)[0]];
  console.log(`checks/s on/off: ${(on["checks/s"] / off["checks/s"]).toFixed(2)}×`);
}

// --- 4. Memory an engine holds per tuple (for the projection) ---------------------------------------------------

async function memoryPart(): Promise<void> {
  const { createEngine } = await import("../src/engine/engine.js");
  const { MemoryTupleStore } = await import("../src/tuples/memory.js");
  const measure = (): number => {
    global.gc?.();
    const m = process.memoryUsage();
    return m.heapUsed + m.external + m.arrayBuffers;
  };
  const tuples: { user: string; relation: string; object: string }[] = [];
  for (let d = 0; d < 50_000; d++) {
    tuples.push({ user: `folder:f${d % 2_000}`, relation: "parent", object: `doc:d${d}` });
    tuples.push({ user: `user:u${(d * 13) % 5_000}`, relation: "owner", object: `doc:d${d}` });
  }
  for (let f = 0; f < 2_000; f++)
    tuples.push({ user: `group:g${f % 200}#member`, relation: "viewer", object: `folder:f${f}` });
  for (let u = 0; u < 5_000; u++)
    tuples.push({ user: `user:u${u}`, relation: "member", object: `group:g${u % 200}` });
  const store = new MemoryTupleStore();
  // Filled through an engine closed before measuring: what is measured is the second engine's graph and caches.
  const filler = await createEngine({ model: MODEL, format: "openfga", store, cache: false });
  for (let i = 0; i < tuples.length; i += 1_000) await filler.write({ writes: tuples.slice(i, i + 1_000) });
  await filler.close();
  const base = measure();
  const engine = await createEngine({ model: MODEL, format: "openfga", store });
  for (let i = 0; i < 2_000; i++)
    await engine.check({ user: `user:u${i}`, relation: "viewer", object: `doc:d${i * 7}` });
  const held = measure() - base;
  await engine.close();
  console.log(
    `\n4. An engine over ${tuples.length.toLocaleString()} tuples of one tenant, after 2,000 checks: ${(held / 2 ** 20).toFixed(1)} MiB held (${Math.round(held / tuples.length)} bytes a tuple${global.gc === undefined ? "; run with --expose-gc for a steadier number" : ""})`,
  );
}

// --- run ----------------------------------------------------------------------------------------------------------

try {
  console.log(`cluster bench: load average ${load()} on ${(await import("node:os")).cpus().length} cores`);
  const parts = process.env.BENCH_PARTS ?? "12345";
  if (parts.includes("1")) ringPart();
  if (parts.includes("4")) await memoryPart();
  if (parts.includes("2")) await throughputPart();
  if (parts.includes("3")) await hitRatePart();
  if (parts.includes("5")) await clientSideCachePart();
  console.log(`\nload average after: ${load()}`);
} finally {
  await cleanup();
}
