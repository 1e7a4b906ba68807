/**
 * Runs the shared scenario in a plain Node process against the built package: the entry (bundled, with
 * "nexus-fast" left external) is fed to `node --input-type=module` on stdin with the repo root as working
 * directory, so Node itself resolves "nexus-fast" by package self-reference with its own conditions
 * (node, import): dist/index.js, and "#wasm-source" -> dist/wasm/source.node.js. No vitest alias is involved.
 */
import { spawn } from "node:child_process";
import { bundle, scenarioEntry } from "./bundle.js";
import { repoRoot } from "./dist.js";
import type { RuntimeOutcome } from "./outcome.js";

export async function runScenarioInNode(timeoutMs = 30_000): Promise<RuntimeOutcome> {
  const { code } = await bundle({
    entry: scenarioEntry(`
const resolved = { "nexus-fast": import.meta.resolve("nexus-fast"), "#wasm-source": import.meta.resolve("#wasm-source") };
process.stdout.write(JSON.stringify({ ...(await runOutcome()), resolved }));`),
    platform: "node",
    external: ["nexus-fast"],
  });
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ["--input-type=module"], {
    cwd: repoRoot,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", resolve);
      child.stdin.end(code);
    });
    const out = Buffer.concat(stdout).toString("utf8");
    if (exitCode !== 0) {
      throw new Error(`node exited with ${exitCode}: ${Buffer.concat(stderr).toString("utf8")}${out}`);
    }
    return JSON.parse(out) as RuntimeOutcome;
  } finally {
    clearTimeout(timer);
  }
}
