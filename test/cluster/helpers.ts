/**
 * Real processes for the cluster tests: `nexus-fast serve --postgres … --cluster …` members started from the
 * sources (tsx), each on a free port, over one PostgreSQL schema of the test's own and one Redis under a key prefix
 * of the test's own; and a private `redis-server` for the tests that kill Redis (the machine's shared Redis is never
 * touched beyond the prefix). Everything started here is tracked and killed by `cleanup()`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";

export const PG_URL = process.env.NEXUS_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.NEXUS_REDIS_URL ?? "redis://127.0.0.1:6379";

const root = fileURLToPath(new URL("../../", import.meta.url));
const running = new Set<ChildProcess>();

/** A name no other test run uses (schema and key prefix). */
export function uniqueName(label: string): string {
  return `nxc_${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether Redis answers at `url` (the cluster tests are skipped without one). */
export async function redisAvailable(url = REDIS_URL): Promise<boolean> {
  const client = createClient({ url, socket: { connectTimeout: 1_000, reconnectStrategy: false } });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    try {
      client.destroy();
    } catch {
      // not connected
    }
  }
}

/** Deletes every key under `prefix` (a test run's own) from the Redis at `url`. */
export async function dropPrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const client = createClient({ url, socket: { connectTimeout: 1_000, reconnectStrategy: false } });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const keys: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) keys.push(...batch);
    if (keys.length > 0) await client.del(keys);
  } catch {
    // Redis gone: nothing to clean.
  } finally {
    try {
      client.destroy();
    } catch {
      // not connected
    }
  }
}

export interface Member {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly exited: Promise<number | null>;
  /** Everything the process wrote (for failure messages). */
  output(): string;
}

export interface MemberOptions {
  readonly schema: string;
  readonly prefix: string;
  readonly redis?: string;
  readonly port?: number;
  readonly extra?: readonly string[];
  /** Start a plain server over the same schema instead (no --cluster): a peer for benchmarks. */
  readonly plain?: boolean;
}

/** Starts one member; resolves once it has joined and listens. */
export function startMember(options: MemberOptions): Promise<Member> {
  const args = [
    "--import",
    "tsx",
    `${root}src/cli/main.ts`,
    "serve",
    "--port",
    String(options.port ?? 0),
    "--postgres",
    PG_URL,
    "--postgres-schema",
    options.schema,
    ...(options.plain === true
      ? []
      : ["--cluster", options.redis ?? REDIS_URL, "--cluster-prefix", options.prefix]),
    "--log-level",
    "info",
    ...(options.extra ?? []),
  ];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`member did not start within 60 s:\n${out}`));
    }, 60_000);
    const look = (): void => {
      // The first log line, written once the member has joined the cluster, names its URL.
      const match = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (match) {
        clearTimeout(timer);
        const url = match[1]!;
        resolve({ child, url, port: Number(new URL(url).port), exited, output: () => out });
      }
    };
    child.stdout!.on("data", look);
    child.stderr!.on("data", look);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`member exited with ${code} before it was ready:\n${out}`));
    });
  });
}

/** Stops a member: SIGTERM (graceful, leaves the ring) or SIGKILL; resolves when it has exited. */
export async function stopMember(member: Member, signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
  if (member.child.exitCode === null && member.child.signalCode === null) member.child.kill(signal);
  const timer = setTimeout(() => member.child.kill("SIGKILL"), 20_000);
  try {
    return await member.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A private redis-server on a free port (for killing it); `stop()` kills it. */
export async function startPrivateRedis(
  port?: number,
): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const chosen = port ?? (await freePort());
  const child = spawn(
    "redis-server",
    ["--port", String(chosen), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  running.add(child);
  const exited = new Promise<void>((resolve) =>
    child.on("exit", () => {
      running.delete(child);
      resolve();
    }),
  );
  const url = `redis://127.0.0.1:${chosen}`;
  const deadline = Date.now() + 10_000;
  while (!(await redisAvailable(url))) {
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not start on port ${chosen}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    port: chosen,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Kills every process these helpers started and still running (afterAll, and on failure). */
export async function cleanup(): Promise<void> {
  const all = [...running];
  for (const child of all) child.kill("SIGKILL");
  await Promise.all(
    all.map((child) =>
      child.exitCode !== null || child.signalCode !== null
        ? undefined
        : new Promise((resolve) => child.once("exit", resolve)),
    ),
  );
}

/** Polls `fn` until it returns true or `ms` passes. */
export async function eventually(
  fn: () => Promise<boolean> | boolean,
  ms = 15_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A client-side load balancer as a tiny HTTP proxy: each request goes to a member picked at random from
 * `targets()` (an application's balancer list); a member that cannot be reached answers 502, which the OpenFGA SDK
 * retries (against another random member). Lets unchanged SDK code (test/server/helpers.ts) hit a random member
 * per request.
 */
export async function startBalancer(
  targets: () => readonly string[],
): Promise<{ url: string; close(): Promise<void> }> {
  const { createServer: createHttpServer, request: httpRequest, Agent } = await import("node:http");
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const server = createHttpServer((req, res) => {
    const list = targets();
    const target = new URL(req.url ?? "/", list[Math.floor(Math.random() * list.length)]!);
    const upstream = httpRequest(
      target,
      { method: req.method, headers: { ...req.headers, host: target.host }, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => {
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "application/json" });
        res.end('{"code":"unavailable","message":"member unreachable"}');
      } else {
        res.destroy();
      }
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** GET a member's /healthz. */
export async function health(url: string): Promise<{
  status: string;
  cluster?: { member: string; redis: string; members: number; degraded: boolean };
}> {
  const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
  return (await response.json()) as never;
}

/** One metric's value from a member's /metrics (the first line starting with `name`). */
export async function metric(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const line = text.split("\n").find((l) => l.startsWith(name));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}
