/**
 * How the HTTP framework for `nexus-fast serve` was chosen: the same trivial check route (parse a JSON body,
 * answer `{"allowed":true,"resolution":""}`) on plain node:http, fastify 5 and hono 4 (@hono/node-server), each in
 * its own child process, driven by autocannon from this process. Usage:
 *   node --import tsx bench/server-frameworks.ts [seconds=3] [connections=16]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";

const ANSWER = JSON.stringify({ allowed: true, resolution: "" });
const BODY = JSON.stringify({
  tuple_key: { user: "user:anne", relation: "viewer", object: "doc:1" },
  authorization_model_id: "01HZZZZZZZZZZZZZZZZZZZZZZZ",
});

async function serve(framework: string): Promise<void> {
  const ready = (port: number): void => {
    process.stdout.write(`${port}\n`);
  };
  if (framework === "node:http") {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { tuple_key: unknown };
        if (body.tuple_key === undefined) res.statusCode = 400;
        res.setHeader("content-type", "application/json");
        res.end(ANSWER);
      });
    });
    server.listen(0, "127.0.0.1", () => ready((server.address() as { port: number }).port));
  } else if (framework === "fastify") {
    const { default: Fastify } = await import("fastify");
    const app = Fastify({ logger: false });
    app.post("/stores/:store_id/check", async (request, reply) => {
      const body = request.body as { tuple_key?: unknown };
      if (body.tuple_key === undefined) reply.code(400);
      reply.type("application/json");
      return ANSWER;
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    ready((app.server.address() as { port: number }).port);
  } else if (framework === "hono") {
    const { Hono } = await import("hono");
    const { serve: honoServe } = await import("@hono/node-server");
    const app = new Hono();
    app.post("/stores/:store_id/check", async (c) => {
      const body = (await c.req.json()) as { tuple_key?: unknown };
      return c.body(ANSWER, body.tuple_key === undefined ? 400 : 200, {
        "content-type": "application/json",
      });
    });
    honoServe({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => ready(info.port));
  }
}

async function measure(framework: string, seconds: number, connections: number) {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(import.meta.url), "--serve", framework],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const port = await new Promise<number>((resolve) => {
    child.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  const run = (duration: number) =>
    autocannon({
      url: `http://127.0.0.1:${port}/stores/01HZZZZZZZZZZZZZZZZZZZZZZZ/check`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: BODY,
      connections,
      duration,
    });
  await run(1); // warm-up
  const result = await run(seconds);
  child.kill();
  return {
    framework,
    requestsPerSec: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

const args = process.argv.slice(2);
if (args[0] === "--serve") {
  await serve(args[1]!);
} else {
  const seconds = Number(args[0] ?? 3);
  const connections = Number(args[1] ?? 16);
  const rows = [];
  for (const framework of (process.env.FRAMEWORKS ?? "node:http,fastify,hono").split(","))
    rows.push(await measure(framework, seconds, connections));
  console.table(rows);
}
