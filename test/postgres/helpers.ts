/**
 * Shared by the PostgreSQL tests: the server to use (NEXUS_PG_URL, default the local `test` database with trust
 * auth, which `.ci/run` starts), and fresh schemas — every test file works in schemas of its own, dropped after.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import pg from "pg";

export const PG_URL = process.env.NEXUS_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other test run uses. */
export function freshSchema(label: string): string {
  return `nxt_${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Runs SQL on a connection of its own (for checks and clean-up outside the store). */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}

/** A fixture (fixtures/child.ts) run as a real child process, its stdout collected line by line. */
export class ChildProcess {
  readonly process: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  #stderr = "";
  #waiters: (() => void)[] = [];

  constructor(args: string[]) {
    const script = fileURLToPath(new URL("./fixtures/child.ts", import.meta.url));
    this.process = spawn(process.execPath, ["--import", "tsx", script, ...args], { stdio: "pipe" });
    let partial = "";
    this.process.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      partial += chunk;
      const parts = partial.split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.process.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      this.#stderr += chunk;
    });
    this.exited = new Promise((resolve) => this.process.on("exit", (code) => resolve(code)));
  }

  /** Resolves with the first line (seen or to come) passing `test`; rejects after `ms` or if the child exits. */
  async waitFor(test: (line: string) => boolean, ms = 30_000): Promise<string> {
    const deadline = Date.now() + ms;
    let exited = false;
    void this.exited.then(() => {
      exited = true;
      for (const wake of this.#waiters.splice(0)) wake();
    });
    for (;;) {
      const found = this.lines.find(test);
      if (found !== undefined) return found;
      if (exited) throw new Error(`child exited first; stderr: ${this.#stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`child timed out; stderr: ${this.#stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a JSON command to an `engine` child and resolves with its answer. */
  async ask(id: number, op: string, request: unknown): Promise<{ result?: unknown; error?: string }> {
    this.process.stdin.write(`${JSON.stringify({ id, op, request })}\n`);
    const line = await this.waitFor((l) => l.startsWith(`{"id":${id},`));
    return JSON.parse(line) as { result?: unknown; error?: string };
  }

  async kill(): Promise<void> {
    this.process.kill("SIGKILL");
    await this.exited;
  }

  async end(): Promise<void> {
    this.process.stdin.end();
    await this.exited;
  }
}
