import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** A fixture script run as a real child process: `node --import tsx test/blobs/fixtures/<name>.ts ...args`. */
export class Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  #waiters: { test: (line: string) => boolean; resolve: () => void }[] = [];
  #stderr = "";
  readonly exited: Promise<number | null>;

  constructor(name: string, args: string[]) {
    const script = fileURLToPath(new URL(`./fixtures/${name}.ts`, import.meta.url));
    this.process = spawn(process.execPath, ["--import", "tsx", script, ...args], { stdio: "pipe" });
    let partial = "";
    this.process.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      partial += chunk;
      const parts = partial.split("\n");
      partial = parts.pop()!;
      for (const line of parts) {
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.test(line)) return true;
          w.resolve();
          return false;
        });
      }
    });
    this.process.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      this.#stderr += chunk;
    });
    this.exited = new Promise((resolve) => this.process.on("exit", (code) => resolve(code)));
  }

  /** Resolves when a line passes `test` (counting lines already seen), or rejects after `ms`. */
  waitFor(test: (line: string) => boolean, ms = 20_000): Promise<void> {
    if (this.lines.some(test)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child timed out; stderr: ${this.#stderr}`)), ms);
      this.#waiters.push({
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`child exited (${code}) first; stderr: ${this.#stderr}`));
      });
    });
  }

  async kill(): Promise<void> {
    this.process.kill("SIGKILL");
    await this.exited;
  }
}
